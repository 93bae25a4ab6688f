//! Set-reconciled digests: the rounds that open every exchange.
//!
//! The initiator sends one fingerprint of its clock ([`reconcile::initiate`]); the responder
//! answers each round from its clock alone ([`reconcile::process`], keeping no state
//! between rounds), the initiator answers the answer, and so on until the initiator's
//! answer is empty: it then knows every origin on which the two clocks differ, and the
//! digest passes of [`super::exchange`] serve exactly those. Two agreeing nodes exchange
//! one fingerprint each way (tens of bytes, whatever the room's size); `d` differences
//! among `n` origins cost O(d log n) bytes.
//!
//! Bounds, so that no peer and no room size can make a message exceed the frame limit or
//! the initiator's memory grow: every round is cut to the frame limit ([`budget`]), at most
//! [`MAX_ROUNDS`] rounds per cycle, at most [`MAX_PENDING`] differences held; a cut cycle
//! is served and then started again (see [`super::exchange`]). A peer's ranges that break
//! the rules (too many, out of order, oversized or misplaced lists) end the round with a
//! counted refusal (`GossipStats::refused_requests`), never a panic.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::protocol::event::NodeId;
use crate::protocol::exchange::{Limits, TRANSPORT_RESERVE};
use crate::protocol::message::Message;
use crate::protocol::reconcile::{self, Range, Role};

use super::Engine;
use super::exchange::{FetchFor, Stage};
use super::input::{ExchangeId, FetchId, RequestId};
use super::output::{Direction, ExchangeResult, Output};

/// Reconciliation rounds of one cycle at most; what is left is found by the next cycle.
pub const MAX_ROUNDS: u32 = 64;

/// Differences one exchange holds at most; past it the cycle is cut and served first.
pub const MAX_PENDING: usize = 65_536;

/// Bytes of a `Reconcile` message besides its ranges: tag, sender id, list length.
const ENVELOPE: usize = 1 + 17 + 9;

/// The byte budget of one round's ranges under `limits`, so the message fits a frame.
pub fn budget(limits: Limits) -> usize {
    limits
        .max_bytes
        .saturating_sub(TRANSPORT_RESERVE + ENVELOPE)
}

/// Where an outbound exchange's reconciliation stands.
#[derive(Debug, Default)]
pub struct Progress {
    /// Rounds sent, over every cycle of the exchange.
    pub rounds: u32,
    /// Rounds of the current cycle.
    cycle_rounds: u32,
    /// The current cycle ended with nothing left to compare.
    complete: bool,
    /// Events moved since the current cycle started.
    pub moved: bool,
    /// Origins found to differ and not yet served: origin -> the peer's entry.
    pending: BTreeMap<NodeId, u64>,
    /// Whether this cycle reported the peer's entry for our own origin.
    own_reported: bool,
}

impl Progress {
    /// Whether found origins wait to be served.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next (up to) `len` origins to serve, in id order.
    pub fn take_page(&mut self, len: usize) -> Vec<NodeId> {
        let mut page = Vec::with_capacity(len.min(self.pending.len()));
        while page.len() < len {
            let Some((origin, _)) = self.pending.pop_first() else {
                break;
            };
            page.push(origin);
        }
        page
    }

    /// Whether another cycle is worth it: the last was cut, and moved events.
    pub fn again(&self) -> bool {
        !self.complete && self.moved
    }

    /// Starts a new cycle.
    pub fn restart(&mut self) {
        self.cycle_rounds = 0;
        self.complete = false;
        self.moved = false;
        self.own_reported = false;
    }
}

