//! An event store in memory: per origin, a sorted map from seq to event, and the commit
//! sequence as a list of keys in insertion order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{EventStore, SaveOutcome, StoreError, StoreStats};
use crate::protocol::equivocation::{Resolution, resolve};
use crate::protocol::{Event, NodeId, VectorClock};

#[derive(Default)]
struct OriginLog {
    events: BTreeMap<u64, Event>,
    /// Highest seq held contiguously from 1.
    contiguous: u64,
}

#[derive(Default)]
struct Inner {
    origins: HashMap<NodeId, OriginLog>,
    total: u64,
    size_bytes: u64,
    oldest_ms: Option<u64>,
    newest_ms: Option<u64>,
    max_hlc: u64,
    /// The own-seq reservation ([`EventStore::reserve_seqs`]).
    reservation: u64,
    /// The commit sequence: the key of each inserted event, in insertion order.
    committed: Vec<(NodeId, u64)>,
    closed: bool,
}

/// Events in memory. Inserts cost O(log n); nothing survives the process.
pub struct MemoryEventStore {
    inner: Mutex<Inner>,
    /// The end of the commit sequence, for followers.
    commits: tokio::sync::watch::Sender<u64>,
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        MemoryEventStore {
            inner: Mutex::default(),
            commits: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl MemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells followers how far the commit sequence goes now.
    fn announce(&self, end: usize) {
        self.commits.send_if_modified(|v| {
            let changed = *v != end as u64;
            *v = end as u64;
            changed
        });
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // breaks the next caller, so a poisoned lock is taken over.
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if guard.closed {
            return Err(StoreError::Closed);
        }
        Ok(guard)
    }
}

impl Inner {
    fn insert(&mut self, event: Event) -> SaveOutcome {
        let log = self.origins.entry(event.origin).or_default();
        if let Some(held) = log.events.get_mut(&event.seq) {
            if *held == event {
                return SaveOutcome::Duplicate;
            }
            let replaced = resolve(held, &event) == Resolution::Replace;
            let before = held.clone();
            if replaced {
                self.size_bytes =
                    self.size_bytes - before.encoded_len() as u64 + event.encoded_len() as u64;
                self.max_hlc = self.max_hlc.max(event.hlc);
                *held = event;
                // Followers of the commit sequence see the winner as a new record.
                self.committed.push((before.origin, before.seq));
            }
            return SaveOutcome::Equivocation {
                held: Box::new(before),
                replaced,
            };
        }
        self.total += 1;
        self.size_bytes += event.encoded_len() as u64;
        self.max_hlc = self.max_hlc.max(event.hlc);
        let t = event.created_at_ms;
        self.oldest_ms = Some(self.oldest_ms.map_or(t, |o| o.min(t)));
        self.newest_ms = Some(self.newest_ms.map_or(t, |n| n.max(t)));
        self.committed.push((event.origin, event.seq));
        log.events.insert(event.seq, event);
        while log.events.contains_key(&(log.contiguous + 1)) {
            log.contiguous += 1;
        }
        SaveOutcome::Inserted
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
    async fn save(&self, event: Event) -> Result<SaveOutcome, StoreError> {
        let mut inner = self.lock()?;
        let outcome = inner.insert(event);
        let end = inner.committed.len();
        drop(inner);
        self.announce(end);
        Ok(outcome)
    }

    async fn save_many(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        let mut inner = self.lock()?;
        let out = events.into_iter().map(|e| inner.insert(e)).collect();
        let end = inner.committed.len();
        drop(inner);
        self.announce(end);
        Ok(out)
    }

    async fn committed_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, u64), StoreError> {
        let inner = self.lock()?;
        let start = usize::try_from(cursor)
            .unwrap_or(usize::MAX)
            .min(inner.committed.len());
        let keys = &inner.committed[start..];
        let events: Vec<Event> = keys
            .iter()
            .take(limit)
            .filter_map(|(origin, seq)| inner.origins.get(origin)?.events.get(seq).cloned())
            .collect();
        let taken = keys.len().min(limit) as u64;
        Ok((events, cursor.max(start as u64) + taken))
    }

    fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    async fn events_since(
        &self,
        origin: NodeId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let inner = self.lock()?;
        let Some(log) = inner.origins.get(&origin) else {
            return Ok(Vec::new());
        };
        Ok(log
            .events
            .range(after.saturating_add(1)..)
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn all_events(&self) -> Result<Vec<Event>, StoreError> {
        let inner = self.lock()?;
        let mut origins: Vec<_> = inner.origins.iter().collect();
        origins.sort_by_key(|(id, _)| **id);
        Ok(origins
            .into_iter()
            .flat_map(|(_, log)| log.events.values().cloned())
            .collect())
    }

    async fn get(&self, origin: NodeId, seq: u64) -> Result<Option<Event>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .origins
            .get(&origin)
            .and_then(|l| l.events.get(&seq))
            .cloned())
    }

