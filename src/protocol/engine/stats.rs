//! The engine's counters.

use crate::protocol::validity::InvalidEvent;

/// A snapshot of a node's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Events created here.
    pub events_created: u64,
    /// New events received from peers.
    pub events_received: u64,
    /// Received events already held.
    pub duplicates: u64,
    /// Received events conflicting with a held one under the same `(origin, seq)`
    /// (equivocations, whichever won).
    pub conflicts: u64,
    /// Equivocations seen (two different events under one `(origin, seq)`), own included.
    pub equivocations: u64,
    /// Own payloads issued again under a fresh seq because their event lost an
    /// equivocation.
    pub reissued: u64,
    /// Received events that were malformed (seq 0, too large, clocks out of bounds, ...).
    pub invalid_events: u64,
    /// Of those, per [`InvalidEvent`] reason, in [`InvalidEvent::index`] order (see
    /// [`InvalidEvent::NAMES`]).
    pub invalid_by_reason: [u64; InvalidEvent::COUNT],
    /// Received events refused by signature checks (bad or missing signature, a key that
    /// is not the origin's); never stored or relayed.
    pub rejected_events: u64,
    /// Received events that could not be checked yet because their origin's identity
    /// event is not held (an origin this node has not met, or its seq 1 still on its way);
    /// never stored or relayed, pulled again by rounds once the identity is held.
    pub key_unknown_events: u64,
    /// Received events kept back by a peer's budget (pushed past its rate, or of a new
    /// origin past its new-origin rate): not stored now, fetched later by rounds.
    pub deferred_events: u64,
    /// New origins deferred by a peer's new-origin budget (once per origin and message).
    pub deferred_origins: u64,
    /// Received events refused because their origin is over its byte quota.
    pub quota_refused: u64,
    /// Received events held whose payload the app's validator could not decode.
    pub undecodable_events: u64,
    /// Exchanges that completed.
    pub exchanges_ok: u64,
    /// Exchanges that failed.
    pub exchanges_failed: u64,
    /// Eager pushes sent (one per target).
    pub pushes_sent: u64,
    /// Prunes sent (a push that brought nothing new).
    pub prunes_sent: u64,
    /// Grafts sent (an announced event still missing after the timeout).
    pub grafts_sent: u64,
    /// Inbound input refused by the transport (bad frames, failed handshakes).
    pub rejected_inbound: u64,
    /// Reconciliation rounds and digests refused for breaking the rules (too many ranges,
    /// bounds out of order, oversized or misplaced lists, a digest too long), either way.
    pub refused_requests: u64,
    /// Message bytes sent.
    pub bytes_sent: u64,
    /// Message bytes received.
    pub bytes_received: u64,
    /// Gossip rounds run.
    pub rounds: u64,
    /// Anti-entropy sweeps run.
    pub anti_entropy_runs: u64,
    /// Own ephemerals sent (one per peer).
    pub ephemerals_sent: u64,
    /// Ephemerals from peers delivered to the stream.
    pub ephemerals_received: u64,
    /// Ephemerals relayed (one per peer).
    pub ephemerals_relayed: u64,
    /// Ephemerals dropped as copies already delivered (or our own coming back).
    pub ephemerals_duplicate: u64,
    /// Ephemerals dropped because their peer sent more than its rate.
    pub ephemerals_dropped: u64,
    /// Ephemerals refused: bad signature, bad size, or stale.
    pub ephemerals_refused: u64,
}
