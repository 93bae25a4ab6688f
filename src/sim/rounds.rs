//! Measured rounds, the way iroh-gossip's simulator measures (`src/proto/sim.rs`,
//! `Simulator::gossip_round`, scenarios `GossipSingle`/`GossipMulti`/`GossipAll` of its
//! `simulations/all.toml`): messages are sent in rounds; a round starts when the previous
//! one has reached every node (or timed out after [`ROUND_TIMEOUT_MS`]), and its figures are
//! taken alone: time from the sends until the last node held the last of them, RMR over the
//! payload copies received in it, LDH its largest hop count. The run reports the mean over
//! the rounds (and the first round alone: the cold tree), as iroh's table does.

use serde::Serialize;

use crate::protocol::NodeId;

use super::{EPOCH_MS, Sim, SimStore, id_of};
use crate::protocol::Event;

/// A round gives up after this long (iroh's `gossip_round_timeout`: 5 s).
pub const ROUND_TIMEOUT_MS: u64 = 5_000;

/// Who sends in each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Senders {
    /// Node 0 sends one event per round (iroh's `GossipSingle`).
    One,
    /// A random node sends one event per round (`GossipMulti`).
    Random,
    /// Every node sends one event per round (`GossipAll`).
    All,
}

/// The figures of one round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Round {
    /// From the sends until the last node held the last event of the round.
    pub time_ms: u64,
    /// Payload copies received in the round / useful ones - 1.
    pub rmr: f64,
    /// The most hops any event of the round took to any node.
    pub ldh: u32,
    /// (event, node) deliveries missing when the round ended.
    pub missed: u64,
}

/// Mean figures over the measured rounds, and the first round alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Rounds run.
    pub rounds: usize,
    /// Mean time to all, ms.
    pub mean_time_ms: f64,
    /// Mean RMR.
    pub mean_rmr: f64,
    /// Mean LDH.
    pub mean_ldh: f64,
    /// The slowest round, ms.
    pub max_time_ms: u64,
    /// The first round (the tree not yet shaped by any prune).
    pub first: Round,
}

impl Summary {
    fn of(rounds: &[Round]) -> Option<Summary> {
        let first = *rounds.first()?;
        let n = rounds.len() as f64;
        let mean = |f: fn(&Round) -> f64| rounds.iter().map(f).sum::<f64>() / n;
        Some(Summary {
            rounds: rounds.len(),
            mean_time_ms: mean(|r| r.time_ms as f64),
            mean_rmr: mean(|r| r.rmr),
            mean_ldh: mean(|r| f64::from(r.ldh)),
            max_time_ms: rounds.iter().map(|r| r.time_ms).max().unwrap_or(0),
            first,
        })
    }
}

/// Restarts every node as on its second run: each sender has issued seq 1 before and
/// every store holds it, the seq reservation matching. (A first run from an empty store is
/// *unsure* of its high-water mark, see `protocol::engine::create::Unsure`: it shows each
/// of its first 256 events once to every peer reporting it, which would dominate RMR
/// here; that cost is the first run's, and `one-sender` measures a first run.)
pub fn second_run(sim: &mut Sim, senders: Senders) {
    let n = sim.nodes.len();
    let origins: Vec<usize> = match senders {
        Senders::One => vec![0],
        Senders::Random | Senders::All => (0..n).collect(),
    };
    let mut history = SimStore::default();
    for &o in &origins {
        history.save(Event {
            id: uuid::Uuid::from_u128(((o as u128) << 64) | 1),
            origin: id_of(o),
            seq: 1,
            hlc: 1,
            created_at_ms: EPOCH_MS,
            payload: bytes::Bytes::from_static(b"earlier run"),
            sig: bytes::Bytes::new(),
        });
    }
    for i in 0..n {
        sim.crash(i);
        let mut store = history.clone();
        if origins.contains(&i) || senders != Senders::One {
            store.reserve_seqs(1);
        }
        sim.nodes[i].store = store;
        sim.restart(i);
    }
}

/// Runs `count` rounds of `senders` on a warmed-up simulation; returns each round's
/// figures and their summary.
pub fn run(sim: &mut Sim, senders: Senders, count: usize) -> (Vec<Round>, Option<Summary>) {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(one(sim, senders));
    }
    let summary = Summary::of(&out);
    (out, summary)
}

fn one(sim: &mut Sim, senders: Senders) -> Round {
    use rand::Rng;
    let (copies0, useful0) = sim.copies_and_useful();
    let start = sim.now();
    let who: Vec<usize> = match senders {
        Senders::One => vec![0],
        Senders::Random => vec![sim.rng.random_range(0..sim.nodes.len())],
        Senders::All => (0..sim.nodes.len()).collect(),
    };
    let keys: Vec<(NodeId, u64)> = who
        .into_iter()
        .filter_map(|i| sim.create(i, 100).map(|e| e.key()))
        .collect();
    sim.run_until(start + ROUND_TIMEOUT_MS, true);
    let (copies, useful) = sim.copies_and_useful();
    let (copies, useful) = (copies - copies0, useful - useful0);
    let n = sim.nodes.len();
    let mut last = 0;
    let mut missed = 0;
    for key in &keys {
        match sim.tracked.get(key) {
            Some(t) if t.holders >= n => last = last.max(t.done_at.unwrap_or(start)),
            Some(t) => missed += n.saturating_sub(t.holders) as u64,
            None => {}
        }
    }
    let ldh = sim
        .nodes
        .iter()
        .flat_map(|node| keys.iter().filter_map(|k| node.hops.get(k).copied()))
        .max()
        .unwrap_or(0);
    Round {
        time_ms: if missed > 0 {
            ROUND_TIMEOUT_MS
        } else {
            last.saturating_sub(start)
        },
        rmr: if useful > 0 {
            copies as f64 / useful as f64 - 1.0
        } else {
            0.0
        },
        ldh,
        missed,
    }
}
