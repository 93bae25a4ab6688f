//! The key map: ONE table, [`KEYMAP`], that both [`lookup`] (keys to actions) and the help
//! popup read, so what help says and what keys do can never drift apart.
//!
//! A leaf module: it sees the screen only through a [`KeyContext`], a few plain facts the
//! state hands over.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::action::{Action, EditOp, Focus, Popup};
use crate::app::MoveTo;

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Whatever has focus.
    Everywhere,
    /// The input line (and the chat above it).
    Input,
    /// The chat while browsing it (a cursor on a message; Ctrl-↑ from the input).
    Browse,
    /// The shared list.
    List,
    /// The peers and log panels.
    Panels,
    /// The help popup, while it is open.
    Help,
}

impl Scope {
    /// The heading of the scope's group in help.
    pub fn title(self) -> &'static str {
        match self {
            Scope::Everywhere => "Everywhere",
            Scope::Input => "Input and chat",
            Scope::Browse => "Browsing the chat",
            Scope::List => "List",
            Scope::Panels => "Peers, log",
            Scope::Help => "This help",
        }
    }

    /// Every scope, in the order help shows them.
    pub const ALL: [Scope; 6] = [
        Scope::Everywhere,
        Scope::Input,
        Scope::Browse,
        Scope::List,
        Scope::Panels,
        Scope::Help,
    ];
}

/// A condition on the draft for a binding to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Always.
    Always,
    /// Only while nothing is typed.
    EmptyDraft,
    /// Only while a word is right before the cursor (something to complete).
    WordBefore,
}

/// One key with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Ctrl, Alt, Shift as the terminal reports them (Shift is not part of a character
    /// key: `J` is `Char('J')`).
    pub mods: KeyModifiers,
}

const fn key(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::NONE,
    }
}
const fn ch(c: char) -> Key {
    key(KeyCode::Char(c))
}
const fn ctrl(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::CONTROL,
    }
}
const fn alt(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::ALT,
    }
}
const fn shift(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::SHIFT,
    }
}
const fn c(c: char) -> Key {
    ctrl(KeyCode::Char(c))
}
const fn a(c: char) -> Key {
    alt(KeyCode::Char(c))
}

/// One row of the key map.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Where it applies.
    pub scope: Scope,
    /// The keys that do it (help lists them all).
    pub keys: &'static [Key],
    /// When it applies.
    pub when: When,
    /// What it does, for help.
    pub help: &'static str,
    /// The action.
    pub action: Action,
}

const fn bind(
    scope: Scope,
    keys: &'static [Key],
    when: When,
    help: &'static str,
    action: Action,
) -> Binding {
    Binding {
        scope,
        keys,
        when,
        help,
        action,
    }
}

use KeyCode::{
    BackTab, Backspace, Delete, Down, End, Enter, Esc, F, Home, Left, PageDown, PageUp, Right, Tab,
    Up,
};
use Scope::{Browse, Everywhere, Help, Input, List, Panels};
use When::{Always, EmptyDraft, WordBefore};

