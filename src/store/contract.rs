//! The behaviour every [`EventStore`] must have, run against each implementation.

use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

use super::file::{FileEventStore, FileStoreOptions, FsyncPolicy};
use super::{EventStore, MemoryEventStore, SaveOutcome, StoreError};
use crate::protocol::equivocation::{Resolution, resolve};
use crate::protocol::{Event, NodeId};

fn ev(origin: u128, seq: u64) -> Event {
    Event {
        id: Uuid::now_v7(),
        origin: NodeId::from_u128(origin),
        seq,
        hlc: seq * 10,
        created_at_ms: 1000 + seq,
        payload: Bytes::from(format!("{origin}/{seq}")),
        sig: bytes::Bytes::new(),
    }
}

async fn contract(s: Arc<dyn EventStore>) {
    let st = s.stats().await.unwrap();
    assert_eq!((st.total_events, st.unique_nodes, st.size_bytes), (0, 0, 0));
    assert_eq!(s.max_hlc().await.unwrap(), 0);

    // Duplicates and equivocations: the rule's winner is held, whatever the order.
    let e = ev(1, 1);
    assert_eq!(s.save(e.clone()).await.unwrap(), SaveOutcome::Inserted);
    assert_eq!(s.save(e.clone()).await.unwrap(), SaveOutcome::Duplicate);
    let mut forged = e.clone();
    forged.payload = Bytes::from_static(b"forged");
    let mut same_len = e.clone();
    same_len.hlc += 1;
    let mut winner = e.clone();
    for other in [forged, same_len] {
        let replaced = resolve(&winner, &other) == Resolution::Replace;
        assert_eq!(
            s.save(other.clone()).await.unwrap(),
            SaveOutcome::Equivocation {
                held: Box::new(winner.clone()),
                replaced
            }
        );
        if replaced {
            winner = other;
        }
        assert_eq!(s.get(e.origin, 1).await.unwrap(), Some(winner.clone()));
    }
    // The held winner is a duplicate now; the loser stays out.
    assert_eq!(
        s.save(winner.clone()).await.unwrap(),
        SaveOutcome::Duplicate
    );
    assert_eq!(s.count().await.unwrap(), 1);
    assert!(!s.save(e.clone()).await.unwrap().is_inserted());
    let e = winner;
    assert!(s.has(e.origin, 1).await.unwrap());
    assert!(!s.has(e.origin, 2).await.unwrap());
    assert_eq!(s.get(e.origin, 2).await.unwrap(), None);

    // Within one batch, the second copy of a key is judged against the first.
    let twice = ev(3, 1);
    let mut twice_forged = twice.clone();
    twice_forged.payload = Bytes::from_static(b"other");
    let out = s
        .save_many(vec![twice.clone(), twice.clone(), twice_forged.clone()])
        .await
        .unwrap();
    let replaced = resolve(&twice, &twice_forged) == Resolution::Replace;
    assert_eq!(
        out,
        vec![
            SaveOutcome::Inserted,
            SaveOutcome::Duplicate,
            SaveOutcome::Equivocation {
                held: Box::new(twice.clone()),
                replaced
            }
        ]
    );
    let twice_winner = if replaced { twice_forged } else { twice };
    assert_eq!(
        s.get(twice_winner.origin, 1).await.unwrap(),
        Some(twice_winner)
    );

    // Clock is contiguous, latest_seq is not.
    let o = NodeId::from_u128(1);
    s.save_many(vec![ev(1, 2), ev(1, 4)]).await.unwrap();
    assert_eq!(s.clock().await.unwrap().get(&o), 2);
    assert_eq!(s.latest_seq(o).await.unwrap(), 4);
    assert_eq!(s.latest_seq(NodeId::from_u128(99)).await.unwrap(), 0);
    s.save(ev(1, 3)).await.unwrap();
    assert_eq!(s.clock().await.unwrap().get(&o), 4);

    // events_since: after, limit, seq order whatever the arrival order.
    for seq in (5..=10).rev() {
        s.save(ev(1, seq)).await.unwrap();
    }
    let got = s.events_since(o, 3, 4).await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );
    assert!(s.events_since(o, 10, 5).await.unwrap().is_empty());
    assert!(s.events_since(o, 0, 0).await.unwrap().is_empty());
    assert!(
        s.events_since(NodeId::from_u128(42), 0, 5)
            .await
            .unwrap()
            .is_empty()
    );

    // all_events: per origin (sorted by id), in seq order.
    s.save(ev(2, 1)).await.unwrap();
    let all = s.all_events().await.unwrap();
    let keys: Vec<(u128, u64)> = all.iter().map(|e| (e.origin.0.as_u128(), e.seq)).collect();
    let mut want: Vec<(u128, u64)> = (1..=10).map(|q| (1, q)).collect();
    want.push((2, 1));
    want.push((3, 1));
    assert_eq!(keys, want);

    // Counts and stats.
    assert_eq!(s.count().await.unwrap(), 12);
    let per = s.count_per_node().await.unwrap();
    assert_eq!(per[&o], 10);
    assert_eq!(per[&NodeId::from_u128(2)], 1);
    let st = s.stats().await.unwrap();
    assert_eq!(st.total_events, 12);
    assert_eq!(st.unique_nodes, 3);
    assert!(st.size_bytes > 0);
    assert_eq!(st.oldest_ms, Some(1001));
    assert_eq!(st.newest_ms, Some(1010));
    assert_eq!(s.max_hlc().await.unwrap(), 100);

    // Concurrent saves of one event: exactly one insert.
    let e = ev(4, 1);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            let e = e.clone();
            tokio::spawn(async move { s.save(e).await.unwrap() })
        })
        .collect();
    let mut inserted = 0;
    for t in tasks {
        if t.await.unwrap() == SaveOutcome::Inserted {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1);

    // A group of own events: judged like save_many, readable (durable) once answered.
    let own: Vec<Event> = (1..=3).map(|seq| ev(5, seq)).collect();
    let mut group = own.clone();
    group.push(own[1].clone());
    assert_eq!(
        s.save_own(group).await.unwrap(),
        vec![
            SaveOutcome::Inserted,
            SaveOutcome::Inserted,
            SaveOutcome::Inserted,
            SaveOutcome::Duplicate
        ]
    );
    assert_eq!(s.clock().await.unwrap().get(&NodeId::from_u128(5)), 3);
    assert_eq!(s.get(own[2].origin, 3).await.unwrap(), Some(own[2].clone()));
    assert_eq!(s.save_own(Vec::new()).await.unwrap(), vec![]);

    // The own-seq reservation only grows.
    assert_eq!(s.seq_reservation().await.unwrap(), 0);
    s.reserve_seqs(5).await.unwrap();
    s.reserve_seqs(3).await.unwrap();
    assert_eq!(s.seq_reservation().await.unwrap(), 5);
    s.reserve_seqs(6).await.unwrap();
    assert_eq!(s.seq_reservation().await.unwrap(), 6);

    // Closed means closed.
    s.close().await.unwrap();
    assert!(matches!(s.count().await, Err(StoreError::Closed)));
    assert!(matches!(s.save(ev(9, 1)).await, Err(StoreError::Closed)));
    assert!(matches!(s.close().await, Err(StoreError::Closed)));
}

