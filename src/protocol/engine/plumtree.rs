//! Lazy push (PlumTree, Leitão et al. 2007, as in iroh-gossip) over the peer table.
//!
//! Each peer is *eager* (new events are pushed to it in full) or *lazy* (it only gets an
//! [`Message::IHave`] naming them). The eager links form a spanning tree from first
//! arrivals:
//! - a peer is eager when first seen if the view is small ([`EAGER_ALL_MAX`] reachable
//!   peers or fewer: a LAN delivers in one hop) or while fewer than `fanout` are eager;
//! - a push that brings something new makes its sender eager;
//! - a push that brings nothing new makes its sender lazy and answers it with a
//!   [`Message::Prune`]; a `Prune` received makes its sender lazy;
//! - an `IHave` naming events not held arms a graft timer ([`GRAFT_TIMEOUT_MS`]); if the
//!   event is still missing when it fires, the announcer gets a [`Message::Graft`] and
//!   becomes eager (the next announcer is tried after [`GRAFT_RETRY_MS`]);
//! - a `Graft` makes its sender eager and is answered with the events from the recent
//!   cache, or, for what is not cached, with an exchange.
//!
//! Anti-entropy rounds stay as the safety net for anything the tree and the grafts miss.
//! Everything a peer can make this grow is bounded.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::protocol::event::{Event, NodeId};
use crate::protocol::message::{Message, SeqRange};

use super::Engine;
use super::output::{Output, Timer};

/// Views of at most this many reachable peers push eagerly to all of them at first.
pub const EAGER_ALL_MAX: usize = 10;
/// How long an announced event may stay missing before it is grafted.
pub const GRAFT_TIMEOUT_MS: u64 = 80;
/// How long a graft may take before the next announcer is asked.
pub const GRAFT_RETRY_MS: u64 = 40;
/// Missing events tracked at most (past it, anti-entropy finds them).
pub const MAX_MISSING: usize = 4096;
/// Announcers remembered per missing event.
pub const MAX_ANNOUNCERS: usize = 4;
/// Seqs one `IHave` or `Graft` may make this node look at; the rest is left to
/// anti-entropy, so a range `1..=u64::MAX` costs nothing.
pub const MAX_SEQS_PER_MESSAGE: u64 = 1024;
/// Recently relayed events kept to answer grafts.
pub const RECENT_MAX: usize = 4096;

/// The tree state of one node.
#[derive(Debug, Default)]
pub struct Tree {
    eager: BTreeSet<NodeId>,
    lazy: BTreeSet<NodeId>,
    missing: BTreeMap<(NodeId, u64), VecDeque<NodeId>>,
    recent: HashMap<(NodeId, u64), Event>,
    order: VecDeque<(NodeId, u64)>,
}

impl Tree {
    /// Peers pushed to eagerly.
    pub fn eager(&self) -> &BTreeSet<NodeId> {
        &self.eager
    }

    /// Peers only announced to.
    pub fn lazy(&self) -> &BTreeSet<NodeId> {
        &self.lazy
    }

    /// Events announced but not held, with a graft timer armed.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    fn make_eager(&mut self, id: NodeId) {
        self.lazy.remove(&id);
        self.eager.insert(id);
    }

    fn make_lazy(&mut self, id: NodeId) {
        self.eager.remove(&id);
        self.lazy.insert(id);
    }

    /// Forgets a removed peer.
    pub fn forget(&mut self, id: &NodeId) {
        self.eager.remove(id);
        self.lazy.remove(id);
    }

    fn remember(&mut self, e: &Event) {
        let key = (e.origin, e.seq);
        if self.recent.insert(key, e.clone()).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > RECENT_MAX {
            if let Some(old) = self.order.pop_front() {
                self.recent.remove(&old);
            }
        }
    }
}

impl Engine {
    /// The PlumTree state (for tests and metrics).
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Lazy relay: `events` in full to the eager peers, an `IHave` to the lazy ones.
    pub(super) fn lazy_relay(&mut self, events: Vec<Event>, exclude: &[NodeId]) {
        self.classify_peers();
        let reachable: Vec<NodeId> = self
            .peers
            .all()
            .filter(|p| p.is_reachable() && !exclude.contains(&p.id))
            .map(|p| p.id)
            .collect();
        let (eager, lazy): (Vec<NodeId>, Vec<NodeId>) = reachable
            .into_iter()
            .partition(|id| self.tree.eager.contains(id));
        for e in &events {
            self.tree.remember(e);
        }
        let ranges = SeqRange::runs(events.iter().map(|e| (e.origin, e.seq)).collect());
        self.push_to_each(&eager, events);
        let me = self.id();
        for id in lazy {
            let message = Message::IHave {
                from: me,
                ranges: ranges.clone(),
            };
            self.send_to(id, message);
        }
    }

