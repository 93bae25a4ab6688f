//! The simulator: N nodes running the very [`Engine`] the product runs, over a virtual
//! network (fixed 10-50 ms links, loss, duplicates, partitions) and a virtual clock, with
//! crashes and restarts. Nothing here decides anything about gossip: every send, relay,
//! round and retry comes out of the engine; the simulator only delivers messages, answers
//! store reads and writes at once, fires timers and measures.
//!
//! [`scenario`] runs the benchmark scenarios (one sender, every node, a random sender per
//! round, a cold join) and reports time to reach all, LDH, RMR, bytes at rest and missed
//! deliveries; `examples/simulate.rs` is its command line.

pub mod network;
pub mod rounds;
pub mod scenario;
pub mod store;

#[cfg(test)]
mod clock_tests;
#[cfg(test)]
mod liveness_tests;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::protocol::engine::{
    Emit, Engine, EngineConfig, ExchangeId, Input, Output, RequestId, Timer,
};
use crate::protocol::exchange::Limits;
use crate::protocol::{Event, Message, NodeId, Peer, PeerSelectionStrategy, VectorClock};

pub use network::{NetConfig, Network};
pub use store::SimStore;

/// Virtual time starts here (ms since the Unix epoch), so events carry plausible times.
pub const EPOCH_MS: u64 = 1_700_000_000_000;
/// Bytes of framing per message (length prefix, frame tag, exchange id), as TCP sends them.
pub const FRAME_OVERHEAD: u64 = 8;

/// A simulation's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Nodes at the start.
    pub nodes: usize,
    /// Peers per round and per push.
    pub fanout: usize,
    /// Round peer selection.
    pub strategy: PeerSelectionStrategy,
    /// Message limits.
    pub limits: Limits,
    /// Time between rounds.
    pub gossip_interval: Duration,
    /// Anti-entropy period, if on.
    pub anti_entropy_interval: Option<Duration>,
    /// Request timeout.
    pub gossip_timeout: Duration,
    /// Eager push on.
    pub eager_push: bool,
    /// PlumTree lazy push on (with `eager_push`).
    pub lazy_push: bool,
    /// The failure detector, if on (off by default: pings to every quiet peer would
    /// dominate a 10,000-node run's traffic).
    pub probe: Option<crate::protocol::engine::ProbeConfig>,
    /// Above this many nodes each knows only `view` random peers (links are symmetric).
    pub full_mesh_max: usize,
    /// Peers each node knows in a large cluster.
    pub view: usize,
    /// The network.
    pub net: NetConfig,
    /// Seed of everything random.
    pub seed: u64,
}

impl SimConfig {
    /// The library's defaults (`GossipConfig::new`): fanout 3, random selection, 2,000
    /// events / 1 MiB per message, 1 s rounds, 10 s timeout, anti-entropy every 5 min.
    pub fn new(nodes: usize, seed: u64) -> Self {
        SimConfig {
            nodes,
            fanout: 3,
            strategy: PeerSelectionStrategy::Random,
            limits: Limits {
                max_events: 2_000,
                max_bytes: 1024 * 1024,
            },
            gossip_interval: Duration::from_secs(1),
            anti_entropy_interval: Some(Duration::from_secs(300)),
            gossip_timeout: Duration::from_secs(10),
            eager_push: true,
            lazy_push: true,
            probe: None,
            full_mesh_max: 50,
            view: 20,
            net: NetConfig::default(),
            seed,
        }
    }

    fn engine(&self, id: NodeId) -> EngineConfig {
        EngineConfig {
            node_id: id,
            fanout: self.fanout,
            strategy: self.strategy,
            limits: self.limits,
            gossip_interval: self.gossip_interval,
            gossip_timeout: self.gossip_timeout,
            anti_entropy_interval: self.anti_entropy_interval,
            eager_push: self.eager_push,
            duplicate_detection: true,
            lazy_push: self.lazy_push,
            // An honest crowd: the simulator measures dissemination, not defence.
            budgets: crate::protocol::engine::IngestBudgets::unlimited(),
            probe: self.probe,
            peer_exchange: false,
        }
    }
}

