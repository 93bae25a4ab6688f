//! The app model: a fold of the event set into chat, nicknames and the shared list.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use uuid::Uuid;

use super::chat::{ChatLine, ChatLog};
use super::list::{ItemLookupError, ItemView, ListOpError, MoveTo, SharedList};
use super::nick::Nicks;
use super::op::{AppOp, DecodeOpError, InvalidOp};
use super::seen::Seen;
use super::stamp::Stamp;
use crate::protocol::{Event, NodeId};

/// Running totals of what the fold met.
///
/// All but `duplicates` depend only on the set of events, not on how they arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Distinct events folded (whatever their payload).
    pub events: u64,
    /// Events seen again and dropped.
    pub duplicates: u64,
    /// Ops that break the rules (see [`AppOp::validate`]) and were ignored.
    pub ignored_invalid: u64,
    /// Ops in an op format version this build does not read, skipped.
    pub skipped_unknown_version: u64,
    /// Payloads that are not ops at all.
    pub undecodable: u64,
    /// Library identity events (an origin's seq 1, carrying its public key): not app ops,
    /// skipped on purpose.
    pub identity: u64,
}

/// What [`Model::apply`] did with one event.
#[derive(Debug)]
pub enum Applied {
    /// The op was folded in.
    Folded {
        /// The op's kind (see [`AppOp::kind`]).
        kind: &'static str,
    },
    /// The event was already folded.
    Duplicate,
    /// The op breaks a rule and was ignored.
    Invalid(InvalidOp),
    /// The op is in an unknown format version and was skipped.
    UnknownVersion(u16),
    /// The payload is not an op.
    Undecodable(DecodeOpError),
    /// A library identity event (see [`crate::auth`]), which the model ignores.
    Identity,
}

impl std::fmt::Display for Applied {
    /// A one-line note for logs and the events panel.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Folded { kind } => f.write_str(kind),
            Applied::Duplicate => f.write_str("duplicate"),
            Applied::Invalid(e) => write!(f, "ignored: {e}"),
            Applied::UnknownVersion(v) => write!(f, "skipped: unknown op format version {v}"),
            Applied::Undecodable(e) => write!(f, "undecodable: {e}"),
            Applied::Identity => f.write_str("identity"),
        }
    }
}

/// The app state, folded from events.
///
/// The fold is over the *set* of events: the same events in any order, with any duplicates,
/// give the same model (see `docs/ALGORITHM-app.md`). Each event costs O(log n).
#[derive(Clone, Debug, Default)]
pub struct Model {
    seen: Seen,
    chat: ChatLog,
    nicks: Nicks,
    list: SharedList,
    counts: Counts,
}

