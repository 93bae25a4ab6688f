//! An event store in a SQLite database (cargo feature `sqlite`).
//!
//! A store directory holds `events.sqlite3` (the events and the node's identity key, see
//! [`schema`] for the tables) and the same `lock` file as the file store, so one process
//! at a time owns a store and its node id never writes one seq twice.
//!
//! - Writes go through one writer thread that commits whatever has queued in one
//!   transaction (WAL mode): a save returns once its transaction is committed under the
//!   [`SqliteSync`] level in force, and only then do reads and the clock show it.
//! - Reads run on a blocking thread on a second, read-only connection, which WAL lets read
//!   while the writer writes; [`SqliteEventStore::for_each_event`] streams the whole store
//!   row by row, never holding more than one event.
//! - The clock, counts and figures are kept in memory (see `state`), rebuilt at open from
//!   one scan that reads no payloads.
//!
//! Duplicates and conflicts are decided as in [`crate::store::MemoryEventStore`]: a held
//! `(origin, seq)` is read back and compared with the new event field by field.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::auth::NodeIdentity;
use crate::protocol::{Event, NodeId, VectorClock};
use crate::store::file::lock::DirLock;
use crate::store::file::{default_data_dir, io_err, room_dir};
use crate::store::{EventStore, SaveOutcome, StoreError, StoreStats};

mod row;
pub mod schema;
mod state;
mod writer;

use row::{EVENT_COLUMNS, blob_array, event_of_row, seq_key};
use state::{Held, State};
use writer::Cmd;

/// The database's name inside a store directory.
pub const DB_FILE: &str = "events.sqlite3";

/// SQLite's `synchronous` setting: when a commit reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// The WAL is synced at every commit: a committed save survives a power cut. The
    /// default; batching makes it one sync per batch, not per event.
    #[default]
    Full,
    /// The WAL is synced only at checkpoints: a committed save survives a crash of the
    /// process, not of the machine.
    Normal,
    /// Never sync.
    Off,
}

/// How a [`SqliteEventStore`] is opened.
#[derive(Debug, Clone)]
pub struct SqliteStoreOptions {
    /// Durability of a commit.
    pub synchronous: SqliteSync,
    /// Events the writer puts in one transaction at most (it takes whole save calls, so a
    /// single larger call still goes in one).
    pub max_batch: usize,
    /// Save calls that may wait for the writer before further callers wait to queue.
    pub queue: usize,
}

impl Default for SqliteStoreOptions {
    fn default() -> Self {
        SqliteStoreOptions {
            synchronous: SqliteSync::Full,
            max_batch: 4096,
            queue: 1024,
        }
    }
}

/// Events in a SQLite database; see the [module docs](self).
pub struct SqliteEventStore {
    writer: Mutex<Option<mpsc::Sender<Cmd>>>,
    reader: Arc<Mutex<Option<Connection>>>,
    state: Arc<Mutex<State>>,
    /// The end of the commit sequence, for followers.
    commits: tokio::sync::watch::Sender<u64>,
    closed: AtomicBool,
    dir: PathBuf,
    identity: NodeIdentity,
}

impl std::fmt::Debug for SqliteEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEventStore")
            .field("dir", &self.dir)
            .field("node_id", &self.identity.node_id())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Maps a SQLite error: damaged or foreign data is [`StoreError::Corrupt`], the rest
/// [`StoreError::Io`].
pub(crate) fn sql_err(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let context = context.into();
    move |e| {
        let corrupt = match &e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..) => true,
            rusqlite::Error::SqliteFailure(f, _) => {
                matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
            }
            _ => false,
        };
        if corrupt {
            StoreError::Corrupt(format!("{context}: {e}"))
        } else {
            StoreError::Io {
                context,
                source: std::io::Error::other(e),
            }
        }
    }
}

