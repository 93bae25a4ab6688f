//! A crash-safe event store in one append-only file per room.
//!
//! # Layout
//! A store directory (by default `<data dir>/<room>/`, see [`default_data_dir`] and
//! [`room_dir`]) holds `identity.key` (this node's ed25519 key, mode 0600), `node-id` (the
//! id derived from it, see [`load_or_create_identity`]), `events.log` (the events) and `lock`
//! (an OS lock plus the holder's pid, so a second open is refused at once).
//!
//! # The log
//! Records are appended, never rewritten: `magic | len | crc32 | bincode(Event)`, the
//! event's signature included (see
//! [`RECORD_HEADER_LEN`], [`MAGIC`]). Opening scans the whole log, checks every CRC and
//! rebuilds an index of record offsets (never payloads: 16 bytes per event, and 16 more
//! for the commit sequence, which is the log order of the records). A torn tail is
//! cut off; a damaged record elsewhere is skipped by searching for the next offset where an
//! intact record starts, keeping every intact record after it. What was dropped is logged
//! and reported in [`FileEventStore::open_report`] and `stats()`. Events lost this way are
//! missing from the clock, so peers send them again.
//!
//! # Durability
//! All appends go through a writer thread and a syncer thread, off the async runtime; reads
//! are positional reads on a blocking thread, never a load of the whole log. A save returns
//! only once its event is durable under the [`FsyncPolicy`] in force, and an event becomes
//! visible to reads (and to the clock) only then, so nothing is forwarded or built on that
//! a crash could take back. Damage found at open stays in the file (it is skipped again on
//! every open) until a future compaction rewrites the log.
//!
//! # Duplicates and equivocations
//! As in [`crate::store::MemoryEventStore`]: the same `(origin, seq)` with the same event is
//! a duplicate, with a different event an equivocation. The index keeps each record's CRC:
//! a different length or CRC is a different event without any read; an equal length and
//! CRC is confirmed by reading the held record and comparing bytes, so a CRC collision can
//! never pass a forged event off as a duplicate. An equivocation is resolved by
//! [`crate::protocol::equivocation::resolve`]: if the new event wins, its record is
//! appended and the index points at it; on open, repeated keys are resolved by the same
//! rule, so every open keeps the same winner.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Semaphore, oneshot};

use crate::auth::NodeIdentity;
use crate::protocol::codec;
use crate::protocol::equivocation::{Resolution, resolve};
use crate::protocol::{Event, NodeId, VectorClock};
use crate::store::{EventStore, SaveOutcome, StoreError, StoreStats};

pub mod compact;
pub mod crypt;
mod identity;
mod index;
pub(crate) mod lock;
pub mod modes;
pub mod reader;
mod record;
mod reservation;
mod writer;

pub use crypt::AtRestKey;
pub use identity::{NODE_ID_FILE, load_or_create_identity, load_or_create_node_id};
pub use lock::LOCK_FILE;
pub use reader::{LogReader, READERS_LOCK_FILE, ReadEvent};
pub use record::{DroppedRegion, MAGIC, MAX_BODY_LEN, RECORD_HEADER_LEN};
pub use reservation::RESERVATION_FILE;

use index::{Entry, Index, Loc};
use record::{encode_record, record_crc};
use writer::{Batch, Cmd, Item, Urgency};

/// The version of the store's on-disk format, shown by `gossip-chat --version`. 1: the
/// record framing of this module; 2: the same framing, with a private room's payloads
/// sealed (see [`crypt`]), and private file modes.
pub const STORE_FORMAT_VERSION: u32 = 2;

/// The log's name inside a store directory.
pub const LOG_FILE: &str = "events.log";

/// The default group-commit interval.
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_millis(50);

/// When appended events are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Sync before every save returns (saves queued together share one sync).
    Always,
    /// Group commit: sync at most once per interval; a save returns after the sync that
    /// covers it, so it waits up to one interval. The default, at 50 ms.
    Interval(Duration),
    /// Never sync (until close); a save returns once the OS has the bytes, which survives a
    /// crash of the process but not of the machine.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::Interval(DEFAULT_FSYNC_INTERVAL)
    }
}

/// How a [`FileEventStore`] is opened.
#[derive(Debug, Clone)]
pub struct FileStoreOptions {
    /// The durability policy.
    pub fsync: FsyncPolicy,
    /// Encoded bytes of saves not yet answered (queued, or written and awaiting their
    /// sync) past which further saves wait. A larger batch takes the whole allowance.
    pub queue_bytes: u32,
    /// A private room's at-rest key: payloads are sealed on disk (see [`crypt`]).
    pub at_rest: Option<AtRestKey>,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions {
            fsync: FsyncPolicy::default(),
            queue_bytes: 64 << 20,
            at_rest: None,
        }
    }
}

