//! The file event store against real files: reopen, torn tails, bit flips, kill -9, locks.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use bytes::Bytes;
use gossip::protocol::codec::encoded_len;
use gossip::protocol::{Event, NodeId};
use gossip::store::file::{
    FileEventStore, FileStoreOptions, FsyncPolicy, LOG_FILE, RECORD_HEADER_LEN,
};
use gossip::store::{EventStore, SaveOutcome, StoreError, StoreStats};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use uuid::Uuid;

fn ev(origin: u128, seq: u64, payload_len: usize) -> Event {
    Event {
        id: Uuid::now_v7(),
        origin: NodeId::from_u128(origin),
        seq,
        hlc: seq * 3 + origin as u64,
        created_at_ms: 1_700_000_000_000 + seq * 7 + origin as u64,
        payload: Bytes::from(vec![(seq % 251) as u8; payload_len]),
        sig: bytes::Bytes::new(),
    }
}

fn opts(fsync: FsyncPolicy) -> FileStoreOptions {
    FileStoreOptions {
        fsync,
        ..Default::default()
    }
}

fn open(dir: &Path) -> FileEventStore {
    FileEventStore::open(dir, opts(FsyncPolicy::Never)).unwrap()
}

/// Every observable fact about a store, for before/after comparisons.
#[derive(Debug, PartialEq)]
struct Snapshot {
    all: Vec<Event>,
    clock: Vec<(NodeId, u64)>,
    stats: StoreStats,
    per_node: BTreeMap<NodeId, u64>,
    max_hlc: u64,
}

async fn snapshot(s: &FileEventStore) -> Snapshot {
    let mut clock: Vec<_> = s.clock().await.unwrap().iter().collect();
    clock.sort();
    Snapshot {
        all: s.all_events().await.unwrap(),
        clock,
        stats: s.stats().await.unwrap(),
        per_node: s.count_per_node().await.unwrap(),
        max_hlc: s.max_hlc().await.unwrap(),
    }
}

