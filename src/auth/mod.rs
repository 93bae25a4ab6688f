//! Node identities and event signatures (ed25519).
//!
//! A node's id is derived from its public key ([`node_id_of`]), so nobody can claim an id
//! without the key. An origin's public key travels in its event `seq = 1`, the *identity
//! event* ([`identity_payload`]); every later event of that origin is signed over its fields
//! ([`signed_bytes`]). Since a node holds each origin's events contiguously from seq 1,
//! whoever holds event N of an origin already holds the key that signed it.
//!
//! The library works without any of this: an event with an empty [`Event::sig`] is an
//! unsigned event, and a node built without an identity neither signs nor verifies.

pub mod keyfile;
pub mod room;
pub mod verify;

pub use room::RoomKey;

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::protocol::chain::{self, ChainHash, SEAL_LEN, UNLINKED};
use crate::protocol::peer_record::PeerRecord;
use crate::protocol::{Event, NodeId};

/// The key file's name inside a store directory.
pub const IDENTITY_KEY_FILE: &str = "identity.key";

/// The length of an event signature.
pub const SIGNATURE_LEN: usize = 64;

/// A group of own events is cut into parts signed on separate cores only when each part
/// gets at least this many events (each part costs receivers one more signature check).
pub const SIGN_PER_THREAD_MIN: usize = 64;

/// The length of a public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// What an identity event's payload starts with. Apps check for it before decoding their
/// own payloads (gossip-chat's ops start with a small version number, never this tag).
pub const IDENTITY_PAYLOAD_TAG: &[u8] = b"\0gossip-identity/1\0";

/// Domain separation: an event signature can never be replayed as a handshake signature,
/// nor a plain event signature as a seal's.
const EVENT_DOMAIN: &[u8] = b"gossip-event/1";
const SEALED_EVENT_DOMAIN: &[u8] = b"gossip-event/2";
const HANDSHAKE_DOMAIN: &[u8] = b"gossip-noise-binding/1";

/// The node id of the holder of `public`: a UUID (version 8) from the first 16 bytes of the
/// key's SHA-256.
pub fn node_id_of(public: &[u8; PUBLIC_KEY_LEN]) -> NodeId {
    let digest = Sha256::digest(public);
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    NodeId(uuid::Builder::from_custom_bytes(b).into_uuid())
}

/// The payload of an identity event carrying `public`.
pub fn identity_payload(public: &[u8; PUBLIC_KEY_LEN]) -> Bytes {
    let mut p = Vec::with_capacity(IDENTITY_PAYLOAD_TAG.len() + PUBLIC_KEY_LEN);
    p.extend_from_slice(IDENTITY_PAYLOAD_TAG);
    p.extend_from_slice(public);
    Bytes::from(p)
}

/// Whether `payload` is a library identity event's payload (apps skip these).
pub fn is_identity_payload(payload: &[u8]) -> bool {
    payload.starts_with(IDENTITY_PAYLOAD_TAG)
}

/// The public key an identity payload carries, if it is a well-formed one.
pub fn identity_key_of(payload: &[u8]) -> Option<[u8; PUBLIC_KEY_LEN]> {
    let key = payload.strip_prefix(IDENTITY_PAYLOAD_TAG)?;
    key.try_into().ok()
}

/// The bytes a plain (64-byte) event signature covers: every field but the signature,
/// fixed-width, so two different events never sign the same bytes. Identity events and
/// events signed before chains carry such a signature.
pub fn signed_bytes(e: &Event) -> Vec<u8> {
    let mut m = Vec::with_capacity(EVENT_DOMAIN.len() + 64 + e.payload.len());
    m.extend_from_slice(EVENT_DOMAIN);
    push_fields(&mut m, e);
    m
}

/// The bytes a seal's signature covers: every field but the seal, then `prev`, the chain
/// hash of the origin's previous event (see [`crate::protocol::chain`]).
pub fn sealed_bytes(e: &Event, prev: &ChainHash) -> Vec<u8> {
    let mut m = Vec::with_capacity(SEALED_EVENT_DOMAIN.len() + 96 + e.payload.len());
    m.extend_from_slice(SEALED_EVENT_DOMAIN);
    push_fields(&mut m, e);
    m.extend_from_slice(prev);
    m
}

