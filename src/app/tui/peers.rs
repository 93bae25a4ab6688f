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
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(theme::title(
            &format!("Peers {alive}/{}", app.peers.len()),
            focused,
        ));
    // The selected peer's last error, where a failing peer says why.
    if focused
        && let Some(err) = app
            .peers
            .get(app.peers_row)
            .and_then(|p| p.last_error.as_ref())
    {
        block = block.title_bottom(Line::styled(format!(" {err} "), theme::error()));
    }
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
    // Columns by importance; a narrow panel keeps the first ones that fit.
    let all = [
        ("peer", 10u16),
        ("seen", 7),
        ("rtt", 6),
        ("ok/fail", 7),
        ("rx", 5),
        ("address", 21),
    ];
    let mut used = 0u16;
    let shown = all
        .iter()
        .take_while(|(_, w)| {
            used += w + 1;
            used <= inner.width + 1
        })
        .count()
        .max(1);
    let rows = app
        .peers
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, p)| {
            let seen = p
                .last_seen
                .map_or_else(|| "never".to_string(), |t| super::format::ago(app.now, t));
            let rtt = p
                .rtt
                .map_or_else(|| "-".to_string(), super::format::duration);
            let mut name = Line::from(vec![
                theme::state_dot(p.state),
                Span::raw(" "),
                Span::styled(
                    app.peer_name(p.id, &p.name).to_string(),
                    theme::author_style(p.id),
                ),
            ]);
            // Away, beside the name (from the peer's notes; never stored).
            let away = app.availability(p.id).label();
            if !away.is_empty() {
                name.push_span(Span::styled(format!(" ({away})"), theme::dim()));
            }
            let mut failed = Span::raw(p.failed.to_string());
            if p.failed > 0 {
                failed = failed.style(theme::error());
            }
            let cells = vec![
                Cell::from(name),
                Cell::from(seen),
                Cell::from(rtt),
                Cell::from(Line::from(vec![Span::raw(format!("{}/", p.ok)), failed])),
                Cell::from(p.events_received.to_string()),
                Cell::from(p.addr.clone()),
            ];
            let row = Row::new(cells.into_iter().take(shown));
            if focused && i == app.peers_row {
                row.style(theme::selected())
            } else {
                row
            }
        });
    let header = Row::new(all.iter().take(shown).map(|(h, _)| *h)).style(theme::dim());
    let widths = all.iter().take(shown).enumerate().map(|(i, (_, w))| {
        if i == 0 {
            Constraint::Min(*w)
        } else {
            Constraint::Length(*w)
        }
    });
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    frame.render_widget(table, inner);
}
