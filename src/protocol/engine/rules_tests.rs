//! Engine tests of the clock, seq and equivocation rules: no sockets, no sleeps; time is
//! an input, and the store is the simulator's (it resolves equivocations like the real
//! ones and keeps a reservation across "crashes").

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::protocol::equivocation::Equivocation;
use crate::protocol::hlc::Hlc;
use crate::protocol::message::Message;
use crate::protocol::peer::Peer;
use crate::protocol::validity::{Bounds, InvalidEvent, MAX_SEQ};
use crate::sim::store::SimStore;

const T0: u64 = 1_700_000_000_000;

fn config(id: u128) -> EngineConfig {
    EngineConfig {
        node_id: NodeId::from_u128(id),
        fanout: 2,
        strategy: PeerSelectionStrategy::Random,
        limits: crate::protocol::exchange::Limits {
            max_events: 100,
            max_bytes: 1 << 20,
        },
        gossip_interval: Duration::from_millis(1000),
        gossip_timeout: Duration::from_millis(5000),
        anti_entropy_interval: None,
        eager_push: true,
        duplicate_detection: true,
        lazy_push: false,
        budgets: crate::protocol::engine::IngestBudgets::default(),
        probe: None,
        peer_exchange: false,
    }
}

fn ev(origin: u128, seq: u64, hlc: u64, payload: &'static [u8]) -> Event {
    Event {
        id: uuid::Uuid::from_u128((origin << 64) | u128::from(seq)),
        origin: NodeId::from_u128(origin),
        seq,
        hlc,
        created_at_ms: T0,
        payload: Bytes::from_static(payload),
        sig: Bytes::new(),
    }
}

/// An engine over a store that answers at once.
struct Node {
    e: Engine,
    store: SimStore,
    now: u64,
    /// Every output other than store work, in order.
    seen: Vec<Output>,
}

impl Node {
    fn new(id: u128, store: SimStore) -> Node {
        Node {
            e: Engine::new(config(id), id as u64, None),
            store,
            now: T0,
            seen: Vec::new(),
        }
    }

    fn started(id: u128, store: SimStore, peers: &[u128]) -> Node {
        let mut n = Node::new(id, store);
        let state = n.store.state(n.e.id());
        n.run(Input::Start {
            ticket: 0,
            store: state,
        });
        for p in peers {
            n.run(Input::AddPeer(Peer::new(
                NodeId::from_u128(*p),
                format!("n{p}"),
            )));
        }
        n.seen.clear();
        n
    }

    fn run(&mut self, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(i) = queue.pop_front() {
            for out in self.e.handle(i, self.now) {
                match out {
                    Output::Fetch {
                        fetch,
                        wants,
                        limit,
                    } => queue.push_back(Input::Fetched {
                        fetch,
                        events: self.store.fetch(&wants, limit),
                        clock: self.store.clock().clone(),
                    }),
                    Output::Save { save, events, .. } => {
                        let verdicts = events.into_iter().map(|e| self.store.save(e)).collect();
                        queue.push_back(Input::Saved { save, verdicts });
                    }
                    Output::Reserve { up_to } => {
                        self.store.reserve_seqs(up_to);
                        queue.push_back(Input::Reserved { up_to });
                    }
                    other => self.seen.push(other),
                }
            }
        }
    }

    fn push_from(&mut self, from: u128, events: Vec<Event>) {
        let id = NodeId::from_u128(from);
        self.run(Input::Received {
            from: Peer::new(id, format!("n{from}")),
            message: Message::Push { from: id, events },
            request: None,
            wire_bytes: 100,
        });
    }

    fn digest_from(&mut self, from: u128, clock: VectorClock) {
        let id = NodeId::from_u128(from);
        self.run(Input::Received {
            from: Peer::new(id, format!("n{from}")),
            message: Message::Digest {
                from: id,
                entries: clock.iter().collect(),
            },
            request: Some(RequestId(77)),
            wire_bytes: 100,
        });
    }

