//! Set-reconciled digests in the engine: agreeing nodes exchange one fingerprint each way,
//! differing ones converge on exactly the differences, no message exceeds the frame limit
//! whatever the room's size, and a peer's malformed rounds are refused and counted.

use super::*;
use crate::protocol::reconcile::{Body, MAX_LIST, MAX_RANGES, Range};

fn origin(i: u128) -> u128 {
    1000 + i * 7919
}

/// A node holding `(origin(i), 1..=seq(i))` for every `i` in `range`.
fn holding(
    id: u128,
    peers: &[u128],
    range: std::ops::Range<u128>,
    seq: impl Fn(u128) -> u64,
) -> Node {
    let mut n = Node::new(id);
    for i in range {
        for s in 1..=seq(i) {
            n.store
                .insert((NodeId::from_u128(origin(i)), s), ev(origin(i), s));
        }
    }
    n.start();
    for p in peers {
        n.run(Input::AddPeer(peer(*p)));
    }
    n
}

fn with_limits(mut n: Node, max_bytes: usize) -> Node {
    let id = n.id().0.as_u128();
    let mut c = config(id);
    c.limits.max_bytes = max_bytes;
    c.limits.max_events = 10_000;
    n.e = Engine::new(c, id as u64, None);
    n.start();
    n
}

fn request(from: u128, message: Message) -> Input {
    Input::Received {
        from: peer(from),
        message,
        request: Some(RequestId(1)),
        wire_bytes: 0,
    }
}

