//! Hostile input against a live node over TCP on 127.0.0.1. The attacker is a raw
//! `TcpStream`; after each attack the node must still exchange with a well-behaved peer,
//! hold every event unchanged (or, for a forgery under a held key in this unsigned room, the
//! equivocation rule's winner), not panic, and count what it refused.

mod tcp_common;
use tcp_common as common;

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{TcpNode, eventually, start_node};
use gossip::store::EventStore;
use gossip::transport::codec::{Frame, Hello, PROTOCOL_VERSION, encode_frame};
use gossip::transport::tcp::Encryption;
use gossip::{Event, Message, NodeId, VectorClock};
use rand::{RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

/// The victim's I/O timeout: short, so silent attackers are dropped quickly.
const IO_TIMEOUT: Duration = Duration::from_millis(1000);
/// Far beyond any deadline the victim should need, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(15);

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics anywhere in this process (spawned tasks included, whose panics would
/// otherwise go unnoticed by the test).
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

struct Scene {
    victim: TcpNode,
    good: TcpNode,
    held: Vec<Event>,
}

/// A victim and a well-behaved peer that know each other and hold the same 6 events.
async fn scene() -> Scene {
    count_panics();
    // These attacks target the frame layer, so the nodes run it in the clear; the Noise
    // layer in front of it (which refuses all of this before a frame is read) is attacked
    // in tests/security.rs.
    let victim = start_node(|_, t| {
        t.io_timeout = IO_TIMEOUT;
        t.encryption = Encryption::Plaintext;
    })
    .await;
    let good = start_node(|_, t| t.encryption = Encryption::Plaintext).await;
    victim.node.add_peer(good.peer()).unwrap();
    good.node.add_peer(victim.peer()).unwrap();
    for i in 0..3 {
        victim.node.create_event(format!("v{i}")).await.unwrap();
        good.node.create_event(format!("g{i}")).await.unwrap();
    }
    eventually(PATIENCE, "the scene converges", || async {
        victim.store.count().await.unwrap() == 6 && good.store.count().await.unwrap() == 6
    })
    .await;
    let held = victim.store.all_events().await.unwrap();
    Scene { victim, good, held }
}

impl Scene {
    async fn attacker(&self) -> TcpStream {
        TcpStream::connect(self.victim.addr()).await.unwrap()
    }

    /// An attacker connecting from another loopback address: refusals are reported to
    /// the node once per address per minute, so a test that follows each report uses one
    /// address per attempt.
    async fn attacker_from(&self, ip: [u8; 4]) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((ip, 0).into()).unwrap();
        socket.connect(self.victim.addr()).await.unwrap()
    }

    /// Refusals counted: by the transport (each one; only the first per address per
    /// minute reaches the node) and by the node (input it refused itself).
    fn rejected(&self) -> u64 {
        self.victim.node.stats().rejected_inbound + self.victim.transport.refused_inbound()
    }

    async fn rejected_above(&self, before: u64) {
        eventually(PATIENCE, "the refusal is counted", || async {
            self.rejected() > before
        })
        .await;
    }

    /// The victim still works both ways with the good peer, holds every event it held,
    /// unchanged, and nothing panicked.
    async fn still_healthy(&self) {
        let fresh = self
            .good
            .node
            .create_event("after the attack")
            .await
            .unwrap();
        eventually(PATIENCE, "victim -> good exchange", || async {
            self.victim
                .node
                .gossip_with(self.good.id())
                .await
                .is_ok_and(|r| r.success)
        })
        .await;
        eventually(PATIENCE, "good -> victim exchange", || async {
            self.good
                .node
                .gossip_with(self.victim.id())
                .await
                .is_ok_and(|r| r.success)
        })
        .await;
        let store = &self.victim.store;
        for e in &self.held {
            // An unsigned room: a forgery under a held key is an equivocation, and the
            // victim keeps the rule's winner (the original unless the forgery wins).
            let winner = gossip::protocol::equivocation::Equivocation::detect(e, &forged(e))
                .map(|q| q.winner);
            let held = store.get(e.origin, e.seq).await.unwrap();
            assert!(
                held.as_ref() == Some(e) || held == winner,
                "{held:?} is neither {e:?} nor the rule's winner"
            );
        }
        assert_eq!(
            store.get(fresh.origin, fresh.seq).await.unwrap(),
            Some(fresh)
        );
        assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a task panicked");
    }
}

fn hello(id: NodeId, room: &str, version: u32) -> Frame {
    Frame::Hello(Hello {
        protocol_version: version,
        node_id: id,
        room: room.into(),
        listen_port: 9,
        name: "mallory".into(),
        auth: None,
    })
}

async fn send(s: &mut TcpStream, frame: &Frame) {
    let body = encode_frame(frame, 1 << 24).unwrap();
    let mut wire = (body.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&body);
    s.write_all(&wire).await.unwrap();
}

/// The next frame from the victim, or `None` if it closed the connection first.
async fn recv(s: &mut TcpStream) -> Option<Frame> {
    let mut len = [0u8; 4];
    timeout(PATIENCE, s.read_exact(&mut len)).await.ok()?.ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    timeout(PATIENCE, s.read_exact(&mut body))
        .await
        .ok()?
        .ok()?;
    gossip::transport::codec::decode_frame(&body, 1 << 24).ok()
}

/// Waits until the victim closes the connection, skipping what it still says; returns
/// the reason of its `Bye`, if it sent one.
async fn closed(s: &mut TcpStream) -> Option<String> {
    let mut bye = None;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let frame = tokio::time::timeout_at(deadline, recv(s))
            .await
            .expect("the victim never closed the connection");
        match frame {
            Some(Frame::Bye { reason }) => bye = Some(reason),
            Some(_) => {}
            None => return bye,
        }
    }
}

