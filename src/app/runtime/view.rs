//! Plain data that the session hands to the screens (TUI and headless): peers, exchanges,
//! events and status, already joined and formatted for display. No I/O here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::node::{Direction, ExchangeResult, PeerState};
use crate::protocol::{Event, NodeId, VectorClock};

/// One row of the peers panel.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRow {
    /// The peer's node id.
    pub id: NodeId,
    /// Its display name (nick from its events, else its mDNS name, else its short id).
    pub name: String,
    /// Where it listens.
    pub addr: String,
    /// Liveness.
    pub state: PeerState,
    /// Last successful contact.
    pub last_seen: Option<SystemTime>,
    /// Round-trip time of the last request.
    pub rtt: Option<Duration>,
    /// Exchanges that completed.
    pub ok: u64,
    /// Exchanges that failed.
    pub failed: u64,
    /// New events received from it.
    pub events_received: u64,
    /// Bytes in and out on its link, if the transport counts them.
    pub bytes_in: u64,
    /// Bytes sent to it.
    pub bytes_out: u64,
    /// Its last error, if any.
    pub last_error: Option<String>,
    /// Set for an address being dialed that has not answered yet (the row's `id` is nil).
    pub dial: Option<DialInfo>,
}

/// One row of the exchanges panel.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeRow {
    /// When it ended (wall clock).
    pub at: SystemTime,
    /// The peer (nil if it never identified itself).
    pub peer: NodeId,
    /// The peer's display name.
    pub peer_name: String,
    /// What happened.
    pub result: ExchangeResult,
}

impl ExchangeRow {
    /// Whether we started it.
    pub fn outbound(&self) -> bool {
        self.result.direction == Direction::Outbound
    }
}

/// One row of the events panel: an event as it was created here or arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// When it was created here or arrived (wall clock).
    pub at: SystemTime,
    /// The event.
    pub event: Event,
    /// The peer that delivered it, when the session saw the delivery, else its origin;
    /// `None` for an event created here.
    pub from: Option<NodeId>,
    /// Its age on arrival: arrival time minus its `created_at_ms` (0 for local events).
    pub age_ms: i64,
}

/// The status bar's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusInfo {
    /// Our display name.
    pub name: String,
    /// Our node id.
    pub node_id: NodeId,
    /// The room.
    pub room: String,
    /// Where we listen.
    pub listen: SocketAddr,
    /// Whether mDNS discovery runs.
    pub mdns: bool,
    /// Whether the room has a secret (encrypted with a pre-shared key, hidden on mDNS).
    pub private: bool,
    /// Events stored.
    pub events: u64,
    /// Origins known (nodes that created events).
    pub nodes: u64,
    /// Store size in bytes.
    pub store_bytes: u64,
    /// Our vector clock.
    pub clock: VectorClock,
    /// The store's directory.
    pub data_dir: PathBuf,
    /// The addresses others can reach us at: this laptop's own interface addresses with
    /// our port when we listen on all of them (never `0.0.0.0`), else `listen`.
    pub addresses: Vec<SocketAddr>,
    /// Own messages typed and not yet stored ("sending…"): they wait, in order, while the
    /// node learns its own seq from a peer after a lost tail.
    pub sending: usize,
}

/// Two different events of one origin under one seq, as a screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EquivocationRow {
    /// When it was seen here.
    pub at: SystemTime,
    /// The record: the event every node keeps, and the one dropped.
    pub equivocation: crate::protocol::equivocation::Equivocation,
}

/// How far the live view has come through the store's commit sequence (see
/// [`crate::store::EventStore::committed_since`]): records handed to the screen, of the
/// records the store has committed. Both count records, so a replaced event counts twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Records handed to the screen, this batch included.
    pub shown: u64,
    /// Records the store had committed when the batch was read.
    pub held: u64,
    /// A large history is streaming in (at least [`Progress::CATCH_UP_MIN`] records in
    /// one run of commits, or that many still to show): screens say "catching up: N of
    /// M". The run's last report has this false.
    pub catching_up: bool,
}

