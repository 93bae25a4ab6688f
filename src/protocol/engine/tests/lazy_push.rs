//! PlumTree rules: IHave batching, graft after a timeout, prune on a duplicate.

use super::*;
use crate::protocol::message::SeqRange;

fn lazy(id: u128, peers: &[u128]) -> Node {
    let mut n = Node::new(id);
    let mut c = config(id);
    c.lazy_push = true;
    n.e = Engine::new(c, id as u64, None);
    n.start();
    for p in peers {
        n.run(Input::AddPeer(peer(*p)));
    }
    n
}

fn received(from: u128, message: Message) -> Input {
    Input::Received {
        from: peer(from),
        message,
        request: None,
        wire_bytes: 10,
    }
}

fn push(from: u128, events: Vec<Event>) -> Input {
    received(
        from,
        Message::Push {
            from: NodeId::from_u128(from),
            events,
        },
    )
}

fn ihave(from: u128, origin: u128, first: u64, last: u64) -> Input {
    received(
        from,
        Message::IHave {
            from: NodeId::from_u128(from),
            ranges: vec![SeqRange {
                origin: NodeId::from_u128(origin),
                first,
                last,
            }],
        },
    )
}

fn graft_timers(outs: &[Output]) -> Vec<(u64, NodeId, u64)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ScheduleTimer {
                at,
                timer: Timer::Graft { origin, seq, .. },
            } => Some((*at, *origin, *seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn ranges_merge_consecutive_seqs_per_origin() {
    let (a, b) = (NodeId::from_u128(1), NodeId::from_u128(2));
    let r = SeqRange::runs(vec![(a, 3), (b, 1), (a, 1), (a, 2), (a, 5), (a, 2)]);
    assert_eq!(
        r,
        vec![
            SeqRange {
                origin: a,
                first: 1,
                last: 3
            },
            SeqRange {
                origin: a,
                first: 5,
                last: 5
            },
            SeqRange {
                origin: b,
                first: 1,
                last: 1
            },
        ]
    );
}

#[test]
fn a_small_view_pushes_to_all_and_a_large_one_announces_in_one_batched_ihave() {
    // 4 nodes: eager to all three others at once, no IHave.
    let mut small = lazy(1, &[2, 3, 4]);
    let outs = small.run(push(2, vec![ev(9, 1)]));
    let s = sends(&outs);
    assert_eq!(s.len(), 2, "to 3 and 4: {s:?}");
    assert!(s.iter().all(|(_, m)| matches!(m, Message::Push { .. })));

    // 20 peers, fanout 2: pushes to the eager peers (the first two, plus the sender),
    // one IHave naming both events as one range to each other reachable peer.
    let peers: Vec<u128> = (2..22).collect();
    let mut big = lazy(1, &peers);
    let outs = big.run(push(2, vec![ev(30, 1), ev(30, 2)]));
    let s = sends(&outs);
    let pushes = s
        .iter()
        .filter(|(_, m)| matches!(m, Message::Push { .. }))
        .count();
    let ihaves: Vec<_> = s
        .iter()
        .filter_map(|(_, m)| match m {
            Message::IHave { ranges, .. } => Some(ranges.clone()),
            _ => None,
        })
        .collect();
    assert!(pushes <= 2, "eager pushes bounded by fanout: {pushes}");
    assert_eq!(pushes + ihaves.len(), 19, "every peer but the sender hears");
    let one = SeqRange {
        origin: NodeId::from_u128(30),
        first: 1,
        last: 2,
    };
    assert!(ihaves.iter().all(|r| r == &vec![one]), "{ihaves:?}");
}

#[test]
fn a_missing_event_is_grafted_after_the_timeout_and_not_if_it_arrived() {
    let peers: Vec<u128> = (2..22).collect();
    let mut n = lazy(1, &peers);
    let outs = n.run(ihave(5, 30, 1, 2));
    let timers = graft_timers(&outs);
    assert_eq!(timers.len(), 2);
    assert!(
        timers
            .iter()
            .all(|t| t.0 == n.now + plumtree::GRAFT_TIMEOUT_MS)
    );
    assert!(sends(&outs).is_empty(), "no graft before the timeout");
    // Seq 1 arrives by push before the timeout; seq 2 does not.
    n.run(push(6, vec![ev(30, 1)]));
    n.now += plumtree::GRAFT_TIMEOUT_MS;
    let run = 1;
    let o = NodeId::from_u128(30);
    let first = n.run(Input::TimerFired(Timer::Graft {
        run,
        origin: o,
        seq: 1,
    }));
    assert!(sends(&first).is_empty(), "held: no graft {first:?}");
    let second = n.run(Input::TimerFired(Timer::Graft {
        run,
        origin: o,
        seq: 2,
    }));
    let s = sends(&second);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, NodeId::from_u128(5));
    assert!(matches!(s[0].1, Message::Graft { ranges, .. } if ranges[0].first == 2));
    assert!(n.e.tree().eager().contains(&NodeId::from_u128(5)));
    assert_eq!(n.e.stats().grafts_sent, 1);
    // The entry stays one retry longer (a later announcer would be tried), then goes.
    n.now += plumtree::GRAFT_RETRY_MS;
    n.run(Input::TimerFired(Timer::Graft {
        run,
        origin: o,
        seq: 2,
    }));
    assert_eq!(n.e.tree().missing(), 0);
}

#[test]
fn the_initial_eager_peers_are_not_the_lowest_ids() {
    let peers: Vec<u128> = (2..42).collect();
    let lowest: Vec<NodeId> = (2..5).map(NodeId::from_u128).collect();
    let mut differs = false;
    for id in [100u128, 101, 102, 103] {
        let mut n = lazy(id, &peers);
        n.run(push(2, vec![ev(30, id as u64)]));
        let eager: Vec<NodeId> = n.e.tree().eager().iter().copied().collect();
        assert!(eager.len() >= 2, "{eager:?}");
        differs |= eager
            .iter()
            .any(|p| !lowest.contains(p) && *p != NodeId::from_u128(2));
    }
    assert!(differs, "every node picked the lowest ids");
}

#[test]
fn a_pruned_link_stays_cut_until_a_graft() {
    let peers: Vec<u128> = (2..22).collect();
    let mut n = lazy(1, &peers);
    n.run(received(
        7,
        Message::Prune {
            from: NodeId::from_u128(7),
        },
    ));
    // A push from 7 that was in flight when the prune left brings something new.
    n.run(push(7, vec![ev(30, 1)]));
    assert!(n.e.tree().lazy().contains(&NodeId::from_u128(7)));
    // A graft from 7 joins the link again.
    n.run(received(
        7,
        Message::Graft {
            from: NodeId::from_u128(7),
            ranges: Vec::new(),
        },
    ));
    assert!(n.e.tree().eager().contains(&NodeId::from_u128(7)));
}

#[test]
fn a_duplicate_answering_our_graft_prunes_nothing() {
    let peers: Vec<u128> = (2..22).collect();
    let mut n = lazy(1, &peers);
    n.run(ihave(5, 30, 1, 1));
    n.now += plumtree::GRAFT_TIMEOUT_MS;
    let outs = n.run(Input::TimerFired(Timer::Graft {
        run: 1,
        origin: NodeId::from_u128(30),
        seq: 1,
    }));
    assert_eq!(sends(&outs).len(), 1, "the graft");
    n.run(push(6, vec![ev(30, 1)]));
    let outs = n.run(push(5, vec![ev(30, 1)]));
    assert!(
        !sends(&outs)
            .iter()
            .any(|(_, m)| matches!(m, Message::Prune { .. })),
        "{outs:?}"
    );
    assert!(n.e.tree().eager().contains(&NodeId::from_u128(5)));
    // A second duplicate from 5 is a redundant link again.
    let outs = n.run(push(5, vec![ev(30, 1)]));
    assert!(
        sends(&outs)
            .iter()
            .any(|(_, m)| matches!(m, Message::Prune { .. }))
    );
}

#[test]
fn an_event_is_not_pushed_to_a_peer_that_announced_it() {
    let mut n = lazy(1, &[2, 3, 4]);
    n.run(ihave(3, 30, 1, 1));
    let outs = n.run(push(2, vec![ev(30, 1)]));
    let to: Vec<NodeId> = sends(&outs).iter().map(|(id, _)| *id).collect();
    assert_eq!(to, vec![NodeId::from_u128(4)]);
}

#[test]
fn a_graft_is_answered_from_the_recent_events_and_makes_the_peer_eager() {
    let peers: Vec<u128> = (2..22).collect();
    let mut n = lazy(1, &peers);
    n.run(push(2, vec![ev(30, 1)]));
    let graft = received(
        17,
        Message::Graft {
            from: NodeId::from_u128(17),
            ranges: vec![SeqRange {
                origin: NodeId::from_u128(30),
                first: 1,
                last: 1,
            }],
        },
    );
    let outs = n.run(graft);
    let s = sends(&outs);
    assert_eq!(s.len(), 1);
    assert!(matches!(s[0].1, Message::Push { events, .. } if events == &vec![ev(30, 1)]));
    assert!(n.e.tree().eager().contains(&NodeId::from_u128(17)));
}

#[test]
fn a_duplicate_push_prunes_its_sender_and_a_prune_makes_the_peer_lazy() {
    let mut n = lazy(1, &[2, 3, 4]);
    n.run(push(2, vec![ev(9, 1)]));
    let outs = n.run(push(3, vec![ev(9, 1)]));
    let s = sends(&outs);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].0, NodeId::from_u128(3));
    assert!(matches!(s[0].1, Message::Prune { .. }));
    assert!(n.e.tree().lazy().contains(&NodeId::from_u128(3)));
    assert_eq!(n.e.stats().prunes_sent, 1);

    n.run(received(
        4,
        Message::Prune {
            from: NodeId::from_u128(4),
        },
    ));
    assert!(n.e.tree().lazy().contains(&NodeId::from_u128(4)));
    // The next new event goes in full to 2 only, as IHave to 3 and 4.
    let outs = n.run(push(2, vec![ev(9, 2)]));
    let s = sends(&outs);
    assert_eq!(s.len(), 2);
    assert!(
        s.iter().all(|(_, m)| matches!(m, Message::IHave { .. })),
        "{s:?}"
    );
}

#[test]
fn a_hostile_ihave_cannot_grow_the_missing_set_without_bound() {
    let mut n = lazy(1, &[2]);
    for i in 0..10u64 {
        n.run(ihave(2, 30, i * 1_000_000 + 1, u64::MAX));
    }
    assert!(n.e.tree().missing() <= plumtree::MAX_MISSING);
    n.run(ihave(2, 30, 0, 0));
}
