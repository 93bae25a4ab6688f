//! The in-memory index of the log: where each event's record is, never the event itself.

use std::collections::{BTreeMap, HashMap};

use crate::protocol::NodeId;

use super::record::RECORD_HEADER_LEN;

/// Where one record's body is in the log. 16 bytes; `len == 0` marks an empty slot (no
/// event encodes to zero bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loc {
    /// File offset of the body.
    pub offset: u64,
    /// Body length.
    pub len: u32,
    /// The record's CRC, kept to tell a different event under a held key without a read.
    pub crc: u32,
}

impl Loc {
    fn is_held(&self) -> bool {
        self.len != 0
    }

    /// Bytes the whole record takes on disk.
    pub fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN + self.len as u64
    }
}

/// Slack allowed in the dense part before a seq goes to the sparse map.
const DENSE_SLACK: u64 = 64;

/// The records of one origin. Seqs are mostly contiguous, so most live in `dense` (indexed
/// by seq, 16 bytes each); a seq far beyond what the origin has would waste slots there and
/// goes to `sparse` instead. Every sparse key is at least `dense.len()`.
#[derive(Debug, Default)]
pub struct OriginIndex {
    dense: Vec<Loc>,
    sparse: BTreeMap<u64, Loc>,
    count: u64,
    contiguous: u64,
}

impl OriginIndex {
    /// The record of `seq`, if held.
    pub fn get(&self, seq: u64) -> Option<Loc> {
        match usize::try_from(seq).ok().and_then(|i| self.dense.get(i)) {
            Some(l) => l.is_held().then_some(*l),
            None => self.sparse.get(&seq).copied(),
        }
    }

    /// Whether `seq` may live in `dense`: slots stay at most about twice the events held,
    /// so a hostile spread of seqs cannot blow up memory.
    fn fits_dense(&self, seq: u64) -> bool {
        seq < self.count.saturating_mul(2).saturating_add(DENSE_SLACK)
    }

    fn put_dense(&mut self, seq: u64, loc: Loc) {
        // `fits_dense` bounds seq by twice the events held, which fit in memory.
        let i = seq as usize;
        if i >= self.dense.len() {
            self.dense.resize(i + 1, Loc::default());
        }
        self.dense[i] = loc;
    }

    /// Records `seq` at `loc`; false (and no change) if `seq` is held already.
    pub fn insert(&mut self, seq: u64, loc: Loc) -> bool {
        if self.get(seq).is_some() {
            return false;
        }
        if seq < self.dense.len() as u64 || self.fits_dense(seq) {
            self.put_dense(seq, loc);
        } else {
            self.sparse.insert(seq, loc);
        }
        self.count += 1;
        while let Some((&k, _)) = self.sparse.first_key_value() {
            if !self.fits_dense(k) {
                break;
            }
            if let Some((k, l)) = self.sparse.pop_first() {
                self.put_dense(k, l);
            }
        }
        while self.get(self.contiguous + 1).is_some() {
            self.contiguous += 1;
        }
        true
    }

    /// Points a held `seq` at another record (the winner of an equivocation); returns the
    /// record it pointed at, or `None` (and no change) if `seq` is not held.
    pub fn replace(&mut self, seq: u64, loc: Loc) -> Option<Loc> {
        let old = self.get(seq)?;
        match usize::try_from(seq).ok().filter(|i| *i < self.dense.len()) {
            Some(i) => self.dense[i] = loc,
            None => {
                self.sparse.insert(seq, loc);
            }
        }
        Some(old)
    }

