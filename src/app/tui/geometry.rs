//! Where each panel goes for a terminal size. A leaf module: rectangles in, rectangles out.

use ratatui::layout::{Constraint, Layout, Position, Rect};

use super::action::Focus;

/// Below this width the panels stack: chat on the left, list over peers on the right, the
/// input under both, and the log takes the screen while it has focus.
pub const WIDE_MIN_WIDTH: u16 = 100;

/// The most rows of a draft the input box shows (more scroll inside it).
pub const MAX_INPUT_ROWS: u16 = 6;

/// The rectangles of the panels; `None` for a panel not shown at this size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// Chat history.
    pub chat: Rect,
    /// The input line.
    pub input: Rect,
    /// The shared list.
    pub list: Option<Rect>,
    /// The peers.
    pub peers: Option<Rect>,
    /// Exchanges / events.
    pub log: Option<Rect>,
    /// The status bar.
    pub status: Rect,
}

/// The panels' places in `area` when `focus` has focus and the draft has `draft_rows`
/// lines (the input box grows with them, up to [`MAX_INPUT_ROWS`]).
pub fn areas(area: Rect, focus: Focus, draft_rows: usize) -> Areas {
    let rows = u16::try_from(draft_rows)
        .unwrap_or(u16::MAX)
        .clamp(1, MAX_INPUT_ROWS);
    let input_height = rows + 2;
    let [main, status] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    if area.width >= WIDE_MIN_WIDTH {
        let [top, log] =
            Layout::vertical([Constraint::Min(0), Constraint::Percentage(34)]).areas(main);
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);
        let [chat, input] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(input_height)]).areas(left);
        let [list, peers] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(right);
        Areas {
            chat,
            input,
            list: Some(list),
            peers: Some(peers),
            log: Some(log),
            status,
        }
    } else {
        if focus == Focus::Log {
            // The log needs the width: it takes the screen until focus moves on.
            return Areas {
                chat: Rect::default(),
                input: Rect::default(),
                list: None,
                peers: None,
                log: Some(main),
                status,
            };
        }
        // The input spans the width, so long lines and error messages stay readable.
        let [top, input] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(input_height)]).areas(main);
        let [chat, right] =
            Layout::horizontal([Constraint::Percentage(56), Constraint::Percentage(44)]).areas(top);
        let [list, peers] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(right);
        Areas {
            chat,
            input,
            list: Some(list),
            peers: Some(peers),
            log: None,
            status,
        }
    }
}

/// A rectangle of at most `w` x `h` in the middle of `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The panel under a cell, for a click.
pub fn panel_at(a: &Areas, column: u16, row: u16) -> Option<Focus> {
    let at = Position::new(column, row);
    let under = |r: Option<Rect>| r.is_some_and(|r| r.contains(at));
    if under(Some(a.chat)) || under(Some(a.input)) {
        Some(Focus::Input)
    } else if under(a.list) {
        Some(Focus::List)
    } else if under(a.peers) {
        Some(Focus::Peers)
    } else if under(a.log) {
        Some(Focus::Log)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_click_finds_its_panel_and_a_long_draft_grows_the_input() {
        let a = areas(Rect::new(0, 0, 120, 40), Focus::Input, 1);
        assert_eq!(a.input.height, 3);
        assert_eq!(panel_at(&a, a.chat.x + 1, a.chat.y + 1), Some(Focus::Input));
        let peers = a.peers.unwrap_or_default();
        assert_eq!(panel_at(&a, peers.x + 1, peers.y + 1), Some(Focus::Peers));
        assert_eq!(panel_at(&a, 0, 39), None);
        let tall = areas(Rect::new(0, 0, 120, 40), Focus::Input, 50);
        assert_eq!(tall.input.height, MAX_INPUT_ROWS + 2);
    }
}
