//! The chat history: only the rows on screen are built, walking the chat from its end, so
//! a history of any length draws in the same time. Between the messages go a separator
//! for each day and a "new since you left" line after the last message read last run.

use std::ops::Range;

use jiff::civil::Date;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::{Focus, TuiApp, stamp_of};
use super::attention::mentions;
use super::format::{TimeFmt, day_label};
use super::{hyperlink, theme};
use crate::app::ChatLine;
use crate::app::model::stamp::Stamp;
use crate::app::runtime::view::{TransferInfo, TransferState};

fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut buf)).width()
}

fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// The byte ranges of `http://` and `https://` addresses in `text` (up to the next space,
/// without trailing punctuation).
pub(crate) fn urls(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = ["https://", "http://"]
        .iter()
        .filter_map(|p| text[from..].find(p))
        .min()
    {
        let start = from + i;
        let len = text[start..]
            .find(char::is_whitespace)
            .unwrap_or(text.len() - start);
        let url = text[start..start + len]
            .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'', '"']);
        out.push(start..start + url.len());
        from = start + len.max(1);
    }
    out
}

/// Splits `text` into rows: the first `first` columns wide, the others `rest` wide;
/// breaks at spaces where it can, mid-word where a word is longer than a row, at every
/// newline, and never inside a URL: a URL wider than a row gets a row of its own and runs
/// past its end (clipped on screen, whole for copying and links).
pub(crate) fn wrap(text: &str, first: usize, rest: usize) -> Vec<&str> {
    let mut rows = Vec::new();
    for para in text.split('\n') {
        let links: Vec<Range<usize>> = urls(para);
        let mut start = 0;
        loop {
            let avail = if rows.is_empty() { first } else { rest }.max(1);
            let tail = &para[start..];
            let mut used = 0;
            let mut end = tail.len();
            let mut last_space = None;
            for (i, c) in tail.char_indices() {
                let w = char_width(c);
                if used + w > avail {
                    end = i;
                    break;
                }
                if c == ' ' {
                    last_space = Some(i);
                }
                used += w;
            }
            if end == tail.len() {
                rows.push(tail);
                break;
            }
            // Break after the last space in the row; a row that is one long word breaks
            // mid-word (and always takes at least one character, so the loop ends).
            let mut cut = match last_space {
                Some(s) if s > 0 => s,
                _ => end.max(tail.chars().next().map_or(1, char::len_utf8)),
            };
            if let Some(url) = links
                .iter()
                .find(|u| u.start < start + cut && start + cut < u.end)
            {
                cut = if url.start > start {
                    url.start - start
                } else {
                    // The whole word: punctuation after the URL stays with it.
                    para[url.end..]
                        .find(' ')
                        .map_or(para.len(), |i| url.end + i)
                        - start
                };
            }
            rows.push(&tail[..cut]);
            start += cut;
            start += para[start..].len() - para[start..].trim_start_matches(' ').len();
            if start >= para.len() {
                break;
            }
        }
    }
    rows
}

/// What a message row needs to know besides the message.
pub(crate) struct RowStyle<'a> {
    time: &'a TimeFmt,
    /// Our nick, highlighted in others' messages.
    nick: &'a str,
    me: crate::protocol::NodeId,
    /// The search's text, highlighted everywhere.
    query: Option<&'a str>,
    hit: Option<Stamp>,
    /// Files being saved, for the gauge under their message.
    transfers: &'a std::collections::HashMap<String, TransferInfo>,
    /// The message under the browsing cursor.
    selected: Option<Stamp>,
}

/// Byte ranges of `needle` in `text`, any case (ASCII case folding keeps byte offsets).
fn find_all(text: &str, needle: &str) -> Vec<Range<usize>> {
    if needle.is_empty() {
        return Vec::new();
    }
    let hay = text.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    hay.match_indices(&needle)
        .map(|(i, m)| i..i + m.len())
        .collect()
}

