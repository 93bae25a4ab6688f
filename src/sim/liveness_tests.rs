//! The failure detector over the simulated network: a silent cut is suspect within 2 s
//! and offline within 3 s, a healed node is alive within 1 s and stays so, and a node cut
//! off from one peer only (a congested link) is kept from going offline by the others.

// Nodes are numbered: the loop index is the node.
#![allow(clippy::needless_range_loop)]

use std::time::Duration;

use super::*;
use crate::protocol::engine::{PeerState, ProbeConfig};

fn probing(nodes: usize, seed: u64) -> Sim {
    let mut c = SimConfig::new(nodes, seed);
    c.probe = Some(ProbeConfig::lan());
    c.gossip_timeout = Duration::from_secs(3);
    c.anti_entropy_interval = Some(Duration::from_secs(30));
    Sim::new(c)
}

fn state(sim: &Sim, at: usize, of: usize) -> Option<PeerState> {
    sim.nodes[at]
        .engine
        .peers()
        .get(&id_of(of))
        .map(|p| p.state)
}

const STEP_MS: u64 = 25;

fn step(sim: &mut Sim) {
    sim.run_for(Duration::from_millis(STEP_MS));
}

#[test]
fn a_silent_cut_is_suspect_in_2_s_offline_in_3_s_and_heals_in_1_s_without_flapping() {
    for seed in 1..=3 {
        let n = 5;
        let mut sim = probing(n, seed);
        sim.run_for(Duration::from_secs(5));
        for i in 0..n {
            for j in (0..n).filter(|j| *j != i) {
                assert_eq!(
                    state(&sim, i, j),
                    Some(PeerState::Alive),
                    "seed {seed}: {i} sees {j}"
                );
            }
        }
        let cut = sim.now();
        sim.network().partition(vec![0, 0, 0, 0, 1]);
        let mut suspect = [None; 4];
        let mut offline = [None; 4];
        while sim.now() < cut + 15_000 {
            step(&mut sim);
            for i in 0..4 {
                match state(&sim, i, 4) {
                    Some(PeerState::Suspect) if suspect[i].is_none() => {
                        suspect[i] = Some(sim.now() - cut)
                    }
                    Some(PeerState::Offline) if offline[i].is_none() => {
                        suspect[i].get_or_insert(sim.now() - cut);
                        offline[i] = Some(sim.now() - cut);
                    }
                    _ => {}
                }
                for j in (0..4).filter(|j| *j != i) {
                    assert_eq!(
                        state(&sim, i, j),
                        Some(PeerState::Alive),
                        "seed {seed}: the rest stay alive"
                    );
                }
            }
        }
        for i in 0..4 {
            let s = suspect[i].expect("suspect");
            let o = offline[i].expect("offline");
            assert!(
                s <= 2000,
                "seed {seed}: node {i} suspected the cut node after {s} ms"
            );
            assert!(
                o <= 3000,
                "seed {seed}: node {i} called it offline after {o} ms"
            );
            assert_eq!(
                state(&sim, i, 4),
                Some(PeerState::Offline),
                "it stayed offline"
            );
        }
        let healed = sim.now();
        sim.network().heal();
        let mut alive = [None; 4];
        while sim.now() < healed + 10_000 {
            step(&mut sim);
            for i in 0..4 {
                let s = state(&sim, i, 4);
                match (alive[i], s) {
                    (None, Some(PeerState::Alive)) => alive[i] = Some(sim.now() - healed),
                    (Some(_), s) => {
                        assert_eq!(s, Some(PeerState::Alive), "seed {seed}: node {i} flapped")
                    }
                    _ => {}
                }
            }
        }
        for (i, a) in alive.iter().enumerate() {
            let a = a.expect("alive again");
            assert!(
                a <= 1000,
                "seed {seed}: node {i} saw the healed node after {a} ms"
            );
        }
    }
}

#[test]
fn a_peer_cut_off_from_one_node_only_is_kept_by_indirect_probes() {
    let n = 4;
    let mut sim = probing(n, 9);
    sim.run_for(Duration::from_secs(5));
    sim.network().cut_link(0, 3);
    let start = sim.now();
    let mut suspected = false;
    while sim.now() < start + 20_000 {
        step(&mut sim);
        let s = state(&sim, 0, 3);
        suspected |= s == Some(PeerState::Suspect);
        assert_ne!(
            s,
            Some(PeerState::Offline),
            "node 3 reachable through 1 and 2 is not offline"
        );
        for j in 1..3 {
            assert_eq!(state(&sim, j, 3), Some(PeerState::Alive));
        }
    }
    assert!(suspected, "the broken link itself is noticed");
    assert!(sim.nodes[0].engine.detector_stats().indirect_acks > 0);
}
