//! The hybrid logical clock (HLC) that orders events for display and last-writer-wins.
//!
//! An HLC value is one `u64`, packed as `(wall-clock ms << 16) | counter`:
//!
//! | bits   | field                                                        |
//! |--------|--------------------------------------------------------------|
//! | 63..16 | wall-clock milliseconds since the Unix epoch (48 bits, ~8900 years) |
//! | 15..0  | a counter that orders events within one millisecond          |
//!
//! Because the wall part is in the high bits, comparing two packed values as plain integers
//! compares them as `(wall_ms, counter)`. A node stamps its own event with
//! [`Hlc::tick`]: `max(pack(now, 0), highest_seen + 1)`. So a message typed now sorts after
//! everything its author has seen (the `+ 1`) *and* after everything stamped before "now"
//! on any reasonably synchronised clock (the `pack(now, 0)`), even when its author has not
//! synced yet. When the counter is full, `+ 1` carries into the wall part, which is still
//! a valid, larger value: the clock never wraps, it saturates at `u64::MAX` (which receivers
//! refuse, so a saturated clock is the one place an origin can no longer create events).
//!
//! Pure: the current time is an argument, never read here.

use std::fmt;

/// Bits of the counter (the low bits of a packed value).
pub const COUNTER_BITS: u32 = 16;
/// The largest counter value.
pub const COUNTER_MAX: u64 = (1 << COUNTER_BITS) - 1;
/// The largest wall-clock millisecond value a packed HLC can carry.
pub const WALL_MAX_MS: u64 = u64::MAX >> COUNTER_BITS;

/// One packed HLC value (see the module docs for the layout).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc(pub u64);

impl Hlc {
    /// Packs a wall-clock time and a counter. A time past [`WALL_MAX_MS`] saturates to it.
    pub fn pack(wall_ms: u64, counter: u16) -> Hlc {
        Hlc((wall_ms.min(WALL_MAX_MS) << COUNTER_BITS) | u64::from(counter))
    }

    /// The wall-clock part, in milliseconds since the Unix epoch.
    pub fn wall_ms(self) -> u64 {
        self.0 >> COUNTER_BITS
    }

    /// The counter part.
    pub fn counter(self) -> u16 {
        (self.0 & COUNTER_MAX) as u16
    }

    /// `(wall_ms, counter)`.
    pub fn unpack(self) -> (u64, u16) {
        (self.wall_ms(), self.counter())
    }

    /// The stamp for a new event created at `now_ms` by a node whose highest seen HLC is
    /// `highest_seen`: `max(pack(now_ms, 0), highest_seen + 1)`, saturating at `u64::MAX`.
    pub fn tick(now_ms: u64, highest_seen: u64) -> u64 {
        Hlc::pack(now_ms, 0).0.max(highest_seen.saturating_add(1))
    }
}

impl From<u64> for Hlc {
    fn from(v: u64) -> Self {
        Hlc(v)
    }
}

impl fmt::Display for Hlc {
    /// `wall_ms.counter`, e.g. `1700000000000.3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.wall_ms(), self.counter())
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hlc({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packs_wall_in_the_high_bits() {
        let h = Hlc::pack(1_700_000_000_000, 3);
        assert_eq!(h.0, (1_700_000_000_000 << 16) | 3);
        assert_eq!(h.unpack(), (1_700_000_000_000, 3));
        assert_eq!(h.to_string(), "1700000000000.3");
    }

    #[test]
    fn pack_saturates_the_wall_part() {
        assert_eq!(Hlc::pack(u64::MAX, 0).wall_ms(), WALL_MAX_MS);
        assert_eq!(Hlc::pack(u64::MAX, u16::MAX).0, u64::MAX);
    }

    #[test]
    fn tick_takes_now_when_ahead_of_what_was_seen() {
        assert_eq!(Hlc::tick(1000, 5), Hlc::pack(1000, 0).0);
    }

    #[test]
    fn tick_steps_past_what_was_seen_when_the_clock_is_behind() {
        let seen = Hlc::pack(2000, 7).0;
        assert_eq!(Hlc::tick(1000, seen), Hlc::pack(2000, 8).0);
    }

    #[test]
    fn a_full_counter_carries_into_the_wall_part() {
        let seen = Hlc::pack(2000, u16::MAX).0;
        assert_eq!(Hlc(Hlc::tick(0, seen)).unpack(), (2001, 0));
    }

    #[test]
    fn tick_saturates_never_wraps() {
        assert_eq!(Hlc::tick(0, u64::MAX), u64::MAX);
        assert_eq!(Hlc::tick(u64::MAX, u64::MAX - 1), u64::MAX);
    }

    proptest! {
        #[test]
        fn pack_unpack_round_trips(wall in 0..=WALL_MAX_MS, counter: u16) {
            prop_assert_eq!(Hlc::pack(wall, counter).unpack(), (wall, counter));
        }

        #[test]
        fn tick_is_after_what_was_seen_and_not_before_now(now: u64, seen in 0..u64::MAX) {
            let t = Hlc::tick(now, seen);
            prop_assert!(t > seen);
            prop_assert!(t >= Hlc::pack(now, 0).0);
        }

        #[test]
        fn packed_order_is_wall_then_counter(a in 0..=WALL_MAX_MS, ca: u16, b in 0..=WALL_MAX_MS, cb: u16) {
            prop_assert_eq!(Hlc::pack(a, ca).cmp(&Hlc::pack(b, cb)), (a, ca).cmp(&(b, cb)));
        }
    }
}
