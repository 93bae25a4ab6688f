//! Prometheus metrics of a running node, for services and for `gossip-chat --metrics`.
//!
//! Everything here reads the node through its public API only ([`GossipNode::stats`],
//! [`GossipNode::peers`], its store, its event streams), so it works with any store and
//! transport:
//!
//! ```no_run
//! # async fn demo(node: gossip::GossipNode) -> std::io::Result<()> {
//! use gossip::metrics::{Metrics, serve};
//! let metrics = Metrics::new(node.clone());
//! let server = serve("127.0.0.1:9095".parse().unwrap(), metrics).await?;
//! println!("scrape http://{}/metrics", server.local_addr());
//! # Ok(()) }
//! ```
//!
//! Counters and gauges are read at each scrape; exchange failures by reason and event
//! arrival ages come from the node's streams, watched by a task that [`Metrics::new`]
//! starts. The text is the OpenMetrics text format of `prometheus-client`, which
//! Prometheus reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::node::now_ms;
use crate::node::{ExchangeResult, GossipNode, PeerState, ReceivedEvent};
use crate::transport::PeerLinkStats;

mod reason;
mod server;
mod timed_store;

pub use reason::{REASONS, reason_of};
pub use server::{MetricsServer, serve};
pub use timed_store::{SaveLatency, TimedStore, save_latency};

