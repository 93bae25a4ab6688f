//! The behaviour every [`Transport`] must have, run on each implementation: memory, TCP,
//! and (with `--features http`) HTTP. Drawn from the TCP tests: requests answered both
//! ways and concurrently, one-way sends, deadlines, unreachable and stopped peers, restart
//! on the same address, and two nodes converging over it.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use common::{eventually, fast_config};
use gossip::node::GossipNode;
use gossip::store::{EventStore, MemoryEventStore};
use gossip::transport::{
    Inbound, MemoryNetwork, Peer, TcpConfig, TcpTransport, Transport, TransportError,
};
use gossip::{Event, Message, NodeId, VectorClock};

type Made = Pin<Box<dyn Future<Output = Arc<dyn Transport>> + Send>>;

/// Makes transports of one kind that can reach each other, and names a dead address.
struct Kind {
    name: &'static str,
    make: Box<dyn Fn(NodeId) -> Made + Send + Sync>,
    dead: String,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn memory() -> Kind {
    let net = MemoryNetwork::new(3);
    Kind {
        name: "memory",
        make: Box::new(move |id| {
            let t: Arc<dyn Transport> = Arc::new(net.transport(id, format!("mem-{id}")));
            Box::pin(async move { t })
        }),
        dead: "mem-nobody".into(),
    }
}

fn tcp() -> Kind {
    Kind {
        name: "tcp",
        make: Box::new(|id| {
            Box::pin(async move {
                let cfg = TcpConfig {
                    io_timeout: Duration::from_secs(5),
                    ..TcpConfig::new(id, "contract", loopback())
                };
                Arc::new(TcpTransport::bind(cfg).await.unwrap()) as Arc<dyn Transport>
            })
        }),
        dead: format!("127.0.0.1:{}", free_port()),
    }
}

#[cfg(feature = "http")]
fn http() -> Kind {
    use gossip::transport::http::{HttpConfig, HttpTransport};
    Kind {
        name: "http",
        make: Box::new(|id| {
            Box::pin(async move {
                Arc::new(HttpTransport::bind(HttpConfig::new(id, loopback())).unwrap())
                    as Arc<dyn Transport>
            })
        }),
        dead: format!("127.0.0.1:{}", free_port()),
    }
}

fn ev(origin: NodeId, seq: u64) -> Event {
    Event {
        id: uuid::Uuid::now_v7(),
        origin,
        seq,
        hlc: seq,
        created_at_ms: 1,
        payload: Bytes::from(vec![seq as u8; 100]),
        sig: Bytes::new(),
    }
}

struct End {
    id: NodeId,
    t: Arc<dyn Transport>,
    rx: mpsc::Receiver<Inbound>,
}

impl End {
    fn peer(&self) -> Peer {
        Peer::new(self.id, self.t.local_addr())
    }

