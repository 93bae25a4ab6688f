//! Counters of a node, and the result of one exchange: the engine keeps them; this module
//! keeps their old path.

pub use crate::protocol::engine::{Direction, ExchangeResult, GossipStats};
