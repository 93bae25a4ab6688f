//! Equivocation: two events with the same `(origin, seq)` and different content.
//!
//! An honest node never signs two (see [`super::own_seq`]), but a node whose store lost its
//! tail, or was restored from a backup, may have before this rule existed, and a hostile
//! one may on purpose. Every node that sees both must end with the same one, whatever the
//! order they arrive in, so the rule is a total order on the events themselves: the event
//! whose [`digest`] (SHA-256 of every field, signature included) is lower wins. The loser is
//! replaced everywhere it is held, and the pair is kept as an [`Equivocation`] record that
//! anyone can check (both events carry the origin's signature).
//!
//! Nothing typed is lost: when the origin is this node, the losing payload is re-issued
//! under a fresh seq ([`Equivocation::reissue_for`]).
//!
//! Pure: no I/O; the caller has already verified both signatures.

use std::cmp::Ordering;

use bytes::Bytes;

use super::event::{Event, NodeId};

/// Domain separation for [`digest`].
const DIGEST_DOMAIN: &[u8] = b"gossip-equivocation/1";

/// The SHA-256 of every field of `e` (fixed-width integers, length-prefixed bytes, the
/// signature included), which orders equivocating events.
pub fn digest(e: &Event) -> [u8; 32] {
    e.digest_with(DIGEST_DOMAIN)
}

/// Which of two events under one `(origin, seq)` every node keeps: the lower [`digest`].
/// `Ordering::Less` means `a` wins. Equal events compare `Equal`.
pub fn compare(a: &Event, b: &Event) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    digest(a).cmp(&digest(b)).then_with(|| {
        // Two different events with one digest would be a SHA-256 collision; order by the
        // fields anyway so the rule stays total.
        (a.id, a.hlc, a.created_at_ms, &a.payload, &a.sig).cmp(&(
            b.id,
            b.hlc,
            b.created_at_ms,
            &b.payload,
            &b.sig,
        ))
    })
}

/// What a store does with a new event whose `(origin, seq)` holds a different one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The held event wins; the new one is dropped.
    KeepHeld,
    /// The new event wins; it replaces the held one.
    Replace,
}

/// The resolution for `new` arriving where `held` is held (same `(origin, seq)`).
pub fn resolve(held: &Event, new: &Event) -> Resolution {
    if compare(new, held) == Ordering::Less {
        Resolution::Replace
    } else {
        Resolution::KeepHeld
    }
}

/// A proof of equivocation: two different events of one origin under one seq, and which
/// one the room keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The event every node keeps.
    pub winner: Event,
    /// The event every node drops.
    pub loser: Event,
}

impl Equivocation {
    /// The record for `a` and `b` if they equivocate: same `(origin, seq)`, different
    /// content. `None` for equal events or different keys.
    pub fn detect(a: &Event, b: &Event) -> Option<Equivocation> {
        if a.key() != b.key() || a == b {
            return None;
        }
        let (winner, loser) = match compare(a, b) {
            Ordering::Greater => (b.clone(), a.clone()),
            _ => (a.clone(), b.clone()),
        };
        Some(Equivocation { winner, loser })
    }

    /// The origin that signed both.
    pub fn origin(&self) -> NodeId {
        self.winner.origin
    }

    /// The seq both claim.
    pub fn seq(&self) -> u64 {
        self.winner.seq
    }

