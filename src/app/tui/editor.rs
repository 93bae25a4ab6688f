//! The draft being typed: `ratatui-textarea` (readline keys, undo, several lines, soft
//! wrap) plus what a chat needs around it: a history of sent lines, pastes kept whole, and
//! completion of the word before the cursor.

use ratatui_textarea::{CursorMove, TextArea, WrapMode};

use super::action::EditOp;

/// How many sent lines the history keeps.
const HISTORY_LEN: usize = 100;
/// How many edits undo can take back.
const UNDO_LEN: usize = 200;

/// A draft being typed, with the history of sent ones.
#[derive(Debug, Clone)]
pub struct Editor {
    area: TextArea<'static>,
    history: Vec<String>,
    /// Where history browsing is (`None`: editing a fresh draft).
    browsing: Option<usize>,
    /// The fresh draft put aside while browsing.
    draft: String,
    /// The last completion, to cycle through the candidates on the next Tab.
    completion: Option<Completion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Completion {
    /// The word as typed, before completing.
    prefix: String,
    /// The candidate put in last.
    shown: String,
    /// The candidates, in order.
    candidates: Vec<String>,
    /// The index of `shown`.
    at: usize,
}

impl Default for Editor {
    fn default() -> Self {
        Editor {
            area: new_area(Vec::new()),
            history: Vec::new(),
            browsing: None,
            draft: String::new(),
            completion: None,
        }
    }
}

fn new_area(lines: Vec<String>) -> TextArea<'static> {
    let mut area = if lines.is_empty() {
        TextArea::default()
    } else {
        TextArea::new(lines)
    };
    area.set_max_histories(UNDO_LEN);
    area.set_wrap_mode(WrapMode::WordOrGlyph);
    // The focused box has its own border colour; an underlined row would read as a link.
    area.set_cursor_line_style(ratatui::style::Style::default());
    area
}

impl Editor {
    /// The draft, its lines joined by `\n`.
    pub fn text(&self) -> String {
        self.area.lines().join("\n")
    }

    /// The draft's lines.
    pub fn lines(&self) -> &[String] {
        self.area.lines()
    }

    /// The cursor as (line, character in the line).
    pub fn cursor(&self) -> (usize, usize) {
        let c = self.area.cursor();
        (c.0, c.1)
    }

