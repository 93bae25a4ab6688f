//! Engine unit tests: no sockets, no sleeps; time is an input.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::protocol::message::Message;
use crate::protocol::peer::Peer;

const T0: u64 = 1_700_000_000_000;

fn config(id: u128) -> EngineConfig {
    EngineConfig {
        node_id: NodeId::from_u128(id),
        fanout: 2,
        strategy: PeerSelectionStrategy::Random,
        limits: Limits {
            max_events: 100,
            max_bytes: 1 << 20,
        },
        gossip_interval: Duration::from_millis(1000),
        gossip_timeout: Duration::from_millis(5000),
        anti_entropy_interval: Some(Duration::from_millis(30_000)),
        eager_push: true,
        duplicate_detection: true,
        lazy_push: false,
        budgets: crate::protocol::engine::IngestBudgets::default(),
        probe: None,
        peer_exchange: false,
    }
}

fn peer(id: u128) -> Peer {
    Peer::new(NodeId::from_u128(id), format!("n{id}"))
}

fn ev(origin: u128, seq: u64) -> Event {
    Event {
        id: uuid::Uuid::from_u128((origin << 64) | seq as u128),
        origin: NodeId::from_u128(origin),
        seq,
        hlc: seq,
        created_at_ms: T0,
        payload: Bytes::from_static(b"x"),
        sig: Bytes::new(),
    }
}

/// An engine with a store that answers at once.
struct Node {
    e: Engine,
    store: BTreeMap<(NodeId, u64), Event>,
    reservation: u64,
    now: u64,
    /// Saves held back until [`Node::answer_saves`] (a slow store, or a slow verifier).
    defer_saves: bool,
    deferred: Vec<(SaveId, Vec<Event>)>,
}

impl Node {
    fn new(id: u128) -> Node {
        Node {
            e: Engine::new(config(id), id as u64, None),
            store: BTreeMap::new(),
            reservation: 0,
            now: T0,
            defer_saves: false,
            deferred: Vec::new(),
        }
    }

    /// Answers the saves held back; returns every other output that follows.
    fn answer_saves(&mut self) -> Vec<Output> {
        let mut rest = Vec::new();
        for (save, events) in std::mem::take(&mut self.deferred) {
            let verdicts = self.judge(events);
            rest.extend(self.run(Input::Saved { save, verdicts }));
        }
        rest
    }

    fn judge(&mut self, events: Vec<Event>) -> Vec<Verdict> {
        events
            .into_iter()
            .map(|e| match self.store.get(&e.key()) {
                Some(held) if *held == e => Verdict::Duplicate,
                Some(_) => Verdict::Conflict,
                None => {
                    self.store.insert(e.key(), e);
                    Verdict::Inserted
                }
            })
            .collect()
    }

    fn id(&self) -> NodeId {
        self.e.id()
    }

    fn clock(&self) -> VectorClock {
        let mut c = VectorClock::new();
        for (o, s) in self.store.keys() {
            if *s == c.get(o) + 1 {
                c.set(*o, *s);
            }
        }
        c
    }

    fn start(&mut self) -> Vec<Output> {
        let store = StoreState {
            clock: self.clock(),
            own_latest_seq: self.store.keys().filter(|k| k.0 == self.id()).count() as u64,
            max_hlc: self.store.values().map(|e| e.hlc).max().unwrap_or(0),
            seq_reservation: self.reservation,
            own_tail: None,
        };
        self.run(Input::Start { ticket: 0, store })
    }

    /// Handles `input`, answering store reads and writes; returns every other output.
    fn run(&mut self, input: Input) -> Vec<Output> {
        let mut queue = VecDeque::from([input]);
        let mut rest = Vec::new();
        while let Some(i) = queue.pop_front() {
            for out in self.e.handle(i, self.now) {
                match out {
                    Output::Fetch {
                        fetch,
                        wants,
                        limit,
                    } => {
                        let mut events = Vec::new();
                        for w in wants {
                            let left = limit - events.len().min(limit);
                            events.extend(
                                self.store
                                    .range((w.origin, w.after + 1)..=(w.origin, u64::MAX))
                                    .take(left)
                                    .map(|(_, e)| e.clone()),
                            );
                        }
                        queue.push_back(Input::Fetched {
                            fetch,
                            clock: self.clock(),
                            events,
                        });
                    }
                    Output::Save { save, events, .. } if self.defer_saves => {
                        self.deferred.push((save, events));
                    }
                    Output::Save { save, events, .. } => {
                        let verdicts = self.judge(events);
                        queue.push_back(Input::Saved { save, verdicts });
                    }
                    Output::Reserve { up_to } => {
                        self.reservation = self.reservation.max(up_to);
                        queue.push_back(Input::Reserved { up_to });
                    }
                    other => rest.push(other),
                }
            }
        }
        rest
    }
}

