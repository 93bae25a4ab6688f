//! The app model: chat, nicknames and a shared list, as a CRDT folded from the event set.
//!
//! Pure code: no I/O, no clocks, no async, and no imports beyond [`crate::protocol`]. The
//! app turns user actions into [`AppOp`]s, encodes them into event payloads
//! ([`AppOp::encode`]), and folds every event it holds or receives into a [`Model`]. Why
//! replicas that hold the same events show the same state is argued in
//! `docs/ALGORITHM-app.md`.

pub mod chat;
pub mod fold;
pub mod fractional;
pub mod list;
pub mod nick;
pub mod op;
mod seen;
pub mod stamp;

#[cfg(test)]
mod tests;

pub use chat::{ChatLine, DELETED_TEXT, FileOffer, Quote, UNSUPPORTED_TEXT};
pub use fold::{Applied, ChatOpError, Counts, Model};
pub use list::{ItemLookupError, ItemView, ListOpError, MoveTo};
pub use op::{AppOp, DecodeOpError, EncodeOpError, InvalidOp, OP_FORMAT_VERSION, payload_json};
pub(crate) use seen::Seen;
