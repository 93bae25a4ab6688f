//! Three nodes in a line (a - b - c) on any transport: each creates an event, every node
//! prints the events it receives as they arrive, and the run ends when all three hold all
//! three events. `three_nodes` runs it in memory, `http_transport` over HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gossip::NodeId;
use gossip::node::{GossipConfig, GossipNode};
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::{Peer, Transport};

/// The names printed for the three nodes.
pub const NAMES: [&str; 3] = ["a", "b", "c"];

/// Runs the three nodes on `transports` (one per node, for `ids`); returns how long they
/// took to converge.
pub async fn run(
    ids: [NodeId; 3],
    transports: [Arc<dyn Transport>; 3],
) -> Result<Duration, Box<dyn std::error::Error>> {
    let name_of = move |id: NodeId| ids.iter().position(|x| *x == id).map_or("?", |i| NAMES[i]);
    let mut nodes = Vec::new();
    let mut stores = Vec::new();
    for (i, t) in transports.into_iter().enumerate() {
        let config = GossipConfig {
            gossip_interval: Duration::from_millis(200),
            fanout: 2,
            ..GossipConfig::new(ids[i])
        };
        let store = Arc::new(MemoryEventStore::new());
        let node = GossipNode::new(config, store.clone(), t)?;
        println!(
            "node {} is {} at {}",
            NAMES[i],
            ids[i],
            node.transport().local_addr()
        );
        nodes.push(node);
        stores.push(store);
    }
    // Print each node's stream of received events.
    for (i, node) in nodes.iter().enumerate() {
        let mut rx = node.on_event_received();
        tokio::spawn(async move {
            while let Ok(r) = rx.recv().await {
                println!(
                    "  {} received {}:{} {:?} via {}",
                    NAMES[i],
                    name_of(r.event.origin),
                    r.event.seq,
                    String::from_utf8_lossy(&r.event.payload),
                    name_of(r.from)
                );
            }
        });
    }
    for n in &nodes {
        n.start().await?;
    }
    // A line: a knows b, b knows a and c, c knows b. a's event reaches c through b.
    let peer = |n: &GossipNode| Peer::new(n.id(), n.transport().local_addr());
    for (x, y) in [(0, 1), (1, 2)] {
        nodes[x].add_peer(peer(&nodes[y]))?;
        nodes[y].add_peer(peer(&nodes[x]))?;
    }
    let started = Instant::now();
    for (i, n) in nodes.iter().enumerate() {
        let e = n.create_event(format!("hello from {}", NAMES[i])).await?;
        println!("{} created {}:{}", NAMES[i], NAMES[i], e.seq);
    }
    let deadline = started + Duration::from_secs(20);
    loop {
        let mut done = true;
        for s in &stores {
            done &= s.count().await? == 3;
        }
        if done {
            break;
        }
        if Instant::now() > deadline {
            return Err("the three nodes did not converge within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    // Let the printers drain before the summary.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for (i, s) in stores.iter().enumerate() {
        let clock = s.clock().await?;
        let entries: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(j, id)| format!("{}={}", NAMES[j], clock.get(id)))
            .collect();
        println!(
            "{}: {} events, clock [{}]",
            NAMES[i],
            s.count().await?,
            entries.join(" ")
        );
    }
    for n in &nodes {
        n.stop().await;
    }
    Ok(took)
}