    async fn has(&self, origin: NodeId, seq: u64) -> Result<bool, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .origins
            .get(&origin)
            .is_some_and(|l| l.events.contains_key(&seq)))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.lock()?.total)
    }

    async fn count_per_node(&self) -> Result<BTreeMap<NodeId, u64>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .origins
            .iter()
            .map(|(id, l)| (*id, l.events.len() as u64))
            .collect())
    }

    async fn clock(&self) -> Result<VectorClock, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .origins
            .iter()
            .map(|(id, l)| (*id, l.contiguous))
            .collect())
    }

    async fn latest_seq(&self, origin: NodeId) -> Result<u64, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .origins
            .get(&origin)
            .and_then(|l| l.events.keys().next_back().copied())
            .unwrap_or(0))
    }

    async fn max_hlc(&self) -> Result<u64, StoreError> {
        Ok(self.lock()?.max_hlc)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let inner = self.lock()?;
        Ok(StoreStats {
            total_events: inner.total,
            unique_nodes: inner.origins.len() as u64,
            size_bytes: inner.size_bytes,
            oldest_ms: inner.oldest_ms,
            newest_ms: inner.newest_ms,
            dropped_records: 0,
            dropped_bytes: 0,
        })
    }

    async fn seq_reservation(&self) -> Result<u64, StoreError> {
        Ok(self.lock()?.reservation)
    }

    async fn reserve_seqs(&self, up_to: u64) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        inner.reservation = inner.reservation.max(up_to);
        Ok(())
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.lock()?.closed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use uuid::Uuid;

    pub(crate) fn ev(origin: u128, seq: u64) -> Event {
        Event {
            id: Uuid::now_v7(),
            origin: NodeId::from_u128(origin),
            seq,
            hlc: seq * 10,
            created_at_ms: 1000 + seq,
            payload: Bytes::from(format!("{origin}/{seq}")),
            sig: bytes::Bytes::new(),
        }
    }

    #[tokio::test]
    async fn save_get_has_and_duplicates() {
        let s = MemoryEventStore::new();
        let e = ev(1, 1);
        assert_eq!(s.save(e.clone()).await.unwrap(), SaveOutcome::Inserted);
        assert_eq!(s.save(e.clone()).await.unwrap(), SaveOutcome::Duplicate);
        let mut forged = ev(1, 1);
        forged.payload = Bytes::from_static(b"forged");
        let replaced = resolve(&e, &forged) == Resolution::Replace;
        assert_eq!(
            s.save(forged.clone()).await.unwrap(),
            SaveOutcome::Equivocation {
                held: Box::new(e.clone()),
                replaced
            }
        );
        let winner = if replaced { forged } else { e.clone() };
        assert_eq!(s.get(e.origin, 1).await.unwrap(), Some(winner));
        assert!(s.has(e.origin, 1).await.unwrap());
        assert!(!s.has(e.origin, 2).await.unwrap());
        assert_eq!(s.count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn clock_is_contiguous_and_latest_seq_is_not() {
        let s = MemoryEventStore::new();
        let o = NodeId::from_u128(1);
        s.save_many(vec![ev(1, 1), ev(1, 2), ev(1, 4)])
            .await
            .unwrap();
        assert_eq!(s.clock().await.unwrap().get(&o), 2);
        assert_eq!(s.latest_seq(o).await.unwrap(), 4);
        s.save(ev(1, 3)).await.unwrap();
        assert_eq!(s.clock().await.unwrap().get(&o), 4);
    }

    #[tokio::test]
    async fn events_since_respects_after_and_limit() {
        let s = MemoryEventStore::new();
        for seq in (1..=10).rev() {
            s.save(ev(1, seq)).await.unwrap();
        }
        s.save(ev(2, 1)).await.unwrap();
        let o = NodeId::from_u128(1);
        let got = s.events_since(o, 3, 4).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![4, 5, 6, 7]
        );
        assert!(s.events_since(o, 10, 5).await.unwrap().is_empty());
        assert!(
            s.events_since(NodeId::from_u128(3), 0, 5)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.all_events().await.unwrap().len(), 11);
    }

    #[tokio::test]
    async fn stats_and_counts() {
        let s = MemoryEventStore::new();
        assert_eq!(s.stats().await.unwrap(), StoreStats::default());
        s.save_many(vec![ev(1, 1), ev(1, 2), ev(2, 1)])
            .await
            .unwrap();
        let st = s.stats().await.unwrap();
        assert_eq!(st.total_events, 3);
        assert_eq!(st.unique_nodes, 2);
        assert!(st.size_bytes > 0);
        assert_eq!(st.oldest_ms, Some(1001));
        assert_eq!(st.newest_ms, Some(1002));
        let per = s.count_per_node().await.unwrap();
        assert_eq!(per[&NodeId::from_u128(1)], 2);
        assert_eq!(s.max_hlc().await.unwrap(), 20);
    }

    #[tokio::test]
    async fn closed_store_refuses_calls() {
        let s = MemoryEventStore::new();
        s.close().await.unwrap();
        assert!(matches!(s.count().await, Err(StoreError::Closed)));
    }
}
