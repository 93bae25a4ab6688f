//! Vector clocks: per origin, the highest seq held contiguously from 1.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::NodeId;

/// How two vector clocks relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockOrdering {
    /// Every entry of `self` is <= the other's, and one is smaller.
    Before,
    /// Every entry of `self` is >= the other's, and one is larger.
    After,
    /// Each has an entry larger than the other's.
    Concurrent,
    /// Identical.
    Equal,
}

/// A vector clock. Missing entries read as 0, and an entry is never stored as 0, so two
/// clocks that mean the same compare equal and encode the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorClock {
    entries: BTreeMap<NodeId, u64>,
}

impl VectorClock {
    /// An empty clock (every entry 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry for `node`, 0 if unknown.
    pub fn get(&self, node: &NodeId) -> u64 {
        self.entries.get(node).copied().unwrap_or(0)
    }

    /// Sets the entry for `node` (0 removes it).
    pub fn set(&mut self, node: NodeId, value: u64) {
        if value == 0 {
            self.entries.remove(&node);
        } else {
            self.entries.insert(node, value);
        }
    }

    /// Adds one to the entry for `node` and returns the new value.
    pub fn increment(&mut self, node: NodeId) -> u64 {
        let e = self.entries.entry(node).or_insert(0);
        *e += 1;
        *e
    }

    /// Pointwise maximum with `other`.
    pub fn merge(&mut self, other: &VectorClock) {
        for (node, &v) in &other.entries {
            let e = self.entries.entry(*node).or_insert(0);
            *e = (*e).max(v);
        }
    }

    /// The pointwise maximum of two clocks, as a new clock.
    pub fn merged(&self, other: &VectorClock) -> VectorClock {
        let mut out = self.clone();
        out.merge(other);
        out
    }

    /// How `self` relates to `other`.
    pub fn compare(&self, other: &VectorClock) -> ClockOrdering {
        let mut less = false;
        let mut greater = false;
        for node in self.entries.keys().chain(other.entries.keys()) {
            match self.get(node).cmp(&other.get(node)) {
                Ordering::Less => less = true,
                Ordering::Greater => greater = true,
                Ordering::Equal => {}
            }
            if less && greater {
                return ClockOrdering::Concurrent;
            }
        }
        match (less, greater) {
            (false, false) => ClockOrdering::Equal,
            (true, false) => ClockOrdering::Before,
            (false, true) => ClockOrdering::After,
            (true, true) => ClockOrdering::Concurrent,
        }
    }

    /// `self` happened strictly before `other`.
    pub fn is_before(&self, other: &VectorClock) -> bool {
        self.compare(other) == ClockOrdering::Before
    }

    /// `self` happened strictly after `other`.
    pub fn is_after(&self, other: &VectorClock) -> bool {
        self.compare(other) == ClockOrdering::After
    }

    /// Neither clock is before the other.
    pub fn is_concurrent(&self, other: &VectorClock) -> bool {
        self.compare(other) == ClockOrdering::Concurrent
    }

    /// Every entry of `self` is >= the other's: `self` has seen all the other has.
    pub fn dominates(&self, other: &VectorClock) -> bool {
        matches!(
            self.compare(other),
            ClockOrdering::After | ClockOrdering::Equal
        )
    }

    /// The nodes with a non-zero entry, in id order.
    pub fn known_nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.entries.keys().copied()
    }

    /// Entries `(node, seq)` in id order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.entries.iter().map(|(n, v)| (*n, *v))
    }

    /// Entries `(node, seq)` with `lower <= node < upper` in id order (`None`: unbounded).
    pub fn range(
        &self,
        lower: Option<NodeId>,
        upper: Option<NodeId>,
    ) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        use std::ops::Bound;
        let lo = lower.map_or(Bound::Unbounded, Bound::Included);
        let hi = upper.map_or(Bound::Unbounded, Bound::Excluded);
        // An empty or inverted range must not reach BTreeMap::range, which panics on it.
        let valid = match (lower, upper) {
            (Some(l), Some(u)) => l < u,
            _ => true,
        };
        let it = if valid {
            Some(self.entries.range((lo, hi)))
        } else {
            None
        };
        it.into_iter().flatten().map(|(n, v)| (*n, *v))
    }

    /// Removes the entry for `node`, returning its old value.
    pub fn remove(&mut self, node: &NodeId) -> Option<u64> {
        self.entries.remove(node)
    }

    /// Number of non-zero entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when every entry is 0.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of all entries: the number of events this clock covers.
    pub fn total(&self) -> u64 {
        self.entries.values().sum()
    }
}

