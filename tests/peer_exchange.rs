//! Peer exchange with real processes on loopback and mDNS off: laptops given one `--peer`
//! (the first) meet each other through signed records, keep talking when the first
//! leaves, and a restarted laptop redials the peers it knew (`<store dir>/peers`).

mod proc;

use std::time::Instant;

use proc::Node;
use serde_json::Value;

fn is_chat(v: &Value, text: &str) -> bool {
    v["type"] == "event" && v["op"]["op"] == "chat" && v["op"]["text"] == text
}

fn alive(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v: &Value| v["type"] == "peer" && v["id"] == id && v["state"] == "alive"
}

fn id_of(n: &Node) -> String {
    n.ready()["node_id"].as_str().expect("node id").to_string()
}

#[test]
fn one_peer_each_meets_the_room_survives_the_first_leaving_and_a_restart_redials() {
    let dir = tempfile::tempdir().unwrap();
    let room = ["--room", "pex-test"];
    let mut first = Node::start(
        &dir.path().join("a"),
        &[&room[..], &["--name", "a"]].concat(),
    );
    let contact = first.addr();
    let start = Instant::now();
    let mut others: Vec<Node> = ["b", "c", "d"]
        .iter()
        .map(|name| {
            Node::start(
                &dir.path().join(name),
                &[&room[..], &["--name", name, "--peer", &contact]].concat(),
            )
        })
        .collect();
    let ids: Vec<String> = others.iter().map(id_of).collect();
    // Each of b, c, d sees the two others alive, though nobody gave it their address.
    for (i, n) in others.iter_mut().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if i != j {
                n.wait_for(alive(id));
            }
        }
    }
    eprintln!(
        "b, c and d met each other through a's records {} ms after they started",
        start.elapsed().as_millis()
    );
    // The first contact leaves for good.
    let _ = first.child.kill();
    let _ = first.child.wait();
    others[0].send("after a left");
    others[1].wait_for(|v| is_chat(v, "after a left"));
    others[2].wait_for(|v| is_chat(v, "after a left"));
    // d restarts with no --peer: it redials b and c from its store dir.
    let d = others.pop().expect("d");
    let d_dir = d.data_dir.clone();
    let (status, _) = {
        let mut d = d;
        d.terminate();
        d.finish()
    };
    assert!(status.success(), "d stopped cleanly: {status:?}");
    others[0].send("while d was away");
    let mut d = Node::start(&d_dir, &[&room[..], &["--name", "d"]].concat());
    d.wait_for(alive(&ids[0]));
    d.wait_for(alive(&ids[1]));
    d.wait_for(|v| is_chat(v, "while d was away"));
}
