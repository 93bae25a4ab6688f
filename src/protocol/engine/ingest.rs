//! Received events: which are valid, and what to do with the new ones (hold them, tell
//! the world, relay them once).
//!
//! The event rules:
//! - [`Engine::validity`]: every received event passes it before anything else (the clock
//!   and seq bounds of [`crate::protocol::validity`], and the size limit); a refusal is
//!   counted (`invalid_events`, per reason in `invalid_by_reason`) and logged, and touches
//!   no other state;
//! - the local clock moves past a new event's HLC only within the same bounds
//!   ([`crate::protocol::validity::observe`]);
//! - [`Engine::on_equivocation`]: the store found a different event under a held
//!   `(origin, seq)` and kept the rule's winner; counted, emitted, the winner sent where
//!   the loser may still be held, and an own losing payload issued again.

use crate::protocol::equivocation::Equivocation;
use crate::protocol::event::{Event, NodeId};
use crate::protocol::validity::{self, InvalidEvent};

use super::Engine;
use super::create::OwnSave;
use super::input::{ExchangeId, SaveId, Verdict};
use super::output::{Emit, Output, ReceivedEvent};

/// Equivocation pairs remembered at most (see `Engine::on_equivocation`).
const MAX_EQUIVOCATIONS_REMEMBERED: usize = 65_536;

/// What a store write is for.
#[derive(Debug)]
pub enum SaveFor {
    /// Events received from a peer.
    Received {
        /// The peer that delivered them.
        from: NodeId,
        /// Relay the new ones (they came by push).
        relay: bool,
        /// The exchange to continue once judged.
        exchange: Option<ExchangeId>,
        /// The events, in the order of the verdicts.
        events: Vec<Event>,
        /// Per event, the bytes its admission charged to its origin's quota (given back
        /// unless it is inserted).
        charged: Vec<super::budget::Charge>,
    },
    /// An own event.
    Own(OwnSave),
}

