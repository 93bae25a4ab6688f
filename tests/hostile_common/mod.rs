//! A room member written from `docs/PROTOCOL.md` alone: it completes the Noise handshake
//! and the signed `Hello` like any node, then says whatever it likes, frame by frame.
//! Shared by `tests/hostile_member.rs` and `examples/hostile_bench.rs`.

// Each user takes only some of these helpers.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use gossip::NodeId;
use gossip::auth::NodeIdentity;
use gossip::transport::codec::{
    Frame, Hello, HelloAuth, PROTOCOL_VERSION, decode_frame, encode_frame,
};
use snow::StatelessTransportState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Noise pattern of an open room (docs/PROTOCOL.md, "Encryption").
const NOISE_XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// The most plaintext one Noise transport message carries.
const CHUNK_MAX: usize = 65535 - 16;
/// Frames this member accepts from the node.
const FRAME_MAX: usize = 64 << 20;

/// How a member introduces itself.
#[derive(Clone)]
pub struct Claim {
    /// The key it signs its `Hello` with (`None`: no proof at all).
    pub key: Option<NodeIdentity>,
    /// The node id it claims (its key's, or someone else's).
    pub node_id: NodeId,
    /// The room.
    pub room: String,
    /// Its display name.
    pub name: String,
}

impl Claim {
    /// An honest claim: its own key and id.
    pub fn honest(key: &NodeIdentity, room: &str) -> Claim {
        Claim {
            key: Some(key.clone()),
            node_id: key.node_id(),
            room: room.into(),
            name: "member".into(),
        }
    }
}

/// One authenticated connection to a node.
pub struct Member {
    stream: TcpStream,
    noise: StatelessTransportState,
    send_nonce: u64,
    recv_nonce: u64,
    plain: Vec<u8>,
    /// The node's `Hello`.
    pub hello: Hello,
}

async fn write_msg(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    s.write_all(&out).await
}

async fn read_msg(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg).await?;
    Ok(msg)
}

/// A TCP connection to `to` from the loopback address `from` (so that many members can
/// come from many addresses on one machine).
pub async fn dial_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

impl Member {
    /// Connects from 127.0.0.1 and joins as `claim` says.
    pub async fn join(to: SocketAddr, claim: &Claim) -> Result<Member, String> {
        let stream = TcpStream::connect(to).await.map_err(|e| e.to_string())?;
        Member::join_on(stream, claim).await
    }

