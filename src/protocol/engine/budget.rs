//! Per-peer budgets and per-origin quotas on what a node accepts (issue 12, part B).
//!
//! A room member may be hostile, so what one peer hands us is bounded before it costs a
//! signature check or a store write:
//! - **pushed events per peer**: events a peer sends unasked (eager pushes, the final push
//!   of its exchanges) take tokens from its bucket (`pushed_events_per_sec`, up to
//!   `pushed_events_burst`); past it the rest of the push is *deferred*: not stored, not
//!   relayed, counted (`deferred_events`). Nothing is lost: this node's own rounds pull
//!   what it lacks, at its own pace, one response per pass. Other peers' buckets are
//!   their own, so a flood delays nobody else;
//! - **new origins per peer**: an event of an origin this node holds nothing of takes a
//!   token from the delivering peer's origin bucket: `new_origins_per_min` (up to
//!   `new_origins_burst`) when pushed unasked, `asked_new_origins_per_min` (up to
//!   `asked_new_origins_burst`) when it answers this node's own digest; past it that
//!   origin's events are deferred (`deferred_origins`), fetched later from whichever peer
//!   holds them. 60,000 pushed sybils then cost their sender an hour, not seconds, while a
//!   late joiner still pulls a room of 100,000 honest origins at once (the asked budget is
//!   larger because this node chose to ask, at its own pace, one response per pass);
//! - **bytes per origin**: the events of one origin this node accepts are capped
//!   (`max_bytes_per_origin`, 64 MiB by default), and of those, payloads the app cannot
//!   decode (the [`PayloadValidator`] it installs) at `max_undecodable_bytes_per_origin`.
//!   Past the cap the origin's events are refused, counted (`quota_refused`) and reported.
//!
//! Own events are never limited. The byte count is this run's (what this engine accepted
//! since it started): a restart begins it again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::protocol::bucket::Bucket;
use crate::protocol::event::{Event, NodeId};

use super::Engine;
use super::output::{Direction, ExchangeResult};

/// Tells whether the app can decode a payload. Installed with
/// [`Engine::set_payload_validator`]; pure CPU, called once per received event (never on
/// seq 1, an origin's identity event in a signed room).
pub type PayloadValidator = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// Reports (log lines and exchange results) per peer, at most one per this many ms: a
/// flood is counted in full but logged once in a while.
pub const REPORT_EVERY_MS: u64 = 10_000;

/// The limits on what one peer may hand this node. A field of 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestBudgets {
    /// Events per second a peer may push unasked.
    pub pushed_events_per_sec: u64,
    /// Pushed events a peer may send at once (the bucket's size).
    pub pushed_events_burst: u64,
    /// New origins per minute a peer may introduce.
    pub new_origins_per_min: u64,
    /// New origins a peer may introduce at once.
    pub new_origins_burst: u64,
    /// New origins per minute a peer may introduce in answers to this node's digests.
    pub asked_new_origins_per_min: u64,
    /// New origins a peer may introduce at once in such answers.
    pub asked_new_origins_burst: u64,
    /// Bytes (encoded events) accepted per origin.
    pub max_bytes_per_origin: u64,
    /// Of those, bytes of payloads the app cannot decode.
    pub max_undecodable_bytes_per_origin: u64,
}

impl Default for IngestBudgets {
    /// 2,000 pushed events/s (burst 10,000), 1,000 new origins/min (burst 2,000) pushed and
    /// 20,000/min (burst 200,000) asked for, per peer; 64 MiB per origin, 4 MiB of it
    /// undecodable.
    fn default() -> Self {
        IngestBudgets {
            pushed_events_per_sec: 2_000,
            pushed_events_burst: 10_000,
            new_origins_per_min: 1_000,
            new_origins_burst: 2_000,
            asked_new_origins_per_min: 20_000,
            asked_new_origins_burst: 200_000,
            max_bytes_per_origin: 64 << 20,
            max_undecodable_bytes_per_origin: 4 << 20,
        }
    }
}

impl IngestBudgets {
    /// No limit at all (the simulator's honest crowds, benchmarks of raw speed).
    pub fn unlimited() -> Self {
        IngestBudgets {
            pushed_events_per_sec: 0,
            pushed_events_burst: 0,
            new_origins_per_min: 0,
            new_origins_burst: 0,
            asked_new_origins_per_min: 0,
            asked_new_origins_burst: 0,
            max_bytes_per_origin: 0,
            max_undecodable_bytes_per_origin: 0,
        }
    }

    fn bucket(rate: u64, period_ms: u64, burst: u64, now: u64) -> Bucket {
        if rate == 0 {
            Bucket::unlimited()
        } else {
            Bucket::new(rate, period_ms, burst.max(1), now)
        }
    }
}

fn cap(limit: u64) -> u64 {
    if limit == 0 { u64::MAX } else { limit }
}

/// One peer's buckets.
#[derive(Debug, Clone)]
pub struct PeerBudget {
    pushes: Bucket,
    origins: Bucket,
    asked_origins: Bucket,
    reported_at: Option<u64>,
}

