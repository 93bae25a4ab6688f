//! Budgets and quotas: pushes past a peer's rate are deferred, new origins past its
//! origin rate are deferred, bytes past an origin's quota are refused; each counted, and
//! nobody else's budget is touched.

use std::sync::Arc;

use super::*;

fn with(id: u128, budgets: IngestBudgets) -> Node {
    let mut n = Node::new(id);
    let mut c = config(id);
    c.budgets = budgets;
    n.e = Engine::new(c, id as u64, None);
    n.start();
    n
}

fn push(from: u128, events: Vec<Event>) -> Input {
    Input::Received {
        from: peer(from),
        message: Message::Push {
            from: NodeId::from_u128(from),
            events,
        },
        request: None,
        wire_bytes: 10,
    }
}

fn run_of(origin: u128, seqs: std::ops::RangeInclusive<u64>) -> Vec<Event> {
    seqs.map(|s| ev(origin, s)).collect()
}

fn sized(origin: u128, seq: u64, payload: &[u8]) -> Event {
    Event {
        payload: Bytes::copy_from_slice(payload),
        ..ev(origin, seq)
    }
}

#[test]
fn pushes_past_the_rate_are_deferred_and_other_peers_are_untouched() {
    let mut n = with(
        1,
        IngestBudgets {
            pushed_events_per_sec: 100,
            pushed_events_burst: 10,
            ..IngestBudgets::unlimited()
        },
    );
    n.run(push(2, run_of(2, 1..=25)));
    assert_eq!(n.e.clock().get(&NodeId::from_u128(2)), 10, "a prefix");
    assert_eq!(n.e.stats().deferred_events, 15);
    // Another peer pushes at once, at full burst.
    n.run(push(3, run_of(3, 1..=10)));
    assert_eq!(n.e.clock().get(&NodeId::from_u128(3)), 10);
    // Nothing more for peer 2 until its bucket refills: 100/s, 50 ms → 5 events.
    n.run(push(2, run_of(2, 11..=25)));
    assert_eq!(n.e.clock().get(&NodeId::from_u128(2)), 10);
    n.now += 50;
    n.run(push(2, run_of(2, 11..=25)));
    assert_eq!(n.e.clock().get(&NodeId::from_u128(2)), 15);
    assert_eq!(n.e.stats().deferred_events, 15 + 15 + 10);
    assert_eq!(n.e.stats().events_received, 25);
}

#[test]
fn deferred_pushes_are_pulled_by_a_round() {
    let mut a = with(
        1,
        IngestBudgets {
            pushed_events_per_sec: 1,
            pushed_events_burst: 1,
            ..IngestBudgets::unlimited()
        },
    );
    let mut b = Node::new(2);
    b.start();
    for e in run_of(2, 1..=40) {
        b.store.entry(e.key()).or_insert(e);
    }
    a.run(push(2, b.store.values().cloned().collect()));
    assert!(a.e.clock().get(&b.id()) < 40);
    a.run(Input::AddPeer(peer(2)));
    let (r, _) = exchange(&mut a, &mut b);
    assert!(r.success);
    assert_eq!(a.e.clock().get(&b.id()), 40, "a pull is not budgeted");
}

#[test]
fn new_origins_past_the_rate_are_deferred_then_taken() {
    let mut n = with(
        1,
        IngestBudgets {
            new_origins_per_min: 60,
            new_origins_burst: 3,
            ..IngestBudgets::unlimited()
        },
    );
    // Ten sybils, one identity event each, from peer 2.
    let sybils: Vec<Event> = (100..110).map(|o| ev(o, 1)).collect();
    n.run(push(2, sybils.clone()));
    let held = |n: &Node| {
        (100..110)
            .filter(|o| n.e.clock().get(&NodeId::from_u128(*o)) > 0)
            .count()
    };
    assert_eq!(held(&n), 3);
    assert_eq!(n.e.stats().deferred_origins, 7);
    // Known origins are not limited: peer 2 may push more of the three it brought.
    n.run(push(2, vec![ev(100, 2), ev(101, 2)]));
    assert_eq!(n.e.clock().get(&NodeId::from_u128(100)), 2);
    // Another peer has its own budget.
    n.run(push(3, sybils.clone()));
    assert_eq!(held(&n), 6);
    // One a second refills peer 2's.
    n.now += 1_000;
    n.run(push(2, sybils));
    assert_eq!(held(&n), 7);
}

#[test]
fn an_origin_past_its_byte_quota_is_refused_and_reported() {
    let mut n = with(
        1,
        IngestBudgets {
            max_bytes_per_origin: 4_000,
            ..IngestBudgets::unlimited()
        },
    );
    let big = vec![7u8; 900];
    let events: Vec<Event> = (1..=8).map(|s| sized(2, s, &big)).collect();
    let size = events[0].encoded_len() as u64;
    let outs = n.run(push(2, events.clone()));
    let fit = 4_000 / size;
    assert_eq!(n.e.clock().get(&NodeId::from_u128(2)), fit);
    assert_eq!(n.e.stats().quota_refused, 8 - fit);
    assert!(n.e.origin_usage(&NodeId::from_u128(2)).bytes <= 4_000);
    let reported = outs.iter().any(|o| {
        matches!(o, Output::Emit(Emit::Exchange(r))
            if r.error.as_deref().is_some_and(|e| e.contains("quota")))
    });
    assert!(reported, "{outs:?}");
    // From any peer, later too: the origin is full.
    n.now += 3_600_000;
    n.run(push(3, events));
    assert_eq!(n.e.clock().get(&NodeId::from_u128(2)), fit);
    // Other origins are not.
    n.run(push(2, vec![sized(3, 1, &big)]));
    assert_eq!(n.e.clock().get(&NodeId::from_u128(3)), 1);
}