fn sends(outs: &[Output]) -> Vec<(NodeId, &Message)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, message } => Some((to.id, message)),
            _ => None,
        })
        .collect()
}

/// Runs one exchange from `a` to `b` to its end, delivering every message at once.
/// Returns the result and the number of requests (reconciliation rounds and digests).
fn exchange(a: &mut Node, b: &mut Node) -> (ExchangeResult, usize) {
    let (r, passes, _) = traced_exchange(a, b);
    (r, passes)
}

/// [`exchange`], also returning its messages: `(a's id, response)`, `(b's id, request)`
/// and `(peer, send)` for every send of `a`.
fn traced_exchange(a: &mut Node, b: &mut Node) -> (ExchangeResult, usize, Vec<(NodeId, Message)>) {
    let b_peer = Peer::new(b.id(), "b");
    let a_peer = Peer::new(a.id(), "a");
    let mut pending = a.run(Input::GossipWith {
        ticket: 7,
        peer: b_peer.id,
    });
    let mut passes = 0;
    let mut trace = Vec::new();
    loop {
        let mut next = Vec::new();
        for out in pending {
            match out {
                Output::Request {
                    exchange, message, ..
                } => {
                    passes += 1;
                    trace.push((b_peer.id, message.clone()));
                    let answer = b.run(Input::Received {
                        from: a_peer.clone(),
                        message,
                        request: Some(RequestId(passes as u64)),
                        wire_bytes: 0,
                    });
                    for o in answer {
                        if let Output::Respond { message, .. } = o {
                            trace.push((a_peer.id, message.clone()));
                            next.extend(a.run(Input::Response {
                                exchange,
                                message,
                                wire_bytes: 0,
                            }));
                        }
                    }
                }
                Output::Send { to, message } if to.id == b_peer.id => {
                    trace.push((to.id, message.clone()));
                    b.run(Input::Received {
                        from: a_peer.clone(),
                        message,
                        request: None,
                        wire_bytes: 0,
                    });
                }
                Output::Send { to, message } => trace.push((to.id, message)),
                Output::Done {
                    done: Done::Exchange(r),
                    ..
                } => return (r, passes, trace),
                _ => {}
            }
        }
        assert!(!next.is_empty(), "the exchange stalled");
        pending = next;
    }
}

fn started(id: u128, peers: &[u128]) -> Node {
    let mut n = Node::new(id);
    n.start();
    for p in peers {
        n.run(Input::AddPeer(peer(*p)));
    }
    n
}