/// What opening a store found and how long it took.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// The store directory.
    pub dir: PathBuf,
    /// Events loaded.
    pub events: u64,
    /// Log length before the open.
    pub log_bytes_before: u64,
    /// Log length after it (less than before if a torn tail was cut).
    pub log_bytes_after: u64,
    /// Every damaged stretch, in file order.
    pub dropped: Vec<DroppedRegion>,
    /// Damaged stretches dropped; each counts as one record (adjacent damaged records
    /// cannot be told apart once their headers are gone).
    pub dropped_records: u64,
    /// Bytes in those stretches.
    pub dropped_bytes: u64,
    /// Intact records whose `(origin, seq)` an earlier record already held: the writer
    /// appends one when a new event wins an equivocation. The equivocation rule's winner of
    /// each key is kept, whatever the order of the records.
    pub shadowed_records: u64,
    /// Heap bytes of the rebuilt index.
    pub index_bytes: usize,
    /// Wall time of the whole open (lock, identity, scan, truncation).
    pub duration: Duration,
    /// Directories and files whose modes were looser than private and were tightened
    /// (0700 and 0600 on Unix; see [`modes`]).
    pub tightened: Vec<PathBuf>,
}

/// The data directory of gossip-chat on this platform, if the platform has one.
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "gossip-chat").map(|p| p.data_dir().to_path_buf())
}

