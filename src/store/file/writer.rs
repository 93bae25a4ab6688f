//! The two threads that append to the log: the writer and the syncer.
//!
//! Saves reach the writer over a channel and are decided in arrival order, which makes the
//! duplicate/conflict decision atomic with the insert. The writer hands what it wrote to the
//! syncer, which makes it durable under the policy in force, then puts it in the index and
//! answers the savers: nothing can read, forward or build on an event a crash could still
//! take away. Because syncing runs on its own thread, the writer keeps taking in and writing
//! new saves while a sync is in progress, so one sync covers everything written before it
//! started (group commit) and the disk and the CPU work side by side.

use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::protocol::codec;
use crate::protocol::equivocation::{Resolution, resolve};
use crate::protocol::{Event, NodeId};
use crate::store::{SaveOutcome, StoreError};

use super::index::{Entry, Index, Loc};
use super::lock::DirLock;
use super::record::{MAX_BODY_LEN, RECORD_HEADER_LEN};
use super::{FsyncPolicy, Shared, read_exact_at};

/// Buffered bytes past which the writer hands them to the OS without waiting for the queue
/// to drain.
const FLUSH_AT: usize = 1 << 20;

type SaveReply = oneshot::Sender<Result<Vec<SaveOutcome>, StoreError>>;
pub(super) type CloseReply = oneshot::Sender<Result<(), StoreError>>;

/// One event of a batch, already encoded into the batch's buffer.
pub(super) struct Item {
    pub origin: NodeId,
    pub seq: u64,
    pub hlc: u64,
    pub created_at_ms: u64,
    /// Where the whole record starts in [`Batch::records`].
    pub start: usize,
    pub len: u32,
    pub crc: u32,
}

/// How soon a batch wants its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Urgency {
    /// Events created here (`save`): sync at once, even under `Interval`, so a user's
    /// message leaves after one fsync rather than after up to one interval.
    Now,
    /// Bulk saves (`save_many`): group-committed under the policy.
    Batched,
    /// Events received from peers (`save_received`): answered once written and decided,
    /// and under `Interval` readable (shown) at once too; they become durable with the
    /// next sync. A crash before it loses nothing a peer cannot send again.
    Relaxed,
}

/// The events of one `save`/`save_many` call.
pub(super) struct Batch {
    pub records: Vec<u8>,
    pub items: Vec<Item>,
    pub reply: SaveReply,
    pub urgency: Urgency,
    /// Held until the batch is answered: bounds the bytes in flight.
    pub permit: OwnedSemaphorePermit,
}

/// What the writer is asked to do.
pub(super) enum Cmd {
    Save(Batch),
    Close(CloseReply),
}

/// A saver waiting for its events to become durable.
struct Waiter {
    reply: SaveReply,
    outcomes: Vec<SaveOutcome>,
    urgency: Urgency,
    _permit: OwnedSemaphorePermit,
}

/// What the writer tells the syncer.
enum SyncMsg {
    /// These entries' records have been written (handed to the OS).
    Written {
        entries: Vec<Entry>,
        waiters: Vec<Waiter>,
        /// A saver asked for a sync at once.
        urgent: bool,
        /// Records were written, published already or not: the next sync must cover them.
        wrote: bool,
    },
    /// The writer has stopped; sync, unlock and answer the closer, if any.
    Shutdown(Option<CloseReply>),
}

fn failed_error(shared: &Shared, msg: &str) -> StoreError {
    StoreError::Io {
        context: format!("appending to {}", shared.log_path.display()),
        source: io::Error::other(format!("an earlier write failed: {msg}")),
    }
}

/// Records a write or sync failure. After one, nothing more is appended: what reached the
/// disk is no longer known (a failed fsync may have dropped dirty pages), and a reopen
/// rescans the log to find out.
fn set_failed(shared: &Shared, what: &str, e: &io::Error) -> String {
    let msg = format!("{what} {}: {e}", shared.log_path.display());
    tracing::error!(error = %msg, "the event log can no longer be appended to");
    let mut failed = shared.failed.lock().unwrap_or_else(|p| p.into_inner());
    failed.get_or_insert(msg).clone()
}

fn refuse(waiters: Vec<Waiter>, shared: &Shared, msg: &str) {
    for w in waiters {
        let _ = w.reply.send(Err(failed_error(shared, msg)));
    }
}

