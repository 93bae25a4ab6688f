//! The TCP transport between real nodes on 127.0.0.1: connection reuse, concurrent
//! exchanges, disconnection, backoff, probing, handshake refusal, idle close, counters.

mod tcp_common;
use tcp_common as common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{TcpNode, eventually, start_node};
use gossip::NodeId;
use gossip::node::PeerState;
use gossip::store::EventStore;
use gossip::transport::{Inbound, Peer, TcpConfig, TcpTransport, Transport, TransportError};
use tokio::sync::mpsc;

/// A node that only gossips when told to, so connection counts are deterministic: its
/// ticker's first (immediate) round is over before it learns any peer.
async fn quiet_node_with(tweak: impl FnOnce(&mut TcpConfig)) -> TcpNode {
    let n = start_node(|g, t| {
        g.gossip_interval = Duration::from_secs(30);
        g.gossip_timeout = Duration::from_secs(31);
        g.enable_anti_entropy = false;
        t.io_timeout = Duration::from_secs(5);
        tweak(t);
    })
    .await;
    eventually(Duration::from_secs(10), "first round done", || async {
        n.node.stats().rounds >= 1
    })
    .await;
    n
}

async fn quiet_node() -> TcpNode {
    quiet_node_with(|_| {}).await
}

async fn pair() -> (TcpNode, TcpNode) {
    let a = quiet_node().await;
    let b = quiet_node().await;
    a.node.add_peer(b.peer()).unwrap();
    b.node.add_peer(a.peer()).unwrap();
    (a, b)
}

