//! Nicknames: one last-writer-wins register per origin.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::stamp::{Lww, Stamp};
use crate::protocol::NodeId;

/// Each origin's current nickname. An op only ever names its own origin, so nobody can
/// rename someone else.
#[derive(Clone, Debug, Default)]
pub struct Nicks {
    by_origin: BTreeMap<NodeId, Lww<String>>,
}

impl Nicks {
    /// Records that `stamp.origin` took the name `name`, if this is its latest nick op.
    pub fn set(&mut self, stamp: Stamp, name: String) -> bool {
        match self.by_origin.entry(stamp.origin) {
            Entry::Vacant(slot) => {
                slot.insert(Lww::new(stamp, name));
                true
            }
            Entry::Occupied(mut slot) => slot.get_mut().set(stamp, name),
        }
    }

    /// The nickname `origin` chose, if any.
    pub fn get(&self, origin: NodeId) -> Option<&str> {
        self.by_origin.get(&origin).map(|r| r.value().as_str())
    }

    /// The name to show for `origin`: its nickname, or else its short id.
    pub fn display(&self, origin: NodeId) -> Cow<'_, str> {
        match self.get(origin) {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(origin.short()),
        }
    }

    /// Every origin with a nickname, in origin order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &str)> {
        self.by_origin
            .iter()
            .map(|(origin, reg)| (*origin, reg.value().as_str()))
    }

    /// How many origins have a nickname.
    pub fn len(&self) -> usize {
        self.by_origin.len()
    }

    /// Whether no origin has a nickname.
    pub fn is_empty(&self) -> bool {
        self.by_origin.is_empty()
    }
}
