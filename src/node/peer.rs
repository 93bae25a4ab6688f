//! The peer table lives in the engine ([`crate::protocol::engine::liveness`]); this module
//! keeps its old path.

pub use crate::protocol::engine::liveness::{
    OFFLINE_AFTER_FAILURES, PeerInfo, PeerState, PeerTable, Transition,
};
