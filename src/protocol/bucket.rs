//! A token bucket on the engine's clock (ms, an input), for per-peer budgets.
//!
//! Integer arithmetic, exact: tokens are kept in units of `1 / period_ms`, so a refill of
//! `rate` tokens per `period_ms` adds `rate` units per elapsed ms and nothing is lost to
//! rounding however often it is asked.

/// `rate` tokens per `period_ms`, at most `burst` banked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    rate: u64,
    period_ms: u64,
    /// Banked tokens, times `period_ms`.
    units: u128,
    /// The most units it banks (`burst * period_ms`).
    cap: u128,
    at: u64,
}

impl Bucket {
    /// A full bucket at `now`. A `rate` of 0 refills nothing (only the burst is ever
    /// granted); see [`Bucket::unlimited`] for a bucket that never limits.
    pub fn new(rate: u64, period_ms: u64, burst: u64, now: u64) -> Self {
        let period_ms = period_ms.max(1);
        let cap = u128::from(burst) * u128::from(period_ms);
        Bucket {
            rate,
            period_ms,
            units: cap,
            cap,
            at: now,
        }
    }

    /// A bucket that grants everything.
    pub fn unlimited() -> Self {
        Bucket {
            rate: u64::MAX,
            period_ms: 1,
            units: u128::MAX,
            cap: u128::MAX,
            at: 0,
        }
    }

    fn is_unlimited(&self) -> bool {
        self.cap == u128::MAX
    }

    fn refill(&mut self, now: u64) {
        if now <= self.at || self.is_unlimited() {
            return;
        }
        let add = u128::from(now - self.at) * u128::from(self.rate);
        self.units = self.units.saturating_add(add).min(self.cap);
        self.at = now;
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: u64) -> u64 {
        if self.is_unlimited() {
            return u64::MAX;
        }
        self.refill(now);
        u64::try_from(self.units / u128::from(self.period_ms)).unwrap_or(u64::MAX)
    }

    /// Takes up to `n` tokens at `now`; returns how many were granted.
    pub fn take_up_to(&mut self, n: u64, now: u64) -> u64 {
        let granted = n.min(self.available(now));
        if !self.is_unlimited() {
            self.units -= u128::from(granted) * u128::from(self.period_ms);
        }
        granted
    }

    /// Takes one token at `now` if there is one.
    pub fn take_one(&mut self, now: u64) -> bool {
        self.take_up_to(1, now) == 1
    }

    /// Milliseconds from `now` until `n` tokens are available (0 if they are; `None` if
    /// they never will be: more than the burst, or no refill).
    pub fn wait_for(&mut self, n: u64, now: u64) -> Option<u64> {
        if self.available(now) >= n {
            return Some(0);
        }
        let need = u128::from(n) * u128::from(self.period_ms);
        if need > self.cap || self.rate == 0 {
            return None;
        }
        let ms = (need - self.units).div_ceil(u128::from(self.rate));
        u64::try_from(ms).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_burst_is_granted_at_once_then_the_rate() {
        let mut b = Bucket::new(1000, 1000, 500, 0);
        assert_eq!(b.take_up_to(800, 0), 500);
        assert_eq!(b.take_up_to(10, 0), 0);
        // 1000 per second: one per ms.
        assert_eq!(b.take_up_to(800, 100), 100);
        assert_eq!(b.wait_for(50, 100), Some(50));
    }

    #[test]
    fn a_long_silence_banks_only_the_burst() {
        let mut b = Bucket::new(10, 60_000, 20, 0);
        assert_eq!(b.take_up_to(20, 0), 20);
        assert_eq!(b.available(10_000_000), 20);
    }

    #[test]
    fn per_minute_rates_are_exact() {
        // 10 a minute: one every 6 s, however often it is asked.
        let mut b = Bucket::new(10, 60_000, 1, 0);
        assert!(b.take_one(0));
        for t in (0..6_000).step_by(7) {
            assert!(!b.take_one(t), "granted early at {t}");
        }
        assert!(b.take_one(6_000));
        assert_eq!(b.wait_for(1, 6_000), Some(6_000));
        assert_eq!(b.wait_for(2, 6_000), None, "more than the burst");
    }

    #[test]
    fn unlimited_grants_everything() {
        let mut b = Bucket::unlimited();
        assert_eq!(b.take_up_to(u64::MAX, 0), u64::MAX);
        assert_eq!(b.take_up_to(5, 0), 5);
    }

    proptest! {
        /// Over any window, no more than the burst plus the rate times the window is granted.
        #[test]
        fn never_more_than_burst_plus_rate(
            rate in 1u64..5_000, burst in 1u64..5_000,
            asks in proptest::collection::vec((0u64..50, 0u64..200), 1..200),
        ) {
            let mut b = Bucket::new(rate, 1000, burst, 0);
            let (mut now, mut granted) = (0u64, 0u64);
            for (dt, n) in asks {
                now += dt;
                granted += b.take_up_to(n, now);
            }
            prop_assert!(granted <= burst + rate * now / 1000);
        }
    }
}