    /// The next message that arrives, skipping nothing else: anything else fails.
    async fn next_message(&mut self) -> (Peer, Message, Option<gossip::transport::Reply>) {
        let got = tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a message within 10 s")
            .expect("inbound open");
        match got {
            Inbound::Message {
                from,
                message,
                reply,
                wire_bytes,
            } => {
                assert!(wire_bytes > 0);
                (from, message, reply)
            }
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

async fn end(kind: &Kind) -> End {
    let id = NodeId::random();
    let t = (kind.make)(id).await;
    let (tx, rx) = mpsc::channel(64);
    t.start(tx).await.unwrap();
    End { id, t, rx }
}

/// Answers every request on `e` with a digest response carrying `events`.
fn responder(mut e: End, events: Vec<Event>) -> tokio::task::JoinHandle<End> {
    tokio::spawn(async move {
        while let Some(item) = e.rx.recv().await {
            if let Inbound::Message {
                reply: Some(reply), ..
            } = item
            {
                reply.send(Message::DigestResponse {
                    from: e.id,
                    events: events.clone(),
                    clock: VectorClock::new(),
                });
            }
        }
        e
    })
}

async fn requests_are_answered_with_the_sender_known(kind: &Kind) {
    let a = end(kind).await;
    let mut b = end(kind).await;
    let digest = Message::Digest {
        from: a.id,
        entries: Vec::new(),
    };
    let (t, peer, d) = (a.t.clone(), b.peer(), digest.clone());
    let ask = tokio::spawn(async move { t.request(&peer, d, Duration::from_secs(10)).await });
    let (from, message, reply) = b.next_message().await;
    assert_eq!(from.id, a.id, "{}", kind.name);
    assert_eq!(
        from.addr,
        a.t.local_addr(),
        "{}: the listen address",
        kind.name
    );
    assert_eq!(message, digest);
    let events = vec![ev(b.id, 1), ev(b.id, 2)];
    let answer = Message::DigestResponse {
        from: b.id,
        events: events.clone(),
        clock: VectorClock::new(),
    };
    assert!(
        reply
            .expect("a request carries a reply")
            .send(answer.clone())
    );
    let (got, bytes) = ask.await.unwrap().unwrap();
    assert_eq!(got, answer, "{}", kind.name);
    assert!(
        bytes >= answer.encoded_len(),
        "{}: {bytes} wire bytes",
        kind.name
    );
    a.t.stop().await;
    b.t.stop().await;
}

async fn sends_arrive_without_a_reply(kind: &Kind) {
    let a = end(kind).await;
    let mut b = end(kind).await;
    let push = Message::Push {
        from: a.id,
        events: vec![ev(a.id, 1)],
    };
    a.t.send(&b.peer(), push.clone()).await.unwrap();
    let (from, message, reply) = b.next_message().await;
    assert_eq!((from.id, message), (a.id, push), "{}", kind.name);
    assert!(reply.is_none(), "{}: a send expects no reply", kind.name);
    a.t.stop().await;
    b.t.stop().await;
}

async fn concurrent_requests_both_ways_all_succeed(kind: &Kind) {
    let a = end(kind).await;
    let b = end(kind).await;
    let (ta, tb, pa, pb, ia, ib) = (a.t.clone(), b.t.clone(), a.peer(), b.peer(), a.id, b.id);
    let ra = responder(a, vec![ev(ia, 1)]);
    let rb = responder(b, vec![ev(ib, 1)]);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (ta, tb, pa, pb) = (ta.clone(), tb.clone(), pa.clone(), pb.clone());
        set.spawn(async move {
            let d = Message::Digest {
                from: ia,
                entries: Vec::new(),
            };
            ta.request(&pb, d, Duration::from_secs(10))
                .await
                .map(|r| r.0.from() == ib)
        });
        set.spawn(async move {
            let d = Message::Digest {
                from: ib,
                entries: Vec::new(),
            };
            tb.request(&pa, d, Duration::from_secs(10))
                .await
                .map(|r| r.0.from() == ia)
        });
    }
    while let Some(r) = set.join_next().await {
        assert!(
            r.unwrap().unwrap(),
            "{}: answered by the right peer",
            kind.name
        );
    }
    ta.stop().await;
    tb.stop().await;
    ra.abort();
    rb.abort();
}

async fn an_unanswered_request_times_out_at_its_deadline(kind: &Kind) {
    let a = end(kind).await;
    let mut b = end(kind).await;
    let (t, peer, me) = (a.t.clone(), b.peer(), a.id);
    // One answered request first: a link that needs a handshake is up before the short
    // deadline starts (a handshake on a loaded machine can take longer than 300 ms).
    let warm = {
        let (t, peer) = (t.clone(), peer.clone());
        tokio::spawn(async move {
            let d = Message::Digest {
                from: me,
                entries: Vec::new(),
            };
            t.request(&peer, d, Duration::from_secs(10)).await
        })
    };
    let (_, _, reply) = b.next_message().await;
    reply.expect("a reply").send(Message::Digest {
        from: b.id,
        entries: Vec::new(),
    });
    warm.await.unwrap().unwrap();
    let started = Instant::now();
    let ask = tokio::spawn(async move {
        let d = Message::Digest {
            from: me,
            entries: Vec::new(),
        };
        t.request(&peer, d, Duration::from_millis(300)).await
    });
    // Hold the reply without answering until the requester has given up.
    let (_, _, reply) = b.next_message().await;
    let r = ask.await.unwrap();
    drop(reply);
    assert!(
        matches!(r, Err(TransportError::Timeout(_))),
        "{}: {r:?}",
        kind.name
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    a.t.stop().await;
    b.t.stop().await;
}

async fn unreachable_and_stopped_peers_fail_and_restart_works(kind: &Kind) {
    let a = end(kind).await;
    let b = end(kind).await;
    let digest = Message::Digest {
        from: a.id,
        entries: Vec::new(),
    };
    let dead = Peer::new(NodeId::random(), kind.dead.as_str());
    let r =
        a.t.request(&dead, digest.clone(), Duration::from_secs(5))
            .await;
    assert!(r.is_err(), "{}: a dead address answered {r:?}", kind.name);
    let r = a.t.send(&dead, digest.clone()).await;
    // A send may be queued by a transport that dials in the background; it must not panic.
    let _ = r;

    let addr = b.t.local_addr();
    b.t.stop().await;
    b.t.stop().await; // idempotent
    let r =
        a.t.request(&b.peer(), digest.clone(), Duration::from_secs(5))
            .await;
    assert!(r.is_err(), "{}: a stopped peer answered {r:?}", kind.name);

    // Restarted, it listens where it did and answers again.
    let (tx, rx) = mpsc::channel(64);
    b.t.start(tx).await.unwrap();
    assert_eq!(b.t.local_addr(), addr, "{}", kind.name);
    let b = End {
        id: b.id,
        t: b.t,
        rx,
    };
    let peer = b.peer();
    let rb = responder(b, Vec::new());
    let mut ok = false;
    // A transport with backoff may refuse a dial or two right after the restart.
    for _ in 0..50 {
        if a.t
            .request(&peer, digest.clone(), Duration::from_secs(5))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "{}: no answer after the restart", kind.name);
    a.t.stop().await;
    rb.abort();
}

async fn two_nodes_converge_over_it(kind: &Kind) {
    let mut nodes = Vec::new();
    let mut stores = Vec::new();
    for _ in 0..2 {
        let id = NodeId::random();
        let store = Arc::new(MemoryEventStore::new());
        let node = GossipNode::new(fast_config(id), store.clone(), (kind.make)(id).await).unwrap();
        node.start().await.unwrap();
        nodes.push(node);
        stores.push(store);
    }
    let peer = |n: &GossipNode| Peer::new(n.id(), n.transport().local_addr());
    nodes[0].add_peer(peer(&nodes[1])).unwrap();
    nodes[1].add_peer(peer(&nodes[0])).unwrap();
    for i in 0..20 {
        nodes[i % 2].create_event(format!("e{i}")).await.unwrap();
    }
    let s = stores.clone();
    eventually(
        Duration::from_secs(15),
        "both stores hold all 20 events",
        || {
            let s = s.clone();
            async move {
                s[0].count().await.unwrap() == 20
                    && s[1].count().await.unwrap() == 20
                    && s[0].clock().await.unwrap() == s[1].clock().await.unwrap()
            }
        },
    )
    .await;
    for n in &nodes {
        n.stop().await;
    }
}

async fn contract(kind: Kind) {
    eprintln!("{}: requests", kind.name);
    requests_are_answered_with_the_sender_known(&kind).await;
    eprintln!("{}: sends", kind.name);
    sends_arrive_without_a_reply(&kind).await;
    eprintln!("{}: concurrent requests", kind.name);
    concurrent_requests_both_ways_all_succeed(&kind).await;
    eprintln!("{}: deadlines", kind.name);
    an_unanswered_request_times_out_at_its_deadline(&kind).await;
    eprintln!("{}: unreachable, stopped, restarted", kind.name);
    unreachable_and_stopped_peers_fail_and_restart_works(&kind).await;
    eprintln!("{}: two nodes converge", kind.name);
    two_nodes_converge_over_it(&kind).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_transport_meets_the_contract() {
    contract(memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_transport_meets_the_contract() {
    contract(tcp()).await;
}

#[cfg(feature = "http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_transport_meets_the_contract() {
    contract(http()).await;
}
