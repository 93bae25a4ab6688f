//! CPU-bound signature checks of received batches. Sealed events form hash chains
//! ([`crate::protocol::chain`]): a batch is split into segments of linked events, and one
//! signature check on a segment's last event authenticates the whole segment. If that check
//! fails, the event is refused and the segment's rest is checked again from its new last
//! event, so every event gets exactly the verdict a check of its own signature would give
//! it (a forger without the key can neither make a bad event pass nor a good one fail).
//! Large batches are hashed and checked on several threads. Plain functions: the node calls
//! them on a blocking thread.

use std::collections::HashMap;
use std::ops::Range;

use ed25519_dalek::VerifyingKey;

use super::{AuthError, verify_event, verify_identity_event};
use crate::protocol::chain::{self, ChainHash};
use crate::protocol::{Event, NodeId};

/// A verifying thread gets at least this many signature checks (or events to hash): below
/// it, starting a thread costs more than it saves.
pub const VERIFY_PER_THREAD_MIN: usize = 64;

type Verdicts = Vec<Option<Result<(), AuthError>>>;

/// Checks every event of `events` against its origin's key in `keys`. Identity events
/// (seq 1) are checked first and bring their key, which later events of the same batch
/// are checked with; new keys are added to `keys`. One verdict per event, in order.
pub fn verify_batch(
    events: &[Event],
    keys: &mut HashMap<NodeId, VerifyingKey>,
) -> Vec<Result<(), AuthError>> {
    let mut verdicts: Verdicts = events
        .iter()
        .map(|e| {
            (e.seq == 1).then(|| {
                verify_identity_event(e).map(|k| {
                    keys.insert(e.origin, k);
                })
            })
        })
        .collect();
    let hashes = hash_all(events);
    let segments = chain::segments(events, &hashes);
    let keys = &*keys;
    let threads = threads_for(segments.len());
    if threads == 1 {
        for seg in &segments {
            check_segment(events, seg.clone(), &mut verdicts, keys);
        }
    } else {
        check_in_parallel(events, &segments, &mut verdicts, keys, threads);
    }
    verdicts
        .into_iter()
        .map(|v| v.unwrap_or(Err(AuthError::UnknownKey)))
        .collect()
}

fn threads_for(work: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(work / VERIFY_PER_THREAD_MIN)
        .max(1)
}

/// Every event's chain hash, on several threads for a large batch.
fn hash_all(events: &[Event]) -> Vec<ChainHash> {
    let threads = threads_for(events.len() / 8);
    if threads == 1 {
        return events.iter().map(chain::chain_hash).collect();
    }
    let mut hashes = vec![chain::UNLINKED; events.len()];
    let chunk = events.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (evs, out) in events.chunks(chunk).zip(hashes.chunks_mut(chunk)) {
            scope.spawn(move || {
                for (e, h) in evs.iter().zip(out) {
                    *h = chain::chain_hash(e);
                }
            });
        }
    });
    hashes
}

/// Splits the segments into `threads` groups of consecutive segments, each with its own
/// slice of the verdicts.
fn check_in_parallel(
    events: &[Event],
    segments: &[Range<usize>],
    verdicts: &mut Verdicts,
    keys: &HashMap<NodeId, VerifyingKey>,
    threads: usize,
) {
    let per = segments.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut rest: &mut [Option<Result<(), AuthError>>] = verdicts;
        let mut offset = 0;
        for group in segments.chunks(per) {
            let end = group.last().map_or(offset, |s| s.end);
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(end - offset);
            rest = tail;
            let base = offset;
            offset = end;
            scope.spawn(move || {
                let evs = &events[base..end];
                for seg in group {
                    check_segment(evs, seg.start - base..seg.end - base, mine, keys);
                }
            });
        }
    });
}

