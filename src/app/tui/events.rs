//! The raw event stream (created here and received), newest first, and the vector clock.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};

use super::app::{Focus, TuiApp};
use super::{layout, theme};
use crate::app::AppOp;
use crate::protocol::NodeId;

/// The name shown for a node: its nickname, else the peers panel's name, else its short id.
fn name_of(app: &TuiApp, id: NodeId) -> String {
    match (app.model.nick(id), app.peers.iter().find(|p| p.id == id)) {
        (Some(nick), _) => nick.to_string(),
        (None, Some(p)) => p.name.clone(),
        (None, None) => id.short(),
    }
}

/// The clock as "ann 17 · bob 4", our own origin first.
fn clock_summary(app: &TuiApp) -> String {
    let me = app.status.node_id;
    let mut parts: Vec<(bool, String, u64)> = app
        .status
        .clock
        .iter()
        .map(|(id, seq)| (id != me, app.model.display_name(id).into_owned(), seq))
        .collect();
    parts.sort();
    let items: Vec<String> = parts
        .into_iter()
        .map(|(_, name, seq)| format!("{name} {seq}"))
        .collect();
    format!("clock: {} (c)", items.join(" · "))
}

/// Draws the events in `area`.
pub fn render(app: &TuiApp, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Focus::Log;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(layout::log_title(app, clock_summary(app)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.events.is_empty() {
        let p = Paragraph::new(Line::styled(
            "no event since the screen opened",
            theme::dim(),
        ));
        frame.render_widget(p, inner);
        return;
    }
    let height = usize::from(inner.height.saturating_sub(1));
    let rows = app
        .events
        .iter()
        .rev()
        .skip(app.log_scroll)
        .take(height)
        .map(|row| {
            let e = &row.event;
            let dropped = app.equivocated.contains(&e.id);
            let kind = if dropped {
                Cell::from(Line::styled("EQUIVOCATED", theme::warning()))
            } else {
                Cell::from(AppOp::decode(&e.payload).map_or("?", |op| op.kind()))
            };
            let from = match row.from {
                Some(id) => Cell::from(Line::styled(name_of(app, id), theme::author_style(id))),
                None => Cell::from(Line::styled("local", theme::dim())),
            };
            Row::new(vec![
                Cell::from(Line::styled(app.time.hhmmss(row.at), theme::dim())),
                Cell::from(Line::styled(
                    app.model.display_name(e.origin).into_owned(),
                    theme::author_style(e.origin),
                )),
                Cell::from(format!("{}:{}", e.origin.short(), e.seq)),
                Cell::from(super::format::hlc_label(e.hlc)),
                kind,
                from,
                Cell::from(super::format::age_ms(row.age_ms)),
            ])
        });
    let header =
        Row::new(["time", "origin", "id:seq", "hlc", "op", "from", "age"]).style(theme::dim());
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(14),
            Constraint::Length(12),
            Constraint::Length(11),
            Constraint::Length(10),
            Constraint::Min(6),
        ],
    )
    .header(header)
    .column_spacing(1);
    frame.render_widget(table, inner);
}

/// The vector clock popup: every origin, its name and the seq held.
pub fn render_clock(app: &TuiApp, frame: &mut Frame) {
    let me = app.status.node_id;
    let mut lines: Vec<Line> = app
        .status
        .clock
        .iter()
        .map(|(id, seq)| {
            let mine = if id == me { " (this laptop)" } else { "" };
            Line::from(vec![
                Span::styled(format!("{:<8}", id.short()), theme::dim()),
                Span::raw(" "),
                Span::styled(
                    app.model.display_name(id).into_owned(),
                    theme::author_style(id),
                ),
                Span::raw(format!("  {seq}{mine}")),
            ])
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled("no events yet", theme::dim()));
    }
    let h = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let area = super::geometry::centered(frame.area(), 60, h);
    frame.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Vector clock: origin, seq held (Esc) ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
