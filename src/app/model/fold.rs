//! The app model: a fold of the event set into chat, nicknames and the shared list.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use uuid::Uuid;

use super::chat::{ChatLine, ChatLog, MessageKind};
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
    /// Ops in an op format version this build does not read: shown as "unsupported
    /// message", never guessed at.
    pub skipped_unknown_version: u64,
    /// Payloads that are not ops at all.
    pub undecodable: u64,
    /// Library identity events (an origin's seq 1, carrying its public key): not app ops,
    /// skipped on purpose.
    pub identity: u64,
}

/// Why a chat edit, delete or reply could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChatOpError {
    /// No such message is held here (for edit and delete: none of yours).
    #[error("no message {seq} from {origin} here (only your own messages can be changed)")]
    NoSuchMessage {
        /// The message's origin.
        origin: NodeId,
        /// Its seq.
        seq: u64,
    },
    /// The message is already deleted.
    #[error("that message is deleted")]
    Deleted,
    /// The message is in a format this build does not read.
    #[error("that message is in a format this build does not read")]
    Unsupported,
    /// The edit would not change the text.
    #[error("the text is unchanged")]
    Unchanged,
    /// The op breaks a rule.
    #[error(transparent)]
    Invalid(#[from] InvalidOp),
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
    /// The op is in an unknown format version: shown as "unsupported message".
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
            Applied::UnknownVersion(v) => write!(f, "unsupported: op format version {v}"),
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
                // Shown, so the reader knows something was said, but never decoded: a
                // guess at a format this build does not know would be garbage.
                let kind = MessageKind::Unsupported(v);
                let stamp = Stamp::of(event);
                self.chat
                    .insert(stamp, event.created_at_ms, String::new(), kind);
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
            AppOp::Chat { text } => {
                let kind = MessageKind::Plain;
                self.chat.insert(stamp, event.created_at_ms, text, kind);
            }
            AppOp::Action { text } => {
                let kind = MessageKind::Action;
                self.chat.insert(stamp, event.created_at_ms, text, kind);
            }
            AppOp::Reply { origin, seq, text } => {
                let kind = MessageKind::Reply(origin, seq);
                self.chat.insert(stamp, event.created_at_ms, text, kind);
            }
            // The target is named by the editing event's own origin: author-only by
            // construction.
            AppOp::ChatEdit { seq, text } => self.chat.edit(stamp, seq, text),
            AppOp::ChatDelete { seq } => self.chat.delete(stamp.origin, seq),
            AppOp::Nick { name } => {
                self.nicks.set(stamp, name);
            }
            AppOp::ListAdd { item, text, pos } => self.list.add(stamp, item, text, pos),
            AppOp::ListEdit { item, text } => self.list.edit(stamp, item, text),
            AppOp::ListCheck { item, done } => self.list.check(stamp, item, done),
            AppOp::ListMove { item, pos } => self.list.move_to(stamp, item, pos),
            AppOp::ListRemove { item } => self.list.remove(item),
            AppOp::File {
                file_id,
                name,
                size,
                mime,
            } => {
                let offer = super::chat::FileOffer {
                    file_id: file_id.to_hex(),
                    name,
                    size,
                    mime,
                };
                self.chat.insert_file(stamp, event.created_at_ms, offer);
            }
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

    /// The name shown for `origin` everywhere (chat, peers, status, events): its nickname,
    /// followed by a short id when another origin holds the same one (`me@vm·5bac`), or
    /// else its short id.
    pub fn display_name(&self, origin: NodeId) -> std::borrow::Cow<'_, str> {
        self.nicks.display(origin)
    }

    /// The name shown for a peer known by `name` (say from its Hello) that has no nickname
    /// op here yet: `name`, with a short id when an origin's nickname is the same.
    pub fn display_peer_name(&self, origin: NodeId, name: &str) -> String {
        match self.nicks.get(origin) {
            Some(_) => self.nicks.display(origin).into_owned(),
            None if self.nicks.holders(name) > 0 => super::nick::disambiguated(name, origin),
            None => name.to_string(),
        }
    }

    /// The files offered in the chat, oldest first (deleted offers left out).
    pub fn files(&self) -> impl Iterator<Item = ChatLine<'_>> {
        self.chat.files(&self.nicks)
    }

    /// The file offers whose id starts with `prefix` (hex), latest first.
    pub fn find_files(&self, prefix: &str) -> Vec<ChatLine<'_>> {
        let prefix = prefix.to_ascii_lowercase();
        let mut found: Vec<_> = self
            .files()
            .filter(|l| l.file.is_some_and(|f| f.file_id.starts_with(&prefix)))
            .collect();
        found.reverse();
        found
    }

    /// The message `(origin, seq)`, if held.
    pub fn message(&self, origin: NodeId, seq: u64) -> Option<ChatLine<'_>> {
        self.chat.get(origin, seq, &self.nicks)
    }

    /// `me`'s latest message that can still be edited or deleted (Up on an empty line).
    pub fn last_own_message(&self, me: NodeId) -> Option<ChatLine<'_>> {
        self.chat.last_editable(me, &self.nicks)
    }

    /// An op editing `me`'s message `seq` to `text`: refused unless it is `me`'s own,
    /// held here, not deleted and actually changed.
    pub fn edit_op(&self, me: NodeId, seq: u64, text: &str) -> Result<AppOp, ChatOpError> {
        let line = self.own_line(me, seq)?;
        let op = AppOp::chat_edit(seq, text)?;
        if let AppOp::ChatEdit { text, .. } = &op
            && text == line.text
        {
            return Err(ChatOpError::Unchanged);
        }
        Ok(op)
    }

    /// An op deleting `me`'s message `seq`: refused unless it is `me`'s own, held here and
    /// not yet deleted.
    pub fn delete_op(&self, me: NodeId, seq: u64) -> Result<AppOp, ChatOpError> {
        self.own_line(me, seq)?;
        Ok(AppOp::chat_delete(seq)?)
    }

    /// An op answering message `(origin, seq)`, which must be held here.
    pub fn reply_op(&self, origin: NodeId, seq: u64, text: &str) -> Result<AppOp, ChatOpError> {
        self.message(origin, seq)
            .ok_or(ChatOpError::NoSuchMessage { origin, seq })?;
        Ok(AppOp::reply(origin, seq, text)?)
    }

    fn own_line(&self, me: NodeId, seq: u64) -> Result<ChatLine<'_>, ChatOpError> {
        let line = self
            .message(me, seq)
            .ok_or(ChatOpError::NoSuchMessage { origin: me, seq })?;
        if line.deleted {
            return Err(ChatOpError::Deleted);
        }
        if line.unsupported.is_some() {
            return Err(ChatOpError::Unsupported);
        }
        Ok(line)
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
