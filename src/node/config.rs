//! Gossip configuration, its validation and presets.

use std::time::Duration;

use super::error::ConfigError;
use crate::protocol::engine::IngestBudgets;
use crate::protocol::engine::ProbeConfig;
use crate::protocol::exchange::Limits;
use crate::protocol::{NodeId, PeerSelectionStrategy};

/// Largest fanout accepted: beyond this a round is a broadcast, not gossip.
pub const MAX_FANOUT: usize = 50;

/// Smallest message size accepted: room for a reconciliation round's largest answer to one
/// range ([`crate::protocol::reconcile::MIN_BUDGET`]) with its envelope, so every round
/// fits a frame and progresses.
pub const MIN_MESSAGE_SIZE: usize = 16 * 1024;

/// How a node gossips. Every field is used; see each for what it controls.
#[derive(Debug, Clone, PartialEq)]
pub struct GossipConfig {
    /// This node's id. Must not be nil.
    pub node_id: NodeId,
    /// Time between two gossip rounds.
    pub gossip_interval: Duration,
    /// Peers contacted per round, and per eager push.
    pub fanout: usize,
    /// Deadline of one request (a digest and its response). Must exceed the interval.
    pub gossip_timeout: Duration,
    /// At most this many events in one message.
    pub max_events_per_message: usize,
    /// At most this many bytes in one message (the frame limit of a byte transport).
    pub max_message_size_bytes: usize,
    /// How a round picks its peers.
    pub peer_selection_strategy: PeerSelectionStrategy,
    /// Whether anti-entropy (an exchange with every known peer) runs.
    pub enable_anti_entropy: bool,
    /// Time between two anti-entropy sweeps.
    pub anti_entropy_interval: Duration,
    /// When on, every received event already held is compared with the held copy, so a
    /// different event under the same `(origin, seq)` is found, refused and reported as a
    /// conflict. When off, events at or below the clock are skipped unread (cheaper, but
    /// conflicts go unseen).
    pub enable_duplicate_detection: bool,
    /// Whether new events are pushed at once to `fanout` peers (and relayed once by each
    /// node on first receipt). Rounds and anti-entropy still run either way.
    pub eager_push: bool,
    /// PlumTree lazy push (with `eager_push`): full events along a spanning tree that forms
    /// from first arrivals, `IHave` announcements to the other peers, graft on a missing
    /// event, prune on duplicates. Views of 10 peers or fewer push to all at first. On by
    /// default (docs/ALGORITHM.md, "Lazy push"); off, new events go to `fanout` random
    /// peers.
    pub lazy_push: bool,
    /// What one peer may hand this node: pushed events per second, new origins per
    /// minute, bytes per origin (see [`IngestBudgets`] and docs/PROTOCOL.md, "Budgets and
    /// limits"). A field of 0 means unlimited.
    pub ingest_budgets: IngestBudgets,
    /// The failure detector: heartbeats from rounds, pings of quiet peers with deadlines
    /// from each peer's measured RTT, and indirect probes before a peer is called offline
    /// (`protocol::engine::detector`). `None` (the default) keeps the older rule: a failed
    /// exchange makes a peer suspect, three in a row offline. gossip-chat uses
    /// [`ProbeConfig::lan`].
    pub probe: Option<ProbeConfig>,
    /// Peer exchange: signed address records of live members travel between peers, and a
    /// node meets the peers its peers know (`protocol::engine::pex`). Needs an identity
    /// ([`super::GossipNode::with_identity`]). Off by default; on in gossip-chat.
    pub peer_exchange: bool,
}

impl GossipConfig {
    /// The defaults: interval 1 s, fanout 3, timeout 10 s, 2,000 events / 1 MiB per message,
    /// random selection, anti-entropy every 5 min, duplicate detection, eager push and lazy
    /// push on, the default [`IngestBudgets`].
    pub fn new(node_id: NodeId) -> Self {
        GossipConfig {
            node_id,
            gossip_interval: Duration::from_secs(1),
            fanout: 3,
            gossip_timeout: Duration::from_secs(10),
            // Batches are cut by bytes first (the frame limit): 2,000 small chat events
            // fill about a fifth of a frame, and equal the pushed burst a peer may send
            // (an exchange's final push is a push), so a page is never deferred.
            max_events_per_message: 2_000,
            max_message_size_bytes: 1024 * 1024,
            peer_selection_strategy: PeerSelectionStrategy::Random,
            enable_anti_entropy: true,
            anti_entropy_interval: Duration::from_secs(300),
            enable_duplicate_detection: true,
            eager_push: true,
            lazy_push: true,
            ingest_budgets: IngestBudgets::default(),
            probe: None,
            peer_exchange: false,
        }
    }

