//! Private rooms and unforgeable events, end to end over TCP on 127.0.0.1: room secrets
//! keep rooms apart, forged events are refused by every node, and the wire carries no
//! plaintext.

mod tcp_common;
use tcp_common as common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{TcpNode, eventually, fast_config, tcp_config};
use gossip::auth::{NodeIdentity, RoomKey};
use gossip::node::{ExchangeResult, GossipNode};
use gossip::store::{EventStore, FileEventStore, MemoryEventStore, StoreError};
use gossip::transport::tcp::Encryption;
use gossip::transport::{Peer, TcpTransport, Transport};
use gossip::{Event, Message, NodeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

const PATIENCE: Duration = Duration::from_secs(20);

/// A node that signs and verifies, with its transport encrypted as `encryption` says.
async fn signed_node(encryption: Encryption) -> TcpNode {
    let identity = NodeIdentity::generate();
    let g = fast_config(identity.node_id());
    let mut t = tcp_config(&g, 0);
    t.encryption = encryption;
    t.identity = Some(identity.clone());
    let transport = Arc::new(TcpTransport::bind(t).await.expect("bind"));
    let store = Arc::new(MemoryEventStore::new());
    let node = GossipNode::with_identity(
        g,
        store.clone() as Arc<dyn EventStore>,
        transport.clone() as Arc<dyn Transport>,
        identity,
    )
    .expect("node");
    node.start().await.expect("start");
    TcpNode {
        node,
        transport,
        store,
    }
}

fn psk(secret: &str) -> Encryption {
    Encryption::Noise {
        psk: Some(RoomKey::derive("lobby", secret.as_bytes()).unwrap().bytes()),
    }
}

fn connect(a: &TcpNode, b: &TcpNode) {
    a.node.add_peer(b.peer()).unwrap();
    b.node.add_peer(a.peer()).unwrap();
}

async fn holds(n: &TcpNode, origin: NodeId, seq: u64) -> bool {
    n.node.vector_clock().await.unwrap().get(&origin) >= seq
}

/// The failed results a stream has collected so far.
fn failures(rx: &mut broadcast::Receiver<ExchangeResult>, into: &mut Vec<String>) {
    while let Ok(r) = rx.try_recv() {
        if let (false, Some(e)) = (r.success, r.error) {
            into.push(e);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_with_one_name_and_different_secrets_never_exchange_an_event() {
    let a = signed_node(psk("apple")).await;
    let a2 = signed_node(psk("apple")).await;
    let b = signed_node(psk("banana")).await;
    let mut a_results = a.node.on_gossip_exchange();
    let mut b_results = b.node.on_gossip_exchange();
    connect(&a, &a2);
    connect(&a, &b);
    connect(&a2, &b);
    a.node.create_event(&b"for apples only"[..]).await.unwrap();
    b.node.create_event(&b"for bananas only"[..]).await.unwrap();
    // Same secret: the event arrives, so the silence across secrets below is not an idle
    // network.
    eventually(PATIENCE, "a2 gets a's event", || holds(&a2, a.id(), 2)).await;
    let (mut a_errors, mut b_errors) = (Vec::new(), Vec::new());
    eventually(PATIENCE, "both sides see failed handshakes", || {
        failures(&mut a_results, &mut a_errors);
        failures(&mut b_results, &mut b_errors);
        let noise = |v: &Vec<String>| {
            v.iter()
                .any(|e| e.contains("Noise handshake failed") || e.contains("room secret"))
        };
        std::future::ready(noise(&a_errors) && noise(&b_errors))
    })
    .await;
    assert!(!holds(&b, a.id(), 1).await, "an apple event crossed");
    assert!(!holds(&a, b.id(), 1).await, "a banana event crossed");
    assert!(!holds(&a2, b.id(), 1).await, "a banana event crossed");
    assert_eq!(
        b.store.count().await.unwrap(),
        2,
        "b holds only its own events"
    );
    assert!(a.node.stats().rejected_inbound + b.node.stats().rejected_inbound > 0);
    // Failures are handshake failures, not frames of garbage.
    for e in a_errors.iter().chain(&b_errors) {
        assert!(!e.contains("malformed"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_in_an_open_room_cannot_join_a_private_one() {
    let private = signed_node(psk("apple")).await;
    let open = signed_node(Encryption::Noise { psk: None }).await;
    connect(&private, &open);
    open.node.create_event(&b"hi"[..]).await.unwrap();
    private.node.create_event(&b"secret"[..]).await.unwrap();
    let mut errs = Vec::new();
    let mut rx = private.node.on_gossip_exchange();
    eventually(
        PATIENCE,
        "the private node reports failed handshakes",
        || {
            failures(&mut rx, &mut errs);
            std::future::ready(errs.iter().any(|e| e.contains("Noise")))
        },
    )
    .await;
    assert!(!holds(&open, private.id(), 1).await);
    assert!(!holds(&private, open.id(), 1).await);
}

fn forged(mut e: Event, text: &str) -> Event {
    e.payload = Bytes::copy_from_slice(text.as_bytes());
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_events_are_refused_by_every_node_and_honest_ones_keep_flowing() {
    let alice = signed_node(psk("k")).await;
    let mallory = signed_node(psk("k")).await;
    let v1 = signed_node(psk("k")).await;
    let v2 = signed_node(psk("k")).await;
    // Alice talks only to Mallory; the victims hear of Alice only through Mallory.
    connect(&alice, &mallory);
    connect(&mallory, &v1);
    connect(&mallory, &v2);
    connect(&v1, &v2);
    let mut v1_results = v1.node.on_gossip_exchange();
    // Mallory needs Alice's real events before the victims have them, so it stops
    // gossiping with the victims until it has forged.
    v1.node.remove_peer(mallory.id());
    v2.node.remove_peer(mallory.id());
    mallory.node.remove_peer(v1.id());
    mallory.node.remove_peer(v2.id());
    alice.node.create_event(&b"pay bob 5"[..]).await.unwrap();
    eventually(PATIENCE, "mallory has alice's event", || {
        holds(&mallory, alice.id(), 2)
    })
    .await;
    let real = mallory.store.events_since(alice.id(), 0, 10).await.unwrap();
    assert_eq!(real.len(), 2);
    let identity_event = real[0].clone();
    // 1. The relayed text rewritten, Alice's signature kept.
    let rewritten = forged(real[1].clone(), "pay mallory 500");
    // 2. A new event in Alice's name, signed with Mallory's own key.
    let mallory_key = NodeIdentity::generate();
    let mut own_sig = forged(real[1].clone(), "alice says hi");
    own_sig.seq = 3;
    mallory_key.sign_event(&mut own_sig);
    // 3. An event of an origin whose key nobody has seen (no seq 1).
    let stranger = NodeIdentity::generate();
    let mut orphan = forged(real[1].clone(), "who am i");
    orphan.origin = stranger.node_id();
    stranger.sign_event(&mut orphan);
    let push = Message::Push {
        from: mallory.id(),
        events: vec![identity_event, rewritten, own_sig, orphan.clone()],
    };
    for v in [&v1, &v2] {
        mallory
            .transport
            .send(&v.peer(), push.clone())
            .await
            .unwrap();
    }
    for v in [&v1, &v2] {
        eventually(PATIENCE, "the victim refuses the 3 forgeries", || async {
            // Two fail their signature check; the orphan cannot be checked (no key).
            let st = v.node.stats();
            st.rejected_events >= 2 && st.key_unknown_events >= 1
        })
        .await;
        // None of them was stored. (The victim may already hold Alice's real event: a push
        // makes Mallory a known peer again, and rounds then fetch it honestly.)
        let held = v.store.events_since(alice.id(), 0, 10).await.unwrap();
        assert!(held.len() <= 2, "{held:?}");
        if let Some(e) = held.get(1) {
            assert_eq!(&e.payload[..], b"pay bob 5");
        }
        assert!(!holds(v, stranger.node_id(), 1).await);
    }
    let mut errs = Vec::new();
    failures(&mut v1_results, &mut errs);
    assert!(errs.iter().any(|e| e.contains("rejected")), "{errs:?}");
    // Honest traffic: Mallory rejoins and relays Alice's real event; Mallory's own events
    // flow too.
    mallory.node.add_peer(v1.peer()).unwrap();
    mallory
        .node
        .create_event(&b"honest mallory"[..])
        .await
        .unwrap();
    for v in [&v1, &v2] {
        eventually(PATIENCE, "the honest events arrive", || async {
            holds(v, alice.id(), 2).await && holds(v, mallory.id(), 2).await
        })
        .await;
        let got = v.store.events_since(alice.id(), 1, 1).await.unwrap();
        assert_eq!(&got[0].payload[..], b"pay bob 5");
    }
}

/// Forwards one TCP connection to `target` and records every byte it carries.
async fn recording_proxy(
    target: std::net::SocketAddr,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tape = Arc::new(Mutex::new(Vec::new()));
    let t = tape.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(target).await else {
                continue;
            };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            tokio::spawn(pipe(ri, wo, t.clone()));
            tokio::spawn(pipe(ro, wi, t.clone()));
        }
    });
    (addr, tape)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    tape: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tape.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Sends one message from a to b through a recording proxy; returns what the wire saw.
async fn captured(encryption: Encryption, text: &str) -> Vec<u8> {
    let a = signed_node(encryption.clone()).await;
    let b = signed_node(encryption).await;
    let (proxy, tape) = recording_proxy(b.addr()).await;
    a.node
        .add_peer(Peer::new(b.id(), proxy.to_string()))
        .unwrap();
    a.node
        .create_event(Bytes::copy_from_slice(text.as_bytes()))
        .await
        .unwrap();
    eventually(PATIENCE, "b gets the message through the proxy", || {
        holds(&b, a.id(), 2)
    })
    .await;
    a.node.stop().await;
    b.node.stop().await;
    tape.lock().unwrap().clone()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_stream_holds_no_plaintext_of_a_message() {
    let text = "meet at the north gate 0417";
    let clear = captured(Encryption::Plaintext, text).await;
    // The control: without Noise the same capture does show the text, so the search works.
    assert!(contains(&clear, text.as_bytes()));
    assert!(contains(&clear, b"test-room"));
    let sealed = captured(psk("k"), text).await;
    assert!(sealed.len() > text.len());
    assert!(!contains(&sealed, text.as_bytes()));
    assert!(
        !contains(&sealed, b"test-room"),
        "the Hello is encrypted too"
    );
    let open = captured(Encryption::Noise { psk: None }, text).await;
    assert!(!contains(&open, text.as_bytes()));
}

#[cfg(unix)]
#[test]
fn a_store_whose_identity_key_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = FileEventStore::open(dir.path(), Default::default()).unwrap();
    let id = store.node_id();
    rt.block_on(store.close()).unwrap();
    let key = dir.path().join(gossip::auth::IDENTITY_KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = FileEventStore::open(dir.path(), Default::default()).unwrap_err();
    assert!(matches!(err, StoreError::Identity(_)), "{err:?}");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let again = FileEventStore::open(dir.path(), Default::default()).unwrap();
    assert_eq!(again.node_id(), id);
    rt.block_on(again.close()).unwrap();
}

/// A large batch is verified off the runtime, on several threads; one bad event in its
/// middle is refused alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_forgery_inside_a_large_batch_is_refused_alone() {
    use gossip::node::GossipConfig;
    use gossip::transport::MemoryNetwork;
    let net = MemoryNetwork::new(7);
    let signed = |identity: NodeIdentity| {
        let id = identity.node_id();
        GossipNode::with_identity(
            GossipConfig::new(id),
            Arc::new(MemoryEventStore::new()),
            Arc::new(net.transport(id, id.to_string())),
            identity,
        )
        .unwrap()
    };
    let alice = signed(NodeIdentity::generate());
    let bob = signed(NodeIdentity::generate());
    let m_id = NodeId::random();
    let mallory = GossipNode::new(
        GossipConfig::new(m_id),
        Arc::new(MemoryEventStore::new()),
        Arc::new(net.transport(m_id, "m")),
    )
    .unwrap();
    for n in [&alice, &bob, &mallory] {
        n.start().await.unwrap();
    }
    for i in 0..299 {
        alice.create_event(format!("event {i}")).await.unwrap();
    }
    let mut events = alice
        .store()
        .events_since(alice.id(), 0, 1000)
        .await
        .unwrap();
    assert_eq!(events.len(), 300);
    events[150].payload = Bytes::from_static(b"tampered");
    let bob_peer = Peer::new(bob.id(), bob.id().to_string());
    mallory
        .transport()
        .send(&bob_peer, Message::Push { from: m_id, events })
        .await
        .unwrap();
    eventually(PATIENCE, "bob decides the batch", || async {
        bob.stats().rejected_events + bob.stats().events_received >= 300
    })
    .await;
    assert_eq!(bob.stats().rejected_events, 1);
    assert_eq!(bob.stats().events_received, 299);
    assert_eq!(bob.vector_clock().await.unwrap().get(&alice.id()), 150);
    for n in [&alice, &bob, &mallory] {
        n.stop().await;
    }
}

/// A node that lost its events but kept its key recreates the very identity event its
/// peers hold (no conflict), and gets its old events back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_events_but_kept_its_key_rejoins_without_conflict() {
    use gossip::node::GossipConfig;
    use gossip::transport::MemoryNetwork;
    let net = MemoryNetwork::new(11);
    let node = |identity: &NodeIdentity| {
        let id = identity.node_id();
        GossipNode::with_identity(
            GossipConfig::new(id),
            Arc::new(MemoryEventStore::new()),
            Arc::new(net.transport(id, id.to_string())),
            identity.clone(),
        )
        .unwrap()
    };
    let (a_key, b_key) = (NodeIdentity::generate(), NodeIdentity::generate());
    let a = node(&a_key);
    let b = node(&b_key);
    a.start().await.unwrap();
    b.start().await.unwrap();
    a.add_peer(Peer::new(b.id(), b.id().to_string())).unwrap();
    a.create_event(&b"before the crash"[..]).await.unwrap();
    assert!(a.gossip_with(b.id()).await.unwrap().success);
    // The push of phase 3 is one-way: b stores it a moment later.
    eventually(PATIENCE, "b holds a's events", || async {
        b.vector_clock().await.unwrap().get(&a.id()) == 2
    })
    .await;
    a.stop().await;
    let a2 = node(&a_key);
    a2.start().await.unwrap();
    a2.add_peer(Peer::new(b.id(), b.id().to_string())).unwrap();
    assert!(a2.gossip_with(b.id()).await.unwrap().success);
    assert_eq!(a2.vector_clock().await.unwrap().get(&a.id()), 2);
    assert_eq!(b.stats().conflicts, 0);
    assert_eq!(a2.stats().conflicts, 0);
    // Its own event may also come back by b's push, whose receipt updates the next seq a
    // moment after the store holds it.
    eventually(PATIENCE, "a2 steps past its old seqs", || async {
        a2.next_seq() == 3
    })
    .await;
    assert_eq!(a2.create_event(&b"after"[..]).await.unwrap().seq, 3);
    a2.stop().await;
    b.stop().await;
}
