//! A single node and pairs of nodes: lifecycle, event creation, peers, streams, errors.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use gossip::NodeId;
use gossip::node::{GossipConfig, GossipError, GossipNode, PeerState};
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::{MemoryNetwork, Peer};

fn solo(net: &MemoryNetwork, config: GossipConfig) -> (GossipNode, Arc<MemoryEventStore>) {
    let store = Arc::new(MemoryEventStore::new());
    let id = config.node_id;
    let node = GossipNode::new(config, store.clone(), Arc::new(net.transport(id, "solo"))).unwrap();
    (node, store)
}

#[tokio::test]
async fn start_and_stop_are_idempotent_and_creation_needs_a_started_node() {
    let net = MemoryNetwork::new(1);
    let (node, _) = solo(&net, fast_config(NodeId::random()));
    assert!(matches!(
        node.create_event(&b"x"[..]).await,
        Err(GossipError::NotStarted)
    ));
    node.start().await.unwrap();
    node.start().await.unwrap();
    assert!(node.is_started());
    node.stop().await;
    node.stop().await;
    assert!(!node.is_started());
    assert!(matches!(node.gossip().await, Err(GossipError::NotStarted)));
}

#[tokio::test]
async fn own_events_get_seqs_1_then_2_and_a_growing_hlc() {
    let net = MemoryNetwork::new(1);
    let (node, store) = solo(&net, fast_config(NodeId::random()));
    node.start().await.unwrap();
    let mut created = node.on_event_created();
    let a = node.create_event(&b"one"[..]).await.unwrap();
    let b = node.create_event(&b"two"[..]).await.unwrap();
    assert_eq!((a.seq, b.seq), (1, 2));
    assert!(b.hlc > a.hlc);
    assert_eq!(a.origin, node.id());
    assert_eq!(created.recv().await.unwrap(), a);
    assert_eq!(created.recv().await.unwrap(), b);
    assert_eq!(store.count().await.unwrap(), 2);
    assert_eq!(node.vector_clock().await.unwrap().get(&node.id()), 2);
    assert_eq!(node.stats().events_created, 2);
    node.stop().await;
}

#[tokio::test]
async fn empty_and_oversized_payloads_are_refused_at_creation() {
    let net = MemoryNetwork::new(1);
    let mut config = fast_config(NodeId::random());
    config.max_message_size_bytes = 16 * 1024;
    let (node, store) = solo(&net, config);
    node.start().await.unwrap();
    assert!(matches!(
        node.create_event(Bytes::new()).await,
        Err(GossipError::EmptyPayload)
    ));
    let err = node.create_event(vec![0u8; 16 * 1024]).await.unwrap_err();
    assert!(
        matches!(err, GossipError::EventTooLarge { limit: 8192, .. }),
        "{err}"
    );
    // The refused event consumed no seq.
    assert_eq!(node.create_event(vec![0u8; 1000]).await.unwrap().seq, 1);
    assert_eq!(store.count().await.unwrap(), 1);
    node.stop().await;
}

#[tokio::test]
async fn peers_are_added_and_removed_with_streams() {
    let net = MemoryNetwork::new(1);
    let (node, _) = solo(&net, fast_config(NodeId::random()));
    let mut added = node.on_peer_added();
    let mut removed = node.on_peer_removed();
    let other = Peer::new(NodeId::random(), "other");
    node.add_peer(other.clone()).unwrap();
    node.add_peer(other.clone()).unwrap();
    assert_eq!(node.peers().len(), 1);
    assert_eq!(added.recv().await.unwrap().id, other.id);
    assert!(
        added.try_recv().is_err(),
        "a second add of one peer is not an add"
    );
    assert_eq!(node.peer(other.id).unwrap().state, PeerState::Discovered);
    assert!(matches!(
        node.add_peer(Peer::new(node.id(), "me")),
        Err(GossipError::SelfPeer)
    ));
    assert_eq!(node.remove_peer(other.id).unwrap().id, other.id);
    assert_eq!(removed.recv().await.unwrap().id, other.id);
    assert!(node.remove_peer(other.id).is_none());
    assert!(node.peers().is_empty());
}

