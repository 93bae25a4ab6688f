//! The status bar.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::TuiApp;
use super::theme;

/// Draws the status bar in `area`.
pub fn render(app: &TuiApp, frame: &mut Frame, area: Rect) {
    let s = &app.status;
    let sep = || Span::styled(" │ ", theme::dim());
    let mdns = if s.mdns { "mDNS on" } else { "mDNS off" };
    let spans = vec![
        Span::styled(s.name.clone(), theme::author_style(s.node_id)),
        Span::styled(format!(" {}", s.node_id.short()), theme::dim()),
        sep(),
        Span::raw(format!("room {}", s.room)),
        sep(),
        Span::raw(s.listen.to_string()),
        sep(),
        Span::raw(format!("{} events", s.events)),
        sep(),
        Span::raw(format!("{} nodes", s.nodes)),
        sep(),
        Span::raw(theme::bytes(s.store_bytes)),
        sep(),
        Span::raw(mdns),
        sep(),
        Span::styled("? help", Style::new().fg(Color::Cyan)),
    ];
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