/// The commit sequence: every inserted event once, in insertion order; duplicates and
/// conflicts add nothing; cursors page through it; `commits` says where it ends and wakes
/// a follower.
async fn commit_sequence(s: Arc<dyn EventStore>) {
    let mut commits = s.commits();
    assert_eq!(*commits.borrow_and_update(), 0);
    assert_eq!(s.committed_since(0, 10).await.unwrap(), (vec![], 0));
    let first = vec![ev(1, 2), ev(2, 1), ev(1, 1)];
    s.save_many(first.clone()).await.unwrap();
    commits.changed().await.unwrap();
    assert_eq!(*commits.borrow_and_update(), 3);
    let mut forged = ev(2, 1);
    forged.payload = Bytes::from_static(b"forged");
    s.save_many(vec![first[0].clone(), forged.clone()])
        .await
        .unwrap();
    let late = ev(3, 1);
    s.save(late.clone()).await.unwrap();
    // An equivocation's winner enters the sequence as a new record (followers re-read);
    // a loser adds nothing.
    let replaced = resolve(&first[1], &forged) == Resolution::Replace;
    let end = if replaced { 5 } else { 4 };
    assert_eq!(*s.commits().borrow(), end);
    let (page, next) = s.committed_since(0, 2).await.unwrap();
    let keys: Vec<_> = page.iter().map(|e| e.key()).collect();
    assert_eq!((keys, next), (vec![first[0].key(), first[1].key()], 2));
    let (page, next) = s.committed_since(next, 10).await.unwrap();
    let keys: Vec<_> = page.iter().map(|e| e.key()).collect();
    let mut expected = vec![first[2].key()];
    if replaced {
        expected.push(first[1].key());
    }
    expected.push(late.key());
    assert_eq!((keys, next), (expected, end));
    assert_eq!(s.committed_since(end, 10).await.unwrap(), (vec![], end));
    assert_eq!(s.committed_since(99, 10).await.unwrap(), (vec![], 99));
    assert_eq!(s.committed_since(1, 0).await.unwrap(), (vec![], 1));
    s.close().await.unwrap();
}

