//! The node config the catch-up benchmarks share: big messages, and no rounds,
//! anti-entropy or eager push, so only the measured exchanges move events.

use std::time::Duration;

use gossip::NodeId;
use gossip::node::GossipConfig;

/// 10,000 events / 4 MiB per message; background gossip off; no ingest budgets (one
/// origin's million events are 150 MB, past the default 64 MiB per-origin quota, which
/// would refuse the rest of a run: what is measured is raw catch-up speed).
pub fn bulk_config(id: NodeId) -> GossipConfig {
    GossipConfig {
        max_events_per_message: 10_000,
        max_message_size_bytes: 4 * 1024 * 1024,
        gossip_interval: Duration::from_secs(3600),
        gossip_timeout: Duration::from_secs(3601),
        enable_anti_entropy: false,
        eager_push: false,
        ingest_budgets: gossip::protocol::engine::budget::IngestBudgets::unlimited(),
        ..GossipConfig::new(id)
    }
}
