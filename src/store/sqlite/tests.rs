use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

use super::*;

fn ev(origin: u128, seq: u64) -> Event {
    Event {
        id: Uuid::now_v7(),
        origin: NodeId::from_u128(origin),
        seq,
        hlc: seq,
        created_at_ms: seq,
        payload: Bytes::from(vec![b'x'; 40]),
        sig: Bytes::new(),
    }
}

#[tokio::test]
async fn events_clock_and_identity_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteEventStore::open(dir.path(), Default::default()).unwrap();
    let id = s.node_id();
    s.save_many(vec![ev(1, 1), ev(1, 2), ev(1, 4), ev(2, 1)])
        .await
        .unwrap();
    let before = (s.all_events().await.unwrap(), s.stats().await.unwrap());
    s.close().await.unwrap();

    let s = SqliteEventStore::open(dir.path(), Default::default()).unwrap();
    assert_eq!(s.node_id(), id);
    assert_eq!(
        (s.all_events().await.unwrap(), s.stats().await.unwrap()),
        before
    );
    let o = NodeId::from_u128(1);
    assert_eq!(s.clock().await.unwrap().get(&o), 2);
    assert_eq!(s.latest_seq(o).await.unwrap(), 4);
    assert_eq!(s.save(ev(1, 3)).await.unwrap(), SaveOutcome::Inserted);
    assert_eq!(s.clock().await.unwrap().get(&o), 4);
}

#[tokio::test]
async fn a_second_open_of_one_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _held = SqliteEventStore::open(dir.path(), Default::default()).unwrap();
    let err = SqliteEventStore::open(dir.path(), Default::default()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
}

#[tokio::test]
async fn the_highest_seqs_sort_above_the_lowest() {
    // SQLite integers are signed; the big-endian key keeps u64 order.
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteEventStore::open(dir.path(), Default::default()).unwrap();
    let o = NodeId::from_u128(5);
    s.save_many(vec![ev(5, u64::MAX), ev(5, 1 << 63), ev(5, 1)])
        .await
        .unwrap();
    let seqs: Vec<u64> = s
        .events_since(o, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![1, 1 << 63, u64::MAX]);
    assert!(s.events_since(o, u64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(s.latest_seq(o).await.unwrap(), u64::MAX);
    let mut big = ev(5, 7);
    big.hlc = u64::MAX;
    big.created_at_ms = u64::MAX;
    s.save(big.clone()).await.unwrap();
    assert_eq!(s.get(o, 7).await.unwrap(), Some(big));
}

#[tokio::test]
async fn many_concurrent_savers_share_transactions_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteEventStore::open(dir.path(), Default::default()).unwrap());
    let tasks: Vec<_> = (0..16u128)
        .map(|o| {
            let s = s.clone();
            tokio::spawn(async move {
                for seq in 1..=50 {
                    assert_eq!(s.save(ev(o, seq)).await.unwrap(), SaveOutcome::Inserted);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.count().await.unwrap(), 800);
    let mut n = 0;
    s.for_each_event(|_| n += 1).unwrap();
    assert_eq!(n, 800);
}

#[cfg(unix)]
#[test]
fn the_database_holding_the_key_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteEventStore::open(dir.path(), Default::default()).unwrap();
    let mode = std::fs::metadata(dir.path().join(DB_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    drop(s);
}

#[tokio::test]
async fn a_damaged_identity_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteEventStore::open(dir.path(), Default::default()).unwrap();
    s.close().await.unwrap();
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute("UPDATE identity SET secret = x'00'", [])
        .unwrap();
    drop(conn);
    let err = SqliteEventStore::open(dir.path(), Default::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::Identity(ref m) if m.contains("not 32")),
        "{err}"
    );
}
