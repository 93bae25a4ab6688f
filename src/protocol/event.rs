//! Events and node identities.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::varint_len;

/// The identity of a node: a UUID kept with the node's store, so a restarted node keeps it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub Uuid);

impl NodeId {
    /// A fresh random id (UUID v4).
    pub fn random() -> Self {
        NodeId(Uuid::new_v4())
    }

    /// The nil id, never used by a real node.
    pub const NIL: NodeId = NodeId(Uuid::nil());

    /// An id built from a number, for tests and the simulator (deterministic).
    pub fn from_u128(n: u128) -> Self {
        NodeId(Uuid::from_u128(n))
    }

    /// The first 8 hex digits, for screens and logs.
    pub fn short(&self) -> String {
        let s = self.0.simple().to_string();
        s[..8].to_string()
    }

    /// Whether this is the nil id (an invalid node id).
    pub fn is_nil(&self) -> bool {
        self.0.is_nil()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for NodeId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim()).map(NodeId)
    }
}

/// One event: an opaque payload stamped with its origin's counter and a hybrid logical clock.
///
/// `(origin, seq)` names an event uniquely: `seq` is the origin's own counter, starting at 1
/// with no gaps. Sorting by [`Event::order_key`] gives a total order consistent with
/// causality that also places an event typed now after the history it joins.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// A UUID v7 (time-ordered), unique per event.
    pub id: Uuid,
    /// The node that created the event.
    pub origin: NodeId,
    /// The origin's counter: 1, 2, 3, ...
    pub seq: u64,
    /// Hybrid logical clock, packed as `(wall-clock ms << 16) | counter` (see
    /// [`super::hlc`]): `max(pack(now, 0), highest HLC the origin had seen + 1)`.
    pub hlc: u64,
    /// Wall-clock creation time at the origin, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The application's bytes, opaque to the library.
    pub payload: Bytes,
    /// The origin's ed25519 signature over every other field (see [`crate::auth`]), or
    /// empty for an unsigned event (a node without an identity).
    pub sig: Bytes,
}

impl Event {
    /// The total order used by applications: `(hlc, origin, seq)`.
    pub fn order_key(&self) -> (u64, NodeId, u64) {
        (self.hlc, self.origin, self.seq)
    }

    /// The `(origin, seq)` pair that names this event.
    pub fn key(&self) -> (NodeId, u64) {
        (self.origin, self.seq)
    }

    /// The exact size of this event's encoding on its own ([`super::codec::encode`]),
    /// computed without encoding it.
    pub fn encoded_len(&self) -> usize {
        UUID_LEN + varint_len(self.seq) + self.body_len()
    }

    /// The encoded size of the fields an event keeps as the first of a run of its origin's
    /// events (everything but `origin` and `seq`), see [`super::runs`]; later events of a
    /// run cost [`super::runs::body_len_after`].
    pub fn body_len(&self) -> usize {
        UUID_LEN
            + varint_len(self.hlc)
            + varint_len(self.created_at_ms)
            + varint_len(self.payload.len() as u64)
            + self.payload.len()
            + varint_len(self.sig.len() as u64)
            + self.sig.len()
    }

    /// The SHA-256 of `domain` and every field (fixed-width integers, length-prefixed bytes,
    /// the signature included): one event's hash for one purpose, named by `domain`
    /// ([`super::chain::chain_hash`], [`super::equivocation::digest`]).
    pub fn digest_with(&self, domain: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(domain);
        h.update(self.id.as_bytes());
        h.update(self.origin.0.as_bytes());
        h.update(self.seq.to_le_bytes());
        h.update(self.hlc.to_le_bytes());
        h.update(self.created_at_ms.to_le_bytes());
        h.update((self.payload.len() as u64).to_le_bytes());
        h.update(&self.payload);
        h.update((self.sig.len() as u64).to_le_bytes());
        h.update(&self.sig);
        h.finalize().into()
    }

    /// Whether the event carries a signature.
    pub fn is_signed(&self) -> bool {
        !self.sig.is_empty()
    }
}

/// A UUID encodes as a length byte and its 16 bytes.
pub(crate) const UUID_LEN: usize = 17;

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("origin", &self.origin)
            .field("seq", &self.seq)
            .field("hlc", &self.hlc)
            .field("created_at_ms", &self.created_at_ms)
            .field("payload_len", &self.payload.len())
            .field("signed", &self.is_signed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            id: Uuid::now_v7(),
            origin: NodeId::from_u128(7),
            seq: 3,
            hlc: 9,
            created_at_ms: 1_700_000_000_000,
            payload: Bytes::from_static(b"hello"),
            sig: bytes::Bytes::new(),
        }
    }

    #[test]
    fn event_round_trips_through_bincode() {
        let e = sample();
        let bytes = crate::protocol::codec::encode(&e).unwrap();
        let back: Event = crate::protocol::codec::decode(&bytes, 1 << 20).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn encoded_len_is_exact() {
        let mut e = sample();
        for (seq, hlc, created, len) in [
            (1u64, 1u64, 0u64, 1usize),
            (300, 70_000, 1_700_000_000_000, 250),
            (u64::MAX, u64::MAX, u64::MAX, 70_000),
        ] {
            e.seq = seq;
            e.hlc = hlc;
            e.created_at_ms = created;
            e.payload = Bytes::from(vec![7u8; len]);
            e.sig = Bytes::from(vec![9u8; len % 65]);
            assert_eq!(
                e.encoded_len(),
                crate::protocol::codec::encode(&e).unwrap().len()
            );
        }
    }

    #[test]
    fn events_differ_when_any_field_differs() {
        let e = sample();
        let mut other = e.clone();
        assert_eq!(e, other);
        other.payload = Bytes::from_static(b"hellO");
        assert_ne!(e, other);
        let mut other = e.clone();
        other.hlc += 1;
        assert_ne!(e, other);
    }

    #[test]
    fn order_key_sorts_by_hlc_then_origin_then_seq() {
        let mut a = sample();
        let mut b = sample();
        a.hlc = 1;
        b.hlc = 2;
        assert!(a.order_key() < b.order_key());
        b.hlc = 1;
        b.origin = NodeId::from_u128(8);
        assert!(a.order_key() < b.order_key());
    }

    #[test]
    fn node_id_parses_and_prints() {
        let id = NodeId::random();
        let back: NodeId = id.to_string().parse().unwrap();
        assert_eq!(id, back);
        assert_eq!(id.short().len(), 8);
        assert!("not-a-uuid".parse::<NodeId>().is_err());
    }
}