fn push_fields(m: &mut Vec<u8>, e: &Event) {
    m.extend_from_slice(e.id.as_bytes());
    m.extend_from_slice(e.origin.0.as_bytes());
    m.extend_from_slice(&e.seq.to_le_bytes());
    m.extend_from_slice(&e.hlc.to_le_bytes());
    m.extend_from_slice(&e.created_at_ms.to_le_bytes());
    m.extend_from_slice(&(e.payload.len() as u64).to_le_bytes());
    m.extend_from_slice(&e.payload);
}

/// Why an event or a handshake binding failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The event carries no signature.
    #[error("unsigned event")]
    Unsigned,
    /// The signature does not verify under the origin's key.
    #[error("bad signature")]
    BadSignature,
    /// A seq 1 event that is not a well-formed identity event.
    #[error("seq 1 is not an identity event")]
    NotIdentity,
    /// The key does not hash to the claimed node id.
    #[error("the key is not the origin's (node {claimed} != key's {derived})")]
    WrongKey {
        /// The id claimed.
        claimed: NodeId,
        /// The id the key gives.
        derived: NodeId,
    },
    /// A later event whose origin's identity event is not held yet.
    #[error("the origin's key is unknown (its seq 1 is not held yet)")]
    UnknownKey,
    /// The key bytes are not a valid ed25519 point.
    #[error("malformed public key")]
    MalformedKey,
}

/// Checks `sig` by the holder of `public` over `msg`.
fn verify_raw(public: &VerifyingKey, msg: &[u8], sig: &[u8]) -> Result<(), AuthError> {
    if sig.is_empty() {
        return Err(AuthError::Unsigned);
    }
    let sig = Signature::from_slice(sig).map_err(|_| AuthError::BadSignature)?;
    public
        .verify_strict(msg, &sig)
        .map_err(|_| AuthError::BadSignature)
}

/// Parses a public key and checks that it is `claimed`'s.
pub fn key_for(claimed: NodeId, public: &[u8; PUBLIC_KEY_LEN]) -> Result<VerifyingKey, AuthError> {
    let derived = node_id_of(public);
    if derived != claimed {
        return Err(AuthError::WrongKey { claimed, derived });
    }
    VerifyingKey::from_bytes(public).map_err(|_| AuthError::MalformedKey)
}

/// Verifies an identity event (seq 1): its payload's key must be the origin's and must have
/// signed it. Returns the key for the origin's later events.
pub fn verify_identity_event(e: &Event) -> Result<VerifyingKey, AuthError> {
    let public = identity_key_of(&e.payload).ok_or(AuthError::NotIdentity)?;
    let key = key_for(e.origin, &public)?;
    verify_event(e, &key)?;
    Ok(key)
}

/// Verifies one event of the origin whose key is `key`, on its own: a plain signature over
/// [`signed_bytes`], or a seal whose signature covers [`sealed_bytes`] with the seal's
/// `prev`. Any other length is refused.
pub fn verify_event(e: &Event, key: &VerifyingKey) -> Result<(), AuthError> {
    match e.sig.len() {
        0 => Err(AuthError::Unsigned),
        SIGNATURE_LEN => verify_raw(key, &signed_bytes(e), &e.sig),
        SEAL_LEN => {
            let prev = chain::prev_of(e).ok_or(AuthError::BadSignature)?;
            verify_raw(
                key,
                &sealed_bytes(e, &prev),
                &e.sig[chain::CHAIN_HASH_LEN..],
            )
        }
        _ => Err(AuthError::BadSignature),
    }
}

/// Verifies that the holder of `public` (claiming `claimed`) signed `handshake_hash`.
pub fn verify_binding(
    claimed: NodeId,
    public: &[u8; PUBLIC_KEY_LEN],
    handshake_hash: &[u8],
    sig: &[u8],
) -> Result<(), AuthError> {
    let key = key_for(claimed, public)?;
    verify_raw(&key, &binding_bytes(handshake_hash), sig)
}

fn binding_bytes(handshake_hash: &[u8]) -> Vec<u8> {
    [HANDSHAKE_DOMAIN, handshake_hash].concat()
}

