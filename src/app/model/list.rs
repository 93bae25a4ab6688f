//! The shared list: items whose fields are last-writer-wins registers, ordered by fractional
//! position keys, removed by tombstones.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Unbounded};

use serde::Serialize;
use uuid::Uuid;

use super::fractional::key_between;
use super::op::InvalidOp;
use super::stamp::{Lww, Stamp, set_opt};
use crate::protocol::NodeId;

const ID_MIN: Uuid = Uuid::nil();
const ID_MAX: Uuid = Uuid::from_u128(u128::MAX);

/// What the replica holds about one item id. Registers are kept even before the item's add
/// arrives, so an op that overtook its add is not lost and the result does not depend on
/// which came first.
#[derive(Clone, Debug, Default)]
struct Item {
    /// The smallest stamp among the item's adds (normally there is one).
    added: Option<Stamp>,
    /// A tombstone: once set, the item is gone and every other op on it is absorbed.
    removed: bool,
    text: Option<Lww<String>>,
    done: Option<Lww<bool>>,
    pos: Option<Lww<String>>,
    /// The largest stamp of any add, edit, check or move.
    last_edit: Option<Stamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Ops arrived, the add has not.
    Pending,
    Visible,
    Removed,
}

impl Item {
    fn phase(&self) -> Phase {
        if self.removed {
            Phase::Removed
        } else if self.added.is_some() && self.pos.is_some() {
            Phase::Visible
        } else {
            Phase::Pending
        }
    }

    fn pos(&self) -> Option<&str> {
        self.pos.as_ref().map(|r| r.value().as_str())
    }

    fn touch(&mut self, stamp: Stamp) {
        self.last_edit = Some(self.last_edit.map_or(stamp, |s| s.max(stamp)));
    }
}

/// One visible item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemView<'a> {
    /// The item's id.
    pub id: Uuid,
    /// Its text.
    pub text: &'a str,
    /// Whether it is checked.
    pub done: bool,
    /// Its fractional position key.
    pub pos: &'a str,
    /// Who added it.
    pub added_by: NodeId,
    /// Who last added, edited, checked or moved it.
    pub last_editor: NodeId,
}

/// Where to move an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveTo {
    /// One place up (before the item above it).
    Up,
    /// One place down (after the item below it).
    Down,
    /// To the top.
    Top,
    /// To the bottom.
    Bottom,
    /// Right after another item.
    After(Uuid),
    /// Right before another item.
    Before(Uuid),
}

/// Why an op on the list could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListOpError {
    /// The item is not in the list (never added, not arrived yet, or removed).
    #[error("no item {0} in the list")]
    NoSuchItem(Uuid),
    /// The item is already at the end of the list it would move towards.
    #[error("the item is already at that end of the list")]
    AtEdge,
    /// An item was to move next to itself.
    #[error("an item cannot move next to itself")]
    SelfAnchor,
    /// The op would break a rule (say, an empty text).
    #[error(transparent)]
    Invalid(#[from] InvalidOp),
}

/// Why a typed item id prefix does not name one item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ItemLookupError {
    /// No visible item id starts with the prefix.
    #[error("no item starts with {0:?}")]
    Missing(String),
    /// Several do.
    #[error("{count} items start with {prefix:?}; type more of the id")]
    Ambiguous {
        /// The prefix as typed.
        prefix: String,
        /// How many visible items match.
        count: usize,
    },
}

/// The shared list.
#[derive(Clone, Debug, Default)]
pub struct SharedList {
    items: BTreeMap<Uuid, Item>,
    /// The visible items in display order: by position key, ties broken by id.
    order: BTreeSet<(String, Uuid)>,
    pending: usize,
    removed: usize,
}

impl SharedList {
    /// Applies an add: sets the text and position registers and marks the item added.
    pub fn add(&mut self, stamp: Stamp, id: Uuid, text: String, pos: String) {
        self.update(id, true, |it| {
            it.added = Some(it.added.map_or(stamp, |s| s.min(stamp)));
            set_opt(&mut it.text, stamp, text);
            set_opt(&mut it.pos, stamp, pos);
            it.touch(stamp);
        });
    }

    /// Applies an edit of the text.
    pub fn edit(&mut self, stamp: Stamp, id: Uuid, text: String) {
        self.update(id, false, |it| {
            set_opt(&mut it.text, stamp, text);
            it.touch(stamp);
        });
    }

