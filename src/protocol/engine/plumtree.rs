//! Lazy push (PlumTree, Leitão et al. 2007, as in iroh-gossip) over the peer table.
//!
//! Each peer is *eager* (new events are pushed to it in full) or *lazy* (it only gets an
//! [`Message::IHave`] naming them). The eager links form a spanning tree from first
//! arrivals:
//! - a peer is eager when first seen if the view is small ([`EAGER_ALL_MAX`] reachable
//!   peers or fewer: a LAN delivers in one hop) or while fewer than `fanout` are eager;
//! - a push that brings something new makes its sender eager, unless their link was pruned
//!   and not grafted since (a push in flight when the prune went out);
//! - a push that brings nothing new, when the first copy came by a push from another peer
//!   (a second tree path), makes its sender lazy and is answered with a
//!   [`Message::Prune`]; not when it answers a graft of ours, nor when the first copy was
//!   pulled or came from the same peer: an exchange's final push travels as a `Push` too,
//!   and a 2-node room whose exchanges race would otherwise prune its only link; a `Prune`
//!   received makes its sender lazy;
//! - an exchange does not send a peer what was pushed to it in full in the last
//!   [`PULL_GRACE_MS`] (that push is on its way), but does send what it was only announced;
//! - an event is neither pushed nor announced to a peer that announced it to this node;
//! - in a small view, own events go in full to every peer, pruned or not (one hop from
//!   every sender: see [`Engine::small_room_relay`]);
//! - an `IHave` naming events not held arms a graft timer ([`GRAFT_TIMEOUT_MS`]); if the
//!   event is still missing when it fires, the announcer gets a [`Message::Graft`] and
//!   becomes eager (the next announcer is tried after [`GRAFT_RETRY_MS`]);
//! - a `Graft` makes its sender eager and is answered with the events from the recent
//!   cache, or, for what is not cached, with an exchange.
//!
//! Anti-entropy rounds stay as the safety net for anything the tree and the grafts miss.
//! Everything a peer can make this grow is bounded.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use rand::seq::SliceRandom;

use std::borrow::Cow;

use crate::protocol::clock::VectorClock;
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
/// How long an event pushed in full to a peer is left out of what exchanges send to that
/// peer: the push is on its way, and a pull racing it would only bring a second copy.
pub const PULL_GRACE_MS: u64 = 500;

/// The tree state of one node.
#[derive(Debug, Default)]
pub struct Tree {
    eager: BTreeSet<NodeId>,
    lazy: BTreeSet<NodeId>,
    /// Peers whose link was pruned (by either side) and not grafted since: a push from
    /// one of them that was in flight when the prune went out does not make it eager again.
    cut: BTreeSet<NodeId>,
    missing: BTreeMap<(NodeId, u64), Missing>,
    /// Grafts sent and not yet answered: (announcer, origin, seq), oldest first.
    asked: BTreeSet<(NodeId, NodeId, u64)>,
    asked_order: VecDeque<(NodeId, NodeId, u64)>,
    recent: HashMap<(NodeId, u64), Recent>,
    /// The keys of `recent`, oldest first, with the time each was relayed.
    order: VecDeque<((NodeId, u64), u64)>,
}

/// A recently relayed event: answers grafts, and says who must not get it again.
#[derive(Debug)]
struct Recent {
    event: Event,
    /// The peer whose push brought it first (`None`: own, or pulled).
    first_from: Option<NodeId>,
    /// The peers it was pushed to in full: an exchange leaves it out for them while
    /// that push is on its way ([`PULL_GRACE_MS`]).
    full_to: Vec<NodeId>,
}