/// The store directory of `room` under `data_dir`. Characters other than ASCII letters,
/// digits, `-`, `_` and `.` become `_` so a room name can never leave `data_dir`.
pub fn room_dir(data_dir: &Path, room: &str) -> PathBuf {
    let mut name: String = room
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.chars().all(|c| c == '.') {
        name = name.replace('.', "_");
        name.push('_');
    }
    data_dir.join(name)
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

/// Makes a directory's entries (a created or renamed file) durable. Windows has no such call
/// and needs none for NTFS metadata journaling.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Reads exactly `buf.len()` bytes at `offset` without disturbing other readers.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Reads exactly `buf.len()` bytes at `offset` without disturbing other readers.
#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes at `offset`; seek and read are serialised here because
/// this platform has no positional read.
#[cfg(not(any(unix, windows)))]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::Read;
    static SEEK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = SEEK.lock().unwrap_or_else(|p| p.into_inner());
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

/// What the store's callers and its writer thread share.
pub(crate) struct Shared {
    index: Mutex<Index>,
    /// A read-only handle for positional reads, shared by all readers.
    reader: File,
    log_path: PathBuf,
    /// Why appending stopped, once a write or sync has failed.
    failed: Mutex<Option<String>>,
    /// Syncs of the log done since the open.
    syncs: std::sync::atomic::AtomicU64,
    /// The end of the commit sequence, for followers (see [`EventStore::commits`]).
    commits: tokio::sync::watch::Sender<u64>,
    /// Opens sealed payloads on read.
    at_rest: Option<AtRestKey>,
}

impl Shared {
    /// Tells followers how far the commit sequence goes, after records were published.
    /// Called with the index lock released, so a woken follower does not wait on it.
    fn announce(&self, end: usize) {
        self.commits.send_if_modified(|v| {
            let changed = *v != end as u64;
            *v = end as u64;
            changed
        });
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // Index updates are single inserts that leave it consistent at every step, so a
        // panic elsewhere while holding the lock does not spoil it.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn decode(&self, loc: Loc, body: &[u8]) -> Result<Event, StoreError> {
        let at = loc.offset - RECORD_HEADER_LEN;
        if record_crc(body) != loc.crc {
            return Err(StoreError::Corrupt(format!(
                "{}: the record at offset {at} no longer matches its CRC (changed on disk while open)",
                self.log_path.display()
            )));
        }
        let event: Event = codec::decode(body, MAX_BODY_LEN as usize).map_err(|e| {
            StoreError::Corrupt(format!(
                "{}: the record at offset {at} does not decode: {e}",
                self.log_path.display()
            ))
        })?;
        match &self.at_rest {
            None => Ok(event),
            Some(key) => key.open(event).map_err(|e| {
                StoreError::Corrupt(format!(
                    "{}: the record at offset {at}: {e}",
                    self.log_path.display()
                ))
            }),
        }
    }

    /// Reads the events at `locs`, in order, merging reads of records that sit back to back.
    fn read(&self, locs: &[Loc]) -> Result<Vec<Event>, StoreError> {
        const RUN_MAX: u64 = 1 << 20;
        let mut out = Vec::with_capacity(locs.len());
        let mut buf = Vec::new();
        let mut i = 0;
        while i < locs.len() {
            let start = locs[i].offset - RECORD_HEADER_LEN;
            let mut end = locs[i].offset + locs[i].len as u64;
            let mut j = i + 1;
            while j < locs.len()
                && locs[j].offset - RECORD_HEADER_LEN == end
                && end - start < RUN_MAX
            {
                end = locs[j].offset + locs[j].len as u64;
                j += 1;
            }
            buf.resize((end - start) as usize, 0);
            read_exact_at(&self.reader, &mut buf, start).map_err(io_err(format!(
                "reading {} bytes at offset {start} of {}",
                end - start,
                self.log_path.display()
            )))?;
            for loc in &locs[i..j] {
                let s = (loc.offset - start) as usize;
                out.push(self.decode(*loc, &buf[s..s + loc.len as usize])?);
            }
            i = j;
        }
        Ok(out)
    }
}

/// Reads and decodes the event whose body is at `loc` in `file`.
fn read_event(file: &File, path: &Path, loc: Loc) -> Result<Event, StoreError> {
    let mut body = vec![0u8; loc.len as usize];
    read_exact_at(file, &mut body, loc.offset).map_err(io_err(format!(
        "reading the record at offset {} of {}",
        loc.offset,
        path.display()
    )))?;
    codec::decode(&body, MAX_BODY_LEN as usize).map_err(|e| {
        StoreError::Corrupt(format!(
            "{}: the record at offset {} does not decode: {e}",
            path.display(),
            loc.offset
        ))
    })
}

/// Resolves keys the log holds more than one record of (equivocations appended by
/// [`writer`] when a new event won, or repeats of one event) with the equivocation rule,
/// so every open keeps the same winner whatever the order of the records. Returns how many
/// records held a different event than the first of their key.
fn resolve_repeats(
    file: &File,
    path: &Path,
    index: &mut Index,
    repeated: Vec<Entry>,
    at_rest: Option<&crypt::AtRestKey>,
) -> Result<u64, StoreError> {
    // The rule compares events as every node sees them: sealed payloads are opened first.
    let read = |loc| -> Result<Event, StoreError> {
        let event = read_event(file, path, loc)?;
        match at_rest {
            Some(key) => key
                .open(event)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display()))),
            None => Ok(event),
        }
    };
    let mut equivocations = 0;
    for mut entry in repeated {
        let Some(held_loc) = index.get(&entry.origin, entry.seq) else {
            continue;
        };
        if held_loc == entry.loc {
            continue;
        }
        let held = read(held_loc)?;
        let new = read(entry.loc)?;
        if held == new {
            continue;
        }
        equivocations += 1;
        if resolve(&held, &new) == Resolution::Replace {
            entry.replaces = true;
            index.replace(&entry);
        }
    }
    Ok(equivocations)
}

/// Events in an append-only log file, with an index of offsets in memory. See the module
/// documentation for the format, recovery and durability rules.
///
/// Dropping the store without [`EventStore::close`] also flushes, syncs and unlocks, but in
/// the background; close it to know when the directory is free again.
pub struct FileEventStore {
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Cmd>>>,
    queue: Arc<Semaphore>,
    queue_bytes: u32,
    closed: AtomicBool,
    dir: PathBuf,
    node_id: NodeId,
    identity: NodeIdentity,
    options: FileStoreOptions,
    report: OpenReport,
    /// The own-seq reservation, as last made durable; the lock orders writes.
    reservation: tokio::sync::Mutex<u64>,
}

