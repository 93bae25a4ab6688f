//! The seed's HTTP transport example: the three-node run of `three_nodes`, over HTTP/1.1
//! on 127.0.0.1 ([`gossip::transport::http::HttpTransport`]: axum serves, reqwest asks).
//! A digest is `POST /gossip/request`, answered with the events the asker lacks; a push
//! is `POST /gossip/send`.
//!
//! ```sh
//! cargo run --example http_transport --features http
//! ```

#[path = "common/three.rs"]
mod three;

use std::net::SocketAddr;
use std::sync::Arc;

use gossip::NodeId;
use gossip::transport::Transport;
use gossip::transport::http::{HttpConfig, HttpTransport, REQUEST_PATH, SEND_PATH};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ids = [NodeId::random(), NodeId::random(), NodeId::random()];
    let mut transports = Vec::new();
    for id in ids {
        let t = HttpTransport::bind(HttpConfig::new(id, SocketAddr::from(([127, 0, 0, 1], 0))))?;
        transports.push(Arc::new(t) as Arc<dyn Transport>);
    }
    println!("each node serves POST {REQUEST_PATH} (digests) and POST {SEND_PATH} (pushes)");
    let transports: [Arc<dyn Transport>; 3] = transports
        .try_into()
        .map_err(|_| "three transports expected")?;
    let took = three::run(ids, transports).await?;
    println!("converged in {took:.1?} over HTTP");
    Ok(())
}
