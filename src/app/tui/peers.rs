//! The peers panel.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::app::{Focus, TuiApp};
use super::theme;
use crate::node::PeerState;

/// Draws the peers in `area`.
pub fn render(app: &TuiApp, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Focus::Peers;
    let alive = app
        .peers
        .iter()
        .filter(|p| p.state == PeerState::Alive)
        .count();
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(format!(" Peers {alive}/{} ", app.peers.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.peers.is_empty() {
        let hint = if app.status.mdns {
            "none yet (mDNS is looking)"
        } else {
            "none: /peer HOST:PORT"
        };
        frame.render_widget(Paragraph::new(Line::styled(hint, theme::dim())), inner);
        return;
    }
    let height = usize::from(inner.height.saturating_sub(1));
    let offset = (app.peers_row + 1).saturating_sub(height);
    let rows = app
        .peers
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, p)| {
            let seen = p
                .last_seen
                .map_or_else(|| "never".to_string(), |t| theme::ago(app.now, t));
            let rtt = p.rtt.map_or_else(|| "-".to_string(), theme::duration);
            let name = Line::from(vec![
                theme::state_dot(p.state),
                Span::raw(" "),
                Span::styled(p.name.clone(), theme::author_style(p.id)),
            ]);
            let mut failed = Span::raw(p.failed.to_string());
            if p.failed > 0 {
                failed = failed.style(theme::error());
            }
            let row = Row::new(vec![
                Cell::from(name),
                Cell::from(seen),
                Cell::from(rtt),
                Cell::from(Line::from(vec![Span::raw(format!("{}/", p.ok)), failed])),
                Cell::from(p.events_received.to_string()),
                Cell::from(p.addr.clone()),
            ]);
            if focused && i == app.peers_row {
                row.style(theme::selected())
            } else {
                row
            }
        });
    let header = Row::new(["peer", "seen", "rtt", "ok/fail", "rx", "address"]).style(theme::dim());
    let table = Table::new(
        rows,
        [
            Constraint::Min(10),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(21),
        ],
    )
    .header(header)
    .column_spacing(1);
    frame.render_widget(table, inner);
}
