//! The node's clock and timers.
//!
//! The engine's `now` is wall-clock milliseconds read once at start and advanced by a
//! monotonic clock, so it never goes back; timers are sleeps on that clock, cancelled when
//! the node stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::engine::{Input, Timer};

use super::{Inner, lock};

/// Milliseconds since the Unix epoch, 0 if the system clock is before it.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Wall-clock ms at creation, advanced monotonically.
pub(crate) struct Clock {
    base_ms: u64,
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            base_ms: now_ms(),
            epoch: Instant::now(),
        }
    }

    /// The engine's now.
    pub(crate) fn now(&self) -> u64 {
        let elapsed = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.base_ms.saturating_add(elapsed)
    }
}

impl Inner {
    /// With peer exchange, the transport's view of our addresses goes to the engine with
    /// each round and detector tick (the engine signs a new record only when it changed).
    async fn tell_own_addrs(self: &Arc<Self>) {
        if !self.config.peer_exchange {
            return;
        }
        let addrs = self.transport.own_addrs();
        if !addrs.is_empty() {
            self.feed(Input::OwnAddrs(addrs)).await;
        }
    }

    /// Fires `timer` at `at` unless the node stops first.
    pub(super) fn schedule(self: &Arc<Self>, at: u64, timer: Timer) {
        let delay = Duration::from_millis(at.saturating_sub(self.clock.now()));
        let cancel = lock(&self.timers).clone();
        let this = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(delay) => {
                    if matches!(timer, Timer::Round { .. } | Timer::Probe { .. }) {
                        this.tell_own_addrs().await;
                    }
                    this.feed(Input::TimerFired(timer)).await
                }
            }
        });
    }
}
