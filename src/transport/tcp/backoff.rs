//! Exponential backoff with jitter between dial attempts to one address.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Failed dials to one address, and when the next attempt is allowed.
#[derive(Debug, Clone)]
pub(super) struct Backoff {
    failures: u32,
    until: Instant,
    last_error: String,
}

impl Backoff {
    /// Records one more failure at `now` and returns the wait before the next attempt:
    /// `base * 2^(failures - 1)` capped at `max`, drawn uniformly in its upper half so that
    /// peers that failed together do not retry in lockstep.
    pub(super) fn fail(
        prev: Option<&Backoff>,
        now: Instant,
        base: Duration,
        max: Duration,
        error: String,
    ) -> Backoff {
        let failures = prev.map_or(0, |b| b.failures).saturating_add(1);
        let wait = delay(failures, base, max, &mut rand::rng());
        Backoff {
            failures,
            until: now + wait,
            last_error: error,
        }
    }

    /// If an attempt at `now` is still inside the window: how long is left, the failure
    /// count and the last error.
    pub(super) fn blocks(&self, now: Instant) -> Option<(Duration, u32, &str)> {
        (now < self.until).then(|| (self.until - now, self.failures, self.last_error.as_str()))
    }
}

/// The wait after `failures` consecutive failures (>= 1).
fn delay(failures: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    half + full
        .saturating_sub(half)
        .mul_f64(rng.random_range(0.0..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn delay_doubles_within_jitter_and_is_capped() {
        let mut rng = SmallRng::seed_from_u64(3);
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for failures in 1..=10u32 {
            let full = (base * 2u32.pow(failures - 1)).min(max);
            for _ in 0..50 {
                let d = delay(failures, base, max, &mut rng);
                assert!(d >= full / 2 && d <= full, "{failures}: {d:?}");
            }
        }
        let d = delay(u32::MAX, base, max, &mut rng);
        assert!(d >= max / 2 && d <= max, "{d:?}");
    }

    #[test]
    fn the_window_blocks_until_it_ends() {
        let now = Instant::now();
        let b = Backoff::fail(
            None,
            now,
            Duration::from_millis(100),
            Duration::from_secs(1),
            "refused".into(),
        );
        let (left, failures, err) = b.blocks(now).unwrap();
        assert!(left <= Duration::from_millis(100) && left >= Duration::from_millis(50));
        assert_eq!((failures, err), (1, "refused"));
        assert!(b.blocks(now + Duration::from_millis(101)).is_none());
        let b2 = Backoff::fail(
            Some(&b),
            now,
            Duration::from_millis(100),
            Duration::from_secs(1),
            "again".into(),
        );
        assert_eq!(b2.failures, 2);
    }
}