/// Starts the writer and syncer threads; returns the writer's command channel.
pub(super) fn start(
    file: File,
    shared: Arc<Shared>,
    policy: FsyncPolicy,
    lock: DirLock,
    end: u64,
) -> io::Result<Sender<Cmd>> {
    let sync_file = file.try_clone()?;
    let (sync_tx, sync_rx) = std::sync::mpsc::channel();
    let syncer = Syncer {
        file: sync_file,
        shared: shared.clone(),
        policy,
        lock: Some(lock),
        last_sync: None,
        dirty: false,
        failed: None,
    };
    std::thread::Builder::new()
        .name("gossip-store-sync".into())
        .spawn(move || syncer.run(sync_rx))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = Writer {
        file,
        shared,
        policy,
        flushed_end: end,
        buf: Vec::new(),
        entries: Vec::new(),
        early: Vec::new(),
        waiters: Vec::new(),
        to_syncer: sync_tx,
    };
    // If this fails, `writer` (and with it the syncer's channel) is dropped and the syncer
    // shuts down, releasing the lock.
    std::thread::Builder::new()
        .name("gossip-store-write".into())
        .spawn(move || writer.run(rx))?;
    Ok(tx)
}

struct Writer {
    file: File,
    shared: Arc<Shared>,
    policy: FsyncPolicy,
    /// Log length the OS has (written, maybe not yet synced).
    flushed_end: u64,
    /// Records taken in but not yet written.
    buf: Vec<u8>,
    /// Entries and savers taken in since the last hand-off to the syncer.
    entries: Vec<Entry>,
    /// Entries of received events under `Interval`: published once written, not after
    /// the sync (up to one interval later), so a message from a peer shows at once.
    early: Vec<Entry>,
    waiters: Vec<Waiter>,
    to_syncer: Sender<SyncMsg>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Cmd>) {
        loop {
            let Ok(first) = rx.recv() else {
                return self.stop(None);
            };
            let mut close = self.take(first);
            // Take in whatever else is queued so one write (and one sync) covers it all.
            while close.is_none() {
                match rx.try_recv() {
                    Ok(cmd) => close = self.take(cmd),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.hand_off();
                        return self.stop(None);
                    }
                }
            }
            self.hand_off();
            if let Some(reply) = close {
                return self.stop(Some(reply));
            }
        }
    }

    fn take(&mut self, cmd: Cmd) -> Option<CloseReply> {
        match cmd {
            Cmd::Save(batch) => {
                self.take_batch(batch);
                None
            }
            Cmd::Close(reply) => Some(reply),
        }
    }

    /// The body of the held record at `loc`, from the unflushed buffer or the file.
    fn held_body(reader: &File, buf: &[u8], flushed_end: u64, loc: Loc) -> io::Result<Vec<u8>> {
        if loc.offset >= flushed_end {
            let s = (loc.offset - flushed_end) as usize;
            return buf
                .get(s..s + loc.len as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| io::Error::other("a pending record is missing from the buffer"));
        }
        let mut held = vec![0u8; loc.len as usize];
        read_exact_at(reader, &mut held, loc.offset)?;
        Ok(held)
    }

    /// Judges a save whose key is held at `loc`: a duplicate if the bytes are equal
    /// (encoding is deterministic and injective, so equal bytes mean equal events), else an
    /// equivocation resolved by the rule. The flag says whether the new event wins (and
    /// must be appended).
    fn judge(&self, loc: Loc, it: &Item, body: &[u8]) -> Result<(SaveOutcome, bool), StoreError> {
        let shared = &self.shared;
        let held =
            Self::held_body(&shared.reader, &self.buf, self.flushed_end, loc).map_err(|e| {
                StoreError::Io {
                    context: format!(
                        "reading the held record at offset {} of {}",
                        loc.offset,
                        shared.log_path.display()
                    ),
                    source: e,
                }
            })?;
        if loc.len == it.len && loc.crc == it.crc && held == body {
            return Ok((SaveOutcome::Duplicate, false));
        }
        let decode = |b: &[u8]| {
            codec::decode::<Event>(b, MAX_BODY_LEN as usize).map_err(|e| {
                StoreError::Corrupt(format!(
                    "{}: a record of ({}, {}) does not decode: {e}",
                    shared.log_path.display(),
                    it.origin,
                    it.seq
                ))
            })
        };
        let (mut held, mut new) = (decode(&held)?, decode(body)?);
        // Sealed at rest, the rule (and the held event handed back) must see the plaintext
        // events every peer sees, or this store could keep another winner than the room.
        if let Some(key) = &shared.at_rest {
            let open = |e: Event| {
                key.open(e).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "{}: a record of ({}, {}): {e}",
                        shared.log_path.display(),
                        it.origin,
                        it.seq
                    ))
                })
            };
            held = open(held)?;
            new = open(new)?;
        }
        let replaced = resolve(&held, &new) == Resolution::Replace;
        Ok((
            SaveOutcome::Equivocation {
                held: Box::new(held),
                replaced,
            },
            replaced,
        ))
    }

    /// Appends a record to the buffer and notes it as pending.
    fn append(&mut self, index: &mut Index, it: &Item, record: &[u8], replaces: bool) {
        let loc = Loc {
            offset: self.flushed_end + self.buf.len() as u64 + RECORD_HEADER_LEN,
            len: it.len,
            crc: it.crc,
        };
        self.buf.extend_from_slice(record);
        index.add_pending(it.origin, it.seq, loc);
        self.entries.push(Entry {
            origin: it.origin,
            seq: it.seq,
            hlc: it.hlc,
            created_at_ms: it.created_at_ms,
            loc,
            replaces,
        });
    }

    fn take_batch(&mut self, batch: Batch) {
        let shared = self.shared.clone();
        let failed = shared
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(msg) = failed {
            let _ = batch.reply.send(Err(failed_error(&shared, &msg)));
            return;
        }
        // One lock for the whole batch. Only this thread adds keys (published or pending),
        // so what it finds absent stays absent until it adds it.
        let mut index = shared.index();
        let mut outcomes = Vec::with_capacity(batch.items.len());
        let first_entry = self.entries.len();
        for it in &batch.items {
            let end = it.start + RECORD_HEADER_LEN as usize + it.len as usize;
            let record = &batch.records[it.start..end];
            let body = &record[RECORD_HEADER_LEN as usize..];
            let outcome = match index.held(&it.origin, it.seq) {
                None => {
                    self.append(&mut index, it, record, false);
                    SaveOutcome::Inserted
                }
                Some(loc) => match self.judge(loc, it, body) {
                    Ok((outcome, replaces)) => {
                        if replaces {
                            self.append(&mut index, it, record, true);
                        }
                        outcome
                    }
                    Err(e) => {
                        // Events of this batch taken in before this one stay in; a retry
                        // after the error finds them as duplicates.
                        let _ = batch.reply.send(Err(e));
                        return;
                    }
                },
            };
            outcomes.push(outcome);
        }
        drop(index);
        if batch.urgency == Urgency::Relaxed && matches!(self.policy, FsyncPolicy::Interval(_)) {
            let mine: Vec<Entry> = self.entries.drain(first_entry..).collect();
            self.early.extend(mine);
        }
        self.waiters.push(Waiter {
            reply: batch.reply,
            outcomes,
            urgency: batch.urgency,
            _permit: batch.permit,
        });
        if self.buf.len() >= FLUSH_AT
            && let Err(e) = self.flush()
        {
            let msg = set_failed(&self.shared, "writing", &e);
            refuse(std::mem::take(&mut self.waiters), &self.shared, &msg);
            self.entries.clear();
            self.early.clear();
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.flushed_end += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes what was taken in and passes it to the syncer.
    fn hand_off(&mut self) {
        if let Err(e) = self.flush() {
            let msg = set_failed(&self.shared, "writing", &e);
            refuse(std::mem::take(&mut self.waiters), &self.shared, &msg);
            self.entries.clear();
            self.early.clear();
            return;
        }
        if self.waiters.is_empty() && self.entries.is_empty() && self.early.is_empty() {
            return;
        }
        let wrote = !self.entries.is_empty() || !self.early.is_empty();
        let early = std::mem::take(&mut self.early);
        self.publish(early);
        if self.policy == FsyncPolicy::Never {
            // Written is all this policy promises: publish here and spare a thread hop.
            let entries = std::mem::take(&mut self.entries);
            self.publish(entries);
            for w in self.waiters.drain(..) {
                let _ = w.reply.send(Ok(w.outcomes));
            }
            return;
        }
        let urgent = self.waiters.iter().any(|w| w.urgency == Urgency::Now);
        // Received events are decided and written: their savers may go on (relay, show)
        // while the sync makes them durable.
        let (early, waiters): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.urgency == Urgency::Relaxed);
        for w in early {
            let _ = w.reply.send(Ok(w.outcomes));
        }
        let msg = SyncMsg::Written {
            entries: std::mem::take(&mut self.entries),
            waiters,
            urgent,
            wrote,
        };
        if let Err(std::sync::mpsc::SendError(SyncMsg::Written { waiters, .. })) =
            self.to_syncer.send(msg)
        {
            refuse(waiters, &self.shared, "the store's sync thread has stopped");
        }
    }

    /// Makes written `entries` readable and tells the store's followers.
    fn publish(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut index = self.shared.index();
        for e in &entries {
            index.publish(e);
        }
        let end = index.committed.len();
        drop(index);
        self.shared.announce(end);
    }

    fn stop(mut self, reply: Option<CloseReply>) {
        self.hand_off();
        if let Err(std::sync::mpsc::SendError(SyncMsg::Shutdown(Some(reply)))) =
            self.to_syncer.send(SyncMsg::Shutdown(reply))
        {
            let _ = reply.send(Err(failed_error(
                &self.shared,
                "the store's sync thread has stopped",
            )));
        }
    }
}

