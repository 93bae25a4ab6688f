//! The log's record format, and the scan that finds every intact record on open.
//!
//! A record is `magic: u32 LE | len: u32 LE | crc32: u32 LE | body`, where `body` is the
//! bincode encoding of an [`Event`] (its signature last, empty when unsigned) and the CRC covers the length field and the body, so a
//! damaged length is caught as surely as a damaged body.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use serde::Deserialize;
use uuid::Uuid;

use crate::protocol::codec::{self, CodecError, DECODE_HARD_LIMIT};
use crate::protocol::{Event, NodeId};

/// The first four bytes of every record. `0xE7` is neither ASCII nor a small varint, which
/// makes false matches inside event bodies rare when searching past damage.
pub const MAGIC: u32 = 0x3153_47E7;
const MAGIC_BYTES: [u8; 4] = MAGIC.to_le_bytes();

/// Bytes before the body: magic, length, CRC.
pub const RECORD_HEADER_LEN: u64 = 12;

/// The largest body a record may have; a header claiming more is damaged.
pub const MAX_BODY_LEN: u32 = DECODE_HARD_LIMIT as u32;

/// How much of the log the scan reads at once.
const SCAN_CHUNK: usize = 4 << 20;

/// The CRC of a record: over the little-endian length and the body.
pub fn record_crc(body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&(body.len() as u32).to_le_bytes());
    h.update(body);
    h.finalize()
}

/// Appends the record for `event` to `out`; returns the body length and CRC.
pub fn encode_record(event: &Event, out: &mut Vec<u8>) -> Result<(u32, u32), CodecError> {
    let start = out.len();
    out.extend_from_slice(&MAGIC_BYTES);
    out.extend_from_slice(&[0; 8]);
    let body_start = out.len();
    if let Err(e) = codec::encode_into(event, out) {
        out.truncate(start);
        return Err(e);
    }
    let body_len = out.len() - body_start;
    if body_len > MAX_BODY_LEN as usize {
        out.truncate(start);
        return Err(CodecError::TooLarge {
            len: body_len,
            limit: MAX_BODY_LEN as usize,
        });
    }
    let len = body_len as u32;
    let crc = record_crc(&out[body_start..]);
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    Ok((len, crc))
}

/// The fields of an [`Event`] before its payload, in encoding order. Decoding only this part
/// lets the scan index a record without copying its payload.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct EventHead {
    /// [`Event::id`].
    pub id: Uuid,
    /// [`Event::origin`].
    pub origin: NodeId,
    /// [`Event::seq`].
    pub seq: u64,
    /// [`Event::hlc`].
    pub hlc: u64,
    /// [`Event::created_at_ms`].
    pub created_at_ms: u64,
}

/// Decodes the head of an event body and checks that the payload and the signature that
/// follow span exactly the rest of the body, which is what a full decode would accept.
pub fn decode_head(body: &[u8]) -> Option<EventHead> {
    let (head, used): (EventHead, usize) = codec::decode_prefix(body).ok()?;
    let rest = body.get(used..)?;
    let (payload_len, len_used): (u64, usize) = codec::decode_prefix(rest).ok()?;
    let payload_len = usize::try_from(payload_len).ok()?;
    let rest = rest.get(len_used.checked_add(payload_len)?..)?;
    let (sig_len, sig_used): (u64, usize) = codec::decode_prefix(rest).ok()?;
    let sig_len = usize::try_from(sig_len).ok()?;
    (sig_used.checked_add(sig_len)? == rest.len()).then_some(head)
}

/// One intact record found by the scan.
#[derive(Debug, Clone)]
pub struct ScannedRecord {
    /// File offset of the body (the record starts [`RECORD_HEADER_LEN`] bytes earlier).
    pub body_offset: u64,
    /// Body length.
    pub len: u32,
    /// The record's CRC.
    pub crc: u32,
    /// The event's fields before the payload.
    pub head: EventHead,
}

/// A stretch of the log that held no intact record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DroppedRegion {
    /// File offset where the damage starts.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Whether it ran to the end of the file (a torn tail, which the open truncates) rather
    /// than being followed by intact records (which are kept).
    pub torn_tail: bool,
}

/// What the scan found.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    /// Length of the log once a torn tail is cut off.
    pub valid_len: u64,
    /// Damaged stretches, in file order.
    pub dropped: Vec<DroppedRegion>,
}

/// A read window over the log, refilled in large chunks so a sequential scan makes few
/// system calls.
struct Window<'a> {
    file: &'a mut File,
    file_len: u64,
    buf: Vec<u8>,
    start: u64,
    /// A further check of a body whose CRC matched (a sealed payload must open).
    check: &'a dyn Fn(&[u8]) -> bool,
}