    /// Puts every reachable peer not yet in the tree on a side.
    fn classify_peers(&mut self) {
        let reachable: Vec<NodeId> = self
            .peers
            .all()
            .filter(|p| p.is_reachable())
            .map(|p| p.id)
            .collect();
        let small = reachable.len() <= EAGER_ALL_MAX;
        for id in reachable {
            if self.tree.eager.contains(&id) || self.tree.lazy.contains(&id) {
                continue;
            }
            if small || self.tree.eager.len() < self.config.fanout {
                self.tree.eager.insert(id);
            } else {
                self.tree.lazy.insert(id);
            }
        }
    }

    fn send_to(&mut self, id: NodeId, message: Message) {
        let Some(to) = self.peers.get(&id).map(|p| p.peer()) else {
            return;
        };
        self.stats.bytes_sent += message.encoded_len() as u64;
        self.out.push(Output::Send { to, message });
    }

    /// A push from `from` was judged: `fresh` of its events were new.
    pub(super) fn tree_after_push(&mut self, from: NodeId, fresh: usize) {
        if !self.config.lazy_push {
            return;
        }
        if fresh > 0 {
            self.tree.make_eager(from);
        } else {
            self.stats.prunes_sent += 1;
            self.tree.make_lazy(from);
            let me = self.id();
            self.send_to(from, Message::Prune { from: me });
        }
    }

    pub(super) fn on_prune(&mut self, from: NodeId) {
        self.tree.make_lazy(from);
    }

    /// Arms a graft timer for each announced event not held.
    pub(super) fn on_ihave(&mut self, from: NodeId, ranges: Vec<SeqRange>) {
        if !self.config.lazy_push {
            return;
        }
        let mut budget = MAX_SEQS_PER_MESSAGE;
        for r in ranges {
            let mut seq = r.first.max(1);
            while seq <= r.last && budget > 0 {
                budget -= 1;
                self.announced(from, r.origin, seq);
                seq = match seq.checked_add(1) {
                    Some(s) => s,
                    None => break,
                };
            }
        }
    }

    fn announced(&mut self, from: NodeId, origin: NodeId, seq: u64) {
        if origin.is_nil() || self.held.holds(origin, seq) {
            return;
        }
        let key = (origin, seq);
        if let Some(who) = self.tree.missing.get_mut(&key) {
            if who.len() < MAX_ANNOUNCERS && !who.contains(&from) {
                who.push_back(from);
            }
            return;
        }
        if self.tree.missing.len() >= MAX_MISSING {
            return;
        }
        self.tree.missing.insert(key, VecDeque::from([from]));
        let at = self.now.saturating_add(GRAFT_TIMEOUT_MS);
        let run = self.run;
        self.out.push(Output::ScheduleTimer {
            at,
            timer: Timer::Graft { run, origin, seq },
        });
    }

    /// A graft timer fired: graft the event from its next announcer if still missing.
    pub(super) fn graft_due(&mut self, origin: NodeId, seq: u64) {
        let key = (origin, seq);
        if self.held.holds(origin, seq) {
            self.tree.missing.remove(&key);
            return;
        }
        let Some(next) = self
            .tree
            .missing
            .get_mut(&key)
            .and_then(VecDeque::pop_front)
        else {
            self.tree.missing.remove(&key);
            return;
        };
        if self.tree.missing.get(&key).is_some_and(VecDeque::is_empty) {
            self.tree.missing.remove(&key);
        } else {
            let at = self.now.saturating_add(GRAFT_RETRY_MS);
            let run = self.run;
            self.out.push(Output::ScheduleTimer {
                at,
                timer: Timer::Graft { run, origin, seq },
            });
        }
        self.stats.grafts_sent += 1;
        self.tree.make_eager(next);
        let me = self.id();
        let ranges = vec![SeqRange {
            origin,
            first: seq,
            last: seq,
        }];
        self.send_to(next, Message::Graft { from: me, ranges });
    }

    /// A peer grafts: it becomes eager and gets what it asks for.
    pub(super) fn on_graft(&mut self, from: NodeId, ranges: Vec<SeqRange>) {
        self.tree.make_eager(from);
        let mut budget = MAX_SEQS_PER_MESSAGE;
        let mut found = Vec::new();
        let mut uncached = false;
        for r in ranges {
            let mut seq = r.first.max(1);
            while seq <= r.last && budget > 0 {
                budget -= 1;
                match self.tree.recent.get(&(r.origin, seq)) {
                    Some(e) => found.push(e.clone()),
                    None => uncached = true,
                }
                seq = match seq.checked_add(1) {
                    Some(s) => s,
                    None => break,
                };
            }
        }
        if !found.is_empty() {
            self.push_to(from, found);
        }
        if uncached
            && self.started
            && self.in_flight.insert(from)
            && let Some(peer) = self.peers.get(&from).map(|p| p.peer())
        {
            // Not in memory: an exchange brings the peer everything it lacks.
            self.begin_exchange(peer, None, true);
        }
    }
}
