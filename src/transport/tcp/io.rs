//! Reading and writing frames on any byte stream, with deadlines.
//!
//! Generic over `AsyncRead`/`AsyncWrite` so that an encrypting stream (Noise) can later be
//! slotted under the frames without touching the connection logic.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, timeout_at};
use tokio_util::codec::{Decoder, FramedWrite, LengthDelimitedCodec};

use crate::transport::TransportError;
use crate::transport::codec::{Frame, LENGTH_PREFIX, decode_frame, encode_frame, length_codec};

/// Why no frame could be read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The stream ended cleanly between frames.
    Eof,
    /// Nothing arrived before the idle deadline (no partial frame pending).
    Idle,
    /// A frame started but did not complete within the I/O timeout.
    Timeout(Duration),
    /// The stream failed, or ended inside a frame.
    Io(String),
    /// The bytes are not a valid frame (over the size limit, or undecodable).
    Codec(String),
}

impl ReadError {
    /// The error as the transport reports it.
    pub(super) fn into_transport(self) -> TransportError {
        match self {
            ReadError::Eof => TransportError::Closed("connection closed by the peer".into()),
            ReadError::Idle => TransportError::Closed("idle".into()),
            ReadError::Timeout(d) => TransportError::Timeout(d),
            ReadError::Io(e) => TransportError::Io(e),
            ReadError::Codec(e) => TransportError::Codec(e),
        }
    }
}

/// Reads length-delimited frames; partial input is kept across calls, so a call may be
/// cancelled (e.g. in a `select!`) without losing bytes.
pub(super) struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    codec: LengthDelimitedCodec,
    limit: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(super) fn new(io: R, limit: usize) -> Self {
        FrameReader {
            io,
            buf: BytesMut::with_capacity(8 * 1024),
            codec: length_codec(limit),
            limit,
        }
    }

    /// Changes the largest frame body accepted from now on.
    pub(super) fn set_limit(&mut self, limit: usize) {
        self.codec.set_max_frame_length(limit);
        self.limit = limit;
    }

    /// Reads one frame and its size on the wire (prefix included). While no byte of a frame
    /// has arrived, waits until `idle_deadline`; once one has, the rest must follow within
    /// `io_timeout`, so a peer cannot hold a half-sent frame open.
    pub(super) async fn next(
        &mut self,
        idle_deadline: Instant,
        io_timeout: Duration,
    ) -> Result<(Frame, usize), ReadError> {
        let mut frame_deadline = (!self.buf.is_empty()).then(|| Instant::now() + io_timeout);
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(body)) => {
                    let frame = decode_frame(&body, self.limit)
                        .map_err(|e| ReadError::Codec(e.to_string()))?;
                    return Ok((frame, body.len() + LENGTH_PREFIX));
                }
                Ok(None) => {}
                Err(e) => return Err(ReadError::Codec(e.to_string())),
            }
            let deadline = frame_deadline.unwrap_or(idle_deadline);
            match timeout_at(deadline, self.io.read_buf(&mut self.buf)).await {
                Err(_) if frame_deadline.is_some() => return Err(ReadError::Timeout(io_timeout)),
                Err(_) => return Err(ReadError::Idle),
                Ok(Ok(0)) if self.buf.is_empty() => return Err(ReadError::Eof),
                Ok(Ok(0)) => {
                    return Err(ReadError::Io(format!(
                        "connection closed inside a frame ({} bytes pending)",
                        self.buf.len()
                    )));
                }
                Ok(Ok(_)) => {
                    frame_deadline.get_or_insert_with(|| Instant::now() + io_timeout);
                }
                Ok(Err(e)) => return Err(ReadError::Io(e.to_string())),
            }
        }
    }
}

/// Writes length-delimited frames.
pub(super) struct FrameWriter<W> {
    sink: FramedWrite<W, LengthDelimitedCodec>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(super) fn new(io: W, limit: usize) -> Self {
        FrameWriter {
            sink: FramedWrite::new(io, length_codec(limit)),
        }
    }

    pub(super) fn set_limit(&mut self, limit: usize) {
        self.sink.encoder_mut().set_max_frame_length(limit);
    }

    /// Queues an encoded body without flushing.
    pub(super) async fn feed(&mut self, body: Bytes) -> Result<(), TransportError> {
        SinkExt::<Bytes>::feed(&mut self.sink, body)
            .await
            .map_err(TransportError::from)
    }

    /// Flushes what was queued.
    pub(super) async fn flush(&mut self) -> Result<(), TransportError> {
        SinkExt::<Bytes>::flush(&mut self.sink)
            .await
            .map_err(TransportError::from)
    }

    /// Encodes, writes and flushes one frame within `timeout`; returns its size on the wire.
    pub(super) async fn send(
        &mut self,
        frame: &Frame,
        limit: usize,
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        let body = encode_frame(frame, limit).map_err(|e| TransportError::Codec(e.to_string()))?;
        let len = body.len() + LENGTH_PREFIX;
        let write = async {
            self.feed(body).await?;
            self.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(r) => r.map(|()| len),
            Err(_) => Err(TransportError::Timeout(timeout)),
        }
    }

    /// Shuts the write side down (sends FIN), best effort.
    pub(super) async fn shutdown(&mut self) {
        let _ = SinkExt::<Bytes>::close(&mut self.sink).await;
    }
}
