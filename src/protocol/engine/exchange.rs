//! The exchange: digest (phase 1), response (phase 2), push (phase 3), and the rule that
//! decides whether another pass follows.
//!
//! An outbound exchange runs passes while either side still lacks events the other holds
//! and the last pass made progress, so a cold node catches up at the speed of round trips
//! rather than one batch per gossip interval. Each pass:
//! 1. send our digest (what we hold contiguously) as a request;
//! 2. the response brings events we lack (ingested like any received events) and the
//!    peer's clock;
//! 3. fetch what the peer lacks, judged against its clock and what this exchange already
//!    pushed to it, and push it, cut to the limits.

use crate::protocol::clock::VectorClock;
use crate::protocol::event::{Event, NodeId};
use crate::protocol::exchange::{self, Batch};
use crate::protocol::message::Message;
use crate::protocol::peer::Peer;

use super::input::{ExchangeId, FetchId, RequestId};
use super::output::{Direction, Done, ExchangeResult, Output};
use super::{Engine, MAX_PASSES};

/// Where one outbound exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading the store's clock before the first digest.
    Clock,
    /// Awaiting the response to our digest.
    Response,
    /// Awaiting the verdicts on the events the response brought.
    Save,
    /// Awaiting the events to push.
    Fetch,
}

/// One outbound exchange.
#[derive(Debug)]
pub struct Outbound {
    peer: Peer,
    group: Option<u64>,
    /// Holds the peer's in-flight mark (rounds skip a peer already in an exchange).
    marked: bool,
    started: u64,
    asked: u64,
    pass: u32,
    stage: Stage,
    /// The peer's clock as its last response gave it.
    theirs: VectorClock,
    /// What this exchange pushed to the peer, contiguously per origin.
    pushed: VectorClock,
    pass_received: usize,
    sent: usize,
    received: usize,
    bytes: usize,
    rtt: Option<u64>,
}

/// What a store read is for.
#[derive(Debug)]
pub enum FetchFor {
    /// The clock before an exchange's first digest.
    Clock(ExchangeId),
    /// Phase 3 of an exchange.
    Push(ExchangeId),
    /// The clock before answering a peer's digest.
    AnswerClock {
        /// The request to answer.
        request: RequestId,
        /// The peer.
        peer: NodeId,
        /// When its digest came.
        started: u64,
        /// Its clock.
        theirs: VectorClock,
    },
    /// Phase 2 for a peer's digest.
    Answer {
        /// The request to answer.
        request: RequestId,
        /// The peer.
        peer: NodeId,
        /// When its digest came.
        started: u64,
    },
}

impl Engine {
    /// Starts an exchange with `peer`; `mark` takes its in-flight mark.
    pub(super) fn begin_exchange(&mut self, peer: Peer, group: Option<u64>, mark: bool) {
        let id = ExchangeId(self.next_id());
        let fetch = FetchId(self.next_id());
        self.exchanges.insert(
            id,
            Outbound {
                peer,
                group,
                marked: mark,
                started: self.now,
                asked: self.now,
                pass: 0,
                stage: Stage::Clock,
                theirs: VectorClock::new(),
                pushed: VectorClock::new(),
                pass_received: 0,
                sent: 0,
                received: 0,
                bytes: 0,
                rtt: None,
            },
        );
        self.fetches.insert(fetch, FetchFor::Clock(id));
        // The store's clock first: it may hold events written beside the engine.
        self.out.push(Output::Fetch {
            fetch,
            wants: Vec::new(),
            limit: 0,
        });
    }

    pub(super) fn gossip_with(&mut self, ticket: u64, peer: NodeId) {
        let target = self.peers.get(&peer).map(|p| p.peer());
        match (self.started, target) {
            (true, Some(target)) => {
                let group = self.open_group(ticket, true, 1);
                self.begin_exchange(target, Some(group), false);
            }
            (started, _) => {
                let why = if started {
                    format!("unknown peer {peer}")
                } else {
                    "the node is not started".to_string()
                };
                let r = ExchangeResult::failed(
                    peer,
                    Direction::Outbound,
                    std::time::Duration::ZERO,
                    why,
                );
                self.done(ticket, Done::Exchange(r));
            }
        }
    }

