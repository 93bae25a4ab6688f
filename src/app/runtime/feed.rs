//! The live view's feed: it follows the store's commit sequence and hands the screen every
//! record, in commit order, in batches, at the screen's pace.
//!
//! Nothing here reads a lossy stream. The store says how far its commit sequence goes
//! ([`EventStore::commits`]); the feed reads what it has not shown yet
//! ([`EventStore::committed_since`]) in batches of up to [`BATCH`] records and sends each as
//! one [`SessionEvent::Events`]. At most [`IN_FLIGHT`] batches are on their way at once:
//! each carries a ticket that comes back when the screen drops the batch, so a slow screen
//! (a slow terminal, a pipe nobody reads) holds the feed back instead of losing rows, and
//! the memory in flight stays bounded. The screen therefore always shows a prefix of the
//! commit sequence, and all of it once it has caught up: its model is the store's.
//!
//! A record whose `(origin, seq)` the feed has met before replaces an event (see
//! [`crate::store`]): the model cannot unfold the old one, so the feed re-reads every event
//! held and sends it as a [`BatchKind::Reload`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Semaphore, mpsc};

use super::view::{BatchKind, EventBatch, EventRow, Progress, SessionEvent};
use crate::app::model::Seen;
use crate::node::now_ms;
use crate::protocol::{Event, NodeId};
use crate::store::{EventStore, StoreError};

/// Records per batch: large enough that per-batch costs (a store read, a channel hop, a
/// redraw, a stdout flush) vanish at 100,000 events/s, small enough to fold in about a
/// millisecond.
pub const BATCH: usize = 2048;

/// Batches on their way to the screen at once: one being folded, one waiting.
pub const IN_FLIGHT: usize = 2;

/// Quiet after which a run of commits is over (and a catch-up report ends).
pub const QUIET: Duration = Duration::from_millis(500);

/// Wait before retrying a store read that failed (the feed never skips a record).
const RETRY: Duration = Duration::from_millis(200);

/// Deliveries remembered for rows not read yet.
const DELIVERIES_CAPACITY: usize = 16 * 1024;

/// Which peer delivered which event, noted from the node's `received` stream, so rows
/// read from the store can say where they came from. Only an annotation: when the stream
/// lags or the note is evicted, a row names the event's origin instead, and nothing else
/// changes.
#[derive(Debug, Default)]
pub struct Deliveries {
    inner: Mutex<DeliveryMap>,
}

#[derive(Debug, Default)]
struct DeliveryMap {
    by_key: HashMap<(NodeId, u64), (NodeId, i64)>,
    order: VecDeque<(NodeId, u64)>,
}

impl Deliveries {
    fn lock(&self) -> std::sync::MutexGuard<'_, DeliveryMap> {
        // Plain inserts and removals: a panic elsewhere cannot leave it inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that `from` delivered `(origin, seq)`, `age_ms` after it was created.
    pub fn note(&self, origin: NodeId, seq: u64, from: NodeId, age_ms: i64) {
        let mut map = self.lock();
        if map.order.len() >= DELIVERIES_CAPACITY
            && let Some(old) = map.order.pop_front()
        {
            map.by_key.remove(&old);
        }
        if map.by_key.insert((origin, seq), (from, age_ms)).is_none() {
            map.order.push_back((origin, seq));
        }
    }

    /// Turns events into rows, taking their delivery notes.
    fn rows(&self, events: Vec<Event>, me: NodeId) -> Vec<EventRow> {
        let at = SystemTime::now();
        let now = now_ms() as i64;
        let mut map = self.lock();
        events
            .into_iter()
            .map(|event| {
                let (from, age_ms) = if event.origin == me {
                    (None, 0)
                } else {
                    let noted = map.by_key.remove(&(event.origin, event.seq));
                    let (from, age) = noted.unwrap_or_else(|| {
                        (event.origin, now.saturating_sub(event.created_at_ms as i64))
                    });
                    (Some(from), age)
                };
                EventRow {
                    at,
                    event,
                    from,
                    age_ms,
                }
            })
            .collect()
    }
}

/// A run of commits read back to back, for catch-up reports.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// The cursor where it started.
    start: u64,
    /// When its last batch was read.
    last: Instant,
    /// Whether a batch of it said "catching up", so its end must be reported.
    reported: bool,
}

/// The screen went away: the feed has nobody to feed.
struct Gone;

/// Follows a store's commit sequence for one screen. See the module documentation.
pub struct Feed {
    store: Arc<dyn EventStore>,
    me: NodeId,
    out: mpsc::Sender<SessionEvent>,
    deliveries: Arc<Deliveries>,
    tickets: Arc<Semaphore>,
    /// The keys met so far, to tell a replacement from a first commit.
    seen: Seen,
    run: Option<Run>,
    /// Whether the last store read failed (so the warning is not repeated).
    failing: bool,
}

impl Feed {
    /// A feed of `store` for the node `me` (whose own events are rows with no sender),
    /// sending to `out`, naming senders from `deliveries`.
    pub fn new(
        store: Arc<dyn EventStore>,
        me: NodeId,
        out: mpsc::Sender<SessionEvent>,
        deliveries: Arc<Deliveries>,
    ) -> Self {
        Feed {
            store,
            me,
            out,
            deliveries,
            tickets: Arc::new(Semaphore::new(IN_FLIGHT)),
            seen: Seen::default(),
            run: None,
            failing: false,
        }
    }