#[test]
fn an_exchange_starts_with_a_store_read_then_one_fingerprint() {
    let mut e = Engine::new(config(1), 1, None);
    e.handle(
        Input::Start {
            ticket: 0,
            store: StoreState::default(),
        },
        T0,
    );
    e.handle(Input::AddPeer(peer(2)), T0);
    let outs = e.handle(
        Input::GossipWith {
            ticket: 1,
            peer: NodeId::from_u128(2),
        },
        T0,
    );
    let Some(Output::Fetch { fetch, wants, .. }) = outs.first() else {
        panic!("{outs:?}");
    };
    assert!(wants.is_empty());
    let clock: VectorClock = [(NodeId::from_u128(3), 4)].into_iter().collect();
    let outs = e.handle(
        Input::Fetched {
            fetch: *fetch,
            clock: clock.clone(),
            events: Vec::new(),
        },
        T0,
    );
    match &outs[..] {
        [
            Output::Request {
                message: Message::Reconcile { ranges, .. },
                ..
            },
        ] => {
            assert_eq!(
                *ranges,
                crate::protocol::reconcile::initiate(&clock),
                "one fingerprint of the store's clock"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cold_node_catches_up_in_one_exchange_of_several_passes() {
    let mut a = started(1, &[2]);
    let mut b = started(2, &[1]);
    for s in 1..=250 {
        b.store.insert((NodeId::from_u128(9), s), ev(9, s));
    }
    for s in 1..=120 {
        a.store.insert((NodeId::from_u128(8), s), ev(8, s));
    }
    let (r, passes) = exchange(&mut a, &mut b);
    assert!(r.success, "{r:?}");
    assert_eq!(r.events_received, 250);
    assert_eq!(r.events_sent, 120);
    assert!(passes >= 3, "{passes} passes");
    assert_eq!(a.clock(), b.clock());
    assert_eq!(
        a.e.clock(),
        &a.clock(),
        "the engine knows what its store holds"
    );
}

#[test]
fn an_exchange_stops_when_nothing_moves() {
    let mut a = started(1, &[2]);
    let mut b = started(2, &[1]);
    let (r, passes) = exchange(&mut a, &mut b);
    assert!(r.success);
    assert_eq!((r.events_sent, r.events_received, passes), (0, 0, 1));
}

#[test]
fn a_pushed_event_is_relayed_once_to_fanout_peers_other_than_sender_and_origin() {
    let mut n = started(1, &[2, 3, 4, 5, 9]);
    let push = || Input::Received {
        from: peer(2),
        message: Message::Push {
            from: NodeId::from_u128(2),
            events: vec![ev(9, 1)],
        },
        request: None,
        wire_bytes: 10,
    };
    let outs = n.run(push());
    let targets: Vec<NodeId> = sends(&outs).iter().map(|s| s.0).collect();
    assert_eq!(targets.len(), 2, "fanout 2: {targets:?}");
    for t in &targets {
        assert!(*t != NodeId::from_u128(2) && *t != NodeId::from_u128(9));
    }
    let received = outs
        .iter()
        .filter(|o| matches!(o, Output::Emit(Emit::Received(_))))
        .count();
    assert_eq!(received, 1);
    let again = n.run(push());
    assert!(sends(&again).is_empty(), "relayed twice: {again:?}");
    assert_eq!(n.e.stats().duplicates, 1);
}

#[test]
fn an_exchange_response_is_never_relayed() {
    let mut a = started(1, &[2, 3, 4]);
    let mut b = started(2, &[1]);
    b.store.insert((NodeId::from_u128(9), 1), ev(9, 1));
    let (r, _, trace) = traced_exchange(&mut a, &mut b);
    assert!(r.success, "{r:?}");
    let others: Vec<_> = trace
        .iter()
        .filter(|(to, _)| *to != b.id() && *to != a.id())
        .collect();
    assert!(others.is_empty(), "{others:?}");
    assert!(a.store.contains_key(&(NodeId::from_u128(9), 1)));
}

#[test]
fn liveness_follows_requests_and_messages() {
    let mut n = started(1, &[2]);
    let id = NodeId::from_u128(2);
    let state = |n: &Node| n.e.peers().get(&id).map(|p| p.state);
    assert_eq!(state(&n), Some(PeerState::Discovered));
    for (k, want) in [PeerState::Suspect, PeerState::Suspect, PeerState::Offline]
        .into_iter()
        .enumerate()
    {
        let outs = n.run(Input::GossipWith {
            ticket: k as u64,
            peer: id,
        });
        let Some(Output::Request { exchange, .. }) = outs.first().cloned() else {
            panic!("{outs:?}")
        };
        let outs = n.run(Input::RequestFailed {
            exchange,
            error: "timed out".into(),
        });
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Done { done: Done::Exchange(r), .. } if !r.success))
        );
        assert_eq!(state(&n), Some(want), "after failure {}", k + 1);
    }
    let outs = n.run(Input::Received {
        from: peer(2),
        message: Message::Push {
            from: id,
            events: Vec::new(),
        },
        request: None,
        wire_bytes: 0,
    });
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Emit(Emit::PeerState(t)) if t.to == PeerState::Alive))
    );
    n.run(Input::Disconnected {
        peer: id,
        reason: "closed".into(),
    });
    assert_eq!(state(&n), Some(PeerState::Offline));
}