/// Gives a verdict to every undecided event of `seg` (one origin's linked events): the
/// last one's signature is checked; if it holds, every event before it in the segment is
/// authentic too (the seal covers their chain hashes); if not, it is refused and the
/// segment's rest is checked from its new last event.
fn check_segment(
    events: &[Event],
    seg: Range<usize>,
    verdicts: &mut [Option<Result<(), AuthError>>],
    keys: &HashMap<NodeId, VerifyingKey>,
) {
    let Some(key) = events.get(seg.start).and_then(|e| keys.get(&e.origin)) else {
        for v in &mut verdicts[seg] {
            v.get_or_insert(Err(AuthError::UnknownKey));
        }
        return;
    };
    let mut end = seg.end;
    while end > seg.start {
        let last = end - 1;
        if verdicts[last].is_some() {
            // An identity event, checked on its own already (only ever a segment's first).
            end = last;
            continue;
        }
        match verify_event(&events[last], key) {
            Ok(()) => {
                for v in &mut verdicts[seg.start..end] {
                    v.get_or_insert(Ok(()));
                }
                return;
            }
            Err(e) => {
                verdicts[last] = Some(Err(e));
                end = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::NodeIdentity;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn plain(id: &NodeIdentity, seq: u64, text: &str) -> Event {
        Event {
            id: uuid::Uuid::from_u128(seq as u128 * 7 + 1),
            origin: id.node_id(),
            seq,
            hlc: seq,
            created_at_ms: 1_700_000_000_000,
            payload: Bytes::copy_from_slice(text.as_bytes()),
            sig: Bytes::new(),
        }
    }

    /// `n` events of `id` after its identity event, sealed as one chain.
    fn chain_of(id: &NodeIdentity, n: u64) -> Vec<Event> {
        let first = id.identity_event();
        let mut events: Vec<Event> = (2..2 + n).map(|s| plain(id, s, &format!("m{s}"))).collect();
        id.sign_chain(&mut events, chain::chain_hash(&first));
        let mut all = vec![first];
        all.extend(events);
        all
    }

    /// What a check of each event's own signature says (today's rule, one by one).
    fn one_by_one(
        events: &[Event],
        keys: &HashMap<NodeId, VerifyingKey>,
    ) -> Vec<Result<(), AuthError>> {
        let mut keys = keys.clone();
        events
            .iter()
            .map(|e| {
                if e.seq == 1 {
                    return verify_identity_event(e).map(|k| {
                        keys.insert(e.origin, k);
                    });
                }
                Ok(())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .zip(events)
            .map(|(v, e)| match (e.seq, keys.get(&e.origin)) {
                (1, _) => v,
                (_, Some(k)) => verify_event(e, k),
                (_, None) => Err(AuthError::UnknownKey),
            })
            .collect()
    }

    #[test]
    fn a_batch_brings_its_own_keys_and_refuses_forgeries() {
        let id = NodeIdentity::generate();
        let mut events = chain_of(&id, 2);
        let mut forged = events[2].clone();
        forged.payload = Bytes::from_static(b"ho");
        events[2] = forged;
        let mut keys = HashMap::new();
        let v = verify_batch(&events, &mut keys);
        assert!(v[0].is_ok() && v[1].is_ok());
        assert_eq!(v[2], Err(AuthError::BadSignature));
        assert!(keys.contains_key(&id.node_id()));
    }

    #[test]
    fn a_forged_event_inside_a_run_is_refused_and_its_neighbours_pass() {
        let id = NodeIdentity::generate();
        let mut events = chain_of(&id, 300);
        events[150].payload = Bytes::from_static(b"forged");
        let v = verify_batch(&events, &mut HashMap::new());
        for (i, r) in v.iter().enumerate() {
            assert_eq!(r.is_ok(), i != 150, "event {i}: {r:?}");
        }
    }

    #[test]
    fn a_successor_of_either_copy_of_an_equivocation_verifies() {
        let id = NodeIdentity::generate();
        let events = chain_of(&id, 3);
        let mut other = plain(&id, 3, "the other copy");
        id.sign_event_after(&mut other, &chain::chain_hash(&events[1]));
        let mut after_other = plain(&id, 4, "after the other");
        id.sign_event_after(&mut after_other, &chain::chain_hash(&other));
        // A receiver holding events[2] gets the successor of the other copy alone, and
        // in a batch after the copy it holds: both verify (the seal carries its prev).
        let mut keys = HashMap::new();
        verify_batch(&events[..1], &mut keys);
        let batch = vec![events[2].clone(), after_other.clone()];
        assert_eq!(verify_batch(&batch, &mut keys), vec![Ok(()), Ok(())]);
        assert_eq!(verify_batch(&[after_other], &mut keys), vec![Ok(())]);
    }

    #[test]
    fn events_of_an_unknown_origin_wait_for_its_key() {
        let id = NodeIdentity::generate();
        let events = chain_of(&id, 3);
        let v = verify_batch(&events[1..], &mut HashMap::new());
        assert_eq!(v, vec![Err(AuthError::UnknownKey); 3]);
    }

    #[derive(Debug, Clone)]
    enum Attack {
        /// Flip a byte of one event's payload.
        Payload(usize),
        /// Flip a byte of one event's seal (its prev or its signature).
        Seal(usize, usize),
        /// Change one event's HLC.
        Hlc(usize),
        /// Swap two events' contents, keeping the seqs in place (a reordered run).
        Swap(usize, usize),
        /// Cut the run after this many events (a truncated run).
        Truncate(usize),
        /// Drop one event (a gap).
        Drop(usize),
        /// Put another origin's event with this seq in.
        Foreign(usize),
        /// Replace a seal by a plain signature from a different event.
        Replay(usize, usize),
    }

    fn attack() -> impl Strategy<Value = Attack> {
        prop_oneof![
            (0usize..40).prop_map(Attack::Payload),
            (0usize..40, 0usize..96).prop_map(|(a, b)| Attack::Seal(a, b)),
            (0usize..40).prop_map(Attack::Hlc),
            (0usize..40, 0usize..40).prop_map(|(a, b)| Attack::Swap(a, b)),
            (0usize..40).prop_map(Attack::Truncate),
            (0usize..40).prop_map(Attack::Drop),
            (0usize..40).prop_map(Attack::Foreign),
            (0usize..40, 0usize..40).prop_map(|(a, b)| Attack::Replay(a, b)),
        ]
    }

    fn apply(events: &mut Vec<Event>, a: &Attack, other: &NodeIdentity) {
        let n = events.len();
        if n == 0 {
            return;
        }
        match *a {
            Attack::Payload(i) => {
                let e = &mut events[i % n];
                let mut p = e.payload.to_vec();
                p.push(0);
                p[0] ^= 1;
                e.payload = Bytes::from(p);
            }
            Attack::Seal(i, b) => {
                let e = &mut events[i % n];
                let mut s = e.sig.to_vec();
                if !s.is_empty() {
                    let at = b % s.len();
                    s[at] ^= 0x40;
                }
                e.sig = Bytes::from(s);
            }
            Attack::Hlc(i) => events[i % n].hlc ^= 1 << 20,
            Attack::Swap(i, j) => {
                let (i, j) = (i % n, j % n);
                let (si, sj) = (events[i].seq, events[j].seq);
                events.swap(i, j);
                events[i].seq = si;
                events[j].seq = sj;
            }
            Attack::Truncate(k) => events.truncate(k % (n + 1)),
            Attack::Drop(i) => {
                events.remove(i % n);
            }
            Attack::Foreign(i) => {
                let seq = events[i % n].seq;
                let mut e = plain(other, seq, "not yours");
                e.origin = events[i % n].origin;
                other.sign_event(&mut e);
                events[i % n] = e;
            }
            Attack::Replay(i, j) => {
                let (i, j) = (i % n, j % n);
                events[i].sig = events[j].sig.clone();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever a member without the origin's key does to a sealed run — forge,
        /// reorder, truncate, drop, replay — every event gets the verdict a check of its
        /// own signature gives it.
        #[test]
        fn a_tampered_run_gets_exactly_the_per_event_verdicts(
            n in 1u64..40,
            with_identity in any::<bool>(),
            attacks in proptest::collection::vec(attack(), 0..4),
        ) {
            let id = NodeIdentity::generate();
            let other = NodeIdentity::generate();
            let mut events = chain_of(&id, n);
            let mut keys = HashMap::new();
            if !with_identity {
                verify_batch(&events[..1], &mut keys);
                events.remove(0);
            }
            for a in &attacks {
                apply(&mut events, a, &other);
            }
            let expected = one_by_one(&events, &keys);
            let got = verify_batch(&events, &mut keys);
            prop_assert_eq!(got, expected);
        }
    }
}
