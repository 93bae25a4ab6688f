//! Many nodes in one process over the in-memory transport: convergence under random
//! topologies, relays, truncation, partitions, loss and duplicate storms.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use gossip::transport::{MemoryNetwork, PeerAddr, Transport};
use gossip::{Message, NodeId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_in_a_random_topology_converge_to_identical_stores() {
    let net = MemoryNetwork::new(10);
    net.set_delay(Duration::from_millis(1), Duration::from_millis(5));
    let nodes = cluster(&net, 10, |_| {}).await;
    // A random spanning tree (so the graph is connected) plus a few random extra links.
    let mut rng = SmallRng::seed_from_u64(10);
    for i in 1..10 {
        link(&nodes, i, rng.random_range(0..i));
    }
    for _ in 0..5 {
        let (a, b) = (rng.random_range(0..10), rng.random_range(0..10));
        if a != b {
            link(&nodes, a, b);
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        for k in 0..5 {
            n.node
                .create_event(format!("node {i} event {k}").into_bytes())
                .await
                .unwrap();
        }
    }
    await_convergence(&nodes, 50, LIMIT).await;
    let clock = nodes[0].node.vector_clock().await.unwrap();
    for n in &nodes {
        assert_eq!(n.node.vector_clock().await.unwrap(), clock);
        assert_eq!(clock.get(&n.id), 5);
    }
    stop_all(&nodes).await;
}

/// Nodes 0-1-2-3-4-5 in a line: only neighbours know each other.
async fn line_relays(eager_push: bool) {
    let net = MemoryNetwork::new(6);
    let nodes = cluster(&net, 6, |c| {
        c.eager_push = eager_push;
        c.enable_anti_entropy = false;
    })
    .await;
    for i in 0..5 {
        link(&nodes, i, i + 1);
    }
    let mut far_end = nodes[5].node.on_event_received();
    let e = nodes[0]
        .node
        .create_event(&b"end to end"[..])
        .await
        .unwrap();
    let got = tokio::time::timeout(LIMIT, far_end.recv())
        .await
        .expect("the event crosses the line")
        .unwrap();
    assert_eq!(got.event, e);
    assert_eq!(got.from, nodes[4].id, "it can only come from the neighbour");
    await_convergence(&nodes, 1, LIMIT).await;
    stop_all(&nodes).await;
}

#[tokio::test]
async fn a_line_of_six_nodes_relays_end_to_end_by_eager_push() {
    line_relays(true).await;
}

#[tokio::test]
async fn a_line_of_six_nodes_relays_end_to_end_by_rounds_alone() {
    line_relays(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_events_catch_up_through_batches_of_ten() {
    let net = MemoryNetwork::new(7);
    let nodes = cluster(&net, 2, |c| {
        c.max_events_per_message = 10;
        c.eager_push = false;
    })
    .await;
    for i in 0..2000 {
        nodes[0]
            .node
            .create_event(format!("event {i}").into_bytes())
            .await
            .unwrap();
    }
    link(&nodes, 0, 1);
    await_convergence(&nodes, 2000, LIMIT).await;
    // At most 10 events per message: at least 200 responses or pushes carried them.
    let s = net.stats();
    assert!(s.delivered >= 200, "{s:?}");
    let received = nodes[1].node.stats().events_received;
    assert_eq!(received, 2000);
    stop_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_five_partition_heals_to_identical_stores() {
    let net = MemoryNetwork::new(8);
    let nodes = cluster(&net, 10, |_| {}).await;
    for a in 0..10 {
        for b in a + 1..10 {
            link(&nodes, a, b);
        }
    }
    let left: Vec<PeerAddr> = nodes[..5].iter().map(|n| n.addr.as_str().into()).collect();
    let right: Vec<PeerAddr> = nodes[5..].iter().map(|n| n.addr.as_str().into()).collect();
    net.partition(&left, &right);
    for (i, n) in nodes.iter().enumerate() {
        for k in 0..3 {
            n.node
                .create_event(format!("{i}/{k}").into_bytes())
                .await
                .unwrap();
        }
    }
    // Each side converges on its own 15 events and holds nothing from the other.
    await_convergence(&nodes[..5], 15, LIMIT).await;
    await_convergence(&nodes[5..], 15, LIMIT).await;
    assert_eq!(
        nodes[0]
            .node
            .vector_clock()
            .await
            .unwrap()
            .get(&nodes[9].id),
        0
    );
    net.heal();
    await_convergence(&nodes, 30, LIMIT).await;
    stop_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_message_loss_still_converges() {
    let net = MemoryNetwork::new(9);
    net.set_drop_rate(0.3);
    let nodes = cluster(&net, 6, |_| {}).await;
    for a in 0..6 {
        for b in a + 1..6 {
            link(&nodes, a, b);
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        for k in 0..10 {
            n.node
                .create_event(format!("{i}/{k}").into_bytes())
                .await
                .unwrap();
        }
    }
    await_convergence(&nodes, 60, LIMIT).await;
    assert!(net.stats().dropped > 0, "the loss really happened");
    stop_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_storm_emits_each_event_once() {
    let net = MemoryNetwork::new(11);
    let nodes = cluster(&net, 1, |_| {}).await;
    let target = nodes[0].peer();
    let mut received = nodes[0].node.on_event_received();
    // Ten senders push the same 20 events, 10 times each, all at once.
    let origin = NodeId::random();
    let events: Vec<_> = (1..=20)
        .map(|seq| gossip::Event {
            id: uuid::Uuid::now_v7(),
            origin,
            seq,
            hlc: seq,
            created_at_ms: 0,
            payload: bytes::Bytes::from(format!("storm {seq}")),
            sig: bytes::Bytes::new(),
        })
        .collect();
    let senders: Vec<_> = (0..10u128)
        .map(|s| {
            let id = NodeId::from_u128(5000 + s);
            (id, net.transport(id, format!("storm{s}")))
        })
        .collect();
    let mut sends = Vec::new();
    for (id, t) in &senders {
        for _ in 0..10 {
            let msg = Message::Push {
                from: *id,
                events: events.clone(),
            };
            sends.push(t.send(&target, msg));
        }
    }
    for r in futures::future::join_all(sends).await {
        r.unwrap();
    }
    eventually(LIMIT, "all 20 stored", || async {
        nodes[0].node.vector_clock().await.unwrap().get(&origin) == 20
    })
    .await;
    eventually(LIMIT, "every copy processed", || async {
        let s = nodes[0].node.stats();
        s.events_received + s.duplicates == 2000
    })
    .await;
    let mut seen: HashMap<u64, usize> = HashMap::new();
    while let Ok(r) = received.try_recv() {
        *seen.entry(r.event.seq).or_default() += 1;
    }
    assert_eq!(seen.len(), 20);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert_eq!(nodes[0].node.stats().duplicates, 1980);
    stop_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_peer_selection_strategy_converges() {
    for strategy in gossip::PeerSelectionStrategy::ALL {
        let net = MemoryNetwork::new(12);
        let nodes = cluster(&net, 6, |c| {
            c.peer_selection_strategy = strategy;
            c.eager_push = false;
            c.fanout = 1;
        })
        .await;
        for a in 0..6 {
            for b in a + 1..6 {
                link(&nodes, a, b);
            }
        }
        for n in &nodes {
            n.node.create_event(&b"hi"[..]).await.unwrap();
        }
        await_convergence(&nodes, 6, LIMIT).await;
        stop_all(&nodes).await;
    }
}
