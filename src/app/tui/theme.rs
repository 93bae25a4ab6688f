//! Colours and the small text formatters every panel shares (times, ages, sizes).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;

use crate::node::PeerState;
use crate::protocol::NodeId;

/// Author colours: bright enough on dark and light backgrounds, none of them red (kept for
/// errors) or dark grey (kept for secondary text).
const AUTHOR_COLORS: [Color; 10] = [
    Color::Cyan,
    Color::Green,
    Color::Yellow,
    Color::Magenta,
    Color::Blue,
    Color::LightCyan,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightMagenta,
    Color::LightBlue,
];

/// A colour that stays the same for an origin on every laptop and every run.
pub(crate) fn author_color(origin: NodeId) -> Color {
    // FNV-1a over the id bytes: stable across builds, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in origin.0.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let i = usize::try_from(h % AUTHOR_COLORS.len() as u64).unwrap_or(0);
    AUTHOR_COLORS[i]
}

/// The style of an author's name.
pub(crate) fn author_style(origin: NodeId) -> Style {
    Style::new()
        .fg(author_color(origin))
        .add_modifier(Modifier::BOLD)
}

/// Secondary text (times, ids).
pub(crate) fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// Errors.
pub(crate) fn error() -> Style {
    Style::new().fg(Color::Red)
}

/// Warnings.
pub(crate) fn warning() -> Style {
    Style::new().fg(Color::Yellow)
}

/// The border of the focused panel.
pub(crate) fn border(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    }
}

/// The highlighted row of a focused list.
pub(crate) fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

/// A peer's state as a coloured dot.
pub(crate) fn state_dot(state: PeerState) -> Span<'static> {
    let color = match state {
        PeerState::Alive => Color::Green,
        PeerState::Suspect => Color::Yellow,
        PeerState::Offline => Color::Red,
        PeerState::Discovered => Color::DarkGray,
    };
    Span::styled("●", Style::new().fg(color))
}

fn seconds_of_day(secs: u64) -> (u64, u64, u64) {
    let s = secs % 86_400;
    (s / 3600, (s % 3600) / 60, s % 60)
}

/// `HH:MM` (UTC) of a time in ms since the Unix epoch. UTC keeps screens of different
/// laptops comparable and needs no time-zone database.
pub(crate) fn hhmm_ms(ms: u64) -> String {
    let (h, m, _) = seconds_of_day(ms / 1000);
    format!("{h:02}:{m:02}")
}

/// The UTC day number (days since the Unix epoch) of a time in ms.
pub(crate) fn day_of_ms(ms: u64) -> u64 {
    ms / 86_400_000
}

/// The UTC day number of a wall-clock time.
pub(crate) fn day_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| {
        day_of_ms(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

/// `(month, day)` of a day number, by the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn month_day(days: u64) -> (u64, u64) {
    let z = days + 719_468;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (m, d)
}

/// A message's time: `HH:MM` (UTC) on `today`, `MM-DD HH:MM` on other days, so an old
/// message is not mistaken for one of today.
pub(crate) fn chat_time(ms: u64, today: u64) -> String {
    let day = day_of_ms(ms);
    if day == today {
        hhmm_ms(ms)
    } else {
        let (m, d) = month_day(day);
        format!("{m:02}-{d:02} {}", hhmm_ms(ms))
    }
}

/// `HH:MM:SS` (UTC) of a wall-clock time.
pub(crate) fn hhmmss(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (h, m, s) = seconds_of_day(secs);
    format!("{h:02}:{m:02}:{s:02}")
}

/// An HLC as `HH:MM:SS+counter` (UTC of its wall-clock part), e.g. `14:03:22+1`.
pub(crate) fn hlc_label(hlc: u64) -> String {
    let (ms, counter) = crate::protocol::Hlc(hlc).unpack();
    let secs = ms / 1000;
    let (h, m, s) = seconds_of_day(secs);
    format!("{h:02}:{m:02}:{s:02}+{counter}")
}

/// How long ago `then` was, in the largest whole unit ("3s ago", "5m ago").
pub(crate) fn ago(now: SystemTime, then: SystemTime) -> String {
    // A clock that stepped back shows "0s ago" rather than a negative age.
    let secs = now.duration_since(then).map_or(0, |d| d.as_secs());
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// A duration as "850µs", "12ms" or "1.4s".
pub(crate) fn duration(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us}µs")
    } else if us < 10_000_000 {
        format!("{}ms", us / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A signed age in ms as "120ms", "3.2s", "4m".
pub(crate) fn age_ms(ms: i64) -> String {
    let a = ms.unsigned_abs();
    let sign = if ms < 0 { "-" } else { "" };
    if a < 1000 {
        format!("{sign}{a}ms")
    } else if a < 60_000 {
        format!("{sign}{:.1}s", a as f64 / 1000.0)
    } else {
        format!("{sign}{}m", a / 60_000)
    }
}

/// Bytes in binary units ("512 B", "1.5 KiB", "3.0 MiB").
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatters() {
        assert_eq!(hhmm_ms(1_700_000_000_000), "22:13");
        assert_eq!(hhmmss(UNIX_EPOCH + Duration::from_secs(3661)), "01:01:01");
        let t = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(ago(t, t - Duration::from_secs(3)), "3s ago");
        assert_eq!(ago(t, t - Duration::from_secs(300)), "5m ago");
        assert_eq!(ago(t - Duration::from_secs(5), t), "0s ago");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(duration(Duration::from_micros(850)), "850µs");
        assert_eq!(duration(Duration::from_millis(12)), "12ms");
        assert_eq!(age_ms(-1500), "-1.5s");
        let today = day_of_ms(1_700_000_000_000);
        assert_eq!(chat_time(1_700_000_000_000, today), "22:13");
        assert_eq!(chat_time(1_700_000_000_000, today + 1), "11-14 22:13");
        assert_eq!(chat_time(951_782_400_000, 0), "02-29 00:00");
        assert_eq!(day_of(UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 5)), 3);
    }

    #[test]
    fn author_colours_are_stable_and_spread() {
        let a = NodeId::from_u128(1);
        assert_eq!(author_color(a), author_color(a));
        let distinct: std::collections::BTreeSet<String> = (0..50u128)
            .map(|n| format!("{:?}", author_color(NodeId::from_u128(n))))
            .collect();
        assert!(distinct.len() > 5, "{distinct:?}");
    }
}
