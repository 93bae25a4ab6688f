use super::*;

use std::fs;
use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;

fn ev(origin: u128, seq: u64, payload: &[u8]) -> Event {
    Event {
        id: Uuid::now_v7(),
        origin: NodeId::from_u128(origin),
        seq,
        hlc: seq,
        created_at_ms: 5000 + seq,
        payload: Bytes::copy_from_slice(payload),
        sig: bytes::Bytes::new(),
    }
}

fn opts(fsync: FsyncPolicy) -> FileStoreOptions {
    FileStoreOptions {
        fsync,
        ..Default::default()
    }
}

#[tokio::test]
async fn reopen_keeps_identity_events_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    let id = s.node_id();
    s.save_many((1..=20).map(|q| ev(1, q, b"hi")).collect())
        .await
        .unwrap();
    let stats = s.stats().await.unwrap();
    s.close().await.unwrap();

    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    assert_eq!(s.node_id(), id);
    assert_eq!(s.stats().await.unwrap(), stats);
    assert_eq!(s.open_report().events, 20);
    assert_eq!(stats.size_bytes, s.open_report().log_bytes_after);
    assert!(s.open_report().dropped.is_empty());
    s.close().await.unwrap();
}

#[tokio::test]
async fn events_become_visible_only_when_durable() {
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::from_millis(600);
    let s = Arc::new(FileEventStore::open(dir.path(), opts(FsyncPolicy::Interval(every))).unwrap());
    // The first save after a quiet spell syncs at once; the next bulk save waits for the
    // interval.
    s.save_many(vec![ev(1, 1, b"a")]).await.unwrap();
    let started = Instant::now();
    let saver = {
        let s = s.clone();
        tokio::spawn(async move { s.save_many(vec![ev(1, 2, b"b")]).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    if started.elapsed() < every {
        assert!(!saver.is_finished(), "returned before its group commit");
        assert!(!s.has(NodeId::from_u128(1), 2).await.unwrap());
        assert_eq!(s.clock().await.unwrap().get(&NodeId::from_u128(1)), 1);
    }
    assert_eq!(saver.await.unwrap().unwrap(), vec![SaveOutcome::Inserted]);
    assert!(s.has(NodeId::from_u128(1), 2).await.unwrap());
    s.close().await.unwrap();
}

#[tokio::test]
async fn an_own_event_syncs_at_once_even_under_interval() {
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::from_secs(5);
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Interval(every))).unwrap();
    s.save_many(vec![ev(1, 1, b"a")]).await.unwrap();
    // The interval has not passed, but `save` (an event created here) does not wait for it.
    let started = Instant::now();
    assert_eq!(s.save(ev(1, 2, b"b")).await.unwrap(), SaveOutcome::Inserted);
    assert!(started.elapsed() < every, "{:?}", started.elapsed());
    assert!(s.has(NodeId::from_u128(1), 2).await.unwrap());
    assert_eq!(s.syncs(), 2);
    s.close().await.unwrap();
}

#[tokio::test]
async fn received_events_are_answered_and_shown_before_their_sync_and_durable_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::from_millis(800);
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Interval(every))).unwrap();
    let (a, b) = (ev(1, 1, b"a"), ev(1, 2, b"b"));
    s.save_many(vec![a.clone()]).await.unwrap();
    let syncs = s.syncs();
    let followed = *s.commits().borrow();
    let started = Instant::now();
    let out = s.save_received(vec![b.clone(), a]).await.unwrap();
    assert_eq!(out, vec![SaveOutcome::Inserted, SaveOutcome::Duplicate]);
    if started.elapsed() < every / 2 {
        // Decided and written, not yet durable: reads, the clock and followers (the
        // screen) have it already, a second copy is a duplicate, and no sync ran for it.
        assert_eq!(s.clock().await.unwrap().get(&NodeId::from_u128(1)), 2);
        assert!(s.has(NodeId::from_u128(1), 2).await.unwrap());
        assert_eq!(*s.commits().borrow(), followed + 1);
        assert_eq!(
            s.save_received(vec![b]).await.unwrap(),
            vec![SaveOutcome::Duplicate]
        );
        assert_eq!(s.syncs(), syncs, "synced before the interval");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.syncs() == syncs {
        assert!(
            Instant::now() < deadline,
            "the received event never became durable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.close().await.unwrap();
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    assert!(s.has(NodeId::from_u128(1), 2).await.unwrap());
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_policy_groups_concurrent_saves_into_few_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::from_millis(40);
    let s = Arc::new(FileEventStore::open(dir.path(), opts(FsyncPolicy::Interval(every))).unwrap());
    let started = Instant::now();
    let savers: Vec<_> = (0..200u64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.save_many(vec![ev(1 + (i % 4) as u128, 1 + i / 4, b"e")])
                    .await
            })
        })
        .collect();
    for t in savers {
        assert_eq!(t.await.unwrap().unwrap(), vec![SaveOutcome::Inserted]);
    }
    let elapsed = started.elapsed();
    let syncs = s.syncs();
    // At most one sync per interval (the first one is not delayed).
    let bound = 1 + (elapsed.as_millis() / every.as_millis()) as u64;
    assert!(syncs >= 1 && syncs <= bound, "{syncs} syncs in {elapsed:?}");
    assert!(syncs < 50, "{syncs} syncs for 200 concurrent saves");
    s.close().await.unwrap();
}

