//! Peer liveness: what a node knows of each peer, and the state machine
//! discovered -> alive -> suspect -> offline driven by real contact.
//!
//! Time comes in as milliseconds since the Unix epoch, from the engine's `now`; nothing
//! here reads a clock.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::protocol::NodeId;
use crate::protocol::peer::{Peer, PeerAddr};
use crate::protocol::selection::{Candidate, NEUTRAL_RELIABILITY, update_reliability};

/// `ms` since the Unix epoch as a `SystemTime` (a conversion, not a clock read).
pub fn system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Consecutive failures after which a peer is offline (one makes it suspect).
pub const OFFLINE_AFTER_FAILURES: u32 = 3;

/// A peer's liveness as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerState {
    /// Known (added or discovered), never contacted yet.
    Discovered,
    /// The last contact succeeded.
    Alive,
    /// The last contact failed.
    Suspect,
    /// Several contacts in a row failed, or its connection closed.
    Offline,
}

impl PeerState {
    /// A lowercase name.
    pub fn name(&self) -> &'static str {
        match self {
            PeerState::Discovered => "discovered",
            PeerState::Alive => "alive",
            PeerState::Suspect => "suspect",
            PeerState::Offline => "offline",
        }
    }
}

/// Everything the node knows of one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// Its id.
    pub id: NodeId,
    /// Where it listens.
    pub addr: PeerAddr,
    /// A display name, if one is known.
    pub name: Option<String>,
    /// Liveness.
    pub state: PeerState,
    /// When it was added.
    pub added_at: SystemTime,
    /// Last successful contact (wall clock).
    pub last_contact: Option<SystemTime>,
    /// Last successful contact, in ms of the engine's clock (for selection).
    pub last_contact_ms: Option<u64>,
    /// Round-trip time of the last request.
    pub rtt: Option<Duration>,
    /// Successful exchanges.
    pub successes: u64,
    /// Failed exchanges.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// EWMA of exchange success, 0.5 when unknown.
    pub reliability: f64,
    /// Events sent to it.
    pub events_sent: u64,
    /// Events received from it that were new.
    pub events_received: u64,
    /// The last error, if the last contact failed.
    pub last_error: Option<String>,
}

impl PeerInfo {
    /// A peer never contacted, added at `now_ms`.
    pub fn new(peer: Peer, now_ms: u64) -> Self {
        PeerInfo {
            id: peer.id,
            addr: peer.addr,
            name: None,
            state: PeerState::Discovered,
            added_at: system_time(now_ms),
            last_contact: None,
            last_contact_ms: None,
            rtt: None,
            successes: 0,
            failures: 0,
            consecutive_failures: 0,
            reliability: NEUTRAL_RELIABILITY,
            events_sent: 0,
            events_received: 0,
            last_error: None,
        }
    }

    /// The transport's view of this peer.
    pub fn peer(&self) -> Peer {
        Peer::new(self.id, self.addr.clone())
    }

    /// Whether rounds and pushes should talk to it.
    pub fn is_reachable(&self) -> bool {
        self.state != PeerState::Offline
    }

    fn candidate(&self) -> Candidate {
        Candidate {
            id: self.id,
            last_contact_ms: self.last_contact_ms,
            reliability: self.reliability,
        }
    }
}

/// A state change worth telling the world about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The peer.
    pub id: NodeId,
    /// Before.
    pub from: PeerState,
    /// After.
    pub to: PeerState,
}

/// All peers of a node.
#[derive(Debug, Default)]
pub struct PeerTable {
    peers: BTreeMap<NodeId, PeerInfo>,
    /// With the failure detector, failures only make a peer suspect: the detector's
    /// deadline (after indirect probes) makes it offline.
    detector: bool,
}

impl PeerTable {
    /// An empty table; `detector` turns off [`OFFLINE_AFTER_FAILURES`] (the failure
    /// detector decides when a suspect is offline).
    pub fn new(detector: bool) -> Self {
        PeerTable {
            peers: BTreeMap::new(),
            detector,
        }
    }

    /// Adds a peer, or updates its address. Returns true if it was new.
    pub fn upsert(&mut self, peer: Peer, now_ms: u64) -> bool {
        match self.peers.get_mut(&peer.id) {
            Some(p) => {
                p.addr = peer.addr;
                false
            }
            None => {
                self.peers.insert(peer.id, PeerInfo::new(peer, now_ms));
                true
            }
        }
    }

    /// Removes a peer.
    pub fn remove(&mut self, id: &NodeId) -> Option<PeerInfo> {
        self.peers.remove(id)
    }

    /// One peer.
    pub fn get(&self, id: &NodeId) -> Option<&PeerInfo> {
        self.peers.get(id)
    }

    /// One peer, mutable.
    pub fn get_mut(&mut self, id: &NodeId) -> Option<&mut PeerInfo> {
        self.peers.get_mut(id)
    }

