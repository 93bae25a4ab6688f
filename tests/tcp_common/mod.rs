//! Helpers shared by the TCP integration tests: nodes on 127.0.0.1 and polling with
//! deadlines (never fixed sleeps), so the tests hold on a loaded 2-core machine.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gossip::NodeId;
use gossip::node::{GossipConfig, GossipNode};
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::{Peer, TcpConfig, TcpTransport, Transport};

/// The room every test node joins.
pub const ROOM: &str = "test-room";

/// A node over TCP with its transport and store.
pub struct TcpNode {
    pub node: GossipNode,
    pub transport: Arc<TcpTransport>,
    pub store: Arc<MemoryEventStore>,
}

impl TcpNode {
    pub fn id(&self) -> NodeId {
        self.node.id()
    }

    pub fn addr(&self) -> SocketAddr {
        self.transport.socket_addr()
    }

    pub fn peer(&self) -> Peer {
        Peer::new(self.id(), self.addr().to_string())
    }
}

/// Fast gossip for tests: rounds every 50 ms, 5 s request deadline (generous on a busy
/// machine), anti-entropy every 500 ms.
pub fn fast_config(id: NodeId) -> GossipConfig {
    GossipConfig {
        gossip_interval: Duration::from_millis(50),
        gossip_timeout: Duration::from_secs(5),
        anti_entropy_interval: Duration::from_millis(500),
        ..GossipConfig::new(id)
    }
}

/// A transport config matching `gossip`, with short backoff so restarts are found fast.
pub fn tcp_config(gossip: &GossipConfig, port: u16) -> TcpConfig {
    TcpConfig {
        max_message_size_bytes: gossip.max_message_size_bytes,
        io_timeout: gossip.gossip_timeout,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..TcpConfig::new(
            gossip.node_id,
            ROOM,
            SocketAddr::from(([127, 0, 0, 1], port)),
        )
    }
}

/// Starts a node with `gossip` and `tcp` configs and the given store.
pub async fn start_node_with(
    gossip: GossipConfig,
    tcp: TcpConfig,
    store: Arc<MemoryEventStore>,
) -> TcpNode {
    let transport = Arc::new(TcpTransport::bind(tcp).await.expect("bind"));
    let dyn_transport: Arc<dyn Transport> = transport.clone();
    let dyn_store: Arc<dyn EventStore> = store.clone();
    let node = GossipNode::new(gossip, dyn_store, dyn_transport).expect("node");
    node.start().await.expect("start");
    TcpNode {
        node,
        transport,
        store,
    }
}

/// A node with a fresh id and store on any free port, configured by `tweak`.
pub async fn start_node(tweak: impl FnOnce(&mut GossipConfig, &mut TcpConfig)) -> TcpNode {
    let mut g = fast_config(NodeId::random());
    let mut t = tcp_config(&g, 0);
    tweak(&mut g, &mut t);
    start_node_with(g, t, Arc::new(MemoryEventStore::new())).await
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