/// Connects and completes the handshake as `id`.
async fn handshaken(scene: &Scene, id: NodeId) -> TcpStream {
    let mut s = scene.attacker().await;
    send(&mut s, &hello(id, common::ROOM, PROTOCOL_VERSION)).await;
    match recv(&mut s).await {
        Some(Frame::Hello(h)) => assert_eq!(h.node_id, scene.victim.id()),
        other => panic!("expected the victim's Hello, got {other:?}"),
    }
    s
}

/// A different event under the `(origin, seq)` of `e`.
fn forged(e: &Event) -> Event {
    Event {
        payload: Bytes::from_static(b"forged"),
        sig: bytes::Bytes::new(),
        ..e.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_are_refused() {
    let scene = scene().await;
    let before = scene.rejected();
    let mut junk = vec![0u8; 4096];
    rand::rngs::SmallRng::seed_from_u64(7).fill_bytes(&mut junk);
    let mut s = scene.attacker().await;
    // The victim may close before reading it all: a failed write is fine.
    let _ = s.write_all(&junk).await;
    closed(&mut s).await;
    scene.rejected_above(before).await;
    scene.still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_prefix_over_the_limit_closes_at_once() {
    let scene = scene().await;
    // Before the handshake the limit is 4 KiB.
    let before = scene.rejected();
    let mut s = scene.attacker().await;
    s.write_all(&5000u32.to_be_bytes()).await.unwrap();
    closed(&mut s).await;
    scene.rejected_above(before).await;
    // After it, the message size; the body is never sent, so only the prefix is judged.
    let before = scene.rejected();
    let mut s = handshaken(&scene, NodeId::random()).await;
    let limit = scene.victim.node.config().max_message_size_bytes as u32;
    s.write_all(&(limit + 1).to_be_bytes()).await.unwrap();
    let started = Instant::now();
    let bye = closed(&mut s).await.expect("a Bye with the reason");
    assert!(bye.contains("frame size too big"), "{bye}");
    assert!(
        started.elapsed() < IO_TIMEOUT,
        "closed at once, not by a timeout"
    );
    scene.rejected_above(before).await;
    scene.still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_cut_in_the_middle_then_silence_times_out() {
    let scene = scene().await;
    let before = scene.rejected();
    let mut s = handshaken(&scene, NodeId::random()).await;
    s.write_all(&100u32.to_be_bytes()).await.unwrap();
    s.write_all(&[1u8; 10]).await.unwrap();
    let started = Instant::now();
    let bye = closed(&mut s).await.expect("a Bye with the reason");
    assert!(bye.contains("timed out"), "{bye}");
    // Dropped by the frame deadline, long before the idle timeout (5 min).
    assert!(
        started.elapsed() >= IO_TIMEOUT / 2,
        "{:?}",
        started.elapsed()
    );
    scene.rejected_above(before).await;
    scene.still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_of_the_wrong_type_for_the_state_are_refused() {
    let scene = scene().await;
    let me = NodeId::random();
    let push = Frame::Push {
        message: Message::Push {
            from: me,
            events: vec![],
        },
    };
    let before = scene.rejected();
    let mut s = scene.attacker().await;
    send(&mut s, &push).await;
    let bye = closed(&mut s).await.expect("a Bye with the reason");
    assert!(bye.contains("expected Hello, got Push"), "{bye}");
    scene.rejected_above(before).await;

    let before = scene.rejected();
    let mut s = handshaken(&scene, me).await;
    send(&mut s, &hello(me, common::ROOM, PROTOCOL_VERSION)).await;
    let bye = closed(&mut s).await.expect("a Bye with the reason");
    assert!(bye.contains("Hello after the handshake"), "{bye}");
    scene.rejected_above(before).await;

    // A message claiming another sender than the connection's Hello.
    let before = scene.rejected();
    let mut s = handshaken(&scene, me).await;
    let spoof = Frame::Push {
        message: Message::Push {
            from: scene.good.id(),
            events: vec![],
        },
    };
    send(&mut s, &spoof).await;
    let bye = closed(&mut s).await.expect("a Bye with the reason");
    assert!(bye.contains("on the connection of"), "{bye}");
    scene.rejected_above(before).await;
    scene.still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hellos_with_a_wrong_room_version_or_our_own_id_are_refused_with_the_reason() {
    let scene = scene().await;
    let mut exchanges = scene.victim.node.on_gossip_exchange();
    let cases = [
        (
            hello(NodeId::random(), "elsewhere", PROTOCOL_VERSION),
            "room",
        ),
        (
            hello(NodeId::random(), common::ROOM, PROTOCOL_VERSION + 1),
            "protocol version",
        ),
        (
            hello(scene.victim.id(), common::ROOM, PROTOCOL_VERSION),
            "our own node id",
        ),
    ];
    for (i, (frame, why)) in cases.into_iter().enumerate() {
        let before = scene.rejected();
        let mut s = scene.attacker_from([127, 0, 4, 1 + i as u8]).await;
        send(&mut s, &frame).await;
        let bye = closed(&mut s).await.expect("a Bye with the reason");
        assert!(bye.contains(why), "{bye}");
        scene.rejected_above(before).await;
        // The same reason reaches the node's exchange stream.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let r = tokio::time::timeout_at(deadline, exchanges.recv())
                .await
                .expect("refusal on the exchange stream")
                .unwrap();
            if !r.success && r.error.as_deref().is_some_and(|e| e.contains(why)) {
                break;
            }
        }
    }
    scene.still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_events_that_conflict_with_held_ones_are_counted_and_resolved_by_the_rule() {
    let scene = scene().await;
    let me = NodeId::random();
    let mut s = handshaken(&scene, me).await;
    let forgeries: Vec<Event> = scene.held.iter().take(2).map(forged).collect();
    let conflicts = scene.victim.node.stats().conflicts;
    send(
        &mut s,
        &Frame::Push {
            message: Message::Push {
                from: me,
                events: forgeries.clone(),
            },
        },
    )
    .await;
    eventually(PATIENCE, "conflicts counted", || async {
        scene.victim.node.stats().conflicts >= conflicts + forgeries.len() as u64
    })
    .await;
    scene.still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_response_with_conflicting_events_is_counted_and_resolved_by_the_rule() {
    let scene = scene().await;
    // A fake peer: the victim dials it, and its answer carries forged events.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = NodeId::random();
    let addr = listener.local_addr().unwrap();
    scene
        .victim
        .node
        .add_peer(gossip::transport::Peer::new(fake, addr.to_string()))
        .unwrap();
    let forgeries: Vec<Event> = scene.held.iter().map(forged).collect();
    let answer = forgeries.clone();
    let liar = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        assert!(matches!(recv(&mut s).await, Some(Frame::Hello(_))));
        let mut h = hello(fake, common::ROOM, PROTOCOL_VERSION);
        if let Frame::Hello(h) = &mut h {
            h.listen_port = addr.port();
        }
        send(&mut s, &h).await;
        // Claim to be one ahead on every forged origin, so the victim asks about them;
        // answer every digest with the forgeries, until the victim hangs up.
        let mut claims: Vec<(NodeId, u64)> = Vec::new();
        for e in &answer {
            match claims.iter_mut().find(|c| c.0 == e.origin) {
                Some(c) => c.1 = c.1.max(e.seq + 1),
                None => claims.push((e.origin, e.seq + 1)),
            }
        }
        claims.sort();
        while let Some(frame) = recv(&mut s).await {
            let Frame::Request { xid, message } = frame else {
                continue;
            };
            let message = match message {
                Message::Reconcile { .. } => Message::Reconcile {
                    from: fake,
                    ranges: vec![gossip::protocol::reconcile::Range {
                        upper: None,
                        body: gossip::protocol::reconcile::Body::Entries(claims.clone()),
                    }],
                },
                _ => Message::DigestResponse {
                    from: fake,
                    events: answer.clone(),
                    clock: VectorClock::new(),
                },
            };
            send(&mut s, &Frame::Response { xid, message }).await;
        }
    });
    let conflicts = scene.victim.node.stats().conflicts;
    let result = scene.victim.node.gossip_with(fake).await.unwrap();
    assert!(result.success, "{result:?}");
    assert!(
        scene.victim.node.stats().conflicts >= conflicts + forgeries.len() as u64,
        "{:?}",
        scene.victim.node.stats()
    );
    scene.victim.node.remove_peer(fake);
    liar.abort();
    scene.still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_speaks_is_dropped_after_the_io_timeout() {
    let scene = scene().await;
    let before = scene.rejected();
    let mut s = scene.attacker().await;
    let started = Instant::now();
    assert_eq!(
        closed(&mut s).await,
        None,
        "no Bye to a peer that never spoke"
    );
    assert!(
        started.elapsed() >= IO_TIMEOUT / 2,
        "{:?}",
        started.elapsed()
    );
    scene.rejected_above(before).await;
    scene.still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_connections_at_once_are_capped_and_the_node_keeps_working() {
    let scene = scene().await;
    // The good peer's link is up before the flood: it must keep working through it.
    assert!(
        scene
            .good
            .node
            .gossip_with(scene.victim.id())
            .await
            .unwrap()
            .success
    );
    let before = scene.rejected();
    let mut set = tokio::task::JoinSet::new();
    let addr = scene.victim.addr();
    for _ in 0..500 {
        set.spawn(async move {
            let Ok(mut s) = TcpStream::connect(addr).await else {
                return (true, None);
            };
            // Silent: either refused at once (EOF) or dropped after the I/O timeout.
            let started = Instant::now();
            let mut buf = [0u8; 64];
            let _ = timeout(PATIENCE, s.read(&mut buf)).await;
            (false, Some(started.elapsed()))
        });
    }
    // While the flood holds every inbound slot, the established link still serves both
    // ways, and the victim can still dial out.
    for _ in 0..3 {
        let r = scene
            .good
            .node
            .gossip_with(scene.victim.id())
            .await
            .unwrap();
        assert!(r.success, "{r:?}");
        let r = scene
            .victim
            .node
            .gossip_with(scene.good.id())
            .await
            .unwrap();
        assert!(r.success, "{r:?}");
    }
    let mut refused_fast = 0;
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            (true, _) => refused_fast += 1,
            (false, Some(d)) if d < IO_TIMEOUT / 2 => refused_fast += 1,
            _ => {}
        }
    }
    // At most 64 were held until the timeout; the rest were closed at once.
    assert!(refused_fast >= 500 - 64, "{refused_fast}");
    eventually(
        PATIENCE,
        "every flood connection refused and counted",
        || async { scene.rejected() >= before + 500 },
    )
    .await;
    scene.still_healthy().await;
}
