//! `gossip-chat export`, `state` and `tail`: read a store, also while its node runs.
//!
//! They open the log read-only through [`LogReader`] (a shared lock that never stands in
//! the writer's way, complete records only), so a script can read a running node's room.
//! They see every event the node has written to the log, which includes every event it
//! has acknowledged.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::app::{Model, payload_json};
use crate::store::file::{AtRestKey, LOG_FILE, LogReader, ReadEvent};

/// How often `tail` looks for new records.
pub const TAIL_POLL: Duration = Duration::from_millis(100);

/// Where `export --since` and `tail --since` start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// After this commit number (the `commit` field of a line).
    Commit(u64),
    /// Events created at or after this time, in ms since the Unix epoch.
    TimeMs(u64),
}

impl Since {
    /// Parses `SEQ` (a commit number), `MSms` (ms since the epoch) or an RFC 3339 UTC time
    /// such as `2026-12-01T20:00:00Z` (fractions of a second allowed).
    pub fn parse(s: &str) -> Result<Since, String> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Since::Commit)
                .map_err(|e| format!("--since {s}: {e}"));
        }
        if let Some(ms) = s.strip_suffix("ms")
            && let Ok(ms) = ms.parse()
        {
            return Ok(Since::TimeMs(ms));
        }
        rfc3339_ms(s).map(Since::TimeMs).ok_or_else(|| {
            format!(
                "--since {s}: expected a commit number (42), ms since the epoch \
                 (1796150000000ms) or a UTC time (2026-12-01T20:00:00Z)"
            )
        })
    }

    fn keeps(&self, r: &ReadEvent) -> bool {
        match *self {
            Since::Commit(n) => r.commit > n,
            Since::TimeMs(ms) => r.event.created_at_ms >= ms,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` as ms since the Unix epoch.
fn rfc3339_ms(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix('z'))?;
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms_frac = format!("{frac:0<3}").get(..3)?.parse::<i64>().ok()?;
    let days = days_from_civil(y, m, day);
    let ms = ((days * 24 + h) * 60 + min) * 60_000 + sec * 1000 + ms_frac;
    u64::try_from(ms).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The JSON line of a stored event: the `export` and `tail` shape.
pub fn export_json(r: &ReadEvent, model: &Model) -> Value {
    let e = &r.event;
    json!({
        "commit": r.commit,
        "id": e.id,
        "origin": e.origin.to_string(),
        "origin_name": model.display_name(e.origin),
        "seq": e.seq,
        "hlc": e.hlc,
        "created_at_ms": e.created_at_ms,
        "op": payload_json(&e.payload),
    })
}

/// Where a store is and how to read it: its directory, the room's name (for messages) and
/// a private room's at-rest key.
#[derive(Debug, Clone)]
pub struct StoreRef {
    /// The store directory.
    pub dir: PathBuf,
    /// The room's name.
    pub room: String,
    /// A private room's at-rest key.
    pub at_rest: Option<AtRestKey>,
}

/// Opens the store read-only, saying so if there is none.
pub fn open_reader(store: &StoreRef) -> Result<LogReader, String> {
    if !store.dir.join(LOG_FILE).exists() {
        return Err(format!(
            "no store for room `{}` in {}",
            store.room,
            store.dir.display()
        ));
    }
    LogReader::open(&store.dir, store.at_rest.clone()).map_err(|e| e.to_string())
}

/// Everything the log holds now, the model folded from it, and a warning if damage was
/// skipped.
fn read_all(reader: &mut LogReader) -> Result<(Vec<ReadEvent>, Model), String> {
    let events = reader.read_new().map_err(|e| e.to_string())?;
    let model = Model::from_events(events.iter().map(|r| &r.event));
    warn_damage(reader);
    Ok((events, model))
}

fn warn_damage(reader: &LogReader) {
    let n = reader.damaged().len();
    if n > 0 {
        eprintln!(
            "gossip-chat: {n} damaged stretch(es) of the log were skipped; \
             `gossip-chat compact` (with the app stopped) removes them for good"
        );
    }
}

/// `export`: the events (after `since`) as JSON lines in the total order
/// `(hlc, origin, seq)`; names come from every event held.
pub async fn export(store: &StoreRef, since: Option<Since>) -> Result<(), String> {
    let mut reader = open_reader(store)?;
    let (mut events, model) = read_all(&mut reader)?;
    drop(reader);
    if let Some(since) = since {
        events.retain(|r| since.keeps(r));
    }
    events.sort_by_key(|r| r.event.order_key());
    let mut out = String::new();
    for r in &events {
        out.push_str(&export_json(r, &model).to_string());
        out.push('\n');
    }
    print_all(out.as_bytes()).await
}

/// `state`: the folded app state as one JSON document.
pub async fn state(store: &StoreRef) -> Result<(), String> {
    let mut reader = open_reader(store)?;
    let (_, model) = read_all(&mut reader)?;
    drop(reader);
    let mut doc = model.state_json().map_err(|e| e.to_string())?;
    doc.push('\n');
    print_all(doc.as_bytes()).await
}

/// `tail`: the events after `since` (none of those held already, by default), then every
/// new one as the running node writes it, in log order, until a signal or stdout closes.
pub async fn tail(store: &StoreRef, since: Option<Since>) -> Result<(), String> {
    let mut reader = open_reader(store)?;
    let (held, mut model) = read_all(&mut reader)?;
    let mut stdout = tokio::io::stdout();
    let first: Vec<&ReadEvent> = match since {
        Some(since) => held.iter().filter(|r| since.keeps(r)).collect(),
        None => Vec::new(),
    };
    write_lines(&mut stdout, first.into_iter(), &model).await?;
    let mut stop = std::pin::pin!(super::headless::shutdown_signal());
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(TAIL_POLL) => {}
        }
        let new = reader.read_new().map_err(|e| e.to_string())?;
        for r in &new {
            model.apply(&r.event);
        }
        write_lines(&mut stdout, new.iter(), &model).await?;
    }
}

async fn write_lines<'a>(
    stdout: &mut tokio::io::Stdout,
    events: impl Iterator<Item = &'a ReadEvent>,
    model: &Model,
) -> Result<(), String> {
    let mut out = Vec::new();
    for r in events {
        out.extend_from_slice(export_json(r, model).to_string().as_bytes());
        out.push(b'\n');
    }
    if out.is_empty() {
        return Ok(());
    }
    stdout
        .write_all(&out)
        .await
        .and(stdout.flush().await)
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

/// Writes `bytes` to stdout and flushes.
pub async fn print_all(bytes: &[u8]) -> Result<(), String> {
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(bytes)
        .await
        .and(stdout.flush().await)
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_parses_commits_ms_and_utc_times() {
        assert_eq!(Since::parse("42"), Ok(Since::Commit(42)));
        assert_eq!(
            Since::parse("1796150000000ms"),
            Ok(Since::TimeMs(1_796_150_000_000))
        );
        assert_eq!(Since::parse("1970-01-01T00:00:00Z"), Ok(Since::TimeMs(0)));
        assert_eq!(
            Since::parse("2000-03-01T00:00:01.5Z"),
            Ok(Since::TimeMs(951_868_801_500))
        );
        assert_eq!(
            Since::parse("2026-12-01T20:00:00Z"),
            Ok(Since::TimeMs(1_796_155_200_000))
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-12-01T20:00:00",
            "-1",
        ] {
            assert!(Since::parse(bad).is_err(), "{bad}");
        }
    }
}
