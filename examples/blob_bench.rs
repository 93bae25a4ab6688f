//! Blob transfer speed on loopback over Noise, and chat latency during it.
//!
//! ```text
//! cargo run --release --example blob_bench -- [MIB] [RATE_MIB_S]
//! ```
//!
//! Two nodes with the app's settings (signed events, Noise XX, the app's 3 s request
//! deadline, the default 64 MiB/s response budget per peer unless RATE_MIB_S is given; 0
//! lifts it): alice offers a file of MIB MiB (default 1024) from her blob store, bob
//! fetches it into his (every chunk checked). Meanwhile alice creates a chat event every
//! 20 ms and bob measures its delivery (created to held in bob's store). Prints the
//! throughput and the chat p50/p99/max during the transfer, and an idle baseline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gossip::NodeId;
use gossip::auth::NodeIdentity;
use gossip::blobs::fetch::FetchEvents;
use gossip::blobs::{BlobLimits, BlobStore, FetchOptions, Progress, StoreServer, fetch};
use gossip::node::{GossipConfig, GossipNode};
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::{Peer, TcpConfig, TcpTransport, Transport};

struct Node {
    node: GossipNode,
    transport: Arc<TcpTransport>,
}

async fn node(rate: u64) -> Node {
    let key = NodeIdentity::generate();
    let g = GossipConfig {
        gossip_timeout: Duration::from_secs(3),
        anti_entropy_interval: Duration::from_secs(30),
        ..GossipConfig::new(key.node_id())
    };
    let t = TcpConfig {
        max_message_size_bytes: g.max_message_size_bytes,
        io_timeout: g.gossip_timeout,
        identity: Some(key.clone()),
        response_bytes_per_sec: rate,
        ..TcpConfig::new(
            key.node_id(),
            "bench",
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
    };
    let transport = Arc::new(TcpTransport::bind(t).await.expect("bind"));
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let dyn_t: Arc<dyn Transport> = transport.clone();
    let node = GossipNode::with_identity(g, store, dyn_t, key).expect("node");
    node.start().await.expect("start");
    Node { node, transport }
}

struct Quiet;
impl FetchEvents for Quiet {
    fn progress(&mut self, _: Progress) {}
    fn refused(&mut self, peer: NodeId, why: String) {
        eprintln!("refused from {peer}: {why}");
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Chat delivery latencies (ms) while `busy` runs: alice creates an event every 20 ms.
async fn chat_latency(alice: &GossipNode, bob: &GossipNode, until: impl Fn() -> bool) -> Vec<f64> {
    let mut lat = Vec::new();
    let me = alice.id();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while !until() {
        tick.tick().await;
        let t0 = Instant::now();
        let Ok(e) = alice
            .create_event(&b"chat line during the transfer"[..])
            .await
        else {
            continue;
        };
        let deadline = t0 + Duration::from_secs(5);
        while bob.vector_clock().await.map(|c| c.get(&me)).unwrap_or(0) < e.seq {
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    lat
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let rate: u64 = args
        .next()
        .and_then(|a| a.parse::<u64>().ok())
        .map_or(64 << 20, |r| r << 20);
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).expect("create"));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for c in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&block).expect("write");
        }
    }
    let limits = BlobLimits {
        max_file: 64 << 30,
        quota: 64 << 30,
    };
    let a_store = Arc::new(BlobStore::open(tmp.path().join("a"), None, limits).expect("store"));
    let t = Instant::now();
    let manifest = a_store.add_file(&src).expect("add");
    println!(
        "hashed and stored {mib} MiB in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    std::fs::remove_file(&src).expect("rm");
    let (alice, bob) = (node(rate).await, node(rate).await);
    alice
        .node
        .set_blob_server(Arc::new(StoreServer::new(a_store)));
    bob.node
        .add_peer(Peer::new(
            alice.node.id(),
            alice.transport.socket_addr().to_string(),
        ))
        .expect("peer");
    alice
        .node
        .add_peer(Peer::new(
            bob.node.id(),
            bob.transport.socket_addr().to_string(),
        ))
        .expect("peer");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_until = Instant::now() + Duration::from_secs(3);
    let idle = chat_latency(&alice.node, &bob.node, || Instant::now() > idle_until).await;

    let b_store = Arc::new(BlobStore::open(tmp.path().join("b"), None, limits).expect("store"));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fetcher = {
        let (node, store, done) = (bob.node.clone(), b_store.clone(), done.clone());
        let from = alice.node.id();
        let id = manifest.id();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = fetch(
                &node,
                store,
                id,
                Some(from),
                FetchOptions::default(),
                &mut Quiet,
            )
            .await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            (r, t.elapsed())
        })
    };
    let busy = chat_latency(&alice.node, &bob.node, || {
        done.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    let (result, took) = fetcher.await.expect("join");
    result.expect("fetch");
    assert!(b_store.has(manifest.id()));
    let mb = manifest.size as f64 / 1e6;
    println!(
        "fetched {mib} MiB in {:.2} s: {:.0} MB/s ({:.0} MiB/s), response budget {}",
        took.as_secs_f64(),
        mb / took.as_secs_f64(),
        manifest.size as f64 / (1 << 20) as f64 / took.as_secs_f64(),
        if rate == 0 {
            "unlimited".to_string()
        } else {
            format!("{} MiB/s", rate >> 20)
        }
    );
    for (what, l) in [("idle", &idle), ("during the transfer", &busy)] {
        println!(
            "chat delivery {what}: n={} p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.len(),
            pct(l, 0.5),
            pct(l, 0.99),
            l.last().copied().unwrap_or(f64::NAN)
        );
    }
    alice.node.stop().await;
    bob.node.stop().await;
}