/// What the syncer gathered for one sync.
#[derive(Default)]
struct Pass {
    written: Vec<(Vec<Entry>, Vec<Waiter>)>,
    /// A saver asked for a sync at once.
    urgent: bool,
    /// Records were written (some perhaps published already): a sync is due.
    wrote: bool,
    /// Set when the writer has stopped; holds the closer's reply, if any.
    shutdown: Option<Option<CloseReply>>,
}

impl Pass {
    fn push(&mut self, m: SyncMsg) {
        match m {
            SyncMsg::Written {
                entries,
                waiters,
                urgent,
                wrote,
            } => {
                self.urgent |= urgent;
                self.wrote |= wrote;
                self.written.push((entries, waiters));
            }
            SyncMsg::Shutdown(r) => self.shutdown = Some(r),
        }
    }

    fn has_entries(&self) -> bool {
        self.wrote || self.written.iter().any(|(e, _)| !e.is_empty())
    }
}

struct Syncer {
    file: File,
    shared: Arc<Shared>,
    policy: FsyncPolicy,
    lock: Option<DirLock>,
    /// When the last sync started.
    last_sync: Option<Instant>,
    /// Written since the last sync.
    dirty: bool,
    failed: Option<String>,
}

impl Syncer {
    fn run(mut self, rx: Receiver<SyncMsg>) {
        loop {
            let mut pass = Pass::default();
            match rx.recv() {
                Ok(m) => pass.push(m),
                Err(_) => pass.shutdown = Some(None),
            }
            if let FsyncPolicy::Interval(every) = self.policy {
                // Sync at most once per interval, counted from the start of the last sync.
                // Nothing new to sync (only duplicates of durable events) means no wait.
                let due = self.last_sync.map_or_else(Instant::now, |t| t + every);
                while pass.shutdown.is_none() && !pass.urgent && (self.dirty || pass.has_entries())
                {
                    let now = Instant::now();
                    if now >= due {
                        break;
                    }
                    match rx.recv_timeout(due - now) {
                        Ok(m) => pass.push(m),
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => pass.shutdown = Some(None),
                    }
                }
            }
            while pass.shutdown.is_none() {
                match rx.try_recv() {
                    Ok(m) => pass.push(m),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => pass.shutdown = Some(None),
                }
            }
            let closing = pass.shutdown.take();
            self.dirty |= pass.wrote;
            self.commit(pass.written, closing.is_some());
            if let Some(reply) = closing {
                return self.finish(reply);
            }
        }
    }

