//! The blob store: `<store>/blobs/<id>` holds a blob's bytes (chunk `i` at `i * stride`),
//! `<id>.hashes` its manifest (size u64 LE, then the chunk hashes), `<id>.part` a blob
//! being fetched. In a private room every chunk and the manifest are sealed
//! ([`super::seal`]), so the stride is a chunk plus its tag. Blocking calls: async callers
//! run them on a blocking thread.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::name::unique_path;
use super::seal::{BlobKey, TAG_LEN};
use crate::protocol::blob::{
    BlobId, CHUNK_SIZE, ChunkHash, MAX_BLOB_SIZE, Manifest, ManifestError, chunk_len, hash_chunk,
};

/// The part index the manifest is sealed under (no chunk has it).
const MANIFEST_PART: u32 = u32::MAX;

/// The default largest file sent or saved: 2 GiB (`--max-file`).
pub const DEFAULT_MAX_FILE: u64 = 2 << 30;
/// The default most bytes the blob store may take: 10 GiB.
pub const DEFAULT_QUOTA: u64 = 10 << 30;

/// How big blobs and the store may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLimits {
    /// The largest blob sent or saved.
    pub max_file: u64,
    /// The most bytes the store's files may take together.
    pub quota: u64,
}

impl Default for BlobLimits {
    fn default() -> Self {
        BlobLimits {
            max_file: DEFAULT_MAX_FILE,
            quota: DEFAULT_QUOTA,
        }
    }
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A file system error.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Over `--max-file`.
    #[error("the file is {size} bytes, over the limit of {limit} (--max-file)")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The store would go over its quota.
    #[error("the blob store would hold {would} bytes, over its quota of {quota}")]
    Quota {
        /// What it would hold.
        would: u64,
        /// The quota.
        quota: u64,
    },
    /// The file changed while it was being added.
    #[error("the file changed while it was being read")]
    Changed,
    /// A manifest did not check.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The blob is not held (entirely).
    #[error("blob {0} is not in the store")]
    NotHeld(BlobId),
    /// A sealed part did not open or a chunk failed its hash on disk.
    #[error("blob {0} is damaged on disk")]
    Damaged(BlobId),
}