/// Record start offsets of `events` appended in order to an empty log, plus the end.
fn boundaries(events: &[Event]) -> Vec<u64> {
    let mut at = vec![0u64];
    for e in events {
        let last = *at.last().unwrap();
        at.push(last + RECORD_HEADER_LEN + encoded_len(e) as u64);
    }
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_from_five_origins_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(4);
    let mut events: Vec<Event> = (1..=5u128)
        .flat_map(|o| (1..=2000).map(move |q| ev(o, q, (q % 97) as usize)))
        .collect();
    // Arrival order in gossip is arbitrary; the store must not depend on it.
    events.shuffle(&mut rng);
    let s = FileEventStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    for chunk in events.chunks(500) {
        let out = s.save_many(chunk.to_vec()).await.unwrap();
        assert!(out.iter().all(|o| *o == SaveOutcome::Inserted));
    }
    let before = snapshot(&s).await;
    assert_eq!(before.all.len(), 10_000);
    assert_eq!(before.stats.unique_nodes, 5);
    assert!(before.clock.iter().all(|(_, c)| *c == 2000));
    s.close().await.unwrap();

    let s = open(dir.path());
    assert_eq!(snapshot(&s).await, before);
    assert_eq!(s.open_report().dropped_records, 0);
    for e in events.iter().step_by(37) {
        assert_eq!(s.get(e.origin, e.seq).await.unwrap().as_ref(), Some(e));
        assert_eq!(s.save(e.clone()).await.unwrap(), SaveOutcome::Duplicate);
    }
    let since = s
        .events_since(NodeId::from_u128(3), 1990, 100)
        .await
        .unwrap();
    assert_eq!(
        since.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1991..=2000).collect::<Vec<_>>()
    );
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_torn_tail_anywhere_in_the_last_three_records_loses_only_that_tail() {
    let src = tempfile::tempdir().unwrap();
    let events: Vec<Event> = (1..=30).map(|q| ev(1 + (q % 2) as u128, q, 20)).collect();
    let s = open(src.path());
    s.save_many(events.clone()).await.unwrap();
    s.close().await.unwrap();
    let log = fs::read(src.path().join(LOG_FILE)).unwrap();
    let at = boundaries(&events);
    assert_eq!(*at.last().unwrap(), log.len() as u64);

    let first_cut = at[at.len() - 4];
    for cut in first_cut..log.len() as u64 {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOG_FILE), &log[..cut as usize]).unwrap();
        let complete = at.iter().filter(|b| **b <= cut).count() - 1;
        let s = open(dir.path());
        let rep = s.open_report().clone();
        assert_eq!(rep.events as usize, complete, "cut at {cut}");
        assert_eq!(s.all_events().await.unwrap().len(), complete);
        let torn = cut - at[complete];
        assert_eq!(rep.dropped_bytes, torn, "cut at {cut}");
        assert_eq!(rep.dropped_records, u64::from(torn > 0));
        assert!(rep.dropped.iter().all(|d| d.torn_tail));
        assert_eq!(rep.log_bytes_after, at[complete]);

        // Appends after the repair land on a clean log and survive another reopen.
        let extra = ev(9, 1, 5);
        assert_eq!(s.save(extra.clone()).await.unwrap(), SaveOutcome::Inserted);
        s.close().await.unwrap();
        let s = open(dir.path());
        assert_eq!(s.open_report().dropped_records, 0, "cut at {cut}");
        assert_eq!(s.count().await.unwrap() as usize, complete + 1);
        assert_eq!(s.get(extra.origin, 1).await.unwrap(), Some(extra));
        let mut want: Vec<Event> = events[..complete].to_vec();
        want.sort_by_key(|e| (e.origin, e.seq));
        let mut got = s.all_events().await.unwrap();
        got.retain(|e| e.origin != NodeId::from_u128(9));
        assert_eq!(got, want, "cut at {cut}");
        s.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_bit_flip_in_a_middle_record_drops_that_record_only() {
    let src = tempfile::tempdir().unwrap();
    let events: Vec<Event> = (1..=20).map(|q| ev(1, q, 40)).collect();
    let s = open(src.path());
    s.save_many(events.clone()).await.unwrap();
    s.close().await.unwrap();
    let log = fs::read(src.path().join(LOG_FILE)).unwrap();
    let at = boundaries(&events);
    let victim = 9; // seq 10
    let start = at[victim] as usize;
    let size = at[victim + 1] - at[victim];

    // (what, byte offset within the record, bit)
    let flips = [
        ("magic", 0, 0),
        ("magic", 3, 7),
        ("length low bit", 4, 0),
        ("length high bit", 7, 7),
        ("length grows into the next records", 5, 2),
        ("crc", 9, 3),
        ("body start", 12, 1),
        ("body middle", 40, 5),
        ("body end", size as usize - 1, 0),
    ];
    for (what, at_byte, bit) in flips {
        let dir = tempfile::tempdir().unwrap();
        let mut damaged = log.clone();
        damaged[start + at_byte] ^= 1 << bit;
        fs::write(dir.path().join(LOG_FILE), &damaged).unwrap();
        let s = open(dir.path());
        let rep = s.open_report().clone();
        assert_eq!(rep.events, 19, "{what}");
        assert_eq!(rep.dropped.len(), 1, "{what}");
        assert_eq!(rep.dropped[0].offset, start as u64, "{what}");
        assert_eq!(rep.dropped[0].len, size, "{what}");
        assert!(!rep.dropped[0].torn_tail, "{what}");
        let stats = s.stats().await.unwrap();
        assert_eq!((stats.dropped_records, stats.dropped_bytes), (1, size));
        let o = NodeId::from_u128(1);
        assert!(!s.has(o, 10).await.unwrap(), "{what}");
        assert_eq!(s.clock().await.unwrap().get(&o), 9, "{what}");
        assert_eq!(s.latest_seq(o).await.unwrap(), 20, "{what}");
        let mut want = events.clone();
        want.remove(victim);
        assert_eq!(s.all_events().await.unwrap(), want, "{what}");
        // The lost event comes back from a peer and is simply inserted.
        assert_eq!(
            s.save(events[victim].clone()).await.unwrap(),
            SaveOutcome::Inserted
        );
        assert_eq!(s.clock().await.unwrap().get(&o), 20, "{what}");
        s.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_second_open_is_refused_naming_the_dir_and_pid() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let err = match FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)) {
        Err(e) => e,
        Ok(_) => panic!("a second open of a held directory succeeded"),
    };
    let msg = err.to_string();
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    match err {
        StoreError::Locked { dir: d, pid } => {
            assert_eq!(d, dir.path());
            #[cfg(unix)]
            assert_eq!(pid, std::process::id().to_string(), "{msg}");
            #[cfg(not(unix))]
            let _ = pid;
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    s.close().await.unwrap();
}

const CHILD_DIR_ENV: &str = "GOSSIP_FILE_STORE_KILL_CHILD_DIR";
const CHILD_ORIGIN: u128 = 77;

/// The writer that `kill9_loses_no_acknowledged_event` kills: appends under `Always` and
/// prints each acknowledged seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of kill9_loses_no_acknowledged_event, which runs it"]
async fn kill9_child() {
    use std::io::Write;
    let dir = std::env::var(CHILD_DIR_ENV)
        .unwrap_or_else(|_| panic!("{CHILD_DIR_ENV} must name the store directory"));
    let s = FileEventStore::open(Path::new(&dir), opts(FsyncPolicy::Always)).unwrap();
    let mut seq = s.latest_seq(NodeId::from_u128(CHILD_ORIGIN)).await.unwrap() + 1;
    let mut out = std::io::stdout().lock();
    loop {
        // Alternate single saves and batches: both must be durable when acknowledged.
        let n = if seq % 5 == 0 { 4 } else { 1 };
        let batch: Vec<Event> = (seq..seq + n).map(|q| ev(CHILD_ORIGIN, q, 100)).collect();
        let outcomes = s.save_many(batch).await.unwrap();
        assert!(outcomes.iter().all(|x| *x == SaveOutcome::Inserted));
        for q in seq..seq + n {
            writeln!(out, "ack {q}").unwrap();
        }
        out.flush().unwrap();
        seq += n;
    }
}

#[cfg(unix)]
#[test]
fn kill9_loses_no_acknowledged_event() {
    use rand::Rng;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = SmallRng::seed_from_u64(9);
    let o = NodeId::from_u128(CHILD_ORIGIN);
    let mut max_acked = 0u64;
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args(["kill9_child", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(q) = line.strip_prefix("ack ") {
                    acked.push(q.parse::<u64>().unwrap());
                    let _ = first_tx.send(());
                }
            }
            acked
        });
        first_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the child acknowledged nothing");
        if round == 0 {
            // Another process holds the directory: refused, naming its pid.
            match FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)) {
                Err(StoreError::Locked { pid, .. }) => assert_eq!(pid, child.id().to_string()),
                Err(e) => panic!("expected Locked, got {e}"),
                Ok(_) => panic!("opened a directory another process holds"),
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..80)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        assert!(!acked.is_empty());

        rt.block_on(async {
            let s = open(dir.path());
            let rep = s.open_report().clone();
            assert!(
                rep.dropped.iter().all(|d| d.torn_tail),
                "round {round}: damage before the tail: {:?}",
                rep.dropped
            );
            for q in &acked {
                assert!(
                    s.has(o, *q).await.unwrap(),
                    "round {round}: acknowledged seq {q} lost"
                );
            }
            max_acked = max_acked.max(*acked.iter().max().unwrap());
            let clock = s.clock().await.unwrap().get(&o);
            assert!(
                clock >= max_acked,
                "round {round}: clock {clock} < {max_acked}"
            );
            assert_eq!(
                clock,
                s.latest_seq(o).await.unwrap(),
                "round {round}: a hole"
            );
            s.close().await.unwrap();
        });
    }
}

