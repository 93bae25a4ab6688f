//! The chat log: messages kept in the total order of their stamps, with their edits,
//! deletions and replies.
//!
//! Edits and deletes name a message by `(origin, seq)` where the origin is the editing
//! event's own (signed) origin, so only the author can change a message. They may arrive
//! before the message they change; they are kept by that id and applied whenever the
//! message is read, so the shown chat is a function of the event set:
//! - the edit with the largest stamp wins (last writer wins by the model's order);
//! - a delete is final: it wins over every edit, whatever their stamps, because a delete
//!   and a later edit can only come from a faulty author, and "deleted" must mean gone.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::nick::Nicks;
use super::stamp::{Lww, Stamp, set_opt};
use crate::protocol::NodeId;

/// The text shown in place of a deleted message, to everyone.
pub const DELETED_TEXT: &str = "(deleted)";
/// The text shown for an op this build does not read.
pub const UNSUPPORTED_TEXT: &str = "unsupported message";

/// What kind of chat line a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// A plain message.
    Plain,
    /// A `/me` action.
    Action,
    /// A reply to `(origin, seq)`.
    Reply(NodeId, u64),
    /// An op in a format version this build does not read.
    Unsupported(u16),
    /// A file offer (its details are in the log's file table).
    File,
}

/// A file offered in the chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileOffer {
    /// The blob id, hex.
    pub file_id: String,
    /// The name as offered.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// The MIME type as offered.
    pub mime: String,
}

#[derive(Clone, Debug)]
struct Message {
    created_at_ms: u64,
    text: String,
    kind: MessageKind,
}

/// A message id: its origin and its seq there.
type MsgId = (NodeId, u64);

/// Chat messages keyed by `(hlc, origin, seq)`: inserting is O(log n) and the map's
/// order is the display order, whatever order the messages arrived in.
#[derive(Clone, Debug, Default)]
pub struct ChatLog {
    messages: BTreeMap<Stamp, Message>,
    /// Each message's stamp by id, to resolve edits, deletes and replies.
    ids: BTreeMap<MsgId, Stamp>,
    /// The winning edit of each id (held even before the message arrives).
    edits: BTreeMap<MsgId, Lww<String>>,
    /// Ids deleted by their author (held even before the message arrives).
    deleted: BTreeSet<MsgId>,
    /// The file offers among the messages.
    files: BTreeMap<MsgId, FileOffer>,
}

/// The answered message, as a reply shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quote<'a> {
    /// The answered message's origin.
    pub origin: NodeId,
    /// Its seq at that origin.
    pub seq: u64,
    /// Its author's current name.
    pub author: Cow<'a, str>,
    /// The first line of its current text; `None` while this replica does not hold it.
    /// [`DELETED_TEXT`] when it was deleted.
    pub first_line: Option<&'a str>,
    /// Whether it was deleted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// One message as shown: its author's *current* name, resolved when read, and its current
/// text after edits and deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatLine<'a> {
    /// The author's current name as shown (see [`super::Model::display_name`]).
    pub author: Cow<'a, str>,
    /// The author's node.
    pub origin: NodeId,
    /// The event's seq at its origin.
    pub seq: u64,
    /// The event's hybrid logical clock ([`crate::protocol::hlc`]).
    pub hlc: u64,
    /// When the author wrote it, by the author's clock (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// The current text: the latest edit, [`DELETED_TEXT`] or [`UNSUPPORTED_TEXT`].
    pub text: &'a str,
    /// Whether the author edited it (false once deleted).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
    /// Whether the author deleted it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Whether it is a `/me` action.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub action: bool,
    /// The message it answers, if it is a reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Quote<'a>>,
    /// The op format version, if it is an op this build does not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<u16>,
    /// The file offered, if it is a file message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<&'a FileOffer>,
}

impl ChatLog {
    /// Adds a message. The caller has already dropped duplicate events, so a stamp is new.
    pub fn insert(&mut self, stamp: Stamp, created_at_ms: u64, text: String, kind: MessageKind) {
        self.ids.insert((stamp.origin, stamp.seq), stamp);
        self.messages.insert(
            stamp,
            Message {
                created_at_ms,
                text,
                kind,
            },
        );
    }