/// An announced event: who announced it.
#[derive(Debug)]
struct Missing {
    /// Everyone who announced it (the first [`MAX_ANNOUNCERS`]).
    announcers: Vec<NodeId>,
    /// The next one to graft from.
    next: usize,
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
        self.cut.remove(id);
    }

    fn graft_link(&mut self, id: NodeId) {
        self.cut.remove(&id);
        self.make_eager(id);
    }

    fn cut_link(&mut self, id: NodeId) {
        self.cut.insert(id);
        self.make_lazy(id);
    }

    fn ask(&mut self, key: (NodeId, NodeId, u64)) {
        if self.asked.insert(key) {
            self.asked_order.push_back(key);
        }
        while self.asked_order.len() > MAX_MISSING {
            if let Some(old) = self.asked_order.pop_front() {
                self.asked.remove(&old);
            }
        }
    }

    /// Peers that announced every one of `keys` (they hold them: no push, no IHave).
    fn announced_all(&self, keys: &[(NodeId, u64)]) -> Vec<NodeId> {
        let Some((first, rest)) = keys.split_first() else {
            return Vec::new();
        };
        let Some(m) = self.missing.get(first) else {
            return Vec::new();
        };
        m.announcers
            .iter()
            .copied()
            .filter(|a| {
                rest.iter().all(|k| {
                    self.missing
                        .get(k)
                        .is_some_and(|m| m.announcers.contains(a))
                })
            })
            .collect()
    }

    /// Keeps `e` to answer grafts; `from` brought it first by push, `full_to` get it
    /// in full now.
    fn remember(&mut self, e: &Event, now: u64, from: Option<NodeId>, full_to: &[NodeId]) {
        let key = (e.origin, e.seq);
        match self.recent.entry(key) {
            Entry::Occupied(mut o) => o.get_mut().full_to.extend_from_slice(full_to),
            Entry::Vacant(v) => {
                v.insert(Recent {
                    event: e.clone(),
                    first_from: from,
                    full_to: full_to.to_vec(),
                });
                self.order.push_back((key, now));
            }
        }
        while self.order.len() > RECENT_MAX {
            if let Some((old, _)) = self.order.pop_front() {
                self.recent.remove(&old);
            }
        }
    }

    /// Whether one of `keys` came first by a push from a peer other than `from`: then
    /// `from`'s push is a second tree path, to prune.
    fn first_pushed_by_another(&self, from: NodeId, keys: &[(NodeId, u64)]) -> bool {
        keys.iter().any(|k| {
            self.recent
                .get(k)
                .and_then(|r| r.first_from)
                .is_some_and(|first| first != from)
        })
    }
}

