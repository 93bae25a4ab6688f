//! What a hostile member costs a node, on loopback: the victim's memory (RSS of this
//! process, which runs every node) and the honest delivery latency (bob creates an event,
//! alice's store has it) before and during each attack.
//!
//! ```text
//! cargo run --release --example hostile_bench
//! ```
//!
//! Attacks (members authenticate properly: Noise XX and a signed `Hello`, see
//! `tests/hostile_common`): 400 empty digests a second from one member; N slow readers
//! (8, then 32) that ask for everything and never read; 63 idle members, then a new honest
//! peer joining; and the engine's budgets (issue 12 part B): one member pushing 10,000
//! signed events/s, 60,000 sybil identities (then a late joiner), 40 undecodable events
//! of 500 KB. Alice holds 24 events of 120 KB, so "everything" is ~2.9 MB.

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
use gossip::{Message, NodeId, VectorClock};
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
    node.set_payload_validator(Some(Arc::new(|p: &[u8]| {
        gossip::app::model::AppOp::decode(p).is_ok()
    })));
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
            .create_event(chat(&format!("probe {i}")))
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

fn empty_digest(from: NodeId, xid: u64) -> Frame {
    Frame::Request {
        xid,
        message: Message::Digest {
            from,
            clock: VectorClock::new(),
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
    let mut held = Vec::new();
    for (from, m) in members {
        let (mut tx, rx) = m.split();
        held.push((
            tokio::spawn(async move {
                for xid in 1..=64 {
                    if tx.send(&empty_digest(from, xid)).await.is_err() {
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
            .create_event(chat(&format!("{i}").repeat(120 * 1024 / (1 + i / 10))))
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

    // 400 empty digests a second, answers read.
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
    let asking = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(2500));
        let mut xid = 0;
        loop {
            tick.tick().await;
            xid += 1;
            if tx.send(&empty_digest(from, xid)).await.is_err() {
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
            "400 empty digests/s ({:.1} MB/s answered)",
            bytes as f64 / secs / 1e6
        ),
        lat,
        (peak.await.unwrap_or(0), rss_bytes()),
    );

    flood(&alice, &bob).await;
    sybils(&alice, &bob).await;
    undecodable(&alice, &bob).await;

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

/// A member of `key` on `alice` whose incoming frames are read and dropped.
async fn reading_member(alice: &Node, key: &NodeIdentity) -> hostile_common::MemberTx {
    let m = Member::join(alice.addr(), &Claim::honest(key, ROOM))
        .await
        .expect("join");
    let (tx, mut rx) = m.split();
    tokio::spawn(async move { rx.drain(&AtomicU64::new(0)).await });
    tx
}

fn signed(
    key: &NodeIdentity,
    first: u64,
    n: usize,
    payload: impl Fn(u64) -> Vec<u8>,
) -> Vec<gossip::Event> {
    (first..first + n as u64)
        .map(|seq| {
            let mut e = gossip::Event {
                id: uuid::Uuid::new_v4(),
                origin: key.node_id(),
                seq,
                hlc: seq,
                created_at_ms: 1,
                payload: bytes::Bytes::from(payload(seq)),
                sig: bytes::Bytes::new(),
            };
            key.sign_event(&mut e);
            e
        })
        .collect()
}

fn push_of(from: NodeId, events: Vec<gossip::Event>) -> Frame {
    Frame::Push {
        message: Message::Push { from, events },
    }
}

/// One member pushes 10,000 signed events a second (20 every 2 ms) while bob probes.
async fn flood(alice: &Node, bob: &Node) {
    let key = NodeIdentity::generate();
    let from = key.node_id();
    let mut events = vec![key.identity_event()];
    events.extend(signed(&key, 2, 40_000, |seq| {
        format!("flood {seq}").into_bytes()
    }));
    let mut tx = reading_member(alice, &key).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = peak_rss(stop.clone());
    let before = alice.node.stats();
    let flooding = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        let started = Instant::now();
        let mut sent = 0usize;
        for chunk in events.chunks(20) {
            tick.tick().await;
            if tx.send(&push_of(from, chunk.to_vec())).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        (sent, started.elapsed())
    });
    let lat = delivery(alice, bob, 100).await;
    flooding.abort();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let after = alice.node.stats();
    let held = alice.node.vector_clock().await.expect("clock").get(&from);
    report(
        &format!(
            "member pushes 10,000 signed events/s: {held} taken, {} deferred",
            after.deferred_events - before.deferred_events
        ),
        lat,
        (peak.await.unwrap_or(0), rss_bytes()),
    );
}

/// 60,000 identity events from one member, then bob probes; then a late joiner.
async fn sybils(alice: &Node, bob: &Node) {
    let key = NodeIdentity::generate();
    let ids: Vec<gossip::Event> = (0..60_000)
        .map(|_| NodeIdentity::generate().identity_event())
        .collect();
    let mut tx = reading_member(alice, &key).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = peak_rss(stop.clone());
    let before = alice.node.stats();
    let t = Instant::now();
    for chunk in ids.chunks(100) {
        if tx
            .send(&push_of(key.node_id(), chunk.to_vec()))
            .await
            .is_err()
        {
            break;
        }
    }
    let pushed = t.elapsed();
    let lat = delivery(alice, bob, 100).await;
    let dave = node().await;
    dave.node.add_peer(bob_peer(alice)).expect("peer");
    let want = alice.node.vector_clock().await.expect("clock");
    let t = Instant::now();
    loop {
        let _ = dave.node.gossip_with(alice.node.id()).await;
        let have = dave.node.vector_clock().await.expect("clock");
        if want.iter().all(|(o, s)| have.get(&o) >= s) || t.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let joined = t.elapsed();
    dave.node.stop().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let after = alice.node.stats();
    report(
        &format!(
            "60,000 sybils pushed in {:.1} s: {} origins held, {} deferred; a late joiner \
             had all of alice's {} origins in {:.2} s",
            pushed.as_secs_f64(),
            want.len(),
            after.deferred_origins - before.deferred_origins,
            want.len(),
            joined.as_secs_f64()
        ),
        lat,
        (peak.await.unwrap_or(0), rss_bytes()),
    );
}

/// 40 events of 500 KB that no app decodes (the validator is `AppOp::decode`).
async fn undecodable(alice: &Node, bob: &Node) {
    let key = NodeIdentity::generate();
    let from = key.node_id();
    let mut events = vec![key.identity_event()];
    events.extend(signed(&key, 2, 40, |seq| vec![0xFF ^ seq as u8; 500_000]));
    let mut frames = vec![events.drain(..2).collect::<Vec<_>>()];
    frames.extend(events.into_iter().map(|e| vec![e]));
    let mut tx = reading_member(alice, &key).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = peak_rss(stop.clone());
    let before = alice.node.stats();
    let sending = tokio::spawn(async move {
        for f in frames {
            if tx.send(&push_of(from, f)).await.is_err() {
                break;
            }
        }
        tx
    });
    let lat = delivery(alice, bob, 100).await;
    let _ = sending.await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let after = alice.node.stats();
    let held = alice.node.vector_clock().await.expect("clock").get(&from);
    let at_bob = bob.node.vector_clock().await.expect("clock").get(&from);
    report(
        &format!(
            "40 undecodable 500 KB events: {} held (bob {}), {} refused by the quota",
            held.saturating_sub(1),
            at_bob.saturating_sub(1),
            after.quota_refused - before.quota_refused
        ),
        lat,
        (peak.await.unwrap_or(0), rss_bytes()),
    );
}

/// An app chat op (honest payloads pass the app's validator).
fn chat(text: &str) -> Vec<u8> {
    let op = gossip::app::model::AppOp::Chat { text: text.into() };
    let mut out = gossip::app::model::OP_FORMAT_VERSION.to_le_bytes().to_vec();
    out.extend(gossip::protocol::codec::encode(&op).expect("encode"));
    out
}
