//! The gossip engine: every protocol decision of one node, as a state machine with no I/O.
//!
//! A driver (the async [`crate::node::GossipNode`], or the simulator in `crate::sim`) feeds
//! [`Input`]s with the current time into [`Engine::handle`] and carries out the
//! [`Output`]s it returns: sends and requests, store reads ([`Output::Fetch`], answered by
//! [`Input::Fetched`]) and writes ([`Output::Save`], answered by [`Input::Saved`]), timers,
//! and what to tell the world. Time (`now`, ms since the Unix epoch, never going back) and
//! randomness (a generator seeded at construction) are inputs, so a run is a function of
//! its inputs: tests need no sockets and no sleeps, and the simulator's figures are the
//! node's.
//!
//! The rules, one file each:
//! - [`reconcile`]: the set-reconciliation rounds that open an exchange;
//! - [`exchange`]: digest, response, continuation passes and the final push;
//! - [`relay`]: eager push of new events, once per event (infect and die);
//! - [`plumtree`]: lazy push: eager along a spanning tree, `IHave`/`Graft`/`Prune`;
//! - [`schedule`]: rounds, anti-entropy and the offline retry, as timers;
//! - [`liveness`]: the peer table, discovered -> alive -> suspect -> offline;
//! - [`ingest`]: which received events are valid and what to do with new ones;
//! - [`create`]: issuing own events (seq, HLC, signature) one at a time;
//! - [`budget`]: per-peer budgets and per-origin quotas on what is accepted;
//! - [`detector`]: failure detection from heartbeats with RTT-derived deadlines and
//!   indirect probes (SWIM's ping-req);
//! - [`pex`]: peer exchange, signed address records of live members;
//! - [`ephemeral`]: notes for direct peers, relayed once, never stored.

pub mod budget;
pub mod create;
pub mod detector;
pub mod ephemeral;
pub mod exchange;
pub mod held;
pub mod ingest;
pub mod input;
pub mod liveness;
pub mod output;
pub mod pex;
pub mod plumtree;
pub mod reconcile;
pub mod relay;
pub mod schedule;
pub mod stats;

#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::chain::{ChainHash, SEAL_LEN, chain_hash};
use super::clock::VectorClock;
use super::event::{Event, NodeId};
use super::exchange::Limits;
use super::own_seq::OwnSeq;
use super::peer_record::PeerRecord;
use super::selection::{PeerSelectionStrategy, Selector};
use super::validity::Bounds;

pub use budget::{IngestBudgets, OriginUsage, PayloadValidator};
pub use detector::{DetectorStats, ProbeConfig, RttEstimate};
pub use input::{ExchangeId, FetchId, Input, RequestId, SaveId, StoreState, Ticket, Verdict};
pub use liveness::{PeerInfo, PeerState, PeerTable, Transition};
pub use output::{
    CreateError, Direction, Done, Emit, ExchangeResult, Output, ReceivedEvent, Timer,
};
pub use pex::PexStats;
pub use stats::GossipStats;

/// Signs this node's events. Pure CPU work, done by the engine when it issues an event;
/// implemented by [`crate::auth::NodeIdentity`]. Events are sealed in a hash chain (see
/// [`crate::protocol::chain`]): each seal covers the chain hash of the origin's previous
/// event, so a receiver checks one signature per contiguous run.
pub trait Signer: Send {
    /// Fills `event.sig` with a seal linking it to the own event whose chain hash is
    /// `prev` ([`crate::protocol::chain::UNLINKED`] for none).
    fn sign_after(&self, event: &mut Event, prev: &ChainHash);
    /// Fills `event.sig` with a plain signature, outside any chain (ephemeral notes: see
    /// [`crate::protocol::ephemeral`]).
    fn sign(&self, event: &mut Event);
    /// Seals a group of own events (consecutive seqs) as one chain after `prev`; returns
    /// the chain hash of the last. Sequential by nature: each seal covers the one before.
    fn sign_many(&self, events: &mut [Event], mut prev: ChainHash) -> ChainHash {
        for e in events {
            self.sign_after(e, &prev);
            prev = chain_hash(e);
        }
        prev
    }
    /// The length of the seal [`Signer::sign_after`] writes, known before signing so an
    /// event's size can be checked first.
    fn signature_len(&self) -> usize {
        SEAL_LEN
    }
    /// This node's identity event (seq 1, carrying its public key), signed.
    fn identity_event(&self) -> Event;
    /// This node's peer record for `addrs` at `epoch`, signed (see
    /// [`crate::protocol::peer_record`]).
    fn sign_record(&self, epoch: u64, addrs: Vec<String>) -> PeerRecord;
    /// Whether `record` is signed by the key of the node it describes.
    fn verify_record(&self, record: &PeerRecord) -> bool;
}