    fn create(&mut self, payload: &'static [u8]) {
        self.run(Input::Create {
            ticket: 9,
            payload: Bytes::from_static(payload),
        });
    }

    fn created(&self) -> Vec<Event> {
        self.seen
            .iter()
            .filter_map(|o| match o {
                Output::Emit(Emit::Created(e)) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    fn equivocations(&self) -> Vec<Equivocation> {
        self.seen
            .iter()
            .filter_map(|o| match o {
                Output::Emit(Emit::Equivocation(eq)) => Some(eq.clone()),
                _ => None,
            })
            .collect()
    }

    /// Events pushed to `to`.
    fn pushed_to(&self, to: u128) -> Vec<Event> {
        self.seen
            .iter()
            .filter_map(|o| match o {
                Output::Send {
                    to: p,
                    message: Message::Push { events, .. },
                } if p.id == NodeId::from_u128(to) => Some(events.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

#[test]
fn an_own_event_is_stamped_now_even_before_any_exchange() {
    let mut n = Node::started(1, SimStore::default(), &[]);
    n.create(b"hi");
    let e = &n.created()[0];
    assert_eq!(e.hlc, Hlc::pack(T0, 0).0);
}

#[test]
fn an_own_event_is_stamped_past_everything_seen() {
    let mut n = Node::started(1, SimStore::default(), &[2]);
    // A peer whose clock runs 5 minutes ahead (within the bound).
    let ahead = Hlc::pack(T0 + 300_000, 7).0;
    n.push_from(2, vec![ev(2, 1, ahead, b"from the future")]);
    n.create(b"reply");
    assert_eq!(n.created()[0].hlc, ahead + 1);
    assert!(n.created()[0].order_key() > ev(2, 1, ahead, b"").order_key());
}

#[test]
fn clock_extremes_and_seq_u64_max_are_refused_counted_and_never_move_the_clock() {
    let mut n = Node::started(1, SimStore::default(), &[2]);
    let year_3000 = 32_503_680_000_000;
    let mut late_created = ev(2, 1, Hlc::pack(T0, 0).0, b"x");
    late_created.created_at_ms = year_3000;
    let bad = vec![
        ev(2, 1, u64::MAX, b"x"),
        ev(2, 1, Hlc::pack(T0 + 11 * 60_000, 0).0, b"x"),
        ev(2, u64::MAX, 5, b"x"),
        ev(2, MAX_SEQ + 1, 5, b"x"),
        late_created,
    ];
    n.push_from(2, bad);
    let s = n.e.stats();
    assert_eq!(s.invalid_events, 5);
    let by = |r: InvalidEvent| s.invalid_by_reason[r.index()];
    assert_eq!(by(InvalidEvent::HlcTooLarge), 1);
    assert_eq!(by(InvalidEvent::HlcInFuture { ahead_ms: 0 }), 1);
    assert_eq!(by(InvalidEvent::SeqTooLarge), 2);
    assert_eq!(by(InvalidEvent::CreatedInFuture { ahead_ms: 0 }), 1);
    assert!(n.store.is_empty());
    assert_eq!(n.e.hlc(), 0);
    // The next own event is still stamped "now", and a later one after it.
    n.create(b"still fine");
    n.create(b"and ordered");
    let c = n.created();
    assert_eq!(c[0].hlc, Hlc::pack(T0, 0).0);
    assert_eq!(c[1].hlc, c[0].hlc + 1);
}

#[test]
fn a_future_event_is_held_back_until_the_clock_catches_up() {
    let mut n = Node::started(1, SimStore::default(), &[2]);
    let e = ev(2, 1, Hlc::pack(T0 + 20 * 60_000, 0).0, b"early");
    n.push_from(2, vec![e.clone()]);
    assert!(n.store.is_empty());
    // Fifteen minutes later the same event is offered again: now it is within the bound.
    n.now = T0 + 15 * 60_000;
    n.push_from(2, vec![e]);
    assert_eq!(n.store.len(), 1);
}

#[test]
fn a_tightened_bound_is_used() {
    let mut n = Node::started(1, SimStore::default(), &[2]);
    n.e.set_bounds(Bounds {
        max_future_ms: 1000,
    });
    n.push_from(2, vec![ev(2, 1, Hlc::pack(T0 + 2000, 0).0, b"x")]);
    assert_eq!(n.e.stats().invalid_events, 1);
}

#[test]
fn after_a_lost_tail_own_events_wait_for_a_peer_then_continue_past_it() {
    // Seqs 1..=5 held, 6..=9 were signed (reserved) and lost with the disk cache.
    let mut store = SimStore::default();
    for seq in 1..=5 {
        store.save(ev(1, seq, seq, b"old"));
    }
    store.reserve_seqs(9);
    let mut n = Node::started(1, store, &[2]);
    assert!(n.e.is_learning_seq());
    n.create(b"typed while alone");
    n.create(b"and another");
    assert!(n.created().is_empty(), "signed before learning");
    assert_eq!(n.e.pending_own(), 2);
    // A peer holds ours up to 8: the waiting events go out as 9 and 10, in order.
    let clock: VectorClock = [(NodeId::from_u128(1), 8)].into_iter().collect();
    n.digest_from(2, clock);
    let c = n.created();
    assert_eq!(c.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![9, 10]);
    assert_eq!(&c[0].payload[..], b"typed while alone");
    assert_eq!(n.e.pending_own(), 0);
    assert_eq!(n.store.reservation(), 10);
}

#[test]
fn a_clean_restart_issues_at_once_even_alone() {
    let mut store = SimStore::default();
    for seq in 1..=3 {
        store.save(ev(1, seq, seq, b"old"));
    }
    store.reserve_seqs(3);
    let mut n = Node::started(1, store, &[]);
    assert!(!n.e.is_learning_seq());
    n.create(b"alone");
    assert_eq!(n.created()[0].seq, 4);
}

#[test]
fn an_equivocation_is_detected_resolved_counted_and_the_winner_sent_back() {
    let a = ev(3, 1, 10, b"one");
    let b = ev(3, 1, 10, b"two");
    let eq = Equivocation::detect(&a, &b).unwrap();
    let mut n = Node::started(1, SimStore::default(), &[2, 4]);
    // The loser arrives first from peer 2, then the winner from peer 4.
    n.push_from(2, vec![eq.loser.clone()]);
    n.push_from(4, vec![eq.winner.clone()]);
    assert_eq!(n.e.stats().equivocations, 1);
    assert_eq!(n.equivocations(), vec![eq.clone()]);
    assert_eq!(
        n.store.events().next(),
        Some(&eq.winner),
        "the winner replaces the loser"
    );
    // Both copies go to every peer, the loser first: whichever a peer holds, it finds the
    // equivocation too (peer 4 sent the winner and may never have seen the loser).
    assert!(n.pushed_to(2).contains(&eq.loser) && n.pushed_to(2).contains(&eq.winner));
    assert!(n.pushed_to(4).contains(&eq.loser) && n.pushed_to(4).contains(&eq.winner));

    // The other order: the winner held, the loser arrives and is dropped; every peer gets
    // both (peer 4, which sent the winner, would otherwise never know).
    let mut m = Node::started(1, SimStore::default(), &[2, 4]);
    m.push_from(4, vec![eq.winner.clone()]);
    m.seen.clear();
    m.push_from(2, vec![eq.loser.clone()]);
    assert_eq!(m.equivocations(), vec![eq.clone()]);
    assert_eq!(m.store.events().next(), Some(&eq.winner));
    assert!(m.pushed_to(2).contains(&eq.loser) && m.pushed_to(2).contains(&eq.winner));
    assert!(m.pushed_to(4).contains(&eq.loser) && m.pushed_to(4).contains(&eq.winner));
    assert_eq!(m.e.stats().events_received, 1);
}

#[test]
fn an_own_losing_payload_is_issued_again_under_a_fresh_seq() {
    // Node 1 lost its seq 2 ("before") and, with no reservation, signed seq 2 again ("after").
    // The old one comes back from a peer: whichever loses, its payload is issued again.
    let before = ev(1, 2, 2, b"before");
    let mut store = SimStore::default();
    store.save(ev(1, 1, 1, b"first"));
    let mut n = Node::started(1, store, &[2]);
    n.create(b"after");
    let after = n.created()[0].clone();
    assert_eq!(after.seq, 2);
    let eq = Equivocation::detect(&before, &after).unwrap();
    n.seen.clear();
    n.push_from(2, vec![before.clone()]);
    assert_eq!(n.equivocations(), vec![eq.clone()]);
    let again = n.created();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].payload, eq.loser.payload);
    assert_eq!(again[0].seq, 3);
    assert_eq!(n.e.stats().reissued, 1);
    // Seeing the same loser again does not issue it a third time.
    n.seen.clear();
    n.push_from(2, vec![eq.loser.clone()]);
    assert!(n.created().is_empty());
    // Both payloads are held.
    let payloads: Vec<&[u8]> = n.store.events().map(|e| &e.payload[..]).collect();
    assert!(payloads.contains(&&b"before"[..]) && payloads.contains(&&b"after"[..]));
}

#[test]
fn an_own_event_meeting_a_held_own_event_keeps_both_payloads_once() {
    // Whichever of the two wins, each payload ends up held exactly once.
    let mut new_won = [false, false];
    for stray_payload in [&b"earlier life"[..], b"another life", b"x", b"yy", b"zzz"] {
        let mut n = Node::started(1, SimStore::default(), &[]);
        // Seq 1 lands in the store behind the engine's back.
        let mut stray = ev(1, 1, 1, b"");
        stray.payload = Bytes::copy_from_slice(stray_payload);
        n.store.save(stray);
        n.create(b"now");
        let mut payloads: Vec<Vec<u8>> = n.store.events().map(|e| e.payload.to_vec()).collect();
        payloads.sort();
        let mut want = vec![stray_payload.to_vec(), b"now".to_vec()];
        want.sort();
        assert_eq!(payloads, want, "{:?}", n.e.stats());
        assert_eq!(n.e.next_seq(), 3);
        new_won[usize::from(n.created()[0].seq == 1)] = true;
    }
    assert_eq!(new_won, [true, true], "both outcomes are covered");
}

#[test]
fn the_sender_of_a_winner_gets_the_loser_and_a_pair_is_acted_on_once() {
    let a = ev(3, 1, 10, b"one");
    let b = ev(3, 1, 10, b"two");
    let eq = Equivocation::detect(&a, &b).unwrap();
    let mut n = Node::started(1, SimStore::default(), &[2, 4]);
    n.push_from(2, vec![eq.loser.clone()]);
    n.seen.clear();
    // Peer 4 sends the winner: it may never have seen the loser, so it gets it.
    n.push_from(4, vec![eq.winner.clone()]);
    assert!(n.pushed_to(4).contains(&eq.loser), "{:?}", n.pushed_to(4));
    assert!(n.pushed_to(2).contains(&eq.winner));
    // Peer 4 answers with the winner again and peer 2 with the loser: the same pair,
    // neither counted, reported nor answered again.
    n.seen.clear();
    n.push_from(2, vec![eq.loser.clone()]);
    n.push_from(4, vec![eq.winner.clone()]);
    assert_eq!(n.e.stats().equivocations, 1);
    assert!(n.equivocations().is_empty());
    assert!(n.pushed_to(2).is_empty() && n.pushed_to(4).is_empty());
}