impl SqliteEventStore {
    /// Opens (creating if needed) the store in `dir`: locks it, opens the database in WAL
    /// mode, loads or creates the identity key, rebuilds the clock, starts the writer.
    ///
    /// This scans the keys of every event, so it blocks; from async code use
    /// [`SqliteEventStore::open_async`].
    pub fn open(dir: &Path, options: SqliteStoreOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err(format!(
            "creating store directory {}",
            dir.display()
        )))?;
        let lock = DirLock::acquire(dir)?;
        let path = dir.join(DB_FILE);
        let conn = schema::open_writer(&path, &options)?;
        let identity = schema::load_or_create_identity(&conn)?;
        let state = scan(&conn)?;
        let commits = tokio::sync::watch::Sender::new(state.committed_len());
        let state = Arc::new(Mutex::new(state));
        let reader = schema::open_reader(&path)?;
        let writer = writer::start(conn, state.clone(), lock, options.queue, options.max_batch)
            .map_err(io_err("starting the SQLite store's writer thread"))?;
        Ok(SqliteEventStore {
            writer: Mutex::new(Some(writer)),
            reader: Arc::new(Mutex::new(Some(reader))),
            state,
            commits,
            closed: AtomicBool::new(false),
            dir: dir.to_path_buf(),
            identity,
        })
    }

    /// Opens the store of `room` under `data_dir` (or the platform's data directory), in
    /// the same directory the file store would use.
    pub fn open_room(
        data_dir: Option<&Path>,
        room: &str,
        options: SqliteStoreOptions,
    ) -> Result<Self, StoreError> {
        let base = match data_dir {
            Some(d) => d.to_path_buf(),
            None => default_data_dir().ok_or_else(|| StoreError::Io {
                context: format!("finding a data directory for room {room:?}"),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "this platform reports no home directory; pass a data directory",
                ),
            })?,
        };
        Self::open(&room_dir(&base, room), options)
    }

    /// [`SqliteEventStore::open`] on a blocking thread, for async callers.
    pub async fn open_async(dir: PathBuf, options: SqliteStoreOptions) -> Result<Self, StoreError> {
        tokio::task::spawn_blocking(move || Self::open(&dir, options))
            .await
            .map_err(|e| StoreError::Io {
                context: "opening the SQLite store".into(),
                source: std::io::Error::other(e.to_string()),
            })?
    }

    /// Sends the writer the command `cmd` builds around its reply channel, and waits for
    /// the reply.
    async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, StoreError> {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        writer
            .send(cmd(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)
    }

    /// This node's id: its identity key's.
    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    /// This node's signing identity, kept in the database.
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes the database takes on disk now: the main file and its write-ahead log.
    pub fn file_bytes(&self) -> u64 {
        ["", "-wal"]
            .iter()
            .filter_map(|suffix| {
                std::fs::metadata(self.dir.join(format!("{DB_FILE}{suffix}"))).ok()
            })
            .map(|m| m.len())
            .sum()
    }

    /// Calls `f` on every event, per origin in seq order, reading one row at a time (a
    /// replay of a store larger than memory). Blocks; returns how many events it read.
    pub fn for_each_event(&self, f: impl FnMut(Event)) -> Result<u64, StoreError> {
        self.check_open()?;
        let reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        for_each_in(reader.as_ref().ok_or(StoreError::Closed)?, f)
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        self.check_open()?;
        // The figures are updated in one step per batch; a panic elsewhere cannot leave
        // them half-updated, so a poisoned lock is taken over.
        Ok(self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs a query on the read connection, on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.check_open()?;
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let guard = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(guard.as_ref().ok_or(StoreError::Closed)?)
        })
        .await
        .map_err(|e| StoreError::Io {
            context: "reading the SQLite store".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }
}

/// Streams every event of `conn` to `f`, per origin in seq order.
fn for_each_in(conn: &Connection, mut f: impl FnMut(Event)) -> Result<u64, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events ORDER BY origin, seq"
        ))
        .map_err(sql_err("reading all events"))?;
    let mut rows = st.query([]).map_err(sql_err("reading all events"))?;
    let mut n = 0;
    while let Some(r) = rows.next().map_err(sql_err("reading all events"))? {
        f(event_of_row(r).map_err(sql_err("reading all events"))?);
        n += 1;
    }
    Ok(n)
}