    /// Held `(seq, loc)` with `seq >= from`, in seq order.
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = (u64, Loc)> + '_ {
        let start = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(self.dense.len());
        self.dense[start..]
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_held())
            .map(move |(i, l)| ((start + i) as u64, *l))
            .chain(self.sparse.range(from..).map(|(k, l)| (*k, *l)))
    }

    /// Events held.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Highest seq held contiguously from 1.
    pub fn contiguous(&self) -> u64 {
        self.contiguous
    }

    /// Highest seq held, gaps or not (0 if none).
    pub fn latest(&self) -> u64 {
        match self.sparse.last_key_value() {
            Some((k, _)) => *k,
            None => self.dense.len().saturating_sub(1) as u64,
        }
    }

    fn shrink(&mut self) {
        self.dense.shrink_to_fit();
    }

    /// Heap bytes this index holds (capacity, not just length), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        // A BTreeMap entry costs about its key and value plus a share of node overhead.
        self.dense.capacity() * size_of::<Loc>() + self.sparse.len() * 48
    }
}

/// The facts about one event that the index keeps.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The event's origin.
    pub origin: NodeId,
    /// The event's seq.
    pub seq: u64,
    /// The event's hybrid logical clock ([`crate::protocol::hlc`]).
    pub hlc: u64,
    /// The event's creation time.
    pub created_at_ms: u64,
    /// Where its record is.
    pub loc: Loc,
    /// It won an equivocation over the record held under its key, which it replaces.
    pub replaces: bool,
}

/// Every record of the store by origin and seq, and the figures `stats()` reports.
#[derive(Debug, Default)]
pub struct Index {
    /// Per origin.
    pub origins: HashMap<NodeId, OriginIndex>,
    /// Events held.
    pub total: u64,
    /// Bytes their records take in the log.
    pub record_bytes: u64,
    /// Earliest `created_at_ms` held.
    pub oldest_ms: Option<u64>,
    /// Latest `created_at_ms` held.
    pub newest_ms: Option<u64>,
    /// Highest HLC held.
    pub max_hlc: u64,
    /// The commit sequence: every record made readable, in the order it was (log order).
    /// A record that replaces a held event is pushed here too, so followers see it.
    pub committed: Vec<Loc>,
    /// Written but not yet durable: invisible to readers, but known to the writer so a
    /// second copy of an event in flight is still a duplicate.
    pending: HashMap<(NodeId, u64), Loc>,
}

impl Index {
    /// The record of `(origin, seq)`, if held.
    pub fn get(&self, origin: &NodeId, seq: u64) -> Option<Loc> {
        self.origins.get(origin).and_then(|o| o.get(seq))
    }

    /// The record of `(origin, seq)`, in flight or held: an in-flight record is newer (it
    /// may replace the held one).
    pub fn held(&self, origin: &NodeId, seq: u64) -> Option<Loc> {
        self.pending
            .get(&(*origin, seq))
            .copied()
            .or_else(|| self.get(origin, seq))
    }

    /// Notes a record written but not yet durable.
    pub fn add_pending(&mut self, origin: NodeId, seq: u64, loc: Loc) {
        self.pending.insert((origin, seq), loc);
    }

    /// Makes a pending record visible, now that it is durable.
    pub fn publish(&mut self, e: &Entry) {
        // A later pending record of this key (a replacement written since) stays pending.
        if self.pending.get(&(e.origin, e.seq)) == Some(&e.loc) {
            self.pending.remove(&(e.origin, e.seq));
        }
        if !self.insert(e) && e.replaces {
            self.replace(e);
        }
    }

    /// Points a held key at the record of `e` (the winner of an equivocation).
    pub fn replace(&mut self, e: &Entry) {
        let Some(origin) = self.origins.get_mut(&e.origin) else {
            return;
        };
        if let Some(old) = origin.replace(e.seq, e.loc) {
            self.record_bytes = self.record_bytes - old.record_len() + e.loc.record_len();
            self.max_hlc = self.max_hlc.max(e.hlc);
            // Followers of the commit sequence see the winner as a new record.
            self.committed.push(e.loc);
        }
    }