#[tokio::test]
async fn always_policy_syncs_before_each_lone_save_returns() {
    let dir = tempfile::tempdir().unwrap();
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Always)).unwrap();
    let mut last = None;
    for q in 1..=5 {
        let e = ev(1, q, b"e");
        s.save(e.clone()).await.unwrap();
        assert_eq!(s.syncs(), q);
        last = Some(e);
    }
    // A duplicate writes nothing, so it needs no sync.
    let last = last.unwrap();
    assert_eq!(s.save(last).await.unwrap(), SaveOutcome::Duplicate);
    assert_eq!(s.syncs(), 5);
    let never = FileEventStore::open(&dir.path().join("n"), opts(FsyncPolicy::Never)).unwrap();
    never.save(ev(1, 1, b"e")).await.unwrap();
    assert_eq!(never.syncs(), 0);
    s.close().await.unwrap();
    never.close().await.unwrap();
}

#[tokio::test]
async fn a_duplicate_of_a_durable_event_does_not_wait_for_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::from_millis(800);
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Interval(every))).unwrap();
    let e = ev(1, 1, b"a");
    s.save(e.clone()).await.unwrap();
    // The next sync is not due for 800 ms, but a duplicate needs none.
    let started = Instant::now();
    assert_eq!(s.save(e).await.unwrap(), SaveOutcome::Duplicate);
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.syncs(), 1);
    s.close().await.unwrap();
}

#[tokio::test]
async fn records_larger_than_the_write_buffer_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![7u8; 3 << 20];
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Always)).unwrap();
    let events = vec![ev(1, 1, &big), ev(1, 2, b"small"), ev(1, 3, &big)];
    s.save_many(events.clone()).await.unwrap();
    assert_eq!(
        s.save(events[2].clone()).await.unwrap(),
        SaveOutcome::Duplicate
    );
    s.close().await.unwrap();
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(s.all_events().await.unwrap(), events);
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_record_changed_under_an_open_store_is_reported_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    s.save(ev(1, 1, b"payload")).await.unwrap();
    let path = s.log_path().to_path_buf();
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let err = s.get(NodeId::from_u128(1), 1).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains(LOG_FILE)),
        "{err}"
    );
    s.close().await.unwrap();
}

#[tokio::test]
async fn close_releases_the_lock_and_drop_does_too() {
    let dir = tempfile::tempdir().unwrap();
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    assert!(matches!(
        FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)),
        Err(StoreError::Locked { .. })
    ));
    s.close().await.unwrap();
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    s.save(ev(1, 1, b"x")).await.unwrap();
    drop(s);
    // Dropping hands the shutdown to the writer thread; it lets go of the lock shortly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        match FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)) {
            Ok(s) => break s,
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(s.count().await.unwrap(), 1);
    s.close().await.unwrap();
}

#[tokio::test]
async fn rooms_get_their_own_directories_and_identities() {
    let data = tempfile::tempdir().unwrap();
    let lobby =
        FileEventStore::open_room(Some(data.path()), "lobby", opts(FsyncPolicy::Never)).unwrap();
    let other =
        FileEventStore::open_room(Some(data.path()), "other", opts(FsyncPolicy::Never)).unwrap();
    assert_eq!(lobby.dir(), data.path().join("lobby"));
    assert!(lobby.dir().join(LOG_FILE).is_file());
    assert!(lobby.dir().join(NODE_ID_FILE).is_file());
    assert!(lobby.dir().join(LOCK_FILE).is_file());
    assert_ne!(lobby.node_id(), other.node_id());
    assert!(format!("{lobby:?}").contains("lobby"));
    lobby.close().await.unwrap();
    other.close().await.unwrap();
}

#[test]
fn room_dirs_stay_inside_the_data_dir() {
    let base = Path::new("/data");
    assert_eq!(room_dir(base, "lobby"), base.join("lobby"));
    assert_eq!(room_dir(base, "../etc"), base.join(".._etc"));
    assert_eq!(room_dir(base, ".."), base.join("___"));
    assert_eq!(room_dir(base, "a/b c"), base.join("a_b_c"));
    assert!(room_dir(base, "").starts_with(base));
    assert_ne!(room_dir(base, ""), base.to_path_buf());
}

/// Two different events under one key, the rule's winner first.
fn equivocating_pair() -> (Event, Event) {
    let a = ev(1, 1, b"first");
    let b = ev(1, 1, b"second");
    match crate::protocol::equivocation::compare(&a, &b) {
        std::cmp::Ordering::Greater => (b, a),
        _ => (a, b),
    }
}