    /// Applies a check or uncheck.
    pub fn check(&mut self, stamp: Stamp, id: Uuid, done: bool) {
        self.update(id, false, |it| {
            set_opt(&mut it.done, stamp, done);
            it.touch(stamp);
        });
    }

    /// Applies a move.
    pub fn move_to(&mut self, stamp: Stamp, id: Uuid, pos: String) {
        self.update(id, true, |it| {
            set_opt(&mut it.pos, stamp, pos);
            it.touch(stamp);
        });
    }

    /// Applies a remove: a tombstone, whatever its stamp, so it beats every other op on the
    /// item, earlier, concurrent or later.
    pub fn remove(&mut self, id: Uuid) {
        self.update(id, true, |it| {
            // The registers can never show again; free them.
            *it = Item {
                removed: true,
                ..Item::default()
            };
        });
    }

    /// Runs `change` on the item's state unless it is removed, then keeps the display order
    /// and the counters in step with the item's phase and position. `moves` says whether
    /// `change` may touch the position or the phase; edits and checks do not, and skip
    /// copying the old key.
    fn update(&mut self, id: Uuid, moves: bool, change: impl FnOnce(&mut Item)) {
        let (before, item) = match self.items.entry(id) {
            Entry::Vacant(slot) => (None, slot.insert(Item::default())),
            Entry::Occupied(slot) => (Some(slot.get().phase()), slot.into_mut()),
        };
        if before == Some(Phase::Removed) {
            return;
        }
        if !moves && before.is_some() {
            change(item);
            return;
        }
        let old_key = match before {
            Some(Phase::Visible) => item.pos().map(str::to_owned),
            _ => None,
        };
        change(item);
        let after = item.phase();
        let new_key = match after {
            Phase::Visible => item.pos(),
            _ => None,
        };
        if old_key.as_deref() != new_key {
            if let Some(k) = old_key {
                self.order.remove(&(k, id));
            }
            if let Some(k) = new_key {
                self.order.insert((k.to_owned(), id));
            }
        }
        if before == Some(Phase::Pending) {
            self.pending -= 1;
        }
        match after {
            Phase::Pending => self.pending += 1,
            Phase::Removed => self.removed += 1,
            Phase::Visible => {}
        }
    }

