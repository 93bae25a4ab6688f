//! Five nodes over real TCP on 127.0.0.1: they converge; one stopped in the middle of a
//! large catch-up leaves the rest converging; restarted on its port with its store, it
//! catches up.

mod tcp_common;
use tcp_common as common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{TcpNode, eventually, fast_config, start_node_with, tcp_config};
use gossip::node::GossipConfig;
use gossip::store::{EventStore, MemoryEventStore};
use gossip::{Event, NodeId, VectorClock};
use uuid::Uuid;

const NODES: usize = 5;
/// Events of an origin that is not a node, planted in one store: what the others must fetch.
const BULK: u64 = 20_000;
const PATIENCE: Duration = Duration::from_secs(90);

fn config(id: NodeId) -> GossipConfig {
    GossipConfig {
        max_events_per_message: 500,
        ..fast_config(id)
    }
}

async fn start(id: NodeId, port: u16, store: Arc<MemoryEventStore>) -> TcpNode {
    let g = config(id);
    let t = tcp_config(&g, port);
    start_node_with(g, t, store).await
}

fn connect_all(nodes: &[&TcpNode]) {
    for a in nodes {
        for b in nodes {
            if a.id() != b.id() {
                a.node.add_peer(b.peer()).unwrap();
            }
        }
    }
}

async fn clock(n: &TcpNode) -> VectorClock {
    n.store.clock().await.unwrap()
}

/// Every node holds exactly the same events and the same clock.
async fn identical(nodes: &[&TcpNode]) -> bool {
    let first = nodes[0].store.all_events().await.unwrap();
    let first_clock = clock(nodes[0]).await;
    for n in &nodes[1..] {
        if clock(n).await != first_clock || n.store.all_events().await.unwrap() != first {
            return false;
        }
    }
    true
}

fn bulk_event(origin: NodeId, seq: u64) -> Event {
    Event {
        id: Uuid::from_u128(seq as u128),
        origin,
        seq,
        hlc: seq,
        created_at_ms: 1_700_000_000_000 + seq,
        payload: Bytes::from(vec![(seq % 251) as u8; 100]),
        sig: bytes::Bytes::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_converge_survive_a_stop_mid_catch_up_and_the_restarted_node_catches_up() {
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(start(NodeId::random(), 0, Arc::new(MemoryEventStore::new())).await);
    }
    connect_all(&nodes.iter().collect::<Vec<_>>());
    for (i, n) in nodes.iter().enumerate() {
        for k in 0..10 {
            n.node
                .create_event(format!("node {i} event {k}"))
                .await
                .unwrap();
        }
    }
    let all: Vec<&TcpNode> = nodes.iter().collect();
    eventually(PATIENCE, "5 nodes converge", || identical(&all)).await;
    assert_eq!(nodes[0].store.count().await.unwrap(), 50);

    // A large catch-up: node 0 alone holds BULK events of a far origin.
    let far = NodeId::random();
    let bulk: Vec<Event> = (1..=BULK).map(|s| bulk_event(far, s)).collect();
    nodes[0].store.save_many(bulk).await.unwrap();

    // Stop node 4 while it is part-way through fetching them.
    let victim = nodes.pop().unwrap();
    eventually(PATIENCE, "node 4 mid catch-up", || async {
        clock(&victim).await.get(&far) > 0
    })
    .await;
    let seen = clock(&victim).await.get(&far);
    victim.node.stop().await;
    let at_stop = clock(&victim).await.get(&far);
    eprintln!("node 4 held {seen} then {at_stop} of {BULK} far events when stopped");
    assert!(
        at_stop < BULK,
        "node 4 finished the catch-up before it was stopped ({at_stop})"
    );
    let (victim_id, victim_port, victim_store) =
        (victim.id(), victim.addr().port(), victim.store.clone());
    let victim_events = victim_store.all_events().await.unwrap();
    drop(victim);

    // The rest carry on: they finish the catch-up and gossip new events.
    for (i, n) in nodes.iter().enumerate() {
        n.node
            .create_event(format!("node {i} while 4 is down"))
            .await
            .unwrap();
    }
    let rest: Vec<&TcpNode> = nodes.iter().collect();
    eventually(PATIENCE, "4 nodes converge without node 4", || async {
        clock(rest[0]).await.get(&far) == BULK && identical(&rest).await
    })
    .await;
    for n in &nodes {
        let p = n.node.peer(victim_id).unwrap();
        assert_eq!(p.state, gossip::node::PeerState::Offline, "{p:?}");
    }

    // Node 4 comes back on its port with its store, and catches up.
    let back = start(victim_id, victim_port, victim_store).await;
    assert_eq!(back.addr().port(), victim_port);
    for n in &nodes {
        back.node.add_peer(n.peer()).unwrap();
    }
    let mut everyone: Vec<&TcpNode> = nodes.iter().collect();
    everyone.push(&back);
    eventually(PATIENCE, "node 4 catches up", || identical(&everyone)).await;
    // It lost nothing it held, and its own sequence continues.
    for e in &victim_events {
        assert_eq!(
            back.store.get(e.origin, e.seq).await.unwrap().as_ref(),
            Some(e)
        );
    }
    let e = back.node.create_event("node 4 is back").await.unwrap();
    assert_eq!(e.seq, 11);
    eventually(PATIENCE, "node 4's new event spreads", || {
        identical(&everyone)
    })
    .await;
    assert_eq!(nodes[0].store.count().await.unwrap(), 50 + BULK + 4 + 1);
    for n in &everyone {
        n.node.stop().await;
    }
}
