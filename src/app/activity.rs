//! Typing and presence: who is typing, who is away. Carried by the library's ephemeral
//! notes ([`crate::node::GossipNode::broadcast_ephemeral`]), so none of it is ever stored,
//! exported or part of the history.
//!
//! Pure code, time as an input (ms since the Unix epoch):
//! - [`Signal`]: what one note says, and its payload encoding;
//! - [`Own`]: this user's side: when keystrokes, sends, `/away` and idle time call for a
//!   note (typing at most every [`TYPING_EVERY_MS`], stopped after [`TYPING_QUIET_MS`] of
//!   quiet or on send, away after [`AWAY_AFTER_MS`] idle);
//! - [`Activity`]: what the others' notes say now (typists expire on their own, away is
//!   refreshed while it lasts), bounded in size whatever peers send.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::protocol::NodeId;
use crate::protocol::codec;

/// Keystrokes send "typing" at most this often.
pub const TYPING_EVERY_MS: u64 = 2_000;
/// This long without a keystroke ends "typing".
pub const TYPING_QUIET_MS: u64 = 5_000;
/// A typist is shown this long after their last note (a lost "stopped" note ends here).
pub const TYPING_SHOWN_MS: u64 = 6_000;
/// This long without a keystroke makes the user away.
pub const AWAY_AFTER_MS: u64 = 10 * 60 * 1_000;
/// An away user says so again this often, for peers that connected since.
pub const AWAY_REFRESH_MS: u64 = 60_000;
/// An away peer is shown away this long after their last note (longer than two refreshes).
pub const AWAY_SHOWN_MS: u64 = 150_000;
/// The longest away text, in characters.
pub const MAX_AWAY_TEXT: usize = 100;
/// The most peers tracked per kind; a hostile crowd cannot grow the screen's memory.
pub const MAX_TRACKED: usize = 1024;
/// Relays a note may take beyond the direct peers.
pub const SIGNAL_TTL: u8 = 1;

/// The first bytes of every signal payload: the format and its version.
const MAGIC: &[u8] = b"gcsig1";

/// What one ephemeral note of gossip-chat says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    /// "I am typing."
    Typing,
    /// "I stopped typing" (quiet, or the message went).
    StoppedTyping,
    /// "I am back."
    Active,
    /// "I am away", with an optional reason.
    Away {
        /// Why, if the user said.
        text: Option<String>,
    },
}

/// Why a payload is not a signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// Not gossip-chat's signal format.
    #[error("not a gossip-chat signal")]
    NotASignal,
    /// The body does not decode.
    #[error("malformed signal: {0}")]
    Malformed(String),
    /// The away text is too long or holds control characters.
    #[error("away text: {0}")]
    BadText(String),
}

impl Signal {
    /// "Away", with `text` checked (trimmed; empty means no reason).
    pub fn away(text: &str) -> Result<Signal, SignalError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Signal::Away { text: None });
        }
        check_text(text)?;
        Ok(Signal::Away {
            text: Some(text.to_string()),
        })
    }

    /// The ephemeral payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        // A signal always encodes: it holds nothing but an enum and a short string.
        let _ = codec::encode_into(self, &mut out);
        out
    }

    /// Reads a payload from a peer, checking its text as [`Signal::away`] does.
    pub fn decode(payload: &[u8]) -> Result<Signal, SignalError> {
        let body = payload.strip_prefix(MAGIC).ok_or(SignalError::NotASignal)?;
        let s: Signal =
            codec::decode(body, 1024).map_err(|e| SignalError::Malformed(e.to_string()))?;
        if let Signal::Away { text: Some(t) } = &s {
            check_text(t)?;
        }
        Ok(s)
    }

    /// The kind, as the headless lines name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Signal::Typing => "typing",
            Signal::StoppedTyping => "stopped",
            Signal::Active => "active",
            Signal::Away { .. } => "away",
        }
    }
}

