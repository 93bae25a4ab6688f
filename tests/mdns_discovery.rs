//! mDNS discovery on a private loopback-only network namespace (`unshare -rn`), so no
//! multicast ever leaves this machine. The test re-executes itself inside the namespace.
#![cfg(target_os = "linux")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gossip::NodeId;
use gossip::discovery::{Announcement, DiscoveryEvent, MdnsDiscovery};
use tokio::sync::mpsc::Receiver;

const INSIDE: &str = "GOSSIP_TEST_IN_NETNS";
const CHILD: &str = "GOSSIP_TEST_MDNS_CHILD";

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

fn announce(id: NodeId, name: &str, room: &str) -> Announcement {
    Announcement {
        node_id: id,
        name: name.into(),
        room: room.into(),
        port: 4000 + (id.0.as_u128() % 1000) as u16,
        version: 1,
        psk: false,
    }
}

/// Waits for an event matching `want`, failing on any event `forbid` matches.
async fn expect_event(
    rx: &mut Receiver<DiscoveryEvent>,
    limit: Duration,
    what: &str,
    want: impl Fn(&DiscoveryEvent) -> bool,
    forbid: impl Fn(&DiscoveryEvent) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(e)) if want(&e) => return start.elapsed(),
            Ok(Some(e)) => assert!(!forbid(&e), "unexpected {e:?} while waiting for {what}"),
            Ok(None) => panic!("discovery stopped while waiting for {what}"),
            Err(_) => panic!("no {what} within {limit:?}"),
        }
    }
}

#[test]
fn peers_of_the_room_are_found_others_and_ourselves_are_not() {
    if std::env::var_os(INSIDE).is_none() {
        return in_private_netns("peers_of_the_room_are_found_others_and_ourselves_are_not");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b, c) = (NodeId::random(), NodeId::random(), NodeId::random());
        let (da, mut ra) = MdnsDiscovery::start(announce(a, "alice", "lobby")).unwrap();
        let (db, _rb) = MdnsDiscovery::start(announce(b, "bob", "lobby")).unwrap();
        let (dc, _rc) = MdnsDiscovery::start(announce(c, "carol", "elsewhere")).unwrap();
        let not_a_or_c = |e: &DiscoveryEvent| match e {
            DiscoveryEvent::Resolved(p) => p.node_id == a || p.node_id == c,
            DiscoveryEvent::Removed(id) => *id == a || *id == c,
        };
        let took = expect_event(
            &mut ra,
            Duration::from_secs(10),
            "bob resolved",
            |e| matches!(e, DiscoveryEvent::Resolved(p) if p.node_id == b && p.name == "bob"
                && p.addrs.iter().any(|s| s.ip().is_loopback() && s.port() == announce(b, "", "").port)),
            not_a_or_c,
        )
        .await;
        println!("bob found after {took:?}");
        // A graceful stop says goodbye: bob leaves at once, not after the TTL.
        db.shutdown().await;
        let took = expect_event(
            &mut ra,
            Duration::from_secs(10),
            "bob removed",
            |e| *e == DiscoveryEvent::Removed(b),
            not_a_or_c,
        )
        .await;
        println!("bob removed after {took:?}");
        da.shutdown().await;
        dc.shutdown().await;
    });
}

#[test]
fn a_renamed_peer_resolves_again_with_its_new_name() {
    if std::env::var_os(INSIDE).is_none() {
        return in_private_netns("a_renamed_peer_resolves_again_with_its_new_name");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b) = (NodeId::random(), NodeId::random());
        let (da, mut ra) = MdnsDiscovery::start(announce(a, "alice", "lobby")).unwrap();
        let (mut db, _rb) = MdnsDiscovery::start(announce(b, "cy", "lobby")).unwrap();
        let removed = |e: &DiscoveryEvent| *e == DiscoveryEvent::Removed(b);
        expect_event(
            &mut ra,
            Duration::from_secs(10),
            "cy resolved",
            |e| matches!(e, DiscoveryEvent::Resolved(p) if p.node_id == b && p.name == "cy"),
            removed,
        )
        .await;
        // A /nick while running: the same instance, announced again with the new name.
        db.rename("cyrus").unwrap();
        assert_eq!(db.name(), "cyrus");
        let took = expect_event(
            &mut ra,
            Duration::from_secs(10),
            "cy resolved again as cyrus",
            |e| matches!(e, DiscoveryEvent::Resolved(p) if p.node_id == b && p.name == "cyrus"),
            removed,
        )
        .await;
        println!("the new name reached alice after {took:?}");
        db.shutdown().await;
        da.shutdown().await;
    });
}

#[test]
fn a_killed_peer_is_dropped_after_a_failed_verify_and_a_live_one_is_kept() {
    if let Ok(id) = std::env::var(CHILD) {
        // Child mode: register, say so, and wait to be killed.
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let id: NodeId = id.parse().unwrap();
            let (_d, _r) = MdnsDiscovery::start(announce(id, "doomed", "lobby")).unwrap();
            println!("registered");
            tokio::time::sleep(Duration::from_secs(600)).await;
        });
        return;
    }
    let name = "a_killed_peer_is_dropped_after_a_failed_verify_and_a_live_one_is_kept";
    if std::env::var_os(INSIDE).is_none() {
        return in_private_netns(name);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (a, live, doomed) = (NodeId::random(), NodeId::random(), NodeId::random());
        let (da, mut ra) = MdnsDiscovery::start(announce(a, "alice", "lobby")).unwrap();
        let (dl, _rl) = MdnsDiscovery::start(announce(live, "live", "lobby")).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(CHILD, doomed.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut found = (false, false);
        while !(found.0 && found.1) {
            match tokio::time::timeout(Duration::from_secs(10), ra.recv()).await {
                Ok(Some(DiscoveryEvent::Resolved(p))) if p.node_id == live => found.0 = true,
                Ok(Some(DiscoveryEvent::Resolved(p))) if p.node_id == doomed => found.1 = true,
                Ok(Some(_)) => {}
                other => panic!("both peers not found: {other:?}"),
            }
        }
        child.kill().unwrap(); // SIGKILL: no goodbye
        child.wait().unwrap();
        da.verify(doomed);
        da.verify(live);
        let took = expect_event(
            &mut ra,
            Duration::from_secs(8),
            "the killed peer removed",
            |e| *e == DiscoveryEvent::Removed(doomed),
            |e| *e == DiscoveryEvent::Removed(live),
        )
        .await;
        println!("killed peer removed {took:?} after verify");
        // The live peer answered its verify and stays.
        let quiet = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                if let Some(DiscoveryEvent::Removed(id)) = ra.recv().await
                    && id == live
                {
                    return;
                }
            }
        })
        .await;
        assert!(quiet.is_err(), "the live peer was removed by verify");
        dl.shutdown().await;
        da.shutdown().await;
    });
}
