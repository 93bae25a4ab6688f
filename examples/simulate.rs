//! A deterministic simulator of N gossip nodes on a virtual clock, driving the real protocol
//! core (`protocol::exchange::{wants, Batch}`, `protocol::Selector`) exactly as
//! `GossipNode` does: eager push on creation and on first receipt of a pushed event (once
//! per node), rounds every gossip interval with `fanout` peers picked by the strategy, and
//! exchanges that continue while either side still lacks events.
//!
//! Each link has a fixed latency drawn from 10-50 ms. Bytes are the protocol's exact
//! encoded sizes plus 8 bytes of framing per message (length prefix, frame tag, exchange
//! id, as the TCP transport sends them).
//!
//! ```text
//! cargo run --release --example simulate                 # the table in BENCHMARKS.md
//! cargo run --release --example simulate -- --nodes 1000 --scenario one --fanout 5 \
//!     --strategy random --seed 7
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::time::Instant;

use bytes::Bytes;
use gossip::protocol::exchange::{self, Batch, Limits};
use gossip::protocol::{
    Candidate, Event, Message, NodeId, PeerSelectionStrategy, Selector, VectorClock,
};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const FRAME_OVERHEAD: u64 = 8;
const MS: u64 = 1000; // virtual time is in microseconds
const INTERVAL: u64 = 1000 * MS;
const VIEW: usize = 20; // random peers each node picks when N > 50 (links are symmetric)
const MAX_PASSES: u32 = 1000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    OneSender,
    RandomSenderEachRound,
    EveryNodeAtOnce,
    ColdJoin,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::OneSender => "one sender",
            Scenario::RandomSenderEachRound => "random sender / round (10)",
            Scenario::EveryNodeAtOnce => "every node at once",
            Scenario::ColdJoin => "cold join, 100k events",
        }
    }
}

enum Kind {
    Tick,
    Digest {
        clock: VectorClock,
        pass: u32,
    },
    Response {
        events: Vec<Event>,
        hops: Vec<u32>,
        clock: VectorClock,
        pass: u32,
    },
    Push {
        events: Vec<Event>,
        hops: Vec<u32>,
    },
}

struct Delivery {
    from: usize,
    to: usize,
    kind: Kind,
}

struct SimNode {
    id: NodeId,
    view: Vec<usize>,
    candidates: Vec<Candidate>,
    clock: VectorClock,
    beyond: BTreeSet<(NodeId, u64)>,
    selector: Selector,
    hops: HashMap<(NodeId, u64), u32>,
    rotation: usize,
    copies: u64,
    useful: u64,
    /// Peers this node runs an exchange with now (as `GossipNode`'s in-flight marks).
    busy: BTreeSet<NodeId>,
}

struct Params {
    n: usize,
    scenario: Scenario,
    strategy: PeerSelectionStrategy,
    fanout: usize,
    seed: u64,
    limits: Limits,
}

#[derive(Default, Debug)]
struct Outcome {
    time_to_all_ms: f64,
    rounds: u64,
    ldh: u32,
    rmr: f64,
    rest_bytes_per_node_s: f64,
    missed: u64,
    wall_s: f64,
}

struct Sim {
    p: Params,
    now: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: HashMap<u64, Delivery>,
    next_id: u64,
    nodes: Vec<SimNode>,
    table: HashMap<NodeId, Vec<Event>>,
    tracked: HashMap<(NodeId, u64), (usize, u64)>, // holders, created at
    done: Vec<(u64, u32)>,                         // (time to all, LDH) per tracked event
    bytes: u64,
    rng: SmallRng,
}

