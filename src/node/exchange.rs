//! Requests and sends on the transport, for the engine's exchanges and pushes.

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::Message;
use crate::protocol::engine::{ExchangeId, Input, RequestId};
use crate::transport::Peer;

use super::{Inner, lock};

impl Inner {
    /// A one-way send, beside the caller.
    pub(super) fn send(self: &Arc<Self>, to: Peer, message: Message) {
        let transport = self.transport.clone();
        tokio::spawn(async move {
            if let Err(e) = transport.send(&to, message).await {
                tracing::debug!(peer = %to.id, error = %e, "send failed");
            }
        });
    }

    /// A request, beside the caller; its response (or failure) is fed back.
    pub(super) fn request(
        self: &Arc<Self>,
        to: Peer,
        exchange: ExchangeId,
        message: Message,
        timeout: Duration,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let input = match this.transport.request(&to, message, timeout).await {
                Ok((message, wire_bytes)) => Input::Response {
                    exchange,
                    message,
                    wire_bytes,
                },
                Err(e) => Input::RequestFailed {
                    exchange,
                    error: e.to_string(),
                },
            };
            this.feed(input).await;
        });
    }

    /// Answers an inbound request.
    pub(super) fn respond(&self, request: RequestId, message: Message) {
        let Some(reply) = lock(&self.replies).remove(&request) else {
            return;
        };
        if !reply.send(message) {
            tracing::debug!("requester gone before the response");
        }
    }
}
