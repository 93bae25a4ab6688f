//! Piped input: how long 100,000 chat lines piped into a real `gossip-chat --headless`
//! take to be durable (issue 13).
//!
//! ```text
//! cargo build --release --bin gossip-chat
//! cargo run --release --example pipe_bench [-- LINES [BIN]]
//! ```
//!
//! For each `--fsync` policy (the default, then `always`): a fresh temp data dir, one
//! `gossip-chat --headless --no-mdns --port 0 --exit-on-eof` process (BIN, default
//! `target/release/gossip-chat`) alone on loopback; LINES (default 100,000) chat lines are
//! written to its stdin from a thread as fast as it reads them. Prints the time from the
//! first line written to the last line's `created` event line on stdout, which the app
//! prints only once the event is durable under the policy in force, and the rate.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the child if the bench ends early (a panic), so no process is left behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Marks the bench's lines, to tell their events from the nick event made at start.
const MARK: &str = "pipe-bench ";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lines: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let bin = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "target/release/gossip-chat".into());
    for fsync in [None, Some("always")] {
        let dir = tempfile::tempdir().expect("a temp dir");
        let took = run(&bin, dir.path(), fsync, lines);
        println!(
            "{lines} lines piped into --headless (--fsync {}): last acknowledged durable after \
             {:.2} s ({:.0} lines/s)",
            fsync.unwrap_or("default (interval 50 ms)"),
            took.as_secs_f64(),
            lines as f64 / took.as_secs_f64()
        );
    }
}

/// One process: start, wait for `ready`, pipe `lines` lines, wait for the last `created`
/// line; the time from the first line written to it.
fn run(bin: &str, data_dir: &Path, fsync: Option<&str>, lines: u64) -> Duration {
    let mut cmd = Command::new(bin);
    cmd.args(["--headless", "--no-mdns", "--port", "0", "--exit-on-eof"])
        .args(["--room", "bench", "--name", "piper", "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(policy) = fsync {
        cmd.args(["--fsync", policy]);
    }
    let mut child = Proc(
        cmd.spawn()
            .expect("gossip-chat starts (build it with --release first)"),
    );
    let stdin = child.0.stdin.take().expect("piped");
    let stdout = child.0.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v = serde_json::from_str(&line).unwrap_or(serde_json::Value::Null);
            if tx.send(v).is_err() {
                return;
            }
        }
    });
    let ready = rx.recv().expect("the node prints ready");
    assert_eq!(ready["type"], "ready", "{ready}");
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        let mut w = BufWriter::new(stdin);
        for i in 0..lines {
            if writeln!(w, "{MARK}{i}").is_err() {
                return;
            }
        }
        // Dropping stdin is EOF: the node stops once every line is handled.
        let _ = w.flush();
    });
    let mut acked = 0u64;
    let mut errors = 0u64;
    let mut took = None;
    while let Ok(v) = rx.recv() {
        match v["type"].as_str() {
            Some("event")
                if v["dir"] == "created" && v["op"].to_string().contains(MARK.trim_end()) =>
            {
                acked += 1;
                if acked == lines {
                    took = Some(started.elapsed());
                }
            }
            Some("error") => errors += 1,
            Some("stopped") => break,
            _ => {}
        }
    }
    let _ = writer.join();
    let _ = reader.join();
    let _ = child.0.wait();
    assert_eq!(errors, 0, "error lines from the node");
    took.unwrap_or_else(|| panic!("only {acked} of {lines} lines were acknowledged"))
}