#[test]
fn rounds_and_anti_entropy_are_timers_of_their_run() {
    let mut n = Node::new(1);
    let outs = n.start();
    let timers: Vec<(u64, Timer)> = outs
        .iter()
        .filter_map(|o| match o {
            Output::ScheduleTimer { at, timer } => Some((*at, *timer)),
            _ => None,
        })
        .collect();
    assert_eq!(
        timers,
        vec![
            (T0, Timer::Round { run: 1 }),
            (T0 + 30_000, Timer::AntiEntropy { run: 1 })
        ]
    );
    n.now = T0 + 5;
    let outs = n.run(Input::TimerFired(Timer::Round { run: 1 }));
    assert!(outs.contains(&Output::ScheduleTimer {
        at: T0 + 1005,
        timer: Timer::Round { run: 1 }
    }));
    assert_eq!(n.e.stats().rounds, 1);
    n.run(Input::Stop);
    n.start();
    let stale = n.run(Input::TimerFired(Timer::Round { run: 1 }));
    assert!(
        stale.is_empty(),
        "a timer of an earlier run fired: {stale:?}"
    );
    assert_eq!(n.e.stats().rounds, 1);
}

#[test]
fn every_fifth_round_also_tries_offline_peers() {
    let mut n = started(1, &[2]);
    let id = NodeId::from_u128(2);
    n.run(Input::MarkOffline {
        peer: id,
        reason: "gone".into(),
    });
    let mut tried = Vec::new();
    for r in 0..OFFLINE_RETRY_ROUNDS {
        let outs = n.run(Input::Gossip { ticket: r });
        if outs.iter().any(|o| matches!(o, Output::Request { .. })) {
            tried.push(r);
        }
        // End every exchange so the peer is free for the next round.
        for o in outs {
            if let Output::Request { exchange, .. } = o {
                n.run(Input::RequestFailed {
                    exchange,
                    error: "x".into(),
                });
            }
        }
    }
    assert_eq!(tried, vec![OFFLINE_RETRY_ROUNDS - 1]);
}

#[test]
fn own_events_take_consecutive_seqs_and_step_past_a_held_one() {
    let mut n = started(1, &[]);
    let me = n.id();
    // Our seq 2 came back from a peer after a wiped store, before the engine saw it.
    n.store.insert((me, 2), ev(1, 2));
    let mut seqs = Vec::new();
    for t in 0..3 {
        for o in n.run(Input::Create {
            ticket: t,
            payload: Bytes::from_static(b"hi"),
        }) {
            if let Output::Done {
                done: Done::Created(r),
                ..
            } = o
            {
                seqs.push(r.map(|e| e.seq).unwrap_or(0));
            }
        }
    }
    assert_eq!(seqs, vec![1, 3, 4]);
    assert_eq!(n.e.next_seq(), 5);
}

#[test]
fn creation_waits_for_the_previous_save() {
    let mut e = Engine::new(config(1), 1, None);
    e.handle(
        Input::Start {
            ticket: 0,
            store: StoreState::default(),
        },
        T0,
    );
    let reserve = e.handle(
        Input::Create {
            ticket: 1,
            payload: Bytes::from_static(b"a"),
        },
        T0,
    );
    // The own-seq reservation is made durable before seq 1 is signed.
    assert_eq!(reserve, vec![Output::Reserve { up_to: 1 }]);
    let first = e.handle(Input::Reserved { up_to: 1 }, T0);
    let second = e.handle(
        Input::Create {
            ticket: 2,
            payload: Bytes::from_static(b"b"),
        },
        T0,
    );
    assert_eq!(first.len(), 1);
    assert!(
        second.is_empty(),
        "issued before the first was saved: {second:?}"
    );
    let Output::Save { save, .. } = &first[0] else {
        panic!()
    };
    let outs = e.handle(
        Input::Saved {
            save: *save,
            verdicts: vec![Verdict::Inserted],
        },
        T0,
    );
    assert!(outs.contains(&Output::Reserve { up_to: 2 }), "{outs:?}");
    let outs = e.handle(Input::Reserved { up_to: 2 }, T0);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Save { events, .. } if events[0].seq == 2))
    );
}