/// `row` (a slice of `text`) as spans: mentions, search matches and URLs styled.
fn styled_row(text: &str, row: &str, marks: &[(Range<usize>, Style)]) -> Vec<Span<'static>> {
    let offset = row.as_ptr() as usize - text.as_ptr() as usize;
    let end = offset + row.len();
    let mut spans = Vec::new();
    let mut at = offset;
    let mut inside: Vec<&(Range<usize>, Style)> = marks
        .iter()
        .filter(|(r, _)| r.start < end && r.end > offset)
        .collect();
    inside.sort_by_key(|(r, _)| r.start);
    for (r, style) in inside {
        let s = r.start.max(at);
        let e = r.end.min(end);
        if s >= e || !text.is_char_boundary(s) || !text.is_char_boundary(e) {
            continue;
        }
        if s > at {
            spans.push(Span::raw(text[at..s].to_string()));
        }
        spans.push(Span::styled(text[s..e].to_string(), *style));
        at = e;
    }
    if at < end {
        spans.push(Span::raw(text[at..end].to_string()));
    }
    spans
}

/// What is shown of a message: its text, with " (edited)" after an edited one; a file
/// offer shows its name, size and how to save it.
fn shown_text<'a>(line: &ChatLine<'a>) -> std::borrow::Cow<'a, str> {
    if let Some(f) = line.file {
        return std::borrow::Cow::Owned(format!(
            "[file] {} · {} · /save {}",
            f.name,
            super::format::bytes(f.size),
            f.file_id.get(..12).unwrap_or_default()
        ));
    }
    if line.edited && !line.deleted {
        std::borrow::Cow::Owned(format!("{} {EDITED}", line.text))
    } else {
        std::borrow::Cow::Borrowed(line.text)
    }
}

/// The mark after an edited message.
const EDITED: &str = "(edited)";

/// The rows of one message: `HH:MM name: text`, continuation rows indented under the text;
/// `HH:MM * name text` for a `/me` action; a reply starts with the first line of the
/// message it answers (`↳ bob: …`); a deleted one says `(deleted)`.
pub(crate) fn message_lines(
    line: &ChatLine<'_>,
    width: usize,
    st: &RowStyle<'_>,
) -> Vec<Line<'static>> {
    let indent = st.time.width() + 1;
    let time = st.time.hhmm_ms(line.created_at_ms);
    let text = shown_text(line);
    let text = text.as_ref();
    // "name: " or "* name "
    let lead = str_width(&line.author) + 2;
    let first = width.saturating_sub(indent + lead);
    let rows = wrap(text, first, width.saturating_sub(indent));
    let mut marks: Vec<(Range<usize>, Style)> = Vec::new();
    let mut mentioned = false;
    if line.deleted || line.unsupported.is_some() {
        marks.push((0..text.len(), theme::gone()));
    } else if line.file.is_some() {
        marks.push((0..text.len(), theme::link()));
    } else {
        marks.extend(urls(text).into_iter().map(|r| (r, theme::link())));
        if line.origin != st.me {
            let found = mentions(line.text, st.nick);
            mentioned = !found.is_empty();
            marks.extend(found.into_iter().map(|r| (r, theme::mention())));
        }
        if let Some(q) = st.query {
            marks.extend(
                find_all(line.text, q)
                    .into_iter()
                    .map(|r| (r, theme::search_match())),
            );
        }
        if line.edited {
            marks.push((text.len() - EDITED.len()..text.len(), theme::dim()));
        }
        if line.action {
            marks.insert(0, (0..text.len(), theme::action()));
        }
    }
    let hit = st.hit == Some(stamp_of(line));
    let selected = st.selected == Some(stamp_of(line));
    // A mark in the gutter says "this one" without colour: `▶` the browsing cursor, `>`
    // the match, `!` a mention.
    let gutter = || match (selected, hit, mentioned) {
        (true, _, _) => Span::styled("▶", theme::browsed_mark()),
        (false, true, _) => Span::styled(">", theme::search_match()),
        (false, false, true) => Span::styled("!", theme::mention()),
        _ => Span::raw(" "),
    };
    let mut out = Vec::with_capacity(rows.len() + 1);
    if let Some(q) = &line.reply_to {
        let quoted = match (q.deleted, q.first_line) {
            (true, _) => crate::app::model::DELETED_TEXT.to_string(),
            (false, Some(l)) => l.to_string(),
            (false, None) => "a message not here yet".to_string(),
        };
        let room = width.saturating_sub(indent + 2);
        let full = format!("{}: {quoted}", q.author);
        let cut: String = if str_width(&full) > room {
            let mut s: String = full.chars().take(room.saturating_sub(1)).collect();
            s.push('…');
            s
        } else {
            full
        };
        out.push(Line::from(vec![
            Span::raw(" ".repeat(indent)),
            Span::styled(format!("↳ {cut}"), theme::dim()),
        ]));
    }
    for (i, row) in rows.into_iter().enumerate() {
        let mut spans = if i > 0 {
            vec![Span::raw(" ".repeat(indent - 1)), gutter()]
        } else if line.action {
            vec![
                Span::styled(time.clone(), theme::dim()),
                gutter(),
                Span::styled("* ", theme::action()),
                Span::styled(line.author.to_string(), theme::author_style(line.origin)),
                Span::raw(" "),
            ]
        } else {
            vec![
                Span::styled(time.clone(), theme::dim()),
                gutter(),
                Span::styled(line.author.to_string(), theme::author_style(line.origin)),
                Span::raw(": "),
            ]
        };
        spans.extend(styled_row(text, row, &marks));
        if selected {
            // Reversed like the list's selection, so it shows without colour too; the time
            // and the gutter stay as they are, so the rows still line up.
            for s in spans.iter_mut().skip(2) {
                s.style = s.style.patch(theme::selected());
            }
        }
        out.push(Line::from(spans));
    }
    if let Some(t) = line.file.and_then(|f| st.transfers.get(&f.file_id)) {
        out.push(Line::from(vec![
            Span::raw(" ".repeat(indent)),
            Span::styled(gauge_text(t, width.saturating_sub(indent)), theme::dim()),
        ]));
    }
    out
}

