//! A room with 100,000 origins over real TCP on 127.0.0.1 (issue 12: 60,000 sybil origins
//! made every full-clock digest longer than the frame limit, and the node never gossiped
//! again). With set-reconciled digests two nodes holding the same 100,000 origins still
//! exchange (one fingerprint each way), a new event still travels by exchange alone, and a
//! late joiner with an empty store gets the whole history.

mod tcp_common;
use tcp_common as common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{TcpNode, eventually, fast_config, start_node_with, tcp_config};
use gossip::node::GossipConfig;
use gossip::store::{EventStore, MemoryEventStore};
use gossip::{Event, NodeId};
use uuid::Uuid;

const ORIGINS: u128 = 100_000;
const PATIENCE: Duration = Duration::from_secs(240);

/// No eager push: whatever moves, moves by exchange.
fn config(id: NodeId) -> GossipConfig {
    GossipConfig {
        eager_push: false,
        lazy_push: false,
        max_events_per_message: 5_000,
        gossip_interval: Duration::from_millis(100),
        gossip_timeout: Duration::from_secs(20),
        anti_entropy_interval: Duration::from_secs(2),
        ..fast_config(id)
    }
}

async fn start(store: Arc<MemoryEventStore>) -> TcpNode {
    let g = config(NodeId::random());
    let t = tcp_config(&g, 0);
    start_node_with(g, t, store).await
}

/// One event from each of `ORIGINS` origins that are not nodes (sybils).
fn history() -> Vec<Event> {
    (1..=ORIGINS)
        .map(|i| Event {
            id: Uuid::from_u128(i),
            origin: NodeId::from_u128(i * 0x9E37_79B9_7F4A_7C15),
            seq: 1,
            hlc: 1,
            created_at_ms: 1_700_000_000_000,
            payload: Bytes::from_static(b"sybil"),
            sig: Bytes::new(),
        })
        .collect()
}

async fn preloaded() -> Arc<MemoryEventStore> {
    let store = Arc::new(MemoryEventStore::new());
    store.save_many(history()).await.unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_of_100k_origins_still_gossips_and_a_late_joiner_gets_everything() {
    let t0 = std::time::Instant::now();
    let a = start(preloaded().await).await;
    let b = start(preloaded().await).await;
    a.node.add_peer(b.peer()).unwrap();
    b.node.add_peer(a.peer()).unwrap();

    // At rest they exchange, and the exchanges are small: one fingerprint each way.
    let before = a.node.stats();
    eventually(PATIENCE, "a and b complete 20 exchanges", || async {
        a.node.stats().exchanges_ok >= before.exchanges_ok + 20
    })
    .await;
    let after = a.node.stats();
    let ok = after.exchanges_ok - before.exchanges_ok;
    let sent = after.bytes_sent - before.bytes_sent;
    eprintln!(
        "at rest: {ok} exchanges, {sent} bytes sent by a ({:?})",
        t0.elapsed()
    );
    // Own identity events may still be moving at first; 100,000-entry clocks (2 MB each)
    // would be orders of magnitude more.
    assert!(sent / ok < 10_000, "{} bytes per exchange", sent / ok);

    // A new event travels by exchange (no eager push).
    let e = a.node.create_event("after the sybils").await.unwrap();
    eventually(PATIENCE, "b gets a's new event", || async {
        b.store.has(e.origin, e.seq).await.unwrap()
    })
    .await;

    eprintln!("b got the new event ({:?})", t0.elapsed());
    // A late joiner with an empty store gets the whole history from one peer.
    let c = start(Arc::new(MemoryEventStore::new())).await;
    c.node.add_peer(a.peer()).unwrap();
    a.node.add_peer(c.peer()).unwrap();
    let want = a.store.count().await.unwrap();
    assert!(want > ORIGINS as u64);
    eventually(
        PATIENCE,
        "the late joiner holds the whole history",
        || async {
            c.store.clock().await.unwrap() == a.store.clock().await.unwrap()
                || c.store.count().await.unwrap() >= want
        },
    )
    .await;
    eprintln!("the late joiner holds everything ({:?})", t0.elapsed());
    assert!(c.store.has(e.origin, e.seq).await.unwrap());
    assert_eq!(a.node.stats().refused_requests, 0);
    assert_eq!(c.node.stats().refused_requests, 0);
    c.node.stop().await;
    b.node.stop().await;
    a.node.stop().await;
}
