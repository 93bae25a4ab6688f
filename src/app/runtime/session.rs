//! A running gossip-chat node: the event store, the TCP transport, mDNS discovery and the
//! gossip node wired together, with one stream of [`SessionEvent`]s for a screen.
//!
//! The session owns the policy that ties discovery to liveness: a peer resolved by mDNS is
//! added and contacted at once; a failed exchange asks mDNS to verify the peer, so a
//! crashed or unplugged laptop leaves in seconds; a peer that vanished from mDNS but still
//! answers stays alive.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::feed::{Deliveries, Feed};
use super::store_kind::StoreKind;
use super::view::{EquivocationRow, EventRow, ExchangeRow, PeerRow, SessionEvent, StatusInfo};
use crate::app::AppOp;
use crate::discovery::{Announcement, DiscoveryEvent, MdnsDiscovery};
use crate::metrics::{Metrics, SaveLatency, TimedStore, save_latency};
use crate::node::now_ms;
use crate::node::{Direction, GossipConfig, GossipError, GossipNode, PeerState};
use crate::protocol::{Event, NodeId};
use crate::store::file::{FsyncPolicy, OpenReport, room_dir};
use crate::store::{EventStore, StoreError};
use crate::transport::codec::PROTOCOL_VERSION;
use crate::transport::tcp::Encryption;
use crate::transport::{Peer, TcpConfig, TcpTransport, Transport, TransportError};

/// Capacity of the session -> screen channel.
pub const EVENTS_CAPACITY: usize = 4096;

/// How to run a session.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Our display name.
    pub name: String,
    /// The room.
    pub room: String,
    /// TCP port to listen on (0: any free port).
    pub port: u16,
    /// Address to listen on.
    pub listen_ip: std::net::IpAddr,
    /// The data directory (the store lives in `<data_dir>/<room>/`).
    pub data_dir: PathBuf,
    /// Peers to reach by address (`host:port`), besides discovery.
    pub peers: Vec<String>,
    /// Whether mDNS discovery runs.
    pub mdns: bool,
    /// The store's durability policy.
    pub fsync: FsyncPolicy,
    /// The room key, when the room has a secret (`--secret-file`, `GOSSIP_CHAT_SECRET`).
    pub room_key: Option<crate::auth::RoomKey>,
    /// Which store keeps the events (`--store`).
    pub store: StoreKind,
}

impl SessionOptions {
    /// The store directory. A room with a secret has its own (named by its room id), so
    /// two private rooms of the same name never share events.
    pub fn store_dir(&self) -> PathBuf {
        room_dir(&self.data_dir, &self.public_room())
    }

    /// The room as peers and the LAN see it: its name, or its id when it has a secret.
    pub fn public_room(&self) -> String {
        match &self.room_key {
            Some(key) => key.room_id(&self.room),
            None => self.room.clone(),
        }
    }
}

