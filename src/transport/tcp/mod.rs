//! The TCP transport: framed, versioned, bounded, and safe against hostile peers.
//!
//! - One connection per peer, kept open and reused across rounds; requests and responses
//!   on it are matched by exchange id, so exchanges run concurrently in both directions.
//!   When both sides dial at once, both connections live (one per direction, never more:
//!   a newer one in the same direction replaces the older).
//! - Every connection starts with a `Hello` each way; a wrong protocol version, another
//!   room, or our own node id closes it with a `Bye` naming the reason, which is logged and
//!   reported to the node as [`Inbound::Rejected`].
//! - Every read and write has a deadline (`io_timeout`); a connection idle both ways for
//!   `idle_timeout` is closed; at most `max_inbound_connections` incoming connections live
//!   at once (the next is closed at once); frames are capped at the message size (and at
//!   [`HANDSHAKE_FRAME_MAX`] before the handshake).
//! - A dial that fails makes the next attempts to that address wait an exponential backoff
//!   with jitter; requests inside the window fail at once with `Unreachable`.
//! - A connection to a known peer that breaks is reported once as
//!   [`Inbound::Disconnected`], so the node marks the peer offline at once.
//!
//! The wire format is in `docs/PROTOCOL.md`.

mod admission;
mod backoff;
mod budget;
mod connection;
mod handshake;
mod io;
mod noise;
mod stats;

pub use self::noise::{CHUNK_MAX, Encryption, NOISE_XX, NOISE_XX_PSK3};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::admission::{AddressSlot, Member, PRODUCTIVE_FOR, PerAddress, RefusalLog, make_room};
use self::backoff::Backoff;
use self::connection::{Close, Conn, ConnLimits, run_reader, run_writer};
use self::handshake::{Established, Identity};
use self::io::{FrameReader, FrameWriter};
use self::stats::LinkCounters;
pub use self::stats::PeerLinkStats;
use super::codec::{
    Frame, HANDSHAKE_FRAME_MAX, LENGTH_PREFIX, PROTOCOL_VERSION, bye_means_gone, encode_frame,
};
use super::{Inbound, Peer, PeerAddr, Transport, TransportError};
use crate::auth::NodeIdentity;
use crate::protocol::codec::DECODE_HARD_LIMIT;
use crate::protocol::{Message, NodeId};
use crate::text::Escaped;

/// How a [`TcpTransport`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Our node id, sent in `Hello`.
    pub node_id: NodeId,
    /// Our room: peers of another room are refused.
    pub room: String,
    /// Our display name, sent in `Hello`.
    pub name: String,
    /// Where to listen; port 0 picks any free port (see [`TcpTransport::local_addr`]).
    pub listen: SocketAddr,
    /// The largest frame body sent or accepted: the node's `max_message_size_bytes`.
    pub max_message_size_bytes: usize,
    /// Deadline of every read of a started frame, every write, every dial and handshake
    /// (the node's `gossip_timeout`).
    pub io_timeout: Duration,
    /// A connection with no frame either way for this long is closed.
    pub idle_timeout: Duration,
    /// Incoming connections alive at once (handshaking ones included); more are closed
    /// as soon as they are accepted. Established ones are kept one below it, so a new peer
    /// always finds a slot: when one more completes its handshake, the member that gives
    /// least (no answer to our requests lately, silent the longest) is evicted, or the
    /// newcomer is refused if every member gives more.
    pub max_inbound_connections: usize,
    /// Incoming connections from one IP address at once (handshaking ones included).
    pub max_inbound_per_ip: usize,
    /// Outbound bytes queued per connection at most, responses being built included
    /// (raised to one largest frame if lower). A peer whose queue is full gets no new
    /// response until it drains, and is closed if it does not drain within `io_timeout`.
    pub max_outbound_queue_bytes: usize,
    /// Response bytes per second each peer may be answered with (token bucket, burst one
    /// second's worth and at least two largest frames); past it, its next requests wait.
    /// 0: unlimited.
    pub response_bytes_per_sec: u64,
    /// The protocol version we speak; peers must send the same.
    pub protocol_version: u32,
    /// Wait after the first failed dial to an address; doubles per failure.
    pub backoff_base: Duration,
    /// The longest wait between dials to an address.
    pub backoff_max: Duration,
    /// Whether connections are encrypted (Noise, the default) and with which room key.
    pub encryption: Encryption,
    /// Our identity key: with it (and encryption), each side's `Hello` proves its node id by
    /// signing the Noise handshake hash, and peers that cannot are refused.
    pub identity: Option<NodeIdentity>,
}

