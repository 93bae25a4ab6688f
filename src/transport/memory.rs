//! A transport inside one process, with fault injection: message loss, delay, and
//! partitions between named nodes. Used by tests and demos.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use super::{Inbound, Peer, PeerAddr, Reply, Transport, TransportError};
use crate::protocol::{Message, NodeId};

#[derive(Default)]
struct Faults {
    drop_rate: f64,
    delay: (Duration, Duration),
    /// Unordered pairs of addresses that cannot reach each other.
    cut: HashSet<(PeerAddr, PeerAddr)>,
}

struct NetInner {
    endpoints: Mutex<HashMap<PeerAddr, mpsc::Sender<Inbound>>>,
    faults: Mutex<Faults>,
    rng: Mutex<SmallRng>,
    delivered: AtomicU64,
    dropped: AtomicU64,
    bytes: AtomicU64,
}

/// The shared medium that memory transports talk through.
#[derive(Clone)]
pub struct MemoryNetwork {
    inner: Arc<NetInner>,
}

/// Counters of a [`MemoryNetwork`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages delivered.
    pub delivered: u64,
    /// Messages lost to the drop rate or a partition.
    pub dropped: u64,
    /// Encoded bytes of the messages delivered.
    pub bytes: u64,
}

impl Default for MemoryNetwork {
    fn default() -> Self {
        Self::new(0)
    }
}

impl MemoryNetwork {
    /// A perfect network; `seed` drives loss and delay draws.
    pub fn new(seed: u64) -> Self {
        MemoryNetwork {
            inner: Arc::new(NetInner {
                endpoints: Mutex::new(HashMap::new()),
                faults: Mutex::new(Faults::default()),
                rng: Mutex::new(SmallRng::seed_from_u64(seed)),
                delivered: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
            }),
        }
    }

    /// A transport for node `id`, reachable at `addr`.
    pub fn transport(&self, id: NodeId, addr: impl Into<PeerAddr>) -> MemoryTransport {
        MemoryTransport {
            net: self.clone(),
            me: Peer::new(id, addr),
        }
    }

    /// Each message is lost with probability `rate` (0.0 ..= 1.0).
    pub fn set_drop_rate(&self, rate: f64) {
        self.faults().drop_rate = rate.clamp(0.0, 1.0);
    }

    /// Each message is delayed by a uniform draw in `min ..= max`.
    pub fn set_delay(&self, min: Duration, max: Duration) {
        self.faults().delay = (min, max.max(min));
    }

    /// `a` and `b` can no longer reach each other.
    pub fn cut(&self, a: &PeerAddr, b: &PeerAddr) {
        self.faults().cut.insert(ordered(a, b));
    }

    /// Every node of `left` is cut from every node of `right`.
    pub fn partition(&self, left: &[PeerAddr], right: &[PeerAddr]) {
        let mut f = self.faults();
        for a in left {
            for b in right {
                f.cut.insert(ordered(a, b));
            }
        }
    }

    /// Removes every cut.
    pub fn heal(&self) {
        self.faults().cut.clear();
    }

    /// Counters so far.
    pub fn stats(&self) -> NetworkStats {
        NetworkStats {
            delivered: self.inner.delivered.load(Ordering::Relaxed),
            dropped: self.inner.dropped.load(Ordering::Relaxed),
            bytes: self.inner.bytes.load(Ordering::Relaxed),
        }
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.inner.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides the fate of one message from `from` to `to`: `None` if lost, else its delay.
    fn fate(&self, from: &PeerAddr, to: &PeerAddr) -> Option<Duration> {
        let f = self.faults();
        if f.cut.contains(&ordered(from, to)) {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut rng = self.inner.rng.lock().unwrap_or_else(|p| p.into_inner());
        if f.drop_rate > 0.0 && rng.random_bool(f.drop_rate) {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let (lo, hi) = f.delay;
        Some(if hi > lo {
            rng.random_range(lo..=hi)
        } else {
            lo
        })
    }

    fn endpoint(&self, addr: &PeerAddr) -> Option<mpsc::Sender<Inbound>> {
        self.inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(addr)
            .cloned()
    }

    fn count(&self, message: &Message) -> usize {
        let len = message.encoded_len();
        self.inner.delivered.fetch_add(1, Ordering::Relaxed);
        self.inner.bytes.fetch_add(len as u64, Ordering::Relaxed);
        len
    }
}

fn ordered(a: &PeerAddr, b: &PeerAddr) -> (PeerAddr, PeerAddr) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

/// One node's end of a [`MemoryNetwork`].
pub struct MemoryTransport {
    net: MemoryNetwork,
    me: Peer,
}

impl MemoryTransport {
    async fn deliver(
        &self,
        to: &PeerAddr,
        message: Message,
        reply: Option<Reply>,
    ) -> Result<bool, TransportError> {
        let Some(delay) = self.net.fate(&self.me.addr, to) else {
            return Ok(false);
        };
        let Some(endpoint) = self.net.endpoint(to) else {
            return Err(TransportError::Unreachable {
                addr: to.clone(),
                reason: "no node listens there".into(),
            });
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let wire_bytes = self.net.count(&message);
        let item = Inbound::Message {
            from: self.me.clone(),
            message,
            reply,
            wire_bytes,
        };
        endpoint
            .send(item)
            .await
            .map_err(|_| TransportError::Closed("peer stopped".into()))?;
        Ok(true)
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    async fn start(&self, inbound: mpsc::Sender<Inbound>) -> Result<(), TransportError> {
        self.net
            .inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.me.addr.clone(), inbound);
        Ok(())
    }

    async fn stop(&self) {
        self.net
            .inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.me.addr);
    }

    async fn request(
        &self,
        peer: &Peer,
        message: Message,
        timeout: Duration,
    ) -> Result<(Message, usize), TransportError> {
        let attempt = async {
            let (reply, rx) = Reply::channel();
            if !self.deliver(&peer.addr, message, Some(reply)).await? {
                // Lost on the way: the requester only learns it from the deadline.
                std::future::pending::<()>().await;
            }
            let response = rx
                .await
                .map_err(|_| TransportError::Closed("no response".into()))?;
            match self.net.fate(&peer.addr, &self.me.addr) {
                Some(delay) => {
                    tokio::time::sleep(delay).await;
                    let len = self.net.count(&response);
                    Ok((response, len))
                }
                None => std::future::pending().await,
            }
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| TransportError::Timeout(timeout))?
    }

    async fn send(&self, peer: &Peer, message: Message) -> Result<(), TransportError> {
        if self.net.endpoint(&peer.addr).is_none() {
            return Err(TransportError::Unreachable {
                addr: peer.addr.clone(),
                reason: "no node listens there".into(),
            });
        }
        // One-way: the sender does not wait for the delay or delivery.
        let this = MemoryTransport {
            net: self.net.clone(),
            me: self.me.clone(),
        };
        let to = peer.addr.clone();
        tokio::spawn(async move {
            let _ = this.deliver(&to, message, None).await;
        });
        Ok(())
    }

    fn local_addr(&self) -> PeerAddr {
        self.me.addr.clone()
    }
}
