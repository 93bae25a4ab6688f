//! `export`, `state` and `tail` on the store of a running node, and the store's file
//! modes, with real processes.

mod proc;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use proc::{Node, command, json_lines, run};
use serde_json::Value;

fn chat_texts(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|v| v["op"]["op"] == "chat")
        .filter_map(|v| v["op"]["text"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn export_and_state_see_every_acknowledged_event_while_the_node_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &["--name", "ana"]);
    let texts: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
    for t in &texts {
        node.send(t);
        // The `event` line is the acknowledgement: the event is durable.
        node.wait_for(|v| v["type"] == "event" && v["op"]["text"] == t.as_str());
    }
    let out = run(dir.path(), &["export"], "");
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(chat_texts(&lines), texts);
    let chat = lines.iter().find(|v| v["op"]["op"] == "chat").unwrap();
    assert_eq!(chat["origin_name"], "ana");
    assert!(chat["commit"].as_u64().is_some());
    // --since a commit: only what came after it.
    let cut = lines[lines.len() - 5]["commit"].as_u64().unwrap();
    let after = json_lines(&run(
        dir.path(),
        &["export", "--since", &cut.to_string()],
        "",
    ));
    assert_eq!(chat_texts(&after), texts[16..].to_vec());

    let out = run(dir.path(), &["state"], "");
    assert!(out.status.success(), "{out:?}");
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["chat"].as_array().unwrap().len(), texts.len());

    // A second writer is still refused, and only that error names --profile.
    let second = run(dir.path(), &["--headless", "--no-mdns"], "");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("--profile"), "{err}");
    node.send("/quit");
    let (status, _) = node.finish();
    assert!(status.success());
}

#[test]
fn tail_follows_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    node.send("before tail");
    node.wait_for(|v| v["op"]["text"] == "before tail");
    let mut tail = command(dir.path(), &["tail"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                return;
            }
        }
    });
    // tail has no ready line: send until one shows up, then the rest in order.
    let first = proc::eventually("tail to follow", || {
        node.send("during tail");
        rx.recv_timeout(std::time::Duration::from_millis(300)).ok()
    });
    assert_eq!(
        first["op"]["text"], "during tail",
        "old events are not repeated"
    );
    node.send("and another");
    let got: Vec<Value> = std::iter::from_fn(|| rx.recv_timeout(proc::WAIT).ok())
        .take_while(|v| v["op"]["text"] != "and another")
        .collect();
    assert!(
        got.iter().all(|v| v["op"]["text"] == "during tail"),
        "{got:#?}"
    );
    let _ = tail.kill();
    let _ = tail.wait();
}

#[cfg(unix)]
#[test]
fn store_files_are_private_and_loose_ones_are_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run(&data, &["--headless", "--exit-on-eof", "--no-mdns"], "hi\n");
    assert!(out.status.success(), "{out:?}");
    let store = data.join("lobby");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&store), 0o700);
    let files: Vec<_> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for name in [
        "events.log",
        "gossip-chat.log",
        "lock",
        "identity.key",
        "node-id",
        "port",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(name)),
            "no {name}: {files:?}"
        );
    }
    for f in &files {
        let want = if f.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(f), want, "{}", f.display());
    }
    // An older version's modes: loosened, then tightened on the next open, with a notice.
    for p in [&store, &store.join("events.log"), &store.join("lock")] {
        let m = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let out = run(&data, &["--headless", "--exit-on-eof", "--no-mdns"], "");
    let lines = json_lines(&out);
    let notice = lines
        .iter()
        .find(|v| v["type"] == "notice" && v["message"].as_str().unwrap().contains("private"))
        .unwrap_or_else(|| panic!("no notice: {lines:#?}"));
    let text = notice["message"].as_str().unwrap();
    assert!(
        text.contains("events.log") && text.contains("lock"),
        "{text}"
    );
    for f in &files {
        let want = if f.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(f), want, "{}", f.display());
    }
    assert_eq!(mode(&store), 0o700);
}