impl Window<'_> {
    /// Up to `n` bytes at `pos`, fewer only at the end of the file.
    fn get(&mut self, pos: u64, n: usize) -> io::Result<&[u8]> {
        let left = self.file_len.saturating_sub(pos);
        let avail = (n as u64).min(left) as usize;
        let buf_end = self.start + self.buf.len() as u64;
        if pos < self.start || pos + avail as u64 > buf_end {
            let want = (avail.max(SCAN_CHUNK) as u64).min(left) as usize;
            self.buf.resize(want, 0);
            self.file.seek(SeekFrom::Start(pos))?;
            self.file.read_exact(&mut self.buf)?;
            self.start = pos;
        }
        let s = (pos - self.start) as usize;
        Ok(&self.buf[s..s + avail])
    }

    /// The intact record starting at `pos`, if there is one.
    fn record_at(&mut self, pos: u64) -> io::Result<Option<ScannedRecord>> {
        let header = self.get(pos, RECORD_HEADER_LEN as usize)?;
        if header.len() < RECORD_HEADER_LEN as usize || header[..4] != MAGIC_BYTES {
            return Ok(None);
        }
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if len == 0 || len > MAX_BODY_LEN {
            return Ok(None);
        }
        let total = RECORD_HEADER_LEN as usize + len as usize;
        let check = self.check;
        let rec = self.get(pos, total)?;
        if rec.len() < total {
            return Ok(None);
        }
        let body = &rec[RECORD_HEADER_LEN as usize..];
        if record_crc(body) != crc || !check(body) {
            return Ok(None);
        }
        Ok(decode_head(body).map(|head| ScannedRecord {
            body_offset: pos + RECORD_HEADER_LEN,
            len,
            crc,
            head,
        }))
    }

    /// The first offset at or after `from` where an intact record starts.
    fn next_intact(&mut self, mut from: u64) -> io::Result<Option<u64>> {
        while from + RECORD_HEADER_LEN <= self.file_len {
            let (hit, seen) = {
                let s = self.get(from, SCAN_CHUNK)?;
                (s.windows(4).position(|w| w == MAGIC_BYTES), s.len())
            };
            match hit {
                Some(i) => {
                    let at = from + i as u64;
                    if self.record_at(at)?.is_some() {
                        return Ok(Some(at));
                    }
                    from = at + 1;
                }
                // Keep the last three bytes: a magic may straddle the chunk edge.
                None => from += seen.saturating_sub(3).max(1) as u64,
            }
        }
        Ok(None)
    }
}

/// Reads the whole log once, calling `on_record` for each intact record in file order.
///
/// A bad record is never trusted for its length: the scan looks for the next offset where an
/// intact record starts, so a damaged length field cannot make it skip good records. Damage
/// with no intact record after it is a torn tail.
pub fn scan(
    file: &mut File,
    file_len: u64,
    on_record: impl FnMut(ScannedRecord),
) -> io::Result<ScanOutcome> {
    scan_from(file, 0, file_len, on_record)
}

/// [`scan`] from offset `from` (the start of a record) rather than from the start of the
/// file: a reader following a log another process appends to reads only what is new.
pub fn scan_from(
    file: &mut File,
    from: u64,
    file_len: u64,
    on_record: impl FnMut(ScannedRecord),
) -> io::Result<ScanOutcome> {
    scan_checked(file, from, file_len, &|_| true, on_record)
}

