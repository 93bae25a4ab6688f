//! Peer exchange: members tell each other where the live members they know listen, in
//! records signed by those members ([`crate::protocol::peer_record`]).
//!
//! - The driver tells the engine its own addresses ([`super::Input::OwnAddrs`]); the
//!   engine signs its record with a new epoch and sends it to every reachable peer.
//! - When a peer joins (its first answer, or its first after being offline), it gets a
//!   [`Message::Peers`]: our record and those of our alive peers. Every
//!   [`PEX_ROUNDS`] rounds one round peer gets it too, so news spreads without a join.
//! - A received record is kept if its shape is right, its signature is its node's and its
//!   epoch is newer than the one held. A new record of a node we are in contact with
//!   (alive) goes on to our other alive peers, at most once per [`RELAY_EVERY_MS`] per node,
//!   so a node that joins through one contact is met by the room in a round trip. A node it names that we did not know is added and
//!   contacted at once, so a node given one `--peer` meets the room in a few round trips.
//!   A forged record (another node's address, a bad signature) is refused and counted.
//!
//! Only a node with an identity (a [`super::Signer`]) signs and verifies; without one,
//! peer exchange is off.

use crate::protocol::event::NodeId;
use crate::protocol::message::Message;
use crate::protocol::peer::Peer;
use crate::protocol::peer_record::{
    MAX_ADDRS, MAX_RECORDS_PER_MESSAGE, PeerRecord, RecordBook, parse_addr,
};

use super::Engine;
use super::liveness::PeerState;
use super::output::Output;

/// Every this many rounds, the round's first peer also gets our records.
pub const PEX_ROUNDS: u64 = 10;

/// Records in one `Peers` message we send at most (ours included).
pub const MAX_SHARED: usize = 32;

/// New peers one `Peers` message may add at most.
pub const MAX_NEW_PER_MESSAGE: usize = 16;

/// A node's new record is relayed at most this often (ms): a member re-signing its record
/// in a loop gets no amplification.
pub const RELAY_EVERY_MS: u64 = 10_000;

/// Peer exchange state.
#[derive(Debug, Default)]
pub struct Pex {
    book: RecordBook,
    own_addrs: Vec<String>,
    own: Option<PeerRecord>,
    /// When each node's record was last relayed.
    relayed: std::collections::HashMap<NodeId, u64>,
    /// Counters.
    pub stats: PexStats,
}

/// What peer exchange did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PexStats {
    /// Records accepted (new or newer).
    pub records_accepted: u64,
    /// Records refused (bad shape or signature).
    pub records_refused: u64,
    /// Peers added from records.
    pub peers_added: u64,
    /// `Peers` messages sent.
    pub messages_sent: u64,
}

impl Pex {
    /// The records held.
    pub fn book(&self) -> &RecordBook {
        &self.book
    }

    /// This node's own signed record, once it knows an address.
    pub fn own(&self) -> Option<&PeerRecord> {
        self.own.as_ref()
    }
}

impl Engine {
    fn pex_on(&self) -> bool {
        self.config.peer_exchange && self.signer.is_some()
    }

    /// The driver's view of this node's addresses changed (or was told again).
    pub(super) fn own_addrs(&mut self, mut addrs: Vec<String>) {
        addrs.retain(|a| parse_addr(a).is_some());
        addrs.dedup();
        addrs.truncate(MAX_ADDRS);
        if !self.pex_on() || addrs.is_empty() || addrs == self.pex.own_addrs {
            return;
        }
        let epoch = self.now.max(
            self.pex
                .own
                .as_ref()
                .map_or(0, |r| r.epoch.saturating_add(1)),
        );
        let Some(signer) = self.signer.as_ref() else {
            return;
        };
        let record = signer.sign_record(epoch, addrs.clone());
        self.pex.own_addrs = addrs;
        self.pex.own = Some(record.clone());
        let targets: Vec<Peer> = self
            .peers
            .all()
            .filter(|p| p.state == PeerState::Alive)
            .map(|p| p.peer())
            .collect();
        for to in targets {
            self.send_records(to, vec![record.clone()]);
        }
    }

