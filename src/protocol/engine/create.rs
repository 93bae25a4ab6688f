//! Own events: issued in the order asked, in groups. Each gets the next seq and an HLC
//! past every one seen, is signed, saved durably, and only then reported and pushed. A seq
//! the store turns out to hold already (our own events came back from a peer after a wiped
//! store) is stepped past.
//!
//! Group commit: while one group is being saved, new requests queue; when the save is
//! answered, every request queued (up to [`MAX_OWN_BATCH`]) is issued as the next group:
//! one reservation covering all its seqs, one signing pass ([`super::Signer::sign_many`],
//! which seals the group as a hash chain after the last own event), and one
//! [`Output::Save`], so one fsync covers the group. No request is answered before the save
//! of its group is.
//!
//! Every issue passes the own-seq rule ([`crate::protocol::own_seq`]): the reservation is
//! made durable first ([`Output::Reserve`]), and after a lost tail requests wait in order
//! until a peer has reported this node's high-water mark ([`Engine::pending_own`] counts
//! them, for a "sending…" display). The identity event (seq 1) is the same bytes every
//! time it is made, so it never waits.
//!
//! An own event that lost an equivocation has its payload issued again under a fresh seq
//! ([`Engine::reissue`]), so nothing typed is lost.

use std::collections::VecDeque;

use bytes::Bytes;
use rand::RngCore;

use crate::protocol::chain::{ChainHash, UNLINKED, chain_hash};
use crate::protocol::equivocation::{Equivocation, digest};
use crate::protocol::event::Event;
use crate::protocol::hlc::Hlc;
use crate::protocol::own_seq::Decision;

use super::Engine;
use super::ingest::SaveFor;
use super::input::{SaveId, Ticket, Verdict};
use super::output::{CreateError, Done, Emit, Output};

/// Attempts to find a free own seq before giving up.
pub const CREATE_ATTEMPTS: u32 = 3;

/// Own events issued and saved as one group at most: bounds one save's size and how long
/// one signing pass holds the engine.
pub const MAX_OWN_BATCH: usize = 1024;

#[derive(Debug)]
enum What {
    Payload(Bytes),
    /// The identity event (seq 1), answering a start.
    Identity,
    /// The payload of an own event that lost an equivocation: no one waits for it.
    Reissue(Bytes),
}

/// One own event asked for.
#[derive(Debug)]
pub struct Job {
    ticket: Option<Ticket>,
    what: What,
    attempts: u32,
}

/// A group of own events being saved (one [`Output::Save`]), in seq order.
#[derive(Debug)]
pub struct OwnSave {
    group: Vec<(Job, Event)>,
}

/// Own events issued in a run that started unsure of its high-water mark (the store's
/// reservation did not match its own seqs: a store from before reservations, a restored
/// backup, a fresh store). A peer reporting that it holds one of their seqs may hold a
/// different event there; since equal clocks never carry events, this node shows it its
/// own, once, so an equivocation is found and resolved. Bounded.
#[derive(Debug, Default)]
pub struct Unsure {
    on: bool,
    issued: VecDeque<Event>,
    shown: std::collections::HashMap<crate::protocol::event::NodeId, u64>,
}

impl Unsure {
    /// Own events remembered at most.
    pub const MAX: usize = 256;

    pub(super) fn new(on: bool) -> Self {
        Unsure {
            on,
            ..Unsure::default()
        }
    }

    fn issued(&mut self, e: &Event) {
        if self.on && self.issued.len() < Self::MAX {
            self.issued.push_back(e.clone());
        }
    }

    /// Own events `peer` holds seqs of (up to `own_entry`) and was not shown yet.
    fn take_unshown(&mut self, peer: crate::protocol::event::NodeId, own_entry: u64) -> Vec<Event> {
        if self.issued.is_empty() {
            return Vec::new();
        }
        let shown = self.shown.entry(peer).or_insert(0);
        let out: Vec<Event> = self
            .issued
            .iter()
            .filter(|e| e.seq > *shown && e.seq <= own_entry)
            .cloned()
            .collect();
        *shown = (*shown).max(own_entry);
        out
    }
}