/// Why an identity key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a key.
    #[error("{0}: not an identity key (expected 64 hex digits)")]
    Malformed(PathBuf),
    /// Group or others may read the secret key.
    #[error(
        "{path} is readable by group or others (mode {mode:o}); the identity key must be private: run `chmod 600 {path}`"
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// A node's signing identity: an ed25519 key pair and the node id derived from it.
#[derive(Clone)]
pub struct NodeIdentity {
    signing: SigningKey,
    public: [u8; PUBLIC_KEY_LEN],
    node_id: NodeId,
}

impl PartialEq for NodeIdentity {
    fn eq(&self, other: &Self) -> bool {
        // The public key determines the secret's owner; comparing it avoids touching secrets.
        self.public == other.public
    }
}

impl Eq for NodeIdentity {}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("NodeIdentity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// A fresh random identity.
    pub fn generate() -> Self {
        Self::from_secret(rand::random())
    }

    /// The identity of a 32-byte ed25519 secret key.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&secret);
        let public = signing.verifying_key().to_bytes();
        NodeIdentity {
            signing,
            public,
            node_id: node_id_of(&public),
        }
    }

    /// The node id this key owns.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The 32-byte secret key, for a store that keeps the key itself (the SQLite store).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public
    }

    /// Seals `event` as a chain's first event (`prev` all zeros): it verifies on its own.
    /// The event's origin must be this identity's node id.
    pub fn sign_event(&self, event: &mut Event) {
        self.sign_event_after(event, &UNLINKED);
    }

    /// Seals `event` as the successor of the own event whose chain hash is `prev`.
    pub fn sign_event_after(&self, event: &mut Event, prev: &ChainHash) {
        let sig = self.signing.sign(&sealed_bytes(event, prev));
        let mut seal = Vec::with_capacity(SEAL_LEN);
        seal.extend_from_slice(prev);
        seal.extend_from_slice(&sig.to_bytes());
        event.sig = Bytes::from(seal);
    }

    /// Seals `events` (consecutive seqs) as one chain after the event whose chain hash is
    /// `prev`; returns the chain hash of the last (`prev` if there are none). One after the
    /// other: each seal covers the previous event's seal.
    pub fn sign_chain(&self, events: &mut [Event], mut prev: ChainHash) -> ChainHash {
        for e in events {
            self.sign_event_after(e, &prev);
            prev = chain::chain_hash(e);
        }
        prev
    }

    /// Fills in a plain 64-byte signature (identity events keep one forever).
    fn sign_plain(&self, event: &mut Event) {
        let sig = self.signing.sign(&signed_bytes(event));
        event.sig = Bytes::copy_from_slice(&sig.to_bytes());
    }

    /// This node's identity event (seq 1), signed. It is the same event every time
    /// (id from the key, HLC 1, creation time 0; ed25519 signing is
    /// deterministic), so a node that lost its events but kept its key recreates exactly
    /// the event its peers hold, not a conflicting one.
    pub fn identity_event(&self) -> Event {
        let digest = Sha256::digest([b"gossip-identity-event/1".as_slice(), &self.public].concat());
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        let mut e = Event {
            id: uuid::Builder::from_custom_bytes(id).into_uuid(),
            origin: self.node_id,
            seq: 1,
            hlc: 1,
            created_at_ms: 0,
            payload: identity_payload(&self.public),
            sig: Bytes::new(),
        };
        self.sign_plain(&mut e);
        e
    }

    /// Signs a Noise handshake hash, binding that session to this identity.
    pub fn sign_binding(&self, handshake_hash: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(&binding_bytes(handshake_hash)).to_bytes()
    }

    /// Reads `<dir>/identity.key`, or creates it (mode 0600) if it is missing.
    ///
    /// On unix a key file that group or others may read is refused rather than used: the
    /// key is the node's authorship, and a readable key is a forgeable one.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        let path = dir.join(IDENTITY_KEY_FILE);
        let io = |source| IdentityError::Io {
            path: path.clone(),
            source,
        };
        let fresh = Self::generate();
        let hex: String = fresh
            .signing
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let (text, created) =
            keyfile::load_or_create(dir, IDENTITY_KEY_FILE, || format!("{hex}\n")).map_err(io)?;
        if created {
            return Ok(fresh);
        }
        check_private(&path)?;
        let secret =
            parse_hex32(text.trim()).ok_or_else(|| IdentityError::Malformed(path.clone()))?;
        Ok(Self::from_secret(secret))
    }
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), IdentityError> {
    Ok(())
}

