//! Peer exchange records: "node N listens at these addresses", signed by N itself.
//!
//! Members pass each other the records of the live peers they know
//! ([`super::Message::Peers`]), so a node given one `--peer` meets the whole room. A record
//! is signed by the node it describes (its key hashes to its id, as in `Hello`), so a
//! relayer can only pass on what the owner said: nobody can point a member's id at another
//! address. The newest `epoch` of a node wins.
//!
//! What is pure lives here: the record, the bytes its signature covers, the shape rules
//! and the bounded book of records. Signing and verifying are the engine's
//! [`super::engine::Signer`]'s (ed25519 lives in `crate::auth`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::event::NodeId;

/// What a record's signature covers starts with this (domain separation).
pub const RECORD_DOMAIN: &[u8] = b"gossip-peer-record/1";

/// Addresses in one record at most.
pub const MAX_ADDRS: usize = 4;

/// Bytes of one address at most (`"[ipv6%scope]:port"` fits).
pub const MAX_ADDR_LEN: usize = 64;

/// Records a receiver looks at in one `Peers` message; the rest are ignored.
pub const MAX_RECORDS_PER_MESSAGE: usize = 64;

/// Records a node keeps at most.
pub const MAX_BOOK: usize = 512;

/// One node's signed address record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// The node it describes (and that signed it).
    pub node_id: NodeId,
    /// When the owner signed it (ms since the Unix epoch on its clock): newer wins.
    pub epoch: u64,
    /// Where it listens, `ip:port` with an IP literal, most useful first.
    pub addrs: Vec<String>,
    /// The owner's ed25519 public key (32 bytes); its SHA-256 gives `node_id`.
    pub public_key: Bytes,
    /// The owner's ed25519 signature over [`signed_bytes`] (64 bytes).
    pub sig: Bytes,
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// No address, or more than [`MAX_ADDRS`].
    #[error("a record holds 1 to {MAX_ADDRS} addresses, not {0}")]
    AddrCount(usize),
    /// An address that is not `ip:port` with a usable IP and port.
    #[error("not a usable ip:port address")]
    BadAddr,
    /// The signature does not verify, or the key is not the node's.
    #[error("the record is not signed by its node")]
    BadSignature,
    /// The record describes the receiver or the nil id.
    #[error("a record of this node or of nil")]
    NotAPeer,
}

/// The bytes a record's signature covers: [`RECORD_DOMAIN`] || node id (16 bytes) ||
/// epoch || address count || per address its length and bytes (integers u64 LE).
pub fn signed_bytes(node_id: NodeId, epoch: u64, addrs: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + addrs.iter().map(|a| 8 + a.len()).sum::<usize>());
    out.extend_from_slice(RECORD_DOMAIN);
    out.extend_from_slice(node_id.0.as_bytes());
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&(addrs.len() as u64).to_le_bytes());
    for a in addrs {
        out.extend_from_slice(&(a.len() as u64).to_le_bytes());
        out.extend_from_slice(a.as_bytes());
    }
    out
}

/// Parses an advertised address: an IP literal (no name to resolve) with a port, neither
/// unspecified nor multicast.
pub fn parse_addr(a: &str) -> Option<SocketAddr> {
    if a.len() > MAX_ADDR_LEN {
        return None;
    }
    let s: SocketAddr = a.parse().ok()?;
    let ip = s.ip();
    (s.port() != 0 && !ip.is_unspecified() && !ip.is_multicast()).then_some(s)
}

impl PeerRecord {
    /// The bytes its signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes(self.node_id, self.epoch, &self.addrs)
    }

    /// The shape rules (everything but the signature).
    pub fn check_shape(&self, me: NodeId) -> Result<(), RecordError> {
        if self.node_id == me || self.node_id.is_nil() {
            return Err(RecordError::NotAPeer);
        }
        if self.addrs.is_empty() || self.addrs.len() > MAX_ADDRS {
            return Err(RecordError::AddrCount(self.addrs.len()));
        }
        if self.addrs.iter().any(|a| parse_addr(a).is_none()) {
            return Err(RecordError::BadAddr);
        }
        Ok(())
    }

    /// The address to dial: the first IPv4 one (nodes listen on IPv4), else the first.
    pub fn dial_addr(&self) -> Option<&str> {
        self.addrs
            .iter()
            .find(|a| parse_addr(a).is_some_and(|s| s.is_ipv4()))
            .or_else(|| self.addrs.first())
            .map(String::as_str)
    }
}

/// The records a node holds: one per node, the newest epoch, at most [`MAX_BOOK`].
#[derive(Debug, Default, Clone)]
pub struct RecordBook {
    records: BTreeMap<NodeId, PeerRecord>,
}

