//! The node's identity, kept beside its events so a restarted node is the same node.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::protocol::NodeId;
use crate::store::StoreError;

use super::{io_err, sync_dir};

/// The identity file's name inside a store directory.
pub const NODE_ID_FILE: &str = "node-id";

/// Reads `<dir>/node-id`, or creates it with a fresh random id if it is missing.
///
/// A file that exists but does not hold a valid id is an error, not a reason to mint a new
/// identity: a silently new id would make the node's old events look like another node's.
/// The file is written to a temporary name and renamed, so a crash never leaves it half
/// written. Call this with the directory locked (as [`super::FileEventStore::open`] does)
/// so two processes cannot mint two ids.
pub fn load_or_create_node_id(dir: &Path) -> Result<NodeId, StoreError> {
    let path = dir.join(NODE_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let id: NodeId = text.parse().map_err(|e| {
                StoreError::Corrupt(format!("{}: not a node id ({e})", path.display()))
            })?;
            if id.is_nil() {
                return Err(StoreError::Corrupt(format!(
                    "{}: the nil id is not a node id",
                    path.display()
                )));
            }
            Ok(id)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let id = NodeId::random();
            let tmp = dir.join(format!("{NODE_ID_FILE}.tmp"));
            let write = || -> std::io::Result<()> {
                let mut f = File::create(&tmp)?;
                f.write_all(format!("{id}\n").as_bytes())?;
                f.sync_all()?;
                fs::rename(&tmp, &path)?;
                sync_dir(dir)
            };
            write().map_err(io_err(format!("creating {}", path.display())))?;
            Ok(id)
        }
        Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_node_id(dir.path()).unwrap();
        let b = load_or_create_node_id(dir.path()).unwrap();
        assert_eq!(a, b);
        assert!(!a.is_nil());
        assert_eq!(a.0.get_version_num(), 4);
    }

    #[test]
    fn garbage_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(NODE_ID_FILE), "garbage").unwrap();
        let err = load_or_create_node_id(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains(NODE_ID_FILE)));
    }
}