#[test]
fn invalid_events_are_counted_and_never_saved() {
    let mut n = started(1, &[2]);
    let mut zero = ev(9, 1);
    zero.seq = 0;
    let mut nil = ev(9, 1);
    nil.origin = NodeId::NIL;
    n.run(Input::Received {
        from: peer(2),
        message: Message::Push {
            from: NodeId::from_u128(2),
            events: vec![zero, nil],
        },
        request: None,
        wire_bytes: 0,
    });
    assert_eq!(n.e.stats().invalid_events, 2);
    assert!(n.store.is_empty());
}

#[test]
fn a_conflict_is_counted_and_not_relayed() {
    let mut n = started(1, &[2, 3, 4]);
    n.store.insert((NodeId::from_u128(9), 1), ev(9, 1));
    let mut other = ev(9, 1);
    other.payload = Bytes::from_static(b"different");
    let outs = n.run(Input::Received {
        from: peer(2),
        message: Message::Push {
            from: NodeId::from_u128(2),
            events: vec![other],
        },
        request: None,
        wire_bytes: 0,
    });
    assert!(sends(&outs).is_empty());
    assert_eq!(n.e.stats().conflicts, 1);
}

#[test]
fn refused_events_are_reported_once_per_batch() {
    let mut e = Engine::new(config(1), 1, None);
    e.handle(
        Input::Start {
            ticket: 0,
            store: StoreState::default(),
        },
        T0,
    );
    let outs = e.handle(
        Input::Received {
            from: peer(2),
            message: Message::Push {
                from: NodeId::from_u128(2),
                events: vec![ev(9, 1), ev(9, 2)],
            },
            request: None,
            wire_bytes: 0,
        },
        T0,
    );
    let Some(Output::Save { save, .. }) = outs.iter().find(|o| matches!(o, Output::Save { .. }))
    else {
        panic!()
    };
    let outs = e.handle(
        Input::Saved {
            save: *save,
            verdicts: vec![Verdict::Refused("bad signature".into()); 2],
        },
        T0,
    );
    let reports = outs
        .iter()
        .filter(|o| matches!(o, Output::Emit(Emit::Exchange(r)) if !r.success))
        .count();
    assert_eq!(reports, 1);
    assert_eq!(e.stats().rejected_events, 2);
    assert_eq!(e.clock().get(&NodeId::from_u128(9)), 0);
}

#[test]
fn an_own_event_saved_across_a_stop_is_still_answered() {
    let mut e = Engine::new(config(1), 1, None);
    e.handle(
        Input::Start {
            ticket: 0,
            store: StoreState::default(),
        },
        T0,
    );
    let outs = e.handle(
        Input::Create {
            ticket: 5,
            payload: Bytes::from_static(b"a"),
        },
        T0,
    );
    assert_eq!(outs, vec![Output::Reserve { up_to: 1 }]);
    let outs = e.handle(Input::Reserved { up_to: 1 }, T0);
    let Some(Output::Save { save, .. }) = outs.first() else {
        panic!("{outs:?}")
    };
    e.handle(Input::Stop, T0);
    let outs = e.handle(
        Input::Saved {
            save: *save,
            verdicts: vec![Verdict::Inserted],
        },
        T0,
    );
    assert!(
        outs.iter().any(|o| matches!(
            o,
            Output::Done {
                ticket: 5,
                done: Done::Created(Ok(_))
            }
        )),
        "{outs:?}"
    );
}

mod budgets;
mod detector;
mod ephemeral;
mod lazy_push;
mod pex;
mod reconcile;

/// Feeds `n` creates (tickets from `first`) while nothing answers the store.
fn create_many(e: &mut Engine, first: u64, n: u64) -> Vec<Output> {
    (first..first + n)
        .flat_map(|t| {
            e.handle(
                Input::Create {
                    ticket: t,
                    payload: Bytes::from(format!("m{t}")),
                },
                T0,
            )
        })
        .collect()
}

fn created_tickets(outs: &[Output]) -> Vec<u64> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Done {
                ticket,
                done: Done::Created(Ok(_)),
            } => Some(*ticket),
            _ => None,
        })
        .collect()
}