mod model {
    //! The file store against the memory store as a model, over random operations.

    use super::*;
    use gossip::store::MemoryEventStore;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Save one event: (origin, seq, variant); another variant under a held key conflicts.
        Save(u8, u64, u8),
        SaveMany(Vec<(u8, u64, u8)>),
        Since(u8, u64, usize),
        Reopen,
    }

    fn event(origin: u8, seq: u64, variant: u8) -> Event {
        let o = origin as u128 + 1;
        Event {
            id: Uuid::from_u128((o << 72) | ((seq as u128) << 8) | variant as u128),
            origin: NodeId::from_u128(o),
            seq,
            hlc: seq * 2 + variant as u64,
            created_at_ms: 1000 + seq,
            sig: bytes::Bytes::new(),
            payload: Bytes::from(vec![variant; 3 + variant as usize]),
        }
    }

    fn key() -> impl Strategy<Value = (u8, u64, u8)> {
        (0u8..3, 0u64..12, 0u8..2)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => key().prop_map(|(o, s, v)| Op::Save(o, s, v)),
            3 => prop::collection::vec(key(), 0..8).prop_map(Op::SaveMany),
            2 => (0u8..4, 0u64..14, 0usize..5).prop_map(|(o, a, l)| Op::Since(o, a, l)),
            1 => Just(Op::Reopen),
        ]
    }

    async fn same_state(file: &FileEventStore, mem: &MemoryEventStore) {
        assert_eq!(
            file.all_events().await.unwrap(),
            mem.all_events().await.unwrap()
        );
        assert_eq!(file.clock().await.unwrap(), mem.clock().await.unwrap());
        assert_eq!(
            file.count_per_node().await.unwrap(),
            mem.count_per_node().await.unwrap()
        );
        assert_eq!(file.max_hlc().await.unwrap(), mem.max_hlc().await.unwrap());
        for o in 0..4u8 {
            let id = NodeId::from_u128(o as u128 + 1);
            assert_eq!(
                file.latest_seq(id).await.unwrap(),
                mem.latest_seq(id).await.unwrap()
            );
        }
        let (f, m) = (file.stats().await.unwrap(), mem.stats().await.unwrap());
        assert_eq!(
            (f.total_events, f.unique_nodes, f.oldest_ms, f.newest_ms),
            (m.total_events, m.unique_nodes, m.oldest_ms, m.newest_ms)
        );
    }

    async fn run(ops: Vec<Op>) {
        let dir = tempfile::tempdir().unwrap();
        let mut file = open(dir.path());
        let mem = MemoryEventStore::new();
        for op in ops {
            match op {
                Op::Save(o, s, v) => {
                    let e = event(o, s, v);
                    assert_eq!(
                        file.save(e.clone()).await.unwrap(),
                        mem.save(e).await.unwrap()
                    );
                }
                Op::SaveMany(keys) => {
                    let es: Vec<Event> = keys.iter().map(|&(o, s, v)| event(o, s, v)).collect();
                    assert_eq!(
                        file.save_many(es.clone()).await.unwrap(),
                        mem.save_many(es).await.unwrap()
                    );
                }
                Op::Since(o, after, limit) => {
                    let id = NodeId::from_u128(o as u128 + 1);
                    assert_eq!(
                        file.events_since(id, after, limit).await.unwrap(),
                        mem.events_since(id, after, limit).await.unwrap()
                    );
                }
                Op::Reopen => {
                    file.close().await.unwrap();
                    file = open(dir.path());
                }
            }
        }
        same_state(&file, &mem).await;
        file.close().await.unwrap();
        let file = open(dir.path());
        same_state(&file, &mem).await;
        file.close().await.unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn file_store_behaves_like_the_memory_store(ops in prop::collection::vec(op(), 1..40)) {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(run(ops));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_file_stores_sync_and_a_restarted_node_keeps_its_identity_and_seq() {
    use gossip::node::{GossipConfig, GossipNode};
    use gossip::transport::{MemoryNetwork, Peer};
    use std::sync::Arc;
    use std::time::Duration;

    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fast = || opts(FsyncPolicy::Interval(Duration::from_millis(5)));
    let net = MemoryNetwork::new(3);
    let node = |store: FileEventStore, name: &'static str| {
        let id = store.node_id();
        GossipNode::new(
            GossipConfig::new(id),
            Arc::new(store),
            Arc::new(net.transport(id, name)),
        )
        .unwrap()
    };
    let a = node(FileEventStore::open(dir_a.path(), fast()).unwrap(), "a");
    let b = node(FileEventStore::open(dir_b.path(), fast()).unwrap(), "b");
    let (id_a, id_b) = (a.id(), b.id());
    assert_ne!(id_a, id_b);
    a.start().await.unwrap();
    b.start().await.unwrap();
    a.add_peer(Peer::new(id_b, "b")).unwrap();
    for i in 0..5u8 {
        a.create_event(vec![i]).await.unwrap();
    }
    assert!(a.gossip_with(id_b).await.unwrap().success);
    // The exchange's last phase is a one-way push that B stores on its own time (and,
    // here, only after its group commit).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b.vector_clock().await.unwrap().get(&id_a) < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never got all of A's events"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for n in [&a, &b] {
        n.stop().await;
        n.store().close().await.unwrap();
    }

    // Both come back from disk: same ids, same events, and A carries on from seq 6.
    let a = node(FileEventStore::open(dir_a.path(), fast()).unwrap(), "a2");
    let b_store = FileEventStore::open(dir_b.path(), fast()).unwrap();
    assert_eq!(a.id(), id_a);
    assert_eq!(b_store.node_id(), id_b);
    assert_eq!(b_store.clock().await.unwrap().get(&id_a), 5);
    a.start().await.unwrap();
    let e = a.create_event(&b"after restart"[..]).await.unwrap();
    assert_eq!(e.seq, 6);
    assert_eq!(e.origin, id_a);
    a.stop().await;
    a.store().close().await.unwrap();
    b_store.close().await.unwrap();
}
