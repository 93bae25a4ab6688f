//! Which chunk to ask of which peer: the rules of fetching one blob from several peers.
//!
//! The plan knows the manifest, the chunks already held and the peers that may hold the
//! blob. [`FetchPlan::next_request`] hands out a missing chunk to the usable peer with the fewest
//! requests in flight (at most `per_peer` each), so every peer that has the blob works at
//! once and a slow one gets less. A chunk that fails its hash is refused and goes back to
//! the missing ones, and its sender is struck off for this blob (it is hostile or broken:
//! [`FetchPlan::refused_from`] counts it); a peer that answers `Missing` is struck off too;
//! one whose requests fail [`MAX_FAILURES`] times in a row is dropped until it is added
//! again. Pure: the caller does the requests.

use std::collections::{BTreeMap, HashMap};

use super::{ChunkHash, Manifest, hash_chunk};
use crate::protocol::NodeId;

/// Failed requests in a row (timeouts, closed connections) after which a peer is no longer
/// asked, until [`FetchPlan::add_peer`] names it again.
pub const MAX_FAILURES: u32 = 3;

/// What became of a received chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkVerdict {
    /// It matches its hash: write it.
    Accepted,
    /// It does not: it is refused, its sender struck off, and it will be asked elsewhere.
    Refused,
    /// Not asked of this peer, or already held: ignored.
    Unexpected,
}

#[derive(Debug, Clone, Default)]
struct PeerSlot {
    in_flight: usize,
    failures: u32,
    /// Answered `Missing` or sent a bad chunk: never asked again for this blob.
    struck: bool,
    refused: u32,
}

impl PeerSlot {
    fn usable(&self) -> bool {
        !self.struck && self.failures < MAX_FAILURES
    }
}

/// The state of fetching one blob.
#[derive(Debug, Clone)]
pub struct FetchPlan {
    hashes: Vec<ChunkHash>,
    sizes: Vec<usize>,
    have: Vec<bool>,
    held_bytes: u64,
    in_flight: HashMap<u32, NodeId>,
    peers: BTreeMap<NodeId, PeerSlot>,
    per_peer: usize,
    /// Where the search for a missing chunk starts: chunks go out in order.
    cursor: u32,
}

impl FetchPlan {
    /// A plan for `manifest`, with `have[i]` true for the chunks already held (resuming),
    /// asking at most `per_peer` chunks of one peer at once.
    pub fn new(manifest: &Manifest, mut have: Vec<bool>, per_peer: usize) -> FetchPlan {
        have.resize(manifest.hashes.len(), false);
        let sizes: Vec<usize> = (0..manifest.chunks())
            .map(|i| super::chunk_len(manifest.size, i))
            .collect();
        let held_bytes = have
            .iter()
            .zip(&sizes)
            .filter(|(h, _)| **h)
            .map(|(_, s)| *s as u64)
            .sum();
        FetchPlan {
            hashes: manifest.hashes.clone(),
            sizes,
            have,
            held_bytes,
            in_flight: HashMap::new(),
            peers: BTreeMap::new(),
            per_peer: per_peer.max(1),
            cursor: 0,
        }
    }

    /// A peer that may hold the blob. Naming a dropped (failing) peer again gives it a new
    /// chance; a struck one stays struck.
    pub fn add_peer(&mut self, peer: NodeId) {
        self.peers.entry(peer).or_default().failures = 0;
    }

    /// The next request to make: a missing chunk not in flight, and the usable peer with
    /// the fewest requests in flight. `None` if every chunk is held or asked, or no peer
    /// has room.
    pub fn next_request(&mut self) -> Option<(NodeId, u32)> {
        let peer = self
            .peers
            .iter()
            .filter(|(_, s)| s.usable() && s.in_flight < self.per_peer)
            .min_by_key(|(_, s)| s.in_flight)
            .map(|(id, _)| *id)?;
        let n = self.have.len() as u32;
        let index = (0..n)
            .map(|k| (self.cursor + k) % n)
            .find(|i| !self.have[*i as usize] && !self.in_flight.contains_key(i))?;
        self.cursor = (index + 1) % n.max(1);
        self.in_flight.insert(index, peer);
        if let Some(s) = self.peers.get_mut(&peer) {
            s.in_flight += 1;
        }
        Some((peer, index))
    }

