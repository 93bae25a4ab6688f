//! What the engine knows the store holds: the store's clock, advanced by each verdict as
//! it comes, so an exchange never asks twice for what it just received (a store may show
//! received events to reads only after its next sync).

use std::collections::BTreeSet;

use crate::protocol::clock::VectorClock;
use crate::protocol::event::NodeId;

/// Events held beyond a gap that are remembered, at most. Past it the engine forgets them
/// (the store still has them; the next fetch's clock catches up), so a peer pushing far
/// ahead cannot grow this set without bound.
pub const MAX_BEYOND: usize = 65_536;

/// The contiguous clock plus the events held beyond a gap.
#[derive(Debug, Default, Clone)]
pub struct Held {
    clock: VectorClock,
    beyond: BTreeSet<(NodeId, u64)>,
}

impl Held {
    /// Starts from the store's clock.
    pub fn new(clock: VectorClock) -> Self {
        Held {
            clock,
            beyond: BTreeSet::new(),
        }
    }

    /// The contiguous clock.
    pub fn clock(&self) -> &VectorClock {
        &self.clock
    }

    /// Whether `(origin, seq)` is known to be held.
    pub fn holds(&self, origin: NodeId, seq: u64) -> bool {
        seq <= self.clock.get(&origin) || self.beyond.contains(&(origin, seq))
    }

    /// Records that `(origin, seq)` is held.
    pub fn hold(&mut self, origin: NodeId, seq: u64) {
        let top = self.clock.get(&origin);
        if seq <= top {
            return;
        }
        if seq != top + 1 {
            if self.beyond.len() < MAX_BEYOND {
                self.beyond.insert((origin, seq));
            }
            return;
        }
        let mut top = seq;
        // Most events arrive in order: nothing beyond to look up (and hash) then.
        while !self.beyond.is_empty() && self.beyond.remove(&(origin, top + 1)) {
            top += 1;
        }
        self.clock.set(origin, top);
    }

    /// Merges the store's clock (it only grows while the engine runs).
    pub fn merge(&mut self, store: &VectorClock) {
        self.clock.merge(store);
        let mut origins: Vec<NodeId> = self.beyond.iter().map(|(o, _)| *o).collect();
        origins.dedup();
        for o in origins {
            // A merge may have closed a gap below remembered events.
            let mut top = self.clock.get(&o);
            while self.beyond.remove(&(o, top + 1)) {
                top += 1;
            }
            self.clock.set(o, top);
        }
        let clock = &self.clock;
        self.beyond.retain(|(o, s)| *s > clock.get(o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_close_when_filled() {
        let a = NodeId::from_u128(1);
        let mut h = Held::default();
        h.hold(a, 2);
        h.hold(a, 3);
        assert_eq!(h.clock().get(&a), 0);
        assert!(h.holds(a, 3));
        h.hold(a, 1);
        assert_eq!(h.clock().get(&a), 3);
        h.hold(a, 5);
        let store: VectorClock = [(a, 4)].into_iter().collect();
        h.merge(&store);
        assert_eq!(h.clock().get(&a), 5);
    }
}
