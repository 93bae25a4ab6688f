//! The chat log: messages kept in the total order of their stamps.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use super::nick::Nicks;
use super::stamp::Stamp;
use crate::protocol::NodeId;

#[derive(Clone, Debug)]
struct Message {
    created_at_ms: u64,
    text: String,
}

/// Chat messages keyed by `(hlc, origin, seq)`: inserting is O(log n) and the map's
/// order is the display order, whatever order the messages arrived in.
#[derive(Clone, Debug, Default)]
pub struct ChatLog {
    messages: BTreeMap<Stamp, Message>,
}

/// One message as shown: its author's *current* name, resolved when read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatLine<'a> {
    /// The author's current nickname, or its short id.
    pub author: Cow<'a, str>,
    /// The author's node.
    pub origin: NodeId,
    /// The event's seq at its origin.
    pub seq: u64,
    /// The event's hybrid logical clock ([`crate::protocol::hlc`]).
    pub hlc: u64,
    /// When the author wrote it, by the author's clock (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// The message.
    pub text: &'a str,
}

impl ChatLog {
    /// Adds a message. The caller has already dropped duplicate events, so a stamp is new.
    pub fn insert(&mut self, stamp: Stamp, created_at_ms: u64, text: String) {
        self.messages.insert(
            stamp,
            Message {
                created_at_ms,
                text,
            },
        );
    }

    /// The messages in order, each with its author's current name from `nicks`.
    pub fn lines<'a>(
        &'a self,
        nicks: &'a Nicks,
    ) -> impl DoubleEndedIterator<Item = ChatLine<'a>> + ExactSizeIterator {
        self.messages.iter().map(move |(stamp, m)| ChatLine {
            author: nicks.display(stamp.origin),
            origin: stamp.origin,
            seq: stamp.seq,
            hlc: stamp.hlc,
            created_at_ms: m.created_at_ms,
            text: &m.text,
        })
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
