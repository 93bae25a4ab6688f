//! The Noise layer under the frames: a handshake on the raw socket, then every byte of the
//! frame stream travels in Noise transport messages.
//!
//! Handshake messages and transport messages are each sent as a 2-byte big-endian length
//! and the Noise message (at most 65535 bytes). Frames are a plain byte stream above this
//! layer, so a frame larger than one Noise message simply spans several.
//!
//! After the handshake two pump tasks move bytes between the socket and an in-memory pipe
//! that the frame reader and writer use, so the connection logic does not change.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use snow::{HandshakeState, StatelessTransportState};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::transport::TransportError;

/// The pattern of an open room.
pub const NOISE_XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// The pattern of a room with a secret: the room key is mixed in as a pre-shared key, so a
/// peer without it cannot complete the handshake.
pub const NOISE_XX_PSK3: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
/// The largest Noise message.
pub const NOISE_MAX: usize = 65535;
/// The AEAD tag each transport message adds.
const TAG: usize = 16;
/// The most plaintext one transport message carries.
pub const CHUNK_MAX: usize = NOISE_MAX - TAG;
/// Bytes buffered between the pumps and the frame reader and writer.
const PIPE: usize = 256 * 1024;
/// How long the reading pump goes on after our side stopped writing, so the peer's last
/// frames (its `Bye`) still arrive.
const READ_GRACE: Duration = Duration::from_secs(2);

/// Whether and how a TCP transport encrypts its connections.
#[derive(Clone, PartialEq, Eq)]
pub enum Encryption {
    /// Noise XX, with the room key as PSK (XXpsk3) when there is one. The default.
    Noise {
        /// The room key (see `gossip-chat --secret-file`); `None` for an open room.
        psk: Option<[u8; 32]>,
    },
    /// No encryption: frames in the clear. Only for measuring what Noise costs; a node on
    /// a shared LAN must never use it.
    Plaintext,
}

impl fmt::Debug for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the room key.
        match self {
            Encryption::Noise { psk: None } => f.write_str("Noise(open)"),
            Encryption::Noise { psk: Some(_) } => f.write_str("Noise(psk)"),
            Encryption::Plaintext => f.write_str("Plaintext"),
        }
    }
}

/// Both halves of a connection's byte stream, whatever carries it.
pub(super) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// See [`BoxRead`].
pub(super) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A socket ready for frames: its halves and, under Noise, the handshake hash that the
/// `Hello` signatures bind to.
pub(super) struct Secured {
    pub(super) read: BoxRead,
    pub(super) write: BoxWrite,
    pub(super) handshake_hash: Option<Vec<u8>>,
}

/// The socket as is.
pub(super) fn plaintext(stream: TcpStream) -> Secured {
    let (r, w) = stream.into_split();
    Secured {
        read: Box::new(r),
        write: Box::new(w),
        handshake_hash: None,
    }
}

fn noise_err(what: &str) -> impl Fn(snow::Error) -> TransportError + '_ {
    move |e| TransportError::Handshake(format!("Noise {what}: {e}"))
}

/// Runs the Noise handshake on `stream` (as initiator when we dialed) by `deadline`, then
/// starts the pumps.
pub(super) async fn secure(
    mut stream: TcpStream,
    initiator: bool,
    psk: Option<&[u8; 32]>,
    deadline: Instant,
) -> Result<Secured, TransportError> {
    let pattern = if psk.is_some() {
        NOISE_XX_PSK3
    } else {
        NOISE_XX
    };
    let params: snow::params::NoiseParams = pattern.parse().map_err(noise_err("pattern"))?;
    // A fresh static key per connection: the node's identity is proved by the signed Hello,
    // not by the Noise static key.
    let keys = snow::Builder::new(params.clone())
        .generate_keypair()
        .map_err(noise_err("key"))?;
    let mut builder = snow::Builder::new(params)
        .local_private_key(&keys.private)
        .map_err(noise_err("key"))?;
    if let Some(psk) = psk {
        builder = builder.psk(3, psk).map_err(noise_err("psk"))?;
    }
    let mut hs = if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    }
    .map_err(noise_err("setup"))?;
    let timeout = deadline.saturating_duration_since(Instant::now());
    timeout_at(
        deadline,
        handshake(&mut stream, &mut hs, initiator, psk.is_some()),
    )
    .await
    .map_err(|_| TransportError::Timeout(timeout))??;
    let hash = hs.get_handshake_hash().to_vec();
    let state = hs
        .into_stateless_transport_mode()
        .map_err(noise_err("transport"))?;
    Ok(start_pumps(stream, Arc::new(state), hash))
}