/// Cells of the progress bar.
const GAUGE_CELLS: usize = 20;

/// `[██████░░░░] 45% · 12.3 MiB/s · ETA 3s`, or where the file was saved, or why not.
pub(crate) fn gauge_text(t: &TransferInfo, width: usize) -> String {
    let full = match &t.state {
        TransferState::Saved(path) => format!("saved to {}", path.display()),
        TransferState::Failed(why) => format!("not saved: {why} (/save again resumes)"),
        TransferState::Running => {
            let frac = if t.total == 0 {
                1.0
            } else {
                t.done as f64 / t.total as f64
            };
            let filled = ((frac * GAUGE_CELLS as f64).round() as usize).min(GAUGE_CELLS);
            let eta = t
                .eta_secs
                .map_or("ETA ?".to_string(), |s| format!("ETA {}s", s.ceil() as u64));
            format!(
                "[{}{}] {:>3.0}% · {}/s · {eta}",
                "█".repeat(filled),
                "░".repeat(GAUGE_CELLS - filled),
                frac * 100.0,
                super::format::bytes(t.bytes_per_sec as u64)
            )
        }
    };
    full.chars().take(width.max(1)).collect()
}

/// Rows a message takes at `width` columns.
pub(crate) fn message_height(app: &TuiApp, line: &ChatLine<'_>, width: usize) -> usize {
    message_lines(line, width, &row_style(app)).len()
}

fn separator(label: &str, width: usize, style: Style) -> Line<'static> {
    let text = format!(" {label} ");
    let room = width.saturating_sub(str_width(&text));
    let left = room / 2;
    Line::styled(
        format!("{}{text}{}", "─".repeat(left), "─".repeat(room - left)),
        style,
    )
}

fn ms_of(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn row_style(app: &TuiApp) -> RowStyle<'_> {
    let search = app.search.as_ref();
    RowStyle {
        time: &app.time,
        nick: &app.status.name,
        me: app.status.node_id,
        query: search.map(|s| s.query.as_str()),
        hit: search.and_then(|s| s.hit),
        transfers: &app.transfers,
        selected: app.browse,
    }
}

/// Walks the chat from the newest message, building rows bottom-up (separators and the
/// "new since you left" line included) until `enough` says stop, and tells `seen` each
/// message's rows as it goes (counted from the bottom: `0..2` are the last two rows).
/// Returns the rows, newest first.
fn rows_up(
    app: &TuiApp,
    width: usize,
    mut seen: impl FnMut(Stamp, Range<usize>),
    mut enough: impl FnMut(usize) -> bool,
) -> Vec<Line<'static>> {
    let st = row_style(app);
    let today = app.time.day(app.now);
    let left_at = app.attention().left_at();
    let mut rows: Vec<Line<'static>> = Vec::new();
    let notice_rows = |after: Option<Stamp>, rows: &mut Vec<Line<'static>>| {
        for n in app.notices.iter().rev().filter(|n| n.after == after) {
            rows.extend(notice_lines(n, st.time, width).into_iter().rev());
        }
    };
    let mut it = app.model.chat().rev().peekable();
    while let Some(line) = it.next() {
        notice_rows(Some(stamp_of(&line)), &mut rows);
        let mut lines = message_lines(&line, width, &st);
        let below = rows.len();
        while let Some(l) = lines.pop() {
            rows.push(l);
        }
        let stamp = stamp_of(&line);
        seen(stamp, below..rows.len());
        let older = it.peek();
        if let Some(mark) = left_at
            && stamp > mark
            && older.is_none_or(|o| stamp_of(o) <= mark)
        {
            rows.push(separator("new since you left", width, theme::warning()));
        }
        let day: Date = app.time.day_ms(line.created_at_ms);
        if older.is_none_or(|o| app.time.day_ms(o.created_at_ms) != day) {
            rows.push(separator(&day_label(day, today), width, theme::dim()));
        }
        if enough(rows.len()) {
            return rows;
        }
    }
    notice_rows(None, &mut rows);
    rows
}

