//! The exchange logic, free of I/O: what to ask for, what to send, and where to cut.
//!
//! A driver (the node, or the simulator) fetches events from its store for each [`Want`]
//! and feeds them to a [`Batch`], which stops at the first event that would break either
//! limit. Because each origin's events go out in seq order and the receiver's clock only
//! covers events held contiguously from 1, a cut batch is always safe: the next exchange
//! resumes exactly where this one stopped.

use super::clock::VectorClock;
use super::codec::encoded_len;
use super::event::{Event, NodeId};
use super::message::{MAX_DIGEST, Message};
use super::runs;

/// Bytes reserved in every message for what a transport wraps around it (frame tag,
/// exchange id). Transports must not add more than this.
pub const TRANSPORT_RESERVE: usize = 32;

/// The two limits that cut a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many events in one message.
    pub max_events: usize,
    /// At most this many bytes in one message, transport reserve included.
    pub max_bytes: usize,
}

impl Limits {
    /// The largest encoded event accepted at creation: half a message, so that an event
    /// always fits beside the envelope and a vector clock of thousands of origins.
    pub fn max_event_bytes(&self) -> usize {
        self.max_bytes / 2
    }
}

/// Phase 1: our entries for `origins` (in increasing id order, at most [`MAX_DIGEST`]).
pub fn digest(from: NodeId, clock: &VectorClock, origins: &[NodeId]) -> Message {
    Message::Digest {
        from,
        entries: origins.iter().map(|o| (*o, clock.get(o))).collect(),
    }
}

/// How many origins one digest of ours asks about under `limits`: [`MAX_DIGEST`], or
/// fewer when a quarter of a message could not hold them (each entry is at most
/// [`DIGEST_ENTRY_MAX`] bytes), so the response's clock leaves room for events.
pub fn digest_page(limits: Limits) -> usize {
    (limits.max_bytes / 4 / DIGEST_ENTRY_MAX).clamp(1, MAX_DIGEST)
}

/// The largest encoding of one digest entry: a 16-byte id with its length, a u64 varint.
pub const DIGEST_ENTRY_MAX: usize = 17 + 9;

/// A peer's digest that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// More than [`MAX_DIGEST`] entries.
    #[error("digest of {0} entries, over the limit of {MAX_DIGEST}")]
    TooLong(usize),
    /// Entries not in strictly increasing id order.
    #[error("digest entries out of order")]
    Order,
}

/// Checks a peer's digest entries.
pub fn check_digest(entries: &[(NodeId, u64)]) -> Result<(), DigestError> {
    if entries.len() > MAX_DIGEST {
        return Err(DigestError::TooLong(entries.len()));
    }
    if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(DigestError::Order);
    }
    Ok(())
}

/// Our entries for the origins a digest asks about: the clock a response carries.
pub fn entries_for(ours: &VectorClock, entries: &[(NodeId, u64)]) -> VectorClock {
    entries.iter().map(|(o, _)| (*o, ours.get(o))).collect()
}

/// For each origin of `among` where `ours` is ahead of `theirs`, what `theirs` lacks,
/// rotated like [`wants`].
pub fn wants_among(
    ours: &VectorClock,
    theirs: &VectorClock,
    among: &[NodeId],
    rotation: usize,
) -> Vec<Want> {
    let mut out: Vec<Want> = among
        .iter()
        .filter(|o| ours.get(o) > theirs.get(o))
        .map(|o| Want {
            origin: *o,
            after: theirs.get(o),
        })
        .collect();
    if !out.is_empty() {
        let k = rotation % out.len();
        out.rotate_left(k);
    }
    out
}

/// Events the other side lacks from one origin: every event with `seq > after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// The origin.
    pub origin: NodeId,
    /// The highest seq the other side holds contiguously.
    pub after: u64,
}

/// For each origin where `ours` is ahead of `theirs`, what `theirs` lacks.
///
/// The origins come in a rotated order starting at `rotation % n`, so that when batches are
/// cut, successive exchanges serve different origins first instead of starving the last.
pub fn wants(ours: &VectorClock, theirs: &VectorClock, rotation: usize) -> Vec<Want> {
    let mut out: Vec<Want> = ours
        .iter()
        .filter(|(origin, seq)| *seq > theirs.get(origin))
        .map(|(origin, _)| Want {
            origin,
            after: theirs.get(&origin),
        })
        .collect();
    if !out.is_empty() {
        let k = rotation % out.len();
        out.rotate_left(k);
    }
    out
}

