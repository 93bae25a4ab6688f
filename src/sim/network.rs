//! The virtual network: link latencies, loss, duplicates, partitions.

use rand::Rng;
use rand::rngs::SmallRng;

/// How the network misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    /// Shortest link latency, ms.
    pub min_latency_ms: u64,
    /// Longest link latency, ms.
    pub max_latency_ms: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a delivered message is delivered twice.
    pub duplicate: f64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            min_latency_ms: 10,
            max_latency_ms: 50,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// Links between `n` nodes.
#[derive(Debug, Clone)]
pub struct Network {
    config: NetConfig,
    seed: u64,
    /// Partition group per node; nodes talk only within their group.
    group: Vec<u32>,
    /// Single links cut both ways (a congested or broken link between two nodes that
    /// both still reach everyone else).
    cut_links: std::collections::BTreeSet<(usize, usize)>,
}

impl Network {
    /// A network of `n` nodes, all in one partition.
    pub fn new(config: NetConfig, seed: u64, n: usize) -> Self {
        Network {
            config,
            seed,
            group: vec![0; n],
            cut_links: std::collections::BTreeSet::new(),
        }
    }

    /// Adds a node (in partition 0).
    pub fn grow(&mut self) {
        self.group.push(0);
    }

    /// The fixed latency of the link `a`-`b`, ms, within the configured range.
    pub fn latency(&self, a: usize, b: usize) -> u64 {
        let (x, y) = (a.min(b) as u64, a.max(b) as u64);
        let mut h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ y.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ self.seed;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        let span = self
            .config
            .max_latency_ms
            .saturating_sub(self.config.min_latency_ms);
        self.config.min_latency_ms + h % (span + 1)
    }

    /// Splits the nodes: `groups[i]` is node i's partition.
    pub fn partition(&mut self, groups: Vec<u32>) {
        for (g, v) in self.group.iter_mut().zip(groups) {
            *g = v;
        }
    }

    /// Joins every partition and restores every cut link.
    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
        self.cut_links.clear();
    }

    /// Cuts the one link between `a` and `b` (both ways).
    pub fn cut_link(&mut self, a: usize, b: usize) {
        self.cut_links.insert((a.min(b), a.max(b)));
    }

    /// How many copies of a message from `a` to `b` arrive (0: lost or cut off).
    pub fn copies(&self, a: usize, b: usize, rng: &mut SmallRng) -> usize {
        if self.group.get(a) != self.group.get(b) || self.cut_links.contains(&(a.min(b), a.max(b)))
        {
            return 0;
        }
        if self.config.loss > 0.0 && rng.random_bool(self.config.loss.min(1.0)) {
            return 0;
        }
        if self.config.duplicate > 0.0 && rng.random_bool(self.config.duplicate.min(1.0)) {
            2
        } else {
            1
        }
    }
}