impl std::fmt::Debug for FileEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileEventStore")
            .field("dir", &self.dir)
            .field("node_id", &self.node_id)
            .field("fsync", &self.options.fsync)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FileEventStore {
    /// Opens (creating if needed) the store in `dir`: locks it, loads or creates the node id,
    /// scans and repairs the log, and starts the writer thread.
    ///
    /// This reads the whole log, so it blocks; from async code use
    /// [`FileEventStore::open_async`].
    pub fn open(dir: &Path, options: FileStoreOptions) -> Result<Self, StoreError> {
        let started = Instant::now();
        modes::create_private_dir(dir).map_err(io_err(format!(
            "creating store directory {}",
            dir.display()
        )))?;
        let lock = lock::DirLock::acquire(dir)?;
        let tightened = modes::tighten_store(dir);
        if let Some(key) = &options.at_rest {
            compact::seal_unsealed(dir, key)?;
        }
        let identity = load_or_create_identity(dir)?;
        let reservation = reservation::load(dir)?;
        let node_id = identity.node_id();
        let log_path = dir.join(LOG_FILE);
        let existed = log_path
            .try_exists()
            .map_err(io_err(format!("checking {}", log_path.display())))?;
        let mut file = modes::private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        if !existed {
            sync_dir(dir).map_err(io_err(format!("syncing directory {}", dir.display())))?;
        }
        let log_bytes_before = file
            .metadata()
            .map_err(io_err(format!(
                "reading the size of {}",
                log_path.display()
            )))?
            .len();

        let mut index = Index::default();
        let mut shadowed_records = 0u64;
        let mut repeated = Vec::new();
        let at_rest = options.at_rest.clone();
        let check = |body: &[u8]| at_rest.as_ref().is_none_or(|k| k.body_opens(body));
        let scan = record::scan_checked(&mut file, 0, log_bytes_before, &check, |r| {
            let entry = Entry {
                origin: r.head.origin,
                seq: r.head.seq,
                hlc: r.head.hlc,
                created_at_ms: r.head.created_at_ms,
                loc: Loc {
                    offset: r.body_offset,
                    len: r.len,
                    crc: r.crc,
                },
                replaces: false,
            };
            if !index.insert(&entry) {
                shadowed_records += 1;
                repeated.push(entry);
            }
        })
        .map_err(io_err(format!("scanning {}", log_path.display())))?;
        let equivocations =
            resolve_repeats(&file, &log_path, &mut index, repeated, at_rest.as_ref())?;
        if scan.valid_len < log_bytes_before {
            file.set_len(scan.valid_len)
                .and_then(|()| file.sync_all())
                .map_err(io_err(format!(
                    "cutting the torn tail of {} at offset {}",
                    log_path.display(),
                    scan.valid_len
                )))?;
        }
        file.seek(SeekFrom::Start(scan.valid_len))
            .map_err(io_err(format!(
                "seeking to the end of {}",
                log_path.display()
            )))?;
        index.shrink();
        let reader = File::open(&log_path).map_err(io_err(format!(
            "opening {} for reading",
            log_path.display()
        )))?;

        let report = OpenReport {
            dir: dir.to_path_buf(),
            events: index.total,
            log_bytes_before,
            log_bytes_after: scan.valid_len,
            dropped_records: scan.dropped.len() as u64,
            dropped_bytes: scan.dropped.iter().map(|d| d.len).sum(),
            dropped: scan.dropped,
            shadowed_records,
            index_bytes: index.heap_bytes(),
            duration: started.elapsed(),
            tightened,
        };
        // A few lines tell the story; a disk full of garbage should not flood the log.
        for d in report.dropped.iter().take(10) {
            tracing::warn!(
                log = %log_path.display(),
                offset = d.offset,
                bytes = d.len,
                torn_tail = d.torn_tail,
                "dropped a damaged stretch of the event log; its events will be fetched from peers again"
            );
        }
        if report.dropped_records > 0 {
            tracing::warn!(
                log = %log_path.display(),
                records = report.dropped_records,
                bytes = report.dropped_bytes,
                "opened the event log with damage dropped"
            );
        }
        if shadowed_records > 0 {
            tracing::warn!(
                log = %log_path.display(),
                records = shadowed_records,
                equivocations,
                "the event log repeats keys; the equivocation rule's winner of each is kept"
            );
        }

        let commits = tokio::sync::watch::Sender::new(index.committed.len() as u64);
        let shared = Arc::new(Shared {
            index: Mutex::new(index),
            reader,
            log_path,
            failed: Mutex::new(None),
            syncs: Default::default(),
            commits,
            at_rest: options.at_rest.clone(),
        });
        let tx = writer::start(file, shared.clone(), options.fsync, lock, scan.valid_len)
            .map_err(io_err("starting the event store's writer threads"))?;
        // On 32-bit targets a semaphore holds fewer permits than a u32 can count.
        let queue_bytes = (options.queue_bytes as usize).clamp(1, Semaphore::MAX_PERMITS) as u32;
        Ok(FileEventStore {
            shared,
            tx: Mutex::new(Some(tx)),
            queue: Arc::new(Semaphore::new(queue_bytes as usize)),
            queue_bytes,
            closed: AtomicBool::new(false),
            dir: dir.to_path_buf(),
            node_id,
            identity,
            options,
            report,
            reservation: tokio::sync::Mutex::new(reservation),
        })
    }

    /// Opens the store of `room` under `data_dir`, or under [`default_data_dir`] when
    /// `data_dir` is `None` (see [`room_dir`] for how a room names its directory).
    pub fn open_room(
        data_dir: Option<&Path>,
        room: &str,
        options: FileStoreOptions,
    ) -> Result<Self, StoreError> {
        let base = match data_dir {
            Some(d) => d.to_path_buf(),
            None => default_data_dir().ok_or_else(|| StoreError::Io {
                context: format!("finding a data directory for room {room:?}"),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "this platform reports no home directory; pass a data directory",
                ),
            })?,
        };
        Self::open(&room_dir(&base, room), options)
    }

    /// [`FileEventStore::open`] on a blocking thread, for async callers.
    pub async fn open_async(dir: PathBuf, options: FileStoreOptions) -> Result<Self, StoreError> {
        tokio::task::spawn_blocking(move || Self::open(&dir, options))
            .await
            .map_err(|e| StoreError::Io {
                context: "opening the event store".into(),
                source: io::Error::other(e.to_string()),
            })?
    }

    /// This node's id: its identity key's ([`crate::auth::node_id_of`]).
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// This node's signing identity, from the directory's `identity.key`.
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.shared.log_path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &FileStoreOptions {
        &self.options
    }

    /// How many times the log has been synced to disk since the open: with group commit,
    /// far fewer than the saves.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// What the open found (damage dropped) and how long it took.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    fn index(&self) -> Result<MutexGuard<'_, Index>, StoreError> {
        self.check_open()?;
        Ok(self.shared.index())
    }

    fn writer_gone(&self) -> StoreError {
        if self.closed.load(Ordering::Acquire) {
            StoreError::Closed
        } else {
            StoreError::Io {
                context: format!("appending to {}", self.shared.log_path.display()),
                source: io::Error::other("the store's writer thread has stopped"),
            }
        }
    }

    async fn submit(
        &self,
        events: Vec<Event>,
        urgency: Urgency,
    ) -> Result<Vec<SaveOutcome>, StoreError> {
        self.check_open()?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut records = Vec::with_capacity(events.len() * 128);
        let mut items = Vec::with_capacity(events.len());
        let events = match &self.options.at_rest {
            None => events,
            Some(key) => events
                .iter()
                .map(|e| key.seal(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Io {
                    context: format!("sealing an event for {}", self.shared.log_path.display()),
                    source: io::Error::other(e),
                })?,
        };
        for e in &events {
            let start = records.len();
            let (len, crc) = encode_record(e, &mut records).map_err(|err| StoreError::Io {
                context: format!(
                    "encoding event {}:{} for {}",
                    e.origin,
                    e.seq,
                    self.shared.log_path.display()
                ),
                source: io::Error::new(io::ErrorKind::InvalidInput, err),
            })?;
            items.push(Item {
                origin: e.origin,
                seq: e.seq,
                hlc: e.hlc,
                created_at_ms: e.created_at_ms,
                start,
                len,
                crc,
            });
        }
        drop(events);
        // A batch larger than the whole queue takes all of it rather than waiting forever.
        let want = records.len().clamp(1, self.queue_bytes as usize) as u32;
        let permit = self
            .queue
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|_| StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StoreError::Closed)?;
        tx.send(Cmd::Save(Batch {
            records,
            items,
            reply,
            urgency,
            permit,
        }))
        .map_err(|_| self.writer_gone())?;
        answer.await.map_err(|_| self.writer_gone())?
    }

    async fn read(&self, locs: Vec<Loc>) -> Result<Vec<Event>, StoreError> {
        if locs.is_empty() {
            return Ok(Vec::new());
        }
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.read(&locs))
            .await
            .map_err(|e| StoreError::Io {
                context: format!("reading {}", self.shared.log_path.display()),
                source: io::Error::other(e.to_string()),
            })?
    }
}