    /// Every record committed so far, as rows sorted by `(hlc, origin, seq)` (for a
    /// screen's first fold), and the cursor the live feed goes on from.
    pub async fn history(&mut self) -> Result<(Vec<EventRow>, u64), StoreError> {
        let head = *self.store.commits().borrow();
        let mut cursor = 0;
        let mut events = Vec::new();
        while cursor < head {
            let (batch, next) = self.store.committed_since(cursor, 64 * BATCH).await?;
            if next == cursor {
                break;
            }
            events.extend(batch);
            cursor = next;
        }
        // A key met twice was replaced: the fold must see only what the store holds now.
        let mut replaced = false;
        for e in &events {
            replaced |= !self.seen.insert(e.origin, e.seq);
        }
        if replaced {
            events = self.store.all_events().await?;
        }
        events.sort_by_key(Event::order_key);
        Ok((self.deliveries.rows(events, self.me), cursor))
    }

    /// Feeds the screen from `cursor` on until the screen goes away or the store closes.
    pub async fn run(mut self, mut cursor: u64) {
        let mut commits = self.store.commits();
        loop {
            let head = *commits.borrow_and_update();
            if cursor >= head {
                let reported = self.run.is_some_and(|r| r.reported);
                tokio::select! {
                    changed = commits.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(QUIET), if reported => {
                        self.run = None;
                        let done = Progress { shown: cursor, held: head, catching_up: false };
                        if self.out.send(SessionEvent::Progress(done)).await.is_err() {
                            return;
                        }
                    }
                    _ = self.out.closed() => return,
                }
                continue;
            }
            match self.step(cursor, head).await {
                Ok(Some(next)) => cursor = next,
                Ok(None) => return,
                Err(Gone) => return,
            }
        }
    }

    /// Reads and sends the batch at `cursor`; the cursor after it, or `None` once the store
    /// is closed.
    async fn step(&mut self, cursor: u64, head: u64) -> Result<Option<u64>, Gone> {
        let permit = self.ticket().await?;
        let (events, next) = match self.store.committed_since(cursor, BATCH).await {
            Ok(read) => read,
            Err(StoreError::Closed) => return Ok(None),
            Err(e) => {
                // Said once per failing spell, not once per retry.
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(error = %e, cursor, "the live view cannot read the store; retrying");
                    self.send(SessionEvent::Warning(format!(
                        "the live view cannot read the store ({e}); retrying"
                    )))
                    .await?;
                }
                tokio::time::sleep(RETRY).await;
                return Ok(Some(cursor));
            }
        };
        self.failing = false;
        if next <= cursor {
            // The store said there is more but gave nothing: wait rather than spin.
            tokio::time::sleep(RETRY).await;
            return Ok(Some(cursor));
        }
        let mut replaced = false;
        for e in &events {
            replaced |= !self.seen.insert(e.origin, e.seq);
        }
        let progress = self.progress(cursor, next, head.max(next));
        let rows = self.deliveries.rows(events, self.me);
        let batch = EventBatch::with_ticket(rows, BatchKind::Live, progress, permit);
        self.send(SessionEvent::Events(batch)).await?;
        if replaced {
            self.reload(next).await?;
        }
        Ok(Some(next))
    }

    /// The report for a batch from `cursor` to `next`, of `held` records committed.
    fn progress(&mut self, cursor: u64, next: u64, held: u64) -> Progress {
        let now = Instant::now();
        let run = match self.run {
            Some(r) if now.duration_since(r.last) < QUIET => r,
            _ => Run {
                start: cursor,
                last: now,
                reported: false,
            },
        };
        let catching_up =
            next - run.start >= Progress::CATCH_UP_MIN || held - next >= Progress::CATCH_UP_MIN;
        self.run = Some(Run {
            last: now,
            reported: run.reported || catching_up,
            ..run
        });
        Progress {
            shown: next,
            held,
            catching_up,
        }
    }

    /// Sends every event held, as a reload, after a replacement was met at `cursor`.
    async fn reload(&mut self, cursor: u64) -> Result<(), Gone> {
        let mut events = loop {
            match self.store.all_events().await {
                Ok(events) => break events,
                Err(StoreError::Closed) => return Err(Gone),
                Err(e) => {
                    tracing::warn!(error = %e, "the live view cannot re-read the store; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        events.sort_by_key(Event::order_key);
        tracing::info!(
            events = events.len(),
            "an event was replaced in the store: the live view is re-read"
        );
        self.send(SessionEvent::Notice(
            "an event was replaced in the store; the view was re-read".into(),
        ))
        .await?;
        let held = *self.store.commits().borrow();
        let progress = Progress {
            shown: cursor,
            held: held.max(cursor),
            catching_up: false,
        };
        let mut first = true;
        let mut rest = events.into_iter().peekable();
        while first || rest.peek().is_some() {
            let chunk: Vec<Event> = rest.by_ref().take(BATCH).collect();
            let permit = self.ticket().await?;
            let rows = self.deliveries.rows(chunk, self.me);
            let kind = BatchKind::Reload { first };
            let batch = EventBatch::with_ticket(rows, kind, progress, permit);
            self.send(SessionEvent::Events(batch)).await?;
            first = false;
        }
        Ok(())
    }

    async fn ticket(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Gone> {
        tokio::select! {
            permit = self.tickets.clone().acquire_owned() => permit.map_err(|_| Gone),
            _ = self.out.closed() => Err(Gone),
        }
    }

    async fn send(&self, event: SessionEvent) -> Result<(), Gone> {
        self.out.send(event).await.map_err(|_| Gone)
    }
}

#[cfg(test)]
mod tests;
