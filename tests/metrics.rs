//! The metrics endpoint: a scrape over HTTP returns Prometheus text whose figures match
//! the node's own, parsed line by line.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{cluster, eventually, link, stop_all};
use gossip::NodeId;
use gossip::metrics::{Metrics, TimedStore, save_latency, serve};
use gossip::node::GossipNode;
use gossip::store::MemoryEventStore;
use gossip::transport::{MemoryNetwork, Peer};

/// One sample: a metric name with its labels, and its value.
type Samples = HashMap<String, f64>;

/// Parses the text format: `# ...` lines are metadata, others `name{labels} value`.
fn parse(text: &str) -> Samples {
    let mut out = HashMap::new();
    let mut saw_eof = false;
    for line in text.lines() {
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').expect("a sample line has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(
            key.starts_with("gossip_"),
            "every metric has the gossip_ prefix: {line:?}"
        );
        assert!(
            out.insert(key.to_string(), value).is_none(),
            "repeated sample {key}"
        );
    }
    assert!(saw_eof, "OpenMetrics text ends with # EOF");
    out
}

async fn scrape(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_reports_the_nodes_figures() {
    let net = MemoryNetwork::new(1);
    let nodes = cluster(&net, 2, |_| {}).await;
    link(&nodes, 0, 1);
    // Made before the events, so its stream watcher sees every arrival.
    let metrics = Metrics::new(nodes[0].node.clone());
    for i in 0..5u8 {
        nodes[1].node.create_event(vec![i]).await.unwrap();
    }
    eventually(
        Duration::from_secs(5),
        "node 0 receives 5 events",
        || async { nodes[0].node.stats().events_received >= 5 },
    )
    .await;
    // Pushes carried the events; wait for a completed round as well.
    eventually(
        Duration::from_secs(5),
        "node 0 completes an exchange",
        || async { nodes[0].node.stats().exchanges_ok >= 1 },
    )
    .await;

    let server = serve("127.0.0.1:0".parse().unwrap(), metrics)
        .await
        .unwrap();
    assert!(server.local_addr().ip().is_loopback());
    let (head, body) = scrape(server.local_addr(), "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("openmetrics-text"), "{head}");
    let m = parse(&body);
    let stats = nodes[0].node.stats();
    assert!(m["gossip_events_received_total"] >= 5.0);
    assert!(m["gossip_events_received_total"] <= stats.events_received as f64);
    assert_eq!(m["gossip_store_events"], 5.0);
    assert_eq!(m["gossip_store_origins"], 1.0);
    assert!(m["gossip_store_size_bytes"] > 0.0);
    assert_eq!(m["gossip_peers{state=\"alive\"}"], 1.0);
    assert_eq!(m["gossip_peers{state=\"offline\"}"], 0.0);
    assert!(m[r#"gossip_exchanges_total{result="ok"}"#] >= 1.0);
    assert_eq!(
        m[r#"gossip_exchange_failures_total{reason="timeout"}"#],
        0.0
    );
    let peer = format!(
        r#"gossip_peer_events_total{{peer="{}",direction="in"}}"#,
        nodes[1].id
    );
    assert_eq!(m[&peer], 5.0);
    assert_eq!(m["gossip_store_events_beyond_clock"], 0.0);
    assert_eq!(m["gossip_event_arrival_age_seconds_count"], 5.0);
    assert_eq!(m["gossip_metrics_stream_lagged_total"], 0.0);
    assert!(m.contains_key(&format!(r#"gossip_node{{node="{}"}}"#, nodes[0].id)));

    let (head, _) = scrape(server.local_addr(), "/other").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    stop_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_by_reason_and_saves_are_timed() {
    let net = MemoryNetwork::new(2);
    let id = NodeId::from_u128(7);
    let latency = save_latency();
    let store = Arc::new(TimedStore::new(
        Arc::new(MemoryEventStore::new()),
        latency.clone(),
    ));
    let node = GossipNode::new(
        common::fast_config(id),
        store,
        Arc::new(net.transport(id, "solo")),
    )
    .unwrap();
    node.start().await.unwrap();
    let metrics = Metrics::new(node.clone()).with_save_latency(latency);
    // A peer nobody listens for: every exchange with it fails as unreachable.
    node.add_peer(Peer::new(NodeId::from_u128(8), "nowhere"))
        .unwrap();
    node.create_event(b"x".to_vec()).await.unwrap();
    eventually(
        Duration::from_secs(5),
        "a failed exchange is counted",
        || {
            let metrics = metrics.clone();
            async move {
                let m = parse(&metrics.render().await);
                m.iter()
                    .any(|(k, v)| k.starts_with("gossip_exchange_failures_total") && *v >= 1.0)
            }
        },
    )
    .await;
    let m = parse(&metrics.render().await);
    assert!(m[r#"gossip_exchanges_total{result="failed"}"#] >= 1.0);
    assert_eq!(m[r#"gossip_store_save_seconds_count{op="save_own"}"#], 1.0);
    node.stop().await;
}
