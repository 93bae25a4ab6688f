//! Rows to events and back: the column list every query selects, and the key encoding.

use bytes::Bytes;
use rusqlite::Row;
use rusqlite::types::Type;
use uuid::Uuid;

use crate::protocol::{Event, NodeId};

/// The columns [`event_of_row`] reads, in its order.
pub const EVENT_COLUMNS: &str = "origin, seq, id, hlc, created_at_ms, payload, sig";

/// A seq as stored: big-endian, so blob order is numeric order.
pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The event in a row selected with [`EVENT_COLUMNS`]. A malformed key or id is a
/// conversion error (the database was written by something else).
pub fn event_of_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let origin = uuid_at(row, 0)?;
    let seq_bytes: [u8; 8] = blob_array(row, 1)?;
    let id = uuid_at(row, 2)?;
    let hlc: i64 = row.get(3)?;
    let created: i64 = row.get(4)?;
    let payload: Vec<u8> = row.get(5)?;
    let sig: Vec<u8> = row.get(6)?;
    Ok(Event {
        id,
        origin: NodeId(origin),
        seq: u64::from_be_bytes(seq_bytes),
        // Stored bit for bit: the casts undo the ones made on insert.
        hlc: hlc as u64,
        created_at_ms: created as u64,
        payload: Bytes::from(payload),
        sig: Bytes::from(sig),
    })
}

fn uuid_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    Ok(Uuid::from_bytes(blob_array(row, i)?))
}

/// A blob column of exactly `N` bytes.
pub fn blob_array<const N: usize>(row: &Row<'_>, i: usize) -> rusqlite::Result<[u8; N]> {
    let v = row.get_ref(i)?;
    let b = v.as_blob()?;
    b.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            Type::Blob,
            format!("column {i} is {} bytes, not {N}", b.len()).into(),
        )
    })
}
