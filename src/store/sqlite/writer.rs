//! The writer thread: the only code that writes to the database.
//!
//! Saves queue on a bounded channel (a full queue makes savers wait). The thread takes
//! whatever has queued, up to a batch limit, writes it in one transaction and commits it
//! once: one sync for many saves under `synchronous = FULL`. Outcomes are decided inside
//! that transaction, so two saves of one `(origin, seq)` (in one call or two) give one
//! `Inserted`. The in-memory figures learn of new events only after the commit.

use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::{mpsc, oneshot};

use crate::protocol::Event;
use crate::protocol::equivocation::{Resolution, resolve};
use crate::store::file::lock::DirLock;
use crate::store::{SaveOutcome, StoreError};

use super::row::{EVENT_COLUMNS, event_of_row, seq_key};
use super::sql_err;
use super::state::{Held, State};

/// A request to the writer.
pub enum Cmd {
    /// Store these events; answer one outcome per event.
    Save {
        events: Vec<Event>,
        reply: oneshot::Sender<Result<Vec<SaveOutcome>, StoreError>>,
    },
    /// Raise the own-seq reservation to `up_to` (never lower it), durably.
    Reserve {
        up_to: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Finish: close the database (SQLite checkpoints the WAL) and release the lock.
    Close {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

type Waiting = (
    Vec<Event>,
    oneshot::Sender<Result<Vec<SaveOutcome>, StoreError>>,
);

/// Starts the writer thread over `conn`; it owns the directory lock until it ends.
pub fn start(
    conn: Connection,
    state: Arc<Mutex<State>>,
    lock: DirLock,
    queue: usize,
    max_batch: usize,
) -> std::io::Result<mpsc::Sender<Cmd>> {
    let (tx, rx) = mpsc::channel(queue.max(1));
    std::thread::Builder::new()
        .name("sqlite-store-writer".into())
        .spawn(move || run(conn, state, lock, rx, max_batch.max(1)))?;
    Ok(tx)
}

fn run(
    mut conn: Connection,
    state: Arc<Mutex<State>>,
    lock: DirLock,
    mut rx: mpsc::Receiver<Cmd>,
    max_batch: usize,
) {
    let mut next: Option<Cmd> = None;
    loop {
        let cmd = match next.take() {
            Some(c) => c,
            None => match rx.blocking_recv() {
                Some(c) => c,
                // Every handle is gone without a close: the connection closes on drop.
                None => return,
            },
        };
        match cmd {
            Cmd::Close { reply } => {
                let closed = conn
                    .close()
                    .map_err(|(_, e)| sql_err("closing the database")(e));
                let released = lock.release();
                let _ = reply.send(closed.and(released));
                return;
            }
            Cmd::Reserve { up_to, reply } => {
                let _ = reply.send(reserve(&conn, up_to));
            }
            Cmd::Save { events, reply } => {
                let mut n = events.len();
                let mut batch = vec![(events, reply)];
                while n < max_batch {
                    match rx.try_recv() {
                        Ok(Cmd::Save { events, reply }) => {
                            n += events.len();
                            batch.push((events, reply));
                        }
                        Ok(close) => {
                            next = Some(close);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit(&mut conn, &state, batch);
            }
        }
    }
}

/// Writes a batch in one transaction, then updates the figures and answers every saver.
fn commit(conn: &mut Connection, state: &Mutex<State>, batch: Vec<Waiting>) {
    let written = (|| -> Result<(Vec<Vec<SaveOutcome>>, Vec<Change>), StoreError> {
        let tx = conn
            .transaction()
            .map_err(sql_err("starting a transaction"))?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut fresh = Vec::new();
        for (events, _) in &batch {
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                let o = insert(&tx, e)?;
                match &o {
                    SaveOutcome::Inserted => fresh.push(Change::Added(held(e))),
                    SaveOutcome::Equivocation {
                        held: before,
                        replaced: true,
                    } => fresh.push(Change::Replaced {
                        before: held(before),
                        after: held(e),
                    }),
                    _ => {}
                }
                out.push(o);
            }
            outcomes.push(out);
        }
        tx.commit().map_err(sql_err("committing saved events"))?;
        Ok((outcomes, fresh))
    })();
    match written {
        Ok((outcomes, fresh)) => {
            {
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                for change in fresh {
                    match change {
                        Change::Added(h) => st.add(h),
                        Change::Replaced { before, after } => st.replace(before, after),
                    }
                }
            }
            for ((_, reply), out) in batch.into_iter().zip(outcomes) {
                // A saver that stopped waiting loses nothing: its events are stored.
                let _ = reply.send(Ok(out));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "the SQLite store failed to write a batch; it was rolled back");
            let text = e.to_string();
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Io {
                    context: "saving events".into(),
                    source: std::io::Error::other(text.clone()),
                }));
            }
        }
    }
}

/// Raises the reservation row to `up_to`, in its own transaction (synced like a save).
fn reserve(conn: &Connection, up_to: u64) -> Result<(), StoreError> {
    let up_to = i64::try_from(up_to)
        .map_err(|_| StoreError::Corrupt(format!("seq reservation {up_to} is too large")))?;
    conn.execute(
        "INSERT INTO reservation (slot, seq) VALUES (1, ?1)
         ON CONFLICT (slot) DO UPDATE SET seq = max(seq, excluded.seq)",
        params![up_to],
    )
    .map(drop)
    .map_err(sql_err("raising the seq reservation"))
}

/// Inserts one event unless its key is held; a held key is compared with the new event.
fn insert(tx: &Transaction<'_>, e: &Event) -> Result<SaveOutcome, StoreError> {
    let origin = e.origin.0.as_bytes();
    let seq = seq_key(e.seq);
    let changed = write_row(
        tx,
        "INSERT INTO events (origin, seq, id, hlc, created_at_ms, payload, sig)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        e,
    )
    .map_err(sql_err("inserting an event"))?;
    if changed == 1 {
        return Ok(SaveOutcome::Inserted);
    }
    let held = tx
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE origin = ?1 AND seq = ?2"
        ))
        .and_then(|mut st| {
            st.query_row(params![origin.as_slice(), seq.as_slice()], event_of_row)
                .optional()
        })
        .map_err(sql_err("reading a held event"))?;
    let Some(held) = held else {
        // The insert found the key taken, yet no row: the database contradicts itself.
        return Ok(SaveOutcome::Conflict);
    };
    if held == *e {
        return Ok(SaveOutcome::Duplicate);
    }
    // Equivocation: every store keeps the rule's winner, whatever the arrival order.
    let replaced = resolve(&held, e) == Resolution::Replace;
    if replaced {
        write_row(
            tx,
            "UPDATE events SET id = ?3, hlc = ?4, created_at_ms = ?5, payload = ?6, sig = ?7
             WHERE origin = ?1 AND seq = ?2",
            e,
        )
        .map_err(sql_err("replacing an equivocated event"))?;
    }
    Ok(SaveOutcome::Equivocation {
        held: Box::new(held),
        replaced,
    })
}

/// Runs `sql` with `e`'s columns as `?1`..`?7` (origin, seq, id, hlc, created_at_ms,
/// payload, sig); returns the rows changed.
fn write_row(tx: &Transaction<'_>, sql: &str, e: &Event) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql).and_then(|mut st| {
        st.execute(params![
            e.origin.0.as_bytes().as_slice(),
            seq_key(e.seq).as_slice(),
            e.id.as_bytes().as_slice(),
            e.hlc as i64,
            e.created_at_ms as i64,
            e.payload.as_ref(),
            e.sig.as_ref(),
        ])
    })
}

/// What a committed batch changed, for the in-memory figures.
enum Change {
    Added(Held),
    /// An equivocation's winner took the place of `before`.
    Replaced {
        before: Held,
        after: Held,
    },
}

fn held(e: &Event) -> Held {
    Held {
        origin: e.origin,
        seq: e.seq,
        hlc: e.hlc,
        created_at_ms: e.created_at_ms,
        encoded_len: e.encoded_len() as u64,
    }
}
