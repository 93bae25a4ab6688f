//! The wire shape of an event list: runs of consecutive seqs from one origin.
//!
//! Events travel per origin in seq order, so a list is stored as runs `{ origin, first_seq,
//! events }` whose events omit `origin` and `seq`, and whose `hlc` and `created_at_ms`
//! after the first are the zigzag-encoded wrapping difference from the event before
//! ([`delta`]): an origin's events are stamped close together, so each costs a byte or
//! three instead of nine. That saves ~35 bytes per event (a 100-byte chat message costs
//! ~122 bytes on the wire instead of ~155, plus 97 for a seal), and decoding cannot
//! produce two events with one `(origin, seq)` inside a run. Any u64 values round-trip:
//! the arithmetic wraps, it never fails.

use bytes::Bytes;
use serde::de::Error as _;
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::codec::varint_len;
use super::event::{Event, NodeId, UUID_LEN};

/// Bytes a run adds before its events, at most: origin, first seq, and the count.
pub const RUN_HEADER_MAX: usize = UUID_LEN + 9 + 9;

/// The bytes a new run for `event` adds, at most (header and the event's body).
pub fn run_start_len(event: &Event) -> usize {
    UUID_LEN + varint_len(event.seq) + 9 + event.body_len()
}

/// The encoded size of `event`'s body inside a run, right after `prev`.
pub fn body_len_after(prev: &Event, event: &Event) -> usize {
    event.body_len() - varint_len(event.hlc) - varint_len(event.created_at_ms)
        + varint_len(delta(prev.hlc, event.hlc))
        + varint_len(delta(prev.created_at_ms, event.created_at_ms))
}

/// `next - prev` as a zigzag-encoded wrapping difference: small either way.
pub fn delta(prev: u64, next: u64) -> u64 {
    let d = next.wrapping_sub(prev) as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

/// The value whose [`delta`] from `prev` is `z`.
pub fn undelta(prev: u64, z: u64) -> u64 {
    let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
    prev.wrapping_add(d as u64)
}

/// Whether `next` continues the run that ends with `prev`.
pub fn continues(prev: &Event, next: &Event) -> bool {
    prev.origin == next.origin && prev.seq.checked_add(1) == Some(next.seq)
}

struct RunRef<'a>(&'a [Event]);

/// An event's body, after `prev` in its run (`None` for the run's first).
struct BodyRef<'a>(&'a Event, Option<&'a Event>);

impl Serialize for BodyRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let (hlc, created) = match self.1 {
            Some(p) => (delta(p.hlc, e.hlc), delta(p.created_at_ms, e.created_at_ms)),
            None => (e.hlc, e.created_at_ms),
        };
        let mut st = s.serialize_struct("Body", 5)?;
        st.serialize_field("id", &e.id)?;
        st.serialize_field("hlc", &hlc)?;
        st.serialize_field("created_at_ms", &created)?;
        st.serialize_field("payload", &e.payload)?;
        st.serialize_field("sig", &e.sig)?;
        st.end()
    }
}

struct BodiesRef<'a>(&'a [Event]);

impl Serialize for BodiesRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        let mut prev = None;
        for e in self.0 {
            seq.serialize_element(&BodyRef(e, prev))?;
            prev = Some(e);
        }
        seq.end()
    }
}

impl Serialize for RunRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let first = &self.0[0];
        let mut st = s.serialize_struct("Run", 3)?;
        st.serialize_field("origin", &first.origin)?;
        st.serialize_field("first_seq", &first.seq)?;
        st.serialize_field("events", &BodiesRef(self.0))?;
        st.end()
    }
}

#[derive(Deserialize)]
struct Body {
    id: Uuid,
    hlc: u64,
    created_at_ms: u64,
    payload: Bytes,
    sig: Bytes,
}

#[derive(Deserialize)]
struct Run {
    origin: NodeId,
    first_seq: u64,
    events: Vec<Body>,
}

/// Serializes `events` as runs (for `#[serde(with)]`).
pub fn serialize<S: Serializer>(events: &[Event], s: S) -> Result<S::Ok, S::Error> {
    let mut bounds = Vec::new();
    let mut start = 0;
    for i in 1..=events.len() {
        if i == events.len() || !continues(&events[i - 1], &events[i]) {
            bounds.push((start, i));
            start = i;
        }
    }
    let mut seq = s.serialize_seq(Some(bounds.len()))?;
    for (a, b) in bounds {
        seq.serialize_element(&RunRef(&events[a..b]))?;
    }
    seq.end()
}

