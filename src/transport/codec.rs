//! The frame layer of byte transports: what travels inside one length-delimited frame.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes: the bincode 2
//! encoding (serde, standard config) of one [`Frame`]. This module knows nothing of
//! sockets, so an encrypting layer (Noise) can later sit between it and the stream.
//! The byte-level layout is documented in `docs/PROTOCOL.md`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio_util::codec::LengthDelimitedCodec;

use crate::protocol::codec::{self, varint_len};
use crate::protocol::exchange::TRANSPORT_RESERVE;
use crate::protocol::{Message, NodeId};

/// The wire protocol version sent in [`Hello`]. Peers with another version are refused.
/// Version 2: Noise under the frames, `Hello::auth`, event signatures.
pub const PROTOCOL_VERSION: u32 = 4;

/// Bytes of the length prefix before every frame.
pub const LENGTH_PREFIX: usize = 4;

/// The largest frame accepted before the handshake completes: a [`Hello`] or a [`Frame::Bye`]
/// is small, and a peer that has not identified itself must not make us buffer megabytes.
pub const HANDSHAKE_FRAME_MAX: usize = 4096;

/// The most a frame adds around a [`Message`]: the length prefix, the frame tag (one byte)
/// and an exchange id (a varint of at most 9 bytes).
pub const FRAME_OVERHEAD_MAX: usize = LENGTH_PREFIX + 1 + 9;

// The node cuts its batches leaving TRANSPORT_RESERVE bytes for us.
const _: () = assert!(FRAME_OVERHEAD_MAX <= TRANSPORT_RESERVE);

/// The `Bye` reason of a connection closed for being idle: the sender is alive.
pub const BYE_IDLE: &str = "idle";

/// The `Bye` reason of a connection closed because a newer one replaced it: the sender is
/// alive.
pub const BYE_REPLACED: &str = "replaced by a newer connection";

/// The `Bye` reason of a node shutting down.
pub const BYE_STOPPING: &str = "node stopping";

/// The `Bye` reason of an inbound connection closed to make room for another when the
/// slots ran short: the sender is alive (and still dials out).
pub const BYE_EVICTED: &str = "evicted: inbound slots are short";

/// The `Bye` reason of a connection dropped after one of its requests timed out (it may
/// be dead without TCP knowing): the sender is alive and dials a fresh one.
pub const BYE_REDIAL: &str = "a request timed out: redialing";

/// Whether a `Bye` with `reason` means the sender is going away (rather than just closing
/// one connection while staying reachable).
pub fn bye_means_gone(reason: &str) -> bool {
    ![BYE_IDLE, BYE_REPLACED, BYE_EVICTED, BYE_REDIAL].contains(&reason)
}

/// The first frame each side sends on a new connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub protocol_version: u32,
    /// The sender's node id.
    pub node_id: NodeId,
    /// The room (chat group) the sender belongs to; only equal rooms talk.
    pub room: String,
    /// The TCP port the sender accepts connections on (its address is the connection's
    /// remote IP with this port).
    pub listen_port: u16,
    /// The sender's display name (may be empty).
    pub name: String,
    /// Proof that the sender owns `node_id`, on an encrypted connection whose sender has an
    /// identity key; `None` otherwise.
    pub auth: Option<HelloAuth>,
}

/// The binding of a Noise session to a node identity: the sender's ed25519 public key (whose
/// hash is its node id) and its signature over the Noise handshake hash, which is unique to
/// this connection, so the proof cannot be replayed on another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloAuth {
    /// The sender's public key (32 bytes).
    pub public_key: Bytes,
    /// Its signature over the handshake hash (64 bytes).
    pub signature: Bytes,
}

/// One frame. The variant order is the wire tag (0, 1, 2, ...): never reorder, only append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Tag 0: the handshake, once per side, before anything else.
    Hello(Hello),
    /// Tag 1: a message that expects a [`Frame::Response`] with the same `xid`.
    Request {
        /// Exchange id, chosen by the requester, unique among its requests in flight on
        /// this connection.
        xid: u64,
        /// The message (a `Digest`).
        message: Message,
    },
    /// Tag 2: the answer to the [`Frame::Request`] with this `xid`.
    Response {
        /// The request's exchange id.
        xid: u64,
        /// The message (a `DigestResponse`).
        message: Message,
    },
    /// Tag 3: a one-way message (a phase-3 or eager `Push`).
    Push {
        /// The message.
        message: Message,
    },
    /// Tag 4: the sender closes the connection, and says why.
    Bye {
        /// Why, for the other side's log.
        reason: String,
    },
}

