//! The input box: the draft (see `editor`), what Enter does in its title, the flash
//! message under it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

use super::app::{FLASH_MARGIN, Flash, Focus, InputMode, TuiApp};
use super::theme;

/// `text` cut to `room` columns, ending in "…" when cut (a session's message that long is
/// also in the chat, whole).
fn fit(text: &str, room: usize) -> String {
    if Span::raw(text).width() <= room {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let mut buf = [0u8; 4];
        let w = Span::raw(&*c.encode_utf8(&mut buf)).width();
        if used + w + 1 > room {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Draws the input box in `area`, with the flash message under it.
pub fn render(app: &TuiApp, frame: &mut Frame, area: Rect) {
    // While the chat is browsed, keys go there: the input shows it is not typing.
    let focused = app.focus == Focus::Input && app.browse.is_none();
    let lines = app.input().lines().len();
    let title = match app.mode {
        _ if app.browse.is_some() => "Browsing the chat (Esc goes back to typing)".to_string(),
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
        let room = usize::from(area.width.saturating_sub(FLASH_MARGIN));
        let text = fit(flash.text(), room);
        let line = match flash {
            Flash::Info(_) => Line::styled(format!(" {text} "), theme::dim()),
            Flash::Warning(_) => Line::styled(format!(" {text} "), theme::warning()),
            Flash::Error(_) => Line::styled(format!(" {text} "), theme::error()),
        };
        block = block.title_bottom(line);
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(app.input().widget(), inner);
}