/// [`scan_from`] where a record is intact only if `check` also accepts its body: a sealed
/// record whose payload does not open is damage, found and skipped like a bad CRC.
pub fn scan_checked(
    file: &mut File,
    from: u64,
    file_len: u64,
    check: &dyn Fn(&[u8]) -> bool,
    mut on_record: impl FnMut(ScannedRecord),
) -> io::Result<ScanOutcome> {
    let mut w = Window {
        file,
        file_len,
        buf: Vec::new(),
        start: 0,
        check,
    };
    let mut out = ScanOutcome {
        valid_len: file_len,
        dropped: Vec::new(),
    };
    let mut pos = from;
    while pos < file_len {
        if let Some(rec) = w.record_at(pos)? {
            pos = rec.body_offset + rec.len as u64;
            on_record(rec);
            continue;
        }
        match w.next_intact(pos + 1)? {
            Some(next) => {
                out.dropped.push(DroppedRegion {
                    offset: pos,
                    len: next - pos,
                    torn_tail: false,
                });
                pos = next;
            }
            None => {
                out.dropped.push(DroppedRegion {
                    offset: pos,
                    len: file_len - pos,
                    torn_tail: true,
                });
                out.valid_len = pos;
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::io::Write;

    fn ev(seq: u64, payload: &[u8]) -> Event {
        Event {
            id: Uuid::now_v7(),
            origin: NodeId::from_u128(9),
            seq,
            hlc: seq + 100,
            created_at_ms: 1_700_000_000_000 + seq,
            payload: Bytes::copy_from_slice(payload),
            sig: bytes::Bytes::new(),
        }
    }

    fn scan_bytes(bytes: &[u8]) -> (Vec<ScannedRecord>, ScanOutcome) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        let mut recs = Vec::new();
        let out = scan(&mut f, bytes.len() as u64, |r| recs.push(r)).unwrap();
        (recs, out)
    }

    #[test]
    fn head_matches_full_decode_for_all_payload_sizes() {
        // The head decoder mirrors Event's field order; this breaks if the two drift apart.
        for n in [0usize, 1, 250, 251, 70_000] {
            let mut e = ev(7, &vec![0xAB; n]);
            e.sig = Bytes::from(vec![0x5A; n % 65]);
            let body = codec::encode(&e).unwrap();
            let head = decode_head(&body).unwrap();
            assert_eq!(
                (head.id, head.origin, head.seq, head.hlc, head.created_at_ms),
                (e.id, e.origin, e.seq, e.hlc, e.created_at_ms)
            );
            assert!(decode_head(&body[..body.len() - 1]).is_none());
            let mut longer = body.clone();
            longer.push(0);
            assert!(decode_head(&longer).is_none());
        }
    }

    #[test]
    fn clean_log_scans_fully() {
        let mut log = Vec::new();
        for s in 1..=50 {
            encode_record(&ev(s, b"payload"), &mut log).unwrap();
        }
        let (recs, out) = scan_bytes(&log);
        assert_eq!(recs.len(), 50);
        assert!(out.dropped.is_empty());
        assert_eq!(out.valid_len, log.len() as u64);
        assert_eq!(
            recs.iter().map(|r| r.head.seq).collect::<Vec<_>>(),
            (1..=50).collect::<Vec<_>>()
        );
    }

    #[test]
    fn damaged_length_does_not_hide_the_next_records() {
        let mut log = Vec::new();
        let mut starts = Vec::new();
        for s in 1..=5 {
            starts.push(log.len());
            encode_record(&ev(s, b"abc"), &mut log).unwrap();
        }
        // Claim a length that swallows records 3 to 5.
        let big = (log.len() as u32).to_le_bytes();
        log[starts[1] + 4..starts[1] + 8].copy_from_slice(&big);
        let (recs, out) = scan_bytes(&log);
        assert_eq!(
            recs.iter().map(|r| r.head.seq).collect::<Vec<_>>(),
            vec![1, 3, 4, 5]
        );
        assert_eq!(
            out.dropped,
            vec![DroppedRegion {
                offset: starts[1] as u64,
                len: (starts[2] - starts[1]) as u64,
                torn_tail: false
            }]
        );
    }

    #[test]
    fn adjacent_damaged_records_make_one_region_and_the_rest_survive() {
        let mut log = Vec::new();
        let mut starts = Vec::new();
        for s in 1..=6 {
            starts.push(log.len());
            encode_record(&ev(s, b"abcdef"), &mut log).unwrap();
        }
        log[starts[2] + 14] ^= 0x40;
        log[starts[3] + 9] ^= 0x01;
        let (recs, out) = scan_bytes(&log);
        assert_eq!(
            recs.iter().map(|r| r.head.seq).collect::<Vec<_>>(),
            vec![1, 2, 5, 6]
        );
        assert_eq!(out.dropped.len(), 1);
        assert_eq!(out.dropped[0].offset, starts[2] as u64);
        assert_eq!(out.dropped[0].len, (starts[4] - starts[2]) as u64);
        assert_eq!(out.valid_len, log.len() as u64);
    }

    #[test]
    fn garbage_tail_is_torn_and_cut() {
        let mut log = Vec::new();
        encode_record(&ev(1, b"x"), &mut log).unwrap();
        let good = log.len() as u64;
        log.extend_from_slice(&MAGIC_BYTES);
        log.extend_from_slice(&[0u8; 40]);
        let (recs, out) = scan_bytes(&log);
        assert_eq!(recs.len(), 1);
        assert_eq!(out.valid_len, good);
        assert_eq!(out.dropped.len(), 1);
        assert!(out.dropped[0].torn_tail);
    }

    #[test]
    fn magic_straddling_a_chunk_edge_is_found() {
        // Damage longer than a scan chunk, with the next record's magic across the edge.
        let mut log = Vec::new();
        encode_record(&ev(1, b"a"), &mut log).unwrap();
        let first = log.len();
        let gap = SCAN_CHUNK - 1 - first;
        log.extend(std::iter::repeat_n(0x11u8, gap));
        let second = log.len();
        encode_record(&ev(2, b"b"), &mut log).unwrap();
        log[0] ^= 0xFF;
        let (recs, out) = scan_bytes(&log);
        assert_eq!(recs.iter().map(|r| r.head.seq).collect::<Vec<_>>(), vec![2]);
        assert_eq!(out.dropped[0].len, second as u64);
        assert!(!out.dropped[0].torn_tail);
    }
}