    /// Makes `written` durable (if the policy or a shutdown asks), publishes it, answers.
    fn commit(&mut self, written: Vec<(Vec<Entry>, Vec<Waiter>)>, closing: bool) {
        if let Some(msg) = &self.failed {
            for (_, waiters) in written {
                refuse(waiters, &self.shared, msg);
            }
            return;
        }
        self.dirty |= written.iter().any(|(e, _)| !e.is_empty());
        // Under `Never` the writer publishes without telling this thread, so on closing
        // the sync is unconditional.
        if closing || (self.dirty && self.policy != FsyncPolicy::Never) {
            let started = Instant::now();
            if let Err(e) = self.file.sync_data() {
                let msg = set_failed(&self.shared, "syncing", &e);
                for (_, waiters) in written {
                    refuse(waiters, &self.shared, &msg);
                }
                self.failed = Some(msg);
                return;
            }
            self.dirty = false;
            self.last_sync = Some(started);
            self.shared
                .syncs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let end = {
            let mut index = self.shared.index();
            for (entries, _) in &written {
                for e in entries {
                    index.publish(e);
                }
            }
            index.committed.len()
        };
        self.shared.announce(end);
        for (_, waiters) in written {
            for w in waiters {
                let _ = w.reply.send(Ok(w.outcomes));
            }
        }
    }

    fn finish(mut self, reply: Option<CloseReply>) {
        let mut result = match &self.failed {
            Some(msg) => Err(failed_error(&self.shared, msg)),
            None => Ok(()),
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
