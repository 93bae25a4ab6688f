//! Peer selection strategies: which live peers a round talks to.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::event::NodeId;

/// How a round picks its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PeerSelectionStrategy {
    /// `fanout` distinct peers uniformly at random.
    #[default]
    Random,
    /// The next `fanout` peers in id order after the last one picked.
    RoundRobin,
    /// The peers contacted longest ago (never contacted first).
    LeastRecentlyContacted,
    /// The peers with the best exchange success (EWMA); ties broken at random.
    MostReliable,
}

impl PeerSelectionStrategy {
    /// Every strategy, for tables and tests.
    pub const ALL: [PeerSelectionStrategy; 4] = [
        PeerSelectionStrategy::Random,
        PeerSelectionStrategy::RoundRobin,
        PeerSelectionStrategy::LeastRecentlyContacted,
        PeerSelectionStrategy::MostReliable,
    ];

    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            PeerSelectionStrategy::Random => "random",
            PeerSelectionStrategy::RoundRobin => "round-robin",
            PeerSelectionStrategy::LeastRecentlyContacted => "least-recent",
            PeerSelectionStrategy::MostReliable => "most-reliable",
        }
    }
}

/// Reliability of a peer never contacted: neither trusted nor distrusted.
pub const NEUTRAL_RELIABILITY: f64 = 0.5;

/// Weight of the newest exchange in the reliability average.
pub const RELIABILITY_ALPHA: f64 = 0.2;

/// The reliability after one more exchange (exponentially weighted moving average).
pub fn update_reliability(current: f64, success: bool) -> f64 {
    let x = if success { 1.0 } else { 0.0 };
    current * (1.0 - RELIABILITY_ALPHA) + x * RELIABILITY_ALPHA
}

/// What a strategy knows of one live peer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The peer.
    pub id: NodeId,
    /// Time of the last completed contact (driver's clock, ms), if any.
    pub last_contact_ms: Option<u64>,
    /// EWMA of exchange success, [`NEUTRAL_RELIABILITY`] when unknown.
    pub reliability: f64,
}

impl Candidate {
    /// A candidate with no history.
    pub fn new(id: NodeId) -> Self {
        Candidate {
            id,
            last_contact_ms: None,
            reliability: NEUTRAL_RELIABILITY,
        }
    }
}

/// Picks peers according to a strategy; keeps the round-robin cursor and the random source.
#[derive(Debug, Clone)]
pub struct Selector {
    strategy: PeerSelectionStrategy,
    last_pick: Option<NodeId>,
    rng: SmallRng,
}

