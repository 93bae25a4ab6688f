//! Identity events being verified, so a later save waits for the key instead of refusing.
//!
//! Received saves run beside each other. When one peer pushes an origin's identity event
//! (seq 1) and then its seq 2 in two messages, the second save may check its signature
//! while the first is still verifying: the key is in neither the cache nor the store yet,
//! and the event would be refused as "key unknown" (then pulled again later). So each
//! received save is numbered when the engine issues it (under the engine's lock, in the
//! engine's order), and a save that lacks an origin's key waits for an earlier save that
//! carries that origin's identity event. Only earlier saves are awaited, so no two saves
//! wait for each other; the wait is bounded by [`WAIT_MAX`] in case a save never runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::protocol::engine::{Output, SaveId};
use crate::protocol::{Event, NodeId};

use super::lock;

/// The longest a save waits for an earlier save's identity event.
pub(super) const WAIT_MAX: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    next: u64,
    /// Per origin, the earliest pending save that carries its identity event.
    by_origin: HashMap<NodeId, (u64, watch::Receiver<bool>)>,
    /// Issued saves not yet started.
    by_save: HashMap<SaveId, Ticket>,
}

/// The identity events of received saves that are issued and not yet verified.
#[derive(Default, Clone)]
pub(crate) struct PendingKeys(Arc<Mutex<State>>);

/// One received save's place in the engine's order; dropping it (once its events are
/// verified) wakes the saves waiting for its identity events.
pub(crate) struct Ticket {
    no: u64,
    origins: Vec<NodeId>,
    done: watch::Sender<bool>,
    state: Arc<Mutex<State>>,
}

impl PendingKeys {
    /// Numbers the received saves among `outputs`, noting the origins whose identity
    /// event each carries. Called under the engine's lock, in the engine's order.
    pub(super) fn register(&self, outputs: &[Output]) {
        let mut st = lock(&self.0);
        for out in outputs {
            let Output::Save {
                save,
                events,
                own: false,
                ..
            } = out
            else {
                continue;
            };
            st.next += 1;
            let no = st.next;
            let (done, rx) = watch::channel(false);
            let origins = identities(events);
            for o in &origins {
                st.by_origin.entry(*o).or_insert_with(|| (no, rx.clone()));
            }
            let ticket = Ticket {
                no,
                origins,
                done,
                state: self.0.clone(),
            };
            st.by_save.insert(*save, ticket);
        }
    }

    /// The ticket of `save`, as it starts.
    pub(super) fn take(&self, save: SaveId) -> Option<Ticket> {
        lock(&self.0).by_save.remove(&save)
    }

    /// Waits until every save issued before `ticket` that carries the identity event of
    /// one of `origins` has been verified (at most [`WAIT_MAX`]).
    pub(super) async fn wait(&self, ticket: &Ticket, origins: &[NodeId]) {
        let waits: Vec<watch::Receiver<bool>> = {
            let st = lock(&self.0);
            origins
                .iter()
                .filter_map(|o| st.by_origin.get(o))
                .filter(|(no, _)| *no < ticket.no)
                .map(|(_, rx)| rx.clone())
                .collect()
        };
        for mut rx in waits {
            // An error means the earlier save is gone: nothing more to wait for.
            let _ = tokio::time::timeout(WAIT_MAX, rx.wait_for(|done| *done)).await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        for o in &self.origins {
            if st.by_origin.get(o).is_some_and(|(no, _)| *no == self.no) {
                st.by_origin.remove(o);
            }
        }
        drop(st);
        let _ = self.done.send(true);
    }
}

/// The origins whose identity event (seq 1) is among `events`.
fn identities(events: &[Event]) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = events
        .iter()
        .filter(|e| e.seq == 1)
        .map(|e| e.origin)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ev(origin: u128, seq: u64) -> Event {
        Event {
            id: uuid::Uuid::from_u128(origin << 32 | seq as u128),
            origin: NodeId::from_u128(origin),
            seq,
            hlc: seq,
            created_at_ms: 1,
            payload: Bytes::new(),
            sig: Bytes::new(),
        }
    }

    fn save(id: u64, events: Vec<Event>) -> Output {
        Output::Save {
            save: SaveId(id),
            events,
            own: false,
            from: NodeId::from_u128(9),
        }
    }

    #[tokio::test]
    async fn a_later_save_waits_for_an_earlier_identity_and_not_the_reverse() {
        let p = PendingKeys::default();
        p.register(&[
            save(1, vec![ev(5, 1), ev(6, 2)]),
            save(2, vec![ev(6, 1), ev(5, 2)]),
        ]);
        let first = p.take(SaveId(1)).unwrap();
        let second = p.take(SaveId(2)).unwrap();
        // The first never waits for the second (which holds origin 6's identity).
        tokio::time::timeout(
            Duration::from_millis(50),
            p.wait(&first, &[NodeId::from_u128(6)]),
        )
        .await
        .unwrap();
        // The second waits for the first (origin 5) until it is dropped.
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move {
                p.wait(&second, &[NodeId::from_u128(5)]).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiting.is_finished());
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(lock(&p.0).by_origin.is_empty());
    }
}
