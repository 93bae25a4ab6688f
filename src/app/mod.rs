//! The app of gossip-chat: chat, nicknames and a shared list, as a CRDT folded from the
//! event set.
//!
//! The model (ops, CRDT, [`Model`]) and [`view`] are pure code: no I/O, no clocks, no
//! async. The app turns user actions into [`AppOp`]s,
//! encodes them into event payloads ([`AppOp::encode`]), and folds every event it holds or
//! receives into a [`Model`]. Why replicas that hold the same events show the same state is
//! argued in `docs/ALGORITHM-app.md`.

pub mod chat;
pub mod cli;
pub mod demo;
pub mod fractional;
pub mod headless;
pub mod interactive;
pub mod list;
pub mod logging;
pub mod model;
pub mod nick;
pub mod op;
mod seen;
pub mod session;
pub mod stamp;
pub mod store_kind;
pub mod tui;
pub mod view;

#[cfg(test)]
mod tests;

pub use chat::ChatLine;
pub use list::{ItemLookupError, ItemView, ListOpError, MoveTo};
pub use model::{Applied, Counts, Model};
pub use op::{AppOp, DecodeOpError, EncodeOpError, InvalidOp, OP_FORMAT_VERSION, payload_json};
