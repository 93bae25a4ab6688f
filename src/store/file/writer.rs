//! The writer thread: the only code that appends to the log or changes the index.
//!
//! Saves arrive over a channel and are decided in arrival order, which makes the
//! duplicate/conflict decision atomic with the insert. New events are made visible (put in
//! the index) only after the write that holds them is durable under the policy in force, and
//! only then are their savers answered: nothing can read, forward or build on an event that a
//! crash could still take away.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::protocol::NodeId;
use crate::store::{SaveOutcome, StoreError};

use super::index::{Entry, Loc};
use super::lock::DirLock;
use super::record::RECORD_HEADER_LEN;
use super::{FsyncPolicy, Shared, read_exact_at};

/// Buffered bytes past which the writer hands them to the OS before the commit.
const FLUSH_AT: usize = 1 << 20;

type SaveReply = oneshot::Sender<Result<Vec<SaveOutcome>, StoreError>>;

/// One event of a batch, already encoded into the batch's buffer.
pub(super) struct Item {
    pub origin: NodeId,
    pub seq: u64,
    pub lamport: u64,
    pub created_at_ms: u64,
    /// Where the whole record starts in [`Batch::records`].
    pub start: usize,
    pub len: u32,
    pub crc: u32,
}

/// The events of one `save`/`save_many` call.
pub(super) struct Batch {
    pub records: Vec<u8>,
    pub items: Vec<Item>,
    pub reply: SaveReply,
    /// Held until the batch is taken in: bounds the bytes queued for the writer.
    pub _permit: OwnedSemaphorePermit,
}

/// What the writer is asked to do.
pub(super) enum Cmd {
    Save(Batch),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

pub(super) struct Writer {
    file: File,
    shared: Arc<Shared>,
    policy: FsyncPolicy,
    lock: Option<DirLock>,
    /// Log length the OS has (written, maybe not yet synced).
    flushed_end: u64,
    /// Records taken in but not yet written.
    buf: Vec<u8>,
    /// Inserted but not yet durable, so not yet in the index.
    pending: Vec<Entry>,
    pending_keys: HashMap<(NodeId, u64), usize>,
    waiting: Vec<(SaveReply, Vec<SaveOutcome>)>,
    /// Written since the last sync.
    dirty: bool,
    last_sync: Option<Instant>,
    /// Set when a write or sync failed; after that nothing more is appended, because what
    /// reached the disk is no longer known (a failed fsync may have dropped dirty pages).
    failed: Option<String>,
}

enum Flow {
    Go,
    Close(oneshot::Sender<Result<(), StoreError>>),
}

impl Writer {
    pub(super) fn new(
        file: File,
        shared: Arc<Shared>,
        policy: FsyncPolicy,
        lock: DirLock,
        end: u64,
    ) -> Self {
        Writer {
            file,
            shared,
            policy,
            lock: Some(lock),
            flushed_end: end,
            buf: Vec::new(),
            pending: Vec::new(),
            pending_keys: HashMap::new(),
            waiting: Vec::new(),
            dirty: false,
            last_sync: None,
            failed: None,
        }
    }

    fn path(&self) -> String {
        self.shared.log_path.display().to_string()
    }

    fn failed_error(&self, msg: &str) -> StoreError {
        StoreError::Io {
            context: format!("appending to {}", self.path()),
            source: io::Error::other(format!("an earlier write failed: {msg}")),
        }
    }

    /// Runs until closed or until every sender is gone.
    pub(super) fn run(mut self, rx: Receiver<Cmd>) {
        loop {
            let Ok(first) = rx.recv() else {
                return self.shutdown(None);
            };
            if let Flow::Close(reply) = self.take(first) {
                return self.shutdown(Some(reply));
            }
            // Gather whatever else is queued (and, under an interval policy, whatever arrives
            // before the next sync is due) so one sync covers it all.
            let mut disconnected = false;
            loop {
                let next = match rx.try_recv() {
                    Ok(cmd) => Some(cmd),
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                    Err(TryRecvError::Empty) => {
                        let FsyncPolicy::Interval(every) = self.policy else {
                            break;
                        };
                        let now = Instant::now();
                        let due = self.last_sync.map_or(now, |t| t + every);
                        if now >= due {
                            break;
                        }
                        match rx.recv_timeout(due - now) {
                            Ok(cmd) => Some(cmd),
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => {
                                disconnected = true;
                                break;
                            }
                        }
                    }
                };
                if let Some(cmd) = next
                    && let Flow::Close(reply) = self.take(cmd)
                {
                    return self.shutdown(Some(reply));
                }
            }
            self.commit();
            if disconnected {
                return self.shutdown(None);
            }
        }
    }

    fn take(&mut self, cmd: Cmd) -> Flow {
        match cmd {
            Cmd::Save(batch) => {
                self.take_batch(batch);
                Flow::Go
            }
            Cmd::Close(reply) => Flow::Close(reply),
        }
    }

