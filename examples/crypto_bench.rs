//! What security costs: event signing and verification per core, and the TCP catch-up of
//! `tcp_catchup` with and without the Noise layer in the same run.
//!
//! ```text
//! cargo run --release --example crypto_bench [-- EVENTS [SIGNED_EVENTS]]
//! ```
//!
//! 1. Signs and verifies 20,000 events of 100-byte payloads on one thread.
//! 2. A cold node catches up EVENTS (default 1,000,000) unsigned events from one peer over
//!    loopback TCP, alternately in plaintext and through Noise XX, twice each.
//! 3. The same with signed events (default 1,000,000, sealed as one chain) and verifying
//!    nodes, through Noise with a room key (XXpsk3): the full cost as gossip-chat pays it;
//!    three cold nodes in turn from one source, best and median reported.

//!
//! The per-peer response budget of the transport is lifted (`response_bytes_per_sec` 0);
//! `RESPONSE_BUDGET=67108864` runs it with the default 64 MiB/s instead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip::auth::{self, NodeIdentity};
use gossip::node::GossipNode;
use gossip::protocol::chain;
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::tcp::Encryption;
use gossip::transport::{Peer, TcpConfig, TcpTransport, Transport};
use gossip::{Event, NodeId};
use uuid::Uuid;

const PAYLOAD: usize = 100;

#[path = "common/bulk.rs"]
mod bulk;
use bulk::bulk_config;

