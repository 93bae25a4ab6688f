//! [`GossipNode`]: the async shell around the protocol core.
//!
//! The node owns three tasks while started: the inbound handler (messages from the
//! transport), the round ticker (every `gossip_interval`, an exchange with `fanout` peers),
//! and anti-entropy (every `anti_entropy_interval`, an exchange with every peer). All
//! decisions (what to send, where to cut, whom to pick) are the protocol core's.

pub mod config;
pub mod error;
pub mod peer;
pub mod stats;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use config::GossipConfig;
pub use error::{ConfigError, GossipError};
pub use peer::{PeerInfo, PeerState, PeerTable, Transition};
pub use stats::{Direction, ExchangeResult, GossipStats};

use crate::auth::{self, AuthError, NodeIdentity};
use crate::protocol::exchange::{self, Batch, Want};
use crate::protocol::{Event, Hlc, Message, NodeId, Selector, VectorClock, now_ms};
use crate::store::{EventStore, SaveOutcome};
use crate::transport::{Inbound, Peer, Reply, Transport};
use stats::{Counters, add};

/// Capacity of each broadcast stream; a subscriber that lags further loses the oldest items.
pub const STREAM_CAPACITY: usize = 4096;
/// Capacity of the transport -> node channel.
pub const INBOUND_CAPACITY: usize = 1024;
/// Inbound messages handled at once.
pub const INBOUND_CONCURRENCY: usize = 64;
/// Received batches with more events than this are verified on a blocking thread: an
/// ed25519 check costs tens of microseconds, and a catch-up batch holds hundreds.
pub const VERIFY_INLINE_MAX: usize = 16;
/// A verifying thread gets at least this many events: below it, starting a thread costs
/// more than it saves.
const VERIFY_PER_THREAD_MIN: usize = 64;

/// Signing and verification state of a node built with an identity.
struct Auth {
    identity: NodeIdentity,
    /// Verified public keys of origins, learnt from their identity events.
    keys: Mutex<HashMap<NodeId, ed25519_dalek::VerifyingKey>>,
}

/// An event received from a peer, with the peer that delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The event.
    pub event: Event,
    /// The peer it came from (not necessarily its origin).
    pub from: NodeId,
}

struct Streams {
    created: broadcast::Sender<Event>,
    received: broadcast::Sender<ReceivedEvent>,
    peer_added: broadcast::Sender<PeerInfo>,
    peer_removed: broadcast::Sender<PeerInfo>,
    peer_state: broadcast::Sender<Transition>,
    exchange: broadcast::Sender<ExchangeResult>,
}

impl Streams {
    fn new() -> Self {
        Streams {
            created: broadcast::channel(STREAM_CAPACITY).0,
            received: broadcast::channel(STREAM_CAPACITY).0,
            peer_added: broadcast::channel(STREAM_CAPACITY).0,
            peer_removed: broadcast::channel(STREAM_CAPACITY).0,
            peer_state: broadcast::channel(STREAM_CAPACITY).0,
            exchange: broadcast::channel(STREAM_CAPACITY).0,
        }
    }
}

struct State {
    started: bool,
    next_seq: u64,
    /// The highest HLC seen (own or received): the next own event is stamped past it.
    hlc: u64,
    peers: PeerTable,
    selector: Selector,
    rotation: usize,
    in_flight: HashSet<NodeId>,
}

struct Running {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

struct Inner {
    config: GossipConfig,
    store: Arc<dyn EventStore>,
    transport: Arc<dyn Transport>,
    state: Mutex<State>,
    create_lock: tokio::sync::Mutex<()>,
    run: tokio::sync::Mutex<Option<Running>>,
    counters: Counters,
    streams: Streams,
    epoch: Instant,
    auth: Option<Auth>,
}

/// A gossip node. Cheap to clone: clones share one node.
///
/// ```
/// # tokio_test_block_on(async {
/// use std::sync::Arc;
/// use gossip::node::{GossipConfig, GossipNode};
/// use gossip::store::MemoryEventStore;
/// use gossip::transport::{MemoryNetwork, Peer};
/// use gossip::NodeId;
///
/// let net = MemoryNetwork::new(1);
/// let (a, b) = (NodeId::random(), NodeId::random());
/// let node_a = GossipNode::new(GossipConfig::new(a), Arc::new(MemoryEventStore::new()),
///     Arc::new(net.transport(a, "a")))?;
/// let node_b = GossipNode::new(GossipConfig::new(b), Arc::new(MemoryEventStore::new()),
///     Arc::new(net.transport(b, "b")))?;
/// node_a.start().await?;
/// node_b.start().await?;
/// node_a.add_peer(Peer::new(b, "b"))?;
///
/// node_a.create_event(&b"hello"[..]).await?;
/// let result = node_a.gossip_with(b).await?;
/// assert!(result.success);
/// // The event reaches b by eager push or by the exchange's final push; both are one-way.
/// let mut received = node_b.on_event_received();
/// while node_b.vector_clock().await?.get(&a) < 1 {
///     let _ = tokio::time::timeout(std::time::Duration::from_millis(50), received.recv()).await;
/// }
/// node_a.stop().await;
/// node_b.stop().await;
/// # Ok::<(), gossip::node::GossipError>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Runtime::new().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct GossipNode {
    inner: Arc<Inner>,
}

