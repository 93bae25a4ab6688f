//! Failure detector rules: pings of quiet peers, deadlines from the RTT, ping-req before
//! offline, stale failures ignored, offline peers pinged until they answer.

use super::*;
use crate::protocol::engine::detector::ProbeConfig;
use crate::protocol::engine::liveness::PeerState;

fn probing(id: u128, peers: &[u128]) -> Node {
    let mut n = Node::new(id);
    let mut c = config(id);
    c.probe = Some(ProbeConfig::lan());
    n.e = Engine::new(c, id as u64, None);
    n.start();
    for p in peers {
        n.run(Input::AddPeer(peer(*p)));
        // Heard from: alive.
        n.run(Input::Received {
            from: peer(*p),
            message: Message::Prune {
                from: NodeId::from_u128(*p),
            },
            request: None,
            wire_bytes: 0,
        });
    }
    n
}

fn state(n: &Node, p: u128) -> PeerState {
    n.e.peers().get(&NodeId::from_u128(p)).unwrap().state
}

/// Advances to `at` and fires a detector tick.
fn tick(n: &mut Node, at: u64) -> Vec<Output> {
    n.now = at;
    let run = 1;
    n.run(Input::TimerFired(Timer::Probe { run }))
}

/// The requests among `outs`: (to, exchange, message, timeout).
fn requests(outs: &[Output]) -> Vec<(NodeId, ExchangeId, Message, Duration)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Request {
                to,
                exchange,
                message,
                timeout,
            } => Some((to.id, *exchange, message.clone(), *timeout)),
            _ => None,
        })
        .collect()
}

fn transitions(outs: &[Output]) -> Vec<(NodeId, PeerState)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Emit(Emit::PeerState(t)) => Some((t.id, t.to)),
            _ => None,
        })
        .collect()
}

fn ping_of(outs: &[Output], p: u128) -> (ExchangeId, Duration) {
    requests(outs)
        .into_iter()
        .find(|(to, _, m, _)| *to == NodeId::from_u128(p) && matches!(m, Message::Ping { .. }))
        .map(|(_, x, _, t)| (x, t))
        .unwrap_or_else(|| panic!("no ping of {p} in {outs:?}"))
}

fn pong(n: &mut Node, x: ExchangeId, p: u128) -> Vec<Output> {
    n.run(Input::Response {
        exchange: x,
        message: Message::Pong {
            from: NodeId::from_u128(p),
        },
        wire_bytes: 0,
    })
}

fn failed(n: &mut Node, x: ExchangeId) -> Vec<Output> {
    n.run(Input::RequestFailed {
        exchange: x,
        error: "timed out".into(),
    })
}

#[test]
fn rtt_deadlines_are_srtt_plus_four_deviations_clamped() {
    let (min, max) = (Duration::from_millis(250), Duration::from_millis(1000));
    let mut r = RttEstimate::default();
    assert_eq!(r.deadline(min, max), max, "unmeasured: the longest");
    r.sample(2);
    assert_eq!(r.deadline(min, max), min, "a LAN: the shortest");
    let mut slow = RttEstimate::default();
    for _ in 0..20 {
        slow.sample(300);
    }
    let d = slow.deadline(min, max);
    assert!(
        d >= Duration::from_millis(300) && d < Duration::from_millis(400),
        "{d:?}"
    );
    slow.sample(900);
    assert!(
        slow.deadline(min, max) >= Duration::from_millis(900),
        "jitter stretches it"
    );
    slow.sample(900);
    assert_eq!(slow.deadline(min, max), max, "up to the cap");
}

