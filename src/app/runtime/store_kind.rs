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
    /// What opening a file store found (damage dropped, modes tightened); `None` for
    /// SQLite.
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

    /// Opens (creating if needed) the store of this kind in `dir`. A private room's
    /// `at_rest` key seals its payloads in a file store; the SQLite store cannot seal
    /// them, so a private room is refused there rather than kept in the clear.
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
            StoreKind::Sqlite if at_rest.is_some() => Err(StoreError::Io {
                context: format!("opening a SQLite store in {}", dir.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "the SQLite store does not seal a private room's messages on disk; \
                     use the file store (--store file) for a room with a secret",
                ),
            }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_private_room_is_refused_by_the_sqlite_store_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("room");
        let key = AtRestKey::derive(&[7; 32]);
        let err = match StoreKind::Sqlite
            .open(store.clone(), FsyncPolicy::Never, Some(key))
            .await
        {
            Ok(_) => panic!("a private room opened a SQLite store"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("--store file"), "{err}");
        assert!(!store.exists());
    }

    #[tokio::test]
    async fn a_file_store_reports_its_tightened_modes() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("room");
        let opened = StoreKind::File
            .open(store.clone(), FsyncPolicy::Never, None)
            .await
            .unwrap();
        opened.store.close().await.unwrap();
        drop(opened);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
            let opened = StoreKind::File
                .open(store.clone(), FsyncPolicy::Never, None)
                .await
                .unwrap();
            let report = opened.report.clone().unwrap();
            assert_eq!(report.tightened, vec![store.clone()]);
            opened.store.close().await.unwrap();
        }
    }
}
