//! What the [`super::Engine`] asks its driver to do: sends, store reads and writes, timers,
//! and what to tell the world.

use std::time::Duration;

use crate::protocol::equivocation::Equivocation;
use crate::protocol::event::{Event, NodeId};
use crate::protocol::exchange::Want;
use crate::protocol::message::Message;
use crate::protocol::peer::Peer;

use super::input::{ExchangeId, FetchId, RequestId, SaveId, Ticket};
use super::liveness::{PeerInfo, Transition};

/// A timer the engine wants fired. `run` is the start it belongs to: a timer of an earlier
/// run is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The next gossip round.
    Round {
        /// The run.
        run: u64,
    },
    /// The next anti-entropy sweep.
    AntiEntropy {
        /// The run.
        run: u64,
    },
    /// The failure detector's next tick ([`super::detector`]).
    Probe {
        /// The run.
        run: u64,
    },
    /// Graft `(origin, seq)` if it is still missing (lazy push).
    Graft {
        /// The run.
        run: u64,
        /// The announced event's origin.
        origin: NodeId,
        /// Its seq.
        seq: u64,
    },
}

/// Who started an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We sent the digest.
    Outbound,
    /// A peer sent us its digest (or something we refused).
    Inbound,
}

/// What one exchange did.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeResult {
    /// The peer (nil if it never identified itself).
    pub peer: NodeId,
    /// Who started it.
    pub direction: Direction,
    /// Whether it completed.
    pub success: bool,
    /// Events we sent.
    pub events_sent: usize,
    /// New events we received.
    pub events_received: usize,
    /// Encoded message bytes, both ways.
    pub bytes: usize,
    /// Time from first send to last receive, on the engine's clock.
    pub duration: Duration,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl ExchangeResult {
    /// An exchange (or inbound input) that failed with `error` and moved nothing.
    pub fn failed(
        peer: NodeId,
        direction: Direction,
        duration: Duration,
        error: impl Into<String>,
    ) -> Self {
        ExchangeResult {
            peer,
            direction,
            success: false,
            events_sent: 0,
            events_received: 0,
            bytes: 0,
            duration,
            error: Some(error.into()),
        }
    }
}

/// An event received from a peer, with the peer that delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The event.
    pub event: Event,
    /// The peer it came from (not necessarily its origin).
    pub from: NodeId,
}

/// What the engine tells the world (the node's streams).
#[derive(Debug, Clone, PartialEq)]
pub enum Emit {
    /// An own event is stored.
    Created(Event),
    /// An event new to this node is stored.
    Received(ReceivedEvent),
    /// A peer was added.
    PeerAdded(PeerInfo),
    /// A peer was removed.
    PeerRemoved(PeerInfo),
    /// A peer changed state.
    PeerState(Transition),
    /// An exchange ended, or inbound input was refused.
    Exchange(ExchangeResult),
    /// Two different events of one origin under one seq were seen; the record says which
    /// one every node keeps.
    Equivocation(Equivocation),
}

/// Why an own event was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The engine is not started.
    #[error("the node is not started")]
    NotStarted,
    /// The payload is empty.
    #[error("an event payload must not be empty")]
    EmptyPayload,
    /// The event could never fit in a message.
    #[error("event of {size} encoded bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// The largest allowed.
        limit: usize,
    },
    /// The store already holds the seq (or refused the write).
    #[error("{0}")]
    Store(String),
}

/// The answer to a command that carried a ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    /// `Input::Start`: started, or why not.
    Started(Result<(), CreateError>),
    /// `Input::Create`: the stored event, or why not.
    Created(Result<Event, CreateError>),
    /// `Input::GossipWith`: the exchange's result.
    Exchange(ExchangeResult),
    /// `Input::Gossip` / `Input::AntiEntropy`: the results of every exchange started.
    Exchanges(Vec<ExchangeResult>),
}

/// One thing for the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a one-way message.
    Send {
        /// The peer.
        to: Peer,
        /// The message.
        message: Message,
    },
    /// Send a request; answer with `Input::Response` or `Input::RequestFailed` (the driver
    /// owns the timeout).
    Request {
        /// The peer.
        to: Peer,
        /// The exchange it belongs to.
        exchange: ExchangeId,
        /// The message.
        message: Message,
        /// Give up after this long.
        timeout: Duration,
    },
    /// Answer an inbound request.
    Respond {
        /// The request.
        request: RequestId,
        /// The response.
        message: Message,
    },
    /// Read the store: its clock, and for each want in order, that origin's events after
    /// `want.after` in seq order, `limit` events in all. Answer with `Input::Fetched`.
    Fetch {
        /// The read.
        fetch: FetchId,
        /// What to read.
        wants: Vec<Want>,
        /// At most this many events in all.
        limit: usize,
    },
    /// Write events to the store; answer with `Input::Saved` (one verdict per event).
    /// `own` events must be durable before the answer; received ones may be answered once
    /// their verdicts are decided.
    Save {
        /// The write.
        save: SaveId,
        /// The events.
        events: Vec<Event>,
        /// True for this node's own events (already signed).
        own: bool,
        /// The peer they came from (nil for own events).
        from: NodeId,
    },
    /// Make the own-seq reservation `up_to` durable (fsynced) before any event under it is
    /// signed; answer with `Input::Reserved` or `Input::ReserveFailed`.
    Reserve {
        /// The new reservation.
        up_to: u64,
    },
    /// Fire `timer` at `at` (ms, on the engine's clock).
    ScheduleTimer {
        /// When.
        at: u64,
        /// Which.
        timer: Timer,
    },
    /// Tell the world.
    Emit(Emit),
    /// A command finished.
    Done {
        /// The command's ticket.
        ticket: Ticket,
        /// How it ended.
        done: Done,
    },
}