impl Model {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// The model of `events`, folded from scratch.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut model = Model::new();
        for e in events {
            model.apply(e);
        }
        model
    }

    /// Folds one event in. Never fails: a payload that is not a valid op is counted and
    /// skipped, so one bad event cannot stop the fold.
    pub fn apply(&mut self, event: &Event) -> Applied {
        if !self.seen.insert(event.origin, event.seq) {
            self.counts.duplicates += 1;
            return Applied::Duplicate;
        }
        self.counts.events += 1;
        // The library's identity events share the event set but are not app ops; they are
        // recognised by their tag, so the fold stays a function of the set.
        if crate::auth::is_identity_payload(&event.payload) {
            self.counts.identity += 1;
            return Applied::Identity;
        }
        let op = match AppOp::decode(&event.payload) {
            Ok(op) => op,
            Err(DecodeOpError::UnknownVersion(v)) => {
                self.counts.skipped_unknown_version += 1;
                return Applied::UnknownVersion(v);
            }
            Err(e) => {
                self.counts.undecodable += 1;
                return Applied::Undecodable(e);
            }
        };
        if let Err(e) = op.validate() {
            self.counts.ignored_invalid += 1;
            return Applied::Invalid(e);
        }
        let kind = op.kind();
        let stamp = Stamp::of(event);
        match op {
            AppOp::Chat { text } => self.chat.insert(stamp, event.created_at_ms, text),
            AppOp::Nick { name } => {
                self.nicks.set(stamp, name);
            }
            AppOp::ListAdd { item, text, pos } => self.list.add(stamp, item, text, pos),
            AppOp::ListEdit { item, text } => self.list.edit(stamp, item, text),
            AppOp::ListCheck { item, done } => self.list.check(stamp, item, done),
            AppOp::ListMove { item, pos } => self.list.move_to(stamp, item, pos),
            AppOp::ListRemove { item } => self.list.remove(item),
        }
        Applied::Folded { kind }
    }

    /// The running totals.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The chat in display order (`(hlc, origin, seq)`), each message with its author's
    /// current name. Iterate from the back for the latest messages.
    pub fn chat(&self) -> impl DoubleEndedIterator<Item = ChatLine<'_>> + ExactSizeIterator {
        self.chat.lines(&self.nicks)
    }

    /// The name shown for `origin`: its nickname, or its short id.
    pub fn display_name(&self, origin: NodeId) -> std::borrow::Cow<'_, str> {
        self.nicks.display(origin)
    }

    /// The nickname `origin` chose, if any.
    pub fn nick(&self, origin: NodeId) -> Option<&str> {
        self.nicks.get(origin)
    }

    /// Every origin with a nickname, in origin order.
    pub fn nicks(&self) -> impl Iterator<Item = (NodeId, &str)> {
        self.nicks.iter()
    }

    /// The list items in display order.
    pub fn list(&self) -> impl Iterator<Item = ItemView<'_>> {
        self.list.iter()
    }

    /// The visible item `id`.
    pub fn item(&self, id: Uuid) -> Option<ItemView<'_>> {
        self.list.get(id)
    }

    /// How many list items are visible.
    pub fn list_len(&self) -> usize {
        self.list.len()
    }

    /// How many item ids have ops waiting for their add to arrive.
    pub fn pending_items(&self) -> usize {
        self.list.pending()
    }

    /// How many list items were removed.
    pub fn removed_items(&self) -> usize {
        self.list.removed()
    }

    /// The one visible item whose id starts with `prefix` (as typed by a user).
    pub fn find_item_by_prefix(&self, prefix: &str) -> Result<Uuid, ItemLookupError> {
        self.list.find_by_prefix(prefix)
    }

    /// An op adding a new item (with a fresh random id) right after `after`, or at the
    /// bottom when `after` is `None`.
    pub fn new_item_op(&self, text: &str, after: Option<Uuid>) -> Result<AppOp, ListOpError> {
        self.new_item_op_with_id(Uuid::new_v4(), text, after)
    }

    /// [`Model::new_item_op`] with a chosen id. Random v4 ids, not time-ordered v7 ones,
    /// keep the short prefixes users type distinct.
    pub fn new_item_op_with_id(
        &self,
        id: Uuid,
        text: &str,
        after: Option<Uuid>,
    ) -> Result<AppOp, ListOpError> {
        let pos = self.list.key_for_new(after)?;
        Ok(AppOp::list_add(id, text, &pos)?)
    }

    /// An op moving `item` where `to` says.
    pub fn move_op(&self, item: Uuid, to: MoveTo) -> Result<AppOp, ListOpError> {
        let pos = self.list.key_for_move(item, to)?;
        let op = AppOp::ListMove { item, pos };
        op.validate()?;
        Ok(op)
    }

    /// An op flipping `item`'s check mark.
    pub fn toggle_op(&self, item: Uuid) -> Result<AppOp, ListOpError> {
        let view = self.list.get(item).ok_or(ListOpError::NoSuchItem(item))?;
        Ok(AppOp::list_check(item, !view.done))
    }

    /// Checks the list's incrementally kept index and counters against a recount.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        self.list.check_invariants()
    }

    /// The visible model as JSON: the chat in order, the list in order, the nicknames by
    /// origin. Equal event sets give byte-identical output: everything is in a defined
    /// order and nothing local (receipt times, duplicates) is included.
    pub fn state_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&StateView(self))
    }
}

/// Serialises the visible model straight from its ordered maps, without copying the chat.
struct StateView<'a>(&'a Model);

struct ChatSeq<'a>(&'a Model);

impl Serialize for ChatSeq<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.chat())
    }
}

struct ListSeq<'a>(&'a Model);

impl Serialize for ListSeq<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.list())
    }
}

struct NickMap<'a>(&'a Nicks);

impl Serialize for NickMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (origin, name) in self.0.iter() {
            map.serialize_entry(&origin.to_string(), name)?;
        }
        map.end()
    }
}

impl Serialize for StateView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut st = s.serialize_struct("State", 3)?;
        st.serialize_field("chat", &ChatSeq(m))?;
        st.serialize_field("list", &ListSeq(m))?;
        st.serialize_field("nicks", &NickMap(&m.nicks))?;
        st.end()
    }
}
