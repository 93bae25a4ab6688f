//! Blobs: files shared by content address, fetched on demand, never gossiped.
//!
//! A blob is cut in [`CHUNK_SIZE`] chunks; each chunk is named by its BLAKE3 hash, and the
//! blob by the hash of its [`Manifest`] (its size and the list of chunk hashes). A node that
//! holds a blob answers [`BlobPart`] requests ([`crate::protocol::Message::BlobGet`]) with
//! [`BlobAnswer`]s ([`crate::protocol::Message::BlobData`]); the fetching node checks every
//! page of hashes against the blob id and every chunk against its hash, so a peer can
//! waste our time but never change what we save. [`fetch`] plans which chunk to ask of
//! which peer. Pure: no files, no sockets (see `crate::blobs` for those).

use std::fmt;

use serde::{Deserialize, Serialize};

pub mod fetch;

pub use fetch::{ChunkVerdict, FetchPlan};

/// Bytes per chunk (the last one may be shorter).
pub const CHUNK_SIZE: usize = 256 * 1024;
/// Chunk hashes per [`BlobAnswer::Hashes`] page: 256 KiB of hashes, well inside a frame.
pub const HASHES_PER_PAGE: u32 = 8192;
/// The largest blob the protocol can name: 64 GiB. A node's own limit (`--max-file`) is
/// usually far lower.
pub const MAX_BLOB_SIZE: u64 = 64 << 30;
/// The domain separator of blob ids, so a blob id is never some other BLAKE3 hash.
const ID_CONTEXT: &[u8] = b"gossip-blob/manifest/1";

/// A BLAKE3 hash: of a chunk, or (for a [`BlobId`]) of a manifest.
pub type ChunkHash = [u8; 32];

/// A blob's content address: the BLAKE3 hash of its [`Manifest`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<BlobId> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).ok()?;
            out[i] = u8::from_str_radix(text, 16).ok()?;
        }
        Some(BlobId(out))
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", &self.to_hex()[..12])
    }
}

/// What a [`crate::protocol::Message::BlobGet`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobPart {
    /// Tag 0: the blob's size and up to [`HASHES_PER_PAGE`] chunk hashes from `first` on.
    Hashes {
        /// The first chunk index wanted.
        first: u32,
    },
    /// Tag 1: the bytes of one chunk.
    Chunk {
        /// Its index.
        index: u32,
    },
}

/// The answer in a [`crate::protocol::Message::BlobData`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobAnswer {
    /// Tag 0: a page of the manifest.
    Hashes {
        /// The blob's size in bytes.
        size: u64,
        /// The index of the first hash here.
        first: u32,
        /// Chunk hashes `first..first + len`.
        hashes: Vec<ChunkHash>,
    },
    /// Tag 1: one chunk.
    Chunk {
        /// Its index.
        index: u32,
        /// Its bytes.
        data: bytes::Bytes,
    },
    /// Tag 2: the sender does not hold this blob (or this part of it).
    Missing,
    /// Tag 3: the sender holds it but serves too many requests now: ask later or elsewhere.
    Busy,
}

/// Chunks in a blob of `size` bytes (an empty blob has none).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK_SIZE as u64)
}

/// The length of chunk `index` of a blob of `size` bytes (0 past the end).
pub fn chunk_len(size: u64, index: u32) -> usize {
    let start = u64::from(index) * CHUNK_SIZE as u64;
    size.saturating_sub(start).min(CHUNK_SIZE as u64) as usize
}

/// The BLAKE3 hash of one chunk.
pub fn hash_chunk(data: &[u8]) -> ChunkHash {
    *blake3::hash(data).as_bytes()
}

/// A blob's size and chunk hashes: what its id is the hash of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Bytes in the blob.
    pub size: u64,
    /// One hash per chunk, in order.
    pub hashes: Vec<ChunkHash>,
}

/// Why a manifest is not the blob's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Over [`MAX_BLOB_SIZE`] or the limit in force.
    #[error("a {size}-byte blob is over the limit of {limit} bytes")]
    TooLarge {
        /// The claimed size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The number of hashes does not match the size.
    #[error("{got} chunk hashes for a blob of {want} chunks")]
    WrongCount {
        /// Hashes given.
        got: u64,
        /// Hashes the size needs.
        want: u64,
    },
    /// The hashes do not hash to the blob id.
    #[error("the chunk hashes are not those of blob {0}")]
    WrongId(BlobId),
}

impl Manifest {
    /// The manifest of `data`, hashed chunk by chunk.
    pub fn of(data: &[u8]) -> Manifest {
        Manifest {
            size: data.len() as u64,
            hashes: data.chunks(CHUNK_SIZE).map(hash_chunk).collect(),
        }
    }

    /// The blob id: BLAKE3 of a context string, the size (u64 LE) and the hashes.
    pub fn id(&self) -> BlobId {
        let mut h = blake3::Hasher::new();
        h.update(ID_CONTEXT);
        h.update(&self.size.to_le_bytes());
        for c in &self.hashes {
            h.update(c);
        }
        BlobId(*h.finalize().as_bytes())
    }

    /// Chunks in the blob.
    pub fn chunks(&self) -> u32 {
        self.hashes.len() as u32
    }

    /// Checks the manifest is `id`'s and within `limit` bytes.
    pub fn check(&self, id: BlobId, limit: u64) -> Result<(), ManifestError> {
        let limit = limit.min(MAX_BLOB_SIZE);
        if self.size > limit {
            return Err(ManifestError::TooLarge {
                size: self.size,
                limit,
            });
        }
        let want = chunk_count(self.size);
        if self.hashes.len() as u64 != want {
            return Err(ManifestError::WrongCount {
                got: self.hashes.len() as u64,
                want,
            });
        }
        if self.id() != id {
            return Err(ManifestError::WrongId(id));
        }
        Ok(())
    }

