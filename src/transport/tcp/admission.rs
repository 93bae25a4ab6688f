//! Who gets an inbound slot: a per-address cap, eviction of the least useful member when
//! slots run short, and refusals logged once per address per minute.
//!
//! Pure bookkeeping (time is an input); `mod.rs` applies it at accept and after each
//! inbound handshake.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// How long one address's refusals are summed into one log line.
pub(super) const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered by the refusal log; past it, expired ones are forgotten first.
const REFUSAL_LOG_ADDRESSES: usize = 4096;
/// A peer that answered one of our requests this recently is productive: it is kept.
pub(super) const PRODUCTIVE_FOR: Duration = Duration::from_secs(120);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is one map update: poison leaves it consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Rate-limits the logging (and reporting) of refusals: the first refusal from an address
/// is logged, the next ones within [`REFUSAL_LOG_WINDOW`] only counted, and the count is
/// told with the next one logged. A flood from one address costs one line a minute.
#[derive(Debug, Default)]
pub(super) struct RefusalLog {
    by_ip: HashMap<IpAddr, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    since: Instant,
    quiet: u64,
}

impl RefusalLog {
    /// Notes a refusal of `ip` at `now`: `Some(n)` if it is to be logged, `n` being the
    /// refusals of `ip` left unlogged before it; `None` if it is only counted.
    pub(super) fn note(&mut self, ip: IpAddr, now: Instant) -> Option<u64> {
        if let Some(w) = self.by_ip.get_mut(&ip) {
            if now < w.since + REFUSAL_LOG_WINDOW {
                w.quiet += 1;
                return None;
            }
            let quiet = w.quiet;
            *w = Window {
                since: now,
                quiet: 0,
            };
            return Some(quiet);
        }
        if self.by_ip.len() >= REFUSAL_LOG_ADDRESSES {
            self.by_ip.retain(|_, w| now < w.since + REFUSAL_LOG_WINDOW);
            if self.by_ip.len() >= REFUSAL_LOG_ADDRESSES {
                // A flood from thousands of addresses: start over rather than grow.
                self.by_ip.clear();
            }
        }
        self.by_ip.insert(
            ip,
            Window {
                since: now,
                quiet: 0,
            },
        );
        Some(0)
    }
}

/// Inbound connections (handshaking or established) per remote address.
#[derive(Debug, Default, Clone)]
pub(super) struct PerAddress {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerAddress {
    /// A slot for one more connection from `ip`, unless it holds `cap` already.
    pub(super) fn take(&self, ip: IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut counts = lock(&self.counts);
        let n = counts.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            counts: self.counts.clone(),
            ip,
        })
    }
}

/// One connection's share of its address's cap; given back on drop.
#[derive(Debug)]
pub(super) struct AddressSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// What counts about an inbound member when slots run short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Member {
    /// Its connection's serial.
    pub(super) serial: u64,
    /// Whether its peer answered one of our requests within [`PRODUCTIVE_FOR`].
    pub(super) productive: bool,
    /// When it last sent a frame on this connection.
    pub(super) last_in: Instant,
}

impl Member {
    /// Unproductive before productive; among equals, the longest silent first.
    fn rank(&self) -> (bool, Instant) {
        (self.productive, self.last_in)
    }
}

/// Which member makes room for `newcomer` when the slots are full: the one worth least,
/// if it is worth less than the newcomer (`None`: the newcomer is refused). So idle and
/// unproductive members go first, known productive peers stay, and a fresh peer always
/// gets in while some member gives nothing.
pub(super) fn make_room(newcomer: &Member, others: &[Member]) -> Option<u64> {
    let worst = others.iter().min_by_key(|m| m.rank())?;
    (worst.rank() < newcomer.rank()).then_some(worst.serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn one_log_line_per_address_per_minute_with_the_count() {
        let t0 = Instant::now();
        let mut log = RefusalLog::default();
        assert_eq!(log.note(ip(1), t0), Some(0));
        for i in 1..=34 {
            assert_eq!(log.note(ip(1), t0 + Duration::from_secs(i)), None);
        }
        // Another address is logged on its own.
        assert_eq!(log.note(ip(2), t0), Some(0));
        assert_eq!(log.note(ip(1), t0 + REFUSAL_LOG_WINDOW), Some(34));
        assert_eq!(log.note(ip(1), t0 + REFUSAL_LOG_WINDOW), None);
    }

    #[test]
    fn the_refusal_log_stays_bounded() {
        let t0 = Instant::now();
        let mut log = RefusalLog::default();
        for i in 0..(REFUSAL_LOG_ADDRESSES as u32 * 3) {
            log.note(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(log.by_ip.len() <= REFUSAL_LOG_ADDRESSES);
    }

    #[test]
    fn the_per_address_cap_is_given_back_on_drop() {
        let per = PerAddress::default();
        let a = per.take(ip(1), 2).unwrap();
        let _b = per.take(ip(1), 2).unwrap();
        assert!(per.take(ip(1), 2).is_none());
        assert!(per.take(ip(2), 2).is_some());
        drop(a);
        assert!(per.take(ip(1), 2).is_some());
    }

    #[test]
    fn the_idlest_unproductive_member_makes_room() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let m = |serial, productive, s| Member {
            serial,
            productive,
            last_in: at(s),
        };
        let newcomer = m(9, false, 100);
        let others = [
            m(1, true, 1),
            m(2, false, 50),
            m(3, false, 10),
            m(4, true, 90),
        ];
        assert_eq!(make_room(&newcomer, &others), Some(3));
        // All productive: an unknown newcomer waits its turn; a productive one replaces the
        // longest silent.
        let busy = [m(1, true, 1), m(4, true, 90)];
        assert_eq!(make_room(&newcomer, &busy), None);
        assert_eq!(make_room(&m(9, true, 100), &busy), Some(1));
        assert_eq!(make_room(&newcomer, &[]), None);
    }
}