    /// Records `stamp.origin`'s edit of its own message `seq`.
    pub fn edit(&mut self, stamp: Stamp, seq: u64, text: String) {
        if self.deleted.contains(&(stamp.origin, seq)) {
            return;
        }
        let mut reg = self.edits.remove(&(stamp.origin, seq));
        set_opt(&mut reg, stamp, text);
        if let Some(reg) = reg {
            self.edits.insert((stamp.origin, seq), reg);
        }
    }

    /// Records that `origin` deleted its own message `seq`. The edits are dropped: a
    /// deleted message never shows them again.
    pub fn delete(&mut self, origin: NodeId, seq: u64) {
        self.deleted.insert((origin, seq));
        self.edits.remove(&(origin, seq));
    }

    /// The messages in order, each with its author's current name from `nicks`.
    pub fn lines<'a>(
        &'a self,
        nicks: &'a Nicks,
    ) -> impl DoubleEndedIterator<Item = ChatLine<'a>> + ExactSizeIterator {
        self.messages
            .iter()
            .map(move |(stamp, m)| self.line(stamp, m, nicks))
    }

    /// The message `(origin, seq)`, if this replica holds it.
    pub fn get<'a>(&'a self, origin: NodeId, seq: u64, nicks: &'a Nicks) -> Option<ChatLine<'a>> {
        let stamp = self.ids.get(&(origin, seq))?;
        let m = self.messages.get(stamp)?;
        Some(self.line(stamp, m, nicks))
    }

    /// The latest message of `origin` that it can still edit (not deleted, not unsupported).
    pub fn last_editable<'a>(&'a self, origin: NodeId, nicks: &'a Nicks) -> Option<ChatLine<'a>> {
        self.lines(nicks)
            .rev()
            .find(|l| l.origin == origin && !l.deleted && l.unsupported.is_none())
    }

    fn current_text<'a>(&'a self, id: MsgId, m: &'a Message) -> (&'a str, bool, bool) {
        if matches!(m.kind, MessageKind::Unsupported(_)) {
            return (UNSUPPORTED_TEXT, false, false);
        }
        if self.deleted.contains(&id) {
            return (DELETED_TEXT, false, true);
        }
        match self.edits.get(&id) {
            Some(edit) => (edit.value().as_str(), true, false),
            None => (m.text.as_str(), false, false),
        }
    }

    fn line<'a>(&'a self, stamp: &Stamp, m: &'a Message, nicks: &'a Nicks) -> ChatLine<'a> {
        let (text, edited, deleted) = self.current_text((stamp.origin, stamp.seq), m);
        let reply_to = match m.kind {
            MessageKind::Reply(origin, seq) if !deleted => Some(self.quote(origin, seq, nicks)),
            _ => None,
        };
        ChatLine {
            author: nicks.display(stamp.origin),
            origin: stamp.origin,
            seq: stamp.seq,
            hlc: stamp.hlc,
            created_at_ms: m.created_at_ms,
            text,
            edited,
            deleted,
            action: m.kind == MessageKind::Action,
            reply_to,
            unsupported: match m.kind {
                MessageKind::Unsupported(v) => Some(v),
                _ => None,
            },
            file: match m.kind {
                MessageKind::File if !deleted => self.files.get(&(stamp.origin, stamp.seq)),
                _ => None,
            },
        }
    }

    fn quote<'a>(&'a self, origin: NodeId, seq: u64, nicks: &'a Nicks) -> Quote<'a> {
        let held = self
            .ids
            .get(&(origin, seq))
            .and_then(|s| self.messages.get(s));
        let (first_line, deleted) = match held {
            Some(m) => {
                let (text, _, deleted) = self.current_text((origin, seq), m);
                (Some(text.lines().next().unwrap_or_default()), deleted)
            }
            None => (None, false),
        };
        Quote {
            origin,
            seq,
            author: nicks.display(origin),
            first_line,
            deleted,
        }
    }

    /// Adds a file offer as a message whose text is its name.
    pub fn insert_file(&mut self, stamp: Stamp, created_at_ms: u64, offer: FileOffer) {
        let text = offer.name.clone();
        self.files.insert((stamp.origin, stamp.seq), offer);
        self.insert(stamp, created_at_ms, text, MessageKind::File);
    }

    /// The file offers, in chat order.
    pub fn files<'a>(&'a self, nicks: &'a Nicks) -> impl Iterator<Item = ChatLine<'a>> {
        self.lines(nicks).filter(|l| l.file.is_some())
    }

    /// How many messages there are.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}