#[test]
fn a_silent_peer_is_suspect_within_2_s_and_offline_within_3_s() {
    let mut a = probing(1, &[2, 3]);
    let last_contact = a.now;
    // One heartbeat each way: the pings measure a LAN's RTT.
    let outs = tick(&mut a, T0 + 500);
    let (x2, t2) = ping_of(&outs, 2);
    let (x3, _) = ping_of(&outs, 3);
    assert_eq!(
        t2,
        Duration::from_millis(1000),
        "no RTT yet: the longest deadline"
    );
    a.now = T0 + 502;
    pong(&mut a, x2, 2);
    pong(&mut a, x3, 3);
    // Peer 2 goes silent after T0 + 502; 3 keeps talking.
    let mut suspect_at = None;
    let mut offline_at = None;
    let mut t = T0 + 502;
    while t < T0 + 6000 && offline_at.is_none() {
        t += 125;
        let outs = tick(&mut a, t);
        if let Some((x, timeout)) = requests(&outs)
            .into_iter()
            .find(|(to, _, m, _)| *to == NodeId::from_u128(3) && matches!(m, Message::Ping { .. }))
            .map(|(_, x, _, d)| (x, d))
        {
            assert_eq!(timeout, Duration::from_millis(250), "a LAN deadline");
            a.now = t + 1;
            pong(&mut a, x, 3);
        }
        let mut all = outs.clone();
        if let Some((x, timeout)) = requests(&outs)
            .into_iter()
            .find(|(to, _, m, _)| *to == NodeId::from_u128(2) && matches!(m, Message::Ping { .. }))
            .map(|(_, x, _, d)| (x, d))
        {
            // Nobody answers: the transport reports the deadline.
            a.now = t + timeout.as_millis() as u64;
            all.extend(failed(&mut a, x));
            // The suspect is probed through peer 3 before anything else.
            let reqs = requests(&all);
            if suspect_at.is_none() && state(&a, 2) == PeerState::Suspect {
                suspect_at = Some(a.now);
                let via: Vec<_> = reqs
                    .iter()
                    .filter(|(_, _, m, _)| matches!(m, Message::PingReq { target, .. } if *target == NodeId::from_u128(2)))
                    .collect();
                assert_eq!(via.len(), 1, "one helper (3) asked: {reqs:?}");
                assert_eq!(via[0].0, NodeId::from_u128(3));
            }
        }
        for (id, s) in transitions(&all) {
            if id == NodeId::from_u128(2) && s == PeerState::Offline {
                offline_at = Some(a.now);
            }
        }
    }
    let suspect = suspect_at.expect("suspect") - last_contact;
    let offline = offline_at.expect("offline") - last_contact;
    assert!(suspect <= 2000, "suspect after {suspect} ms");
    assert!(offline <= 3000, "offline after {offline} ms");
    assert!(offline > suspect);
    assert_eq!(
        state(&a, 3),
        PeerState::Alive,
        "the talking peer never flapped"
    );
}

#[test]
fn an_indirect_ack_keeps_a_suspect_from_going_offline() {
    let mut a = probing(1, &[2, 3]);
    let outs = tick(&mut a, T0 + 500);
    let (x2, _) = ping_of(&outs, 2);
    let (x3, _) = ping_of(&outs, 3);
    a.now = T0 + 501;
    pong(&mut a, x3, 3);
    a.now = T0 + 1500;
    let outs = failed(&mut a, x2);
    assert_eq!(state(&a, 2), PeerState::Suspect);
    let (_, xreq, _, _) = requests(&outs)
        .into_iter()
        .find(|(_, _, m, _)| matches!(m, Message::PingReq { .. }))
        .expect("a ping-req");
    let deadline =
        a.e.offline_deadline(&NodeId::from_u128(2))
            .expect("a deadline");
    // Peer 3 reached 2: only our link is bad.
    a.now = T0 + 1600;
    a.run(Input::Response {
        exchange: xreq,
        message: Message::PingAck {
            from: NodeId::from_u128(3),
            target: NodeId::from_u128(2),
            alive: true,
        },
        wire_bytes: 0,
    });
    assert_eq!(a.e.detector_stats().indirect_acks, 1);
    let moved = a.e.offline_deadline(&NodeId::from_u128(2)).unwrap();
    assert!(moved > deadline, "{moved} > {deadline}");
    let outs = tick(&mut a, deadline + 1);
    assert_eq!(
        state(&a, 2),
        PeerState::Suspect,
        "not offline: reachable via 3"
    );
    assert!(
        transitions(&outs).is_empty(),
        "and not alive either (no flapping)"
    );
    // Acks stop: offline at the moved deadline.
    tick(&mut a, moved + 1);
    assert_eq!(state(&a, 2), PeerState::Offline);
}

