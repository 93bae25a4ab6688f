//! Deterministic simulations of the engine: loss, partitions, crashes, duplicates.

use std::time::Duration;

use proptest::prelude::*;

use super::scenario::{self, Scenario};
use super::*;

fn small(nodes: usize, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(nodes, seed);
    c.anti_entropy_interval = Some(Duration::from_secs(10));
    c
}

fn settle(sim: &mut Sim, secs: u64) {
    sim.run_for(Duration::from_secs(secs));
}

#[test]
fn every_scenario_and_strategy_misses_nothing() {
    for s in [
        Scenario::OneSender,
        Scenario::RandomSender,
        Scenario::EveryNode,
    ] {
        for strategy in PeerSelectionStrategy::ALL {
            let mut c = SimConfig::new(60, 1);
            c.strategy = strategy;
            let o = scenario::run(c, s);
            assert_eq!(o.missed, 0, "{s:?} {strategy:?}");
            assert!(
                o.time_to_all_ms > 0 && o.ldh >= 1,
                "{s:?} {strategy:?} {o:?}"
            );
        }
    }
}

#[test]
fn runs_are_deterministic_per_seed() {
    let a = scenario::quick(30, Scenario::OneSender, 3, 5);
    let b = scenario::quick(30, Scenario::OneSender, 3, 5);
    assert_eq!(
        (
            a.time_to_all_ms,
            a.ldh,
            a.rmr.to_bits(),
            a.bytes_per_node_s_at_rest.to_bits()
        ),
        (
            b.time_to_all_ms,
            b.ldh,
            b.rmr.to_bits(),
            b.bytes_per_node_s_at_rest.to_bits()
        )
    );
}

#[test]
fn a_larger_fanout_spreads_faster_with_more_redundancy() {
    let slow = scenario::quick(60, Scenario::OneSender, 2, 9);
    let fast = scenario::quick(60, Scenario::OneSender, 8, 9);
    assert!(
        fast.time_to_all_ms < slow.time_to_all_ms,
        "{slow:?} {fast:?}"
    );
    assert!(fast.rmr > slow.rmr);
}

#[test]
fn a_cold_node_catches_up_completely() {
    let mut c = SimConfig::new(5, 3);
    c.limits.max_events = 500;
    c.limits.max_bytes = 4 * 1024 * 1024;
    let o = scenario::run(c, Scenario::ColdJoin);
    assert_eq!(o.missed, 0, "{o:?}");
}

#[test]
fn a_lossy_network_converges_with_nothing_lost() {
    let mut c = small(12, 4);
    c.net.loss = 0.3;
    let mut sim = Sim::new(c);
    settle(&mut sim, 2);
    for k in 0..40 {
        sim.create(k % 12, 20);
        sim.run_for(Duration::from_millis(100));
    }
    settle(&mut sim, 60);
    assert_eq!(sim.lost(), 0);
    assert!(sim.converged());
}

#[test]
fn partitions_heal_into_one_state() {
    let mut sim = Sim::new(small(10, 5));
    settle(&mut sim, 2);
    sim.network()
        .partition((0..10).map(|i| (i % 2) as u32).collect());
    for i in 0..10 {
        sim.create(i, 20);
        sim.create(i, 20);
    }
    settle(&mut sim, 5);
    assert!(!sim.converged(), "the two sides cannot have met");
    sim.network().heal();
    settle(&mut sim, 40);
    assert_eq!(sim.lost(), 0);
    assert!(sim.converged());
}

#[test]
fn a_crashed_node_restarts_from_its_store_and_catches_up() {
    let mut sim = Sim::new(small(8, 6));
    settle(&mut sim, 2);
    for i in 0..8 {
        sim.create(i, 20);
    }
    settle(&mut sim, 3);
    sim.crash(3);
    for i in [0, 1, 2, 4] {
        sim.create(i, 20);
    }
    settle(&mut sim, 3);
    sim.restart(3);
    let next = sim.nodes[3].engine.next_seq();
    assert_eq!(next, 2, "the restarted node continues its own seqs");
    sim.create(3, 20);
    settle(&mut sim, 40);
    assert_eq!(sim.lost(), 0);
    assert!(sim.converged());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Random creations, crashes, restarts, partitions and duplicate deliveries on a lossy
    /// network always converge once the network heals, with nothing lost.
    #[test]
    fn random_interleavings_converge(
        seed in any::<u64>(),
        steps in proptest::collection::vec((0u8..6, 0usize..6, 1u64..400), 5..30),
    ) {
        let mut c = small(6, seed);
        c.net.loss = 0.1;
        c.net.duplicate = 0.2;
        let mut sim = Sim::new(c);
        settle(&mut sim, 2);
        for (op, node, wait) in steps {
            match op {
                0..=2 => {
                    sim.create(node, 10);
                }
                3 => sim.crash(node),
                4 => sim.restart(node),
                _ => sim.network().partition((0..6).map(|i| (i < node) as u32).collect()),
            }
            sim.run_for(Duration::from_millis(wait));
        }
        sim.network().heal();
        for i in 0..6 {
            sim.restart(i);
        }
        settle(&mut sim, 60);
        prop_assert_eq!(sim.lost(), 0);
        prop_assert!(sim.converged());
    }
}

#[test]
fn measured_rounds_on_a_lossy_network_miss_nothing_and_settle_the_tree() {
    let mut c = SimConfig::new(60, 4);
    c.net.loss = 0.05;
    let o = scenario::run(c, Scenario::OneSenderRounds);
    assert_eq!(o.missed, 0, "{o:?}");
    let r = o.per_round.clone().unwrap();
    assert_eq!(r.rounds, 30);
    // Once the prunes shaped the tree, later rounds cost far fewer copies than the first.
    assert!(r.mean_rmr < r.first.rmr, "{r:?}");
    let clean = scenario::run(SimConfig::new(60, 4), Scenario::OneSenderRounds);
    let r = clean.per_round.unwrap();
    assert!(r.mean_rmr < 0.3, "{r:?}");
}
