//! What the store keeps in memory besides the database: per origin, the contiguous clock
//! entry and the seqs held beyond it; and the figures `stats()` reports.
//!
//! These are asked for on every exchange, so they are answered without a query. They are
//! rebuilt at open from one scan of the primary key and a few columns (no payloads), and
//! updated only after a transaction commits, so they never claim an event the database
//! could still lose.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::protocol::codec::varint_len;
use crate::protocol::{NodeId, VectorClock};
use crate::store::StoreStats;

/// One held event, as far as the figures need it.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    pub origin: NodeId,
    pub seq: u64,
    pub hlc: u64,
    pub created_at_ms: u64,
    /// Its encoded size ([`crate::protocol::Event::encoded_len`]).
    pub encoded_len: u64,
}

/// The size of an event's encoding from its field values and blob lengths, without the
/// blobs: the formula of [`crate::protocol::Event::encoded_len`].
pub fn encoded_len(seq: u64, hlc: u64, created_at_ms: u64, payload: u64, sig: u64) -> u64 {
    const UUID_LEN: usize = 17;
    (2 * UUID_LEN
        + varint_len(seq)
        + varint_len(hlc)
        + varint_len(created_at_ms)
        + varint_len(payload)
        + varint_len(sig)) as u64
        + payload
        + sig
}

#[derive(Debug, Default)]
struct Origin {
    /// Highest seq held contiguously from 1.
    contiguous: u64,
    /// Seqs held above `contiguous + 1` (a gap lies below each).
    beyond: BTreeSet<u64>,
    count: u64,
    latest: u64,
}

/// The in-memory figures.
#[derive(Debug, Default)]
pub struct State {
    origins: HashMap<NodeId, Origin>,
    total: u64,
    size_bytes: u64,
    oldest_ms: Option<u64>,
    newest_ms: Option<u64>,
    max_hlc: u64,
    /// The commit sequence: each newly held key, in the order it was added (at open, the
    /// table's key order).
    committed: Vec<(NodeId, u64)>,
}

impl State {
    /// Up to `limit` keys of the commit sequence from `cursor` on.
    pub fn committed(&self, cursor: u64, limit: usize) -> Vec<(NodeId, u64)> {
        let start = usize::try_from(cursor)
            .unwrap_or(usize::MAX)
            .min(self.committed.len());
        self.committed[start..]
            .iter()
            .take(limit)
            .copied()
            .collect()
    }

    /// The end of the commit sequence.
    pub fn committed_len(&self) -> u64 {
        self.committed.len() as u64
    }

    /// Counts one newly held event (the caller knows it is new).
    pub fn add(&mut self, h: Held) {
        self.committed.push((h.origin, h.seq));
        let o = self.origins.entry(h.origin).or_default();
        o.count += 1;
        o.latest = o.latest.max(h.seq);
        if h.seq == o.contiguous + 1 {
            o.contiguous = h.seq;
            while o.beyond.remove(&(o.contiguous + 1)) {
                o.contiguous += 1;
            }
        } else if h.seq > o.contiguous {
            o.beyond.insert(h.seq);
        }
        self.total += 1;
        self.size_bytes += h.encoded_len;
        self.max_hlc = self.max_hlc.max(h.hlc);
        let t = h.created_at_ms;
        self.oldest_ms = Some(self.oldest_ms.map_or(t, |v| v.min(t)));
        self.newest_ms = Some(self.newest_ms.map_or(t, |v| v.max(t)));
    }

    /// Counts `after` in place of `before` (same key): followers of the commit sequence see
    /// the winner as a new record, as every store shows a replaced equivocation.
    pub fn replace(&mut self, before: Held, after: Held) {
        self.committed.push((after.origin, after.seq));
        self.size_bytes = self.size_bytes.saturating_sub(before.encoded_len) + after.encoded_len;
        self.max_hlc = self.max_hlc.max(after.hlc);
        let t = after.created_at_ms;
        self.oldest_ms = Some(self.oldest_ms.map_or(t, |v| v.min(t)));
        self.newest_ms = Some(self.newest_ms.map_or(t, |v| v.max(t)));
    }

    /// Whether `(origin, seq)` is held.
    pub fn has(&self, origin: NodeId, seq: u64) -> bool {
        self.origins
            .get(&origin)
            .is_some_and(|o| (seq >= 1 && seq <= o.contiguous) || o.beyond.contains(&seq))
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn count_per_node(&self) -> BTreeMap<NodeId, u64> {
        self.origins.iter().map(|(id, o)| (*id, o.count)).collect()
    }

    pub fn clock(&self) -> VectorClock {
        let mut c = VectorClock::new();
        for (id, o) in &self.origins {
            if o.contiguous > 0 {
                c.set(*id, o.contiguous);
            }
        }
        c
    }

    pub fn latest_seq(&self, origin: NodeId) -> u64 {
        self.origins.get(&origin).map_or(0, |o| o.latest)
    }

    pub fn max_hlc(&self) -> u64 {
        self.max_hlc
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            total_events: self.total,
            unique_nodes: self.origins.len() as u64,
            size_bytes: self.size_bytes,
            oldest_ms: self.oldest_ms,
            newest_ms: self.newest_ms,
            dropped_records: 0,
            dropped_bytes: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Event;
    use bytes::Bytes;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_size_formula_is_the_events(seq: u64, hlc: u64, created: u64, p in 0usize..70_000, s in 0usize..300) {
            let e = Event {
                id: uuid::Uuid::now_v7(),
                origin: NodeId::random(),
                seq,
                hlc,
                created_at_ms: created,
                payload: Bytes::from(vec![7u8; p]),
                sig: Bytes::from(vec![1u8; s]),
            };
            prop_assert_eq!(encoded_len(seq, hlc, created, p as u64, s as u64), e.encoded_len() as u64);
        }
    }

    #[test]
    fn the_clock_closes_gaps_in_any_order() {
        let o = NodeId::from_u128(1);
        let mut s = State::default();
        for seq in [3, 1, 4, 2] {
            s.add(Held {
                origin: o,
                seq,
                hlc: seq,
                created_at_ms: seq,
                encoded_len: 1,
            });
        }
        assert_eq!(s.clock().get(&o), 4);
        assert!(s.has(o, 4) && !s.has(o, 5) && !s.has(o, 0));
        assert_eq!(s.latest_seq(o), 4);
    }
}
