//! The chat history: only the rows on screen are built, walking the chat from its end, so
//! a history of any length draws in the same time.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::{Focus, TuiApp};
use super::theme;
use crate::app::ChatLine;

fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut buf)).width()
}

fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Splits `text` into rows: the first `first` columns wide, the others `rest` wide;
/// breaks at spaces where it can, mid-word where a word is longer than a row, and at
/// every newline.
pub(crate) fn wrap(text: &str, first: usize, rest: usize) -> Vec<&str> {
    let mut rows = Vec::new();
    for para in text.split('\n') {
        let mut start = 0;
        loop {
            let avail = if rows.is_empty() { first } else { rest }.max(1);
            let tail = &para[start..];
            let mut used = 0;
            let mut end = tail.len();
            let mut last_space = None;
            for (i, c) in tail.char_indices() {
                let w = char_width(c);
                if used + w > avail {
                    end = i;
                    break;
                }
                if c == ' ' {
                    last_space = Some(i);
                }
                used += w;
            }
            if end == tail.len() {
                rows.push(tail);
                break;
            }
            // Break after the last space in the row; a row that is one long word breaks
            // mid-word (and always takes at least one character, so the loop ends).
            let cut = match last_space {
                Some(s) if s > 0 => s,
                _ => end.max(tail.chars().next().map_or(1, char::len_utf8)),
            };
            rows.push(&tail[..cut]);
            start += cut;
            start += para[start..].len() - para[start..].trim_start_matches(' ').len();
            if start >= para.len() {
                break;
            }
        }
    }
    rows
}

/// Rows a message by `name`, written at `created_ms`, takes at `width` columns.
pub(crate) fn text_height(
    name: &str,
    text: &str,
    created_ms: u64,
    width: usize,
    today: u64,
) -> usize {
    let indent = theme::chat_time(created_ms, today).len() + 1;
    let first = width.saturating_sub(indent + str_width(name) + 2);
    wrap(text, first, width.saturating_sub(indent)).len()
}

/// Rows `line` takes at `width` columns.
pub(crate) fn message_height(line: &ChatLine<'_>, width: usize, today: u64) -> usize {
    text_height(&line.author, line.text, line.created_at_ms, width, today)
}

/// The rows of one message: `HH:MM name: text`, continuation rows indented under the text.
pub(crate) fn message_lines(line: &ChatLine<'_>, width: usize, today: u64) -> Vec<Line<'static>> {
    let time = theme::chat_time(line.created_at_ms, today);
    let indent = time.len() + 1;
    let first = width.saturating_sub(indent + str_width(&line.author) + 2);
    let rows = wrap(line.text, first, width.saturating_sub(indent));
    let mut out = Vec::with_capacity(rows.len());
    let mut time = Some(time);
    for row in rows {
        match time.take() {
            Some(t) => out.push(Line::from(vec![
                Span::styled(format!("{t} "), theme::dim()),
                Span::styled(line.author.to_string(), theme::author_style(line.origin)),
                Span::raw(": "),
                Span::raw(row.to_string()),
            ])),
            None => out.push(Line::from(vec![
                Span::raw(" ".repeat(indent)),
                Span::raw(row.to_string()),
            ])),
        }
    }
    out
}

/// What an empty chat says, so a first start is never a blank screen.
fn empty_text(app: &TuiApp) -> Vec<Line<'static>> {
    let s = &app.status;
    let mut lines = Vec::new();
    if app.peers.is_empty() {
        if s.mdns {
            lines.push(Line::from(format!(
                "Looking for peers on this LAN via mDNS, room `{}`…",
                s.room
            )));
        } else {
            lines.push(Line::from("mDNS is off: add a peer with /peer HOST:PORT"));
        }
        lines.push(Line::from(""));
        lines.push(Line::from("To get company, start gossip-chat:"));
        lines.push(Line::from(format!(
            " • on another laptop, --room {}",
            s.room
        )));
        lines.push(Line::from(" • or a second copy here, --profile NAME"));
        lines.push(Line::from(" • or try gossip-chat --demo"));
        lines.push(Line::from(""));
        let reach = if s.listen.ip().is_unspecified() {
            format!("/peer THIS-LAPTOP-IP:{}", s.listen.port())
        } else {
            format!("/peer {}", s.listen)
        };
        lines.push(Line::from(format!("Others can reach you with {reach}")));
    } else {
        lines.push(Line::from(
            "No messages yet: type one below and press Enter.",
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "Tab moves between panels, ? shows every key, /nick NAME sets your name.",
        theme::dim(),
    ));
    lines
}

/// Draws the chat history in `area`.
pub fn render(app: &TuiApp, frame: &mut Frame, area: Rect) {
    let title = if app.chat_scroll > 0 {
        format!(" Chat ({} rows back, PgDn) ", app.chat_scroll)
    } else {
        format!(" Chat ({}) ", app.model.chat().len())
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(app.focus == Focus::Input))
        .title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let height = usize::from(inner.height);
    if app.model.chat().len() == 0 {
        let p = Paragraph::new(empty_text(app)).wrap(Wrap { trim: false });
        frame.render_widget(p, inner);
        return;
    }
    // Rows from the bottom up, until the ones on screen are covered.
    let need = app.chat_scroll + height;
    let mut rows: Vec<Line<'static>> = Vec::with_capacity(need + 8);
    let today = theme::day_of(app.now);
    for line in app.model.chat().rev() {
        let mut lines = message_lines(&line, width, today);
        while let Some(l) = lines.pop() {
            rows.push(l);
        }
        if rows.len() >= need {
            break;
        }
    }
    let start = app.chat_scroll.min(rows.len().saturating_sub(height));
    let end = (start + height).min(rows.len());
    let visible: Vec<Line<'static>> = rows.drain(start..end).rev().collect();
    frame.render_widget(Paragraph::new(visible), inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_newlines_and_long_words() {
        assert_eq!(wrap("hello world", 20, 20), vec!["hello world"]);
        assert_eq!(wrap("hello world", 8, 8), vec!["hello", "world"]);
        assert_eq!(wrap("abcdefghij", 4, 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\nb", 10, 10), vec!["a", "b"]);
        assert_eq!(wrap("ab cd", 0, 0), vec!["a", "b", "c", "d"]);
        // Wide characters take two columns.
        assert_eq!(wrap("日本語", 4, 4), vec!["日本", "語"]);
    }
}
