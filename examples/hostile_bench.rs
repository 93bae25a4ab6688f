//! What a hostile member costs a node, on loopback: the victim's memory (RSS of this
//! process, which runs every node) and the honest delivery latency (bob creates an event,
//! alice's store has it) before and during each attack.
//!
//! ```text
//! cargo run --release --example hostile_bench
//! ```
//!
//! Attacks (members authenticate properly: Noise XX and a signed `Hello`, see
//! `tests/hostile_common`): 400 digests a second asking for everything from one member; N
//! slow readers (8, then 32) that ask for everything and never read; 63 idle members, then
//! a new honest peer joining. Alice holds 24 events of 120 KB, so "everything" is ~2.9 MB.

#[path = "../tests/hostile_common/mod.rs"]
mod hostile_common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use gossip::auth::NodeIdentity;
use gossip::node::{GossipConfig, GossipNode};
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::codec::Frame;
use gossip::transport::{TcpConfig, TcpTransport, Transport};
use gossip::{Message, NodeId};
use hostile_common::{Claim, Member, dial_from, rss_bytes};

const ROOM: &str = "bench";

struct Node {
    node: GossipNode,
    transport: Arc<TcpTransport>,
}

impl Node {
    fn addr(&self) -> SocketAddr {
        self.transport.socket_addr()
    }
}

async fn node() -> Node {
    let key = NodeIdentity::generate();
    let g = GossipConfig {
        gossip_interval: Duration::from_millis(200),
        gossip_timeout: Duration::from_secs(5),
        ..GossipConfig::new(key.node_id())
    };
    let t = TcpConfig {
        io_timeout: Duration::from_secs(2),
        identity: Some(key.clone()),
        ..TcpConfig::new(key.node_id(), ROOM, SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    let transport = Arc::new(TcpTransport::bind(t).await.expect("bind"));
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let dyn_t: Arc<dyn Transport> = transport.clone();
    let node = GossipNode::with_identity(g, store, dyn_t, key).expect("node");
    node.start().await.expect("start");
    Node { node, transport }
}

fn loopback(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        3 + (i / 250) as u8,
        1 + (i % 250) as u8,
    ))
}

/// Bob creates `n` events, one every 20 ms; the time each takes to reach alice's store.
async fn delivery(alice: &Node, bob: &Node, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let e = bob
            .node
            .create_event(format!("probe {i}"))
            .await
            .expect("create");
        loop {
            if alice
                .node
                .vector_clock()
                .await
                .expect("clock")
                .get(&e.origin)
                >= e.seq
            {
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        out.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut lat: Vec<Duration>, rss: (u64, u64)) {
    println!(
        "| {what} | {:.1} ms | {:.1} ms | {} MB | {} MB |",
        pct(&mut lat, 0.5).as_secs_f64() * 1e3,
        pct(&mut lat, 0.99).as_secs_f64() * 1e3,
        rss.0 >> 20,
        rss.1 >> 20,
    );
}

/// A digest that asks for every event of `origin` (it claims to hold none).
fn ask_everything(from: NodeId, origin: NodeId, xid: u64) -> Frame {
    Frame::Request {
        xid,
        message: Message::Digest {
            from,
            entries: vec![(origin, 0)],
        },
    }
}

/// Samples RSS every 20 ms until `stop`; returns the peak.
fn peak_rss(stop: Arc<std::sync::atomic::AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = rss_bytes();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss_bytes());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    })
}

async fn slow_readers(alice: &Node, bob: &Node, n: usize, first_ip: usize) {
    let mut members = Vec::new();
    for i in 0..n {
        let key = NodeIdentity::generate();
        let Ok(stream) = dial_from(loopback(first_ip + i), alice.addr()).await else {
            continue;
        };
        if let Ok(m) = Member::join_on(stream, &Claim::honest(&key, ROOM)).await {
            members.push((key.node_id(), m));
        }
    }
    let joined = members.len();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = peak_rss(stop.clone());
    let origin = bob.node.id();
    let mut held = Vec::new();
    for (from, m) in members {
        let (mut tx, rx) = m.split();
        held.push((
            tokio::spawn(async move {
                for xid in 1..=64 {
                    if tx.send(&ask_everything(from, origin, xid)).await.is_err() {
                        break;
                    }
                }
                tx
            }),
            rx,
        ));
    }
    let lat = delivery(alice, bob, 100).await;
    // Wait for the victim to cut them (they never read).
    let t = Instant::now();
    while alice.transport.connection_count() > 2 && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cut = t.elapsed();
    drop(held);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = peak.await.unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    report(
        &format!(
            "{joined} slow readers (cut {:.1} s after the probes)",
            cut.as_secs_f64()
        ),
        lat,
        (peak, rss_bytes()),
    );
}

