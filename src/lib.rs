//! # gossip
//!
//! Event sync by gossip, with vector-clock causality. Nodes exchange events in three
//! phases (digest -> missing events + our clock -> final push), push new events eagerly,
//! and repair what push missed with periodic rounds and anti-entropy.
//!
//! Layers, each importing only those below it:
//! - [`protocol`]: the I/O-free core (events, clocks, messages, exchange, peer selection)
//!   and its [`protocol::Engine`], which makes every gossip decision of a node;
//! - [`store`]: the [`store::EventStore`] trait and its implementations;
//! - [`transport`]: the [`transport::Transport`] trait and its implementations;
//! - [`node`]: [`node::GossipNode`], the async dispatcher that runs the engine over a
//!   store and a transport;
//! - [`sim`]: the same engine over a virtual network and clock (the simulator);
//! - [`metrics`]: Prometheus metrics of a running node, read through its public API;
//! - [`app`]: the app model of gossip-chat (chat and a shared list as a CRDT), pure code on
//!   top of [`protocol::Event`].
#![forbid(unsafe_code)]
// Input from the network, the disk or the user never panics the node: no unwrap/expect
// outside tests (tests may, and say what they expected).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod blobs;
pub mod protocol;

pub use protocol::{ClockOrdering, Event, Message, NodeId, PeerSelectionStrategy, VectorClock};
pub mod discovery;
pub mod metrics;
pub mod node;
pub mod sim;
pub mod store;
pub mod text;
pub mod transport;

pub use node::{GossipConfig, GossipError, GossipNode};

/// The README's Rust blocks, the "Use the library" quick start among them, run as doc tests
/// so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
