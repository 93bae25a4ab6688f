//! A private room's payloads sealed at rest: a local user who can read the files but does
//! not hold the room secret learns no message text.
//!
//! Only the payload is sealed; the record framing (magic, length, CRC) and the event's
//! head (id, origin, seq, clock, time) and signature stay readable, so the scan, the index
//! and torn-tail repair work without the key. A sealed payload is
//! `SEALED_MAGIC | nonce (24) | XChaCha20-Poly1305(payload) (len + 16)`, under a key
//! derived from the room key with its own label, with the event's id, origin and seq as
//! associated data (a sealed payload moved to another record does not open).
//!
//! The nonce is a keyed hash of the associated data and the plaintext (a synthetic IV):
//! the same event always seals to the same bytes, so the store's byte comparison of
//! duplicates still works, and two different payloads never share a nonce. What this
//! leaks is only whether two stored payloads are equal.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::protocol::Event;
use crate::protocol::codec;

use super::record::MAX_BODY_LEN;

/// The first bytes of a sealed payload.
pub const SEALED_MAGIC: [u8; 4] = *b"GCS1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The file whose presence says every record of the store is sealed (a store made before
/// sealing is rewritten sealed on its first open with the key, then marked).
pub const SEALED_MARKER_FILE: &str = "sealed";

/// The at-rest keys of a private room. Cheap to clone; never printed.
#[derive(Clone)]
pub struct AtRestKey {
    aead: [u8; 32],
    nonce: [u8; 32],
}

impl std::fmt::Debug for AtRestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtRestKey(..)")
    }
}

/// Why a sealed payload did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    /// The payload is not sealed (a record from before sealing, or the magic damaged).
    #[error("the payload is not sealed")]
    NotSealed,
    /// The AEAD refused: wrong key, or the bytes were changed.
    #[error("the sealed payload does not open (changed on disk, or another room's key)")]
    Tampered,
    /// Sealing failed (cannot happen for payloads that fit a record).
    #[error("cannot seal the payload")]
    Seal,
}

fn derive(label: &[u8], room_key: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label);
    h.update(room_key);
    h.finalize().into()
}

fn aad(e: &Event) -> Vec<u8> {
    let mut a = Vec::with_capacity(40);
    a.extend_from_slice(e.id.as_bytes());
    a.extend_from_slice(e.origin.0.as_bytes());
    a.extend_from_slice(&e.seq.to_le_bytes());
    a
}

impl AtRestKey {
    /// The at-rest keys of the room whose key is `room_key` (the Noise PSK); their own
    /// labels keep them apart from every other use of the room key.
    pub fn derive(room_key: &[u8; 32]) -> AtRestKey {
        AtRestKey {
            aead: derive(b"gossip-chat/at-rest/aead/1", room_key),
            nonce: derive(b"gossip-chat/at-rest/nonce/1", room_key),
        }
    }

    /// The event with its payload sealed.
    pub fn seal(&self, e: &Event) -> Result<Event, CryptError> {
        let aad = aad(e);
        let mut h = Sha256::new();
        h.update(self.nonce);
        h.update((aad.len() as u64).to_le_bytes());
        h.update(&aad);
        h.update(&e.payload);
        let digest = h.finalize();
        let nonce = XNonce::from_slice(&digest[..NONCE_LEN]);
        let cipher = XChaCha20Poly1305::new((&self.aead).into());
        let sealed = cipher
            .encrypt(
                nonce,
                Payload {
                    msg: &e.payload,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptError::Seal)?;
        let mut out = Vec::with_capacity(4 + NONCE_LEN + sealed.len());
        out.extend_from_slice(&SEALED_MAGIC);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        Ok(Event {
            payload: out.into(),
            ..e.clone()
        })
    }

    /// The event with its payload opened.
    pub fn open(&self, mut e: Event) -> Result<Event, CryptError> {
        let p = &e.payload;
        if p.len() < 4 + NONCE_LEN + TAG_LEN || p[..4] != SEALED_MAGIC {
            return Err(CryptError::NotSealed);
        }
        let nonce = XNonce::from_slice(&p[4..4 + NONCE_LEN]);
        let cipher = XChaCha20Poly1305::new((&self.aead).into());
        let plain = cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &p[4 + NONCE_LEN..],
                    aad: &aad(&e),
                },
            )
            .map_err(|_| CryptError::Tampered)?;
        e.payload = plain.into();
        Ok(e)
    }

    /// Whether a record body (a whole encoded event) holds a payload that opens: the scan's
    /// check, so a changed sealed record counts as damage.
    pub fn body_opens(&self, body: &[u8]) -> bool {
        codec::decode::<Event>(body, MAX_BODY_LEN as usize)
            .ok()
            .is_some_and(|e| self.open(e).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::NodeId;

    fn ev(payload: &[u8]) -> Event {
        Event {
            id: uuid::Uuid::now_v7(),
            origin: NodeId::from_u128(5),
            seq: 3,
            hlc: 1,
            created_at_ms: 2,
            payload: bytes::Bytes::copy_from_slice(payload),
            sig: bytes::Bytes::from_static(b"sig"),
        }
    }

    #[test]
    fn seals_deterministically_opens_and_refuses_changes() {
        let key = AtRestKey::derive(&[7; 32]);
        let e = ev(b"secret message");
        let sealed = key.seal(&e).unwrap();
        assert!(!sealed.payload.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.seal(&e).unwrap(), sealed, "same event, same bytes");
        assert_ne!(
            key.seal(&ev(b"other")).unwrap().payload[4..28],
            sealed.payload[4..28]
        );
        assert_eq!(key.open(sealed.clone()).unwrap(), e);
        let mut flipped = sealed.payload.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let bad = Event {
            payload: flipped.into(),
            ..sealed.clone()
        };
        assert_eq!(key.open(bad), Err(CryptError::Tampered));
        let moved = Event {
            seq: 4,
            ..sealed.clone()
        };
        assert_eq!(key.open(moved), Err(CryptError::Tampered));
        let other = AtRestKey::derive(&[8; 32]);
        assert_eq!(other.open(sealed), Err(CryptError::Tampered));
        assert_eq!(key.open(e), Err(CryptError::NotSealed));
    }
}
