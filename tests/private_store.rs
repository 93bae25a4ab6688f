//! A private room on disk, with real processes: no message text in any file, a changed
//! sealed record reported like damage, `compact` removing it for good.

mod proc;

use std::path::{Path, PathBuf};

use proc::{json_lines, run, run_private};

const SECRET: &str = "correct horse battery staple";
const TEXT: &str = "the launch code is swordfish";

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The private room's store directory (named by the room id).
fn store_dir(data: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("events.log").exists())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn no_file_of_a_private_room_holds_a_typed_message() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--headless", "--exit-on-eof", "--no-mdns", "--room", "ops"];
    let out = run_private(
        dir.path(),
        SECRET,
        &args,
        &format!("{TEXT}\n/add {TEXT} too\n"),
    );
    assert!(out.status.success(), "{out:?}");
    for f in files_under(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains(&bytes, b"swordfish"),
            "plaintext in {}",
            f.display()
        );
    }
    // With the secret, export reads it back.
    let out = run_private(dir.path(), SECRET, &["export", "--room", "ops"], "");
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out);
    assert!(lines.iter().any(|v| v["op"]["text"] == TEXT), "{lines:#?}");
    // Without it, there is no such room to read.
    let out = run(dir.path(), &["export", "--room", "ops"], "");
    assert!(!out.status.success());
}

#[test]
fn a_changed_sealed_record_is_reported_and_compact_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--headless", "--exit-on-eof", "--no-mdns", "--room", "ops"];
    let input: String = (0..6).map(|i| format!("{TEXT} {i}\n")).collect();
    assert!(
        run_private(dir.path(), SECRET, &args, &input)
            .status
            .success()
    );
    let log = store_dir(dir.path()).join("events.log");
    let mut bytes = std::fs::read(&log).unwrap();
    // Flip one bit in the middle of the file: inside some sealed record.
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&log, &bytes).unwrap();
    let out = run_private(dir.path(), SECRET, &args, "");
    let lines = json_lines(&out);
    let warning = lines
        .iter()
        .find(|v| v["type"] == "warning")
        .unwrap_or_else(|| panic!("no warning: {lines:#?}"));
    let text = warning["message"].as_str().unwrap();
    assert!(
        text.contains("damaged") && text.contains("compact"),
        "{text}"
    );
    let before: Vec<_> = json_lines(&run_private(
        dir.path(),
        SECRET,
        &["export", "--room", "ops"],
        "",
    ));
    let out = run_private(dir.path(), SECRET, &["compact", "--room", "ops"], "");
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("kept") && said.contains("dropped 1 damaged"),
        "{said}"
    );
    // The next open is clean, and every intact event is still there.
    let out = run_private(dir.path(), SECRET, &args, "");
    let lines = json_lines(&out);
    assert!(!lines.iter().any(|v| v["type"] == "warning"), "{lines:#?}");
    let after: Vec<_> = json_lines(&run_private(
        dir.path(),
        SECRET,
        &["export", "--room", "ops"],
        "",
    ));
    let ids = |v: &[serde_json::Value]| v.iter().map(|l| l["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&after), ids(&before));
}

#[test]
fn version_names_commit_protocol_and_store_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--version"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in ["gossip-chat 0.", "commit ", "protocol ", "store format "] {
        assert!(text.contains(needle), "{text}");
    }
}
