//! Offline rewrites of a store's log: `gossip-chat compact`, and the one-time sealing of a
//! private room's store made before payloads were sealed.
//!
//! A rewrite keeps every intact record (the first of a repeated key), drops damaged
//! stretches for good (peers send those events again), writes the new log beside the old
//! one, syncs it and renames it over the old one, so a crash leaves one or the other whole.
//! It needs the store closed: the writer's lock, and the readers' lock exclusively.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::protocol::codec;
use crate::protocol::{Event, NodeId};
use crate::store::StoreError;

use super::crypt::{AtRestKey, CryptError, SEALED_MARKER_FILE};
use super::lock::DirLock;
use super::reader::ReadersLock;
use super::record::{self, MAX_BODY_LEN, encode_record};
use super::{LOG_FILE, io_err, modes, read_exact_at, sync_dir};

/// What a rewrite did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Records kept.
    pub kept: u64,
    /// Damaged stretches dropped (a torn tail included).
    pub damaged_regions: u64,
    /// Bytes in them.
    pub damaged_bytes: u64,
    /// Records dropped because an earlier record held the same key.
    pub repeated: u64,
    /// Sealed records of a private room that did not open (changed on disk), dropped.
    pub unopened: u64,
    /// Plaintext records of a private room sealed now.
    pub sealed: u64,
    /// Log length before and after.
    pub bytes_before: u64,
    /// Log length after.
    pub bytes_after: u64,
}

impl std::fmt::Display for CompactReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kept {} event(s); dropped {} damaged stretch(es) ({} bytes), {} repeated and {} \
             unopenable record(s); sealed {}; {} -> {} bytes",
            self.kept,
            self.damaged_regions,
            self.damaged_bytes,
            self.repeated,
            self.unopened,
            self.sealed,
            self.bytes_before,
            self.bytes_after
        )
    }
}

/// `gossip-chat compact`: rewrites the log of the closed store in `dir`. With `key` (a
/// private room), every record comes out sealed: plaintext ones of a store not yet marked
/// sealed are sealed, those of a marked store and sealed ones that do not open are dropped.
pub fn compact(dir: &Path, key: Option<&AtRestKey>) -> Result<CompactReport, StoreError> {
    let _writer = DirLock::acquire(dir)?;
    let _readers = ReadersLock::exclusive(dir)?;
    rewrite(dir, key)
}

/// Seals the plaintext records of a private room's store once (its first open with the
/// key after an upgrade), then marks it sealed; from then on a plaintext record is damage.
/// The caller holds the writer's lock.
pub(super) fn seal_unsealed(dir: &Path, key: &AtRestKey) -> Result<(), StoreError> {
    let marker = dir.join(SEALED_MARKER_FILE);
    if marker.exists() {
        return Ok(());
    }
    let log = dir.join(LOG_FILE);
    let has_records = std::fs::metadata(&log).is_ok_and(|m| m.len() > 0);
    if has_records {
        let _readers = ReadersLock::exclusive(dir)?;
        let report = rewrite(dir, Some(key))?;
        tracing::info!(dir = %dir.display(), %report, "sealed the private room's store");
    }
    modes::private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&marker)
        .and_then(|mut f| f.write_all(b"every record's payload is sealed\n"))
        .and_then(|()| sync_dir(dir))
        .map_err(io_err(format!("writing {}", marker.display())))
}

