//! gossip-chat: a LAN terminal chat with a shared list, built on the gossip library.
//!
//! The terminal UI lands with its own issue; until then this binary explains itself.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("gossip-chat {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    println!(
        "gossip-chat {}: LAN chat and a shared list, synced by gossip.\n\n\
         The terminal app is not built yet; the gossip library is.\n\
         Try the simulator: cargo run --release --example simulate",
        env!("CARGO_PKG_VERSION")
    );
}
