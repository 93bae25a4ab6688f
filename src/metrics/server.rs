//! A small HTTP/1.1 server for the metrics: `GET /metrics` answers the text, anything
//! else 404. It reads at most one bounded request per connection, with a deadline, and
//! serves a bounded number of connections at once, so a scraper gone wrong cannot grow
//! its memory or its tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// The longest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its request and read the answer.
const DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16;
/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running metrics endpoint; stops when dropped or on [`MetricsServer::stop`].
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl MetricsServer {
    /// Where it listens (the port chosen, when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Serves `metrics` at `http://addr/metrics`. Pass a loopback address unless the metrics
/// should be readable from the network: they name peers and their traffic.
pub async fn serve(addr: SocketAddr, metrics: Metrics) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "metrics are served beyond this machine");
    }
    let cancel = CancellationToken::new();
    tokio::spawn(accept_loop(listener, metrics, cancel.clone()));
    tracing::info!(%addr, "serving metrics at /metrics");
    Ok(MetricsServer { addr, cancel })
}

async fn accept_loop(listener: TcpListener, metrics: Metrics, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(DEADLINE, answer(stream, &metrics)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "metrics request failed"),
                        Err(_) => tracing::debug!(%peer, "metrics request timed out"),
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a metrics connection failed");
                // Out of file descriptors, typically: give the system a moment.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let head = read_head(&mut stream).await?;
    let (status, content_type, body) = match request_target(&head) {
        Some(("GET", "/metrics")) => ("200 OK", CONTENT_TYPE, metrics.render().await),
        Some(("GET", _)) => ("404 Not Found", "text/plain", "try /metrics\n".into()),
        Some(_) => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
        None => ("400 Bad Request", "text/plain", "bad request\n".into()),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads until the end of the request head, at most [`MAX_REQUEST`] bytes.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() >= MAX_REQUEST {
            break;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

/// The method and path of a request head (query string dropped).
fn request_target(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    parts.next()?.starts_with("HTTP/").then_some(())?;
    Some((method, target.split('?').next().unwrap_or(target)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_parsed_and_junk_is_refused() {
        assert_eq!(
            request_target(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            request_target(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(request_target(b"\xff\xfe"), None);
        assert_eq!(request_target(b"GET\r\n"), None);
        assert_eq!(request_target(b"GET / FTP\r\n"), None);
    }
}
