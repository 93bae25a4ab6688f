//! Ephemeral notes between real nodes over the memory transport: signed, delivered once,
//! relayed within their hops, refused when forged, never stored.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gossip::NodeId;
use gossip::auth::NodeIdentity;
use gossip::node::{GossipConfig, GossipNode};
use gossip::protocol::{Ephemeral, Message, ReceivedEphemeral};
use gossip::store::MemoryEventStore;
use gossip::transport::{MemoryNetwork, Peer};
use tokio::sync::broadcast;

fn signed(net: &MemoryNetwork) -> GossipNode {
    let identity = NodeIdentity::generate();
    let id = identity.node_id();
    GossipNode::with_identity(
        GossipConfig::new(id),
        Arc::new(MemoryEventStore::new()),
        Arc::new(net.transport(id, id.to_string())),
        identity,
    )
    .unwrap()
}

fn peer_of(n: &GossipNode) -> Peer {
    Peer::new(n.id(), n.id().to_string())
}

fn link(a: &GossipNode, b: &GossipNode) {
    a.add_peer(peer_of(b)).unwrap();
    b.add_peer(peer_of(a)).unwrap();
}

/// The next note on `rx`, within a generous deadline.
async fn next(rx: &mut broadcast::Receiver<ReceivedEphemeral>) -> Option<ReceivedEphemeral> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .ok()
        .and_then(|r| r.ok())
}

/// Waits until `n` holds `origin`'s identity event (seq 1).
async fn holds_identity(n: &GossipNode, origin: NodeId, via: NodeId) {
    for _ in 0..200 {
        if n.vector_clock().await.unwrap().get(&origin) >= 1 {
            return;
        }
        let _ = n.gossip_with(via).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{origin}'s identity never arrived");
}

/// Waits until `f` holds, within a generous deadline.
async fn until(mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition never held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_note_reaches_a_peer_and_its_peer_once_and_is_never_stored() {
    let net = MemoryNetwork::new(3);
    let (alice, bob, carol) = (signed(&net), signed(&net), signed(&net));
    for n in [&alice, &bob, &carol] {
        n.start().await.unwrap();
    }
    // alice - bob - carol: carol is not alice's peer.
    link(&alice, &bob);
    link(&bob, &carol);
    holds_identity(&bob, alice.id(), alice.id()).await;
    holds_identity(&carol, alice.id(), bob.id()).await;
    let clock_before = carol.vector_clock().await.unwrap();
    let stored_before = carol.store().stats().await.unwrap().total_events;
    let mut at_bob = bob.on_ephemeral();
    let mut at_carol = carol.on_ephemeral();
    let sent = alice.broadcast_ephemeral(&b"typing"[..], 1).await.unwrap();
    assert_eq!(sent, 1, "alice has one direct peer");
    let got = next(&mut at_bob).await.expect("bob hears it");
    assert_eq!((got.origin, got.from), (alice.id(), alice.id()));
    assert_eq!(got.payload, Bytes::from_static(b"typing"));
    let got = next(&mut at_carol)
        .await
        .expect("carol hears it through bob");
    assert_eq!((got.origin, got.from), (alice.id(), bob.id()));
    // bob relayed it to carol only (not back to alice), and nobody stored anything.
    assert_eq!(bob.stats().ephemerals_relayed, 1);
    assert_eq!(carol.vector_clock().await.unwrap(), clock_before);
    assert_eq!(
        carol.store().stats().await.unwrap().total_events,
        stored_before
    );
    for n in [&alice, &bob, &carol] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_note_and_one_from_an_unknown_origin_are_refused() {
    let net = MemoryNetwork::new(5);
    let (alice, bob) = (signed(&net), signed(&net));
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
    link(&alice, &bob);
    bob.add_peer(Peer::new(m_id, "m")).unwrap();
    holds_identity(&bob, alice.id(), alice.id()).await;
    let mut at_bob = bob.on_ephemeral();
    let note = |origin: NodeId, id: u128, sig: &'static [u8]| Message::Ephemeral {
        from: m_id,
        ephemeral: Ephemeral {
            origin,
            id: uuid::Uuid::from_u128(id),
            created_at_ms: gossip::node::now_ms(),
            hops: 1,
            payload: Bytes::from_static(b"alice is away"),
            sig: Bytes::from_static(sig),
        },
    };
    let to_bob = peer_of(&bob);
    // In alice's name with a bad signature, unsigned, and from an origin bob never met.
    for m in [
        note(alice.id(), 1, &[7u8; 64]),
        note(alice.id(), 2, b""),
        note(NodeId::random(), 3, &[7u8; 64]),
    ] {
        mallory.transport().send(&to_bob, m).await.unwrap();
    }
    until(|| bob.stats().ephemerals_refused >= 3).await;
    assert_eq!(bob.stats().ephemerals_refused, 3);
    assert_eq!(bob.stats().ephemerals_received, 0);
    assert!(
        at_bob.try_recv().is_err(),
        "nothing forged reached the stream"
    );
    // alice's own note still passes.
    alice.broadcast_ephemeral(&b"here"[..], 0).await.unwrap();
    let got = next(&mut at_bob).await.expect("the genuine note");
    assert_eq!(got.payload, Bytes::from_static(b"here"));
    for n in [&alice, &bob, &mallory] {
        n.stop().await;
    }
}