    /// Whether nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.area.is_empty()
    }

    /// The widget, for drawing.
    pub fn widget(&self) -> &TextArea<'static> {
        &self.area
    }

    /// Inserts a character at the cursor.
    pub fn insert(&mut self, c: char) {
        self.completion = None;
        self.area.insert_char(c);
    }

    /// Inserts pasted text at the cursor, whole: its lines stay lines of this one draft.
    /// `\r\n` and lone `\r` (what terminals send for Enter) count as newlines; tabs become
    /// spaces, other control characters are dropped. The newline that ends most copied
    /// lines is dropped too: it would only add an empty line to the draft.
    pub fn paste(&mut self, text: &str) {
        self.completion = None;
        let clean: String = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .filter_map(|c| match c {
                '\t' => Some(' '),
                '\n' => Some('\n'),
                c if c.is_control() => None,
                c => Some(c),
            })
            .collect();
        self.area.insert_str(clean.trim_end_matches('\n'));
    }

    /// Applies one edit.
    pub fn edit(&mut self, op: EditOp) {
        self.completion = None;
        let a = &mut self.area;
        match op {
            EditOp::Left => a.move_cursor(CursorMove::Back),
            EditOp::Right => a.move_cursor(CursorMove::Forward),
            EditOp::WordLeft => a.move_cursor(CursorMove::WordBack),
            EditOp::WordRight => a.move_cursor(CursorMove::WordForward),
            EditOp::Home => a.move_cursor(CursorMove::Head),
            EditOp::End => a.move_cursor(CursorMove::End),
            EditOp::Backspace => {
                a.delete_char();
            }
            EditOp::Delete => {
                a.delete_next_char();
            }
            EditOp::KillToStart => {
                a.delete_line_by_head();
            }
            EditOp::KillToEnd => {
                a.delete_line_by_end();
            }
            EditOp::KillWordBack => {
                a.delete_word();
            }
            EditOp::KillWordForward => {
                a.delete_next_word();
            }
            EditOp::Yank => {
                a.paste();
            }
            EditOp::Undo => {
                a.undo();
            }
            EditOp::Redo => {
                a.redo();
            }
            EditOp::Newline => a.insert_newline(),
        }
    }

    /// Up: the line above in a draft of several lines; from the first line, the previous
    /// sent draft.
    pub fn up(&mut self) {
        if self.cursor().0 > 0 {
            self.area.move_cursor(CursorMove::Up);
        } else {
            self.history_prev();
        }
    }

    /// Down: the line below; from the last line, the next sent draft.
    pub fn down(&mut self) {
        if self.cursor().0 + 1 < self.area.lines().len() {
            self.area.move_cursor(CursorMove::Down);
        } else {
            self.history_next();
        }
    }

    /// Replaces the draft (to edit an item or a message), cursor at the end. Undo can
    /// bring the old draft back.
    pub fn set(&mut self, text: &str) {
        self.browsing = None;
        self.replace(text);
    }

    fn replace(&mut self, text: &str) {
        self.completion = None;
        self.area.clear();
        self.area.insert_str(text);
    }

    /// Empties the draft (Esc); undo brings it back.
    pub fn clear(&mut self) {
        self.set("");
    }

    /// Takes the draft and records it in the history.
    pub fn take(&mut self) -> String {
        let text = self.text();
        // A new widget: undo must not bring a sent message back into the box.
        let yank = self.area.yank_text();
        self.area = new_area(Vec::new());
        self.area.set_yank_text(yank);
        self.browsing = None;
        self.completion = None;
        if !text.trim().is_empty() && self.history.last() != Some(&text) {
            if self.history.len() == HISTORY_LEN {
                self.history.remove(0);
            }
            self.history.push(text.clone());
        }
        text
    }

    /// Shows the previous sent draft.
    pub fn history_prev(&mut self) {
        let i = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = self.text();
                self.history.len() - 1
            }
            Some(i) => i.saturating_sub(1),
        };
        self.browsing = Some(i);
        let text = self.history.get(i).cloned().unwrap_or_default();
        self.replace(&text);
    }

    /// Shows the next sent draft, or the fresh one after the last.
    pub fn history_next(&mut self) {
        let Some(i) = self.browsing else { return };
        let text = if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.history[i + 1].clone()
        } else {
            self.browsing = None;
            std::mem::take(&mut self.draft)
        };
        self.replace(&text);
    }

    /// The word right before the cursor (letters, digits and `_-./@` up to a space), if
    /// there is one.
    pub fn word_before(&self) -> Option<&str> {
        let (row, col) = self.cursor();
        let line = self.area.lines().get(row)?;
        let end = line.char_indices().nth(col).map_or(line.len(), |(i, _)| i);
        let head = &line[..end];
        let start = head
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &head[start..];
        (!word.is_empty()).then_some(word)
    }

    /// Whether the word before the cursor is the first of the draft (where `/commands` go).
    fn word_is_first(&self) -> bool {
        let (row, _) = self.cursor();
        let Some(word) = self.word_before() else {
            return false;
        };
        let Some(line) = self.area.lines().get(row) else {
            return false;
        };
        row == 0 && line.trim_start().starts_with(word)
    }

    /// Completes the word before the cursor: `/com` from `commands` (first word only),
    /// otherwise a nick from `nicks` (`@` kept). Each Tab in a row shows the next
    /// candidate. Returns whether anything matched.
    pub fn complete(&mut self, commands: &[&str], nicks: &[String]) -> bool {
        let Some(word) = self.word_before().map(str::to_string) else {
            return false;
        };
        let cycling = self
            .completion
            .as_ref()
            .filter(|c| c.shown == word)
            .cloned();
        let next = match cycling {
            Some(mut c) => {
                c.at = (c.at + 1) % c.candidates.len().max(1);
                c
            }
            None => {
                let candidates = if let Some(cmd) = word.strip_prefix('/') {
                    if !self.word_is_first() {
                        return false;
                    }
                    matching(commands.iter().copied(), cmd, "/")
                } else {
                    let (at, name) = word
                        .strip_prefix('@')
                        .map_or(("", word.as_str()), |n| ("@", n));
                    matching(nicks.iter().map(String::as_str), name, at)
                };
                if candidates.is_empty() {
                    return false;
                }
                Completion {
                    prefix: word.clone(),
                    shown: String::new(),
                    candidates,
                    at: 0,
                }
            }
        };
        let Some(candidate) = next.candidates.get(next.at).cloned() else {
            return false;
        };
        for _ in 0..word.chars().count() {
            self.area.delete_char();
        }
        self.area.insert_str(&candidate);
        self.completion = Some(Completion {
            shown: candidate,
            ..next
        });
        true
    }
}

