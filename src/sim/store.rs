//! A simulated node's store: durable across crashes, answering at once.

use std::collections::BTreeMap;

use crate::protocol::engine::{StoreState, Verdict};
use crate::protocol::exchange::Want;
use crate::protocol::{Event, NodeId, VectorClock};

/// Events by `(origin, seq)`, and the contiguous clock kept beside them.
#[derive(Debug, Default, Clone)]
pub struct SimStore {
    events: BTreeMap<(NodeId, u64), Event>,
    clock: VectorClock,
    /// The own-seq reservation; like a file beside the log, a lost tail keeps it.
    reservation: u64,
}

impl SimStore {
    /// What the engine starts from.
    pub fn state(&self, me: NodeId) -> StoreState {
        StoreState {
            clock: self.clock.clone(),
            own_latest_seq: self
                .events
                .range((me, 0)..=(me, u64::MAX))
                .next_back()
                .map_or(0, |(k, _)| k.1),
            max_hlc: self.events.values().map(|e| e.hlc).max().unwrap_or(0),
            seq_reservation: self.reservation,
            own_tail: self
                .events
                .range((me, 0)..=(me, u64::MAX))
                .next_back()
                .map(|(_, e)| crate::protocol::chain::chain_hash(e)),
        }
    }

    /// The contiguous clock.
    pub fn clock(&self) -> &VectorClock {
        &self.clock
    }

    /// Every event held.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.values()
    }

    /// Number of events held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Raises the own-seq reservation (durable at once here).
    pub fn reserve_seqs(&mut self, up_to: u64) {
        self.reservation = self.reservation.max(up_to);
    }

    /// The own-seq reservation.
    pub fn reservation(&self) -> u64 {
        self.reservation
    }

    /// Loses the last `n` events of `origin` (a log tail lost at a record boundary); the
    /// reservation stays.
    pub fn lose_tail(&mut self, origin: NodeId, n: usize) {
        let keys: Vec<_> = self
            .events
            .range((origin, 0)..=(origin, u64::MAX))
            .rev()
            .take(n)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.events.remove(&k);
        }
        let mut top = 0;
        while self.events.contains_key(&(origin, top + 1)) {
            top += 1;
        }
        self.clock.set(origin, top);
    }

    /// Stores `e` unless its `(origin, seq)` is held; a different event held there is an
    /// equivocation, resolved by the rule.
    pub fn save(&mut self, e: Event) -> Verdict {
        match self.events.get_mut(&e.key()) {
            Some(held) if *held == e => Verdict::Duplicate,
            Some(held) => {
                let replaced = crate::protocol::equivocation::resolve(held, &e)
                    == crate::protocol::equivocation::Resolution::Replace;
                let before = Box::new(held.clone());
                if replaced {
                    *held = e;
                }
                Verdict::Equivocation {
                    held: before,
                    replaced,
                }
            }
            None => {
                let (origin, seq) = e.key();
                self.events.insert((origin, seq), e);
                let mut top = self.clock.get(&origin);
                while self.events.contains_key(&(origin, top + 1)) {
                    top += 1;
                }
                self.clock.set(origin, top);
                Verdict::Inserted
            }
        }
    }

    /// Per want, that origin's events after `after`, `limit` in all.
    pub fn fetch(&self, wants: &[Want], limit: usize) -> Vec<Event> {
        let mut out = Vec::new();
        for w in wants {
            let left = limit.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            out.extend(
                self.events
                    .range((w.origin, w.after.saturating_add(1))..=(w.origin, u64::MAX))
                    .take(left)
                    .map(|(_, e)| e.clone()),
            );
        }
        out
    }
}
