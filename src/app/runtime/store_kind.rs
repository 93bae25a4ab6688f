//! Which event store the app keeps its events in: the file store (the default), or the
//! SQLite store when the binary was built with the `sqlite` feature.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::auth::NodeIdentity;
use crate::store::file::{AtRestKey, FileStoreOptions, FsyncPolicy, LOG_FILE, OpenReport};
use crate::store::{EventStore, FileEventStore, StoreError};

/// The kind of store, as `--store` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StoreKind {
    /// An append-only log file, crash-safe (default).
    #[default]
    File,
    /// A SQLite database (needs a build with `--features sqlite`).
    Sqlite,
}

/// An open store, with what the app needs besides the trait.
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn EventStore>,
    /// This node's identity, kept by the store.
    pub identity: NodeIdentity,
    /// The store directory.
    pub dir: PathBuf,
    /// What opening a file store found (damage dropped); `None` for SQLite.
    pub report: Option<OpenReport>,
}

impl StoreKind {
    /// An error for a kind this binary cannot open, before anything starts.
    pub fn check_available(self) -> Result<(), String> {
        if self == StoreKind::Sqlite && !cfg!(feature = "sqlite") {
            return Err(
                "--store sqlite: this gossip-chat was built without SQLite; \
                        build it with `cargo build --features sqlite`, or use --store file"
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether `dir` holds a store of this kind.
    pub fn exists_in(self, dir: &Path) -> bool {
        match self {
            StoreKind::File => dir.join(LOG_FILE).exists(),
            StoreKind::Sqlite => dir.join(SQLITE_DB_FILE).exists(),
        }
    }

    /// Opens (creating if needed) the store of this kind in `dir`; a file store seals
    /// payloads at rest under `at_rest` (a private room's key).
    pub async fn open(
        self,
        dir: PathBuf,
        fsync: FsyncPolicy,
        at_rest: Option<AtRestKey>,
    ) -> Result<OpenedStore, StoreError> {
        match self {
            StoreKind::File => {
                let options = FileStoreOptions {
                    fsync,
                    at_rest,
                    ..FileStoreOptions::default()
                };
                let s = Arc::new(FileEventStore::open_async(dir.clone(), options).await?);
                Ok(OpenedStore {
                    identity: s.identity().clone(),
                    report: Some(s.open_report().clone()),
                    store: s,
                    dir,
                })
            }
            StoreKind::Sqlite => open_sqlite(dir, fsync).await,
        }
    }
}

#[cfg(feature = "sqlite")]
const SQLITE_DB_FILE: &str = crate::store::sqlite::DB_FILE;
#[cfg(not(feature = "sqlite"))]
const SQLITE_DB_FILE: &str = "events.sqlite3";

#[cfg(feature = "sqlite")]
async fn open_sqlite(dir: PathBuf, fsync: FsyncPolicy) -> Result<OpenedStore, StoreError> {
    use crate::store::sqlite::{SqliteEventStore, SqliteStoreOptions, SqliteSync};
    let options = SqliteStoreOptions {
        // Every commit is synced unless syncing is off: batching keeps that cheap.
        synchronous: match fsync {
            FsyncPolicy::Never => SqliteSync::Off,
            FsyncPolicy::Always | FsyncPolicy::Interval(_) => SqliteSync::Full,
        },
        ..SqliteStoreOptions::default()
    };
    let s = Arc::new(SqliteEventStore::open_async(dir.clone(), options).await?);
    Ok(OpenedStore {
        identity: s.identity().clone(),
        report: None,
        store: s,
        dir,
    })
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(dir: PathBuf, _fsync: FsyncPolicy) -> Result<OpenedStore, StoreError> {
    Err(StoreError::Io {
        context: format!("opening a SQLite store in {}", dir.display()),
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "built without the `sqlite` feature (cargo build --features sqlite)",
        ),
    })
}
