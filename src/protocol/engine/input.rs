//! What a driver feeds into the [`super::Engine`]: commands, transport results, store
//! answers and fired timers.

use bytes::Bytes;

use crate::protocol::clock::VectorClock;
use crate::protocol::ephemeral::Ephemeral;
use crate::protocol::event::{Event, NodeId};
use crate::protocol::message::Message;
use crate::protocol::peer::Peer;

use super::output::Timer;

/// Names a caller's command, so its [`super::Output::Done`] finds its way back.
pub type Ticket = u64;

/// Names one outbound exchange (its requests, in every pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExchangeId(pub u64);

/// Names one inbound request awaiting its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Names one store read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchId(pub u64);

/// Names one store write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaveId(pub u64);

/// What the store holds when the engine starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreState {
    /// Per origin, the highest seq held contiguously from 1.
    pub clock: VectorClock,
    /// The highest own seq held, gaps or not.
    pub own_latest_seq: u64,
    /// The highest HLC held.
    pub max_hlc: u64,
    /// The persisted own-seq reservation (0 if none), see [`crate::protocol::own_seq`].
    pub seq_reservation: u64,
    /// The chain hash of the own event held at `own_latest_seq`, if any: the next own
    /// event's seal links to it ([`crate::protocol::chain`]).
    pub own_tail: Option<crate::protocol::chain::ChainHash>,
}

/// What happened to one event of a [`super::Output::Save`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It was new and is now held.
    Inserted,
    /// The same event was held already.
    Duplicate,
    /// A different event was held under its `(origin, seq)`: an equivocation, which the
    /// store resolved by [`crate::protocol::equivocation::resolve`].
    Equivocation {
        /// The event held before this save.
        held: Box<Event>,
        /// Whether the new event won and replaced it.
        replaced: bool,
    },
    /// A different event is held under its `(origin, seq)` and the new one was refused by
    /// a store that does not resolve equivocations (counted as one the held event won).
    Conflict,
    /// The driver refused it before the store, for this reason (a signature that does not
    /// verify). Not held.
    Refused(String),
    /// The driver could not check it yet: its origin's key is unknown (the identity event,
    /// seq 1, is not held). Not held, not a forgery: a round brings the identity first.
    KeyUnknown,
}

/// One input to [`super::Engine::handle`].
#[derive(Debug)]
pub enum Input {
    /// Start with what the store holds. Answered by `Done::Started`.
    Start {
        /// The caller's ticket.
        ticket: Ticket,
        /// What the store holds.
        store: StoreState,
    },
    /// Stop: exchanges in flight are forgotten, timers of this run are ignored.
    Stop,
    /// Add a peer or update its address.
    AddPeer(Peer),
    /// Forget a peer.
    RemovePeer(NodeId),
    /// Set a peer's display name.
    SetPeerName(NodeId, String),
    /// A peer is gone now (discovery lost it, its connection closed).
    MarkOffline {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: String,
    },
    /// Create an own event with this payload. Answered by `Done::Created`.
    Create {
        /// The caller's ticket.
        ticket: Ticket,
        /// The payload.
        payload: Bytes,
    },
    /// One round now. Answered by `Done::Exchanges`.
    Gossip {
        /// The caller's ticket.
        ticket: Ticket,
    },
    /// One exchange with a known peer now. Answered by `Done::Exchange`.
    GossipWith {
        /// The caller's ticket.
        ticket: Ticket,
        /// The peer.
        peer: NodeId,
    },
    /// Anti-entropy now: an exchange with every peer. Answered by `Done::Exchanges`.
    AntiEntropy {
        /// The caller's ticket.
        ticket: Ticket,
    },
    /// A message from a peer.
    Received {
        /// The sender.
        from: Peer,
        /// The message.
        message: Message,
        /// Set when the sender awaits a response (answer with `Output::Respond`).
        request: Option<RequestId>,
        /// Bytes it took on the wire.
        wire_bytes: usize,
    },
    /// The response to an `Output::Request`.
    Response {
        /// The exchange.
        exchange: ExchangeId,
        /// The response.
        message: Message,
        /// Bytes it took on the wire.
        wire_bytes: usize,
    },
    /// An `Output::Request` failed (timeout, unreachable, closed).
    RequestFailed {
        /// The exchange.
        exchange: ExchangeId,
        /// Why.
        error: String,
    },
    /// A peer's connection closed.
    Disconnected {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: String,
    },
    /// The transport refused input (a bad frame, a failed handshake).
    Rejected {
        /// The peer, if it identified itself.
        peer: Option<NodeId>,
        /// What was wrong, and from where.
        error: String,
    },
    /// The answer to an `Output::Fetch`.
    Fetched {
        /// The read.
        fetch: FetchId,
        /// The store's clock now.
        clock: VectorClock,
        /// The events asked for, per want in seq order.
        events: Vec<Event>,
    },
    /// An `Output::Fetch` failed.
    FetchFailed {
        /// The read.
        fetch: FetchId,
        /// Why.
        error: String,
    },
    /// The answer to an `Output::Save`: one verdict per event, in order.
    Saved {
        /// The write.
        save: SaveId,
        /// The verdicts.
        verdicts: Vec<Verdict>,
    },
    /// An `Output::Save` failed as a whole.
    SaveFailed {
        /// The write.
        save: SaveId,
        /// Why.
        error: String,
    },
    /// A timer the engine scheduled is due.
    TimerFired(Timer),
    /// The answer to an `Output::Reserve`: the reservation is durable.
    Reserved {
        /// The reservation now persisted.
        up_to: u64,
    },
    /// An `Output::Reserve` failed: own events cannot be signed.
    ReserveFailed {
        /// Why.
        error: String,
    },
    /// Where this node can be reached (`ip:port`, most useful first), for its signed peer
    /// record ([`super::pex`]). Told again when it changes; the same list is a no-op.
    OwnAddrs(Vec<String>),
    /// Send an ephemeral note to the direct peers. Answered by `Done::Ephemeral`.
    BroadcastEphemeral {
        /// The caller's ticket.
        ticket: Ticket,
        /// The payload (1 to [`crate::protocol::ephemeral::MAX_EPHEMERAL_PAYLOAD`] bytes).
        payload: Bytes,
        /// Relays allowed beyond the direct peers (at most
        /// [`crate::protocol::ephemeral::MAX_EPHEMERAL_HOPS`]).
        ttl: u8,
    },
    /// The answer to an `Output::CheckEphemeral`.
    EphemeralChecked {
        /// The peer it came from.
        from: NodeId,
        /// The ephemeral, as the output gave it.
        ephemeral: Ephemeral,
        /// `Ok` if its signature is its origin's (or this node does not verify).
        result: Result<(), String>,
    },
}