    /// Every peer, in id order.
    pub fn all(&self) -> impl Iterator<Item = &PeerInfo> {
        self.peers.values()
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when there is no peer.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Selection candidates: every peer that is not offline.
    pub fn candidates(&self) -> Vec<Candidate> {
        self.peers
            .values()
            .filter(|p| p.is_reachable())
            .map(PeerInfo::candidate)
            .collect()
    }

    /// Records a successful contact.
    pub fn record_success(
        &mut self,
        id: &NodeId,
        rtt: Option<Duration>,
        now_ms: u64,
    ) -> Option<Transition> {
        let p = self.peers.get_mut(id)?;
        let from = p.state;
        p.successes += 1;
        p.consecutive_failures = 0;
        p.reliability = update_reliability(p.reliability, true);
        p.last_contact = Some(system_time(now_ms));
        p.last_contact_ms = Some(now_ms);
        if rtt.is_some() {
            p.rtt = rtt;
        }
        p.last_error = None;
        p.state = PeerState::Alive;
        (from != p.state).then_some(Transition {
            id: *id,
            from,
            to: p.state,
        })
    }

    /// Records that the peer showed life without a full exchange (a message from it).
    pub fn record_heard(&mut self, id: &NodeId, now_ms: u64) -> Option<Transition> {
        let p = self.peers.get_mut(id)?;
        let from = p.state;
        p.consecutive_failures = 0;
        p.last_contact = Some(system_time(now_ms));
        p.last_contact_ms = Some(now_ms);
        p.state = PeerState::Alive;
        (from != p.state).then_some(Transition {
            id: *id,
            from,
            to: p.state,
        })
    }

    /// Records a failed contact.
    pub fn record_failure(&mut self, id: &NodeId, error: &str) -> Option<Transition> {
        let p = self.peers.get_mut(id)?;
        let from = p.state;
        p.failures += 1;
        p.consecutive_failures += 1;
        p.reliability = update_reliability(p.reliability, false);
        p.last_error = Some(error.to_string());
        // An offline peer stays offline until it answers: a late failure of an exchange
        // that started before it went away must not make it look half-alive.
        let too_many = !self.detector && p.consecutive_failures >= OFFLINE_AFTER_FAILURES;
        p.state = if p.state == PeerState::Offline || too_many {
            PeerState::Offline
        } else {
            PeerState::Suspect
        };
        (from != p.state).then_some(Transition {
            id: *id,
            from,
            to: p.state,
        })
    }

    /// Marks a peer offline at once (its connection closed, discovery lost it).
    pub fn mark_offline(&mut self, id: &NodeId, reason: &str) -> Option<Transition> {
        let p = self.peers.get_mut(id)?;
        let from = p.state;
        p.state = PeerState::Offline;
        p.last_error = Some(reason.to_string());
        (from != p.state).then_some(Transition {
            id: *id,
            from,
            to: p.state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> (PeerTable, NodeId) {
        let mut t = PeerTable::default();
        let id = NodeId::from_u128(5);
        assert!(t.upsert(Peer::new(id, "a"), 0));
        assert!(!t.upsert(Peer::new(id, "b"), 0));
        (t, id)
    }

    #[test]
    fn with_the_detector_failures_only_make_a_peer_suspect() {
        let mut t = PeerTable::new(true);
        let id = NodeId::from_u128(5);
        t.upsert(Peer::new(id, "a"), 0);
        t.record_success(&id, None, 1);
        for _ in 0..10 {
            t.record_failure(&id, "x");
        }
        assert_eq!(t.get(&id).unwrap().state, PeerState::Suspect);
    }

    #[test]
    fn states_follow_contact() {
        let (mut t, id) = table();
        assert_eq!(t.get(&id).unwrap().state, PeerState::Discovered);
        assert_eq!(t.get(&id).unwrap().addr, PeerAddr::from("b"));
        let tr = t.record_success(&id, Some(Duration::from_millis(3)), 10);
        assert_eq!(tr.unwrap().to, PeerState::Alive);
        assert_eq!(t.record_failure(&id, "x").unwrap().to, PeerState::Suspect);
        assert_eq!(t.record_failure(&id, "x"), None);
        assert_eq!(t.record_failure(&id, "x").unwrap().to, PeerState::Offline);
        assert!(t.candidates().is_empty());
        assert_eq!(t.record_failure(&id, "late"), None, "offline stays offline");
        assert_eq!(t.record_heard(&id, 20).unwrap().to, PeerState::Alive);
        let p = t.get(&id).unwrap();
        assert_eq!((p.successes, p.failures), (1, 4));
        assert!(p.reliability < NEUTRAL_RELIABILITY);
        assert_eq!(t.candidates().len(), 1);
        t.mark_offline(&id, "closed");
        assert_eq!(t.record_failure(&id, "late").map(|t| t.to), None);
        assert_eq!(t.get(&id).unwrap().state, PeerState::Offline);
    }
}
