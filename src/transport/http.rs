//! A transport over HTTP/1.1 (cargo feature `http`): a second real transport, to show the
//! [`Transport`] trait is not shaped around TCP. `examples/http_transport.rs` runs nodes
//! on it.
//!
//! The exchange maps onto requests:
//! - a request (a digest) is `POST /gossip/request`; the response body carries the answer
//!   (the digest response with the events);
//! - a one-way send (a push, the exchange's final push) is `POST /gossip/send`, answered
//!   `202 Accepted` once the node has taken it.
//!
//! Each body is the bincode encoding (see [`crate::protocol::codec`]) of an [`Envelope`]:
//! the sender as a [`Peer`] (its id and where it listens) and the [`Message`]. Bodies are
//! refused past `max_message_size_bytes`, on both sides.
//!
//! This transport has no encryption and no proof of the sender's id: events stay signed
//! and verified by the node, but use it only on a network you trust, or behind TLS. It
//! also caps no connections (the TCP transport does): each request holds at most one
//! bounded body, but a hostile client could open many at once. Put it behind a proxy that
//! limits connections before exposing it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Inbound, Peer, PeerAddr, Reply, Transport, TransportError};
use crate::protocol::{Message, NodeId, codec};

/// The path of requests (digests).
pub const REQUEST_PATH: &str = "/gossip/request";
/// The path of one-way sends (pushes).
pub const SEND_PATH: &str = "/gossip/send";
/// The content type of bodies.
pub const CONTENT_TYPE: &str = "application/x-gossip-bincode";

/// What every request body holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender: its id and where it listens, so the receiver can add it as a peer.
    pub from: Peer,
    /// The message.
    pub message: Message,
}

/// How an [`HttpTransport`] runs.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// This node's id.
    pub node_id: NodeId,
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// The largest body accepted or sent.
    pub max_message_size_bytes: usize,
    /// How long the server waits for the node's answer to a request.
    pub reply_timeout: Duration,
}

impl HttpConfig {
    /// Defaults: 1 MiB bodies, 10 s to answer.
    pub fn new(node_id: NodeId, listen: SocketAddr) -> Self {
        HttpConfig {
            node_id,
            listen,
            max_message_size_bytes: 1 << 20,
            reply_timeout: Duration::from_secs(10),
        }
    }
}

struct Shared {
    config: HttpConfig,
    me: Peer,
    inbound: Mutex<Option<mpsc::Sender<Inbound>>>,
}

struct Running {
    cancel: CancellationToken,
}