impl GossipNode {
    /// A stopped node. Fails if the config is invalid.
    pub fn new(
        config: GossipConfig,
        store: Arc<dyn EventStore>,
        transport: Arc<dyn Transport>,
    ) -> Result<Self, GossipError> {
        Self::build(config, store, transport, None)
    }

    /// A stopped node that signs what it creates and verifies what it receives.
    ///
    /// On start, if the store holds none of this node's events, the node creates its
    /// identity event (seq 1, carrying its public key), so its own events start at seq 2.
    /// Received events must be signed by their origin's key, known from the origin's seq 1;
    /// others are refused (see [`GossipStats::rejected_events`]). Fails if the config's
    /// node id is not `identity`'s.
    pub fn with_identity(
        config: GossipConfig,
        store: Arc<dyn EventStore>,
        transport: Arc<dyn Transport>,
        identity: NodeIdentity,
    ) -> Result<Self, GossipError> {
        if config.node_id != identity.node_id() {
            return Err(GossipError::Protocol(format!(
                "node id {} is not the identity's ({})",
                config.node_id,
                identity.node_id()
            )));
        }
        let auth = Auth {
            identity,
            keys: Mutex::new(HashMap::new()),
        };
        Self::build(config, store, transport, Some(auth))
    }

    fn build(
        config: GossipConfig,
        store: Arc<dyn EventStore>,
        transport: Arc<dyn Transport>,
        auth: Option<Auth>,
    ) -> Result<Self, GossipError> {
        config.validate()?;
        let seed = config.node_id.0.as_u64_pair().0;
        let state = State {
            started: false,
            next_seq: 1,
            hlc: 0,
            peers: PeerTable::default(),
            selector: Selector::new(config.peer_selection_strategy, seed),
            rotation: 0,
            in_flight: HashSet::new(),
        };
        Ok(GossipNode {
            inner: Arc::new(Inner {
                config,
                store,
                transport,
                state: Mutex::new(state),
                create_lock: tokio::sync::Mutex::new(()),
                run: tokio::sync::Mutex::new(None),
                counters: Counters::default(),
                streams: Streams::new(),
                epoch: Instant::now(),
                auth,
            }),
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.config.node_id
    }

    /// The config in force.
    pub fn config(&self) -> &GossipConfig {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.inner.store
    }

    /// The transport.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.inner.transport
    }

    /// Whether the node is started.
    pub fn is_started(&self) -> bool {
        self.inner.state().started
    }

    /// Rebuilds the clock and the next seq from the store, starts the transport and the
    /// node's tasks. Starting a started node does nothing.
    pub async fn start(&self) -> Result<(), GossipError> {
        let mut run = self.inner.run.lock().await;
        if run.is_some() {
            return Ok(());
        }
        let me = self.id();
        let next_seq = self.inner.store.latest_seq(me).await? + 1;
        let hlc = self.inner.store.max_hlc().await?;
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        self.inner.transport.start(tx).await?;
        {
            let mut st = self.inner.state();
            st.next_seq = st.next_seq.max(next_seq);
            st.hlc = st.hlc.max(hlc);
            st.started = true;
        }
        if let Err(e) = self.create_identity_event().await {
            self.inner.state().started = false;
            self.inner.transport.stop().await;
            return Err(e);
        }
        let cancel = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(Inner::inbound_loop(self.inner.clone(), rx, cancel.clone())),
            tokio::spawn(Inner::round_loop(self.inner.clone(), cancel.clone())),
            tokio::spawn(Inner::anti_entropy_loop(self.inner.clone(), cancel.clone())),
        ];
        *run = Some(Running { cancel, tasks });
        tracing::info!(node = %me, next_seq, "node started");
        Ok(())
    }

    /// Creates this node's identity event (seq 1) if the node signs and has none yet.
    async fn create_identity_event(&self) -> Result<(), GossipError> {
        let inner = &self.inner;
        let Some(auth) = &inner.auth else {
            return Ok(());
        };
        let _one_at_a_time = inner.create_lock.lock().await;
        if inner.state().next_seq != 1 {
            return Ok(());
        }
        let event = auth.identity.identity_event();
        let hlc = event.hlc;
        if inner.store.save(event.clone()).await? != SaveOutcome::Inserted {
            return Err(GossipError::Protocol(
                "own identity event already held; the store and the node disagree".into(),
            ));
        }
        {
            let mut st = inner.state();
            st.next_seq = st.next_seq.max(2);
            st.hlc = st.hlc.max(hlc);
        }
        add(&inner.counters.events_created, 1);
        let _ = inner.streams.created.send(event);
        Ok(())
    }

