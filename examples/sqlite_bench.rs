//! The SQLite store beside the file store, on the same workloads in one run: concurrent
//! appends, one save at a time, a replay of 1 M events, and bytes per event on disk.
//!
//! ```sh
//! cargo run --release --example sqlite_bench --features sqlite
//! ```
//!
//! Event ids are synthetic, as in `store_bench` (a v7 id costs a `getrandom` call).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip::protocol::{Event, NodeId};
use gossip::store::file::{FileEventStore, FileStoreOptions, FsyncPolicy, LOG_FILE};
use gossip::store::sqlite::{SqliteEventStore, SqliteStoreOptions, SqliteSync};
use gossip::store::{EventStore, StoreError};
use uuid::Uuid;

const ORIGINS: u64 = 10;
const EVENTS: u64 = 1_000_000;
const PAYLOAD: usize = 64;

fn event(i: u64, payload: &Bytes) -> Event {
    Event {
        id: Uuid::from_u128((0x0190_0000_0000_7000_8000u128 << 48) ^ i as u128),
        origin: NodeId::from_u128(1 + (i % ORIGINS) as u128),
        seq: 1 + i / ORIGINS,
        hlc: i + 1,
        created_at_ms: 1_700_000_000_000 + i,
        payload: payload.clone(),
        sig: Bytes::new(),
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    File(FsyncPolicy),
    Sqlite(SqliteSync),
}

impl Kind {
    fn name(self) -> String {
        match self {
            Kind::File(FsyncPolicy::Always) => "file, fsync always".into(),
            Kind::File(FsyncPolicy::Interval(d)) => format!("file, interval {} ms", d.as_millis()),
            Kind::File(FsyncPolicy::Never) => "file, never".into(),
            Kind::Sqlite(s) => format!("sqlite, synchronous {s:?}").to_lowercase(),
        }
    }

    fn open(self, dir: &Path) -> Result<Arc<dyn EventStore>, StoreError> {
        Ok(match self {
            Kind::File(fsync) => Arc::new(FileEventStore::open(
                dir,
                FileStoreOptions {
                    fsync,
                    ..Default::default()
                },
            )?),
            Kind::Sqlite(synchronous) => Arc::new(SqliteEventStore::open(
                dir,
                SqliteStoreOptions {
                    synchronous,
                    ..Default::default()
                },
            )?),
        })
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("gossip-sqlite-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn appends(kind: Kind, dir: &Path, total: u64, tasks: u64) -> Result<f64, StoreError> {
    let store = kind.open(dir)?;
    let payload = Bytes::from(vec![0x5Au8; PAYLOAD]);
    let per_task = total / tasks;
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (store, payload) = (store.clone(), payload.clone());
        handles.push(tokio::spawn(async move {
            let mut i = t * per_task;
            let end = i + per_task;
            while i < end {
                let n = 1024.min(end - i);
                store
                    .save_many((i..i + n).map(|k| event(k, &payload)).collect())
                    .await?;
                i += n;
            }
            Ok::<(), StoreError>(())
        }));
    }
    for h in handles {
        h.await.map_err(|e| StoreError::Corrupt(e.to_string()))??;
    }
    let rate = (per_task * tasks) as f64 / started.elapsed().as_secs_f64();
    store.close().await?;
    Ok(rate)
}

async fn one_at_a_time(kind: Kind, dir: &Path, total: u64) -> Result<f64, StoreError> {
    let store = kind.open(dir)?;
    let payload = Bytes::from(vec![0x5Au8; PAYLOAD]);
    let started = Instant::now();
    for i in 0..total {
        store.save(event(i, &payload)).await?;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    store.close().await?;
    Ok(rate)
}

/// Open (rebuilding the clock), then read every event back: SQLite streams rows, the file
/// store reads its records through the trait.
async fn replay(kind: Kind, dir: &Path) -> Result<(Duration, Duration, u64), StoreError> {
    let t = Instant::now();
    match kind {
        Kind::Sqlite(synchronous) => {
            let st = SqliteEventStore::open(
                dir,
                SqliteStoreOptions {
                    synchronous,
                    ..Default::default()
                },
            )?;
            let opened = t.elapsed();
            let t = Instant::now();
            let n = st.for_each_event(|_| ())?;
            let read = t.elapsed();
            st.close().await?;
            Ok((opened, read, n))
        }
        Kind::File(_) => {
            let store = kind.open(dir)?;
            let opened = t.elapsed();
            let t = Instant::now();
            let n = store.all_events().await?.len() as u64;
            let read = t.elapsed();
            store.close().await?;
            Ok((opened, read, n))
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let interval = Kind::File(FsyncPolicy::Interval(Duration::from_millis(50)));
    let kinds = [
        interval,
        Kind::File(FsyncPolicy::Never),
        Kind::Sqlite(SqliteSync::Full),
        Kind::Sqlite(SqliteSync::Normal),
    ];

    println!("## concurrent save_many: 64 tasks, batches of 1024 events, {PAYLOAD} B payloads");
    println!("{:<28} {:>9}  {:>11}", "store", "events", "appends/s");
    for kind in kinds {
        let dir = fresh_dir("append");
        let rate = rt.block_on(appends(kind, &dir, EVENTS, 64))?;
        println!("{:<28} {:>9}  {:>11.0}", kind.name(), EVENTS, rate);
        let _ = std::fs::remove_dir_all(&dir);
    }

    println!("\n## one caller, one save() at a time (each durable before the next)");
    println!("{:<28} {:>9}  {:>11}", "store", "events", "saves/s");
    for (kind, total) in [
        (Kind::File(FsyncPolicy::Always), 2_000u64),
        (Kind::Sqlite(SqliteSync::Full), 2_000),
        (Kind::File(FsyncPolicy::Never), 100_000),
        (Kind::Sqlite(SqliteSync::Off), 100_000),
    ] {
        let dir = fresh_dir("seq");
        let rate = rt.block_on(one_at_a_time(kind, &dir, total))?;
        println!("{:<28} {:>9}  {:>11.0}", kind.name(), total, rate);
        let _ = std::fs::remove_dir_all(&dir);
    }

    println!("\n## replay of {EVENTS} events ({ORIGINS} origins), and bytes per event on disk");
    println!(
        "{:<28} {:>8}  {:>9}  {:>10}  {:>9}",
        "store", "open s", "read s", "events/s", "B/event"
    );
    for kind in [
        Kind::File(FsyncPolicy::Never),
        Kind::Sqlite(SqliteSync::Off),
    ] {
        let dir = fresh_dir("replay");
        rt.block_on(appends(kind, &dir, EVENTS, 8))?;
        let on_disk = match kind {
            Kind::File(_) => std::fs::metadata(dir.join(LOG_FILE))?.len(),
            Kind::Sqlite(_) => dir_bytes(&dir),
        };
        let (open, read, n) = rt.block_on(replay(kind, &dir))?;
        println!(
            "{:<28} {:>8.3}  {:>9.3}  {:>10.0}  {:>9.1}",
            kind.name(),
            open.as_secs_f64(),
            read.as_secs_f64(),
            n as f64 / (open + read).as_secs_f64(),
            on_disk as f64 / EVENTS as f64
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