    /// Records an event; false (and no change) if its key is held already.
    pub fn insert(&mut self, e: &Entry) -> bool {
        if !self
            .origins
            .entry(e.origin)
            .or_default()
            .insert(e.seq, e.loc)
        {
            return false;
        }
        self.committed.push(e.loc);
        self.total += 1;
        self.record_bytes += e.loc.record_len();
        self.max_hlc = self.max_hlc.max(e.hlc);
        let t = e.created_at_ms;
        self.oldest_ms = Some(self.oldest_ms.map_or(t, |o| o.min(t)));
        self.newest_ms = Some(self.newest_ms.map_or(t, |n| n.max(t)));
        true
    }

    /// Gives back the slack left by growing during the scan.
    pub fn shrink(&mut self) {
        self.origins.values_mut().for_each(OriginIndex::shrink);
        self.origins.shrink_to_fit();
        self.committed.shrink_to_fit();
    }

    /// Heap bytes the index holds, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.origins.capacity() * (size_of::<NodeId>() + size_of::<OriginIndex>() + 8)
            + self.committed.capacity() * size_of::<Loc>()
            + self
                .origins
                .values()
                .map(OriginIndex::heap_bytes)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(n: u64) -> Loc {
        Loc {
            offset: n * 100,
            len: 10,
            crc: n as u32,
        }
    }

    #[test]
    fn loc_is_sixteen_bytes() {
        assert_eq!(size_of::<Loc>(), 16);
    }

    #[test]
    fn contiguous_latest_and_duplicates() {
        let mut o = OriginIndex::default();
        assert!(o.insert(1, loc(1)));
        assert!(o.insert(2, loc(2)));
        assert!(o.insert(4, loc(4)));
        assert!(!o.insert(2, loc(9)));
        assert_eq!(o.get(2), Some(loc(2)));
        assert_eq!((o.contiguous(), o.latest(), o.count()), (2, 4, 3));
        assert!(o.insert(3, loc(3)));
        assert_eq!(o.contiguous(), 4);
        assert_eq!(o.get(5), None);
    }

    #[test]
    fn far_seqs_go_sparse_and_come_back_when_the_gap_fills() {
        let mut o = OriginIndex::default();
        assert!(o.insert(1_000_000, loc(7)));
        assert!(o.insert(u64::MAX, loc(8)));
        assert!(o.dense.len() < 1000, "a far seq must not allocate slots");
        assert_eq!(o.latest(), u64::MAX);
        for s in 1..=600_000 {
            o.insert(s, loc(s));
        }
        // Dense has grown past the once-far seq, which moved over; the sparse order holds.
        assert_eq!(o.sparse.len(), 1);
        assert_eq!(o.get(1_000_000), Some(loc(7)));
        let seqs: Vec<u64> = o.iter_from(599_999).map(|(s, _)| s).collect();
        assert_eq!(seqs, vec![599_999, 600_000, 1_000_000, u64::MAX]);
        assert_eq!(o.contiguous(), 600_000);
        assert_eq!(o.count(), 600_002);
    }

    #[test]
    fn the_commit_sequence_keeps_insertion_order_and_skips_refused_keys() {
        let mut index = Index::default();
        let entry = |origin: u128, seq: u64, n: u64| Entry {
            origin: NodeId::from_u128(origin),
            seq,
            hlc: seq,
            created_at_ms: 0,
            replaces: false,
            loc: loc(n),
        };
        assert!(index.insert(&entry(1, 2, 1)));
        assert!(index.insert(&entry(2, 1, 2)));
        assert!(!index.insert(&entry(1, 2, 3)));
        assert!(index.insert(&entry(1, 1, 4)));
        assert_eq!(index.committed, vec![loc(1), loc(2), loc(4)]);
    }

    #[test]
    fn seq_zero_is_held_but_not_contiguous() {
        let mut o = OriginIndex::default();
        assert!(o.insert(0, loc(0)));
        assert_eq!((o.contiguous(), o.latest(), o.count()), (0, 0, 1));
        assert_eq!(o.iter_from(0).count(), 1);
        assert_eq!(o.iter_from(1).count(), 0);
    }
}
