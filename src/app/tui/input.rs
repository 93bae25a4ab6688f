//! The input box: the draft (see `editor`), what Enter does in its title, the flash
//! message under it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders};

use super::app::{Flash, Focus, InputMode, TuiApp};
use super::theme;

/// Draws the input box in `area`, with the flash message under it.
pub fn render(app: &TuiApp, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Focus::Input;
    let lines = app.input().lines().len();
    let title = match app.mode {
        InputMode::Chat if lines > 1 => {
            format!("Message, {lines} lines (Enter sends, Alt-Enter new line)")
        }
        InputMode::Chat => "Message (Enter sends, /help)".to_string(),
        InputMode::AddItem => "New list item (Enter adds, Esc cancels)".to_string(),
        InputMode::EditItem(_) => "Edit item (Enter saves, Esc cancels)".to_string(),
    };
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(theme::title(&title, focused));
    if let Some(flash) = app.flash() {
        let line = match flash {
            Flash::Info(m) => Line::styled(format!(" {m} "), theme::dim()),
            Flash::Warning(m) => Line::styled(format!(" {m} "), theme::warning()),
            Flash::Error(m) => Line::styled(format!(" {m} "), theme::error()),
        };
        block = block.title_bottom(line);
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(app.input().widget(), inner);
}