#[tokio::test]
async fn an_equivocation_keeps_the_same_winner_in_either_order_and_after_reopen() {
    let (winner, loser) = equivocating_pair();
    for order in [
        [loser.clone(), winner.clone()],
        [winner.clone(), loser.clone()],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
        assert_eq!(
            s.save(order[0].clone()).await.unwrap(),
            SaveOutcome::Inserted
        );
        let replaced = order[1] == winner;
        assert_eq!(
            s.save(order[1].clone()).await.unwrap(),
            SaveOutcome::Equivocation {
                held: Box::new(order[0].clone()),
                replaced
            }
        );
        assert_eq!(s.get(winner.origin, 1).await.unwrap(), Some(winner.clone()));
        // A third copy is judged against the winner, even before it is durable.
        assert_eq!(
            s.save(winner.clone()).await.unwrap(),
            SaveOutcome::Duplicate
        );
        let stats = s.stats().await.unwrap();
        s.close().await.unwrap();

        let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
        assert_eq!(s.get(winner.origin, 1).await.unwrap(), Some(winner.clone()));
        assert_eq!(s.count().await.unwrap(), 1);
        assert_eq!(s.stats().await.unwrap().size_bytes, stats.size_bytes);
        assert_eq!(s.open_report().shadowed_records, u64::from(replaced));
        s.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_log_holding_both_records_in_any_order_opens_to_the_winner() {
    let (winner, loser) = equivocating_pair();
    for order in [[&loser, &winner], [&winner, &loser]] {
        let dir = tempfile::tempdir().unwrap();
        let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
        s.close().await.unwrap();
        // Write the log by hand, as a store from before the rule could have.
        let mut bytes = Vec::new();
        for e in order {
            encode_record(e, &mut bytes).unwrap();
        }
        std::fs::write(dir.path().join(LOG_FILE), bytes).unwrap();
        let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
        assert_eq!(s.get(winner.origin, 1).await.unwrap(), Some(winner.clone()));
        assert_eq!(s.open_report().shadowed_records, 1);
        s.close().await.unwrap();
    }
}

#[tokio::test]
async fn the_seq_reservation_survives_a_reopen_and_a_lost_tail() {
    let dir = tempfile::tempdir().unwrap();
    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    let me = s.node_id();
    let own = |seq: u64| {
        let mut e = ev(0, seq, b"own");
        e.origin = me;
        e
    };
    for seq in 1..=3 {
        s.reserve_seqs(seq).await.unwrap();
        s.save(own(seq)).await.unwrap();
    }
    let after_two = s.open_report().log_bytes_after
        + 2 * (RECORD_HEADER_LEN + codec::encode(&own(1)).unwrap().len() as u64);
    s.close().await.unwrap();
    // The last record is lost at a record boundary.
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(LOG_FILE))
        .unwrap();
    log.set_len(after_two).unwrap();
    drop(log);

    let s = FileEventStore::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    assert_eq!(s.latest_seq(me).await.unwrap(), 2);
    assert_eq!(s.seq_reservation().await.unwrap(), 3);
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_sealed_store_judges_equivocations_on_the_plaintext_events() {
    // The rule must pick the room's winner (the plaintext events every peer compares),
    // not the winner among the sealed records; several pairs, so a rule applied to the
    // sealed bytes would disagree with some of them.
    let key = AtRestKey::derive(&[7u8; 32]);
    let sealed = || FileStoreOptions {
        fsync: FsyncPolicy::Never,
        at_rest: Some(key.clone()),
        ..Default::default()
    };
    for i in 0..12u8 {
        let a = ev(1, 1, &[b'a', i]);
        let b = ev(1, 1, &[b'b', i]);
        let (winner, loser) = match crate::protocol::equivocation::compare(&a, &b) {
            std::cmp::Ordering::Greater => (b, a),
            _ => (a, b),
        };
        let dir = tempfile::tempdir().unwrap();
        let s = FileEventStore::open(dir.path(), sealed()).unwrap();
        assert_eq!(s.save(loser.clone()).await.unwrap(), SaveOutcome::Inserted);
        assert_eq!(
            s.save(winner.clone()).await.unwrap(),
            SaveOutcome::Equivocation {
                held: Box::new(loser.clone()),
                replaced: true
            },
            "pair {i}"
        );
        assert_eq!(
            s.save(winner.clone()).await.unwrap(),
            SaveOutcome::Duplicate
        );
        assert_eq!(s.get(winner.origin, 1).await.unwrap(), Some(winner.clone()));
        s.close().await.unwrap();
        // The log holds both sealed records: the open resolves them the same way.
        let s = FileEventStore::open(dir.path(), sealed()).unwrap();
        assert_eq!(s.get(winner.origin, 1).await.unwrap(), Some(winner.clone()));
        assert_eq!(s.count().await.unwrap(), 1);
        s.close().await.unwrap();
    }
}
