//! Catch-up rate of the live view: how fast the events a store commits reach the screen.
//!
//! ```text
//! cargo run --release --example live_view_bench [-- EVENTS]
//! cargo build --release --bin gossip-chat
//! cargo run --release --example live_view_bench -- --processes [EVENTS [BIN]]
//! ```
//!
//! In process (default 100,000 events): a file store holding EVENTS signed chat messages is
//! followed from its first record by the session's feed, as a late joiner's view would be,
//! into (1) the headless front end: fold into the model, an `event` line per event, written
//! through one buffered writer to /dev/null; and (2) the TUI: fold into the screen's state
//! and one full redraw of a 160x48 `TestBackend` per batch. Prints events/s for each.
//!
//! With `--processes` (default 100,000 events, BIN default `target/release/gossip-chat`):
//! a seed node holding EVENTS messages and a late joiner that dials it, both real
//! `gossip-chat --headless --no-mdns` processes on loopback. Prints when the joiner's stdout
//! had shown them all, and how far its view ever was behind its store (from its `progress`
//! lines: `held - shown`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gossip::app::Model;
use gossip::app::runtime::feed::{Deliveries, Feed};
use gossip::app::runtime::headless::fold_batch;
use gossip::app::runtime::view::{SessionEvent, StatusInfo};
use gossip::app::tui::{Action, TuiApp, render};
use gossip::store::file::{FileStoreOptions, room_dir};
use gossip::store::{EventStore, FileEventStore};
use gossip::{NodeId, VectorClock};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

#[path = "common/seed.rs"]
mod seed;

const ROOM: &str = "bench";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--processes") {
        let events = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
        let bin = args
            .get(2)
            .cloned()
            .unwrap_or_else(|| "target/release/gossip-chat".into());
        processes(events, &bin);
        return;
    }
    let events: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("a temp dir");
    let t = Instant::now();
    seed::seed_room(dir.path(), ROOM, events);
    println!("seeded {events} signed events in {:?}", t.elapsed());
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    for run in 1..=2 {
        let (n, took) = rt.block_on(headless(dir.path()));
        report(
            &format!("headless (store -> model -> stdout lines), run {run}"),
            n,
            took,
        );
        let (n, took) = rt.block_on(tui(dir.path()));
        report(
            &format!("tui (store -> screen state, a redraw per batch), run {run}"),
            n,
            took,
        );
    }
}

