//! The library's errors.

use std::time::Duration;

use crate::protocol::NodeId;
use crate::store::StoreError;
use crate::transport::TransportError;

/// A rule of [`super::GossipConfig::validate`] that a config breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The node id is nil.
    #[error("node id must not be empty (nil)")]
    EmptyNodeId,
    /// A duration is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// A count is zero.
    #[error("{0} must be greater than zero")]
    ZeroCount(&'static str),
    /// The timeout does not exceed the interval.
    #[error("gossip_timeout ({timeout:?}) must be greater than gossip_interval ({interval:?})")]
    TimeoutNotAboveInterval {
        /// The timeout.
        timeout: Duration,
        /// The interval.
        interval: Duration,
    },
    /// Fanout over [`super::config::MAX_FANOUT`].
    #[error("fanout {0} is over the maximum of 50")]
    FanoutTooLarge(usize),
    /// Message size under [`super::config::MIN_MESSAGE_SIZE`].
    #[error("max_message_size_bytes {0} is under the minimum of 16384")]
    MessageTooSmall(usize),
}

/// Every error the library returns.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The node is not started (or was stopped).
    #[error("the node is not started")]
    NotStarted,
    /// An event payload was empty.
    #[error("an event payload must not be empty")]
    EmptyPayload,
    /// An event is too large to ever fit in a message.
    #[error("event of {size} encoded bytes is over the limit of {limit} bytes")]
    EventTooLarge {
        /// Encoded size of the event.
        size: usize,
        /// The largest encoded event allowed.
        limit: usize,
    },
    /// The peer is not known.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// A peer is this node itself.
    #[error("a node cannot be its own peer")]
    SelfPeer,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A peer broke the protocol (an unexpected message, a conflicting event, ...).
    #[error("protocol: {0}")]
    Protocol(String),
}