#[tokio::test]
async fn memory_store_meets_the_contract() {
    contract(Arc::new(MemoryEventStore::new())).await;
    commit_sequence(Arc::new(MemoryEventStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_keeps_its_commit_sequence_under_every_policy_and_across_a_reopen() {
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(std::time::Duration::from_millis(5)),
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = FileStoreOptions {
            fsync: policy,
            ..Default::default()
        };
        let s = FileEventStore::open(dir.path(), opts.clone()).unwrap();
        commit_sequence(Arc::new(s)).await;
        // Log order survives the reopen.
        let s = FileEventStore::open(dir.path(), opts).unwrap();
        let (events, next) = s.committed_since(0, 100).await.unwrap();
        let mut keys: Vec<(u128, u64)> = events
            .iter()
            .map(|e| (e.origin.0.as_u128(), e.seq))
            .collect();
        // An equivocation's winner, if it replaced the first copy, is a record of its own.
        let end = keys.len() as u64;
        assert!(end == 4 || end == 5, "{keys:?}");
        assert_eq!(*s.commits().borrow(), end);
        assert_eq!(next, end);
        if end == 5 {
            let last = keys.iter().rposition(|k| *k == (2, 1)).unwrap();
            keys.remove(last);
        }
        assert_eq!(keys, vec![(1, 2), (2, 1), (1, 1), (3, 1)]);
        s.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_meets_the_contract_under_every_policy() {
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(std::time::Duration::from_millis(5)),
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = FileStoreOptions {
            fsync: policy,
            ..Default::default()
        };
        let s = FileEventStore::open(dir.path(), opts).unwrap();
        contract(Arc::new(s)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_syncs_a_group_of_own_events_at_once_even_under_a_long_interval() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions {
        fsync: FsyncPolicy::Interval(std::time::Duration::from_secs(3600)),
        ..Default::default()
    };
    let s = FileEventStore::open(dir.path(), opts.clone()).unwrap();
    // Starts the interval: the first sync is due at once.
    s.save(ev(1, 1)).await.unwrap();
    let before = s.syncs();
    let own: Vec<Event> = (1..=100).map(|seq| ev(7, seq)).collect();
    // A hang guard only: waiting out the hour would be the bug.
    let saved = tokio::time::timeout(std::time::Duration::from_secs(60), s.save_own(own.clone()))
        .await
        .expect("own events wait for no interval")
        .unwrap();
    assert!(saved.iter().all(|o| *o == SaveOutcome::Inserted));
    assert_eq!(s.syncs(), before + 1, "one sync for the whole group");
    s.close().await.unwrap();
    let s = FileEventStore::open(dir.path(), opts).unwrap();
    assert_eq!(
        s.events_since(NodeId::from_u128(7), 0, 1000).await.unwrap(),
        own
    );
    s.close().await.unwrap();
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_meets_the_contract_under_every_sync_level() {
    use super::sqlite::{SqliteEventStore, SqliteStoreOptions, SqliteSync};
    for synchronous in [SqliteSync::Full, SqliteSync::Normal, SqliteSync::Off] {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteStoreOptions {
            synchronous,
            ..Default::default()
        };
        let s = SqliteEventStore::open(dir.path(), opts.clone()).unwrap();
        contract(Arc::new(s)).await;
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteEventStore::open(dir.path(), opts).unwrap();
        commit_sequence(Arc::new(s)).await;
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_keeps_a_commit_sequence_and_a_fixed_one_across_a_reopen() {
    use super::sqlite::{SqliteEventStore, SqliteStoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteEventStore::open(dir.path(), SqliteStoreOptions::default()).unwrap();
    commit_sequence(Arc::new(s)).await;
    // Reopened, the held events come first in key order, each once.
    let s = SqliteEventStore::open(dir.path(), SqliteStoreOptions::default()).unwrap();
    assert_eq!(*s.commits().borrow(), 4);
    let (events, next) = s.committed_since(0, 100).await.unwrap();
    let keys: Vec<(u128, u64)> = events
        .iter()
        .map(|e| (e.origin.0.as_u128(), e.seq))
        .collect();
    assert_eq!((keys, next), (vec![(1, 1), (1, 2), (2, 1), (3, 1)], 4));
    s.close().await.unwrap();
}
