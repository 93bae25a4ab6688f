//! Ephemeral messages (see [`crate::protocol::ephemeral`]): sent to direct peers, relayed
//! once per node while hops remain, never stored, never in the clock or a digest.
//!
//! A received one passes, in this order (cheapest first, so a flood costs little):
//! 1. the delivering peer's rate ([`RATE_PER_SEC`], burst [`BURST`]): past it, dropped;
//! 2. its shape: a payload that is empty or over [`MAX_EPHEMERAL_PAYLOAD`] is refused;
//! 3. its age: created more than [`EPHEMERAL_MAX_AGE_MS`] from our clock, refused as stale;
//! 4. dedupe: a copy already delivered (or our own) is a duplicate;
//! 5. its signature, checked by the driver ([`Output::CheckEphemeral`], answered by
//!    [`Input::EphemeralChecked`]); only then is it marked seen, delivered and relayed.
//!
//! Marking it seen only after the check means a forged copy that arrives first cannot make
//! the genuine one a "duplicate". Every drop is counted in [`super::GossipStats`].

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use uuid::Uuid;

use crate::protocol::ephemeral::{
    EPHEMERAL_MAX_AGE_MS, Ephemeral, MAX_EPHEMERAL_HOPS, MAX_EPHEMERAL_PAYLOAD, ReceivedEphemeral,
};
use crate::protocol::event::NodeId;
use crate::protocol::message::Message;

use super::Engine;
use super::input::Ticket;
use super::output::{CreateError, Direction, Done, Emit, ExchangeResult, Output};

/// Ephemerals a peer may deliver per second, relays included, on average.
pub const RATE_PER_SEC: u64 = 20;
/// How many a peer may deliver at once after a quiet spell.
pub const BURST: u64 = 40;
/// How long a delivered ephemeral is remembered for dedupe: longer than the age bound, so
/// a replay is either a duplicate or stale.
pub const SEEN_MS: u64 = 2 * EPHEMERAL_MAX_AGE_MS;
/// The most ephemerals remembered; past it the oldest are forgotten early (a replay of one
/// is then relayed at most [`MAX_EPHEMERAL_HOPS`] more times: bounded either way).
pub const SEEN_MAX: usize = 8192;
/// The most per-peer rate buckets kept; past it, full (idle) buckets are dropped.
const BUCKETS_MAX: usize = 1024;

/// A token bucket in thousandths of a token, refilled by the engine's clock.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli: u64,
    at: u64,
}

impl Bucket {
    const FULL: u64 = BURST * 1000;

    fn refill(&mut self, now: u64) {
        let gained = now.saturating_sub(self.at).saturating_mul(RATE_PER_SEC);
        self.milli = self.milli.saturating_add(gained).min(Self::FULL);
        self.at = self.at.max(now);
    }

    fn take(&mut self, now: u64) -> bool {
        self.refill(now);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// The engine's ephemeral state: what was delivered lately, and each peer's rate.
#[derive(Debug, Default)]
pub struct Ephemerals {
    seen: HashSet<(NodeId, Uuid)>,
    order: VecDeque<((NodeId, Uuid), u64)>,
    buckets: HashMap<NodeId, Bucket>,
}

impl Ephemerals {
    fn is_seen(&self, key: &(NodeId, Uuid)) -> bool {
        self.seen.contains(key)
    }

    /// Remembers `key`; false if it was remembered already.
    fn mark_seen(&mut self, key: (NodeId, Uuid), now: u64) -> bool {
        while let Some(&(old, at)) = self.order.front() {
            if at.saturating_add(SEEN_MS) > now && self.order.len() < SEEN_MAX {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&old);
        }
        if !self.seen.insert(key) {
            return false;
        }
        self.order.push_back((key, now));
        true
    }

    /// Takes one token from `peer`'s bucket.
    fn admit(&mut self, peer: NodeId, now: u64) -> bool {
        if self.buckets.len() >= BUCKETS_MAX && !self.buckets.contains_key(&peer) {
            self.buckets.retain(|_, b| {
                b.refill(now);
                b.milli < Bucket::FULL
            });
        }
        self.buckets
            .entry(peer)
            .or_insert(Bucket {
                milli: Bucket::FULL,
                at: now,
            })
            .take(now)
    }

    /// Forgets a removed peer's bucket.
    pub(super) fn forget(&mut self, peer: &NodeId) {
        self.buckets.remove(peer);
    }

    /// Ephemerals remembered for dedupe (for tests and bounds checks).
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }
}

impl Engine {
    /// Sends a new ephemeral with `payload` to every reachable peer; answered by
    /// `Done::Ephemeral` with the number of peers it went to.
    pub(super) fn broadcast_ephemeral(&mut self, ticket: Ticket, payload: Bytes, ttl: u8) {
        let refused = if !self.started {
            Some(CreateError::NotStarted)
        } else if payload.is_empty() {
            Some(CreateError::EmptyPayload)
        } else if payload.len() > MAX_EPHEMERAL_PAYLOAD {
            Some(CreateError::TooLarge {
                size: payload.len(),
                limit: MAX_EPHEMERAL_PAYLOAD,
            })
        } else {
            None
        };
        if let Some(why) = refused {
            self.done(ticket, Done::Ephemeral(Err(why)));
            return;
        }
        let mut random = [0u8; 16];
        rand::RngCore::fill_bytes(&mut self.rng, &mut random);
        let mut e = Ephemeral {
            origin: self.id(),
            id: uuid::Builder::from_random_bytes(random).into_uuid(),
            created_at_ms: self.now,
            hops: ttl.min(MAX_EPHEMERAL_HOPS),
            payload,
            sig: Bytes::new(),
        };
        if let Some(signer) = &self.signer {
            let mut signed = e.signed_form();
            signer.sign(&mut signed);
            e.sig = signed.sig;
        }
        self.ephemeral.mark_seen(e.key(), self.now);
        let sent = self.send_ephemeral(e, &[]);
        self.stats.ephemerals_sent += sent as u64;
        self.done(ticket, Done::Ephemeral(Ok(sent)));
    }

