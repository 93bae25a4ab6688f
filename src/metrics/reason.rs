//! The reason label of a failed exchange, from its error text.
//!
//! An [`crate::node::ExchangeResult`] carries its error as text (the node reports transport,
//! store and protocol errors alike); the label groups them into a few fixed values, so a
//! peer's error text can never mint new label values.

/// The reason labels, in the order they are tried.
pub const REASONS: [&str; 8] = [
    "timeout",
    "unreachable",
    "closed",
    "codec",
    "protocol",
    "handshake",
    "not_started",
    "other",
];

/// The reason label for an exchange error.
pub fn reason_of(error: &str) -> &'static str {
    // The prefixes are those of `TransportError`'s messages.
    let e = error.trim_start();
    let table: [(&str, &'static str); 8] = [
        ("timed out", "timeout"),
        ("cannot reach", "unreachable"),
        ("connection closed", "closed"),
        ("bad frame", "codec"),
        ("protocol violation", "protocol"),
        ("handshake refused", "handshake"),
        ("transport not started", "not_started"),
        ("i/o error", "unreachable"),
    ];
    for (prefix, label) in table {
        if e.contains(prefix) {
            return label;
        }
    }
    "other"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{PeerAddr, TransportError};
    use std::time::Duration;

    #[test]
    fn every_transport_error_gets_its_label() {
        let cases = [
            (TransportError::Timeout(Duration::from_secs(1)), "timeout"),
            (
                TransportError::Unreachable {
                    addr: PeerAddr::from("x"),
                    reason: "refused".into(),
                },
                "unreachable",
            ),
            (TransportError::Closed("eof".into()), "closed"),
            (TransportError::Codec("junk".into()), "codec"),
            (TransportError::Protocol("big".into()), "protocol"),
            (TransportError::Handshake("room".into()), "handshake"),
            (TransportError::NotStarted, "not_started"),
        ];
        for (e, want) in cases {
            assert_eq!(reason_of(&e.to_string()), want, "{e}");
            assert!(REASONS.contains(&want));
        }
        assert_eq!(reason_of("the store is closed"), "other");
    }
}
