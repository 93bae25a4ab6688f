//! The `Hello` exchange that opens every connection, and the rules it enforces.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::io::{FrameReader, FrameWriter, ReadError};
use bytes::Bytes;

use crate::auth::{self, NodeIdentity, PUBLIC_KEY_LEN};
use crate::protocol::NodeId;
use crate::text::escape;
use crate::transport::TransportError;
use crate::transport::codec::{Frame, HANDSHAKE_FRAME_MAX, Hello, HelloAuth};

/// Our display name as later `Hello`s give it: a `/nick` changes it while the transport
/// runs (connections already open keep the name they were opened with; the nick event
/// itself tells their peers).
#[derive(Debug, Clone, Default)]
pub(super) struct Name(Arc<RwLock<String>>);

impl Name {
    /// The name now.
    pub(super) fn get(&self) -> String {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Gives later `Hello`s `name`.
    pub(super) fn set(&self, name: &str) {
        // A poisoned lock held a whole String: replacing it is always consistent.
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = name.to_string();
    }
}

impl From<&str> for Name {
    fn from(name: &str) -> Self {
        Name(Arc::new(RwLock::new(name.to_string())))
    }
}

/// Who we are, as our `Hello` says.
#[derive(Debug, Clone)]
pub(super) struct Identity {
    pub(super) node_id: NodeId,
    pub(super) room: String,
    pub(super) name: Name,
    pub(super) listen_port: u16,
    pub(super) protocol_version: u32,
    /// Our signing key: with it, on an encrypted connection, our Hello proves our node id
    /// and we demand the same proof from the peer.
    pub(super) signer: Option<NodeIdentity>,
}

impl Identity {
    /// Our Hello on a connection whose Noise handshake hash is `hash` (if encrypted).
    pub(super) fn hello(&self, hash: Option<&[u8]>) -> Hello {
        let auth = match (&self.signer, hash) {
            (Some(signer), Some(hash)) => Some(HelloAuth {
                public_key: Bytes::copy_from_slice(&signer.public_key()),
                signature: Bytes::copy_from_slice(&signer.sign_binding(hash)),
            }),
            _ => None,
        };
        Hello {
            protocol_version: self.protocol_version,
            node_id: self.node_id,
            room: self.room.clone(),
            listen_port: self.listen_port,
            name: self.name.get(),
            auth,
        }
    }

    /// Whether we talk to the sender of `theirs`; `expected` is the id we dialed, if known;
    /// `hash` is the connection's Noise handshake hash, if encrypted.
    pub(super) fn check(
        &self,
        theirs: &Hello,
        expected: Option<NodeId>,
        hash: Option<&[u8]>,
    ) -> Result<(), TransportError> {
        self.proof(theirs, hash)?;
        self.rules(theirs, expected)
    }

    /// Whether `theirs` proves its node id on this connection (true), or carries no proof
    /// where none is demanded (false). A proof that fails, or a missing one where we
    /// demand it, is an error. Only a proven id may ever be reported to the node: anyone
    /// can write another node's id into a `Hello`.
    pub(super) fn proof(
        &self,
        theirs: &Hello,
        hash: Option<&[u8]>,
    ) -> Result<bool, TransportError> {
        let refuse = |why: String| Err(TransportError::Handshake(why));
        match (&theirs.auth, hash) {
            (Some(a), Some(hash)) => {
                let key: [u8; PUBLIC_KEY_LEN] = a.public_key[..]
                    .try_into()
                    .map_err(|_| TransportError::Handshake("malformed public key".into()))?;
                if let Err(e) = auth::verify_binding(theirs.node_id, &key, hash, &a.signature) {
                    return refuse(format!("the peer's proof of node id failed: {e}"));
                }
                Ok(true)
            }
            (None, Some(_)) if self.signer.is_some() => refuse(format!(
                "node {} did not prove its node id (no identity key)",
                theirs.node_id
            )),
            _ => Ok(false),
        }
    }

