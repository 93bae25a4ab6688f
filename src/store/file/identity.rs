//! The node's identity, kept beside its events so a restarted node is the same node.

use std::path::Path;

use crate::auth::{IDENTITY_KEY_FILE, NodeIdentity, keyfile};
use crate::protocol::NodeId;
use crate::store::StoreError;

use super::io_err;

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
    load_or_create_with(dir, NodeId::random())
}

/// Reads `<dir>/node-id`, or writes `fresh` there if it is missing.
fn load_or_create_with(dir: &Path, fresh: NodeId) -> Result<NodeId, StoreError> {
    let path = dir.join(NODE_ID_FILE);
    // Written once, atomically (see `auth::keyfile`): never half written, never replaced.
    let (text, _) = keyfile::load_or_create(dir, NODE_ID_FILE, || format!("{fresh}\n"))
        .map_err(io_err(format!("reading or creating {}", path.display())))?;
    let id: NodeId = text
        .trim()
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("{}: not a node id ({e})", path.display())))?;
    if id.is_nil() {
        return Err(StoreError::Corrupt(format!(
            "{}: the nil id is not a node id",
            path.display()
        )));
    }
    Ok(id)
}

/// Loads the store's signing identity (`<dir>/identity.key`), or creates it with `node-id`
/// for a new store.
///
/// The node id is the key's ([`crate::auth::node_id_of`]). Migration: a store that has a
/// `node-id` but no key predates signed events; its events are unsigned, so peers that verify
/// would refuse them, and its id cannot be proved. Such a store is refused with a message
/// asking for a new data directory or profile, rather than silently minting an identity
/// whose id differs from the events already written. A `node-id` that disagrees with the key
/// is refused too.
pub fn load_or_create_identity(dir: &Path) -> Result<NodeIdentity, StoreError> {
    let key_path = dir.join(IDENTITY_KEY_FILE);
    let id_path = dir.join(NODE_ID_FILE);
    let exists = |p: &Path| {
        p.try_exists()
            .map_err(io_err(format!("checking {}", p.display())))
    };
    if !exists(&key_path)? && exists(&id_path)? {
        return Err(StoreError::Identity(format!(
            "{} was created before signed events (it has {NODE_ID_FILE} but no {IDENTITY_KEY_FILE}); \
             its events are unsigned and would be refused by peers: use a new data directory or profile",
            dir.display()
        )));
    }
    let identity =
        NodeIdentity::load_or_create(dir).map_err(|e| StoreError::Identity(e.to_string()))?;
    let id = load_or_create_with(dir, identity.node_id())?;
    if id != identity.node_id() {
        return Err(StoreError::Identity(format!(
            "{}: node id {id} is not the one of {IDENTITY_KEY_FILE} ({})",
            id_path.display(),
            identity.node_id()
        )));
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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
    fn a_new_store_gets_a_key_and_the_node_id_derived_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_identity(dir.path()).unwrap();
        let b = load_or_create_identity(dir.path()).unwrap();
        assert_eq!(a.node_id(), b.node_id());
        assert_eq!(load_or_create_node_id(dir.path()).unwrap(), a.node_id());
    }

    #[test]
    fn a_store_from_before_signed_events_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_node_id(dir.path()).unwrap();
        let err = load_or_create_identity(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Identity(ref m) if m.contains("new data directory")));
        assert!(!dir.path().join(IDENTITY_KEY_FILE).exists());
    }

    #[test]
    fn a_node_id_that_is_not_the_keys_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_identity(dir.path()).unwrap();
        fs::write(
            dir.path().join(NODE_ID_FILE),
            format!("{}\n", NodeId::random()),
        )
        .unwrap();
        assert!(matches!(
            load_or_create_identity(dir.path()),
            Err(StoreError::Identity(m)) if m.contains("is not the one")
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(NODE_ID_FILE), "garbage").unwrap();
        let err = load_or_create_node_id(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains(NODE_ID_FILE)));
    }
}