async fn node(
    id: NodeId,
    store: Arc<MemoryEventStore>,
    encryption: Encryption,
    identity: Option<NodeIdentity>,
) -> (GossipNode, Arc<TcpTransport>) {
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
        encryption,
        identity: identity.clone(),
        ..TcpConfig::new(id, "bench", SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    let transport = Arc::new(TcpTransport::bind(t).await.expect("bind"));
    let dyn_t: Arc<dyn Transport> = transport.clone();
    let node = match identity {
        Some(i) => GossipNode::with_identity(g, store, dyn_t, i),
        None => GossipNode::new(g, store, dyn_t),
    }
    .expect("node");
    node.start().await.expect("start");
    (node, transport)
}

fn event(origin: NodeId, seq: u64, now: u64) -> Event {
    Event {
        id: Uuid::now_v7(),
        origin,
        seq,
        hlc: seq,
        created_at_ms: now + seq / 1000,
        payload: Bytes::from(vec![(seq % 251) as u8; PAYLOAD]),
        sig: Bytes::new(),
    }
}

fn sign_verify() {
    const N: u64 = 20_000;
    let me = NodeIdentity::generate();
    let now = gossip::node::now_ms();
    let mut events: Vec<Event> = (2..N + 2).map(|s| event(me.node_id(), s, now)).collect();
    let t = Instant::now();
    for e in &mut events {
        me.sign_event(e);
    }
    let sign = t.elapsed();
    let key = auth::verify_identity_event(&me.identity_event()).expect("identity");
    let t = Instant::now();
    for e in &events {
        auth::verify_event(e, &key).expect("verify");
    }
    let verify = t.elapsed();
    let first = me.identity_event();
    let mut chained: Vec<Event> = (2..N + 2).map(|s| event(me.node_id(), s, now)).collect();
    me.sign_chain(&mut chained, chain::chain_hash(&first));
    let mut keys = std::collections::HashMap::new();
    auth::verify::verify_batch(&[first], &mut keys);
    let t = Instant::now();
    for batch in chained.chunks(2_000) {
        let v = auth::verify::verify_batch(batch, &mut keys);
        assert!(v.iter().all(|r| r.is_ok()), "a sealed chain verifies");
    }
    let batched = t.elapsed();
    println!("ed25519, {N} events of {PAYLOAD}-byte payloads, one thread:");
    println!(
        "  sign   {:>9.0} events/s ({:.1} us each)",
        N as f64 / sign.as_secs_f64(),
        sign.as_secs_f64() * 1e6 / N as f64
    );
    println!(
        "  verify {:>9.0} events/s ({:.1} us each)",
        N as f64 / verify.as_secs_f64(),
        verify.as_secs_f64() * 1e6 / N as f64
    );
    println!(
        "  sealed chain, batches of 2,000: verify {:>9.0} events/s ({:.2} us each, all cores)",
        N as f64 / batched.as_secs_f64(),
        batched.as_secs_f64() * 1e6 / N as f64
    );
}

/// One catch-up of `total` events from a fresh source; returns the elapsed time.
async fn catchup(total: u64, encryption: Encryption, signed: bool) -> Duration {
    let (src_id, src_identity, src_store) = source(total, signed).await;
    catchup_from(src_id, src_identity, src_store, total, encryption).await
}

/// A source's id, its identity if `signed`, and its store holding `total` events of its
/// own (sealed as one chain if signed).
async fn source(total: u64, signed: bool) -> (NodeId, Option<NodeIdentity>, Arc<MemoryEventStore>) {
    let src_identity = NodeIdentity::generate();
    let src_id = if signed {
        src_identity.node_id()
    } else {
        NodeId::random()
    };
    let src_store = Arc::new(MemoryEventStore::new());
    let now = gossip::node::now_ms();
    // Sealed as one chain, as a node seals its own events.
    let mut prev = chain::chain_hash(&src_identity.identity_event());
    for chunk in (1..=total).collect::<Vec<_>>().chunks(100_000) {
        let events: Vec<Event> = chunk
            .iter()
            .map(|&seq| {
                if !signed {
                    return event(src_id, seq, now);
                }
                if seq == 1 {
                    return src_identity.identity_event();
                }
                let mut e = event(src_id, seq, now);
                src_identity.sign_event_after(&mut e, &prev);
                prev = chain::chain_hash(&e);
                e
            })
            .collect();
        src_store.save_many(events).await.expect("prefill");
    }
    (src_id, signed.then_some(src_identity), src_store)
}

/// A cold node catches up the `total` events of `src_store` from a node running on it.
async fn catchup_from(
    src_id: NodeId,
    src_identity: Option<NodeIdentity>,
    src_store: Arc<MemoryEventStore>,
    total: u64,
    encryption: Encryption,
) -> Duration {
    let signed = src_identity.is_some();
    let cold_identity = NodeIdentity::generate();
    let cold_id = if signed {
        cold_identity.node_id()
    } else {
        NodeId::random()
    };
    let ids = |i: NodeIdentity| signed.then_some(i);
    let (src, _src_t) = node(src_id, src_store, encryption.clone(), src_identity).await;
    let cold_store = Arc::new(MemoryEventStore::new());
    let (cold, cold_t) = node(cold_id, cold_store.clone(), encryption, ids(cold_identity)).await;
    // Let the start-up rounds pass before the cold node knows its peer (see tcp_catchup).
    while cold.stats().rounds == 0 || src.stats().rounds == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    cold.add_peer(Peer::new(src_id, src.transport().local_addr()))
        .expect("peer");
    let started = Instant::now();
    let mut empty = 0u32;
    loop {
        let r = cold.gossip_with(src_id).await.expect("exchange");
        if std::env::var("BENCH_TRACE").is_ok() {
            eprintln!("{:?} {r:?}", started.elapsed());
        }
        assert!(r.success, "{r:?}");
        if cold_store.clock().await.expect("clock").get(&src_id) >= total {
            break;
        }
        // A reconcile round that only finds the difference brings no event yet; a run of
        // empty exchanges means the catch-up is stuck.
        empty = if r.events_received > 0 { 0 } else { empty + 1 };
        assert!(empty < 5, "5 exchanges in a row brought nothing: {r:?}");
    }
    let elapsed = started.elapsed();
    assert_eq!(cold.stats().rejected_events, 0);
    if signed && let Some(link) = cold_t.peer_stats().into_iter().find(|s| s.peer == src_id) {
        let wire = (link.bytes_in + link.bytes_out) as f64;
        println!(
            "    {:.0} wire bytes per event: {:.3} per payload byte ({PAYLOAD} B payloads, \
             a 96-byte seal each)",
            wire / total as f64,
            wire / (total * PAYLOAD as u64) as f64
        );
    }
    cold.stop().await;
    src.stop().await;
    elapsed
}

fn report(label: &str, total: u64, d: Duration) -> f64 {
    let rate = total as f64 / d.as_secs_f64();
    println!("  {label:<28} {total} events in {d:>9.2?}: {rate:>9.0} events/s");
    rate
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let total: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let signed_total: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    sign_verify();

    println!("catch-up over loopback TCP, unsigned events, {PAYLOAD}-byte payloads:");
    let (mut plain, mut noise) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let d = catchup(total, Encryption::Plaintext, false).await;
        plain.push(report("plaintext", total, d));
        let d = catchup(total, Encryption::Noise { psk: None }, false).await;
        noise.push(report("Noise XX", total, d));
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!(
        "  Noise / plaintext (best of each): {:.0} %",
        100.0 * best(&noise) / best(&plain)
    );

    println!("catch-up of signed events, verified on receipt, Noise XXpsk3:");
    let psk = Encryption::Noise {
        psk: Some(
            auth::RoomKey::derive("bench", b"secret")
                .expect("key")
                .bytes(),
        ),
    };
    // One source, three cold nodes in turn (the machine is shared: runs vary).
    let (src_id, src_identity, src_store) = source(signed_total, true).await;
    let mut rates = Vec::new();
    for _ in 0..3 {
        let d = catchup_from(
            src_id,
            src_identity.clone(),
            src_store.clone(),
            signed_total,
            psk.clone(),
        )
        .await;
        rates.push(report("signed + XXpsk3", signed_total, d));
    }
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "  signed catch-up: best {:.0} events/s, median {:.0}",
        best(&rates),
        sorted[sorted.len() / 2]
    );
}
