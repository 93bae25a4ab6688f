//! CPU-bound signature checks of received batches, spread over threads when a batch is
//! large (an ed25519 check costs tens of microseconds; a catch-up batch holds hundreds).
//! Plain functions: the node calls them on a blocking thread.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;

use super::{AuthError, verify_event, verify_identity_event};
use crate::protocol::{Event, NodeId};

/// A verifying thread gets at least this many events: below it, starting a thread costs
/// more than it saves.
pub const VERIFY_PER_THREAD_MIN: usize = 64;

/// Checks every event of `events` against its origin's key in `keys`. Identity events
/// (seq 1) are checked first and bring their key, which later events of the same batch
/// are checked with; new keys are added to `keys`. One verdict per event, in order.
pub fn verify_batch(
    events: &[Event],
    keys: &mut HashMap<NodeId, VerifyingKey>,
) -> Vec<Result<(), AuthError>> {
    let mut verdicts: Vec<Option<Result<(), AuthError>>> = events
        .iter()
        .map(|e| {
            (e.seq == 1).then(|| {
                verify_identity_event(e).map(|k| {
                    keys.insert(e.origin, k);
                })
            })
        })
        .collect();
    let keys = &*keys;
    let verify = |e: &Event| match keys.get(&e.origin) {
        Some(k) => verify_event(e, k),
        None => Err(AuthError::UnknownKey),
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(events.len() / VERIFY_PER_THREAD_MIN)
        .max(1);
    let chunk = events.len().div_ceil(threads).max(1);
    if threads == 1 {
        for (e, v) in events.iter().zip(&mut verdicts) {
            if v.is_none() {
                *v = Some(verify(e));
            }
        }
    } else {
        std::thread::scope(|scope| {
            for (evs, out) in events.chunks(chunk).zip(verdicts.chunks_mut(chunk)) {
                let verify = &verify;
                scope.spawn(move || {
                    for (e, v) in evs.iter().zip(out) {
                        if v.is_none() {
                            *v = Some(verify(e));
                        }
                    }
                });
            }
        });
    }
    verdicts
        .into_iter()
        .map(|v| v.unwrap_or(Err(AuthError::UnknownKey)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::NodeIdentity;

    #[test]
    fn a_batch_brings_its_own_keys_and_refuses_forgeries() {
        let id = NodeIdentity::generate();
        let first = id.identity_event();
        let mut second = first.clone();
        second.seq = 2;
        second.id = uuid::Uuid::from_u128(2);
        second.payload = bytes::Bytes::from_static(b"hi");
        id.sign_event(&mut second);
        let mut forged = second.clone();
        forged.payload = bytes::Bytes::from_static(b"ho");
        let mut keys = HashMap::new();
        let v = verify_batch(&[first, second, forged], &mut keys);
        assert!(v[0].is_ok() && v[1].is_ok());
        assert!(v[2].is_err());
        assert!(keys.contains_key(&id.node_id()));
    }
}