#[test]
fn own_events_queued_during_a_save_go_out_as_one_group_answered_only_once_saved() {
    let mut e = Engine::new(config(1), 1, None);
    e.handle(
        Input::Start {
            ticket: 0,
            store: StoreState::default(),
        },
        T0,
    );
    // The first is alone: reserve 1, save 1.
    assert_eq!(
        create_many(&mut e, 1, 1),
        vec![Output::Reserve { up_to: 1 }]
    );
    let first = e.handle(Input::Reserved { up_to: 1 }, T0);
    let Some(Output::Save { save, .. }) = first.first() else {
        panic!("{first:?}")
    };
    // Five more are asked for while it is being saved: nothing goes out yet.
    assert!(create_many(&mut e, 2, 5).is_empty());
    assert_eq!(e.pending_own(), 6);
    let outs = e.handle(
        Input::Saved {
            save: *save,
            verdicts: vec![Verdict::Inserted],
        },
        T0,
    );
    assert_eq!(created_tickets(&outs), vec![1]);
    // One reservation covers all five.
    assert!(outs.contains(&Output::Reserve { up_to: 6 }), "{outs:?}");
    let outs = e.handle(Input::Reserved { up_to: 6 }, T0);
    let saves: Vec<_> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Save {
                save, events, own, ..
            } => Some((*save, events.clone(), *own)),
            _ => None,
        })
        .collect();
    assert_eq!(saves.len(), 1, "one save for the group: {outs:?}");
    let (save, events, own) = saves[0].clone();
    assert!(own);
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6]
    );
    assert!(
        events.windows(2).all(|w| w[0].hlc < w[1].hlc),
        "a group's clocks increase"
    );
    assert_eq!(&events[0].payload[..], b"m2");
    assert!(created_tickets(&outs).is_empty(), "answered before saved");
    assert_eq!(e.pending_own(), 5);
    let outs = e.handle(
        Input::Saved {
            save,
            verdicts: vec![Verdict::Inserted; 5],
        },
        T0,
    );
    assert_eq!(created_tickets(&outs), vec![2, 3, 4, 5, 6]);
    assert_eq!(e.pending_own(), 0);
    assert_eq!(e.next_seq(), 7);
}

#[test]
fn a_group_is_capped_and_a_failed_group_answers_every_request() {
    let mut e = Engine::new(config(1), 1, None);
    e.handle(
        Input::Start {
            ticket: 0,
            store: StoreState::default(),
        },
        T0,
    );
    let n = create::MAX_OWN_BATCH as u64 + 3;
    let outs = create_many(&mut e, 1, n);
    // The first create reserved alone; the rest queued behind that reservation.
    assert_eq!(outs, vec![Output::Reserve { up_to: 1 }]);
    let outs = e.handle(Input::Reserved { up_to: 1 }, T0);
    let Some(Output::Save { save, events, .. }) = outs.first() else {
        panic!("{outs:?}")
    };
    assert_eq!(events.len(), 1);
    let outs = e.handle(
        Input::Saved {
            save: *save,
            verdicts: vec![Verdict::Inserted],
        },
        T0,
    );
    let up_to = create::MAX_OWN_BATCH as u64 + 1;
    assert!(outs.contains(&Output::Reserve { up_to }), "{outs:?}");
    let outs = e.handle(Input::Reserved { up_to }, T0);
    let Some(Output::Save { save, events, .. }) = outs.first() else {
        panic!("{outs:?}")
    };
    assert_eq!(events.len(), create::MAX_OWN_BATCH);
    let outs = e.handle(
        Input::SaveFailed {
            save: *save,
            error: "disk full".into(),
        },
        T0,
    );
    let failed = outs
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Done {
                    done: Done::Created(Err(CreateError::Store(_))),
                    ..
                }
            )
        })
        .count();
    assert_eq!(failed, create::MAX_OWN_BATCH);
    // The two left go on as the next group, under the seqs the failed group did not get.
    assert_eq!(e.pending_own(), 2);
    let next: Vec<u64> = outs
        .iter()
        .find_map(|o| match o {
            Output::Save { events, .. } => Some(events.iter().map(|e| e.seq).collect()),
            _ => None,
        })
        .unwrap_or_default();
    assert_eq!(next, vec![2, 3], "{outs:?}");
}