/// A notice (a join, a `/whois` answer) as `HH:MM  · text`, wrapped under its text so
/// none of it is cut.
fn notice_lines(n: &super::app::Notice, time: &TimeFmt, width: usize) -> Vec<Line<'static>> {
    let indent = time.width() + 4;
    let stamp = time.hhmm_ms(ms_of(n.at));
    let room = width.saturating_sub(indent);
    wrap(&n.text, room, room)
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let lead = if i == 0 {
                format!("{stamp}  · ")
            } else {
                " ".repeat(indent)
            };
            Line::styled(format!("{lead}{row}"), theme::dim())
        })
        .collect()
}

/// How many rows the chat takes at `width`, counting no further than `limit`.
pub(crate) fn count_rows(app: &TuiApp, width: usize, limit: usize) -> usize {
    rows_up(app, width, |_, _| {}, |n| n >= limit).len()
}

/// The rows of the message `at`, counted from the bottom (its first row is the last of
/// the range); `None` if it is not in the chat.
pub(crate) fn message_rows(app: &TuiApp, width: usize, at: Stamp) -> Option<Range<usize>> {
    let found = std::cell::RefCell::new(None);
    rows_up(
        app,
        width,
        |s, r| {
            if s == at {
                *found.borrow_mut() = Some(r);
            }
        },
        |_| found.borrow().is_some(),
    );
    found.into_inner()
}

/// How many rows lie below the first row of the message `at`.
pub(crate) fn rows_below(app: &TuiApp, width: usize, at: Stamp) -> usize {
    message_rows(app, width, at).map_or(0, |r| r.end)
}

/// The messages with a row on screen when the chat is `height` rows high and scrolled
/// `scroll` rows back, newest first.
pub(crate) fn messages_in_view(
    app: &TuiApp,
    width: usize,
    scroll: usize,
    height: usize,
) -> Vec<Stamp> {
    let top = scroll.saturating_add(height);
    let mut out = Vec::new();
    rows_up(
        app,
        width,
        |s, r| {
            if r.start < top && r.end > scroll {
                out.push(s);
            }
        },
        |n| n >= top,
    );
    out
}

/// What an empty chat says, so a first start is never a blank screen.
fn empty_text(app: &TuiApp) -> Vec<Line<'static>> {
    let s = &app.status;
    let mut lines = Vec::new();
    if app.peers.is_empty() {
        if s.mdns {
            lines.push(Line::from(format!(
                "Looking for peers on this LAN via mDNS, room `{}`…",
                s.room
            )));
        } else {
            lines.push(Line::from("mDNS is off: add a peer with /peer HOST:PORT"));
        }
        lines.push(Line::from(""));
        lines.push(Line::from("To get company, start gossip-chat:"));
        lines.push(Line::from(format!(
            " • on another laptop, --room {}",
            s.room
        )));
        lines.push(Line::from(" • or a second copy here, --profile NAME"));
        lines.push(Line::from(" • or try gossip-chat --demo"));
        lines.push(Line::from(""));
        let reach = if s.listen.ip().is_unspecified() {
            format!("/peer THIS-LAPTOP-IP:{}", s.listen.port())
        } else {
            format!("/peer {}", s.listen)
        };
        lines.push(Line::from(format!("Others can reach you with {reach}")));
    } else {
        lines.push(Line::from(
            "No messages yet: type one below and press Enter.",
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "Tab moves between panels, ? shows every key, /nick NAME sets your name.",
        theme::dim(),
    ));
    lines
}