    /// Many events, fast links: rounds every 500 ms to 5 peers, larger messages.
    pub fn high_throughput(node_id: NodeId) -> Self {
        GossipConfig {
            gossip_interval: Duration::from_millis(500),
            fanout: 5,
            gossip_timeout: Duration::from_secs(5),
            max_events_per_message: 8_000,
            max_message_size_bytes: 4 * 1024 * 1024,
            anti_entropy_interval: Duration::from_secs(60),
            ..GossipConfig::new(node_id)
        }
    }

    /// Few resources: rounds every 5 s to 2 peers, small messages.
    pub fn low_resource(node_id: NodeId) -> Self {
        GossipConfig {
            gossip_interval: Duration::from_secs(5),
            fanout: 2,
            gossip_timeout: Duration::from_secs(30),
            max_events_per_message: 500,
            max_message_size_bytes: 256 * 1024,
            anti_entropy_interval: Duration::from_secs(900),
            ..GossipConfig::new(node_id)
        }
    }

    /// Checks every rule; the first broken one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id.is_nil() {
            return Err(ConfigError::EmptyNodeId);
        }
        for (name, d) in [
            ("gossip_interval", self.gossip_interval),
            ("gossip_timeout", self.gossip_timeout),
            ("anti_entropy_interval", self.anti_entropy_interval),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        for (name, n) in [
            ("fanout", self.fanout),
            ("max_events_per_message", self.max_events_per_message),
        ] {
            if n == 0 {
                return Err(ConfigError::ZeroCount(name));
            }
        }
        if self.gossip_timeout <= self.gossip_interval {
            return Err(ConfigError::TimeoutNotAboveInterval {
                timeout: self.gossip_timeout,
                interval: self.gossip_interval,
            });
        }
        if self.fanout > MAX_FANOUT {
            return Err(ConfigError::FanoutTooLarge(self.fanout));
        }
        if self.max_message_size_bytes < MIN_MESSAGE_SIZE {
            return Err(ConfigError::MessageTooSmall(self.max_message_size_bytes));
        }
        Ok(())
    }

    /// The batch limits this config sets.
    pub fn limits(&self) -> Limits {
        Limits {
            max_events: self.max_events_per_message,
            max_bytes: self.max_message_size_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> NodeId {
        NodeId::from_u128(1)
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let c = GossipConfig::new(id());
        assert_eq!(c.gossip_interval, Duration::from_secs(1));
        assert_eq!(c.fanout, 3);
        assert_eq!(c.gossip_timeout, Duration::from_secs(10));
        assert_eq!(c.max_events_per_message, 2_000);
        assert_eq!(c.max_message_size_bytes, 1 << 20);
        assert_eq!(c.peer_selection_strategy, PeerSelectionStrategy::Random);
        assert!(c.enable_anti_entropy);
        assert_eq!(c.anti_entropy_interval, Duration::from_secs(300));
        assert!(c.enable_duplicate_detection);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn presets_are_valid_and_differ_as_named() {
        let h = GossipConfig::high_throughput(id());
        let l = GossipConfig::low_resource(id());
        assert!(h.validate().is_ok() && l.validate().is_ok());
        assert_eq!(h.gossip_interval, Duration::from_millis(500));
        assert_eq!(h.fanout, 5);
        assert_eq!(l.gossip_interval, Duration::from_secs(5));
        assert_eq!(l.fanout, 2);
        assert!(h.max_events_per_message > l.max_events_per_message);
    }

    #[test]
    fn validation_names_the_broken_rule() {
        let ok = GossipConfig::new(id());
        let check = |f: &dyn Fn(&mut GossipConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(
            check(&|c| c.node_id = NodeId::NIL),
            ConfigError::EmptyNodeId
        );
        assert_eq!(
            check(&|c| c.gossip_interval = Duration::ZERO),
            ConfigError::ZeroDuration("gossip_interval")
        );
        assert_eq!(
            check(&|c| c.anti_entropy_interval = Duration::ZERO),
            ConfigError::ZeroDuration("anti_entropy_interval")
        );
        assert_eq!(check(&|c| c.fanout = 0), ConfigError::ZeroCount("fanout"));
        assert_eq!(
            check(&|c| c.max_events_per_message = 0),
            ConfigError::ZeroCount("max_events_per_message")
        );
        assert!(matches!(
            check(&|c| c.gossip_timeout = c.gossip_interval),
            ConfigError::TimeoutNotAboveInterval { .. }
        ));
        assert_eq!(check(&|c| c.fanout = 51), ConfigError::FanoutTooLarge(51));
        assert_eq!(
            check(&|c| c.max_message_size_bytes = 10),
            ConfigError::MessageTooSmall(10)
        );
    }
}
