//! The node's broadcast streams, fed from the engine's [`Emit`] outputs.

use tokio::sync::broadcast;

use crate::protocol::Event;
use crate::protocol::engine::{Emit, ExchangeResult, PeerInfo, ReceivedEvent, Transition};
use crate::protocol::ephemeral::ReceivedEphemeral;
use crate::protocol::equivocation::Equivocation;

/// Capacity of each broadcast stream; a subscriber that lags further loses the oldest items.
pub const STREAM_CAPACITY: usize = 4096;

pub(crate) struct Streams {
    pub(crate) created: broadcast::Sender<Event>,
    pub(crate) received: broadcast::Sender<ReceivedEvent>,
    pub(crate) peer_added: broadcast::Sender<PeerInfo>,
    pub(crate) peer_removed: broadcast::Sender<PeerInfo>,
    pub(crate) peer_state: broadcast::Sender<Transition>,
    pub(crate) exchange: broadcast::Sender<ExchangeResult>,
    pub(crate) equivocation: broadcast::Sender<Equivocation>,
    pub(crate) ephemeral: broadcast::Sender<ReceivedEphemeral>,
}

impl Streams {
    pub(crate) fn new() -> Self {
        Streams {
            created: broadcast::channel(STREAM_CAPACITY).0,
            received: broadcast::channel(STREAM_CAPACITY).0,
            peer_added: broadcast::channel(STREAM_CAPACITY).0,
            peer_removed: broadcast::channel(STREAM_CAPACITY).0,
            peer_state: broadcast::channel(STREAM_CAPACITY).0,
            exchange: broadcast::channel(STREAM_CAPACITY).0,
            equivocation: broadcast::channel(STREAM_CAPACITY).0,
            ephemeral: broadcast::channel(STREAM_CAPACITY).0,
        }
    }

    /// Sends `e` to its stream's subscribers (none listening is not an error).
    pub(crate) fn emit(&self, e: Emit) {
        match e {
            Emit::Created(ev) => {
                let _ = self.created.send(ev);
            }
            Emit::Received(r) => {
                let _ = self.received.send(r);
            }
            Emit::PeerAdded(p) => {
                tracing::info!(peer = %p.id, addr = %p.addr, "peer added");
                let _ = self.peer_added.send(p);
            }
            Emit::PeerRemoved(p) => {
                let _ = self.peer_removed.send(p);
            }
            Emit::PeerState(t) => {
                tracing::info!(peer = %t.id, from = t.from.name(), to = t.to.name(), "peer state");
                let _ = self.peer_state.send(t);
            }
            Emit::Exchange(r) => {
                let _ = self.exchange.send(r);
            }
            Emit::Equivocation(eq) => {
                let _ = self.equivocation.send(eq);
            }
            Emit::Ephemeral(e) => {
                let _ = self.ephemeral.send(e);
            }
        }
    }
}
