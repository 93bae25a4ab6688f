//! The store side of the engine: fetches, saves, and the signature checks received events
//! pass before they are saved.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ed25519_dalek::VerifyingKey;

use crate::auth::{self, AuthError};
use crate::protocol::engine::{FetchId, Input, SaveId, Verdict};
use crate::protocol::exchange::Want;
use crate::protocol::{Event, NodeId};
use crate::store::{SaveOutcome, StoreError};

use super::pending_keys::{PendingKeys, Ticket};
use super::{Inner, VERIFY_INLINE_MAX, lock};

/// Verified public keys of origins, learnt from their identity events, and the identity
/// events being verified.
#[derive(Default)]
pub(crate) struct Keys(
    pub(super) Mutex<HashMap<NodeId, VerifyingKey>>,
    pub(super) PendingKeys,
);

fn verdict(o: SaveOutcome) -> Verdict {
    match o {
        SaveOutcome::Inserted => Verdict::Inserted,
        SaveOutcome::Duplicate => Verdict::Duplicate,
        SaveOutcome::Equivocation { held, replaced } => Verdict::Equivocation { held, replaced },
        SaveOutcome::Conflict => Verdict::Conflict,
    }
}

impl Inner {
    /// A store read: the clock, then per want that origin's events, `limit` in all.
    pub(super) async fn fetch(
        self: Arc<Self>,
        fetch: FetchId,
        wants: Vec<Want>,
        limit: usize,
    ) -> Input {
        match self.read(wants, limit).await {
            Ok((clock, events)) => Input::Fetched {
                fetch,
                clock,
                events,
            },
            Err(e) => {
                tracing::error!(error = %e, "store read failed");
                Input::FetchFailed {
                    fetch,
                    error: e.to_string(),
                }
            }
        }
    }

    async fn read(
        &self,
        wants: Vec<Want>,
        limit: usize,
    ) -> Result<(crate::protocol::VectorClock, Vec<Event>), StoreError> {
        let clock = self.store.clock().await?;
        let mut events = Vec::new();
        for want in wants {
            let left = limit.saturating_sub(events.len());
            if left == 0 {
                break;
            }
            events.extend(
                self.store
                    .events_since(want.origin, want.after, left)
                    .await?,
            );
        }
        Ok((clock, events))
    }

    /// A store write. Own events are saved durably; received ones are checked (if this
    /// node verifies) and saved as received.
    pub(super) async fn save(
        self: Arc<Self>,
        save: SaveId,
        events: Vec<Event>,
        own: bool,
        from: NodeId,
    ) -> Input {
        let ticket = self.keys.as_ref().and_then(|k| k.1.take(save));
        let result = if own {
            self.save_own(events).await
        } else {
            self.save_received(events, from, ticket).await
        };
        match result {
            Ok(verdicts) => Input::Saved { save, verdicts },
            Err(e) => Input::SaveFailed {
                save,
                error: e.to_string(),
            },
        }
    }

    /// Makes the own-seq reservation durable.
    pub(super) async fn reserve(self: Arc<Self>, up_to: u64) -> Input {
        match self.store.reserve_seqs(up_to).await {
            Ok(()) => Input::Reserved { up_to },
            Err(e) => Input::ReserveFailed {
                error: e.to_string(),
            },
        }
    }

    /// A group of own events, in one durable save (one fsync for the group).
    async fn save_own(&self, events: Vec<Event>) -> Result<Vec<Verdict>, StoreError> {
        let outcomes = self.store.save_own(events).await?;
        Ok(outcomes.into_iter().map(verdict).collect())
    }

    async fn save_received(
        &self,
        events: Vec<Event>,
        from: NodeId,
        ticket: Option<Ticket>,
    ) -> Result<Vec<Verdict>, StoreError> {
        let (events, checks) = match &self.keys {
            Some(keys) => self.verify(keys, events, from, ticket).await,
            None => {
                let n = events.len();
                (events, vec![Ok(()); n])
            }
        };
        let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(checks.len());
        let mut to_save = Vec::with_capacity(events.len());
        // One check per event; a check that failed to run brings no events back.
        let mut events = events.into_iter();
        for check in checks {
            match (check, events.next()) {
                (Ok(()), Some(e)) => {
                    verdicts.push(None);
                    to_save.push(e);
                }
                (Ok(()), None) => verdicts.push(Some(Verdict::KeyUnknown)),
                (Err(AuthError::UnknownKey), _) => verdicts.push(Some(Verdict::KeyUnknown)),
                (Err(why), _) => verdicts.push(Some(Verdict::Refused(why.to_string()))),
            }
        }
        let mut outcomes = if to_save.is_empty() {
            Vec::new()
        } else {
            self.store.save_received(to_save).await?
        }
        .into_iter();
        Ok(verdicts
            .into_iter()
            .map(|v| {
                v.unwrap_or_else(|| {
                    outcomes.next().map_or(
                        Verdict::Refused("no verdict from the store".into()),
                        verdict,
                    )
                })
            })
            .collect())
    }

    /// Checks signatures: keys of origins not known yet come from their held identity
    /// event (held events were verified on receipt), or from an earlier save still
    /// verifying it ([`PendingKeys`]); large batches are checked on a blocking thread.
    /// The ticket is dropped once the keys learnt here are in the cache.
    async fn verify(
        &self,
        keys: &Keys,
        events: Vec<Event>,
        from: NodeId,
        ticket: Option<Ticket>,
    ) -> (Vec<Event>, Vec<Result<(), AuthError>>) {
        let unknown = |known: &HashMap<NodeId, VerifyingKey>| {
            let carried: std::collections::HashSet<NodeId> = events
                .iter()
                .filter(|e| e.seq == 1)
                .map(|e| e.origin)
                .collect();
            let mut v: Vec<NodeId> = events
                .iter()
                .filter(|e| e.seq > 1 && !known.contains_key(&e.origin))
                .filter(|e| !carried.contains(&e.origin))
                .map(|e| e.origin)
                .collect();
            v.sort();
            v.dedup();
            v
        };
        if let Some(t) = &ticket {
            let missing = unknown(&lock(&keys.0));
            if !missing.is_empty() {
                keys.1.wait(t, &missing).await;
            }
        }
        let mut known = lock(&keys.0).clone();
        let lookup = unknown(&known);
        for origin in lookup {
            if let Ok(first) = self.store.events_since(origin, 0, 1).await
                && let Some(first) = first.first()
                && first.seq == 1
                && let Ok(key) = auth::verify_identity_event(first)
            {
                known.insert(origin, key);
            }
        }
        let (events, verdicts, known) = if events.len() <= VERIFY_INLINE_MAX {
            let v = auth::verify::verify_batch(&events, &mut known);
            (events, v, known)
        } else {
            // The events go to the blocking thread and come back: no copy of the batch.
            let n = events.len();
            let run = move || {
                let v = auth::verify::verify_batch(&events, &mut known);
                (events, v, known)
            };
            match tokio::task::spawn_blocking(run).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(peer = %from, error = %e, "event verification failed to run");
                    return (Vec::new(), vec![Err(AuthError::UnknownKey); n]);
                }
            }
        };
        lock(&keys.0).extend(known);
        (events, verdicts)
    }
}