    /// Page `first..` of the hashes, as a sender answers [`BlobPart::Hashes`]; `None` if
    /// `first` is past the end (an empty blob answers its one page, `first` 0).
    pub fn page(&self, first: u32) -> Option<BlobAnswer> {
        let start = first as usize;
        if start > self.hashes.len() || (start == self.hashes.len() && start != 0) {
            return None;
        }
        let end = (start + HASHES_PER_PAGE as usize).min(self.hashes.len());
        Some(BlobAnswer::Hashes {
            size: self.size,
            first,
            hashes: self.hashes[start..end].to_vec(),
        })
    }
}

/// Assembles a manifest from pages, checking each page follows the last.
#[derive(Debug, Clone, Default)]
pub struct ManifestBuilder {
    size: Option<u64>,
    hashes: Vec<ChunkHash>,
}

impl ManifestBuilder {
    /// The next chunk index wanted, or `None` when every hash is in.
    pub fn next_first(&self) -> Option<u32> {
        match self.size {
            None => Some(0),
            Some(size) if (self.hashes.len() as u64) < chunk_count(size) => {
                Some(self.hashes.len() as u32)
            }
            Some(_) => None,
        }
    }

    /// Adds a page; refuses one that does not continue the manifest, changes the size, or
    /// goes past `limit` bytes (so a peer cannot make us buffer hashes without end).
    pub fn add(
        &mut self,
        size: u64,
        first: u32,
        hashes: Vec<ChunkHash>,
        limit: u64,
    ) -> Result<(), ManifestError> {
        let limit = limit.min(MAX_BLOB_SIZE);
        if size > limit {
            return Err(ManifestError::TooLarge { size, limit });
        }
        let want = chunk_count(size);
        let bad = |got| ManifestError::WrongCount { got, want };
        if self.size.is_some_and(|s| s != size) || first as usize != self.hashes.len() {
            return Err(bad(u64::from(first)));
        }
        let total = self.hashes.len() as u64 + hashes.len() as u64;
        if total > want || (hashes.is_empty() && total < want) {
            return Err(bad(total));
        }
        self.size = Some(size);
        self.hashes.extend(hashes);
        Ok(())
    }

    /// The manifest, once every page is in.
    pub fn finish(self) -> Option<Manifest> {
        let size = self.size?;
        (self.hashes.len() as u64 == chunk_count(size)).then_some(Manifest {
            size,
            hashes: self.hashes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_content_addresses() {
        let data: Vec<u8> = (0..(CHUNK_SIZE * 2 + 5)).map(|i| (i % 251) as u8).collect();
        let m = Manifest::of(&data);
        assert_eq!(m.chunks(), 3);
        assert_eq!(chunk_len(m.size, 2), 5);
        assert_eq!(chunk_len(m.size, 3), 0);
        assert_eq!(m.check(m.id(), u64::MAX), Ok(()));
        let mut other = data.clone();
        other[7] ^= 1;
        assert_ne!(Manifest::of(&other).id(), m.id());
        assert_eq!(BlobId::from_hex(&m.id().to_hex()), Some(m.id()));
        assert_eq!(BlobId::from_hex("zz"), None);
        assert_eq!(BlobId::from_hex(&"g".repeat(64)), None);
        assert!(matches!(
            m.check(m.id(), 10),
            Err(ManifestError::TooLarge { .. })
        ));
        let mut short = m.clone();
        short.hashes.pop();
        assert!(matches!(
            short.check(m.id(), u64::MAX),
            Err(ManifestError::WrongCount { .. })
        ));
        let mut swapped = m.clone();
        swapped.hashes.swap(0, 1);
        assert_eq!(
            swapped.check(m.id(), u64::MAX),
            Err(ManifestError::WrongId(m.id()))
        );
    }

    #[test]
    fn pages_rebuild_the_manifest_and_bad_pages_are_refused() {
        let m = Manifest {
            size: (u64::from(HASHES_PER_PAGE) * 2 + 3) * CHUNK_SIZE as u64,
            hashes: (0..HASHES_PER_PAGE * 2 + 3)
                .map(|i| {
                    let mut h = [0u8; 32];
                    h[..4].copy_from_slice(&i.to_le_bytes());
                    h
                })
                .collect(),
        };
        let mut b = ManifestBuilder::default();
        while let Some(first) = b.next_first() {
            let Some(BlobAnswer::Hashes {
                size,
                first,
                hashes,
            }) = m.page(first)
            else {
                panic!("no page at {first}");
            };
            b.add(size, first, hashes, u64::MAX).unwrap();
        }
        assert_eq!(b.finish().unwrap(), m);
        assert_eq!(m.page(m.chunks() + 1), None);

        let mut b = ManifestBuilder::default();
        assert!(
            b.add(m.size, 5, vec![[0; 32]], u64::MAX).is_err(),
            "not first"
        );
        assert!(b.add(m.size, 0, vec![], u64::MAX).is_err(), "empty page");
        assert!(
            b.add(m.size, 0, vec![[0; 32]], 10).is_err(),
            "over the limit"
        );
        b.add(m.size, 0, vec![[0; 32]], u64::MAX).unwrap();
        assert!(
            b.add(m.size + 1, 1, vec![[0; 32]], u64::MAX).is_err(),
            "size changed"
        );
        let empty = Manifest::of(&[]);
        let mut b = ManifestBuilder::default();
        let Some(BlobAnswer::Hashes {
            size,
            first,
            hashes,
        }) = empty.page(0)
        else {
            panic!("an empty blob has one page");
        };
        b.add(size, first, hashes, u64::MAX).unwrap();
        assert_eq!(b.finish().unwrap(), empty);
    }
}
