//! Throughput, replay time and memory of the file event store.
//!
//! `cargo run --release --example store_bench` runs everything in a temporary directory
//! and prints a table. The replay measurement runs in a fresh child process (this binary
//! with `--replay DIR`), so the memory it reports is that of opening the log and nothing
//! left over from writing it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip::protocol::{Event, NodeId};
use gossip::store::file::{FileEventStore, FileStoreOptions, FsyncPolicy};
use gossip::store::{EventStore, StoreError};
use uuid::Uuid;

const ORIGINS: u64 = 10;
const REPLAY_EVENTS: u64 = 1_000_000;
const REPLAY_PAYLOAD: usize = 64;

/// Event `i` of a run. The id is synthetic: `Uuid::now_v7()` asks the kernel for random
/// bytes on every call, which would make this a benchmark of `getrandom`, and events a store
/// saves mostly arrive from peers with their ids already made.
fn event(i: u64, payload: &Bytes) -> Event {
    Event {
        id: Uuid::from_u128((0x0190_0000_0000_7000_8000u128 << 48) ^ i as u128),
        origin: NodeId::from_u128(1 + (i % ORIGINS) as u128),
        seq: 1 + i / ORIGINS,
        hlc: i + 1,
        created_at_ms: 1_700_000_000_000 + i,
        payload: payload.clone(),
        sig: bytes::Bytes::new(),
    }
}

/// Resident memory of this process in bytes (Linux only).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("gossip-store-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn policy_name(p: FsyncPolicy) -> String {
    match p {
        FsyncPolicy::Always => "always".into(),
        FsyncPolicy::Interval(d) => format!("interval {} ms", d.as_millis()),
        FsyncPolicy::Never => "never".into(),
    }
}

/// `tasks` concurrent callers, each saving batches of `batch` events, `total` in all.
async fn concurrent_appends(
    dir: &Path,
    policy: FsyncPolicy,
    payload_len: usize,
    total: u64,
    tasks: u64,
    batch: u64,
) -> Result<(f64, u64, u64), StoreError> {
    let store = Arc::new(FileEventStore::open(
        dir,
        FileStoreOptions {
            fsync: policy,
            ..Default::default()
        },
    )?);
    let payload = Bytes::from(vec![0x5Au8; payload_len]);
    let per_task = total / tasks;
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        let payload = payload.clone();
        handles.push(tokio::spawn(async move {
            let mut i = t * per_task;
            let end = i + per_task;
            while i < end {
                let n = batch.min(end - i);
                let events: Vec<Event> = (i..i + n).map(|k| event(k, &payload)).collect();
                store.save_many(events).await?;
                i += n;
            }
            Ok::<(), StoreError>(())
        }));
    }
    for h in handles {
        h.await.map_err(|e| StoreError::Corrupt(e.to_string()))??;
    }
    let secs = started.elapsed().as_secs_f64();
    let bytes = store.stats().await?.size_bytes;
    let syncs = store.syncs();
    store.close().await?;
    Ok((per_task as f64 * tasks as f64 / secs, bytes, syncs))
}

/// One caller saving one event at a time, waiting for each.
async fn sequential_saves(
    dir: &Path,
    policy: FsyncPolicy,
    payload_len: usize,
    total: u64,
) -> Result<f64, StoreError> {
    let store = FileEventStore::open(
        dir,
        FileStoreOptions {
            fsync: policy,
            ..Default::default()
        },
    )?;
    let payload = Bytes::from(vec![0x5Au8; payload_len]);
    let started = Instant::now();
    for i in 0..total {
        store.save(event(i, &payload)).await?;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    store.close().await?;
    Ok(rate)
}

/// Child mode: open the log in `dir`, print what it cost, close.
fn replay(dir: &Path) -> Result<(), StoreError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let before = rss_bytes();
    let started = Instant::now();
    let store = FileEventStore::open(
        dir,
        FileStoreOptions {
            fsync: FsyncPolicy::Never,
            ..Default::default()
        },
    )?;
    let took = started.elapsed();
    let after = rss_bytes();
    let rep = store.open_report().clone();
    let events = rep.events.max(1);
    println!("replay.events {}", rep.events);
    println!("replay.log_bytes {}", rep.log_bytes_after);
    println!("replay.seconds {:.3}", took.as_secs_f64());
    println!(
        "replay.events_per_s {:.0}",
        rep.events as f64 / took.as_secs_f64()
    );
    println!(
        "replay.index_bytes_per_event {:.1}",
        rep.index_bytes as f64 / events as f64
    );
    match (before, after) {
        (Some(b), Some(a)) => {
            println!("replay.rss_before_mib {:.1}", b as f64 / 1048576.0);
            println!("replay.rss_after_mib {:.1}", a as f64 / 1048576.0);
            println!(
                "replay.rss_bytes_per_event {:.1}",
                a.saturating_sub(b) as f64 / events as f64
            );
        }
        _ => println!("replay.rss n/a"),
    }
    rt.block_on(store.close())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--replay" {
        replay(Path::new(&args[2]))?;
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let interval = FsyncPolicy::Interval(Duration::from_millis(50));

    println!("## concurrent save_many: T tasks, each saving batches of 1024 events");
    println!("policy          payload  tasks  events     appends/s   MB/s  syncs");
    for (policy, payload, tasks, total) in [
        (interval, 64, 64, REPLAY_EVENTS),
        (interval, 64, 256, REPLAY_EVENTS),
        (interval, 1024, 64, 200_000),
        (FsyncPolicy::Never, 64, 64, REPLAY_EVENTS),
        (FsyncPolicy::Never, 1024, 64, 200_000),
        (FsyncPolicy::Always, 64, 64, 200_000),
        (FsyncPolicy::Always, 1024, 64, 100_000),
    ] {
        let dir = fresh_dir("append");
        let (rate, bytes, syncs) = rt.block_on(concurrent_appends(
            &dir, policy, payload, total, tasks, 1024,
        ))?;
        let secs = total as f64 / rate;
        println!(
            "{:<15} {:>5} B  {:>5}  {:>9}  {:>10.0}  {:>6.1}  {:>5}",
            policy_name(policy),
            payload,
            tasks,
            total,
            rate,
            bytes as f64 / secs / 1e6,
            syncs
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    println!("\n## one caller, one save() at a time");
    println!("policy          payload  events     saves/s");
    for (policy, total) in [
        (FsyncPolicy::Always, 2_000u64),
        (interval, 40),
        (FsyncPolicy::Never, 100_000),
    ] {
        let dir = fresh_dir("seq");
        let rate = rt.block_on(sequential_saves(&dir, policy, 64, total))?;
        println!(
            "{:<15} {:>5} B  {:>9}  {:>10.0}",
            policy_name(policy),
            64,
            total,
            rate
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    println!(
        "\n## replay: open a log of {REPLAY_EVENTS} events ({REPLAY_PAYLOAD} B payloads, {ORIGINS} origins), page cache warm"
    );
    let dir = fresh_dir("replay");
    rt.block_on(concurrent_appends(
        &dir,
        FsyncPolicy::Never,
        REPLAY_PAYLOAD,
        REPLAY_EVENTS,
        8,
        4096,
    ))?;
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--replay")
        .arg(&dir)
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
