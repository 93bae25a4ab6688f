//! One established connection: a reader task that dispatches frames, a writer task fed
//! by a bounded channel, and request/response matching by exchange id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use super::io::{FrameReader, FrameWriter, ReadError};
use super::stats::LinkCounters;
use crate::protocol::Message;
use crate::text::escape;
use crate::transport::codec::{
    BYE_EVICTED, BYE_IDLE, BYE_REDIAL, BYE_REPLACED, BYE_STOPPING, Frame, HANDSHAKE_FRAME_MAX,
    LENGTH_PREFIX, encode_frame,
};
use crate::transport::{Inbound, Peer, Reply, TransportError};

/// Frames queued for the writer before senders wait.
const WRITE_QUEUE: usize = 64;
/// Requests from the peer being answered at once on one connection; more wait (and the
/// reader with them), so a peer cannot pile up work.
const INBOUND_REQUESTS: usize = 16;
/// Frames written before one flush.
const WRITE_BATCH: usize = 64;
/// Bytes written before one flush: a batch must fit comfortably in one I/O deadline.
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// Why a connection closed. The first reason recorded wins.
#[derive(Debug, Clone)]
pub(super) enum Close {
    /// Our transport is stopping.
    Stopping,
    /// No frame either way for the idle timeout.
    Idle,
    /// A newer connection with the same peer, in the same direction, took over.
    Replaced,
    /// The inbound slots ran short and this member gave least (see `admission`).
    Evicted,
    /// A request on it timed out: it may be dead without TCP knowing yet, so the next
    /// request dials a fresh one.
    Redial,
    /// The peer said goodbye.
    PeerBye(String),
    /// The connection broke (EOF, reset, a write that failed or stalled).
    Lost(String),
    /// The peer broke the protocol; it is told why.
    Violation(TransportError),
}

impl Close {
    /// What a `Bye` tells the peer, when it is worth telling.
    fn bye(&self) -> Option<String> {
        match self {
            Close::Stopping => Some(BYE_STOPPING.into()),
            Close::Idle => Some(BYE_IDLE.into()),
            Close::Replaced => Some(BYE_REPLACED.into()),
            Close::Evicted => Some(BYE_EVICTED.into()),
            Close::Redial => Some(BYE_REDIAL.into()),
            Close::Violation(e) => Some(e.to_string()),
            Close::PeerBye(_) | Close::Lost(_) => None,
        }
    }

    /// A description for logs and errors.
    pub(super) fn describe(&self) -> String {
        match self {
            Close::PeerBye(r) => format!("peer said bye: {r}"),
            Close::Lost(r) => r.clone(),
            Close::Violation(e) => e.to_string(),
            other => other.bye().unwrap_or_default(),
        }
    }
}

/// Deadlines and sizes of a connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnLimits {
    pub(super) max_body: usize,
    pub(super) io_timeout: Duration,
    pub(super) idle_timeout: Duration,
    /// Outbound bytes queued (or reserved for responses being built) at most, per
    /// connection; at least one largest frame.
    pub(super) out_budget: usize,
}

impl ConnLimits {
    /// What one frame of `len` body bytes takes from the outbound budget.
    fn cost(&self, len: usize) -> u32 {
        let cost = (len + LENGTH_PREFIX).min(self.out_budget);
        u32::try_from(cost).unwrap_or(u32::MAX)
    }
}

/// An encoded frame waiting for the writer, with its share of the outbound budget (given
/// back once written).
pub(super) struct Queued {
    body: Bytes,
    _budget: OwnedSemaphorePermit,
}

type Pending = HashMap<u64, oneshot::Sender<(Message, usize)>>;

