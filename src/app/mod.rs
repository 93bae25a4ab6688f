//! The app of gossip-chat: chat, nicknames and a shared list.
//!
//! - [`model`]: the CRDT folded from the event set (pure; imports only the protocol);
//! - [`activity`]: typing and presence from ephemeral notes (pure; never stored);
//! - [`runtime`]: the command line, the session (store, transport, discovery, node) and the
//!   headless and interactive front ends;
//! - [`tui`]: the ratatui screens.

pub mod activity;
pub mod model;
pub mod runtime;
pub mod tui;

pub use model::{
    AppOp, Applied, ChatLine, Counts, DecodeOpError, EncodeOpError, InvalidOp, ItemLookupError,
    ItemView, ListOpError, Model, MoveTo, OP_FORMAT_VERSION, payload_json,
};