    fn settle(&mut self, peer: NodeId, index: u32) -> bool {
        if self.in_flight.get(&index) != Some(&peer) {
            return false;
        }
        self.in_flight.remove(&index);
        if let Some(s) = self.peers.get_mut(&peer) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        true
    }

    /// `peer` sent chunk `index`: checks it against its hash.
    pub fn on_chunk(&mut self, peer: NodeId, index: u32, data: &[u8]) -> ChunkVerdict {
        if !self.settle(peer, index) {
            return ChunkVerdict::Unexpected;
        }
        let i = index as usize;
        let fits = self.sizes.get(i) == Some(&data.len());
        if fits && self.hashes.get(i) == Some(&hash_chunk(data)) {
            if let Some(s) = self.peers.get_mut(&peer) {
                s.failures = 0;
            }
            self.have[i] = true;
            self.held_bytes += data.len() as u64;
            ChunkVerdict::Accepted
        } else {
            if let Some(s) = self.peers.get_mut(&peer) {
                s.struck = true;
                s.refused += 1;
            }
            self.cursor = self.cursor.min(index);
            ChunkVerdict::Refused
        }
    }

    /// `peer` does not hold the blob (or is too busy, `busy`): the chunk goes back; a peer
    /// without the blob is not asked again, a busy one is asked later.
    pub fn on_missing(&mut self, peer: NodeId, index: u32, busy: bool) {
        if self.settle(peer, index) {
            self.cursor = self.cursor.min(index);
            if let Some(s) = self.peers.get_mut(&peer) {
                if busy {
                    s.failures += 1;
                } else {
                    s.struck = true;
                }
            }
        }
    }

    /// The request for chunk `index` to `peer` failed (timeout, connection lost): the chunk
    /// goes back, and the peer is dropped after [`MAX_FAILURES`] in a row.
    pub fn on_failed(&mut self, peer: NodeId, index: u32) {
        if self.settle(peer, index) {
            self.cursor = self.cursor.min(index);
            if let Some(s) = self.peers.get_mut(&peer) {
                s.failures += 1;
            }
        }
    }

    /// Whether every chunk is held.
    pub fn is_complete(&self) -> bool {
        self.have.iter().all(|h| *h)
    }

    /// Whether the fetch cannot go on: chunks are missing, none is in flight, and no peer
    /// may be asked.
    pub fn is_stuck(&self) -> bool {
        !self.is_complete()
            && self.in_flight.is_empty()
            && !self.peers.values().any(PeerSlot::usable)
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Bytes of the chunks held.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Chunks refused from `peer` (they failed their hash).
    pub fn refused_from(&self, peer: NodeId) -> u32 {
        self.peers.get(&peer).map_or(0, |s| s.refused)
    }

    /// Which chunks are held.
    pub fn have(&self) -> &[bool] {
        &self.have
    }
}

#[cfg(test)]
mod tests {
    use super::super::CHUNK_SIZE;
    use super::*;
    use proptest::prelude::*;

    fn blob(chunks: usize) -> (Vec<u8>, Manifest) {
        let data: Vec<u8> = (0..chunks * CHUNK_SIZE - 7)
            .map(|i| (i % 253) as u8)
            .collect();
        let m = Manifest::of(&data);
        (data, m)
    }

    fn chunk(data: &[u8], i: u32) -> &[u8] {
        let start = i as usize * CHUNK_SIZE;
        &data[start..(start + CHUNK_SIZE).min(data.len())]
    }

    #[test]
    fn chunks_spread_over_peers_and_complete() {
        let (data, m) = blob(6);
        let (a, b) = (NodeId::from_u128(1), NodeId::from_u128(2));
        let mut plan = FetchPlan::new(&m, vec![], 2);
        plan.add_peer(a);
        plan.add_peer(b);
        let asked: Vec<_> = std::iter::from_fn(|| plan.next_request()).collect();
        assert_eq!(asked.len(), 4, "two per peer");
        assert_eq!(asked.iter().filter(|(p, _)| *p == a).count(), 2);
        for (p, i) in asked {
            assert_eq!(plan.on_chunk(p, i, chunk(&data, i)), ChunkVerdict::Accepted);
        }
        while let Some((p, i)) = plan.next_request() {
            assert_eq!(plan.on_chunk(p, i, chunk(&data, i)), ChunkVerdict::Accepted);
        }
        assert!(plan.is_complete());
        assert_eq!(plan.held_bytes(), m.size);
    }