/// One simulated node.
pub struct SimNode {
    /// Its engine (replaced on restart: in-memory state is lost in a crash).
    pub engine: Engine,
    /// Its store (kept across crashes).
    pub store: SimStore,
    /// Running or crashed.
    pub up: bool,
    /// The peers it knows.
    pub view: Vec<usize>,
    restarts: u64,
    hops: HashMap<(NodeId, u64), u32>,
    incoming_hops: HashMap<(NodeId, u64), u32>,
    copies: u64,
    useful: u64,
}

/// An event the metrics follow from its creation.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    created_at: u64,
    holders: usize,
    /// When the last node got it.
    done_at: Option<u64>,
}

enum What {
    Timer(Timer, u64),
    Deliver {
        from: usize,
        message: Message,
        request: Option<u64>,
    },
    Response {
        from: usize,
        key: u64,
        message: Message,
    },
    Timeout {
        key: u64,
    },
}

struct Due {
    node: usize,
    what: What,
}

/// The simulator.
pub struct Sim {
    config: SimConfig,
    now: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    due: HashMap<u64, Due>,
    next: u64,
    /// The nodes.
    pub nodes: Vec<SimNode>,
    net: Network,
    /// Open requests: key -> (requester, exchange).
    open: HashMap<u64, (usize, ExchangeId)>,
    /// Inbound requests awaiting a response: (node, request id) -> key.
    inbound: HashMap<(usize, u64), u64>,
    tracked: HashMap<(NodeId, u64), Tracked>,
    done: Vec<(u64, u32)>,
    created: Vec<Event>,
    bytes: u64,
    rng: SmallRng,
}

fn id_of(i: usize) -> NodeId {
    NodeId::from_u128(i as u128 + 1)
}

fn index_of(id: NodeId) -> usize {
    (id.0.as_u128() as usize).saturating_sub(1)
}

impl Sim {
    /// `config.nodes` nodes, each started at a random phase within the first interval.
    pub fn new(config: SimConfig) -> Sim {
        let n = config.nodes;
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let mut views: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        if n <= config.full_mesh_max {
            for (a, v) in views.iter_mut().enumerate() {
                v.extend((0..n).filter(|&b| b != a));
            }
        } else {
            for a in 0..n {
                while views[a].len() < config.view.min(n - 1) {
                    let b = rng.random_range(0..n);
                    if b != a {
                        views[a].insert(b);
                        views[b].insert(a);
                    }
                }
            }
        }
        let net = Network::new(config.net, config.seed, n);
        let mut sim = Sim {
            now: EPOCH_MS,
            queue: BinaryHeap::new(),
            due: HashMap::new(),
            next: 0,
            nodes: Vec::with_capacity(n),
            net,
            open: HashMap::new(),
            inbound: HashMap::new(),
            tracked: HashMap::new(),
            done: Vec::new(),
            created: Vec::new(),
            bytes: 0,
            rng,
            config,
        };
        for (i, view) in views.into_iter().enumerate() {
            let node = sim.fresh_node(i, view.into_iter().collect(), SimStore::default());
            sim.nodes.push(node);
        }
        let interval = ms(sim.config.gossip_interval).max(1);
        for i in 0..n {
            let phase = sim.rng.random_range(0..interval);
            sim.at(
                EPOCH_MS + phase,
                i,
                What::Timer(Timer::Round { run: 0 }, u64::MAX),
            );
        }
        sim
    }

    fn fresh_node(&self, i: usize, view: Vec<usize>, store: SimStore) -> SimNode {
        let id = id_of(i);
        let seed = self.config.seed ^ (i as u64).wrapping_mul(0x9E37_79B9);
        SimNode {
            engine: Engine::new(self.config.engine(id), seed, None),
            store,
            up: false,
            view,
            restarts: 0,
            hops: HashMap::new(),
            incoming_hops: HashMap::new(),
            copies: 0,
            useful: 0,
        }
    }

