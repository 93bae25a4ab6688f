//! The own-seq reservation file (`seq-reservation`): the highest own seq this node may have
//! signed, written and fsynced before any event under it is signed (see
//! [`crate::protocol::own_seq`]). It lives beside the log but outside it, so a lost tail of
//! the log cannot lower it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

use super::{io_err, sync_dir};

/// The reservation's file name inside a store directory.
pub const RESERVATION_FILE: &str = "seq-reservation";

/// The reservation file of the store in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(RESERVATION_FILE)
}

/// Reads the reservation; 0 if the file does not exist (a new store, or one from before
/// reservations).
pub fn load(dir: &Path) -> Result<u64, StoreError> {
    let path = path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
    };
    text.trim().parse().map_err(|_| {
        StoreError::Corrupt(format!(
            "{}: not a seq reservation ({:?}); it is written atomically, so something else changed it",
            path.display(),
            text.chars().take(40).collect::<String>()
        ))
    })
}

/// Writes `up_to` atomically and durably: a temporary file, fsynced, renamed over the old
/// one, and the directory fsynced, so a crash leaves the old value or the new one.
pub fn store(dir: &Path, up_to: u64) -> Result<(), StoreError> {
    let path = path(dir);
    let tmp = dir.join(format!("{RESERVATION_FILE}.tmp"));
    let write = || -> io::Result<()> {
        // Private like every file of the store (0600 on Unix).
        let mut f = super::modes::private_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        writeln!(f, "{up_to}")?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        sync_dir(dir)
    };
    write().map_err(io_err(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_zero_then_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), 0);
        store(dir.path(), 42).unwrap();
        assert_eq!(load(dir.path()).unwrap(), 42);
        store(dir.path(), u64::MAX).unwrap();
        assert_eq!(load(dir.path()).unwrap(), u64::MAX);
    }

    #[test]
    fn garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(path(dir.path()), "lots").unwrap();
        assert!(matches!(load(dir.path()), Err(StoreError::Corrupt(_))));
    }
}