/// Every key of the screen. Within a scope the first row that matches wins, and a focused
/// panel's scope is tried before [`Scope::Everywhere`]; the order is also help's order.
#[rustfmt::skip]
pub static KEYMAP: [Binding; 70] = [
    // Everywhere.
    bind(Everywhere, &[c('c')], Always, "quit", Action::Quit),
    bind(Everywhere, &[key(Tab)], Always, "next panel", Action::FocusNext),
    bind(Everywhere, &[key(BackTab), shift(BackTab)], Always, "previous panel", Action::FocusPrev),
    bind(Everywhere, &[key(Esc)], Always, "close, clear, cancel", Action::Escape),
    bind(Everywhere, &[key(F(1))], Always, "this help", Action::Help),
    bind(Everywhere, &[key(PageUp)], Always, "scroll back a page", Action::PageUp),
    bind(Everywhere, &[key(PageDown)], Always, "scroll on a page", Action::PageDown),
    bind(Everywhere, &[c('r')], Always, "search: older match", Action::SearchOlder),
    bind(Everywhere, &[c('s')], Always, "search: newer match", Action::SearchNewer),
    bind(Everywhere, &[key(F(2))], Always, "exchanges <-> events", Action::SwitchLog),
    bind(Everywhere, &[key(F(3))], Always, "mouse off, to copy", Action::ToggleSelect),
    bind(Everywhere, &[c('l')], Always, "redraw the screen", Action::Redraw),
    bind(Everywhere, &[c('z')], Always, "suspend (fg resumes)", Action::Suspend),
    // The input line.
    bind(Input, &[key(Tab)], WordBefore, "complete nick, /cmd", Action::Complete),
    bind(Input, &[key(Enter)], Always, "send the message", Action::Submit),
    bind(Input, &[alt(Enter), shift(Enter), c('j')], Always, "new line", Action::Edit(EditOp::Newline)),
    bind(Input, &[ch('?')], EmptyDraft, "this help", Action::Help),
    bind(Input, &[key(Home)], EmptyDraft, "chat: oldest", Action::ChatTop),
    bind(Input, &[key(End)], EmptyDraft, "chat: newest, new ↓", Action::ChatBottom),
    bind(Input, &[ctrl(Home)], Always, "chat: oldest", Action::ChatTop),
    bind(Input, &[ctrl(End)], Always, "chat: newest", Action::ChatBottom),
    bind(Input, &[ctrl(Up), alt(Up)], Always, "browse, save a file", Action::Browse),
    bind(Input, &[key(Up)], EmptyDraft, "edit my last message", Action::EditLast),
    bind(Input, &[key(Up)], Always, "line up, sent lines", Action::Up),
    bind(Input, &[key(Down)], Always, "line down, sent lines", Action::Down),
    bind(Input, &[c('p')], Always, "previous sent line", Action::HistoryPrev),
    bind(Input, &[c('n')], Always, "next sent line", Action::HistoryNext),
    bind(Input, &[key(Left), c('b')], Always, "char left", Action::Edit(EditOp::Left)),
    bind(Input, &[key(Right), c('f')], Always, "char right", Action::Edit(EditOp::Right)),
    bind(Input, &[ctrl(Left), a('b')], Always, "word left", Action::Edit(EditOp::WordLeft)),
    bind(Input, &[ctrl(Right), a('f')], Always, "word right", Action::Edit(EditOp::WordRight)),
    bind(Input, &[key(Home), c('a')], Always, "start of line", Action::Edit(EditOp::Home)),
    bind(Input, &[key(End), c('e')], Always, "end of line", Action::Edit(EditOp::End)),
    bind(Input, &[key(Backspace), c('h')], Always, "delete back", Action::Edit(EditOp::Backspace)),
    bind(Input, &[key(Delete), c('d')], Always, "delete", Action::Edit(EditOp::Delete)),
    bind(Input, &[c('u')], Always, "delete to line start", Action::Edit(EditOp::KillToStart)),
    bind(Input, &[c('k')], Always, "delete to line end", Action::Edit(EditOp::KillToEnd)),
    bind(Input, &[c('w'), alt(Backspace)], Always, "delete word back", Action::Edit(EditOp::KillWordBack)),
    bind(Input, &[a('d')], Always, "delete word", Action::Edit(EditOp::KillWordForward)),
    bind(Input, &[c('y')], Always, "put back deleted text", Action::Edit(EditOp::Yank)),
    bind(Input, &[c('_'), c('7'), a('u')], Always, "undo", Action::Edit(EditOp::Undo)),
    bind(Input, &[a('r')], Always, "redo", Action::Edit(EditOp::Redo)),
    // Browsing the chat: letters move and act instead of typing (none of them types).
    bind(Browse, &[ch('k'), key(Up), ctrl(Up), alt(Up)], Always, "older message", Action::BrowseMove(-1)),
    bind(Browse, &[ch('j'), key(Down), ctrl(Down), alt(Down)], Always, "newer message", Action::BrowseMove(1)),
    bind(Browse, &[ch('g'), key(Home)], Always, "oldest message", Action::BrowseOldest),
    bind(Browse, &[ch('G'), key(End)], Always, "newest message", Action::BrowseNewest),
    bind(Browse, &[key(Enter), ch('s')], Always, "save the file (/save)", Action::SaveSelected),
    bind(Browse, &[key(Esc)], Always, "back to typing", Action::Escape),
    bind(Browse, &[ch('?')], Always, "this help", Action::Help),
    // The list.
    bind(List, &[ch('j'), key(Down)], Always, "select next", Action::Select(1)),
    bind(List, &[ch('k'), key(Up)], Always, "select previous", Action::Select(-1)),
    bind(List, &[ch(' '), key(Enter)], Always, "check / uncheck", Action::Toggle),
    bind(List, &[ch('a')], Always, "add an item", Action::AddItem),
    bind(List, &[ch('e')], Always, "edit the item", Action::EditItem),
    bind(List, &[ch('d'), key(Delete)], Always, "remove the item", Action::RemoveItem),
    bind(List, &[ch('u')], Always, "undo the last remove", Action::Undo),
    bind(List, &[ch('J')], Always, "move down", Action::MoveItem(MoveTo::Down)),
    bind(List, &[ch('K')], Always, "move up", Action::MoveItem(MoveTo::Up)),
    bind(List, &[ch('c')], Always, "vector clock", Action::Clock),
    bind(List, &[ch('?')], Always, "this help", Action::Help),
    // Peers and log.
    bind(Panels, &[ch('j'), key(Down)], Always, "scroll", Action::Select(1)),
    bind(Panels, &[ch('k'), key(Up)], Always, "scroll back", Action::Select(-1)),
    bind(Panels, &[ch('x'), ch('v')], Always, "exchanges <-> events", Action::SwitchLog),
    bind(Panels, &[ch('c')], Always, "vector clock", Action::Clock),
    bind(Panels, &[ch('?')], Always, "this help", Action::Help),
    // The help popup (other keys close it and act).
    bind(Help, &[ch('j'), key(Down)], Always, "scroll", Action::HelpScroll(1)),
    bind(Help, &[ch('k'), key(Up)], Always, "scroll back", Action::HelpScroll(-1)),
    bind(Help, &[key(PageDown)], Always, "scroll a page", Action::HelpScroll(10)),
    bind(Help, &[key(PageUp)], Always, "back a page", Action::HelpScroll(-10)),
    bind(Help, &[key(Esc), ch('?'), key(F(1))], Always, "close", Action::Escape),
];