    /// Stops the tasks and the transport. Stopping a stopped node does nothing.
    pub async fn stop(&self) {
        let mut run = self.inner.run.lock().await;
        let Some(running) = run.take() else {
            return;
        };
        self.inner.state().started = false;
        running.cancel.cancel();
        for t in running.tasks {
            let _ = t.await;
        }
        self.inner.transport.stop().await;
        tracing::info!(node = %self.id(), "node stopped");
    }

    /// Creates an event with `payload`, stores it (durably, as the store defines) and pushes
    /// it to `fanout` peers. Fails if the node is stopped, the payload is empty, or the event
    /// could never fit in a message.
    pub async fn create_event(&self, payload: impl Into<Bytes>) -> Result<Event, GossipError> {
        let payload = payload.into();
        if payload.is_empty() {
            return Err(GossipError::EmptyPayload);
        }
        let inner = &self.inner;
        let _one_at_a_time = inner.create_lock.lock().await;
        let mut attempts = 0;
        let event = loop {
            let now = now_ms();
            let (seq, hlc) = {
                let st = inner.state();
                if !st.started {
                    return Err(GossipError::NotStarted);
                }
                (st.next_seq, Hlc::tick(now, st.hlc))
            };
            let mut event = Event {
                id: Uuid::now_v7(),
                origin: self.id(),
                seq,
                hlc,
                created_at_ms: now,
                payload: payload.clone(),
                sig: Bytes::new(),
            };
            if let Some(auth) = &inner.auth {
                auth.identity.sign_event(&mut event);
            }
            let size = event.encoded_len();
            let limit = inner.config.limits().max_event_bytes();
            if size > limit {
                return Err(GossipError::EventTooLarge { size, limit });
            }
            let outcome = inner.store.save(event.clone()).await?;
            let held = if outcome == SaveOutcome::Inserted {
                0
            } else {
                inner.store.latest_seq(self.id()).await?
            };
            {
                let mut st = inner.state();
                // A held seq means our own event came back from a peer (a wiped store) while
                // its receipt was still on its way to the state: step past it.
                st.next_seq = st.next_seq.max(seq + 1).max(held + 1);
                st.hlc = st.hlc.max(hlc);
            }
            if outcome == SaveOutcome::Inserted {
                break event;
            }
            attempts += 1;
            if attempts == 3 {
                return Err(GossipError::Protocol(format!(
                    "own seq {seq} already held ({outcome:?}); the store and the node disagree"
                )));
            }
        };
        add(&inner.counters.events_created, 1);
        let _ = inner.streams.created.send(event.clone());
        if inner.config.eager_push {
            inner.push_to_fanout(vec![event.clone()], &[]);
        }
        Ok(event)
    }

    /// Adds a peer (or updates its address). Fires `on_peer_added` if it is new.
    pub fn add_peer(&self, peer: Peer) -> Result<(), GossipError> {
        if peer.id == self.id() {
            return Err(GossipError::SelfPeer);
        }
        if peer.id.is_nil() {
            return Err(GossipError::UnknownPeer(peer.id));
        }
        self.inner.upsert_peer(peer);
        Ok(())
    }

    /// Sets a peer's display name.
    pub fn set_peer_name(&self, id: NodeId, name: impl Into<String>) {
        if let Some(p) = self.inner.state().peers.get_mut(&id) {
            p.name = Some(name.into());
        }
    }

    /// Removes a peer. Fires `on_peer_removed` if it was known.
    pub fn remove_peer(&self, id: NodeId) -> Option<PeerInfo> {
        let removed = self.inner.state().peers.remove(&id);
        if let Some(p) = &removed {
            let _ = self.inner.streams.peer_removed.send(p.clone());
        }
        removed
    }

    /// Marks a peer offline now (its connection closed, discovery lost it).
    pub fn mark_peer_offline(&self, id: NodeId, reason: &str) {
        let t = self.inner.state().peers.mark_offline(&id, reason);
        self.inner.announce(t);
    }