/// Why a received event is refused before the store sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Its origin, seq or clocks break a rule of [`crate::protocol::validity`].
    #[error("{0}")]
    Rule(InvalidEvent),
    /// Larger than any event may be.
    #[error("{size} encoded bytes, over the limit of {limit}")]
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl Engine {
    /// The validity rule every received event passes before it may be stored.
    pub fn validity(&self, e: &Event) -> Result<(), Invalid> {
        validity::check_event(e, self.now, &self.bounds).map_err(Invalid::Rule)?;
        let (size, limit) = (e.encoded_len(), self.config.limits.max_event_bytes());
        if size > limit {
            return Err(Invalid::TooLarge { size, limit });
        }
        Ok(())
    }

    /// Received events from `from`: keeps the valid ones and asks the store to save them.
    /// `exchange`, if given, continues once they are judged.
    pub(super) fn ingest(
        &mut self,
        events: Vec<Event>,
        from: NodeId,
        relay: bool,
        exchange: Option<ExchangeId>,
    ) {
        let mut valid = Vec::with_capacity(events.len());
        for e in events {
            match self.validity(&e) {
                Ok(()) => valid.push(e),
                Err(why) => {
                    self.stats.invalid_events += 1;
                    if let Invalid::Rule(r) = &why {
                        self.stats.invalid_by_reason[r.index()] += 1;
                    }
                    tracing::warn!(peer = %from, origin = %e.origin, seq = e.seq, %why, "invalid event dropped");
                }
            }
        }
        if !self.config.duplicate_detection {
            let keys: Vec<(NodeId, u64)> = valid.iter().map(|e| (e.origin, e.seq)).collect();
            let before = valid.len();
            let held = &self.held;
            valid.retain(|e| !held.holds(e.origin, e.seq));
            self.stats.duplicates += (before - valid.len()) as u64;
            if relay && exchange.is_none() && before > 0 && valid.is_empty() {
                self.tree_after_push(from, &keys, &[]);
            }
        }
        let (valid, charged) = self.admit(valid, from, exchange.is_none());
        if valid.is_empty() {
            if let Some(id) = exchange {
                self.after_receive(id, 0);
            }
            return;
        }
        let save = SaveId(self.next_id());
        self.out.push(Output::Save {
            save,
            events: valid.clone(),
            own: false,
            from,
        });
        self.saves.insert(
            save,
            SaveFor::Received {
                from,
                relay,
                exchange,
                events: valid,
                charged,
            },
        );
    }

    /// The store judged a write.
    pub(super) fn saved(&mut self, save: SaveId, verdicts: Vec<Verdict>) {
        match self.saves.remove(&save) {
            None => {}
            Some(SaveFor::Own(own)) => self.own_saved(own, verdicts),
            Some(SaveFor::Received {
                from,
                relay,
                exchange,
                events,
                charged,
            }) => {
                self.settle(&charged, &verdicts);
                let keys: Vec<(NodeId, u64)> = if relay && exchange.is_none() {
                    events.iter().map(|e| (e.origin, e.seq)).collect()
                } else {
                    Vec::new()
                };
                let fresh = self.judged(from, events, verdicts);
                let n = fresh.len();
                if relay && exchange.is_none() {
                    self.tree_after_push(from, &keys, &fresh);
                }
                if relay && self.config.eager_push && !fresh.is_empty() {
                    let mut exclude = vec![from];
                    exclude.extend(fresh.iter().map(|e| e.origin));
                    self.relay(fresh, &exclude);
                }
                if let Some(id) = exchange {
                    self.after_receive(id, n);
                }
            }
        }
    }

    pub(super) fn save_failed(&mut self, save: SaveId, error: String) {
        match self.saves.remove(&save) {
            None => {}
            Some(SaveFor::Own(own)) => self.own_save_failed(own, error),
            Some(SaveFor::Received {
                exchange, charged, ..
            }) => {
                self.settle(&charged, &[]);
                tracing::error!(%error, "store failed while saving received events");
                if let Some(id) = exchange {
                    self.fail_exchange(id, format!("store: {error}"));
                }
            }
        }
    }

    /// Applies verdicts; returns the events new to this node.
    fn judged(&mut self, from: NodeId, events: Vec<Event>, verdicts: Vec<Verdict>) -> Vec<Event> {
        let mut fresh = Vec::new();
        let mut refused: Option<(NodeId, u64, String)> = None;
        let mut refused_n = 0u64;
        for (event, verdict) in events.into_iter().zip(verdicts) {
            match verdict {
                Verdict::Inserted => {
                    self.held.hold(event.origin, event.seq);
                    fresh.push(event);
                }
                Verdict::Duplicate => {
                    self.held.hold(event.origin, event.seq);
                    self.stats.duplicates += 1;
                }
                Verdict::Equivocation { held, replaced } => {
                    self.held.hold(event.origin, event.seq);
                    if let Some(eq) = Equivocation::detect(&held, &event) {
                        self.on_equivocation(from, eq, replaced);
                    }
                    if replaced {
                        fresh.push(event);
                    }
                }
                Verdict::Conflict => {
                    self.held.hold(event.origin, event.seq);
                    self.on_conflict(from, &event);
                }
                Verdict::KeyUnknown => {
                    self.stats.key_unknown_events += 1;
                    tracing::debug!(
                        peer = %from, origin = %event.origin, seq = event.seq,
                        "event not checked yet: its origin's identity is not held"
                    );
                }
                Verdict::Refused(why) => {
                    refused_n += 1;
                    refused.get_or_insert((event.origin, event.seq, why));
                }
            }
        }
        if let Some((origin, seq, why)) = refused {
            self.refused(from, refused_n, origin, seq, &why);
        }
        let me = self.id();
        for e in &fresh {
            self.hlc = validity::observe(self.hlc, e.hlc, self.now, &self.bounds);
            // Our own events coming back (a wiped store): never reuse their seqs.
            if e.origin == me {
                self.own_seq.on_own_held(e.seq);
            }
        }
        if let Some(p) = self.peers.get_mut(&from) {
            p.events_received += fresh.len() as u64;
        }
        self.stats.events_received += fresh.len() as u64;
        for e in &fresh {
            self.emit(Emit::Received(ReceivedEvent {
                event: e.clone(),
                from,
            }));
        }
        fresh
    }

    /// Events the driver refused (signatures): counted, logged, reported once per batch.
    fn refused(&mut self, from: NodeId, n: u64, origin: NodeId, seq: u64, why: &str) {
        self.stats.rejected_events += n;
        tracing::warn!(
            peer = %from, %origin, seq, error = %why, count = n,
            "events refused: signature check failed"
        );
        self.emit_exchange(super::output::ExchangeResult::failed(
            from,
            super::output::Direction::Inbound,
            std::time::Duration::ZERO,
            format!("{n} event(s) rejected, first {origin}/{seq}: {why}"),
        ));
    }

    /// Two different events under one `(origin, seq)`: counted and emitted once per
    /// (winner, loser) pair; both copies go to every peer (and to the origin), and the
    /// origin issues a losing payload of its own again.
    pub fn on_equivocation(&mut self, from: NodeId, eq: Equivocation, replaced: bool) {
        let pair = (
            crate::protocol::equivocation::digest(&eq.winner),
            crate::protocol::equivocation::digest(&eq.loser),
        );
        if self.equivocations_seen.len() >= MAX_EQUIVOCATIONS_REMEMBERED {
            // A bound on what a hostile origin signing many versions can make us keep;
            // forgetting costs at most one more report of a pair.
            self.equivocations_seen.clear();
        }
        if !self.equivocations_seen.insert(pair) {
            return;
        }
        self.stats.conflicts += 1;
        self.stats.equivocations += 1;
        tracing::warn!(
            peer = %from, origin = %eq.origin(), seq = eq.seq(), replaced,
            "equivocation: two different events under one (origin, seq); the rule's winner is kept"
        );
        // Every peer gets both copies, the loser first: one holding either (or neither)
        // then finds the equivocation itself, keeps the winner and reports it. Clocks are
        // equal on both sides, so no exchange would ever carry the other copy, and a lazy
        // link announces seqs, not contents. The origin re-issues a losing payload, so it
        // must see the loser too, reachable or not.
        let pair = vec![eq.loser.clone(), eq.winner.clone()];
        let origin = eq.origin();
        if origin != self.id() && !self.peers.get(&origin).is_some_and(|p| p.is_reachable()) {
            self.push_to(origin, pair.clone());
        }
        self.flood(pair, &[]);
        self.reissue(&eq);
        self.emit(Emit::Equivocation(eq));
    }

    /// The store holds a different event under `event`'s `(origin, seq)`; it was refused
    /// (a store that does not resolve equivocations).
    pub fn on_conflict(&mut self, from: NodeId, event: &Event) {
        self.stats.conflicts += 1;
        tracing::warn!(
            peer = %from, origin = %event.origin, seq = event.seq,
            "conflicting event refused: a different event is held under this (origin, seq)"
        );
    }
}