/// Deserializes runs back into events (for `#[serde(with)]`).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Event>, D::Error> {
    let runs = Vec::<Run>::deserialize(d)?;
    let mut out = Vec::with_capacity(runs.iter().map(|r| r.events.len()).sum());
    for run in runs {
        let mut prev: Option<(u64, u64)> = None;
        for (i, body) in run.events.into_iter().enumerate() {
            let seq = run
                .first_seq
                .checked_add(i as u64)
                .ok_or_else(|| D::Error::custom("a run's seq overflows u64"))?;
            let (hlc, created_at_ms) = match prev {
                Some((h, c)) => (undelta(h, body.hlc), undelta(c, body.created_at_ms)),
                None => (body.hlc, body.created_at_ms),
            };
            prev = Some((hlc, created_at_ms));
            out.push(Event {
                id: body.id,
                origin: run.origin,
                seq,
                hlc,
                created_at_ms,
                payload: body.payload,
                sig: body.sig,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::protocol::codec::{decode, encode};
    use crate::protocol::{Event, Message, NodeId};
    use bytes::Bytes;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn ev(origin: u128, seq: u64, len: usize) -> Event {
        Event {
            id: Uuid::from_u128(seq as u128 * 31 + origin),
            origin: NodeId::from_u128(origin),
            seq,
            hlc: seq + origin as u64,
            created_at_ms: 1_700_000_000_000 + seq,
            payload: Bytes::from(vec![b'p'; len]),
            sig: Bytes::from(vec![b's'; (len % 3) * 32]),
        }
    }

    proptest! {
        #[test]
        fn any_difference_round_trips(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(super::undelta(a, super::delta(a, b)), b);
        }

        #[test]
        fn events_with_any_clock_values_round_trip(
            stamps in proptest::collection::vec((any::<u64>(), any::<u64>()), 1..20),
        ) {
            let events: Vec<Event> = stamps
                .iter()
                .enumerate()
                .map(|(i, &(hlc, created_at_ms))| Event { hlc, created_at_ms, ..ev(1, i as u64 + 1, 3) })
                .collect();
            let msg = Message::Push { from: NodeId::from_u128(9), events };
            let bytes = encode(&msg).unwrap();
            prop_assert_eq!(bytes.len(), msg.encoded_len());
            let back: Message = decode(&bytes, 1 << 20).unwrap();
            prop_assert_eq!(back, msg);
        }

        #[test]
        fn any_event_list_round_trips(keys in proptest::collection::vec((1u128..4, 1u64..20, 0usize..40), 0..40)) {
            let events: Vec<Event> = keys.iter().map(|&(o, s, l)| ev(o, s, l)).collect();
            let msg = Message::Push { from: NodeId::from_u128(9), events };
            let bytes = encode(&msg).unwrap();
            prop_assert_eq!(bytes.len(), msg.encoded_len());
            let back: Message = decode(&bytes, 1 << 20).unwrap();
            prop_assert_eq!(back, msg);
        }
    }

    #[test]
    fn runs_make_100_byte_events_cost_under_125_bytes_plus_the_seal() {
        for (sig, budget) in [(0usize, 125.0), (96, 222.0)] {
            let events: Vec<Event> = (1..=1000)
                .map(|s| Event {
                    sig: Bytes::from(vec![1u8; sig]),
                    ..ev(1, s, 100)
                })
                .collect();
            let msg = Message::Push {
                from: NodeId::from_u128(9),
                events,
            };
            let per_event = msg.encoded_len() as f64 / 1000.0;
            assert!(per_event < budget, "{sig}: {per_event}");
        }
    }

    #[test]
    fn a_run_whose_seq_overflows_is_refused() {
        // Mirrors of the wire shapes, to write a run the encoder itself never produces.
        #[derive(serde::Serialize)]
        struct Body {
            id: Uuid,
            hlc: u64,
            created_at_ms: u64,
            payload: Bytes,
            sig: Bytes,
        }
        #[derive(serde::Serialize)]
        struct Run {
            origin: NodeId,
            first_seq: u64,
            events: Vec<Body>,
        }
        #[derive(serde::Serialize)]
        #[allow(dead_code)]
        enum Mirror {
            Digest,
            DigestResponse,
            Push { from: NodeId, events: Vec<Run> },
        }
        let body = || Body {
            id: Uuid::nil(),
            hlc: 1,
            created_at_ms: 1,
            payload: Bytes::from_static(b"x"),
            sig: Bytes::new(),
        };
        let run = |first_seq, n| Run {
            origin: NodeId::from_u128(1),
            first_seq,
            events: (0..n).map(|_| body()).collect(),
        };
        let ok = encode(&Mirror::Push {
            from: NodeId::from_u128(9),
            events: vec![run(u64::MAX - 1, 2)],
        })
        .unwrap();
        let back: Message = decode(&ok, 1 << 20).unwrap();
        assert_eq!(back.events().last().map(|e| e.seq), Some(u64::MAX));
        let bad = encode(&Mirror::Push {
            from: NodeId::from_u128(9),
            events: vec![run(u64::MAX - 1, 3)],
        })
        .unwrap();
        assert!(decode::<Message>(&bad, 1 << 20).is_err());
    }
}