fn report(what: &str, n: u64, took: Duration) {
    println!(
        "{what}: {n} events in {:.3} s = {:.0} events/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}

/// A feed from the first record of the store under `data_dir`; its receiver and the number
/// of records to expect.
async fn follow(data_dir: &Path) -> (mpsc::Receiver<SessionEvent>, u64, Arc<FileEventStore>) {
    let store = Arc::new(
        FileEventStore::open_async(room_dir(data_dir, ROOM), FileStoreOptions::default())
            .await
            .expect("the store opens"),
    );
    let total = *store.commits().borrow();
    let (tx, rx) = mpsc::channel(4096);
    let me = NodeId::random();
    let feed = Feed::new(store.clone(), me, tx, Arc::new(Deliveries::default()));
    tokio::spawn(feed.run(0));
    (rx, total, store)
}

async fn headless(data_dir: &Path) -> (u64, Duration) {
    let (mut rx, total, store) = follow(data_dir).await;
    let started = Instant::now();
    let sink = tokio::fs::File::create("/dev/null")
        .await
        .expect("/dev/null");
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, sink);
    let mut model = Model::new();
    let mut shown = 0;
    let mut chunk = Vec::new();
    while shown < total {
        let Some(SessionEvent::Events(batch)) = rx.recv().await else {
            continue;
        };
        chunk.clear();
        fold_batch(&batch, &mut model, &mut chunk);
        shown = batch.progress.shown;
        drop(batch);
        out.write_all(&chunk).await.expect("written");
        out.flush().await.expect("flushed");
    }
    let took = started.elapsed();
    assert_eq!(model.counts().events, total);
    let _ = store.close().await;
    (shown, took)
}

async fn tui(data_dir: &Path) -> (u64, Duration) {
    let (mut rx, total, store) = follow(data_dir).await;
    let status = StatusInfo {
        name: "bench".into(),
        node_id: NodeId::random(),
        room: ROOM.into(),
        listen: "127.0.0.1:7000".parse().expect("an address"),
        addresses: Vec::new(),
        mdns: false,
        private: false,
        events: total,
        nodes: 1,
        store_bytes: 0,
        clock: VectorClock::new(),
        data_dir: data_dir.to_path_buf(),
        sending: 0,
    };
    let mut app = TuiApp::new(status, std::time::SystemTime::now());
    app.update(Action::Resize(160, 48));
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("a test terminal");
    let started = Instant::now();
    let mut shown = 0;
    while shown < total {
        let Some(event) = rx.recv().await else { break };
        if let SessionEvent::Events(batch) = &event {
            shown = batch.progress.shown;
        }
        app.update(Action::Session(event));
        terminal.draw(|f| render(&app, f)).expect("drawn");
    }
    let took = started.elapsed();
    assert_eq!(app.model().counts().events, total);
    let _ = store.close().await;
    (shown, took)
}

/// A `gossip-chat --headless` process, killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(
    bin: &str,
    data_dir: &Path,
    name: &str,
    peer: Option<u16>,
) -> (Proc, mpsc::UnboundedReceiver<(Instant, serde_json::Value)>) {
    let mut cmd = Command::new(bin);
    cmd.args(["--headless", "--no-mdns", "--fsync", "never", "--port", "0"])
        .args(["--room", ROOM, "--name", name, "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(port) = peer {
        cmd.args(["--peer", &format!("127.0.0.1:{port}")]);
    }
    let mut child = cmd
        .spawn()
        .expect("gossip-chat starts (build it with --release first)");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v = serde_json::from_str(&line).unwrap_or(serde_json::Value::Null);
            if tx.send((Instant::now(), v)).is_err() {
                return;
            }
        }
    });
    (Proc(child), rx)
}

fn processes(events: u64, bin: &str) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let seed_id = seed::seed_room(&a_dir, ROOM, events).to_string();
    let (_a, mut a_lines) = spawn(bin, &a_dir, "seed", None);
    let port = loop {
        let (_, v) = a_lines.blocking_recv().expect("the seed node runs");
        if v["type"] == "ready" {
            break v["port"].as_u64().expect("a port") as u16;
        }
    };
    let started = Instant::now();
    let (_b, mut b_lines) = spawn(bin, &b_dir, "late", Some(port));
    // The seed's identity event, its messages and the nick it publishes at start.
    let want = events + 2;
    let (mut from_seed, mut progress, mut max_lag) = (0u64, 0u64, 0u64);
    while from_seed < want {
        let (_, v) = b_lines.blocking_recv().expect("the late joiner runs");
        match v["type"].as_str() {
            // (The seed's id comes from its store: a `peer` line may name another first.)
            Some("event") if v["origin"].as_str() == Some(seed_id.as_str()) => from_seed += 1,
            Some("progress") => {
                progress += 1;
                let (held, shown) = (v["held"].as_u64(), v["shown"].as_u64());
                max_lag = max_lag.max(held.unwrap_or(0).saturating_sub(shown.unwrap_or(0)));
            }
            _ => {}
        }
    }
    let shown = started.elapsed();
    println!(
        "late joiner of {events} events ({bin}): stdout showed all {from_seed} after {:.2} s \
         ({:.0} events/s from its start); {progress} progress lines, the view at most \
         {max_lag} records behind its store",
        shown.as_secs_f64(),
        from_seed as f64 / shown.as_secs_f64()
    );
}
