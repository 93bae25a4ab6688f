//! This laptop's addresses (what the welcome tells others to dial), whether an address is
//! this very node (`/peer` to yourself), and short hints for connection errors.

use std::net::{IpAddr, SocketAddr};

/// The addresses others can reach a node listening on `listen` at. Listening on all
/// interfaces (`0.0.0.0`), that is each interface's IPv4 address (non-loopback first;
/// loopback only when there is nothing else), never `0.0.0.0` itself.
pub fn reachable_addrs(listen: SocketAddr) -> Vec<SocketAddr> {
    if !listen.ip().is_unspecified() {
        return vec![listen];
    }
    let ips: Vec<IpAddr> = interface_ips()
        .into_iter()
        .filter(IpAddr::is_ipv4)
        .collect();
    let outside: Vec<IpAddr> = ips.iter().copied().filter(|ip| !ip.is_loopback()).collect();
    let chosen = if outside.is_empty() { ips } else { outside };
    chosen
        .into_iter()
        .map(|ip| SocketAddr::new(ip, listen.port()))
        .collect()
}

/// The IP addresses of this machine's interfaces (empty if they cannot be listed).
pub fn interface_ips() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(list) => list.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "cannot list the network interfaces");
            Vec::new()
        }
    }
}

/// Whether `target` is the node listening on `listen`: same port, and an address of this
/// machine that the listener accepts on.
pub fn is_self(target: SocketAddr, listen: SocketAddr, local_ips: &[IpAddr]) -> bool {
    if target.port() != listen.port() {
        return false;
    }
    let ip = target.ip();
    if listen.ip().is_unspecified() {
        ip.is_loopback() || ip.is_unspecified() || local_ips.contains(&ip)
    } else {
        ip == listen.ip() || (ip.is_unspecified() && listen.ip().is_loopback())
    }
}

/// A short hint for a connection error, if one applies. The transport's messages are
/// precise but long; a person needs the likely cause.
pub fn hint(error: &str) -> Option<&'static str> {
    let e = error.to_ascii_lowercase();
    if e.contains("room secret") || e.contains("noise handshake") {
        Some("another room secret?")
    } else if e.contains("is not ours") && e.contains("room") {
        Some("another room?")
    } else if e.contains("protocol version") {
        Some("another gossip-chat version?")
    } else if e.contains("our own node id") {
        Some("that is this node")
    } else if e.contains("connection refused") {
        Some("nothing listens there")
    } else {
        None
    }
}

/// `error` shortened for a one-line notice: its hint first when one applies.
pub fn explain(error: &str) -> String {
    match hint(error) {
        Some(h) => format!("{h} ({error})"),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn self_is_our_port_on_one_of_our_addresses() {
        let local: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        let any = sa("0.0.0.0:7000");
        assert!(is_self(sa("127.0.0.1:7000"), any, &local));
        assert!(is_self(sa("10.0.0.5:7000"), any, &local));
        assert!(!is_self(sa("10.0.0.6:7000"), any, &local));
        assert!(!is_self(sa("10.0.0.5:7001"), any, &local));
        let lo = sa("127.0.0.1:7000");
        assert!(is_self(sa("127.0.0.1:7000"), lo, &local));
        assert!(!is_self(sa("10.0.0.5:7000"), lo, &local));
    }

    #[test]
    fn the_welcome_never_shows_the_unspecified_address() {
        let addrs = reachable_addrs(sa("0.0.0.0:7000"));
        assert!(!addrs.is_empty(), "loopback at least");
        assert!(
            addrs
                .iter()
                .all(|a| !a.ip().is_unspecified() && a.port() == 7000)
        );
        assert_eq!(reachable_addrs(sa("127.0.0.1:7")), vec![sa("127.0.0.1:7")]);
    }

    #[test]
    fn wrong_secrets_get_a_hint_on_both_sides() {
        // The dialer's and the acceptor's messages (src/transport/tcp/noise.rs).
        let dialer = "handshake refused: the peer closed the connection during the Noise \
                      handshake (a different room secret?): the peer probably has a different room secret";
        let acceptor = "127.0.0.1:5000: handshake refused: Noise handshake failed (decrypt error): \
                        the peer is not in this room or has another room secret";
        assert_eq!(hint(dialer), Some("another room secret?"));
        assert_eq!(hint(acceptor), Some("another room secret?"));
        assert!(explain(acceptor).starts_with("another room secret? ("));
        assert_eq!(
            hint("handshake refused: the peer claims our own node id"),
            Some("that is this node")
        );
        assert_eq!(hint("timed out"), None);
        assert_eq!(explain("timed out"), "timed out");
    }
}
