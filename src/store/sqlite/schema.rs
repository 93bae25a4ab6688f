//! The database's schema, its settings, and the identity key kept in it.
//!
//! ```sql
//! CREATE TABLE events (
//!     origin        BLOB    NOT NULL,  -- 16 bytes, the origin's UUID
//!     seq           BLOB    NOT NULL,  -- 8 bytes, big-endian u64
//!     id            BLOB    NOT NULL,  -- 16 bytes, the event's UUID
//!     hlc           INTEGER NOT NULL,  -- u64 stored bit for bit as i64
//!     created_at_ms INTEGER NOT NULL,  -- u64 stored bit for bit as i64
//!     payload       BLOB    NOT NULL,
//!     sig           BLOB    NOT NULL,
//!     PRIMARY KEY (origin, seq)
//! ) WITHOUT ROWID;
//! CREATE TABLE identity (slot INTEGER PRIMARY KEY CHECK (slot = 1), secret BLOB NOT NULL);
//! CREATE TABLE reservation (slot INTEGER PRIMARY KEY CHECK (slot = 1), seq INTEGER NOT NULL);
//! ```
//!
//! `seq` is a big-endian blob because SQLite integers are signed 64-bit: a blob compares
//! byte by byte, so the primary key orders every `u64` correctly, and
//! `WHERE origin = ? AND seq > ? ORDER BY seq` ("the events beyond this clock entry") is a
//! range scan of the primary key, which is the index. `WITHOUT ROWID` stores each row once,
//! in that index.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::auth::NodeIdentity;
use crate::store::StoreError;

use super::{SqliteStoreOptions, SqliteSync, sql_err};

/// The schema version written to `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS events (
    origin        BLOB    NOT NULL,
    seq           BLOB    NOT NULL,
    id            BLOB    NOT NULL,
    hlc           INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    payload       BLOB    NOT NULL,
    sig           BLOB    NOT NULL,
    PRIMARY KEY (origin, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS identity (
    slot   INTEGER PRIMARY KEY CHECK (slot = 1),
    secret BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS reservation (
    slot INTEGER PRIMARY KEY CHECK (slot = 1),
    seq  INTEGER NOT NULL
);
";

/// Opens the writer's connection: WAL mode, the durability asked for, the schema created.
pub fn open_writer(path: &Path, options: &SqliteStoreOptions) -> Result<Connection, StoreError> {
    create_private(path)?;
    let conn = Connection::open(path).map_err(sql_err(format!("opening {}", path.display())))?;
    let sync = match options.synchronous {
        SqliteSync::Full => "FULL",
        SqliteSync::Normal => "NORMAL",
        SqliteSync::Off => "OFF",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync};"
    ))
    .map_err(sql_err(format!("setting up {}", path.display())))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err("reading the schema version"))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "{} has schema version {version}; this build knows up to {SCHEMA_VERSION}",
            path.display()
        )));
    }
    conn.execute_batch(CREATE)
        .and_then(|()| conn.pragma_update(None, "user_version", SCHEMA_VERSION))
        .map_err(sql_err(format!(
            "creating the schema in {}",
            path.display()
        )))?;
    Ok(conn)
}

/// Opens a connection for reads; WAL lets it read while the writer writes.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err(format!("opening {} for reading", path.display())))
}

/// Reads the identity key, or creates and stores one for a new database.
pub fn load_or_create_identity(conn: &Connection) -> Result<NodeIdentity, StoreError> {
    let held: Option<Vec<u8>> = conn
        .query_row("SELECT secret FROM identity WHERE slot = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql_err("reading the identity key"))?;
    if let Some(bytes) = held {
        let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            StoreError::Identity(format!(
                "the identity key in the database is {} bytes, not 32",
                bytes.len()
            ))
        })?;
        return Ok(NodeIdentity::from_secret(secret));
    }
    let identity = NodeIdentity::generate();
    conn.execute(
        "INSERT INTO identity (slot, secret) VALUES (1, ?1)",
        params![identity.secret_bytes().as_slice()],
    )
    .map_err(sql_err("storing the identity key"))?;
    Ok(identity)
}

/// Creates the database file readable by its owner only: it holds the node's secret key.
/// SQLite gives its `-wal` and `-shm` files the same permissions.
#[cfg(unix)]
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(crate::store::file::io_err(format!(
            "creating {}",
            path.display()
        )))?;
    let mode = file
        .metadata()
        .map_err(crate::store::file::io_err(format!(
            "reading {}",
            path.display()
        )))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(StoreError::Identity(format!(
            "{} holds the node's secret key but others may read it (mode {:o}); run chmod 600 on it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}
