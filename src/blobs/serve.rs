//! Serving a blob store to peers.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use super::store::BlobStore;
use crate::node::BlobServer;
use crate::protocol::NodeId;
use crate::protocol::blob::{BlobAnswer, BlobId, BlobPart};

/// Chunk reads at once, for all peers together; past it, requests are answered `Busy` (the
/// asker tries elsewhere or later) instead of piling up blocking threads.
pub const MAX_READS: usize = 16;

/// A [`BlobServer`] answering from a [`BlobStore`]: only whole blobs are served.
pub struct StoreServer {
    store: Arc<BlobStore>,
    reads: Arc<Semaphore>,
}

impl StoreServer {
    /// A server over `store`.
    pub fn new(store: Arc<BlobStore>) -> StoreServer {
        StoreServer {
            store,
            reads: Arc::new(Semaphore::new(MAX_READS)),
        }
    }
}

#[async_trait]
impl BlobServer for StoreServer {
    async fn serve(&self, _from: NodeId, blob: BlobId, part: BlobPart) -> BlobAnswer {
        let Ok(permit) = self.reads.clone().try_acquire_owned() else {
            return BlobAnswer::Busy;
        };
        let store = self.store.clone();
        let answer = tokio::task::spawn_blocking(move || {
            if !store.has(blob) {
                return None;
            }
            match part {
                BlobPart::Hashes { first } => store.manifest(blob)?.page(first),
                BlobPart::Chunk { index } => {
                    store.read_chunk(blob, index).map(|data| BlobAnswer::Chunk {
                        index,
                        data: data.into(),
                    })
                }
            }
        })
        .await;
        drop(permit);
        answer.ok().flatten().unwrap_or(BlobAnswer::Missing)
    }
}
