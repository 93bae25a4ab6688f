//! The live view with real processes: a late joiner of a room of 20,000 events shows every
//! one of them on its headless stdout, once, while they stream in, and what it shows is
//! what its store holds (`/state` equals `gossip-chat state`, on both peers).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "../examples/common/seed.rs"]
mod seed;

const BIN: &str = env!("CARGO_BIN_EXE_gossip-chat");
const ROOM: &str = "live";
const HISTORY: u64 = 20_000;

/// A `gossip-chat --headless` process; killed when dropped.
struct Headless {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
}

impl Headless {
    fn start(data_dir: &Path, name: &str, peer: Option<u16>) -> Headless {
        let mut cmd = Command::new(BIN);
        cmd.args(["--headless", "--no-mdns", "--fsync", "never", "--port", "0"])
            .args(["--room", ROOM, "--name", name, "--data-dir"])
            .arg(data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(port) = peer {
            cmd.args(["--peer", &format!("127.0.0.1:{port}")]);
        }
        let mut child = cmd.spawn().expect("gossip-chat starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line).expect("every stdout line is JSON");
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Headless {
            child,
            stdin,
            lines,
        }
    }

    /// The next line, within `timeout`.
    fn next(&self, timeout: Duration) -> Option<Value> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Lines until one of `kind`, which is returned.
    fn until(&self, kind: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(v) = self.next(deadline.saturating_duration_since(Instant::now())) {
            if v["type"] == kind {
                return v;
            }
        }
        panic!("no {kind} line within 60 s");
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("stdin takes the line");
        stdin.flush().expect("flushed");
    }

    /// `/quit`, and waits for a clean exit.
    fn quit(mut self) {
        self.send("/quit");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("waitable") {
                assert!(status.success(), "exit status {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gossip-chat did not quit within 30 s");
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gossip-chat SUBCOMMAND` on a stopped store; its stdout.
fn read_store(subcommand: &str, data_dir: &Path) -> String {
    let out = Command::new(BIN)
        .args([subcommand, "--room", ROOM, "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("gossip-chat runs");
    assert!(out.status.success(), "{subcommand} failed: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn key(v: &Value) -> (String, u64) {
    (
        v["origin"].as_str().expect("an origin").to_string(),
        v["seq"].as_u64().expect("a seq"),
    )
}

#[test]
fn a_late_joiner_shows_all_20000_events_live_and_its_view_is_its_store() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let seeded = seed::seed_room(&a_dir, ROOM, HISTORY).to_string();

    let a = Headless::start(&a_dir, "seed", None);
    let ready = a.until("ready");
    assert_eq!(
        ready["events"],
        HISTORY + 1,
        "the seeded history and its identity event"
    );
    let port = ready["port"].as_u64().expect("a port") as u16;

    let started = Instant::now();
    let mut b = Headless::start(&b_dir, "late", Some(port));
    let b_ready = b.until("ready");
    let b_id = b_ready["node_id"].as_str().expect("an id").to_string();
    let held_at_ready = b_ready["events"].as_u64().expect("a count");
    // The seeded events, and the nick the seed node published when it started.
    let want_from_a = HISTORY + 2;
    let mut shown = Vec::new();
    let mut from_a = 0;
    let mut progress_lines = 0;
    let deadline = started + Duration::from_secs(300);
    while from_a < want_from_a {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(v) = b.next(left) else {
            panic!(
                "only {from_a} of {want_from_a} events shown after {:?}",
                started.elapsed()
            );
        };
        match v["type"].as_str() {
            Some("event") => {
                if v["origin"] == seeded.as_str() {
                    from_a += 1;
                }
                shown.push(key(&v));
            }
            Some("progress") => progress_lines += 1,
            _ => {}
        }
    }
    eprintln!(
        "late joiner: {from_a} events of the room shown in {:?}, {progress_lines} progress lines",
        started.elapsed()
    );
    assert!(progress_lines > 0, "a catch-up of 20,000 events says so");
    let distinct: HashSet<&(String, u64)> = shown.iter().collect();
    assert_eq!(distinct.len(), shown.len(), "no event is shown twice");

    // The seed node gets the late joiner's nick, so both hold the same events.
    loop {
        let v = a.until("event");
        if v["origin"] == b_id.as_str() && v["op"]["op"] == "nick" {
            break;
        }
    }
    b.send("/state");
    let live_state = b.until("state")["state"].clone();
    b.quit();
    a.quit();

    let (a_state, b_state) = (read_store("state", &a_dir), read_store("state", &b_dir));
    assert_eq!(a_state, b_state, "both stores fold to the same state");
    let b_store: Value = serde_json::from_str(&b_state).expect("state is JSON");
    assert_eq!(
        live_state, b_store,
        "the late joiner's live view is its store"
    );
    let exported = read_store("export", &b_dir).lines().count() as u64;
    assert_eq!(
        held_at_ready + shown.len() as u64,
        exported,
        "every stored event was in the history at ready or shown live"
    );
}