    #[test]
    fn a_bad_chunk_is_refused_its_sender_struck_and_it_is_asked_elsewhere() {
        let (data, m) = blob(2);
        let (bad, good) = (NodeId::from_u128(1), NodeId::from_u128(2));
        let mut plan = FetchPlan::new(&m, vec![], 1);
        plan.add_peer(bad);
        let (p, i) = plan.next_request().unwrap();
        assert_eq!(p, bad);
        let mut corrupt = chunk(&data, i).to_vec();
        corrupt[0] ^= 1;
        assert_eq!(plan.on_chunk(bad, i, &corrupt), ChunkVerdict::Refused);
        assert_eq!(plan.refused_from(bad), 1);
        assert!(plan.is_stuck(), "the only peer is struck");
        plan.add_peer(bad);
        assert!(plan.next_request().is_none(), "struck stays struck");
        plan.add_peer(good);
        let (p, j) = plan.next_request().unwrap();
        assert_eq!((p, j), (good, i), "the refused chunk is asked again first");
        assert_eq!(
            plan.on_chunk(good, j, chunk(&data, j)),
            ChunkVerdict::Accepted
        );
        assert_eq!(
            plan.on_chunk(good, j, chunk(&data, j)),
            ChunkVerdict::Unexpected
        );
    }

    #[test]
    fn failures_drop_a_peer_and_missing_strikes_it() {
        let (_, m) = blob(3);
        let (a, b) = (NodeId::from_u128(1), NodeId::from_u128(2));
        let mut plan = FetchPlan::new(&m, vec![true, false, false], 1);
        assert_eq!(plan.held_bytes(), CHUNK_SIZE as u64);
        plan.add_peer(a);
        plan.add_peer(b);
        let (p, i) = plan.next_request().unwrap();
        assert_ne!(i, 0, "held chunks are not asked");
        plan.on_missing(p, i, false);
        for _ in 0..MAX_FAILURES {
            let (q, j) = plan.next_request().unwrap();
            assert_ne!(q, p, "a peer without the blob is not asked again");
            plan.on_failed(q, j);
        }
        assert!(plan.is_stuck());
        plan.add_peer(if p == a { b } else { a });
        assert!(plan.next_request().is_some(), "named again, asked again");
    }

    proptest! {
        /// Whatever the peers answer, only chunks matching their hash are held, and honest
        /// peers always finish the blob.
        #[test]
        fn only_verified_chunks_are_held(answers in proptest::collection::vec(0u8..4, 1..60)) {
            let (data, m) = blob(5);
            let peers: Vec<NodeId> = (1..=3).map(NodeId::from_u128).collect();
            let honest = NodeId::from_u128(9);
            let mut plan = FetchPlan::new(&m, vec![], 2);
            for p in &peers { plan.add_peer(*p); }
            let mut answers = answers.into_iter();
            loop {
                let Some((p, i)) = plan.next_request() else {
                    if plan.is_complete() { break; }
                    plan.add_peer(honest);
                    let Some((p, i)) = plan.next_request() else { break };
                    prop_assert_eq!(p, honest);
                    plan.on_chunk(p, i, chunk(&data, i));
                    continue;
                };
                match (p == honest, answers.next().unwrap_or(0)) {
                    (true, _) | (_, 0) => { plan.on_chunk(p, i, chunk(&data, i)); }
                    (_, 1) => { plan.on_chunk(p, i, b"garbage"); }
                    (_, 2) => plan.on_missing(p, i, false),
                    _ => plan.on_failed(p, i),
                }
            }
            prop_assert!(plan.is_complete());
            prop_assert_eq!(plan.held_bytes(), m.size);
        }
    }
}
