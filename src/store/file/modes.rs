//! Private on disk: a store's directories are 0700 and its files 0600 on Unix, so other
//! local users of a shared machine cannot read a room they are not in. Elsewhere the
//! user's default ACL applies and these functions do nothing.
//!
//! New directories and files are created with these modes; a store opened with looser ones
//! (made by an older version, or copied) is tightened, and the open report lists what
//! changed so the app can say so.

use std::io;
use std::path::{Path, PathBuf};

/// The mode of a store directory.
pub const DIR_MODE: u32 = 0o700;
/// The mode of a store file.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents, the new ones private.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)
}

/// Options that create a file private (0600 on Unix).
pub fn private_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
}

/// Takes group and other permissions off `path` if it has any; true if it changed. A file
/// that cannot be changed (not ours, gone) is left alone: the open goes on, as before.
pub fn tighten_file(path: &Path) -> bool {
    tighten(path, FILE_MODE)
}

/// As [`tighten_file`], for a directory (0700).
pub fn tighten_dir(path: &Path) -> bool {
    tighten(path, DIR_MODE)
}

#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    // A symlink's target may be anything of anyone's: never chmod through one.
    if meta.file_type().is_symlink() || meta.permissions().mode() & 0o077 == 0 {
        return false;
    }
    let new = meta.permissions().mode() & mode;
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(new)) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot make it private");
            false
        }
    }
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _mode: u32) -> bool {
    false
}

/// Tightens a store directory and every file and directory in it (one level of
/// subdirectories: a store has no deeper ones); returns what changed. The identity key is
/// left alone: one that others could read may have been copied already, so opening the
/// store refuses it (see [`crate::auth`]) rather than quietly making it private.
pub fn tighten_store(dir: &Path) -> Vec<PathBuf> {
    let mut changed = Vec::new();
    if tighten_dir(dir) {
        changed.push(dir.to_path_buf());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return changed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == crate::auth::IDENTITY_KEY_FILE {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let tightened = if kind.is_dir() {
            tighten_dir(&path)
        } else if kind.is_file() {
            tighten_file(&path)
        } else {
            false
        };
        if tightened {
            changed.push(path);
        }
    }
    changed
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_and_loose_ones_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        use std::io::Write;
        let f = dir.join("f");
        private_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&f)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert_eq!(mode(&f), 0o600);
        assert!(tighten_store(&dir).is_empty(), "already private");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let changed = tighten_store(&dir);
        assert_eq!(changed, vec![dir.clone(), f.clone()]);
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
}