impl Sim {
    fn new(p: Params) -> Sim {
        let mut rng = SmallRng::seed_from_u64(p.seed);
        let n = p.n;
        let mut views: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        if n <= 50 {
            for (a, v) in views.iter_mut().enumerate() {
                v.extend((0..n).filter(|&b| b != a));
            }
        } else {
            for a in 0..n {
                while views[a].len() < VIEW {
                    let b = rng.random_range(0..n);
                    if b != a {
                        views[a].insert(b);
                        views[b].insert(a);
                    }
                }
            }
        }
        let nodes = (0..n)
            .map(|i| {
                let id = NodeId::from_u128(i as u128 + 1);
                let view: Vec<usize> = views[i].iter().copied().collect();
                SimNode {
                    id,
                    candidates: view
                        .iter()
                        .map(|&j| Candidate::new(NodeId::from_u128(j as u128 + 1)))
                        .collect(),
                    view,
                    clock: VectorClock::new(),
                    beyond: BTreeSet::new(),
                    selector: Selector::new(p.strategy, p.seed ^ (i as u64 * 0x9E37_79B9)),
                    hops: HashMap::new(),
                    rotation: i,
                    copies: 0,
                    useful: 0,
                    busy: BTreeSet::new(),
                }
            })
            .collect();
        let mut sim = Sim {
            p,
            now: 0,
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            next_id: 0,
            nodes,
            table: HashMap::new(),
            tracked: HashMap::new(),
            done: Vec::new(),
            bytes: 0,
            rng,
        };
        for i in 0..n {
            let phase = sim.rng.random_range(0..INTERVAL);
            sim.schedule(phase, i, i, Kind::Tick);
        }
        sim
    }

    fn latency(&self, a: usize, b: usize) -> u64 {
        let (x, y) = (a.min(b) as u64, a.max(b) as u64);
        let mut h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ y.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ self.p.seed;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        10 * MS + h % (40 * MS + 1)
    }

    fn schedule(&mut self, delay: u64, from: usize, to: usize, kind: Kind) {
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push(Reverse((self.now + delay, id)));
        self.pending.insert(id, Delivery { from, to, kind });
    }

    fn send(&mut self, from: usize, to: usize, kind: Kind, wire: u64) {
        self.bytes += wire + FRAME_OVERHEAD;
        let d = self.latency(from, to);
        self.schedule(d, from, to, kind);
    }

    fn holds(&self, i: usize, origin: NodeId, seq: u64) -> bool {
        let n = &self.nodes[i];
        seq <= n.clock.get(&origin) || n.beyond.contains(&(origin, seq))
    }

    /// Stores an event at node `i`; true if it was new.
    fn insert(&mut self, i: usize, e: &Event, hops: u32) -> bool {
        if self.holds(i, e.origin, e.seq) {
            return false;
        }
        let node = &mut self.nodes[i];
        let c = node.clock.get(&e.origin);
        if e.seq == c + 1 {
            let mut top = e.seq;
            while node.beyond.remove(&(e.origin, top + 1)) {
                top += 1;
            }
            node.clock.set(e.origin, top);
        } else {
            node.beyond.insert((e.origin, e.seq));
        }
        let key = (e.origin, e.seq);
        if let Some((holders, created)) = self.tracked.get_mut(&key) {
            node.hops.insert(key, hops);
            *holders += 1;
            if *holders == self.p.n {
                self.done.push((self.now - *created, hops));
            }
        }
        true
    }

    fn create(&mut self, i: usize) {
        let origin = self.nodes[i].id;
        let seq = self.nodes[i].clock.get(&origin) + 1;
        let e = Event {
            id: Uuid::from_u128(((i as u128) << 64) | seq as u128),
            origin,
            seq,
            hlc: seq,
            created_at_ms: 1_700_000_000_000 + self.now / MS,
            payload: Bytes::from(vec![b'm'; 100]),
            sig: bytes::Bytes::new(),
        };
        self.table.entry(origin).or_default().push(e.clone());
        self.tracked.insert((origin, seq), (0, self.now));
        self.insert(i, &e, 0);
        self.push(i, vec![e], &[]);
    }

    fn hops_of(&self, i: usize, e: &Event) -> u32 {
        self.nodes[i]
            .hops
            .get(&(e.origin, e.seq))
            .copied()
            .unwrap_or(0)
    }

