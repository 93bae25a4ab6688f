//! Which events the model has applied, by `(origin, seq)`.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::NodeId;

/// One origin's applied seqs: all of `1..=contiguous`, plus the ones above it that arrived
/// early. Events mostly arrive in seq order per origin, so `early` stays small and the whole
/// set costs a few words per origin instead of an entry per event.
#[derive(Clone, Debug, Default)]
struct Seqs {
    contiguous: u64,
    early: BTreeSet<u64>,
}

impl Seqs {
    fn insert(&mut self, seq: u64) -> bool {
        // Seq 0 is not a valid seq, but it is still one distinct event name.
        if seq != 0 && seq <= self.contiguous {
            return false;
        }
        if !self.early.insert(seq) {
            return false;
        }
        while self.early.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
        true
    }
}

/// The set of `(origin, seq)` pairs applied so far.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    by_origin: BTreeMap<NodeId, Seqs>,
}

impl Seen {
    /// Adds `(origin, seq)`; false if it was already there.
    pub fn insert(&mut self, origin: NodeId, seq: u64) -> bool {
        self.by_origin.entry(origin).or_default().insert(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        #[test]
        fn behaves_like_a_set_of_pairs(
            pairs in proptest::collection::vec((0u128..3, 0u64..12), 0..80)
        ) {
            let mut seen = Seen::default();
            let mut reference = HashSet::new();
            for (o, s) in pairs {
                let origin = NodeId::from_u128(o);
                prop_assert_eq!(seen.insert(origin, s), reference.insert((origin, s)), "({}, {})", o, s);
            }
        }
    }
}
