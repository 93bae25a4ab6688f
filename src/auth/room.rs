//! Room keys: a private room's secret turned into the Noise pre-shared key of its
//! connections, and the public name of the room.

use sha2::{Digest, Sha256};

/// A room's shared key, derived from its secret: the Noise PSK of its connections.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomKey([u8; 32]);

impl std::fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomKey(..)")
    }
}

impl RoomKey {
    /// Derives the key of `room` from `secret` with Argon2id (19 MiB, 2 passes), salted by
    /// the room name, so one secret gives unrelated keys in two rooms and guessing a
    /// secret from a captured handshake costs an Argon2 run per guess.
    pub fn derive(room: &str, secret: &[u8]) -> Result<RoomKey, String> {
        if secret.is_empty() {
            return Err("the room secret is empty".into());
        }
        // The salt must be at least 8 bytes; the prefix guarantees it for any room name.
        let salt = [b"gossip-room/1:".as_slice(), room.as_bytes()].concat();
        let mut key = [0u8; 32];
        argon2::Argon2::default()
            .hash_password_into(secret, &salt, &mut key)
            .map_err(|e| format!("deriving the room key: {e}"))?;
        Ok(RoomKey(key))
    }

    /// The key bytes (the Noise PSK).
    pub fn bytes(&self) -> [u8; 32] {
        self.0
    }

    /// What a private room is called in public (mDNS, Hello): 32 hex digits of a hash of
    /// the room name and the key, so strangers learn neither, and rooms with the same name
    /// but different secrets differ.
    pub fn room_id(&self, room: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"gossip-room-id/1");
        h.update((room.len() as u64).to_le_bytes());
        h.update(room.as_bytes());
        h.update(self.0);
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