/// An established connection, shared by the transport's map, its tasks and requesters.
pub(super) struct Conn {
    /// Unique per transport, to tell connections with the same peer apart.
    pub(super) serial: u64,
    /// The peer, with the address it listens on.
    pub(super) peer: Peer,
    /// The socket's remote address.
    pub(super) remote: SocketAddr,
    /// Whether we dialed it.
    pub(super) outbound: bool,
    pub(super) link: Arc<LinkCounters>,
    pub(super) cancel: CancellationToken,
    limits: ConnLimits,
    tx: mpsc::Sender<Queued>,
    /// Outbound bytes that may still be queued: see [`ConnLimits::out_budget`].
    budget: Arc<Semaphore>,
    pending: Mutex<Pending>,
    next_xid: AtomicU64,
    close: Mutex<Option<Close>>,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last frame in or out.
    last_activity_ms: AtomicU64,
    /// Milliseconds since `epoch` of the last frame received.
    last_in_ms: AtomicU64,
    request_slots: Arc<Semaphore>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is a single map or option update: poison leaves it consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conn {
    pub(super) fn new(
        serial: u64,
        peer: Peer,
        remote: SocketAddr,
        outbound: bool,
        link: Arc<LinkCounters>,
        cancel: CancellationToken,
        limits: ConnLimits,
    ) -> (Arc<Conn>, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let conn = Conn {
            serial,
            peer,
            remote,
            outbound,
            link,
            cancel,
            limits,
            tx,
            budget: Arc::new(Semaphore::new(limits.out_budget)),
            pending: Mutex::new(HashMap::new()),
            next_xid: AtomicU64::new(1),
            close: Mutex::new(None),
            epoch: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            last_in_ms: AtomicU64::new(0),
            request_slots: Arc::new(Semaphore::new(INBOUND_REQUESTS)),
        };
        (Arc::new(conn), rx)
    }

    /// Queues `body` on the still-empty write queue, ahead of anything else.
    pub(super) fn queue_first(&self, body: Bytes) {
        let queued = self
            .budget
            .clone()
            .try_acquire_many_owned(self.limits.cost(body.len()))
            .ok()
            .map(|permit| Queued {
                body,
                _budget: permit,
            });
        // The queue is fresh and empty: this cannot fail, but if it did the connection
        // would be useless, so it closes rather than go on without our Hello.
        if queued.is_none_or(|q| self.tx.try_send(q).is_err()) {
            self.close(Close::Lost("could not queue the first frame".into()));
        }
    }

    /// Closes the connection for `reason` (unless it is closing already).
    pub(super) fn close(&self, reason: Close) {
        {
            let mut c = lock(&self.close);
            if c.is_none() {
                *c = Some(reason);
            }
        }
        self.cancel.cancel();
    }

    pub(super) fn is_open(&self) -> bool {
        !self.cancel.is_cancelled()
    }

    fn reason(&self) -> Close {
        lock(&self.close).clone().unwrap_or(Close::Stopping)
    }

    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_activity_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn touch_in(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_in_ms.fetch_max(ms, Ordering::Relaxed);
        self.last_activity_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the peer last sent a frame on this connection (its start, if never).
    pub(super) fn last_in(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_in_ms.load(Ordering::Relaxed))
    }

    fn idle_deadline(&self) -> Instant {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.epoch + last + self.limits.idle_timeout
    }

    /// Takes `cost` bytes of the outbound budget, waiting for the peer to drain its queue
    /// until `deadline`. A peer that does not drain within the I/O timeout is closed: it
    /// does not read, and holding its queue would hold our memory.
    async fn reserve(
        &self,
        cost: u32,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, TransportError> {
        let full_wait = Instant::now() + self.limits.io_timeout;
        let drain_by = deadline.min(full_wait);
        let acquired = tokio::select! {
            _ = self.cancel.cancelled() => None,
            r = timeout_at(drain_by, self.budget.clone().acquire_many_owned(cost)) => match r {
                Ok(Ok(permit)) => Some(Ok(permit)),
                Ok(Err(_)) => None,
                Err(_) => Some(Err(())),
            },
        };
        match acquired {
            Some(Ok(permit)) => Ok(permit),
            None => Err(TransportError::Closed(self.reason().describe())),
            Some(Err(())) if drain_by == full_wait => {
                let queued = self.limits.out_budget - self.budget.available_permits();
                let why = format!(
                    "{queued} outbound bytes not drained in {:?} (the peer does not read)",
                    self.limits.io_timeout
                );
                self.close(Close::Lost(why.clone()));
                Err(TransportError::Closed(why))
            }
            Some(Err(())) => Err(TransportError::Timeout(self.limits.io_timeout)),
        }
    }

    /// Queues an encoded body for the writer, waiting at most until `deadline`.
    async fn send_body(&self, body: Bytes, deadline: Instant) -> Result<(), TransportError> {
        let budget = self.reserve(self.limits.cost(body.len()), deadline).await?;
        self.queue(body, budget, deadline).await
    }

    /// Queues `body`, whose share of the budget is `budget`.
    async fn queue(
        &self,
        body: Bytes,
        budget: OwnedSemaphorePermit,
        deadline: Instant,
    ) -> Result<(), TransportError> {
        if !self.is_open() {
            return Err(TransportError::Closed(self.reason().describe()));
        }
        let item = Queued {
            body,
            _budget: budget,
        };
        match timeout_at(deadline, self.tx.send(item)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(TransportError::Closed(self.reason().describe())),
            Err(_) => Err(TransportError::Timeout(self.limits.io_timeout)),
        }
    }

    fn encode(&self, frame: &Frame) -> Result<Bytes, TransportError> {
        encode_frame(frame, self.limits.max_body).map_err(|e| TransportError::Codec(e.to_string()))
    }

    /// Sends a request and waits for the response with the same exchange id, until
    /// `deadline`. Returns the response and its size on the wire.
    pub(super) async fn request(
        &self,
        message: Message,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(Message, usize), TransportError> {
        let started = Instant::now();
        let xid = self.next_xid.fetch_add(1, Ordering::Relaxed);
        let body = self.encode(&Frame::Request { xid, message })?;
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(xid, tx);
        let _forget = ForgetOnDrop { conn: self, xid };
        // The reader fails pending requests after cancelling: checking here, after the
        // insert, means a request can never wait on a connection already torn down.
        if !self.is_open() {
            return Err(TransportError::Closed(self.reason().describe()));
        }
        self.send_body(body, deadline).await?;
        match timeout_at(deadline, rx).await {
            Ok(Ok(response)) => {
                self.link.rtt(started.elapsed());
                Ok(response)
            }
            Ok(Err(_)) => Err(TransportError::Closed(self.reason().describe())),
            Err(_) => Err(TransportError::Timeout(timeout)),
        }
    }

    /// Sends a one-way message, queued by `deadline`.
    pub(super) async fn push(
        &self,
        message: Message,
        deadline: Instant,
    ) -> Result<(), TransportError> {
        let body = self.encode(&Frame::Push { message })?;
        self.send_body(body, deadline).await
    }

    fn fail_pending(&self) {
        lock(&self.pending).clear();
    }

    /// Hands one frame to the node. `Err` closes the connection.
    async fn dispatch(
        self: &Arc<Self>,
        frame: Frame,
        wire_bytes: usize,
        inbound: &mpsc::Sender<Inbound>,
    ) -> Result<(), Close> {
        let message_from = |m: &Message| -> Result<(), Close> {
            if m.from() == self.peer.id {
                Ok(())
            } else {
                Err(Close::Violation(TransportError::Protocol(format!(
                    "a {} from {} on the connection of {}",
                    m.kind(),
                    m.from(),
                    self.peer.id
                ))))
            }
        };
        match frame {
            Frame::Hello(_) => Err(Close::Violation(TransportError::Protocol(
                "Hello after the handshake".into(),
            ))),
            // Shown and logged from here on: escaped at once.
            Frame::Bye { reason } => Err(Close::PeerBye(escape(&reason).into_owned())),
            Frame::Response { xid, message } => {
                message_from(&message)?;
                match lock(&self.pending).remove(&xid) {
                    Some(tx) => {
                        let _ = tx.send((message, wire_bytes));
                    }
                    // Its requester timed out: a late answer, not a violation.
                    None => {
                        tracing::debug!(peer = %self.peer.id, xid, "response to no pending request")
                    }
                }
                Ok(())
            }
            Frame::Push { message } => {
                message_from(&message)?;
                self.deliver(inbound, message, None, wire_bytes).await;
                Ok(())
            }
            Frame::Request { xid, message } => {
                message_from(&message)?;
                let permit = tokio::select! {
                    _ = self.cancel.cancelled() => return Ok(()),
                    p = self.request_slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return Ok(()),
                    },
                };
                // A peer past its response budget waits here, and only it: its reader waits,
                // so TCP slows it down.
                let wait = self.link.response_wait();
                if !wait.is_zero() {
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                // Room for the largest response, reserved before the node builds it: a peer
                // that does not read gets no new responses, and memory stays bounded.
                let deadline = Instant::now() + self.limits.io_timeout;
                let budget = match self
                    .reserve(self.limits.cost(self.limits.max_body), deadline)
                    .await
                {
                    Ok(b) => b,
                    Err(TransportError::Closed(why)) => return Err(Close::Lost(why)),
                    Err(e) => return Err(Close::Lost(e.to_string())),
                };
                let (reply, rx) = Reply::channel();
                self.deliver(inbound, message, Some(reply), wire_bytes)
                    .await;
                let conn = self.clone();
                tokio::spawn(async move {
                    conn.answer(xid, rx, budget).await;
                    drop(permit);
                });
                Ok(())
            }
        }
    }

    async fn deliver(
        &self,
        inbound: &mpsc::Sender<Inbound>,
        message: Message,
        reply: Option<Reply>,
        wire_bytes: usize,
    ) {
        let item = Inbound::Message {
            from: self.peer.clone(),
            message,
            reply,
            wire_bytes,
        };
        // A full channel holds the reader, and TCP flow control holds the peer.
        tokio::select! {
            _ = self.cancel.cancelled() => {}
            _ = inbound.send(item) => {}
        }
    }

    /// Sends the node's answer to request `xid` back as a `Response`, in the room `budget`
    /// reserved for it (what the response does not need is given back at once).
    async fn answer(
        &self,
        xid: u64,
        rx: oneshot::Receiver<Message>,
        mut budget: OwnedSemaphorePermit,
    ) {
        let deadline = Instant::now() + self.limits.io_timeout;
        let message = tokio::select! {
            _ = self.cancel.cancelled() => return,
            m = timeout_at(deadline, rx) => match m {
                Ok(Ok(m)) => m,
                // The node dropped the reply (it refused the request): the requester times out.
                Ok(Err(_)) => return,
                Err(_) => {
                    self.link.error("the node did not answer a request in time");
                    return;
                }
            },
        };
        let sent = match self.encode(&Frame::Response { xid, message }) {
            Ok(body) => {
                self.link.charge_response(body.len() + LENGTH_PREFIX);
                let cost = self.limits.cost(body.len()) as usize;
                // The reservation holds a largest frame, so the response always fits in it.
                drop(budget.split(budget.num_permits().saturating_sub(cost)));
                self.queue(body, budget, deadline).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::debug!(peer = %self.peer.id, xid, error = %e, "response not sent");
            self.link.error(format!("response not sent: {e}"));
        }
    }
}

/// Removes a request's pending entry when its requester stops waiting, however it stops.
struct ForgetOnDrop<'a> {
    conn: &'a Conn,
    xid: u64,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        lock(&self.conn.pending).remove(&self.xid);
    }
}

/// Reads and dispatches frames until the connection closes; returns why it closed. Pending
/// requests fail at once when it returns.
pub(super) async fn run_reader<R: AsyncRead + Unpin>(
    conn: Arc<Conn>,
    mut reader: FrameReader<R>,
    inbound: mpsc::Sender<Inbound>,
) -> Close {
    conn.touch();
    let io_timeout = conn.limits.io_timeout;
    loop {
        let read = tokio::select! {
            biased;
            _ = conn.cancel.cancelled() => break,
            r = reader.next(conn.idle_deadline(), io_timeout) => r,
        };
        let close = match read {
            Ok((frame, n)) => {
                conn.touch_in();
                conn.link.received(n);
                match conn.dispatch(frame, n, &inbound).await {
                    Ok(()) => continue,
                    Err(close) => close,
                }
            }
            // Writes count as activity too: only close if the link is idle both ways.
            Err(ReadError::Idle) if Instant::now() < conn.idle_deadline() => continue,
            Err(ReadError::Idle) => Close::Idle,
            Err(ReadError::Eof) => Close::Lost("connection closed by the peer".into()),
            Err(ReadError::Io(e)) => Close::Lost(e),
            Err(e @ (ReadError::Timeout(_) | ReadError::Codec(_))) => {
                Close::Violation(e.into_transport())
            }
        };
        conn.close(close);
        break;
    }
    conn.cancel.cancel();
    conn.fail_pending();
    conn.reason()
}

/// Writes queued frames until the connection closes; then says `Bye` if there is a reason
/// worth telling, and shuts the stream down.
pub(super) async fn run_writer<W: AsyncWrite + Unpin>(
    conn: Arc<Conn>,
    mut writer: FrameWriter<W>,
    mut rx: mpsc::Receiver<Queued>,
) {
    let io_timeout = conn.limits.io_timeout;
    let mut clean = true;
    loop {
        let first = tokio::select! {
            biased;
            _ = conn.cancel.cancelled() => break,
            b = rx.recv() => match b {
                Some(b) => b,
                None => break,
            },
        };
        let batch = write_batch(&mut writer, first, &mut rx, &conn);
        let result = tokio::select! {
            biased;
            _ = conn.cancel.cancelled() => {
                // Cut inside a frame: a Bye now would be read as its rest.
                clean = false;
                break;
            }
            r = tokio::time::timeout(io_timeout, batch) => r,
        };
        match result {
            Ok(Ok(())) => conn.touch(),
            Ok(Err(e)) => {
                conn.close(Close::Lost(format!("write failed: {e}")));
                clean = false;
                break;
            }
            Err(_) => {
                conn.close(Close::Lost(format!(
                    "write stalled for {io_timeout:?} (the peer does not read)"
                )));
                clean = false;
                break;
            }
        }
    }
    if clean && let Some(reason) = conn.reason().bye() {
        let wait = io_timeout.min(Duration::from_secs(1));
        if let Ok(n) = writer
            .send(&Frame::Bye { reason }, HANDSHAKE_FRAME_MAX, wait)
            .await
        {
            conn.link.sent(n);
        }
    }
    writer.shutdown().await;
}

async fn write_batch<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    first: Queued,
    rx: &mut mpsc::Receiver<Queued>,
    conn: &Conn,
) -> Result<(), TransportError> {
    let mut next = Some(first);
    let (mut frames, mut bytes) = (0, 0);
    // Each frame's budget is given back once it is flushed, not before.
    let mut written = Vec::new();
    while let Some(Queued { body, _budget }) = next.take() {
        let len = body.len() + LENGTH_PREFIX;
        writer.feed(body).await?;
        written.push(_budget);
        conn.link.sent(len);
        frames += 1;
        bytes += len;
        if frames < WRITE_BATCH && bytes < WRITE_BATCH_BYTES {
            next = rx.try_recv().ok();
        }
    }
    writer.flush().await
}