impl Engine {
    /// One round of an outbound exchange's reconciliation: the opening fingerprint
    /// (`incoming` `None`), or our answer to the peer's ranges.
    pub(super) fn reconcile_round(&mut self, id: ExchangeId, incoming: Option<Vec<Range>>) {
        let me = self.id();
        let budget = budget(self.config.limits);
        let ranges = match incoming {
            None => reconcile::initiate(self.held.clock()),
            Some(theirs) => {
                match reconcile::process(self.held.clock(), &theirs, Role::Initiator, budget) {
                    Ok(round) => {
                        self.found(id, round.diffs);
                        round.ranges
                    }
                    Err(e) => {
                        self.stats.refused_requests += 1;
                        self.fail_exchange(id, format!("reconcile answer refused: {e}"));
                        return;
                    }
                }
            }
        };
        let own = self.held.clock().get(&me);
        let timeout = self.config.gossip_timeout;
        let now = self.now;
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        let over = ex.rec.cycle_rounds >= MAX_ROUNDS || ex.rec.pending.len() >= MAX_PENDING;
        if ranges.is_empty() || over {
            // The cycle is over: a complete one told us the peer's entry for us, too.
            ex.rec.complete = ranges.is_empty();
            let report = ex.rec.complete && !ex.rec.own_reported;
            let peer = ex.peer.id;
            if report {
                self.peer_reported(peer, own);
            }
            self.next_page(id);
            return;
        }
        ex.rec.rounds += 1;
        ex.rec.cycle_rounds += 1;
        ex.stage = Stage::Reconcile;
        ex.asked = now;
        let message = Message::Reconcile { from: me, ranges };
        let len = message.encoded_len();
        ex.bytes += len;
        let to = ex.peer.clone();
        self.stats.bytes_sent += len as u64;
        self.out.push(Output::Request {
            to,
            exchange: id,
            message,
            timeout,
        });
    }

    /// Differences a round revealed.
    fn found(&mut self, id: ExchangeId, diffs: Vec<reconcile::Diff>) {
        let me = self.id();
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        let peer = ex.peer.id;
        let mut own = None;
        for d in diffs {
            if d.origin == me {
                own = Some(d.theirs);
                ex.rec.own_reported = true;
            }
            if ex.rec.pending.len() < MAX_PENDING || ex.rec.pending.contains_key(&d.origin) {
                ex.rec.pending.insert(d.origin, d.theirs);
            }
        }
        if let Some(theirs) = own {
            self.peer_reported(peer, theirs);
        }
    }

    /// A peer's reconciliation round: the store's clock first (it may hold events written
    /// beside the engine), then the answer.
    pub(super) fn answer_reconcile(
        &mut self,
        request: RequestId,
        peer: NodeId,
        ranges: Vec<Range>,
    ) {
        let fetch = FetchId(self.next_id());
        self.fetches.insert(
            fetch,
            FetchFor::AnswerReconcile {
                request,
                peer,
                started: self.now,
                ranges,
            },
        );
        self.out.push(Output::Fetch {
            fetch,
            wants: Vec::new(),
            limit: 0,
        });
    }

    /// Answers a peer's round from our clock alone.
    pub(super) fn respond_reconcile(
        &mut self,
        request: RequestId,
        peer: NodeId,
        started: u64,
        ranges: &[Range],
    ) {
        let budget = budget(self.config.limits);
        match reconcile::process(self.held.clock(), ranges, Role::Responder, budget) {
            Ok(round) => {
                let message = Message::Reconcile {
                    from: self.id(),
                    ranges: round.ranges,
                };
                let bytes = message.encoded_len();
                self.stats.bytes_sent += bytes as u64;
                self.out.push(Output::Respond { request, message });
                self.emit_exchange(ExchangeResult {
                    peer,
                    direction: Direction::Inbound,
                    success: true,
                    events_sent: 0,
                    events_received: 0,
                    bytes,
                    duration: self.elapsed(started),
                    error: None,
                });
            }
            Err(e) => self.refuse_round(request, peer, format!("reconcile refused: {e}")),
        }
    }

    /// A request that breaks the rules: counted, answered empty (so nothing hangs), and
    /// shown as a failed inbound exchange.
    pub(super) fn refuse_round(&mut self, request: RequestId, peer: NodeId, error: String) {
        self.stats.refused_requests += 1;
        tracing::warn!(%peer, %error, "request refused");
        self.refuse_request(Some(request));
        self.emit_exchange(ExchangeResult::failed(
            peer,
            Direction::Inbound,
            Duration::ZERO,
            error,
        ));
    }
}