/// A free port on 127.0.0.1 that nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_reuse_one_connection_in_both_directions() {
    let (a, b) = pair().await;
    // The first contact opens the link; without it, the eager pushes of the two first
    // events would dial each other at once (two links, which is allowed).
    assert!(a.node.gossip_with(b.id()).await.unwrap().success);
    for i in 0..5 {
        a.node.create_event(format!("a{i}")).await.unwrap();
        b.node.create_event(format!("b{i}")).await.unwrap();
        assert!(a.node.gossip_with(b.id()).await.unwrap().success);
        assert!(b.node.gossip_with(a.id()).await.unwrap().success);
    }
    assert_eq!(a.transport.connection_count(), 1);
    assert_eq!(b.transport.connection_count(), 1);
    assert_eq!(
        a.store.clock().await.unwrap(),
        b.store.clock().await.unwrap()
    );
    assert_eq!(a.store.count().await.unwrap(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exchanges_both_ways_on_one_connection_all_succeed() {
    let (a, b) = pair().await;
    assert!(a.node.gossip_with(b.id()).await.unwrap().success);
    for i in 0..50 {
        a.node.create_event(format!("a{i}")).await.unwrap();
        b.node.create_event(format!("b{i}")).await.unwrap();
    }
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (na, nb, ib, ia) = (a.node.clone(), b.node.clone(), b.id(), a.id());
        set.spawn(async move { na.gossip_with(ib).await.unwrap() });
        set.spawn(async move { nb.gossip_with(ia).await.unwrap() });
    }
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        assert!(r.success, "{r:?}");
    }
    assert_eq!(a.transport.connection_count(), 1);
    assert_eq!(b.transport.connection_count(), 1);
    assert_eq!(a.store.count().await.unwrap(), 100);
    assert_eq!(b.store.count().await.unwrap(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_peer_is_marked_offline_without_waiting_for_exchanges() {
    let (a, b) = pair().await;
    assert!(a.node.gossip_with(b.id()).await.unwrap().success);
    assert_eq!(a.node.peer(b.id()).unwrap().state, PeerState::Alive);
    b.node.stop().await;
    eventually(Duration::from_secs(5), "b offline at a", || async {
        a.node.peer(b.id()).unwrap().state == PeerState::Offline
    })
    .await;
    assert_eq!(a.transport.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnection_is_reported_exactly_once() {
    let b = quiet_node().await;
    let a = TcpTransport::bind(TcpConfig::new(
        NodeId::random(),
        common::ROOM,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    ))
    .await
    .unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    a.start(tx).await.unwrap();
    let peer = a.probe(b.addr()).await.unwrap();
    assert_eq!(peer.id, b.id());
    // b learns of a only through a's Hello: make it dial back too, so two connections
    // (one per direction) both break when b stops.
    b.node
        .add_peer(Peer::new(a.config().node_id, a.local_addr()))
        .unwrap();
    let _ = b.transport.probe(a.socket_addr()).await.unwrap();
    b.node.stop().await;
    let mut disconnected = 0;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        seen.push(format!("{item:?}"));
        if let Inbound::Disconnected { peer, reason } = item {
            assert_eq!(peer, b.id());
            assert!(reason.contains("node stopping"), "{reason}");
            disconnected += 1;
        }
    }
    assert_eq!(disconnected, 1, "{seen:#?}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_dials_back_off_and_requests_inside_the_window_fail_fast() {
    let a = start_node(|_, t| {
        t.backoff_base = Duration::from_secs(20);
        t.backoff_max = Duration::from_secs(20);
    })
    .await;
    let ghost = Peer::new(NodeId::random(), format!("127.0.0.1:{}", dead_port()));
    a.node.add_peer(ghost.clone()).unwrap();
    let first = a.node.gossip_with(ghost.id).await.unwrap();
    assert!(!first.success);
    assert!(
        first.error.as_deref().unwrap().contains("cannot reach"),
        "{first:?}"
    );
    let started = std::time::Instant::now();
    let err = a
        .transport
        .request(
            &ghost,
            gossip::Message::Digest {
                from: a.id(),
                entries: Vec::new(),
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(500));
    match err {
        TransportError::Unreachable { reason, .. } => {
            assert!(reason.contains("failed attempt"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let stats = a.transport.peer_stats();
    let link = stats.iter().find(|s| s.peer == ghost.id).unwrap();
    assert!(link.last_error.is_some());
    assert_eq!(link.connections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_learns_the_peer_and_its_connection_is_reused() {
    let a = quiet_node().await;
    let b = quiet_node().await;
    let peer = a.transport.probe(b.addr()).await.unwrap();
    assert_eq!(peer, b.peer());
    a.node.add_peer(peer).unwrap();
    assert!(a.node.gossip_with(b.id()).await.unwrap().success);
    assert_eq!(a.transport.connection_count(), 1);
    // b learned a's listen address from the Hello: it can gossip back on the same link.
    eventually(Duration::from_secs(5), "b knows a", || async {
        b.node.peer(a.id()).is_some_and(|p| p.addr == a.peer().addr)
    })
    .await;
    assert!(b.node.gossip_with(a.id()).await.unwrap().success);
    assert_eq!(b.transport.connection_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_room_is_refused_with_the_reason_on_both_sides() {
    let a = start_node(|_, t| t.room = "other-room".into()).await;
    let b = quiet_node().await;
    let mut exchanges = b.node.on_gossip_exchange();
    let err = a.transport.probe(b.addr()).await.unwrap_err();
    match &err {
        TransportError::Handshake(reason) => assert!(reason.contains("room"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let refused = tokio::time::timeout(Duration::from_secs(5), exchanges.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!refused.success);
    assert!(refused.error.unwrap().contains("other-room"));
    assert_eq!(b.node.stats().rejected_inbound, 1);
    assert_eq!(b.transport.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_without_marking_the_peer_offline() {
    let a = quiet_node_with(|t| t.idle_timeout = Duration::from_millis(300)).await;
    let b = quiet_node().await;
    a.node.add_peer(b.peer()).unwrap();
    assert!(a.node.gossip_with(b.id()).await.unwrap().success);
    assert_eq!(a.transport.connection_count(), 1);
    eventually(Duration::from_secs(5), "idle connection closed", || async {
        a.transport.connection_count() == 0 && b.transport.connection_count() == 0
    })
    .await;
    assert_eq!(b.node.peer(a.id()).unwrap().state, PeerState::Alive);
    assert_eq!(a.node.peer(b.id()).unwrap().state, PeerState::Alive);
    // The next exchange simply dials again.
    assert!(a.node.gossip_with(b.id()).await.unwrap().success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_counters_add_up_on_both_ends() {
    let (a, b) = pair().await;
    // One connection first, so the eager pushes below cannot race a second dial.
    assert!(a.node.gossip_with(b.id()).await.unwrap().success);
    for i in 0..20 {
        a.node.create_event(vec![b'x'; 100 + i]).await.unwrap();
    }
    assert!(b.node.gossip_with(a.id()).await.unwrap().success);
    assert!(a.node.gossip_with(b.id()).await.unwrap().success);
    let find = |t: &Arc<TcpTransport>, id: NodeId| {
        t.peer_stats().into_iter().find(|s| s.peer == id).unwrap()
    };
    // Pushes are one-way: wait until b has read everything a wrote.
    eventually(Duration::from_secs(5), "counters agree", || async {
        let (ab, ba) = (find(&a.transport, b.id()), find(&b.transport, a.id()));
        ab.bytes_out == ba.bytes_in && ba.bytes_out == ab.bytes_in && ab.frames_out == ba.frames_in
    })
    .await;
    let ab = find(&a.transport, b.id());
    // Hello, a response, a request; and at least 20 x 100 payload bytes went out.
    assert!(ab.frames_out >= 3, "{ab:?}");
    assert!(ab.bytes_out > 2000, "{ab:?}");
    assert!(ab.last_rtt.is_some());
    assert!(ab.connected_since.is_some());
    assert_eq!(ab.connections, 1);
    assert_eq!(ab.addr, b.peer().addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_is_idempotent_and_a_stopped_transport_restarts_on_its_port() {
    let (a, b) = pair().await;
    assert!(a.node.gossip_with(b.id()).await.unwrap().success);
    let port = b.addr().port();
    b.node.stop().await;
    b.transport.stop().await;
    assert_eq!(b.transport.connection_count(), 0);
    b.node.start().await.unwrap();
    assert_eq!(b.addr().port(), port);
    eventually(Duration::from_secs(10), "a reaches b again", || async {
        a.node.gossip_with(b.id()).await.unwrap().success
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_refused_by_a_full_inbound_cap_fails_at_once() {
    let b = quiet_node_with(|t| t.max_inbound_connections = 1).await;
    let a = quiet_node().await;
    // A silent connection takes b's only inbound slot (for b's 5 s I/O timeout); the
    // listener accepts in order, so it is served before a's dial.
    let _squatter = tokio::net::TcpStream::connect(b.addr()).await.unwrap();
    let started = std::time::Instant::now();
    let err = a.transport.probe(b.addr()).await.unwrap_err();
    // Closed at once by b (EOF or reset, depending on whether our Hello was unread), not
    // left to time out.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, TransportError::Closed(_) | TransportError::Io(_)),
        "{err:?}"
    );
    eventually(Duration::from_secs(5), "b counts the refusal", || async {
        b.node.stats().rejected_inbound >= 1
    })
    .await;
}

/// A TCP proxy to `target` that can be frozen: while frozen it moves no byte either way
/// (a cut cable that TCP does not notice). Counts the connections it accepted.
struct FreezableProxy {
    addr: SocketAddr,
    frozen: Arc<std::sync::atomic::AtomicBool>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl FreezableProxy {
    async fn start(target: SocketAddr) -> FreezableProxy {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (f, n) = (frozen.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                n.fetch_add(1, Ordering::SeqCst);
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (ir, iw) = inbound.into_split();
                let (or, ow) = outbound.into_split();
                tokio::spawn(pipe(ir, ow, f.clone()));
                tokio::spawn(pipe(or, iw, f.clone()));
            }
        });
        FreezableProxy {
            addr,
            frozen,
            accepted,
        }
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let thawed = || async {
        while frozen.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        thawed().await;
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Bytes read just as the freeze began wait for the thaw too.
        thawed().await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_times_out_drops_its_connection_and_the_next_one_redials() {
    let a = quiet_node().await;
    let b = quiet_node().await;
    let proxy = FreezableProxy::start(b.addr()).await;
    let via = Peer::new(b.id(), proxy.addr.to_string());
    let digest = || gossip::Message::Digest {
        from: a.id(),
        entries: Vec::new(),
    };
    let patient = Duration::from_secs(10);
    a.transport.request(&via, digest(), patient).await.unwrap();
    assert_eq!(proxy.accepted(), 1);
    // The cable is cut: the request times out.
    proxy.freeze(true);
    let err = a
        .transport
        .request(&via, digest(), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Timeout(_)), "{err:?}");
    // Healed: the next request does not wait on the dead connection, it dials anew.
    proxy.freeze(false);
    a.transport.request(&via, digest(), patient).await.unwrap();
    assert_eq!(proxy.accepted(), 2, "the timed-out connection was reused");
}

/// The `Hello` a transport answers a raw plaintext dialer with.
async fn hello_of(addr: SocketAddr) -> gossip::transport::codec::Hello {
    use gossip::transport::codec::{Frame, Hello, PROTOCOL_VERSION, decode_frame, encode_frame};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let ours = Frame::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        node_id: NodeId::random(),
        room: "hellos".into(),
        listen_port: 9,
        name: "dialer".into(),
        auth: None,
    });
    let body = encode_frame(&ours, 1 << 20).unwrap();
    let mut wire = (body.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&body);
    s.write_all(&wire).await.unwrap();
    let mut len = [0u8; 4];
    let patience = Duration::from_secs(15);
    tokio::time::timeout(patience, s.read_exact(&mut len))
        .await
        .unwrap()
        .unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    tokio::time::timeout(patience, s.read_exact(&mut body))
        .await
        .unwrap()
        .unwrap();
    match decode_frame(&body, 1 << 20).unwrap() {
        Frame::Hello(h) => h,
        other => panic!("not a Hello: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_handshakes_give_the_name_set_while_running() {
    let mut config = TcpConfig::new(NodeId::random(), "hellos", "127.0.0.1:0".parse().unwrap());
    config.name = "cy".into();
    config.encryption = gossip::transport::tcp::Encryption::Plaintext;
    let t = TcpTransport::bind(config).await.unwrap();
    let (tx, _rx) = mpsc::channel(64);
    t.start(tx).await.unwrap();
    let addr = t.socket_addr();
    assert_eq!(hello_of(addr).await.name, "cy");
    // A /nick while running: the next connection's Hello has the new name.
    t.set_name("cyrus");
    assert_eq!(t.name(), "cyrus");
    assert_eq!(hello_of(addr).await.name, "cyrus");
    assert_eq!(
        t.config().name,
        "cy",
        "the config keeps the name bound with"
    );
    t.stop().await;
}