type Labels = Vec<(&'static str, String)>;

/// Per-peer link counters, for transports that keep them (see [`Metrics::with_links`]).
pub type LinkStatsFn = Arc<dyn Fn() -> Vec<PeerLinkStats> + Send + Sync>;

/// What the stream watcher measured.
#[derive(Debug, Clone)]
struct Watched {
    failures: Family<Labels, Counter>,
    arrival_age: Histogram,
    last_lag_ms: Arc<AtomicU64>,
    lagged: Counter,
}

/// The metrics of one node. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    node: GossipNode,
    links: Option<LinkStatsFn>,
    save_latency: Option<SaveLatency>,
    watched: Watched,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("node", &self.node.id())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics of `node`; starts a task that watches its exchange and event streams (it
    /// ends when the node is dropped). Call from within a tokio runtime.
    pub fn new(node: GossipNode) -> Self {
        let watched = Watched {
            failures: Family::default(),
            // 1 ms to about 9 hours: a late joiner receives events days old.
            arrival_age: Histogram::new(exponential_buckets(0.001, 4.0, 13)),
            last_lag_ms: Arc::new(AtomicU64::new(0)),
            lagged: Counter::default(),
        };
        // Subscribed here, not in the task, so nothing between now and its first poll is
        // missed.
        let streams = (node.on_gossip_exchange(), node.on_event_received());
        tokio::spawn(watch(streams, watched.clone()));
        Metrics {
            node,
            links: None,
            save_latency: None,
            watched,
        }
    }

    /// Adds per-peer bytes in and out from the transport, e.g.
    /// `move || tcp.peer_stats()` for a [`crate::transport::TcpTransport`].
    pub fn with_links(mut self, links: LinkStatsFn) -> Self {
        self.links = Some(links);
        self
    }

    /// Adds the save latency histogram of a [`TimedStore`] that wraps the node's store.
    pub fn with_save_latency(mut self, latency: SaveLatency) -> Self {
        self.save_latency = Some(latency);
        self
    }

    /// The metrics now, in the OpenMetrics text format.
    pub async fn render(&self) -> String {
        let mut reg = Registry::with_prefix("gossip");
        self.node_counters(&mut reg);
        self.peer_metrics(&mut reg);
        self.store_metrics(&mut reg).await;
        self.watched_metrics(&mut reg);
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &reg) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }

    fn node_counters(&self, reg: &mut Registry) {
        let s = self.node.stats();
        let counters: [(&str, &str, u64); 18] = [
            (
                "events_created",
                "Events created by this node",
                s.events_created,
            ),
            (
                "events_received",
                "New events received from peers",
                s.events_received,
            ),
            (
                "events_duplicate",
                "Received events already held",
                s.duplicates,
            ),
            (
                "events_conflict",
                "Received events conflicting with a held one under the same (origin, seq)",
                s.conflicts,
            ),
            (
                "events_invalid",
                "Received events that were malformed",
                s.invalid_events,
            ),
            (
                "events_rejected",
                "Received events refused by signature checks",
                s.rejected_events,
            ),
            (
                "events_key_unknown",
                "Received events not checked yet: their origin's identity is not held",
                s.key_unknown_events,
            ),
            (
                "pushes_sent",
                "Eager pushes sent (one per target)",
                s.pushes_sent,
            ),
            (
                "inbound_rejected",
                "Inbound input refused by the transport",
                s.rejected_inbound,
            ),
            (
                "requests_refused",
                "Reconcile rounds and digests refused for breaking the rules",
                s.refused_requests,
            ),
            (
                "events_equivocation",
                "Equivocations seen: two signed events under one (origin, seq)",
                s.equivocations,
            ),
            (
                "events_reissued",
                "Own payloads that lost an equivocation, issued again under a fresh seq",
                s.reissued,
            ),
            (
                "events_deferred",
                "Received events kept back by a peer's budget, fetched later by rounds",
                s.deferred_events,
            ),
            (
                "origins_deferred",
                "New origins deferred by a peer's new-origin budget",
                s.deferred_origins,
            ),
            (
                "events_quota_refused",
                "Received events refused: their origin is over its byte quota",
                s.quota_refused,
            ),
            (
                "events_undecodable",
                "Received events held whose payload the app could not decode",
                s.undecodable_events,
            ),
            ("rounds", "Gossip rounds run", s.rounds),
            (
                "anti_entropy_runs",
                "Anti-entropy sweeps run",
                s.anti_entropy_runs,
            ),
        ];
        for (name, help, v) in counters {
            reg.register(name, help, counter(v));
        }
        let exchanges = Family::<Labels, Counter>::default();
        exchanges
            .get_or_create(&vec![("result", "ok".into())])
            .inc_by(s.exchanges_ok);
        exchanges
            .get_or_create(&vec![("result", "failed".into())])
            .inc_by(s.exchanges_failed);
        reg.register("exchanges", "Exchanges, by result", exchanges);
        let ephemerals = Family::<Labels, Counter>::default();
        for (outcome, n) in [
            ("sent", s.ephemerals_sent),
            ("received", s.ephemerals_received),
            ("relayed", s.ephemerals_relayed),
            ("duplicate", s.ephemerals_duplicate),
            ("dropped", s.ephemerals_dropped),
            ("refused", s.ephemerals_refused),
        ] {
            ephemerals
                .get_or_create(&vec![("outcome", outcome.into())])
                .inc_by(n);
        }
        reg.register(
            "ephemerals",
            "Ephemeral notes (typing, presence), by outcome; never stored",
            ephemerals,
        );
        let bytes = Family::<Labels, Counter>::default();
        bytes
            .get_or_create(&vec![("direction", "in".into())])
            .inc_by(s.bytes_received);
        bytes
            .get_or_create(&vec![("direction", "out".into())])
            .inc_by(s.bytes_sent);
        reg.register_with_unit("message", "Message bytes, by direction", Unit::Bytes, bytes);
        let info = Family::<Labels, Gauge>::default();
        info.get_or_create(&vec![("node", self.node.id().to_string())])
            .set(1);
        reg.register("node", "This node's id", info);
    }

    fn peer_metrics(&self, reg: &mut Registry) {
        let peers = self.node.peers();
        let by_state = Family::<Labels, Gauge>::default();
        for st in [
            PeerState::Discovered,
            PeerState::Alive,
            PeerState::Suspect,
            PeerState::Offline,
        ] {
            let n = peers.iter().filter(|p| p.state == st).count();
            by_state
                .get_or_create(&vec![("state", st.name().into())])
                .set(n as i64);
        }
        reg.register("peers", "Peers, by state", by_state);
        let events = Family::<Labels, Counter>::default();
        let rtt = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for p in &peers {
            let id = p.id.to_string();
            events
                .get_or_create(&vec![("peer", id.clone()), ("direction", "in".into())])
                .inc_by(p.events_received);
            events
                .get_or_create(&vec![("peer", id.clone()), ("direction", "out".into())])
                .inc_by(p.events_sent);
            if let Some(t) = p.rtt {
                rtt.get_or_create(&vec![("peer", id)]).set(t.as_secs_f64());
            }
        }
        reg.register(
            "peer_events",
            "Events exchanged with each peer, by direction",
            events,
        );
        reg.register_with_unit(
            "peer_rtt",
            "Round-trip time of the last request",
            Unit::Seconds,
            rtt,
        );
        if let Some(links) = &self.links {
            let bytes = Family::<Labels, Counter>::default();
            for l in links() {
                let id = l.peer.to_string();
                bytes
                    .get_or_create(&vec![("peer", id.clone()), ("direction", "in".into())])
                    .inc_by(l.bytes_in);
                bytes
                    .get_or_create(&vec![("peer", id), ("direction", "out".into())])
                    .inc_by(l.bytes_out);
            }
            reg.register_with_unit(
                "peer",
                "Bytes on the link to each peer, by direction",
                Unit::Bytes,
                bytes,
            );
        }
    }

    async fn store_metrics(&self, reg: &mut Registry) {
        let store = self.node.store();
        match store.stats().await {
            Ok(st) => {
                reg.register(
                    "store_events",
                    "Events held by the store",
                    gauge(st.total_events),
                );
                reg.register(
                    "store_origins",
                    "Origins among them",
                    gauge(st.unique_nodes),
                );
                reg.register_with_unit(
                    "store_size",
                    "Encoded size of the events held",
                    Unit::Bytes,
                    gauge(st.size_bytes),
                );
            }
            Err(e) => tracing::warn!(error = %e, "metrics: store stats unavailable"),
        }
        // Events held past a gap wait for the events below them: a catch-up in progress.
        if let (Ok(clock), Ok(per)) = (store.clock().await, store.count_per_node().await) {
            let beyond: u64 = per
                .iter()
                .map(|(o, n)| n.saturating_sub(clock.get(o)))
                .sum();
            reg.register(
                "store_events_beyond_clock",
                "Events held above a gap in their origin's sequence",
                gauge(beyond),
            );
        }
        if let Some(lat) = &self.save_latency {
            reg.register_with_unit(
                "store_save",
                "Time a save takes to be durable under the store's policy, by operation",
                Unit::Seconds,
                lat.clone(),
            );
        }
    }

    fn watched_metrics(&self, reg: &mut Registry) {
        let w = &self.watched;
        for r in REASONS {
            // Every reason appears, at 0 until it happens, so alerts can rate() it.
            let _ = w.failures.get_or_create(&vec![("reason", r.into())]);
        }
        reg.register(
            "exchange_failures",
            "Failed exchanges, by reason",
            w.failures.clone(),
        );
        reg.register_with_unit(
            "event_arrival_age",
            "Age of each new event when it arrived (now minus its creation time)",
            Unit::Seconds,
            w.arrival_age.clone(),
        );
        let lag = Gauge::<f64, AtomicU64>::default();
        lag.set(w.last_lag_ms.load(Ordering::Relaxed) as f64 / 1000.0);
        reg.register_with_unit(
            "catchup_lag",
            "Age of the last new event received, when it arrived",
            Unit::Seconds,
            lag,
        );
        reg.register(
            "metrics_stream_lagged",
            "Stream items the metrics watcher missed because it fell behind",
            w.lagged.clone(),
        );
    }
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(v);
    c
}