#[tokio::test]
async fn invalid_configs_are_refused_by_new() {
    let net = MemoryNetwork::new(1);
    let mut config = GossipConfig::new(NodeId::random());
    config.fanout = 0;
    let r = GossipNode::new(
        config,
        Arc::new(MemoryEventStore::new()),
        Arc::new(net.transport(NodeId::random(), "x")),
    );
    assert!(matches!(r, Err(GossipError::Config(_))));
}

#[tokio::test]
async fn gossip_with_moves_events_both_ways_and_reports_the_exchange() {
    let net = MemoryNetwork::new(2);
    let nodes = cluster(&net, 2, |c| {
        // Only manual exchanges in this test.
        c.gossip_interval = Duration::from_secs(3600);
        c.gossip_timeout = Duration::from_secs(7200);
        c.enable_anti_entropy = false;
        c.eager_push = false;
    })
    .await;
    // Each ticker fires once at start: let those rounds pass before the nodes know each
    // other, so only this test's exchange moves events.
    settle(&nodes).await;
    link(&nodes, 0, 1);
    let (a, b) = (&nodes[0].node, &nodes[1].node);
    a.create_event(&b"from a"[..]).await.unwrap();
    b.create_event(&b"from b 1"[..]).await.unwrap();
    b.create_event(&b"from b 2"[..]).await.unwrap();
    let mut results = a.on_gossip_exchange();
    let mut received = a.on_event_received();
    let r = a.gossip_with(b.id()).await.unwrap();
    assert!(r.success, "{r:?}");
    assert_eq!((r.events_received, r.events_sent), (2, 1));
    assert!(r.bytes > 0);
    assert_eq!(results.recv().await.unwrap(), r);
    let got = received.recv().await.unwrap();
    assert_eq!(got.event.origin, b.id());
    assert_eq!(got.from, b.id());
    // Phase 3 is one-way: wait for it to land.
    eventually(Duration::from_secs(5), "b holds a's event", || async {
        b.vector_clock().await.unwrap().get(&a.id()) == 1
    })
    .await;
    assert_eq!(a.peer(b.id()).unwrap().state, PeerState::Alive);
    assert!(matches!(
        a.gossip_with(NodeId::random()).await,
        Err(GossipError::UnknownPeer(_))
    ));
    stop_all(&nodes).await;
}

#[tokio::test]
async fn an_unreachable_peer_becomes_suspect_then_offline() {
    let net = MemoryNetwork::new(3);
    let nodes = cluster(&net, 1, |c| {
        c.gossip_interval = Duration::from_secs(3600);
        c.gossip_timeout = Duration::from_secs(7200);
    })
    .await;
    settle(&nodes).await;
    let a = &nodes[0].node;
    let ghost = Peer::new(NodeId::random(), "nowhere");
    a.add_peer(ghost.clone()).unwrap();
    let mut states = a.on_peer_state();
    let r = a.gossip_with(ghost.id).await.unwrap();
    assert!(!r.success && r.error.is_some());
    assert_eq!(states.recv().await.unwrap().to, PeerState::Suspect);
    a.gossip_with(ghost.id).await.unwrap();
    a.gossip_with(ghost.id).await.unwrap();
    assert_eq!(states.recv().await.unwrap().to, PeerState::Offline);
    let p = a.peer(ghost.id).unwrap();
    assert_eq!((p.failures, p.successes), (3, 0));
    assert_eq!(a.stats().exchanges_failed, 3);
    stop_all(&nodes).await;
}

#[tokio::test]
async fn a_restarted_node_continues_its_seq_from_the_store() {
    let net = MemoryNetwork::new(4);
    let id = NodeId::random();
    let store = Arc::new(MemoryEventStore::new());
    let make = || {
        GossipNode::new(
            fast_config(id),
            store.clone(),
            Arc::new(net.transport(id, "r")),
        )
        .unwrap()
    };
    let first = make();
    first.start().await.unwrap();
    for _ in 0..3 {
        first.create_event(&b"x"[..]).await.unwrap();
    }
    first.stop().await;
    let second = make();
    second.start().await.unwrap();
    let e = second.create_event(&b"y"[..]).await.unwrap();
    assert_eq!(e.seq, 4);
    assert!(e.hlc > 3);
    second.stop().await;
}

