//! LAN discovery with multicast DNS (`mdns-sd`).
//!
//! Each node registers `_gossip-chat._tcp.local.` with its node id as the instance name and
//! TXT `id`, `name`, `room`, `v`, `auth`, and browses the same type. In a room with a secret,
//! `room` is the room id (a hash of room and key), `auth` is `psk` and `name` is left empty,
//! so strangers see that a node exists, not what room it is in or who uses it. Resolutions are upserts: one
//! peer resolves several times (IPv4 first, then IPv4 + IPv6). We ignore ourselves by the
//! TXT id (every node also discovers itself), other rooms, and other protocol versions.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdns_sd::{ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::sync::mpsc;

use crate::protocol::NodeId;

/// The service type every gossip-chat node registers and browses.
pub const SERVICE_TYPE: &str = "_gossip-chat._tcp.local.";

/// How long `verify` waits for a peer to answer before mDNS drops it.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// What this node announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Our node id (also the instance name, so it is unique on the LAN).
    pub node_id: NodeId,
    /// Our display name.
    pub name: String,
    /// Our room: only peers of the same room are reported.
    pub room: String,
    /// The TCP port we listen on.
    pub port: u16,
    /// Our protocol version: peers of another version are ignored.
    pub version: u32,
    /// Whether the room has a secret: then `room` is the room *id* (see
    /// [`crate::auth::RoomKey::room_id`]), TXT `auth=psk` is announced, and only peers that
    /// announce the same are reported.
    pub psk: bool,
}

/// A peer found on the LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredPeer {
    /// Its node id (from TXT `id`).
    pub node_id: NodeId,
    /// Its display name (TXT `name`).
    pub name: String,
    /// Where it listens: IPv4 addresses first, then IPv6.
    pub addrs: Vec<SocketAddr>,
}

/// What discovery reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A peer resolved (again, possibly with new addresses).
    Resolved(DiscoveredPeer),
    /// A peer left mDNS (a goodbye, an expired record, or a failed verify).
    Removed(NodeId),
}

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The mDNS daemon failed.
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
}

/// A running mDNS registration and browse.
pub struct MdnsDiscovery {
    daemon: ServiceDaemon,
    /// What we announce (its name follows [`MdnsDiscovery::rename`]).
    me: Announcement,
    fullname: String,
    names: Arc<Mutex<HashMap<NodeId, String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MdnsDiscovery {
    /// Registers `me` and starts browsing; events arrive on the returned channel.
    pub fn start(
        me: Announcement,
    ) -> Result<(MdnsDiscovery, mpsc::Receiver<DiscoveryEvent>), DiscoveryError> {
        let daemon = ServiceDaemon::new()?;
        // Check interfaces every second (default 5 s): a laptop whose cable was out, or that
        // just joined a network, answers again within a second of the link coming back.
        if let Err(e) = daemon.set_ip_check_interval(1) {
            tracing::debug!(error = %e, "mDNS interface check interval unchanged");
        }
        let info = service_info(&me)?;
        let fullname = info.get_fullname().to_string();
        daemon.register(info)?;
        let browse = daemon.browse(SERVICE_TYPE)?;
        let (tx, rx) = mpsc::channel(256);
        let names = Arc::new(Mutex::new(HashMap::new()));
        let task = tokio::spawn(browse_loop(browse, me.clone(), tx, names.clone()));
        Ok((
            MdnsDiscovery {
                daemon,
                me,
                fullname,
                names,
                task,
            },
            rx,
        ))
    }

    /// Announces `name` from now on (after a `/nick`): the record is registered again with
    /// the new TXT `name` (same instance, so peers update it in place and see no one leave).
    /// A private room announces no name, so there is nothing to send.
    pub fn rename(&mut self, name: &str) -> Result<(), DiscoveryError> {
        if self.me.name == name {
            return Ok(());
        }
        self.me.name = name.to_string();
        if self.me.psk {
            return Ok(());
        }
        self.daemon.register(service_info(&self.me)?)?;
        Ok(())
    }

    /// The name announced now.
    pub fn name(&self) -> &str {
        &self.me.name
    }

    /// Asks the LAN whether `peer` is still there; if it does not answer within
    /// [`VERIFY_TIMEOUT`], a [`DiscoveryEvent::Removed`] follows. Call it when contact with a
    /// peer fails, so a crashed laptop leaves in seconds instead of after the 120 s TTL.
    pub fn verify(&self, peer: NodeId) {
        let fullname = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&peer)
            .cloned();
        if let Some(fullname) = fullname
            && let Err(e) = self.daemon.verify(fullname, VERIFY_TIMEOUT)
        {
            tracing::debug!(%peer, error = %e, "mDNS verify not sent");
        }
    }

    /// Unregisters (a goodbye the others see at once) and stops the daemon.
    pub async fn shutdown(self) {
        if let Ok(rx) = self.daemon.unregister(&self.fullname) {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx.recv_async()).await;
        }
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx.recv_async()).await;
        }
        self.task.abort();
    }
}