impl crate::protocol::engine::Signer for NodeIdentity {
    fn sign(&self, event: &mut Event) {
        self.sign_plain(event);
    }

    fn sign_after(&self, event: &mut Event, prev: &ChainHash) {
        self.sign_event_after(event, prev);
    }

    /// A large group (piped input) is cut into one chain per core, signed at once: the
    /// first continues `prev`, each other starts unlinked, so a receiver checks one
    /// signature per part instead of one per event, and signing is not held to one core.
    fn sign_many(&self, events: &mut [Event], prev: ChainHash) -> ChainHash {
        let parts = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(events.len() / SIGN_PER_THREAD_MIN)
            .max(1);
        if parts == 1 {
            return self.sign_chain(events, prev);
        }
        let chunk = events.len().div_ceil(parts);
        let mut last = prev;
        std::thread::scope(|scope| {
            let handles: Vec<_> = events
                .chunks_mut(chunk)
                .enumerate()
                .map(|(i, part)| {
                    let start = if i == 0 { prev } else { UNLINKED };
                    scope.spawn(move || self.sign_chain(part, start))
                })
                .collect();
            for h in handles {
                // A signing thread cannot panic short of a bug; keep the chain we have.
                if let Ok(h) = h.join() {
                    last = h;
                }
            }
        });
        last
    }

    fn identity_event(&self) -> Event {
        NodeIdentity::identity_event(self)
    }

    fn sign_record(&self, epoch: u64, addrs: Vec<String>) -> PeerRecord {
        self.sign_peer_record(epoch, addrs)
    }

    fn verify_record(&self, record: &PeerRecord) -> bool {
        verify_peer_record(record).is_ok()
    }
}

impl NodeIdentity {
    /// This node's peer record for `addrs` at `epoch`, signed.
    pub fn sign_peer_record(&self, epoch: u64, addrs: Vec<String>) -> PeerRecord {
        let msg = crate::protocol::peer_record::signed_bytes(self.node_id(), epoch, &addrs);
        let sig = self.signing.sign(&msg);
        PeerRecord {
            node_id: self.node_id(),
            epoch,
            addrs,
            public_key: Bytes::copy_from_slice(&self.public_key()),
            sig: Bytes::copy_from_slice(&sig.to_bytes()),
        }
    }
}

