//! Per-peer link counters of the TCP transport.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::budget::TokenBucket;
use crate::protocol::NodeId;
use crate::transport::PeerAddr;

/// What the transport knows of its link to one peer (kept across reconnections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLinkStats {
    /// The peer.
    pub peer: NodeId,
    /// Where it was last reached (or connected from, with its listen port).
    pub addr: PeerAddr,
    /// Open connections to it now (0, 1, or 2 when both sides dialed at once).
    pub connections: usize,
    /// Since when a connection has been open, if one is.
    pub connected_since: Option<SystemTime>,
    /// Frames received (handshake included).
    pub frames_in: u64,
    /// Frames sent (handshake included).
    pub frames_out: u64,
    /// Bytes received, length prefixes included.
    pub bytes_in: u64,
    /// Bytes sent, length prefixes included.
    pub bytes_out: u64,
    /// Round-trip time of the last request answered.
    pub last_rtt: Option<Duration>,
    /// The last error on this link (failed dial, timeout, violation, close reason).
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct LinkState {
    addr: PeerAddr,
    connections: usize,
    connected_since: Option<SystemTime>,
    last_error: Option<String>,
    /// When the peer last answered one of our requests (it gives, so it keeps its slot).
    last_answer: Option<Instant>,
    /// Its response-bytes budget, kept across reconnections so that reconnecting does not
    /// refill it.
    responses: TokenBucket,
}

/// Live counters of one link, shared by its connections.
#[derive(Debug)]
pub(super) struct LinkCounters {
    peer: NodeId,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Microseconds; 0 until a request was answered.
    last_rtt_us: AtomicU64,
    state: Mutex<LinkState>,
}

impl LinkCounters {
    /// Counters of the link to `peer`, whose responses are budgeted at `rate` bytes per
    /// second with `burst` (rate 0: unlimited).
    pub(super) fn new(peer: NodeId, addr: PeerAddr, rate: u64, burst: u64) -> Self {
        LinkCounters {
            peer,
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            last_rtt_us: AtomicU64::new(0),
            state: Mutex::new(LinkState {
                addr,
                connections: 0,
                connected_since: None,
                last_error: None,
                last_answer: None,
                responses: TokenBucket::new(rate, burst, Instant::now()),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LinkState> {
        // Every update is a single assignment: a poisoned lock holds consistent data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn received(&self, bytes: usize) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn sent(&self, bytes: usize) {
        self.frames_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The peer answered one of our requests after `rtt`.
    pub(super) fn rtt(&self, rtt: Duration) {
        let us = (rtt.as_micros() as u64).max(1);
        self.last_rtt_us.store(us, Ordering::Relaxed);
        self.state().last_answer = Some(Instant::now());
    }

    /// Whether the peer answered one of our requests within `window` of `now`.
    pub(super) fn productive(&self, now: Instant, window: Duration) -> bool {
        self.state()
            .last_answer
            .is_some_and(|t| now.saturating_duration_since(t) < window)
    }

    /// Charges a response of `bytes` to the peer's budget.
    pub(super) fn charge_response(&self, bytes: usize) {
        self.state().responses.charge(bytes, Instant::now());
    }

    /// How long the peer's next request waits for its response budget.
    pub(super) fn response_wait(&self) -> Duration {
        self.state().responses.wait(Instant::now())
    }

    pub(super) fn error(&self, error: impl Into<String>) {
        self.state().last_error = Some(error.into());
    }

    pub(super) fn opened(&self, addr: PeerAddr) {
        let mut st = self.state();
        st.addr = addr;
        st.connections += 1;
        if st.connected_since.is_none() {
            st.connected_since = Some(SystemTime::now());
        }
    }

    pub(super) fn closed(&self) {
        let mut st = self.state();
        st.connections = st.connections.saturating_sub(1);
        if st.connections == 0 {
            st.connected_since = None;
        }
    }

    pub(super) fn snapshot(&self) -> PeerLinkStats {
        let st = self.state();
        let rtt = self.last_rtt_us.load(Ordering::Relaxed);
        PeerLinkStats {
            peer: self.peer,
            addr: st.addr.clone(),
            connections: st.connections,
            connected_since: st.connected_since,
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_out: self.frames_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            last_rtt: (rtt > 0).then(|| Duration::from_micros(rtt)),
            last_error: st.last_error.clone(),
        }
    }
}
