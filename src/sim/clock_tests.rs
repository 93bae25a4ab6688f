//! Deterministic simulations of the clock and seq rules: crash-restart with a lost tail,
//! a lost tail plus typing while alone, and a member sending clock extremes. Each ends
//! with identical states and nothing typed lost.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::protocol::hlc::Hlc;
use crate::protocol::validity::{InvalidEvent, MAX_SEQ};

fn sim(nodes: usize, seed: u64) -> Sim {
    let mut c = SimConfig::new(nodes, seed);
    c.anti_entropy_interval = Some(Duration::from_secs(10));
    let mut sim = Sim::new(c);
    sim.run_for(Duration::from_secs(2));
    sim
}

fn typed(i: usize, k: usize) -> Bytes {
    Bytes::from(format!("node {i} message {k}"))
}

/// Every running node holds every payload in `typed`, no seq is held twice, and no node
/// saw an equivocation.
fn assert_nothing_lost(sim: &Sim, typed: &[Bytes]) {
    assert!(sim.converged(), "states differ");
    assert_eq!(sim.lost(), 0);
    for (i, n) in sim.nodes.iter().enumerate().filter(|(_, n)| n.up) {
        let held: BTreeSet<&[u8]> = n.store.events().map(|e| &e.payload[..]).collect();
        for p in typed {
            assert!(held.contains(&p[..]), "node {i} lacks {p:?}");
        }
        assert_eq!(n.engine.stats().equivocations, 0, "node {i}");
        assert_eq!(n.engine.pending_own(), 0, "node {i} still sending");
    }
}

/// Node 0 types `k` messages, the room syncs, node 0 crashes and its log loses the last
/// `lost` records at a record boundary.
fn lose_a_tail(sim: &mut Sim, k: usize, lost: usize) -> Vec<Bytes> {
    let mut all = Vec::new();
    for j in 0..k {
        let p = typed(0, j);
        assert!(sim.create_with(0, p.clone()).is_some());
        all.push(p);
    }
    sim.run_for(Duration::from_secs(5));
    assert!(sim.converged());
    sim.crash(0);
    let me = sim.nodes[0].engine.id();
    sim.nodes[0].store.lose_tail(me, lost);
    assert!(sim.nodes[0].store.reservation() > sim.nodes[0].store.state(me).own_latest_seq);
    all
}

#[test]
fn a_crash_with_a_lost_tail_never_reuses_a_seq() {
    let mut sim = sim(6, 11);
    let mut all = lose_a_tail(&mut sim, 5, 2);
    sim.restart(0);
    assert!(sim.nodes[0].engine.is_learning_seq());
    // Typed at once after the restart: waits for a peer, then goes out past seq 5.
    for j in 5..8 {
        let p = typed(0, j);
        sim.create_with(0, p.clone());
        all.push(p);
    }
    sim.run_for(Duration::from_secs(30));
    assert!(!sim.nodes[0].engine.is_learning_seq());
    assert_nothing_lost(&sim, &all);
    // The lost tail came back from the peers.
    let me = sim.nodes[0].engine.id();
    assert_eq!(sim.nodes[0].store.clock().get(&me), 8);
}

#[test]
fn a_lost_tail_and_typing_while_alone_waits_then_joins_in_order() {
    let mut sim = sim(5, 12);
    let mut all = lose_a_tail(&mut sim, 4, 3);
    // Alone: the network cuts node 0 off from everyone.
    sim.network().partition(vec![1, 0, 0, 0, 0]);
    sim.restart(0);
    for j in 4..7 {
        let p = typed(0, j);
        assert!(
            sim.create_with(0, p.clone()).is_none(),
            "signed while alone"
        );
        all.push(p);
    }
    // Others keep talking meanwhile.
    for i in 1..5 {
        let p = typed(i, 0);
        sim.create_with(i, p.clone());
        all.push(p);
    }
    sim.run_for(Duration::from_secs(20));
    assert_eq!(sim.nodes[0].engine.pending_own(), 3, "shown as sending…");
    sim.network().heal();
    sim.run_for(Duration::from_secs(40));
    assert_nothing_lost(&sim, &all);
    // Node 0's messages kept their typing order and came after everything it saw.
    let me = sim.nodes[0].engine.id();
    let mine: Vec<&Event> = sim.nodes[1]
        .store
        .events()
        .filter(|e| e.origin == me)
        .collect();
    let seqs: Vec<u64> = mine.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    assert!(mine.windows(2).all(|w| w[0].order_key() < w[1].order_key()));
}