    /// A store read came back.
    pub(super) fn fetched(&mut self, fetch: FetchId, clock: VectorClock, events: Vec<Event>) {
        self.held.merge(&clock);
        match self.fetches.remove(&fetch) {
            None => {}
            Some(FetchFor::Clock(id)) => self.send_digest(id),
            Some(FetchFor::Push(id)) => self.push_phase(id, events),
            Some(FetchFor::AnswerClock {
                request,
                peer,
                started,
                theirs,
            }) => self.fetch_answer(request, peer, started, theirs),
            Some(FetchFor::Answer {
                request,
                peer,
                started,
            }) => self.respond(request, peer, started, events, None),
        }
    }

    pub(super) fn fetch_failed(&mut self, fetch: FetchId, error: String) {
        match self.fetches.remove(&fetch) {
            None => {}
            Some(FetchFor::Clock(id) | FetchFor::Push(id)) => {
                self.fail_exchange(id, format!("store: {error}"))
            }
            Some(
                FetchFor::Answer {
                    request,
                    peer,
                    started,
                }
                | FetchFor::AnswerClock {
                    request,
                    peer,
                    started,
                    ..
                },
            ) => self.respond(request, peer, started, Vec::new(), Some(error)),
        }
    }

    /// Phase 1 of the next pass.
    fn send_digest(&mut self, id: ExchangeId) {
        let message = exchange::digest(self.id(), self.held.clock());
        let len = message.encoded_len();
        let timeout = self.config.gossip_timeout;
        let now = self.now;
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        ex.pass += 1;
        ex.stage = Stage::Response;
        ex.asked = now;
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

    /// Phase 2 came back: ingest its events, then push.
    pub(super) fn response(&mut self, id: ExchangeId, message: Message, wire_bytes: usize) {
        let now = self.now;
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return; // a late response of an exchange that already ended
        };
        if ex.stage != Stage::Response {
            return;
        }
        self.stats.bytes_received += wire_bytes as u64;
        ex.bytes += wire_bytes;
        let first_rtt = ex.rtt.is_none().then(|| now.saturating_sub(ex.asked));
        ex.rtt.get_or_insert(now.saturating_sub(ex.asked));
        let peer = ex.peer.id;
        if let Some(rtt) = first_rtt {
            self.rtt_sample(peer, rtt);
        }
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        match message {
            Message::DigestResponse {
                from,
                events,
                clock,
            } if from == peer => {
                let own_entry = clock.get(&self.config.node_id);
                ex.theirs = clock;
                ex.stage = Stage::Save;
                self.peer_reported(peer, own_entry);
                self.ingest(events, peer, false, Some(id));
            }
            Message::DigestResponse { from, .. } => {
                self.fail_exchange(id, format!("response from {from}, expected {peer}"))
            }
            other => {
                self.fail_exchange(id, format!("expected DigestResponse, got {}", other.kind()))
            }
        }
    }

    /// The response's events are judged: fetch what the peer lacks.
    pub(super) fn after_receive(&mut self, id: ExchangeId, received: usize) {
        let rotation = self.next_rotation();
        let limit = self.config.limits.max_events;
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        ex.received += received;
        ex.pass_received = received;
        let theirs = ex.theirs.merged(&ex.pushed);
        // Lazy push: what the tree is still delivering is left to it (`pull_clock`).
        let wants = exchange::wants(&self.pull_clock(), &theirs, rotation);
        if wants.is_empty() {
            self.end_pass(id, 0, false);
            return;
        }
        if let Some(ex) = self.exchanges.get_mut(&id) {
            ex.stage = Stage::Fetch;
        }
        let fetch = FetchId(self.next_id());
        self.fetches.insert(fetch, FetchFor::Push(id));
        self.out.push(Output::Fetch {
            fetch,
            wants,
            limit,
        });
    }

