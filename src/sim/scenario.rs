//! The benchmark scenarios, and what they measure.

use std::time::Instant;

use rand::Rng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::protocol::{Event, PeerSelectionStrategy};

use super::rounds::{self, Senders, Summary};
use super::{EPOCH_MS, Sim, SimConfig, SimStore, id_of, ms};

/// What happens after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// One node creates one event.
    OneSender,
    /// Every node creates one event at once.
    EveryNode,
    /// Ten rounds, a random node creating one event in each.
    RandomSender,
    /// The cluster holds 100,000 events from 10 origins; a cold node joins.
    ColdJoin,
    /// iroh-gossip's `GossipSingle`: node 0 sends one event per round, 30 rounds, each
    /// round starting when the last one reached everyone (see [`super::rounds`]).
    OneSenderRounds,
    /// iroh-gossip's `GossipMulti`: a random node sends one event per round, 30 rounds.
    RandomSenderRounds,
    /// iroh-gossip's `GossipAll`: every node sends one event per round, 5 rounds.
    EveryNodeRounds,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 7] = [
        Scenario::OneSender,
        Scenario::EveryNode,
        Scenario::RandomSender,
        Scenario::ColdJoin,
        Scenario::OneSenderRounds,
        Scenario::RandomSenderRounds,
        Scenario::EveryNodeRounds,
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::OneSender => "one-sender",
            Scenario::EveryNode => "every-node",
            Scenario::RandomSender => "random-sender",
            Scenario::ColdJoin => "cold-join",
            Scenario::OneSenderRounds => "one-sender-rounds",
            Scenario::RandomSenderRounds => "random-sender-rounds",
            Scenario::EveryNodeRounds => "every-node-rounds",
        }
    }

    /// The senders and round count of a measured-rounds scenario.
    pub fn rounds(self) -> Option<(Senders, usize)> {
        match self {
            Scenario::OneSenderRounds => Some((Senders::One, 30)),
            Scenario::RandomSenderRounds => Some((Senders::Random, 30)),
            Scenario::EveryNodeRounds => Some((Senders::All, 5)),
            _ => None,
        }
    }

    /// The scenario of a command-line name.
    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// Nodes (the joiner included).
    pub nodes: usize,
    /// The scenario's name.
    pub scenario: &'static str,
    /// The strategy's name.
    pub strategy: &'static str,
    /// Fanout.
    pub fanout: usize,
    /// From the first creation until the last tracked event reached the last node (for a
    /// cold join: until the joiner held everything).
    pub time_to_all_ms: u64,
    /// Gossip intervals that took.
    pub rounds: u64,
    /// Last delivery hops: the most hops any tracked event took to its last node.
    pub ldh: u32,
    /// Relative message redundancy: copies received per useful copy, minus one.
    pub rmr: f64,
    /// Bytes sent per node per second with nothing new (10 intervals).
    pub bytes_per_node_s_at_rest: f64,
    /// Tracked (event, node) deliveries missing at the end.
    pub missed: u64,
    /// Wall time of the run, s.
    pub wall_s: f64,
    /// For a measured-rounds scenario: the means over its rounds (the fields above then
    /// hold them too, rounded) and the first round alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_round: Option<Summary>,
}

/// Events per origin and origins of the cold-join history.
pub const COLD_ORIGINS: usize = 10;
/// Events per origin of the cold-join history.
pub const COLD_PER_ORIGIN: u64 = 10_000;
/// A run gives up after this many intervals.
pub const DEADLINE_INTERVALS: u64 = 600;

