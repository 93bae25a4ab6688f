//! The ops of the app, their validation, and their encoding in event payloads.
//!
//! A payload is a 2-byte little-endian op format version followed by the bincode encoding of
//! an [`AppOp`]. The version comes first so that a build meeting a newer format can say so
//! and show "unsupported message", instead of misreading it: bincode is not self-describing,
//! so a new variant or field needs a new version. Each op is written with the *oldest*
//! version that has it ([`AppOp::min_version`]), so older builds keep reading every op they
//! know. `docs/APP-PROTOCOL.md` is the full byte-level description.

use serde_json::{Value, json};
use uuid::Uuid;

use super::fractional;
use crate::protocol::NodeId;
use crate::protocol::blob::{BlobId, MAX_BLOB_SIZE};
use crate::protocol::codec::{self, CodecError};

/// The newest op format version this build writes and reads (it reads every version from 1).
///
/// Version 1: chat, nick and the list ops. Version 2 adds chat edit and delete, `/me` actions
/// and replies. Version 3 adds file offers.
pub const OP_FORMAT_VERSION: u16 = 3;
/// The most bytes a file offer's name may take.
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// The most bytes a file offer's MIME type may take.
pub const MAX_MIME_BYTES: usize = 127;
/// The most bytes a chat message or list item text may take.
pub const MAX_TEXT_BYTES: usize = 4096;
/// The most characters a nickname may take.
pub const MAX_NICK_CHARS: usize = 64;
/// The largest payload decoded as an op. The largest valid op (a text of
/// [`MAX_TEXT_BYTES`] and a key of [`fractional::MAX_KEY_LEN`]) is well under it, so anything
/// longer is refused before decoding allocates.
pub const MAX_PAYLOAD_BYTES: usize = 8 * 1024;

/// One change to the app state, carried in an event's payload.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AppOp {
    /// A chat message.
    Chat {
        /// The message.
        text: String,
    },
    /// The origin's nickname (an origin can only name itself).
    Nick {
        /// The new nickname.
        name: String,
    },
    /// A new item of the shared list.
    ListAdd {
        /// The item's id, chosen by its creator.
        item: Uuid,
        /// The item's text.
        text: String,
        /// Its fractional position key (see [`fractional`]).
        pos: String,
    },
    /// A new text for an item.
    ListEdit {
        /// The item.
        item: Uuid,
        /// The new text.
        text: String,
    },
    /// An item checked or unchecked.
    ListCheck {
        /// The item.
        item: Uuid,
        /// Whether it is done.
        done: bool,
    },
    /// An item moved to a new position.
    ListMove {
        /// The item.
        item: Uuid,
        /// The new fractional position key.
        pos: String,
    },
    /// An item removed, for good.
    ListRemove {
        /// The item.
        item: Uuid,
    },
    /// A new text for one of the origin's own messages (since version 2). The message is
    /// named by its seq alone: its origin is the editing event's origin, so only the author
    /// can edit it (origins are signed).
    ChatEdit {
        /// The edited message's seq at this origin.
        seq: u64,
        /// The new text.
        text: String,
    },
    /// One of the origin's own messages deleted, for good (since version 2).
    ChatDelete {
        /// The deleted message's seq at this origin.
        seq: u64,
    },
    /// A `/me` action, shown as "* ann waves" (since version 2).
    Action {
        /// What the author does.
        text: String,
    },
    /// A message answering another one, shown with the first line of the answered message
    /// (since version 2).
    Reply {
        /// The answered message's origin.
        origin: NodeId,
        /// The answered message's seq at that origin.
        seq: u64,
        /// The answer.
        text: String,
    },
    /// A file offered to the room (since version 3): its bytes are a blob fetched on
    /// demand from whoever holds it (see [`crate::protocol::blob`]), never an event.
    File {
        /// The blob's content address.
        file_id: BlobId,
        /// The name it was sent under (a receiver saves it under a safe form of it).
        name: String,
        /// Its size in bytes.
        size: u64,
        /// Its MIME type, as the sender guessed it.
        mime: String,
    },
}

