//! The chat runtime with real processes on loopback: the nick kept across restarts, the
//! demo kept out of real rooms, the config file, `/peer` to yourself and wrong secrets.

mod proc;

use std::path::Path;

use proc::{Node, command, json_lines, run};
use serde_json::Value;

/// A config path that does not exist, so a developer's own config file never leaks in.
fn no_config(dir: &Path) -> String {
    dir.join("no-such-config.toml").display().to_string()
}

fn nick_events(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|v| v["type"] == "event" && v["op"]["op"] == "nick")
        .filter_map(|v| v["op"]["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_nick_survives_a_restart_without_name_and_name_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = no_config(dir.path());
    let base = ["--headless", "--no-mdns", "--exit-on-eof", "--config", &cfg];
    let first = run(
        dir.path(),
        &[&base[..], &["--name", "cy"]].concat(),
        "/nick cyrus\n",
    );
    assert!(first.status.success(), "{first:?}");
    assert_eq!(nick_events(&json_lines(&first)), ["cy", "cyrus"]);

    // No --name: the stored nick is kept, nothing is renamed, messages carry it.
    let again = run(dir.path(), &base, "hello\n");
    let lines = json_lines(&again);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(lines[0]["type"], "ready");
    assert_eq!(lines[0]["name"], "cyrus", "{lines:#?}");
    assert!(nick_events(&lines).is_empty(), "{lines:#?}");
    let hello = lines
        .iter()
        .find(|v| v["op"]["text"] == "hello")
        .expect("the message");
    assert_eq!(hello["origin_name"], "cyrus");

    // --name overrides the stored nick.
    let named = run(dir.path(), &[&base[..], &["--name", "cy"]].concat(), "");
    assert_eq!(nick_events(&json_lines(&named)), ["cy"]);
}

fn events_log(data_dir: &Path, room: &str) -> Vec<u8> {
    std::fs::read(data_dir.join(room).join("events.log")).expect("the room's log")
}

#[test]
fn the_demo_leaves_the_real_rooms_store_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = no_config(dir.path());
    let made = run(
        dir.path(),
        &[
            "--headless",
            "--no-mdns",
            "--exit-on-eof",
            "--config",
            &cfg,
            "--name",
            "me",
        ],
        "a real message\n",
    );
    assert!(made.status.success(), "{made:?}");
    let before = events_log(dir.path(), "lobby");
    let rooms_before: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();

    let mut demo = Node::start(dir.path(), &["--demo", "1", "--config", &cfg]);
    let room = demo.ready()["room"].as_str().unwrap().to_string();
    assert!(room.starts_with("demo-"), "{room}");
    assert_ne!(demo.ready()["data_dir"], made_data_dir(&made));
    // The bot joined and talks: its nick reaches us.
    let bot = demo.wait_for(|v| v["dir"] == "received" && v["op"]["op"] == "nick");
    assert!(
        bot["op"]["name"].as_str().unwrap().ends_with("-bot"),
        "{bot}"
    );
    let store = demo.ready()["data_dir"].as_str().unwrap().to_string();
    demo.terminate();
    let (status, lines) = demo.finish();
    assert!(status.success(), "{lines:#?}");

    assert_eq!(
        events_log(dir.path(), "lobby"),
        before,
        "the real room changed"
    );
    let rooms_after: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        rooms_after, rooms_before,
        "the demo wrote into the data dir"
    );
    assert!(
        !Path::new(&store).exists(),
        "the demo store {store} was left behind"
    );
}

fn made_data_dir(out: &std::process::Output) -> Value {
    json_lines(out)[0]["data_dir"].clone()
}

