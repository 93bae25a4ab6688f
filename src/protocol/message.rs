//! The messages of the 3-phase exchange.

use serde::{Deserialize, Serialize};

use super::blob::{BlobAnswer, BlobId, BlobPart};
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
    /// Lazy push (PlumTree): "I hold these events"; the receiver grafts what it misses.
    IHave {
        /// The sender.
        from: NodeId,
        /// Runs of `(origin, seq)` the sender holds.
        ranges: Vec<SeqRange>,
    },
    /// "Send me these events, and push eagerly to me from now on."
    Graft {
        /// The sender.
        from: NodeId,
        /// Runs of `(origin, seq)` the sender misses.
        ranges: Vec<SeqRange>,
    },
    /// "Your pushes reach me by another path: only announce (IHave) from now on."
    Prune {
        /// The sender.
        from: NodeId,
    },
    /// Liveness: "are you there?" (a request, answered by [`Message::Pong`]). Sent to a
    /// peer that has been quiet for a probe interval; see `engine::detector`.
    Ping {
        /// The sender.
        from: NodeId,
    },
    /// The answer to a [`Message::Ping`].
    Pong {
        /// The sender.
        from: NodeId,
    },
    /// SWIM's ping-req (a request): "ping `target` for me", answered by
    /// [`Message::PingAck`] once the receiver's own ping of it ended.
    PingReq {
        /// The sender.
        from: NodeId,
        /// The peer to probe.
        target: NodeId,
    },
    /// The answer to a [`Message::PingReq`]: whether `target` answered the sender's ping.
    PingAck {
        /// The sender (the helper).
        from: NodeId,
        /// The probed peer.
        target: NodeId,
        /// True if it answered.
        alive: bool,
    },
    /// Peer exchange (one-way): signed address records of live members.
    Peers {
        /// The sender.
        from: NodeId,
        /// Records, each signed by the node it describes.
        records: Vec<super::peer_record::PeerRecord>,
    },
    /// "Send me this part of this blob" (a request; see [`super::blob`]).
    BlobGet {
        /// The sender.
        from: NodeId,
        /// The blob.
        blob: BlobId,
        /// Which part.
        part: BlobPart,
    },
    /// The answer to a [`Message::BlobGet`].
    BlobData {
        /// The sender.
        from: NodeId,
        /// The blob.
        blob: BlobId,
        /// The part, or why not.
        answer: BlobAnswer,
    },
}

/// The seqs `first..=last` of one origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    /// The origin.
    pub origin: NodeId,
    /// The first seq.
    pub first: u64,
    /// The last seq (inclusive).
    pub last: u64,
}

impl SeqRange {
    /// `(origin, seq)` pairs as ranges, runs of consecutive seqs merged.
    pub fn runs(mut ids: Vec<(NodeId, u64)>) -> Vec<SeqRange> {
        ids.sort_unstable();
        ids.dedup();
        let mut out: Vec<SeqRange> = Vec::new();
        for (origin, seq) in ids {
            match out.last_mut() {
                Some(r) if r.origin == origin && r.last.checked_add(1) == Some(seq) => r.last = seq,
                _ => out.push(SeqRange {
                    origin,
                    first: seq,
                    last: seq,
                }),
            }
        }
        out
    }
}

impl Message {
    /// The node that sent this message.
    pub fn from(&self) -> NodeId {
        match self {
            Message::Digest { from, .. }
            | Message::DigestResponse { from, .. }
            | Message::Push { from, .. }
            | Message::IHave { from, .. }
            | Message::Graft { from, .. }
            | Message::Prune { from }
            | Message::Ping { from }
            | Message::Pong { from }
            | Message::PingReq { from, .. }
            | Message::PingAck { from, .. }
            | Message::Peers { from, .. }
            | Message::BlobGet { from, .. }
            | Message::BlobData { from, .. } => *from,
        }
    }

    /// A short name of the message kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Digest { .. } => "Digest",
            Message::DigestResponse { .. } => "DigestResponse",
            Message::Push { .. } => "Push",
            Message::IHave { .. } => "IHave",
            Message::Graft { .. } => "Graft",
            Message::Prune { .. } => "Prune",
            Message::Ping { .. } => "Ping",
            Message::Pong { .. } => "Pong",
            Message::PingReq { .. } => "PingReq",
            Message::PingAck { .. } => "PingAck",
            Message::Peers { .. } => "Peers",
            Message::BlobGet { .. } => "BlobGet",
            Message::BlobData { .. } => "BlobData",
        }
    }

    /// The events this message carries.
    pub fn events(&self) -> &[Event] {
        match self {
            Message::Digest { .. }
            | Message::IHave { .. }
            | Message::Graft { .. }
            | Message::Prune { .. }
            | Message::Ping { .. }
            | Message::Pong { .. }
            | Message::PingReq { .. }
            | Message::PingAck { .. }
            | Message::Peers { .. }
            | Message::BlobGet { .. }
            | Message::BlobData { .. } => &[],
            Message::DigestResponse { events, .. } | Message::Push { events, .. } => events,
        }
    }

    /// The exact encoded size of this message in bytes.
    pub fn encoded_len(&self) -> usize {
        super::codec::encoded_len(self)
    }
}
