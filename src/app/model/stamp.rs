//! Stamps (the total order of ops) and last-writer-wins registers.

use crate::protocol::{Event, NodeId};

/// Where an op sits in the total order every replica agrees on: `(hlc, origin, seq)`.
///
/// `(origin, seq)` names an event uniquely, so two different ops never share a stamp, and
/// "the larger stamp wins" picks the same winner on every replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// The event's hybrid logical clock ([`crate::protocol::hlc`]).
    pub hlc: u64,
    /// The event's origin.
    pub origin: NodeId,
    /// The event's seq at its origin.
    pub seq: u64,
}

impl Stamp {
    /// The stamp of `event`.
    pub fn of(event: &Event) -> Self {
        Stamp {
            hlc: event.hlc,
            origin: event.origin,
            seq: event.seq,
        }
    }
}

/// A last-writer-wins register: keeps the value written with the largest stamp.
///
/// Merging is `max` by stamp, which is commutative, associative and idempotent, so the value
/// does not depend on the order the writes arrive in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lww<T> {
    stamp: Stamp,
    value: T,
}

impl<T> Lww<T> {
    /// A register holding `value` written at `stamp`.
    pub fn new(stamp: Stamp, value: T) -> Self {
        Lww { stamp, value }
    }

    /// The current value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The stamp of the current value.
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// Takes `value` if `stamp` is larger than the current one; returns whether it did.
    pub fn set(&mut self, stamp: Stamp, value: T) -> bool {
        if stamp > self.stamp {
            self.stamp = stamp;
            self.value = value;
            true
        } else {
            false
        }
    }
}

/// Writes `value` at `stamp` into a register that may not exist yet.
pub fn set_opt<T>(reg: &mut Option<Lww<T>>, stamp: Stamp, value: T) -> bool {
    match reg {
        Some(r) => r.set(stamp, value),
        None => {
            *reg = Some(Lww::new(stamp, value));
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(hlc: u64, origin: u128, seq: u64) -> Stamp {
        Stamp {
            hlc,
            origin: NodeId::from_u128(origin),
            seq,
        }
    }

    #[test]
    fn stamps_order_by_hlc_then_origin_then_seq() {
        assert!(stamp(1, 9, 9) < stamp(2, 1, 1));
        assert!(stamp(2, 1, 9) < stamp(2, 2, 1));
        assert!(stamp(2, 2, 1) < stamp(2, 2, 2));
    }

    #[test]
    fn register_keeps_the_largest_stamp_whatever_the_order() {
        let writes = [
            (stamp(3, 1, 1), "c"),
            (stamp(1, 2, 1), "a"),
            (stamp(3, 2, 1), "d"),
        ];
        let mut forward: Option<Lww<&str>> = None;
        for (s, v) in writes {
            set_opt(&mut forward, s, v);
        }
        let mut backward: Option<Lww<&str>> = None;
        for (s, v) in writes.into_iter().rev() {
            set_opt(&mut backward, s, v);
        }
        assert_eq!(forward.as_ref().map(|r| *r.value()), Some("d"));
        assert_eq!(forward, backward);
        let mut r = Lww::new(stamp(5, 1, 1), 1);
        assert!(
            !r.set(stamp(5, 1, 1), 2),
            "an equal stamp must not overwrite"
        );
        assert_eq!(*r.value(), 1);
    }
}