impl FromIterator<(NodeId, u64)> for VectorClock {
    fn from_iter<I: IntoIterator<Item = (NodeId, u64)>>(iter: I) -> Self {
        let mut c = VectorClock::new();
        for (n, v) in iter {
            c.set(n, v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(i: u128) -> NodeId {
        NodeId::from_u128(i)
    }

    fn clock(pairs: &[(u128, u64)]) -> VectorClock {
        pairs.iter().map(|&(i, v)| (n(i), v)).collect()
    }

    #[test]
    fn increment_get_set_remove() {
        let mut c = VectorClock::new();
        assert_eq!(c.get(&n(1)), 0);
        assert_eq!(c.increment(n(1)), 1);
        assert_eq!(c.increment(n(1)), 2);
        c.set(n(2), 5);
        assert_eq!(c.get(&n(2)), 5);
        assert_eq!(c.known_nodes().collect::<Vec<_>>(), vec![n(1), n(2)]);
        assert_eq!(c.remove(&n(2)), Some(5));
        assert_eq!(c.get(&n(2)), 0);
        c.set(n(1), 0);
        assert!(c.is_empty());
    }

    #[test]
    fn compare_all_four_outcomes() {
        let a = clock(&[(1, 1), (2, 2)]);
        let b = clock(&[(1, 2), (2, 2)]);
        let c = clock(&[(1, 3), (2, 1)]);
        assert_eq!(a.compare(&a.clone()), ClockOrdering::Equal);
        assert_eq!(a.compare(&b), ClockOrdering::Before);
        assert_eq!(b.compare(&a), ClockOrdering::After);
        assert_eq!(b.compare(&c), ClockOrdering::Concurrent);
        assert!(a.is_before(&b) && b.is_after(&a) && b.is_concurrent(&c));
        assert_eq!(VectorClock::new().compare(&a), ClockOrdering::Before);
    }

    #[test]
    fn merge_takes_pointwise_max() {
        let mut a = clock(&[(1, 1), (2, 5)]);
        a.merge(&clock(&[(1, 3), (3, 2)]));
        assert_eq!(a, clock(&[(1, 3), (2, 5), (3, 2)]));
        assert_eq!(a.total(), 10);
    }

    #[test]
    fn zero_entries_do_not_make_clocks_differ() {
        let mut a = clock(&[(1, 1)]);
        a.set(n(2), 0);
        assert_eq!(a, clock(&[(1, 1)]));
        let bytes = crate::protocol::codec::encode(&a).unwrap();
        let back: VectorClock = crate::protocol::codec::decode(&bytes, 1 << 16).unwrap();
        assert_eq!(back, a);
    }

    fn arb_clock() -> impl Strategy<Value = VectorClock> {
        proptest::collection::vec((0u128..6, 0u64..5), 0..6)
            .prop_map(|v| v.into_iter().map(|(i, s)| (n(i), s)).collect())
    }

    proptest! {
        #[test]
        fn merge_is_commutative(a in arb_clock(), b in arb_clock()) {
            prop_assert_eq!(a.merged(&b), b.merged(&a));
        }

        #[test]
        fn merge_is_associative(a in arb_clock(), b in arb_clock(), c in arb_clock()) {
            prop_assert_eq!(a.merged(&b).merged(&c), a.merged(&b.merged(&c)));
        }

        #[test]
        fn merge_is_idempotent(a in arb_clock(), b in arb_clock()) {
            prop_assert_eq!(a.merged(&a), a.clone());
            let ab = a.merged(&b);
            prop_assert_eq!(ab.merged(&b), ab);
        }

        #[test]
        fn compare_agrees_with_merge(a in arb_clock(), b in arb_clock()) {
            let m = a.merged(&b);
            match a.compare(&b) {
                ClockOrdering::Equal => prop_assert_eq!(&a, &b),
                ClockOrdering::Before => { prop_assert_eq!(&m, &b); prop_assert_ne!(&a, &b) }
                ClockOrdering::After => { prop_assert_eq!(&m, &a); prop_assert_ne!(&a, &b) }
                ClockOrdering::Concurrent => { prop_assert_ne!(&m, &a); prop_assert_ne!(&m, &b) }
            }
            // compare is antisymmetric
            let back = b.compare(&a);
            let expected = match a.compare(&b) {
                ClockOrdering::Before => ClockOrdering::After,
                ClockOrdering::After => ClockOrdering::Before,
                o => o,
            };
            prop_assert_eq!(back, expected);
        }
    }
}
