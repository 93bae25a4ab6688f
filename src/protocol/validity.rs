//! Validity rules for a received event's clocks and counters, and the receive rule of the
//! local hybrid logical clock.
//!
//! A room member may be hostile, so nothing an event claims may break the room's order or
//! overflow anyone's arithmetic:
//! - an `hlc` or `created_at_ms` more than [`Bounds::max_future_ms`] (10 min by default)
//!   past the receiver's clock is **refused**: not stored, not relayed, not shown, counted.
//!   It is not lost: the sender offers it again in every exchange (the receiver's clock for
//!   that origin stops below it), so it is accepted once the receiver's clock has caught up,
//!   i.e. it is *held back* by the protocol itself, and later events of that origin wait
//!   behind it (an origin with a clock far ahead only delays itself);
//! - an `hlc` at or near `u64::MAX` (past [`MAX_HLC`]) and a `seq` past [`MAX_SEQ`] are
//!   refused whatever the time, so `hlc + 1`, `seq + 1` and `first_seq + i` never overflow;
//! - a nil origin or seq 0 are refused.
//!
//! Pure: the receiver's time is an argument.

use std::fmt;

use super::event::Event;
use super::hlc::{COUNTER_BITS, Hlc, WALL_MAX_MS};

/// The largest seq accepted: 2^62, so adding any count of events that fits in memory
/// never overflows a `u64`.
pub const MAX_SEQ: u64 = 1 << 62;

/// The largest HLC accepted whatever the receiver's time: the last millisecond the packing
/// can carry is reserved, so [`Hlc::tick`] past any accepted value never saturates.
pub const MAX_HLC: u64 = (WALL_MAX_MS - 1) << COUNTER_BITS;

/// How far a received event's clocks may run ahead of the receiver's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Milliseconds an event's `hlc` wall part or `created_at_ms` may be past the receiver's
    /// clock.
    pub max_future_ms: u64,
}

impl Bounds {
    /// Ten minutes: well past any NTP-synced clock's error, short enough that a poisoned
    /// clock cannot pin last-writer-wins values for long.
    pub const DEFAULT_MAX_FUTURE_MS: u64 = 10 * 60 * 1000;

    /// The highest HLC a valid event may carry at receiver time `now_ms`.
    pub fn hlc_limit(&self, now_ms: u64) -> u64 {
        let wall = now_ms.saturating_add(self.max_future_ms);
        // The last counter value of the last allowed millisecond, capped by MAX_HLC.
        Hlc::pack(wall, u16::MAX).0.min(MAX_HLC)
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_future_ms: Self::DEFAULT_MAX_FUTURE_MS,
        }
    }
}

/// Why an event was refused. Each reason is counted on its own ([`InvalidEvent::index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidEvent {
    /// The origin is the nil id, which no real node has.
    NilOrigin,
    /// Seq 0: seqs start at 1.
    SeqZero,
    /// A seq past [`MAX_SEQ`].
    SeqTooLarge,
    /// An HLC past [`MAX_HLC`] (at or near `u64::MAX`).
    HlcTooLarge,
    /// An HLC whose wall part is more than the bound past the receiver's clock.
    HlcInFuture {
        /// How far past the receiver's clock, in ms.
        ahead_ms: u64,
    },
    /// A creation time more than the bound past the receiver's clock.
    CreatedInFuture {
        /// How far past the receiver's clock, in ms.
        ahead_ms: u64,
    },
}

impl InvalidEvent {
    /// The number of distinct reasons (for per-reason counters).
    pub const COUNT: usize = 6;

    /// Every reason's name, in [`InvalidEvent::index`] order.
    pub const NAMES: [&'static str; Self::COUNT] = [
        "nil_origin",
        "seq_zero",
        "seq_too_large",
        "hlc_too_large",
        "hlc_in_future",
        "created_in_future",
    ];