fn check_text(t: &str) -> Result<(), SignalError> {
    if t.chars().count() > MAX_AWAY_TEXT {
        return Err(SignalError::BadText(format!(
            "over {MAX_AWAY_TEXT} characters"
        )));
    }
    if let Some(c) = crate::text::find_unsafe(t) {
        return Err(SignalError::BadText(format!(
            "holds the control character U+{:04X}",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Whether a user is here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Availability {
    /// Here (or nothing heard).
    #[default]
    Active,
    /// Away, with the reason they gave.
    Away(Option<String>),
}

impl Availability {
    /// `away` or `away: lunch`, for beside a name; empty when active.
    pub fn label(&self) -> String {
        match self {
            Availability::Active => String::new(),
            Availability::Away(None) => "away".into(),
            Availability::Away(Some(t)) => format!("away: {t}"),
        }
    }
}

/// How this user came to be away.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Away {
    No,
    /// Idle: the next keystroke ends it.
    Idle,
    /// `/away`: only `/back` ends it.
    Said(Option<String>),
}

/// This user's side: which notes to send, and when.
#[derive(Debug, Clone)]
pub struct Own {
    last_key: u64,
    typing_sent: Option<u64>,
    away: Away,
    away_sent: u64,
}

impl Own {
    /// A user who is active at `now`.
    pub fn new(now: u64) -> Own {
        Own {
            last_key: now,
            typing_sent: None,
            away: Away::No,
            away_sent: 0,
        }
    }

    /// A keystroke in the message draft (not in a `/command`): "typing" if none went in
    /// the last [`TYPING_EVERY_MS`], and "active" first if the user was idle-away.
    pub fn keystroke(&mut self, now: u64) -> Vec<Signal> {
        self.last_key = now;
        let mut out = Vec::new();
        if self.away == Away::Idle {
            self.away = Away::No;
            out.push(Signal::Active);
        }
        if self
            .typing_sent
            .is_none_or(|t| now.saturating_sub(t) >= TYPING_EVERY_MS)
        {
            self.typing_sent = Some(now);
            out.push(Signal::Typing);
        }
        out
    }

    /// Activity that is not typing in the draft (a `/command` typed, a key elsewhere):
    /// ends idle-away, sends no "typing".
    pub fn touch(&mut self, now: u64) -> Vec<Signal> {
        self.last_key = now;
        if self.away == Away::Idle {
            self.away = Away::No;
            return vec![Signal::Active];
        }
        Vec::new()
    }

    /// The draft was sent (or cleared): typing ends now.
    pub fn sent(&mut self, now: u64) -> Vec<Signal> {
        let mut out = self.touch(now);
        if self.typing_sent.take().is_some() {
            out.push(Signal::StoppedTyping);
        }
        out
    }

    /// `/away [TEXT]`.
    pub fn set_away(&mut self, text: Option<String>, now: u64) -> Vec<Signal> {
        self.away = Away::Said(text.clone());
        self.away_sent = now;
        vec![Signal::Away { text }]
    }

    /// `/back`: active again (also after idle-away).
    pub fn set_back(&mut self, now: u64) -> Vec<Signal> {
        self.last_key = now;
        if std::mem::replace(&mut self.away, Away::No) == Away::No {
            return Vec::new();
        }
        vec![Signal::Active]
    }

    /// Time passing: "stopped" after [`TYPING_QUIET_MS`] of quiet, "away" after
    /// [`AWAY_AFTER_MS`] idle (if `idle_away`), "away" again every [`AWAY_REFRESH_MS`].
    pub fn tick(&mut self, now: u64, idle_away: bool) -> Vec<Signal> {
        let mut out = Vec::new();
        let quiet = now.saturating_sub(self.last_key);
        if self.typing_sent.is_some() && quiet >= TYPING_QUIET_MS {
            self.typing_sent = None;
            out.push(Signal::StoppedTyping);
        }
        if idle_away && self.away == Away::No && quiet >= AWAY_AFTER_MS {
            self.away = Away::Idle;
            self.away_sent = now;
            out.push(Signal::Away { text: None });
        } else if self.away != Away::No && now.saturating_sub(self.away_sent) >= AWAY_REFRESH_MS {
            self.away_sent = now;
            out.push(Signal::Away {
                text: self.away_text(),
            });
        }
        out
    }

    fn away_text(&self) -> Option<String> {
        match &self.away {
            Away::Said(t) => t.clone(),
            _ => None,
        }
    }

    /// This user's presence.
    pub fn availability(&self) -> Availability {
        match &self.away {
            Away::No => Availability::Active,
            Away::Idle => Availability::Away(None),
            Away::Said(t) => Availability::Away(t.clone()),
        }
    }
}

/// What a note changed, for a screen that shows changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Started (`true`) or stopped (`false`) typing.
    Typing(bool),
    /// Now active or away.
    Availability(Availability),
}

/// The others' typing and presence, from their notes.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// Typists and when they stop being shown.
    typing: HashMap<NodeId, u64>,
    /// Away peers, why, and when they stop being shown away.
    away: HashMap<NodeId, (Option<String>, u64)>,
}

impl Activity {
    /// Takes `who`'s note at `now`; returns what changed on screen, if anything.
    pub fn observe(&mut self, who: NodeId, signal: &Signal, now: u64) -> Option<Change> {
        match signal {
            Signal::Typing => {
                let was = self.is_typing(who, now);
                insert_bounded(&mut self.typing, who, now + TYPING_SHOWN_MS, |t| *t);
                (!was).then_some(Change::Typing(true))
            }
            Signal::StoppedTyping => self.stop_typing(who, now),
            Signal::Active => {
                let was = self.availability(who, now);
                self.away.remove(&who);
                (was != Availability::Active).then_some(Change::Availability(Availability::Active))
            }
            Signal::Away { text } => {
                let was = self.availability(who, now);
                let until = now + AWAY_SHOWN_MS;
                insert_bounded(&mut self.away, who, (text.clone(), until), |v| v.1);
                let is = Availability::Away(text.clone());
                (was != is).then_some(Change::Availability(is))
            }
        }
    }

    /// `who` sent a message: they are not typing any more.
    pub fn stop_typing(&mut self, who: NodeId, now: u64) -> Option<Change> {
        let was = self.is_typing(who, now);
        self.typing.remove(&who);
        was.then_some(Change::Typing(false))
    }

    /// Whether `who` is shown typing at `now`.
    pub fn is_typing(&self, who: NodeId, now: u64) -> bool {
        self.typing.get(&who).is_some_and(|until| *until > now)
    }

    /// Everyone shown typing at `now`, by id.
    pub fn typists(&self, now: u64) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .typing
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(id, _)| *id)
            .collect();
        v.sort();
        v
    }

    /// `who`'s presence at `now`.
    pub fn availability(&self, who: NodeId, now: u64) -> Availability {
        match self.away.get(&who) {
            Some((text, until)) if *until > now => Availability::Away(text.clone()),
            _ => Availability::Active,
        }
    }

    /// Forgets what expired by `now`; returns the typists who stopped being shown.
    pub fn expire(&mut self, now: u64) -> Vec<NodeId> {
        let mut gone: Vec<NodeId> = self
            .typing
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(id, _)| *id)
            .collect();
        gone.sort();
        self.typing.retain(|_, until| *until > now);
        self.away.retain(|_, (_, until)| *until > now);
        gone
    }

    /// Peers tracked (typing, away), for bounds checks.
    pub fn tracked(&self) -> (usize, usize) {
        (self.typing.len(), self.away.len())
    }
}

