//! What tells the user something happened: mentions of their nick, the unread count, the
//! "N new ↓" mark while scrolled up, and the last-read position kept across restarts (a
//! small file beside the room's store).

use std::io;
use std::path::{Path, PathBuf};

use crate::app::model::stamp::Stamp;
use crate::protocol::NodeId;

/// The file, in the room's store directory, that keeps the last message read.
pub const LAST_READ_FILE: &str = "tui-last-read";

/// Byte ranges of `text` where `nick` is mentioned: `ana` or `@ana`, any case, as a whole
/// word (no letter, digit or `_` on either side). The `@` is part of the range. A nick of
/// several words (`ana (on call)`) is also mentioned by its first word (`ana`).
pub fn mentions(text: &str, nick: &str) -> Vec<std::ops::Range<usize>> {
    let nick = nick.trim();
    let first: &str = nick
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    let mut out = mentions_of(text, nick);
    if !first.is_empty() && first != nick {
        for r in mentions_of(text, first) {
            if !out.iter().any(|o| o.start <= r.start && r.end <= o.end) {
                out.push(r);
            }
        }
        out.sort_by_key(|r| r.start);
    }
    out
}

fn mentions_of(text: &str, nick: &str) -> Vec<std::ops::Range<usize>> {
    if nick.is_empty() {
        return Vec::new();
    }
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    let mut skip_to = 0;
    for (i, c) in text.char_indices() {
        if i >= skip_to
            && !prev.is_some_and(word)
            && let Some(len) = starts_with_ignore_case(&text[i..], nick)
            && !text[i + len..].chars().next().is_some_and(word)
        {
            let start = if prev == Some('@') { i - 1 } else { i };
            out.push(start..i + len);
            skip_to = i + len;
        }
        prev = Some(c);
    }
    out
}

/// The byte length of the prefix of `text` that equals `prefix` ignoring case, if any.
fn starts_with_ignore_case(text: &str, prefix: &str) -> Option<usize> {
    let mut t = text.char_indices();
    for p in prefix.chars() {
        let (_, c) = t.next()?;
        if !c.to_lowercase().eq(p.to_lowercase()) {
            return None;
        }
    }
    Some(t.next().map_or(text.len(), |(i, _)| i))
}

/// The attention state: counts and marks, no I/O.
#[derive(Debug, Clone)]
pub struct Attention {
    bell: bool,
    bells_due: usize,
    unread: usize,
    new_below: usize,
    focused: bool,
    read_upto: Option<Stamp>,
    left_at: Option<Stamp>,
}

impl Default for Attention {
    fn default() -> Self {
        Attention {
            bell: true,
            bells_due: 0,
            unread: 0,
            new_below: 0,
            focused: true,
            read_upto: None,
            left_at: None,
        }
    }
}

impl Attention {
    /// Turns the bell on or off.
    pub fn set_bell(&mut self, on: bool) {
        self.bell = on;
    }

    /// Whether the bell rings on a mention.
    pub fn bell(&self) -> bool {
        self.bell
    }

    /// How many bells are due, resetting the count (the loop rings them).
    pub fn take_bells(&mut self) -> usize {
        std::mem::take(&mut self.bells_due)
    }

    /// Messages from others not yet read (the title's count).
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// Messages that arrived below the rows shown while scrolled up.
    pub fn new_below(&self) -> usize {
        self.new_below
    }

    /// The last message read before this run (the "new since you left" line goes after it).
    pub fn left_at(&self) -> Option<Stamp> {
        self.left_at
    }

    /// The last message read, to keep for the next run.
    pub fn read_upto(&self) -> Option<Stamp> {
        self.read_upto
    }

    /// Starts a run from what the last one had read.
    pub fn resume(&mut self, left_at: Option<Stamp>) {
        self.left_at = left_at;
        self.read_upto = left_at;
    }

    /// A live message arrived. `mine`: we wrote it; `mentioned`: it names us;
    /// `scrolled`: the chat is scrolled up.
    pub fn arrived(&mut self, stamp: Stamp, mine: bool, mentioned: bool, scrolled: bool) {
        if scrolled {
            self.new_below += 1;
        }
        if mine {
            return;
        }
        if mentioned && self.bell {
            self.bells_due += 1;
        }
        if scrolled || !self.focused {
            self.unread += 1;
        } else {
            self.mark_read(stamp);
        }
    }

