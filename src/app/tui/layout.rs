//! The whole-screen render: each panel in its place (see `geometry`).

use ratatui::Frame;

use super::app::LogTab;
use super::app::{Popup, TuiApp};
use super::{chat, events, exchanges, help, input, list, peers, status, theme};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

/// Draws the whole screen. Pure: reads `app`, writes `frame`, awaits nothing.
pub fn render(app: &TuiApp, frame: &mut Frame) {
    let a = super::geometry::areas(frame.area(), app.focus, app.input().lines().len());
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
        Some(Popup::Help) => help::render(app, frame),
        Some(Popup::Clock) => events::render_clock(app, frame),
        None => {}
    }
    app.palette.apply(frame.buffer_mut());
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
    let focused = app.focus == super::app::Focus::Log;
    let mut spans = vec![
        if focused {
            Span::styled(" ▶ ", Style::new().fg(ratatui::style::Color::Cyan))
        } else {
            Span::raw(" ")
        },
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
