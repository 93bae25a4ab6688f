//! The running app: the command line, the session that wires store, transport, discovery
//! and node together, and the two front ends that drive it (`--headless` and the TUI).

pub mod addrs;
pub mod cli;
pub mod command;
pub mod config;
pub mod demo;
pub mod export;
pub mod feed;
pub mod headless;
pub mod interactive;
pub mod known_peers;
pub mod logging;
pub mod outbox;
pub mod roster;
pub mod session;
pub mod stdin;
pub mod store_kind;
pub mod view;