    /// Eager push of `events` from `i` to `fanout` view peers not in `exclude`.
    fn push(&mut self, i: usize, events: Vec<Event>, exclude: &[usize]) {
        let ids: Vec<NodeId> = self.nodes[i]
            .view
            .iter()
            .filter(|j| !exclude.contains(j))
            .map(|&j| self.nodes[j].id)
            .collect();
        let fanout = self.p.fanout;
        let targets = self.nodes[i].selector.random_subset(&ids, fanout);
        let hops: Vec<u32> = events.iter().map(|e| self.hops_of(i, e)).collect();
        for t in targets {
            let j = (t.0.as_u128() - 1) as usize;
            let mut batch = Batch::for_push(self.nodes[i].id, self.p.limits);
            for e in &events {
                batch.push(e.clone());
            }
            let wire = batch.wire_len() as u64;
            self.send(
                i,
                j,
                Kind::Push {
                    events: batch.into_events(),
                    hops: hops.clone(),
                },
                wire,
            );
        }
    }

    fn fetch(&self, i: usize, origin: NodeId, after: u64, limit: usize) -> Vec<Event> {
        let Some(all) = self.table.get(&origin) else {
            return Vec::new();
        };
        all.iter()
            .skip(after as usize)
            .filter(|e| self.holds(i, e.origin, e.seq))
            .take(limit)
            .cloned()
            .collect()
    }

    fn fill(&mut self, i: usize, batch: &mut Batch, ours: &VectorClock, theirs: &VectorClock) {
        self.nodes[i].rotation += 1;
        let wants = exchange::wants(ours, theirs, self.nodes[i].rotation);
        exchange::fill(batch, &wants, |o, after, limit| {
            self.fetch(i, o, after, limit)
        });
    }

    fn digest(&mut self, i: usize, j: usize, pass: u32) {
        let clock = self.nodes[i].clock.clone();
        let wire = Message::Digest {
            from: self.nodes[i].id,
            clock: clock.clone(),
        }
        .encoded_len() as u64;
        self.send(i, j, Kind::Digest { clock, pass }, wire);
    }

    fn tick(&mut self, i: usize) {
        let targets = {
            let n = &mut self.nodes[i];
            let busy: Vec<NodeId> = n.busy.iter().copied().collect();
            n.selector.select(&n.candidates, self.p.fanout, &busy)
        };
        for t in targets {
            self.nodes[i].busy.insert(t);
            self.digest(i, (t.0.as_u128() - 1) as usize, 1);
        }
        self.schedule(INTERVAL, i, i, Kind::Tick);
    }

    /// Stores received events at `i`; returns the fresh ones.
    fn ingest(&mut self, i: usize, events: Vec<Event>, hops: &[u32]) -> Vec<Event> {
        let mut fresh = Vec::new();
        for (k, e) in events.into_iter().enumerate() {
            let tracked = self.tracked.contains_key(&(e.origin, e.seq));
            if tracked {
                self.nodes[i].copies += 1;
            }
            if self.insert(i, &e, hops.get(k).copied().unwrap_or(0) + 1) {
                if tracked {
                    self.nodes[i].useful += 1;
                }
                fresh.push(e);
            }
        }
        fresh
    }

