//! Range-based set reconciliation of vector clocks (Aljoscha Meyer, "Range-Based Set
//! Reconciliation", 2022; the scheme of Nostr's negentropy), free of I/O.
//!
//! The set is a clock's entries `(origin, seq)`, ordered by origin. A message is a list of
//! consecutive [`Range`]s of origins: the first starts at the smallest id, each ends (exclusive)
//! at its `upper` bound, where the next starts. Each range carries one [`Body`]:
//! - [`Body::Skip`]: nothing to do here;
//! - [`Body::Fingerprint`]: the count and a hash-sum of the sender's entries in the range;
//! - [`Body::Entries`]: all of the sender's entries in the range (small ranges);
//! - [`Body::Diff`]: the responder's values where they differ from the `Entries` it was sent.
//!
//! The initiator opens with one fingerprint of everything. A side whose fingerprint differs
//! splits the range into [`BRANCH`] parts by count, small parts ([`LEAF`] entries or fewer)
//! as entries. The responder answers entries with the diff; the initiator collects every
//! [`Diff`] and the exchange then pulls and pushes exactly those origins. Two agreeing clocks
//! cost one fingerprint each way; `d` differing origins among `n` cost O(d log n) bytes, and
//! every message is cut to a byte budget: what does not fit is re-sent as one fingerprint of
//! the rest, to be resolved in the next round.
//!
//! The responder keeps no state between rounds: each round's ranges say all it needs.

use serde::{Deserialize, Serialize};

use super::clock::VectorClock;
use super::codec::encoded_len;
use super::event::NodeId;

/// Parts a mismatching range is split into.
pub const BRANCH: usize = 16;
/// Ranges with at most this many entries are sent as entries, not split further.
pub const LEAF: usize = 16;
/// The largest `Entries` or `Diff` list accepted from a peer.
pub const MAX_LIST: usize = 4 * LEAF;
/// The smallest byte budget [`process`] works with: the largest answer to one range (a
/// split into [`BRANCH`] lists of [`LEAF`] entries) always fits, so every round progresses.
pub const MIN_BUDGET: usize = 8 * 1024;
/// The most ranges accepted in one message.
pub const MAX_RANGES: usize = 64 * 1024;

/// One range of origins and what the sender says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// The exclusive upper bound; `None` reaches past the largest id.
    pub upper: Option<NodeId>,
    /// What the sender says about the range.
    pub body: Body,
}

/// What a range says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Agreed, or nothing to say.
    Skip,
    /// The sender's entries in the range, summarised.
    Fingerprint {
        /// How many entries.
        count: u64,
        /// The wrapping sum of [`entry_hash`] over them.
        hash: u64,
    },
    /// Every entry the sender holds in the range, in id order.
    Entries(Vec<(NodeId, u64)>),
    /// The responder's values (0: none) for the origins where it differs from the entries
    /// it was sent, in id order.
    Diff(Vec<(NodeId, u64)>),
}

/// Which side of the exchange is processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Started the exchange and collects the differences.
    Initiator,
    /// Answers, statelessly.
    Responder,
}

/// An origin on which the two clocks differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diff {
    /// The origin.
    pub origin: NodeId,
    /// Our entry (0: none).
    pub ours: u64,
    /// The peer's entry (0: none).
    pub theirs: u64,
}

/// A peer's ranges that break the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// Bounds not strictly increasing, or a range after the unbounded one.
    #[error("range bounds out of order")]
    Order,
    /// An entry outside its range, out of order, or a list over [`MAX_LIST`].
    #[error("bad entry list")]
    Entries,
    /// More than [`MAX_RANGES`] ranges.
    #[error("too many ranges")]
    TooMany,
    /// A `Diff` sent to the responder.
    #[error("diff sent to the responder")]
    Role,
}

/// What one round produced.
#[derive(Debug, Default)]
pub struct Round {
    /// The ranges to send back; empty when reconciliation is over.
    pub ranges: Vec<Range>,
    /// Differences learned this round (initiator only).
    pub diffs: Vec<Diff>,
}

