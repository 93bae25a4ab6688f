//! The driver's half of ephemeral messages: checking a received one's signature.

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;

use crate::auth;
use crate::protocol::engine::Input;
use crate::protocol::ephemeral::Ephemeral;
use crate::protocol::event::NodeId;

use super::ingest::Keys;
use super::{Inner, lock};

impl Inner {
    /// Checks that `ephemeral` is signed by its origin's key (known from the origin's
    /// identity event, which must be held already); a node that does not verify accepts
    /// it as it is.
    pub(super) async fn check_ephemeral(
        self: Arc<Self>,
        from: NodeId,
        ephemeral: Ephemeral,
    ) -> Input {
        let result = match &self.keys {
            None => Ok(()),
            Some(keys) => match self.origin_key(keys, ephemeral.origin).await {
                Some(key) => {
                    auth::verify_event(&ephemeral.signed_form(), &key).map_err(|e| e.to_string())
                }
                None => Err(auth::AuthError::UnknownKey.to_string()),
            },
        };
        Input::EphemeralChecked {
            from,
            ephemeral,
            result,
        }
    }

    /// `origin`'s key: cached, or from its held identity event (verified on receipt).
    async fn origin_key(&self, keys: &Keys, origin: NodeId) -> Option<VerifyingKey> {
        if let Some(key) = lock(&keys.0).get(&origin) {
            return Some(*key);
        }
        let first = self.store.events_since(origin, 0, 1).await.ok()?;
        let first = first.first().filter(|e| e.seq == 1)?;
        let key = auth::verify_identity_event(first).ok()?;
        lock(&keys.0).insert(origin, key);
        Some(key)
    }
}