impl Engine {
    /// The PlumTree state (for tests and metrics).
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The clock an exchange with `peer` answers from and pushes from: the held clock, but
    /// with lazy push each origin's entry stops below the first event pushed in full to
    /// `peer` in the last [`PULL_GRACE_MS`] (see there): that push is on its way, and a
    /// second copy by the exchange would be a duplicate. Events `peer` was only announced
    /// are sent, so an exchange that sends nothing still means the peer holds everything,
    /// or was pushed it in full.
    pub(super) fn pull_clock(&self, peer: NodeId) -> Cow<'_, VectorClock> {
        let clock = self.held.clock();
        if !self.config.lazy_push {
            return Cow::Borrowed(clock);
        }
        let since = self.now.saturating_sub(PULL_GRACE_MS);
        let mut capped: Option<VectorClock> = None;
        for &((origin, seq), at) in self.tree.order.iter().rev() {
            if at < since {
                break; // oldest first: everything before is older still
            }
            let to_peer = self
                .tree
                .recent
                .get(&(origin, seq))
                .is_some_and(|r| r.full_to.contains(&peer));
            if to_peer && clock.get(&origin) >= seq {
                let c = capped.get_or_insert_with(|| clock.clone());
                if c.get(&origin) >= seq {
                    c.set(origin, seq - 1);
                }
            }
        }
        match capped {
            Some(c) => Cow::Owned(c),
            None => Cow::Borrowed(clock),
        }
    }

    /// Lazy relay: `events` in full to the eager peers, an `IHave` to the lazy ones. In a
    /// small view own events go in full to every peer instead (see
    /// [`Engine::small_room_relay`]).
    pub(super) fn lazy_relay(&mut self, events: Vec<Event>, exclude: &[NodeId]) {
        self.classify_peers();
        let keys: Vec<(NodeId, u64)> = events.iter().map(|e| (e.origin, e.seq)).collect();
        let holders = self.tree.announced_all(&keys);
        let reachable: Vec<NodeId> = self
            .peers
            .all()
            .filter(|p| p.is_reachable() && !exclude.contains(&p.id) && !holders.contains(&p.id))
            .map(|p| p.id)
            .collect();
        let events = self.small_room_relay(events, &reachable);
        if events.is_empty() {
            return;
        }
        let (eager, lazy): (Vec<NodeId>, Vec<NodeId>) = reachable
            .into_iter()
            .partition(|id| self.tree.eager.contains(id));
        self.relay_to(events, &eager, &lazy);
    }

    /// In a small view (at most [`EAGER_ALL_MAX`] reachable peers: a LAN, where every
    /// member is every other's peer), an own event goes in full to every target, pruned
    /// or not: every member is then one hop from every sender. One tree shared by all
    /// senders and pruned by the duplicates of each cuts a full mesh into pieces that only
    /// grafts join again (80 ms each). Relays still follow the tree, so their duplicates
    /// prune the links between receivers and fade. Returns the events left to the tree.
    fn small_room_relay(&mut self, events: Vec<Event>, targets: &[NodeId]) -> Vec<Event> {
        let reachable = self.peers.all().filter(|p| p.is_reachable()).count();
        if reachable > EAGER_ALL_MAX {
            return events;
        }
        let me = self.id();
        let (own, rest): (Vec<Event>, Vec<Event>) =
            events.into_iter().partition(|e| e.origin == me);
        if !own.is_empty() {
            self.relay_to(own, targets, &[]);
        }
        rest
    }

    /// `events` in full to `full`, as one `IHave` to `announced`.
    fn relay_to(&mut self, events: Vec<Event>, full: &[NodeId], announced: &[NodeId]) {
        let now = self.now;
        for e in &events {
            self.tree.remember(e, now, None, full);
        }
        let ranges = SeqRange::runs(events.iter().map(|e| (e.origin, e.seq)).collect());
        self.push_to_each(full, events);
        let me = self.id();
        for &id in announced {
            let message = Message::IHave {
                from: me,
                ranges: ranges.clone(),
            };
            self.send_to(id, message);
        }
    }

    /// Puts every reachable peer not yet in the tree on a side. The eager ones are drawn
    /// at random: taken in id order, every node would push to the same lowest ids and
    /// leave the highest ones to grafts.
    fn classify_peers(&mut self) {
        let reachable = self.peers.all().filter(|p| p.is_reachable()).count();
        let mut new: Vec<NodeId> = self
            .peers
            .all()
            .filter(|p| p.is_reachable())
            .map(|p| p.id)
            .filter(|id| !self.tree.eager.contains(id) && !self.tree.lazy.contains(id))
            .collect();
        if new.is_empty() {
            return;
        }
        new.shuffle(&mut self.rng);
        let small = reachable <= EAGER_ALL_MAX;
        for id in new {
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

    /// A push from `from` carrying `keys` was judged: `fresh` are the new ones.
    pub(super) fn tree_after_push(
        &mut self,
        from: NodeId,
        keys: &[(NodeId, u64)],
        fresh: &[Event],
    ) {
        if !self.config.lazy_push {
            return;
        }
        let mut answered = false;
        for &(origin, seq) in keys {
            answered |= self.tree.asked.remove(&(from, origin, seq));
        }
        let now = self.now;
        for e in fresh {
            self.tree.remember(e, now, Some(from), &[]);
        }
        if !fresh.is_empty() {
            if !self.tree.cut.contains(&from) {
                self.tree.make_eager(from);
            }
        } else if !answered && self.tree.first_pushed_by_another(from, keys) {
            // A second copy by another tree path: this link is not in the tree. A copy
            // after a pull, or a peer's exchange push racing ours, says nothing of it.
            self.prune(from);
        }
    }

    fn prune(&mut self, id: NodeId) {
        self.stats.prunes_sent += 1;
        self.tree.cut_link(id);
        let me = self.id();
        self.send_to(id, Message::Prune { from: me });
    }

    pub(super) fn on_prune(&mut self, from: NodeId) {
        self.tree.cut_link(from);
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
        if let Some(m) = self.tree.missing.get_mut(&key) {
            if m.announcers.len() < MAX_ANNOUNCERS && !m.announcers.contains(&from) {
                m.announcers.push(from);
            }
            return;
        }
        if self.tree.missing.len() >= MAX_MISSING {
            return;
        }
        let missing = Missing {
            announcers: vec![from],
            next: 0,
        };
        self.tree.missing.insert(key, missing);
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
        let Some(m) = self.tree.missing.get_mut(&key) else {
            return;
        };
        let Some(&next) = m.announcers.get(m.next) else {
            // Every announcer was asked: rounds and anti-entropy repair the rest.
            self.tree.missing.remove(&key);
            return;
        };
        m.next += 1;
        // The entry stays one retry longer: a later announcer is tried then.
        let at = self.now.saturating_add(GRAFT_RETRY_MS);
        let run = self.run;
        self.out.push(Output::ScheduleTimer {
            at,
            timer: Timer::Graft { run, origin, seq },
        });
        self.stats.grafts_sent += 1;
        self.tree.graft_link(next);
        self.tree.ask((next, origin, seq));
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
        self.tree.graft_link(from);
        let mut budget = MAX_SEQS_PER_MESSAGE;
        let mut found = Vec::new();
        let mut uncached = false;
        for r in ranges {
            let mut seq = r.first.max(1);
            while seq <= r.last && budget > 0 {
                budget -= 1;
                match self.tree.recent.get(&(r.origin, seq)) {
                    Some(e) => found.push(e.event.clone()),
                    None => uncached = true,
                }
                seq = match seq.checked_add(1) {
                    Some(s) => s,
                    None => break,
                };
            }
        }
        if !found.is_empty() {
            let now = self.now;
            for e in &found {
                self.tree.remember(e, now, None, &[from]);
            }
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