    /// A stable index in `0..COUNT`, for per-reason counters.
    pub fn index(&self) -> usize {
        match self {
            InvalidEvent::NilOrigin => 0,
            InvalidEvent::SeqZero => 1,
            InvalidEvent::SeqTooLarge => 2,
            InvalidEvent::HlcTooLarge => 3,
            InvalidEvent::HlcInFuture { .. } => 4,
            InvalidEvent::CreatedInFuture { .. } => 5,
        }
    }

    /// A short machine-readable name (`hlc_in_future`, ...).
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.index()]
    }
}

impl fmt::Display for InvalidEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidEvent::NilOrigin => write!(f, "nil origin"),
            InvalidEvent::SeqZero => write!(f, "seq 0"),
            InvalidEvent::SeqTooLarge => write!(f, "seq past 2^62"),
            InvalidEvent::HlcTooLarge => write!(f, "hlc at or near 2^64-1"),
            InvalidEvent::HlcInFuture { ahead_ms } => {
                write!(f, "hlc {ahead_ms} ms in the future")
            }
            InvalidEvent::CreatedInFuture { ahead_ms } => {
                write!(f, "created_at_ms {ahead_ms} ms in the future")
            }
        }
    }
}

impl std::error::Error for InvalidEvent {}

/// Checks a received event's origin, seq and clocks against the receiver's time `now_ms`.
/// Signatures are checked elsewhere ([`crate::auth`]); this is only arithmetic.
pub fn check_event(e: &Event, now_ms: u64, bounds: &Bounds) -> Result<(), InvalidEvent> {
    if e.origin.is_nil() {
        return Err(InvalidEvent::NilOrigin);
    }
    if e.seq == 0 {
        return Err(InvalidEvent::SeqZero);
    }
    if e.seq > MAX_SEQ {
        return Err(InvalidEvent::SeqTooLarge);
    }
    if e.hlc > MAX_HLC {
        return Err(InvalidEvent::HlcTooLarge);
    }
    let limit_ms = now_ms.saturating_add(bounds.max_future_ms);
    let wall = Hlc(e.hlc).wall_ms();
    if wall > limit_ms {
        return Err(InvalidEvent::HlcInFuture {
            ahead_ms: wall - now_ms,
        });
    }
    if e.created_at_ms > limit_ms {
        return Err(InvalidEvent::CreatedInFuture {
            ahead_ms: e.created_at_ms - now_ms,
        });
    }
    Ok(())
}