/// The facts about the screen that decide what a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyContext {
    /// The focused panel.
    pub focus: Focus,
    /// The open popup.
    pub popup: Option<Popup>,
    /// Whether the draft is empty.
    pub draft_empty: bool,
    /// Whether a word is right before the cursor.
    pub word_before: bool,
    /// Whether the chat is being browsed (a cursor on a message).
    pub browsing: bool,
}

/// A key as the table compares it: AltGr (reported as Ctrl+Alt on Windows) types a
/// character, and Shift is part of a character, not a modifier.
fn normalize(ev: &KeyEvent) -> Key {
    let mut mods = ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
    if let KeyCode::Char(_) = ev.code {
        mods.remove(KeyModifiers::SHIFT);
        if mods.contains(KeyModifiers::CONTROL | KeyModifiers::ALT) {
            mods = KeyModifiers::NONE;
        }
    }
    Key {
        code: ev.code,
        mods,
    }
}

fn scope_of(cx: &KeyContext) -> Scope {
    match cx.focus {
        Focus::Input if cx.browsing => Scope::Browse,
        Focus::Input => Scope::Input,
        Focus::List => Scope::List,
        Focus::Peers | Focus::Log => Scope::Panels,
    }
}

fn holds(when: When, cx: &KeyContext) -> bool {
    match when {
        When::Always => true,
        When::EmptyDraft => cx.draft_empty,
        When::WordBefore => cx.word_before,
    }
}

