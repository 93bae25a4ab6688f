//! A running gossip-chat node: the event store, the TCP transport, mDNS discovery and the
//! gossip node wired together, with one stream of [`SessionEvent`]s for a screen.
//!
//! The session owns the policy that ties discovery to liveness: a peer resolved by mDNS is
//! added and contacted at once; a failed exchange asks mDNS to verify the peer, so a
//! crashed or unplugged laptop leaves in seconds; a peer that vanished from mDNS but still
//! answers stays alive.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod files;

pub use files::{default_save_dir, guess_mime};

use super::addrs;
use super::feed::{Deliveries, Feed};
use super::known_peers;
use super::outbox::Outbox;
use super::roster::{Roster, fingerprint};
use super::store_kind::StoreKind;
use super::view::{
    DialInfo, EquivocationRow, EventRow, ExchangeRow, PeerRow, Presence, PresenceNote,
    SessionEvent, StatusInfo, WhoisInfo,
};
use crate::app::AppOp;
use crate::discovery::{Announcement, DiscoveryEvent, MdnsDiscovery};
use crate::metrics::{Metrics, SaveLatency, TimedStore, save_latency};
use crate::node::now_ms;
use crate::node::{Direction, GossipConfig, GossipError, GossipNode, PeerState};
use crate::protocol::engine::ProbeConfig;
use crate::protocol::{Event, NodeId};
use crate::store::file::{FsyncPolicy, OpenReport, modes, room_dir};
use crate::store::{EventStore, StoreError};
use crate::transport::codec::PROTOCOL_VERSION;
use crate::transport::tcp::Encryption;
use crate::transport::{Peer, TcpConfig, TcpTransport, Transport, TransportError};

/// Capacity of the session -> screen channel.
pub const EVENTS_CAPACITY: usize = 4096;

/// How to run a session.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Our name: used as given when `name_given` (`--name`); otherwise (the config file's
    /// name, or user@host) only until we have a nick: our last `/nick` in this room's
    /// store wins over it, so a restart without `--name` keeps the name.
    pub name: String,
    /// Whether `name` was asked for explicitly (`--name`) and so overrides the stored nick.
    pub name_given: bool,
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
    /// The largest file sent or saved, and the blob store's quota (`--max-file`,
    /// `--blob-quota`).
    pub blobs: crate::blobs::BlobLimits,
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
        // A silently cut laptop is suspect within ~1 s and offline within ~1.5 s on a LAN;
        // peers tell each other where the room's members are.
        probe: Some(ProbeConfig::lan()),
        peer_exchange: true,
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
    /// Our current name (follows our `/nick`).
    name: Mutex<String>,
    /// Every origin's nickname, key and event times.
    roster: Mutex<Roster>,
    /// Dials that have not answered yet, by the address typed.
    dials: Mutex<HashMap<String, Dial>>,
    /// Addresses whose refused inbound handshakes were already explained once.
    hinted: Mutex<HashSet<String>>,
    /// Where others can reach us (see [`addrs::reachable_addrs`]).
    addresses: Vec<SocketAddr>,
    /// The way to the screen (see [`Outbox`]).
    out: Arc<Outbox>,
    /// Which peer delivered which event, for the live view's rows.
    deliveries: Arc<Deliveries>,
    /// Whether the live view is open (see [`Session::open_view`]).
    viewing: AtomicBool,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Dials (`--peer`, `/peer`) still under way: a stop waits for them, briefly.
    dialing: AtomicUsize,
    /// Files sent and saved (`<store>/blobs/`), served to peers.
    blobs: Arc<crate::blobs::BlobStore>,
    /// Blobs being fetched (one fetch per blob).
    saving: Mutex<HashSet<crate::protocol::blob::BlobId>>,
}

/// How offering our events to one peer at a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerOffer {
    /// It holds every event we hold.
    Confirmed,
    /// It left (unreachable, no connection open).
    Gone,
    /// It is there but did not confirm in time.
    Missed,
}

/// What [`Session::offer_to_peers`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offered {
    /// Peers that confirmed they hold every event we hold.
    pub confirmed: usize,
    /// Peers (or dials still under way) that did not, in time.
    pub missed: usize,
}

/// A dial that has not answered yet.
struct Dial {
    attempts: u32,
    next_retry: Option<SystemTime>,
    cancel: CancellationToken,
}