/// A message body under construction, cut by count and by exact encoded size.
#[derive(Debug)]
pub struct Batch {
    limits: Limits,
    envelope: usize,
    budget: usize,
    used: usize,
    events: Vec<Event>,
    cut: bool,
}

impl Batch {
    /// A batch for phase 2: the envelope holds our clock.
    pub fn for_response(from: NodeId, clock: &VectorClock, limits: Limits) -> Batch {
        let envelope = encoded_len(&Message::DigestResponse {
            from,
            events: Vec::new(),
            clock: clock.clone(),
        });
        Batch::with_envelope(envelope, limits)
    }

    /// A batch for phase 3 or an eager push.
    pub fn for_push(from: NodeId, limits: Limits) -> Batch {
        let envelope = encoded_len(&Message::Push {
            from,
            events: Vec::new(),
        });
        Batch::with_envelope(envelope, limits)
    }

    fn with_envelope(envelope: usize, limits: Limits) -> Batch {
        // The event count's varint grows from 1 byte (empty) to at most 9.
        let fixed = envelope + 8 + TRANSPORT_RESERVE;
        Batch {
            limits,
            envelope: envelope + 8,
            budget: limits.max_bytes.saturating_sub(fixed),
            used: 0,
            events: Vec::new(),
            cut: false,
        }
    }

    /// How many more events the count limit allows.
    pub fn remaining_events(&self) -> usize {
        if self.cut {
            0
        } else {
            self.limits.max_events.saturating_sub(self.events.len())
        }
    }

    /// Adds `event` if it fits; otherwise marks the batch cut and returns false.
    ///
    /// The size charged is exact but for the run counts' varints, which are charged at
    /// their maximum: the message never exceeds the limit.
    pub fn push(&mut self, event: Event) -> bool {
        if self.remaining_events() == 0 {
            self.cut = true;
            return false;
        }
        let size = match self.events.last() {
            Some(prev) if runs::continues(prev, &event) => runs::body_len_after(prev, &event),
            _ => runs::run_start_len(&event),
        };
        if self.used + size > self.budget {
            self.cut = true;
            return false;
        }
        self.used += size;
        self.events.push(event);
        true
    }

    /// True once an event was refused: the receiver will need another exchange.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// True if no more events can be added.
    pub fn is_full(&self) -> bool {
        self.remaining_events() == 0
    }

    /// Events added so far.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when no event was added.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Encoded bytes of the events added so far (an upper bound).
    pub fn event_bytes(&self) -> usize {
        self.used
    }

    /// The size of the finished message, transport reserve excluded (an upper bound).
    pub fn wire_len(&self) -> usize {
        self.envelope + self.used
    }

    /// Phase 2 message.
    pub fn into_response(self, from: NodeId, clock: VectorClock) -> Message {
        Message::DigestResponse {
            from,
            events: self.events,
            clock,
        }
    }

    /// Phase 3 or eager push message.
    pub fn into_push(self, from: NodeId) -> Message {
        Message::Push {
            from,
            events: self.events,
        }
    }

    /// The events, without an envelope.
    pub fn into_events(self) -> Vec<Event> {
        self.events
    }
}