#[test]
fn a_member_sending_clock_extremes_cannot_break_the_order() {
    let mut sim = sim(5, 13);
    let hostile = NodeId::from_u128(999);
    let now = sim.now();
    let event = |seq: u64, hlc: u64, created_at_ms: u64| Event {
        id: uuid::Uuid::from_u128(u128::from(seq)),
        origin: hostile,
        seq,
        hlc,
        created_at_ms,
        payload: Bytes::from_static(b"poison"),
        sig: Bytes::new(),
    };
    let year_3000 = 32_503_680_000_000;
    let attack = vec![
        event(1, u64::MAX, now),
        event(1, Hlc::pack(now + 60 * 60_000, 0).0, now),
        event(1, Hlc::pack(now, 0).0, year_3000),
        event(u64::MAX, 5, now),
        event(MAX_SEQ + 1, 5, now),
    ];
    for i in 0..5 {
        sim.inject(
            hostile,
            i,
            Message::Push {
                from: hostile,
                events: attack.clone(),
            },
        );
    }
    // The most a member can do: an HLC 9 minutes ahead, which is valid.
    let ahead = Hlc::pack(now + 9 * 60_000, 0).0;
    sim.inject(
        hostile,
        0,
        Message::Push {
            from: hostile,
            events: vec![event(1, ahead, now)],
        },
    );
    sim.run_for(Duration::from_secs(5));
    let mut all = vec![Bytes::from_static(b"poison")];
    for i in 0..5 {
        let p = typed(i, 1);
        sim.create_with(i, p.clone());
        all.push(p);
        sim.run_for(Duration::from_millis(200));
    }
    sim.run_for(Duration::from_secs(30));
    assert_nothing_lost(&sim, &all);
    for n in &sim.nodes {
        let s = n.engine.stats();
        assert_eq!(s.invalid_events, 5);
        assert_eq!(s.invalid_by_reason[InvalidEvent::SeqTooLarge.index()], 2);
        // No clock moved past the bound, none wrapped.
        assert!(n.engine.hlc() <= ahead + 10, "{}", n.engine.hlc());
    }
    // Messages typed after the poison sort after it, in the order they were typed.
    let held: Vec<&Event> = sim.nodes[0].store.events().collect();
    let mut order: Vec<&Event> = held.clone();
    order.sort_by_key(|e| e.order_key());
    let tail: Vec<&[u8]> = order
        .iter()
        .rev()
        .take(6)
        .rev()
        .map(|e| &e.payload[..])
        .collect();
    let want: Vec<&[u8]> = all.iter().map(|p| &p[..]).collect();
    assert_eq!(tail, want);
}

#[test]
fn an_equivocation_in_the_room_ends_with_one_winner_everywhere_and_both_payloads() {
    let mut sim = sim(6, 14);
    let p = typed(0, 0);
    sim.create_with(0, p.clone());
    sim.run_for(Duration::from_secs(5));
    // Node 0 loses everything but its id and, with no reservation, signs seq 1 again:
    // what an old node (before reservations) with a lost store did.
    sim.crash(0);
    sim.nodes[0].store = SimStore::default();
    sim.network().partition(vec![1, 0, 0, 0, 0, 0]);
    sim.restart(0);
    let q = typed(0, 1);
    assert!(sim.create_with(0, q.clone()).is_some());
    sim.network().heal();
    sim.run_for(Duration::from_secs(40));
    assert!(sim.converged(), "one winner everywhere");
    for (i, n) in sim.nodes.iter().enumerate() {
        let held: BTreeSet<&[u8]> = n.store.events().map(|e| &e.payload[..]).collect();
        assert!(held.contains(&p[..]) && held.contains(&q[..]), "node {i}");
    }
    assert!(sim.nodes[0].engine.stats().reissued == 1);
}