    /// The rules every `Hello` must keep, proof aside.
    pub(super) fn rules(
        &self,
        theirs: &Hello,
        expected: Option<NodeId>,
    ) -> Result<(), TransportError> {
        let refuse = |why: String| Err(TransportError::Handshake(why));
        if theirs.protocol_version != self.protocol_version {
            return refuse(format!(
                "protocol version mismatch: the peer speaks version {}, we speak version {} \
                 (compare `gossip-chat --version` on both machines)",
                theirs.protocol_version, self.protocol_version
            ));
        }
        if theirs.room != self.room {
            return refuse(format!(
                "room \"{}\" is not ours (\"{}\")",
                escape(&theirs.room),
                escape(&self.room)
            ));
        }
        if theirs.node_id == self.node_id {
            return refuse("the peer claims our own node id".into());
        }
        if theirs.node_id.is_nil() {
            return refuse("the peer claims the nil node id".into());
        }
        if theirs.listen_port == 0 {
            return refuse("the peer announces listen port 0".into());
        }
        if let Some(id) = expected
            && id != theirs.node_id
        {
            return refuse(format!(
                "expected node {id} at this address, found {}",
                theirs.node_id
            ));
        }
        Ok(())
    }
}

/// A connection past its handshake.
pub(super) struct Established<R, W> {
    pub(super) reader: FrameReader<R>,
    pub(super) writer: FrameWriter<W>,
    pub(super) hello: Hello,
    /// Wire bytes of the Hello received and of the one sent.
    pub(super) bytes: (usize, usize),
    /// The Noise handshake hash, if the connection is encrypted.
    pub(super) hash: Option<Vec<u8>>,
}

/// A refused handshake: why, and who the peer is, if it proved its node id before a later
/// rule refused it.
pub(super) type Refusal = (TransportError, Option<NodeId>);

/// Checks an incoming connection's `Hello`, which must come first, within `io_timeout`.
/// A refused peer is told why with a `Bye` (best effort). On success our own `Hello` is
/// still to be sent.
pub(super) async fn accept<R, W>(
    mut reader: FrameReader<R>,
    mut writer: FrameWriter<W>,
    ours: &Identity,
    hash: Option<Vec<u8>>,
    io_timeout: Duration,
) -> Result<Established<R, W>, Refusal>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let deadline = Instant::now() + io_timeout;
    let (frame, n_in) = reader
        .next(deadline, io_timeout)
        .await
        .map_err(|e| (handshake_read_error(e, io_timeout), None))?;
    let hello = match frame {
        Frame::Hello(h) => h,
        Frame::Bye { reason } => {
            return Err((
                TransportError::Closed(format!("peer said bye before hello: {}", escape(&reason))),
                None,
            ));
        }
        other => {
            let e = TransportError::Protocol(format!("expected Hello, got {}", other.kind()));
            bye(&mut writer, &e, io_timeout).await;
            return Err((e, None));
        }
    };
    // The claimed id is reported with a refusal only once proven: a refused Hello in
    // another node's name must not touch that node's state.
    let proven = match ours.proof(&hello, hash.as_deref()) {
        Ok(proven) => proven,
        Err(e) => {
            bye(&mut writer, &e, io_timeout).await;
            return Err((e, None));
        }
    };
    if let Err(e) = ours.rules(&hello, None) {
        bye(&mut writer, &e, io_timeout).await;
        return Err((e, proven.then_some(hello.node_id)));
    }
    // Our Hello is not sent here: the caller queues it as the connection's first frame
    // after registering the connection, so that once the dialer has our Hello, the
    // connection is known here (and its loss is judged against every other link).
    Ok(Established {
        reader,
        writer,
        hello,
        bytes: (n_in, 0),
        hash,
    })
}

/// Opens a connection we dialed: our `Hello` first, then theirs within `io_timeout`.
pub(super) async fn dial<R, W>(
    mut reader: FrameReader<R>,
    mut writer: FrameWriter<W>,
    ours: &Identity,
    expected: Option<NodeId>,
    hash: Option<Vec<u8>>,
    io_timeout: Duration,
) -> Result<Established<R, W>, TransportError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let n_out = writer
        .send(
            &Frame::Hello(ours.hello(hash.as_deref())),
            HANDSHAKE_FRAME_MAX,
            io_timeout,
        )
        .await?;
    let deadline = Instant::now() + io_timeout;
    let (frame, n_in) = reader
        .next(deadline, io_timeout)
        .await
        .map_err(|e| handshake_read_error(e, io_timeout))?;
    let hello = match frame {
        Frame::Hello(h) => h,
        Frame::Bye { reason } => {
            return Err(TransportError::Handshake(format!(
                "the peer refused us: {}",
                escape(&reason)
            )));
        }
        other => {
            let e = TransportError::Protocol(format!("expected Hello, got {}", other.kind()));
            bye(&mut writer, &e, io_timeout).await;
            return Err(e);
        }
    };
    if let Err(e) = ours.check(&hello, expected, hash.as_deref()) {
        bye(&mut writer, &e, io_timeout).await;
        return Err(e);
    }
    Ok(Established {
        reader,
        writer,
        hello,
        bytes: (n_in, n_out),
        hash,
    })
}

/// A failed read of the first frame: silence until the deadline is a timeout (not idleness),
/// and a peer that hangs up says so.
fn handshake_read_error(e: ReadError, io_timeout: Duration) -> TransportError {
    match e {
        ReadError::Idle => TransportError::Timeout(io_timeout),
        ReadError::Eof => {
            TransportError::Closed("the peer closed the connection before its Hello".into())
        }
        other => other.into_transport(),
    }
}