    /// The payload `me` must issue again under a fresh seq, so that nothing it typed is
    /// lost: the loser's, when `me` is the origin and the winner does not already carry the
    /// same payload. `None` for someone else's equivocation.
    pub fn reissue_for(&self, me: NodeId) -> Option<Bytes> {
        (self.origin() == me && self.loser.payload != self.winner.payload)
            .then(|| self.loser.payload.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn event(origin: u128, seq: u64, payload: &[u8]) -> Event {
        Event {
            id: Uuid::from_u128(u128::from(seq) | (u128::from(payload.len() as u64) << 64)),
            origin: NodeId::from_u128(origin),
            seq,
            hlc: 100 + seq,
            created_at_ms: 5,
            payload: Bytes::copy_from_slice(payload),
            sig: Bytes::new(),
        }
    }

    #[test]
    fn same_key_different_content_is_an_equivocation() {
        let a = event(1, 4, b"hello");
        let b = event(1, 4, b"other");
        let eq = Equivocation::detect(&a, &b).unwrap();
        assert_eq!(eq.origin(), NodeId::from_u128(1));
        assert_eq!(eq.seq(), 4);
        assert_ne!(eq.winner, eq.loser);
    }

    #[test]
    fn equal_events_and_other_keys_are_not() {
        let a = event(1, 4, b"hello");
        assert_eq!(Equivocation::detect(&a, &a.clone()), None);
        assert_eq!(Equivocation::detect(&a, &event(1, 5, b"hello")), None);
        assert_eq!(Equivocation::detect(&a, &event(2, 4, b"hello")), None);
    }

    #[test]
    fn the_winner_does_not_depend_on_the_order_seen() {
        let a = event(1, 4, b"hello");
        let b = event(1, 4, b"other");
        assert_eq!(Equivocation::detect(&a, &b), Equivocation::detect(&b, &a),);
        // resolve agrees with detect, from either side.
        let eq = Equivocation::detect(&a, &b).unwrap();
        assert_eq!(resolve(&eq.loser, &eq.winner), Resolution::Replace);
        assert_eq!(resolve(&eq.winner, &eq.loser), Resolution::KeepHeld);
    }

    #[test]
    fn a_different_signature_alone_is_an_equivocation() {
        let a = event(1, 4, b"hello");
        let mut b = a.clone();
        b.sig = Bytes::from_static(&[1; 64]);
        assert!(Equivocation::detect(&a, &b).is_some());
    }

    #[test]
    fn only_the_origin_reissues_and_only_a_different_payload() {
        let a = event(1, 4, b"hello");
        let b = event(1, 4, b"other");
        let eq = Equivocation::detect(&a, &b).unwrap();
        assert_eq!(
            eq.reissue_for(NodeId::from_u128(1)),
            Some(eq.loser.payload.clone())
        );
        assert_eq!(eq.reissue_for(NodeId::from_u128(2)), None);
        let mut same_payload = a.clone();
        same_payload.hlc += 1;
        let eq = Equivocation::detect(&a, &same_payload).unwrap();
        assert_eq!(eq.reissue_for(NodeId::from_u128(1)), None);
    }

    proptest! {
        #[test]
        fn compare_is_a_total_order(pa: Vec<u8>, pb: Vec<u8>, pc: Vec<u8>) {
            let (a, b, c) = (event(1, 2, &pa), event(1, 2, &pb), event(1, 2, &pc));
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            prop_assert_eq!(compare(&a, &b) == Ordering::Equal, a == b);
            if compare(&a, &b) != Ordering::Greater && compare(&b, &c) != Ordering::Greater {
                prop_assert_ne!(compare(&a, &c), Ordering::Greater);
            }
        }

        #[test]
        fn any_arrival_order_keeps_the_same_event(payloads in proptest::collection::vec(any::<Vec<u8>>(), 1..6), rot in 0usize..6) {
            let events: Vec<Event> = payloads.iter().map(|p| event(1, 2, p)).collect();
            let keep = |order: &[Event]| {
                let mut held = order[0].clone();
                for e in &order[1..] {
                    if resolve(&held, e) == Resolution::Replace {
                        held = e.clone();
                    }
                }
                held
            };
            let mut rotated = events.clone();
            rotated.rotate_left(rot % events.len());
            let mut reversed = events.clone();
            reversed.reverse();
            prop_assert_eq!(keep(&events), keep(&rotated));
            prop_assert_eq!(keep(&events), keep(&reversed));
        }
    }
}
