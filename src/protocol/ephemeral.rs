//! Ephemeral messages: small signed notes ("typing", "away") for the peers of the moment.
//!
//! An ephemeral is not an event: it is never stored, has no seq, never enters the vector
//! clock or a digest, and a node that was not connected when it was sent never sees it. It
//! goes to the sender's direct peers, and each receiver relays it once more to its own
//! peers while `hops` is above zero (bounded by [`MAX_EPHEMERAL_HOPS`]), so a room that is
//! not fully meshed still hears it. The rules (dedupe, hop bound, age, rate per peer) are
//! in [`crate::protocol::engine::ephemeral`].
//!
//! It is signed by its origin as an [`Event`] with seq 0 and HLC 0 (see
//! [`Ephemeral::signed_form`]): no store accepts seq 0, so a signed ephemeral can never be
//! replayed into a log, and the event signature code serves both. `hops` is not signed:
//! relays lower it, and a hostile relay can only lower it further or raise it up to the
//! bound the receivers enforce anyway.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::{Event, NodeId};

/// The most relays an ephemeral may take beyond the sender's direct peers; a larger
/// `hops` is lowered to this on receipt.
pub const MAX_EPHEMERAL_HOPS: u8 = 2;

/// The largest ephemeral payload, in bytes: they are notes, not messages.
pub const MAX_EPHEMERAL_PAYLOAD: usize = 1024;

/// How far an ephemeral's creation time may be from the receiver's clock (either way)
/// before it is dropped as stale: its dedupe memory lasts longer than this, so an old one
/// cannot be replayed.
pub const EPHEMERAL_MAX_AGE_MS: u64 = 30_000;

/// One ephemeral message, as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ephemeral {
    /// The node that wrote it.
    pub origin: NodeId,
    /// Random, unique per origin: receivers drop copies they have seen.
    pub id: Uuid,
    /// The origin's wall clock when it was written (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// How many more times it may be relayed.
    pub hops: u8,
    /// The application's bytes.
    pub payload: Bytes,
    /// The origin's ed25519 signature over [`Ephemeral::signed_form`] (empty on an
    /// unsigned node).
    pub sig: Bytes,
}

impl Ephemeral {
    /// The event whose signature an ephemeral carries: its fields, with seq 0 and HLC 0.
    pub fn signed_form(&self) -> Event {
        Event {
            id: self.id,
            origin: self.origin,
            seq: 0,
            hlc: 0,
            created_at_ms: self.created_at_ms,
            payload: self.payload.clone(),
            sig: self.sig.clone(),
        }
    }

    /// `(origin, id)`: what copies of one ephemeral share.
    pub fn key(&self) -> (NodeId, Uuid) {
        (self.origin, self.id)
    }
}

/// An ephemeral delivered to this node, for the app's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEphemeral {
    /// Who wrote it.
    pub origin: NodeId,
    /// The direct peer it came from (the origin, or a relay).
    pub from: NodeId,
    /// The origin's wall clock when it was written.
    pub created_at_ms: u64,
    /// The application's bytes.
    pub payload: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_form_is_a_seq_zero_event_that_no_store_takes() {
        let e = Ephemeral {
            origin: NodeId::from_u128(1),
            id: Uuid::from_u128(2),
            created_at_ms: 3,
            hops: 1,
            payload: Bytes::from_static(b"typing"),
            sig: Bytes::new(),
        };
        let ev = e.signed_form();
        assert_eq!((ev.seq, ev.hlc, ev.created_at_ms), (0, 0, 3));
        assert_eq!(ev.payload, e.payload);
        let mut relayed = e.clone();
        relayed.hops = 0;
        assert_eq!(relayed.signed_form(), ev, "hops are not signed");
    }
}