    fn deliver(&mut self, d: Delivery) {
        let (from, i) = (d.from, d.to);
        match d.kind {
            Kind::Tick => self.tick(i),
            Kind::Digest {
                clock: theirs,
                pass,
            } => {
                let ours = self.nodes[i].clock.clone();
                let mut batch = Batch::for_response(self.nodes[i].id, &ours, self.p.limits);
                self.fill(i, &mut batch, &ours, &theirs);
                let wire = batch.wire_len() as u64;
                let events = batch.into_events();
                let hops = events.iter().map(|e| self.hops_of(i, e)).collect();
                self.send(
                    i,
                    from,
                    Kind::Response {
                        events,
                        hops,
                        clock: ours,
                        pass,
                    },
                    wire,
                );
            }
            Kind::Response {
                events,
                hops,
                clock: theirs,
                pass,
            } => {
                let received = self.ingest(i, events, &hops).len();
                let now_ms = self.now / MS;
                let peer = self.nodes[from].id;
                if let Some(c) = self.nodes[i].candidates.iter_mut().find(|c| c.id == peer) {
                    c.last_contact_ms = Some(now_ms);
                    c.reliability =
                        gossip::protocol::selection::update_reliability(c.reliability, true);
                }
                let ours = self.nodes[i].clock.clone();
                let mut batch = Batch::for_push(self.nodes[i].id, self.p.limits);
                self.fill(i, &mut batch, &ours, &theirs);
                let (sent, cut) = (batch.len(), batch.is_cut());
                if sent > 0 {
                    let wire = batch.wire_len() as u64;
                    let events = batch.into_events();
                    let hops = events.iter().map(|e| self.hops_of(i, e)).collect();
                    self.send(i, from, Kind::Push { events, hops }, wire);
                }
                let they_have_more = !exchange::wants(&theirs, &ours, 0).is_empty();
                if pass < MAX_PASSES && ((received > 0 && they_have_more) || (sent > 0 && cut)) {
                    self.digest(i, from, pass + 1);
                } else {
                    self.nodes[i].busy.remove(&peer);
                }
            }
            Kind::Push { events, hops } => {
                let fresh = self.ingest(i, events, &hops);
                if !fresh.is_empty() {
                    let mut exclude = vec![from];
                    exclude.extend(fresh.iter().map(|e| (e.origin.0.as_u128() - 1) as usize));
                    self.push(i, fresh, &exclude);
                }
            }
        }
    }

    fn run_until(&mut self, t: u64, stop_when_done: bool) {
        while let Some(Reverse((at, id))) = self.queue.peek().copied() {
            if at > t || (stop_when_done && self.all_done()) {
                break;
            }
            self.queue.pop();
            self.now = at;
            if let Some(d) = self.pending.remove(&id) {
                self.deliver(d);
            }
        }
        if !(stop_when_done && self.all_done()) {
            self.now = self.now.max(t);
        }
    }

    fn all_done(&self) -> bool {
        self.done.len() == self.tracked.len()
    }

    fn missed(&self) -> u64 {
        self.tracked
            .values()
            .map(|(h, _)| (self.p.n - h) as u64)
            .sum()
    }
}

fn run(p: Params) -> Outcome {
    let wall = Instant::now();
    let n = p.n;
    let scenario = p.scenario;
    let mut sim = Sim::new(p);
    // Warm up: a few quiet rounds so rounds are in their steady phase.
    sim.run_until(2 * INTERVAL, false);
    let start = sim.now;
    let mut joiner = None;
    match scenario {
        Scenario::OneSender => sim.create(0),
        Scenario::EveryNodeAtOnce => (0..n).for_each(|i| sim.create(i)),
        Scenario::RandomSenderEachRound => {
            for r in 0..10 {
                sim.run_until(start + r * INTERVAL, false);
                let i = sim.rng.random_range(0..n);
                sim.create(i);
            }
        }
        Scenario::ColdJoin => joiner = Some(cold_join(&mut sim)),
    }
    let deadline = start + 600 * INTERVAL;
    let time_to_all = if let Some(j) = joiner {
        let total: u64 = sim.table.values().map(|v| v.len() as u64).sum();
        while sim.now < deadline && sim.nodes[j].clock.total() < total {
            let t = sim.now + 10 * MS;
            sim.run_until(t, false);
        }
        sim.now - start
    } else {
        sim.run_until(deadline, true);
        sim.done.iter().map(|d| d.0).max().unwrap_or(0)
    };
    let (copies, useful): (u64, u64) = sim
        .nodes
        .iter()
        .fold((0, 0), |a, x| (a.0 + x.copies, a.1 + x.useful));
    let missed = if joiner.is_some() {
        let total: u64 = sim.table.values().map(|v| v.len() as u64).sum();
        joiner.map_or(0, |j| total - sim.nodes[j].clock.total())
    } else {
        sim.missed()
    };
    // At rest: ten more rounds with nothing new.
    sim.run_until(sim.now + 2 * INTERVAL, false);
    sim.bytes = 0;
    let rest_start = sim.now;
    sim.run_until(rest_start + 10 * INTERVAL, false);
    let rest = sim.bytes as f64 / sim.p.n as f64 / 10.0;
    Outcome {
        time_to_all_ms: time_to_all as f64 / MS as f64,
        rounds: time_to_all.div_ceil(INTERVAL),
        ldh: sim.done.iter().map(|d| d.1).max().unwrap_or(0),
        rmr: if useful > 0 {
            copies as f64 / useful as f64 - 1.0
        } else {
            0.0
        },
        rest_bytes_per_node_s: rest,
        missed,
        wall_s: wall.elapsed().as_secs_f64(),
    }
}