impl RecordBook {
    /// Keeps `r` if it is newer than what is held of its node. Returns true if it was
    /// kept. When full, the record with the oldest epoch makes room (unless `r` is older).
    pub fn insert(&mut self, r: PeerRecord) -> bool {
        if let Some(held) = self.records.get(&r.node_id) {
            if held.epoch >= r.epoch {
                return false;
            }
        } else if self.records.len() >= MAX_BOOK {
            let oldest = self
                .records
                .values()
                .min_by_key(|h| h.epoch)
                .map(|h| (h.node_id, h.epoch));
            match oldest {
                Some((id, epoch)) if epoch < r.epoch => {
                    self.records.remove(&id);
                }
                _ => return false,
            }
        }
        self.records.insert(r.node_id, r);
        true
    }

    /// The record of one node.
    pub fn get(&self, id: &NodeId) -> Option<&PeerRecord> {
        self.records.get(id)
    }

    /// Forgets a node's record.
    pub fn remove(&mut self, id: &NodeId) {
        self.records.remove(id);
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u128, epoch: u64, addrs: &[&str]) -> PeerRecord {
        PeerRecord {
            node_id: NodeId::from_u128(id),
            epoch,
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
            public_key: Bytes::new(),
            sig: Bytes::new(),
        }
    }

    #[test]
    fn shape_rules() {
        let me = NodeId::from_u128(1);
        assert_eq!(rec(2, 1, &["10.0.0.2:4000"]).check_shape(me), Ok(()));
        assert_eq!(
            rec(1, 1, &["10.0.0.2:4000"]).check_shape(me),
            Err(RecordError::NotAPeer)
        );
        assert_eq!(
            rec(2, 1, &[]).check_shape(me),
            Err(RecordError::AddrCount(0))
        );
        let five = ["10.0.0.2:1"; 5];
        assert_eq!(
            rec(2, 1, &five).check_shape(me),
            Err(RecordError::AddrCount(5))
        );
        for bad in [
            "example.com:4000",
            "10.0.0.2:0",
            "0.0.0.0:4000",
            "224.0.0.251:5353",
            "10.0.0.2",
        ] {
            assert_eq!(
                rec(2, 1, &[bad]).check_shape(me),
                Err(RecordError::BadAddr),
                "{bad}"
            );
        }
        let r = rec(2, 1, &["[fe80::1]:4000", "10.0.0.2:4000"]);
        assert_eq!(r.dial_addr(), Some("10.0.0.2:4000"));
    }

    #[test]
    fn signed_bytes_cover_every_field() {
        let base = signed_bytes(NodeId::from_u128(2), 7, &["10.0.0.2:4000".into()]);
        assert!(base.starts_with(RECORD_DOMAIN));
        assert_ne!(
            base,
            signed_bytes(NodeId::from_u128(3), 7, &["10.0.0.2:4000".into()])
        );
        assert_ne!(
            base,
            signed_bytes(NodeId::from_u128(2), 8, &["10.0.0.2:4000".into()])
        );
        assert_ne!(
            base,
            signed_bytes(NodeId::from_u128(2), 7, &["10.0.0.3:4000".into()])
        );
        // Lengths are framed: two addresses never read as one.
        assert_ne!(
            signed_bytes(NodeId::from_u128(2), 7, &["a".into(), "b".into()]),
            signed_bytes(NodeId::from_u128(2), 7, &["ab".into()])
        );
    }

    #[test]
    fn the_book_keeps_the_newest_and_stays_bounded() {
        let mut b = RecordBook::default();
        assert!(b.insert(rec(2, 5, &["10.0.0.2:1"])));
        assert!(
            !b.insert(rec(2, 5, &["10.0.0.9:1"])),
            "same epoch: kept the first"
        );
        assert!(!b.insert(rec(2, 4, &["10.0.0.9:1"])), "older");
        assert!(b.insert(rec(2, 6, &["10.0.0.3:1"])));
        assert_eq!(b.get(&NodeId::from_u128(2)).unwrap().addrs[0], "10.0.0.3:1");
        for i in 0..(MAX_BOOK as u128 + 10) {
            b.insert(rec(100 + i, 10 + i as u64, &["10.0.0.2:1"]));
        }
        assert_eq!(b.len(), MAX_BOOK);
        assert!(
            b.get(&NodeId::from_u128(2)).is_none(),
            "the oldest made room"
        );
        assert!(
            !b.insert(rec(5, 1, &["10.0.0.2:1"])),
            "older than all: not kept"
        );
    }
}
