//! The public API of [`GossipNode`]: every call becomes an engine input; queries read the
//! engine's state.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::auth::NodeIdentity;
use crate::protocol::chain::chain_hash;
use crate::protocol::engine::{
    CreateError, Done, Engine, EngineConfig, Input, PayloadValidator, ReceivedEvent, Signer,
    StoreState,
};
use crate::protocol::ephemeral::ReceivedEphemeral;
use crate::protocol::equivocation::Equivocation;
use crate::protocol::{Event, NodeId, VectorClock};
use crate::store::EventStore;
use crate::transport::{Peer, Transport};

use super::config::GossipConfig;
use super::error::GossipError;
use super::peer::{PeerInfo, Transition};
use super::stats::{ExchangeResult, GossipStats};
use super::{INBOUND_CAPACITY, Inner, Running, ingest, lock, schedule, streams};

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
    pub(super) inner: Arc<Inner>,
}

fn engine_config(c: &GossipConfig) -> EngineConfig {
    EngineConfig {
        node_id: c.node_id,
        fanout: c.fanout,
        strategy: c.peer_selection_strategy,
        limits: c.limits(),
        gossip_interval: c.gossip_interval,
        gossip_timeout: c.gossip_timeout,
        anti_entropy_interval: c.enable_anti_entropy.then_some(c.anti_entropy_interval),
        eager_push: c.eager_push,
        duplicate_detection: c.enable_duplicate_detection,
        lazy_push: c.lazy_push,
        budgets: c.ingest_budgets,
        probe: c.probe,
        peer_exchange: c.peer_exchange,
    }
}

