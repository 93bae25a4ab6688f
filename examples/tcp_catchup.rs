//! Catch-up throughput over loopback TCP: a cold node fetches 1,000,000 events of 100-byte
//! payloads from one peer, exchange after exchange.
//!
//! ```text
//! cargo run --release --example tcp_catchup [-- EVENTS]
//! ```
//!
//! Config tuned for bulk (and printed): 10,000 events and 4 MiB per message, rounds,
//! anti-entropy and eager push off, so only the measured exchanges run. Reports events/s,
//! payload and wire MB/s, wire bytes per payload byte (from the transport's link counters),
//! and where an exchange spends its time. The transport is the default one, so since protocol
//! version 2 it runs through Noise XX; `crypto_bench` compares it with plaintext.

//!
//! The per-peer response budget of the transport is lifted (`response_bytes_per_sec` 0);
//! `RESPONSE_BUDGET=67108864` runs it with the default 64 MiB/s instead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip::node::GossipNode;
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::{TcpConfig, TcpTransport, Transport};
use gossip::{Event, NodeId};
use uuid::Uuid;

const PAYLOAD: usize = 100;

#[path = "common/bulk.rs"]
mod bulk;
use bulk::bulk_config;

async fn node(id: NodeId, store: Arc<MemoryEventStore>) -> (GossipNode, Arc<TcpTransport>) {
    let g = bulk_config(id);
    let t = TcpConfig {
        // Raw catch-up speed: the per-peer response budget (64 MiB/s by default, which
        // bounds an "ask for everything" member) is lifted, as bulk_config lifts the
        // ingest budgets; BENCHMARKS.md gives the figure with it too.
        response_bytes_per_sec: std::env::var("RESPONSE_BUDGET")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        max_message_size_bytes: g.max_message_size_bytes,
        io_timeout: Duration::from_secs(30),
        ..TcpConfig::new(id, "bench", SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    let transport = Arc::new(TcpTransport::bind(t).await.expect("bind"));
    let dyn_t: Arc<dyn Transport> = transport.clone();
    let node = GossipNode::new(g, store, dyn_t).expect("node");
    node.start().await.expect("start");
    (node, transport)
}

#[tokio::main]
async fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (src_id, cold_id) = (NodeId::random(), NodeId::random());

    let t0 = Instant::now();
    let src_store = Arc::new(MemoryEventStore::new());
    let now = gossip::node::now_ms();
    for chunk in (1..=total).collect::<Vec<_>>().chunks(100_000) {
        let events: Vec<Event> = chunk
            .iter()
            .map(|&seq| Event {
                id: Uuid::now_v7(),
                origin: src_id,
                seq,
                hlc: seq,
                created_at_ms: now + seq / 1000,
                payload: Bytes::from(vec![(seq % 251) as u8; PAYLOAD]),
                sig: bytes::Bytes::new(),
            })
            .collect();
        src_store.save_many(events).await.expect("prefill");
    }
    println!("prefilled {total} events in {:.2?}", t0.elapsed());

    let (src, _src_t) = node(src_id, src_store).await;
    let cold_store = Arc::new(MemoryEventStore::new());
    let (cold, cold_t) = node(cold_id, cold_store.clone()).await;
    // Each node's round ticker fires once at start; let those rounds pass before the cold
    // node knows its peer, or one would race the first measured exchange for the same events.
    while cold.stats().rounds == 0 || src.stats().rounds == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    cold.add_peer(gossip::transport::Peer::new(
        src_id,
        src.transport().local_addr(),
    ))
    .expect("peer");

    let c = bulk_config(cold_id);
    println!(
        "config: max_events_per_message {}, max_message_size_bytes {}, payload {PAYLOAD} B",
        c.max_events_per_message, c.max_message_size_bytes
    );
    let started = Instant::now();
    let mut exchanges = 0u64;
    let mut slowest = Duration::ZERO;
    let mut empty = 0u32;
    loop {
        let t = Instant::now();
        let r = cold.gossip_with(src_id).await.expect("exchange");
        assert!(r.success, "{r:?}");
        slowest = slowest.max(t.elapsed());
        exchanges += 1;
        if cold_store.clock().await.expect("clock").get(&src_id) >= total {
            break;
        }
        // A reconcile round that only finds the difference brings no event yet; a run of
        // empty exchanges means the catch-up is stuck.
        empty = if r.events_received > 0 { 0 } else { empty + 1 };
        assert!(empty < 5, "5 exchanges in a row brought nothing: {r:?}");
    }
    let elapsed = started.elapsed();
    let held = cold_store.clock().await.expect("clock").get(&src_id);
    assert_eq!(held, total, "the cold node caught up");

    let link = cold_t
        .peer_stats()
        .into_iter()
        .find(|s| s.peer == src_id)
        .expect("link stats");
    let wire = link.bytes_in + link.bytes_out;
    let payload = total * PAYLOAD as u64;
    let secs = elapsed.as_secs_f64();
    println!(
        "caught up {total} events in {elapsed:.2?} over {exchanges} exchanges (slowest {slowest:.2?})"
    );
    println!("  {:.0} events/s", total as f64 / secs);
    println!(
        "  {:.1} MB/s payload, {:.1} MB/s on the wire",
        payload as f64 / secs / 1e6,
        wire as f64 / secs / 1e6
    );
    println!(
        "  {wire} wire bytes ({} frames in, {} out) for {payload} payload bytes: {:.3} wire bytes per payload byte",
        link.frames_in,
        link.frames_out,
        wire as f64 / payload as f64
    );
    breakdown(&cold_store, src_id, exchanges, elapsed).await;
    cold.stop().await;
    src.stop().await;
}

/// Times the parts of one 10,000-event exchange in isolation, to show where time goes.
async fn breakdown(store: &MemoryEventStore, origin: NodeId, exchanges: u64, elapsed: Duration) {
    use gossip::Message;
    use gossip::transport::codec::{Frame, decode_frame, encode_frame};
    const N: usize = 10_000;
    const REPS: u32 = 10;
    let per_exchange = elapsed / exchanges as u32;
    let t = Instant::now();
    let mut events = Vec::new();
    for _ in 0..REPS {
        events = store.events_since(origin, 0, N).await.expect("read");
    }
    let fetch = t.elapsed() / REPS;
    let frame = Frame::Response {
        xid: 1,
        message: Message::DigestResponse {
            from: origin,
            events: events.clone(),
            clock: Default::default(),
        },
    };
    let t = Instant::now();
    let mut body = Bytes::new();
    for _ in 0..REPS {
        body = encode_frame(&frame, usize::MAX).expect("encode");
    }
    let encode = t.elapsed() / REPS;
    let t = Instant::now();
    for _ in 0..REPS {
        decode_frame(&body, usize::MAX).expect("decode");
    }
    let decode = t.elapsed() / REPS;
    let t = Instant::now();
    for _ in 0..REPS {
        let fresh = MemoryEventStore::new();
        fresh.save_many(events.clone()).await.expect("save");
    }
    let save = t.elapsed() / REPS;
    println!(
        "one exchange of {N} events ({} bytes): {per_exchange:.2?} on average, of which in isolation:",
        body.len()
    );
    println!(
        "  store read {fetch:.2?}, encode {encode:.2?}, decode {decode:.2?}, store insert {save:.2?}"
    );
    println!("  (the rest: the node's batching and ingest bookkeeping, socket copies, scheduling)");
}