impl Frame {
    /// A short name of the frame kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "Hello",
            Frame::Request { .. } => "Request",
            Frame::Response { .. } => "Response",
            Frame::Push { .. } => "Push",
            Frame::Bye { .. } => "Bye",
        }
    }

    /// The exact encoded size of a frame body carrying `message` with exchange id `xid`
    /// (for a request or response) or none (for a push), without encoding it.
    pub fn body_len(message: &Message, xid: Option<u64>) -> usize {
        1 + xid.map_or(0, varint_len) + message.encoded_len()
    }
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The body is not a valid frame encoding.
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    /// The encoded frame is over the limit.
    #[error("a {len}-byte frame is over the limit of {limit} bytes")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
}

/// Encodes `frame` to a body (without the length prefix), refusing bodies over `limit`.
pub fn encode_frame(frame: &Frame, limit: usize) -> Result<Bytes, FrameError> {
    let body = codec::encode(frame)?;
    if body.len() > limit {
        return Err(FrameError::TooLarge {
            len: body.len(),
            limit,
        });
    }
    Ok(Bytes::from(body))
}

/// Decodes one frame body (without the length prefix) of at most `limit` bytes.
pub fn decode_frame(body: &[u8], limit: usize) -> Result<Frame, FrameError> {
    Ok(codec::decode(body, limit)?)
}