/// The rewrite itself; the caller holds both locks.
fn rewrite(dir: &Path, key: Option<&AtRestKey>) -> Result<CompactReport, StoreError> {
    let path = dir.join(LOG_FILE);
    let mut file = File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
    let len = file
        .metadata()
        .map_err(io_err(format!("reading the size of {}", path.display())))?
        .len();
    let mut found = Vec::new();
    let scan = record::scan(&mut file, len, |r| found.push(r))
        .map_err(io_err(format!("scanning {}", path.display())))?;
    let marked = dir.join(SEALED_MARKER_FILE).exists();
    let mut report = CompactReport {
        damaged_regions: scan.dropped.len() as u64,
        damaged_bytes: scan.dropped.iter().map(|d| d.len).sum(),
        bytes_before: len,
        ..CompactReport::default()
    };
    let mut seen: HashSet<(NodeId, u64)> = HashSet::new();
    let mut out = Vec::new();
    let mut body = Vec::new();
    for r in found {
        body.resize(r.len as usize, 0);
        read_exact_at(&file, &mut body, r.body_offset)
            .map_err(io_err(format!("reading {}", path.display())))?;
        let Ok(event) = codec::decode::<Event>(&body, MAX_BODY_LEN as usize) else {
            report.damaged_regions += 1;
            report.damaged_bytes += r.len as u64;
            continue;
        };
        let event = match key {
            None => event,
            Some(k) => match k.open(event.clone()) {
                Ok(_) => event,
                Err(CryptError::NotSealed) if !marked => {
                    report.sealed += 1;
                    k.seal(&event)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?
                }
                Err(_) => {
                    report.unopened += 1;
                    continue;
                }
            },
        };
        if !seen.insert((event.origin, event.seq)) {
            report.repeated += 1;
            continue;
        }
        encode_record(&event, &mut out).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        report.kept += 1;
    }
    drop(file);
    let tmp = dir.join(format!("{LOG_FILE}.compact"));
    let write = || -> std::io::Result<()> {
        let mut f = modes::private_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        sync_dir(dir)
    };
    write().map_err(io_err(format!("rewriting {}", path.display())))?;
    report.bytes_after = out.len() as u64;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventStore;
    use crate::store::file::{FileEventStore, FileStoreOptions, RECORD_HEADER_LEN};

    fn ev(seq: u64, text: &str) -> Event {
        Event {
            id: uuid::Uuid::now_v7(),
            origin: NodeId::from_u128(9),
            seq,
            hlc: seq,
            created_at_ms: 1,
            payload: bytes::Bytes::copy_from_slice(text.as_bytes()),
            sig: bytes::Bytes::new(),
        }
    }

    async fn store_with(dir: &Path, key: Option<AtRestKey>, n: u64) {
        let opts = FileStoreOptions {
            at_rest: key,
            ..FileStoreOptions::default()
        };
        let s = FileEventStore::open_async(dir.into(), opts).await.unwrap();
        for seq in 1..=n {
            s.save(ev(seq, &format!("message number {seq}")))
                .await
                .unwrap();
        }
        s.close().await.unwrap();
    }

    /// Offsets of the records of the log, in order.
    fn record_offsets(dir: &Path) -> Vec<(u64, u32)> {
        let mut f = File::open(dir.join(LOG_FILE)).unwrap();
        let len = f.metadata().unwrap().len();
        let mut v = Vec::new();
        record::scan(&mut f, len, |r| {
            v.push((r.body_offset - RECORD_HEADER_LEN, r.len))
        })
        .unwrap();
        v
    }

    #[tokio::test]
    async fn compact_keeps_every_intact_event_and_the_next_open_is_clean() {
        let dir = tempfile::tempdir().unwrap();
        store_with(dir.path(), None, 10).await;
        let recs = record_offsets(dir.path());
        let log = dir.path().join(LOG_FILE);
        let mut bytes = std::fs::read(&log).unwrap();
        // Damage record 4 (its body) mid-file.
        let (at, _) = recs[4];
        bytes[at as usize + RECORD_HEADER_LEN as usize + 3] ^= 0xff;
        std::fs::write(&log, &bytes).unwrap();
        let before = FileEventStore::open(dir.path(), FileStoreOptions::default()).unwrap();
        assert_eq!(before.open_report().dropped_records, 1);
        before.close().await.unwrap();
        let report = compact(dir.path(), None).unwrap();
        assert_eq!(report.kept, 9);
        assert_eq!(report.damaged_regions, 1);
        assert!(report.bytes_after < report.bytes_before);
        let after = FileEventStore::open(dir.path(), FileStoreOptions::default()).unwrap();
        assert_eq!(after.open_report().dropped_records, 0, "clean");
        let seqs: Vec<u64> = after
            .all_events()
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 6, 7, 8, 9, 10]);
        after.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_private_log_holds_no_plaintext_and_a_changed_record_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let key = AtRestKey::derive(&[3; 32]);
        store_with(dir.path(), Some(key.clone()), 5).await;
        let log = dir.path().join(LOG_FILE);
        let bytes = std::fs::read(&log).unwrap();
        assert!(
            !bytes.windows(7).any(|w| w == b"message"),
            "plaintext on disk"
        );
        // Flip a bit inside record 2's sealed payload and fix its CRC: only the AEAD can
        // tell.
        let recs = record_offsets(dir.path());
        let (at, len) = recs[2];
        let body_at = (at + RECORD_HEADER_LEN) as usize;
        let mut changed = bytes.clone();
        changed[body_at + len as usize - 20] ^= 0x01;
        let crc = record::record_crc(&changed[body_at..body_at + len as usize]);
        changed[at as usize + 8..at as usize + 12].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&log, &changed).unwrap();
        let opts = FileStoreOptions {
            at_rest: Some(key.clone()),
            ..FileStoreOptions::default()
        };
        let s = FileEventStore::open(dir.path(), opts.clone()).unwrap();
        assert_eq!(s.open_report().dropped_records, 1, "reported like damage");
        let got = s.all_events().await.unwrap();
        assert_eq!(got.len(), 4);
        assert!(
            got.iter().all(|e| e.payload.starts_with(b"message")),
            "opened on read"
        );
        s.close().await.unwrap();
        let report = compact(dir.path(), Some(&key)).unwrap();
        assert_eq!((report.kept, report.unopened), (4, 1));
        let s = FileEventStore::open(dir.path(), opts).unwrap();
        assert_eq!(s.open_report().dropped_records, 0);
        s.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_store_from_before_sealing_is_sealed_on_its_first_private_open() {
        let dir = tempfile::tempdir().unwrap();
        store_with(dir.path(), None, 3).await;
        let key = AtRestKey::derive(&[4; 32]);
        let opts = FileStoreOptions {
            at_rest: Some(key),
            ..FileStoreOptions::default()
        };
        let s = FileEventStore::open(dir.path(), opts).unwrap();
        assert_eq!(s.all_events().await.unwrap().len(), 3);
        s.close().await.unwrap();
        let bytes = std::fs::read(dir.path().join(LOG_FILE)).unwrap();
        assert!(!bytes.windows(7).any(|w| w == b"message"));
        assert!(dir.path().join(SEALED_MARKER_FILE).exists());
    }
}
