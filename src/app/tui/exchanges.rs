//! The exchanges log: one row per exchange with a peer, newest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::app::{Focus, TuiApp};
use super::{layout, theme};

/// Draws the exchanges in `area`.
pub fn render(app: &TuiApp, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Focus::Log;
    let failed = app.exchanges.iter().filter(|x| !x.result.success).count();
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(layout::log_title(
            app,
            format!("{} shown, {failed} failed", app.exchanges.len()),
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.exchanges.is_empty() {
        let p = Paragraph::new(Line::styled("no exchange yet", theme::dim()));
        frame.render_widget(p, inner);
        return;
    }
    let height = usize::from(inner.height.saturating_sub(1));
    let rows = app
        .exchanges
        .iter()
        .rev()
        .skip(app.log_scroll)
        .take(height)
        .map(|x| {
            let r = &x.result;
            let dir = if x.outbound() { "out →" } else { "in  ←" };
            let outcome = match (&r.error, r.success) {
                (Some(e), _) => Cell::from(Line::styled(e.clone(), theme::error())),
                (None, true) => Cell::from("ok"),
                (None, false) => Cell::from(Line::styled("failed", theme::error())),
            };
            let idle = r.success && r.events_received == 0 && r.events_sent == 0;
            let row = Row::new(vec![
                Cell::from(Line::styled(app.time.hhmmss(x.at), theme::dim())),
                Cell::from(Line::styled(
                    app.peer_name(x.peer, &x.peer_name).to_string(),
                    theme::author_style(x.peer),
                )),
                Cell::from(dir),
                Cell::from(format!("+{} -{}", r.events_received, r.events_sent)),
                Cell::from(super::format::bytes(r.bytes as u64)),
                Cell::from(super::format::duration(r.duration)),
                outcome,
            ]);
            // Exchanges that moved nothing are the steady hum: keep them quiet so the
            // ones that carried events stand out.
            if idle { row.style(theme::dim()) } else { row }
        });
    let header =
        Row::new(["time", "peer", "dir", "in/out", "bytes", "took", "result"]).style(theme::dim());
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Length(5),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Min(6),
        ],
    )
    .header(header)
    .column_spacing(1);
    frame.render_widget(table, inner);
}
