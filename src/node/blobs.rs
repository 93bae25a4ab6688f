//! Blob requests: answered by the app's [`BlobServer`], made with [`GossipNode::get_blob`].
//!
//! Blob messages never reach the engine: bytes are not events, and serving them touches
//! no clock, digest or peer state. They share the connections (and their budgets) of the
//! exchanges, so a blob transfer is paced by the same backpressure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::protocol::blob::{BlobAnswer, BlobId, BlobPart};
use crate::protocol::{Message, NodeId};
use crate::transport::{Peer, Reply};

use super::error::GossipError;
use super::facade::GossipNode;
use super::{Inner, lock};

/// Answers peers' requests for blob parts (the app's blob store).
#[async_trait]
pub trait BlobServer: Send + Sync + 'static {
    /// The answer to `from`'s request for `part` of `blob`: the part, `Missing` or `Busy`.
    async fn serve(&self, from: NodeId, blob: BlobId, part: BlobPart) -> BlobAnswer;
}

/// Counters of blob traffic.
#[derive(Debug, Default)]
pub(crate) struct BlobCounters {
    served: AtomicU64,
    refused: AtomicU64,
}

/// Blob traffic so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobStats {
    /// Requests answered with a part.
    pub served: u64,
    /// Blob messages refused (a `BlobData` nobody asked for, a `BlobGet` not sent as a
    /// request).
    pub refused: u64,
}

impl Inner {
    /// Handles a blob message beside the inbound loop; `None` if `message` is not one (it
    /// goes to the engine).
    pub(super) fn take_blob(
        self: &Arc<Self>,
        from: NodeId,
        message: Message,
        reply: Option<Reply>,
    ) -> Result<Option<impl Future<Output = ()> + use<>>, (Message, Option<Reply>)> {
        match (message, reply) {
            (Message::BlobGet { blob, part, .. }, Some(reply)) => {
                let this = self.clone();
                Ok(Some(async move {
                    let server = lock(&this.blob_server).clone();
                    let answer = match server {
                        Some(s) => s.serve(from, blob, part).await,
                        None => BlobAnswer::Missing,
                    };
                    if matches!(answer, BlobAnswer::Chunk { .. } | BlobAnswer::Hashes { .. }) {
                        this.blob_counters.served.fetch_add(1, Ordering::Relaxed);
                    }
                    let me = this.config.node_id;
                    reply.send(Message::BlobData {
                        from: me,
                        blob,
                        answer,
                    });
                }))
            }
            (m @ (Message::BlobGet { .. } | Message::BlobData { .. }), reply) => {
                self.blob_counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = %from, kind = m.kind(), "blob message out of place");
                if let Some(reply) = reply {
                    // A request gets an answer, so the asker does not wait out its timeout.
                    let me = self.config.node_id;
                    let blob = match m {
                        Message::BlobGet { blob, .. } | Message::BlobData { blob, .. } => blob,
                        _ => BlobId([0; 32]),
                    };
                    reply.send(Message::BlobData {
                        from: me,
                        blob,
                        answer: BlobAnswer::Missing,
                    });
                }
                Ok(None)
            }
            (message, reply) => Err((message, reply)),
        }
    }
}

impl GossipNode {
    /// Serves peers' blob requests from `server` from now on (without one, every request is
    /// answered `Missing`).
    pub fn set_blob_server(&self, server: Arc<dyn BlobServer>) {
        *lock(&self.inner.blob_server) = Some(server);
    }

    /// Asks `peer` for `part` of `blob`, waiting at most `timeout`. The answer is not
    /// checked: see [`crate::protocol::blob::FetchPlan`].
    pub async fn get_blob(
        &self,
        peer: NodeId,
        blob: BlobId,
        part: BlobPart,
        timeout: Duration,
    ) -> Result<BlobAnswer, GossipError> {
        let info = self.peer(peer).ok_or(GossipError::UnknownPeer(peer))?;
        let to = Peer::new(peer, info.addr);
        let message = Message::BlobGet {
            from: self.id(),
            blob,
            part,
        };
        let (answer, _) = self.inner.transport.request(&to, message, timeout).await?;
        match answer {
            Message::BlobData {
                blob: b, answer, ..
            } if b == blob => Ok(answer),
            other => Err(GossipError::Protocol(format!(
                "a {} answered a blob request",
                other.kind()
            ))),
        }
    }

    /// Blob traffic so far.
    pub fn blob_stats(&self) -> BlobStats {
        let c = &self.inner.blob_counters;
        BlobStats {
            served: c.served.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
        }
    }
}