/// Runs `scenario` on a fresh simulation of `config`.
pub fn run(config: SimConfig, scenario: Scenario) -> Outcome {
    let wall = Instant::now();
    let interval = ms(config.gossip_interval).max(1);
    let fanout = config.fanout;
    let strategy = config.strategy;
    let mut sim = Sim::new(config);
    // Warm-up: every node started and a few quiet rounds behind it.
    sim.run_until(EPOCH_MS + 2 * interval, false);
    let start = sim.now();
    let deadline = start + DEADLINE_INTERVALS * interval;
    let mut joiner = None;
    let mut per_round = None;
    match scenario {
        Scenario::OneSender => {
            sim.create(0, 100);
        }
        Scenario::EveryNode => {
            for i in 0..sim.nodes.len() {
                sim.create(i, 100);
            }
        }
        Scenario::RandomSender => {
            for r in 0..10 {
                sim.run_until(start + r * interval, false);
                let i = sim.rng.random_range(0..sim.nodes.len());
                sim.create(i, 100);
            }
        }
        Scenario::ColdJoin => joiner = Some(cold_join(&mut sim)),
        Scenario::OneSenderRounds | Scenario::RandomSenderRounds | Scenario::EveryNodeRounds => {
            if let Some((senders, count)) = scenario.rounds() {
                rounds::second_run(&mut sim, senders);
                // Two quiet rounds for the restarted nodes to find their peers again.
                let t = sim.now() + 2 * interval;
                sim.run_until(t, false);
                per_round = rounds::run(&mut sim, senders, count).1;
            }
        }
    }
    let time_to_all = match joiner {
        Some(j) => {
            let total = (COLD_ORIGINS.min(sim.nodes.len() - 1) as u64) * COLD_PER_ORIGIN;
            while sim.now() < deadline && sim.clock(j).total() < total {
                let t = sim.now() + 10;
                sim.run_until(t, false);
            }
            sim.now() - start
        }
        None => match &per_round {
            Some(r) => r.mean_time_ms.round() as u64,
            None => {
                sim.run_until(deadline, true);
                sim.done.iter().map(|d| d.0).max().unwrap_or(0)
            }
        },
    };
    if per_round.is_some() {
        // Whatever a timed-out round left missing still gets its chance to be repaired.
        sim.run_until(deadline, true);
    }
    let (copies, useful) = sim.copies_and_useful();
    let missed = match joiner {
        Some(j) => {
            let total = (COLD_ORIGINS.min(sim.nodes.len() - 1) as u64) * COLD_PER_ORIGIN;
            total.saturating_sub(sim.clock(j).total())
        }
        None => sim.missed(),
    };
    // At rest: two intervals to settle, then ten measured.
    let t = sim.now() + 2 * interval;
    sim.run_until(t, false);
    sim.bytes = 0;
    let t = sim.now() + 10 * interval;
    sim.run_until(t, false);
    let rest = sim.bytes as f64 / sim.nodes.len() as f64 / (10.0 * interval as f64 / 1000.0);
    Outcome {
        nodes: sim.nodes.len(),
        scenario: scenario.name(),
        strategy: strategy.name(),
        fanout,
        time_to_all_ms: time_to_all,
        rounds: time_to_all.div_ceil(interval),
        ldh: match &per_round {
            Some(r) => r.mean_ldh.round() as u32,
            None => sim.done.iter().map(|d| d.1).max().unwrap_or(0),
        },
        rmr: match &per_round {
            Some(r) => r.mean_rmr,
            None if useful > 0 => copies as f64 / useful as f64 - 1.0,
            None => 0.0,
        },
        bytes_per_node_s_at_rest: rest,
        missed,
        wall_s: wall.elapsed().as_secs_f64(),
        per_round,
    }
}

/// Gives every node the same 100,000-event history, then adds a cold node knowing up to
/// `view` of them. Returns its index.
fn cold_join(sim: &mut Sim) -> usize {
    let n = sim.nodes.len();
    let mut history = SimStore::default();
    for o in 0..COLD_ORIGINS.min(n) {
        let origin = id_of(o);
        for seq in 1..=COLD_PER_ORIGIN {
            history.save(Event {
                id: uuid::Uuid::from_u128(((o as u128) << 64) | seq as u128),
                origin,
                seq,
                hlc: seq,
                created_at_ms: EPOCH_MS + seq,
                payload: bytes::Bytes::from(vec![b'h'; 100]),
                sig: bytes::Bytes::new(),
            });
        }
    }
    for i in 0..n {
        sim.crash(i);
        sim.nodes[i].store = history.clone();
        sim.restart(i);
    }
    let mut view: Vec<usize> = (0..n).collect();
    view.shuffle(&mut sim.rng);
    view.truncate(sim.config.view.min(n));
    sim.join(view, SimStore::default())
}

/// Every strategy, for the command line.
pub fn strategy(name: &str) -> Option<PeerSelectionStrategy> {
    PeerSelectionStrategy::ALL
        .into_iter()
        .find(|s| s.name() == name)
}

/// A convenience for tests and the CLI: [`run`] with `nodes`, `fanout` and `seed`.
pub fn quick(nodes: usize, scenario: Scenario, fanout: usize, seed: u64) -> Outcome {
    let mut c = SimConfig::new(nodes, seed);
    c.fanout = fanout;
    run(c, scenario)
}