#[test]
fn a_failure_older_than_the_last_contact_is_stale() {
    let mut a = probing(1, &[2, 3]);
    let outs = tick(&mut a, T0 + 500);
    let (x2, _) = ping_of(&outs, 2);
    // Peer 2 speaks after the ping was sent (its pong was lost, say).
    a.now = T0 + 600;
    a.run(Input::Received {
        from: peer(2),
        message: Message::Prune {
            from: NodeId::from_u128(2),
        },
        request: None,
        wire_bytes: 0,
    });
    a.now = T0 + 1500;
    let outs = failed(&mut a, x2);
    assert!(transitions(&outs).is_empty(), "{outs:?}");
    assert_eq!(state(&a, 2), PeerState::Alive);
    assert_eq!(a.e.detector_stats().stale_failures, 1);
}

#[test]
fn an_offline_peer_is_pinged_each_half_interval_and_alive_on_its_first_answer() {
    let mut a = probing(1, &[2]);
    a.run(Input::Disconnected {
        peer: NodeId::from_u128(2),
        reason: "reset".into(),
    });
    assert_eq!(state(&a, 2), PeerState::Offline);
    let mut pings = Vec::new();
    let mut t = T0;
    for _ in 0..16 {
        t += 125;
        let outs = tick(&mut a, t);
        if let Some((x, _)) = requests(&outs)
            .into_iter()
            .find(|(_, _, m, _)| matches!(m, Message::Ping { .. }))
            .map(|(_, x, _, d)| (x, d))
        {
            pings.push(t);
            a.now = t + 50; // refused at once (the port is closed)
            let outs = failed(&mut a, x);
            assert!(transitions(&outs).is_empty(), "offline stays offline");
        }
    }
    assert!(pings.len() >= 6, "{pings:?}");
    assert!(
        pings
            .windows(2)
            .all(|w| (250..=375).contains(&(w[1] - w[0]))),
        "{pings:?}"
    );
    // Healed: the next ping is answered.
    let outs = tick(&mut a, t + 500);
    let (x, _) = ping_of(&outs, 2);
    a.now = t + 503;
    let outs = pong(&mut a, x, 2);
    assert_eq!(
        transitions(&outs),
        vec![(NodeId::from_u128(2), PeerState::Alive)]
    );
}

#[test]
fn a_helper_pings_the_target_and_answers_with_the_outcome() {
    let mut h = probing(3, &[1, 2]);
    let ask = |target: u128| Input::Received {
        from: peer(1),
        message: Message::PingReq {
            from: NodeId::from_u128(1),
            target: NodeId::from_u128(target),
        },
        request: Some(RequestId(77)),
        wire_bytes: 0,
    };
    let outs = h.run(ask(2));
    let (x, _) = ping_of(&outs, 2);
    let outs = pong(&mut h, x, 2);
    assert!(outs.iter().any(|o| matches!(o,
        Output::Respond { request: RequestId(77), message: Message::PingAck { alive: true, target, .. } }
            if *target == NodeId::from_u128(2))), "{outs:?}");
    // A failed ping is reported as such.
    let outs = h.run(ask(2));
    let (x, _) = ping_of(&outs, 2);
    let outs = failed(&mut h, x);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            Output::Respond {
                message: Message::PingAck { alive: false, .. },
                ..
            }
        )),
        "{outs:?}"
    );
    // An unknown target, or the asker itself, is answered "no" at once, without a ping.
    for target in [9, 1] {
        let outs = h.run(ask(target));
        assert!(requests(&outs).is_empty(), "{outs:?}");
        assert!(outs.iter().any(|o| matches!(
            o,
            Output::Respond {
                message: Message::PingAck { alive: false, .. },
                ..
            }
        )));
    }
}

#[test]
fn a_ping_is_answered_with_a_pong() {
    let mut b = probing(2, &[1]);
    let outs = b.run(Input::Received {
        from: peer(1),
        message: Message::Ping {
            from: NodeId::from_u128(1),
        },
        request: Some(RequestId(5)),
        wire_bytes: 0,
    });
    assert!(outs.iter().any(|o| matches!(o,
        Output::Respond { request: RequestId(5), message: Message::Pong { from } } if *from == NodeId::from_u128(2))));
}

#[test]
fn without_the_detector_nothing_is_pinged() {
    let mut n = Node::new(1);
    n.start();
    n.run(Input::AddPeer(peer(2)));
    let outs = tick(&mut n, T0 + 5000);
    assert!(requests(&outs).is_empty());
}
