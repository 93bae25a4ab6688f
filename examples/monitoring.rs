//! The seed's monitoring example: a node with Prometheus metrics and structured logs.
//! Two nodes gossip in memory; node a serves its metrics on loopback; the example scrapes
//! them once and prints the main figures.
//!
//! ```sh
//! cargo run --example monitoring [-- --serve-for SECS]
//! RUST_LOG=gossip=debug cargo run --example monitoring   # more log lines
//! ```
//!
//! With `--serve-for`, the endpoint stays up that long, for `curl 127.0.0.1:PORT/metrics`.

use std::sync::Arc;
use std::time::Duration;

use gossip::NodeId;
use gossip::metrics::{Metrics, TimedStore, save_latency, serve};
use gossip::node::{GossipConfig, GossipNode};
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::{MemoryNetwork, Peer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Structured logs: every line carries its fields (peer, origin, seq, ...).
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let serve_for = std::env::args()
        .skip_while(|a| a != "--serve-for")
        .nth(1)
        .map(|s| s.parse::<u64>())
        .transpose()?
        .unwrap_or(0);

    let net = MemoryNetwork::new(5);
    let latency = save_latency();
    let (a_id, b_id) = (NodeId::random(), NodeId::random());
    let config = |id| GossipConfig {
        gossip_interval: Duration::from_millis(100),
        ..GossipConfig::new(id)
    };
    // Node a's store is timed, so the metrics show how long a save takes to be durable.
    let a_store: Arc<dyn EventStore> = Arc::new(TimedStore::new(
        Arc::new(MemoryEventStore::new()),
        latency.clone(),
    ));
    let a = GossipNode::new(config(a_id), a_store, Arc::new(net.transport(a_id, "a")))?;
    let b = GossipNode::new(
        config(b_id),
        Arc::new(MemoryEventStore::new()),
        Arc::new(net.transport(b_id, "b")),
    )?;
    a.start().await?;
    b.start().await?;
    a.add_peer(Peer::new(b_id, "b"))?;
    b.add_peer(Peer::new(a_id, "a"))?;

    let server = serve(
        "127.0.0.1:0".parse()?,
        Metrics::new(a.clone()).with_save_latency(latency),
    )
    .await?;
    tracing::info!(addr = %server.local_addr(), "metrics endpoint up");

    for i in 0..10 {
        b.create_event(format!("reading {i}")).await?;
    }
    a.create_event("hello from a").await?;
    while a.store().count().await? < 11 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let text = scrape(server.local_addr()).await?;
    println!(
        "--- GET http://{}/metrics (selected lines)",
        server.local_addr()
    );
    for line in text.lines().filter(|l| {
        !l.starts_with('#')
            && [
                "gossip_events_received",
                "gossip_events_duplicate",
                "gossip_exchanges_total",
                "gossip_peers{",
                "gossip_store_",
                "gossip_catchup",
                "gossip_event_arrival_age_seconds_count",
            ]
            .iter()
            .any(|p| l.starts_with(p))
            && !l.contains("_bucket")
    }) {
        println!("{line}");
    }
    if serve_for > 0 {
        tracing::info!(
            secs = serve_for,
            "serving; try curl http://{}/metrics",
            server.local_addr()
        );
        tokio::time::sleep(Duration::from_secs(serve_for)).await;
    }
    a.stop().await;
    b.stop().await;
    Ok(())
}

async fn scrape(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out))
}