/// Why an op breaks the rules every replica checks before folding it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOp {
    /// The text is empty or only whitespace.
    #[error("the text is empty")]
    EmptyText,
    /// The text is too long.
    #[error("the text is {len} bytes, over the limit of {MAX_TEXT_BYTES}")]
    TextTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The text holds a control character other than a newline, or a bidi control (see
    /// [`crate::text::is_unsafe`]).
    #[error("the text holds the control character U+{0:04X}")]
    ControlChar(u32),
    /// The nickname is empty or only whitespace.
    #[error("the nickname is empty")]
    EmptyNick,
    /// The nickname is too long.
    #[error("the nickname is {len} characters, over the limit of {MAX_NICK_CHARS}")]
    NickTooLong {
        /// Its length in characters.
        len: usize,
    },
    /// The nickname holds a control or bidi character (newlines included).
    #[error("the nickname holds the control character U+{0:04X}")]
    NickControlChar(u32),
    /// The position key is not a valid fractional key.
    #[error("invalid position key ({len} bytes)")]
    BadPosition {
        /// Its length in bytes.
        len: usize,
    },
    /// A file offer's name, MIME type or size is out of bounds.
    #[error("bad file offer: {0}")]
    BadFile(&'static str),
    /// A message reference names seq 0 or the nil origin, which no event has.
    #[error("the referenced message does not exist (seq 0 or nil origin)")]
    BadReference,
}

/// Why a payload could not be turned into an op.
#[derive(Debug, thiserror::Error)]
pub enum DecodeOpError {
    /// The payload is in an op format this build does not read (likely a newer one).
    #[error("op format version {0} is not one this build reads (it reads {OP_FORMAT_VERSION})")]
    UnknownVersion(u16),
    /// The payload is too short to hold a version tag.
    #[error("a {0}-byte payload is too short for an op")]
    Truncated(usize),
    /// The bytes after the version tag are not a valid op.
    #[error("malformed op: {0}")]
    Malformed(#[from] CodecError),
    /// The op is newer than the version its payload claims: no honest writer does that.
    #[error("a {kind} op needs op format version {needs}, the payload says {version}")]
    TooNewForVersion {
        /// The op's kind.
        kind: &'static str,
        /// The version the op needs.
        needs: u16,
        /// The version the payload claims.
        version: u16,
    },
}

/// Why an op could not be built or encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeOpError {
    /// The op breaks a rule.
    #[error(transparent)]
    Invalid(#[from] InvalidOp),
    /// The encoder failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

fn check_text(text: &str) -> Result<(), InvalidOp> {
    if text.trim().is_empty() {
        return Err(InvalidOp::EmptyText);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(InvalidOp::TextTooLong { len: text.len() });
    }
    // Bidi controls too: a reversed text must not be shown (see `crate::text`).
    match text
        .chars()
        .find(|&c| crate::text::is_unsafe(c) && c != '\n')
    {
        Some(c) => Err(InvalidOp::ControlChar(u32::from(c))),
        None => Ok(()),
    }
}

fn check_nick(name: &str) -> Result<(), InvalidOp> {
    if name.trim().is_empty() {
        return Err(InvalidOp::EmptyNick);
    }
    let len = name.chars().count();
    if len > MAX_NICK_CHARS {
        return Err(InvalidOp::NickTooLong { len });
    }
    match crate::text::find_unsafe(name) {
        Some(c) => Err(InvalidOp::NickControlChar(u32::from(c))),
        None => Ok(()),
    }
}

fn check_pos(pos: &str) -> Result<(), InvalidOp> {
    if fractional::is_valid_key(pos) {
        Ok(())
    } else {
        Err(InvalidOp::BadPosition { len: pos.len() })
    }
}

impl AppOp {
    /// A chat message, trimmed and checked.
    pub fn chat(text: &str) -> Result<AppOp, InvalidOp> {
        AppOp::Chat {
            text: text.trim().to_string(),
        }
        .validated()
    }

    /// A nickname change, trimmed and checked.
    pub fn nick(name: &str) -> Result<AppOp, InvalidOp> {
        AppOp::Nick {
            name: name.trim().to_string(),
        }
        .validated()
    }

    /// A new list item, its text trimmed and checked. See also
    /// [`Model::new_item_op`](super::Model::new_item_op), which picks the position.
    pub fn list_add(item: Uuid, text: &str, pos: &str) -> Result<AppOp, InvalidOp> {
        AppOp::ListAdd {
            item,
            text: text.trim().to_string(),
            pos: pos.to_string(),
        }
        .validated()
    }

    /// A new text for an item, trimmed and checked.
    pub fn list_edit(item: Uuid, text: &str) -> Result<AppOp, InvalidOp> {
        AppOp::ListEdit {
            item,
            text: text.trim().to_string(),
        }
        .validated()
    }

    /// An item checked (`done`) or unchecked.
    pub fn list_check(item: Uuid, done: bool) -> AppOp {
        AppOp::ListCheck { item, done }
    }

    /// An item removed.
    pub fn list_remove(item: Uuid) -> AppOp {
        AppOp::ListRemove { item }
    }

    /// A new text for the author's own message `seq`, trimmed and checked. See also
    /// [`Model::edit_op`](super::Model::edit_op), which checks the message is yours.
    pub fn chat_edit(seq: u64, text: &str) -> Result<AppOp, InvalidOp> {
        AppOp::ChatEdit {
            seq,
            text: text.trim().to_string(),
        }
        .validated()
    }

    /// The author's own message `seq` deleted.
    pub fn chat_delete(seq: u64) -> Result<AppOp, InvalidOp> {
        AppOp::ChatDelete { seq }.validated()
    }

    /// A `/me` action, trimmed and checked.
    pub fn action(text: &str) -> Result<AppOp, InvalidOp> {
        AppOp::Action {
            text: text.trim().to_string(),
        }
        .validated()
    }

    /// A reply to message `(origin, seq)`, trimmed and checked.
    pub fn reply(origin: NodeId, seq: u64, text: &str) -> Result<AppOp, InvalidOp> {
        AppOp::Reply {
            origin,
            seq,
            text: text.trim().to_string(),
        }
        .validated()
    }

    /// The oldest op format version that has this op: the version it is written with.
    pub fn min_version(&self) -> u16 {
        match self {
            AppOp::Chat { .. }
            | AppOp::Nick { .. }
            | AppOp::ListAdd { .. }
            | AppOp::ListEdit { .. }
            | AppOp::ListCheck { .. }
            | AppOp::ListMove { .. }
            | AppOp::ListRemove { .. } => 1,
            AppOp::ChatEdit { .. }
            | AppOp::ChatDelete { .. }
            | AppOp::Action { .. }
            | AppOp::Reply { .. } => 2,
            AppOp::File { .. } => 3,
        }
    }

    fn validated(self) -> Result<AppOp, InvalidOp> {
        self.validate()?;
        Ok(self)
    }

    /// Checks the rules every replica applies to a received op before folding it: texts
    /// non-empty after trimming, at most [`MAX_TEXT_BYTES`], no control characters but
    /// newlines; nicknames at most [`MAX_NICK_CHARS`] and no control characters at all;
    /// positions valid fractional keys; message references a non-nil origin and a seq of at
    /// least 1.
    pub fn validate(&self) -> Result<(), InvalidOp> {
        match self {
            AppOp::Chat { text } | AppOp::ListEdit { text, .. } | AppOp::Action { text } => {
                check_text(text)
            }
            AppOp::ChatEdit { seq, text } => {
                check_seq(*seq)?;
                check_text(text)
            }
            AppOp::ChatDelete { seq } => check_seq(*seq),
            AppOp::Reply { origin, seq, text } => {
                if origin.is_nil() {
                    return Err(InvalidOp::BadReference);
                }
                check_seq(*seq)?;
                check_text(text)
            }
            AppOp::Nick { name } => check_nick(name),
            AppOp::ListAdd { text, pos, .. } => {
                check_text(text)?;
                check_pos(pos)
            }
            AppOp::ListMove { pos, .. } => check_pos(pos),
            AppOp::ListCheck { .. } | AppOp::ListRemove { .. } => Ok(()),
            AppOp::File {
                name, size, mime, ..
            } => check_file(name, *size, mime),
        }
    }

    /// A short name of the op's kind, for logs and the events panel.
    pub fn kind(&self) -> &'static str {
        match self {
            AppOp::Chat { .. } => "chat",
            AppOp::Nick { .. } => "nick",
            AppOp::ListAdd { .. } => "list_add",
            AppOp::ListEdit { .. } => "list_edit",
            AppOp::ListCheck { .. } => "list_check",
            AppOp::ListMove { .. } => "list_move",
            AppOp::ListRemove { .. } => "list_remove",
            AppOp::ChatEdit { .. } => "chat_edit",
            AppOp::ChatDelete { .. } => "chat_delete",
            AppOp::Action { .. } => "action",
            AppOp::Reply { .. } => "reply",
            AppOp::File { .. } => "file",
        }
    }

    /// The event payload for this op, after checking it (an invalid op would be ignored by
    /// every replica, so it is refused here instead).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeOpError> {
        self.validate()?;
        Ok(self.encode_unchecked()?)
    }

    /// The payload without the checks, for tests that need what a faulty peer would send.
    pub(crate) fn encode_unchecked(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = self.min_version().to_le_bytes().to_vec();
        codec::encode_into(self, &mut out)?;
        Ok(out)
    }

    /// Reads an op from an event payload. The op is not checked: see [`AppOp::validate`].
    pub fn decode(payload: &[u8]) -> Result<AppOp, DecodeOpError> {
        let (Some(&lo), Some(&hi)) = (payload.first(), payload.get(1)) else {
            return Err(DecodeOpError::Truncated(payload.len()));
        };
        let version = u16::from_le_bytes([lo, hi]);
        if !(1..=OP_FORMAT_VERSION).contains(&version) {
            return Err(DecodeOpError::UnknownVersion(version));
        }
        let body = payload.get(2..).unwrap_or_default();
        let op: AppOp = codec::decode(body, MAX_PAYLOAD_BYTES)?;
        // A version-1 payload holding a version-2 op would be misread by a version-1 build
        // as garbage; refusing it here keeps every build's reading of a payload the same.
        if op.min_version() > version {
            return Err(DecodeOpError::TooNewForVersion {
                kind: op.kind(),
                needs: op.min_version(),
                version,
            });
        }
        Ok(op)
    }

    /// The op as JSON, tagged by `"op"` with the [`AppOp::kind`] name, for `export`.
    pub fn to_json(&self) -> Value {
        match self {
            AppOp::Chat { text } => json!({ "op": self.kind(), "text": text }),
            AppOp::Nick { name } => json!({ "op": self.kind(), "name": name }),
            AppOp::ListAdd { item, text, pos } => {
                json!({ "op": self.kind(), "item": item, "text": text, "pos": pos })
            }
            AppOp::ListEdit { item, text } => {
                json!({ "op": self.kind(), "item": item, "text": text })
            }
            AppOp::ListCheck { item, done } => {
                json!({ "op": self.kind(), "item": item, "done": done })
            }
            AppOp::ListMove { item, pos } => {
                json!({ "op": self.kind(), "item": item, "pos": pos })
            }
            AppOp::ListRemove { item } => json!({ "op": self.kind(), "item": item }),
            AppOp::ChatEdit { seq, text } => json!({ "op": self.kind(), "seq": seq, "text": text }),
            AppOp::ChatDelete { seq } => json!({ "op": self.kind(), "seq": seq }),
            AppOp::Action { text } => json!({ "op": self.kind(), "text": text }),
            AppOp::Reply { origin, seq, text } => json!({
                "op": self.kind(),
                "origin": origin.to_string(),
                "seq": seq,
                "text": text,
            }),
            AppOp::File {
                file_id,
                name,
                size,
                mime,
            } => json!({
                "op": self.kind(),
                "file_id": file_id.to_hex(),
                "name": name,
                "size": size,
                "mime": mime,
            }),
        }
    }
}

fn check_file(name: &str, size: u64, mime: &str) -> Result<(), InvalidOp> {
    if name.trim().is_empty() || name.len() > MAX_FILE_NAME_BYTES {
        return Err(InvalidOp::BadFile("the name is empty or too long"));
    }
    if crate::text::find_unsafe(name).is_some() {
        return Err(InvalidOp::BadFile("the name holds a control character"));
    }
    if size > MAX_BLOB_SIZE {
        return Err(InvalidOp::BadFile("the size is over 64 GiB"));
    }
    if mime.len() > MAX_MIME_BYTES || !mime.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidOp::BadFile(
            "the MIME type is not short printable ASCII",
        ));
    }
    Ok(())
}