#[async_trait]
impl EventStore for FileEventStore {
    async fn save(&self, event: Event) -> Result<SaveOutcome, StoreError> {
        let mut out = self.submit(vec![event], Urgency::Now).await?;
        out.pop().ok_or_else(|| self.writer_gone())
    }

    async fn save_many(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        self.submit(events, Urgency::Batched).await
    }

    async fn save_own(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        self.submit(events, Urgency::Now).await
    }

    async fn save_received(&self, events: Vec<Event>) -> Result<Vec<SaveOutcome>, StoreError> {
        self.submit(events, Urgency::Relaxed).await
    }

    async fn events_since(
        &self,
        origin: NodeId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let locs: Vec<Loc> = {
            let index = self.index()?;
            match index.origins.get(&origin) {
                Some(o) => o
                    .iter_from(after.saturating_add(1))
                    .take(limit)
                    .map(|(_, l)| l)
                    .collect(),
                None => Vec::new(),
            }
        };
        self.read(locs).await
    }

    async fn all_events(&self) -> Result<Vec<Event>, StoreError> {
        let locs: Vec<Loc> = {
            let index = self.index()?;
            let mut origins: Vec<_> = index.origins.iter().collect();
            origins.sort_by_key(|(id, _)| **id);
            origins
                .into_iter()
                .flat_map(|(_, o)| o.iter_from(0).map(|(_, l)| l))
                .collect()
        };
        self.read(locs).await
    }