/// The queue of own events.
#[derive(Debug, Default)]
pub struct Creator {
    queue: VecDeque<Job>,
    /// A group of own events is being saved, or a reservation written.
    busy: bool,
    /// Own events in the group being saved.
    in_save: usize,
    /// The seq and chain hash of the last own event signed: the next seq's seal links to
    /// it ([`crate::protocol::chain`]); any other seq starts a new chain.
    pub(super) tail: Option<(u64, ChainHash)>,
}

impl Creator {
    /// The `prev` for an own event issued at `seq`.
    fn prev_for(&self, seq: u64) -> ChainHash {
        match self.tail {
            Some((s, h)) if s.checked_add(1) == Some(seq) => h,
            _ => UNLINKED,
        }
    }

    /// Answers every waiting request: the engine stopped. Re-issues, which no one waits
    /// for, stay queued for the next start.
    pub(super) fn abort(&mut self, out: &mut Vec<Output>) {
        self.busy = false;
        self.in_save = 0;
        let mut kept = VecDeque::new();
        for job in self.queue.drain(..) {
            let done = match job.what {
                What::Identity => Done::Started(Err(CreateError::NotStarted)),
                What::Payload(_) => Done::Created(Err(CreateError::NotStarted)),
                What::Reissue(_) => {
                    kept.push_back(job);
                    continue;
                }
            };
            if let Some(ticket) = job.ticket {
                out.push(Output::Done { ticket, done });
            }
        }
        self.queue = kept;
    }

    /// Own events asked for and not yet stored.
    pub(super) fn pending(&self) -> usize {
        self.queue.len() + self.in_save.max(usize::from(self.busy))
    }

    /// Requests at the front that may join the next group (an identity event goes alone).
    fn groupable(&self) -> usize {
        self.queue
            .iter()
            .take(MAX_OWN_BATCH)
            .take_while(|j| !matches!(j.what, What::Identity))
            .count()
    }
}

impl Engine {
    /// Whether a new own seq may be issued now: no while this node's high-water mark must
    /// first be learned from a peer (see [`crate::protocol::own_seq`]).
    pub fn may_issue_seq(&self) -> bool {
        self.own_seq.decide() != Decision::Wait
    }

    pub(super) fn create(&mut self, ticket: Ticket, payload: Bytes) {
        let refused = if !self.started {
            Some(CreateError::NotStarted)
        } else if payload.is_empty() {
            Some(CreateError::EmptyPayload)
        } else {
            None
        };
        if let Some(why) = refused {
            self.done(ticket, Done::Created(Err(why)));
            return;
        }
        self.creator.queue.push_back(Job {
            ticket: Some(ticket),
            what: What::Payload(payload),
            attempts: 0,
        });
        self.pump();
    }

    /// Issues the payload of an own event that lost `eq` again under a fresh seq, once per
    /// losing event.
    pub(super) fn reissue(&mut self, eq: &Equivocation) {
        let Some(payload) = eq.reissue_for(self.id()) else {
            return;
        };
        if !self.reissued.insert(digest(&eq.loser)) {
            return;
        }
        self.stats.reissued += 1;
        tracing::warn!(
            seq = eq.seq(),
            "an own event lost an equivocation; its payload is issued again under a fresh seq"
        );
        self.creator.queue.push_back(Job {
            ticket: None,
            what: What::Reissue(payload),
            attempts: 0,
        });
        self.pump();
    }

    /// On start: the identity event first if this node signs and has no events yet;
    /// `ticket` is answered once it is saved.
    pub(super) fn create_identity(&mut self, ticket: Ticket) {
        if self.signer.is_none() || self.own_seq.next_seq() != 1 {
            self.done(ticket, Done::Started(Ok(())));
            self.pump();
            return;
        }
        self.creator.queue.push_front(Job {
            ticket: Some(ticket),
            what: What::Identity,
            attempts: 0,
        });
        self.pump();
    }

    /// Issues the next group of waiting events, if none is being saved and the own-seq
    /// rule allows: the identity event alone, else every request queued (up to
    /// [`MAX_OWN_BATCH`]) whose seq the reservation covers, reserving for all of them first.
    pub(super) fn pump(&mut self) {
        while self.started && !self.creator.busy {
            let Some(front) = self.creator.queue.front() else {
                return;
            };
            if matches!(front.what, What::Identity) {
                self.issue_identity();
                continue;
            }
            match self.own_seq.decide() {
                Decision::Wait => return,
                Decision::Reserve { .. } => {
                    // One reservation (one fsync) for the whole group about to be issued.
                    let up_to = self.own_seq.reserve_for(self.creator.groupable() as u64);
                    self.creator.busy = true;
                    self.out.push(Output::Reserve { up_to });
                    return;
                }
                Decision::Issue(_) => self.issue_group(),
            }
        }
    }