/// Our record: the node id as instance name, the TXT keys of the module docs.
fn service_info(me: &Announcement) -> Result<ServiceInfo, DiscoveryError> {
    let instance = me.node_id.to_string();
    let host = format!("gossip-{}.local.", me.node_id.short());
    let version = me.version.to_string();
    let props = [
        ("id", instance.as_str()),
        ("name", if me.psk { "" } else { me.name.as_str() }),
        ("room", me.room.as_str()),
        ("v", version.as_str()),
        ("auth", if me.psk { "psk" } else { "none" }),
    ];
    Ok(
        ServiceInfo::new(SERVICE_TYPE, &instance, &host, "", me.port, &props[..])?
            .enable_addr_auto(),
    )
}

async fn browse_loop(
    browse: mdns_sd::Receiver<ServiceEvent>,
    me: Announcement,
    tx: mpsc::Sender<DiscoveryEvent>,
    names: Arc<Mutex<HashMap<NodeId, String>>>,
) {
    let mut by_fullname: HashMap<String, NodeId> = HashMap::new();
    while let Ok(event) = browse.recv_async().await {
        let out = match event {
            ServiceEvent::ServiceResolved(info) => {
                tracing::debug!(fullname = %crate::text::Escaped(&info.fullname), addrs = ?info.addresses, port = info.port, "mDNS resolved");
                let Some(peer) = accept(&me, &info) else {
                    continue;
                };
                by_fullname.insert(info.fullname.clone(), peer.node_id);
                names
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(peer.node_id, info.fullname.clone());
                DiscoveryEvent::Resolved(peer)
            }
            ServiceEvent::ServiceRemoved(_, fullname) => match by_fullname.remove(&fullname) {
                Some(id) => DiscoveryEvent::Removed(id),
                None => continue,
            },
            _ => continue,
        };
        if tx.send(out).await.is_err() {
            return;
        }
    }
}

/// The peer a resolution describes, if it is another node of our room and version.
fn accept(me: &Announcement, info: &mdns_sd::ResolvedService) -> Option<DiscoveredPeer> {
    let id: NodeId = info.get_property_val_str("id")?.parse().ok()?;
    if id == me.node_id || id.is_nil() {
        return None;
    }
    if info.get_property_val_str("room") != Some(me.room.as_str()) {
        return None;
    }
    // A peer from before room secrets announces no `auth`: it is an open room's.
    let psk = info.get_property_val_str("auth") == Some("psk");
    if psk != me.psk {
        return None;
    }
    let version = me.version.to_string();
    if info.get_property_val_str("v") != Some(version.as_str()) {
        tracing::info!(peer = %id, v = %crate::text::Escaped(info.get_property_val_str("v").unwrap_or("")), "peer of another protocol version ignored");
        return None;
    }
    let addrs = socket_addrs(info.addresses.iter(), info.port);
    if addrs.is_empty() {
        return None;
    }
    let name = info
        .get_property_val_str("name")
        .filter(|n| !n.is_empty())
        // A peer's name is shown and logged: no control or bidi characters.
        .map(|n| crate::text::escape(n).into_owned())
        .unwrap_or_else(|| id.short());
    Some(DiscoveredPeer {
        node_id: id,
        name,
        addrs,
    })
}

/// IPv4 addresses first (sorted), then IPv6, link-local ones with their scope.
fn socket_addrs<'a>(ips: impl Iterator<Item = &'a ScopedIp>, port: u16) -> Vec<SocketAddr> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for ip in ips {
        match ip {
            ScopedIp::V4(a) => v4.push(SocketAddr::new(IpAddr::V4(*a.addr()), port)),
            ScopedIp::V6(a) => {
                let scope = if a.addr().is_unicast_link_local() {
                    a.scope_id().index
                } else {
                    0
                };
                v6.push(SocketAddr::V6(SocketAddrV6::new(*a.addr(), port, 0, scope)));
            }
            _ => {}
        }
    }
    // mdns-sd advertises every interface, loopback included: a peer's 127.0.0.1 is us, not
    // it, so loopback comes last (it is all there is when every node shares one host's
    // loopback, as in tests).
    let rank = |a: &SocketAddr| (a.ip().is_loopback(), *a);
    v4.sort_by_key(rank);
    v6.sort_by_key(rank);
    v4.extend(v6);
    v4
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn lan_addresses_come_before_loopback_and_ipv4_before_ipv6() {
        let ips: Vec<ScopedIp> = [
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(192, 168, 1, 9)),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)),
        ]
        .into_iter()
        .map(ScopedIp::from)
        .collect();
        let got: Vec<String> = socket_addrs(ips.iter(), 7)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            got,
            ["10.0.0.3:7", "192.168.1.9:7", "127.0.0.1:7", "[fd00::1]:7"]
        );
    }
}
