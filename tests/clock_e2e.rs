//! End-to-end with real `gossip-chat --headless` processes on loopback (no mDNS):
//! - a tail lost at a record boundary, then typing alone, then rejoining ends with
//!   byte-identical `gossip-chat state` and nothing lost;
//! - an unsynced laptop's first message is shown last.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use gossip::store::file::{LOG_FILE, RECORD_HEADER_LEN, room_dir};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_gossip-chat");
const PATIENCE: Duration = Duration::from_secs(30);

/// One running `gossip-chat --headless`.
struct Laptop {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    seen: Vec<Value>,
    port: u16,
}

impl Laptop {
    fn start(dir: &Path, name: &str, port: u16, peers: &[u16]) -> Laptop {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "--headless",
            "--no-mdns",
            "--fsync",
            "never",
            "--name",
            name,
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(["--port", &port.to_string()]);
        for p in peers {
            cmd.args(["--peer", &format!("127.0.0.1:{p}")]);
        }
        let mut child = cmd
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("gossip-chat starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        let mut l = Laptop {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            port: 0,
        };
        let ready = l.wait_for("ready", |v| v["type"] == "ready");
        l.port = ready["port"].as_u64().expect("a port") as u16;
        l
    }

    /// Reads lines until one matches, keeping all of them.
    fn wait_for(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| f(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if f(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no {what} within {PATIENCE:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("exited before {what}"),
            }
        }
    }

    /// Reads what arrives for `d`, keeping it.
    fn drain_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(v) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(v);
        }
    }

    fn type_line(&mut self, text: &str) {
        writeln!(self.stdin, "{text}").expect("typing");
        self.stdin.flush().expect("typing");
    }

    fn wait_chat(&mut self, dir: &str, text: &str) -> Value {
        self.wait_for(&format!("{dir} {text:?}"), |v| is_chat(v, dir, text))
    }

    fn has_chat(&self, dir: &str, text: &str) -> bool {
        self.seen.iter().any(|v| is_chat(v, dir, text))
    }

    /// SIGTERM, then wait: the store is flushed and unlocked.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn is_chat(v: &Value, dir: &str, text: &str) -> bool {
    v["type"] == "event" && v["dir"] == dir && v["op"]["op"] == "chat" && v["op"]["text"] == text
}

/// `gossip-chat state` of a data dir.
fn state(dir: &Path) -> String {
    let out = Command::new(BIN)
        .arg("state")
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("state runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn chat_texts(state: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(state).expect("state is JSON");
    v["chat"]
        .as_array()
        .expect("a chat array")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Cuts the last `n` records off the log in `dir` (a tail lost at a record boundary).
fn lose_tail(dir: &Path, n: usize) {
    let log: PathBuf = room_dir(dir, "lobby").join(LOG_FILE);
    let bytes = std::fs::read(&log).expect("the log");
    let mut starts = Vec::new();
    let mut at = 0usize;
    while at + RECORD_HEADER_LEN as usize <= bytes.len() {
        starts.push(at);
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        at += RECORD_HEADER_LEN as usize + len;
    }
    assert_eq!(at, bytes.len(), "the log ends on a record boundary");
    assert!(starts.len() > n);
    let cut = starts[starts.len() - n];
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .expect("the log");
    f.set_len(cut as u64).expect("truncate");
}

#[test]
fn a_lost_tail_then_typing_alone_then_rejoining_ends_identical_with_nothing_lost() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (da, db) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut a = Laptop::start(&da, "ana", 0, &[]);
    let mut b = Laptop::start(&db, "bob", 0, &[a.port]);
    let (pa, pb) = (a.port, b.port);
    // Bob's first exchange (and his identity event) lands before ana types, so her last
    // records are her own messages.
    a.wait_for("bob alive", |v| {
        v["type"] == "peer" && v["state"] == "alive"
    });
    a.drain_for(Duration::from_secs(1));
    for t in ["a1", "a2", "a3"] {
        a.type_line(t);
        a.wait_chat("created", t);
    }
    b.wait_chat("received", "a3");
    a.stop();
    // The disk cache is lost: a2 and a3 are gone from ana's log, at a record boundary.
    lose_tail(&da, 2);
    b.stop();

    // Ana restarts alone (bob is down) and types.
    let mut a = Laptop::start(&da, "ana", pa, &[pb]);
    a.type_line("alone1");
    a.type_line("alone2");
    a.drain_for(Duration::from_secs(2));
    assert!(
        !a.has_chat("created", "alone1"),
        "signed a seq before learning it from a peer"
    );

    // Bob comes back: ana learns her high-water mark, her messages go out, nothing lost.
    let mut b = Laptop::start(&db, "bob", pb, &[pa]);
    a.wait_chat("created", "alone2");
    b.wait_chat("received", "alone2");
    a.wait_chat("received", "a3");
    let seqs: Vec<u64> = ["alone1", "alone2"]
        .iter()
        .map(|t| a.wait_chat("created", t)["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs[0] > 4 && seqs[1] == seqs[0] + 1, "{seqs:?}");
    b.drain_for(Duration::from_secs(1));
    a.stop();
    b.stop();

    let (sa, sb) = (state(&da), state(&db));
    assert_eq!(sa, sb, "the two states differ");
    assert_eq!(chat_texts(&sa), ["a1", "a2", "a3", "alone1", "alone2"]);
}

#[test]
fn an_unsynced_laptops_first_message_is_shown_last() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (da, dc) = (tmp.path().join("a"), tmp.path().join("c"));
    let mut a = Laptop::start(&da, "ana", 0, &[]);
    for k in 0..40 {
        a.type_line(&format!("history {k}"));
    }
    a.wait_chat("created", "history 39");
    // A new laptop types before its first exchange.
    let mut c = Laptop::start(&dc, "cy", 0, &[a.port]);
    c.type_line("hello from the new laptop");
    c.wait_chat("created", "hello from the new laptop");
    a.wait_chat("received", "hello from the new laptop");
    c.wait_chat("received", "history 39");
    a.stop();
    c.stop();
    let (sa, sc) = (state(&da), state(&dc));
    assert_eq!(sa, sc);
    let chat = chat_texts(&sa);
    assert_eq!(chat.len(), 41);
    assert_eq!(
        chat.last().map(String::as_str),
        Some("hello from the new laptop")
    );
}