/// The most dials in flight at once: each is a user's `/peer`, so this is generous.
const MAX_DIALS: usize = 64;
/// The most addresses remembered as already explained (refused handshakes).
const MAX_HINTED: usize = 256;

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
        // A private room's payloads are sealed on disk, under a key of their own.
        let at_rest = opts
            .room_key
            .as_ref()
            .map(|k| crate::store::file::AtRestKey::derive(&k.bytes()));
        let opened = opts
            .store
            .open(opts.store_dir(), opts.fsync, at_rest)
            .await?;
        let identity = opened.identity;
        // Timing the saves costs two clock reads each; it gives --metrics its latency.
        let save_latency = save_latency();
        let store: Arc<dyn EventStore> =
            Arc::new(TimedStore::new(opened.store, save_latency.clone()));
        let id = identity.node_id();
        let (roster, name) = fold_roster(store.as_ref(), id, &opts).await?;
        let config = app_gossip_config(id);
        let tcp = TcpConfig {
            name: name.clone(),
            max_message_size_bytes: config.max_message_size_bytes,
            io_timeout: config.gossip_timeout,
            // The failure detector pings an offline peer every 250 ms: a dial back-off
            // longer than that would hide a healed link.
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_millis(150),
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
        let addresses = addrs::reachable_addrs(listen);
        let node = GossipNode::with_identity(
            config,
            store.clone(),
            transport.clone() as Arc<dyn Transport>,
            identity,
        )?;
        // Payloads this build cannot read count against their origin's undecodable quota.
        node.set_payload_validator(Some(Arc::new(|p: &[u8]| AppOp::decode(p).is_ok())));
        // A private room's files are sealed on disk like its log.
        let blob_key = opts
            .room_key
            .as_ref()
            .map(|k| crate::blobs::BlobKey::derive(&k.bytes()));
        let blobs = Arc::new(
            crate::blobs::BlobStore::open(opened.dir.join("blobs"), blob_key, opts.blobs)
                .map_err(|e| SessionError::Op(format!("blob store: {e}")))?,
        );
        node.set_blob_server(Arc::new(crate::blobs::StoreServer::new(blobs.clone())));
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
                name: Mutex::new(name),
                roster: Mutex::new(roster),
                dials: Mutex::new(HashMap::new()),
                hinted: Mutex::new(HashSet::new()),
                addresses,
                out: Arc::new(Outbox::new(out)),
                deliveries: Arc::default(),
                viewing: AtomicBool::new(false),
                cancel: CancellationToken::new(),
                tasks: Mutex::new(Vec::new()),
                dialing: AtomicUsize::new(0),
                blobs,
                saving: Mutex::new(HashSet::new()),
            }),
        };
        let outbox = session.inner.out.clone();
        session.spawn(async move { outbox.pump().await });
        session.report_open();
        // Subscribe before starting, so nothing the node does is missed.
        session.spawn_node_forwarders();
        session.spawn_signal_forwarder();
        session.inner.node.start().await?;
        if session.inner.opts.mdns {
            session.start_discovery()?;
        }
        for addr in session.inner.opts.peers.clone() {
            session.connect(addr);
        }
        session.redial_known_peers();
        session.spawn(remember_peers(session.clone()));
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
            self.inner.out.sender().clone(),
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

    /// Our current name: `--name`, else our last nick in this room, else the default.
    pub fn name(&self) -> String {
        lock(&self.inner.name).clone()
    }

    /// The name our handshakes (`Hello`) give now: it follows our nick, as the status bar
    /// does.
    pub fn hello_name(&self) -> String {
        self.inner.transport.name()
    }

    /// The addresses others can reach us at (never `0.0.0.0`).
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.inner.addresses
    }

    /// Publishes our name as our nick when the events held (`current`: our latest nick
    /// there) say otherwise and either we have no nick yet or `--name` asks for another.
    /// Without `--name`, a stored nick is kept: a restart never renames us.
    /// Returns the event created.
    pub async fn ensure_nick(&self, current: Option<&str>) -> Option<Event> {
        let name = self.inner.opts.name.trim().to_string();
        let name = match current {
            Some(c) if c == name => return None,
            Some(c) if !self.inner.opts.name_given => {
                *lock(&self.inner.name) = c.to_string();
                return None;
            }
            _ => name,
        };
        let name = name.as_str();
        match AppOp::nick(name) {
            Ok(op) => match self.submit(&op).await {
                Ok(event) => return Some(event),
                Err(e) => self.warn(format!("could not publish the name {name:?}: {e}")),
            },
            Err(e) => self.warn(format!("the name {name:?} cannot be used as a nick: {e}")),
        }
        None
    }

    /// Creates an event carrying `op`.
    pub async fn submit(&self, op: &AppOp) -> Result<Event, SessionError> {
        let payload = op.encode().map_err(|e| SessionError::Op(e.to_string()))?;
        Ok(self.inner.node.create_event(payload).await?)
    }

    /// [`Session::submit`], queued now: ops queued one after the other go out in that
    /// order, and many may be in flight at once (piped input), saved in groups.
    pub fn submit_queued(
        &self,
        op: &AppOp,
    ) -> impl std::future::Future<Output = Result<Event, SessionError>> + Send + use<> {
        let queued = op
            .encode()
            .map_err(|e| SessionError::Op(e.to_string()))
            .map(|payload| self.inner.node.create_event_queued(payload.into()));
        async move { Ok(queued?.await?) }
    }

    /// Dials `addr` (`host:port`) in the background until it answers, then gossips with it.
    /// Until then the address shows as a peer row with its next retry; only the first
    /// failure is a warning (later ones update the row), and [`Session::unpeer`] stops it.
    /// An address that is this node is refused at once, with a notice saying so.
    pub fn connect(&self, addr: String) {
        let cancel = self.inner.cancel.child_token();
        {
            let mut dials = lock(&self.inner.dials);
            if dials.contains_key(&addr) {
                self.notice(format!("already dialing {addr}"));
                return;
            }
            if dials.len() >= MAX_DIALS {
                self.warn(format!(
                    "not dialing {addr}: {MAX_DIALS} dials are already waiting (/unpeer some)"
                ));
                return;
            }
            dials.insert(
                addr.clone(),
                Dial {
                    attempts: 0,
                    next_retry: None,
                    cancel: cancel.clone(),
                },
            );
        }
        self.emit(SessionEvent::Peers(self.peer_rows()));
        let this = self.clone();
        self.inner.dialing.fetch_add(1, Ordering::SeqCst);
        self.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = this.dial_until_answered(&addr) => {}
            }
            this.inner.dialing.fetch_sub(1, Ordering::SeqCst);
            lock(&this.inner.dials).remove(&addr);
            this.emit(SessionEvent::Peers(this.peer_rows()));
        });
    }

    /// Before a stop: waits (until `within` has passed) for the dials under way, then has an
    /// exchange with every reachable peer until one sends nothing, which proves the peer
    /// holds every event we hold (an exchange is cut by count, so one may not be enough).
    /// A peer that cannot be reached and has no open connection has left: it is not
    /// counted; a dial still unanswered is.
    pub async fn offer_to_peers(&self, within: Duration) -> Offered {
        let deadline = tokio::time::Instant::now() + within;
        while self.inner.dialing.load(Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let unanswered = self.inner.dialing.load(Ordering::SeqCst);
        let peers: Vec<NodeId> = self
            .inner
            .node
            .peers()
            .into_iter()
            .filter(|p| p.is_reachable())
            .map(|p| p.id)
            .collect();
        let outcomes = futures::future::join_all(
            peers
                .into_iter()
                .map(|id| self.confirm_holds_all(id, deadline)),
        )
        .await;
        let count = |o: PeerOffer| outcomes.iter().filter(|x| **x == o).count();
        Offered {
            confirmed: count(PeerOffer::Confirmed),
            missed: count(PeerOffer::Missed) + unanswered,
        }
    }

    async fn confirm_holds_all(&self, peer: NodeId, deadline: tokio::time::Instant) -> PeerOffer {
        let mut unreachable = 0;
        loop {
            match tokio::time::timeout_at(deadline, self.inner.node.gossip_with(peer)).await {
                Err(_) => return PeerOffer::Missed,
                Ok(Ok(r)) if r.success && r.events_sent == 0 => return PeerOffer::Confirmed,
                Ok(Ok(r)) if r.success => continue,
                Ok(Ok(r)) => {
                    tracing::info!(%peer, error = ?r.error, "stop: exchange failed");
                }
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "stop: no exchange");
                    return PeerOffer::Gone;
                }
            }
            if !self.link_open(peer) {
                unreachable += 1;
                // Refused again and again with no connection open: it left before us.
                if unreachable == 3 {
                    return PeerOffer::Gone;
                }
            }
            if tokio::time::Instant::now() + Duration::from_millis(100) >= deadline {
                return PeerOffer::Missed;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn link_open(&self, peer: NodeId) -> bool {
        self.inner
            .transport
            .peer_stats()
            .iter()
            .any(|s| s.peer == peer && s.connections > 0)
    }

    /// Stops dialing `addr`, and drops a peer at that address that is not alive. Returns
    /// what it did, for a notice.
    pub fn unpeer(&self, addr: &str) -> String {
        let dial = lock(&self.inner.dials).remove(addr);
        let dropped: Vec<NodeId> = self
            .inner
            .node
            .peers()
            .into_iter()
            .filter(|p| p.addr.to_string() == addr && p.state != PeerState::Alive)
            .map(|p| p.id)
            .collect();
        for id in &dropped {
            self.inner.node.remove_peer(*id);
        }
        self.emit(SessionEvent::Peers(self.peer_rows()));
        match (dial, dropped.len()) {
            (Some(d), _) => {
                d.cancel.cancel();
                format!("stopped dialing {addr}")
            }
            (None, 0) => {
                format!("not dialing {addr} (an alive peer stays; /forget drops offline ones)")
            }
            (None, n) => format!("dropped {n} peer(s) at {addr}"),
        }
    }

    /// Drops every offline peer from the peer table (their messages stay). A peer that
    /// comes back is added again by discovery or its own dial. Returns how many went.
    pub fn forget(&self) -> usize {
        let offline: Vec<NodeId> = self
            .inner
            .node
            .peers()
            .into_iter()
            .filter(|p| p.state == PeerState::Offline)
            .map(|p| p.id)
            .collect();
        for id in &offline {
            self.inner.node.remove_peer(*id);
        }
        self.emit(SessionEvent::Peers(self.peer_rows()));
        offline.len()
    }

    /// What is known about everyone called `name` (nickname, shown name or mDNS name,
    /// case-insensitive), or why nothing is.
    pub fn whois(&self, name: &str) -> Result<Vec<WhoisInfo>, String> {
        let wanted = name.trim().trim_start_matches('@');
        let roster = lock(&self.inner.roster);
        let names = self.names();
        let peers: HashMap<NodeId, crate::node::PeerInfo> = self
            .inner
            .node
            .peers()
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let mut ids = roster.named(wanted);
        for (id, n) in &names {
            let shown = roster.display(*id, Some(n));
            if (n.eq_ignore_ascii_case(wanted) || shown.eq_ignore_ascii_case(wanted))
                && !ids.contains(id)
            {
                ids.push(*id);
            }
        }
        if ids.is_empty() {
            return Err(format!("nobody here is called {wanted}"));
        }
        ids.sort();
        Ok(ids
            .into_iter()
            .map(|id| {
                let seen = roster.seen(id).cloned().unwrap_or_default();
                let peer = peers.get(&id);
                WhoisInfo {
                    name: roster.display(id, names.get(&id).map(String::as_str)),
                    id,
                    fingerprint: seen.key.as_ref().map(|k| fingerprint(k)),
                    addresses: if id == self.node_id() {
                        self.inner
                            .addresses
                            .iter()
                            .map(ToString::to_string)
                            .collect()
                    } else {
                        peer.map(|p| vec![p.addr.to_string()]).unwrap_or_default()
                    },
                    state: peer.map(|p| p.state),
                    first_event_ms: seen.first_ms,
                    last_event_ms: seen.last_ms,
                    last_contact: peer.and_then(|p| p.last_contact),
                }
            })
            .collect())
    }

    async fn dial_until_answered(&self, addr: &str) {
        if let Some(me) = self.dial_target_is_self(addr).await {
            self.warn(format!(
                "{addr} is this node: others reach you at {me}; /peer needs another laptop's address"
            ));
            return;
        }
        let mut wait = Duration::from_millis(500);
        loop {
            self.update_dial(addr, None);
            match self.dial(addr).await {
                Ok(peer) => {
                    self.notice(format!("connected to {addr} ({})", peer.id.short()));
                    return;
                }
                Err(e) => {
                    tracing::info!(%addr, error = %e, "peer not reachable yet");
                    let first = self.update_dial(addr, Some(SystemTime::now() + wait)) == 1;
                    if first {
                        // One warning: later failures only update the peer row, so they
                        // never cover the notices that follow.
                        self.warn(format!(
                            "cannot reach {addr}: {}; retrying in the background (/unpeer {addr} stops)",
                            addrs::explain(&e.to_string())
                        ));
                    }
                    self.emit(SessionEvent::Peers(self.peer_rows()));
                }
            }
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    /// Records an attempt's start (`next` = `None`) or failure; returns the failures so far.
    fn update_dial(&self, addr: &str, next: Option<SystemTime>) -> u32 {
        let mut dials = lock(&self.inner.dials);
        let Some(d) = dials.get_mut(addr) else {
            return 0;
        };
        if next.is_some() {
            d.attempts += 1;
        }
        d.next_retry = next;
        d.attempts
    }

    /// Our own address, if `addr` resolves to this node's listener.
    async fn dial_target_is_self(&self, addr: &str) -> Option<String> {
        let targets: Vec<SocketAddr> = tokio::net::lookup_host(addr).await.ok()?.collect();
        let local = addrs::interface_ips();
        let listen = self.inner.listen;
        targets
            .iter()
            .any(|t| addrs::is_self(*t, listen, &local))
            .then(|| {
                self.inner
                    .addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
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
        let roster = lock(&self.inner.roster).clone();
        let mut rows: Vec<PeerRow> = self
            .inner
            .node
            .peers()
            .into_iter()
            .map(|p| {
                let link = links.get(&p.id);
                PeerRow {
                    id: p.id,
                    name: roster.display(p.id, names.get(&p.id).map(String::as_str)),
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
                    dial: None,
                }
            })
            .collect();
        let known: HashSet<String> = rows.iter().map(|r| r.addr.clone()).collect();
        for (addr, d) in lock(&self.inner.dials).iter() {
            if known.contains(addr) {
                continue;
            }
            rows.push(PeerRow {
                id: NodeId::NIL,
                name: addr.clone(),
                addr: addr.clone(),
                state: PeerState::Discovered,
                last_seen: None,
                rtt: None,
                ok: 0,
                failed: u64::from(d.attempts),
                events_received: 0,
                bytes_in: 0,
                bytes_out: 0,
                last_error: None,
                dial: Some(DialInfo {
                    attempts: d.attempts,
                    next_retry: d.next_retry,
                }),
            });
        }
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
            name: self.name(),
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
            addresses: self.inner.addresses.clone(),
            sending: self.inner.node.pending_own(),
        }
    }

    /// The peers of the last run (`<store dir>/peers`): added and contacted at once, so a
    /// restarted laptop does not wait for mDNS or a `--peer` to meet them again.
    fn redial_known_peers(&self) {
        for peer in known_peers::load(&self.inner.store_dir) {
            let id = peer.id;
            if id == self.node_id() || self.inner.node.add_peer(peer).is_err() {
                continue;
            }
            let node = self.inner.node.clone();
            self.spawn(async move {
                let _ = node.gossip_with(id).await;
            });
        }
    }

    /// The peers worth redialing after a restart: every one ever heard from, most
    /// recently heard first.
    fn peers_to_remember(&self) -> Vec<Peer> {
        let mut heard: Vec<_> = self
            .inner
            .node
            .peers()
            .into_iter()
            .filter_map(|p| p.last_contact_ms.map(|t| (t, p.peer())))
            .collect();
        heard.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        heard.into_iter().map(|(_, p)| p).collect()
    }

    fn save_known_peers(&self, peers: &[Peer]) {
        if let Err(e) = known_peers::save(&self.inner.store_dir, peers) {
            tracing::warn!(error = %e, "cannot remember the peers");
        }
    }

    /// Stops discovery (a goodbye on the LAN), the node and its tasks, and closes the store.
    pub async fn shutdown(&self) {
        let known = self.peers_to_remember();
        if !known.is_empty() {
            self.save_known_peers(&known);
        }
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

    /// The names peers announced: over mDNS, else in their Hello.
    fn names(&self) -> HashMap<NodeId, String> {
        let mut names = lock(&self.inner.names).clone();
        for p in self.inner.node.peers() {
            if let Some(n) = p.name {
                names.entry(p.id).or_insert(n);
            }
        }
        names
    }

    fn lock_tasks(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
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
    pub(super) fn emit(&self, event: SessionEvent) {
        // Never waits: a screen that is slow to read must not stall the node.
        self.inner.out.send(event);
    }

    /// Tells the screen something worth reading.
    pub fn notice(&self, text: String) {
        self.emit(SessionEvent::Notice(text));
    }

    /// Answers a screen's command with lines it shows in full (`/whois`).
    pub fn answer(&self, lines: Vec<String>) {
        self.emit(SessionEvent::Answer(lines));
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
                "the store in {} was damaged: {} record(s), {} bytes dropped; peers will send those events again; \
                 `gossip-chat compact` (with the app stopped) removes the damage for good",
                r.dir.display(),
                r.dropped_records,
                r.dropped_bytes
            );
            tracing::warn!("{text}");
            self.warn(text);
        }
        if !r.tightened.is_empty() {
            let text = format!(
                "made {} file(s) and folder(s) in {} private (readable by you only): {}",
                r.tightened.len(),
                r.dir.display(),
                names(&r.tightened)
            );
            tracing::info!("{text}");
            self.notice(text);
        }
    }

    fn start_discovery(&self) -> Result<(), SessionError> {
        let me = Announcement {
            node_id: self.node_id(),
            // Our last nick when --name does not override it, as the Hello gives.
            name: self.name(),
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
        // Events reach the screen through the live view's feed, from the store; these
        // streams only tell the feed who delivered them and keep the roster (names for
        // peer rows and rename notices). A lag loses delivery names (rows then name the
        // origin), never an event, and refolds the roster from the store.
        let mut created = node.on_event_created();
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
                    r = created.recv() => match r {
                        Ok(event) => this.observe(&event).await,
                        Err(broadcast::error::RecvError::Lagged(n)) => this.refold_roster(n).await,
                        Err(_) => return,
                    },
                    r = received.recv() => match r {
                        Ok(r) => {
                            this.observe(&r.event).await;
                            let age_ms = now_ms() as i64 - r.event.created_at_ms as i64;
                            this.inner.deliveries.note(r.event.origin, r.event.seq, r.from, age_ms);
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::debug!(missed = n, "deliveries not noted (rows name the origin instead)");
                            this.refold_roster(n).await;
                        }
                        Err(_) => return,
                    },
                    r = exchanges.recv() => match r {
                        Ok(result) => this.on_exchange(result).await,
                        // The events themselves come through the store's feed; only the
                        // panel's rows for these exchanges are missing, and it says so.
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            this.warn(format!("{n} exchanges not shown in the exchange panel (the screen fell behind)"));
                        }
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
                    r = states.recv() => if let Ok(t) = r {
                        this.on_transition(t);
                        this.emit(SessionEvent::Peers(this.peer_rows()));
                    },
                }
            }
        });
    }

    /// Folds an event into the roster: a rename becomes a notice, and our own nick
    /// becomes our name (the status bar follows it).
    async fn observe(&self, event: &Event) {
        let rename = lock(&self.inner.roster).observe(event);
        let Some((from, to)) = rename.or_else(|| self.first_own_nick(event)) else {
            return;
        };
        if event.origin == self.node_id() {
            // Our own rename is no news to us (the screen that typed it says so), and a
            // script gets its event line; the status bar, our Hello and our mDNS record
            // follow it.
            self.follow_own_name(to).await;
            let status = self.status().await;
            self.emit(SessionEvent::Status(status));
            return;
        }
        if from != to {
            self.emit(SessionEvent::Presence(PresenceNote {
                at: SystemTime::now(),
                who: event.origin,
                kind: Presence::Renamed { from, to },
            }));
        }
    }

    /// Our name is now `name`: the status bar shows it, and every later handshake and our
    /// mDNS record give it (a laptop that meets us after a `/nick` sees the new name, not
    /// the one we started with).
    async fn follow_own_name(&self, name: String) {
        self.inner.transport.set_name(&name);
        if let Some(discovery) = self.inner.discovery.lock().await.as_mut()
            && let Err(e) = discovery.rename(&name)
        {
            tracing::warn!(error = %e, "mDNS still announces the old name");
        }
        *lock(&self.inner.name) = name;
    }

    /// Rebuilds the roster from the store after its event stream lagged by `missed`.
    async fn refold_roster(&self, missed: u64) {
        tracing::info!(missed, "roster stream lagged: refolding it from the store");
        match fold_roster(self.inner.store.as_ref(), self.node_id(), &self.inner.opts).await {
            Ok((roster, _)) => *lock(&self.inner.roster) = roster,
            Err(e) => tracing::warn!(error = %e, "cannot refold the roster"),
        }
    }

    /// Our first nick ever (no rename to report, but our name is now that nick).
    fn first_own_nick(&self, event: &Event) -> Option<(String, String)> {
        if event.origin != self.node_id() {
            return None;
        }
        let nick = lock(&self.inner.roster).nick(event.origin)?.to_string();
        (nick != self.name()).then(|| (nick.clone(), nick))
    }

    /// A peer answering for the first time (or again after being offline) joined; one
    /// going offline left.
    fn on_transition(&self, t: crate::node::Transition) {
        let name = || {
            let names = self.names();
            lock(&self.inner.roster).display(t.id, names.get(&t.id).map(String::as_str))
        };
        let kind = match (t.from, t.to) {
            (PeerState::Discovered | PeerState::Offline, PeerState::Alive) => {
                Presence::Joined { name: name() }
            }
            (PeerState::Alive | PeerState::Suspect, PeerState::Offline) => {
                Presence::Left { name: name() }
            }
            _ => return,
        };
        self.emit(SessionEvent::Presence(PresenceNote {
            at: SystemTime::now(),
            who: t.id,
            kind,
        }));
    }

    /// A refused inbound handshake with a likely cause (another room secret) is
    /// explained once per address, so the peer that dialed us with the wrong secret is
    /// named on this side too.
    fn hint_inbound(&self, result: &crate::node::ExchangeResult) {
        let Some(error) = result.error.as_deref() else {
            return;
        };
        let Some(hint) = addrs::hint(error) else {
            return;
        };
        let addr = error.split(": ").next().unwrap_or_default().to_string();
        {
            let mut hinted = lock(&self.inner.hinted);
            if hinted.len() >= MAX_HINTED || !hinted.insert(addr.clone()) {
                return;
            }
        }
        tracing::info!(%addr, %error, "inbound handshake refused");
        self.warn(format!("a peer at {addr} could not connect: {hint}"));
    }

    async fn on_exchange(&self, result: crate::node::ExchangeResult) {
        if !result.success && result.direction == Direction::Inbound {
            self.hint_inbound(&result);
        }
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

/// Locks a mutex, taking over a poisoned one: the data behind these locks stays valid
/// whatever a panicking holder was doing.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The roster folded from the events held, and the name to run with: `--name` when given,
/// else our latest nick there, else the default name.
async fn fold_roster(
    store: &dyn EventStore,
    me: NodeId,
    opts: &SessionOptions,
) -> Result<(Roster, String), SessionError> {
    let mut roster = Roster::default();
    for e in store.all_events().await? {
        roster.observe(&e);
    }
    let name = match roster.nick(me) {
        Some(nick) if !opts.name_given => nick.to_string(),
        _ => opts.name.trim().to_string(),
    };
    Ok((roster, name))
}

/// The file names of `paths`, for a notice.
fn names(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect();
    names.join(", ")
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
        let write = modes::private_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, port.as_bytes()));
        if let Err(e) = write {
            tracing::warn!(file = %file.display(), error = %e, "cannot remember the port");
        }
    }
    Ok(transport)
}

/// Writes `<store dir>/peers` when the set of peers heard from changes (checked every
/// 2 s), so even a crash leaves a recent list.
async fn remember_peers(session: Session) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut last: Vec<(NodeId, String)> = Vec::new();
    loop {
        tick.tick().await;
        let peers = session.peers_to_remember();
        let mut set: Vec<(NodeId, String)> =
            peers.iter().map(|p| (p.id, p.addr.0.clone())).collect();
        set.sort();
        if !peers.is_empty() && set != last {
            session.save_known_peers(&peers);
            last = set;
        }
    }
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
