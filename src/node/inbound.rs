//! Transport input to engine input, a bounded number at once.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::protocol::engine::{Input, RequestId};
use crate::transport::Inbound;

use super::{INBOUND_CONCURRENCY, Inner, lock};

impl Inner {
    /// Reads the transport's channel until cancelled. Each item reaches the engine in the
    /// order read; its I/O runs beside the loop, at most [`INBOUND_CONCURRENCY`] at once:
    /// past that the loop stops reading, and the transport's bounded channel pushes back
    /// on its connections.
    pub(super) async fn inbound_loop(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Inbound>,
        cancel: CancellationToken,
    ) {
        let permits = Arc::new(Semaphore::new(INBOUND_CONCURRENCY));
        loop {
            let item = tokio::select! {
                _ = cancel.cancelled() => return,
                item = rx.recv() => match item { Some(i) => i, None => return },
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let item = match item {
                Inbound::Message {
                    from,
                    message,
                    reply,
                    wire_bytes,
                } => match self.take_blob(from.id, message, reply) {
                    Ok(Some(serve)) => {
                        tokio::spawn(async move {
                            serve.await;
                            drop(permit);
                        });
                        continue;
                    }
                    Ok(None) => continue,
                    Err((message, reply)) => Inbound::Message {
                        from,
                        message,
                        reply,
                        wire_bytes,
                    },
                },
                other => other,
            };
            let input = self.inbound_input(item);
            let io = self.feed_in_order(input);
            tokio::spawn(async move {
                io.await;
                drop(permit);
            });
        }
    }

    fn inbound_input(&self, item: Inbound) -> Input {
        match item {
            Inbound::Message {
                from,
                message,
                reply,
                wire_bytes,
            } => {
                let request = reply.map(|reply| {
                    let id = RequestId(self.next_id());
                    lock(&self.replies).insert(id, reply);
                    id
                });
                Input::Received {
                    from,
                    message,
                    request,
                    wire_bytes,
                }
            }
            Inbound::Disconnected { peer, reason } => Input::Disconnected { peer, reason },
            Inbound::Rejected { addr, peer, error } => {
                tracing::warn!(%addr, ?peer, %error, "inbound input refused");
                Input::Rejected {
                    peer,
                    error: format!("{addr}: {error}"),
                }
            }
        }
    }
}
