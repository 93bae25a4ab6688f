//! Helpers for tests that run the real `gossip-chat` binary: nodes on loopback with mDNS off,
//! stdout read as JSON lines on a thread, waits with deadlines instead of fixed sleeps.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gossip-chat")
}

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(20);

/// A `gossip-chat` command on `data_dir`, with mDNS off.
pub fn command(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("GOSSIP_CHAT_SECRET")
        .env("RUST_LOG", "info");
    cmd
}

/// A running `--headless` node whose stdout is read as JSON lines.
pub struct Node {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub data_dir: PathBuf,
    lines: mpsc::Receiver<Value>,
    /// Every line read so far.
    pub seen: Vec<Value>,
}

impl Node {
    /// Starts `gossip-chat --headless --no-mdns --data-dir DIR ARGS` and waits for `ready`.
    pub fn start(data_dir: &Path, args: &[&str]) -> Node {
        let mut all = vec!["--headless", "--no-mdns"];
        all.extend_from_slice(args);
        let mut child = command(data_dir, &all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gossip-chat");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut node = Node {
            child,
            stdin,
            data_dir: data_dir.to_path_buf(),
            lines,
            seen: Vec::new(),
        };
        node.wait_for(|v| v["type"] == "ready");
        node
    }

    /// The `ready` line.
    pub fn ready(&self) -> &Value {
        &self.seen[0]
    }

    /// `127.0.0.1:PORT` of this node.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.ready()["port"])
    }

    /// Writes one line to stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Closes stdin (EOF).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next line, if one comes within `wait`.
    pub fn next_line(&mut self, wait: Duration) -> Option<Value> {
        let v = self.lines.recv_timeout(wait).ok()?;
        self.seen.push(v.clone());
        Some(v)
    }

    /// Reads lines until one matches; panics after [`WAIT`] with what was seen.
    pub fn wait_for(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_line(left) {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => break,
            }
        }
        panic!("no matching line; seen: {:#?}", self.seen);
    }

    /// Reads every line until stdout closes, then waits for the exit status.
    pub fn finish(mut self) -> (ExitStatus, Vec<Value>) {
        self.close_stdin();
        while self.next_line(WAIT).is_some() {}
        let status = self.child.wait().expect("wait");
        (status, std::mem::take(&mut self.seen))
    }

    /// Sends SIGTERM (unix) or kills the process.
    pub fn terminate(&mut self) {
        #[cfg(unix)]
        {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
        #[cfg(not(unix))]
        {
            let _ = self.child.kill();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `gossip-chat ARGS --data-dir DIR` to completion with `input` on stdin.
pub fn run(data_dir: &Path, args: &[&str], input: &str) -> Output {
    run_with(command(data_dir, args), input)
}

/// As [`run`], in a private room whose secret is `secret` (via `GOSSIP_CHAT_SECRET`).
pub fn run_private(data_dir: &Path, secret: &str, args: &[&str], input: &str) -> Output {
    let mut cmd = command(data_dir, args);
    cmd.env("GOSSIP_CHAT_SECRET", secret);
    run_with(cmd, input)
}

fn run_with(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gossip-chat");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    out
}

/// stdout as JSON lines.
pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// Polls `f` until it returns `Some`, or panics after [`WAIT`].
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