    /// The virtual time, ms since the Unix epoch.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The config.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The network, to partition or heal it.
    pub fn network(&mut self) -> &mut Network {
        &mut self.net
    }

    fn at(&mut self, at: u64, node: usize, what: What) {
        let k = self.next;
        self.next += 1;
        self.queue.push(Reverse((at, k)));
        self.due.insert(k, Due { node, what });
    }

    /// Starts node `i`'s engine from its store and tells it its peers.
    fn boot(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.up = true;
        let me = node.engine.id();
        let state = node.store.state(me);
        self.step(
            i,
            Input::Start {
                ticket: 0,
                store: state,
            },
        );
        let view = self.nodes[i].view.clone();
        for j in view {
            self.step(i, Input::AddPeer(Peer::new(id_of(j), format!("n{j}"))));
        }
    }

    /// Crashes node `i`: it stops at once and loses everything but its store.
    pub fn crash(&mut self, i: usize) {
        let view = self.nodes[i].view.clone();
        let store = std::mem::take(&mut self.nodes[i].store);
        let restarts = self.nodes[i].restarts;
        let mut node = self.fresh_node(i, view, store);
        node.restarts = restarts + 1;
        node.hops = std::mem::take(&mut self.nodes[i].hops);
        node.copies = self.nodes[i].copies;
        node.useful = self.nodes[i].useful;
        self.nodes[i] = node;
        self.inbound.retain(|(n, _), _| *n != i);
        self.open.retain(|_, (n, _)| *n != i);
    }

    /// Restarts a crashed node from its store.
    pub fn restart(&mut self, i: usize) {
        if !self.nodes[i].up {
            self.boot(i);
        }
    }

    /// Adds a node knowing `view` (each of which learns it too), started now.
    pub fn join(&mut self, view: Vec<usize>, store: SimStore) -> usize {
        let j = self.nodes.len();
        for &k in &view {
            self.nodes[k].view.push(j);
            if self.nodes[k].up {
                self.step(k, Input::AddPeer(Peer::new(id_of(j), format!("n{j}"))));
            }
        }
        let node = self.fresh_node(j, view, store);
        self.nodes.push(node);
        self.net.grow();
        self.boot(j);
        j
    }

    /// Node `i` asks for an event with `payload`; the event, if it was created at once
    /// (`None` if the node is down, or its own events wait, see
    /// [`crate::protocol::own_seq`]: they are created later, in order, and then appear in
    /// [`Sim::created`]).
    pub fn create_with(&mut self, i: usize, payload: Bytes) -> Option<Event> {
        if !self.nodes[i].up {
            return None;
        }
        let before = self.created.len();
        self.step(i, Input::Create { ticket: 0, payload });
        self.created.get(before).cloned()
    }

    /// Delivers `message` to node `i` now, as if a peer `from` (any id, also one that is no
    /// simulated node: a hostile member) had sent it.
    pub fn inject(&mut self, from: NodeId, i: usize, message: Message) {
        let peer = Peer::new(from, format!("{from}"));
        self.step(
            i,
            Input::Received {
                from: peer,
                message,
                request: None,
                wire_bytes: 0,
            },
        );
    }

    /// Node `i` creates an event with a `len`-byte payload; `None` if it is down.
    pub fn create(&mut self, i: usize, len: usize) -> Option<Event> {
        if !self.nodes[i].up {
            return None;
        }
        let before = self.created.len();
        let payload = Bytes::from(vec![b'm'; len.max(1)]);
        self.step(i, Input::Create { ticket: 0, payload });
        self.created.get(before).cloned()
    }

