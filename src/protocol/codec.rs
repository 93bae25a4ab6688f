//! The one binary encoding of the protocol: bincode 2 (serde, standard config).
//!
//! Sizes used for batch cuts come from here, so they are the real encoded sizes.

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use bincode::enc::write::SizeWriter;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The hard ceiling on what one decode may read, whatever the configured message size.
pub const DECODE_HARD_LIMIT: usize = 64 * 1024 * 1024;

type Standard = Configuration<LittleEndian, Varint, Limit<DECODE_HARD_LIMIT>>;

fn standard() -> Standard {
    config::standard().with_limit::<DECODE_HARD_LIMIT>()
}

/// Why bytes could not be turned into a value, or a value into bytes.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The input is longer than the decoder accepts.
    #[error("{len} bytes is over the decode limit of {limit} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The bytes are not a valid encoding.
    #[error("malformed input: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// Bytes were left over after the value.
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
    /// The value could not be encoded.
    #[error("encode failed: {0}")]
    Encode(#[from] bincode::error::EncodeError),
}

/// Encodes `value` to a new buffer.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, standard())?)
}

/// Appends the encoding of `value` to `out`.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    // Writing straight into `out` saves an allocation and a copy per value.
    bincode::serde::encode_into_std_write(value, out, standard())?;
    Ok(())
}

/// The exact number of bytes `value` encodes to, without allocating the encoding.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut w = SizeWriter::default();
    match bincode::serde::encode_into_writer(value, &mut w, standard()) {
        Ok(()) => w.bytes_written,
        // Only a value over the hard limit fails to encode; report it as too large.
        Err(_) => usize::MAX,
    }
}

/// Decodes one value that must span all of `bytes`, which must be at most `limit` long.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    let limit = limit.min(DECODE_HARD_LIMIT);
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let (value, read) = bincode::serde::decode_from_slice(bytes, standard())?;
    if read != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - read));
    }
    Ok(value)
}

/// Decodes one value from the start of `bytes` and returns it with the number of bytes it
/// took, leaving the rest to the caller (for reading the fixed head of a record without
/// copying what follows).
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    Ok(bincode::serde::decode_from_slice(bytes, standard())?)
}

/// The number of bytes the varint encoding of `n` takes (bincode standard config).
pub fn varint_len(n: u64) -> usize {
    match n {
        0..=250 => 1,
        251..=0xFFFF => 3,
        0x1_0000..=0xFFFF_FFFF => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_matches_encode() {
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(encoded_len(&v), encode(&v).unwrap().len());
    }

    #[test]
    fn encode_into_appends_what_encode_returns() {
        let v: Vec<u64> = (0..300).collect();
        let mut out = vec![1, 2, 3];
        encode_into(&v, &mut out).unwrap();
        assert_eq!(&out[..3], &[1, 2, 3]);
        assert_eq!(&out[3..], &encode(&v).unwrap()[..]);
    }

    #[test]
    fn varint_len_matches_bincode() {
        for n in [0u64, 250, 251, 65535, 65536, 1 << 32, u64::MAX] {
            assert_eq!(varint_len(n), encode(&n).unwrap().len(), "{n}");
        }
    }

    #[test]
    fn decode_rejects_trailing_and_oversized_input() {
        let mut bytes = encode(&5u32).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<u32>(&bytes, 100),
            Err(CodecError::Trailing(1))
        ));
        assert!(matches!(
            decode::<u32>(&bytes, 1),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // A Vec claiming u64::MAX elements followed by nothing.
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<Vec<u64>>(&bytes, 100).is_err());
        assert!(decode::<bytes::Bytes>(&bytes, 100).is_err());
    }
}
