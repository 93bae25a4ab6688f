//! The exchange: reconciliation rounds (see [`super::reconcile`]), then digest (phase 1),
//! response (phase 2), push (phase 3), and the rule that decides whether another pass
//! follows.
//!
//! An outbound exchange first learns the origins on which the two clocks differ, by rounds
//! of range-based set reconciliation (two agreeing nodes: one fingerprint each way). Those
//! origins are then served a page of [`exchange::digest_page`] at a time, in passes that
//! run while either side still lacks events of the page the other holds and the last pass
//! made progress, so a cold node catches up at the speed of round trips rather than one
//! batch per gossip interval. Each pass:
//! 1. send our digest (our entries for the page's origins) as a request;
//! 2. the response brings events we lack (ingested like any received events) and the
//!    peer's entries for the same origins;
//! 3. fetch what the peer lacks of the page, judged against its entries and what this
//!    exchange already pushed to it, and push it, cut to the limits.
//!
//! Passes are pipelined: when a response brings events and the peer's entries say it holds
//! more of the page, the next digest goes out at once, with our entries raised to what the
//! response brought (as if it were saved already), so the peer reads and sends the next
//! batch while this one is verified and saved. One such read-ahead pass is in flight at a
//! time; its response waits until the pass before it ends. Should an event of the batch be
//! refused, the next pass asks for it again from the held clock.
//!
//! When the pages are done and the reconciliation had been cut (its round bound, or too
//! many differences to hold), it starts again from one fingerprint, as long as the last
//! cycle moved events: no message, whatever the sizes, ever exceeds the frame limit.

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
pub(super) enum Stage {
    /// Reading the store's clock before the first reconciliation round.
    Clock,
    /// Awaiting the answer to a reconciliation round.
    Reconcile,
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
    pub(super) peer: Peer,
    group: Option<u64>,
    /// Holds the peer's in-flight mark (rounds skip a peer already in an exchange).
    marked: bool,
    started: u64,
    pub(super) asked: u64,
    /// Digest passes sent.
    pass: u32,
    pub(super) stage: Stage,
    /// The reconciliation: rounds, what it found, whether it finished.
    pub(super) rec: super::reconcile::Progress,
    /// The origins the current digest passes serve.
    page: Vec<NodeId>,
    /// The peer's entries for the page's origins, as its last response gave them.
    theirs: VectorClock,
    /// What this exchange pushed to the peer, contiguously per origin.
    pushed: VectorClock,
    pass_received: usize,
    sent: usize,
    received: usize,
    pub(super) bytes: usize,
    pub(super) rtt: Option<u64>,
    /// The read-ahead pass: its digest sent before the pass before it ended.
    ahead: Ahead,
}

/// Where the read-ahead pass stands.
#[derive(Debug, Default)]
enum Ahead {
    /// None in flight.
    #[default]
    Idle,
    /// Its digest is sent, no response yet.
    InFlight,
    /// Its response came while the pass before it was still being saved or pushed.
    Arrived(Box<Message>, usize),
}

impl Outbound {
    /// Whether the app asked for this exchange ([`Engine::gossip_with`], the only kind
    /// that holds no in-flight mark) rather than a round, a graft or a join.
    fn asked_for(&self) -> bool {
        !self.marked
    }
}