#[test]
fn config_prints_each_setting_with_its_source_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gossip-chat.toml");
    std::fs::write(&file, "name = \"ana\"\nroom = \"kitchen\"\nbell = false\n").unwrap();
    let cfg = file.display().to_string();
    let out = command(dir.path(), &["--config", &cfg, "config", "--room", "hall"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains(&format!("config file: {cfg}")), "{text}");
    assert!(text.contains("name         = \"ana\""), "{text}");
    assert!(text.contains(&format!("# config file {cfg}")), "{text}");
    assert!(text.contains("room         = \"hall\""), "{text}");
    assert!(text.contains("# flag --room"), "{text}");
    assert!(text.contains("bell         = false"), "{text}");
    assert!(text.contains("time         = local"), "{text}");

    // The file's room is the one joined without --room.
    let joined = run(
        dir.path(),
        &["--headless", "--no-mdns", "--exit-on-eof", "--config", &cfg],
        "",
    );
    assert_eq!(json_lines(&joined)[0]["room"], "kitchen");
    assert_eq!(json_lines(&joined)[0]["name"], "ana");

    std::fs::write(&file, "nmae = \"typo\"\n").unwrap();
    let bad = command(dir.path(), &["--config", &cfg, "config"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("is invalid"),
        "{bad:?}"
    );
}

#[test]
fn peer_to_yourself_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = no_config(dir.path());
    let mut me = Node::start(dir.path(), &["--config", &cfg]);
    let addr = me.addr();
    me.send(&format!("/peer {addr}"));
    let w = me.wait_for(|v| v["type"] == "warning");
    assert!(
        w["message"].as_str().unwrap().contains("is this node"),
        "{w}"
    );
}

#[test]
fn a_wrong_room_secret_is_named_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = no_config(dir.path());
    let (s1, s2) = (dir.path().join("s1"), dir.path().join("s2"));
    std::fs::write(&s1, "one secret\n").unwrap();
    std::fs::write(&s2, "another secret\n").unwrap();
    let (a1, a2) = (s1.display().to_string(), s2.display().to_string());
    let mut ana = Node::start(
        &dir.path().join("ana"),
        &["--config", &cfg, "--secret-file", &a1],
    );
    let target = ana.addr();
    let mut bob = Node::start(
        &dir.path().join("bob"),
        &["--config", &cfg, "--secret-file", &a2, "--peer", &target],
    );
    let dialer = bob.wait_for(|v| v["type"] == "warning");
    let text = dialer["message"].as_str().unwrap();
    assert!(text.contains("another room secret?"), "{text}");
    let acceptor = ana.wait_for(|v| v["type"] == "warning");
    let text = acceptor["message"].as_str().unwrap();
    assert!(
        text.contains("could not connect: another room secret?"),
        "{text}"
    );
    // One warning each, not one per retry: bob retries at 0.5, 1.5 and 3.5 s.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(4);
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        bob.next_line(left);
    }
    let warnings = bob.seen.iter().filter(|v| v["type"] == "warning").count();
    assert_eq!(warnings, 1, "{:#?}", bob.seen);
}

