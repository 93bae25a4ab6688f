//! Finding peers on the LAN.

pub mod mdns;

pub use mdns::{Announcement, DiscoveredPeer, DiscoveryError, DiscoveryEvent, MdnsDiscovery};