    /// Handles `input` at node `i`, answering store work at once and carrying out the rest.
    fn step(&mut self, i: usize, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            if !self.nodes[i].up {
                return;
            }
            let outputs = self.nodes[i].engine.handle(input, self.now);
            for out in outputs {
                match out {
                    Output::Fetch {
                        fetch,
                        wants,
                        limit,
                    } => {
                        let store = &self.nodes[i].store;
                        queue.push_back(Input::Fetched {
                            fetch,
                            events: store.fetch(&wants, limit),
                            clock: store.clock().clone(),
                        });
                    }
                    Output::Save { save, events, .. } => {
                        let store = &mut self.nodes[i].store;
                        let verdicts = events.into_iter().map(|e| store.save(e)).collect();
                        queue.push_back(Input::Saved { save, verdicts });
                    }
                    Output::Reserve { up_to } => {
                        self.nodes[i].store.reserve_seqs(up_to);
                        queue.push_back(Input::Reserved { up_to });
                    }
                    Output::Send { to, message } => self.send(i, index_of(to.id), message, None),
                    Output::Request {
                        to,
                        exchange,
                        message,
                        timeout,
                    } => {
                        let key = self.next;
                        self.next += 1;
                        self.open.insert(key, (i, exchange));
                        self.at(self.now + ms(timeout), i, What::Timeout { key });
                        self.send(i, index_of(to.id), message, Some(key));
                    }
                    Output::Respond { request, message } => {
                        if let Some(key) = self.inbound.remove(&(i, request.0))
                            && let Some(&(requester, _)) = self.open.get(&key)
                        {
                            self.respond(i, requester, key, message);
                        }
                    }
                    // The simulator does not sign: every ephemeral checks out.
                    Output::CheckEphemeral { from, ephemeral } => {
                        queue.push_back(Input::EphemeralChecked {
                            from,
                            ephemeral,
                            result: Ok(()),
                        });
                    }
                    Output::ScheduleTimer { at, timer } => {
                        let restarts = self.nodes[i].restarts;
                        self.at(at.max(self.now), i, What::Timer(timer, restarts));
                    }
                    Output::Emit(e) => self.observe(i, e),
                    Output::Done { .. } => {}
                }
            }
        }
    }

    fn wire(&mut self, message: &Message) {
        self.bytes += message.encoded_len() as u64 + FRAME_OVERHEAD;
    }

    fn send(&mut self, from: usize, to: usize, message: Message, request: Option<u64>) {
        self.wire(&message);
        let copies = self.net.copies(from, to, &mut self.rng);
        let at = self.now + self.net.latency(from, to);
        for _ in 0..copies {
            self.at(
                at,
                to,
                What::Deliver {
                    from,
                    message: message.clone(),
                    request,
                },
            );
        }
    }

    fn respond(&mut self, from: usize, to: usize, key: u64, message: Message) {
        self.wire(&message);
        let copies = self.net.copies(from, to, &mut self.rng);
        let at = self.now + self.net.latency(from, to);
        for _ in 0..copies {
            self.at(
                at,
                to,
                What::Response {
                    from,
                    key,
                    message: message.clone(),
                },
            );
        }
    }

    /// Follows tracked events: hops, copies, who holds them.
    fn observe(&mut self, i: usize, e: Emit) {
        let n = self.nodes.len();
        match e {
            Emit::Created(ev) => {
                let key = ev.key();
                self.tracked.insert(
                    key,
                    Tracked {
                        created_at: self.now,
                        holders: 1,
                        done_at: (n == 1).then_some(self.now),
                    },
                );
                self.nodes[i].hops.insert(key, 0);
                self.created.push(ev);
                if n == 1 {
                    self.done.push((0, 0));
                }
            }
            Emit::Received(r) => {
                let key = r.event.key();
                let node = &mut self.nodes[i];
                if let Some(t) = self.tracked.get_mut(&key) {
                    node.useful += 1;
                    let hops = node.incoming_hops.remove(&key).unwrap_or(1);
                    node.hops.insert(key, hops);
                    t.holders += 1;
                    if t.holders == n {
                        t.done_at = Some(self.now);
                        self.done.push((self.now - t.created_at, hops));
                    }
                }
            }
            _ => {}
        }
    }

    /// Counts the copies of tracked events a message brings to `i`, and their hops.
    fn arriving(&mut self, from: usize, i: usize, message: &Message) {
        for e in message.events() {
            let key = e.key();
            if !self.tracked.contains_key(&key) {
                continue;
            }
            let hops = self.nodes[from].hops.get(&key).copied().unwrap_or(0) + 1;
            let node = &mut self.nodes[i];
            node.copies += 1;
            let h = node.incoming_hops.entry(key).or_insert(hops);
            *h = (*h).min(hops);
        }
    }

    fn fire(&mut self, due: Due) {
        let i = due.node;
        match due.what {
            What::Timer(timer, restarts) => {
                if restarts == u64::MAX {
                    // The first start of the node, at its phase.
                    if !self.nodes[i].up && self.nodes[i].restarts == 0 {
                        self.boot(i);
                    }
                } else if self.nodes[i].up && self.nodes[i].restarts == restarts {
                    self.step(i, Input::TimerFired(timer));
                }
            }
            What::Deliver {
                from,
                message,
                request,
            } => {
                if !self.nodes[i].up {
                    return;
                }
                self.arriving(from, i, &message);
                let request = request.map(|key| {
                    let id = self.next;
                    self.next += 1;
                    self.inbound.insert((i, id), key);
                    RequestId(id)
                });
                let input = Input::Received {
                    from: Peer::new(id_of(from), format!("n{from}")),
                    wire_bytes: message.encoded_len(),
                    message,
                    request,
                };
                self.step(i, input);
            }
            What::Response { from, key, message } => {
                let Some((requester, exchange)) = self.open.remove(&key) else {
                    return; // timed out already, or a duplicate
                };
                if !self.nodes[requester].up {
                    return;
                }
                self.arriving(from, requester, &message);
                let input = Input::Response {
                    exchange,
                    wire_bytes: message.encoded_len(),
                    message,
                };
                self.step(requester, input);
            }
            What::Timeout { key } => {
                if let Some((requester, exchange)) = self.open.remove(&key) {
                    self.step(
                        requester,
                        Input::RequestFailed {
                            exchange,
                            error: "timed out".into(),
                        },
                    );
                }
            }
        }
    }

    /// Runs until virtual time `t` (or, with `until_done`, until every tracked event
    /// reached every node).
    pub fn run_until(&mut self, t: u64, until_done: bool) {
        while let Some(Reverse((at, k))) = self.queue.peek().copied() {
            if at > t || (until_done && self.all_done()) {
                break;
            }
            self.queue.pop();
            self.now = self.now.max(at);
            if let Some(d) = self.due.remove(&k) {
                self.fire(d);
            }
        }
        if !(until_done && self.all_done()) {
            self.now = self.now.max(t);
        }
    }

    /// Runs for `d` more virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + ms(d);
        self.run_until(t, false);
    }

    /// Whether every tracked event reached every node.
    pub fn all_done(&self) -> bool {
        self.done.len() == self.tracked.len()
    }

    /// Events created so far, in order.
    pub fn created(&self) -> &[Event] {
        &self.created
    }

    /// Whether every running node holds exactly the same events, clocks equal.
    pub fn converged(&self) -> bool {
        let mut up = self.nodes.iter().filter(|n| n.up);
        let Some(first) = up.next() else {
            return true;
        };
        up.all(|n| {
            n.store.clock() == first.store.clock()
                && n.store.len() == first.store.len()
                && n.store.events().eq(first.store.events())
        })
    }

    /// Created events some running node lacks.
    pub fn lost(&self) -> usize {
        self.created
            .iter()
            .filter(|e| {
                self.nodes
                    .iter()
                    .filter(|n| n.up)
                    .any(|n| n.store.clock().get(&e.origin) < e.seq)
            })
            .count()
    }

    /// A running node's clock.
    pub fn clock(&self, i: usize) -> &VectorClock {
        self.nodes[i].store.clock()
    }

    /// Payload copies of tracked events received so far, and the useful (first) ones.
    fn copies_and_useful(&self) -> (u64, u64) {
        self.nodes
            .iter()
            .fold((0, 0), |a, n| (a.0 + n.copies, a.1 + n.useful))
    }

    fn missed(&self) -> u64 {
        let n = self.nodes.len();
        self.tracked
            .values()
            .map(|t| n.saturating_sub(t.holders) as u64)
            .sum()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
