//! Typing and presence between real `--headless` processes on loopback: the notes show on
//! the other node's output and are never stored, so `export` never shows them.

mod proc;

use proc::{Node, json_lines, run};
use serde_json::Value;

fn is_chat(v: &Value, text: &str) -> bool {
    v["type"] == "event" && v["op"]["op"] == "chat" && v["op"]["text"] == text
}

#[test]
fn typing_and_away_show_on_the_other_node_and_never_in_export() {
    let dir = tempfile::tempdir().unwrap();
    let (ana_dir, bob_dir) = (dir.path().join("ana"), dir.path().join("bob"));
    let mut ana = Node::start(&ana_dir, &["--name", "ana"]);
    let mut bob = Node::start(&bob_dir, &["--name", "bob", "--peer", &ana.addr()]);
    // bob holds ana's events (her key among them) once her message shows on his side.
    ana.send("hello");
    bob.wait_for(|v| is_chat(v, "hello"));
    ana.wait_for(|v| v["type"] == "peer" && v["name"] == "bob" && v["state"] == "alive");

    ana.send("/typing");
    let told = ana.wait_for(|v| {
        v["type"] == "notice"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("typing"))
    });
    assert!(
        told["message"].as_str().unwrap().contains("told 1 peer"),
        "{told}"
    );
    let ana_id = ana.ready()["node_id"].clone();
    let typing = bob.wait_for(|v| v["type"] == "typing" && v["typing"] == true);
    assert_eq!(typing["id"], ana_id);
    assert_eq!(typing["name"], "ana");

    ana.send("/away lunch break");
    let away = bob.wait_for(|v| v["type"] == "presence" && v["kind"] == "away");
    assert_eq!(away["id"], ana_id);
    assert_eq!(away["text"], "lunch break");
    assert_eq!(away["message"], "ana is away: lunch break");

    // Sending the message ends the typing.
    ana.send("done now");
    bob.wait_for(|v| is_chat(v, "done now"));
    let stopped = bob.wait_for(|v| v["type"] == "typing" && v["typing"] == false);
    assert_eq!(stopped["id"], ana_id);
    ana.send("/back");
    let back = bob.wait_for(|v| v["type"] == "presence" && v["kind"] == "active");
    assert_eq!(back["message"], "ana is back");

    // Neither store holds any of it: export shows the messages and nothing else of ana's.
    for d in [&ana_dir, &bob_dir] {
        let out = run(d, &["export"], "");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("done now"), "{text}");
        for word in ["typing", "lunch", "away", "gcsig"] {
            assert!(!text.contains(word), "export shows {word}: {text}");
        }
        let ops: Vec<String> = json_lines(&out)
            .iter()
            .filter(|v| v["origin_name"] == "ana")
            .filter_map(|v| v["op"]["op"].as_str().map(str::to_string))
            .collect();
        assert!(
            ops.iter()
                .all(|o| o == "chat" || o == "nick" || o == "identity"),
            "{ops:?}"
        );
    }
    ana.send("/quit");
    bob.send("/quit");
    assert!(ana.finish().0.success());
    assert!(bob.finish().0.success());
}
