//! Transports: how messages travel between nodes.
//!
//! A transport delivers what arrives to the node through a bounded channel of [`Inbound`]
//! items, and carries the node's requests (a digest that expects a response) and one-way
//! sends (pushes).

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::codec::CodecError;
use crate::protocol::{Message, NodeId};

pub mod codec;
#[cfg(feature = "http")]
pub mod http;
pub mod memory;
pub mod tcp;

pub use crate::protocol::peer::{Peer, PeerAddr};
pub use memory::{MemoryNetwork, MemoryTransport};
pub use tcp::{PeerLinkStats, TcpConfig, TcpTransport};

/// The way back for a request's response.
#[derive(Debug)]
pub struct Reply(oneshot::Sender<Message>);

impl Reply {
    /// A reply handle and the receiver the transport awaits.
    pub fn channel() -> (Reply, oneshot::Receiver<Message>) {
        let (tx, rx) = oneshot::channel();
        (Reply(tx), rx)
    }

    /// Sends the response; false if the requester is gone.
    pub fn send(self, message: Message) -> bool {
        self.0.send(message).is_ok()
    }
}

/// What a transport hands to its node.
#[derive(Debug)]
pub enum Inbound {
    /// A message from a peer; `reply` is set when the sender awaits a response.
    Message {
        /// The sender, with the address it listens on.
        from: Peer,
        /// The message.
        message: Message,
        /// Where the response goes, for requests.
        reply: Option<Reply>,
        /// Bytes the message took on the wire (for counters).
        wire_bytes: usize,
    },
    /// A peer's connection closed (it quit or crashed): the node marks it offline at once,
    /// instead of waiting for exchanges to fail.
    Disconnected {
        /// The peer.
        peer: NodeId,
        /// Why, as the transport saw it.
        reason: String,
    },
    /// Input that was refused (bad frame, failed handshake, ...): the connection was
    /// dropped. The node counts it and reports it on its exchange stream.
    Rejected {
        /// The remote address.
        addr: PeerAddr,
        /// The peer, if it had identified itself.
        peer: Option<NodeId>,
        /// What was wrong.
        error: TransportError,
    },
}

/// Why a transport operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// No answer within the deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The peer could not be reached.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// The address tried.
        addr: PeerAddr,
        /// Why.
        reason: String,
    },
    /// The connection closed before the operation completed.
    #[error("connection closed: {0}")]
    Closed(String),
    /// A frame could not be decoded or encoded.
    #[error("bad frame: {0}")]
    Codec(String),
    /// A frame was valid but not allowed here (wrong type for the state, oversized, ...).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The handshake was refused (wrong version, wrong room, our own id, ...).
    #[error("handshake refused: {0}")]
    Handshake(String),
    /// The transport is not running.
    #[error("transport not started")]
    NotStarted,
    /// An operating-system error.
    #[error("i/o error: {0}")]
    Io(String),
}

impl From<CodecError> for TransportError {
    fn from(e: CodecError) -> Self {
        TransportError::Codec(e.to_string())
    }
}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        TransportError::Io(e.to_string())
    }
}

/// Moves messages between nodes.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Starts accepting messages; everything received goes to `inbound`.
    async fn start(&self, inbound: mpsc::Sender<Inbound>) -> Result<(), TransportError>;

    /// Stops accepting and closes connections. Idempotent.
    async fn stop(&self);

    /// Sends a request and waits for its response, at most `timeout`. Returns the response
    /// and the bytes it took on the wire.
    async fn request(
        &self,
        peer: &Peer,
        message: Message,
        timeout: Duration,
    ) -> Result<(Message, usize), TransportError>;

    /// Sends a message that expects no response.
    async fn send(&self, peer: &Peer, message: Message) -> Result<(), TransportError>;

    /// Where this transport listens (valid after `start`).
    fn local_addr(&self) -> PeerAddr;

    /// Addresses others can dial this node at (`ip:port`, most useful first), for its
    /// signed peer record; empty if unknown. The TCP transport learns them from its
    /// connections (the local end of each socket) when it listens on all interfaces.
    fn own_addrs(&self) -> Vec<String> {
        Vec::new()
    }
}