    fn view(&self, id: Uuid) -> Option<ItemView<'_>> {
        let it = self.items.get(&id)?;
        if it.phase() != Phase::Visible {
            return None;
        }
        let added = it.added?;
        Some(ItemView {
            id,
            text: it.text.as_ref().map_or("", |r| r.value().as_str()),
            done: it.done.as_ref().is_some_and(|r| *r.value()),
            pos: it.pos().unwrap_or_default(),
            added_by: added.origin,
            last_editor: it.last_edit.unwrap_or(added).origin,
        })
    }

    /// The visible item `id`, if it is in the list.
    pub fn get(&self, id: Uuid) -> Option<ItemView<'_>> {
        self.view(id)
    }

    /// The visible items in display order.
    pub fn iter(&self) -> impl Iterator<Item = ItemView<'_>> {
        self.order.iter().filter_map(|(_, id)| self.view(*id))
    }

    /// How many items are visible.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no item is visible.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// How many item ids have ops waiting for their add.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// How many items are removed (tombstones kept).
    pub fn removed(&self) -> usize {
        self.removed
    }

    /// Recounts from scratch what `update` maintains incrementally.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let phase = |p| self.items.values().filter(|it| it.phase() == p).count();
        let visible: BTreeSet<(String, Uuid)> = self
            .items
            .iter()
            .filter(|(_, it)| it.phase() == Phase::Visible)
            .filter_map(|(id, it)| Some((it.pos()?.to_owned(), *id)))
            .collect();
        if visible != self.order {
            return Err(format!("order index {:?} != {:?}", self.order, visible));
        }
        let counted = (phase(Phase::Pending), phase(Phase::Removed));
        if counted != (self.pending, self.removed) {
            return Err(format!(
                "counters {:?} != recount {counted:?}",
                (self.pending, self.removed)
            ));
        }
        Ok(())
    }

    fn pos_of(&self, id: Uuid) -> Result<&str, ListOpError> {
        self.items
            .get(&id)
            .filter(|it| it.phase() == Phase::Visible)
            .and_then(Item::pos)
            .ok_or(ListOpError::NoSuchItem(id))
    }

    /// The smallest position key above `pos`, ignoring `skip` (the item being moved).
    fn pos_above(&self, pos: &str, skip: Option<Uuid>) -> Option<&str> {
        self.order
            .range((Excluded((pos.to_owned(), ID_MAX)), Unbounded))
            .find(|(_, id)| Some(*id) != skip)
            .map(|(p, _)| p.as_str())
    }

    /// The largest position key below `pos`, ignoring `skip`.
    fn pos_below(&self, pos: &str, skip: Option<Uuid>) -> Option<&str> {
        self.order
            .range((Unbounded, Excluded((pos.to_owned(), ID_MIN))))
            .rev()
            .find(|(_, id)| Some(*id) != skip)
            .map(|(p, _)| p.as_str())
    }

    // Items with equal keys (from concurrent inserts at one spot) have no key between them,
    // so "after x" lands after every item tied with x, and "before x" before all of them.
    fn key_after(&self, pos: &str, skip: Option<Uuid>) -> String {
        key_between(Some(pos), self.pos_above(pos, skip))
    }

    fn key_before(&self, pos: &str, skip: Option<Uuid>) -> String {
        key_between(self.pos_below(pos, skip), Some(pos))
    }

    /// A position key for a new item: right after `after`, or at the bottom.
    pub fn key_for_new(&self, after: Option<Uuid>) -> Result<String, ListOpError> {
        match after {
            Some(anchor) => Ok(self.key_after(self.pos_of(anchor)?, None)),
            None => Ok(match self.order.last() {
                Some((last, _)) => key_between(Some(last), None),
                None => key_between(None, None),
            }),
        }
    }

    /// A position key that puts `item` where `to` says.
    pub fn key_for_move(&self, item: Uuid, to: MoveTo) -> Result<String, ListOpError> {
        let me = (self.pos_of(item)?.to_owned(), item);
        let skip = Some(item);
        let others = || self.order.iter().filter(|(_, id)| *id != item);
        match to {
            MoveTo::Top => match (self.order.first(), others().next()) {
                (Some(first), Some((p, _))) if *first != me => Ok(key_between(None, Some(p))),
                _ => Err(ListOpError::AtEdge),
            },
            MoveTo::Bottom => match (self.order.last(), others().next_back()) {
                (Some(last), Some((p, _))) if *last != me => Ok(key_between(Some(p), None)),
                _ => Err(ListOpError::AtEdge),
            },
            MoveTo::Up => match self.order.range(..me.clone()).next_back() {
                Some((p, _)) => Ok(self.key_before(p, skip)),
                None => Err(ListOpError::AtEdge),
            },
            MoveTo::Down => match self.order.range((Excluded(me), Unbounded)).next() {
                Some((p, _)) => Ok(self.key_after(p, skip)),
                None => Err(ListOpError::AtEdge),
            },
            MoveTo::After(anchor) if anchor == item => Err(ListOpError::SelfAnchor),
            MoveTo::Before(anchor) if anchor == item => Err(ListOpError::SelfAnchor),
            MoveTo::After(anchor) => Ok(self.key_after(self.pos_of(anchor)?, skip)),
            MoveTo::Before(anchor) => Ok(self.key_before(self.pos_of(anchor)?, skip)),
        }
    }

    /// The one visible item whose id starts with `prefix` (hex digits, hyphens and case
    /// ignored), as users type short ids.
    pub fn find_by_prefix(&self, prefix: &str) -> Result<Uuid, ItemLookupError> {
        let missing = || ItemLookupError::Missing(prefix.to_owned());
        let hex: String = prefix
            .trim()
            .chars()
            .filter(|&c| c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        if hex.is_empty() || hex.len() > 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(missing());
        }
        // Ids order like their hex digits, so the matches are one range of the map.
        let lo = u128::from_str_radix(&format!("{hex:0<32}"), 16).map_err(|_| missing())?;
        let hi = u128::from_str_radix(&format!("{hex:f<32}"), 16).map_err(|_| missing())?;
        let mut matches = self
            .items
            .range(Uuid::from_u128(lo)..=Uuid::from_u128(hi))
            .filter(|(_, it)| it.phase() == Phase::Visible)
            .map(|(id, _)| *id);
        match (matches.next(), matches.next()) {
            (Some(id), None) => Ok(id),
            (None, _) => Err(missing()),
            (Some(_), Some(_)) => Err(ItemLookupError::Ambiguous {
                prefix: prefix.to_owned(),
                count: 2 + matches.count(),
            }),
        }
    }
}
