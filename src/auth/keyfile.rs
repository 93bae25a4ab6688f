//! Small files written once, atomically: a node's identity key and its node id.
//!
//! A file is written to a temporary name, synced, then linked to its final name, which
//! fails if the name exists: a crash never leaves a half-written file, and two writers
//! racing for one file cannot both win (the loser reads the winner's). The directory is
//! synced after, so the name survives a power loss. Keys are created private (mode 0600
//! on unix).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

/// Reads `dir/name`, or creates it with `make()` if it is missing. Returns its contents
/// and whether this call created it. `private` files are created readable by their owner
/// only.
pub fn load_or_create(
    dir: &Path,
    name: &str,
    private: bool,
    make: impl FnOnce() -> String,
) -> std::io::Result<(String, bool)> {
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => Ok((text, false)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let contents = make();
            if write_once(dir, name, contents.as_bytes(), private)? {
                Ok((contents, true))
            } else {
                Ok((fs::read_to_string(&path)?, false))
            }
        }
        Err(e) => Err(e),
    }
}

/// Writes `dir/name` unless it exists; false if it did (nothing is written then).
pub fn write_once(dir: &Path, name: &str, contents: &[u8], private: bool) -> std::io::Result<bool> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = create(&tmp, private)?;
    f.write_all(contents)?;
    f.sync_all()?;
    drop(f);
    let linked = fs::hard_link(&tmp, &path);
    // The temporary name goes either way; a failure to remove it leaves only litter.
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn create(path: &Path, private: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
}

#[cfg(not(unix))]
fn create(path: &Path, _private: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Syncs a directory, so a new name in it is durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Syncs a directory (a no-op where directories cannot be opened as files).
#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_once_then_read_back_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (a, created) = load_or_create(dir.path(), "k", true, || "one\n".into()).unwrap();
        assert!(created);
        let (b, created) = load_or_create(dir.path(), "k", true, || "two\n".into()).unwrap();
        assert_eq!((a.as_str(), b.as_str(), created), ("one\n", "one\n", false));
        assert!(!write_once(dir.path(), "k", b"three", true).unwrap());
        assert_eq!(fs::read_to_string(dir.path().join("k")).unwrap(), "one\n");
        assert!(!dir.path().join("k.tmp").exists());
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write_once(dir.path(), "secret", b"x", true).unwrap();
        let mode = fs::metadata(dir.path().join("secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }
}
