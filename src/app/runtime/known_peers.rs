//! The peers a laptop knew, kept in `<store dir>/peers` so a restarted laptop redials them
//! at once instead of waiting for mDNS (which can take seconds) or for a `--peer`.
//!
//! One line per peer, `node-id ip:port`, most recently heard first. The file is a hint:
//! a line that does not parse is skipped, and a stale one costs one failed dial (the
//! `Hello` proves who answers, so a wrong line cannot make us trust anyone).

use std::path::Path;

use crate::protocol::NodeId;
use crate::protocol::peer_record::parse_addr;
use crate::store::file::modes;
use crate::transport::Peer;

/// The file's name in the store directory.
pub const PEERS_FILE: &str = "peers";

/// Lines kept (and read) at most.
pub const MAX_KNOWN: usize = 64;

/// Parses the file's text: valid lines, at most [`MAX_KNOWN`].
pub fn parse(text: &str) -> Vec<Peer> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let id: NodeId = parts.next()?.parse().ok()?;
            let addr = parts.next()?;
            (parse_addr(addr).is_some() && parts.next().is_none() && !id.is_nil())
                .then(|| Peer::new(id, addr))
        })
        .take(MAX_KNOWN)
        .collect()
}

/// The file's text for `peers`.
pub fn render(peers: &[Peer]) -> String {
    peers
        .iter()
        .take(MAX_KNOWN)
        .map(|p| format!("{} {}\n", p.id, p.addr))
        .collect()
}

/// Reads the file (nothing if it is missing or unreadable).
pub fn load(dir: &Path) -> Vec<Peer> {
    std::fs::read_to_string(dir.join(PEERS_FILE))
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// Writes the file whole (a temporary file renamed over it, private to the user).
pub fn save(dir: &Path, peers: &[Peer]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{PEERS_FILE}.tmp"));
    let mut f = modes::private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    std::io::Write::write_all(&mut f, render(peers).as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, dir.join(PEERS_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_skips_what_does_not_parse() {
        let a = NodeId::from_u128(7);
        let b = NodeId::from_u128(8);
        let peers = vec![
            Peer::new(a, "10.0.0.2:4000"),
            Peer::new(b, "127.0.0.1:5000"),
        ];
        let text = render(&peers);
        assert_eq!(parse(&text), peers);
        let junk = format!(
            "{text}not-an-id 10.0.0.3:1\n{a} host.example:4000\n{a}\n{a} 10.0.0.4:1 extra\n{} 10.0.0.5:1\n",
            NodeId::NIL
        );
        assert_eq!(parse(&junk), peers);
    }

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_empty());
        let peers = vec![Peer::new(NodeId::from_u128(7), "10.0.0.2:4000")];
        save(dir.path(), &peers).unwrap();
        assert_eq!(load(dir.path()), peers);
    }
}
