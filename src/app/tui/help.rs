//! The help popup: every key and command.

use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::{layout, theme};

/// Every key, grouped by where it works: (keys, what they do).
pub const KEYS: &[(&str, &str)] = &[
    ("Everywhere", ""),
    ("Tab / Shift-Tab", "next / previous panel"),
    ("Esc", "close popup, cancel, back to input"),
    ("? or F1", "this help (? when the input is empty)"),
    ("PgUp / PgDn, wheel", "scroll the chat"),
    ("F2", "exchanges <-> events"),
    ("Ctrl-C", "quit"),
    ("Input", ""),
    ("Enter", "send the line"),
    ("←/→ Home/End", "move the cursor"),
    ("↑/↓", "input history"),
    ("/nick NAME", "set your name"),
    ("/add TEXT", "add a list item"),
    ("/peer HOST:PORT", "connect to a peer"),
    ("/help  /quit", "this help, leave"),
    ("List", ""),
    ("j/k ↑/↓", "select"),
    ("space", "check / uncheck"),
    ("a / e / d", "add / edit / remove"),
    ("u", "undo the last remove"),
    ("J / K", "move the item down / up"),
    ("Peers, Exchanges/Events", ""),
    ("j/k", "scroll"),
    ("x or v", "exchanges <-> events"),
    ("c", "vector clock"),
];

/// Draws the help popup over the screen.
pub fn render(frame: &mut Frame) {
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(keys, what)| {
            if what.is_empty() {
                Line::styled(
                    *keys,
                    ratatui::style::Style::new().fg(ratatui::style::Color::Cyan),
                )
            } else {
                Line::from(vec![
                    Span::raw(format!("  {keys:<20}")),
                    Span::styled(*what, theme::dim()),
                ])
            }
        })
        .collect();
    let h = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let area = layout::centered(frame.area(), 64, h);
    frame.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Keys (Esc closes) ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