/// What the engine needs of the node's config.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// This node.
    pub node_id: NodeId,
    /// Peers per round and per eager push.
    pub fanout: usize,
    /// How round peers are picked.
    pub strategy: PeerSelectionStrategy,
    /// Message limits.
    pub limits: Limits,
    /// Time between rounds.
    pub gossip_interval: Duration,
    /// How long a request may take.
    pub gossip_timeout: Duration,
    /// Time between anti-entropy sweeps, if enabled.
    pub anti_entropy_interval: Option<Duration>,
    /// Push new events at once to `fanout` peers.
    pub eager_push: bool,
    /// Let the store judge duplicates; when off, the engine drops events its clock already
    /// covers before saving.
    pub duplicate_detection: bool,
    /// PlumTree lazy push (see [`plumtree`]): with `eager_push`, new events go in full
    /// along a spanning tree and as `IHave` announcements to the other peers.
    pub lazy_push: bool,
    /// Per-peer budgets and per-origin quotas on received events (see [`budget`]).
    pub budgets: IngestBudgets,
    /// The failure detector (see [`detector`]); `None` keeps the older rule (a failed
    /// exchange makes a peer suspect, [`liveness::OFFLINE_AFTER_FAILURES`] make it
    /// offline).
    pub probe: Option<ProbeConfig>,
    /// Peer exchange (see [`pex`]); needs a [`Signer`].
    pub peer_exchange: bool,
}

/// Passes of one exchange at most; the next round goes on from where it stopped.
pub const MAX_PASSES: u32 = 1000;

/// Every this many rounds, a round also tries each offline peer once.
pub const OFFLINE_RETRY_ROUNDS: u64 = 5;

/// The engine of one node. See the module docs.
pub struct Engine {
    config: EngineConfig,
    signer: Option<Box<dyn Signer>>,
    rng: SmallRng,
    now: u64,
    started: bool,
    run: u64,
    next_id: u64,
    held: held::Held,
    /// Which own seq comes next, and whether it may be issued yet.
    own_seq: OwnSeq,
    /// The highest HLC seen (own or received): the next own event is stamped past it.
    hlc: u64,
    /// How far a received event's clocks may run ahead of ours.
    bounds: Bounds,
    /// Digests of own events that lost an equivocation and whose payload was issued again
    /// (so a loser seen twice is issued again once).
    reissued: BTreeSet<[u8; 32]>,
    /// Equivocations acted on, as digests of (winner, loser): the same pair seen again
    /// (each side sending the other its copy) is not counted, reported or sent twice.
    equivocations_seen: std::collections::HashSet<([u8; 32], [u8; 32])>,
    /// Own events issued in this run while the store may have been behind what peers hold
    /// (see [`create::Unsure`]); shown to a peer that reports holding their seqs, so a
    /// divergence is found even though equal clocks never carry events.
    unsure: create::Unsure,
    peers: PeerTable,
    detector: detector::Detector,
    pex: pex::Pex,
    tree: plumtree::Tree,
    selector: Selector,
    rotation: usize,
    in_flight: BTreeSet<NodeId>,
    exchanges: HashMap<ExchangeId, exchange::Outbound>,
    fetches: HashMap<FetchId, exchange::FetchFor>,
    saves: HashMap<SaveId, ingest::SaveFor>,
    groups: HashMap<u64, schedule::Group>,
    creator: create::Creator,
    ephemeral: ephemeral::Ephemerals,
    stats: GossipStats,
    budgets: budget::Budgets,
    out: Vec<Output>,
}

impl Engine {
    /// A stopped engine. `seed` drives every random choice (peer picks, event ids).
    pub fn new(config: EngineConfig, seed: u64, signer: Option<Box<dyn Signer>>) -> Self {
        let detector_on = config.probe.is_some();
        Engine {
            selector: Selector::new(config.strategy, seed),
            rng: SmallRng::seed_from_u64(seed ^ 0x5EED_0FE4_E4E4),
            config,
            signer,
            now: 0,
            started: false,
            run: 0,
            next_id: 0,
            held: held::Held::default(),
            own_seq: OwnSeq::start(0, 0),
            hlc: 0,
            bounds: Bounds::default(),
            reissued: BTreeSet::new(),
            equivocations_seen: std::collections::HashSet::new(),
            unsure: create::Unsure::default(),
            peers: PeerTable::new(detector_on),
            detector: detector::Detector::default(),
            pex: pex::Pex::default(),
            tree: plumtree::Tree::default(),
            rotation: 0,
            in_flight: BTreeSet::new(),
            exchanges: HashMap::new(),
            fetches: HashMap::new(),
            saves: HashMap::new(),
            groups: HashMap::new(),
            creator: create::Creator::default(),
            ephemeral: ephemeral::Ephemerals::default(),
            stats: GossipStats::default(),
            budgets: budget::Budgets::default(),
            out: Vec::new(),
        }
    }

