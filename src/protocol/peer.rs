//! A peer as the protocol and the transports know it: its id and where it listens.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::event::NodeId;

/// Where a peer can be reached, in the transport's own notation (`"10.0.0.2:4000"` for TCP,
/// any name for the memory transport). Opaque to the protocol.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerAddr(pub String);

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerAddr({})", self.0)
    }
}

impl From<&str> for PeerAddr {
    fn from(s: &str) -> Self {
        PeerAddr(s.to_string())
    }
}

impl From<String> for PeerAddr {
    fn from(s: String) -> Self {
        PeerAddr(s)
    }
}

/// A peer: its node id and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Peer {
    /// The peer's node id.
    pub id: NodeId,
    /// Where it listens.
    pub addr: PeerAddr,
}

impl Peer {
    /// A peer.
    pub fn new(id: NodeId, addr: impl Into<PeerAddr>) -> Self {
        Peer {
            id,
            addr: addr.into(),
        }
    }
}