/// The chat of a fresh `/state` line (earlier state lines are skipped).
fn chat_of(node: &mut Node) -> Vec<Value> {
    let before = node.seen.len();
    node.send("/state");
    let state = loop {
        let v = node.next_line(proc::WAIT).expect("a state line");
        if v["type"] == "state" {
            break v;
        }
    };
    assert!(node.seen.len() > before);
    state["state"]["chat"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn edits_deletes_replies_and_whois_cross_to_the_other_node() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = no_config(dir.path());
    let mut ana = Node::start(
        &dir.path().join("ana"),
        &["--config", &cfg, "--name", "ana"],
    );
    let target = ana.addr();
    let mut bob = Node::start(
        &dir.path().join("bob"),
        &["--config", &cfg, "--name", "bob", "--peer", &target],
    );
    ana.send("helo");
    bob.wait_for(|v| v["dir"] == "received" && v["op"]["text"] == "helo");
    ana.send("/edit last hello");
    bob.wait_for(|v| v["dir"] == "received" && v["op"]["op"] == "chat_edit");
    let chat = chat_of(&mut bob);
    assert_eq!(chat[0]["text"], "hello", "{chat:#?}");
    assert_eq!(chat[0]["edited"], true);

    bob.send("/reply ana hi ana");
    ana.wait_for(|v| v["dir"] == "received" && v["op"]["op"] == "reply");
    bob.send("/me waves");
    ana.wait_for(|v| v["dir"] == "received" && v["op"]["op"] == "action");
    // Bob cannot change ana's message: "last" is his own.
    bob.send("/edit last hijacked");
    bob.wait_for(|v| v["dir"] == "created" && v["op"]["op"] == "chat_edit");
    ana.send("/delete");
    bob.wait_for(|v| v["dir"] == "received" && v["op"]["op"] == "chat_delete");
    ana.wait_for(|v| v["dir"] == "received" && v["op"]["text"] == "hijacked");
    let seen_by_ana = chat_of(&mut ana);
    let seen_by_bob = chat_of(&mut bob);
    assert_eq!(seen_by_ana, seen_by_bob);
    let texts: Vec<&str> = seen_by_bob
        .iter()
        .filter_map(|l| l["text"].as_str())
        .collect();
    // Bob's edit changed his own last line, the action.
    assert_eq!(
        texts,
        ["(deleted)", "hi ana", "hijacked"],
        "{seen_by_bob:#?}"
    );
    assert_eq!(seen_by_bob[0]["deleted"], true);
    assert_eq!(seen_by_bob[1]["reply_to"]["first_line"], "(deleted)");
    assert_eq!(seen_by_bob[2]["action"], true);
    assert_eq!(seen_by_bob[2]["edited"], true);

    bob.send("/whois ana");
    let who = bob.wait_for(|v| v["type"] == "whois");
    let found = &who["found"][0];
    assert_eq!(found["name"], "ana");
    assert_eq!(found["id"], ana.ready()["node_id"]);
    assert_eq!(
        found["fingerprint"].as_str().map(str::len),
        Some(19),
        "{who}"
    );
    assert_eq!(found["addresses"][0], target);
    bob.send("/whois nobody");
    let e = bob.wait_for(|v| v["type"] == "error");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("nobody here is called nobody")
    );
}

#[test]
fn a_pending_dial_is_a_peer_row_until_unpeer_and_forget_drops_offline_peers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = no_config(dir.path());
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = dead.local_addr().unwrap().to_string();
    drop(dead);
    let mut ana = Node::start(
        &dir.path().join("ana"),
        &["--config", &cfg, "--name", "ana"],
    );
    ana.send(&format!("/peer {nowhere}"));
    let row = ana.wait_for(|v| v["type"] == "peer" && v["addr"] == nowhere.as_str());
    assert_eq!(row["state"], "discovered", "{row}");
    ana.send(&format!("/unpeer {nowhere}"));
    let done = ana.wait_for(|v| {
        v["type"] == "notice"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("stopped dialing"))
    });
    assert!(done["message"].as_str().unwrap().contains(&nowhere));
    ana.wait_for(|v| v["type"] == "peer" && v["state"] == "removed");

    // A peer that went away stays as an offline row until /forget.
    let target = ana.addr();
    let mut bob = Node::start(
        &dir.path().join("bob"),
        &["--config", &cfg, "--name", "bob", "--peer", &target],
    );
    let bob_id = bob.ready()["node_id"].as_str().unwrap().to_string();
    ana.wait_for(|v| v["type"] == "peer" && v["id"] == bob_id.as_str() && v["state"] == "alive");
    ana.wait_for(|v| v["dir"] == "received" && v["op"]["name"] == "bob");
    let _ = bob.child.kill();
    let _ = bob.child.wait();
    ana.wait_for(|v| v["type"] == "peer" && v["id"] == bob_id.as_str() && v["state"] == "offline");
    let left = ana.wait_for(|v| v["type"] == "presence" && v["kind"] == "left");
    assert_eq!(left["message"], "bob left");
    ana.send("/forget");
    let forgot = ana.wait_for(|v| {
        v["type"] == "notice"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("forgot"))
    });
    assert_eq!(forgot["message"], "forgot 1 offline peer(s)");
    ana.wait_for(|v| v["type"] == "peer" && v["id"] == bob_id.as_str() && v["state"] == "removed");
}