/// Why a session could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store could not be opened (in use, unreadable, ...).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The transport could not start.
    #[error("network: {0}")]
    Transport(#[from] TransportError),
    /// The gossip node refused.
    #[error("{0}")]
    Gossip(#[from] GossipError),
    /// mDNS could not start.
    #[error("{0}")]
    Discovery(#[from] crate::discovery::DiscoveryError),
    /// An op was invalid.
    #[error("{0}")]
    Op(String),
}

/// The gossip settings of the app: the library's defaults, with a LAN-sized request
/// deadline (a laptop that stops answering is suspected within 3 s) and anti-entropy every
/// 30 s.
pub fn app_gossip_config(id: NodeId) -> GossipConfig {
    GossipConfig {
        gossip_timeout: Duration::from_secs(3),
        anti_entropy_interval: Duration::from_secs(30),
        ..GossipConfig::new(id)
    }
}

struct Inner {
    opts: SessionOptions,
    node: GossipNode,
    store: Arc<dyn EventStore>,
    store_dir: PathBuf,
    store_report: Option<OpenReport>,
    save_latency: SaveLatency,
    transport: Arc<TcpTransport>,
    listen: SocketAddr,
    discovery: tokio::sync::Mutex<Option<MdnsDiscovery>>,
    /// Names peers announced over mDNS.
    names: Mutex<HashMap<NodeId, String>>,
    out: mpsc::Sender<SessionEvent>,
    /// Which peer delivered which event, for the live view's rows.
    deliveries: Arc<Deliveries>,
    /// Whether the live view is open (see [`Session::open_view`]).
    viewing: AtomicBool,
    /// Status updates dropped since the last one the screen took.
    dropped_updates: AtomicU64,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A running node with its store, transport and discovery. Cheap to clone.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl Session {
    /// Opens the store, binds the transport, starts the node and discovery, and dials the
    /// `--peer` addresses. Everything the screen should know arrives on the receiver.
    pub async fn start(
        opts: SessionOptions,
    ) -> Result<(Session, mpsc::Receiver<SessionEvent>), SessionError> {
        let opened = opts.store.open(opts.store_dir(), opts.fsync).await?;
        let identity = opened.identity;
        // Timing the saves costs two clock reads each; it gives --metrics its latency.
        let save_latency = save_latency();
        let store: Arc<dyn EventStore> =
            Arc::new(TimedStore::new(opened.store, save_latency.clone()));
        let id = identity.node_id();
        let config = app_gossip_config(id);
        let tcp = TcpConfig {
            name: opts.name.clone(),
            max_message_size_bytes: config.max_message_size_bytes,
            io_timeout: config.gossip_timeout,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            identity: Some(identity.clone()),
            encryption: Encryption::Noise {
                psk: opts.room_key.as_ref().map(|k| k.bytes()),
            },
            ..TcpConfig::new(
                id,
                opts.public_room(),
                SocketAddr::new(opts.listen_ip, opts.port),
            )
        };
        let transport = Arc::new(bind_remembered_port(tcp, &opts).await?);
        let listen = transport.socket_addr();
        let node = GossipNode::with_identity(
            config,
            store.clone(),
            transport.clone() as Arc<dyn Transport>,
            identity,
        )?;
        let (out, rx) = mpsc::channel(EVENTS_CAPACITY);
        let session = Session {
            inner: Arc::new(Inner {
                opts,
                node,
                store,
                store_dir: opened.dir,
                store_report: opened.report,
                save_latency,
                transport,
                listen,
                discovery: tokio::sync::Mutex::new(None),
                names: Mutex::new(HashMap::new()),
                out,
                deliveries: Arc::default(),
                viewing: AtomicBool::new(false),
                dropped_updates: AtomicU64::new(0),
                cancel: CancellationToken::new(),
                tasks: Mutex::new(Vec::new()),
            }),
        };
        session.report_open();
        // Subscribe before starting, so nothing the node does is missed.
        session.spawn_node_forwarders();
        session.inner.node.start().await?;
        if session.inner.opts.mdns {
            session.start_discovery()?;
        }
        for addr in session.inner.opts.peers.clone() {
            session.connect(addr);
        }
        session.spawn(status_ticker(session.clone()));
        tracing::info!(node = %id, listen = %listen, room = %session.inner.opts.room, "session started");
        Ok((session, rx))
    }

    /// Our node id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node.id()
    }

    /// The node.
    pub fn node(&self) -> &GossipNode {
        &self.inner.node
    }

    /// Where the transport listens.
    pub fn listen_addr(&self) -> SocketAddr {
        self.inner.listen
    }

    /// Metrics of this session's node, with per-peer link bytes and save latencies, for
    /// [`crate::metrics::serve`] (`--metrics`).
    pub fn metrics(&self) -> Metrics {
        let tcp = self.inner.transport.clone();
        Metrics::new(self.inner.node.clone())
            .with_links(Arc::new(move || tcp.peer_stats()))
            .with_save_latency(self.inner.save_latency.clone())
    }

    /// The options the session runs with.
    pub fn options(&self) -> &SessionOptions {
        &self.inner.opts
    }

    /// The store directory.
    pub fn store_dir(&self) -> &Path {
        &self.inner.store_dir
    }

    /// Opens the live view: every stored event as rows, oldest first by
    /// `(hlc, origin, seq)`, for a screen's first fold; from then on every record the
    /// store commits arrives on the session's receiver as [`SessionEvent::Events`], in
    /// commit order, none skipped, at the pace the screen takes them (see
    /// [`super::feed`]). Call it once; a second call is refused. If the store cannot be
    /// read, the error is returned and the feed starts from the first record instead, so
    /// the screen still gets every event.
    pub async fn open_view(&self) -> Result<Vec<EventRow>, SessionError> {
        if self.inner.viewing.swap(true, Ordering::AcqRel) {
            return Err(SessionError::Op("the live view is open already".into()));
        }
        let mut feed = Feed::new(
            self.inner.store.clone(),
            self.node_id(),
            self.inner.out.clone(),
            self.inner.deliveries.clone(),
        );
        match feed.history().await {
            Ok((rows, cursor)) => {
                self.spawn(feed.run(cursor));
                Ok(rows)
            }
            Err(e) => {
                self.spawn(feed.run(0));
                Err(e.into())
            }
        }
    }

    /// Publishes our `--name` as our nick if the events held say otherwise (first run, or
    /// the name changed), so peers show it beside our messages.
    pub async fn ensure_nick(&self, current: Option<&str>) {
        let name = self.inner.opts.name.trim();
        if current == Some(name) {
            return;
        }
        match AppOp::nick(name) {
            Ok(op) => {
                if let Err(e) = self.submit(&op).await {
                    self.warn(format!("could not publish the name {name:?}: {e}"));
                }
            }
            Err(e) => self.warn(format!("the name {name:?} cannot be used as a nick: {e}")),
        }
    }

    /// Creates an event carrying `op`.
    pub async fn submit(&self, op: &AppOp) -> Result<Event, SessionError> {
        let payload = op.encode().map_err(|e| SessionError::Op(e.to_string()))?;
        Ok(self.inner.node.create_event(payload).await?)
    }

    /// Dials `addr` (`host:port`) in the background until it answers, then gossips with it.
    pub fn connect(&self, addr: String) {
        let this = self.clone();
        self.spawn(async move { this.dial_until_answered(addr).await });
    }

    async fn dial_until_answered(&self, addr: String) {
        let mut wait = Duration::from_millis(500);
        loop {
            match self.dial(&addr).await {
                Ok(peer) => {
                    self.notice(format!("connected to {addr} ({})", peer.id.short()));
                    return;
                }
                Err(e) => {
                    tracing::info!(%addr, error = %e, "peer not reachable yet");
                    self.warn(format!("cannot reach {addr}: {e}; retrying in {wait:?}"));
                }
            }
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    async fn dial(&self, addr: &str) -> Result<Peer, SessionError> {
        let mut last = None;
        let targets =
            tokio::net::lookup_host(addr)
                .await
                .map_err(|e| TransportError::Unreachable {
                    addr: addr.into(),
                    reason: e.to_string(),
                })?;
        for target in targets {
            match self.inner.transport.probe(target).await {
                Ok(peer) => {
                    self.inner.node.add_peer(peer.clone())?;
                    let node = self.inner.node.clone();
                    let id = peer.id;
                    self.spawn(async move {
                        let _ = node.gossip_with(id).await;
                    });
                    return Ok(peer);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| TransportError::Unreachable {
                addr: addr.into(),
                reason: "no address".into(),
            })
            .into())
    }

    /// The peers panel's rows.
    pub fn peer_rows(&self) -> Vec<PeerRow> {
        let links: HashMap<NodeId, crate::transport::PeerLinkStats> = self
            .inner
            .transport
            .peer_stats()
            .into_iter()
            .map(|s| (s.peer, s))
            .collect();
        let names = self.names();
        let mut rows: Vec<PeerRow> = self
            .inner
            .node
            .peers()
            .into_iter()
            .map(|p| {
                let link = links.get(&p.id);
                PeerRow {
                    id: p.id,
                    name: names
                        .get(&p.id)
                        .cloned()
                        .or(p.name.clone())
                        .unwrap_or_else(|| p.id.short()),
                    addr: p.addr.to_string(),
                    state: p.state,
                    last_seen: p.last_contact,
                    rtt: p.rtt.or(link.and_then(|l| l.last_rtt)),
                    ok: p.successes,
                    failed: p.failures,
                    events_received: p.events_received,
                    bytes_in: link.map_or(0, |l| l.bytes_in),
                    bytes_out: link.map_or(0, |l| l.bytes_out),
                    last_error: p.last_error.clone(),
                }
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        rows
    }

    /// Whether the room has a secret (connections use its key; mDNS shows its id), for a
    /// screen's lock icon. A method rather than a `StatusInfo` field, so screens that build
    /// `StatusInfo` themselves need no change.
    pub fn room_is_private(&self) -> bool {
        self.inner.opts.room_key.is_some()
    }

    /// The status bar's figures.
    pub async fn status(&self) -> StatusInfo {
        let stats = self.inner.store.stats().await.unwrap_or_default();
        let clock = self.inner.node.vector_clock().await.unwrap_or_default();
        StatusInfo {
            name: self.inner.opts.name.clone(),
            node_id: self.node_id(),
            room: self.inner.opts.room.clone(),
            listen: self.inner.listen,
            mdns: self.inner.opts.mdns,
            private: self.room_is_private(),
            events: stats.total_events,
            nodes: stats.unique_nodes,
            store_bytes: stats.size_bytes,
            clock,
            data_dir: self.inner.store_dir.clone(),
            sending: self.inner.node.pending_own(),
        }
    }

    /// Stops discovery (a goodbye on the LAN), the node and its tasks, and closes the store.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        if let Some(d) = self.inner.discovery.lock().await.take() {
            d.shutdown().await;
        }
        self.inner.node.stop().await;
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.lock_tasks());
        for t in tasks {
            t.abort();
        }
        if let Err(e) = self.inner.store.close().await
            && !matches!(e, StoreError::Closed)
        {
            tracing::error!(error = %e, "closing the store failed");
        }
        tracing::info!("session stopped");
    }

    fn names(&self) -> HashMap<NodeId, String> {
        self.inner
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock_tasks(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        let cancel = self.inner.cancel.clone();
        let handle = tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = f => {}
            }
        });
        let mut tasks = self.lock_tasks();
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Sends a status update (peers, exchanges, notices) to the screen. Events never go
    /// this way: the feed sends them, waiting for the screen ([`Session::open_view`]). A
    /// screen that stopped reading must not stall the node, so an update that does not fit
    /// is dropped, counted, and reported by a warning as soon as one fits again.
    fn emit(&self, event: SessionEvent) {
        let out = &self.inner.out;
        if let Err(mpsc::error::TrySendError::Full(_)) = out.try_send(event) {
            self.inner.dropped_updates.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("screen channel full; an update was dropped");
            return;
        }
        let dropped = self.inner.dropped_updates.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let text = format!("{dropped} status update(s) not shown (the screen fell behind)");
            if out.try_send(SessionEvent::Warning(text)).is_err() {
                self.inner
                    .dropped_updates
                    .fetch_add(dropped, Ordering::Relaxed);
            }
        }
    }

    fn notice(&self, text: String) {
        self.emit(SessionEvent::Notice(text));
    }

    /// Tells the screen that something went wrong without stopping the session.
    pub fn warn(&self, text: String) {
        self.emit(SessionEvent::Warning(text));
    }

    fn report_open(&self) {
        let Some(r) = &self.inner.store_report else {
            return;
        };
        if r.dropped_records > 0 {
            let text = format!(
                "the store in {} was damaged: {} record(s), {} bytes dropped; peers will send those events again",
                r.dir.display(),
                r.dropped_records,
                r.dropped_bytes
            );
            tracing::warn!("{text}");
            self.warn(text);
        }
    }

    fn start_discovery(&self) -> Result<(), SessionError> {
        let me = Announcement {
            node_id: self.node_id(),
            name: self.inner.opts.name.clone(),
            room: self.inner.opts.public_room(),
            port: self.inner.listen.port(),
            version: PROTOCOL_VERSION,
            psk: self.inner.opts.room_key.is_some(),
        };
        let (discovery, rx) = MdnsDiscovery::start(me)?;
        // The lock is free: nothing else has run yet.
        if let Ok(mut slot) = self.inner.discovery.try_lock() {
            *slot = Some(discovery);
        }
        let this = self.clone();
        self.spawn(async move { this.discovery_loop(rx).await });
        Ok(())
    }

    async fn discovery_loop(&self, mut rx: mpsc::Receiver<DiscoveryEvent>) {
        while let Some(event) = rx.recv().await {
            match event {
                DiscoveryEvent::Resolved(found) => {
                    // We listen on IPv4, and so do our peers: an IPv6-only resolution (a
                    // link-local address first, say) is followed by one with IPv4.
                    let Some(addr) = found.addrs.iter().find(|a| a.is_ipv4()) else {
                        continue;
                    };
                    self.inner
                        .names
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(found.node_id, found.name.clone());
                    let before = self.inner.node.peer(found.node_id).map(|p| p.state);
                    let peer = Peer::new(found.node_id, addr.to_string());
                    if self.inner.node.add_peer(peer).is_err() {
                        continue;
                    }
                    self.inner.node.set_peer_name(found.node_id, found.name);
                    // First sight, or back after being lost: talk now rather than at the
                    // next round, so discovery and catch-up take milliseconds.
                    if before != Some(PeerState::Alive) {
                        let node = self.inner.node.clone();
                        let id = found.node_id;
                        self.spawn(async move {
                            let _ = node.gossip_with(id).await;
                        });
                    }
                    self.emit(SessionEvent::Peers(self.peer_rows()));
                }
                DiscoveryEvent::Removed(id) => {
                    // Gone from mDNS after its last contact failed: it is gone.
                    let state = self.inner.node.peer(id).map(|p| p.state);
                    tracing::info!(peer = %id, ?state, "peer left mDNS");
                    if state == Some(PeerState::Suspect) {
                        self.inner
                            .node
                            .mark_peer_offline(id, "stopped answering and left the LAN (mDNS)");
                        continue;
                    }
                    // Gone from mDNS only: it stays if it still answers.
                    let node = self.inner.node.clone();
                    self.spawn(async move {
                        if let Ok(r) = node.gossip_with(id).await
                            && !r.success
                        {
                            node.mark_peer_offline(id, "left the LAN (mDNS) and does not answer");
                        }
                    });
                }
            }
        }
    }

    fn spawn_node_forwarders(&self) {
        let node = &self.inner.node;
        // Events reach the screen through the live view's feed, from the store; this
        // stream only tells the feed who delivered them. A lag loses those names (rows
        // then name the origin), never an event.
        let mut received = node.on_event_received();
        let mut exchanges = node.on_gossip_exchange();
        let mut added = node.on_peer_added();
        let mut removed = node.on_peer_removed();
        let mut states = node.on_peer_state();
        let mut equivocations = node.on_equivocation();
        let this = self.clone();
        self.spawn(async move {
            loop {
                tokio::select! {
                    r = received.recv() => match r {
                        Ok(r) => {
                            let age_ms = now_ms() as i64 - r.event.created_at_ms as i64;
                            this.inner.deliveries.note(r.event.origin, r.event.seq, r.from, age_ms);
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::debug!(missed = n, "deliveries not noted (rows name the origin instead)");
                        }
                        Err(_) => return,
                    },
                    r = exchanges.recv() => match r {
                        Ok(result) => this.on_exchange(result).await,
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return,
                    },
                    r = equivocations.recv() => match r {
                        Ok(equivocation) => this.emit(SessionEvent::Equivocation(Box::new(EquivocationRow {
                            at: SystemTime::now(),
                            equivocation,
                        }))),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            this.warn(format!("{n} equivocations not shown (the screen fell behind)"));
                        }
                        Err(_) => return,
                    },
                    r = added.recv() => if r.is_ok() { this.emit(SessionEvent::Peers(this.peer_rows())) },
                    r = removed.recv() => if r.is_ok() { this.emit(SessionEvent::Peers(this.peer_rows())) },
                    r = states.recv() => if r.is_ok() { this.emit(SessionEvent::Peers(this.peer_rows())) },
                }
            }
        });
    }

    async fn on_exchange(&self, result: crate::node::ExchangeResult) {
        let offline =
            self.inner.node.peer(result.peer).map(|p| p.state) == Some(PeerState::Offline);
        if !result.success
            && !offline
            && result.direction == Direction::Outbound
            && let Some(d) = self.inner.discovery.lock().await.as_ref()
        {
            // Is it still on the LAN? If not, mDNS reports it removed within seconds.
            tracing::info!(peer = %result.peer, "exchange failed: asking mDNS to verify the peer");
            d.verify(result.peer);
        }
        let peer_name = self
            .names()
            .get(&result.peer)
            .cloned()
            .unwrap_or_else(|| result.peer.short());
        self.emit(SessionEvent::Exchange(ExchangeRow {
            at: SystemTime::now(),
            peer: result.peer,
            peer_name,
            result,
        }));
        // Exchanges change RTT, counters and states shown in the peers panel.
        self.emit(SessionEvent::Peers(self.peer_rows()));
    }
}

/// The file in the store directory that remembers the port we listened on.
pub const PORT_FILE: &str = "port";

/// Binds the transport. With `--port 0`, the port of the last run is tried first: peers
/// that still hold our old address (a crashed laptop's peers, whose mDNS cache may keep the
/// stale record) reach us again at once when we come back.
async fn bind_remembered_port(
    mut tcp: TcpConfig,
    opts: &SessionOptions,
) -> Result<TcpTransport, TransportError> {
    let file = opts.store_dir().join(PORT_FILE);
    if opts.port == 0
        && let Some(port) = tokio::fs::read_to_string(&file)
            .await
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok())
            .filter(|p| *p != 0)
    {
        let mut again = tcp.clone();
        again.listen.set_port(port);
        match TcpTransport::bind(again).await {
            Ok(t) => return Ok(t),
            Err(e) => tracing::info!(port, error = %e, "last run's port is taken; picking another"),
        }
        tcp.listen.set_port(0);
    }
    let transport = TcpTransport::bind(tcp).await?;
    if opts.port == 0 {
        let port = transport.socket_addr().port().to_string();
        if let Err(e) = tokio::fs::write(&file, port).await {
            tracing::warn!(file = %file.display(), error = %e, "cannot remember the port");
        }
    }
    Ok(transport)
}

/// Sends fresh status figures every second.
async fn status_ticker(session: Session) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let status = session.status().await;
        session.emit(SessionEvent::Status(status));
    }
}