/// Inserts into a map of at most [`MAX_TRACKED`] entries, evicting the one that expires
/// first when a new key finds it full.
fn insert_bounded<V>(
    map: &mut HashMap<NodeId, V>,
    key: NodeId,
    value: V,
    until: impl Fn(&V) -> u64,
) {
    if map.len() >= MAX_TRACKED
        && !map.contains_key(&key)
        && let Some(first) = map.iter().min_by_key(|(_, v)| until(v)).map(|(k, _)| *k)
    {
        map.remove(&first);
    }
    map.insert(key, value);
}

/// "ana is typing…", "ana and bo are typing…", "ana, bo and 2 others are typing…".
pub fn typing_line(names: &[String]) -> Option<String> {
    Some(match names {
        [] => return None,
        [a] => format!("{a} is typing…"),
        [a, b] => format!("{a} and {b} are typing…"),
        [a, b, c] => format!("{a}, {b} and {c} are typing…"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} others are typing…", rest.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_700_000_000_000;

    fn id(n: u128) -> NodeId {
        NodeId::from_u128(n)
    }

    #[test]
    fn signals_round_trip_and_hostile_payloads_are_refused() {
        for s in [
            Signal::Typing,
            Signal::StoppedTyping,
            Signal::Active,
            Signal::Away { text: None },
            Signal::away("lunch").unwrap(),
        ] {
            assert_eq!(Signal::decode(&s.encode()), Ok(s));
        }
        assert_eq!(Signal::decode(b"hello"), Err(SignalError::NotASignal));
        assert!(matches!(
            Signal::decode(b"gcsig1\xff\xff"),
            Err(SignalError::Malformed(_))
        ));
        let evil = Signal::Away {
            text: Some("\u{202e}evil".into()),
        };
        assert!(matches!(
            Signal::decode(&evil.encode()),
            Err(SignalError::BadText(_))
        ));
        let long = Signal::Away {
            text: Some("x".repeat(MAX_AWAY_TEXT + 1)),
        };
        assert!(Signal::decode(&long.encode()).is_err());
        assert_eq!(Signal::away("  "), Ok(Signal::Away { text: None }));
    }

    #[test]
    fn keystrokes_send_typing_at_most_every_two_seconds() {
        let mut own = Own::new(T);
        assert_eq!(own.keystroke(T), vec![Signal::Typing]);
        assert!(own.keystroke(T + 500).is_empty());
        assert!(own.keystroke(T + 1_999).is_empty());
        assert_eq!(own.keystroke(T + 2_000), vec![Signal::Typing]);
    }

    #[test]
    fn typing_stops_after_five_quiet_seconds_or_on_send() {
        let mut own = Own::new(T);
        own.keystroke(T);
        assert!(own.tick(T + 4_999, true).is_empty());
        assert_eq!(own.tick(T + 5_000, true), vec![Signal::StoppedTyping]);
        assert!(own.tick(T + 6_000, true).is_empty(), "once");
        own.keystroke(T + 7_000);
        assert_eq!(own.sent(T + 7_100), vec![Signal::StoppedTyping]);
        assert!(own.sent(T + 7_200).is_empty(), "nothing to stop");
    }

    #[test]
    fn idle_for_ten_minutes_is_away_and_a_keystroke_is_back() {
        let mut own = Own::new(T);
        assert!(own.tick(T + AWAY_AFTER_MS - 1, true).is_empty());
        assert_eq!(
            own.tick(T + AWAY_AFTER_MS, true),
            vec![Signal::Away { text: None }]
        );
        assert_eq!(own.availability(), Availability::Away(None));
        let refresh = T + AWAY_AFTER_MS + AWAY_REFRESH_MS;
        assert_eq!(own.tick(refresh, true), vec![Signal::Away { text: None }]);
        assert_eq!(
            own.keystroke(refresh + 1),
            vec![Signal::Active, Signal::Typing]
        );
        assert_eq!(own.availability(), Availability::Active);
        let mut headless = Own::new(T);
        assert!(headless.tick(T + AWAY_AFTER_MS, false).is_empty());
    }

    #[test]
    fn said_away_lasts_until_back_and_is_refreshed() {
        let mut own = Own::new(T);
        assert_eq!(
            own.set_away(Some("lunch".into()), T),
            vec![Signal::Away {
                text: Some("lunch".into())
            }]
        );
        assert!(own.keystroke(T + 1).contains(&Signal::Typing));
        assert_eq!(own.availability(), Availability::Away(Some("lunch".into())));
        assert!(
            own.tick(T + AWAY_REFRESH_MS + 1, true)
                .contains(&Signal::Away {
                    text: Some("lunch".into())
                })
        );
        assert_eq!(own.set_back(T + 2), vec![Signal::Active]);
        assert!(own.set_back(T + 3).is_empty());
    }

    #[test]
    fn typists_show_until_they_stop_or_expire() {
        let mut a = Activity::default();
        assert_eq!(
            a.observe(id(1), &Signal::Typing, T),
            Some(Change::Typing(true))
        );
        assert_eq!(a.observe(id(1), &Signal::Typing, T + 1_000), None);
        a.observe(id(2), &Signal::Typing, T + 1_000);
        assert_eq!(a.typists(T + 2_000), vec![id(1), id(2)]);
        assert_eq!(
            a.observe(id(2), &Signal::StoppedTyping, T + 2_000),
            Some(Change::Typing(false))
        );
        assert_eq!(a.typists(T + 2_000), vec![id(1)]);
        // id(1)'s last note was at T + 1000.
        assert!(a.is_typing(id(1), T + 1_000 + TYPING_SHOWN_MS - 1));
        assert_eq!(a.expire(T + 1_000 + TYPING_SHOWN_MS), vec![id(1)]);
        assert!(a.typists(T + 1_000 + TYPING_SHOWN_MS).is_empty());
    }

    #[test]
    fn away_shows_until_active_or_no_refresh() {
        let mut a = Activity::default();
        let away = Signal::away("lunch").unwrap();
        assert_eq!(
            a.observe(id(1), &away, T),
            Some(Change::Availability(Availability::Away(Some(
                "lunch".into()
            ))))
        );
        assert_eq!(a.observe(id(1), &away, T + 60_000), None);
        assert_eq!(
            a.availability(id(1), T + 60_000 + AWAY_SHOWN_MS - 1),
            Availability::Away(Some("lunch".into()))
        );
        assert_eq!(
            a.availability(id(1), T + 60_000 + AWAY_SHOWN_MS),
            Availability::Active
        );
        assert_eq!(
            a.observe(id(1), &Signal::Active, T + 70_000),
            Some(Change::Availability(Availability::Active))
        );
        assert_eq!(a.observe(id(1), &Signal::Active, T + 70_001), None);
    }

    #[test]
    fn a_crowd_of_typists_is_bounded() {
        let mut a = Activity::default();
        for i in 0..(MAX_TRACKED as u128 + 50) {
            a.observe(id(i), &Signal::Typing, T + i as u64);
            a.observe(id(i), &Signal::Away { text: None }, T + i as u64);
        }
        assert_eq!(a.tracked(), (MAX_TRACKED, MAX_TRACKED));
        assert!(a.is_typing(id(MAX_TRACKED as u128 + 49), T + 2_000));
    }

    #[test]
    fn the_typing_line_names_one_two_or_a_crowd() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(typing_line(&[]), None);
        assert_eq!(typing_line(&n(&["ana"])).unwrap(), "ana is typing…");
        assert_eq!(
            typing_line(&n(&["ana", "bo"])).unwrap(),
            "ana and bo are typing…"
        );
        assert_eq!(
            typing_line(&n(&["ana", "bo", "cy", "di"])).unwrap(),
            "ana, bo and 2 others are typing…"
        );
    }
}