impl Selector {
    /// A selector with a seeded random source (deterministic for a given seed).
    pub fn new(strategy: PeerSelectionStrategy, seed: u64) -> Self {
        Selector {
            strategy,
            last_pick: None,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The strategy in use.
    pub fn strategy(&self) -> PeerSelectionStrategy {
        self.strategy
    }

    /// At most `fanout` distinct peers among `candidates`, none of them in `exclude`.
    pub fn select(
        &mut self,
        candidates: &[Candidate],
        fanout: usize,
        exclude: &[NodeId],
    ) -> Vec<NodeId> {
        let mut pool: Vec<Candidate> = Vec::with_capacity(candidates.len());
        for c in candidates {
            if !exclude.contains(&c.id) && !pool.iter().any(|p| p.id == c.id) {
                pool.push(*c);
            }
        }
        let k = fanout.min(pool.len());
        if k == 0 {
            return Vec::new();
        }
        match self.strategy {
            PeerSelectionStrategy::Random => {
                return pool
                    .partial_shuffle(&mut self.rng, k)
                    .0
                    .iter()
                    .map(|c| c.id)
                    .collect();
            }
            PeerSelectionStrategy::RoundRobin => {
                pool.sort_by_key(|c| c.id);
                let start = match self.last_pick {
                    Some(last) => pool.partition_point(|c| c.id <= last) % pool.len(),
                    None => 0,
                };
                pool.rotate_left(start);
                pool.truncate(k);
                self.last_pick = pool.last().map(|c| c.id);
            }
            PeerSelectionStrategy::LeastRecentlyContacted => {
                // Shuffle first so that ties (all never contacted, say) are not always won
                // by the same ids; the sort is stable.
                pool.shuffle(&mut self.rng);
                pool.sort_by_key(|c| c.last_contact_ms.map_or(0, |t| t + 1));
                pool.truncate(k);
            }
            PeerSelectionStrategy::MostReliable => {
                pool.shuffle(&mut self.rng);
                pool.sort_by(|a, b| b.reliability.total_cmp(&a.reliability));
                pool.truncate(k);
            }
        }
        pool.into_iter().map(|c| c.id).collect()
    }

    /// Picks `k` distinct ids from `ids` at random (used for eager-push targets).
    pub fn random_subset(&mut self, ids: &[NodeId], k: usize) -> Vec<NodeId> {
        let mut pool = ids.to_vec();
        pool.sort();
        pool.dedup();
        let k = k.min(pool.len());
        pool.partial_shuffle(&mut self.rng, k).0.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn cands(n: u128) -> Vec<Candidate> {
        (1..=n)
            .map(|i| Candidate::new(NodeId::from_u128(i)))
            .collect()
    }

    #[test]
    fn every_strategy_picks_distinct_peers_up_to_fanout() {
        for s in PeerSelectionStrategy::ALL {
            let mut sel = Selector::new(s, 1);
            for _ in 0..20 {
                let picked = sel.select(&cands(7), 3, &[]);
                assert_eq!(picked.len(), 3, "{s:?}");
                assert_eq!(picked.iter().collect::<HashSet<_>>().len(), 3, "{s:?}");
            }
            assert_eq!(sel.select(&cands(2), 5, &[]).len(), 2);
            assert!(sel.select(&[], 3, &[]).is_empty());
        }
    }

    #[test]
    fn duplicates_in_candidates_are_picked_once() {
        let mut c = cands(2);
        c.extend(cands(2));
        for s in PeerSelectionStrategy::ALL {
            assert_eq!(Selector::new(s, 3).select(&c, 4, &[]).len(), 2);
        }
    }

    #[test]
    fn excluded_peers_are_never_picked() {
        let ex = [NodeId::from_u128(1), NodeId::from_u128(2)];
        for s in PeerSelectionStrategy::ALL {
            let mut sel = Selector::new(s, 9);
            for _ in 0..10 {
                let p = sel.select(&cands(4), 4, &ex);
                assert_eq!(p.len(), 2);
                assert!(p.iter().all(|id| !ex.contains(id)));
            }
        }
    }

    #[test]
    fn round_robin_cycles_through_everyone() {
        let mut sel = Selector::new(PeerSelectionStrategy::RoundRobin, 0);
        let c = cands(5);
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.extend(sel.select(&c, 2, &[]));
        }
        // 10 picks over 5 peers: each exactly twice.
        for id in c.iter().map(|c| c.id) {
            assert_eq!(seen.iter().filter(|x| **x == id).count(), 2);
        }
    }

    #[test]
    fn least_recently_contacted_prefers_never_then_oldest() {
        let mut c = cands(4);
        c[0].last_contact_ms = Some(100);
        c[1].last_contact_ms = Some(5);
        c[2].last_contact_ms = None;
        c[3].last_contact_ms = Some(50);
        let mut sel = Selector::new(PeerSelectionStrategy::LeastRecentlyContacted, 0);
        assert_eq!(sel.select(&c, 3, &[]), vec![c[2].id, c[1].id, c[3].id]);
    }

    #[test]
    fn most_reliable_prefers_high_scores_and_unknown_is_neutral() {
        let mut c = cands(3);
        c[0].reliability = 0.9;
        c[1].reliability = 0.1;
        // c[2] unknown: neutral, between the two.
        let mut sel = Selector::new(PeerSelectionStrategy::MostReliable, 0);
        assert_eq!(sel.select(&c, 2, &[]), vec![c[0].id, c[2].id]);
    }

    #[test]
    fn reliability_moves_towards_outcomes() {
        let mut r = NEUTRAL_RELIABILITY;
        for _ in 0..20 {
            r = update_reliability(r, true);
        }
        assert!(r > 0.95);
        for _ in 0..20 {
            r = update_reliability(r, false);
        }
        assert!(r < 0.05);
    }

    #[test]
    fn random_is_deterministic_per_seed_and_covers_everyone() {
        let c = cands(10);
        let a: Vec<_> = {
            let mut s = Selector::new(PeerSelectionStrategy::Random, 42);
            (0..50).flat_map(|_| s.select(&c, 3, &[])).collect()
        };
        let b: Vec<_> = {
            let mut s = Selector::new(PeerSelectionStrategy::Random, 42);
            (0..50).flat_map(|_| s.select(&c, 3, &[])).collect()
        };
        assert_eq!(a, b);
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 10);
    }
}