async fn handshake(
    stream: &mut TcpStream,
    hs: &mut HandshakeState,
    initiator: bool,
    with_psk: bool,
) -> Result<(), TransportError> {
    let mut buf = vec![0u8; NOISE_MAX];
    // XX: -> e; <- e, ee, s, es; -> s, se. Our turn first if we dialed.
    let mut ours = initiator;
    while !hs.is_handshake_finished() {
        if ours {
            let n = hs
                .write_message(&[], &mut buf)
                .map_err(noise_err("handshake"))?;
            write_msg(stream, &buf[..n]).await?;
        } else {
            let msg = read_msg(stream).await.map_err(|e| match e {
                TransportError::Closed(_) if with_psk => TransportError::Closed(
                    "the peer closed the connection during the Noise handshake (a different room secret?)".into(),
                ),
                TransportError::Closed(_) => TransportError::Closed(
                    "the peer closed the connection during the Noise handshake (does it need a room secret?)".into(),
                ),
                other => other,
            })?;
            hs.read_message(&msg, &mut buf).map_err(|e| {
                TransportError::Handshake(format!(
                    "Noise handshake failed ({e}): the peer is not in this room{}",
                    if with_psk {
                        " or has another room secret"
                    } else {
                        " or uses a room secret"
                    }
                ))
            })?;
        }
        ours = !ours;
    }
    Ok(())
}

async fn write_msg<W: AsyncWrite + Unpin>(w: &mut W, msg: &[u8]) -> Result<(), TransportError> {
    let len = u16::try_from(msg.len())
        .map_err(|_| TransportError::Protocol("Noise message over 65535 bytes".into()))?;
    let mut out = Vec::with_capacity(2 + msg.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    w.write_all(&out)
        .await
        .map_err(|e| TransportError::Io(e.to_string()))
}

async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, TransportError> {
    let mut len = [0u8; 2];
    if let Err(e) = r.read_exact(&mut len).await {
        return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
            TransportError::Closed("connection closed by the peer".into())
        } else {
            TransportError::Io(e.to_string())
        });
    }
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    r.read_exact(&mut msg)
        .await
        .map_err(|e| TransportError::Io(format!("inside a Noise message: {e}")))?;
    Ok(msg)
}

fn start_pumps(stream: TcpStream, state: Arc<StatelessTransportState>, hash: Vec<u8>) -> Secured {
    let (tcp_r, tcp_w) = stream.into_split();
    let (app_read, pump_in) = tokio::io::duplex(PIPE);
    let (app_write, pump_out) = tokio::io::duplex(PIPE);
    let stop_reading = CancellationToken::new();
    tokio::spawn(decrypt_pump(
        tcp_r,
        pump_in,
        state.clone(),
        stop_reading.clone(),
    ));
    tokio::spawn(encrypt_pump(pump_out, tcp_w, state, stop_reading));
    let (app_read, _unused_w) = tokio::io::split(app_read);
    let (_unused_r, app_write) = tokio::io::split(app_write);
    Secured {
        read: Box::new(app_read),
        write: Box::new(app_write),
        handshake_hash: Some(hash),
    }
}

/// Socket -> pipe. A message that does not decrypt ends the connection: it was tampered
/// with, or is not from the peer of this handshake.
async fn decrypt_pump<R: AsyncRead + Unpin>(
    mut tcp: R,
    mut pipe: DuplexStream,
    state: Arc<StatelessTransportState>,
    stop: CancellationToken,
) {
    let mut plain = vec![0u8; NOISE_MAX];
    let mut nonce = 0u64;
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = read_msg(&mut tcp) => m,
        };
        let Ok(msg) = msg else { break };
        let n = match state.read_message(nonce, &msg, &mut plain) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "a Noise message did not decrypt; closing");
                break;
            }
        };
        nonce += 1;
        if pipe.write_all(&plain[..n]).await.is_err() {
            break;
        }
    }
    // Dropping the pipe ends the frame reader's stream.
}

/// Pipe -> socket, in chunks of at most one Noise message.
async fn encrypt_pump<W: AsyncWrite + Unpin>(
    mut pipe: DuplexStream,
    mut tcp: W,
    state: Arc<StatelessTransportState>,
    stop_reading: CancellationToken,
) {
    let mut plain = vec![0u8; CHUNK_MAX];
    let mut out = vec![0u8; 2 + NOISE_MAX];
    let mut nonce = 0u64;
    loop {
        let n = match pipe.read(&mut plain).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Ok(len) = state.write_message(nonce, &plain[..n], &mut out[2..]) else {
            break;
        };
        nonce += 1;
        out[..2].copy_from_slice(&(len as u16).to_be_bytes());
        if tcp.write_all(&out[..2 + len]).await.is_err() {
            break;
        }
    }
    let _ = tcp.shutdown().await;
    tokio::time::sleep(READ_GRACE).await;
    stop_reading.cancel();
}