/// Tells the peer why we close, without waiting long for a peer that does not read.
pub(super) async fn bye<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    why: &TransportError,
    io_timeout: Duration,
) {
    let frame = Frame::Bye {
        reason: why.to_string(),
    };
    let wait = io_timeout.min(Duration::from_secs(1));
    let _ = writer.send(&frame, HANDSHAKE_FRAME_MAX, wait).await;
    writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Identity {
        Identity {
            node_id: NodeId::from_u128(1),
            room: "lobby".into(),
            name: "me".into(),
            listen_port: 4000,
            protocol_version: 1,
            signer: None,
        }
    }

    fn them() -> Hello {
        Hello {
            protocol_version: 1,
            node_id: NodeId::from_u128(2),
            room: "lobby".into(),
            listen_port: 4001,
            name: "them".into(),
            auth: None,
        }
    }

    impl Identity {
        fn check_plain(&self, h: &Hello, expected: Option<NodeId>) -> Result<(), TransportError> {
            self.check(h, expected, None)
        }
    }

    #[test]
    fn a_signed_hello_proves_the_node_id_for_this_handshake_only() {
        let key = NodeIdentity::generate();
        let signer = Identity {
            node_id: key.node_id(),
            signer: Some(key.clone()),
            ..me()
        };
        let verifier = Identity {
            signer: Some(NodeIdentity::generate()),
            ..me()
        };
        let hello = signer.hello(Some(b"hash-1"));
        assert!(verifier.check(&hello, None, Some(b"hash-1")).is_ok());
        // Replayed on another connection, the proof fails.
        assert!(verifier.check(&hello, None, Some(b"hash-2")).is_err());
        // Claiming another node's id with one's own key fails.
        let mut stolen = hello.clone();
        stolen.node_id = NodeId::from_u128(5);
        assert!(verifier.check(&stolen, None, Some(b"hash-1")).is_err());
        // A peer without a proof is refused by a node that has an identity.
        let bare = me().hello(Some(b"hash-1"));
        assert!(verifier.check(&bare, None, Some(b"hash-1")).is_err());
    }

    #[test]
    fn only_a_proven_id_may_be_reported_with_a_refusal() {
        let key = NodeIdentity::generate();
        let verifier = Identity {
            signer: Some(NodeIdentity::generate()),
            ..me()
        };
        // Proven, then refused by a rule: its id is known for sure.
        let old = Identity {
            node_id: key.node_id(),
            signer: Some(key),
            protocol_version: 9,
            ..me()
        };
        let hello = old.hello(Some(b"h"));
        assert!(verifier.proof(&hello, Some(b"h")).unwrap());
        assert!(verifier.rules(&hello, None).is_err());
        // Someone else's id with our key, or with no proof: refused before any rule.
        let mut stolen = hello.clone();
        stolen.node_id = NodeId::from_u128(7);
        assert!(verifier.proof(&stolen, Some(b"h")).is_err());
        assert!(verifier.proof(&them(), Some(b"h")).is_err());
        // Without identities nothing is proven (and nothing demanded).
        assert!(!me().proof(&them(), Some(b"h")).unwrap());
        assert!(!me().proof(&them(), None).unwrap());
    }

    #[test]
    fn a_refusal_quotes_the_peer_escaped() {
        let mut h = them();
        h.room = "x\u{1b}[2J\ny".into();
        let why = me().check_plain(&h, None).unwrap_err().to_string();
        assert_eq!(crate::text::find_unsafe(&why), None, "{why}");
        assert!(why.contains("x\\u{001b}[2J\\u{000a}y"), "{why}");
    }

    #[test]
    fn check_refuses_each_broken_rule_with_its_reason() {
        assert!(me().check_plain(&them(), None).is_ok());
        assert!(
            me().check_plain(&them(), Some(NodeId::from_u128(2)))
                .is_ok()
        );
        let reason = |h: Hello, expected| match me().check_plain(&h, expected) {
            Err(TransportError::Handshake(r)) => r,
            other => panic!("{other:?}"),
        };
        let mut h = them();
        h.protocol_version = 2;
        let why = reason(h, None);
        assert!(
            why.contains("the peer speaks version 2, we speak version 1"),
            "{why}"
        );
        let mut h = them();
        h.room = "other".into();
        assert!(reason(h, None).contains("room \"other\""));
        let mut h = them();
        h.node_id = NodeId::from_u128(1);
        assert!(reason(h, None).contains("our own node id"));
        let mut h = them();
        h.node_id = NodeId::NIL;
        assert!(reason(h, None).contains("nil"));
        let mut h = them();
        h.listen_port = 0;
        assert!(reason(h, None).contains("port 0"));
        assert!(reason(them(), Some(NodeId::from_u128(3))).contains("expected node"));
    }
}
