//! The seed's database-store example, on SQLite: a node keeps its events and its identity
//! key in one database, stops, and starts again with the same id, clock and events.
//!
//! ```sh
//! cargo run --example sqlite_store --features sqlite [-- DIR]
//! ```
//!
//! Without DIR the store lives in a temporary directory that is removed at the end.

use std::sync::Arc;

use gossip::node::{GossipConfig, GossipNode};
use gossip::store::EventStore;
use gossip::store::sqlite::{DB_FILE, SqliteEventStore};
use gossip::transport::MemoryNetwork;

async fn run_node(
    store: Arc<SqliteEventStore>,
    texts: &[&str],
) -> Result<(), Box<dyn std::error::Error>> {
    let id = store.node_id();
    let net = MemoryNetwork::new(1);
    let node = GossipNode::with_identity(
        GossipConfig::new(id),
        store.clone(),
        Arc::new(net.transport(id, "solo")),
        store.identity().clone(),
    )?;
    node.start().await?;
    for t in texts {
        let e = node.create_event(t.to_string()).await?;
        println!("  created seq {} {:?}", e.seq, t);
    }
    node.stop().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("room"));

    println!("first run, store in {}", dir.join(DB_FILE).display());
    let store = Arc::new(SqliteEventStore::open_async(dir.clone(), Default::default()).await?);
    let id = store.node_id();
    println!("  node id {id}");
    run_node(store.clone(), &["buy milk", "call bob"]).await?;
    store.close().await?;

    println!("second run, same directory");
    let store = Arc::new(SqliteEventStore::open_async(dir.clone(), Default::default()).await?);
    println!(
        "  node id {} ({})",
        store.node_id(),
        if store.node_id() == id {
            "kept"
        } else {
            "CHANGED"
        }
    );
    println!("  clock entry for us: {}", store.clock().await?.get(&id));
    run_node(store.clone(), &["water plants"]).await?;
    let mut n = 0;
    store.for_each_event(|e| {
        n += 1;
        let payload = if gossip::auth::is_identity_payload(&e.payload) {
            "(the identity event: the origin's public key)".to_string()
        } else {
            format!("{:?}", String::from_utf8_lossy(&e.payload))
        };
        println!(
            "  event {}:{} hlc {} {payload}",
            &e.origin.to_string()[..8],
            e.seq,
            e.hlc,
        );
    })?;
    let st = store.stats().await?;
    println!(
        "  {} events from {} origin(s); {} bytes encoded, {} bytes on disk",
        st.total_events,
        st.unique_nodes,
        st.size_bytes,
        store.file_bytes()
    );
    store.close().await?;

    // The database is plain SQLite: any tool can read it (with the store closed).
    let db = rusqlite::Connection::open(dir.join(DB_FILE))?;
    let rows: i64 = db.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
    let seq_max: String = db.query_row("SELECT hex(max(seq)) FROM events", [], |r| r.get(0))?;
    println!("sqlite3 says: {rows} rows in `events`, highest seq key x'{seq_max}'");
    Ok(())
}