    /// Handles one input at time `now` (ms since the Unix epoch; an earlier time than the
    /// last is taken as the last) and returns what to do.
    pub fn handle(&mut self, input: Input, now: u64) -> Vec<Output> {
        self.now = self.now.max(now);
        match input {
            Input::Start { ticket, store } => self.start(ticket, store),
            Input::Stop => self.stop(),
            Input::AddPeer(peer) => self.add_peer(peer),
            Input::RemovePeer(id) => self.remove_peer(id),
            Input::SetPeerName(id, name) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    p.name = Some(name);
                }
            }
            Input::MarkOffline { peer, reason } => {
                let t = self.peers.mark_offline(&peer, &reason);
                self.announce(t);
            }
            Input::Create { ticket, payload } => self.create(ticket, payload),
            Input::Gossip { ticket } => self.round(Some(ticket)),
            Input::GossipWith { ticket, peer } => self.gossip_with(ticket, peer),
            Input::AntiEntropy { ticket } => self.anti_entropy(Some(ticket)),
            Input::Received {
                from,
                message,
                request,
                wire_bytes,
            } => self.received(from, message, request, wire_bytes),
            Input::Response {
                exchange,
                message,
                wire_bytes,
            } if self.detector.owns(&exchange) => {
                self.stats.bytes_received += wire_bytes as u64;
                self.probe_response(exchange, message)
            }
            Input::Response {
                exchange,
                message,
                wire_bytes,
            } => self.response(exchange, message, wire_bytes),
            Input::RequestFailed { exchange, error } if self.detector.owns(&exchange) => {
                self.probe_failed(exchange, error)
            }
            Input::RequestFailed { exchange, error } => self.fail_exchange(exchange, error),
            Input::OwnAddrs(addrs) => self.own_addrs(addrs),
            Input::Disconnected { peer, reason } => {
                let t = self.peers.mark_offline(&peer, &reason);
                self.announce(t);
            }
            Input::Rejected { peer, error } => self.rejected(peer, error),
            Input::Fetched {
                fetch,
                clock,
                events,
            } => self.fetched(fetch, clock, events),
            Input::FetchFailed { fetch, error } => self.fetch_failed(fetch, error),
            Input::Saved { save, verdicts } => self.saved(save, verdicts),
            Input::SaveFailed { save, error } => self.save_failed(save, error),
            Input::TimerFired(timer) => self.timer(timer),
            Input::Reserved { up_to } => self.reserved(up_to),
            Input::ReserveFailed { error } => self.reserve_failed(error),
            Input::BroadcastEphemeral {
                ticket,
                payload,
                ttl,
            } => self.broadcast_ephemeral(ticket, payload, ttl),
            Input::EphemeralChecked {
                from,
                ephemeral,
                result,
            } => self.ephemeral_checked(from, ephemeral, result),
        }
        std::mem::take(&mut self.out)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.node_id
    }

    /// The config in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Whether the engine is started.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The seq the next created event will get.
    pub fn next_seq(&self) -> u64 {
        self.own_seq.next_seq()
    }

    /// Whether own events wait until a peer reports this node's high-water mark (a lost
    /// tail was detected at start, see [`crate::protocol::own_seq`]).
    pub fn is_learning_seq(&self) -> bool {
        self.own_seq.is_learning()
    }

    /// Own events asked for and not yet stored: the app shows them as "sending…".
    pub fn pending_own(&self) -> usize {
        self.creator.pending()
    }

    /// The bounds received clocks are checked against.
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }

    /// Sets the bounds received clocks are checked against (tests and simulations).
    pub fn set_bounds(&mut self, bounds: Bounds) {
        self.bounds = bounds;
    }

    /// The highest HLC seen.
    pub fn hlc(&self) -> u64 {
        self.hlc
    }

    /// What the engine knows the store holds (contiguously per origin).
    pub fn clock(&self) -> &VectorClock {
        self.held.clock()
    }

    /// The peer table.
    pub fn peers(&self) -> &PeerTable {
        &self.peers
    }

    /// Counters.
    pub fn stats(&self) -> GossipStats {
        self.stats
    }

    /// The ephemeral state (dedupe memory, rates).
    pub fn ephemerals(&self) -> &ephemeral::Ephemerals {
        &self.ephemeral
    }

    /// The failure detector's counters.
    pub fn detector_stats(&self) -> DetectorStats {
        self.detector.stats
    }

    /// When a suspect peer goes offline unless it (or a helper) answers first.
    pub fn offline_deadline(&self, id: &NodeId) -> Option<u64> {
        self.detector.offline_at(id)
    }

    /// A peer's smoothed RTT, as the detector measured it.
    pub fn rtt_estimate(&self, id: &NodeId) -> Option<RttEstimate> {
        self.detector.rtt(id)
    }

    /// Peer exchange: the records held, our own, counters.
    pub fn pex(&self) -> &pex::Pex {
        &self.pex
    }

    /// Exchanges in flight (outbound).
    pub fn exchanges_in_flight(&self) -> usize {
        self.exchanges.len()
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn emit(&mut self, e: Emit) {
        self.out.push(Output::Emit(e));
    }

    fn done(&mut self, ticket: Ticket, done: Done) {
        self.out.push(Output::Done { ticket, done });
    }

    fn start(&mut self, ticket: Ticket, store: StoreState) {
        if self.started {
            self.done(ticket, Done::Started(Ok(())));
            return;
        }
        self.started = true;
        self.run += 1;
        self.held = held::Held::new(store.clock);
        // What this engine issued before a stop counts as held too.
        let high_water = store
            .own_latest_seq
            .max(self.own_seq.next_seq().saturating_sub(1));
        self.own_seq = OwnSeq::start(
            high_water,
            store.seq_reservation.max(self.own_seq.reserved()),
        );
        self.unsure = create::Unsure::new(store.seq_reservation != high_water || high_water == 0);
        if self.own_seq.is_learning() {
            tracing::warn!(
                held = store.own_latest_seq,
                reserved = store.seq_reservation,
                "own events may have been lost (the store is behind the seq reservation); \
                 new events wait until a peer reports this node's high-water mark"
            );
        }
        self.hlc = self.hlc.max(store.max_hlc);
        if let Some(h) = store.own_tail {
            self.creator.tail = Some((store.own_latest_seq, h));
        }
        self.schedule_start();
        self.schedule_probe();
        self.create_identity(ticket);
    }

    fn stop(&mut self) {
        self.started = false;
        self.exchanges.clear();
        self.fetches.clear();
        // An own event being saved still gets its answer: its creator is waiting for it.
        // What received saves charged to their origins' quotas is given back.
        let charged: Vec<budget::Charge> = self
            .saves
            .values()
            .flat_map(|s| match s {
                ingest::SaveFor::Received { charged, .. } => charged.clone(),
                ingest::SaveFor::Own(_) => Vec::new(),
            })
            .collect();
        self.settle(&charged, &[]);
        self.saves
            .retain(|_, s| matches!(s, ingest::SaveFor::Own(_)));
        self.in_flight.clear();
        self.detector.clear_requests();
        // Commands waiting on exchanges get what finished so far.
        let groups: Vec<schedule::Group> = self.groups.drain().map(|(_, g)| g).collect();
        for g in groups {
            g.finish(self);
        }
        self.creator.abort(&mut self.out);
    }

    fn add_peer(&mut self, peer: crate::protocol::peer::Peer) {
        if peer.id == self.id() || peer.id.is_nil() {
            return;
        }
        let id = peer.id;
        if self.peers.upsert(peer, self.now)
            && let Some(info) = self.peers.get(&id).cloned()
        {
            self.emit(Emit::PeerAdded(info));
        }
    }

    fn remove_peer(&mut self, id: NodeId) {
        self.tree.forget(&id);
        self.budgets.forget(&id);
        self.detector.forget(&id);
        self.pex_forget(&id);
        self.ephemeral.forget(&id);
        if let Some(p) = self.peers.remove(&id) {
            self.emit(Emit::PeerRemoved(p));
        }
    }

    fn announce(&mut self, transition: Option<Transition>) {
        if let Some(t) = transition {
            self.emit(Emit::PeerState(t));
            // A join: tell it whom we know, so it meets the room.
            if t.to == PeerState::Alive
                && matches!(t.from, PeerState::Discovered | PeerState::Offline)
            {
                self.share_peers(t.id);
            }
        }
    }

    fn rejected(&mut self, peer: Option<NodeId>, error: String) {
        self.stats.rejected_inbound += 1;
        if let Some(id) = peer {
            let t = self.peers.record_failure(&id, &error);
            self.announce(t);
        }
        self.emit_exchange(ExchangeResult::failed(
            peer.unwrap_or(NodeId::NIL),
            Direction::Inbound,
            Duration::ZERO,
            error,
        ));
    }

    fn emit_exchange(&mut self, result: ExchangeResult) {
        if result.success {
            self.stats.exchanges_ok += 1;
        } else {
            self.stats.exchanges_failed += 1;
        }
        self.emit(Emit::Exchange(result));
    }

    fn next_rotation(&mut self) -> usize {
        self.rotation = self.rotation.wrapping_add(1);
        self.rotation
    }

    fn elapsed(&self, since: u64) -> Duration {
        Duration::from_millis(self.now.saturating_sub(since))
    }
}