    /// Joins on an open TCP stream: Noise XX as initiator, then our `Hello` (signed over
    /// the handshake hash), then the node's. `Err` if the node refuses or hangs up.
    pub async fn join_on(mut stream: TcpStream, claim: &Claim) -> Result<Member, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let params: snow::params::NoiseParams = NOISE_XX.parse().map_err(|e| err(&e))?;
        let keys = snow::Builder::new(params.clone())
            .generate_keypair()
            .map_err(|e| err(&e))?;
        let mut hs = snow::Builder::new(params)
            .local_private_key(&keys.private)
            .map_err(|e| err(&e))?
            .build_initiator()
            .map_err(|e| err(&e))?;
        let mut buf = vec![0u8; 65535];
        let n = hs.write_message(&[], &mut buf).map_err(|e| err(&e))?;
        write_msg(&mut stream, &buf[..n])
            .await
            .map_err(|e| err(&e))?;
        let msg = read_msg(&mut stream).await.map_err(|e| err(&e))?;
        hs.read_message(&msg, &mut buf).map_err(|e| err(&e))?;
        let n = hs.write_message(&[], &mut buf).map_err(|e| err(&e))?;
        write_msg(&mut stream, &buf[..n])
            .await
            .map_err(|e| err(&e))?;
        let hash = hs.get_handshake_hash().to_vec();
        let noise = hs.into_stateless_transport_mode().map_err(|e| err(&e))?;
        let auth = claim.key.as_ref().map(|k| HelloAuth {
            public_key: Bytes::copy_from_slice(&k.public_key()),
            signature: Bytes::copy_from_slice(&k.sign_binding(&hash)),
        });
        let mut member = Member {
            stream,
            noise,
            send_nonce: 0,
            recv_nonce: 0,
            plain: Vec::new(),
            hello: Hello {
                protocol_version: PROTOCOL_VERSION,
                node_id: NodeId::NIL,
                room: String::new(),
                listen_port: 0,
                name: String::new(),
                auth: None,
            },
        };
        member
            .send(&Frame::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                node_id: claim.node_id,
                room: claim.room.clone(),
                listen_port: 9,
                name: claim.name.clone(),
                auth,
            }))
            .await
            .map_err(|e| err(&e))?;
        match member.recv(Duration::from_secs(20)).await {
            Some(Frame::Hello(h)) => {
                member.hello = h;
                Ok(member)
            }
            Some(Frame::Bye { reason }) => Err(format!("refused: {reason}")),
            Some(other) => Err(format!("expected Hello, got {other:?}")),
            None => Err("closed before its Hello".into()),
        }
    }

    /// Sends one frame (encrypted, in Noise messages of at most 64 KiB).
    pub async fn send(&mut self, frame: &Frame) -> std::io::Result<()> {
        let body = encode_frame(frame, FRAME_MAX).map_err(std::io::Error::other)?;
        let mut wire = (body.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&body);
        let mut out = Vec::with_capacity(wire.len() + wire.len() / CHUNK_MAX * 18 + 18);
        let mut cipher = vec![0u8; 65535];
        for chunk in wire.chunks(CHUNK_MAX) {
            let n = self
                .noise
                .write_message(self.send_nonce, chunk, &mut cipher)
                .map_err(std::io::Error::other)?;
            self.send_nonce += 1;
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&cipher[..n]);
        }
        self.stream.write_all(&out).await
    }

    /// The next frame within `patience`, or `None` if the node closed first (or a frame
    /// did not come in time).
    pub async fn recv(&mut self, patience: Duration) -> Option<Frame> {
        tokio::time::timeout(patience, self.recv_inner())
            .await
            .ok()
            .flatten()
    }

    async fn recv_inner(&mut self) -> Option<Frame> {
        loop {
            if self.plain.len() >= 4 {
                let len = u32::from_be_bytes(self.plain[..4].try_into().ok()?) as usize;
                if self.plain.len() >= 4 + len {
                    let frame = decode_frame(&self.plain[4..4 + len], FRAME_MAX).ok();
                    self.plain.drain(..4 + len);
                    return frame;
                }
            }
            let msg = read_msg(&mut self.stream).await.ok()?;
            let mut plain = vec![0u8; msg.len()];
            let n = self
                .noise
                .read_message(self.recv_nonce, &msg, &mut plain)
                .ok()?;
            self.recv_nonce += 1;
            self.plain.extend_from_slice(&plain[..n]);
        }
    }

    /// Reads until the node closes the connection; the reason of its `Bye`, if any.
    pub async fn closed(&mut self, patience: Duration) -> Result<Option<String>, &'static str> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut bye = None;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err("still open");
            }
            match tokio::time::timeout(left, self.recv_inner()).await {
                Err(_) => return Err("still open"),
                Ok(Some(Frame::Bye { reason })) => bye = Some(reason),
                Ok(Some(_)) => {}
                Ok(None) => return Ok(bye),
            }
        }
    }
}

/// The sending half of a [`Member`] split in two (see [`Member::split`]).
pub struct MemberTx {
    w: tokio::net::tcp::OwnedWriteHalf,
    noise: std::sync::Arc<StatelessTransportState>,
    nonce: u64,
}

/// The receiving half of a [`Member`]: counts what the node sends.
pub struct MemberRx {
    r: tokio::net::tcp::OwnedReadHalf,
    noise: std::sync::Arc<StatelessTransportState>,
    nonce: u64,
}

impl Member {
    /// Splits the connection, so one task can send while another reads.
    pub fn split(self) -> (MemberTx, MemberRx) {
        assert!(self.plain.is_empty(), "split with unread plaintext");
        let noise = std::sync::Arc::new(self.noise);
        let (r, w) = self.stream.into_split();
        (
            MemberTx {
                w,
                noise: noise.clone(),
                nonce: self.send_nonce,
            },
            MemberRx {
                r,
                noise,
                nonce: self.recv_nonce,
            },
        )
    }
}

impl MemberTx {
    /// Sends one frame.
    pub async fn send(&mut self, frame: &Frame) -> std::io::Result<()> {
        let body = encode_frame(frame, FRAME_MAX).map_err(std::io::Error::other)?;
        let mut wire = (body.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&body);
        let mut out = Vec::new();
        let mut cipher = vec![0u8; 65535];
        for chunk in wire.chunks(CHUNK_MAX) {
            let n = self
                .noise
                .write_message(self.nonce, chunk, &mut cipher)
                .map_err(std::io::Error::other)?;
            self.nonce += 1;
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&cipher[..n]);
        }
        self.w.write_all(&out).await
    }
}

impl MemberRx {
    /// Reads and decrypts until the connection closes; returns the plaintext bytes read.
    /// Cancel-safe only at the level of the whole call: run it in its own task.
    pub async fn drain(&mut self, counted: &std::sync::atomic::AtomicU64) {
        let mut plain = vec![0u8; 65535];
        loop {
            let mut len = [0u8; 2];
            if self.r.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
            if self.r.read_exact(&mut msg).await.is_err() {
                return;
            }
            let Ok(n) = self.noise.read_message(self.nonce, &msg, &mut plain) else {
                return;
            };
            self.nonce += 1;
            counted.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The resident memory of this process, in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