impl TcpConfig {
    /// The defaults for `node_id` in `room`, listening on `listen`: 1 MiB frames, 10 s I/O
    /// timeout, 5 min idle timeout, 64 inbound connections (16 per address), 2 MiB queued
    /// per connection, 64 MiB/s of responses per peer, backoff 250 ms doubling to 30 s.
    pub fn new(node_id: NodeId, room: impl Into<String>, listen: SocketAddr) -> Self {
        TcpConfig {
            node_id,
            room: room.into(),
            name: String::new(),
            listen,
            max_message_size_bytes: 1024 * 1024,
            io_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_inbound_connections: 64,
            max_inbound_per_ip: 16,
            max_outbound_queue_bytes: 2 * 1024 * 1024,
            response_bytes_per_sec: 64 * 1024 * 1024,
            protocol_version: PROTOCOL_VERSION,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            encryption: Encryption::Noise { psk: None },
            identity: None,
        }
    }

    fn validate(&self) -> Result<(), TransportError> {
        let bad = |why: &str| {
            Err(TransportError::Protocol(format!(
                "invalid TCP config: {why}"
            )))
        };
        if self.node_id.is_nil() {
            return bad("nil node id");
        }
        if !(HANDSHAKE_FRAME_MAX..=DECODE_HARD_LIMIT).contains(&self.max_message_size_bytes) {
            return bad("max_message_size_bytes outside 4 KiB ..= 64 MiB");
        }
        if self.io_timeout.is_zero() || self.idle_timeout.is_zero() {
            return bad("zero timeout");
        }
        if self.max_inbound_connections == 0 || self.max_inbound_per_ip == 0 {
            return bad("max_inbound_connections or max_inbound_per_ip is 0");
        }
        if self.max_outbound_queue_bytes > u32::MAX as usize {
            return bad("max_outbound_queue_bytes over 4 GiB");
        }
        if let Some(id) = &self.identity
            && id.node_id() != self.node_id
        {
            return bad("node id is not the identity key's");
        }
        Ok(())
    }
}

/// What a started transport runs under.
#[derive(Clone)]
struct Run {
    cancel: CancellationToken,
    inbound: mpsc::Sender<Inbound>,
    tracker: TaskTracker,
}

struct Shared {
    config: TcpConfig,
    identity: Identity,
    local_addr: SocketAddr,
    limits: ConnLimits,
    /// Bound by `bind`, taken by `start` (and bound again by a restart).
    listener: Mutex<Option<TcpListener>>,
    run: Mutex<Option<Run>>,
    conns: Mutex<HashMap<NodeId, Vec<Arc<Conn>>>>,
    dial_locks: Mutex<HashMap<PeerAddr, Arc<tokio::sync::Mutex<()>>>>,
    backoff: Mutex<HashMap<PeerAddr, Backoff>>,
    links: Mutex<HashMap<NodeId, Arc<LinkCounters>>>,
    inbound_slots: Arc<Semaphore>,
    per_address: PerAddress,
    refusals: Mutex<RefusalLog>,
    refused: AtomicU64,
    evicted: AtomicU64,
    serial: AtomicU64,
    /// Our own IPs as connections saw them (the local end of each accepted or dialed
    /// socket), most recent first: what this node signs into its peer record.
    own_ips: Mutex<Vec<std::net::IpAddr>>,
}

