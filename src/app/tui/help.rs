//! The help popup: every key and command.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::{layout, theme};

/// Every key, in two columns of groups: (keys, what they do); an empty "what" starts a
/// group. Two columns keep the popup inside an 80x24 terminal.
pub const KEYS: [&[(&str, &str)]; 2] = [
    &[
        ("Everywhere", ""),
        ("Tab / Shift-Tab", "next / previous panel"),
        ("Esc", "close, cancel, to input"),
        ("? or F1", "this help"),
        ("PgUp/PgDn, wheel", "scroll chat/list/log"),
        ("F2", "exchanges <-> events"),
        ("Ctrl-C", "quit"),
        ("Input", ""),
        ("Enter", "send the line"),
        ("<- -> Home End", "move the cursor"),
        ("Up / Down", "input history"),
        ("/nick NAME", "set your name"),
        ("/add TEXT", "add a list item"),
        ("/peer HOST:PORT", "connect to a peer"),
        ("/help  /quit", "this help, leave"),
    ],
    &[
        ("List", ""),
        ("j/k, Up/Down", "select"),
        ("space", "check / uncheck"),
        ("a / e / d", "add / edit / remove"),
        ("u", "undo the last remove"),
        ("J / K", "move down / up"),
        ("Peers, log", ""),
        ("j/k", "scroll"),
        ("x or v", "exchanges <-> events"),
        ("c", "vector clock"),
    ],
];

fn column(keys: &[(&'static str, &'static str)]) -> Vec<Line<'static>> {
    keys.iter()
        .map(|&(keys, what)| {
            if what.is_empty() {
                Line::styled(keys, Style::new().fg(Color::Cyan))
            } else {
                Line::from(vec![
                    Span::raw(format!(" {keys:<16} ")),
                    Span::styled(what, theme::dim()),
                ])
            }
        })
        .collect()
}

/// Draws the help popup over the screen.
pub fn render(frame: &mut Frame) {
    let rows = KEYS.iter().map(|c| c.len()).max().unwrap_or(0);
    let h = u16::try_from(rows + 2).unwrap_or(u16::MAX);
    let area = layout::centered(frame.area(), 80, h);
    frame.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Keys (Esc closes) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    frame.render_widget(Paragraph::new(column(KEYS[0])), left);
    frame.render_widget(Paragraph::new(column(KEYS[1])), right);
}