fn responses(outs: &[Output]) -> Vec<&Message> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Respond { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

#[test]
fn agreeing_nodes_exchange_one_fingerprint_each_way() {
    let mut a = holding(1, &[2], 0..5000, |i| 1 + (i % 3) as u64);
    let mut b = holding(2, &[1], 0..5000, |i| 1 + (i % 3) as u64);
    // Their own identity-less starts leave both clocks equal.
    assert_eq!(a.clock(), b.clock());
    let (r, requests, trace) = traced_exchange(&mut a, &mut b);
    assert!(r.success, "{r:?}");
    assert_eq!(requests, 1);
    assert_eq!(trace.len(), 2, "{trace:?}");
    let [
        (_, Message::Reconcile { ranges: ask, .. }),
        (_, Message::Reconcile { ranges: back, .. }),
    ] = &trace[..]
    else {
        panic!("{trace:?}")
    };
    assert_eq!(ask.len(), 1);
    assert!(back.is_empty(), "agreed: {back:?}");
    let bytes: usize = trace.iter().map(|(_, m)| m.encoded_len()).sum();
    assert!(bytes < 80, "{bytes} bytes for 5,000 origins");
}

#[test]
fn differing_nodes_converge_on_exactly_the_differences() {
    // 3,000 shared origins; a is ahead on some, b on others, and each has origins the other
    // has never seen.
    let mut a = holding(1, &[2], 0..3000, |i| if i % 500 == 7 { 4 } else { 2 });
    let mut b = holding(2, &[1], 0..3000, |i| if i % 700 == 3 { 5 } else { 2 });
    for i in 5000..5003 {
        a.store
            .insert((NodeId::from_u128(origin(i)), 1), ev(origin(i), 1));
    }
    for i in 6000..6004 {
        b.store
            .insert((NodeId::from_u128(origin(i)), 1), ev(origin(i), 1));
    }
    let (r, _, trace) = traced_exchange(&mut a, &mut b);
    assert!(r.success, "{r:?}");
    assert_eq!(a.clock(), b.clock());
    // a ahead: 6 origins x 2 events, plus 3 new; b ahead: 5 x 3, plus 4 new.
    assert_eq!((r.events_sent, r.events_received), (6 * 2 + 3, 5 * 3 + 4));
    // The digest asks about the differing origins only.
    for (_, m) in &trace {
        if let Message::Digest { entries, .. } = m {
            assert_eq!(entries.len(), 6 + 3 + 5 + 4, "{entries:?}");
        }
    }
    // O(d log n): a few levels of fingerprints and one leaf per difference.
    let bytes: usize = trace
        .iter()
        .filter(|(_, m)| matches!(m, Message::Reconcile { .. } | Message::Digest { .. }))
        .map(|(_, m)| m.encoded_len())
        .sum();
    assert!(bytes < 3_000 * 18, "{bytes} bytes");
    let (again, requests) = exchange(&mut a, &mut b);
    assert!(again.success);
    assert_eq!(
        (again.events_sent, again.events_received, requests),
        (0, 0, 1)
    );
}

#[test]
fn a_late_joiner_gets_20k_origins_with_every_message_under_the_frame_limit() {
    let max = 64 * 1024;
    let mut b = with_limits(holding(2, &[1], 0..20_000, |_| 1), max);
    b.run(Input::AddPeer(peer(1)));
    let mut a = with_limits(Node::new(1), max);
    a.run(Input::AddPeer(peer(2)));
    let mut rounds = 0;
    while a.clock() != b.clock() && rounds < 5 {
        let (r, _, trace) = traced_exchange(&mut a, &mut b);
        assert!(r.success, "{r:?}");
        for (_, m) in &trace {
            assert!(m.encoded_len() + crate::protocol::exchange::TRANSPORT_RESERVE <= max);
        }
        rounds += 1;
    }
    assert_eq!(a.clock(), b.clock(), "after {rounds} exchanges");
    assert_eq!(rounds, 1, "one exchange carries the whole history");
}

fn refused(n: &mut Node, message: Message) {
    let before = n.e.stats().refused_requests;
    let outs = n.run(request(9, message));
    let answers = responses(&outs);
    assert!(
        matches!(answers[..], [Message::DigestResponse { events, clock, .. }] if events.is_empty() && clock.is_empty()),
        "{answers:?}"
    );
    assert_eq!(n.e.stats().refused_requests, before + 1);
    let failed = outs.iter().any(|o| {
        matches!(o, Output::Emit(Emit::Exchange(r)) if !r.success && r.direction == Direction::Inbound)
    });
    assert!(failed, "{outs:?}");
}

#[test]
fn hostile_rounds_are_refused_and_counted() {
    let mut n = holding(1, &[9], 0..100, |_| 1);
    let from = NodeId::from_u128(9);
    let skip = |u: u128| Range {
        upper: Some(NodeId::from_u128(u)),
        body: Body::Skip,
    };
    let too_many = (1..=MAX_RANGES as u128 + 1).map(skip).collect();
    refused(
        &mut n,
        Message::Reconcile {
            from,
            ranges: too_many,
        },
    );
    refused(
        &mut n,
        Message::Reconcile {
            from,
            ranges: vec![skip(5), skip(3)],
        },
    );
    let unbounded_first = vec![
        Range {
            upper: None,
            body: Body::Skip,
        },
        skip(3),
    ];
    refused(
        &mut n,
        Message::Reconcile {
            from,
            ranges: unbounded_first,
        },
    );
    let long = (0..MAX_LIST as u128 + 1)
        .map(|i| (NodeId::from_u128(i + 1), 1))
        .collect();
    refused(
        &mut n,
        Message::Reconcile {
            from,
            ranges: vec![Range {
                upper: None,
                body: Body::Entries(long),
            }],
        },
    );
    let outside = vec![Range {
        upper: Some(NodeId::from_u128(3)),
        body: Body::Entries(vec![(NodeId::from_u128(7), 1)]),
    }];
    refused(
        &mut n,
        Message::Reconcile {
            from,
            ranges: outside,
        },
    );
    let diff = vec![Range {
        upper: None,
        body: Body::Diff(Vec::new()),
    }];
    refused(&mut n, Message::Reconcile { from, ranges: diff });
    let long_digest = (0..crate::protocol::message::MAX_DIGEST as u128 + 1)
        .map(|i| (NodeId::from_u128(i + 1), 0))
        .collect();
    refused(
        &mut n,
        Message::Digest {
            from,
            entries: long_digest,
        },
    );
    let unordered = vec![(NodeId::from_u128(5), 0), (NodeId::from_u128(2), 0)];
    refused(
        &mut n,
        Message::Digest {
            from,
            entries: unordered,
        },
    );
    // Still answers an honest round afterwards.
    let outs = n.run(request(
        9,
        Message::Reconcile {
            from,
            ranges: crate::protocol::reconcile::initiate(n.e.clock()),
        },
    ));
    assert!(
        matches!(responses(&outs)[..], [Message::Reconcile { ranges, .. }] if ranges.is_empty())
    );
}

#[test]
fn a_malformed_answer_fails_the_exchange_and_is_counted() {
    let mut a = holding(1, &[2], 0..10, |_| 1);
    let outs = a.run(Input::GossipWith {
        ticket: 3,
        peer: NodeId::from_u128(2),
    });
    let Some(Output::Request { exchange, .. }) = outs.first() else {
        panic!("{outs:?}")
    };
    let bad = Message::Reconcile {
        from: NodeId::from_u128(2),
        ranges: vec![
            Range {
                upper: Some(NodeId::from_u128(9)),
                body: Body::Skip,
            },
            Range {
                upper: Some(NodeId::from_u128(4)),
                body: Body::Skip,
            },
        ],
    };
    let outs = a.run(Input::Response {
        exchange: *exchange,
        message: bad,
        wire_bytes: 0,
    });
    assert_eq!(a.e.stats().refused_requests, 1);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Done { done: Done::Exchange(r), .. } if !r.success)),
        "{outs:?}"
    );
    assert_eq!(a.e.exchanges_in_flight(), 0);
}

#[test]
fn a_digest_is_answered_for_its_origins_only() {
    let mut b = holding(2, &[1], 0..50, |_| 3);
    let asked = vec![
        (NodeId::from_u128(origin(4)), 1),
        (NodeId::from_u128(origin(9)), 0),
    ];
    let outs = b.run(request(
        1,
        Message::Digest {
            from: NodeId::from_u128(1),
            entries: asked,
        },
    ));
    let [Message::DigestResponse { events, clock, .. }] = responses(&outs)[..] else {
        panic!("{outs:?}")
    };
    let mut got: Vec<(NodeId, u64)> = events.iter().map(|e| (e.origin, e.seq)).collect();
    got.sort();
    let o4 = NodeId::from_u128(origin(4));
    let o9 = NodeId::from_u128(origin(9));
    let mut want = vec![(o4, 2), (o4, 3), (o9, 1), (o9, 2), (o9, 3)];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        clock,
        &[(o4, 3), (o9, 3)].into_iter().collect::<VectorClock>()
    );
}