    /// An ephemeral from peer `from`: rate, shape, age and dedupe here; the signature by
    /// the driver.
    pub(super) fn on_ephemeral(&mut self, from: NodeId, mut e: Ephemeral) {
        if !self.ephemeral.admit(from, self.now) {
            self.stats.ephemerals_dropped += 1;
            tracing::debug!(peer = %from, "ephemeral over the peer's rate: dropped");
            return;
        }
        let age = self.now.abs_diff(e.created_at_ms);
        let why = if e.payload.is_empty() || e.payload.len() > MAX_EPHEMERAL_PAYLOAD {
            Some(format!(
                "ephemeral payload of {} bytes (must be 1..={MAX_EPHEMERAL_PAYLOAD})",
                e.payload.len()
            ))
        } else if age > EPHEMERAL_MAX_AGE_MS {
            Some(format!(
                "stale ephemeral: created {age} ms from our clock (limit {EPHEMERAL_MAX_AGE_MS})"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            self.refuse_ephemeral(from, why);
            return;
        }
        if e.origin == self.id() || self.ephemeral.is_seen(&e.key()) {
            self.stats.ephemerals_duplicate += 1;
            return;
        }
        e.hops = e.hops.min(MAX_EPHEMERAL_HOPS);
        self.out.push(Output::CheckEphemeral { from, ephemeral: e });
    }

    /// The driver's verdict on an ephemeral's signature: deliver and relay it, or count it.
    pub(super) fn ephemeral_checked(
        &mut self,
        from: NodeId,
        e: Ephemeral,
        result: Result<(), String>,
    ) {
        if let Err(why) = result {
            self.refuse_ephemeral(from, format!("ephemeral from {}: {why}", e.origin));
            return;
        }
        if !self.ephemeral.mark_seen(e.key(), self.now) {
            // Another copy passed its check first.
            self.stats.ephemerals_duplicate += 1;
            return;
        }
        self.stats.ephemerals_received += 1;
        self.emit(Emit::Ephemeral(ReceivedEphemeral {
            origin: e.origin,
            from,
            created_at_ms: e.created_at_ms,
            payload: e.payload.clone(),
        }));
        if e.hops > 0 {
            let origin = e.origin;
            let relayed = Ephemeral {
                hops: e.hops - 1,
                ..e
            };
            let n = self.send_ephemeral(relayed, &[from, origin]);
            self.stats.ephemerals_relayed += n as u64;
        }
    }

    fn refuse_ephemeral(&mut self, from: NodeId, why: String) {
        self.stats.ephemerals_refused += 1;
        tracing::debug!(peer = %from, reason = %crate::text::escape(&why), "ephemeral refused");
        self.emit_exchange(ExchangeResult::failed(
            from,
            Direction::Inbound,
            std::time::Duration::ZERO,
            why,
        ));
    }

    /// Sends `e` to every reachable peer not in `exclude`; returns how many.
    fn send_ephemeral(&mut self, e: Ephemeral, exclude: &[NodeId]) -> usize {
        let targets: Vec<_> = self
            .peers
            .all()
            .filter(|p| p.is_reachable() && !exclude.contains(&p.id))
            .map(|p| p.peer())
            .collect();
        let message = Message::Ephemeral {
            from: self.id(),
            ephemeral: e,
        };
        let len = message.encoded_len() as u64;
        for to in &targets {
            self.stats.bytes_sent += len;
            self.out.push(Output::Send {
                to: to.clone(),
                message: message.clone(),
            });
        }
        targets.len()
    }
}
