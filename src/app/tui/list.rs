//! The shared list panel.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::{Focus, TuiApp};
use super::theme;

/// Draws the list in `area`; only the rows on screen are built.
pub fn render(app: &TuiApp, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Focus::List;
    let len = app.model.list_len();
    let done = app.model.list().filter(|i| i.done).count();
    let hint = if focused { " space a e d u J/K " } else { "" };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(theme::title(&format!("List {done}/{len}"), focused))
        .title_bottom(Line::styled(hint, theme::dim()).right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if len == 0 {
        let p = Paragraph::new(vec![
            Line::styled("The list is empty.", theme::dim()),
            Line::styled("Tab here, a adds; or /add TEXT", theme::dim()),
        ]);
        frame.render_widget(p, inner);
        return;
    }
    let height = usize::from(inner.height);
    let selected = app.selected_row();
    // Keep the selection on screen: scroll just enough to show it at the bottom.
    let offset = match selected {
        Some(s) if s >= height => s + 1 - height,
        _ => 0,
    };
    let rows: Vec<Line> = app
        .model
        .list()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, item)| {
            let mark = if item.done { "[x] " } else { "[ ] " };
            let mut text_style = ratatui::style::Style::new();
            if item.done {
                text_style = text_style
                    .add_modifier(Modifier::CROSSED_OUT)
                    .fg(ratatui::style::Color::DarkGray);
            }
            let text = item.text.replace('\n', " ");
            let line = Line::from(vec![Span::raw(mark), Span::styled(text, text_style)]);
            if focused && Some(i) == selected {
                line.style(theme::selected())
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(rows), inner);
}