    /// Saves the identity event (seq 1, the same bytes every time; no reservation).
    fn issue_identity(&mut self) {
        let Some(job) = self.creator.queue.pop_front() else {
            return;
        };
        let Some(event) = self.signer.as_ref().map(|s| s.identity_event()) else {
            return;
        };
        self.creator.tail = Some((event.seq, chain_hash(&event)));
        self.save_group(vec![(job, event)]);
    }

    /// Issues the payload requests at the front of the queue under consecutive reserved
    /// seqs, signs them in one pass and saves them as one group.
    fn issue_group(&mut self) {
        let limit = self.config.limits.max_event_bytes();
        let sig_len = self.signer.as_ref().map_or(0, |s| s.signature_len());
        let (mut jobs, mut events) = (Vec::new(), Vec::new());
        while jobs.len() < MAX_OWN_BATCH {
            let Decision::Issue(seq) = self.own_seq.decide_after(jobs.len() as u64) else {
                break;
            };
            let payload = match self.creator.queue.front().map(|j| &j.what) {
                Some(What::Payload(p) | What::Reissue(p)) => p.clone(),
                _ => break,
            };
            let Some(job) = self.creator.queue.pop_front() else {
                break;
            };
            let event = self.issue(payload, seq);
            // Checked before signing: a refused request must not take a seq in the group.
            let size = event.encoded_len() + sig_len;
            if size > limit {
                self.answer(&job, Err(CreateError::TooLarge { size, limit }));
                continue;
            }
            jobs.push(job);
            events.push(event);
        }
        if jobs.is_empty() {
            return;
        }
        if let (Some(s), Some(first)) = (&self.signer, events.first()) {
            let prev = self.creator.prev_for(first.seq);
            let last = s.sign_many(&mut events, prev);
            self.creator.tail = events.last().map(|e| (e.seq, last));
        }
        let group = jobs.into_iter().zip(events).collect();
        self.save_group(group);
    }

    /// One durable save for `group`; its requests are answered when it is.
    fn save_group(&mut self, group: Vec<(Job, Event)>) {
        let save = SaveId(self.next_id());
        self.creator.busy = true;
        self.creator.in_save = group.len();
        self.out.push(Output::Save {
            save,
            events: group.iter().map(|(_, e)| e.clone()).collect(),
            own: true,
            from: crate::protocol::event::NodeId::NIL,
        });
        self.saves.insert(save, SaveFor::Own(OwnSave { group }));
    }

    /// A peer's clock (in its digest or response) holds this node's events up to
    /// `own_entry`: never issue at or below it; a node learning its high-water mark after a
    /// lost tail may issue again.
    pub(super) fn peer_reported(&mut self, peer: crate::protocol::event::NodeId, own_entry: u64) {
        let was_learning = self.own_seq.is_learning();
        self.own_seq.on_peer_report(own_entry);
        let show = self.unsure.take_unshown(peer, own_entry);
        if !show.is_empty() {
            self.push_to(peer, show);
        }
        if was_learning {
            tracing::info!(
                %peer, own_entry, next_seq = self.own_seq.next_seq(),
                "own high-water mark learned from a peer; waiting own events go out"
            );
        }
        self.pump();
    }

    /// The reservation asked for is durable.
    pub(super) fn reserved(&mut self, up_to: u64) {
        self.own_seq.on_reserved(up_to);
        self.creator.busy = false;
        self.pump();
    }

    /// The reservation could not be written: the waiting event fails (it is not signed).
    pub(super) fn reserve_failed(&mut self, error: String) {
        self.creator.busy = false;
        tracing::error!(%error, "the own-seq reservation could not be written");
        if let Some(job) = self.creator.queue.pop_front() {
            self.answer(&job, Err(CreateError::Store(error)));
        }
        self.pump();
    }