/// Own IPs kept at most.
const MAX_OWN_IPS: usize = 4;

/// A [`Transport`] over TCP. See the module docs.
pub struct TcpTransport {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a single map update: poison leaves it consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A restarted node takes its port back while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl TcpTransport {
    /// Validates `config` and binds the listening socket (accepting starts with
    /// [`Transport::start`]).
    pub async fn bind(config: TcpConfig) -> Result<TcpTransport, TransportError> {
        config.validate()?;
        let listener = listen(config.listen)
            .map_err(|e| TransportError::Io(format!("cannot listen on {}: {e}", config.listen)))?;
        let local_addr = listener.local_addr()?;
        let identity = Identity {
            node_id: config.node_id,
            room: config.room.clone(),
            name: config.name.clone(),
            listen_port: local_addr.port(),
            protocol_version: config.protocol_version,
            signer: config.identity.clone(),
        };
        let limits = ConnLimits {
            max_body: config.max_message_size_bytes,
            io_timeout: config.io_timeout,
            idle_timeout: config.idle_timeout,
            out_budget: config
                .max_outbound_queue_bytes
                .max(config.max_message_size_bytes + LENGTH_PREFIX),
        };
        let slots = Arc::new(Semaphore::new(config.max_inbound_connections));
        Ok(TcpTransport {
            shared: Arc::new(Shared {
                config,
                identity,
                local_addr,
                limits,
                listener: Mutex::new(Some(listener)),
                run: Mutex::new(None),
                conns: Mutex::new(HashMap::new()),
                dial_locks: Mutex::new(HashMap::new()),
                backoff: Mutex::new(HashMap::new()),
                links: Mutex::new(HashMap::new()),
                inbound_slots: slots,
                per_address: PerAddress::default(),
                refusals: Mutex::new(RefusalLog::default()),
                refused: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
                serial: AtomicU64::new(1),
                own_ips: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The address actually bound (the real port when the config asked for port 0).
    pub fn socket_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The config in force.
    pub fn config(&self) -> &TcpConfig {
        &self.shared.config
    }

    /// Connects to `addr` whose node id is not known yet (a `--peer host:port`), completes
    /// the handshake and returns the peer as it identified itself. The connection stays
    /// open for later requests.
    pub async fn probe(&self, addr: SocketAddr) -> Result<Peer, TransportError> {
        let paddr = PeerAddr(addr.to_string());
        let deadline = Instant::now() + self.shared.config.io_timeout;
        let conn = self.shared.connection(&paddr, None, deadline).await?;
        Ok(conn.peer.clone())
    }

    /// Link counters per peer ever connected.
    pub fn peer_stats(&self) -> Vec<PeerLinkStats> {
        let mut out: Vec<PeerLinkStats> = lock(&self.shared.links)
            .values()
            .map(|l| l.snapshot())
            .collect();
        out.sort_by_key(|s| s.peer);
        out
    }

    /// Connections open now (both directions, handshaking ones excluded).
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.conns).values().map(Vec::len).sum()
    }

    /// Inbound connections and input refused since start: over a cap, a failed handshake,
    /// a broken rule. Each is counted here; only the first per address per minute is
    /// logged and reported to the node as [`Inbound::Rejected`].
    pub fn refused_inbound(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Inbound members evicted to make room for a newcomer since start.
    pub fn evicted_inbound(&self) -> u64 {
        self.shared.evicted.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn running(&self) -> Result<Run, TransportError> {
        lock(&self.run).clone().ok_or(TransportError::NotStarted)
    }

    fn link(&self, id: NodeId, addr: &PeerAddr) -> Arc<LinkCounters> {
        let rate = self.config.response_bytes_per_sec;
        let burst = rate.max(2 * self.limits.out_budget as u64);
        lock(&self.links)
            .entry(id)
            .or_insert_with(|| Arc::new(LinkCounters::new(id, addr.clone(), rate, burst)))
            .clone()
    }

    /// Counts a refusal from `remote`; logs it and reports it to the node only if it is
    /// the first from that address this minute (a flood costs one line a minute). `peer`
    /// is set only for a proven node id. Never waits: a flood must not stall accepting.
    fn refuse(&self, remote: SocketAddr, peer: Option<NodeId>, error: TransportError, run: &Run) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let Some(quiet) = lock(&self.refusals).note(remote.ip(), Instant::now()) else {
            return;
        };
        tracing::warn!(%remote, ?peer, %error, quiet_refusals = quiet, "inbound connection refused");
        let error = match quiet {
            0 => error,
            n => TransportError::Protocol(format!(
                "{error} (and {n} more refusals from this address, not reported)"
            )),
        };
        let item = Inbound::Rejected {
            addr: PeerAddr(remote.to_string()),
            peer,
            error,
        };
        let inbound = run.inbound.clone();
        let wait = self.limits.io_timeout;
        // Bounded: one report per address per minute.
        run.tracker.spawn(async move {
            let _ = tokio::time::timeout(wait, inbound.send(item)).await;
        });
    }

    /// Keeps established inbound members one below the slots, so a new peer always finds
    /// one: when `conn` (just established) is one too many, the member that gives least
    /// is evicted, or `conn` itself if every other gives more.
    fn make_room(&self, conn: &Arc<Conn>) {
        let now = Instant::now();
        let member = |c: &Conn| Member {
            serial: c.serial,
            productive: c.link.productive(now, PRODUCTIVE_FOR),
            last_in: c.last_in(),
        };
        let others: Vec<(Member, Arc<Conn>)> = lock(&self.conns)
            .values()
            .flatten()
            .filter(|c| !c.outbound && c.is_open() && c.serial != conn.serial)
            .map(|c| (member(c), c.clone()))
            .collect();
        // One slot stays free for handshakes (none can with a single slot).
        let members_max = self.config.max_inbound_connections.saturating_sub(1).max(1);
        if others.len() < members_max {
            return;
        }
        let members: Vec<Member> = others.iter().map(|(m, _)| *m).collect();
        let (out, refused) = match make_room(&member(conn), &members) {
            Some(serial) => match others.into_iter().find(|(m, _)| m.serial == serial) {
                Some((_, c)) => (c, false),
                None => return,
            },
            None => (conn.clone(), true),
        };
        self.evicted.fetch_add(1, Ordering::Relaxed);
        if let Some(quiet) = lock(&self.refusals).note(out.remote.ip(), now) {
            tracing::info!(
                peer = %out.peer.id, remote = %out.remote, newcomer_refused = refused,
                quiet_evictions = quiet, "inbound slots short: member evicted"
            );
        }
        out.close(Close::Evicted);
    }

    /// An open connection to `id`. When both sides dialed at once, both prefer the one
    /// dialed by the lower node id, so the other falls idle and is closed by the idle timer.
    fn find(&self, id: NodeId) -> Option<Arc<Conn>> {
        let we_dial = self.config.node_id < id;
        let conns = lock(&self.conns);
        let list = conns.get(&id)?;
        list.iter()
            .filter(|c| c.is_open())
            .max_by_key(|c| c.outbound == we_dial)
            .cloned()
    }

    fn find_by_addr(&self, addr: &PeerAddr) -> Option<Arc<Conn>> {
        lock(&self.conns)
            .values()
            .flatten()
            .find(|c| c.is_open() && c.outbound && &c.peer.addr == addr)
            .cloned()
    }

    fn register(&self, conn: &Arc<Conn>) {
        let replaced: Vec<Arc<Conn>> = {
            let mut conns = lock(&self.conns);
            let list = conns.entry(conn.peer.id).or_default();
            let (old, keep): (Vec<_>, Vec<_>) =
                list.drain(..).partition(|c| c.outbound == conn.outbound);
            *list = keep;
            list.push(conn.clone());
            old
        };
        for old in replaced {
            old.close(Close::Replaced);
        }
    }

    /// Forgets `conn`; true if it was the last connection with its peer.
    fn unregister(&self, conn: &Conn) -> bool {
        let mut conns = lock(&self.conns);
        let Some(list) = conns.get_mut(&conn.peer.id) else {
            return false;
        };
        let before = list.len();
        list.retain(|c| c.serial != conn.serial);
        if list.len() == before {
            return false;
        }
        if list.is_empty() {
            conns.remove(&conn.peer.id);
            return true;
        }
        false
    }

    /// Turns a handshaken stream into a registered connection with its writer running;
    /// the caller runs the reader.
    fn establish<R, W>(
        &self,
        est: Established<R, W>,
        peer_addr: PeerAddr,
        remote: SocketAddr,
        outbound: bool,
        run: &Run,
    ) -> (Arc<Conn>, FrameReader<R>)
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Established {
            mut reader,
            mut writer,
            hello,
            bytes: (n_in, n_out),
            hash,
        } = est;
        reader.set_limit(self.limits.max_body);
        writer.set_limit(self.limits.max_body);
        let link = self.link(hello.node_id, &peer_addr);
        link.received(n_in);
        link.sent(n_out);
        link.opened(peer_addr.clone());
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let (conn, rx) = Conn::new(
            serial,
            Peer::new(hello.node_id, peer_addr),
            remote,
            outbound,
            link,
            run.cancel.child_token(),
            self.limits,
        );
        if !outbound {
            // The acceptor's Hello: first in the fresh queue, so first on the wire, and
            // queued before the connection is registered (see `handshake::accept`).
            let hello = Frame::Hello(self.identity.hello(hash.as_deref()));
            match encode_frame(&hello, HANDSHAKE_FRAME_MAX) {
                Ok(body) => conn.queue_first(body),
                Err(e) => conn.close(Close::Violation(TransportError::Codec(e.to_string()))),
            }
        }
        self.register(&conn);
        tracing::debug!(
            peer = %conn.peer.id, addr = %conn.peer.addr, %remote, outbound,
            name = %Escaped(&hello.name), "connection established"
        );
        run.tracker.spawn(run_writer(conn.clone(), writer, rx));
        if !outbound {
            self.make_room(&conn);
        }
        (conn, reader)
    }

    /// Runs a connection's reader, then reports how it ended.
    async fn drive<R: tokio::io::AsyncRead + Unpin>(
        self: Arc<Self>,
        conn: Arc<Conn>,
        reader: FrameReader<R>,
        run: Run,
        _slot: Option<(OwnedSemaphorePermit, AddressSlot)>,
    ) {
        let close = run_reader(conn.clone(), reader, run.inbound.clone()).await;
        let last = self.unregister(&conn);
        conn.link.closed();
        let peer = conn.peer.id;
        let why = close.describe();
        let report = match close {
            Close::PeerBye(ref reason) if !bye_means_gone(reason) => {
                tracing::debug!(%peer, reason = %why, "connection closed by the peer");
                None
            }
            Close::Lost(_) | Close::PeerBye(_) => {
                conn.link.error(why.clone());
                tracing::info!(%peer, addr = %conn.peer.addr, reason = %why, "connection closed");
                last.then_some(Inbound::Disconnected { peer, reason: why })
            }
            Close::Violation(error) => {
                conn.link.error(why.clone());
                // Counted each time, logged and reported once per address per minute.
                self.refuse(conn.remote, Some(peer), error, &run);
                None
            }
            Close::Stopping | Close::Idle | Close::Replaced | Close::Evicted | Close::Redial => {
                tracing::debug!(%peer, reason = %why, "connection closed");
                None
            }
        };
        if let Some(item) = report {
            let _ = tokio::time::timeout(self.limits.io_timeout, run.inbound.send(item)).await;
        }
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener, run: Run) {
        loop {
            let accepted = tokio::select! {
                biased;
                _ = run.cancel.cancelled() => break,
                a = listener.accept() => a,
            };
            let (stream, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: let connections close first.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::select! {
                        _ = run.cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            };
            match self.admit(remote.ip()) {
                Ok(slot) => {
                    let this = self.clone();
                    let r = run.clone();
                    run.tracker
                        .spawn(async move { this.incoming(stream, remote, r, slot).await });
                }
                Err(error) => {
                    drop(stream);
                    self.refuse(remote, None, error, &run);
                }
            }
        }
    }

    /// A slot for a new connection from `ip`: under its address's cap and the total.
    fn admit(&self, ip: IpAddr) -> Result<(OwnedSemaphorePermit, AddressSlot), TransportError> {
        let per_ip = self.config.max_inbound_per_ip;
        let Some(address) = self.per_address.take(ip, per_ip) else {
            return Err(TransportError::Protocol(format!(
                "over the limit of {per_ip} inbound connections from one address"
            )));
        };
        match self.inbound_slots.clone().try_acquire_owned() {
            Ok(slot) => Ok((slot, address)),
            Err(_) => Err(TransportError::Protocol(format!(
                "over the limit of {} inbound connections",
                self.config.max_inbound_connections
            ))),
        }
    }

    /// Notes the local IP of a connection: an address this node is reachable at (accepted)
    /// or talks from (dialed). Loopback goes after the others.
    fn note_own_ip(&self, stream: &TcpStream) {
        let Ok(local) = stream.local_addr() else {
            return;
        };
        let ip = local.ip();
        let mut ips = lock(&self.own_ips);
        if ips.first() == Some(&ip) {
            return;
        }
        ips.retain(|i| *i != ip);
        ips.insert(0, ip);
        ips.sort_by_key(|i| i.is_loopback());
        ips.truncate(MAX_OWN_IPS);
    }

    /// The socket's frame stream: through a Noise session, unless the config says plaintext.
    async fn secure(
        &self,
        stream: TcpStream,
        initiator: bool,
        deadline: Instant,
    ) -> Result<noise::Secured, TransportError> {
        match &self.config.encryption {
            Encryption::Plaintext => Ok(noise::plaintext(stream)),
            Encryption::Noise { psk } => {
                noise::secure(stream, initiator, psk.as_ref(), deadline).await
            }
        }
    }

    async fn incoming(
        self: Arc<Self>,
        stream: TcpStream,
        remote: SocketAddr,
        run: Run,
        slot: (OwnedSemaphorePermit, AddressSlot),
    ) {
        let _ = stream.set_nodelay(true);
        self.note_own_ip(&stream);
        let io_timeout = self.limits.io_timeout;
        let secured = tokio::select! {
            _ = run.cancel.cancelled() => return,
            r = self.secure(stream, false, Instant::now() + io_timeout) => r,
        };
        let result = match secured {
            Ok(sec) => {
                let reader = FrameReader::new(sec.read, HANDSHAKE_FRAME_MAX);
                let writer = FrameWriter::new(sec.write, HANDSHAKE_FRAME_MAX);
                tokio::select! {
                    _ = run.cancel.cancelled() => return,
                    r = handshake::accept(reader, writer, &self.identity, sec.handshake_hash, io_timeout) => r,
                }
            }
            Err(e) => Err((e, None)),
        };
        match result {
            Ok(est) => {
                let addr =
                    PeerAddr(SocketAddr::new(remote.ip(), est.hello.listen_port).to_string());
                let (conn, reader) = self.establish(est, addr, remote, false, &run);
                self.drive(conn, reader, run, Some(slot)).await;
            }
            Err((error, peer)) => {
                // `peer` is set only when the Hello proved its node id: a Hello in another
                // node's name touches nothing of that node.
                if let Some(id) = peer {
                    self.link(id, &PeerAddr(remote.to_string()))
                        .error(error.to_string());
                }
                self.refuse(remote, peer, error, &run);
            }
        }
    }

    /// An open connection to `addr` (expected to be node `expected`, if known): the one we
    /// hold, or a new one, unless dials to `addr` are backing off.
    async fn connection(
        self: &Arc<Self>,
        addr: &PeerAddr,
        expected: Option<NodeId>,
        deadline: Instant,
    ) -> Result<Arc<Conn>, TransportError> {
        let existing = || match expected {
            Some(id) => self.find(id),
            None => self.find_by_addr(addr),
        };
        if let Some(c) = existing() {
            return Ok(c);
        }
        let dial_lock = lock(&self.dial_locks)
            .entry(addr.clone())
            .or_default()
            .clone();
        let _one_dial = timeout_at(deadline, dial_lock.lock())
            .await
            .map_err(|_| TransportError::Timeout(self.limits.io_timeout))?;
        if let Some(c) = existing() {
            return Ok(c);
        }
        if let Some(b) = lock(&self.backoff).get(addr)
            && let Some((left, failures, last)) = b.blocks(Instant::now())
        {
            return Err(TransportError::Unreachable {
                addr: addr.clone(),
                reason: format!(
                    "{failures} failed attempt(s), next in {} ms; last: {last}",
                    left.as_millis()
                ),
            });
        }
        match self.dial(addr, expected, deadline).await {
            Ok(conn) => {
                lock(&self.backoff).remove(addr);
                Ok(conn)
            }
            Err(e) => {
                if matches!(
                    e,
                    TransportError::Handshake(_) | TransportError::Protocol(_)
                ) {
                    tracing::warn!(%addr, error = %e, "peer refused after dialing it");
                } else {
                    tracing::debug!(%addr, error = %e, "dial failed");
                }
                let mut backoff = lock(&self.backoff);
                let next = Backoff::fail(
                    backoff.get(addr),
                    Instant::now(),
                    self.config.backoff_base,
                    self.config.backoff_max,
                    e.to_string(),
                );
                backoff.insert(addr.clone(), next);
                drop(backoff);
                if let Some(id) = expected {
                    self.link(id, addr).error(e.to_string());
                }
                Err(e)
            }
        }
    }

    async fn dial(
        self: &Arc<Self>,
        addr: &PeerAddr,
        expected: Option<NodeId>,
        deadline: Instant,
    ) -> Result<Arc<Conn>, TransportError> {
        let run = self.running()?;
        let unreachable = |reason: String| TransportError::Unreachable {
            addr: addr.clone(),
            reason,
        };
        let io_timeout = self.limits.io_timeout;
        let deadline = deadline.min(Instant::now() + io_timeout);
        let target = resolve(addr).await.map_err(unreachable)?;
        let stream = timeout_at(deadline, TcpStream::connect(target))
            .await
            .map_err(|_| unreachable(format!("connect timed out after {io_timeout:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        self.note_own_ip(&stream);
        let sec = tokio::select! {
            _ = run.cancel.cancelled() => return Err(TransportError::NotStarted),
            r = self.secure(stream, true, deadline) => r?,
        };
        let reader = FrameReader::new(sec.read, HANDSHAKE_FRAME_MAX);
        let writer = FrameWriter::new(sec.write, HANDSHAKE_FRAME_MAX);
        let est = tokio::select! {
            _ = run.cancel.cancelled() => return Err(TransportError::NotStarted),
            r = timeout_at(deadline, handshake::dial(reader, writer, &self.identity, expected, sec.handshake_hash, io_timeout)) => {
                r.map_err(|_| TransportError::Timeout(io_timeout))?.map_err(|e| match (e, &self.config.encryption) {
                    // Under XXpsk3 only the acceptor can tell a wrong room key (our last
                    // handshake message fails to decrypt there); we just see it hang up.
                    (TransportError::Closed(why), Encryption::Noise { psk: Some(_) }) => {
                        TransportError::Handshake(format!(
                            "{why}: the peer probably has a different room secret"
                        ))
                    }
                    (e, _) => e,
                })?
            }
        };
        let (conn, reader) = self.establish(est, addr.clone(), target, true, &run);
        run.tracker
            .spawn(self.clone().drive(conn.clone(), reader, run.clone(), None));
        Ok(conn)
    }
}

/// The socket address of `addr` (`ip:port`, or `host:port` resolved by the system).
async fn resolve(addr: &PeerAddr) -> Result<SocketAddr, String> {
    if let Ok(a) = addr.0.parse::<SocketAddr>() {
        return Ok(a);
    }
    tokio::net::lookup_host(addr.0.as_str())
        .await
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr} resolves to no address"))
}

#[async_trait]
impl Transport for TcpTransport {
    async fn start(&self, inbound: mpsc::Sender<Inbound>) -> Result<(), TransportError> {
        let mut run = lock(&self.shared.run);
        if run.is_some() {
            return Ok(());
        }
        let listener = match lock(&self.shared.listener).take() {
            Some(l) => l,
            None => listen(self.shared.local_addr).map_err(|e| {
                TransportError::Io(format!("cannot listen on {}: {e}", self.shared.local_addr))
            })?,
        };
        let r = Run {
            cancel: CancellationToken::new(),
            inbound,
            tracker: TaskTracker::new(),
        };
        r.tracker
            .spawn(self.shared.clone().accept_loop(listener, r.clone()));
        tracing::info!(node = %self.shared.config.node_id, addr = %self.shared.local_addr, "tcp transport listening");
        *run = Some(r);
        Ok(())
    }

    async fn stop(&self) {
        let Some(run) = lock(&self.shared.run).take() else {
            return;
        };
        let conns: Vec<Arc<Conn>> = lock(&self.shared.conns)
            .values()
            .flatten()
            .cloned()
            .collect();
        for c in conns {
            c.close(Close::Stopping);
        }
        run.cancel.cancel();
        run.tracker.close();
        // Writers get a bounded moment to say Bye; nothing waits on a peer beyond it.
        let grace =
            self.shared.limits.io_timeout.min(Duration::from_secs(2)) + Duration::from_millis(500);
        if tokio::time::timeout(grace, run.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("tcp transport stopped with tasks still closing");
        }
        lock(&self.shared.conns).clear();
        tracing::info!(node = %self.shared.config.node_id, "tcp transport stopped");
    }

    async fn request(
        &self,
        peer: &Peer,
        message: Message,
        timeout: Duration,
    ) -> Result<(Message, usize), TransportError> {
        let deadline = Instant::now() + timeout;
        let conn = self
            .shared
            .connection(&peer.addr, Some(peer.id), deadline)
            .await?;
        let result = conn.request(message, deadline, timeout).await;
        if let Err(e) = &result {
            conn.link.error(e.to_string());
            if matches!(e, TransportError::Timeout(_)) {
                // The connection may be dead without TCP knowing yet (a cut cable): the
                // next request dials a fresh one instead of waiting on this one again.
                conn.close(Close::Redial);
            }
        }
        result
    }

    async fn send(&self, peer: &Peer, message: Message) -> Result<(), TransportError> {
        let deadline = Instant::now() + self.shared.limits.io_timeout;
        let conn = self
            .shared
            .connection(&peer.addr, Some(peer.id), deadline)
            .await?;
        let result = conn.push(message, deadline).await;
        if let Err(e) = &result {
            conn.link.error(e.to_string());
        }
        result
    }

    fn local_addr(&self) -> PeerAddr {
        PeerAddr(self.shared.local_addr.to_string())
    }

    fn own_addrs(&self) -> Vec<String> {
        let listen = self.shared.local_addr;
        if !listen.ip().is_unspecified() {
            return vec![listen.to_string()];
        }
        lock(&self.shared.own_ips)
            .iter()
            .map(|ip| SocketAddr::new(*ip, listen.port()).to_string())
            .collect()
    }
}