impl Progress {
    /// Records in one run of commits from which a screen says it is catching up.
    pub const CATCH_UP_MIN: u64 = 1000;

    /// Records committed but not shown yet.
    pub fn behind(&self) -> u64 {
        self.held.saturating_sub(self.shown)
    }
}

/// What a batch of rows is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// The next records of the commit sequence: fold them, and show them as new.
    Live,
    /// The store replaced an event, so the view is re-read: every event held, in
    /// chunks. The `first` chunk starts a fresh model; none is shown as new.
    Reload {
        /// Whether this chunk starts the reload.
        first: bool,
    },
}

/// Rows of the live view, in commit order. The session sends the next batch only after the
/// screen has dropped enough of the earlier ones (the batch carries a ticket that is
/// released when it is dropped): a slow screen slows the feed down and loses nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    /// The rows.
    pub rows: Vec<EventRow>,
    /// What they are.
    pub kind: BatchKind,
    /// How far the feed is, this batch included.
    pub progress: Progress,
    ticket: Ticket,
}

impl EventBatch {
    /// A batch of live rows that holds no ticket (for tests and tools).
    pub fn new(rows: Vec<EventRow>, progress: Progress) -> Self {
        EventBatch {
            rows,
            kind: BatchKind::Live,
            progress,
            ticket: Ticket { _permit: None },
        }
    }

    /// A batch holding a ticket of the feed, returned when the batch is dropped.
    pub(crate) fn with_ticket(
        rows: Vec<EventRow>,
        kind: BatchKind,
        progress: Progress,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Self {
        EventBatch {
            rows,
            kind,
            progress,
            ticket: Ticket {
                _permit: Some(std::sync::Arc::new(permit)),
            },
        }
    }
}

/// A feed's permit to have one more batch on its way; clones share it.
#[derive(Debug, Clone)]
struct Ticket {
    /// Held, never read: dropping the last clone gives the permit back.
    _permit: Option<std::sync::Arc<tokio::sync::OwnedSemaphorePermit>>,
}

impl PartialEq for Ticket {
    /// Tickets say nothing about the rows, so batches compare by their rows only.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// What a running session tells its screen.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The live view's next rows, from the store's commit sequence. The session sends
    /// events only this way; the two variants below carry one row, for tests and tools.
    Events(EventBatch),
    /// A run of commits that the screens reported as catching up has ended: every record
    /// committed so far is shown.
    Progress(Progress),
    /// An event created here (already stored).
    Created(EventRow),
    /// An event new to us, received from a peer.
    Received(EventRow),
    /// The peer table changed (a peer was added, changed state, or was removed): the whole
    /// table, sorted by name.
    Peers(Vec<PeerRow>),
    /// An exchange ended (or inbound input was refused).
    Exchange(ExchangeRow),
    /// Something the user should read (e.g. "connected to 10.0.0.3:4000").
    Notice(String),
    /// Something that went wrong but did not stop the session.
    Warning(String),
    /// An origin signed two different events under one seq (shown as a warning and an
    /// events-panel row).
    Equivocation(Box<EquivocationRow>),
    /// Fresh status-bar figures (sent after changes, at most a few times a second).
    Status(StatusInfo),
    /// A join, leave or rename, for the chat to show (not stored).
    Presence(PresenceNote),
    /// A file being saved (`/save`): its progress, then where it was saved or why not.
    Transfer(TransferInfo),
}

/// Where a file transfer is.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferState {
    /// Chunks are arriving.
    Running,
    /// Saved at this path.
    Saved(std::path::PathBuf),
    /// Stopped (what it has stays in the blob store: `/save` again resumes).
    Failed(String),
}

/// A file being saved, for the gauge and `{"type":"progress"}` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferInfo {
    /// The blob id, hex.
    pub file_id: String,
    /// The name it is saved under (made safe).
    pub name: String,
    /// Bytes held.
    pub done: u64,
    /// Bytes in the file.
    pub total: u64,
    /// Bytes per second (this run).
    pub bytes_per_sec: f64,
    /// Seconds left at that rate, if known.
    pub eta_secs: Option<f64>,
    /// Running, saved or failed.
    pub state: TransferState,
}

