//! Who is who, as the session sees it: every origin's nickname (for peer rows and rename
//! notices), its key and the times of its events (for `/whois`). Folded from the same
//! events as the model, so names here and in the chat agree.

use std::collections::BTreeMap;

use crate::app::AppOp;
use crate::app::model::nick::{Nicks, disambiguated};
use crate::app::model::stamp::Stamp;
use crate::auth::PUBLIC_KEY_LEN;
use crate::protocol::{Event, NodeId};

/// What the events held say about one origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginSeen {
    /// Its earliest event's time (its clock, ms since the epoch); identity events, which
    /// carry no time, are left out.
    pub first_ms: Option<u64>,
    /// Its latest event's time.
    pub last_ms: Option<u64>,
    /// Its ed25519 key, from its identity event.
    pub key: Option<[u8; PUBLIC_KEY_LEN]>,
}

/// Nicknames and origin facts, folded from events in any order.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    nicks: Nicks,
    origins: BTreeMap<NodeId, OriginSeen>,
}

/// A rename one event made: `(from, to)`.
pub type Rename = (String, String);

impl Roster {
    /// Folds one event in; returns the rename it made, if it changed a name already known.
    /// Duplicates are harmless (the nick registers ignore an equal stamp).
    pub fn observe(&mut self, e: &Event) -> Option<Rename> {
        let seen = self.origins.entry(e.origin).or_default();
        if let Some(key) = crate::auth::identity_key_of(&e.payload) {
            seen.key = Some(key);
            return None;
        }
        seen.first_ms = Some(
            seen.first_ms
                .map_or(e.created_at_ms, |t| t.min(e.created_at_ms)),
        );
        seen.last_ms = Some(
            seen.last_ms
                .map_or(e.created_at_ms, |t| t.max(e.created_at_ms)),
        );
        let Ok(AppOp::Nick { name }) = AppOp::decode(&e.payload) else {
            return None;
        };
        AppOp::nick(&name).ok()?;
        let before = self.nicks.get(e.origin).map(str::to_string);
        if !self.nicks.set(Stamp::of(e), name.clone()) {
            return None;
        }
        before.filter(|b| *b != name).map(|b| (b, name))
    }

    /// The nickname `id` chose, if any.
    pub fn nick(&self, id: NodeId) -> Option<&str> {
        self.nicks.get(id)
    }

    /// The name shown for `id`: its nickname (with a short id when shared), else
    /// `fallback` (say its mDNS name, with a short id when a nickname is the same), else
    /// its short id. The same rule as the chat's, so a peer row and its messages agree.
    pub fn display(&self, id: NodeId, fallback: Option<&str>) -> String {
        match (self.nicks.get(id), fallback) {
            (Some(_), _) => self.nicks.display(id).into_owned(),
            (None, Some(name)) if self.nicks.holders(name) > 0 => disambiguated(name, id),
            (None, Some(name)) => name.to_string(),
            (None, None) => id.short(),
        }
    }

    /// The origins whose nickname or shown name is `name`, case-insensitively (a leading
    /// `@` is ignored).
    pub fn named(&self, name: &str) -> Vec<NodeId> {
        let name = name.trim().trim_start_matches('@');
        self.nicks
            .iter()
            .filter(|(id, nick)| {
                nick.eq_ignore_ascii_case(name)
                    || self.nicks.display(*id).eq_ignore_ascii_case(name)
            })
            .map(|(id, _)| id)
            .collect()
    }

    /// What is known about `id`'s events.
    pub fn seen(&self, id: NodeId) -> Option<&OriginSeen> {
        self.origins.get(&id)
    }
}

/// A key's fingerprint: the first 8 bytes of its SHA-256, as four groups of four hex
/// digits (`3f2a 9c01 77be 0d45`).
pub fn fingerprint(key: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key);
    let hex = crate::app::model::op::hex(digest.get(..8).unwrap_or_default());
    let groups: Vec<&str> = (0..hex.len())
        .step_by(4)
        .filter_map(|i| hex.get(i..i + 4))
        .collect();
    groups.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(origin: u128, seq: u64, hlc: u64, created: u64, payload: Vec<u8>) -> Event {
        Event {
            id: uuid::Uuid::from_u128(origin << 64 | u128::from(seq)),
            origin: NodeId::from_u128(origin),
            seq,
            hlc,
            created_at_ms: created,
            payload: payload.into(),
            sig: Default::default(),
        }
    }

    fn nick(origin: u128, seq: u64, name: &str) -> Event {
        event(
            origin,
            seq,
            seq,
            1000 * seq,
            AppOp::nick(name).unwrap().encode().unwrap(),
        )
    }

    #[test]
    fn renames_are_reported_once_and_only_for_known_names() {
        let mut r = Roster::default();
        assert_eq!(r.observe(&nick(1, 2, "cy")), None);
        assert_eq!(
            r.observe(&nick(1, 3, "cyrus")),
            Some(("cy".into(), "cyrus".into()))
        );
        // A duplicate, or an older nick arriving late, is no rename.
        assert_eq!(r.observe(&nick(1, 3, "cyrus")), None);
        assert_eq!(r.observe(&nick(1, 1, "old")), None);
        assert_eq!(r.nick(NodeId::from_u128(1)), Some("cyrus"));
    }

    #[test]
    fn names_follow_the_chat_rule_and_find_origins() {
        let mut r = Roster::default();
        let (a, b) = (NodeId::from_u128(0xa << 124), NodeId::from_u128(0xb << 124));
        r.observe(&nick(0xa << 124, 2, "me@vm"));
        assert_eq!(r.display(a, None), "me@vm");
        // b has no nick yet but announces the same name over mDNS.
        assert_eq!(r.display(b, Some("me@vm")), disambiguated("me@vm", b));
        assert_eq!(r.display(b, Some("bo")), "bo");
        assert_eq!(r.display(b, None), b.short());
        r.observe(&nick(0xb << 124, 2, "me@vm"));
        assert_eq!(r.named("ME@VM"), vec![a, b]);
        assert_eq!(r.named(&disambiguated("me@vm", b)), vec![b]);
        assert!(r.named("nobody").is_empty());
    }

    #[test]
    fn origins_keep_their_key_and_event_times() {
        let mut r = Roster::default();
        let key = [7u8; PUBLIC_KEY_LEN];
        r.observe(&event(
            1,
            1,
            1,
            0,
            crate::auth::identity_payload(&key).to_vec(),
        ));
        r.observe(&nick(1, 5, "x"));
        r.observe(&nick(1, 2, "y"));
        let seen = r.seen(NodeId::from_u128(1)).unwrap();
        assert_eq!(seen.key, Some(key));
        assert_eq!((seen.first_ms, seen.last_ms), (Some(2000), Some(5000)));
        let fp = fingerprint(&key);
        assert_eq!(fp.len(), 19);
        assert_eq!(fp.split(' ').count(), 4);
    }
}
