//! gossip-chat: a LAN terminal chat with a shared list, built on the gossip library.

fn main() -> std::process::ExitCode {
    gossip::app::cli::main()
}