    /// Phase 3: push what was fetched, cut to the limits.
    fn push_phase(&mut self, id: ExchangeId, events: Vec<Event>) {
        let me = self.id();
        let limits = self.config.limits;
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        let mut batch = Batch::for_push(me, limits);
        for e in events {
            if !batch.push(e) {
                break;
            }
        }
        let (sent, cut) = (batch.len(), batch.is_cut());
        if sent > 0 {
            let len = batch.wire_len();
            let push = batch.into_push(me);
            for e in push.events() {
                let top = ex.theirs.get(&e.origin).max(ex.pushed.get(&e.origin));
                if e.seq == top + 1 {
                    ex.pushed.set(e.origin, e.seq);
                }
            }
            ex.bytes += len;
            self.stats.bytes_sent += len as u64;
            let to = ex.peer.clone();
            self.out.push(Output::Send { to, message: push });
        }
        self.end_pass(id, sent, cut);
    }

    /// The continuation rule: another pass if the last one moved events and more remain.
    fn end_pass(&mut self, id: ExchangeId, sent: usize, cut: bool) {
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        ex.sent += sent;
        let they_have_more = !exchange::wants(&ex.theirs, self.held.clock(), 0).is_empty();
        let more = (ex.pass_received > 0 && they_have_more) || (sent > 0 && cut);
        if more && ex.pass < MAX_PASSES {
            self.send_digest(id);
        } else {
            self.finish_exchange(id);
        }
    }

    fn finish_exchange(&mut self, id: ExchangeId) {
        let Some(ex) = self.exchanges.remove(&id) else {
            return;
        };
        if ex.marked {
            self.in_flight.remove(&ex.peer.id);
        }
        if let Some(p) = self.peers.get_mut(&ex.peer.id) {
            p.events_sent += ex.sent as u64;
        }
        let rtt = ex.rtt.map(std::time::Duration::from_millis);
        self.contact(ex.peer.id);
        let t = self.peers.record_success(&ex.peer.id, rtt, self.now);
        self.announce(t);
        let result = ExchangeResult {
            peer: ex.peer.id,
            direction: Direction::Outbound,
            success: true,
            events_sent: ex.sent,
            events_received: ex.received,
            bytes: ex.bytes,
            duration: self.elapsed(ex.started),
            error: None,
        };
        self.end_exchange(ex.group, result);
    }

    /// Ends an exchange as failed (a request failed, the store failed, the peer broke the
    /// protocol).
    pub(super) fn fail_exchange(&mut self, id: ExchangeId, error: String) {
        let Some(ex) = self.exchanges.remove(&id) else {
            return;
        };
        if ex.marked {
            self.in_flight.remove(&ex.peer.id);
        }
        tracing::debug!(peer = %ex.peer.id, error = %error, "exchange failed");
        // A failure counts only if nothing was heard from the peer since this pass asked.
        self.missed(ex.peer.id, ex.asked, &error);
        let result = ExchangeResult::failed(
            ex.peer.id,
            Direction::Outbound,
            self.elapsed(ex.started),
            error,
        );
        self.end_exchange(ex.group, result);
    }

    fn end_exchange(&mut self, group: Option<u64>, result: ExchangeResult) {
        self.emit_exchange(result.clone());
        if let Some(g) = group {
            self.group_result(g, result);
        }
    }

