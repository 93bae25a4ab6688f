//! [`GossipNode`]: the async dispatcher around the protocol [`Engine`].
//!
//! The node decides nothing. It feeds the engine what the transport delivers, what the
//! store answers and which timers fired, and carries out what the engine returns: sends
//! and requests, store reads and writes (with signature checks before received events are
//! saved), timers, and stream events. The files:
//! - [`facade`]: the public API of [`GossipNode`];
//! - `dispatch`: the loop from engine outputs to I/O and back;
//! - `inbound`: transport input to engine input, with bounded concurrency;
//! - `ingest`: the store side (fetches, saves) and signature checks;
//! - `exchange`: requests and sends on the transport;
//! - `schedule`: the node's clock and its timers;
//! - `streams`: the broadcast streams.

mod blobs;
pub mod config;
mod dispatch;
mod ephemeral;
pub mod error;
mod exchange;
pub mod facade;
mod inbound;
mod ingest;
pub mod peer;
mod pending_keys;
mod schedule;
pub mod stats;
mod streams;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use blobs::{BlobServer, BlobStats};
pub use config::GossipConfig;
pub use error::{ConfigError, GossipError};
pub use facade::GossipNode;
pub use peer::{PeerInfo, PeerState, PeerTable, Transition};
pub use schedule::now_ms;
pub use stats::{Direction, ExchangeResult, GossipStats};
pub use streams::STREAM_CAPACITY;

pub use crate::protocol::engine::ReceivedEvent;
pub use crate::protocol::engine::{MAX_PASSES, OFFLINE_RETRY_ROUNDS};

use crate::protocol::engine::{Done, Engine, RequestId, Ticket};
use crate::store::EventStore;
use crate::transport::{Reply, Transport};

/// Capacity of the transport -> node channel.
pub const INBOUND_CAPACITY: usize = 1024;
/// Inbound messages handled at once.
pub const INBOUND_CONCURRENCY: usize = 64;
/// Received batches with more events than this are verified on a blocking thread: an
/// ed25519 check costs tens of microseconds, and a catch-up batch holds hundreds.
pub const VERIFY_INLINE_MAX: usize = 16;

struct Running {
    cancel: CancellationToken,
    inbound: JoinHandle<()>,
}

/// The shared state of a node and its clones.
pub(crate) struct Inner {
    config: GossipConfig,
    store: Arc<dyn EventStore>,
    transport: Arc<dyn Transport>,
    engine: Mutex<Engine>,
    streams: streams::Streams,
    keys: Option<ingest::Keys>,
    waiting: Mutex<HashMap<Ticket, oneshot::Sender<Done>>>,
    replies: Mutex<HashMap<RequestId, Reply>>,
    next_id: AtomicU64,
    run: tokio::sync::Mutex<Option<Running>>,
    /// Cancels the timers of the current run.
    timers: Mutex<CancellationToken>,
    clock: schedule::Clock,
    /// Who answers peers' blob requests (see [`BlobServer`]).
    blob_server: Mutex<Option<Arc<dyn BlobServer>>>,
    blob_counters: blobs::BlobCounters,
}

/// Takes a lock; every critical section leaves its data consistent, so a poisoned lock is
/// taken over.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