    /// Every peer.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.state().peers.all().cloned().collect()
    }

    /// One peer.
    pub fn peer(&self, id: NodeId) -> Option<PeerInfo> {
        self.inner.state().peers.get(&id).cloned()
    }

    /// One gossip round now: an exchange with `fanout` peers picked by the strategy.
    pub async fn gossip(&self) -> Result<Vec<ExchangeResult>, GossipError> {
        if !self.is_started() {
            return Err(GossipError::NotStarted);
        }
        Ok(self.inner.clone().round().await)
    }

    /// One exchange with `peer` now.
    pub async fn gossip_with(&self, peer: NodeId) -> Result<ExchangeResult, GossipError> {
        if !self.is_started() {
            return Err(GossipError::NotStarted);
        }
        let target = self
            .inner
            .state()
            .peers
            .get(&peer)
            .map(PeerInfo::peer)
            .ok_or(GossipError::UnknownPeer(peer))?;
        Ok(self.inner.clone().exchange(target).await)
    }

    /// An exchange with every known peer, offline ones included (anti-entropy), now.
    pub async fn anti_entropy(&self) -> Result<Vec<ExchangeResult>, GossipError> {
        if !self.is_started() {
            return Err(GossipError::NotStarted);
        }
        Ok(self.inner.clone().anti_entropy().await)
    }

    /// The clock of what this node holds (contiguously per origin).
    pub async fn vector_clock(&self) -> Result<VectorClock, GossipError> {
        Ok(self.inner.store.clock().await?)
    }

    /// The seq the next created event will get.
    pub fn next_seq(&self) -> u64 {
        self.inner.state().next_seq
    }

    /// Counters.
    pub fn stats(&self) -> GossipStats {
        self.inner.counters.snapshot()
    }

    /// Events created here.
    pub fn on_event_created(&self) -> broadcast::Receiver<Event> {
        self.inner.streams.created.subscribe()
    }

    /// Events new to this node, received from peers.
    pub fn on_event_received(&self) -> broadcast::Receiver<ReceivedEvent> {
        self.inner.streams.received.subscribe()
    }

    /// Peers added.
    pub fn on_peer_added(&self) -> broadcast::Receiver<PeerInfo> {
        self.inner.streams.peer_added.subscribe()
    }

    /// Peers removed.
    pub fn on_peer_removed(&self) -> broadcast::Receiver<PeerInfo> {
        self.inner.streams.peer_removed.subscribe()
    }

    /// Peer state changes (alive, suspect, offline).
    pub fn on_peer_state(&self) -> broadcast::Receiver<Transition> {
        self.inner.streams.peer_state.subscribe()
    }

    /// Results of exchanges, and inbound input the transport refused.
    pub fn on_gossip_exchange(&self) -> broadcast::Receiver<ExchangeResult> {
        self.inner.streams.exchange.subscribe()
    }
}

/// Every this many rounds, a round also tries each offline peer once.
pub const OFFLINE_RETRY_ROUNDS: u64 = 5;

/// Passes of one exchange at most; the next round goes on from where it stopped.
pub const MAX_PASSES: usize = 1000;

/// What one pass of an exchange did.
struct Pass {
    sent: usize,
    received: usize,
    bytes: usize,
    rtt: Duration,
    /// Another pass would move more events.
    more: bool,
}

/// Releases a peer's in-flight mark when an exchange ends, however it ends.
struct InFlight {
    inner: Arc<Inner>,
    peer: NodeId,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.inner.state().in_flight.remove(&self.peer);
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves State consistent, so a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn me(&self) -> NodeId {
        self.config.node_id
    }

    fn upsert_peer(&self, peer: Peer) {
        let added = {
            let mut st = self.state();
            let id = peer.id;
            st.peers.upsert(peer).then(|| st.peers.get(&id).cloned())
        };
        if let Some(Some(info)) = added {
            tracing::info!(peer = %info.id, addr = %info.addr, "peer added");
            let _ = self.streams.peer_added.send(info);
        }
    }

    fn announce(&self, transition: Option<Transition>) {
        if let Some(t) = transition {
            tracing::info!(peer = %t.id, from = t.from.name(), to = t.to.name(), "peer state");
            let _ = self.streams.peer_state.send(t);
        }
    }

    fn emit_exchange(&self, result: ExchangeResult) {
        if result.success {
            add(&self.counters.exchanges_ok, 1);
        } else {
            add(&self.counters.exchanges_failed, 1);
        }
        let _ = self.streams.exchange.send(result);
    }

