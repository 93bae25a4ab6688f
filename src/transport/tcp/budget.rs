//! The response-bytes budget of one peer: a token bucket that goes into debt.
//!
//! Answering a digest costs this node reading, encoding and encrypting the response, so a
//! peer that asks for everything many times a second could take the node's time from the
//! others. Each response's bytes are charged to its peer's bucket once it is encoded; while
//! the bucket is in debt, the peer's next request waits (its connection's reader waits with
//! it, so TCP slows the peer down) and nobody else waits. Pure: time is an input.

use std::time::Duration;

use tokio::time::Instant;

/// Bytes a peer may be answered with: refilled at `rate` per second up to `burst`.
#[derive(Debug, Clone)]
pub(super) struct TokenBucket {
    /// Bytes per second; 0 means unlimited.
    rate: u64,
    burst: i64,
    /// May go below zero: a response is never cut, it leaves a debt the peer waits out.
    tokens: i64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`; `rate` 0 never limits.
    pub(super) fn new(rate: u64, burst: u64, now: Instant) -> Self {
        let burst = i64::try_from(burst.max(1)).unwrap_or(i64::MAX);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        const NS: u128 = 1_000_000_000;
        let dt = now.saturating_duration_since(self.at).as_nanos();
        let rate = u128::from(self.rate);
        let add = dt * rate / NS;
        if add == 0 {
            return;
        }
        let room = (self.burst - self.tokens).max(0) as u128;
        if add >= room {
            self.tokens = self.burst;
            self.at = now;
        } else {
            self.tokens += add as i64;
            // Only the time those whole bytes took is used up: frequent calls lose nothing.
            self.at += Duration::from_nanos(((add * NS).div_ceil(rate)) as u64);
        }
    }

    /// Charges `bytes` sent at `now`.
    pub(super) fn charge(&mut self, bytes: usize, now: Instant) {
        if self.rate == 0 {
            return;
        }
        self.refill(now);
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.tokens = self.tokens.saturating_sub(bytes);
    }

    /// How long the peer's next request must wait at `now` for the debt to be paid.
    pub(super) fn wait(&mut self, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        self.refill(now);
        if self.tokens >= 0 {
            return Duration::ZERO;
        }
        let ns = u128::from(self.tokens.unsigned_abs()) * 1_000_000_000 / u128::from(self.rate);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn within_the_burst_nothing_waits() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 500, t0);
        b.charge(500, t0);
        assert_eq!(b.wait(t0), Duration::ZERO);
    }

    #[test]
    fn a_debt_is_waited_out_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 500, t0);
        b.charge(1500, t0);
        assert_eq!(b.wait(t0), Duration::from_secs(1));
        assert_eq!(b.wait(t0 + 400 * MS), 600 * MS);
        assert_eq!(b.wait(t0 + 1000 * MS), Duration::ZERO);
    }

    #[test]
    fn refill_stops_at_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 500, t0);
        // A long silence does not bank more than the burst.
        b.charge(1500, t0 + Duration::from_secs(60));
        assert_eq!(b.wait(t0 + Duration::from_secs(60)), Duration::from_secs(1));
    }

    #[test]
    fn frequent_calls_refill_as_fast_as_rare_ones() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 500, t0);
        b.charge(1500, t0);
        for us in (0..=1_000_000).step_by(100) {
            b.wait(t0 + Duration::from_micros(us));
        }
        assert_eq!(b.wait(t0 + Duration::from_secs(1)), Duration::ZERO);
    }

    #[test]
    fn rate_zero_never_limits() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0, 1, t0);
        b.charge(usize::MAX, t0);
        assert_eq!(b.wait(t0), Duration::ZERO);
    }
}