/// The one own save among `outs`: its id and events.
fn own_save(outs: &[Output]) -> (SaveId, Vec<Event>) {
    let saves: Vec<_> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Save {
                save,
                events,
                own: true,
                ..
            } => Some((*save, events.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(saves.len(), 1, "{outs:?}");
    saves[0].clone()
}

#[test]
fn a_taken_seq_in_a_group_is_retried_after_it_and_the_rest_are_answered() {
    let mut e = Engine::new(config(1), 1, None);
    e.handle(
        Input::Start {
            ticket: 0,
            store: StoreState::default(),
        },
        T0,
    );
    create_many(&mut e, 1, 1);
    let (save, _) = own_save(&e.handle(Input::Reserved { up_to: 1 }, T0));
    create_many(&mut e, 2, 3);
    e.handle(
        Input::Saved {
            save,
            verdicts: vec![Verdict::Inserted],
        },
        T0,
    );
    let (save, events) = own_save(&e.handle(Input::Reserved { up_to: 4 }, T0));
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    // Seq 3 turns out to be held (an own event a peer sent back after a wiped store).
    let outs = e.handle(
        Input::Saved {
            save,
            verdicts: vec![Verdict::Inserted, Verdict::Conflict, Verdict::Inserted],
        },
        T0,
    );
    assert_eq!(created_tickets(&outs), vec![2, 4]);
    assert!(outs.contains(&Output::Reserve { up_to: 5 }), "{outs:?}");
    let (save, events) = own_save(&e.handle(Input::Reserved { up_to: 5 }, T0));
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].seq, &events[0].payload[..]), (5, &b"m3"[..]));
    let outs = e.handle(
        Input::Saved {
            save,
            verdicts: vec![Verdict::Inserted],
        },
        T0,
    );
    assert_eq!(created_tickets(&outs), vec![3]);
}

/// A cold node's catch-up is pipelined: while one batch is being saved (verified), the
/// digest for the next is out already, raised to what the batch brought; the early
/// response waits its turn, and everything arrives once, in order.
#[test]
fn a_catch_up_asks_for_the_next_batch_while_the_last_is_being_saved() {
    let mut a = started(1, &[2]);
    let mut b = started(2, &[1]);
    let origin = NodeId::from_u128(9);
    for s in 1..=350 {
        b.store.insert((origin, s), ev(9, s));
    }
    a.defer_saves = true;
    let a_peer = Peer::new(a.id(), "a");
    let mut pending = a.run(Input::GossipWith {
        ticket: 7,
        peer: b.id(),
    });
    let (mut ahead_digests, mut requests) = (0, 0);
    let done_in = |outs: &[Output]| {
        outs.iter().find_map(|o| match o {
            Output::Done {
                done: Done::Exchange(r),
                ..
            } => Some(r.clone()),
            _ => None,
        })
    };
    let result = loop {
        if let Some(r) = done_in(&pending) {
            break r;
        }
        for out in &pending {
            if let Output::Request {
                message: Message::Digest { entries, .. },
                ..
            } = out
                && !a.deferred.is_empty()
            {
                ahead_digests += 1;
                // Asked past the batch being saved, not for it again.
                let held = a.store.keys().filter(|k| k.0 == origin).count() as u64;
                let asked = entries.iter().find(|(o, _)| *o == origin).map(|e| e.1);
                assert_eq!(asked, Some(held + 100), "{entries:?}");
            }
        }
        let mut next = Vec::new();
        for out in pending {
            let Output::Request {
                exchange, message, ..
            } = out
            else {
                continue;
            };
            requests += 1;
            for o in b.run(Input::Received {
                from: a_peer.clone(),
                message,
                request: Some(RequestId(requests)),
                wire_bytes: 0,
            }) {
                if let Output::Respond { message, .. } = o {
                    next.extend(a.run(Input::Response {
                        exchange,
                        message,
                        wire_bytes: 0,
                    }));
                }
            }
        }
        // A digest out while a batch is unsaved: its response comes before the save is
        // done, and must wait its turn.
        if next.iter().any(|o| matches!(o, Output::Request { .. })) {
            pending = next;
            continue;
        }
        next.extend(a.answer_saves());
        assert!(!next.is_empty(), "the exchange stalled");
        pending = next;
    };
    assert!(result.success, "{result:?}");
    assert_eq!(result.events_received, 350);
    assert!(ahead_digests >= 2, "{ahead_digests} digests sent ahead");
    let held: Vec<u64> = a
        .store
        .keys()
        .filter(|k| k.0 == origin)
        .map(|k| k.1)
        .collect();
    assert_eq!(held, (1..=350).collect::<Vec<_>>());
}
