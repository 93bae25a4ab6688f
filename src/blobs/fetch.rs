//! Fetching one blob from the peers that hold it, several at once, resumable.
//!
//! The manifest comes first, page by page from one peer, and must hash to the blob id; a
//! peer whose pages do not is skipped. Then [`FetchPlan`] hands out chunks: each answer is
//! checked against its hash before it is written to the partial file, so an interrupted
//! fetch resumes from what is on disk, and a bad chunk is refused, its sender struck off
//! and counted, and the chunk asked of another peer. Peers that join meanwhile are asked
//! too. A fetch with no usable peer for [`FetchOptions::stall`] gives up (what it has
//! stays on disk for the next try).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::store::{BlobError, BlobStore};
use crate::node::{GossipError, GossipNode};
use crate::protocol::NodeId;
use crate::protocol::blob::{
    BlobAnswer, BlobId, BlobPart, ChunkVerdict, FetchPlan, Manifest, ManifestBuilder,
};

/// How a fetch runs.
#[derive(Debug, Clone, Copy)]
pub struct FetchOptions {
    /// Chunk requests in flight per peer.
    pub per_peer: usize,
    /// Deadline of one request.
    pub timeout: Duration,
    /// Give up after this long without a usable peer.
    pub stall: Duration,
    /// Least time between two progress reports.
    pub report_every: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            per_peer: 4,
            timeout: Duration::from_secs(10),
            stall: Duration::from_secs(30),
            report_every: Duration::from_millis(250),
        }
    }
}

/// How far a fetch is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The blob.
    pub blob: BlobId,
    /// Bytes held.
    pub done: u64,
    /// Bytes in the blob.
    pub total: u64,
    /// Bytes per second since the fetch started (this run).
    pub bytes_per_sec: f64,
    /// Peers asked at the moment.
    pub peers: usize,
}

impl Progress {
    /// Seconds left at the current rate, if it is known.
    pub fn eta_secs(&self) -> Option<f64> {
        (self.bytes_per_sec > 0.0)
            .then(|| self.total.saturating_sub(self.done) as f64 / self.bytes_per_sec)
    }
}

/// Why a fetch stopped.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The store refused (quota, size limit, disk error).
    #[error(transparent)]
    Store(#[from] BlobError),
    /// No peer answered with the blob in time.
    #[error("no peer sent blob {0} (is the sender still here?)")]
    NoPeer(BlobId),
}

/// What the fetch tells its caller as it goes.
pub trait FetchEvents: Send {
    /// Progress, at most every [`FetchOptions::report_every`].
    fn progress(&mut self, p: Progress);
    /// A chunk from `peer` failed its hash and was refused (or its manifest was wrong).
    fn refused(&mut self, peer: NodeId, why: String);
}

fn reachable(node: &GossipNode) -> Vec<NodeId> {
    node.peers()
        .into_iter()
        .filter(|p| p.is_reachable())
        .map(|p| p.id)
        .collect()
}