impl AppOp {
    /// A file offer, checked. The name is the one shown; receivers save under
    /// [`crate::blobs::safe_name`] of it.
    pub fn file(file_id: BlobId, name: &str, size: u64, mime: &str) -> Result<AppOp, InvalidOp> {
        AppOp::File {
            file_id,
            name: name.to_string(),
            size,
            mime: mime.to_string(),
        }
        .validated()
    }
}

fn check_seq(seq: u64) -> Result<(), InvalidOp> {
    if seq == 0 {
        Err(InvalidOp::BadReference)
    } else {
        Ok(())
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A payload as JSON for `export`: the decoded op (with an `"invalid"` reason if it breaks
/// the rules); `{"op": "identity", "key": "<hex>"}` for an origin's identity event;
/// `{"op": "unsupported", "version": V}` for an op format this build does not read (never a
/// guess at its content); `{"op": "undecodable", ...}` for anything else.
pub fn payload_json(payload: &[u8]) -> Value {
    if crate::auth::is_identity_payload(payload) {
        return match crate::auth::identity_key_of(payload) {
            Some(key) => json!({ "op": "identity", "key": hex(&key) }),
            None => {
                json!({ "op": "undecodable", "error": "bad identity key", "len": payload.len() })
            }
        };
    }
    match AppOp::decode(payload) {
        Ok(op) => {
            let mut v = op.to_json();
            if let (Err(e), Some(obj)) = (op.validate(), v.as_object_mut()) {
                // An invalid op's text may hold what must never reach a terminal (a bidi
                // override survives JSON): shown escaped (see `crate::text`).
                for field in obj.values_mut() {
                    if let Value::String(text) = field {
                        *text = crate::text::escape(text).into_owned();
                    }
                }
                obj.insert("invalid".into(), Value::String(e.to_string()));
            }
            v
        }
        Err(DecodeOpError::UnknownVersion(version)) => {
            json!({ "op": "unsupported", "version": version })
        }
        Err(e) => json!({ "op": "undecodable", "error": e.to_string(), "len": payload.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_control_characters_make_an_op_invalid_and_are_exported_escaped() {
        assert!(AppOp::chat("evil\u{202e}txt").is_err());
        assert!(AppOp::chat("two\nlines").is_ok());
        assert!(AppOp::nick("\u{2066}bob").is_err());
        let op = AppOp::Nick {
            name: "\u{202e}bob".into(),
        };
        let json = payload_json(&op.encode_unchecked().unwrap());
        assert_eq!(json["name"], "\\u{202e}bob");
        assert!(json["invalid"].is_string());
    }

    fn all_ops() -> Vec<AppOp> {
        let item = Uuid::from_u128(42);
        vec![
            AppOp::Chat {
                text: "hi\nthere".into(),
            },
            AppOp::Nick { name: "ann".into() },
            AppOp::ListAdd {
                item,
                text: "milk".into(),
                pos: "V".into(),
            },
            AppOp::ListEdit {
                item,
                text: "oat milk".into(),
            },
            AppOp::ListCheck { item, done: true },
            AppOp::ListMove {
                item,
                pos: "0V".into(),
            },
            AppOp::ListRemove { item },
            AppOp::ChatEdit {
                seq: 3,
                text: "fixed".into(),
            },
            AppOp::ChatDelete { seq: 3 },
            AppOp::Action {
                text: "waves".into(),
            },
            AppOp::Reply {
                origin: NodeId::from_u128(7),
                seq: 2,
                text: "yes".into(),
            },
            AppOp::File {
                file_id: BlobId([0xab; 32]),
                name: "notes.txt".into(),
                size: 300,
                mime: "text/plain".into(),
            },
        ]
    }

    #[test]
    fn file_offers_are_checked() {
        let id = BlobId([1; 32]);
        assert!(AppOp::file(id, "a.txt", 5, "text/plain").is_ok());
        assert!(AppOp::file(id, " ", 5, "text/plain").is_err());
        assert!(AppOp::file(id, "a\u{202e}txt", 5, "").is_err());
        assert!(AppOp::file(id, &"a".repeat(256), 5, "").is_err());
        assert!(AppOp::file(id, "a", MAX_BLOB_SIZE + 1, "").is_err());
        assert!(AppOp::file(id, "a", 5, "text/plain; x").is_err());
        // A hostile name is shown escaped nowhere: it is refused by every replica.
        assert!(AppOp::file(id, "../x\n", 5, "").is_err());
    }

    #[test]
    fn every_op_round_trips_through_a_payload() {
        for op in all_ops() {
            let payload = op.encode().unwrap();
            assert_eq!(&payload[..2], &op.min_version().to_le_bytes());
            assert!(op.min_version() <= OP_FORMAT_VERSION);
            assert_eq!(AppOp::decode(&payload).unwrap(), op);
        }
    }

    #[test]
    fn old_ops_keep_version_1_so_older_builds_still_read_them() {
        for op in &all_ops()[..7] {
            assert_eq!(op.min_version(), 1, "{}", op.kind());
        }
        for op in &all_ops()[7..11] {
            assert_eq!(op.min_version(), 2, "{}", op.kind());
        }
        for op in &all_ops()[11..] {
            assert_eq!(op.min_version(), 3, "{}", op.kind());
        }
    }

    #[test]
    fn unknown_version_is_unsupported_never_a_guess() {
        for v in [0u16, OP_FORMAT_VERSION + 1, u16::MAX] {
            let mut payload = AppOp::Chat { text: "x".into() }.encode().unwrap();
            payload[..2].copy_from_slice(&v.to_le_bytes());
            assert!(matches!(
                AppOp::decode(&payload),
                Err(DecodeOpError::UnknownVersion(got)) if got == v
            ));
            assert_eq!(
                payload_json(&payload),
                json!({ "op": "unsupported", "version": v })
            );
        }
    }

    #[test]
    fn a_new_op_under_an_old_version_tag_is_refused() {
        let mut payload = AppOp::action("waves").unwrap().encode().unwrap();
        payload[..2].copy_from_slice(&1u16.to_le_bytes());
        assert!(matches!(
            AppOp::decode(&payload),
            Err(DecodeOpError::TooNewForVersion {
                kind: "action",
                needs: 2,
                version: 1
            })
        ));
        assert_eq!(payload_json(&payload)["op"], "undecodable");
    }

    #[test]
    fn the_identity_event_is_named_with_its_key() {
        let key = [0xabu8; crate::auth::PUBLIC_KEY_LEN];
        let payload = crate::auth::identity_payload(&key);
        assert_eq!(
            payload_json(&payload),
            json!({ "op": "identity", "key": "ab".repeat(crate::auth::PUBLIC_KEY_LEN) })
        );
        let short = &payload[..payload.len() - 1];
        assert_eq!(payload_json(short)["op"], "undecodable");
    }

    #[test]
    fn references_and_texts_of_the_new_ops_are_checked() {
        assert_eq!(AppOp::chat_edit(0, "x"), Err(InvalidOp::BadReference));
        assert_eq!(AppOp::chat_edit(1, " "), Err(InvalidOp::EmptyText));
        assert_eq!(AppOp::chat_delete(0), Err(InvalidOp::BadReference));
        assert_eq!(
            AppOp::action("a\u{1b}[2J"),
            Err(InvalidOp::ControlChar(0x1b))
        );
        assert_eq!(
            AppOp::reply(NodeId::from_u128(0), 1, "x"),
            Err(InvalidOp::BadReference)
        );
        assert_eq!(
            AppOp::reply(NodeId::from_u128(1), 0, "x"),
            Err(InvalidOp::BadReference)
        );
        assert!(AppOp::reply(NodeId::from_u128(1), 1, "ok").is_ok());
        assert_eq!(
            AppOp::chat_edit(1, &"x".repeat(MAX_TEXT_BYTES + 1)),
            Err(InvalidOp::TextTooLong {
                len: MAX_TEXT_BYTES + 1
            })
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        assert!(matches!(
            AppOp::decode(&[]),
            Err(DecodeOpError::Truncated(0))
        ));
        assert!(matches!(
            AppOp::decode(&[1]),
            Err(DecodeOpError::Truncated(1))
        ));
        let mut payload = OP_FORMAT_VERSION.to_le_bytes().to_vec();
        payload.extend_from_slice(&[200, 1, 2, 3]);
        assert!(matches!(
            AppOp::decode(&payload),
            Err(DecodeOpError::Malformed(_))
        ));
        let mut huge = OP_FORMAT_VERSION.to_le_bytes().to_vec();
        huge.resize(MAX_PAYLOAD_BYTES + 10, 0);
        assert!(matches!(
            AppOp::decode(&huge),
            Err(DecodeOpError::Malformed(CodecError::TooLarge { .. }))
        ));
        assert_eq!(payload_json(&payload)["op"], "undecodable");
    }

    #[test]
    fn text_rules() {
        assert_eq!(AppOp::chat("   "), Err(InvalidOp::EmptyText));
        assert_eq!(AppOp::chat("a\tb"), Err(InvalidOp::ControlChar(9)));
        assert_eq!(AppOp::chat("a\u{7f}"), Err(InvalidOp::ControlChar(0x7f)));
        assert!(AppOp::chat("two\nlines").is_ok());
        assert_eq!(
            AppOp::chat("  padded  "),
            Ok(AppOp::Chat {
                text: "padded".into()
            })
        );
        let max = "é".repeat(MAX_TEXT_BYTES / 2);
        assert!(AppOp::chat(&max).is_ok());
        assert_eq!(
            AppOp::chat(&format!("{max}x")),
            Err(InvalidOp::TextTooLong {
                len: MAX_TEXT_BYTES + 1
            })
        );
    }

    #[test]
    fn nick_rules() {
        assert_eq!(AppOp::nick(""), Err(InvalidOp::EmptyNick));
        assert_eq!(AppOp::nick("a\nb"), Err(InvalidOp::NickControlChar(10)));
        assert!(AppOp::nick(&"é".repeat(MAX_NICK_CHARS)).is_ok());
        assert_eq!(
            AppOp::nick(&"é".repeat(MAX_NICK_CHARS + 1)),
            Err(InvalidOp::NickTooLong {
                len: MAX_NICK_CHARS + 1
            })
        );
    }

    #[test]
    fn positions_are_checked() {
        let item = Uuid::from_u128(1);
        assert!(AppOp::list_add(item, "x", "V").is_ok());
        assert_eq!(
            AppOp::list_add(item, "x", "V0"),
            Err(InvalidOp::BadPosition { len: 2 })
        );
        let bad_move = AppOp::ListMove {
            item,
            pos: String::new(),
        };
        assert!(matches!(
            bad_move.encode(),
            Err(EncodeOpError::Invalid(InvalidOp::BadPosition { len: 0 }))
        ));
    }

    #[test]
    fn the_largest_valid_op_fits_the_payload_limit() {
        let op = AppOp::ListAdd {
            item: Uuid::from_u128(u128::MAX),
            text: "x".repeat(MAX_TEXT_BYTES),
            pos: "z".repeat(fractional::MAX_KEY_LEN),
        };
        let payload = op.encode().unwrap();
        assert!(payload.len() <= MAX_PAYLOAD_BYTES);
        assert_eq!(AppOp::decode(&payload).unwrap(), op);
    }

    #[test]
    fn json_names_the_op_and_flags_invalid_ones() {
        let v = payload_json(&all_ops()[2].encode().unwrap());
        assert_eq!(v["op"], "list_add");
        assert_eq!(v["item"], Uuid::from_u128(42).to_string());
        assert_eq!(v["pos"], "V");
        assert!(v.get("invalid").is_none());
        let bad = AppOp::Chat { text: " ".into() }.encode_unchecked().unwrap();
        let v = payload_json(&bad);
        assert_eq!(v["op"], "chat");
        assert_eq!(v["invalid"], "the text is empty");
    }

    const APP_PROTOCOL_MD: &str = include_str!("../../../docs/APP-PROTOCOL.md");

    fn unhex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        assert!(
            text.chars()
                .all(|c| c.is_ascii_hexdigit() || c == ' ' || c == '|')
        );
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// The `(json, payload)` pairs of the doc's examples section.
    fn doc_examples() -> Vec<(Value, Vec<u8>)> {
        let section = APP_PROTOCOL_MD.split("## 5. Examples").nth(1).unwrap();
        let block = section
            .split("```text")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
        lines
            .chunks(2)
            .map(|pair| (serde_json::from_str(pair[0]).unwrap(), unhex(pair[1])))
            .collect()
    }

    #[test]
    fn the_protocol_doc_examples_decode_to_their_json() {
        let examples = doc_examples();
        for (expected, payload) in &examples {
            assert_eq!(&payload_json(payload), expected);
            if let Ok(op) = AppOp::decode(payload) {
                // Canonical: the op encodes back to the very bytes of the doc.
                assert_eq!(&op.encode().unwrap(), payload, "{expected}");
            }
        }
        // One example per op, and for the two payloads that are not ops.
        let mut kinds: Vec<&str> = examples
            .iter()
            .map(|(v, _)| v["op"].as_str().unwrap())
            .collect();
        kinds.sort_unstable();
        let mut wanted: Vec<&str> = all_ops().iter().map(AppOp::kind).collect();
        wanted.extend(["identity", "unsupported"]);
        wanted.sort_unstable();
        assert_eq!(kinds, wanted);
    }
}