fn find(scope: Scope, k: Key, cx: &KeyContext) -> Option<Action> {
    KEYMAP
        .iter()
        .filter(|b| b.scope == scope && holds(b.when, cx))
        .find(|b| b.keys.contains(&k))
        .map(|b| b.action.clone())
}

/// The action for a key press in `cx`; `None`: nothing to do.
pub fn lookup(cx: &KeyContext, ev: &KeyEvent) -> Option<Action> {
    // Windows reports releases too; only presses and repeats act.
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    let k = normalize(ev);
    if let Some(popup) = cx.popup {
        // Keys that open or close the popup close it; any other key closes it and does
        // what it does, so a popup never traps the user nor swallows a key.
        let closes = matches!(k.code, KeyCode::Esc | KeyCode::F(1) | KeyCode::Char('?'))
            || (popup == Popup::Clock && k.code == KeyCode::Char('c'));
        if closes && k.mods.is_empty() {
            return Some(Action::Escape);
        }
    }
    if cx.popup == Some(Popup::Help)
        && let Some(action) = find(Scope::Help, k, cx)
    {
        return Some(action);
    }
    let scope = scope_of(cx);
    if let Some(action) = find(scope, k, cx).or_else(|| find(Scope::Everywhere, k, cx)) {
        return Some(action);
    }
    match k.code {
        KeyCode::Char(ch) if scope == Scope::Input && k.mods.is_empty() => Some(Action::Insert(ch)),
        _ => None,
    }
}

/// How a key reads in help: `Ctrl-W`, `Alt-Enter`, `PgUp`.
pub fn key_label(k: &Key) -> String {
    let name = match k.code {
        KeyCode::Char(' ') => "Space".to_string(),
        // A control letter reads as on the key cap; a plain one as typed (`J` is Shift-j).
        KeyCode::Char(c) if !k.mods.is_empty() => c.to_uppercase().to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Backspace => "Bksp".into(),
        KeyCode::Delete => "Del".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    };
    let mut out = String::new();
    if k.mods.contains(KeyModifiers::CONTROL) {
        out.push_str("Ctrl-");
    }
    if k.mods.contains(KeyModifiers::ALT) {
        out.push_str("Alt-");
    }
    if k.mods.contains(KeyModifiers::SHIFT) && k.code != KeyCode::BackTab {
        out.push_str("Shift-");
    }
    out.push_str(&name);
    out
}