    /// Whether the held record at `loc` has exactly `body`. Encoding is deterministic and
    /// injective, so equal bytes mean equal events.
    fn same_body(
        reader: &File,
        buf: &[u8],
        flushed_end: u64,
        loc: Loc,
        body: &[u8],
    ) -> io::Result<bool> {
        if loc.offset >= flushed_end {
            let s = (loc.offset - flushed_end) as usize;
            return Ok(buf.get(s..s + loc.len as usize) == Some(body));
        }
        let mut held = vec![0u8; loc.len as usize];
        read_exact_at(reader, &mut held, loc.offset)?;
        Ok(held == body)
    }

    fn take_batch(&mut self, batch: Batch) {
        if let Some(msg) = &self.failed {
            let _ = batch.reply.send(Err(self.failed_error(msg)));
            return;
        }
        let shared = self.shared.clone();
        // One lock for the whole batch; only this thread changes the index, so what it
        // reads stays true until it publishes.
        let index = shared.index();
        let mut outcomes = Vec::with_capacity(batch.items.len());
        for it in &batch.items {
            let end = it.start + RECORD_HEADER_LEN as usize + it.len as usize;
            let record = &batch.records[it.start..end];
            let body = &record[RECORD_HEADER_LEN as usize..];
            let held = index.get(&it.origin, it.seq).or_else(|| {
                self.pending_keys
                    .get(&(it.origin, it.seq))
                    .map(|&i| self.pending[i].loc)
            });
            let outcome = match held {
                None => {
                    let loc = Loc {
                        offset: self.flushed_end + self.buf.len() as u64 + RECORD_HEADER_LEN,
                        len: it.len,
                        crc: it.crc,
                    };
                    self.buf.extend_from_slice(record);
                    self.pending_keys
                        .insert((it.origin, it.seq), self.pending.len());
                    self.pending.push(Entry {
                        origin: it.origin,
                        seq: it.seq,
                        lamport: it.lamport,
                        created_at_ms: it.created_at_ms,
                        loc,
                    });
                    SaveOutcome::Inserted
                }
                // A different length or CRC is a different event; no read needed.
                Some(loc) if loc.len != it.len || loc.crc != it.crc => SaveOutcome::Conflict,
                // Same length and CRC: almost surely the same event, but a CRC collision would
                // turn a conflict into a silent duplicate, so compare the bytes.
                Some(loc) => {
                    match Self::same_body(&shared.reader, &self.buf, self.flushed_end, loc, body) {
                        Ok(true) => SaveOutcome::Duplicate,
                        Ok(false) => SaveOutcome::Conflict,
                        Err(e) => {
                            // Events of this batch taken in before this one stay in; a
                            // retry after the error finds them as duplicates.
                            let _ = batch.reply.send(Err(StoreError::Io {
                                context: format!(
                                    "reading the held record at offset {} of {}",
                                    loc.offset,
                                    shared.log_path.display()
                                ),
                                source: e,
                            }));
                            return;
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }
        drop(index);
        self.waiting.push((batch.reply, outcomes));
        if self.buf.len() >= FLUSH_AT
            && let Err(e) = self.flush()
        {
            self.fail("writing", e);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.flushed_end += self.buf.len() as u64;
        self.buf.clear();
        self.dirty = true;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            // The interval runs from the start of a sync, so a slow sync eats into the wait
            // for the next one instead of adding to it.
            let started = Instant::now();
            self.file.sync_data()?;
            self.dirty = false;
            self.last_sync = Some(started);
        }
        Ok(())
    }

    /// Makes everything taken in durable under the policy, publishes it, answers the savers.
    fn commit(&mut self) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.flush() {
            return self.fail("writing", e);
        }
        if self.policy != FsyncPolicy::Never
            && let Err(e) = self.sync()
        {
            return self.fail("syncing", e);
        }
        if !self.pending.is_empty() {
            let mut index = self.shared.index();
            for e in self.pending.drain(..) {
                index.insert(&e);
            }
            self.pending_keys.clear();
        }
        for (reply, outcomes) in self.waiting.drain(..) {
            let _ = reply.send(Ok(outcomes));
        }
    }

    fn fail(&mut self, what: &str, e: io::Error) {
        let msg = format!("{what} {}: {e}", self.path());
        tracing::error!(error = %msg, "the event log can no longer be appended to");
        let kind = e.kind();
        self.pending.clear();
        self.pending_keys.clear();
        for (reply, _) in self.waiting.drain(..) {
            let _ = reply.send(Err(StoreError::Io {
                context: format!("{what} {}", self.shared.log_path.display()),
                source: io::Error::new(kind, e.to_string()),
            }));
        }
        self.failed = Some(msg);
    }

    fn shutdown(mut self, reply: Option<oneshot::Sender<Result<(), StoreError>>>) {
        self.commit();
        let mut result = match &self.failed {
            Some(msg) => Err(self.failed_error(msg)),
            // Close syncs whatever the policy: a closed store is a durable one.
            None => self.sync().map_err(|e| StoreError::Io {
                context: format!("syncing {} on close", self.path()),
                source: e,
            }),
        };
        drop(self.file);
        if let Some(lock) = self.lock.take()
            && let Err(e) = lock.release()
            && result.is_ok()
        {
            result = Err(e);
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
}