/// Verifies a peer record: its key must be its node's, and must have signed it.
pub fn verify_peer_record(r: &PeerRecord) -> Result<(), AuthError> {
    let public: [u8; PUBLIC_KEY_LEN] = r
        .public_key
        .as_ref()
        .try_into()
        .map_err(|_| AuthError::MalformedKey)?;
    let key = key_for(r.node_id, &public)?;
    verify_raw(&key, &r.signed_bytes(), &r.sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &NodeIdentity, seq: u64, text: &str) -> Event {
        let mut e = Event {
            id: uuid::Uuid::now_v7(),
            origin: id.node_id(),
            seq,
            hlc: seq,
            created_at_ms: 1_700_000_000_000,
            payload: Bytes::copy_from_slice(text.as_bytes()),
            sig: Bytes::new(),
        };
        id.sign_event(&mut e);
        e
    }

    #[test]
    fn a_group_is_sealed_as_one_chain_after_its_prev() {
        use crate::protocol::engine::Signer;
        let me = NodeIdentity::generate();
        let key = verify_identity_event(&me.identity_event()).unwrap();
        let start = chain::chain_hash(&me.identity_event());
        for n in [0usize, 1, 2, 100] {
            let mut prev = start;
            let one_by_one: Vec<Event> = (0..n as u64)
                .map(|i| {
                    let mut e = event(&me, i + 2, &format!("m{i}"));
                    me.sign_event_after(&mut e, &prev);
                    prev = chain::chain_hash(&e);
                    e
                })
                .collect();
            let mut group: Vec<Event> = one_by_one
                .iter()
                .map(|e| Event {
                    sig: Bytes::new(),
                    ..e.clone()
                })
                .collect();
            assert_eq!(me.sign_many(&mut group, start), prev);
            assert_eq!(group, one_by_one, "{n} events");
            for (i, e) in group.iter().enumerate() {
                verify_event(e, &key).unwrap();
                let before = if i == 0 {
                    start
                } else {
                    chain::chain_hash(&group[i - 1])
                };
                assert_eq!(chain::prev_of(e), Some(before));
            }
        }
        assert_eq!(Signer::signature_len(&me), SEAL_LEN);
    }

    fn hex(b: &[u8]) -> String {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The worked example of docs/PROTOCOL.md section 6 ("Seals and chain hashes"): a key
    /// of 32 bytes 0x01, its identity event, and its event 2 sealed after it.
    fn seal_example() -> Vec<(&'static str, String)> {
        let me = NodeIdentity::from_secret([1; 32]);
        let first = me.identity_event();
        let mut second = Event {
            id: uuid::Uuid::parse_str("01900000-0000-7000-8000-000000000002").unwrap(),
            origin: me.node_id(),
            seq: 2,
            hlc: 1_700_000_000_000 << 16,
            created_at_ms: 1_700_000_000_000,
            payload: Bytes::from_static(b"hi"),
            sig: Bytes::new(),
        };
        me.sign_event_after(&mut second, &chain::chain_hash(&first));
        vec![
            ("public key", hex(&me.public_key())),
            ("origin", me.node_id().to_string()),
            ("identity event id", first.id.to_string()),
            ("identity chain hash", hex(&chain::chain_hash(&first))),
            ("event 2 seal", hex(&second.sig)),
            ("event 2 chain hash", hex(&chain::chain_hash(&second))),
        ]
    }

    #[test]
    fn the_seal_example_matches_the_protocol_doc() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        let section = doc
            .split("### Seals and chain hashes")
            .nth(1)
            .and_then(|s| s.split("```").nth(1))
            .expect("the section and its block");
        let text = format!(
            "{} ",
            section.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        for (name, value) in seal_example() {
            let want = format!("{name}: {value} ");
            assert!(text.contains(&want), "docs/PROTOCOL.md lacks `{want}`");
        }
    }

    #[test]
    fn a_large_group_is_signed_as_one_chain_per_core_and_all_of_it_verifies() {
        use crate::protocol::engine::Signer;
        let me = NodeIdentity::generate();
        let first = me.identity_event();
        let start = chain::chain_hash(&first);
        let mut group: Vec<Event> = (0..1000u64)
            .map(|i| Event {
                sig: Bytes::new(),
                ..event(&me, i + 2, &format!("m{i}"))
            })
            .collect();
        let last = me.sign_many(&mut group, start);
        assert_eq!(last, chain::chain_hash(&group[999]));
        assert_eq!(chain::prev_of(&group[0]), Some(start));
        let hashes: Vec<_> = group.iter().map(chain::chain_hash).collect();
        let parts = chain::segments(&group, &hashes).len();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(parts, cores.clamp(1, 1000 / SIGN_PER_THREAD_MIN));
        let mut keys = std::collections::HashMap::new();
        let mut all = vec![first];
        all.extend(group);
        assert!(
            verify::verify_batch(&all, &mut keys)
                .iter()
                .all(|v| v.is_ok())
        );
    }

    #[test]
    fn plain_and_sealed_signatures_verify_and_other_lengths_are_refused() {
        let me = NodeIdentity::generate();
        let key = verify_identity_event(&me.identity_event()).unwrap();
        assert_eq!(me.identity_event().sig.len(), SIGNATURE_LEN);
        let mut plain = event(&me, 2, "old");
        me.sign_plain(&mut plain);
        verify_event(&plain, &key).unwrap();
        let sealed = event(&me, 2, "old");
        assert_eq!(sealed.sig.len(), SEAL_LEN);
        verify_event(&sealed, &key).unwrap();
        // A plain signature is not a seal's, nor a seal's signature a plain one.
        let mut mixed = plain.clone();
        mixed.sig = Bytes::from([[1u8; 32].as_slice(), &plain.sig].concat());
        assert_eq!(verify_event(&mixed, &key), Err(AuthError::BadSignature));
        let mut cut = sealed.clone();
        cut.sig = sealed.sig.slice(32..);
        assert_eq!(verify_event(&cut, &key), Err(AuthError::BadSignature));
        let mut odd = sealed;
        odd.sig = odd.sig.slice(1..);
        assert_eq!(verify_event(&odd, &key), Err(AuthError::BadSignature));
    }

    #[test]
    fn signed_events_verify_and_any_change_breaks_them() {
        let me = NodeIdentity::generate();
        let first = me.identity_event();
        let key = verify_identity_event(&first).unwrap();
        let e = event(&me, 2, "hello");
        verify_event(&e, &key).unwrap();
        let mut forged = e.clone();
        forged.payload = Bytes::from_static(b"hellO");
        assert_eq!(verify_event(&forged, &key), Err(AuthError::BadSignature));
        let mut forged = e.clone();
        forged.hlc += 1;
        assert_eq!(verify_event(&forged, &key), Err(AuthError::BadSignature));
        let mut unsigned = e;
        unsigned.sig = Bytes::new();
        assert_eq!(verify_event(&unsigned, &key), Err(AuthError::Unsigned));
    }

    #[test]
    fn the_identity_event_is_the_same_every_time() {
        let me = NodeIdentity::generate();
        assert_eq!(me.identity_event(), me.identity_event());
        assert_ne!(
            me.identity_event(),
            NodeIdentity::generate().identity_event()
        );
    }

    #[test]
    fn an_identity_event_for_someone_elses_id_is_refused() {
        let me = NodeIdentity::generate();
        let other = NodeIdentity::generate();
        let mut e = me.identity_event();
        e.origin = other.node_id();
        me.sign_event(&mut e);
        assert!(matches!(
            verify_identity_event(&e),
            Err(AuthError::WrongKey { .. })
        ));
        let not_identity = event(&me, 1, "hi");
        assert_eq!(
            verify_identity_event(&not_identity),
            Err(AuthError::NotIdentity)
        );
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = NodeIdentity::load_or_create(dir.path()).unwrap();
        let b = NodeIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.node_id(), b.node_id());
        assert_eq!(a.node_id(), node_id_of(&a.public_key()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(IDENTITY_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        NodeIdentity::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(IDENTITY_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = NodeIdentity::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, IdentityError::TooOpen { mode: 0o644, .. }));
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn garbage_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(IDENTITY_KEY_FILE), "zz").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(
                dir.path().join(IDENTITY_KEY_FILE),
                fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        assert!(matches!(
            NodeIdentity::load_or_create(dir.path()),
            Err(IdentityError::Malformed(_))
        ));
    }

    #[test]
    fn room_keys_depend_on_secret_and_room_and_hide_both_in_the_room_id() {
        let a = RoomKey::derive("lobby", b"s3cret").unwrap();
        assert_eq!(a, RoomKey::derive("lobby", b"s3cret").unwrap());
        assert_ne!(a, RoomKey::derive("lobby", b"other").unwrap());
        assert_ne!(a, RoomKey::derive("kitchen", b"s3cret").unwrap());
        let id = a.room_id("lobby");
        assert_eq!(id.len(), 32);
        assert!(!id.contains("lobby"));
        assert_ne!(
            id,
            RoomKey::derive("lobby", b"other").unwrap().room_id("lobby")
        );
        assert!(RoomKey::derive("lobby", b"").is_err());
    }

    #[test]
    fn handshake_binding_verifies_only_for_its_hash_and_key() {
        let me = NodeIdentity::generate();
        let sig = me.sign_binding(b"hash-1");
        verify_binding(me.node_id(), &me.public_key(), b"hash-1", &sig).unwrap();
        assert!(verify_binding(me.node_id(), &me.public_key(), b"hash-2", &sig).is_err());
        let other = NodeIdentity::generate();
        assert!(verify_binding(other.node_id(), &me.public_key(), b"hash-1", &sig).is_err());
    }
}
