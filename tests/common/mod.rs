//! Helpers shared by the multi-node tests: clusters on the in-memory transport, and
//! polling with deadlines instead of fixed sleeps.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gossip::node::{GossipConfig, GossipNode};
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::{MemoryNetwork, Peer};
use gossip::{Event, NodeId};

/// A config with short timings, for tests.
pub fn fast_config(id: NodeId) -> GossipConfig {
    GossipConfig {
        gossip_interval: Duration::from_millis(40),
        gossip_timeout: Duration::from_millis(400),
        anti_entropy_interval: Duration::from_millis(500),
        ..GossipConfig::new(id)
    }
}

/// A node of a test cluster, with its store kept apart so it can outlive a restart.
pub struct TestNode {
    pub id: NodeId,
    pub addr: String,
    pub store: Arc<MemoryEventStore>,
    pub node: GossipNode,
}

impl TestNode {
    pub fn peer(&self) -> Peer {
        Peer::new(self.id, self.addr.as_str())
    }
}

/// `n` started nodes on `net`, not yet connected; `tweak` adjusts each config.
pub async fn cluster(
    net: &MemoryNetwork,
    n: usize,
    tweak: impl Fn(&mut GossipConfig),
) -> Vec<TestNode> {
    let mut out = Vec::new();
    for i in 0..n {
        let id = NodeId::from_u128(1000 + i as u128);
        let addr = format!("n{i}");
        let mut config = fast_config(id);
        tweak(&mut config);
        let store = Arc::new(MemoryEventStore::new());
        let node = GossipNode::new(
            config,
            store.clone(),
            Arc::new(net.transport(id, addr.as_str())),
        )
        .expect("valid test config");
        node.start().await.expect("start");
        out.push(TestNode {
            id,
            addr,
            store,
            node,
        });
    }
    out
}

/// Waits until every node ran the round its ticker fires at start, so tests that count
/// exchanges see only their own.
pub async fn settle(nodes: &[TestNode]) {
    for n in nodes {
        eventually(Duration::from_secs(5), "first round", || async {
            n.node.stats().rounds >= 1
        })
        .await;
    }
}

/// Connects `a` and `b` both ways.
pub fn link(nodes: &[TestNode], a: usize, b: usize) {
    nodes[a].node.add_peer(nodes[b].peer()).expect("add peer");
    nodes[b].node.add_peer(nodes[a].peer()).expect("add peer");
}

/// Polls `check` every 10 ms until it holds or `limit` passes; panics with `what` then.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        if start.elapsed() > limit {
            panic!("not within {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every event of a store, sorted by `(origin, seq)`.
pub async fn events_of(store: &dyn EventStore) -> Vec<Event> {
    let mut all = store.all_events().await.expect("all events");
    all.sort_by_key(|e| (e.origin, e.seq));
    all
}

/// True when every node holds exactly `expected` events and all stores are identical.
pub async fn converged(nodes: &[TestNode], expected: usize) -> bool {
    let first = events_of(nodes[0].store.as_ref()).await;
    if first.len() != expected {
        return false;
    }
    for n in &nodes[1..] {
        if events_of(n.store.as_ref()).await != first {
            return false;
        }
    }
    true
}

/// Waits until all stores hold the same `expected` events.
pub async fn await_convergence(nodes: &[TestNode], expected: usize, limit: Duration) {
    eventually(
        limit,
        &format!("{} nodes converge on {expected} events", nodes.len()),
        || converged(nodes, expected),
    )
    .await;
}

/// Stops every node.
pub async fn stop_all(nodes: &[TestNode]) {
    for n in nodes {
        n.node.stop().await;
    }
}