fn gauge(v: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    g
}

/// Follows the node's exchange and received-event streams until the node goes away.
async fn watch(
    (mut exchanges, mut received): (
        broadcast::Receiver<ExchangeResult>,
        broadcast::Receiver<ReceivedEvent>,
    ),
    w: Watched,
) {
    // The task holds no node, so it does not keep one alive: the streams end with it.
    loop {
        tokio::select! {
            r = exchanges.recv() => match r {
                Ok(x) if !x.success => {
                    let reason = reason_of(x.error.as_deref().unwrap_or(""));
                    w.failures.get_or_create(&vec![("reason", reason.into())]).inc();
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => { w.lagged.inc_by(n); }
                Err(RecvError::Closed) => return,
            },
            r = received.recv() => match r {
                // An identity event is created at time 0 on purpose: it has no age.
                Ok(ev) if ev.event.created_at_ms == 0 => {}
                Ok(ev) => {
                    let age = now_ms().saturating_sub(ev.event.created_at_ms);
                    w.arrival_age.observe(age as f64 / 1000.0);
                    w.last_lag_ms.store(age, Ordering::Relaxed);
                }
                Err(RecvError::Lagged(n)) => { w.lagged.inc_by(n); }
                Err(RecvError::Closed) => return,
            },
        }
    }
}