#[tokio::main]
async fn main() {
    let alice = node().await;
    let bob = node().await;
    alice.node.add_peer(bob_peer(&bob)).expect("peer");
    bob.node.add_peer(bob_peer(&alice)).expect("peer");
    for i in 0..24 {
        bob.node
            .create_event(vec![i as u8; 120 * 1024])
            .await
            .expect("create");
    }
    let want = bob
        .node
        .vector_clock()
        .await
        .expect("clock")
        .get(&bob.node.id());
    while alice
        .node
        .vector_clock()
        .await
        .expect("clock")
        .get(&bob.node.id())
        < want
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("| attack | honest p50 | honest p99 | peak RSS | RSS after |");
    println!("|---|---|---|---|---|");
    let base = rss_bytes();
    report(
        "none",
        delivery(&alice, &bob, 100).await,
        (base, rss_bytes()),
    );

    // 400 digests a second asking for all of bob's events, answers read.
    let key = NodeIdentity::generate();
    let m = Member::join(alice.addr(), &Claim::honest(&key, ROOM))
        .await
        .expect("join");
    let (mut tx, mut rx) = m.split();
    let got = Arc::new(AtomicU64::new(0));
    let counted = got.clone();
    let reading = tokio::spawn(async move { rx.drain(&counted).await });
    let from = key.node_id();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = peak_rss(stop.clone());
    let started = Instant::now();
    let origin = bob.node.id();
    let asking = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(2500));
        let mut xid = 0;
        loop {
            tick.tick().await;
            xid += 1;
            if tx.send(&ask_everything(from, origin, xid)).await.is_err() {
                break;
            }
        }
    });
    let lat = delivery(&alice, &bob, 100).await;
    asking.abort();
    reading.abort();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let bytes = got.load(std::sync::atomic::Ordering::Relaxed);
    report(
        &format!(
            "400 ask-everything digests/s ({:.1} MB/s answered)",
            bytes as f64 / secs / 1e6
        ),
        lat,
        (peak.await.unwrap_or(0), rss_bytes()),
    );

    slow_readers(&alice, &bob, 8, 0).await;
    slow_readers(&alice, &bob, 32, 100).await;

    // 63 idle members, then a new honest peer.
    let mut idle = Vec::new();
    for i in 0..63 {
        let key = NodeIdentity::generate();
        if let Ok(stream) = dial_from(loopback(300 + i), alice.addr()).await
            && let Ok(m) = Member::join_on(stream, &Claim::honest(&key, ROOM)).await
        {
            idle.push(m);
        }
    }
    let carol = node().await;
    carol.node.add_peer(bob_peer(&alice)).expect("peer");
    let t = Instant::now();
    let mut joined = None;
    while t.elapsed() < Duration::from_secs(30) {
        if carol
            .node
            .gossip_with(alice.node.id())
            .await
            .is_ok_and(|r| r.success)
        {
            joined = Some(t.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lat = delivery(&alice, &bob, 100).await;
    report(
        &format!(
            "{} idle members; a new peer joined in {}",
            idle.len(),
            joined.map_or("never".into(), |d| format!(
                "{:.0} ms",
                d.as_secs_f64() * 1e3
            ))
        ),
        lat,
        (rss_bytes(), rss_bytes()),
    );
    println!(
        "refused {}, evicted {}",
        alice.transport.refused_inbound(),
        alice.transport.evicted_inbound()
    );
}

fn bob_peer(n: &Node) -> gossip::transport::Peer {
    gossip::transport::Peer::new(n.node.id(), n.addr().to_string())
}
