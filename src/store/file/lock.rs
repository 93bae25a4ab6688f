//! The directory lock: one open store per directory, across processes and within one.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

use super::io_err;

/// The lock file's name inside a store directory.
pub const LOCK_FILE: &str = "lock";

/// An exclusive OS lock on `<dir>/lock`, released when dropped (or when the process dies, so
/// a crash never leaves a stale lock behind).
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock at once or fails with [`StoreError::Locked`] naming the holder's pid.
    ///
    /// The lock is per open file (`flock` on Unix, `LockFileEx` on Windows), so a second open
    /// from the same process is refused as well.
    pub fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        let mut file = super::modes::private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(format!("opening lock file {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                    pid: holder_pid(&path),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_err(format!("locking {}", path.display()))(e));
            }
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(io_err(format!("writing our pid to {}", path.display())))?;
        Ok(DirLock { file, path })
    }

    /// Releases the lock now rather than when dropped.
    pub fn release(self) -> Result<(), StoreError> {
        self.file
            .unlock()
            .map_err(io_err(format!("unlocking {}", self.path.display())))
    }
}

/// The pid written in a held lock file. Windows locks bar reading the locked file from
/// another handle, and the holder may not have written it yet: then "unknown".
fn holder_pid(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_the_same_process_is_refused_with_our_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        match &err {
            StoreError::Locked { dir: d, pid } => {
                assert_eq!(d, dir.path());
                #[cfg(unix)]
                assert_eq!(pid, &std::process::id().to_string());
                #[cfg(not(unix))]
                let _ = pid;
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        assert!(err.to_string().contains(&dir.path().display().to_string()));
        held.release().unwrap();
        DirLock::acquire(dir.path()).unwrap();
    }
}
