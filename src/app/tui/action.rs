//! What the user or the session asks of the screen, and the key map that turns terminal
//! input into it.

use std::time::SystemTime;

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};

use super::app::{Focus, TuiApp};
use crate::app::MoveTo;
use crate::app::runtime::view::SessionEvent;

/// One thing to do to the [`TuiApp`].
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Leave.
    Quit,
    /// Focus the next panel.
    FocusNext,
    /// Focus the previous panel.
    FocusPrev,
    /// Close the popup, or cancel an item edit and focus the input.
    Escape,
    /// Open the help popup.
    Help,
    /// Open the vector clock popup.
    Clock,
    /// Type a character.
    Insert(char),
    /// Delete before the cursor.
    Backspace,
    /// Delete under the cursor.
    Delete,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Cursor to the start.
    Home,
    /// Cursor to the end.
    End,
    /// Previous line of the input history.
    HistoryPrev,
    /// Next line of the input history.
    HistoryNext,
    /// Send the input line.
    Submit,
    /// Scroll the chat back by this many rows.
    ScrollUp(usize),
    /// Scroll the chat forward by this many rows.
    ScrollDown(usize),
    /// Scroll the chat back a page.
    PageUp,
    /// Scroll the chat forward a page.
    PageDown,
    /// Move the selection of the focused panel by this many rows.
    Select(isize),
    /// Check or uncheck the selected item.
    Toggle,
    /// Start typing a new item.
    AddItem,
    /// Start editing the selected item.
    EditItem,
    /// Remove the selected item.
    RemoveItem,
    /// Put back the last removed item.
    Undo,
    /// Move the selected item.
    MoveItem(MoveTo),
    /// Switch between the exchanges and events logs.
    SwitchLog,
    /// Something from the session.
    Session(SessionEvent),
    /// The clock moved (for "3s ago" fields).
    Tick(SystemTime),
    /// The terminal has a new size.
    Resize(u16, u16),
    /// The mouse wheel turned one notch over this cell.
    Wheel {
        /// The pointer's column.
        column: u16,
        /// The pointer's row.
        row: u16,
        /// Whether it turned up (back in time).
        up: bool,
    },
}

/// The action for a terminal event, given what has focus. `None`: nothing to do.
pub fn map_event(app: &TuiApp, ev: &TermEvent) -> Option<Action> {
    match ev {
        TermEvent::Key(key) => map_key(app, key),
        TermEvent::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => Some(Action::Wheel {
                column: m.column,
                row: m.row,
                up: m.kind == MouseEventKind::ScrollUp,
            }),
            _ => None,
        },
        TermEvent::Resize(w, h) => Some(Action::Resize(*w, *h)),
        _ => None,
    }
}

/// The action for a key press.
pub fn map_key(app: &TuiApp, key: &KeyEvent) -> Option<Action> {
    // Windows reports releases too; only presses and repeats act.
    if key.kind == KeyEventKind::Release {
        return None;
    }
    // Windows reports AltGr as Ctrl+Alt: such keys type characters (`@`, `{` on many
    // layouts), they are not control keys.
    let ctrl =
        key.modifiers.contains(KeyModifiers::CONTROL) && !key.modifiers.contains(KeyModifiers::ALT);
    match key.code {
        KeyCode::Char('c') if ctrl => return Some(Action::Quit),
        KeyCode::Tab => return Some(Action::FocusNext),
        KeyCode::BackTab => return Some(Action::FocusPrev),
        KeyCode::Esc => return Some(Action::Escape),
        KeyCode::F(1) => return Some(Action::Help),
        KeyCode::F(2) => return Some(Action::SwitchLog),
        KeyCode::PageUp => return Some(Action::PageUp),
        KeyCode::PageDown => return Some(Action::PageDown),
        _ => {}
    }
    if app.popup().is_some() {
        // Any other key closes a popup, so it can never trap the user.
        return Some(Action::Escape);
    }
    match app.focus() {
        Focus::Input => input_key(app, key, ctrl),
        Focus::List => list_key(key),
        Focus::Peers | Focus::Log => panel_key(key),
    }
}

fn input_key(app: &TuiApp, key: &KeyEvent, ctrl: bool) -> Option<Action> {
    Some(match key.code {
        KeyCode::Char('a') if ctrl => Action::Home,
        KeyCode::Char('e') if ctrl => Action::End,
        KeyCode::Char('?') if app.input().is_empty() => Action::Help,
        KeyCode::Char(c) if !ctrl => Action::Insert(c),
        KeyCode::Enter => Action::Submit,
        KeyCode::Backspace => Action::Backspace,
        KeyCode::Delete => Action::Delete,
        KeyCode::Left => Action::Left,
        KeyCode::Right => Action::Right,
        KeyCode::Home => Action::Home,
        KeyCode::End => Action::End,
        KeyCode::Up => Action::HistoryPrev,
        KeyCode::Down => Action::HistoryNext,
        _ => return None,
    })
}

fn list_key(key: &KeyEvent) -> Option<Action> {
    Some(match key.code {
        KeyCode::Char('j') | KeyCode::Down => Action::Select(1),
        KeyCode::Char('k') | KeyCode::Up => Action::Select(-1),
        KeyCode::Char(' ') | KeyCode::Enter => Action::Toggle,
        KeyCode::Char('a') => Action::AddItem,
        KeyCode::Char('e') => Action::EditItem,
        KeyCode::Char('d') | KeyCode::Delete => Action::RemoveItem,
        KeyCode::Char('u') => Action::Undo,
        KeyCode::Char('J') => Action::MoveItem(MoveTo::Down),
        KeyCode::Char('K') => Action::MoveItem(MoveTo::Up),
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('c') => Action::Clock,
        _ => return None,
    })
}

fn panel_key(key: &KeyEvent) -> Option<Action> {
    Some(match key.code {
        KeyCode::Char('j') | KeyCode::Down => Action::Select(1),
        KeyCode::Char('k') | KeyCode::Up => Action::Select(-1),
        KeyCode::Char('x') | KeyCode::Char('v') => Action::SwitchLog,
        KeyCode::Char('c') => Action::Clock,
        KeyCode::Char('?') => Action::Help,
        _ => return None,
    })
}
