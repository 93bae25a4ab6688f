//! Files in a session: `/send` adds a file to the blob store and offers it in a signed
//! `file` op; `/save` fetches it from the peers that hold it (see [`crate::blobs`]) and
//! writes it out, reporting progress as [`SessionEvent::Transfer`]s.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Session, SessionError, lock};
use crate::app::AppOp;
use crate::app::runtime::command::SaveRequest;
use crate::app::runtime::view::{SessionEvent, TransferInfo, TransferState};
use crate::blobs::fetch::FetchEvents;
use crate::blobs::{BlobError, BlobStore, FetchOptions, Progress, fetch};
use crate::protocol::{Event, NodeId};

/// A MIME type from a file name's extension (what most receivers need to pick a viewer).
pub fn guess_mime(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "md" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// Where `/save` without a DIR puts files: the user's downloads directory, else the
/// current directory.
pub fn default_save_dir() -> PathBuf {
    directories::UserDirs::new()
        .and_then(|d| d.download_dir().map(Path::to_path_buf))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Reports a fetch's progress and refusals to the screen.
struct Reporter {
    session: Session,
    file_id: String,
    name: String,
}

impl FetchEvents for Reporter {
    fn progress(&mut self, p: Progress) {
        self.session.emit(SessionEvent::Transfer(TransferInfo {
            file_id: self.file_id.clone(),
            name: self.name.clone(),
            done: p.done,
            total: p.total,
            bytes_per_sec: p.bytes_per_sec,
            eta_secs: p.eta_secs(),
            state: TransferState::Running,
        }));
    }

    fn refused(&mut self, peer: NodeId, why: String) {
        self.session.warn(format!(
            "{} sent a bad part of {}: {why}; refused, fetching it elsewhere",
            self.session.peer_label(peer),
            crate::text::escape(&self.name)
        ));
    }
}

impl Session {
    /// The blob store.
    pub fn blobs(&self) -> &Arc<BlobStore> {
        &self.inner.blobs
    }

    fn peer_label(&self, peer: NodeId) -> String {
        self.inner
            .node
            .peer(peer)
            .and_then(|p| p.name)
            .map(|n| crate::text::escape(&n).into_owned())
            .unwrap_or_else(|| peer.to_string())
    }

    /// Adds the file at `path` to the blob store and offers it to the room: a signed `file`
    /// event (name, size, MIME type, content address). The bytes stay here until a peer
    /// asks.
    pub async fn send_file(&self, path: &Path) -> Result<Event, SessionError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| SessionError::Op(format!("{} is not a file", path.display())))?;
        if !path.is_file() {
            return Err(SessionError::Op(format!(
                "{} is not a file",
                path.display()
            )));
        }
        let store = self.inner.blobs.clone();
        let owned = path.to_path_buf();
        let manifest = tokio::task::spawn_blocking(move || store.add_file(&owned))
            .await
            .map_err(|e| SessionError::Op(e.to_string()))?
            .map_err(|e| SessionError::Op(format!("{}: {e}", path.display())))?;
        let op = AppOp::file(manifest.id(), &name, manifest.size, guess_mime(&name))
            .map_err(|e| SessionError::Op(format!("cannot offer {name:?}: {e}")))?;
        self.submit(&op).await
    }

    /// Fetches and saves a file in the background; progress, then the saved path or the
    /// reason it stopped, arrive as [`SessionEvent::Transfer`]s. A second `/save` of a
    /// file being fetched is refused; one after a failure resumes.
    pub fn save_file(&self, request: SaveRequest) {
        let id = request.file_id;
        if !lock(&self.inner.saving).insert(id) {
            self.notice(format!("{} is being saved already", request.name));
            return;
        }
        let this = self.clone();
        self.spawn(async move {
            let state = match this.fetch_and_export(&request).await {
                Ok(path) => TransferState::Saved(path),
                Err(e) => TransferState::Failed(e),
            };
            lock(&this.inner.saving).remove(&id);
            let held = this.inner.blobs.has(id);
            this.emit(SessionEvent::Transfer(TransferInfo {
                file_id: id.to_hex(),
                name: request.name.clone(),
                done: if held { request.size } else { 0 },
                total: request.size,
                bytes_per_sec: 0.0,
                eta_secs: None,
                state,
            }));
        });
    }

    async fn fetch_and_export(&self, request: &SaveRequest) -> Result<PathBuf, String> {
        let id = request.file_id;
        let mut reporter = Reporter {
            session: self.clone(),
            file_id: id.to_hex(),
            name: request.name.clone(),
        };
        let from = (request.from != self.node_id()).then_some(request.from);
        fetch(
            &self.inner.node,
            self.inner.blobs.clone(),
            id,
            from,
            FetchOptions::default(),
            &mut reporter,
        )
        .await
        .map_err(|e| e.to_string())?;
        let store = self.inner.blobs.clone();
        let dir = request.dir.clone().unwrap_or_else(default_save_dir);
        let name = request.name.clone();
        tokio::task::spawn_blocking(move || store.export(id, &dir, &name))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e: BlobError| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_follows_the_extension() {
        assert_eq!(guess_mime("a.PDF"), "application/pdf");
        assert_eq!(guess_mime("photo.jpeg"), "image/jpeg");
        assert_eq!(guess_mime("noext"), "application/octet-stream");
    }
}