/// A directory of blobs.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    key: Option<BlobKey>,
    limits: BlobLimits,
    manifests: Mutex<HashMap<BlobId, Arc<Manifest>>>,
    /// Serialises the writes of one store (partials are written chunk by chunk).
    write: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl BlobStore {
    /// Opens (creating) the store in `dir`, sealing with `key` if given.
    pub fn open(
        dir: impl Into<PathBuf>,
        key: Option<BlobKey>,
        limits: BlobLimits,
    ) -> io::Result<BlobStore> {
        let dir = dir.into();
        // Private like the rest of the store: a shared machine's other users cannot list
        // or read what was shared in the room.
        crate::store::file::modes::create_private_dir(&dir)?;
        Ok(BlobStore {
            dir,
            key,
            limits,
            manifests: Mutex::new(HashMap::new()),
            write: Mutex::new(()),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> BlobLimits {
        self.limits
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: BlobId, ext: &str) -> PathBuf {
        self.dir.join(format!("{}{ext}", id.to_hex()))
    }

    fn stride(&self) -> u64 {
        (CHUNK_SIZE + if self.key.is_some() { TAG_LEN } else { 0 }) as u64
    }

    /// Bytes the store's files take.
    pub fn used_bytes(&self) -> u64 {
        fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    fn check_room(&self, size: u64) -> Result<(), BlobError> {
        let limit = self.limits.max_file.min(MAX_BLOB_SIZE);
        if size > limit {
            return Err(BlobError::TooLarge { size, limit });
        }
        let would = self.used_bytes().saturating_add(size);
        if would > self.limits.quota {
            return Err(BlobError::Quota {
                would,
                quota: self.limits.quota,
            });
        }
        Ok(())
    }

    fn seal(&self, id: BlobId, index: u32, plain: &[u8]) -> Result<Vec<u8>, BlobError> {
        match &self.key {
            Some(k) => k.seal(id, index, plain).ok_or(BlobError::Damaged(id)),
            None => Ok(plain.to_vec()),
        }
    }

    fn unseal(&self, id: BlobId, index: u32, stored: Vec<u8>) -> Option<Vec<u8>> {
        match &self.key {
            Some(k) => k.open(id, index, &stored),
            None => Some(stored),
        }
    }

    /// Adds the file at `path`: hashes it, copies it in, and returns its manifest (whose
    /// id names it). Adding a blob already held only checks it.
    pub fn add_file(&self, path: &Path) -> Result<Manifest, BlobError> {
        let size = fs::metadata(path)?.len();
        self.check_room(size)?;
        let mut file = File::open(path)?;
        let mut buf = vec![0u8; CHUNK_SIZE];
        let mut hashes: Vec<ChunkHash> = Vec::new();
        let mut total = 0u64;
        loop {
            let n = read_full(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            hashes.push(hash_chunk(&buf[..n]));
        }
        if total != size {
            return Err(BlobError::Changed);
        }
        let manifest = Manifest { size, hashes };
        let id = manifest.id();
        if self.manifest(id).is_some() && self.path(id, "").exists() {
            return Ok(manifest);
        }
        // Second pass: the copy, chunk by chunk, each checked against the first pass.
        file.seek(SeekFrom::Start(0))?;
        let _w = lock(&self.write);
        let tmp = self.path(id, ".adding");
        let mut out = File::create(&tmp)?;
        for (i, want) in manifest.hashes.iter().enumerate() {
            let n = read_full(&mut file, &mut buf)?;
            if &hash_chunk(&buf[..n]) != want {
                drop(out);
                let _ = fs::remove_file(&tmp);
                return Err(BlobError::Changed);
            }
            out.write_all(&self.seal(id, i as u32, &buf[..n])?)?;
        }
        out.sync_all()?;
        self.write_manifest(&manifest)?;
        fs::rename(&tmp, self.path(id, ""))?;
        Ok(manifest)
    }

    fn write_manifest(&self, m: &Manifest) -> Result<(), BlobError> {
        let id = m.id();
        let path = self.path(id, ".hashes");
        if !path.exists() {
            let mut plain = m.size.to_le_bytes().to_vec();
            for h in &m.hashes {
                plain.extend_from_slice(h);
            }
            let tmp = self.path(id, ".hashes.tmp");
            fs::write(&tmp, self.seal(id, MANIFEST_PART, &plain)?)?;
            fs::rename(&tmp, &path)?;
        }
        lock(&self.manifests).insert(id, Arc::new(m.clone()));
        Ok(())
    }

    /// The manifest of `id`, if the store has it (held or being fetched).
    pub fn manifest(&self, id: BlobId) -> Option<Arc<Manifest>> {
        if let Some(m) = lock(&self.manifests).get(&id) {
            return Some(m.clone());
        }
        let stored = fs::read(self.path(id, ".hashes")).ok()?;
        let plain = self.unseal(id, MANIFEST_PART, stored)?;
        let (size, rest) = plain.split_at_checked(8)?;
        let size = u64::from_le_bytes(size.try_into().ok()?);
        let hashes = rest
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap_or([0; 32]))
            .collect();
        let m = Manifest { size, hashes };
        m.check(id, MAX_BLOB_SIZE).ok()?;
        let m = Arc::new(m);
        lock(&self.manifests).insert(id, m.clone());
        Some(m)
    }

    /// Whether the whole blob is held.
    pub fn has(&self, id: BlobId) -> bool {
        self.path(id, "").exists() && self.manifest(id).is_some()
    }

    fn read_at(&self, path: &Path, id: BlobId, index: u32, len: usize) -> Option<Vec<u8>> {
        let stored_len = len + if self.key.is_some() { TAG_LEN } else { 0 };
        let mut f = File::open(path).ok()?;
        f.seek(SeekFrom::Start(u64::from(index) * self.stride()))
            .ok()?;
        let mut buf = vec![0u8; stored_len];
        f.read_exact(&mut buf).ok()?;
        self.unseal(id, index, buf)
    }

    /// Chunk `index` of a held blob (not checked against its hash: the asker checks it).
    pub fn read_chunk(&self, id: BlobId, index: u32) -> Option<Vec<u8>> {
        let m = self.manifest(id)?;
        if index >= m.chunks() {
            return None;
        }
        self.read_at(&self.path(id, ""), id, index, chunk_len(m.size, index))
    }

    /// Starts or resumes fetching `manifest`'s blob: keeps the manifest, and returns which
    /// chunks the partial file already holds intact (each is read and checked).
    pub fn begin_fetch(&self, manifest: &Manifest) -> Result<Vec<bool>, BlobError> {
        let id = manifest.id();
        let part = self.path(id, ".part");
        if !part.exists() {
            self.check_room(manifest.size)?;
        }
        self.write_manifest(manifest)?;
        OpenOptions::new().create(true).append(true).open(&part)?;
        Ok((0..manifest.chunks())
            .map(|i| {
                self.read_at(&part, id, i, chunk_len(manifest.size, i))
                    .is_some_and(|c| hash_chunk(&c) == manifest.hashes[i as usize])
            })
            .collect())
    }

    /// Writes chunk `index` (already checked) of a blob being fetched.
    pub fn write_chunk(&self, id: BlobId, index: u32, data: &[u8]) -> Result<(), BlobError> {
        let sealed = self.seal(id, index, data)?;
        let _w = lock(&self.write);
        let mut f = OpenOptions::new()
            .write(true)
            .open(self.path(id, ".part"))?;
        f.seek(SeekFrom::Start(u64::from(index) * self.stride()))?;
        f.write_all(&sealed)?;
        Ok(())
    }

    /// Ends a fetch whose chunks are all written: the partial file becomes the blob.
    pub fn finish_fetch(&self, id: BlobId) -> Result<(), BlobError> {
        let part = self.path(id, ".part");
        File::open(&part)?.sync_all()?;
        fs::rename(part, self.path(id, ""))?;
        Ok(())
    }

    /// Writes a held blob out as `dir/name` (or `name (1).ext`, ...: never over an existing
    /// file), through a temporary file renamed once complete; every chunk is checked again.
    pub fn export(&self, id: BlobId, dir: &Path, name: &str) -> Result<PathBuf, BlobError> {
        let m = self.manifest(id).ok_or(BlobError::NotHeld(id))?;
        if !self.has(id) {
            return Err(BlobError::NotHeld(id));
        }
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{name}.{}.part", &id.to_hex()[..12]));
        let mut out = File::create(&tmp)?;
        for i in 0..m.chunks() {
            let chunk = self
                .read_chunk(id, i)
                .filter(|c| hash_chunk(c) == m.hashes[i as usize]);
            let Some(chunk) = chunk else {
                drop(out);
                let _ = fs::remove_file(&tmp);
                return Err(BlobError::Damaged(id));
            };
            out.write_all(&chunk)?;
        }
        out.sync_all()?;
        drop(out);
        // A hard link fails if the name exists, so a file made meanwhile is never replaced.
        loop {
            let target = unique_path(dir, name);
            match fs::hard_link(&tmp, &target) {
                Ok(()) => {
                    fs::remove_file(&tmp)?;
                    return Ok(target);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(_) if !target.exists() => {
                    // No hard links here (some file systems): a rename, checked just before.
                    fs::rename(&tmp, &target)?;
                    return Ok(target);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 256) as u8).collect()
    }

    fn roundtrip(key: Option<BlobKey>) {
        let tmp = tempfile::tempdir().unwrap();
        let a = BlobStore::open(tmp.path().join("a"), key.clone(), BlobLimits::default()).unwrap();
        let b = BlobStore::open(tmp.path().join("b"), key.clone(), BlobLimits::default()).unwrap();
        let bytes = data(CHUNK_SIZE * 2 + 100);
        let src = tmp.path().join("in.bin");
        fs::write(&src, &bytes).unwrap();
        let m = a.add_file(&src).unwrap();
        let id = m.id();
        assert!(a.has(id));
        if key.is_some() {
            let stored = fs::read(a.path(id, "")).unwrap();
            assert!(
                !stored.windows(64).any(|w| w == &bytes[1000..1064]),
                "sealed"
            );
        }
        // b fetches from a, stops halfway, resumes.
        let have = b.begin_fetch(&m).unwrap();
        assert_eq!(have, vec![false; 3]);
        b.write_chunk(id, 1, &a.read_chunk(id, 1).unwrap()).unwrap();
        let b = BlobStore::open(tmp.path().join("b"), key, BlobLimits::default()).unwrap();
        assert_eq!(b.begin_fetch(&m).unwrap(), vec![false, true, false]);
        for i in [0, 2] {
            b.write_chunk(id, i, &a.read_chunk(id, i).unwrap()).unwrap();
        }
        assert!(!b.has(id));
        b.finish_fetch(id).unwrap();
        let out = tmp.path().join("out");
        let p1 = b.export(id, &out, "in.bin").unwrap();
        let p2 = b.export(id, &out, "in.bin").unwrap();
        assert_eq!(p1, out.join("in.bin"));
        assert_eq!(p2, out.join("in (1).bin"));
        assert_eq!(fs::read(p1).unwrap(), bytes);
        assert_eq!(fs::read(p2).unwrap(), bytes);
        assert_eq!(fs::read_dir(&out).unwrap().count(), 2, "no temporary left");
    }

    #[test]
    fn add_fetch_resume_export_plain_and_sealed() {
        roundtrip(None);
        roundtrip(Some(BlobKey::derive(&[5; 32])));
    }

    #[test]
    fn limits_are_enforced() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("in.bin");
        fs::write(&src, data(1000)).unwrap();
        let limits = BlobLimits {
            max_file: 999,
            quota: 1 << 20,
        };
        let s = BlobStore::open(tmp.path().join("s"), None, limits).unwrap();
        assert!(matches!(s.add_file(&src), Err(BlobError::TooLarge { .. })));
        let limits = BlobLimits {
            max_file: 1 << 20,
            quota: 1500,
        };
        let s = BlobStore::open(tmp.path().join("q"), None, limits).unwrap();
        s.add_file(&src).unwrap();
        fs::write(&src, data(900)).unwrap();
        assert!(matches!(s.add_file(&src), Err(BlobError::Quota { .. })));
    }

    #[test]
    fn a_damaged_chunk_on_disk_is_not_resumed_or_exported() {
        let tmp = tempfile::tempdir().unwrap();
        let s = BlobStore::open(tmp.path().join("s"), None, BlobLimits::default()).unwrap();
        let src = tmp.path().join("in.bin");
        fs::write(&src, data(CHUNK_SIZE + 10)).unwrap();
        let m = s.add_file(&src).unwrap();
        let path = s.path(m.id(), "");
        let mut bytes = fs::read(&path).unwrap();
        bytes[5] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            s.export(m.id(), tmp.path(), "x"),
            Err(BlobError::Damaged(_))
        ));
    }
}