impl PeerBudget {
    fn new(b: &IngestBudgets, now: u64) -> Self {
        PeerBudget {
            pushes: IngestBudgets::bucket(
                b.pushed_events_per_sec,
                1_000,
                b.pushed_events_burst,
                now,
            ),
            origins: IngestBudgets::bucket(b.new_origins_per_min, 60_000, b.new_origins_burst, now),
            asked_origins: IngestBudgets::bucket(
                b.asked_new_origins_per_min,
                60_000,
                b.asked_new_origins_burst,
                now,
            ),
            reported_at: None,
        }
    }

    /// Whether a report is due at `now` (and if so, the next one waits).
    fn report_due(&mut self, now: u64) -> bool {
        let due = self
            .reported_at
            .is_none_or(|at| now.saturating_sub(at) >= REPORT_EVERY_MS);
        if due {
            self.reported_at = Some(now);
        }
        due
    }
}

/// What this run accepted of one origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OriginUsage {
    /// Encoded bytes of its events.
    pub bytes: u64,
    /// Of those, of payloads the app cannot decode.
    pub undecodable: u64,
}

/// What admitting one event charged to its origin's quota (nothing for own events and
/// events at or below the clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Charge {
    origin: Option<NodeId>,
    seq: u64,
    bytes: u64,
    undecodable: bool,
}

/// The budgets' state: per peer, per origin.
#[derive(Default)]
pub struct Budgets {
    peers: HashMap<NodeId, PeerBudget>,
    usage: HashMap<NodeId, OriginUsage>,
    /// Events charged and not yet judged by the store: a second copy (a pull racing the
    /// push that brought it) is left to the store as a duplicate, not charged twice.
    pending: HashSet<(NodeId, u64)>,
    validator: Option<PayloadValidator>,
}

/// What one admission kept back.
#[derive(Debug, Default)]
struct Kept {
    deferred: u64,
    origins: u64,
    refused: u64,
    first_refused: Option<(NodeId, u64)>,
}

impl Budgets {
    /// Forgets a peer's buckets.
    pub fn forget(&mut self, peer: &NodeId) {
        self.peers.remove(peer);
    }

    /// What this run accepted of `origin`.
    pub fn usage(&self, origin: &NodeId) -> OriginUsage {
        self.usage.get(origin).copied().unwrap_or_default()
    }

    fn undecodable(&self, e: &Event) -> bool {
        e.seq > 1 && self.validator.as_ref().is_some_and(|v| !v(&e.payload))
    }
}

impl Engine {
    /// Installs the app's payload check: events whose payload it refuses count against
    /// their origin's undecodable quota.
    pub fn set_payload_validator(&mut self, validator: Option<PayloadValidator>) {
        self.budgets.validator = validator;
    }

    /// The installed payload check.
    pub fn payload_validator(&self) -> Option<PayloadValidator> {
        self.budgets.validator.clone()
    }

    /// What this run accepted of `origin` (for the quota).
    pub fn origin_usage(&self, origin: &NodeId) -> OriginUsage {
        self.budgets.usage(origin)
    }

    /// The events of `events` (valid, from `from`; `pushed` if unasked) that fit the
    /// budgets, with what each charged to its origin's quota (settled by
    /// [`Engine::settle`] once the store judged them); the others are deferred or
    /// refused, counted, and reported once in a while.
    pub(super) fn admit(
        &mut self,
        events: Vec<Event>,
        from: NodeId,
        pushed: bool,
    ) -> (Vec<Event>, Vec<Charge>) {
        if events.is_empty() || from == self.id() {
            let n = events.len();
            return (events, vec![Charge::default(); n]);
        }
        let now = self.now;
        let limits = self.config.budgets;
        let budget = self
            .budgets
            .peers
            .entry(from)
            .or_insert_with(|| PeerBudget::new(&limits, now));
        let mut kept = Kept::default();
        let mut events = events;
        if pushed {
            let granted = budget.pushes.take_up_to(events.len() as u64, now) as usize;
            kept.deferred += (events.len() - granted) as u64;
            // A prefix: each origin's events stay in seq order with no gap.
            events.truncate(granted);
        }
        let events = self.admit_origins(events, from, pushed, &mut kept);
        let admitted = self.admit_quota(events, &mut kept);
        self.report_kept(from, pushed, kept);
        admitted
    }

