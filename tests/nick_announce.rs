//! A `/nick` while running is what the LAN sees from then on: a chat session's mDNS record
//! and its handshakes give the new nick, and a restart without `--name` announces the kept
//! nick, not the default name. Runs on a private loopback-only network namespace
//! (`unshare -rn`, as tests/mdns_discovery.rs), so no multicast leaves this machine.
#![cfg(target_os = "linux")]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gossip::NodeId;
use gossip::app::AppOp;
use gossip::app::runtime::session::{Session, SessionOptions};
use gossip::discovery::{Announcement, DiscoveryEvent, MdnsDiscovery};
use gossip::store::file::FsyncPolicy;
use gossip::transport::codec::PROTOCOL_VERSION;
use tokio::sync::mpsc::Receiver;

const INSIDE: &str = "GOSSIP_TEST_IN_NETNS";
const ROOM: &str = "nick-room";
/// Generous: the machine may be loaded.
const PATIENCE: Duration = Duration::from_secs(20);

/// Runs this test binary's `test` inside a new user + network namespace with `lo` up.
fn in_private_netns(test: &str) {
    let exe = std::env::current_exe().expect("test binary path");
    let status = Command::new("unshare")
        .args(["-rn", "sh", "-c", r#"ip link set lo up && exec "$0" "$@""#])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .expect("unshare runs (util-linux)");
    assert!(status.success(), "{test} failed inside the namespace");
}

fn options(dir: &Path) -> SessionOptions {
    SessionOptions {
        // The default name (user@host in the app): a stored nick wins over it.
        name: "me@laptop".into(),
        name_given: false,
        room: ROOM.into(),
        port: 0,
        listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        data_dir: dir.to_path_buf(),
        peers: Vec::new(),
        mdns: true,
        fsync: FsyncPolicy::Never,
        room_key: None,
        store: Default::default(),
        blobs: Default::default(),
    }
}

/// Waits until the observer reports an event `want` accepts, skipping others.
async fn observe(
    rx: &mut Receiver<DiscoveryEvent>,
    what: &str,
    want: impl Fn(&DiscoveryEvent) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let left = PATIENCE.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(e)) if want(&e) => return start.elapsed(),
            Ok(Some(_)) => {}
            Ok(None) => panic!("the observer's discovery stopped"),
            Err(_) => panic!("no {what} within {PATIENCE:?}"),
        }
    }
}

/// Waits until the observer resolves `id` under `name`.
async fn resolved_as(rx: &mut Receiver<DiscoveryEvent>, id: NodeId, name: &str) -> Duration {
    observe(
        rx,
        &format!("{id} resolved as {name:?}"),
        |e| matches!(e, DiscoveryEvent::Resolved(p) if p.node_id == id && p.name == name),
    )
    .await
}

async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < PATIENCE, "{what} not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn mdns_and_handshakes_follow_a_nick_and_a_restart_keeps_announcing_it() {
    let test = "mdns_and_handshakes_follow_a_nick_and_a_restart_keeps_announcing_it";
    if std::env::var_os(INSIDE).is_none() {
        return in_private_netns(test);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (observer, mut seen) = MdnsDiscovery::start(Announcement {
            node_id: NodeId::random(),
            name: "observer".into(),
            room: ROOM.into(),
            port: 9,
            version: PROTOCOL_VERSION,
            psk: false,
        })
        .unwrap();

        let (session, _events) = Session::start(options(dir.path())).await.unwrap();
        let id = session.node_id();
        resolved_as(&mut seen, id, "me@laptop").await;
        assert_eq!(session.hello_name(), "me@laptop");

        session
            .submit(&AppOp::nick("cyrus").unwrap())
            .await
            .unwrap();
        let took = resolved_as(&mut seen, id, "cyrus").await;
        println!("the LAN saw the new nick {took:?} after /nick");
        eventually("the status name follows the nick", || {
            session.name() == "cyrus"
        })
        .await;
        assert_eq!(session.hello_name(), "cyrus");
        session.shutdown().await;
        // Its goodbye first, so what follows is the new run's record, not a late echo.
        observe(&mut seen, "the goodbye", |e| {
            *e == DiscoveryEvent::Removed(id)
        })
        .await;

        // Back without --name: the kept nick is announced from the start.
        let (again, _events) = Session::start(options(dir.path())).await.unwrap();
        assert_eq!(again.node_id(), id);
        assert_eq!(again.hello_name(), "cyrus");
        let took = resolved_as(&mut seen, id, "cyrus").await;
        println!("after the restart, announced as cyrus {took:?} after start");
        again.shutdown().await;
        observer.shutdown().await;
    });
}