/// Nodes talking HTTP/1.1: an axum server for what arrives, a reqwest client for what
/// leaves. See the [module docs](self).
pub struct HttpTransport {
    shared: Arc<Shared>,
    client: reqwest::Client,
    listener: Mutex<Option<std::net::TcpListener>>,
    running: Mutex<Option<Running>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a take or a replace: a panic cannot leave it torn.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HttpTransport {
    /// Binds the listening socket now (so [`Transport::local_addr`] is known before
    /// [`Transport::start`]).
    pub fn bind(config: HttpConfig) -> Result<HttpTransport, TransportError> {
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|e| TransportError::Io(format!("cannot listen on {}: {e}", config.listen)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let client = reqwest::Client::builder()
            // Peers are addressed directly; a proxy from the environment must not reroute.
            .no_proxy()
            .build()
            .map_err(|e| TransportError::Io(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpTransport {
            shared: Arc::new(Shared {
                me: Peer::new(config.node_id, addr.to_string()),
                config,
                inbound: Mutex::new(None),
            }),
            client,
            listener: Mutex::new(Some(listener)),
            running: Mutex::new(None),
        })
    }

    /// Where the server listens.
    pub fn socket_addr(&self) -> SocketAddr {
        // The address was parsed from a SocketAddr at bind time.
        self.shared
            .me
            .addr
            .0
            .parse()
            .unwrap_or(self.shared.config.listen)
    }

    async fn post(
        &self,
        peer: &Peer,
        path: &str,
        message: Message,
        timeout: Duration,
    ) -> Result<(StatusCode, Vec<u8>, usize), TransportError> {
        let body = codec::encode(&Envelope {
            from: self.shared.me.clone(),
            message,
        })?;
        let max = self.shared.config.max_message_size_bytes;
        if body.len() > max {
            return Err(TransportError::Protocol(format!(
                "a {} byte message is over the {max} byte limit",
                body.len()
            )));
        }
        let sent = body.len();
        let url = format!("http://{}{path}", peer.addr);
        let fail = |e: reqwest::Error| {
            if e.is_timeout() {
                TransportError::Timeout(timeout)
            } else if e.is_connect() {
                TransportError::Unreachable {
                    addr: peer.addr.clone(),
                    reason: e.to_string(),
                }
            } else {
                TransportError::Closed(e.to_string())
            }
        };
        let fut = async {
            let mut resp = self
                .client
                .post(&url)
                .header("content-type", CONTENT_TYPE)
                .body(body)
                .send()
                .await
                .map_err(fail)?;
            let status = resp.status();
            let mut out = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(fail)? {
                if out.len() + chunk.len() > max {
                    return Err(TransportError::Protocol(format!(
                        "{} answered more than {max} bytes",
                        peer.addr
                    )));
                }
                out.extend_from_slice(&chunk);
            }
            Ok((
                StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
                out,
            ))
        };
        let (status, out) = tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| TransportError::Timeout(timeout))??;
        let total = sent + out.len();
        Ok((status, out, total))
    }
}

/// An error status as a transport error, with the peer's (bounded, escaped) reason.
fn status_error(status: StatusCode, body: &[u8]) -> TransportError {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)])
        .escape_debug()
        .to_string();
    match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            TransportError::Closed(format!("peer not running: {text}"))
        }
        StatusCode::GATEWAY_TIMEOUT => {
            TransportError::Closed(format!("peer gave no answer: {text}"))
        }
        s => TransportError::Protocol(format!("HTTP {s}: {text}")),
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn start(&self, inbound: mpsc::Sender<Inbound>) -> Result<(), TransportError> {
        let mut running = lock(&self.running);
        if running.is_some() {
            return Ok(());
        }
        let listener = match lock(&self.listener).take() {
            Some(l) => l,
            // Restarted after a stop: listen again on the same port.
            None => {
                let l = std::net::TcpListener::bind(self.socket_addr())?;
                l.set_nonblocking(true)?;
                l
            }
        };
        let listener = tokio::net::TcpListener::from_std(listener)?;
        *lock(&self.shared.inbound) = Some(inbound);
        let cancel = CancellationToken::new();
        let app = Router::new()
            .route(REQUEST_PATH, post(on_request))
            .route(SEND_PATH, post(on_send))
            .layer(DefaultBodyLimit::max(
                self.shared.config.max_message_size_bytes,
            ))
            .with_state(self.shared.clone());
        let stop = cancel.clone();
        tokio::spawn(async move {
            let served = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the HTTP transport's server stopped");
            }
        });
        *running = Some(Running { cancel });
        Ok(())
    }

    async fn stop(&self) {
        if let Some(r) = lock(&self.running).take() {
            r.cancel.cancel();
        }
        lock(&self.shared.inbound).take();
    }

    async fn request(
        &self,
        peer: &Peer,
        message: Message,
        timeout: Duration,
    ) -> Result<(Message, usize), TransportError> {
        if lock(&self.running).is_none() {
            return Err(TransportError::NotStarted);
        }
        let (status, body, total) = self.post(peer, REQUEST_PATH, message, timeout).await?;
        if status != StatusCode::OK {
            return Err(status_error(status, &body));
        }
        let reply = codec::decode(&body, self.shared.config.max_message_size_bytes)?;
        Ok((reply, total))
    }

    async fn send(&self, peer: &Peer, message: Message) -> Result<(), TransportError> {
        if lock(&self.running).is_none() {
            return Err(TransportError::NotStarted);
        }
        let timeout = self.shared.config.reply_timeout;
        let (status, body, _) = self.post(peer, SEND_PATH, message, timeout).await?;
        if status != StatusCode::ACCEPTED {
            return Err(status_error(status, &body));
        }
        Ok(())
    }

    fn local_addr(&self) -> PeerAddr {
        self.shared.me.addr.clone()
    }
}

