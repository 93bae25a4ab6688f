use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

use super::*;
use crate::app::AppOp;
use crate::protocol::VectorClock;
use crate::store::{MemoryEventStore, SaveOutcome, StoreStats};

fn me() -> NodeId {
    NodeId::from_u128(1)
}

fn ev(origin: u128, seq: u64, text: &str) -> Event {
    Event {
        id: uuid::Uuid::now_v7(),
        origin: NodeId::from_u128(origin),
        seq,
        hlc: seq,
        created_at_ms: 1000 + seq,
        payload: Bytes::from(AppOp::chat(text).unwrap().encode().unwrap()),
        sig: Bytes::new(),
    }
}

fn keys(events: impl IntoIterator<Item = Event>) -> Vec<(NodeId, u64)> {
    events.into_iter().map(|e| (e.origin, e.seq)).collect()
}

fn feed_of(store: Arc<dyn EventStore>) -> (Feed, mpsc::Receiver<SessionEvent>) {
    let (tx, rx) = mpsc::channel(1024);
    (Feed::new(store, me(), tx, Arc::default()), rx)
}

/// The next batch, skipping other session events.
async fn next_batch(rx: &mut mpsc::Receiver<SessionEvent>) -> EventBatch {
    loop {
        match rx.recv().await.expect("the feed ended") {
            SessionEvent::Events(b) => return b,
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_reaches_a_slow_screen_once_in_commit_order() {
    let store = Arc::new(MemoryEventStore::new());
    store
        .save_many((1..=10).map(|s| ev(2, s, "old")).collect())
        .await
        .unwrap();
    let (mut feed, mut rx) = feed_of(store.clone());
    let (history, cursor) = feed.history().await.unwrap();
    assert_eq!((history.len(), cursor), (10, 10));
    tokio::spawn(feed.run(cursor));
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            // Bursts from several origins, interleaved, faster than the screen reads.
            for chunk in 0..50u64 {
                let events = (0..100u64)
                    .map(|i| ev(3 + u128::from(i % 3), chunk * 100 + i + 1, "new"))
                    .collect();
                store.save_many(events).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut shown = Vec::new();
    while shown.len() < 5000 {
        let batch = next_batch(&mut rx).await;
        assert_eq!(batch.kind, BatchKind::Live);
        assert!(batch.rows.len() <= BATCH);
        shown.extend(batch.rows.into_iter().map(|r| r.event));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    writer.await.unwrap();
    let (committed, end) = store.committed_since(10, usize::MAX).await.unwrap();
    assert_eq!(end, 5010);
    assert_eq!(keys(shown), keys(committed));
    assert!(rx.try_recv().is_err() || !matches!(rx.try_recv(), Ok(SessionEvent::Events(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_that_does_not_read_holds_the_feed_back() {
    let store = Arc::new(MemoryEventStore::new());
    let n = 5 * BATCH as u64;
    store
        .save_many((1..=n).map(|s| ev(2, s, "x")).collect())
        .await
        .unwrap();
    let (feed, mut rx) = feed_of(store);
    tokio::spawn(feed.run(0));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.len(), IN_FLIGHT, "only {IN_FLIGHT} batches may wait");
    // Holding a batch keeps its ticket; dropping batches lets the rest through, all of it.
    let mut shown = 0u64;
    while shown < n {
        shown += next_batch(&mut rx).await.rows.len() as u64;
    }
    assert_eq!(shown, n);
}

#[tokio::test]
async fn a_large_run_says_catching_up_and_reports_its_end() {
    let store = Arc::new(MemoryEventStore::new());
    let (feed, mut rx) = feed_of(store.clone());
    tokio::spawn(feed.run(0));
    store
        .save_many((1..=3000).map(|s| ev(2, s, "x")).collect())
        .await
        .unwrap();
    let mut shown = 0;
    let mut said_catching_up = false;
    let done = loop {
        match rx.recv().await.unwrap() {
            SessionEvent::Events(b) => {
                shown += b.rows.len();
                said_catching_up |= b.progress.catching_up;
                assert_eq!(b.progress.shown, shown as u64);
                assert_eq!(b.progress.held, 3000);
            }
            SessionEvent::Progress(p) => break p,
            _ => {}
        }
    };
    assert!(said_catching_up);
    assert_eq!(
        done,
        Progress {
            shown: 3000,
            held: 3000,
            catching_up: false
        }
    );
    // A single new event afterwards is no catch-up.
    store.save(ev(2, 3001, "y")).await.unwrap();
    let b = next_batch(&mut rx).await;
    assert_eq!((b.rows.len(), b.progress.catching_up), (1, false));
}

#[test]
fn rows_name_who_delivered_them_or_else_their_origin() {
    let d = Deliveries::default();
    d.note(NodeId::from_u128(2), 1, NodeId::from_u128(9), 5);
    let rows = d.rows(vec![ev(2, 1, "a"), ev(2, 2, "b"), ev(1, 1, "mine")], me());
    let from: Vec<_> = rows.iter().map(|r| (r.from, r.age_ms == 5)).collect();
    assert_eq!(from[0], (Some(NodeId::from_u128(9)), true));
    assert_eq!(from[1].0, Some(NodeId::from_u128(2)));
    assert_eq!(from[2], (None, false));
    for i in 0..(DELIVERIES_CAPACITY as u64 + 10) {
        d.note(NodeId::from_u128(3), i, NodeId::from_u128(9), 0);
    }
    let map = d.lock();
    assert_eq!(map.by_key.len(), DELIVERIES_CAPACITY, "bounded");
    assert_eq!(map.order.len(), DELIVERIES_CAPACITY);
}

/// A store whose commit sequence can hold a replacement, as an equivocation winner would
/// be committed.
#[derive(Default)]
struct ReplacingStore {
    log: Mutex<Vec<Event>>,
    held: Mutex<HashMap<(NodeId, u64), Event>>,
    commits: watch::Sender<u64>,
}

impl ReplacingStore {
    fn commit(&self, e: Event) {
        self.held
            .lock()
            .unwrap()
            .insert((e.origin, e.seq), e.clone());
        let mut log = self.log.lock().unwrap();
        log.push(e);
        self.commits.send_replace(log.len() as u64);
    }
}

#[async_trait]
impl EventStore for ReplacingStore {
    async fn save(&self, _: Event) -> Result<SaveOutcome, StoreError> {
        unreachable!("the feed never saves")
    }
    async fn events_since(&self, _: NodeId, _: u64, _: usize) -> Result<Vec<Event>, StoreError> {
        unreachable!("the feed reads the commit sequence")
    }
    async fn all_events(&self) -> Result<Vec<Event>, StoreError> {
        let mut all: Vec<Event> = self.held.lock().unwrap().values().cloned().collect();
        all.sort_by_key(|e| (e.origin, e.seq));
        Ok(all)
    }
    async fn get(&self, _: NodeId, _: u64) -> Result<Option<Event>, StoreError> {
        unreachable!()
    }
    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.held.lock().unwrap().len() as u64)
    }
    async fn count_per_node(&self) -> Result<BTreeMap<NodeId, u64>, StoreError> {
        unreachable!()
    }
    async fn clock(&self) -> Result<VectorClock, StoreError> {
        unreachable!()
    }
    async fn latest_seq(&self, _: NodeId) -> Result<u64, StoreError> {
        unreachable!()
    }
    async fn max_hlc(&self) -> Result<u64, StoreError> {
        unreachable!()
    }
    async fn committed_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, u64), StoreError> {
        let log = self.log.lock().unwrap();
        let start = (cursor as usize).min(log.len());
        let events: Vec<Event> = log[start..].iter().take(limit).cloned().collect();
        let next = cursor + events.len() as u64;
        Ok((events, next))
    }
    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        unreachable!()
    }
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_replaced_event_reloads_the_view_with_what_the_store_holds() {
    let store = Arc::new(ReplacingStore::default());
    store.commit(ev(2, 1, "a"));
    store.commit(ev(2, 2, "loser"));
    let (mut feed, mut rx) = feed_of(store.clone());
    let (history, cursor) = feed.history().await.unwrap();
    assert_eq!((history.len(), cursor), (2, 2));
    tokio::spawn(feed.run(cursor));
    let winner = ev(2, 2, "winner");
    store.commit(winner.clone());
    let live = next_batch(&mut rx).await;
    assert_eq!(live.kind, BatchKind::Live);
    assert_eq!(
        live.rows[0].event, winner,
        "the replacement is shown as it arrives"
    );
    let reload = next_batch(&mut rx).await;
    assert_eq!(reload.kind, BatchKind::Reload { first: true });
    let events: Vec<Event> = reload.rows.into_iter().map(|r| r.event).collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], winner);
    let model = crate::app::Model::from_events(events.iter());
    assert_eq!(
        model.chat().map(|l| l.text).collect::<Vec<_>>(),
        ["a", "winner"]
    );
}

#[tokio::test]
async fn a_history_with_a_replacement_is_what_the_store_holds() {
    let store = Arc::new(ReplacingStore::default());
    store.commit(ev(2, 1, "loser"));
    store.commit(ev(2, 1, "winner"));
    let (mut feed, _rx) = feed_of(store);
    let (history, cursor) = feed.history().await.unwrap();
    assert_eq!(cursor, 2);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].event.payload, ev(2, 1, "winner").payload);
}