/// The length-prefix codec of the wire: 4 bytes, big-endian, counting the body only, with
/// bodies over `max_body` refused as soon as their prefix is read.
pub fn length_codec(max_body: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(LENGTH_PREFIX)
        .big_endian()
        .max_frame_length(max_body)
        .new_codec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Event, VectorClock};
    use bytes::BytesMut;
    use proptest::prelude::*;
    use tokio_util::codec::{Decoder, Encoder};
    use uuid::Uuid;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .chunks(16)
            .map(|line| {
                line.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The full wire bytes (prefix included) of `frame`.
    fn wire(frame: &Frame) -> Vec<u8> {
        let body = encode_frame(frame, 1 << 20).unwrap();
        let mut out = BytesMut::new();
        length_codec(1 << 20).encode(body, &mut out).unwrap();
        out.to_vec()
    }

    const PROTOCOL_MD: &str = include_str!("../../docs/PROTOCOL.md");

    fn example_hello() -> Frame {
        Frame::Hello(Hello {
            protocol_version: 4,
            node_id: NodeId(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff)),
            room: "lobby".into(),
            listen_port: 4000,
            name: "ann".into(),
            auth: None,
        })
    }

    fn example_digest() -> Frame {
        let a = NodeId(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
        let b = NodeId(Uuid::from_u128(0xffee_ddcc_bbaa_9988_7766_5544_3322_1100));
        let clock: VectorClock = [(a, 3), (b, 300)].into_iter().collect();
        Frame::Request {
            xid: 7,
            message: Message::Digest {
                from: a,
                entries: clock.iter().collect(),
            },
        }
    }

    /// A opens exchange 8 with one fingerprint of the clock {A: 3, B: 300}.
    fn example_reconcile() -> Frame {
        let a = NodeId(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
        let b = NodeId(Uuid::from_u128(0xffee_ddcc_bbaa_9988_7766_5544_3322_1100));
        let clock: VectorClock = [(a, 3), (b, 300)].into_iter().collect();
        Frame::Request {
            xid: 8,
            message: Message::Reconcile {
                from: a,
                ranges: crate::protocol::reconcile::initiate(&clock),
            },
        }
    }

    /// B, holding the same clock, answers: agreed.
    fn example_reconciled() -> Frame {
        let b = NodeId(Uuid::from_u128(0xffee_ddcc_bbaa_9988_7766_5544_3322_1100));
        Frame::Response {
            xid: 8,
            message: Message::Reconcile {
                from: b,
                ranges: Vec::new(),
            },
        }
    }

    /// B, holding {A: 3, B: 301}, answers with its entries (a range this small is listed).
    fn example_entries() -> Frame {
        let a = NodeId(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
        let b = NodeId(Uuid::from_u128(0xffee_ddcc_bbaa_9988_7766_5544_3322_1100));
        Frame::Response {
            xid: 8,
            message: Message::Reconcile {
                from: b,
                ranges: vec![crate::protocol::reconcile::Range {
                    upper: None,
                    body: crate::protocol::reconcile::Body::Entries(vec![(a, 3), (b, 301)]),
                }],
            },
        }
    }

    fn example_push() -> Frame {
        let a = NodeId(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
        let event = |seq: u64, payload: &'static [u8]| Event {
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + seq as u128),
            origin: a,
            seq,
            hlc: crate::protocol::Hlc::pack(1_700_000_000_000, (seq - 3) as u16).0,
            created_at_ms: 1_700_000_000_000,
            payload: Bytes::from_static(payload),
            sig: bytes::Bytes::new(),
        };
        Frame::Push {
            message: Message::Push {
                from: a,
                events: vec![event(4, b"hi"), event(5, b"yo")],
            },
        }
    }

    fn example_ihave() -> Frame {
        let a = NodeId(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
        Frame::Push {
            message: Message::IHave {
                from: a,
                ranges: vec![crate::protocol::SeqRange {
                    origin: a,
                    first: 4,
                    last: 5,
                }],
            },
        }
    }

    fn example_prune() -> Frame {
        let a = NodeId(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
        Frame::Push {
            message: Message::Prune { from: a },
        }
    }

    fn example_blob_get() -> Frame {
        let a = NodeId(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
        Frame::Request {
            xid: 9,
            message: Message::BlobGet {
                from: a,
                blob: crate::protocol::blob::BlobId([0xab; 32]),
                part: crate::protocol::blob::BlobPart::Chunk { index: 2 },
            },
        }
    }

    fn example_blob_data() -> Frame {
        let b = NodeId(Uuid::from_u128(0xffee_ddcc_bbaa_9988_7766_5544_3322_1100));
        Frame::Response {
            xid: 9,
            message: Message::BlobData {
                from: b,
                blob: crate::protocol::blob::BlobId([0xab; 32]),
                answer: crate::protocol::blob::BlobAnswer::Chunk {
                    index: 2,
                    data: Bytes::from_static(b"hi"),
                },
            },
        }
    }

    fn example_ephemeral() -> Frame {
        let a = NodeId(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
        Frame::Push {
            message: Message::Ephemeral {
                from: a,
                ephemeral: crate::protocol::Ephemeral {
                    origin: a,
                    id: Uuid::from_u128(0x0102_0304_0506_4708_890a_0b0c_0d0e_0f10),
                    created_at_ms: 1_700_000_000_000,
                    hops: 1,
                    payload: Bytes::from_static(b"hi"),
                    sig: bytes::Bytes::new(),
                },
            },
        }
    }

    const BLOB_GET_HEX: &str = "\
00 00 00 36 01 09 0b 10 00 11 22 33 44 55 66 77
88 99 aa bb cc dd ee ff ab ab ab ab ab ab ab ab
ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab
ab ab ab ab ab ab ab ab 01 02";

    const BLOB_DATA_HEX: &str = "\
00 00 00 39 02 09 0c 10 ff ee dd cc bb aa 99 88
77 66 55 44 33 22 11 00 ab ab ab ab ab ab ab ab
ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab
ab ab ab ab ab ab ab ab 01 02 02 68 69";

    const EPHEMERAL_HEX: &str = "\
00 00 00 43 03 0d 10 00 11 22 33 44 55 66 77 88
99 aa bb cc dd ee ff 10 00 11 22 33 44 55 66 77
88 99 aa bb cc dd ee ff 10 01 02 03 04 05 06 47
08 89 0a 0b 0c 0d 0e 0f 10 fd 00 68 e5 cf 8b 01
00 00 01 02 68 69 00";

    const IHAVE_HEX: &str = "\
00 00 00 27 03 03 10 00 11 22 33 44 55 66 77 88
99 aa bb cc dd ee ff 01 10 00 11 22 33 44 55 66
77 88 99 aa bb cc dd ee ff 04 05";

    const PRUNE_HEX: &str = "\
00 00 00 13 03 05 10 00 11 22 33 44 55 66 77 88
99 aa bb cc dd ee ff";

    const HELLO_HEX: &str = "\
00 00 00 21 00 04 10 00 11 22 33 44 55 66 77 88
99 aa bb cc dd ee ff 05 6c 6f 62 62 79 fb a0 0f
03 61 6e 6e 00";

    const DIGEST_HEX: &str = "\
00 00 00 3b 01 07 00 10 00 11 22 33 44 55 66 77
88 99 aa bb cc dd ee ff 02 10 00 11 22 33 44 55
66 77 88 99 aa bb cc dd ee ff 03 10 ff ee dd cc
bb aa 99 88 77 66 55 44 33 22 11 00 fb 2c 01";

    const RECONCILE_HEX: &str = "\
00 00 00 21 01 08 0e 10 00 11 22 33 44 55 66 77
88 99 aa bb cc dd ee ff 01 00 01 02 fd ae 05 95
16 b6 66 a3 97";

    const RECONCILED_HEX: &str = "\
00 00 00 15 02 08 0e 10 ff ee dd cc bb aa 99 88
77 66 55 44 33 22 11 00 00";

    const ENTRIES_HEX: &str = "\
00 00 00 3e 02 08 0e 10 ff ee dd cc bb aa 99 88
77 66 55 44 33 22 11 00 01 00 02 02 10 00 11 22
33 44 55 66 77 88 99 aa bb cc dd ee ff 03 10 ff
ee dd cc bb aa 99 88 77 66 55 44 33 22 11 00 fb
2d 01";

    const PUSH_HEX: &str = "\
00 00 00 65 03 02 10 00 11 22 33 44 55 66 77 88
99 aa bb cc dd ee ff 01 10 00 11 22 33 44 55 66
77 88 99 aa bb cc dd ee ff 04 02 10 01 90 00 00
00 00 70 00 80 00 00 00 00 00 00 04 fd 01 00 00
68 e5 cf 8b 01 fd 00 68 e5 cf 8b 01 00 00 02 68
69 00 10 01 90 00 00 00 00 70 00 80 00 00 00 00
00 00 05 02 00 02 79 6f 00";

    #[test]
    fn worked_examples_match_the_encoder_and_the_protocol_doc() {
        for (frame, expected) in [
            (example_hello(), HELLO_HEX),
            (example_digest(), DIGEST_HEX),
            (example_push(), PUSH_HEX),
            (example_ihave(), IHAVE_HEX),
            (example_prune(), PRUNE_HEX),
            (example_blob_get(), BLOB_GET_HEX),
            (example_blob_data(), BLOB_DATA_HEX),
            (example_ephemeral(), EPHEMERAL_HEX),
            (example_reconcile(), RECONCILE_HEX),
            (example_reconciled(), RECONCILED_HEX),
            (example_entries(), ENTRIES_HEX),
        ] {
            let bytes = wire(&frame);
            assert_eq!(hex(&bytes), expected, "{}", frame.kind());
            let mut buf = BytesMut::from(&bytes[..]);
            let body = length_codec(1 << 20).decode(&mut buf).unwrap().unwrap();
            assert_eq!(decode_frame(&body, 1 << 20).unwrap(), frame);
        }
        for (kind, expected) in [
            ("Hello", HELLO_HEX),
            ("Digest", DIGEST_HEX),
            ("Push", PUSH_HEX),
            ("IHave", IHAVE_HEX),
            ("Prune", PRUNE_HEX),
            ("BlobGet", BLOB_GET_HEX),
            ("BlobData", BLOB_DATA_HEX),
            ("Ephemeral", EPHEMERAL_HEX),
            ("Reconcile", RECONCILE_HEX),
            ("Reconcile (agreed)", RECONCILED_HEX),
            ("Reconcile (entries)", ENTRIES_HEX),
        ] {
            assert!(
                PROTOCOL_MD.contains(expected),
                "docs/PROTOCOL.md lacks the {kind} example:\n{expected}"
            );
        }
    }

    fn liveness_examples() -> Vec<(&'static str, Frame)> {
        let a = NodeId(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
        let b = NodeId(Uuid::from_u128(0xffee_ddcc_bbaa_9988_7766_5544_3322_1100));
        let record = crate::protocol::peer_record::PeerRecord {
            node_id: a,
            epoch: 1_700_000_000_000,
            addrs: vec!["10.0.0.1:4000".into()],
            public_key: Bytes::from(vec![0x11; 32]),
            sig: Bytes::from(vec![0x22; 64]),
        };
        vec![
            (
                "Ping",
                Frame::Request {
                    xid: 8,
                    message: Message::Ping { from: a },
                },
            ),
            (
                "Pong",
                Frame::Response {
                    xid: 8,
                    message: Message::Pong { from: b },
                },
            ),
            (
                "PingReq",
                Frame::Request {
                    xid: 9,
                    message: Message::PingReq { from: a, target: b },
                },
            ),
            (
                "PingAck",
                Frame::Response {
                    xid: 9,
                    message: Message::PingAck {
                        from: b,
                        target: a,
                        alive: true,
                    },
                },
            ),
            (
                "Peers",
                Frame::Push {
                    message: Message::Peers {
                        from: b,
                        records: vec![record],
                    },
                },
            ),
        ]
    }

    const LIVENESS_HEX: [&str; 5] = [PING_HEX, PONG_HEX, PING_REQ_HEX, PING_ACK_HEX, PEERS_HEX];

    const PING_HEX: &str = "\
00 00 00 14 01 08 06 10 00 11 22 33 44 55 66 77
88 99 aa bb cc dd ee ff";
    const PONG_HEX: &str = "\
00 00 00 14 02 08 07 10 ff ee dd cc bb aa 99 88
77 66 55 44 33 22 11 00";
    const PING_REQ_HEX: &str = "\
00 00 00 25 01 09 08 10 00 11 22 33 44 55 66 77
88 99 aa bb cc dd ee ff 10 ff ee dd cc bb aa 99
88 77 66 55 44 33 22 11 00";
    const PING_ACK_HEX: &str = "\
00 00 00 26 02 09 09 10 ff ee dd cc bb aa 99 88
77 66 55 44 33 22 11 00 10 00 11 22 33 44 55 66
77 88 99 aa bb cc dd ee ff 01";
    const PEERS_HEX: &str = "\
00 00 00 9f 03 0a 10 ff ee dd cc bb aa 99 88 77
66 55 44 33 22 11 00 01 10 00 11 22 33 44 55 66
77 88 99 aa bb cc dd ee ff fd 00 68 e5 cf 8b 01
00 00 01 0d 31 30 2e 30 2e 30 2e 31 3a 34 30 30
30 20 11 11 11 11 11 11 11 11 11 11 11 11 11 11
11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11
11 11 40 22 22 22 22 22 22 22 22 22 22 22 22 22
22 22 22 22 22 22 22 22 22 22 22 22 22 22 22 22
22 22 22 22 22 22 22 22 22 22 22 22 22 22 22 22
22 22 22 22 22 22 22 22 22 22 22 22 22 22 22 22
22 22 22";

    #[test]
    fn liveness_and_peer_exchange_examples_match_the_encoder_and_the_doc() {
        for ((kind, frame), expected) in liveness_examples().into_iter().zip(LIVENESS_HEX) {
            let bytes = wire(&frame);
            assert_eq!(hex(&bytes), expected, "{kind}");
            let mut buf = BytesMut::from(&bytes[..]);
            let body = length_codec(1 << 20).decode(&mut buf).unwrap().unwrap();
            assert_eq!(decode_frame(&body, 1 << 20).unwrap(), frame);
            assert!(
                PROTOCOL_MD.contains(expected),
                "docs/PROTOCOL.md lacks the {kind} example:\n{expected}"
            );
        }
    }

    #[test]
    fn body_len_is_exact() {
        for frame in [example_digest(), example_push()] {
            let body = encode_frame(&frame, 1 << 20).unwrap();
            let expected = match &frame {
                Frame::Request { xid, message } => Frame::body_len(message, Some(*xid)),
                Frame::Push { message } => Frame::body_len(message, None),
                _ => unreachable!(),
            };
            assert_eq!(body.len(), expected);
        }
        let big = Frame::Response {
            xid: u64::MAX,
            message: Message::Digest {
                from: NodeId::from_u128(1),
                entries: Vec::new(),
            },
        };
        let body = encode_frame(&big, 1 << 20).unwrap();
        let Frame::Response { message, .. } = &big else {
            unreachable!()
        };
        assert_eq!(body.len(), Frame::body_len(message, Some(u64::MAX)));
        assert!(body.len() + LENGTH_PREFIX - message.encoded_len() <= FRAME_OVERHEAD_MAX);
    }

    #[test]
    fn oversized_frames_are_refused_both_ways() {
        let frame = example_push();
        assert!(matches!(
            encode_frame(&frame, 10),
            Err(FrameError::TooLarge { .. })
        ));
        let body = encode_frame(&frame, 1 << 20).unwrap();
        assert!(decode_frame(&body, body.len() - 1).is_err());
        let mut buf = BytesMut::from(&[0u8, 0, 0x10, 1][..]);
        assert!(length_codec(4096).decode(&mut buf).is_err());
    }

    #[test]
    fn an_unknown_tag_is_an_error() {
        assert!(decode_frame(&[5], 100).is_err());
        assert!(decode_frame(&[250], 100).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_frame(&bytes, 1 << 16);
            let mut buf = BytesMut::from(&bytes[..]);
            let mut codec = length_codec(1 << 16);
            while let Ok(Some(body)) = codec.decode(&mut buf) {
                let _ = decode_frame(&body, 1 << 16);
            }
        }

        #[test]
        fn valid_prefix_with_mutated_body_never_panics(
            flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..8),
            cut in 0usize..200,
        ) {
            let mut bytes = encode_frame(&example_push(), 1 << 20).unwrap().to_vec();
            for (i, b) in flips {
                let n = bytes.len();
                bytes[i % n] = b;
            }
            bytes.truncate(cut.max(1));
            let _ = decode_frame(&bytes, 1 << 16);
        }
    }
}