/// The hash of one entry: a 64-bit mix, so that sums of hashes summarise sets.
pub fn entry_hash(origin: NodeId, seq: u64) -> u64 {
    let n = origin.0.as_u128();
    let mut h = mix((n as u64) ^ mix((n >> 64) as u64 ^ 0x9E37_79B9_7F4A_7C15));
    h = mix(h ^ seq.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    h
}

fn mix(mut z: u64) -> u64 {
    // splitmix64's finaliser.
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The fingerprint of `clock`'s entries in `[lower, upper)`.
pub fn fingerprint(clock: &VectorClock, lower: Option<NodeId>, upper: Option<NodeId>) -> Body {
    let (count, hash) = clock
        .range(lower, upper)
        .fold((0u64, 0u64), |(c, h), (o, s)| {
            (c + 1, h.wrapping_add(entry_hash(o, s)))
        });
    Body::Fingerprint { count, hash }
}

/// The opening message: one fingerprint of the whole clock.
pub fn initiate(ours: &VectorClock) -> Vec<Range> {
    vec![Range {
        upper: None,
        body: fingerprint(ours, None, None),
    }]
}

/// Answers `incoming` from our clock, within `budget` encoded bytes of ranges (at least
/// [`MIN_BUDGET`]).
pub fn process(
    ours: &VectorClock,
    incoming: &[Range],
    role: Role,
    budget: usize,
) -> Result<Round, ReconcileError> {
    check(incoming, role)?;
    // What the incoming ranges cover; past it, both sides already agree.
    let end = incoming.last().and_then(|r| r.upper);
    let mut out = Output::new(budget.max(MIN_BUDGET));
    let mut lower: Option<NodeId> = None;
    let mut diffs = Vec::new();
    for r in incoming {
        let (ranges, found) = answer(ours, lower, r, role);
        if !out.fits(&ranges) {
            // The rest goes back as one fingerprint, resolved next round.
            out.ranges.push(Range {
                upper: end,
                body: fingerprint(ours, lower, end),
            });
            return Ok(Round {
                ranges: out.finish(),
                diffs,
            });
        }
        out.add(ranges);
        diffs.extend(found);
        lower = r.upper;
    }
    Ok(Round {
        ranges: out.finish(),
        diffs,
    })
}

fn check(incoming: &[Range], role: Role) -> Result<(), ReconcileError> {
    if incoming.len() > MAX_RANGES {
        return Err(ReconcileError::TooMany);
    }
    let mut lower: Option<NodeId> = None;
    for (i, r) in incoming.iter().enumerate() {
        match r.upper {
            None if i + 1 != incoming.len() => return Err(ReconcileError::Order),
            Some(u) if lower.is_some_and(|l| u <= l) => return Err(ReconcileError::Order),
            _ => {}
        }
        let list = match &r.body {
            Body::Diff(_) if role == Role::Responder => return Err(ReconcileError::Role),
            Body::Entries(l) | Body::Diff(l) => l,
            _ => &Vec::new(),
        };
        if list.len() > MAX_LIST {
            return Err(ReconcileError::Entries);
        }
        let mut prev: Option<NodeId> = None;
        for &(o, _) in list {
            let inside = lower.is_none_or(|l| o >= l) && r.upper.is_none_or(|u| o < u);
            if !inside || prev.is_some_and(|p| o <= p) {
                return Err(ReconcileError::Entries);
            }
            prev = Some(o);
        }
        lower = r.upper;
    }
    Ok(())
}

/// Our answer to one incoming range `[lower, r.upper)`, and the diffs it revealed.
fn answer(
    ours: &VectorClock,
    lower: Option<NodeId>,
    r: &Range,
    role: Role,
) -> (Vec<Range>, Vec<Diff>) {
    let upper = r.upper;
    let skip = || {
        vec![Range {
            upper,
            body: Body::Skip,
        }]
    };
    match &r.body {
        Body::Skip => (skip(), Vec::new()),
        Body::Fingerprint { .. } => {
            if fingerprint(ours, lower, upper) == r.body {
                (skip(), Vec::new())
            } else {
                (split(ours, lower, upper), Vec::new())
            }
        }
        Body::Entries(theirs) => {
            let diffs = compare(ours, lower, upper, theirs);
            match role {
                Role::Initiator => (skip(), diffs),
                Role::Responder if diffs.is_empty() => (skip(), Vec::new()),
                Role::Responder if diffs.len() <= MAX_LIST => {
                    let list = diffs.iter().map(|d| (d.origin, d.ours)).collect();
                    (
                        vec![Range {
                            upper,
                            body: Body::Diff(list),
                        }],
                        Vec::new(),
                    )
                }
                // Too many to list: split, so the initiator sees smaller ranges.
                Role::Responder => (split(ours, lower, upper), Vec::new()),
            }
        }
        Body::Diff(theirs) => {
            let diffs = theirs
                .iter()
                .map(|&(origin, t)| Diff {
                    origin,
                    ours: ours.get(&origin),
                    theirs: t,
                })
                .filter(|d| d.ours != d.theirs)
                .collect();
            (skip(), diffs)
        }
    }
}

/// The diffs between our entries in a range and the peer's full list for it.
fn compare(
    ours: &VectorClock,
    lower: Option<NodeId>,
    upper: Option<NodeId>,
    theirs: &[(NodeId, u64)],
) -> Vec<Diff> {
    let mut map: std::collections::BTreeMap<NodeId, (u64, u64)> =
        ours.range(lower, upper).map(|(o, s)| (o, (s, 0))).collect();
    for &(o, s) in theirs {
        map.entry(o).or_insert((0, 0)).1 = s;
    }
    map.into_iter()
        .filter(|(_, (a, b))| a != b)
        .map(|(origin, (ours, theirs))| Diff {
            origin,
            ours,
            theirs,
        })
        .collect()
}

/// Our entries in `[lower, upper)`: as a list if small, else [`BRANCH`] parts by count.
fn split(ours: &VectorClock, lower: Option<NodeId>, upper: Option<NodeId>) -> Vec<Range> {
    let items: Vec<(NodeId, u64)> = ours.range(lower, upper).collect();
    if items.len() <= LEAF {
        return vec![Range {
            upper,
            body: Body::Entries(items),
        }];
    }
    let mut out = Vec::with_capacity(BRANCH);
    let mut from = 0;
    let mut lo = lower;
    for i in 1..=BRANCH {
        let to = items.len() * i / BRANCH;
        let hi = if i == BRANCH {
            upper
        } else {
            Some(items[to].0)
        };
        let part = &items[from..to];
        let body = if part.len() <= LEAF {
            Body::Entries(part.to_vec())
        } else {
            fingerprint(ours, lo, hi)
        };
        out.push(Range { upper: hi, body });
        from = to;
        lo = hi;
    }
    out
}

/// The ranges under construction, merging adjacent skips and counting bytes.
struct Output {
    ranges: Vec<Range>,
    used: usize,
    budget: usize,
}

/// Room kept for the closing fingerprint of a cut message.
const TAIL: usize = 48;

impl Output {
    fn new(budget: usize) -> Output {
        Output {
            ranges: Vec::new(),
            used: 0,
            budget: budget.saturating_sub(TAIL),
        }
    }

    fn fits(&self, ranges: &[Range]) -> bool {
        let len: usize = ranges.iter().map(encoded_len).sum();
        self.used + len <= self.budget
    }

    fn add(&mut self, ranges: Vec<Range>) {
        for r in ranges {
            if let (Body::Skip, Some(last)) = (&r.body, self.ranges.last_mut())
                && last.body == Body::Skip
            {
                last.upper = r.upper;
                continue;
            }
            self.used += encoded_len(&r);
            self.ranges.push(r);
        }
    }

    /// Trailing skips say nothing; an all-skip answer is the empty list ("done").
    fn finish(mut self) -> Vec<Range> {
        while self.ranges.last().is_some_and(|r| r.body == Body::Skip) {
            self.ranges.pop();
        }
        self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn n(i: u128) -> NodeId {
        NodeId::from_u128(i)
    }

    /// Runs a whole reconciliation; returns the initiator's diffs and the bytes both sent.
    fn run(a: &VectorClock, b: &VectorClock, budget: usize) -> (Vec<Diff>, usize) {
        let mut msg = initiate(a);
        let mut bytes = encoded_len(&msg);
        let mut diffs = Vec::new();
        for _ in 0..1000 {
            let back = process(b, &msg, Role::Responder, budget).unwrap();
            bytes += encoded_len(&back.ranges);
            if back.ranges.is_empty() {
                break;
            }
            let next = process(a, &back.ranges, Role::Initiator, budget).unwrap();
            diffs.extend(next.diffs);
            if next.ranges.is_empty() {
                break;
            }
            bytes += encoded_len(&next.ranges);
            msg = next.ranges;
        }
        diffs.sort_by_key(|d| d.origin);
        (diffs, bytes)
    }

    fn expected(a: &VectorClock, b: &VectorClock) -> Vec<Diff> {
        let mut m: BTreeMap<NodeId, Diff> = BTreeMap::new();
        for o in a.known_nodes().chain(b.known_nodes()) {
            let d = Diff {
                origin: o,
                ours: a.get(&o),
                theirs: b.get(&o),
            };
            if d.ours != d.theirs {
                m.insert(o, d);
            }
        }
        m.into_values().collect()
    }

    fn big(k: u128) -> VectorClock {
        (0..k)
            .map(|i| (n(i * 7919 + 1), 1 + (i as u64 % 5)))
            .collect()
    }

    #[test]
    fn agreeing_clocks_exchange_one_fingerprint() {
        let a = big(100_000);
        let (diffs, bytes) = run(&a, &a.clone(), 64 * 1024);
        assert!(diffs.is_empty());
        assert!(bytes < 40, "{bytes} bytes");
    }

    #[test]
    fn one_difference_in_100k_is_found_in_few_bytes() {
        let a = big(100_000);
        let mut b = a.clone();
        b.increment(n(5 * 7919 + 1));
        let (diffs, bytes) = run(&a, &b, 64 * 1024);
        assert_eq!(diffs, expected(&a, &b));
        assert!(bytes < 8_000, "{bytes} bytes");
    }

    #[test]
    fn empty_against_100k_respects_the_budget_and_finds_all() {
        let a = VectorClock::new();
        let b = big(100_000);
        let budget = 64 * 1024;
        let mut msg = initiate(&a);
        let mut diffs = std::collections::BTreeSet::new();
        let mut rounds = 0;
        for _ in 0..10_000 {
            let back = process(&b, &msg, Role::Responder, budget).unwrap();
            assert!(encoded_len(&back.ranges) <= budget);
            rounds += 1;
            if back.ranges.is_empty() {
                break;
            }
            let next = process(&a, &back.ranges, Role::Initiator, budget).unwrap();
            assert!(encoded_len(&next.ranges) <= budget);
            // A difference cut at a round's end may be reported again later: collect by origin.
            diffs.extend(next.diffs.iter().map(|d| d.origin));
            if next.ranges.is_empty() {
                break;
            }
            msg = next.ranges;
        }
        assert_eq!(diffs.len(), 100_000);
        // 100k entries of ~20 bytes need at least 31 frames of 64 KiB; cut rounds re-send some.
        assert!(rounds < 200, "{rounds} rounds");
    }

    #[test]
    fn hostile_ranges_are_refused() {
        let c = big(10);
        let bad_order = vec![
            Range {
                upper: Some(n(5)),
                body: Body::Skip,
            },
            Range {
                upper: Some(n(3)),
                body: Body::Skip,
            },
        ];
        assert_eq!(
            process(&c, &bad_order, Role::Responder, 1 << 16).unwrap_err(),
            ReconcileError::Order
        );
        let outside = vec![Range {
            upper: Some(n(3)),
            body: Body::Entries(vec![(n(9), 1)]),
        }];
        assert_eq!(
            process(&c, &outside, Role::Responder, 1 << 16).unwrap_err(),
            ReconcileError::Entries
        );
        let diff = vec![Range {
            upper: None,
            body: Body::Diff(vec![]),
        }];
        assert_eq!(
            process(&c, &diff, Role::Responder, 1 << 16).unwrap_err(),
            ReconcileError::Role
        );
    }

    fn arb_clock() -> impl Strategy<Value = VectorClock> {
        proptest::collection::vec((0u128..400, 1u64..4), 0..300)
            .prop_map(|v| v.into_iter().map(|(i, s)| (n(i), s)).collect())
    }

    proptest! {
        #[test]
        fn any_two_clocks_reconcile_to_the_exact_difference(
            a in arb_clock(),
            b in arb_clock(),
            budget in 0usize..20_000,
        ) {
            let (diffs, _) = run(&a, &b, budget);
            prop_assert_eq!(diffs, expected(&a, &b));
        }

        #[test]
        fn bytes_grow_with_the_difference_not_the_set(
            k in 1usize..8,
            seed in 0u128..1000,
        ) {
            let a = big(20_000);
            let mut b = a.clone();
            for j in 0..k as u128 {
                b.increment(n(((seed + j * 2741) % 20_000) * 7919 + 1));
            }
            let (diffs, bytes) = run(&a, &b, 64 * 1024);
            prop_assert_eq!(diffs.len(), k);
            // d log n: per difference, a few levels of BRANCH fingerprints and one leaf.
            prop_assert!(bytes <= 3_000 * k, "{} bytes for {} diffs", bytes, k);
        }
    }
}
