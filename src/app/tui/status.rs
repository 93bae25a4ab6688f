//! The status bar.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::TuiApp;
use super::theme;

/// Draws the status bar in `area`. Fields that do not fit are left out, least useful
/// first, so "? help" always shows.
pub fn render(app: &TuiApp, frame: &mut Frame, area: Rect) {
    let s = &app.status;
    let mdns = if s.mdns { "mDNS on" } else { "mDNS off" };
    // (priority: lower is dropped first, spans)
    let mut fields: Vec<(u8, Vec<Span>)> = vec![
        (
            9,
            vec![Span::styled(s.name.clone(), theme::author_style(s.node_id))],
        ),
        (2, vec![Span::styled(s.node_id.short(), theme::dim())]),
        (
            8,
            vec![Span::raw(if s.private {
                // A padlock: only members with the room secret connect.
                format!("\u{1F512} room {}", s.room)
            } else {
                format!("room {}", s.room)
            })],
        ),
        (6, vec![Span::raw(s.listen.to_string())]),
        (5, vec![Span::raw(format!("{} events", s.events))]),
        (4, vec![Span::raw(format!("{} nodes", s.nodes))]),
        (3, vec![Span::raw(super::format::bytes(s.store_bytes))]),
        (7, vec![Span::raw(mdns)]),
    ];
    if s.sending > 0 {
        // Own messages wait until a peer confirms this node's seq (after a lost tail).
        fields.insert(
            1,
            (
                9,
                vec![Span::styled(
                    format!("sending… {}", s.sending),
                    theme::warning(),
                )],
            ),
        );
    }
    fields.extend([(
        10,
        vec![Span::styled("? help", Style::new().fg(Color::Cyan))],
    )]);
    if let Some(p) = app.progress {
        // Said first and kept longest after "? help": the chat above is still filling.
        let text = format!("catching up: {} of {}", p.shown, p.held);
        fields.insert(
            0,
            (9, vec![Span::styled(text, Style::new().fg(Color::Yellow))]),
        );
    }
    if app.select_mode() {
        // Clicks and the wheel do nothing now: say why, and how to get them back.
        let text = "SELECT: mouse free to copy, F3 ends";
        fields.insert(
            0,
            (
                11,
                vec![Span::styled(
                    text,
                    Style::new().add_modifier(Modifier::REVERSED),
                )],
            ),
        );
    }
    if !app.attention().bell() {
        fields.push((1, vec![Span::styled("bell off", theme::dim())]));
    }
    const SEP: &str = " │ ";
    let width = |fields: &[(u8, Vec<Span>)]| -> usize {
        fields
            .iter()
            .map(|(_, spans)| spans.iter().map(Span::width).sum::<usize>() + SEP.len() - 2)
            .sum::<usize>()
    };
    while width(&fields) > usize::from(area.width) && fields.len() > 1 {
        let lowest = fields
            .iter()
            .enumerate()
            .min_by_key(|(_, (p, _))| *p)
            .map_or(0, |(i, _)| i);
        fields.remove(lowest);
    }
    let mut spans = Vec::new();
    for (i, (_, field)) in fields.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(SEP, theme::dim()));
        }
        spans.extend(field);
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
