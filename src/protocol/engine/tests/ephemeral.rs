//! Ephemeral rules: direct peers, relay once within the hop bound, age, rate per peer,
//! signature verdicts, never stored.

use super::*;
use crate::protocol::engine::ephemeral::{BURST, RATE_PER_SEC, SEEN_MAX};
use crate::protocol::ephemeral::{
    EPHEMERAL_MAX_AGE_MS, Ephemeral, MAX_EPHEMERAL_HOPS, MAX_EPHEMERAL_PAYLOAD,
};

fn node(id: u128, peers: &[u128]) -> Node {
    let mut n = Node::new(id);
    n.start();
    for p in peers {
        n.run(Input::AddPeer(peer(*p)));
    }
    n
}

fn note(origin: u128, id: u128, hops: u8, at: u64) -> Ephemeral {
    Ephemeral {
        origin: NodeId::from_u128(origin),
        id: uuid::Uuid::from_u128(id),
        created_at_ms: at,
        hops,
        payload: Bytes::from_static(b"typing"),
        sig: Bytes::new(),
    }
}

fn from(peer_id: u128, e: Ephemeral) -> Input {
    Input::Received {
        from: peer(peer_id),
        message: Message::Ephemeral {
            from: NodeId::from_u128(peer_id),
            ephemeral: e,
        },
        request: None,
        wire_bytes: 50,
    }
}

/// The ephemerals among `outs`' sends: (to, hops).
fn ephemeral_sends(outs: &[Output]) -> Vec<(NodeId, u8)> {
    let mut v: Vec<(NodeId, u8)> = sends(outs)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Ephemeral { ephemeral, .. } => Some((to, ephemeral.hops)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn checks(outs: &[Output]) -> Vec<(NodeId, Ephemeral)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::CheckEphemeral { from, ephemeral } => Some((*from, ephemeral.clone())),
            _ => None,
        })
        .collect()
}

fn delivered(outs: &[Output]) -> Vec<&crate::protocol::ReceivedEphemeral> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Emit(Emit::Ephemeral(r)) => Some(r),
            _ => None,
        })
        .collect()
}

/// Receives `e` from `peer_id` and answers its check with `result`; returns every output.
fn receive(n: &mut Node, peer_id: u128, e: Ephemeral, result: Result<(), String>) -> Vec<Output> {
    let mut outs = n.run(from(peer_id, e));
    for (f, ephemeral) in checks(&outs) {
        outs.extend(n.run(Input::EphemeralChecked {
            from: f,
            ephemeral,
            result: result.clone(),
        }));
    }
    outs
}

#[test]
fn a_broadcast_goes_to_every_direct_peer_not_just_fanout() {
    let mut n = node(1, &[2, 3, 4]);
    let outs = n.run(Input::BroadcastEphemeral {
        ticket: 9,
        payload: Bytes::from_static(b"hi"),
        ttl: 200,
    });
    let hops = MAX_EPHEMERAL_HOPS;
    assert_eq!(
        ephemeral_sends(&outs),
        vec![
            (NodeId::from_u128(2), hops),
            (NodeId::from_u128(3), hops),
            (NodeId::from_u128(4), hops)
        ],
        "fanout is 2, yet all 3 peers get it, with the ttl bounded"
    );
    assert!(outs.contains(&Output::Done {
        ticket: 9,
        done: Done::Ephemeral(Ok(3))
    }));
    assert_eq!(n.e.stats().ephemerals_sent, 3);
}

#[test]
fn a_broadcast_refuses_what_is_not_a_note() {
    let mut stopped = Node::new(1);
    let outs = stopped.run(Input::BroadcastEphemeral {
        ticket: 1,
        payload: Bytes::from_static(b"x"),
        ttl: 1,
    });
    assert!(outs.contains(&Output::Done {
        ticket: 1,
        done: Done::Ephemeral(Err(CreateError::NotStarted))
    }));
    let mut n = node(1, &[2]);
    for (payload, why) in [
        (Bytes::new(), CreateError::EmptyPayload),
        (
            Bytes::from(vec![b'x'; MAX_EPHEMERAL_PAYLOAD + 1]),
            CreateError::TooLarge {
                size: MAX_EPHEMERAL_PAYLOAD + 1,
                limit: MAX_EPHEMERAL_PAYLOAD,
            },
        ),
    ] {
        let outs = n.run(Input::BroadcastEphemeral {
            ticket: 2,
            payload,
            ttl: 1,
        });
        assert!(ephemeral_sends(&outs).is_empty());
        assert!(outs.contains(&Output::Done {
            ticket: 2,
            done: Done::Ephemeral(Err(why))
        }));
    }
}

