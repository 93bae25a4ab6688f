//! Own events: issued one at a time, in the order asked. Each gets the next seq and an
//! HLC past every one seen, is signed, saved durably, and only then reported and
//! pushed. A seq the store turns out to hold already (our own events came back from a
//! peer after a wiped store) is stepped past.
//!
//! Hook point: [`Engine::may_issue_seq`] gates every issue; while it says no, requests
//! wait in order.

use std::collections::VecDeque;

use bytes::Bytes;
use rand::RngCore;

use crate::protocol::event::Event;

use super::Engine;
use super::ingest::SaveFor;
use super::input::{SaveId, Ticket, Verdict};
use super::output::{CreateError, Done, Emit, Output};

/// Attempts to find a free own seq before giving up.
pub const CREATE_ATTEMPTS: u32 = 3;

#[derive(Debug)]
enum What {
    Payload(Bytes),
    /// The identity event (seq 1), answering a start.
    Identity,
}

/// One own event asked for.
#[derive(Debug)]
pub struct Job {
    ticket: Ticket,
    what: What,
    attempts: u32,
}

/// An own event being saved.
#[derive(Debug)]
pub struct OwnSave {
    job: Job,
    event: Event,
}

/// The queue of own events.
#[derive(Debug, Default)]
pub struct Creator {
    queue: VecDeque<Job>,
    busy: bool,
}

impl Creator {
    /// Answers every waiting request: the engine stopped.
    pub(super) fn abort(&mut self, out: &mut Vec<Output>) {
        self.busy = false;
        for job in self.queue.drain(..) {
            let done = match job.what {
                What::Identity => Done::Started(Err(CreateError::NotStarted)),
                What::Payload(_) => Done::Created(Err(CreateError::NotStarted)),
            };
            out.push(Output::Done {
                ticket: job.ticket,
                done,
            });
        }
    }
}

impl Engine {
    /// Whether a new own seq may be issued now. Always yes today; a rule that must first
    /// learn this node's high-water mark from peers says no here, and creations wait.
    pub fn may_issue_seq(&self) -> bool {
        true
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
            ticket,
            what: What::Payload(payload),
            attempts: 0,
        });
        self.pump();
    }

    /// On start: the identity event first if this node signs and has no events yet;
    /// `ticket` is answered once it is saved.
    pub(super) fn create_identity(&mut self, ticket: Ticket) {
        if self.signer.is_none() || self.next_seq != 1 {
            self.done(ticket, Done::Started(Ok(())));
            return;
        }
        self.creator.queue.push_front(Job {
            ticket,
            what: What::Identity,
            attempts: 0,
        });
        self.pump();
    }

    /// Issues the next waiting event, if none is being saved.
    pub(super) fn pump(&mut self) {
        while !self.creator.busy && self.may_issue_seq() {
            let Some(job) = self.creator.queue.pop_front() else {
                return;
            };
            let event = match &job.what {
                What::Identity => match &self.signer {
                    Some(s) => s.identity_event(),
                    None => continue,
                },
                What::Payload(p) => {
                    let event = self.issue(p.clone());
                    let (size, limit) = (event.encoded_len(), self.config.limits.max_event_bytes());
                    if size > limit {
                        self.done(
                            job.ticket,
                            Done::Created(Err(CreateError::TooLarge { size, limit })),
                        );
                        continue;
                    }
                    event
                }
            };
            let save = SaveId(self.next_id());
            self.creator.busy = true;
            self.out.push(Output::Save {
                save,
                events: vec![event.clone()],
                own: true,
                from: crate::protocol::event::NodeId::NIL,
            });
            self.saves
                .insert(save, SaveFor::Own(OwnSave { job, event }));
        }
    }

    /// A new own event: the next seq, an HLC past all seen (and not before now), an id and time from
    /// the engine's clock and generator, signed.
    fn issue(&mut self, payload: Bytes) -> Event {
        let mut random = [0u8; 10];
        self.rng.fill_bytes(&mut random);
        let id = uuid::Builder::from_unix_timestamp_millis(self.now, &random).into_uuid();
        let mut event = Event {
            id,
            origin: self.id(),
            seq: self.next_seq,
            hlc: crate::protocol::hlc::Hlc::tick(self.now, self.hlc),
            created_at_ms: self.now,
            payload,
            sig: Bytes::new(),
        };
        if let Some(s) = &self.signer {
            s.sign(&mut event);
        }
        event
    }

    pub(super) fn own_saved(&mut self, own: OwnSave, verdict: Option<Verdict>) {
        self.creator.busy = false;
        let OwnSave { mut job, event } = own;
        let seq = event.seq;
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
        match verdict {
            Some(Verdict::Inserted) => {
                self.held.hold(event.origin, seq);
                self.hlc = self.hlc.max(event.hlc);
                self.stats.events_created += 1;
                self.emit(Emit::Created(event.clone()));
                match job.what {
                    What::Identity => self.done(job.ticket, Done::Started(Ok(()))),
                    What::Payload(_) => {
                        self.done(job.ticket, Done::Created(Ok(event.clone())));
                        if self.config.eager_push {
                            self.relay(vec![event], &[]);
                        }
                    }
                }
            }
            other => {
                job.attempts += 1;
                let why = format!(
                    "own seq {seq} already held ({other:?}); the store and the node disagree"
                );
                match job.what {
                    What::Identity => self.done(
                        job.ticket,
                        Done::Started(Err(CreateError::Store(
                            "own identity event already held; the store and the node disagree"
                                .into(),
                        ))),
                    ),
                    What::Payload(_) if job.attempts >= CREATE_ATTEMPTS => {
                        self.done(job.ticket, Done::Created(Err(CreateError::Store(why))))
                    }
                    What::Payload(_) => self.creator.queue.push_front(job),
                }
            }
        }
        self.pump();
    }

    pub(super) fn own_save_failed(&mut self, own: OwnSave, error: String) {
        self.creator.busy = false;
        let done = match own.job.what {
            What::Identity => Done::Started(Err(CreateError::Store(error))),
            What::Payload(_) => Done::Created(Err(CreateError::Store(error))),
        };
        self.done(own.job.ticket, done);
        self.pump();
    }
}
