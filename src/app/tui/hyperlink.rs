//! OSC 8 hyperlinks: a URL in the chat is written so that terminals that know them make it
//! clickable (the others ignore the sequence and show the text as before).
//!
//! ratatui has no notion of a link. As its own hyperlink example does, the sequence goes
//! into the cells' symbols once the text is drawn: each cell of the URL's text becomes
//! `ESC ] 8 ; ; URL ESC \ c ESC ] 8 ; ; ESC \`, so any cell the diff redraws alone is still
//! a link, and adjacent cells with the same URL read as one link. The width ratatui would
//! compute from such a symbol counts the URL's characters, so each cell's width is forced to
//! that of the character it shows: the diff and the cursor moves stay those of plain text.

use std::num::NonZeroU16;

use ratatui::buffer::{Buffer, CellDiffOption, CellWidth};

/// Ends a link (an OSC 8 with no URL), written after each linked cell's character.
const CLOSE: &str = "\x1b]8;;\x1b\\";

/// Whether the terminal named by `TERM` is sent hyperlinks. Terminals ignore an OSC they do
/// not know, except the Linux console, which prints part of it; a dumb one never gets the
/// screen at all.
pub(crate) fn terminal_supports(term: Option<&str>) -> bool {
    !matches!(term, Some("dumb" | "linux"))
}

/// Whether `url` can be written inside the escape sequence: printable ASCII only (no space,
/// no control character that could end the sequence early or start another; the model
/// already refuses control characters in messages, this does not rely on it). Other URLs
/// are shown, just not linked.
fn linkable(url: &str) -> bool {
    !url.is_empty() && url.bytes().all(|b| b.is_ascii_graphic())
}

/// Links the cells of row `y` from column `x` (and before `end`) that show `url`, `width`
/// columns of text; does nothing for a URL that cannot be linked.
pub(crate) fn link(buf: &mut Buffer, x: u16, y: u16, end: u16, url: &str, width: usize) {
    if !linkable(url) {
        return;
    }
    let open = format!("\x1b]8;;{url}\x1b\\");
    let mut col = x;
    let mut done = 0usize;
    while done < width && col < end {
        let Some(cell) = buf.cell_mut((col, y)) else {
            return;
        };
        // A wide character's trailing cell is skipped with it.
        let w = cell.cell_width().max(1);
        let symbol = format!("{open}{}{CLOSE}", cell.symbol());
        cell.set_symbol(&symbol);
        if let Some(w) = NonZeroU16::new(w) {
            cell.set_diff_option(CellDiffOption::ForcedWidth(w));
        }
        col = col.saturating_add(w);
        done += usize::from(w);
    }
}

/// A cell's symbol without the link around it (for tests and screen dumps).
#[cfg(test)]
pub(crate) fn unlinked(symbol: &str) -> (&str, Option<&str>) {
    let Some(rest) = symbol.strip_prefix("\x1b]8;;") else {
        return (symbol, None);
    };
    let Some((url, rest)) = rest.split_once("\x1b\\") else {
        return (symbol, None);
    };
    match rest.strip_suffix(CLOSE) {
        Some(text) => (text, Some(url)),
        None => (symbol, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;

    #[test]
    fn each_cell_of_the_url_is_linked_with_the_width_of_its_text() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 20, 1));
        buf.set_string(0, 0, "go https://e.io now", ratatui::style::Style::new());
        let before = buf.clone();
        link(&mut buf, 3, 0, 20, "https://e.io", 12);
        for x in 0..20u16 {
            let (cell, was) = (&buf[(x, 0)], &before[(x, 0)]);
            let (text, url) = unlinked(cell.symbol());
            assert_eq!(text, was.symbol(), "column {x}");
            if (3..15).contains(&x) {
                assert_eq!(url, Some("https://e.io"), "column {x}");
                assert!(cell.symbol().starts_with("\x1b]8;;https://e.io\x1b\\"));
                assert!(cell.symbol().ends_with(CLOSE));
                assert_eq!(cell.cell_width(), 1, "column {x}");
            } else {
                assert_eq!(url, None, "column {x}");
                assert_eq!(cell, was, "column {x}");
            }
        }
    }

    #[test]
    fn a_clipped_url_links_only_what_is_on_screen_and_odd_ones_not_at_all() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 8, 1));
        buf.set_string(0, 0, "https://example.com", ratatui::style::Style::new());
        link(&mut buf, 0, 0, 8, "https://example.com", 19);
        assert!((0..8u16).all(|x| unlinked(buf[(x, 0)].symbol()).1.is_some()));
        let mut buf = Buffer::empty(Rect::new(0, 0, 12, 1));
        buf.set_string(0, 0, "https://é.io", ratatui::style::Style::new());
        let before = buf.clone();
        link(&mut buf, 0, 0, 12, "https://é.io", 12);
        link(&mut buf, 0, 0, 12, "https://x\x1b.io", 12);
        assert_eq!(buf, before);
    }

    #[test]
    fn the_linux_console_and_dumb_terminals_get_no_links() {
        assert!(terminal_supports(Some("xterm-256color")));
        assert!(terminal_supports(Some("tmux-256color")));
        assert!(terminal_supports(None));
        assert!(!terminal_supports(Some("linux")));
        assert!(!terminal_supports(Some("dumb")));
    }
}
