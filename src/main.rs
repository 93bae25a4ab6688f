//! gossip-chat: a LAN terminal chat with a shared list, built on the gossip library.

#![deny(clippy::unwrap_used, clippy::expect_used)]

fn main() -> std::process::ExitCode {
    gossip::app::runtime::cli::main()
}