/// Rebuilds the in-memory figures from the keys and sizes of every row, no payloads read.
fn scan(conn: &Connection) -> Result<State, StoreError> {
    let mut state = State::default();
    let mut st = conn
        .prepare("SELECT origin, seq, hlc, created_at_ms, length(payload), length(sig) FROM events")
        .map_err(sql_err("scanning the events"))?;
    let mut rows = st.query([]).map_err(sql_err("scanning the events"))?;
    while let Some(r) = rows.next().map_err(sql_err("scanning the events"))? {
        let held = (|| -> rusqlite::Result<Held> {
            let origin = NodeId(uuid::Uuid::from_bytes(blob_array(r, 0)?));
            let seq = u64::from_be_bytes(blob_array(r, 1)?);
            let hlc = r.get::<_, i64>(2)? as u64;
            let created_at_ms = r.get::<_, i64>(3)? as u64;
            let payload = r.get::<_, i64>(4)? as u64;
            let sig = r.get::<_, i64>(5)? as u64;
            Ok(Held {
                origin,
                seq,
                hlc,
                created_at_ms,
                encoded_len: state::encoded_len(seq, hlc, created_at_ms, payload, sig),
            })
        })()
        .map_err(sql_err("scanning the events"))?;
        state.add(held);
    }
    Ok(state)
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn save(&self, event: Event) -> Result<SaveOutcome, StoreError> {
        let out = self.save_many(vec![event]).await?;
        out.into_iter().next().ok_or_else(|| {
            StoreError::Corrupt("the SQLite writer answered no outcome for a save".into())
        })
    }

    async fn save_many(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        self.check_open()?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.ask(|reply| Cmd::Save { events, reply }).await?;
        // The writer has committed and counted the batch: tell followers.
        let end = self.state()?.committed_len();
        self.commits.send_if_modified(|v| {
            let changed = *v < end;
            *v = (*v).max(end);
            changed
        });
        out
    }

    async fn committed_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, u64), StoreError> {
        let keys = self.state()?.committed(cursor, limit);
        let next = cursor + keys.len() as u64;
        if keys.is_empty() {
            return Ok((Vec::new(), next));
        }
        let events = self
            .read(move |conn| {
                let mut st = conn
                    .prepare_cached(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE origin = ?1 AND seq = ?2"
                    ))
                    .map_err(sql_err("reading the commit sequence"))?;
                let mut out = Vec::with_capacity(keys.len());
                for (origin, seq) in keys {
                    let e = st
                        .query_row(
                            params![origin.0.as_bytes().as_slice(), seq_key(seq).as_slice()],
                            event_of_row,
                        )
                        .map_err(sql_err("reading the commit sequence"))?;
                    out.push(e);
                }
                Ok(out)
            })
            .await?;
        Ok((events, next))
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
        if limit == 0 || after == u64::MAX {
            self.check_open()?;
            return Ok(Vec::new());
        }
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                     WHERE origin = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
                ))
                .map_err(sql_err("reading events since a seq"))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = st
                .query_map(
                    params![
                        origin.0.as_bytes().as_slice(),
                        seq_key(after).as_slice(),
                        limit
                    ],
                    event_of_row,
                )
                .map_err(sql_err("reading events since a seq"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql_err("reading events since a seq"))
        })
        .await
    }

    async fn all_events(&self) -> Result<Vec<Event>, StoreError> {
        let held = self.state()?.count() as usize;
        self.read(move |conn| {
            let mut out = Vec::with_capacity(held);
            for_each_in(conn, |e| out.push(e))?;
            Ok(out)
        })
        .await
    }

    async fn get(&self, origin: NodeId, seq: u64) -> Result<Option<Event>, StoreError> {
        if !self.state()?.has(origin, seq) {
            return Ok(None);
        }
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE origin = ?1 AND seq = ?2"
            ))
            .and_then(|mut st| {
                st.query_row(
                    params![origin.0.as_bytes().as_slice(), seq_key(seq).as_slice()],
                    event_of_row,
                )
                .optional()
            })
            .map_err(sql_err("reading an event"))
        })
        .await
    }

    async fn has(&self, origin: NodeId, seq: u64) -> Result<bool, StoreError> {
        Ok(self.state()?.has(origin, seq))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.state()?.count())
    }

    async fn count_per_node(&self) -> Result<std::collections::BTreeMap<NodeId, u64>, StoreError> {
        Ok(self.state()?.count_per_node())
    }

    async fn clock(&self) -> Result<VectorClock, StoreError> {
        Ok(self.state()?.clock())
    }

    async fn latest_seq(&self, origin: NodeId) -> Result<u64, StoreError> {
        Ok(self.state()?.latest_seq(origin))
    }

    async fn max_hlc(&self) -> Result<u64, StoreError> {
        Ok(self.state()?.max_hlc())
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(self.state()?.stats())
    }

    async fn seq_reservation(&self) -> Result<u64, StoreError> {
        self.check_open()?;
        self.read(|conn| {
            conn.query_row("SELECT seq FROM reservation WHERE slot = 1", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|v| v.map_or(0, |s| s.max(0) as u64))
            .map_err(sql_err("reading the seq reservation"))
        })
        .await
    }

    async fn reserve_seqs(&self, up_to: u64) -> Result<(), StoreError> {
        self.check_open()?;
        self.ask(|reply| Cmd::Reserve { up_to, reply }).await?
    }

    async fn close(&self) -> Result<(), StoreError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(StoreError::Closed);
        }
        // The read connection closes first, so the writer's close checkpoints the WAL.
        drop(self.reader.lock().unwrap_or_else(|p| p.into_inner()).take());
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(writer) = writer else {
            return Err(StoreError::Closed);
        };
        let (reply, answer) = oneshot::channel();
        writer
            .send(Cmd::Close { reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

#[cfg(test)]
mod tests;
