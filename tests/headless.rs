//! `gossip-chat --headless` as a script author uses it, with real processes on loopback.

mod proc;

use proc::{Node, json_lines, run};
use serde_json::Value;

fn is_chat(v: &Value, text: &str) -> bool {
    v["type"] == "event" && v["op"]["op"] == "chat" && v["op"]["text"] == text
}

#[test]
fn one_shot_script_reaches_a_running_peer_before_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut ana = Node::start(&dir.path().join("ana"), &["--name", "ana"]);
    let peer = ana.addr();
    let out = run(
        &dir.path().join("bob"),
        &[
            "--headless",
            "--exit-on-eof",
            "--no-mdns",
            "--name",
            "bob",
            "--peer",
            &peer,
        ],
        "hello\n/quit\n",
    );
    let lines = json_lines(&out);
    assert!(out.status.success(), "{out:?}");
    let types: Vec<&str> = lines.iter().filter_map(|v| v["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"ready"), "{lines:#?}");
    let created = lines
        .iter()
        .find(|v| is_chat(v, "hello"))
        .expect("a created line for the message");
    assert_eq!(created["dir"], "created");
    assert_eq!(created["origin_name"], "bob");
    let stopped = lines.last().expect("lines");
    assert_eq!(stopped["type"], "stopped", "{lines:#?}");
    assert_eq!(stopped["unsent"], 0);
    // created: the identity event, the nick, the message.
    assert_eq!(stopped["created"], 3);
    // The peer confirmed holding it before bob exited; its screen shows it.
    let got = ana.wait_for(|v| is_chat(v, "hello"));
    assert_eq!(got["dir"], "received");
}

#[test]
fn quit_with_unreachable_peers_reports_unsent_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one and drop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let peer = format!("127.0.0.1:{port}");
    let out = run(
        dir.path(),
        &["--headless", "--exit-on-eof", "--no-mdns", "--peer", &peer],
        "hello\n",
    );
    let lines = json_lines(&out);
    let stopped = lines.last().expect("lines");
    assert_eq!(stopped["type"], "stopped", "{lines:#?}");
    assert_eq!(stopped["created"], 3);
    assert_eq!(stopped["unsent"], 3);
    assert_eq!(out.status.code(), Some(1));
}

/// The outcome each kind of script line must print, in order.
fn script(n: usize) -> Vec<(String, &'static str)> {
    (0..n)
        .map(|i| match i % 8 {
            0 => (format!("message {i}"), "event"),
            1 => (format!("/add item {i}"), "event"),
            2 => ("/frobnicate".to_string(), "error"),
            3 => ("/done zzzz".to_string(), "error"),
            4 => ("/state".to_string(), "state"),
            5 => ("/quit now".to_string(), "error"),
            6 => (format!("/nick n{i}"), "event"),
            _ => ("/help".to_string(), "help"),
        })
        .collect()
}

#[test]
fn two_hundred_mixed_lines_give_outputs_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let lines = script(200);
    let mut input: String = lines.iter().map(|(l, _)| format!("{l}\n")).collect();
    input.push_str("/quit\n");
    let out = run(
        dir.path(),
        &["--headless", "--no-mdns", "--name", "scripter"],
        &input,
    );
    assert!(out.status.success(), "{out:?}");
    let all = json_lines(&out);
    // ready, our nick (first run), then one outcome per line, then stopped.
    assert_eq!(all[0]["type"], "ready");
    assert_eq!(all[1]["op"]["name"], "scripter", "{:#?}", &all[..3]);
    let outcomes = &all[2..all.len() - 1];
    assert_eq!(all.last().unwrap()["type"], "stopped");
    assert_eq!(outcomes.len(), lines.len(), "{outcomes:#?}");
    let mut items = 0;
    for (i, ((line, kind), got)) in lines.iter().zip(outcomes).enumerate() {
        assert_eq!(got["type"], *kind, "line {i} {line:?}: {got}");
        match i % 8 {
            0 => assert!(is_chat(got, line), "line {i}: {got}"),
            1 => {
                assert_eq!(got["op"]["op"], "list_add");
                items += 1;
            }
            // The state sees every /add before it.
            4 => assert_eq!(got["state"]["list"].as_array().unwrap().len(), items),
            5 => assert!(
                got["message"]
                    .as_str()
                    .unwrap()
                    .contains("takes no arguments")
            ),
            _ => {}
        }
    }
}

#[test]
fn eof_without_exit_on_eof_keeps_running_and_a_signal_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    node.send("still here");
    node.wait_for(|v| is_chat(v, "still here"));
    node.close_stdin();
    // Still running after EOF: it answers a peer that dials it.
    let out = run(
        &dir.path().join("other"),
        &[
            "--headless",
            "--exit-on-eof",
            "--no-mdns",
            "--peer",
            &node.addr(),
        ],
        "after eof\n",
    );
    assert!(out.status.success(), "{out:?}");
    node.wait_for(|v| is_chat(v, "after eof"));
    node.terminate();
    let (status, seen) = node.finish();
    assert!(status.success(), "{status:?}");
    let last = seen.last().unwrap();
    assert_eq!(last["type"], "stopped", "{seen:#?}");
    assert_eq!(last["unsent"], 0);
}

/// Piped chat lines are read ahead and created in groups: their `event` lines still come
/// in input order, one per line, and (under `--fsync always`) only once durable: every
/// line acknowledged before the process is killed is in the store when it reopens.
#[test]
fn piped_chat_lines_are_acknowledged_in_order_and_every_acknowledged_one_survives_a_kill() {
    use std::io::Write;
    const LINES: usize = 3000;
    const KILL_AFTER: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &["--fsync", "always", "--name", "piper"]);
    let stdin = node.stdin.take().expect("stdin");
    // All lines at once, as a pipe gives them; stdin stays open (no EOF) until the kill.
    let writer = std::thread::spawn(move || {
        let mut w = std::io::BufWriter::new(stdin);
        for i in 0..LINES {
            if writeln!(w, "piped {i}").is_err() {
                break;
            }
        }
        let _ = w.flush();
        w
    });
    let mut last_seq = 0;
    let mut acked = 0;
    while acked < KILL_AFTER {
        let v = node
            .next_line(proc::WAIT)
            .unwrap_or_else(|| panic!("{acked} acknowledged, then nothing"));
        assert_ne!(v["type"], "error", "{v}");
        if v["type"] == "event" && v["op"]["op"] == "chat" {
            assert!(is_chat(&v, &format!("piped {acked}")), "line {acked}: {v}");
            let seq = v["seq"].as_u64().unwrap();
            assert!(
                seq > last_seq,
                "seqs go up in line order: {seq} after {last_seq}"
            );
            last_seq = seq;
            acked += 1;
        }
    }
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    drop(writer.join());
    // Reopened: the store holds every acknowledged event.
    let out = run(
        dir.path(),
        &["--headless", "--no-mdns", "--exit-on-eof"],
        "",
    );
    let ready = json_lines(&out)
        .into_iter()
        .find(|v| v["type"] == "ready")
        .expect("ready");
    let next = ready["next_seq"].as_u64().unwrap();
    assert!(
        next > last_seq,
        "acknowledged up to {last_seq}, reopened at {next}"
    );
}
