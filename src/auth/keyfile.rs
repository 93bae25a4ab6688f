//! Small files written once, atomically: a node's identity key and its node id.
//!
//! A file is written to a temporary name, synced, then linked to its final name, which
//! fails if the name exists: a crash never leaves a half-written file, and two writers
//! racing for one file cannot both win (the loser reads the winner's). The directory is
//! synced after, so the name survives a power loss. Every file is created private (mode
//! 0600 on unix) and a missing directory is created private too (0700), the modes of
//! [`crate::store::file::modes`]: a node id says who wrote a store, a key is its authorship.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::store::file::modes;

/// Reads `dir/name`, or creates it with `make()` if it is missing. Returns its contents
/// and whether this call created it. A created file is readable by its owner only.
pub fn load_or_create(
    dir: &Path,
    name: &str,
    make: impl FnOnce() -> String,
) -> std::io::Result<(String, bool)> {
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => Ok((text, false)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let contents = make();
            if write_once(dir, name, contents.as_bytes())? {
                Ok((contents, true))
            } else {
                Ok((fs::read_to_string(&path)?, false))
            }
        }
        Err(e) => Err(e),
    }
}

/// Writes `dir/name` unless it exists; false if it did (nothing is written then). The file
/// is created 0600, and `dir` (with missing parents) 0700 if it is missing.
pub fn write_once(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<bool> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    modes::create_private_dir(dir)?;
    let mut f = create(&tmp)?;
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

/// Opens the temporary file, private; an old one (left by a crash) is overwritten.
fn create(path: &Path) -> std::io::Result<File> {
    modes::private_options()
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
        let (a, created) = load_or_create(dir.path(), "k", || "one\n".into()).unwrap();
        assert!(created);
        let (b, created) = load_or_create(dir.path(), "k", || "two\n".into()).unwrap();
        assert_eq!((a.as_str(), b.as_str(), created), ("one\n", "one\n", false));
        assert!(!write_once(dir.path(), "k", b"three").unwrap());
        assert_eq!(fs::read_to_string(dir.path().join("k")).unwrap(), "one\n");
        assert!(!dir.path().join("k.tmp").exists());
    }

    #[cfg(unix)]
    #[test]
    fn files_are_0600_and_a_missing_directory_0700() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("new/store");
        write_once(&dir, "secret", b"x").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("secret")), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("new")), 0o700);
    }
}