fn create_error(e: CreateError) -> GossipError {
    match e {
        CreateError::NotStarted => GossipError::NotStarted,
        CreateError::EmptyPayload => GossipError::EmptyPayload,
        CreateError::TooLarge { size, limit } => GossipError::EventTooLarge { size, limit },
        CreateError::Store(why) => GossipError::Protocol(why),
    }
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
        Self::build(config, store, transport, Some(identity))
    }

    fn build(
        config: GossipConfig,
        store: Arc<dyn EventStore>,
        transport: Arc<dyn Transport>,
        identity: Option<NodeIdentity>,
    ) -> Result<Self, GossipError> {
        config.validate()?;
        let (a, b) = config.node_id.0.as_u64_pair();
        let seed = a ^ b.rotate_left(17) ^ schedule::now_ms();
        let keys = identity.as_ref().map(|_| ingest::Keys::default());
        let signer = identity.map(|i| Box::new(i) as Box<dyn Signer>);
        let engine = Engine::new(engine_config(&config), seed, signer);
        Ok(GossipNode {
            inner: Arc::new(Inner {
                config,
                store,
                transport,
                engine: Mutex::new(engine),
                streams: streams::Streams::new(),
                keys,
                waiting: Mutex::new(HashMap::new()),
                replies: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                run: tokio::sync::Mutex::new(None),
                timers: Mutex::new(CancellationToken::new()),
                clock: schedule::Clock::new(),
                blob_server: Mutex::new(None),
                blob_counters: Default::default(),
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
        self.inner.engine().is_started()
    }

    /// Rebuilds the clock and the next seq from the store, starts the transport and the
    /// node's tasks. Starting a started node does nothing.
    pub async fn start(&self) -> Result<(), GossipError> {
        let inner = &self.inner;
        let mut run = inner.run.lock().await;
        if run.is_some() {
            return Ok(());
        }
        let me = self.id();
        let own_latest_seq = inner.store.latest_seq(me).await?;
        let own_tail = match own_latest_seq {
            0 => None,
            seq => inner.store.get(me, seq).await?.map(|e| chain_hash(&e)),
        };
        let store = StoreState {
            clock: inner.store.clock().await?,
            own_latest_seq,
            max_hlc: inner.store.max_hlc().await?,
            seq_reservation: inner.store.seq_reservation().await?,
            own_tail,
        };
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        inner.transport.start(tx).await?;
        let cancel = CancellationToken::new();
        *lock(&inner.timers) = cancel.clone();
        let done = inner.command(|ticket| Input::Start { ticket, store }).await;
        let started = match done {
            Some(Done::Started(r)) => r.map_err(create_error),
            _ => Err(GossipError::NotStarted),
        };
        if let Err(e) = started {
            cancel.cancel();
            inner.feed(Input::Stop).await;
            inner.transport.stop().await;
            return Err(e);
        }
        let inbound = tokio::spawn(inner.clone().inbound_loop(rx, cancel.clone()));
        *run = Some(Running { cancel, inbound });
        tracing::info!(node = %me, next_seq = self.next_seq(), "node started");
        Ok(())
    }

    /// Stops the tasks and the transport. Stopping a stopped node does nothing.
    pub async fn stop(&self) {
        let mut run = self.inner.run.lock().await;
        let Some(running) = run.take() else {
            return;
        };
        running.cancel.cancel();
        let _ = running.inbound.await;
        self.inner.feed(Input::Stop).await;
        lock(&self.inner.replies).clear();
        self.inner.transport.stop().await;
        tracing::info!(node = %self.id(), "node stopped");
    }

    /// Creates an event with `payload`, stores it (durably, as the store defines) and pushes
    /// it to `fanout` peers. Fails if the node is stopped, the payload is empty, or the event
    /// could never fit in a message.
    pub async fn create_event(&self, payload: impl Into<Bytes>) -> Result<Event, GossipError> {
        let payload = payload.into();
        match self
            .inner
            .command(|ticket| Input::Create { ticket, payload })
            .await
        {
            Some(Done::Created(r)) => r.map_err(create_error),
            _ => Err(GossipError::NotStarted),
        }
    }

    /// [`Node::create_event`], queued now: calls made one after the other get increasing
    /// seqs in that order, whenever their futures run, so a caller can keep many in
    /// flight (piped input) and the engine saves them in groups (one fsync per group).
    /// The future resolves once the event is saved, as `create_event` does.
    pub fn create_event_queued(
        &self,
        payload: Bytes,
    ) -> impl std::future::Future<Output = Result<Event, GossipError>> + Send + use<> {
        let done = self
            .inner
            .command_queued(|ticket| Input::Create { ticket, payload });
        async move {
            match done.await {
                Some(Done::Created(r)) => r.map_err(create_error),
                _ => Err(GossipError::NotStarted),
            }
        }
    }

    /// Sends an ephemeral note to every reachable direct peer, each of which relays it to
    /// its own peers while `ttl` relays remain (at most
    /// [`crate::protocol::ephemeral::MAX_EPHEMERAL_HOPS`]). It is signed like an event but
    /// never stored and never in the clock: peers not connected now never see it (see
    /// [`crate::protocol::ephemeral`]). Returns how many peers it went to. Fails if the node
    /// is stopped or the payload is empty or over
    /// [`crate::protocol::ephemeral::MAX_EPHEMERAL_PAYLOAD`] bytes.
    pub async fn broadcast_ephemeral(
        &self,
        payload: impl Into<Bytes>,
        ttl: u8,
    ) -> Result<usize, GossipError> {
        let payload = payload.into();
        match self
            .inner
            .command(|ticket| Input::BroadcastEphemeral {
                ticket,
                payload,
                ttl,
            })
            .await
        {
            Some(Done::Ephemeral(r)) => r.map_err(create_error),
            _ => Err(GossipError::NotStarted),
        }
    }

    /// Adds a peer (or updates its address). Fires `on_peer_added` if it is new.
    pub fn add_peer(&self, peer: Peer) -> Result<(), GossipError> {
        if peer.id == self.id() {
            return Err(GossipError::SelfPeer);
        }
        if peer.id.is_nil() {
            return Err(GossipError::UnknownPeer(peer.id));
        }
        self.feed_now(Input::AddPeer(peer));
        Ok(())
    }

    /// Sets a peer's display name.
    pub fn set_peer_name(&self, id: NodeId, name: impl Into<String>) {
        self.feed_now(Input::SetPeerName(id, name.into()));
    }

    /// Removes a peer. Fires `on_peer_removed` if it was known.
    pub fn remove_peer(&self, id: NodeId) -> Option<PeerInfo> {
        let removed = self.peer(id);
        self.feed_now(Input::RemovePeer(id));
        removed
    }

    /// Marks a peer offline now (its connection closed, discovery lost it).
    pub fn mark_peer_offline(&self, id: NodeId, reason: &str) {
        self.feed_now(Input::MarkOffline {
            peer: id,
            reason: reason.to_string(),
        });
    }

    /// Feeds an input whose outputs need no I/O (peer-table changes), synchronously.
    fn feed_now(&self, input: Input) {
        let outputs = self.inner.engine().handle(input, self.inner.clock.now());
        for out in outputs {
            if let crate::protocol::engine::Output::Emit(e) = out {
                self.inner.streams.emit(e);
            }
        }
    }

    /// Installs the app's payload check (or removes it with `None`): received events whose
    /// payload it refuses are still held (a newer app may know them), but count against
    /// their origin's undecodable quota, [`crate::protocol::engine::IngestBudgets::
    /// max_undecodable_bytes_per_origin`]; past it they are refused
    /// ([`GossipStats::quota_refused`]).
    pub fn set_payload_validator(&self, validator: Option<PayloadValidator>) {
        self.inner.engine().set_payload_validator(validator);
    }

    /// Every peer.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.engine().peers().all().cloned().collect()
    }

    /// One peer.
    pub fn peer(&self, id: NodeId) -> Option<PeerInfo> {
        self.inner.engine().peers().get(&id).cloned()
    }

    /// One gossip round now: an exchange with `fanout` peers picked by the strategy.
    pub async fn gossip(&self) -> Result<Vec<ExchangeResult>, GossipError> {
        if !self.is_started() {
            return Err(GossipError::NotStarted);
        }
        match self.inner.command(|ticket| Input::Gossip { ticket }).await {
            Some(Done::Exchanges(r)) => Ok(r),
            _ => Err(GossipError::NotStarted),
        }
    }

    /// One exchange with `peer` now.
    pub async fn gossip_with(&self, peer: NodeId) -> Result<ExchangeResult, GossipError> {
        if !self.is_started() {
            return Err(GossipError::NotStarted);
        }
        if self.peer(peer).is_none() {
            return Err(GossipError::UnknownPeer(peer));
        }
        match self
            .inner
            .command(|ticket| Input::GossipWith { ticket, peer })
            .await
        {
            Some(Done::Exchange(r)) => Ok(r),
            _ => Err(GossipError::NotStarted),
        }
    }

    /// An exchange with every known peer, offline ones included (anti-entropy), now.
    pub async fn anti_entropy(&self) -> Result<Vec<ExchangeResult>, GossipError> {
        if !self.is_started() {
            return Err(GossipError::NotStarted);
        }
        match self
            .inner
            .command(|ticket| Input::AntiEntropy { ticket })
            .await
        {
            Some(Done::Exchanges(r)) => Ok(r),
            _ => Err(GossipError::NotStarted),
        }
    }

    /// The clock of what this node holds (contiguously per origin).
    pub async fn vector_clock(&self) -> Result<VectorClock, GossipError> {
        Ok(self.inner.store.clock().await?)
    }

    /// The seq the next created event will get.
    pub fn next_seq(&self) -> u64 {
        self.inner.engine().next_seq()
    }

    /// Own events asked for ([`GossipNode::create_event`] calls not yet answered) and not
    /// yet stored: an app shows them as "sending…". They wait, in order, while the node
    /// learns its own high-water mark from peers after a lost tail
    /// ([`GossipNode::is_learning_seq`]).
    pub fn pending_own(&self) -> usize {
        self.inner.engine().pending_own()
    }

    /// Whether own events wait until a peer reports this node's high-water mark (the store
    /// was found behind its seq reservation at start).
    pub fn is_learning_seq(&self) -> bool {
        self.inner.engine().is_learning_seq()
    }

    /// Counters.
    pub fn stats(&self) -> GossipStats {
        self.inner.engine().stats()
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

    /// Ephemeral notes from peers ([`GossipNode::broadcast_ephemeral`]), each delivered
    /// once, after its signature checked out.
    pub fn on_ephemeral(&self) -> broadcast::Receiver<ReceivedEphemeral> {
        self.inner.streams.ephemeral.subscribe()
    }

    /// Equivocations seen: two different events of one origin under one seq, with the one
    /// every node keeps ([`crate::protocol::equivocation`]).
    pub fn on_equivocation(&self) -> broadcast::Receiver<Equivocation> {
        self.inner.streams.equivocation.subscribe()
    }
}
