//! Delivery latency in a small room on loopback, like laptops on one LAN: N signed nodes
//! over real TCP (Noise), every node a peer of every other; the nodes take turns creating
//! a chat event every 20 ms, and each delivery's delay is the time from the sender's
//! `create_event` call to the receiver's `on_event_received`. Prints p50/p99 of all
//! deliveries and the duplicates received (copies of events already held), after each
//! node issued 256 events unmeasured.
//!
//! ```text
//! cargo run --release --example lan_latency -- --nodes 4 --events 300
//! cargo run --release --example lan_latency -- --nodes 4 --events 300 --eager-only
//! ```
//!
//! `--eager-only` turns lazy push (PlumTree, the default) off: fanout random peers.
//! `--settle S`: seconds between the warm-up and the measure (default 3).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gossip::NodeId;
use gossip::auth::NodeIdentity;
use gossip::node::{GossipConfig, GossipNode};
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::{Peer, TcpConfig, TcpTransport};

const ROOM: &str = "latency";
/// Own events issued before measuring (see `main`).
const WARM_UP: usize = 256;

type Arrivals = Arc<Mutex<HashMap<(NodeId, NodeId, u64), Instant>>>;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

async fn node(lazy_push: bool) -> (GossipNode, SocketAddr) {
    let key = NodeIdentity::generate();
    let g = GossipConfig {
        lazy_push,
        ..GossipConfig::new(key.node_id())
    };
    let t = TcpConfig {
        identity: Some(key.clone()),
        ..TcpConfig::new(key.node_id(), ROOM, SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    let transport = Arc::new(TcpTransport::bind(t).await.expect("bind"));
    let addr = transport.socket_addr();
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let node = GossipNode::with_identity(g, store, transport, key).expect("node");
    node.start().await.expect("start");
    (node, addr)
}

/// Records when each node receives each event: (receiver, origin, seq) -> instant.
fn listen(node: &GossipNode, arrivals: &Arrivals) {
    let me = node.id();
    let mut rx = node.on_event_received();
    let arrivals = arrivals.clone();
    tokio::spawn(async move {
        while let Ok(r) = rx.recv().await {
            let key = (me, r.event.origin, r.event.seq);
            if let Ok(mut a) = arrivals.lock() {
                a.entry(key).or_insert_with(Instant::now);
            }
        }
    });
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = arg(&args, "--nodes", 4).max(2);
    let events = arg(&args, "--events", 300);
    let settle = arg(&args, "--settle", 3);
    let lazy_push = !args.iter().any(|a| a == "--eager-only");
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(node(lazy_push).await);
    }
    for (a, _) in &nodes {
        for (b, addr) in &nodes {
            if a.id() != b.id() {
                a.add_peer(Peer::new(b.id(), addr.to_string()))
                    .expect("peer");
            }
        }
    }
    // A node's first 256 events on a fresh store are shown once more to every peer
    // (`engine::create::Unsure`, the equivocation safety net): issue them before measuring,
    // as on any later run, then let the room settle.
    for (node, _) in &nodes {
        for i in 0..WARM_UP {
            node.create_event(format!("warm-up {i}"))
                .await
                .expect("create");
        }
    }
    tokio::time::sleep(Duration::from_secs(settle as u64)).await;
    let arrivals: Arrivals = Arc::new(Mutex::new(HashMap::new()));
    for (node, _) in &nodes {
        listen(node, &arrivals);
    }
    let before: u64 = nodes.iter().map(|(x, _)| x.stats().duplicates).sum();
    let mut sent = Vec::with_capacity(events);
    for i in 0..events {
        let (sender, _) = &nodes[i % n];
        let t = Instant::now();
        let e = sender
            .create_event(format!("probe {i}"))
            .await
            .expect("create");
        sent.push((t, e.origin, e.seq));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arrived = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let mut lat = Vec::new();
    let mut missing = 0;
    for (t, origin, seq) in &sent {
        for (node, _) in &nodes {
            if node.id() == *origin {
                continue;
            }
            match arrived.get(&(node.id(), *origin, *seq)) {
                Some(at) => lat.push(at.duration_since(*t)),
                None => missing += 1,
            }
        }
    }
    let after: u64 = nodes.iter().map(|(x, _)| x.stats().duplicates).sum();
    let stats: Vec<_> = nodes.iter().map(|(x, _)| x.stats()).collect();
    let prunes: u64 = stats.iter().map(|s| s.prunes_sent).sum();
    let grafts: u64 = stats.iter().map(|s| s.grafts_sent).sum();
    let useful = lat.len().max(1) as f64;
    println!(
        "nodes {n}, lazy_push {lazy_push}: {} deliveries, {missing} missing after 2 s, \
         p50 {:.2} ms, p99 {:.2} ms, duplicates {} ({:.3} per delivery), prunes {prunes}, \
         grafts {grafts}",
        lat.len(),
        pct(&mut lat, 0.5).as_secs_f64() * 1e3,
        pct(&mut lat, 0.99).as_secs_f64() * 1e3,
        after - before,
        (after - before) as f64 / useful,
    );
    for (node, _) in &nodes {
        node.stop().await;
    }
}
