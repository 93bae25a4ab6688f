//! A room's history written straight into a gossip-chat store: one new identity's signed
//! chat messages, as if it had typed them, for late-joiner tests and benchmarks.

use std::path::Path;

use bytes::Bytes;
use gossip::app::AppOp;
use gossip::store::file::{FileStoreOptions, FsyncPolicy, room_dir};
use gossip::store::{EventStore, FileEventStore};
use gossip::{Event, NodeId};
use uuid::Uuid;

/// Writes `messages` chat events (after the identity event, seq 1) into the store of `room`
/// under `data_dir`; returns the store's node id. Blocks; call it outside a runtime.
pub fn seed_room(data_dir: &Path, room: &str, messages: u64) -> NodeId {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let options = FileStoreOptions {
            fsync: FsyncPolicy::Never,
            ..FileStoreOptions::default()
        };
        let store = FileEventStore::open(&room_dir(data_dir, room), options).expect("a store");
        let identity = store.identity().clone();
        let id = identity.node_id();
        let now = gossip::node::now_ms();
        let mut batch = vec![identity.identity_event()];
        // Sealed as one chain after the identity event, as the node seals its own events.
        let mut prev = gossip::protocol::chain::chain_hash(&identity.identity_event());
        for seq in 2..=messages + 1 {
            let text = format!("message {} of the history", seq - 1);
            let payload = AppOp::chat(&text)
                .expect("a chat op")
                .encode()
                .expect("encodes");
            let mut e = Event {
                id: Uuid::now_v7(),
                origin: id,
                seq,
                // One message a millisecond, up to now: an honest past.
                hlc: gossip::protocol::Hlc::pack(now - (messages + 1 - seq), 0).0,
                created_at_ms: now - (messages + 1 - seq),
                payload: Bytes::from(payload),
                sig: Bytes::new(),
            };
            identity.sign_event_after(&mut e, &prev);
            prev = gossip::protocol::chain::chain_hash(&e);
            batch.push(e);
            if batch.len() == 10_000 {
                store
                    .save_many(std::mem::take(&mut batch))
                    .await
                    .expect("saved");
            }
        }
        store.save_many(batch).await.expect("saved");
        store.close().await.expect("closed");
        id
    })
}