#[test]
fn undecodable_payloads_count_against_their_own_quota() {
    let mut n = with(
        1,
        IngestBudgets {
            max_undecodable_bytes_per_origin: 3_000,
            ..IngestBudgets::unlimited()
        },
    );
    n.e.set_payload_validator(Some(Arc::new(|p: &[u8]| p.first() == Some(&b'o'))));
    let bad = vec![0u8; 900];
    let mut good = vec![b'o'; 900];
    good[1] = 1;
    // seq 1 (the identity event) is never judged by the validator.
    let events: Vec<Event> = (1..=6).map(|s| sized(2, s, &bad)).collect();
    let fit = 3_000 / events[1].encoded_len() as u64;
    n.run(push(2, events));
    // seq 1 is not judged, then as many of seqs 2..=6 as fit in 3,000 bytes.
    assert_eq!(n.e.clock().get(&NodeId::from_u128(2)), 1 + fit);
    assert_eq!(n.e.stats().undecodable_events, fit);
    assert_eq!(n.e.stats().quota_refused, 5 - fit);
    // A decodable origin is untouched by the undecodable cap.
    let events: Vec<Event> = (1..=6).map(|s| sized(3, s, &good)).collect();
    n.run(push(3, events));
    assert_eq!(n.e.clock().get(&NodeId::from_u128(3)), 6);
}

#[test]
fn own_events_and_duplicates_cost_nothing() {
    let mut n = with(
        1,
        IngestBudgets {
            max_bytes_per_origin: 1,
            new_origins_burst: 1,
            new_origins_per_min: 1,
            ..IngestBudgets::unlimited()
        },
    );
    // Own events coming back (a wiped store) are never limited.
    n.run(push(2, run_of(1, 2..=5)));
    assert_eq!(n.e.stats().quota_refused, 0);
    assert_eq!(n.e.stats().deferred_origins, 0);
    // The same limits bite on another origin.
    n.run(push(2, run_of(2, 1..=1)));
    assert_eq!(n.e.stats().quota_refused, 1);
    // Duplicates of held events are judged by the store, not charged again.
    let mut m = with(
        1,
        IngestBudgets {
            max_bytes_per_origin: 2 * ev(2, 1).encoded_len() as u64,
            ..IngestBudgets::unlimited()
        },
    );
    m.run(push(2, run_of(2, 1..=2)));
    for _ in 0..3 {
        m.run(push(3, run_of(2, 1..=2)));
    }
    assert_eq!(m.e.stats().quota_refused, 0);
    assert_eq!(m.e.stats().duplicates, 6);
}

#[test]
fn a_copy_racing_the_save_of_the_first_is_not_charged_twice() {
    let mut n = with(
        1,
        IngestBudgets {
            max_bytes_per_origin: 2 * ev(2, 1).encoded_len() as u64,
            ..IngestBudgets::unlimited()
        },
    );
    // Peer 2 pushes seq 1 and 2 (the quota, exactly); peer 3 relays the same two while
    // the first save is still with the store. Nothing may be refused, and once both
    // saves are judged the quota holds them once.
    let saves = |outs: Vec<Output>| -> Vec<(SaveId, usize)> {
        outs.into_iter()
            .filter_map(|o| match o {
                Output::Save { save, events, .. } => Some((save, events.len())),
                _ => None,
            })
            .collect()
    };
    let first = saves(n.e.handle(push(2, run_of(2, 1..=2)), n.now));
    let second = saves(n.e.handle(push(3, run_of(2, 1..=2)), n.now));
    assert_eq!(n.e.stats().quota_refused, 0);
    assert_eq!((first.len(), second.len()), (1, 1));
    n.e.handle(
        Input::Saved {
            save: first[0].0,
            verdicts: vec![Verdict::Inserted; 2],
        },
        n.now,
    );
    n.e.handle(
        Input::Saved {
            save: second[0].0,
            verdicts: vec![Verdict::Duplicate; 2],
        },
        n.now,
    );
    let used = n.e.origin_usage(&NodeId::from_u128(2)).bytes;
    assert_eq!(used, 2 * ev(2, 1).encoded_len() as u64);
    // Seq 3 is past the quota: refused, and the later ones with it.
    n.run(push(2, run_of(2, 3..=4)));
    assert_eq!(n.e.stats().quota_refused, 2);
}

#[test]
fn asked_for_origins_have_their_own_larger_budget() {
    let budgets = IngestBudgets {
        new_origins_per_min: 1,
        new_origins_burst: 1,
        asked_new_origins_per_min: 60,
        asked_new_origins_burst: 50,
        ..IngestBudgets::unlimited()
    };
    let mut a = with(1, budgets);
    let mut b = Node::new(2);
    b.start();
    for o in 100..140 {
        let e = ev(o, 1);
        b.store.entry(e.key()).or_insert(e);
    }
    // Pushed unasked, one new origin passes.
    a.run(push(2, b.store.values().cloned().collect()));
    let held = |n: &Node| {
        (100..140)
            .filter(|o| n.e.clock().get(&NodeId::from_u128(*o)) > 0)
            .count()
    };
    assert_eq!(held(&a), 1);
    // Asked for by a's own round, all 40 come (within the asked burst of 50).
    a.run(Input::AddPeer(peer(2)));
    let (r, _) = exchange(&mut a, &mut b);
    assert!(r.success);
    assert_eq!(held(&a), 40);
}