    /// Drops the events of origins new to this node past `from`'s origin budget (the
    /// pushed or the asked one).
    fn admit_origins(
        &mut self,
        events: Vec<Event>,
        from: NodeId,
        pushed: bool,
        kept: &mut Kept,
    ) -> Vec<Event> {
        let me = self.id();
        let now = self.now;
        let mut deferred: HashSet<NodeId> = HashSet::new();
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let o = e.origin;
            let known =
                o == me || self.held.clock().get(&o) > 0 || self.budgets.usage.contains_key(&o);
            if !known && !deferred.contains(&o) {
                let granted = self.budgets.peers.get_mut(&from).is_some_and(|b| {
                    if pushed {
                        b.origins.take_one(now)
                    } else {
                        b.asked_origins.take_one(now)
                    }
                });
                if granted {
                    self.budgets.usage.insert(o, OriginUsage::default());
                } else {
                    deferred.insert(o);
                    kept.origins += 1;
                }
            }
            if deferred.contains(&o) {
                kept.deferred += 1;
            } else {
                out.push(e);
            }
        }
        out
    }

    /// Refuses events past their origin's byte quota (and every later one of that origin
    /// in the batch, which could not be held contiguously); charges the others at once,
    /// so batches judged at the same time cannot overshoot it together.
    fn admit_quota(&mut self, events: Vec<Event>, kept: &mut Kept) -> (Vec<Event>, Vec<Charge>) {
        let me = self.id();
        let (max, max_undecodable) = (
            cap(self.config.budgets.max_bytes_per_origin),
            cap(self.config.budgets.max_undecodable_bytes_per_origin),
        );
        let mut full: HashSet<NodeId> = HashSet::new();
        let mut out = Vec::with_capacity(events.len());
        let mut charges = Vec::with_capacity(events.len());
        for e in events {
            let o = e.origin;
            // Own events, events at or below the clock (duplicates, equivocations the
            // store judges) and copies of events being saved cost nothing new.
            if o == me
                || e.seq <= self.held.clock().get(&o)
                || self.budgets.pending.contains(&(o, e.seq))
            {
                out.push(e);
                charges.push(Charge::default());
                continue;
            }
            let size = e.encoded_len() as u64;
            let undecodable = self.budgets.undecodable(&e);
            let used = self.budgets.usage(&o);
            let over = full.contains(&o)
                || used.bytes.saturating_add(size) > max
                || (undecodable && used.undecodable.saturating_add(size) > max_undecodable);
            if over {
                full.insert(o);
                kept.refused += 1;
                kept.first_refused.get_or_insert((o, e.seq));
                continue;
            }
            let u = self.budgets.usage.entry(o).or_default();
            u.bytes += size;
            if undecodable {
                u.undecodable += size;
            }
            self.budgets.pending.insert((o, e.seq));
            charges.push(Charge {
                origin: Some(o),
                seq: e.seq,
                bytes: size,
                undecodable,
            });
            out.push(e);
        }
        (out, charges)
    }

    /// The store judged a batch: what was charged for events it did not insert (a
    /// duplicate that raced, a refused signature, a failed write) is given back.
    pub(super) fn settle(&mut self, charges: &[Charge], verdicts: &[super::input::Verdict]) {
        for (i, c) in charges.iter().enumerate() {
            let Some(origin) = c.origin else { continue };
            self.budgets.pending.remove(&(origin, c.seq));
            let inserted = matches!(verdicts.get(i), Some(super::input::Verdict::Inserted));
            if inserted {
                if c.undecodable {
                    self.stats.undecodable_events += 1;
                }
                continue;
            }
            if let Some(u) = self.budgets.usage.get_mut(&origin) {
                u.bytes = u.bytes.saturating_sub(c.bytes);
                if c.undecodable {
                    u.undecodable = u.undecodable.saturating_sub(c.bytes);
                }
            }
        }
    }

    /// Counts what was kept back; logs and reports it at most once per
    /// [`REPORT_EVERY_MS`] per peer.
    fn report_kept(&mut self, from: NodeId, pushed: bool, kept: Kept) {
        if kept.deferred == 0 && kept.refused == 0 {
            return;
        }
        self.stats.deferred_events += kept.deferred;
        self.stats.deferred_origins += kept.origins;
        self.stats.quota_refused += kept.refused;
        let now = self.now;
        let due = self
            .budgets
            .peers
            .get_mut(&from)
            .is_some_and(|b| b.report_due(now));
        if !due {
            return;
        }
        if kept.deferred > 0 {
            tracing::warn!(
                peer = %from, pushed, deferred = kept.deferred, new_origins = kept.origins,
                total_deferred = self.stats.deferred_events,
                "peer over its budget: events deferred (fetched later by rounds)"
            );
        }
        if let Some((origin, seq)) = kept.first_refused {
            let q = self.config.budgets;
            tracing::warn!(
                peer = %from, %origin, seq, refused = kept.refused,
                max_bytes = q.max_bytes_per_origin,
                max_undecodable = q.max_undecodable_bytes_per_origin,
                "events refused: over their origin's byte quota"
            );
            self.emit_exchange(ExchangeResult::failed(
                from,
                Direction::Inbound,
                std::time::Duration::ZERO,
                format!(
                    "{} event(s) refused, first {origin}/{seq}: over the origin's quota \
                     ({} bytes, {} of them undecodable)",
                    kept.refused, q.max_bytes_per_origin, q.max_undecodable_bytes_per_origin
                ),
            ));
        }
    }
}
