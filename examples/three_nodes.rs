//! The seed's first example: three nodes on an in-memory network, a few events, and the
//! stream of events each node receives.
//!
//! ```sh
//! cargo run --example three_nodes
//! ```

#[path = "common/three.rs"]
mod three;

use std::sync::Arc;

use gossip::NodeId;
use gossip::transport::{MemoryNetwork, Transport};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let net = MemoryNetwork::new(7);
    let ids = [NodeId::random(), NodeId::random(), NodeId::random()];
    let transports: [Arc<dyn Transport>; 3] =
        std::array::from_fn(|i| Arc::new(net.transport(ids[i], three::NAMES[i])) as _);
    let took = three::run(ids, transports).await?;
    println!("converged in {took:.1?} on the memory transport");
    Ok(())
}