    /// Sends our record and our alive peers' records to `to`.
    pub(super) fn share_peers(&mut self, to: NodeId) {
        if !self.pex_on() {
            return;
        }
        let Some(target) = self.peers.get(&to).map(|p| p.peer()) else {
            return;
        };
        let mut records: Vec<PeerRecord> = self.pex.own.iter().cloned().collect();
        let mut alive: Vec<(u64, NodeId)> = self
            .peers
            .all()
            .filter(|p| p.id != to && p.state == PeerState::Alive)
            .map(|p| (p.last_contact_ms.unwrap_or(0), p.id))
            .collect();
        alive.sort_by(|a, b| b.cmp(a)); // most recently heard first
        records.extend(
            alive
                .into_iter()
                .filter_map(|(_, id)| self.pex.book.get(&id).cloned())
                .take(MAX_SHARED.saturating_sub(records.len())),
        );
        if !records.is_empty() {
            self.send_records(target, records);
        }
    }

    fn send_records(&mut self, to: Peer, records: Vec<PeerRecord>) {
        self.pex.stats.messages_sent += 1;
        let message = Message::Peers {
            from: self.id(),
            records,
        };
        self.out.push(Output::Send { to, message });
    }

    /// A `Peers` message: keep what verifies, meet whom we did not know.
    pub(super) fn on_peers(&mut self, from: NodeId, records: Vec<PeerRecord>) {
        if !self.pex_on() {
            return;
        }
        let me = self.id();
        let mut added = 0;
        let mut news = Vec::new();
        for r in records.into_iter().take(MAX_RECORDS_PER_MESSAGE) {
            let verified = r.check_shape(me).is_ok()
                && self.signer.as_ref().is_some_and(|s| s.verify_record(&r));
            if !verified {
                self.pex.stats.records_refused += 1;
                tracing::debug!(peer = %from, node = %r.node_id, "peer record refused");
                continue;
            }
            let (id, addr) = match r.dial_addr() {
                Some(a) => (r.node_id, a.to_string()),
                None => continue,
            };
            if !self.pex.book.insert(r.clone()) {
                continue;
            }
            self.pex.stats.records_accepted += 1;
            news.push(r);
            match self.peers.get(&id).map(|p| (p.state, p.addr.clone())) {
                None if added < MAX_NEW_PER_MESSAGE => {
                    added += 1;
                    self.pex.stats.peers_added += 1;
                    self.add_peer(Peer::new(id, addr.clone()));
                    self.meet(Peer::new(id, addr));
                }
                // A member that moved: its own signed word beats an old address.
                Some((state, old)) if state != PeerState::Alive && old.0 != addr => {
                    self.peers.upsert(Peer::new(id, addr), self.now);
                }
                _ => {}
            }
        }
        self.relay_records(from, news);
    }

    /// News travels on: a new record of a node we are in contact with (its `Hello`
    /// proved it) goes to our other alive peers, so a node that joins through one
    /// contact is met by the whole room in a round trip, not at the next share.
    fn relay_records(&mut self, from: NodeId, news: Vec<PeerRecord>) {
        let now = self.now;
        let news: Vec<PeerRecord> = news
            .into_iter()
            .filter(|r| self.peers.get(&r.node_id).map(|p| p.state) == Some(PeerState::Alive))
            .filter(|r| {
                self.pex
                    .relayed
                    .get(&r.node_id)
                    .is_none_or(|t| now.saturating_sub(*t) >= RELAY_EVERY_MS)
            })
            .collect();
        if news.is_empty() {
            return;
        }
        for r in &news {
            self.pex.relayed.insert(r.node_id, now);
        }
        let targets: Vec<Peer> = self
            .peers
            .all()
            .filter(|p| p.id != from && p.state == PeerState::Alive)
            .map(|p| p.peer())
            .collect();
        for to in targets {
            let records: Vec<PeerRecord> = news
                .iter()
                .filter(|r| r.node_id != to.id)
                .cloned()
                .collect();
            if !records.is_empty() {
                self.send_records(to, records);
            }
        }
    }

    /// Contact a newly learnt peer now rather than at the next round.
    fn meet(&mut self, peer: Peer) {
        if self.started && self.in_flight.insert(peer.id) {
            self.begin_exchange(peer, None, true);
        }
    }

    /// Forgets a removed peer's record.
    pub(super) fn pex_forget(&mut self, id: &NodeId) {
        self.pex.book.remove(id);
        self.pex.relayed.remove(id);
    }
}
