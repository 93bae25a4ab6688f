//! Files between real `gossip-chat --headless` processes on loopback: a file offered with
//! `/send` and fetched with `/save` is byte-identical, hostile names are made safe and
//! nothing is overwritten, and a transfer whose sender is killed halfway completes from a
//! third node that had saved the file.

mod proc;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use proc::Node;
use serde_json::Value;

fn is_file_event(v: &Value, name: &str) -> bool {
    v["type"] == "event" && v["op"]["op"] == "file" && v["op"]["name"] == name
}

/// `len` bytes that do not repeat within a chunk.
fn write_data(path: &Path, len: usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    std::fs::write(path, out).unwrap();
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = read_full(&mut fa, &mut ba);
        let m = read_full(&mut fb, &mut bb);
        if n != m || ba[..n] != bb[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Offers `path` from `node` and returns its file id, once `other` has the offer.
fn offer(node: &mut Node, other: &mut Node, path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    node.send(&format!("/send {}", path.display()));
    let created = node.wait_for(|v| is_file_event(v, &name));
    assert_eq!(created["dir"], "created");
    let id = created["op"]["file_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64);
    other.wait_for(|v| is_file_event(v, &name));
    id
}

/// Waits (up to `limit`) for the `saved` line of `id` and returns its path.
fn wait_saved(node: &mut Node, id: &str, limit: Duration) -> std::path::PathBuf {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = node
            .seen
            .iter()
            .find(|v| v["type"] == "saved" && v["file_id"] == id)
        {
            return v["path"].as_str().unwrap().into();
        }
        if let Some(e) = node
            .seen
            .iter()
            .find(|v| v["type"] == "error" && v["file_id"] == id)
        {
            panic!("save failed: {e}");
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("not saved in {limit:?}; seen: {:#?}", node.seen));
        node.next_line(left.min(Duration::from_secs(1)));
    }
}

#[test]
fn a_file_sent_and_saved_is_byte_identical_and_hostile_names_are_made_safe() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let big = files.join("photos.tar");
    write_data(&big, 5_000_000);
    let con = files.join("CON.txt");
    std::fs::write(&con, b"a device name on Windows").unwrap();
    let dotted = files.join("..hidden");
    std::fs::write(&dotted, b"leading dots").unwrap();

    let mut ana = Node::start(&dir.path().join("ana"), &["--name", "ana"]);
    let mut bob = Node::start(
        &dir.path().join("bob"),
        &["--name", "bob", "--peer", &ana.addr()],
    );
    let id = offer(&mut ana, &mut bob, &big);
    let out = dir.path().join("downloads");
    bob.send(&format!("/save {} {}", &id[..10], out.display()));
    let saved = wait_saved(&mut bob, &id, Duration::from_secs(120));
    assert_eq!(saved, out.join("photos.tar"));
    assert!(same_bytes(&big, &saved), "byte-identical");
    let progress = bob
        .seen
        .iter()
        .find(|v| v["type"] == "progress" && v["file_id"] == id)
        .expect("a progress line");
    assert_eq!(progress["total"], 5_000_000);
    // A second save never overwrites the first.
    bob.send(&format!("/save {id} {}", out.display()));
    bob.wait_for(|v| v["type"] == "saved" && v["path"] != saved.display().to_string());
    assert!(out.join("photos (1).tar").is_file());

    for (path, safe) in [(&con, "_CON.txt"), (&dotted, "hidden")] {
        let id = offer(&mut ana, &mut bob, path);
        bob.send(&format!("/save {id} {}", out.display()));
        let saved = wait_saved(&mut bob, &id, Duration::from_secs(60));
        assert_eq!(saved, out.join(safe));
        assert!(same_bytes(path, &saved));
    }
    // No temporary file is left next to the saved ones.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".part")), "{names:?}");
    bob.send("/files");
    let listed = bob.wait_for(|v| v["type"] == "files");
    assert_eq!(listed["files"].as_array().unwrap().len(), 3, "{listed}");
    assert_eq!(listed["files"][0]["from"], "ana");
}

#[test]
fn a_save_whose_sender_is_killed_halfway_completes_from_a_node_that_saved_it() {
    const SIZE: usize = 200 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("movie.mkv");
    write_data(&src, SIZE);
    let mut ana = Node::start(&dir.path().join("ana"), &["--name", "ana"]);
    let mut cy = Node::start(
        &dir.path().join("cy"),
        &["--name", "cy", "--peer", &ana.addr()],
    );
    let id = offer(&mut ana, &mut cy, &src);
    // cy saves it first (and so serves it too).
    cy.send(&format!(
        "/save {id} {}",
        dir.path().join("cy-out").display()
    ));
    wait_saved(&mut cy, &id, Duration::from_secs(300));
    std::fs::remove_file(dir.path().join("cy-out").join("movie.mkv")).unwrap();

    // bob knows only ana, and starts saving from her.
    let mut bob = Node::start(
        &dir.path().join("bob"),
        &["--name", "bob", "--peer", &ana.addr()],
    );
    bob.wait_for(|v| is_file_event(v, "movie.mkv"));
    let out = dir.path().join("bob-out");
    bob.send(&format!("/save {id} {}", out.display()));
    let partial = bob.wait_for(|v| v["type"] == "progress" && v["file_id"] == id);
    let done = partial["done"].as_u64().unwrap();
    assert!(done < SIZE as u64, "killed before the end: {partial}");
    // ana is killed mid-transfer; cy, which saved it, dials bob.
    ana.child.kill().unwrap();
    let _ = ana.child.wait();
    cy.send(&format!("/peer {}", bob.addr()));
    let saved = wait_saved(&mut bob, &id, Duration::from_secs(300));
    assert!(same_bytes(&src, &saved), "byte-identical");
}