    /// A new own event under `seq`: an HLC past all seen (and past the group's earlier
    /// events), an id and time from the engine's clock and generator; not signed yet.
    fn issue(&mut self, payload: Bytes, seq: u64) -> Event {
        let mut random = [0u8; 10];
        self.rng.fill_bytes(&mut random);
        let id = uuid::Builder::from_unix_timestamp_millis(self.now, &random).into_uuid();
        // Raised at issue, not at save, so a group's events get increasing clocks.
        let hlc = Hlc::tick(self.now, self.hlc);
        self.hlc = hlc;
        Event {
            id,
            origin: self.id(),
            seq,
            hlc,
            created_at_ms: self.now,
            payload,
            sig: Bytes::new(),
        }
    }

    /// Answers the job's ticket, if it has one.
    fn answer(&mut self, job: &Job, result: Result<Event, CreateError>) {
        let Some(ticket) = job.ticket else {
            if let Err(e) = result {
                tracing::error!(error = %e, "an own payload could not be issued again");
            }
            return;
        };
        let done = match (&job.what, result) {
            (What::Identity, r) => Done::Started(r.map(|_| ())),
            (_, r) => Done::Created(r),
        };
        self.done(ticket, done);
    }

    /// The group's save is answered (one verdict per event, in order): each event that is
    /// held now is reported, answered and pushed; one whose seq was taken is retried under
    /// a later seq, ahead of what waits.
    pub(super) fn own_saved(&mut self, own: OwnSave, verdicts: Vec<Verdict>) {
        self.creator.busy = false;
        self.creator.in_save = 0;
        let mut verdicts = verdicts.into_iter();
        let mut relay = Vec::new();
        let mut retry = Vec::new();
        for (job, event) in own.group {
            let identity = matches!(job.what, What::Identity);
            match self.own_one_saved(job, &event, verdicts.next()) {
                Ok(()) if !identity => relay.push(event),
                Ok(()) => {}
                Err(Some(job)) => retry.push(job),
                Err(None) => {}
            }
        }
        for job in retry.into_iter().rev() {
            self.creator.queue.push_front(job);
        }
        if !relay.is_empty() && self.config.eager_push {
            self.relay(relay, &[]);
        }
        self.pump();
    }

    /// One event of a saved group: `Ok` if it is held and answered, else the job to retry
    /// (`Err(None)`: answered with an error).
    fn own_one_saved(
        &mut self,
        mut job: Job,
        event: &Event,
        verdict: Option<Verdict>,
    ) -> Result<(), Option<Job>> {
        let seq = event.seq;
        self.own_seq.on_issued(seq);
        let won = match verdict {
            Some(Verdict::Inserted) => true,
            Some(Verdict::Equivocation { ref held, replaced }) => {
                // Our own earlier event under this seq came back from a peer while this one
                // was being made: the rule keeps one, and the other's payload is issued again.
                if !replaced {
                    // The new event lost: its job is retried below, so it is not re-issued.
                    self.reissued.insert(digest(event));
                }
                if let Some(eq) = Equivocation::detect(held, event) {
                    self.on_equivocation(self.id(), eq, replaced);
                }
                replaced
            }
            _ => false,
        };
        if won {
            if !matches!(job.what, What::Identity) {
                self.unsure.issued(event);
            }
            self.held.hold(event.origin, seq);
            self.hlc = self.hlc.max(event.hlc);
            self.stats.events_created += 1;
            self.emit(Emit::Created(event.clone()));
            self.answer(&job, Ok(event.clone()));
            return Ok(());
        }
        if matches!(job.what, What::Identity) {
            self.answer(
                &job,
                Err(CreateError::Store(
                    "own identity event already held; the store and the node disagree".into(),
                )),
            );
            return Err(None);
        }
        job.attempts += 1;
        if job.attempts >= CREATE_ATTEMPTS {
            let why = format!(
                "own seq {seq} already held ({verdict:?}); the store and the node disagree"
            );
            self.answer(&job, Err(CreateError::Store(why)));
            return Err(None);
        }
        Err(Some(job))
    }

    /// The group's save failed: every request in it is answered with the error.
    pub(super) fn own_save_failed(&mut self, own: OwnSave, error: String) {
        self.creator.busy = false;
        self.creator.in_save = 0;
        for (job, _) in &own.group {
            self.answer(job, Err(CreateError::Store(error.clone())));
        }
        self.pump();
    }
}