/// What a screen asks its session to do.
#[derive(Debug, Clone, PartialEq)]
pub enum UiCommand {
    /// Create an event carrying this op (chat, nick, list edits).
    Submit(crate::app::AppOp),
    /// Connect to a peer by address (`host:port`), as `--peer` does.
    Connect(String),
    /// Stop dialing an address (`/unpeer`).
    Unpeer(String),
    /// Drop offline peers from the peers panel (`/forget`).
    Forget,
    /// Say what is known about a name (`/whois`); the answer comes as a notice.
    Whois(String),
    /// Offer a file to the room (`/send PATH`).
    SendFile(std::path::PathBuf),
    /// Fetch and save an offered file (`/save`).
    SaveFile(super::command::SaveRequest),
    /// Leave: stop the node cleanly.
    Quit,
}

/// A dial that has not answered yet (`/peer`, `--peer`), shown as a peer row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialInfo {
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt starts (`None`: one is under way).
    pub next_retry: Option<SystemTime>,
}

/// Something that happened to someone, for the chat to show as a line of its own. Shown,
/// never stored: it is this node's view, not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceNote {
    /// When it was noticed (wall clock).
    pub at: SystemTime,
    /// Who.
    pub who: NodeId,
    /// What.
    pub kind: Presence,
}

/// What a [`PresenceNote`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// A peer answered for the first time, or again after being offline.
    Joined {
        /// Its shown name.
        name: String,
    },
    /// A peer went offline.
    Left {
        /// Its shown name.
        name: String,
    },
    /// An origin took a new nickname.
    Renamed {
        /// The old one.
        from: String,
        /// The new one.
        to: String,
    },
}

impl std::fmt::Display for PresenceNote {
    /// "ana joined", "ana left", "cy is now known as cyrus".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Presence::Joined { name } => write!(f, "{name} joined"),
            Presence::Left { name } => write!(f, "{name} left"),
            Presence::Renamed { from, to } => write!(f, "{from} is now known as {to}"),
        }
    }
}

/// What `/whois NAME` found about one origin or peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoisInfo {
    /// Its shown name.
    pub name: String,
    /// Its node id.
    pub id: NodeId,
    /// Its key's fingerprint (the first 8 bytes of SHA-256 of its ed25519 key, in hex
    /// groups), once its identity event is held.
    pub fingerprint: Option<String>,
    /// Where it was reached or announced.
    pub addresses: Vec<String>,
    /// Its liveness, if it is a peer.
    pub state: Option<PeerState>,
    /// Its earliest and latest event times held here, by its clock (ms since the epoch).
    pub first_event_ms: Option<u64>,
    /// See `first_event_ms`.
    pub last_event_ms: Option<u64>,
    /// The last successful contact, if it is a peer.
    pub last_contact: Option<SystemTime>,
}

impl std::fmt::Display for WhoisInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: id {}", self.name, self.id)?;
        match &self.fingerprint {
            Some(fp) => write!(f, ", key {fp}")?,
            None => f.write_str(", key not held yet")?,
        }
        if !self.addresses.is_empty() {
            write!(f, ", at {}", self.addresses.join(", "))?;
        }
        if let Some(state) = self.state {
            write!(f, ", {}", state.name())?;
        }
        let now = SystemTime::now();
        let ago = |t: SystemTime| ago(now.duration_since(t).unwrap_or_default());
        let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        if let Some(ms) = self.first_event_ms {
            write!(f, ", first seen {}", ago(at(ms)))?;
        }
        let last = match (self.last_event_ms.map(at), self.last_contact) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if let Some(t) = last {
            write!(f, ", last seen {}", ago(t))?;
        }
        Ok(())
    }
}

/// "12 s ago", "5 min ago", "3 h ago", "2 d ago".
pub fn ago(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}