/// Decodes a body and hands it to the node; a body that does not decode is reported to
/// the node as rejected input (counted there) and refused with 400.
async fn deliver(
    shared: &Shared,
    remote: SocketAddr,
    body: &[u8],
    reply: Option<Reply>,
) -> Result<(), Response> {
    let Some(inbound) = lock(&shared.inbound).clone() else {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "not running").into_response());
    };
    let decoded = codec::decode::<Envelope>(body, shared.config.max_message_size_bytes)
        .map_err(TransportError::from)
        .and_then(|e| {
            // As on a TCP link: a message speaks for the sender only.
            if e.message.from() == e.from.id {
                Ok(e)
            } else {
                Err(TransportError::Protocol(format!(
                    "a {} from {} sent by {}",
                    e.message.kind(),
                    e.message.from(),
                    e.from.id
                )))
            }
        });
    let envelope = match decoded {
        Ok(e) => e,
        Err(error) => {
            let text = error.to_string();
            // Waiting here is backpressure on the sender, never a loss.
            let _ = inbound
                .send(Inbound::Rejected {
                    addr: PeerAddr(remote.to_string()),
                    peer: None,
                    error,
                })
                .await;
            return Err((StatusCode::BAD_REQUEST, text).into_response());
        }
    };
    let msg = Inbound::Message {
        from: envelope.from,
        message: envelope.message,
        reply,
        wire_bytes: body.len(),
    };
    inbound
        .send(msg)
        .await
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "stopping").into_response())
}

async fn on_request(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let (reply, answer) = Reply::channel();
    if let Err(r) = deliver(&shared, remote, &body, Some(reply)).await {
        return r;
    }
    match tokio::time::timeout(shared.config.reply_timeout, answer).await {
        Ok(Ok(message)) => match codec::encode(&message) {
            Ok(bytes) => (StatusCode::OK, [("content-type", CONTENT_TYPE)], bytes).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
        // The node dropped the request (it refused it) or took too long.
        Ok(Err(_)) => (StatusCode::GATEWAY_TIMEOUT, "the node did not answer").into_response(),
        Err(_) => (StatusCode::GATEWAY_TIMEOUT, "the node's answer timed out").into_response(),
    }
}

async fn on_send(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    match deliver(&shared, remote, &body, None).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn started() -> (HttpTransport, mpsc::Receiver<Inbound>) {
        let t = HttpTransport::bind(HttpConfig::new(
            NodeId::random(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        ))
        .unwrap();
        let (tx, rx) = mpsc::channel(8);
        t.start(tx).await.unwrap();
        (t, rx)
    }

    async fn post_raw(t: &HttpTransport, path: &str, body: Vec<u8>) -> u16 {
        let url = format!("http://{}{path}", t.local_addr());
        let r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(url)
            .body(body)
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    }

    #[tokio::test]
    async fn junk_and_spoofed_senders_are_refused_and_reported() {
        let (t, mut rx) = started().await;
        assert_eq!(post_raw(&t, SEND_PATH, b"junk".to_vec()).await, 400);
        assert!(matches!(
            rx.recv().await,
            Some(Inbound::Rejected {
                error: TransportError::Codec(_),
                ..
            })
        ));
        let spoof = Envelope {
            from: Peer::new(NodeId::random(), "127.0.0.1:1"),
            message: Message::Digest {
                from: NodeId::random(),
                entries: Vec::new(),
            },
        };
        let body = codec::encode(&spoof).unwrap();
        assert_eq!(post_raw(&t, REQUEST_PATH, body).await, 400);
        assert!(matches!(
            rx.recv().await,
            Some(Inbound::Rejected {
                error: TransportError::Protocol(_),
                ..
            })
        ));
        let too_big = vec![0u8; (1 << 20) + 1];
        assert_eq!(post_raw(&t, SEND_PATH, too_big).await, 413);
        t.stop().await;
    }
}