/// The receive rule of the local clock: the highest HLC seen after observing `remote`.
/// It only moves forward, and never past what a valid event may carry at `now_ms`, so even
/// an unchecked value cannot push the local clock far ahead or wrap it.
pub fn observe(highest_seen: u64, remote: u64, now_ms: u64, bounds: &Bounds) -> u64 {
    highest_seen.max(remote.min(bounds.hlc_limit(now_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::event::NodeId;
    use bytes::Bytes;
    use proptest::prelude::*;
    use uuid::Uuid;

    const NOW: u64 = 1_700_000_000_000;

    fn event(seq: u64, hlc: u64, created_at_ms: u64) -> Event {
        Event {
            id: Uuid::from_u128(1),
            origin: NodeId::from_u128(9),
            seq,
            hlc,
            created_at_ms,
            payload: Bytes::from_static(b"x"),
            sig: Bytes::new(),
        }
    }

    fn check(e: &Event) -> Result<(), InvalidEvent> {
        check_event(e, NOW, &Bounds::default())
    }

    #[test]
    fn an_ordinary_event_is_valid() {
        assert_eq!(check(&event(3, Hlc::pack(NOW, 2).0, NOW)), Ok(()));
        // An identity event: HLC 1, created at 0.
        assert_eq!(check(&event(1, 1, 0)), Ok(()));
    }

    #[test]
    fn nil_origin_and_seq_zero_are_refused() {
        let mut e = event(1, 1, 0);
        e.origin = NodeId::NIL;
        assert_eq!(check(&e), Err(InvalidEvent::NilOrigin));
        assert_eq!(check(&event(0, 1, 0)), Err(InvalidEvent::SeqZero));
    }

    #[test]
    fn seqs_near_the_top_are_refused() {
        assert_eq!(check(&event(MAX_SEQ, 1, 0)), Ok(()));
        assert_eq!(
            check(&event(MAX_SEQ + 1, 1, 0)),
            Err(InvalidEvent::SeqTooLarge)
        );
        assert_eq!(
            check(&event(u64::MAX, 1, 0)),
            Err(InvalidEvent::SeqTooLarge)
        );
    }

    #[test]
    fn hlcs_near_the_top_are_refused_whatever_the_time() {
        for hlc in [u64::MAX, u64::MAX - 1, MAX_HLC + 1] {
            assert_eq!(
                check_event(&event(2, hlc, 0), u64::MAX, &Bounds::default()),
                Err(InvalidEvent::HlcTooLarge)
            );
        }
    }

    #[test]
    fn an_hlc_more_than_ten_minutes_ahead_is_refused() {
        let ten_min = Bounds::DEFAULT_MAX_FUTURE_MS;
        assert_eq!(
            check(&event(2, Hlc::pack(NOW + ten_min, u16::MAX).0, NOW)),
            Ok(())
        );
        assert_eq!(
            check(&event(2, Hlc::pack(NOW + ten_min + 1, 0).0, NOW)),
            Err(InvalidEvent::HlcInFuture {
                ahead_ms: ten_min + 1
            })
        );
    }

    #[test]
    fn a_year_3000_creation_time_is_refused() {
        let year_3000 = 32_503_680_000_000;
        assert_eq!(
            check(&event(2, Hlc::pack(NOW, 0).0, year_3000)),
            Err(InvalidEvent::CreatedInFuture {
                ahead_ms: year_3000 - NOW
            })
        );
    }

    #[test]
    fn reasons_have_distinct_indexes_and_names() {
        let all = [
            InvalidEvent::NilOrigin,
            InvalidEvent::SeqZero,
            InvalidEvent::SeqTooLarge,
            InvalidEvent::HlcTooLarge,
            InvalidEvent::HlcInFuture { ahead_ms: 1 },
            InvalidEvent::CreatedInFuture { ahead_ms: 1 },
        ];
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(r.name(), InvalidEvent::NAMES[i]);
            assert!(!r.to_string().is_empty());
        }
    }

    #[test]
    fn observe_moves_forward_only_and_within_bounds() {
        let b = Bounds::default();
        let seen = Hlc::pack(NOW, 5).0;
        assert_eq!(observe(seen, Hlc::pack(NOW - 1, 0).0, NOW, &b), seen);
        assert_eq!(
            observe(seen, Hlc::pack(NOW + 1, 0).0, NOW, &b),
            Hlc::pack(NOW + 1, 0).0
        );
        assert_eq!(observe(seen, u64::MAX, NOW, &b), b.hlc_limit(NOW));
        assert_eq!(observe(0, u64::MAX, u64::MAX, &b), MAX_HLC);
    }

    proptest! {
        #[test]
        fn a_valid_event_leaves_room_to_tick(seq: u64, hlc: u64, created: u64, now: u64) {
            let e = event(seq, hlc, created);
            if check_event(&e, now, &Bounds::default()).is_ok() {
                prop_assert!(e.seq.checked_add(MAX_SEQ).is_some());
                prop_assert!(Hlc::tick(now, e.hlc) < u64::MAX);
                prop_assert!(Hlc::tick(now, e.hlc) > e.hlc);
            }
        }

        #[test]
        fn observe_never_passes_the_limit(seen in 0..=MAX_HLC, remote: u64, now: u64) {
            let b = Bounds::default();
            let next = observe(seen, remote, now, &b);
            prop_assert!(next >= seen);
            prop_assert!(next <= seen.max(b.hlc_limit(now)));
        }
    }
}