/// What a store read is for.
#[derive(Debug)]
pub enum FetchFor {
    /// The clock before an exchange's first reconciliation round.
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
        /// Its entries.
        theirs: Vec<(NodeId, u64)>,
    },
    /// Phase 2 for a peer's digest.
    Answer {
        /// The request to answer.
        request: RequestId,
        /// The peer.
        peer: NodeId,
        /// When its digest came.
        started: u64,
        /// Our entries for the origins it asked about.
        ours: VectorClock,
    },
    /// The clock before answering a peer's reconciliation round.
    AnswerReconcile {
        /// The request to answer.
        request: RequestId,
        /// The peer.
        peer: NodeId,
        /// When the round came.
        started: u64,
        /// Its ranges.
        ranges: Vec<crate::protocol::reconcile::Range>,
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
                rec: super::reconcile::Progress::default(),
                page: Vec::new(),
                theirs: VectorClock::new(),
                pushed: VectorClock::new(),
                pass_received: 0,
                sent: 0,
                received: 0,
                bytes: 0,
                rtt: None,
                ahead: Ahead::Idle,
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
            Some(FetchFor::Clock(id)) => self.reconcile_round(id, None),
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
                ours,
            }) => self.respond(request, peer, started, ours, events, None),
            Some(FetchFor::AnswerReconcile {
                request,
                peer,
                started,
                ranges,
            }) => self.respond_reconcile(request, peer, started, &ranges),
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
                    ..
                }
                | FetchFor::AnswerClock {
                    request,
                    peer,
                    started,
                    ..
                }
                | FetchFor::AnswerReconcile {
                    request,
                    peer,
                    started,
                    ..
                },
            ) => self.respond(
                request,
                peer,
                started,
                VectorClock::new(),
                Vec::new(),
                Some(error),
            ),
        }
    }

    /// The reconciliation is over (or cut): serve what it found, a page at a time.
    pub(super) fn next_page(&mut self, id: ExchangeId) {
        let page_len = exchange::digest_page(self.config.limits);
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        ex.page = ex.rec.take_page(page_len);
        ex.theirs = VectorClock::new();
        if ex.page.is_empty() {
            self.finish_exchange(id);
        } else {
            self.send_digest(id);
        }
    }

    /// Phase 1 of the next pass: our entries for the page's origins. A read-ahead pass
    /// already in flight is the next pass: its response is awaited (or taken, if it came).
    fn send_digest(&mut self, id: ExchangeId) {
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        match std::mem::take(&mut ex.ahead) {
            Ahead::Idle => {}
            Ahead::InFlight => {
                ex.stage = Stage::Response;
                return;
            }
            Ahead::Arrived(message, wire_bytes) => {
                ex.stage = Stage::Response;
                self.response(id, *message, wire_bytes);
                return;
            }
        }
        let page = std::mem::take(&mut ex.page);
        let message = exchange::digest(self.config.node_id, self.held.clock(), &page);
        if let Some(ex) = self.exchanges.get_mut(&id) {
            ex.page = page;
        }
        self.send_pass(id, message, Stage::Response);
    }

    /// Sends a pass's digest; `stage` is the stage the exchange is in meanwhile.
    fn send_pass(&mut self, id: ExchangeId, message: Message, stage: Stage) {
        let len = message.encoded_len();
        let timeout = self.config.gossip_timeout;
        let now = self.now;
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return;
        };
        ex.pass += 1;
        if stage == Stage::Response {
            ex.asked = now;
        } else {
            ex.ahead = Ahead::InFlight;
        }
        ex.stage = stage;
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
        if matches!(ex.ahead, Ahead::InFlight) && matches!(ex.stage, Stage::Save | Stage::Fetch) {
            // The read-ahead pass's response, early: it waits for the pass before it.
            ex.ahead = Ahead::Arrived(Box::new(message), wire_bytes);
            return;
        }
        if ex.stage != Stage::Response && ex.stage != Stage::Reconcile {
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
        let stage = ex.stage;
        match (message, stage) {
            (
                Message::DigestResponse {
                    from,
                    events,
                    clock,
                },
                Stage::Response,
            ) if from == peer => {
                let me = self.config.node_id;
                let asked_me = ex.page.binary_search(&me).is_ok();
                // Only the page's origins count: anything else in the clock is ignored.
                ex.theirs = ex.page.iter().map(|o| (*o, clock.get(o))).collect();
                ex.stage = Stage::Save;
                if asked_me {
                    self.peer_reported(peer, clock.get(&me));
                }
                self.read_ahead(id, &events);
                self.ingest(events, peer, false, Some(id));
            }
            (Message::Reconcile { from, ranges }, Stage::Reconcile) if from == peer => {
                self.reconcile_round(id, Some(ranges))
            }
            (other, _) if other.from() != peer => self.fail_exchange(
                id,
                format!("{} from {}, expected {peer}", other.kind(), other.from()),
            ),
            (other, stage) => {
                let expected = if stage == Stage::Reconcile {
                    "Reconcile"
                } else {
                    "DigestResponse"
                };
                self.fail_exchange(id, format!("expected {expected}, got {}", other.kind()))
            }
        }
    }

    /// Sends the next pass's digest now, while `events` (this pass's response) are being
    /// saved, if they leave the peer holding more of the page: our entries are raised to
    /// what they bring contiguously.
    fn read_ahead(&mut self, id: ExchangeId, events: &[Event]) {
        let Some(ex) = self.exchanges.get(&id) else {
            return;
        };
        if events.is_empty()
            || !matches!(ex.ahead, Ahead::Idle)
            || ex.pass + ex.rec.rounds + 1 >= MAX_PASSES
        {
            return;
        }
        let held = self.held.clock();
        let mut ours: VectorClock = ex.page.iter().map(|o| (*o, held.get(o))).collect();
        for e in events {
            if ex.page.binary_search(&e.origin).is_ok() && e.seq == ours.get(&e.origin) + 1 {
                ours.set(e.origin, e.seq);
            }
        }
        let more = ex.page.iter().any(|o| ex.theirs.get(o) > ours.get(o));
        if !more {
            return;
        }
        let message = exchange::digest(self.id(), &ours, &ex.page);
        self.send_pass(id, message, Stage::Save);
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
        let page = ex.page.clone();
        let (peer, asked_for) = (ex.peer.id, ex.asked_for());
        // Lazy push: in a round, what was just pushed in full to the peer is left to that
        // push (`pull_clock`); an exchange the app asked for sends all the peer lacks.
        let ours = if asked_for {
            std::borrow::Cow::Borrowed(self.held.clock())
        } else {
            self.pull_clock(peer)
        };
        let wants = exchange::wants_among(&ours, &theirs, &page, rotation);
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
        if ex.pass_received > 0 || sent > 0 {
            ex.rec.moved = true;
        }
        let they_have_more =
            !exchange::wants_among(&ex.theirs, self.held.clock(), &ex.page, 0).is_empty();
        let more = (ex.pass_received > 0 && they_have_more)
            || (sent > 0 && cut)
            || !matches!(ex.ahead, Ahead::Idle);
        let requests = ex.pass + ex.rec.rounds;
        if requests >= MAX_PASSES {
            self.finish_exchange(id);
        } else if more {
            self.send_digest(id);
        } else if ex.rec.has_pending() {
            self.next_page(id);
        } else if ex.rec.again() {
            // The reconciliation was cut and this cycle moved events: look again.
            ex.rec.restart();
            self.reconcile_round(id, None);
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
            (Message::Digest { entries, .. }, Some(request)) => {
                self.answer_digest(request, id, entries)
            }
            (Message::Reconcile { ranges, .. }, Some(request)) => {
                self.answer_reconcile(request, id, ranges)
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
            (Message::Ephemeral { ephemeral, .. }, request) => {
                self.refuse_request(request);
                self.on_ephemeral(id, ephemeral);
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
    pub(super) fn refuse_request(&mut self, request: Option<RequestId>) {
        if let Some(request) = request {
            let message = Message::DigestResponse {
                from: self.id(),
                events: Vec::new(),
                clock: VectorClock::new(),
            };
            self.out.push(Output::Respond { request, message });
        }
    }

    /// Phase 2 for a peer: the store's clock first (it may hold events written beside
    /// the engine), then what the peer lacks of the origins it asked about.
    fn answer_digest(&mut self, request: RequestId, peer: NodeId, theirs: Vec<(NodeId, u64)>) {
        if let Err(e) = exchange::check_digest(&theirs) {
            self.refuse_round(request, peer, format!("digest refused: {e}"));
            return;
        }
        let me = self.id();
        if let Ok(i) = theirs.binary_search_by_key(&me, |(o, _)| *o) {
            self.peer_reported(peer, theirs[i].1);
        }
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
        theirs: Vec<(NodeId, u64)>,
    ) {
        let rotation = self.next_rotation();
        let ours = exchange::entries_for(self.held.clock(), &theirs);
        // Everything asked for is answered, even with lazy push: the peer may be a node
        // that must know it holds all we hold once its exchange ends (a stopping node,
        // `gossip_with`), and only it knows why it asks.
        let origins: Vec<NodeId> = theirs.iter().map(|(o, _)| *o).collect();
        let theirs: VectorClock = theirs.into_iter().collect();
        let wants = exchange::wants_among(&ours, &theirs, &origins, rotation);
        if wants.is_empty() {
            self.respond(request, peer, started, ours, Vec::new(), None);
            return;
        }
        let fetch = FetchId(self.next_id());
        self.fetches.insert(
            fetch,
            FetchFor::Answer {
                request,
                peer,
                started,
                ours,
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
        ours: VectorClock,
        events: Vec<Event>,
        error: Option<String>,
    ) {
        let me = self.id();
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
