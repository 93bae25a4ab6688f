//! The small text formatters every panel shares: times in the user's zone, ages, sizes.
//! A leaf module: plain values in, strings out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// How times are shown: in a time zone (the system's, which follows `TZ`, or UTC with
/// `--utc`, which keeps screens of laptops in different zones comparable).
#[derive(Debug, Clone)]
pub struct TimeFmt {
    tz: TimeZone,
    /// `2:05p` instead of `14:05`.
    h12: bool,
}

impl Default for TimeFmt {
    fn default() -> Self {
        Self::utc()
    }
}

impl TimeFmt {
    /// Times in UTC.
    pub fn utc() -> Self {
        Self::zone(TimeZone::UTC)
    }

    /// The system's zone (`local`) or UTC, with 12- or 24-hour times.
    pub fn new(local: bool, h12: bool) -> Self {
        let base = if local { Self::local() } else { Self::utc() };
        TimeFmt { h12, ..base }
    }

    /// Times in the system's zone: `TZ` if set (a name such as `Europe/Paris` or a POSIX
    /// rule), else `/etc/localtime` or the platform's setting; UTC if none can be read.
    pub fn local() -> Self {
        Self::zone(TimeZone::system())
    }

    /// Times in `tz`.
    pub fn zone(tz: TimeZone) -> Self {
        TimeFmt { tz, h12: false }
    }

    /// How many columns [`TimeFmt::hhmm_ms`] takes.
    pub fn width(&self) -> usize {
        if self.h12 { 6 } else { 5 }
    }

    /// The zone's name as the status bar shows it (`UTC`, `Europe/Paris`), if it has one.
    pub fn zone_name(&self) -> Option<&str> {
        self.tz.iana_name()
    }

    fn zoned_ms(&self, ms: u64) -> Zoned {
        let ts = i64::try_from(ms)
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            // A time past the year 9999 (a peer's clock gone wild) shows as the largest.
            .unwrap_or(Timestamp::MAX);
        ts.to_zoned(self.tz.clone())
    }

    fn zoned(&self, t: SystemTime) -> Zoned {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.zoned_ms(ms)
    }

    /// `HH:MM` of a time in ms since the Unix epoch.
    pub fn hhmm_ms(&self, ms: u64) -> String {
        let z = self.zoned_ms(ms);
        if self.h12 {
            let h = (z.hour() + 11) % 12 + 1;
            let m = if z.hour() < 12 { 'a' } else { 'p' };
            format!("{h:>2}:{:02}{m}", z.minute())
        } else {
            format!("{:02}:{:02}", z.hour(), z.minute())
        }
    }

    /// The calendar day of a time in ms.
    pub fn day_ms(&self, ms: u64) -> Date {
        self.zoned_ms(ms).date()
    }

    /// The calendar day of a wall-clock time.
    pub fn day(&self, t: SystemTime) -> Date {
        self.zoned(t).date()
    }

    /// `HH:MM:SS` of a wall-clock time.
    pub fn hhmmss(&self, t: SystemTime) -> String {
        let z = self.zoned(t);
        format!("{:02}:{:02}:{:02}", z.hour(), z.minute(), z.second())
    }
}

/// An HLC as `HH:MM:SS+counter` (UTC of its wall-clock part), e.g. `14:03:22+1`.
pub fn hlc_label(hlc: u64) -> String {
    let (ms, counter) = crate::protocol::Hlc(hlc).unpack();
    let secs = ms / 1000 % 86_400;
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}+{counter}")
}

/// A day as its separator in the chat says it: `Tue 14 Nov 2023`, or `Today`.
pub fn day_label(day: Date, today: Date) -> String {
    if day == today {
        format!("Today, {}", day.strftime("%a %-d %b %Y"))
    } else {
        day.strftime("%a %-d %b %Y").to_string()
    }
}

/// How long ago `then` was, in the largest whole unit ("3s ago", "5m ago").
pub fn ago(now: SystemTime, then: SystemTime) -> String {
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
pub fn duration(d: Duration) -> String {
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
pub fn age_ms(ms: i64) -> String {
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
pub fn bytes(n: u64) -> String {
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
        let utc = TimeFmt::utc();
        assert_eq!(utc.hhmm_ms(1_700_000_000_000), "22:13");
        assert_eq!(
            utc.hhmmss(UNIX_EPOCH + Duration::from_secs(3661)),
            "01:01:01"
        );
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
        // A time past what a calendar holds shows as its last instant.
        assert_eq!(utc.hhmm_ms(u64::MAX), "22:00");
    }

    #[test]
    fn times_follow_the_zone_and_days_change_at_local_midnight() {
        // 2023-11-14 22:13 UTC is 23:13 in Paris (CET) and already the 15th in Tokyo.
        let ms = 1_700_000_000_000;
        let paris = TimeFmt::zone(TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("a rule"));
        let tokyo = TimeFmt::zone(TimeZone::fixed(jiff::tz::offset(9)));
        assert_eq!(paris.hhmm_ms(ms), "23:13");
        assert_eq!(tokyo.hhmm_ms(ms), "07:13");
        let utc = TimeFmt::utc();
        assert_eq!(
            day_label(utc.day_ms(ms), utc.day_ms(ms)),
            "Today, Tue 14 Nov 2023"
        );
        assert_eq!(
            day_label(tokyo.day_ms(ms), utc.day_ms(ms)),
            "Wed 15 Nov 2023"
        );
        let h12 = TimeFmt {
            h12: true,
            ..TimeFmt::utc()
        };
        assert_eq!(h12.hhmm_ms(ms), "10:13p");
        assert_eq!(h12.hhmm_ms(0), "12:00a");
        assert_eq!(h12.hhmm_ms(3_600_000), " 1:00a");
        // Summer time: 2023-07-01 12:00 UTC is 14:00 in Paris.
        assert_eq!(paris.hhmm_ms(1_688_212_800_000), "14:00");
    }
}