#[tokio::test]
async fn a_node_with_a_wiped_store_gets_its_events_back_and_never_reuses_a_seq() {
    let net = MemoryNetwork::new(5);
    let nodes = cluster(&net, 2, |_| {}).await;
    link(&nodes, 0, 1);
    for _ in 0..5 {
        nodes[0].node.create_event(&b"mine"[..]).await.unwrap();
    }
    await_convergence(&nodes, 5, Duration::from_secs(10)).await;
    nodes[0].node.stop().await;
    // Same id, empty store: the peer still holds its five events.
    let fresh = Arc::new(MemoryEventStore::new());
    let reborn = GossipNode::new(
        fast_config(nodes[0].id),
        fresh.clone(),
        Arc::new(net.transport(nodes[0].id, nodes[0].addr.as_str())),
    )
    .unwrap();
    reborn.start().await.unwrap();
    reborn.add_peer(nodes[1].peer()).unwrap();
    eventually(Duration::from_secs(10), "own events come back", || async {
        fresh.count().await.unwrap() == 5
    })
    .await;
    assert_eq!(reborn.create_event(&b"next"[..]).await.unwrap().seq, 6);
    reborn.stop().await;
    nodes[1].node.stop().await;
}

#[tokio::test]
async fn an_equivocating_event_is_counted_and_resolved_the_same_everywhere() {
    let net = MemoryNetwork::new(6);
    let nodes = cluster(&net, 2, |c| c.eager_push = true).await;
    link(&nodes, 0, 1);
    let real = nodes[0].node.create_event(&b"real"[..]).await.unwrap();
    await_convergence(&nodes, 1, Duration::from_secs(10)).await;
    // A third party pushes a forged event under the same (origin, seq).
    let forger_id = NodeId::random();
    let forger = net.transport(forger_id, "forger");
    let mut forged = real.clone();
    forged.payload = Bytes::from_static(b"forged");
    forged.id = uuid::Uuid::now_v7();
    use gossip::transport::Transport;
    forger
        .send(
            &nodes[1].peer(),
            gossip::Message::Push {
                from: forger_id,
                events: vec![forged.clone()],
            },
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "equivocation counted", || async {
        nodes[1].node.stats().conflicts == 1
    })
    .await;
    // Both ends keep the rule's winner (an unsigned room: anyone may author anything).
    let winner = gossip::protocol::equivocation::Equivocation::detect(&real, &forged)
        .unwrap()
        .winner;
    eventually(Duration::from_secs(5), "same winner everywhere", || async {
        let mut same = true;
        for n in &nodes {
            same &= n.store.get(real.origin, 1).await.unwrap().as_ref() == Some(&winner);
        }
        same
    })
    .await;
    stop_all(&nodes).await;
}

#[tokio::test]
async fn creation_steps_past_an_own_seq_the_store_already_holds() {
    let net = MemoryNetwork::new(7);
    let (node, store) = solo(&net, fast_config(NodeId::random()));
    node.start().await.unwrap();
    // Our own seq 1 lands in the store behind the node's back (as when it comes back from
    // a peer and its receipt has not reached the node's state yet).
    let stray = gossip::Event {
        id: uuid::Uuid::now_v7(),
        origin: node.id(),
        seq: 1,
        hlc: 1,
        created_at_ms: 0,
        payload: Bytes::from_static(b"from an earlier life"),
        sig: Bytes::new(),
    };
    store.save(stray).await.unwrap();
    // The new event meets the stray one under seq 1: an equivocation. Whichever the rule
    // keeps, the other payload is issued again (or the new one retried) under seq 2.
    let e = node.create_event(&b"now"[..]).await.unwrap();
    assert!(e.seq <= 2);
    eventually(Duration::from_secs(5), "both payloads held", || async {
        let mut p: Vec<Vec<u8>> = store
            .all_events()
            .await
            .unwrap()
            .iter()
            .map(|e| e.payload.to_vec())
            .collect();
        p.sort();
        p == vec![b"from an earlier life".to_vec(), b"now".to_vec()]
    })
    .await;
    assert_eq!(node.next_seq(), 3);
    assert_eq!(node.stats().equivocations, 1);
    node.stop().await;
}