    async fn committed_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, u64), StoreError> {
        let locs: Vec<Loc> = {
            let index = self.index()?;
            let start = usize::try_from(cursor)
                .unwrap_or(usize::MAX)
                .min(index.committed.len());
            index.committed[start..]
                .iter()
                .take(limit)
                .copied()
                .collect()
        };
        let next = cursor + locs.len() as u64;
        Ok((self.read(locs).await?, next))
    }

    fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.commits.subscribe()
    }

    async fn get(&self, origin: NodeId, seq: u64) -> Result<Option<Event>, StoreError> {
        let Some(loc) = self.index()?.get(&origin, seq) else {
            return Ok(None);
        };
        Ok(self.read(vec![loc]).await?.pop())
    }

    async fn has(&self, origin: NodeId, seq: u64) -> Result<bool, StoreError> {
        Ok(self.index()?.get(&origin, seq).is_some())
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.index()?.total)
    }

    async fn count_per_node(&self) -> Result<std::collections::BTreeMap<NodeId, u64>, StoreError> {
        Ok(self
            .index()?
            .origins
            .iter()
            .map(|(id, o)| (*id, o.count()))
            .collect())
    }

    async fn clock(&self) -> Result<VectorClock, StoreError> {
        Ok(self
            .index()?
            .origins
            .iter()
            .map(|(id, o)| (*id, o.contiguous()))
            .collect())
    }

    async fn latest_seq(&self, origin: NodeId) -> Result<u64, StoreError> {
        Ok(self.index()?.origins.get(&origin).map_or(0, |o| o.latest()))
    }

    async fn max_hlc(&self) -> Result<u64, StoreError> {
        Ok(self.index()?.max_hlc)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let index = self.index()?;
        Ok(StoreStats {
            total_events: index.total,
            unique_nodes: index.origins.len() as u64,
            size_bytes: index.record_bytes,
            oldest_ms: index.oldest_ms,
            newest_ms: index.newest_ms,
            dropped_records: self.report.dropped_records,
            dropped_bytes: self.report.dropped_bytes,
        })
    }

    async fn seq_reservation(&self) -> Result<u64, StoreError> {
        self.check_open()?;
        Ok(*self.reservation.lock().await)
    }

    async fn reserve_seqs(&self, up_to: u64) -> Result<(), StoreError> {
        self.check_open()?;
        let mut held = self.reservation.lock().await;
        if up_to <= *held {
            return Ok(());
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || reservation::store(&dir, up_to))
            .await
            .map_err(|e| StoreError::Io {
                context: format!("writing the seq reservation in {}", self.dir.display()),
                source: io::Error::other(e.to_string()),
            })??;
        *held = up_to;
        Ok(())
    }

    async fn close(&self) -> Result<(), StoreError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(StoreError::Closed);
        }
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(tx) = tx else {
            return Err(StoreError::Closed);
        };
        let (reply, done) = oneshot::channel();
        if tx.send(Cmd::Close(reply)).is_err() {
            return Err(StoreError::Io {
                context: format!("closing {}", self.shared.log_path.display()),
                source: io::Error::other("the store's writer thread has stopped"),
            });
        }
        done.await.map_err(|_| StoreError::Io {
            context: format!("closing {}", self.shared.log_path.display()),
            source: io::Error::other("the store's writer thread stopped before closing"),
        })?
    }
}

#[cfg(test)]
mod tests;