    /// The user sees the newest message (`newest`): at the bottom, terminal focused.
    pub fn seen_bottom(&mut self, newest: Option<Stamp>) {
        self.new_below = 0;
        if self.focused {
            self.unread = 0;
            if let Some(s) = newest {
                self.mark_read(s);
            }
        }
    }

    fn mark_read(&mut self, s: Stamp) {
        if self.read_upto.is_none_or(|r| s > r) {
            self.read_upto = Some(s);
        }
    }

    /// The terminal window gained or lost focus.
    pub fn set_focused(&mut self, focused: bool) {
        self.focused = focused;
    }
}

/// The path of the last-read file in the room's store directory.
pub fn last_read_path(store_dir: &Path) -> PathBuf {
    store_dir.join(LAST_READ_FILE)
}

/// Reads the last-read stamp (`hlc origin seq`); a missing or damaged file is no mark.
pub fn load_last_read(path: &Path) -> Option<Stamp> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_stamp(text.trim())
}

fn parse_stamp(s: &str) -> Option<Stamp> {
    let mut parts = s.split_whitespace();
    let hlc = parts.next()?.parse().ok()?;
    let origin: NodeId = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(Stamp { hlc, origin, seq })
}

/// Writes the last-read stamp: to a temporary file, then renamed over the old one, so a
/// crash leaves the old mark or the new one, never half of one.
pub fn save_last_read(path: &Path, stamp: Stamp) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        format!("{} {} {}\n", stamp.hlc, stamp.origin, stamp.seq),
    )?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found<'a>(text: &'a str, nick: &str) -> Vec<&'a str> {
        mentions(text, nick).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn mentions_are_whole_words_in_any_case_with_or_without_at() {
        assert_eq!(found("hi ana!", "ana"), ["ana"]);
        assert_eq!(found("@Ana: look", "ana"), ["@Ana"]);
        assert_eq!(found("ANA, ana and @ana", "Ana"), ["ANA", "ana", "@ana"]);
        assert!(found("banana anatole ana_b", "ana").is_empty());
        assert_eq!(found("zoë and Zoë", "zoë"), ["zoë", "Zoë"]);
        assert!(found("anything", "").is_empty());
        assert_eq!(found("ana (on call)", "ana (on call)"), ["ana (on call)"]);
        assert_eq!(
            found("@ana could you, Ana?", "ana (on call)"),
            ["@ana", "Ana"]
        );
        assert!(found("banana", "ana (on call)").is_empty());
    }

    #[test]
    fn unread_counts_others_while_away_and_bells_count_mentions() {
        let s = |n| Stamp {
            hlc: n,
            origin: NodeId::from_u128(2),
            seq: n,
        };
        let mut a = Attention::default();
        a.arrived(s(1), false, true, false);
        assert_eq!((a.unread(), a.take_bells()), (0, 1));
        assert_eq!(a.read_upto(), Some(s(1)));
        a.set_focused(false);
        a.arrived(s(2), false, false, false);
        a.arrived(s(3), true, false, false);
        assert_eq!(a.unread(), 1);
        a.set_focused(true);
        a.arrived(s(4), false, false, true);
        assert_eq!((a.unread(), a.new_below()), (2, 1));
        a.seen_bottom(Some(s(4)));
        assert_eq!(
            (a.unread(), a.new_below(), a.read_upto()),
            (0, 0, Some(s(4)))
        );
        a.set_bell(false);
        a.arrived(s(5), false, true, false);
        assert_eq!(a.take_bells(), 0);
    }

    #[test]
    fn the_last_read_mark_survives_a_restart_and_junk_is_no_mark() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = last_read_path(dir.path());
        assert_eq!(load_last_read(&path), None);
        let s = Stamp {
            hlc: 42,
            origin: NodeId::from_u128(7),
            seq: 3,
        };
        save_last_read(&path, s).expect("saved");
        assert_eq!(load_last_read(&path), Some(s));
        std::fs::write(&path, "42 not-an-id 3").expect("written");
        assert_eq!(load_last_read(&path), None);
    }
}
