//! At-rest sealing of a private room's blobs: each chunk sealed on its own (so any chunk
//! can be read without the others), under a key derived from the room key.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::protocol::blob::BlobId;

/// Bytes sealing adds to each chunk (the Poly1305 tag).
pub const TAG_LEN: usize = 16;

/// The key of a private room's blob store.
#[derive(Clone)]
pub struct BlobKey {
    aead: [u8; 32],
    nonce: [u8; 32],
}

impl std::fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobKey(..)")
    }
}

fn derive(label: &[u8], room_key: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label);
    h.update(room_key);
    h.finalize().into()
}

impl BlobKey {
    /// The blob key of a room key (other labels than the log's, so the keys differ).
    pub fn derive(room_key: &[u8; 32]) -> BlobKey {
        BlobKey {
            aead: derive(b"gossip-chat/blobs/aead/1", room_key),
            nonce: derive(b"gossip-chat/blobs/nonce/1", room_key),
        }
    }

    /// The nonce and associated data of part `index` of `blob`. A part's content is fixed by
    /// the blob id, so a deterministic nonce is never used for two plaintexts.
    fn nonce_aad(&self, blob: BlobId, index: u32) -> ([u8; 24], Vec<u8>) {
        let mut aad = blob.0.to_vec();
        aad.extend_from_slice(&index.to_le_bytes());
        let mut h = Sha256::new();
        h.update(self.nonce);
        h.update(&aad);
        let digest = h.finalize();
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&digest[..24]);
        (nonce, aad)
    }

    /// Part `index` of `blob`, sealed (`TAG_LEN` bytes longer).
    pub fn seal(&self, blob: BlobId, index: u32, plain: &[u8]) -> Option<Vec<u8>> {
        let (nonce, aad) = self.nonce_aad(blob, index);
        XChaCha20Poly1305::new((&self.aead).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .ok()
    }

    /// Part `index` of `blob`, opened; `None` if it was changed or sealed under another key.
    pub fn open(&self, blob: BlobId, index: u32, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, aad) = self.nonce_aad(blob, index);
        XChaCha20Poly1305::new((&self.aead).into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_open_only_in_place_and_under_their_key() {
        let key = BlobKey::derive(&[3; 32]);
        let blob = BlobId([9; 32]);
        let sealed = key.seal(blob, 2, b"secret bytes").unwrap();
        assert_eq!(sealed.len(), 12 + TAG_LEN);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open(blob, 2, &sealed).unwrap(), b"secret bytes");
        assert!(key.open(blob, 3, &sealed).is_none(), "moved");
        assert!(BlobKey::derive(&[4; 32]).open(blob, 2, &sealed).is_none());
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert!(key.open(blob, 2, &flipped).is_none());
    }
}
