//! Where each panel goes for a terminal size, and the whole-screen render.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

use super::app::LogTab;
use super::app::{Focus, Popup, TuiApp};
use super::{chat, events, exchanges, help, input, list, peers, status, theme};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

/// Below this width the panels stack: chat on the left, list over peers on the right, the
/// input under both, and the log takes the screen while it has focus.
pub const WIDE_MIN_WIDTH: u16 = 100;

/// The input box's height (one line and its borders).
const INPUT_HEIGHT: u16 = 3;

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

/// The panels' places in `area` when `focus` has focus.
pub fn areas(area: Rect, focus: Focus) -> Areas {
    let [main, status] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    if area.width >= WIDE_MIN_WIDTH {
        let [top, log] =
            Layout::vertical([Constraint::Min(0), Constraint::Percentage(34)]).areas(main);
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);
        let [chat, input] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(INPUT_HEIGHT)]).areas(left);
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
            Layout::vertical([Constraint::Min(0), Constraint::Length(INPUT_HEIGHT)]).areas(main);
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

/// Draws the whole screen. Pure: reads `app`, writes `frame`, awaits nothing.
pub fn render(app: &TuiApp, frame: &mut Frame) {
    let a = areas(frame.area(), app.focus);
    if !a.chat.is_empty() {
        chat::render(app, frame, a.chat);
        input::render(app, frame, a.input);
    }
    if let Some(r) = a.list {
        list::render(app, frame, r);
    }
    if let Some(r) = a.peers {
        peers::render(app, frame, r);
    }
    if let Some(r) = a.log {
        match app.log_tab {
            LogTab::Exchanges => exchanges::render(app, frame, r),
            LogTab::Events => events::render(app, frame, r),
        }
    }
    status::render(app, frame, a.status);
    match app.popup {
        Some(Popup::Help) => help::render(frame),
        Some(Popup::Clock) => events::render_clock(app, frame),
        None => {}
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

/// The log panel's title: both tabs, the shown one highlighted, and `extra` after them.
pub fn log_title(app: &TuiApp, extra: String) -> Line<'static> {
    let tab = |name: &'static str, on: bool| {
        if on {
            Span::styled(
                name,
                Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            )
        } else {
            Span::styled(name, theme::dim())
        }
    };
    let mut spans = vec![
        Span::raw(" "),
        tab("Exchanges", app.log_tab == LogTab::Exchanges),
        Span::raw(" | "),
        tab("Events", app.log_tab == LogTab::Events),
        Span::styled(" (x) ", theme::dim()),
    ];
    if !extra.is_empty() {
        spans.push(Span::raw(extra));
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}
