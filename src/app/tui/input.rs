//! The input line: a one-line editor with a cursor and a history of sent lines.

/// How many sent lines the history keeps.
const HISTORY_LEN: usize = 100;

/// A line being typed. The cursor counts characters, not bytes, so editing never splits a
/// UTF-8 sequence.
#[derive(Debug, Default, Clone)]
pub struct LineEditor {
    text: String,
    cursor: usize,
    history: Vec<String>,
    /// Where history browsing is (`None`: editing a fresh line).
    browsing: Option<usize>,
    /// The fresh line put aside while browsing.
    draft: String,
}

impl LineEditor {
    /// The text typed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor, in characters from the start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Whether nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    fn len_chars(&self) -> usize {
        self.text.chars().count()
    }

    /// Inserts a character at the cursor.
    pub fn insert(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.len_chars() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    /// Moves the cursor one character left.
    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    /// Moves the cursor one character right.
    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.len_chars());
    }

    /// Moves the cursor to the start.
    pub fn home(&mut self) {
        self.cursor = 0;
    }

    /// Moves the cursor to the end.
    pub fn end(&mut self) {
        self.cursor = self.len_chars();
    }

    /// Replaces the line (for editing an item), cursor at the end.
    pub fn set(&mut self, text: &str) {
        self.text = text.to_string();
        self.browsing = None;
        self.end();
    }

    /// Empties the line without recording it.
    pub fn clear(&mut self) {
        self.set("");
    }

    /// Takes the line and records it in the history.
    pub fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY_LEN {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    /// Shows the previous line of the history.
    pub fn history_prev(&mut self) {
        let i = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = std::mem::take(&mut self.text);
                self.history.len() - 1
            }
            Some(i) => i.saturating_sub(1),
        };
        self.browsing = Some(i);
        self.text = self.history.get(i).cloned().unwrap_or_default();
        self.end();
    }

    /// Shows the next line of the history, or the draft after the last one.
    pub fn history_next(&mut self) {
        let Some(i) = self.browsing else { return };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.text = self.history[i + 1].clone();
        } else {
            self.browsing = None;
            self.text = std::mem::take(&mut self.draft);
        }
        self.end();
    }
}

/// Draws the input box in `area`, with the flash message under it and the cursor in it.
pub fn render(app: &super::TuiApp, frame: &mut ratatui::Frame, area: ratatui::layout::Rect) {
    use super::app::{Flash, Focus, InputMode};
    use super::theme;
    use ratatui::text::Line;
    use ratatui::widgets::{Block, Borders, Paragraph};

    let focused = app.focus == Focus::Input;
    let title = match app.mode {
        InputMode::Chat => " Message (Enter sends, /help) ",
        InputMode::AddItem => " New list item (Enter adds, Esc cancels) ",
        InputMode::EditItem(_) => " Edit item (Enter saves, Esc cancels) ",
    };
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(title);
    if let Some(flash) = &app.flash {
        let line = match flash {
            Flash::Info(m) => Line::styled(format!(" {m} "), theme::dim()),
            Flash::Warning(m) => Line::styled(format!(" {m} "), theme::warning()),
            Flash::Error(m) => Line::styled(format!(" {m} "), theme::error()),
        };
        block = block.title_bottom(line);
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Scroll sideways so the cursor stays visible in a line longer than the box.
    let width = usize::from(inner.width.max(1));
    let cursor = app.input.cursor();
    let skip = (cursor + 1).saturating_sub(width);
    let shown: String = app.input.text().chars().skip(skip).take(width).collect();
    frame.render_widget(Paragraph::new(shown), inner);
    if focused && app.popup.is_none() {
        let x = u16::try_from(cursor - skip).unwrap_or(0);
        frame.set_cursor_position((inner.x + x, inner.y));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> LineEditor {
        let mut e = LineEditor::default();
        s.chars().for_each(|c| e.insert(c));
        e
    }

    #[test]
    fn editing_moves_by_characters() {
        let mut e = typed("héllo");
        e.left();
        e.left();
        e.backspace();
        assert_eq!(e.text(), "hélo");
        e.home();
        e.delete();
        e.insert('H');
        assert_eq!(e.text(), "Hélo");
        assert_eq!(e.cursor(), 1);
        e.end();
        e.right();
        e.insert('!');
        assert_eq!(e.text(), "Hélo!");
        e.home();
        e.backspace();
        assert_eq!(e.text(), "Hélo!");
    }

    #[test]
    fn history_walks_back_and_returns_to_the_draft() {
        let mut e = typed("one");
        assert_eq!(e.take(), "one");
        "two".chars().for_each(|c| e.insert(c));
        e.take();
        "dra".chars().for_each(|c| e.insert(c));
        e.history_prev();
        assert_eq!(e.text(), "two");
        e.history_prev();
        e.history_prev();
        assert_eq!(e.text(), "one");
        e.history_next();
        assert_eq!(e.text(), "two");
        e.history_next();
        assert_eq!(e.text(), "dra");
        assert_eq!(e.cursor(), 3);
    }
}