    /// A message from a peer.
    pub(super) fn received(
        &mut self,
        from: Peer,
        message: Message,
        request: Option<RequestId>,
        wire_bytes: usize,
    ) {
        self.stats.bytes_received += wire_bytes as u64;
        if from.id == self.id() || from.id.is_nil() {
            self.stats.rejected_inbound += 1;
            if let Some(request) = request {
                // Answer nothing of ours; the request ends at once instead of timing out.
                let message = Message::DigestResponse {
                    from: self.id(),
                    events: Vec::new(),
                    clock: VectorClock::new(),
                };
                self.out.push(Output::Respond { request, message });
            }
            return;
        }
        let id = from.id;
        self.add_peer(from);
        let t = self.peers.record_heard(&id, self.now);
        self.contact(id);
        self.announce(t);
        match (message, request) {
            (Message::Ping { .. }, request) => self.on_ping(request),
            (Message::PingReq { target, .. }, request) => self.on_ping_req(id, target, request),
            (Message::Peers { records, .. }, request) => {
                self.refuse_request(request);
                self.on_peers(id, records);
            }
            (Message::Digest { clock, .. }, Some(request)) => {
                self.answer_digest(request, id, clock)
            }
            (Message::Push { events, .. }, request) => {
                self.refuse_request(request);
                self.ingest(events, id, true, None);
            }
            (Message::IHave { ranges, .. }, request) => {
                self.refuse_request(request);
                self.on_ihave(id, ranges);
            }
            (Message::Graft { ranges, .. }, request) => {
                self.refuse_request(request);
                self.on_graft(id, ranges);
            }
            (Message::Prune { .. }, request) => {
                self.refuse_request(request);
                self.on_prune(id);
            }
            (other, request) => {
                self.refuse_request(request);
                self.stats.rejected_inbound += 1;
                tracing::warn!(peer = %id, kind = other.kind(), "unexpected message");
                self.emit_exchange(ExchangeResult::failed(
                    id,
                    Direction::Inbound,
                    std::time::Duration::ZERO,
                    format!("unexpected {} message", other.kind()),
                ));
            }
        }
    }

    /// A request that is not a digest gets an empty response, so no reply is left hanging.
    fn refuse_request(&mut self, request: Option<RequestId>) {
        if let Some(request) = request {
            let message = Message::DigestResponse {
                from: self.id(),
                events: Vec::new(),
                clock: self.held.clock().clone(),
            };
            self.out.push(Output::Respond { request, message });
        }
    }

    /// Phase 2 for a peer: the store's clock first (it may hold events written beside
    /// the engine), then what the peer lacks.
    fn answer_digest(&mut self, request: RequestId, peer: NodeId, theirs: VectorClock) {
        self.peer_reported(peer, theirs.get(&self.id()));
        let fetch = FetchId(self.next_id());
        self.fetches.insert(
            fetch,
            FetchFor::AnswerClock {
                request,
                peer,
                started: self.now,
                theirs,
            },
        );
        self.out.push(Output::Fetch {
            fetch,
            wants: Vec::new(),
            limit: 0,
        });
    }

    fn fetch_answer(
        &mut self,
        request: RequestId,
        peer: NodeId,
        started: u64,
        theirs: VectorClock,
    ) {
        let rotation = self.next_rotation();
        // Lazy push: what the tree is still delivering is left to it (`pull_clock`).
        let wants = exchange::wants(&self.pull_clock(), &theirs, rotation);
        if wants.is_empty() {
            self.respond(request, peer, started, Vec::new(), None);
            return;
        }
        let fetch = FetchId(self.next_id());
        self.fetches.insert(
            fetch,
            FetchFor::Answer {
                request,
                peer,
                started,
            },
        );
        self.out.push(Output::Fetch {
            fetch,
            wants,
            limit: self.config.limits.max_events,
        });
    }

    fn respond(
        &mut self,
        request: RequestId,
        peer: NodeId,
        started: u64,
        events: Vec<Event>,
        error: Option<String>,
    ) {
        let me = self.id();
        let ours = self.held.clock().clone();
        let mut batch = Batch::for_response(me, &ours, self.config.limits);
        for e in events {
            if !batch.push(e) {
                break;
            }
        }
        let sent = batch.len();
        let bytes = batch.wire_len();
        let message = batch.into_response(me, ours);
        self.stats.bytes_sent += bytes as u64;
        self.out.push(Output::Respond { request, message });
        if let Some(p) = self.peers.get_mut(&peer) {
            p.events_sent += sent as u64;
        }
        self.emit_exchange(ExchangeResult {
            peer,
            direction: Direction::Inbound,
            success: error.is_none(),
            events_sent: sent,
            events_received: 0,
            bytes,
            duration: self.elapsed(started),
            error: error.map(|e| format!("store: {e}")),
        });
    }
}