    async fn inbound_loop(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Inbound>,
        cancel: CancellationToken,
    ) {
        let permits = Arc::new(Semaphore::new(INBOUND_CONCURRENCY));
        loop {
            let item = tokio::select! {
                _ = cancel.cancelled() => return,
                item = rx.recv() => match item { Some(i) => i, None => return },
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let this = self.clone();
            tokio::spawn(async move {
                this.handle_inbound(item).await;
                drop(permit);
            });
        }
    }

    async fn handle_inbound(self: Arc<Self>, item: Inbound) {
        match item {
            Inbound::Message {
                from,
                message,
                reply,
                wire_bytes,
            } => {
                add(&self.counters.bytes_received, wire_bytes as u64);
                self.handle_message(from, message, reply).await
            }
            Inbound::Disconnected { peer, reason } => {
                let t = self.state().peers.mark_offline(&peer, &reason);
                self.announce(t);
            }
            Inbound::Rejected { addr, peer, error } => {
                add(&self.counters.rejected_inbound, 1);
                tracing::warn!(%addr, ?peer, %error, "inbound input refused");
                if let Some(id) = peer {
                    let t = self.state().peers.record_failure(&id, &error.to_string());
                    self.announce(t);
                }
                self.emit_exchange(ExchangeResult::failed(
                    peer.unwrap_or(NodeId::NIL),
                    Direction::Inbound,
                    Duration::ZERO,
                    format!("{addr}: {error}"),
                ));
            }
        }
    }

    async fn handle_message(self: Arc<Self>, from: Peer, message: Message, reply: Option<Reply>) {
        if from.id == self.me() || from.id.is_nil() {
            add(&self.counters.rejected_inbound, 1);
            return;
        }
        self.upsert_peer(from.clone());
        let t = self.state().peers.record_heard(&from.id, self.now_ms());
        self.announce(t);
        match (message, reply) {
            (Message::Digest { clock, .. }, Some(reply)) => {
                self.answer_digest(from.id, clock, reply).await
            }
            (Message::Push { events, .. }, _) => {
                self.ingest(events, from.id, true, None).await;
            }
            (other, _) => {
                add(&self.counters.rejected_inbound, 1);
                tracing::warn!(peer = %from.id, kind = other.kind(), "unexpected message");
                self.emit_exchange(ExchangeResult::failed(
                    from.id,
                    Direction::Inbound,
                    Duration::ZERO,
                    format!("unexpected {} message", other.kind()),
                ));
            }
        }
    }

    /// Phase 2: answers a digest with what the peer lacks and our clock.
    async fn answer_digest(&self, peer: NodeId, theirs: VectorClock, reply: Reply) {
        let started = Instant::now();
        let ours = match self.store.clock().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "store failed while answering a digest");
                return;
            }
        };
        let rotation = self.next_rotation();
        let wants = exchange::wants(&ours, &theirs, rotation);
        let mut batch = Batch::for_response(self.me(), &ours, self.config.limits());
        let filled = self.fill(&mut batch, &wants).await;
        let sent = batch.len();
        let bytes = batch.wire_len();
        let response = batch.into_response(self.me(), ours);
        add(&self.counters.bytes_sent, bytes as u64);
        let delivered = reply.send(response);
        if let Some(p) = self.state().peers.get_mut(&peer) {
            p.events_sent += sent as u64;
        }
        let error = match (filled, delivered) {
            (Err(e), _) => Some(format!("store: {e}")),
            (_, false) => Some("requester gone before the response".to_string()),
            _ => None,
        };
        self.emit_exchange(ExchangeResult {
            peer,
            direction: Direction::Inbound,
            success: error.is_none(),
            events_sent: sent,
            events_received: 0,
            bytes,
            duration: started.elapsed(),
            error,
        });
    }

    fn next_rotation(&self) -> usize {
        let mut st = self.state();
        st.rotation = st.rotation.wrapping_add(1);
        st.rotation
    }

    /// Fills `batch` from the store, origin by origin, until a limit cuts it.
    async fn fill(&self, batch: &mut Batch, wants: &[Want]) -> Result<(), GossipError> {
        for want in wants {
            let limit = batch.remaining_events();
            if limit == 0 {
                break;
            }
            let events = self
                .store
                .events_since(want.origin, want.after, limit)
                .await?;
            for e in events {
                if !batch.push(e) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Stores events from `from`; returns how many were new. New events that came by push
    /// are relayed once to `fanout` other peers.
    ///
    /// `known`, if given, is advanced over the events now held, per origin while they are
    /// contiguous: a store may show received events only after its next sync, and an
    /// exchange must not ask again for what it just got.
    async fn ingest(
        &self,
        events: Vec<Event>,
        from: NodeId,
        relay: bool,
        known: Option<&mut VectorClock>,
    ) -> usize {
        let max_event = self.config.limits().max_event_bytes();
        let mut valid = Vec::with_capacity(events.len());
        for e in events {
            if e.seq == 0 || e.origin.is_nil() || e.encoded_len() > max_event {
                add(&self.counters.invalid_events, 1);
                tracing::warn!(peer = %from, origin = %e.origin, seq = e.seq, "invalid event dropped");
                continue;
            }
            valid.push(e);
        }
        if !self.config.enable_duplicate_detection
            && !valid.is_empty()
            && let Ok(clock) = self.store.clock().await
        {
            let before = valid.len();
            valid.retain(|e| e.seq > clock.get(&e.origin));
            add(&self.counters.duplicates, (before - valid.len()) as u64);
        }
        if self.auth.is_some() && !valid.is_empty() {
            valid = self.verify(valid, from).await;
        }
        if valid.is_empty() {
            return 0;
        }
        let outcomes = match self.store.save_received(valid.clone()).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "store failed while saving received events");
                return 0;
            }
        };
        if let Some(known) = known {
            for e in &valid {
                if e.seq == known.get(&e.origin) + 1 {
                    known.set(e.origin, e.seq);
                }
            }
        }
        let mut fresh = Vec::new();
        for (event, outcome) in valid.into_iter().zip(outcomes) {
            match outcome {
                SaveOutcome::Inserted => fresh.push(event),
                SaveOutcome::Duplicate => add(&self.counters.duplicates, 1),
                SaveOutcome::Equivocation { replaced, .. } => {
                    add(&self.counters.conflicts, 1);
                    tracing::warn!(
                        peer = %from, origin = %event.origin, seq = event.seq, replaced,
                        "equivocation: a different event is held under this (origin, seq)"
                    );
                    if replaced {
                        fresh.push(event);
                    }
                }
                SaveOutcome::Conflict => {
                    add(&self.counters.conflicts, 1);
                    tracing::warn!(
                        peer = %from, origin = %event.origin, seq = event.seq,
                        "conflicting event refused: a different event is held under this (origin, seq)"
                    );
                }
            }
        }
        if fresh.is_empty() {
            return 0;
        }
        {
            let mut st = self.state();
            let me = self.config.node_id;
            for e in &fresh {
                st.hlc = st.hlc.max(e.hlc);
                // Our own events coming back (a wiped store): never reuse their seqs.
                if e.origin == me {
                    st.next_seq = st.next_seq.max(e.seq + 1);
                }
            }
            if let Some(p) = st.peers.get_mut(&from) {
                p.events_received += fresh.len() as u64;
            }
        }
        add(&self.counters.events_received, fresh.len() as u64);
        for e in &fresh {
            let _ = self.streams.received.send(ReceivedEvent {
                event: e.clone(),
                from,
            });
        }
        let n = fresh.len();
        if relay && self.config.eager_push {
            let origins: Vec<NodeId> = fresh.iter().map(|e| e.origin).collect();
            let mut exclude = vec![from];
            exclude.extend(origins);
            self.push_to_fanout(fresh, &exclude);
        }
        n
    }

    /// Keeps the events whose signature verifies under their origin's key; the others are
    /// counted, logged and reported once per batch on the exchange stream.
    async fn verify(&self, events: Vec<Event>, from: NodeId) -> Vec<Event> {
        let Some(auth) = &self.auth else {
            return events;
        };
        let lock = |m: &Mutex<HashMap<NodeId, ed25519_dalek::VerifyingKey>>| {
            // Each critical section is one map read or insert; poison leaves it consistent.
            m.lock().unwrap_or_else(|p| p.into_inner()).clone()
        };
        let mut keys = lock(&auth.keys);
        let mut lookup: Vec<NodeId> = events
            .iter()
            .filter(|e| e.seq > 1 && !keys.contains_key(&e.origin))
            .map(|e| e.origin)
            .collect();
        lookup.sort();
        lookup.dedup();
        for origin in lookup {
            // Held events were verified on receipt, so the held seq 1 gives the key.
            if let Ok(first) = self.store.events_since(origin, 0, 1).await
                && let Some(first) = first.first()
                && first.seq == 1
                && let Ok(key) = auth::verify_identity_event(first)
            {
                keys.insert(origin, key);
            }
        }
        let inline = events.len() <= VERIFY_INLINE_MAX;
        let check = move || {
            // Identity events first, in order: they bring the keys the rest is checked with.
            let mut verdicts: Vec<Option<Result<(), AuthError>>> = events
                .iter()
                .map(|e| {
                    (e.seq == 1).then(|| {
                        auth::verify_identity_event(e).map(|k| {
                            keys.insert(e.origin, k);
                        })
                    })
                })
                .collect();
            let verify = |e: &Event| match keys.get(&e.origin) {
                Some(k) => auth::verify_event(e, k),
                None => Err(AuthError::UnknownKey),
            };
            let threads = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(events.len() / VERIFY_PER_THREAD_MIN)
                .max(1);
            let chunk = events.len().div_ceil(threads).max(1);
            if threads == 1 {
                for (e, v) in events.iter().zip(&mut verdicts) {
                    if v.is_none() {
                        *v = Some(verify(e));
                    }
                }
            } else {
                std::thread::scope(|scope| {
                    for (evs, out) in events.chunks(chunk).zip(verdicts.chunks_mut(chunk)) {
                        let verify = &verify;
                        scope.spawn(move || {
                            for (e, v) in evs.iter().zip(out) {
                                if v.is_none() {
                                    *v = Some(verify(e));
                                }
                            }
                        });
                    }
                });
            }
            let mut ok = Vec::with_capacity(events.len());
            let mut bad = Vec::new();
            for (e, verdict) in events.into_iter().zip(verdicts) {
                match verdict.unwrap_or(Err(AuthError::UnknownKey)) {
                    Ok(()) => ok.push(e),
                    Err(why) => bad.push((e.origin, e.seq, why)),
                }
            }
            (ok, bad, keys)
        };
        let (ok, bad, keys) = if inline {
            check()
        } else {
            match tokio::task::spawn_blocking(check).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "event verification failed to run");
                    return Vec::new();
                }
            }
        };
        auth.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(keys);
        if let Some((origin, seq, why)) = bad.first() {
            add(&self.counters.rejected_events, bad.len() as u64);
            tracing::warn!(
                peer = %from, %origin, seq, error = %why, count = bad.len(),
                "events refused: signature check failed"
            );
            self.emit_exchange(ExchangeResult::failed(
                from,
                Direction::Inbound,
                Duration::ZERO,
                format!(
                    "{} event(s) rejected, first {origin}/{seq}: {why}",
                    bad.len()
                ),
            ));
        }
        ok
    }

    /// Eager push: sends `events` to `fanout` reachable peers not in `exclude`, in messages
    /// cut to the limits. Does not wait for delivery.
    fn push_to_fanout(&self, events: Vec<Event>, exclude: &[NodeId]) {
        let targets: Vec<Peer> = {
            let mut st = self.state();
            let ids: Vec<NodeId> = st
                .peers
                .all()
                .filter(|p| p.is_reachable() && !exclude.contains(&p.id))
                .map(|p| p.id)
                .collect();
            let picked = st.selector.random_subset(&ids, self.config.fanout);
            picked
                .iter()
                .filter_map(|id| st.peers.get(id).map(PeerInfo::peer))
                .collect()
        };
        if targets.is_empty() {
            return;
        }
        let messages = self.cut_into_pushes(events);
        for peer in targets {
            for (message, len) in &messages {
                add(&self.counters.pushes_sent, 1);
                add(&self.counters.bytes_sent, *len as u64);
                let transport = self.transport.clone();
                let (peer, message) = (peer.clone(), message.clone());
                tokio::spawn(async move {
                    if let Err(e) = transport.send(&peer, message).await {
                        tracing::debug!(peer = %peer.id, error = %e, "eager push failed");
                    }
                });
            }
        }
    }

    /// Cuts `events` into push messages within the limits, each with its size.
    fn cut_into_pushes(&self, events: Vec<Event>) -> Vec<(Message, usize)> {
        let me = self.me();
        let limits = self.config.limits();
        let mut out = Vec::new();
        let mut batch = Batch::for_push(me, limits);
        for e in events {
            if !batch.push(e.clone()) {
                let full = std::mem::replace(&mut batch, Batch::for_push(me, limits));
                let len = full.wire_len();
                out.push((full.into_push(me), len));
                // An event always fits an empty batch: it was checked at creation or receipt.
                batch.push(e);
            }
        }
        if !batch.is_empty() {
            let len = batch.wire_len();
            out.push((batch.into_push(me), len));
        }
        out
    }

    /// One exchange (phases 1-3) with `peer`, as the initiator.
    async fn exchange(self: Arc<Self>, peer: Peer) -> ExchangeResult {
        let started = Instant::now();
        let outcome = self.run_exchange(&peer).await;
        let now = self.now_ms();
        let result = match outcome {
            Ok((sent, received, bytes, rtt)) => {
                let t = {
                    let mut st = self.state();
                    if let Some(p) = st.peers.get_mut(&peer.id) {
                        p.events_sent += sent as u64;
                    }
                    st.peers.record_success(&peer.id, Some(rtt), now)
                };
                self.announce(t);
                ExchangeResult {
                    peer: peer.id,
                    direction: Direction::Outbound,
                    success: true,
                    events_sent: sent,
                    events_received: received,
                    bytes,
                    duration: started.elapsed(),
                    error: None,
                }
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::debug!(peer = %peer.id, error = %msg, "exchange failed");
                let t = self.state().peers.record_failure(&peer.id, &msg);
                self.announce(t);
                ExchangeResult::failed(peer.id, Direction::Outbound, started.elapsed(), msg)
            }
        };
        self.emit_exchange(result.clone());
        result
    }

    /// Runs passes of the 3-phase exchange with `peer` while either side still lacks events
    /// the other holds and the last pass made progress, so a cold node catches up at the
    /// speed of round trips rather than one batch per gossip interval.
    async fn run_exchange(
        &self,
        peer: &Peer,
    ) -> Result<(usize, usize, usize, Duration), GossipError> {
        let (mut sent, mut received, mut bytes) = (0, 0, 0);
        let mut rtt = None;
        // What each side holds as far as this exchange knows: stores may show what was
        // just received only after their next sync, and no pass should move it twice.
        let mut ours = VectorClock::new();
        let mut pushed = VectorClock::new();
        for _ in 0..MAX_PASSES {
            let pass = self.pass(peer, &mut ours, &mut pushed).await?;
            rtt.get_or_insert(pass.rtt);
            sent += pass.sent;
            received += pass.received;
            bytes += pass.bytes;
            if !pass.more {
                break;
            }
        }
        Ok((sent, received, bytes, rtt.unwrap_or_default()))
    }

    /// One pass: digest, response, push.
    async fn pass(
        &self,
        peer: &Peer,
        ours: &mut VectorClock,
        pushed: &mut VectorClock,
    ) -> Result<Pass, GossipError> {
        let me = self.me();
        ours.merge(&self.store.clock().await?);
        let digest = exchange::digest(me, ours);
        let mut bytes = digest.encoded_len();
        add(&self.counters.bytes_sent, bytes as u64);
        let asked = Instant::now();
        let (response, response_len) = self
            .transport
            .request(peer, digest, self.config.gossip_timeout)
            .await?;
        let rtt = asked.elapsed();
        add(&self.counters.bytes_received, response_len as u64);
        bytes += response_len;
        let (events, theirs) = match response {
            Message::DigestResponse {
                from,
                events,
                clock,
            } if from == peer.id => (events, clock),
            Message::DigestResponse { from, .. } => {
                return Err(GossipError::Protocol(format!(
                    "response from {from}, expected {}",
                    peer.id
                )));
            }
            other => {
                return Err(GossipError::Protocol(format!(
                    "expected DigestResponse, got {}",
                    other.kind()
                )));
            }
        };
        let received = self.ingest(events, peer.id, false, Some(ours)).await;
        // Phase 3: what the peer lacks, judged against its clock and what this exchange
        // already pushed to it.
        ours.merge(&self.store.clock().await?);
        let theirs = theirs.merged(pushed);
        let wants = exchange::wants(ours, &theirs, self.next_rotation());
        let mut sent = 0;
        let mut push_cut = false;
        if !wants.is_empty() {
            let mut batch = Batch::for_push(me, self.config.limits());
            self.fill(&mut batch, &wants).await?;
            push_cut = batch.is_cut();
            if !batch.is_empty() {
                sent = batch.len();
                let len = batch.wire_len();
                let push = batch.into_push(me);
                for e in push.events() {
                    if e.seq == theirs.get(&e.origin).max(pushed.get(&e.origin)) + 1 {
                        pushed.set(e.origin, e.seq);
                    }
                }
                bytes += len;
                add(&self.counters.bytes_sent, len as u64);
                self.transport.send(peer, push).await?;
            }
        }
        let they_have_more = !exchange::wants(&theirs, ours, 0).is_empty();
        Ok(Pass {
            sent,
            received,
            bytes,
            rtt,
            more: (received > 0 && they_have_more) || (sent > 0 && push_cut),
        })
    }

    /// Marks `peer` busy; `None` if an exchange with it is already running.
    fn begin(self: &Arc<Self>, peer: NodeId) -> Option<InFlight> {
        self.state().in_flight.insert(peer).then(|| InFlight {
            inner: self.clone(),
            peer,
        })
    }

    async fn exchange_all(self: Arc<Self>, targets: Vec<Peer>) -> Vec<ExchangeResult> {
        let mut set = tokio::task::JoinSet::new();
        for peer in targets {
            let Some(guard) = self.begin(peer.id) else {
                continue;
            };
            let this = self.clone();
            set.spawn(async move {
                let r = this.exchange(peer).await;
                drop(guard);
                r
            });
        }
        let mut results = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                results.push(r);
            }
        }
        results
    }

    async fn round(self: Arc<Self>) -> Vec<ExchangeResult> {
        let n = self
            .counters
            .rounds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let targets: Vec<Peer> = {
            let mut st = self.state();
            let busy: Vec<NodeId> = st.in_flight.iter().copied().collect();
            let candidates = st.peers.candidates();
            let picked = st.selector.select(&candidates, self.config.fanout, &busy);
            let mut targets: Vec<Peer> = picked
                .iter()
                .filter_map(|id| st.peers.get(id).map(PeerInfo::peer))
                .collect();
            // Offline peers are tried again now and then: one that comes back at its old
            // address is found even when discovery does not report it.
            if n % OFFLINE_RETRY_ROUNDS == OFFLINE_RETRY_ROUNDS - 1 {
                targets.extend(
                    st.peers
                        .all()
                        .filter(|p| p.state == PeerState::Offline && !busy.contains(&p.id))
                        .map(PeerInfo::peer),
                );
            }
            targets
        };
        self.exchange_all(targets).await
    }

    async fn anti_entropy(self: Arc<Self>) -> Vec<ExchangeResult> {
        add(&self.counters.anti_entropy_runs, 1);
        let targets: Vec<Peer> = self.state().peers.all().map(PeerInfo::peer).collect();
        self.exchange_all(targets).await
    }

    async fn round_loop(self: Arc<Self>, cancel: CancellationToken) {
        let mut ticker = tokio::time::interval(self.config.gossip_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            // Rounds run beside the ticker, so one slow peer never delays the next round;
            // the in-flight marks keep two exchanges with one peer from overlapping.
            let this = self.clone();
            let c = cancel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = c.cancelled() => {}
                    _ = this.round() => {}
                }
            });
        }
    }

    async fn anti_entropy_loop(self: Arc<Self>, cancel: CancellationToken) {
        if !self.config.enable_anti_entropy {
            return;
        }
        let period = self.config.anti_entropy_interval;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let this = self.clone();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = this.anti_entropy() => {}
            }
        }
    }
}
