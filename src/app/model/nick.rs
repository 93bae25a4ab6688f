//! Nicknames: one last-writer-wins register per origin.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::stamp::{Lww, Stamp};
use crate::protocol::NodeId;

/// The separator between a shared name and the short id that tells its holders apart.
pub const ID_SEPARATOR: char = '·';
/// How many hex digits of the node id follow a shared name.
pub const SHORT_ID_DIGITS: usize = 4;

/// Each origin's current nickname. An op only ever names its own origin, so nobody can
/// rename someone else.
#[derive(Clone, Debug, Default)]
pub struct Nicks {
    by_origin: BTreeMap<NodeId, Lww<String>>,
    /// How many origins currently hold each name, to tell shared names apart.
    holders: BTreeMap<String, usize>,
}

impl Nicks {
    /// Records that `stamp.origin` took the name `name`, if this is its latest nick op.
    pub fn set(&mut self, stamp: Stamp, name: String) -> bool {
        let old = match self.by_origin.entry(stamp.origin) {
            Entry::Vacant(slot) => {
                slot.insert(Lww::new(stamp, name.clone()));
                None
            }
            Entry::Occupied(mut slot) => {
                let old = slot.get().value().clone();
                if !slot.get_mut().set(stamp, name.clone()) {
                    return false;
                }
                Some(old)
            }
        };
        if let Some(old) = old
            && let Entry::Occupied(mut n) = self.holders.entry(old)
        {
            *n.get_mut() -= 1;
            if *n.get() == 0 {
                n.remove();
            }
        }
        *self.holders.entry(name).or_default() += 1;
        true
    }

    /// How many origins hold `name` now.
    pub fn holders(&self, name: &str) -> usize {
        self.holders.get(name).copied().unwrap_or(0)
    }

    /// Whether more than one origin holds `name` now.
    pub fn is_shared(&self, name: &str) -> bool {
        self.holders.get(name).is_some_and(|&n| n > 1)
    }

    /// The nickname `origin` chose, if any.
    pub fn get(&self, origin: NodeId) -> Option<&str> {
        self.by_origin.get(&origin).map(|r| r.value().as_str())
    }

    /// The name to show for `origin`: its nickname, followed by a short id when another
    /// origin holds the same name (`me@vm·5bac`), or else its short id.
    pub fn display(&self, origin: NodeId) -> Cow<'_, str> {
        match self.get(origin) {
            Some(name) if self.is_shared(name) => Cow::Owned(disambiguated(name, origin)),
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

/// `name` with the first [`SHORT_ID_DIGITS`] hex digits of `origin` after it: `me@vm·5bac`.
pub fn disambiguated(name: &str, origin: NodeId) -> String {
    let short = origin.short();
    let digits = short.get(..SHORT_ID_DIGITS).unwrap_or(&short);
    format!("{name}{ID_SEPARATOR}{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(hlc: u64, origin: u128) -> Stamp {
        Stamp {
            hlc,
            origin: NodeId::from_u128(origin),
            seq: hlc,
        }
    }

    #[test]
    fn a_shared_name_shows_a_short_id_and_stops_once_unshared() {
        let (a, b) = (
            NodeId::from_u128(0x5bac << 112),
            NodeId::from_u128(0x77 << 112),
        );
        let mut n = Nicks::default();
        n.set(
            Stamp {
                origin: a,
                ..stamp(1, 0)
            },
            "me@vm".into(),
        );
        assert_eq!(n.display(a), "me@vm");
        n.set(
            Stamp {
                origin: b,
                ..stamp(2, 0)
            },
            "me@vm".into(),
        );
        assert_eq!(n.display(a), "me@vm·5bac");
        assert_eq!(n.display(b), "me@vm·0077");
        // An older rename of b loses to its newer name and changes nothing.
        assert!(!n.set(
            Stamp {
                origin: b,
                ..stamp(1, 0)
            },
            "bee".into()
        ));
        assert_eq!(n.display(a), "me@vm·5bac");
        n.set(
            Stamp {
                origin: b,
                ..stamp(3, 0)
            },
            "bee".into(),
        );
        assert_eq!(n.display(a), "me@vm");
        assert_eq!(n.display(b), "bee");
    }
}