/// Fetches `blob` into `store` from the reachable peers of `node` (`first` asked first:
/// usually who offered it). Returns once the whole blob is in the store.
pub async fn fetch(
    node: &GossipNode,
    store: Arc<BlobStore>,
    blob: BlobId,
    first: Option<NodeId>,
    opts: FetchOptions,
    events: &mut dyn FetchEvents,
) -> Result<(), FetchError> {
    if store.has(blob) {
        return Ok(());
    }
    let manifest = match store.manifest(blob) {
        Some(m) => (*m).clone(),
        None => fetch_manifest(node, &store, blob, first, opts, events).await?,
    };
    let have = {
        let (s, m) = (store.clone(), manifest.clone());
        blocking(move || s.begin_fetch(&m)).await?
    };
    let mut plan = FetchPlan::new(&manifest, have, opts.per_peer);
    let started = Instant::now();
    let resumed = plan.held_bytes();
    let mut last_report = Instant::now() - opts.report_every;
    let mut last_refresh = Instant::now();
    let mut stuck_since: Option<Instant> = None;
    for p in first.into_iter().chain(reachable(node)) {
        plan.add_peer(p);
    }
    let mut pending = FuturesUnordered::new();
    let request = |peer: NodeId, index: u32| {
        let node = node.clone();
        async move {
            let r = node
                .get_blob(peer, blob, BlobPart::Chunk { index }, opts.timeout)
                .await;
            (peer, index, r)
        }
    };
    loop {
        while let Some((peer, index)) = plan.next_request() {
            pending.push(request(peer, index));
        }
        if plan.is_complete() {
            break;
        }
        if last_refresh.elapsed() >= Duration::from_secs(1) || pending.is_empty() {
            last_refresh = Instant::now();
            for p in reachable(node) {
                plan.add_peer(p);
            }
            while let Some((peer, index)) = plan.next_request() {
                pending.push(request(peer, index));
            }
        }
        if pending.is_empty() {
            let since = *stuck_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= opts.stall {
                return Err(FetchError::NoPeer(blob));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        let Some((peer, index, result)) = pending.next().await else {
            continue;
        };
        match result {
            Ok(BlobAnswer::Chunk { index: i, data }) if i == index => {
                match plan.on_chunk(peer, index, &data) {
                    ChunkVerdict::Accepted => {
                        stuck_since = None;
                        let s = store.clone();
                        blocking(move || s.write_chunk(blob, index, &data)).await?;
                    }
                    ChunkVerdict::Refused => {
                        tracing::warn!(%peer, index, "blob chunk failed its hash: refused");
                        events.refused(peer, format!("chunk {index} failed its hash"));
                    }
                    ChunkVerdict::Unexpected => {}
                }
            }
            Ok(BlobAnswer::Missing) => plan.on_missing(peer, index, false),
            Ok(BlobAnswer::Busy) => plan.on_missing(peer, index, true),
            Ok(_) => {
                // An answer to another question: as bad as a wrong chunk.
                plan.on_chunk(peer, index, &[]);
                events.refused(peer, format!("a wrong answer to chunk {index}"));
            }
            Err(e) => {
                tracing::debug!(%peer, index, error = %e, "blob request failed");
                plan.on_failed(peer, index);
            }
        }
        if last_report.elapsed() >= opts.report_every {
            last_report = Instant::now();
            events.progress(progress(&plan, blob, manifest.size, resumed, started));
        }
    }
    events.progress(progress(&plan, blob, manifest.size, resumed, started));
    let s = store.clone();
    blocking(move || s.finish_fetch(blob)).await?;
    Ok(())
}

fn progress(
    plan: &FetchPlan,
    blob: BlobId,
    total: u64,
    resumed: u64,
    started: Instant,
) -> Progress {
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    Progress {
        blob,
        done: plan.held_bytes(),
        total,
        bytes_per_sec: plan.held_bytes().saturating_sub(resumed) as f64 / secs,
        peers: plan.in_flight(),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))?
}

async fn fetch_manifest(
    node: &GossipNode,
    store: &BlobStore,
    blob: BlobId,
    first: Option<NodeId>,
    opts: FetchOptions,
    events: &mut dyn FetchEvents,
) -> Result<Manifest, FetchError> {
    let limit = store.limits().max_file;
    let deadline = Instant::now() + opts.stall;
    loop {
        let mut peers: Vec<NodeId> = first.into_iter().collect();
        peers.extend(reachable(node).into_iter().filter(|p| Some(*p) != first));
        for peer in peers {
            match manifest_from(node, peer, blob, limit, opts.timeout).await {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(Refusal::TooLarge(e)) => return Err(FetchError::Store(e)),
                Err(Refusal::Bad(why)) => {
                    tracing::warn!(%peer, %why, "blob manifest refused");
                    events.refused(peer, why);
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(FetchError::NoPeer(blob));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

enum Refusal {
    TooLarge(BlobError),
    Bad(String),
}

/// The manifest from `peer`: `Ok(None)` if it does not have it or did not answer.
async fn manifest_from(
    node: &GossipNode,
    peer: NodeId,
    blob: BlobId,
    limit: u64,
    timeout: Duration,
) -> Result<Option<Manifest>, Refusal> {
    let mut builder = ManifestBuilder::default();
    while let Some(first) = builder.next_first() {
        let answer = node
            .get_blob(peer, blob, BlobPart::Hashes { first }, timeout)
            .await;
        match answer {
            Ok(BlobAnswer::Hashes {
                size,
                first,
                hashes,
            }) => {
                if size > limit {
                    return Err(Refusal::TooLarge(BlobError::TooLarge { size, limit }));
                }
                builder
                    .add(size, first, hashes, limit)
                    .map_err(|e| Refusal::Bad(e.to_string()))?;
            }
            Ok(BlobAnswer::Missing | BlobAnswer::Busy) => return Ok(None),
            Ok(BlobAnswer::Chunk { .. }) => return Err(Refusal::Bad("a chunk for hashes".into())),
            Err(GossipError::UnknownPeer(_)) | Err(_) => return Ok(None),
        }
    }
    let Some(m) = builder.finish() else {
        return Ok(None);
    };
    m.check(blob, limit)
        .map_err(|e| Refusal::Bad(e.to_string()))?;
    Ok(Some(m))
}
