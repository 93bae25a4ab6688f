//! The help popup, generated from the key map ([`KEYMAP`]) and the command table, so it
//! always says what the keys do. It takes the screen it has: as many columns as fit, and
//! j/k to scroll what does not.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::app::{TuiApp, commands};
use super::keymap::{KEYMAP, Scope, keys_label};
use super::{geometry, theme};

/// One row of help: a group heading, or keys and what they do.
enum Row {
    Heading(&'static str),
    Entry(String, &'static str),
}

/// The keys column's width; longer key lists take a row of their own.
const KEYS_WIDTH: usize = 15;
/// The text column's width (the key map's texts are written to fit).
const TEXT_WIDTH: usize = 21;

/// One entry: keys longer than their column get a row of their own, and a text longer
/// than its column goes on over the next rows.
fn entry(out: &mut Vec<Row>, keys: String, what: &'static str) {
    let mut texts = super::chat::wrap(what, TEXT_WIDTH, TEXT_WIDTH).into_iter();
    if keys.chars().count() > KEYS_WIDTH {
        out.push(Row::Entry(keys, ""));
        out.push(Row::Entry(String::new(), texts.next().unwrap_or("")));
    } else {
        out.push(Row::Entry(keys, texts.next().unwrap_or("")));
    }
    out.extend(texts.map(|t| Row::Entry(String::new(), t)));
}

fn rows() -> Vec<Row> {
    let mut out = Vec::new();
    for scope in Scope::ALL {
        out.push(Row::Heading(scope.title()));
        for b in KEYMAP.iter().filter(|b| b.scope == scope) {
            entry(&mut out, keys_label(b), b.help);
        }
    }
    out.push(Row::Heading("Commands (type in the input)"));
    for (name, args, what) in commands() {
        let usage = if args.is_empty() {
            format!("/{name}")
        } else {
            format!("/{name} {args}")
        };
        entry(&mut out, usage, what);
    }
    out
}

/// How the popup lays out in `screen`: its area, columns, rows per column, rows in all.
struct Plan {
    area: Rect,
    columns: usize,
    per_column: usize,
    total: usize,
}

fn plan(screen: Rect, rows: &[Row]) -> Plan {
    let column_width = KEYS_WIDTH + TEXT_WIDTH + 3;
    let total = rows.len();
    // Up to the whole screen.
    let max_w = usize::from(screen.width);
    let max_h = usize::from(screen.height);
    let per_column_max = max_h.saturating_sub(2).max(1);
    let columns_fit = (max_w.saturating_sub(2) / column_width).max(1);
    let columns = total.div_ceil(per_column_max).clamp(1, columns_fit);
    let per_column = total.div_ceil(columns).min(per_column_max);
    let w = (columns * column_width + 2).min(max_w);
    let h = (per_column + 2).min(max_h);
    let area = geometry::centered(
        screen,
        u16::try_from(w).unwrap_or(u16::MAX),
        u16::try_from(h).unwrap_or(u16::MAX),
    );
    Plan {
        area,
        columns,
        per_column,
        total,
    }
}

/// The most rows help can be scrolled at this screen size.
pub fn max_scroll(screen: Rect) -> usize {
    let rows = rows();
    let p = plan(screen, &rows);
    p.total.saturating_sub(p.columns * p.per_column)
}

fn line(row: &Row) -> Line<'static> {
    let keys = KEYS_WIDTH;
    match row {
        Row::Heading(h) => Line::styled(*h, Style::new().fg(Color::Cyan)),
        Row::Entry(k, what) => Line::from(vec![
            Span::raw(format!(" {k:<keys$} ")),
            Span::styled(*what, theme::dim()),
        ]),
    }
}

/// Draws the help popup over the screen.
pub fn render(app: &TuiApp, frame: &mut Frame) {
    let rows = rows();
    let p = plan(frame.area(), &rows);
    let scroll = app
        .help_scroll
        .min(p.total.saturating_sub(p.columns * p.per_column));
    let shown = (p.columns * p.per_column).min(p.total - scroll);
    let title = if shown < p.total {
        format!(
            " Keys {}-{} of {} (j/k scroll, Esc closes) ",
            scroll + 1,
            scroll + shown,
            p.total
        )
    } else {
        " Keys (Esc closes) ".to_string()
    };
    frame.render_widget(Clear, p.area);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(p.area);
    frame.render_widget(block, p.area);
    let columns = Layout::horizontal(vec![Constraint::Fill(1); p.columns]).split(inner);
    for (i, area) in columns.iter().enumerate() {
        let lines: Vec<Line<'static>> = rows
            .iter()
            .skip(scroll + i * p.per_column)
            .take(p.per_column)
            .map(line)
            .collect();
        frame.render_widget(Paragraph::new(lines), *area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_text_fits_its_column() {
        for b in KEYMAP.iter() {
            assert!(
                b.help.chars().count() <= TEXT_WIDTH,
                "too long for help: {}",
                b.help
            );
        }
    }
}