#[test]
fn a_received_note_is_checked_delivered_and_relayed_once_never_stored() {
    let mut n = node(1, &[2, 3, 4]);
    let clock = n.e.clock().clone();
    let e = note(2, 77, 1, n.now);
    let outs = n.run(from(3, e.clone()));
    assert_eq!(checks(&outs), vec![(NodeId::from_u128(3), e.clone())]);
    assert!(
        delivered(&outs).is_empty(),
        "nothing before the signature check"
    );
    let outs = n.run(Input::EphemeralChecked {
        from: NodeId::from_u128(3),
        ephemeral: e.clone(),
        result: Ok(()),
    });
    let got = delivered(&outs);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].origin, NodeId::from_u128(2));
    assert_eq!(got[0].from, NodeId::from_u128(3));
    assert_eq!(got[0].payload, e.payload);
    assert_eq!(
        ephemeral_sends(&outs),
        vec![(NodeId::from_u128(4), 0)],
        "relayed to the peers that are neither its sender nor its origin, one hop less"
    );
    // Never stored: no store work at all, and the clock is untouched.
    assert!(n.store.is_empty());
    assert_eq!(n.e.clock(), &clock);
    // A second copy, by another path, is a duplicate: not checked, delivered or relayed.
    let outs = receive(&mut n, 4, e, Ok(()));
    assert!(checks(&outs).is_empty() && delivered(&outs).is_empty());
    assert!(ephemeral_sends(&outs).is_empty());
    let s = n.e.stats();
    assert_eq!(
        (
            s.ephemerals_received,
            s.ephemerals_relayed,
            s.ephemerals_duplicate
        ),
        (1, 1, 1)
    );
    assert_eq!((s.events_received, s.pushes_sent), (0, 0));
}

#[test]
fn a_note_with_no_hops_left_is_delivered_not_relayed() {
    let mut n = node(1, &[2, 3]);
    let outs = receive(&mut n, 2, note(2, 1, 0, T0), Ok(()));
    assert_eq!(delivered(&outs).len(), 1);
    assert!(ephemeral_sends(&outs).is_empty());
}

#[test]
fn a_hostile_hop_count_is_bounded() {
    let mut n = node(1, &[2, 3]);
    let outs = receive(&mut n, 2, note(2, 1, u8::MAX, T0), Ok(()));
    assert_eq!(
        ephemeral_sends(&outs),
        vec![(NodeId::from_u128(3), MAX_EPHEMERAL_HOPS - 1)]
    );
}

#[test]
fn a_chain_of_nodes_hears_a_note_as_far_as_its_ttl() {
    // 1 - 2 - 3 - 4 - 5: ttl 1 reaches 2 (direct) and 3 (one relay), not 4.
    let mut nodes: Vec<Node> = (1..=5u128)
        .map(|i| {
            let ps: Vec<u128> = [i - 1, i + 1]
                .into_iter()
                .filter(|p| (1..=5).contains(p))
                .collect();
            node(i, &ps)
        })
        .collect();
    let mut wire: VecDeque<(u128, NodeId, Message)> = VecDeque::new();
    let outs = nodes[0].run(Input::BroadcastEphemeral {
        ticket: 1,
        payload: Bytes::from_static(b"hello"),
        ttl: 1,
    });
    let queue = |outs: Vec<Output>, sender: u128, wire: &mut VecDeque<_>| {
        for o in outs {
            if let Output::Send { to, message } = o {
                wire.push_back((sender, to.id, message));
            }
        }
    };
    queue(outs, 1, &mut wire);
    let mut heard = Vec::new();
    while let Some((sender, to, message)) = wire.pop_front() {
        let i = nodes.iter().position(|n| n.id() == to).unwrap();
        let n = &mut nodes[i];
        let mut outs = n.run(Input::Received {
            from: peer(sender),
            message,
            request: None,
            wire_bytes: 0,
        });
        for (f, ephemeral) in checks(&outs) {
            outs.extend(n.run(Input::EphemeralChecked {
                from: f,
                ephemeral,
                result: Ok(()),
            }));
        }
        if !delivered(&outs).is_empty() {
            heard.push(i + 1);
        }
        queue(outs, i as u128 + 1, &mut wire);
    }
    assert_eq!(heard, vec![2, 3]);
}

