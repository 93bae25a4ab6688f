//! The messages of the 3-phase exchange.

use serde::{Deserialize, Serialize};

use super::clock::VectorClock;
use super::event::{Event, NodeId};

/// One protocol message. Transports carry these; the exchange logic produces them.
///
/// An exchange started by A with B:
/// 1. A -> B [`Message::Digest`]: A's clock.
/// 2. B -> A [`Message::DigestResponse`]: the events B holds beyond A's clock, and B's clock.
/// 3. A -> B [`Message::Push`]: the events A holds beyond B's clock.
///
/// A `Push` also carries new events eagerly, outside any exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Phase 1: "this is what I hold".
    Digest {
        /// The sender.
        from: NodeId,
        /// The sender's vector clock.
        clock: VectorClock,
    },
    /// Phase 2: "here is what you lack, and this is what I hold".
    DigestResponse {
        /// The sender.
        from: NodeId,
        /// Events beyond the digest's clock, per origin in seq order, possibly cut.
        #[serde(with = "super::runs")]
        events: Vec<Event>,
        /// The sender's vector clock.
        clock: VectorClock,
    },
    /// Phase 3, or an eager push: events the receiver lacks.
    Push {
        /// The sender.
        from: NodeId,
        /// Events, per origin in seq order.
        #[serde(with = "super::runs")]
        events: Vec<Event>,
    },
}

impl Message {
    /// The node that sent this message.
    pub fn from(&self) -> NodeId {
        match self {
            Message::Digest { from, .. }
            | Message::DigestResponse { from, .. }
            | Message::Push { from, .. } => *from,
        }
    }

    /// A short name of the message kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Digest { .. } => "Digest",
            Message::DigestResponse { .. } => "DigestResponse",
            Message::Push { .. } => "Push",
        }
    }

    /// The events this message carries.
    pub fn events(&self) -> &[Event] {
        match self {
            Message::Digest { .. } => &[],
            Message::DigestResponse { events, .. } | Message::Push { events, .. } => events,
        }
    }

    /// The exact encoded size of this message in bytes.
    pub fn encoded_len(&self) -> usize {
        super::codec::encoded_len(self)
    }
}