/// The keys of a binding as help shows them: `Ctrl-W, Alt-Bksp`. Keys that read the same
/// (Shift-Tab twice) show once.
pub fn keys_label(b: &Binding) -> String {
    let mut labels: Vec<String> = Vec::new();
    for k in b.keys {
        let l = key_label(k);
        // Ctrl-7 is how terminals report Ctrl-_; showing both would only puzzle.
        if !labels.contains(&l) && l != "Ctrl-7" {
            labels.push(l);
        }
    }
    let mut s = labels.join(", ");
    if b.when == When::EmptyDraft {
        s.push_str(" (empty)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(focus: Focus) -> KeyContext {
        KeyContext {
            focus,
            popup: None,
            draft_empty: true,
            word_before: false,
            browsing: false,
        }
    }

    fn press(cx: &KeyContext, code: KeyCode, mods: KeyModifiers) -> Option<Action> {
        lookup(cx, &KeyEvent::new(code, mods))
    }

    #[test]
    fn readline_keys_edit_the_draft() {
        let cx = KeyContext {
            draft_empty: false,
            ..cx(Focus::Input)
        };
        let ctrl = KeyModifiers::CONTROL;
        let alt = KeyModifiers::ALT;
        for (code, mods, op) in [
            (KeyCode::Char('a'), ctrl, EditOp::Home),
            (KeyCode::Char('e'), ctrl, EditOp::End),
            (KeyCode::Char('u'), ctrl, EditOp::KillToStart),
            (KeyCode::Char('k'), ctrl, EditOp::KillToEnd),
            (KeyCode::Char('w'), ctrl, EditOp::KillWordBack),
            (KeyCode::Char('b'), alt, EditOp::WordLeft),
            (KeyCode::Char('f'), alt, EditOp::WordRight),
            (KeyCode::Left, ctrl, EditOp::WordLeft),
            (KeyCode::Right, ctrl, EditOp::WordRight),
            (KeyCode::Enter, alt, EditOp::Newline),
            (KeyCode::Enter, KeyModifiers::SHIFT, EditOp::Newline),
            (KeyCode::Char('7'), ctrl, EditOp::Undo),
            (KeyCode::Home, KeyModifiers::NONE, EditOp::Home),
        ] {
            assert_eq!(
                press(&cx, code, mods),
                Some(Action::Edit(op)),
                "{code:?} {mods:?}"
            );
        }
        assert_eq!(
            press(&cx, KeyCode::Enter, KeyModifiers::NONE),
            Some(Action::Submit)
        );
        assert_eq!(
            press(&cx, KeyCode::Char('?'), KeyModifiers::NONE),
            Some(Action::Insert('?'))
        );
        assert_eq!(press(&cx, KeyCode::Char('z'), ctrl), Some(Action::Suspend));
        assert_eq!(press(&cx, KeyCode::Char('l'), ctrl), Some(Action::Redraw));
    }

    #[test]
    fn conditions_pick_between_bindings_of_one_key() {
        let empty = cx(Focus::Input);
        assert_eq!(
            press(&empty, KeyCode::Home, KeyModifiers::NONE),
            Some(Action::ChatTop)
        );
        assert_eq!(
            press(&empty, KeyCode::End, KeyModifiers::NONE),
            Some(Action::ChatBottom)
        );
        assert_eq!(
            press(&empty, KeyCode::Char('?'), KeyModifiers::NONE),
            Some(Action::Help)
        );
        assert_eq!(
            press(&empty, KeyCode::Tab, KeyModifiers::NONE),
            Some(Action::FocusNext)
        );
        let word = KeyContext {
            draft_empty: false,
            word_before: true,
            ..empty
        };
        assert_eq!(
            press(&word, KeyCode::Tab, KeyModifiers::NONE),
            Some(Action::Complete)
        );
        // The list has no Tab of its own: the global one moves on.
        assert_eq!(
            press(&cx(Focus::List), KeyCode::Tab, KeyModifiers::NONE),
            Some(Action::FocusNext)
        );
    }

    #[test]
    fn a_popup_closes_on_its_keys_and_passes_the_others_on() {
        let mut clock = cx(Focus::List);
        clock.popup = Some(Popup::Clock);
        assert_eq!(
            press(&clock, KeyCode::Char('c'), KeyModifiers::NONE),
            Some(Action::Escape)
        );
        // The key that closes the clock is not swallowed.
        assert_eq!(
            press(&clock, KeyCode::Char('j'), KeyModifiers::NONE),
            Some(Action::Select(1))
        );
        let mut help = cx(Focus::Input);
        help.popup = Some(Popup::Help);
        assert_eq!(
            press(&help, KeyCode::Esc, KeyModifiers::NONE),
            Some(Action::Escape)
        );
        assert_eq!(
            press(&help, KeyCode::Char('x'), KeyModifiers::NONE),
            Some(Action::Insert('x'))
        );
    }

    #[test]
    fn browsing_takes_the_letters_and_typing_keeps_them() {
        let ctrl = KeyModifiers::CONTROL;
        let none = KeyModifiers::NONE;
        let typing = KeyContext {
            draft_empty: false,
            ..cx(Focus::Input)
        };
        // Typing: s and Enter are the draft's; Ctrl-↑ starts browsing, draft or not.
        assert_eq!(
            press(&typing, KeyCode::Char('s'), none),
            Some(Action::Insert('s'))
        );
        assert_eq!(press(&typing, KeyCode::Enter, none), Some(Action::Submit));
        for c in [typing, cx(Focus::Input)] {
            assert_eq!(press(&c, KeyCode::Up, ctrl), Some(Action::Browse));
        }
        let browsing = KeyContext {
            browsing: true,
            ..typing
        };
        for (code, mods, action) in [
            (KeyCode::Char('s'), none, Action::SaveSelected),
            (KeyCode::Enter, none, Action::SaveSelected),
            (KeyCode::Char('k'), none, Action::BrowseMove(-1)),
            (KeyCode::Up, ctrl, Action::BrowseMove(-1)),
            (KeyCode::Down, none, Action::BrowseMove(1)),
            (
                KeyCode::Char('G'),
                KeyModifiers::SHIFT,
                Action::BrowseNewest,
            ),
            (KeyCode::Home, none, Action::BrowseOldest),
            (KeyCode::Esc, none, Action::Escape),
            // The keys of every panel still work.
            (KeyCode::Tab, none, Action::FocusNext),
            (KeyCode::Char('c'), ctrl, Action::Quit),
        ] {
            assert_eq!(press(&browsing, code, mods), Some(action), "{code:?}");
        }
        // No letter types while browsing, bound or not.
        assert_eq!(press(&browsing, KeyCode::Char('x'), none), None);
        assert_eq!(press(&browsing, KeyCode::Backspace, none), None);
        // Browsing is the chat's: the list keeps its own keys.
        let list = KeyContext {
            browsing: true,
            ..cx(Focus::List)
        };
        assert_eq!(
            press(&list, KeyCode::Char('s'), none),
            None,
            "s is nothing in the list"
        );
    }

    #[test]
    fn altgr_types_and_shift_is_part_of_a_letter() {
        let i = cx(Focus::Input);
        let altgr = KeyModifiers::CONTROL | KeyModifiers::ALT;
        assert_eq!(
            press(&i, KeyCode::Char('@'), altgr),
            Some(Action::Insert('@'))
        );
        assert_eq!(
            press(&i, KeyCode::Char('A'), KeyModifiers::SHIFT),
            Some(Action::Insert('A'))
        );
        let l = cx(Focus::List);
        assert_eq!(
            press(&l, KeyCode::Char('J'), KeyModifiers::SHIFT),
            Some(Action::MoveItem(MoveTo::Down))
        );
        assert_eq!(press(&i, KeyCode::Char('q'), KeyModifiers::ALT), None);
    }

    #[test]
    fn no_key_is_bound_twice_in_one_scope_under_one_condition() {
        for (i, b) in KEYMAP.iter().enumerate() {
            for other in &KEYMAP[..i] {
                if other.scope == b.scope && other.when == b.when {
                    for k in b.keys {
                        assert!(
                            !other.keys.contains(k),
                            "{} bound twice in {:?}",
                            key_label(k),
                            b.scope
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn labels_read_like_the_keyboard() {
        assert_eq!(key_label(&c('w')), "Ctrl-W");
        assert_eq!(key_label(&ch('J')), "J");
        assert_eq!(key_label(&alt(Enter)), "Alt-Enter");
        assert_eq!(key_label(&shift(BackTab)), "Shift-Tab");
        let undo = KEYMAP
            .iter()
            .find(|b| b.action == Action::Edit(EditOp::Undo));
        assert_eq!(undo.map(keys_label).as_deref(), Some("Ctrl-_, Alt-U"));
    }
}
