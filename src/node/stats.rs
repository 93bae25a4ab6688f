//! Counters of a node, and the result of one exchange.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::protocol::NodeId;

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
    /// Wall time from first send to last receive.
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

/// A snapshot of a node's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Events created here.
    pub events_created: u64,
    /// New events received from peers.
    pub events_received: u64,
    /// Received events already held.
    pub duplicates: u64,
    /// Received events conflicting with a held one under the same `(origin, seq)`.
    pub conflicts: u64,
    /// Received events that were malformed (seq 0, too large, ...).
    pub invalid_events: u64,
    /// Received events refused by signature checks (bad or missing signature, a key that
    /// is not the origin's, or an origin whose key is not held yet); never stored or relayed.
    pub rejected_events: u64,
    /// Exchanges that completed.
    pub exchanges_ok: u64,
    /// Exchanges that failed.
    pub exchanges_failed: u64,
    /// Eager pushes sent (one per target).
    pub pushes_sent: u64,
    /// Inbound input refused by the transport (bad frames, failed handshakes).
    pub rejected_inbound: u64,
    /// Message bytes sent.
    pub bytes_sent: u64,
    /// Message bytes received.
    pub bytes_received: u64,
    /// Gossip rounds run.
    pub rounds: u64,
    /// Anti-entropy sweeps run.
    pub anti_entropy_runs: u64,
}

macro_rules! counters {
    ($($f:ident),*) => {
        /// Live counters, updated without locks.
        #[derive(Debug, Default)]
        pub struct Counters { $(pub(crate) $f: AtomicU64,)* }
        impl Counters {
            /// A consistent-enough snapshot.
            pub fn snapshot(&self) -> GossipStats {
                GossipStats { $($f: self.$f.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    events_created,
    events_received,
    duplicates,
    conflicts,
    invalid_events,
    rejected_events,
    exchanges_ok,
    exchanges_failed,
    pushes_sent,
    rejected_inbound,
    bytes_sent,
    bytes_received,
    rounds,
    anti_entropy_runs
);

/// Adds `n` to a counter.
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}