/// The names that start with `typed` (case-insensitive), each with `sigil` before it,
/// sorted and without duplicates.
fn matching<'a>(names: impl Iterator<Item = &'a str>, typed: &str, sigil: &str) -> Vec<String> {
    let typed = typed.to_lowercase();
    let mut out: Vec<String> = names
        .filter(|n| !n.is_empty() && n.to_lowercase().starts_with(&typed))
        .map(|n| format!("{sigil}{n}"))
        .collect();
    out.sort_by_key(|n| n.to_lowercase());
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Editor {
        let mut e = Editor::default();
        s.chars().for_each(|c| e.insert(c));
        e
    }

    #[test]
    fn readline_kills_and_motions() {
        let mut e = typed("hello brave new world");
        e.edit(EditOp::KillWordBack);
        assert_eq!(e.text(), "hello brave new ");
        e.edit(EditOp::WordLeft);
        e.edit(EditOp::KillToEnd);
        assert_eq!(e.text(), "hello brave ");
        e.edit(EditOp::Home);
        e.edit(EditOp::WordRight);
        e.edit(EditOp::KillToStart);
        assert_eq!(e.text(), "brave ");
        e.edit(EditOp::End);
        e.edit(EditOp::Yank);
        assert_eq!(e.text(), "brave hello ");
        e.edit(EditOp::Undo);
        assert_eq!(e.text(), "brave ");
        e.edit(EditOp::Redo);
        assert_eq!(e.text(), "brave hello ");
    }

    #[test]
    fn a_huge_refused_line_clears_in_one_key_and_comes_back_with_undo() {
        let mut e = Editor::default();
        e.paste(&"x".repeat(10_000));
        e.edit(EditOp::KillToStart);
        assert!(e.is_empty());
        e.edit(EditOp::Undo);
        assert_eq!(e.text().len(), 10_000);
        e.clear();
        assert!(e.is_empty());
        e.edit(EditOp::Undo);
        assert_eq!(e.text().len(), 10_000);
    }

    #[test]
    fn characters_not_bytes() {
        let mut e = typed("héllo");
        e.edit(EditOp::Left);
        e.edit(EditOp::Left);
        e.edit(EditOp::Backspace);
        assert_eq!(e.text(), "hélo");
        e.edit(EditOp::Home);
        e.edit(EditOp::Delete);
        e.insert('H');
        assert_eq!(e.text(), "Hélo");
        assert_eq!(e.cursor(), (0, 1));
    }

    #[test]
    fn newlines_and_pastes_make_one_draft() {
        let mut e = typed("one");
        e.edit(EditOp::Newline);
        e.insert('2');
        assert_eq!(e.text(), "one\n2");
        e.paste("\r\nthree\r\nfour\rfive\tsix\u{7}\n");
        assert_eq!(e.text(), "one\n2\nthree\nfour\nfive six");
        assert_eq!(e.lines().len(), 5);
        // Up walks the draft's lines before the history.
        e.up();
        assert_eq!(e.cursor().0, 3);
    }

    #[test]
    fn history_walks_back_and_returns_to_the_draft() {
        let mut e = typed("one");
        assert_eq!(e.take(), "one");
        "two".chars().for_each(|c| e.insert(c));
        e.take();
        "dra".chars().for_each(|c| e.insert(c));
        e.up();
        assert_eq!(e.text(), "two");
        e.up();
        e.up();
        assert_eq!(e.text(), "one");
        e.down();
        assert_eq!(e.text(), "two");
        e.down();
        assert_eq!(e.text(), "dra");
        assert_eq!(e.cursor(), (0, 3));
        // A sent draft is not undone back into the box.
        e.take();
        e.edit(EditOp::Undo);
        assert!(e.is_empty());
    }

    #[test]
    fn tab_completes_commands_first_and_nicks_anywhere_cycling() {
        let cmds = ["nick", "next", "peer", "quit"];
        let nicks = vec!["Ana".to_string(), "anatole".to_string(), "bob".to_string()];
        let mut e = typed("/ni");
        assert!(e.complete(&cmds, &nicks));
        assert_eq!(e.text(), "/nick");
        let mut e = typed("hi @an");
        assert!(e.complete(&cmds, &nicks));
        assert_eq!(e.text(), "hi @Ana");
        assert!(e.complete(&cmds, &nicks));
        assert_eq!(e.text(), "hi @anatole");
        assert!(e.complete(&cmds, &nicks));
        assert_eq!(e.text(), "hi @Ana");
        let mut e = typed("BO");
        assert!(e.complete(&cmds, &nicks));
        assert_eq!(e.text(), "bob");
        // A slash word later in the line is not a command.
        let mut e = typed("see /ni");
        assert!(!e.complete(&cmds, &nicks));
        let mut e = typed("zed");
        assert!(!e.complete(&cmds, &nicks));
        assert_eq!(e.text(), "zed");
    }
}
