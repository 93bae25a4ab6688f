//! A read-only view of a store that a running node may be writing: `export`, `state` and
//! `tail` read it without the writer's lock, so they work while the app runs.
//!
//! The reader takes a shared lock on `<dir>/readers.lock` (any number of readers; only an
//! offline rewrite such as `compact` takes it exclusively) and never writes the log. It
//! reads only complete records whose CRC checks: a record the writer is still appending
//! looks like a torn tail and is left for the next read, never cut off. Damage elsewhere is
//! skipped as the writer's open skips it. A key the log repeats is shown once (the first
//! record), as the writer's index keeps it.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::protocol::codec;
use crate::protocol::{Event, NodeId};
use crate::store::StoreError;

use super::crypt::AtRestKey;
use super::record::{self, DroppedRegion, MAX_BODY_LEN, RECORD_HEADER_LEN};
use super::{LOG_FILE, io_err, read_exact_at};

/// The file readers lock shared, and offline rewrites exclusively.
pub const READERS_LOCK_FILE: &str = "readers.lock";

/// A shared (or exclusive) lock on [`READERS_LOCK_FILE`], released when dropped.
#[derive(Debug)]
pub struct ReadersLock {
    _file: File,
}

impl ReadersLock {
    /// A reader's shared lock: fails only while an offline rewrite holds it.
    pub fn shared(dir: &Path) -> Result<ReadersLock, StoreError> {
        let file = open_lock_file(dir)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(ReadersLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Corrupt(format!(
                "{} is being rewritten (gossip-chat compact); try again in a moment",
                dir.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(format!(
                "locking {}",
                dir.join(READERS_LOCK_FILE).display()
            ))(e)),
        }
    }

    /// A rewrite's exclusive lock: fails while any reader holds it.
    pub fn exclusive(dir: &Path) -> Result<ReadersLock, StoreError> {
        let file = open_lock_file(dir)?;
        match file.try_lock() {
            Ok(()) => Ok(ReadersLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Corrupt(format!(
                "a reader (gossip-chat export, state or tail) is using {}; stop it first",
                dir.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(format!(
                "locking {}",
                dir.join(READERS_LOCK_FILE).display()
            ))(e)),
        }
    }
}

fn open_lock_file(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(READERS_LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    super::modes::tighten_file(&path);
    Ok(file)
}

/// One event read, with its place in the log's commit order (1 for the first record).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadEvent {
    /// Its commit number: the records before it in the log, plus one.
    pub commit: u64,
    /// The event.
    pub event: Event,
}

/// Reads a store's log without locking out its writer. See the module documentation.
#[derive(Debug)]
pub struct LogReader {
    file: File,
    path: PathBuf,
    _lock: ReadersLock,
    /// Where the next unread record starts.
    pos: u64,
    /// Records shown so far (the commit number of the last one).
    commits: u64,
    seen: HashSet<(NodeId, u64)>,
    /// Damage skipped so far (torn tails not included: they may be records in progress).
    damaged: Vec<DroppedRegion>,
    /// A private room's key: payloads are opened, and one that does not open is damage.
    at_rest: Option<AtRestKey>,
}

impl LogReader {
    /// Opens the log in `dir` read-only (with a private room's `at_rest` key, which opens
    /// its sealed payloads). Fails if there is no log.
    pub fn open(dir: &Path, at_rest: Option<AtRestKey>) -> Result<LogReader, StoreError> {
        let path = dir.join(LOG_FILE);
        let lock = ReadersLock::shared(dir)?;
        let file = File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
        Ok(LogReader {
            file,
            path,
            _lock: lock,
            pos: 0,
            commits: 0,
            seen: HashSet::new(),
            damaged: Vec::new(),
            at_rest,
        })
    }

    /// Every complete record appended since the last call (all of them the first time), in
    /// log order.
    pub fn read_new(&mut self) -> Result<Vec<ReadEvent>, StoreError> {
        let len = self
            .file
            .metadata()
            .map_err(io_err(format!(
                "reading the size of {}",
                self.path.display()
            )))?
            .len();
        if len <= self.pos {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let key = self.at_rest.clone();
        let check = |body: &[u8]| key.as_ref().is_none_or(|k| k.body_opens(body));
        let scan = record::scan_checked(&mut self.file, self.pos, len, &check, |r| found.push(r))
            .map_err(io_err(format!("reading {}", self.path.display())))?;
        self.damaged
            .extend(scan.dropped.iter().filter(|d| !d.torn_tail).copied());
        let mut out = Vec::with_capacity(found.len());
        let mut buf = Vec::new();
        for r in found {
            self.pos = r.body_offset + r.len as u64;
            if !self.seen.insert((r.head.origin, r.head.seq)) {
                continue;
            }
            buf.resize(r.len as usize, 0);
            read_exact_at(&self.file, &mut buf, r.body_offset).map_err(io_err(format!(
                "reading the record at offset {} of {}",
                r.body_offset - RECORD_HEADER_LEN,
                self.path.display()
            )))?;
            let event: Event = codec::decode(&buf, MAX_BODY_LEN as usize).map_err(|e| {
                StoreError::Corrupt(format!(
                    "{}: the record at offset {} does not decode: {e}",
                    self.path.display(),
                    r.body_offset - RECORD_HEADER_LEN
                ))
            })?;
            let event = match &self.at_rest {
                None => event,
                // The scan's check opened it already; this cannot fail but is not trusted.
                Some(k) => k
                    .open(event)
                    .map_err(|e| StoreError::Corrupt(format!("{}: {e}", self.path.display())))?,
            };
            self.commits += 1;
            out.push(ReadEvent {
                commit: self.commits,
                event,
            });
        }
        Ok(out)
    }

    /// Damaged stretches skipped so far (not counting a tail still being written).
    pub fn damaged(&self) -> &[DroppedRegion] {
        &self.damaged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventStore;
    use crate::store::file::{FileEventStore, FileStoreOptions};

    fn ev(origin: u128, seq: u64) -> Event {
        Event {
            id: uuid::Uuid::now_v7(),
            origin: NodeId::from_u128(origin),
            seq,
            hlc: seq,
            created_at_ms: 1,
            payload: bytes::Bytes::from(vec![seq as u8; 10]),
            sig: bytes::Bytes::new(),
        }
    }

    #[tokio::test]
    async fn reads_while_the_writer_runs_and_follows_appends() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileEventStore::open_async(dir.path().into(), FileStoreOptions::default())
            .await
            .unwrap();
        store.save(ev(1, 1)).await.unwrap();
        store.save(ev(1, 2)).await.unwrap();
        let mut reader = LogReader::open(dir.path(), None).unwrap();
        let first = reader.read_new().unwrap();
        assert_eq!(
            first
                .iter()
                .map(|r| (r.commit, r.event.seq))
                .collect::<Vec<_>>(),
            vec![(1, 1), (2, 2)]
        );
        assert!(reader.read_new().unwrap().is_empty());
        store.save(ev(2, 1)).await.unwrap();
        let next = reader.read_new().unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].commit, 3);
        assert_eq!(next[0].event.origin, NodeId::from_u128(2));
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_record_in_progress_is_left_for_later_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileEventStore::open_async(dir.path().into(), FileStoreOptions::default())
            .await
            .unwrap();
        store.save(ev(1, 1)).await.unwrap();
        store.close().await.unwrap();
        let mut whole = Vec::new();
        record::encode_record(&ev(1, 2), &mut whole).unwrap();
        let log = dir.path().join(LOG_FILE);
        let before = std::fs::metadata(&log).unwrap().len();
        let append = |bytes: &[u8]| {
            use std::io::Write;
            let mut f = OpenOptions::new().append(true).open(&log).unwrap();
            f.write_all(bytes).unwrap();
        };
        append(&whole[..whole.len() / 2]);
        let mut reader = LogReader::open(dir.path(), None).unwrap();
        assert_eq!(reader.read_new().unwrap().len(), 1);
        assert!(reader.damaged().is_empty());
        assert!(std::fs::metadata(&log).unwrap().len() > before, "not cut");
        append(&whole[whole.len() / 2..]);
        let rest = reader.read_new().unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].event.seq, 2);
    }

    #[test]
    fn a_rewrite_and_readers_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let a = ReadersLock::shared(dir.path()).unwrap();
        let _b = ReadersLock::shared(dir.path()).unwrap();
        assert!(ReadersLock::exclusive(dir.path()).is_err());
        drop(a);
        drop(_b);
        let x = ReadersLock::exclusive(dir.path()).unwrap();
        assert!(ReadersLock::shared(dir.path()).is_err());
        drop(x);
    }
}