/// Fills a batch from `wants`, fetching each origin's events with `fetch(origin, after,
/// limit)` (in seq order). The synchronous twin of the node's async loop, used by the
/// simulator and tests.
pub fn fill<F>(batch: &mut Batch, wants: &[Want], mut fetch: F)
where
    F: FnMut(NodeId, u64, usize) -> Vec<Event>,
{
    for want in wants {
        let limit = batch.remaining_events();
        if limit == 0 {
            return;
        }
        for event in fetch(want.origin, want.after, limit) {
            if !batch.push(event) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::collections::BTreeMap;
    use uuid::Uuid;

    fn ev(origin: u128, seq: u64, len: usize) -> Event {
        Event {
            id: Uuid::from_u128((origin << 64) | seq as u128),
            origin: NodeId::from_u128(origin),
            seq,
            hlc: seq,
            created_at_ms: 0,
            payload: Bytes::from(vec![b'x'; len]),
            sig: bytes::Bytes::new(),
        }
    }

    fn store(origins: u128, per: u64, len: usize) -> BTreeMap<(NodeId, u64), Event> {
        let mut m = BTreeMap::new();
        for o in 1..=origins {
            for s in 1..=per {
                m.insert((NodeId::from_u128(o), s), ev(o, s, len));
            }
        }
        m
    }

    fn fetcher(
        m: &BTreeMap<(NodeId, u64), Event>,
    ) -> impl FnMut(NodeId, u64, usize) -> Vec<Event> + '_ {
        |o, after, limit| {
            m.range((o, after + 1)..=(o, u64::MAX))
                .take(limit)
                .map(|(_, e)| e.clone())
                .collect()
        }
    }

    #[test]
    fn wants_lists_only_origins_where_we_are_ahead() {
        let a = NodeId::from_u128(1);
        let b = NodeId::from_u128(2);
        let c = NodeId::from_u128(3);
        let ours: VectorClock = [(a, 5), (b, 2), (c, 1)].into_iter().collect();
        let theirs: VectorClock = [(a, 3), (b, 4)].into_iter().collect();
        let w = wants(&ours, &theirs, 0);
        assert_eq!(
            w,
            vec![
                Want {
                    origin: a,
                    after: 3
                },
                Want {
                    origin: c,
                    after: 0
                }
            ]
        );
        assert_eq!(wants(&ours, &theirs, 1)[0].origin, c);
        assert!(wants(&theirs.merged(&ours), &ours, 0).len() == 1);
    }

    #[test]
    fn batch_is_cut_by_count() {
        let m = store(2, 30, 10);
        let limits = Limits {
            max_events: 10,
            max_bytes: 1 << 20,
        };
        let mut b = Batch::for_push(NodeId::from_u128(9), limits);
        let w = wants(
            &m.keys().map(|(o, _)| (*o, 30)).collect(),
            &VectorClock::new(),
            0,
        );
        fill(&mut b, &w, fetcher(&m));
        assert_eq!(b.len(), 10);
        assert!(b.is_full());
    }

    #[test]
    fn batch_is_cut_by_exact_size_and_message_fits() {
        let m = store(3, 50, 200);
        let limits = Limits {
            max_events: 1000,
            max_bytes: 4096,
        };
        let clock: VectorClock = (1..=3).map(|o| (NodeId::from_u128(o), 50)).collect();
        let from = NodeId::from_u128(9);
        let mut b = Batch::for_response(from, &clock, limits);
        fill(&mut b, &wants(&clock, &VectorClock::new(), 0), fetcher(&m));
        assert!(b.is_cut());
        let n = b.len();
        assert!(n > 5, "{n}");
        let bound = b.wire_len();
        let msg = b.into_response(from, clock);
        assert!(msg.encoded_len() <= bound);
        let len = msg.encoded_len();
        assert!(len + TRANSPORT_RESERVE <= 4096, "{len}");
        // The cut is tight: what is left is less than one more event and the slack charged
        // for varints (outer count, and one count per run of the 3 origins).
        let left = 4096 - TRANSPORT_RESERVE - len;
        assert!(left < ev(1, 1, 200).body_len() + 8 + 9 * 3, "{left}");
    }

    #[test]
    fn a_cut_batch_keeps_each_origin_contiguous() {
        let m = store(2, 20, 10);
        let limits = Limits {
            max_events: 25,
            max_bytes: 1 << 20,
        };
        let mut b = Batch::for_push(NodeId::from_u128(9), limits);
        let ours: VectorClock = (1..=2).map(|o| (NodeId::from_u128(o), 20)).collect();
        fill(&mut b, &wants(&ours, &VectorClock::new(), 0), fetcher(&m));
        let mut next: BTreeMap<NodeId, u64> = BTreeMap::new();
        for e in b.into_events() {
            let n = next.entry(e.origin).or_insert(1);
            assert_eq!(e.seq, *n);
            *n += 1;
        }
    }

    #[test]
    fn an_event_of_max_event_bytes_fits_a_response_beside_a_big_clock() {
        let limits = Limits {
            max_events: 100,
            max_bytes: 1 << 20,
        };
        let clock: VectorClock = (1..=5000)
            .map(|o| (NodeId::from_u128(o), 1_000_000))
            .collect();
        let mut b = Batch::for_response(NodeId::from_u128(1), &clock, limits);
        let mut e = ev(1, 1, 0);
        let overhead = e.encoded_len();
        e.payload = Bytes::from(vec![0u8; limits.max_event_bytes() - overhead - 8]);
        assert!(e.encoded_len() <= limits.max_event_bytes());
        assert!(b.push(e));
    }
}