#[test]
fn a_stale_or_future_note_is_refused_and_counted() {
    let mut n = node(1, &[2, 3]);
    let old = note(2, 1, 1, n.now - EPHEMERAL_MAX_AGE_MS - 1);
    let future = note(2, 2, 1, n.now + EPHEMERAL_MAX_AGE_MS + 1);
    for e in [old, future] {
        let outs = n.run(from(2, e));
        assert!(checks(&outs).is_empty());
        assert!(outs.iter().any(|o| matches!(
            o,
            Output::Emit(Emit::Exchange(r)) if r.error.as_deref().is_some_and(|e| e.contains("stale"))
        )));
    }
    let mut empty = note(2, 3, 1, n.now);
    empty.payload = Bytes::new();
    assert!(checks(&n.run(from(2, empty))).is_empty());
    assert_eq!(n.e.stats().ephemerals_refused, 3);
}

#[test]
fn a_peer_over_its_rate_is_dropped_and_others_are_not() {
    let mut n = node(1, &[2, 3]);
    let mut id = 0;
    let mut admitted = |n: &mut Node, peer_id: u128| {
        id += 1;
        !checks(&n.run(from(peer_id, note(9, id, 0, n.now)))).is_empty()
    };
    let burst = (0..BURST + 10).filter(|_| admitted(&mut n, 2)).count() as u64;
    assert_eq!(burst, BURST);
    assert_eq!(n.e.stats().ephemerals_dropped, 10);
    assert!(admitted(&mut n, 3), "another peer's bucket is its own");
    n.now += 1000;
    let refilled = (0..BURST).filter(|_| admitted(&mut n, 2)).count() as u64;
    assert_eq!(refilled, RATE_PER_SEC);
}

#[test]
fn a_bad_signature_is_refused_and_the_genuine_copy_still_passes() {
    let mut n = node(1, &[2, 3]);
    let e = note(2, 5, 1, n.now);
    let outs = receive(&mut n, 3, e.clone(), Err("bad signature".into()));
    assert!(delivered(&outs).is_empty() && ephemeral_sends(&outs).is_empty());
    assert_eq!(n.e.stats().ephemerals_refused, 1);
    let outs = receive(&mut n, 2, e, Ok(()));
    assert_eq!(
        delivered(&outs).len(),
        1,
        "the forgery did not make it a duplicate"
    );
}

#[test]
fn our_own_note_coming_back_is_a_duplicate() {
    let mut n = node(1, &[2]);
    let outs = n.run(Input::BroadcastEphemeral {
        ticket: 1,
        payload: Bytes::from_static(b"me"),
        ttl: 1,
    });
    let Some(Message::Ephemeral { ephemeral, .. }) = sends(&outs).first().map(|s| s.1.clone())
    else {
        panic!("no send: {outs:?}");
    };
    let outs = receive(&mut n, 2, ephemeral, Ok(()));
    assert!(checks(&outs).is_empty() && delivered(&outs).is_empty());
    assert_eq!(n.e.stats().ephemerals_duplicate, 1);
}

#[test]
fn the_dedupe_memory_is_bounded() {
    let mut n = node(1, &[]);
    let total = SEEN_MAX as u128 + 100;
    for i in 0..total {
        // Many peers, so no rate applies; all within the age bound.
        receive(&mut n, 1000 + i % 1000, note(9, i, 0, T0), Ok(()));
    }
    assert_eq!(n.e.stats().ephemerals_received, total as u64);
    assert!(n.e.ephemerals().remembered() <= SEEN_MAX);
}