/// Fills the cluster with 100,000 events from 10 origins, then adds a cold node.
fn cold_join(sim: &mut Sim) -> usize {
    let n = sim.p.n;
    for o in 0..10usize.min(n) {
        let origin = sim.nodes[o].id;
        let events: Vec<Event> = (1..=10_000u64)
            .map(|seq| Event {
                id: Uuid::from_u128(((o as u128) << 64) | seq as u128),
                origin,
                seq,
                hlc: seq,
                created_at_ms: 1_700_000_000_000 + seq,
                sig: bytes::Bytes::new(),
                payload: Bytes::from(vec![b'h'; 100]),
            })
            .collect();
        for node in sim.nodes.iter_mut() {
            node.clock.set(origin, 10_000);
        }
        sim.table.insert(origin, events);
    }
    let j = n;
    let id = NodeId::from_u128(j as u128 + 1);
    let mut view: Vec<usize> = (0..n).collect();
    view.shuffle(&mut sim.rng);
    view.truncate(VIEW.min(n));
    for &k in &view {
        sim.nodes[k].view.push(j);
        sim.nodes[k].candidates.push(Candidate::new(id));
    }
    sim.nodes.push(SimNode {
        id,
        candidates: view
            .iter()
            .map(|&k| Candidate::new(sim.nodes[k].id))
            .collect(),
        view,
        clock: VectorClock::new(),
        beyond: BTreeSet::new(),
        selector: Selector::new(sim.p.strategy, 99),
        hops: HashMap::new(),
        rotation: 0,
        copies: 0,
        useful: 0,
        busy: BTreeSet::new(),
    });
    sim.p.n += 1;
    // Discovery: the newcomer starts its rounds at once.
    sim.schedule(0, j, j, Kind::Tick);
    j
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed = arg(&args, "--seed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let limits = Limits {
        max_events: 100,
        max_bytes: 1024 * 1024,
    };
    let strategy_of = |s: &str| {
        PeerSelectionStrategy::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .unwrap_or(PeerSelectionStrategy::Random)
    };
    let scenario_of = |s: &str| match s {
        "random" => Scenario::RandomSenderEachRound,
        "all" => Scenario::EveryNodeAtOnce,
        "cold" => Scenario::ColdJoin,
        _ => Scenario::OneSender,
    };
    let mut plan: Vec<(usize, Scenario, PeerSelectionStrategy, usize)> = Vec::new();
    let mut bulk = false;
    if let Some(n) = arg(&args, "--nodes").and_then(|s| s.parse().ok()) {
        plan.push((
            n,
            scenario_of(&arg(&args, "--scenario").unwrap_or_default()),
            strategy_of(&arg(&args, "--strategy").unwrap_or_default()),
            arg(&args, "--fanout")
                .and_then(|s| s.parse().ok())
                .unwrap_or(3),
        ));
    } else {
        use PeerSelectionStrategy::Random;
        for n in [10, 100, 1000, 10_000] {
            for f in [3, 5, 8] {
                plan.push((n, Scenario::OneSender, Random, f));
            }
        }
        for n in [10, 100, 1000] {
            for f in [3, 8] {
                plan.push((n, Scenario::RandomSenderEachRound, Random, f));
                // 1,000 senders x 1,000 nodes x fanout 8 is 8 M pushes: minutes of wall time.
                if n < 1000 || f == 3 {
                    plan.push((n, Scenario::EveryNodeAtOnce, Random, f));
                }
            }
        }
        for s in PeerSelectionStrategy::ALL {
            plan.push((1000, Scenario::OneSender, s, 3));
            plan.push((1000, Scenario::RandomSenderEachRound, s, 3));
        }
        for n in [10, 50] {
            plan.push((n, Scenario::ColdJoin, Random, 3));
        }
        bulk = true;
    }
    println!(
        "seed {seed}; links 10-50 ms; gossip interval 1 s; 100 events / 1 MiB per message; 100-byte payloads"
    );
    println!();
    println!(
        "| scenario | nodes | strategy | fanout | time to all (ms) | rounds | LDH | RMR | bytes/node/s at rest | missed | wall (s) |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (n, scenario, strategy, fanout) in plan {
        let o = run(Params {
            n,
            scenario,
            strategy,
            fanout,
            seed,
            limits,
        });
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {:.2} | {:.0} | {} | {:.1} |",
            scenario.name(),
            n,
            strategy.name(),
            fanout,
            o.time_to_all_ms,
            o.rounds,
            o.ldh,
            o.rmr,
            o.rest_bytes_per_node_s,
            o.missed,
            o.wall_s
        );
    }
    if bulk {
        // The same cold join with the high_throughput preset's message limits.
        let limits = Limits {
            max_events: 500,
            max_bytes: 4 * 1024 * 1024,
        };
        for n in [10, 50] {
            let o = run(Params {
                n,
                scenario: Scenario::ColdJoin,
                strategy: PeerSelectionStrategy::Random,
                fanout: 3,
                seed,
                limits,
            });
            println!(
                "| cold join, 100k events, 500 events / 4 MiB per message | {n} | random | 3 | {:.0} | {} | - | - | {:.0} | {} | {:.1} |",
                o.time_to_all_ms, o.rounds, o.rest_bytes_per_node_s, o.missed, o.wall_s
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(
        scenario: Scenario,
        strategy: PeerSelectionStrategy,
        fanout: usize,
        seed: u64,
    ) -> Outcome {
        let limits = Limits {
            max_events: 100,
            max_bytes: 1024 * 1024,
        };
        run(Params {
            n: 60,
            scenario,
            strategy,
            fanout,
            seed,
            limits,
        })
    }

    #[test]
    fn every_scenario_and_strategy_misses_nothing() {
        for scenario in [
            Scenario::OneSender,
            Scenario::RandomSenderEachRound,
            Scenario::EveryNodeAtOnce,
        ] {
            for strategy in PeerSelectionStrategy::ALL {
                let o = small(scenario, strategy, 3, 1);
                assert_eq!(o.missed, 0, "{scenario:?} {strategy:?}");
                assert!(
                    o.time_to_all_ms > 0.0 && o.ldh >= 1,
                    "{scenario:?} {strategy:?} {o:?}"
                );
            }
        }
    }

    #[test]
    fn a_cold_node_catches_up_completely() {
        let limits = Limits {
            max_events: 500,
            max_bytes: 4 * 1024 * 1024,
        };
        let o = run(Params {
            n: 10,
            scenario: Scenario::ColdJoin,
            strategy: PeerSelectionStrategy::Random,
            fanout: 3,
            seed: 3,
            limits,
        });
        assert_eq!(o.missed, 0);
    }

    #[test]
    fn runs_are_deterministic_per_seed() {
        let a = small(Scenario::OneSender, PeerSelectionStrategy::Random, 3, 5);
        let b = small(Scenario::OneSender, PeerSelectionStrategy::Random, 3, 5);
        assert_eq!(
            (a.time_to_all_ms, a.ldh, a.rmr),
            (b.time_to_all_ms, b.ldh, b.rmr)
        );
    }

    #[test]
    fn a_larger_fanout_spreads_faster_with_more_redundancy() {
        let slow = small(Scenario::OneSender, PeerSelectionStrategy::Random, 2, 9);
        let fast = small(Scenario::OneSender, PeerSelectionStrategy::Random, 8, 9);
        assert!(
            fast.time_to_all_ms < slow.time_to_all_ms,
            "{slow:?} {fast:?}"
        );
        assert!(fast.rmr > slow.rmr);
    }
}
