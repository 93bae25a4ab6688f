//! An [`EventStore`] wrapper that times saves, for the store latency histogram.
//!
//! A save returns once its events are durable under the store's policy (the file store
//! syncs a group of own events at once; SQLite commits), so the time of `save_own` (the
//! node's own events, one group per call) is the latency of the write and its fsync as the
//! node sees it. `save_received` may answer before the
//! sync and is timed under its own label.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::protocol::{Event, NodeId, VectorClock};
use crate::store::{EventStore, SaveOutcome, StoreError, StoreStats};

/// Save latencies by operation (`save`, `save_many`, `save_own`, `save_received`).
pub type SaveLatency = Family<[(&'static str, &'static str); 1], Histogram>;

/// A histogram family from 50 µs to about 3 s.
pub fn save_latency() -> SaveLatency {
    Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_05, 2.0, 16)))
}

/// Wraps a store; every call goes straight through, saves are timed.
pub struct TimedStore {
    inner: Arc<dyn EventStore>,
    latency: SaveLatency,
}

impl TimedStore {
    /// Times the saves of `inner` into `latency` (shared with a [`super::Metrics`]).
    pub fn new(inner: Arc<dyn EventStore>, latency: SaveLatency) -> Self {
        TimedStore { inner, latency }
    }

    fn observe(&self, op: &'static str, since: Instant) {
        self.latency
            .get_or_create(&[("op", op)])
            .observe(since.elapsed().as_secs_f64());
    }
}

#[async_trait]
impl EventStore for TimedStore {
    async fn save(&self, event: Event) -> Result<SaveOutcome, StoreError> {
        let t = Instant::now();
        let r = self.inner.save(event).await;
        self.observe("save", t);
        r
    }

    async fn save_many(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        let t = Instant::now();
        let r = self.inner.save_many(events).await;
        self.observe("save_many", t);
        r
    }

    async fn save_own(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        let t = Instant::now();
        let r = self.inner.save_own(events).await;
        self.observe("save_own", t);
        r
    }

    async fn save_received(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        let t = Instant::now();
        let r = self.inner.save_received(events).await;
        self.observe("save_received", t);
        r
    }

    async fn events_since(
        &self,
        origin: NodeId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.inner.events_since(origin, after, limit).await
    }

    async fn all_events(&self) -> Result<Vec<Event>, StoreError> {
        self.inner.all_events().await
    }

    async fn committed_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, u64), StoreError> {
        self.inner.committed_since(cursor, limit).await
    }

    fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.commits()
    }

    async fn get(&self, origin: NodeId, seq: u64) -> Result<Option<Event>, StoreError> {
        self.inner.get(origin, seq).await
    }

    async fn has(&self, origin: NodeId, seq: u64) -> Result<bool, StoreError> {
        self.inner.has(origin, seq).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.inner.count().await
    }

    async fn count_per_node(&self) -> Result<BTreeMap<NodeId, u64>, StoreError> {
        self.inner.count_per_node().await
    }

    async fn clock(&self) -> Result<VectorClock, StoreError> {
        self.inner.clock().await
    }

    async fn latest_seq(&self, origin: NodeId) -> Result<u64, StoreError> {
        self.inner.latest_seq(origin).await
    }

    async fn max_hlc(&self) -> Result<u64, StoreError> {
        self.inner.max_hlc().await
    }

    async fn seq_reservation(&self) -> Result<u64, StoreError> {
        self.inner.seq_reservation().await
    }

    async fn reserve_seqs(&self, up_to: u64) -> Result<(), StoreError> {
        self.inner.reserve_seqs(up_to).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.inner.stats().await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }
}