/// Draws the chat history in `area`.
pub fn render(app: &TuiApp, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Focus::Input;
    let name = match (&app.search, app.chat_scroll) {
        _ if app.browse.is_some() => "Chat: browsing (Enter or s saves a file, Esc)".to_string(),
        (Some(s), _) => format!("Chat: \"{}\" (^R older, ^S newer, Esc)", s.query),
        (None, 0) => format!("Chat ({})", app.model.chat().len()),
        (None, n) => format!("Chat ({n} rows back)"),
    };
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(theme::title(&name, focused));
    // Who is typing, on the bottom border: under the chat, costing it no row.
    if let Some(typing) = app.typing_line() {
        block =
            block.title_bottom(Line::styled(format!(" {typing} "), theme::dim()).left_aligned());
    }
    let new = app.attention().new_below();
    if app.chat_scroll > 0 {
        let mark = if new > 0 {
            format!(" {new} new ↓ End ")
        } else {
            " ↓ End ".to_string()
        };
        block = block.title_bottom(Line::styled(mark, theme::warning()).right_aligned());
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let height = usize::from(inner.height);
    if app.model.chat().len() == 0 {
        // Joins and answers that came before any message show at the bottom, the newest
        // last; the welcome takes the rows above them.
        let st = row_style(app);
        let mut notes: Vec<Line<'static>> = app
            .notices
            .iter()
            .flat_map(|n| notice_lines(n, st.time, width))
            .collect();
        let keep = notes.len().min(height);
        let notes: Vec<Line<'static>> = notes.drain(notes.len() - keep..).collect();
        let rows = u16::try_from(keep).unwrap_or(inner.height);
        let [top, bottom] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(rows)]).areas(inner);
        let p = Paragraph::new(empty_text(app)).wrap(Wrap { trim: false });
        frame.render_widget(p, top);
        frame.render_widget(Paragraph::new(notes), bottom);
        return;
    }
    // Rows from the bottom up, until the ones on screen are covered.
    let need = app.chat_scroll + height;
    let mut rows = rows_up(app, width, |_, _| {}, |n| n >= need);
    let start = app.chat_scroll.min(rows.len().saturating_sub(height));
    let end = (start + height).min(rows.len());
    let visible: Vec<Line<'static>> = rows.drain(start..end).rev().collect();
    let links = if app.links {
        links_on_rows(&visible)
    } else {
        Vec::new()
    };
    frame.render_widget(Paragraph::new(visible), inner);
    let buf = frame.buffer_mut();
    for (row, col, url) in links {
        let (Ok(row), Ok(col)) = (u16::try_from(row), u16::try_from(col)) else {
            continue;
        };
        let x = inner.x.saturating_add(col);
        if row < inner.height && x < inner.right() {
            let width = str_width(&url);
            hyperlink::link(buf, x, inner.y + row, inner.right(), &url, width);
        }
    }
}

/// Where the URLs of `rows` start: (row, column, URL). A URL is never wrapped, so each one
/// lies whole on one row (it may run past its end; only the columns on screen are linked).
fn links_on_rows(rows: &[Line<'_>]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for (i, line) in rows.iter().enumerate() {
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        for r in urls(&text) {
            out.push((i, str_width(&text[..r.start]), text[r].to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_newlines_and_long_words() {
        assert_eq!(wrap("hello world", 20, 20), vec!["hello world"]);
        assert_eq!(wrap("hello world", 8, 8), vec!["hello", "world"]);
        assert_eq!(wrap("abcdefghij", 4, 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\nb", 10, 10), vec!["a", "b"]);
        assert_eq!(wrap("ab cd", 0, 0), vec!["a", "b", "c", "d"]);
        // Wide characters take two columns.
        assert_eq!(wrap("日本語", 4, 4), vec!["日本", "語"]);
    }

    #[test]
    fn urls_are_found_and_never_broken() {
        let text = "see https://example.com/a/very/long/path?q=1, or http://x.io.";
        let found: Vec<&str> = urls(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            found,
            ["https://example.com/a/very/long/path?q=1", "http://x.io"]
        );
        let rows = wrap(text, 12, 12);
        assert!(
            rows.contains(&"https://example.com/a/very/long/path?q=1,"),
            "{rows:?}"
        );
        assert_eq!(rows[0], "see");
        let rows = wrap("ab https://e.com/xyz cd", 8, 8);
        assert_eq!(rows, ["ab", "https://e.com/xyz", "cd"]);
    }
}
