//! Blobs between nodes in one process over TCP (Noise): a file fetched from two peers at
//! once is byte-identical, and a hostile peer's corrupted chunks are refused, counted and
//! fetched from the honest one.

mod tcp_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use gossip::NodeId;
use gossip::blobs::fetch::FetchEvents;
use gossip::blobs::{BlobLimits, BlobStore, FetchOptions, Progress, StoreServer, fetch};
use gossip::node::BlobServer;
use gossip::protocol::blob::{BlobAnswer, BlobId, BlobPart, CHUNK_SIZE};
use tcp_common::*;

/// Serves the right manifest but flips a byte of every chunk.
struct Corrupting {
    honest: StoreServer,
    served: AtomicU64,
}

#[async_trait]
impl BlobServer for Corrupting {
    async fn serve(&self, from: NodeId, blob: BlobId, part: BlobPart) -> BlobAnswer {
        match self.honest.serve(from, blob, part).await {
            BlobAnswer::Chunk { index, data } => {
                self.served.fetch_add(1, Ordering::Relaxed);
                let mut bad = data.to_vec();
                bad[0] ^= 0xff;
                BlobAnswer::Chunk {
                    index,
                    data: bad.into(),
                }
            }
            other => other,
        }
    }
}

#[derive(Default)]
struct Seen {
    refused: Vec<NodeId>,
    last: Option<Progress>,
}

impl FetchEvents for Seen {
    fn progress(&mut self, p: Progress) {
        self.last = Some(p);
    }
    fn refused(&mut self, peer: NodeId, _why: String) {
        self.refused.push(peer);
    }
}

fn store(dir: &std::path::Path) -> Arc<BlobStore> {
    Arc::new(BlobStore::open(dir, None, BlobLimits::default()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_chunks_are_refused_counted_and_fetched_from_an_honest_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..CHUNK_SIZE * 12 + 999)
        .map(|i| (i * 31 % 255) as u8)
        .collect();
    let src = tmp.path().join("photo.jpg");
    std::fs::write(&src, &bytes).unwrap();

    let (honest, hostile, fetcher) = (
        start_node(|_, _| {}).await,
        start_node(|_, _| {}).await,
        start_node(|_, _| {}).await,
    );
    let honest_store = store(&tmp.path().join("honest"));
    let manifest = honest_store.add_file(&src).unwrap();
    let blob = manifest.id();
    honest
        .node
        .set_blob_server(Arc::new(StoreServer::new(honest_store)));
    let hostile_store = store(&tmp.path().join("hostile"));
    hostile_store.add_file(&src).unwrap();
    let corrupting = Arc::new(Corrupting {
        honest: StoreServer::new(hostile_store),
        served: AtomicU64::new(0),
    });
    hostile.node.set_blob_server(corrupting.clone());
    fetcher.node.add_peer(hostile.peer()).unwrap();
    fetcher.node.add_peer(honest.peer()).unwrap();

    let fetched = store(&tmp.path().join("fetcher"));
    let mut seen = Seen::default();
    fetch(
        &fetcher.node,
        fetched.clone(),
        blob,
        Some(hostile.id()),
        FetchOptions::default(),
        &mut seen,
    )
    .await
    .unwrap();
    assert!(
        corrupting.served.load(Ordering::Relaxed) >= 1,
        "the hostile peer was asked"
    );
    assert!(
        seen.refused.contains(&hostile.id()),
        "its chunks were refused"
    );
    assert!(!seen.refused.contains(&honest.id()));
    let out = fetched
        .export(blob, &tmp.path().join("out"), "photo.jpg")
        .unwrap();
    assert_eq!(std::fs::read(out).unwrap(), bytes, "byte-identical");
    let last = seen.last.unwrap();
    assert_eq!(
        (last.done, last.total),
        (bytes.len() as u64, bytes.len() as u64)
    );
    // The fetcher serves what it saved.
    fetcher
        .node
        .set_blob_server(Arc::new(StoreServer::new(fetched)));
    let again = store(&tmp.path().join("again"));
    honest.node.add_peer(fetcher.peer()).unwrap();
    fetch(
        &honest.node,
        again.clone(),
        blob,
        Some(fetcher.id()),
        FetchOptions::default(),
        &mut Seen::default(),
    )
    .await
    .unwrap();
    assert!(again.has(blob));
    for n in [&honest, &hostile, &fetcher] {
        n.node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_nobody_has_fails_after_the_stall_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (start_node(|_, _| {}).await, start_node(|_, _| {}).await);
    a.node.add_peer(b.peer()).unwrap();
    let opts = FetchOptions {
        stall: std::time::Duration::from_millis(600),
        ..FetchOptions::default()
    };
    let r = fetch(
        &a.node,
        store(tmp.path()),
        BlobId([7; 32]),
        Some(b.id()),
        opts,
        &mut Seen::default(),
    )
    .await;
    assert!(
        matches!(r, Err(gossip::blobs::FetchError::NoPeer(_))),
        "{r:?}"
    );
    a.node.stop().await;
    b.node.stop().await;
}
