//! Event stores: where a node keeps the events it holds.
//!
//! A store is the one source of truth for a node: its vector clock and its own next seq are
//! rebuilt from the store on start, so the clock can never claim an event the store lacks.
//!
//! # The commit sequence
//! Besides lookups by `(origin, seq)`, every store numbers the records it commits: the
//! first committed record is at cursor 0, the next at 1, and so on, in the order they
//! became readable (log order for the file store). [`EventStore::committed_since`] reads
//! that sequence from a cursor and [`EventStore::commits`] says how far it goes, so a reader
//! that follows it (the app's live view) sees every event exactly once, in the same order,
//! at its own pace, and never needs a lossy stream. A record that *replaces* a held event
//! (a deterministic winner of an equivocation) is committed as a new record: a follower
//! meets its `(origin, seq)` a second time and knows the earlier one was superseded.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;

use crate::protocol::{Event, NodeId, VectorClock};

pub mod file;
pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(test)]
mod contract;

pub use file::FileEventStore;
pub use memory::MemoryEventStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteEventStore, SqliteStoreOptions, SqliteSync};

/// What [`EventStore::save`] did with an event. Deciding this is atomic with the insert, so
/// two concurrent saves of one event give one `Inserted` and one `Duplicate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The event was new and is now held.
    Inserted,
    /// The same event was already held.
    Duplicate,
    /// A different event was held under the same `(origin, seq)`: an equivocation. The
    /// store now holds the one [`crate::protocol::equivocation::resolve`] picks, the same
    /// on every node whatever the order the two arrived in.
    Equivocation {
        /// The event held before this save.
        held: Box<Event>,
        /// Whether the new event won and replaced it (else the new one was dropped).
        replaced: bool,
    },
    /// A different event under the same `(origin, seq)` is held and the new one was
    /// refused, by a store that does not resolve equivocations itself. The memory and file
    /// stores never answer this; the node treats it as an equivocation the held event won.
    Conflict,
}

impl SaveOutcome {
    /// Whether the event now counts as held (new, or the winner of an equivocation).
    pub fn is_inserted(&self) -> bool {
        matches!(
            self,
            SaveOutcome::Inserted | SaveOutcome::Equivocation { replaced: true, .. }
        )
    }
}

/// Figures about a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Events held.
    pub total_events: u64,
    /// Distinct origins among them.
    pub unique_nodes: u64,
    /// Bytes the events take (on disk for a file store, encoded for a memory store).
    pub size_bytes: u64,
    /// Earliest `created_at_ms` held.
    pub oldest_ms: Option<u64>,
    /// Latest `created_at_ms` held.
    pub newest_ms: Option<u64>,
    /// Damaged records dropped when the store was last opened.
    pub dropped_records: u64,
    /// Bytes of damaged records dropped when the store was last opened.
    pub dropped_bytes: u64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The operating system refused a file operation.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and to which path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the store's directory.
    #[error(
        "the store in {} is in use by another process (pid {pid}); close it, or use another data directory or profile",
        dir.display()
    )]
    Locked {
        /// The store directory.
        dir: PathBuf,
        /// The holder's pid, as written in the lock file ("unknown" if unreadable).
        pid: String,
    },
    /// Stored data could not be understood.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// The store's identity key cannot be used (too open, malformed, not matching the
    /// store's node id, or a store from before signed events).
    #[error("{0}")]
    Identity(String),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

/// Where events live. Implementations must be safe to call concurrently.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Stores one event unless an event with its `(origin, seq)` is held already.
    async fn save(&self, event: Event) -> Result<SaveOutcome, StoreError>;

    /// Stores many events; one outcome per event, in order.
    async fn save_many(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(self.save(e).await?);
        }
        Ok(out)
    }

    /// Stores a group of events created by this node (see
    /// [`crate::protocol::engine::create::MAX_OWN_BATCH`]): like [`EventStore::save_many`], but each is
    /// durable under the store's policy before this returns, and the store makes them so
    /// at once (one sync for the group, not waiting out a group-commit interval), since a
    /// user waits for them. The default is `save_many`, which every store but the file
    /// store already commits at once.
    async fn save_own(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        self.save_many(events).await
    }

    /// Stores events received from peers. Like [`EventStore::save_many`], but a store may
    /// answer once the outcomes are decided, before the events are durable (and before
    /// reads and the clock show them): a crash can only lose events that peers hold and
    /// will send again, and the sender of a message is not kept waiting for a disk sync.
    async fn save_received(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        self.save_many(events).await
    }

    /// Up to `limit` events of `origin` with `seq > after`, in seq order.
    async fn events_since(
        &self,
        origin: NodeId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// Every event held, per origin in seq order.
    async fn all_events(&self) -> Result<Vec<Event>, StoreError>;

    /// The event `(origin, seq)`, if held.
    async fn get(&self, origin: NodeId, seq: u64) -> Result<Option<Event>, StoreError>;

    /// Whether `(origin, seq)` is held.
    async fn has(&self, origin: NodeId, seq: u64) -> Result<bool, StoreError> {
        Ok(self.get(origin, seq).await?.is_some())
    }

    /// Number of events held.
    async fn count(&self) -> Result<u64, StoreError>;

    /// Number of events held per origin.
    async fn count_per_node(&self) -> Result<BTreeMap<NodeId, u64>, StoreError>;

    /// Per origin, the highest seq held contiguously from 1.
    async fn clock(&self) -> Result<VectorClock, StoreError>;

    /// The highest seq held for `origin`, gaps or not (0 if none).
    async fn latest_seq(&self, origin: NodeId) -> Result<u64, StoreError>;

    /// The highest HLC held (0 if empty).
    async fn max_hlc(&self) -> Result<u64, StoreError>;

    /// Up to `limit` records of the commit sequence from position `cursor` on (see the
    /// module documentation), in commit order, and the cursor just past them. A cursor at
    /// or beyond the end gives no events and the same cursor back.
    async fn committed_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, u64), StoreError>;

    /// The end of the commit sequence (records committed so far), updated after each
    /// commit: `committed_since(c, ..)` has events exactly when `c` is below the value. Wait
    /// on it with [`tokio::sync::watch::Receiver::changed`]; it only grows.
    fn commits(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Figures about the store.
    async fn stats(&self) -> Result<StoreStats, StoreError>;

    /// The persisted own-seq reservation: the highest own seq this node may have signed
    /// (see [`crate::protocol::own_seq`]); 0 if none. The default, for a store that cannot
    /// persist one, is always 0, which turns seq recovery off.
    async fn seq_reservation(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Raises the reservation to `up_to` (never lowers it) and makes it durable before
    /// returning: the node signs an event under a seq only after this. The default does
    /// nothing (see [`EventStore::seq_reservation`]).
    async fn reserve_seqs(&self, up_to: u64) -> Result<(), StoreError> {
        let _ = up_to;
        Ok(())
    }

    /// Flushes and releases the store; later calls fail with [`StoreError::Closed`].
    async fn close(&self) -> Result<(), StoreError>;
}
