//! `gossip-chat --headless`: the scripting interface.
//!
//! Each stdin line is a chat message; lines starting with `/` are commands. stdout gets one
//! JSON object per line: `ready` once, then an `event` per event created or received, a
//! `peer` per peer change, `notice` / `warning` / `error` lines, `progress` lines while a
//! large history streams in, and `state` on request; `stopped` last. Each line's outcome
//! is on stdout before the next line's, and a command line (`/…`) is read only once every
//! earlier line's outcome is out. Chat messages are read ahead, up to [`MAX_IN_FLIGHT`], so
//! piped input is created in groups (one fsync each), in line order. `/quit`, EOF
//! with `--exit-on-eof` and SIGINT/SIGTERM stop the node after offering every event to the
//! connected peers; without `--exit-on-eof` EOF keeps it running. The shapes are
//! documented in the README and kept stable.
//!
//! The `event` lines are the live view of the store (see [`super::feed`]): every event the
//! store commits after `ready`, once, in commit order, none skipped; a slow reader of
//! stdout slows the feed, never loses a line. They are written a batch at a time through
//! one buffer, flushed when the writer has nothing more queued.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::command::{self, Front, Request};
use super::session::{Session, SessionError};
use super::stdin::{StdinLine, StdinLines};
use super::view::{
    BatchKind, EquivocationRow, EventBatch, EventRow, PeerRow, Presence, PresenceNote, Progress,
    SessionEvent, WhoisInfo,
};
use crate::app::activity::{Activity, Availability, Change, Own, Signal};
use crate::app::{AppOp, Model, payload_json};
use crate::node::now_ms;
use crate::protocol::{Event, NodeId};

/// Chunks of output queued for stdout; a full queue holds the feed back.
const OUT_CAPACITY: usize = 8;

/// Chat lines read ahead at most while earlier ones are still being created: enough for
/// the node to fill its groups of own events (see
/// [`crate::protocol::engine::create::MAX_OWN_BATCH`]) while one group is saved.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Stdin lines read ahead of the loop: piped input crosses from the reader thread in
/// runs, not with a wake-up per line. Reading ahead is not handling: a command is still
/// handled only once every earlier line's outcome is out.
const STDIN_READ_AHEAD: usize = 256;

/// Chat lines being created, in line order.
type InFlight = FuturesOrdered<tokio::task::JoinHandle<Result<Event, SessionError>>>;

/// How often typing and presence notes are checked (stopped typing, away refreshed).
const SIGNAL_TICK: Duration = Duration::from_secs(1);

/// Shortest time between two `progress` lines of one catch-up.
const PROGRESS_GAP: Duration = Duration::from_millis(100);

/// The JSON line of an event created here or received.
pub fn event_json(row: &EventRow, model: &Model) -> Value {
    let e = &row.event;
    json!({
        "type": "event",
        "dir": if row.from.is_some() { "received" } else { "created" },
        "id": e.id,
        "origin": e.origin.to_string(),
        "origin_name": model.display_name(e.origin),
        "seq": e.seq,
        "hlc": e.hlc,
        "created_at_ms": e.created_at_ms,
        "from": row.from.map(|f| f.to_string()),
        "age_ms": row.age_ms,
        "op": payload_json(&e.payload),
    })
}

/// The `warning` line for an equivocation: which origin signed two events under one seq,
/// and which one every node keeps.
pub fn equivocation_json(row: &EquivocationRow, model: &Model) -> Value {
    let eq = &row.equivocation;
    let name = model.display_name(eq.origin());
    json!({
        "type": "warning",
        "kind": "equivocation",
        "origin": eq.origin().to_string(),
        "origin_name": name,
        "seq": eq.seq(),
        "kept": eq.winner.id.to_string(),
        "dropped": eq.loser.id.to_string(),
        "message": format!(
            "{name} signed two different events as seq {}; every node keeps {}",
            eq.seq(),
            eq.winner.id
        ),
    })
}

/// An `event` line, serialised without building a JSON tree: the same bytes as
/// [`event_json`] (whose object keys come out sorted, hence the field order here).
#[derive(Serialize)]
struct EventLine<'a> {
    age_ms: i64,
    created_at_ms: u64,
    dir: &'static str,
    from: Option<Shown<NodeId>>,
    hlc: u64,
    id: uuid::Uuid,
    op: OpJson,
    origin: Shown<NodeId>,
    origin_name: std::borrow::Cow<'a, str>,
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A value serialised as the string its `Display` gives, written straight into the output.
struct Shown<T>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// An event's `op`: what [`payload_json`] gives, with a chat message (most of any
/// history) written without building a JSON tree.
enum OpJson {
    Chat(String),
    Other(Value),
}

impl OpJson {
    fn of(payload: &[u8]) -> OpJson {
        match AppOp::decode(payload) {
            Ok(op @ AppOp::Chat { .. }) if op.validate().is_ok() => match op {
                AppOp::Chat { text } => OpJson::Chat(text),
                _ => OpJson::Other(payload_json(payload)),
            },
            _ => OpJson::Other(payload_json(payload)),
        }
    }
}

impl Serialize for OpJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            // The keys in the order a `Value` object (sorted) would give them.
            OpJson::Chat(text) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("op", "chat")?;
                map.serialize_entry("text", text)?;
                map.end()
            }
            OpJson::Other(v) => v.serialize(s),
        }
    }
}

/// Appends the `event` line of `row` (and a newline) to `out`.
pub fn write_event_line(row: &EventRow, model: &Model, out: &mut Vec<u8>) {
    let e = &row.event;
    let line = EventLine {
        age_ms: row.age_ms,
        created_at_ms: e.created_at_ms,
        dir: if row.from.is_some() {
            "received"
        } else {
            "created"
        },
        from: row.from.map(Shown),
        id: e.id,
        hlc: e.hlc,
        op: OpJson::of(&e.payload),
        origin: Shown(e.origin),
        origin_name: model.display_name(e.origin),
        seq: e.seq,
        kind: "event",
    };
    // Writing into a Vec cannot fail, and these fields always serialise.
    if serde_json::to_writer(&mut *out, &line).is_ok() {
        out.push(b'\n');
    }
}

/// Folds a batch of the live view into `model` and appends the `event` line of each live
/// row to `out`; a reload's rows are folded only (its first chunk starts a fresh model).
pub fn fold_batch(batch: &EventBatch, model: &mut Model, out: &mut Vec<u8>) {
    match batch.kind {
        BatchKind::Live => {
            for row in &batch.rows {
                model.apply(&row.event);
                write_event_line(row, model, out);
            }
        }
        BatchKind::Reload { first } => {
            if first {
                *model = Model::new();
            }
            for row in &batch.rows {
                model.apply(&row.event);
            }
        }
    }
}

/// The `progress` line: `shown` of `held` records of the store, and whether a catch-up is
/// still under way (the last line of one says `false`, with `shown == held`).
pub fn progress_json(p: &Progress) -> Value {
    json!({
        "type": "progress",
        "shown": p.shown,
        "held": p.held,
        "catching_up": p.catching_up,
    })
}

/// The JSON line of a peer.
pub fn peer_json(row: &PeerRow) -> Value {
    json!({
        "type": "peer",
        "id": row.id.to_string(),
        "name": row.name,
        "addr": row.addr,
        "state": row.state.name(),
        "rtt_ms": row.rtt.map(|d| d.as_secs_f64() * 1000.0),
        "ok": row.ok,
        "failed": row.failed,
        "events_received": row.events_received,
    })
}

/// How long a stop waits for created events to reach the connected peers.
pub const STOP_DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a line waits for the live view to show the event it created before printing
/// it itself (the feed delivers every commit; this only bounds a stalled one).
const OWN_EVENT_WAIT: Duration = Duration::from_secs(5);

/// How `--headless` runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadlessOptions {
    /// EOF on stdin stops the node like `/quit` (else it keeps running until a signal).
    pub exit_on_eof: bool,
}

/// How a headless run ended: the `stopped` line's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Events this run created.
    pub created: u64,
    /// Of those, how many some connected peer was not shown to hold before the stop.
    pub unsent: u64,
}

/// Why the loop ended, for the log.
#[derive(Debug, Clone, Copy)]
enum StopReason {
    Quit,
    Eof,
    Signal,
    SessionGone,
}

/// The loop's state: the session, its events, the folded model and what was printed.
struct Headless {
    session: Session,
    events: mpsc::Receiver<SessionEvent>,
    model: Model,
    peers: HashMap<NodeId, PeerRow>,
    last_progress: Option<Instant>,
    out: Out,
    /// A signal came while a typed op waited to be created.
    signalled: bool,
    /// Own events printed before the live view showed them (it was slow): the view's copy
    /// is not printed again.
    printed_early: std::collections::HashSet<(NodeId, u64)>,
    /// The highest own seq the live view has printed, and the highest a reload folded
    /// without printing: an own event can reach the view while `submit` is still
    /// returning, before [`Headless::wait_printed`] starts to look for it.
    own_printed: u64,
    own_folded: u64,
    /// When this user's typing and presence notes are due (`/typing`, `/away`, `/back`).
    own: Own,
    /// The others' typing and presence, for printing changes only.
    activity: Activity,
}

/// Runs the headless loop until `/quit`, EOF (with `exit_on_eof`) or a signal, then the
/// stop sequence: offer every event to the connected peers (bounded by
/// [`STOP_DELIVERY_TIMEOUT`]), shut the session down, print the `stopped` line.
pub async fn run(
    session: Session,
    events: mpsc::Receiver<SessionEvent>,
    options: HeadlessOptions,
) -> std::io::Result<Stopped> {
    let (out, out_rx) = mpsc::channel::<Chunk>(OUT_CAPACITY);
    let writer = tokio::spawn(write_lines(out_rx));
    let mut h = Headless {
        session,
        events,
        model: Model::new(),
        peers: HashMap::new(),
        last_progress: None,
        out: Out(out),
        signalled: false,
        printed_early: std::collections::HashSet::new(),
        own_printed: 0,
        own_folded: 0,
        own: Own::new(now_ms()),
        activity: Activity::default(),
    };
    match h.session.open_view().await {
        Ok(rows) => rows.iter().for_each(|row| {
            h.model.apply(&row.event);
        }),
        Err(e) => {
            h.out.json(json!({"type": "error", "message": format!("cannot read the store: {e}; its events follow as they are read")}))
                .await;
        }
    }
    h.out.json(h.ready_json()).await;
    // Our nick event, if the name changed, comes before the first line's outcome.
    if let Some(event) = h
        .session
        .ensure_nick(h.model.nick(h.session.node_id()))
        .await
    {
        h.wait_printed(&event).await;
    }
    let reason = h.serve(options).await?;
    // What the session said before the end (a notice at start-up, say) is not lost.
    while let Ok(event) = h.events.try_recv() {
        h.on_event(event).await;
    }
    let stopped = stop_sequence(&h.session, reason).await;
    h.out
        .json(json!({
            "type": "stopped",
            "created": stopped.created,
            "unsent": stopped.unsent,
        }))
        .await;
    drop(h);
    let _ = writer.await;
    Ok(stopped)
}

impl Headless {
    fn ready_json(&self) -> Value {
        let s = &self.session;
        json!({
            "type": "ready",
            "node_id": s.node_id().to_string(),
            "name": s.name(),
            "room": s.options().room,
            "listen": s.listen_addr().to_string(),
            "port": s.listen_addr().port(),
            "data_dir": s.store_dir().display().to_string(),
            "mdns": s.options().mdns,
            "next_seq": s.node().next_seq(),
            "events": self.model.counts().events,
        })
    }

    /// Stdin lines, each outcome written out in line order (chat lines read ahead, commands
    /// one at a time), with the session's events in between, until something ends the run.
    async fn serve(&mut self, options: HeadlessOptions) -> std::io::Result<StopReason> {
        let mut stdin = StdinLines::spawn(STDIN_READ_AHEAD)?;
        let mut stop = std::pin::pin!(shutdown_signal());
        let mut tick = tokio::time::interval(SIGNAL_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut inflight = InFlight::new();
        Ok(loop {
            tokio::select! {
                _ = &mut stop => break StopReason::Signal,
                _ = tick.tick() => self.on_tick().await,
                line = stdin.next(), if inflight.len() < MAX_IN_FLIGHT => {
                    if let StdinLine::Line(text) = &line
                        && let Some(created) = self.queue_chat(text)
                    {
                        inflight.push_back(tokio::spawn(created));
                        stdin.done();
                        continue;
                    }
                    // Anything else waits until every earlier line's outcome is out.
                    if !self.drain(&mut inflight).await {
                        break StopReason::Signal;
                    }
                    let go_on = match line {
                        StdinLine::Line(text) => self.handle_line(&text).await,
                        StdinLine::NotUtf8(n) => {
                            let message = format!("line {n} is not UTF-8");
                            self.out.json(json!({"type": "error", "message": message})).await;
                            true
                        }
                        // EOF: keep running until a signal, as a daemon would, unless asked not to.
                        StdinLine::Eof if options.exit_on_eof => break StopReason::Eof,
                        StdinLine::Eof => continue,
                    };
                    self.out.sync().await;
                    stdin.done();
                    if self.signalled {
                        break StopReason::Signal;
                    }
                    if !go_on {
                        break StopReason::Quit;
                    }
                }
                Some(created) = inflight.next(), if !inflight.is_empty() => {
                    self.chat_created(created).await;
                    if inflight.is_empty() {
                        self.out.sync().await;
                    }
                }
                event = self.events.recv() => match event {
                    Some(event) => self.on_event(event).await,
                    None => break StopReason::SessionGone,
                },
            }
        })
    }

    /// A plain chat line (no command, the node issuing seqs) queued for creation now, in
    /// line order; `None`: handle it as any line, once earlier ones are out.
    fn queue_chat(
        &self,
        line: &str,
    ) -> Option<impl std::future::Future<Output = Result<Event, SessionError>> + Send + use<>> {
        if line.starts_with('/') || self.session.node().is_learning_seq() {
            return None;
        }
        let me = self.session.node_id();
        match command::interpret(line, Front::Headless, &self.model, me) {
            Ok(Request::Op(op)) => Some(self.session.submit_queued(&op)),
            _ => None,
        }
    }

    /// Waits for every chat line in flight and prints its outcome, with the session's
    /// events in between; false if a signal came first.
    async fn drain(&mut self, inflight: &mut InFlight) -> bool {
        let mut stop = std::pin::pin!(shutdown_signal());
        let mut events_open = true;
        while !inflight.is_empty() {
            tokio::select! {
                Some(created) = inflight.next() => self.chat_created(created).await,
                _ = &mut stop => return false,
                event = self.events.recv(), if events_open => match event {
                    Some(event) => self.on_event(event).await,
                    None => events_open = false,
                },
            }
        }
        true
    }

    /// The outcome of a chat line: its event once the live view shows it (durable), or
    /// an error line.
    async fn chat_created(
        &mut self,
        created: Result<Result<Event, SessionError>, tokio::task::JoinError>,
    ) {
        match created {
            Ok(Ok(event)) => {
                self.wait_printed(&event).await;
                let stopped = self.own.sent(now_ms());
                self.send_signals(stopped).await;
            }
            Ok(Err(e)) => {
                self.out
                    .json(json!({"type": "error", "message": e.to_string()}))
                    .await;
            }
            Err(e) => {
                let message = format!("the message could not be created: {e}");
                self.out
                    .json(json!({"type": "error", "message": message}))
                    .await;
            }
        }
    }

    async fn on_event(&mut self, mut event: SessionEvent) {
        if let SessionEvent::Signal(note) = &event {
            let now = ms_of(note.at);
            if let Some(change) = self.activity.observe(note.who, &note.signal, now) {
                let line = change_json(note.who, &change, &self.model);
                self.out.json(line).await;
            }
            return;
        }
        if !self.printed_early.is_empty()
            && let SessionEvent::Events(batch) = &mut event
            && batch.kind == BatchKind::Live
        {
            let early = &mut self.printed_early;
            batch.rows.retain(|r| !early.remove(&r.event.key()));
        }
        if let SessionEvent::Events(batch) = &event {
            let me = self.session.node_id();
            let top = batch
                .rows
                .iter()
                .filter(|r| r.event.origin == me)
                .map(|r| r.event.seq)
                .max()
                .unwrap_or(0);
            let mark = if batch.kind == BatchKind::Live {
                &mut self.own_printed
            } else {
                &mut self.own_folded
            };
            *mark = (*mark).max(top);
        }
        on_session_event(
            event,
            &mut self.model,
            &mut self.peers,
            &mut self.last_progress,
            &self.out,
        )
        .await;
    }

    /// Handles one stdin line, printing its outcome (the created event, an error, the
    /// state); false means quit.
    async fn handle_line(&mut self, line: &str) -> bool {
        let me = self.session.node_id();
        let reply = match command::interpret(line, Front::Headless, &self.model, me) {
            Ok(Request::Nothing) => None,
            Ok(Request::Op(op)) => match self.submit_live(&op).await {
                Some(Ok(event)) => {
                    self.wait_printed(&event).await;
                    let stopped = self.own.sent(now_ms());
                    self.send_signals(stopped).await;
                    None
                }
                Some(Err(e)) => Some(json!({"type": "error", "message": e.to_string()})),
                None => {
                    self.signalled = true;
                    return false;
                }
            },
            Ok(Request::Connect(addr)) => {
                self.session.connect(addr.clone());
                Some(json!({"type": "notice", "message": format!("connecting to {addr}")}))
            }
            Ok(Request::State) => match self.model.state_json() {
                Ok(s) => Some(
                    json!({"type": "state", "state": serde_json::from_str::<Value>(&s).unwrap_or(Value::Null)}),
                ),
                Err(e) => Some(json!({"type": "error", "message": e.to_string()})),
            },
            Ok(Request::Help) => Some(help_json()),
            Ok(Request::Unpeer(addr)) => {
                Some(json!({"type": "notice", "message": self.session.unpeer(&addr)}))
            }
            Ok(Request::Forget) => {
                let n = self.session.forget();
                Some(json!({"type": "notice", "message": format!("forgot {n} offline peer(s)")}))
            }
            Ok(Request::Whois(name)) => Some(match self.session.whois(&name) {
                Ok(found) => whois_json(&found),
                Err(e) => json!({"type": "error", "message": e}),
            }),
            Ok(Request::Quit) => return false,
            Ok(Request::SendFile(path)) => match self.session.send_file(&path).await {
                Ok(event) => {
                    self.wait_printed(&event).await;
                    None
                }
                Err(e) => Some(json!({"type": "error", "message": e.to_string()})),
            },
            Ok(Request::SaveFile(request)) => {
                let message = format!("saving {} ({} bytes)", request.name, request.size);
                let file_id = request.file_id.to_hex();
                self.session.save_file(request);
                Some(json!({"type": "notice", "message": message, "file_id": file_id}))
            }
            Ok(Request::Files) => Some(files_json(&self.model)),
            Ok(Request::Typing) => {
                let due = self.own.keystroke(now_ms());
                Some(self.signal_reply(due, "typing").await)
            }
            Ok(Request::Away(Signal::Away { text })) => {
                let due = self.own.set_away(text, now_ms());
                Some(self.signal_reply(due, "away").await)
            }
            Ok(Request::Away(_)) => None,
            Ok(Request::Back) => {
                let due = self.own.set_back(now_ms());
                Some(self.signal_reply(due, "back").await)
            }
            Err(e) => Some(json!({"type": "error", "message": e.to_string()})),
        };
        if let Some(v) = reply {
            self.out.json(v).await;
        }
        true
    }

    /// Sends the notes `due`, and says what went: a `notice`, or an `error` if the node
    /// refused them.
    async fn signal_reply(&mut self, due: Vec<Signal>, what: &str) -> Value {
        if due.is_empty() {
            let message = format!("{what}: nothing new to tell (typing is said at most every 2 s)");
            return json!({"type": "notice", "message": message});
        }
        let mut peers = 0;
        for s in &due {
            match self.session.signal(s).await {
                Ok(n) => peers = peers.max(n),
                Err(e) => return json!({"type": "error", "message": format!("{what}: {e}")}),
            }
        }
        let message = match self.own.availability() {
            Availability::Away(_) if what == "away" => format!(
                "you are away ({}): told {peers} peer(s); /back ends it",
                self.own.availability().label()
            ),
            _ => format!("{what}: told {peers} peer(s)"),
        };
        json!({"type": "notice", "message": message})
    }

    /// Sends notes the rules made due, without a reply line (a failure is logged).
    async fn send_signals(&mut self, due: Vec<Signal>) {
        for s in due {
            if let Err(e) = self.session.signal(&s).await {
                tracing::debug!(error = %e, kind = s.kind(), "note not sent");
            }
        }
    }

    /// Once a second: "stopped typing" after quiet, "away" refreshed, typists that
    /// expired printed as stopped.
    async fn on_tick(&mut self) {
        let now = now_ms();
        // A script is never idle-away: it says /away itself.
        let due = self.own.tick(now, false);
        self.send_signals(due).await;
        for who in self.activity.expire(now) {
            let line = change_json(who, &Change::Typing(false), &self.model);
            self.out.json(line).await;
        }
    }

    /// Creates `op`, saying "sending…" first while the node waits for a peer to confirm its
    /// last seq (after a lost tail); the session's events and signals stay live while it
    /// waits (the next stdin lines wait their turn, so typed ops go out in order). `None`:
    /// a signal came first.
    async fn submit_live(&mut self, op: &AppOp) -> Option<Result<Event, SessionError>> {
        if self.session.node().is_learning_seq() {
            self.out
                .json(json!({
                    "type": "notice",
                    "message": "sending…: waiting for a peer to confirm this node's last message number (the store lost its tail)",
                    "pending": self.session.node().pending_own() + 1,
                }))
                .await;
            self.out.sync().await;
        }
        let session = self.session.clone();
        let mut submit = std::pin::pin!(session.submit(op));
        let mut stop = std::pin::pin!(shutdown_signal());
        let mut events_open = true;
        loop {
            tokio::select! {
                r = &mut submit => return Some(r),
                _ = &mut stop => return None,
                event = self.events.recv(), if events_open => match event {
                    Some(event) => self.on_event(event).await,
                    None => events_open = false,
                },
            }
        }
    }

    /// Handles the session's events until the live view has shown `event` (created by
    /// this node just now), so its line is printed, and folded for a `/state` on the next
    /// line, before the next line is read, and still in commit order.
    async fn wait_printed(&mut self, event: &Event) {
        if self.own_printed >= event.seq {
            return;
        }
        if self.own_folded >= event.seq {
            let row = EventRow {
                at: std::time::SystemTime::now(),
                event: event.clone(),
                from: None,
                age_ms: 0,
            };
            self.print_row(&row).await;
            return;
        }
        let deadline = tokio::time::Instant::now() + OWN_EVENT_WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(next)) => {
                    let hit = match &next {
                        SessionEvent::Events(b) => b
                            .rows
                            .iter()
                            .find(|r| r.event.origin == event.origin && r.event.seq == event.seq)
                            .map(|r| (r.clone(), b.kind != BatchKind::Live)),
                        _ => None,
                    };
                    self.on_event(next).await;
                    match hit {
                        None => continue,
                        // A reload folds without printing: the line still owes its outcome.
                        Some((row, true)) => self.print_row(&row).await,
                        Some((_, false)) => {}
                    }
                    return;
                }
                Ok(None) => return,
                Err(_) => {
                    tracing::warn!(
                        seq = event.seq,
                        "the live view did not show our event in time; printing it"
                    );
                    let row = EventRow {
                        at: std::time::SystemTime::now(),
                        event: event.clone(),
                        from: None,
                        age_ms: 0,
                    };
                    self.model.apply(&row.event);
                    self.print_row(&row).await;
                    self.printed_early.insert(event.key());
                    return;
                }
            }
        }
    }

    async fn print_row(&mut self, row: &EventRow) {
        let mut line = Vec::new();
        write_event_line(row, &self.model, &mut line);
        self.out.bytes(line).await;
    }
}

/// Offers what we hold to every connected peer (a second signal cuts the wait short), then
/// shuts the session down, which closes the store.
async fn stop_sequence(session: &Session, reason: StopReason) -> Stopped {
    tracing::info!(?reason, "headless: stopping");
    let offered = tokio::select! {
        o = session.offer_to_peers(STOP_DELIVERY_TIMEOUT) => Some(o),
        _ = shutdown_signal() => None,
    };
    let created = session.node().stats().events_created;
    session.shutdown().await;
    let unsent = match offered {
        Some(o) if o.missed == 0 => 0,
        // Every exchange carries every event the peer lacks, so a peer that did not
        // confirm may lack any of them.
        _ => created,
    };
    tracing::info!(created, unsent, ?offered, "headless: stopped");
    Stopped { created, unsent }
}

/// The `presence` line of a join, leave or rename (shown, not stored).
pub fn presence_json(note: &PresenceNote) -> Value {
    let (kind, name, from) = match &note.kind {
        Presence::Joined { name } => ("joined", name, None),
        Presence::Left { name } => ("left", name, None),
        Presence::Renamed { from, to } => ("renamed", to, Some(from)),
    };
    json!({
        "type": "presence",
        "kind": kind,
        "id": note.who.to_string(),
        "name": name,
        "from": from,
        "message": note.to_string(),
    })
}

/// The `typing` or `presence` line of a change in a peer's notes (ephemeral: never
/// stored, never in `export`).
pub fn change_json(who: NodeId, change: &Change, model: &Model) -> Value {
    let name = model.display_name(who);
    match change {
        Change::Typing(typing) => json!({
            "type": "typing",
            "id": who.to_string(),
            "name": name,
            "typing": typing,
        }),
        Change::Availability(p) => {
            let (kind, text, message) = match p {
                Availability::Active => ("active", None, format!("{name} is back")),
                Availability::Away(text) => {
                    ("away", text.clone(), format!("{name} is {}", p.label()))
                }
            };
            json!({
                "type": "presence",
                "kind": kind,
                "id": who.to_string(),
                "name": name,
                "text": text,
                "message": message,
            })
        }
    }
}

fn ms_of(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The `whois` line: everyone a `/whois NAME` found.
pub fn whois_json(found: &[WhoisInfo]) -> Value {
    let peers: Vec<Value> = found
        .iter()
        .map(|w| {
            json!({
                "name": w.name,
                "id": w.id.to_string(),
                "fingerprint": w.fingerprint,
                "addresses": w.addresses,
                "state": w.state.map(|s| s.name()),
                "first_event_ms": w.first_event_ms,
                "last_event_ms": w.last_event_ms,
                "message": w.to_string(),
            })
        })
        .collect();
    json!({"type": "whois", "found": peers})
}

/// The `help` line: every headless command's usage, from the shared table.
fn help_json() -> Value {
    let commands: Vec<String> = command::commands_for(Front::Headless)
        .map(|c| c.usage_line())
        .collect();
    json!({"type": "help", "commands": commands})
}

/// What goes to the stdout writer.
enum Chunk {
    /// Lines to write.
    Bytes(Vec<u8>),
    /// Flush everything queued before, then answer.
    Sync(oneshot::Sender<()>),
}

/// The queue to the stdout writer.
struct Out(mpsc::Sender<Chunk>);

impl Out {
    /// Queues one JSON line. If stdout is gone there is nobody to tell.
    async fn json(&self, v: Value) {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        self.bytes(line).await;
    }

    /// Queues a chunk of lines, waiting while the queue is full.
    async fn bytes(&self, chunk: Vec<u8>) {
        if !chunk.is_empty() {
            let _ = self.0.send(Chunk::Bytes(chunk)).await;
        }
    }

    /// Returns once everything queued so far is written and flushed (or stdout is gone).
    async fn sync(&self) {
        let (tx, rx) = oneshot::channel();
        if self.0.send(Chunk::Sync(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// A transfer as a `progress`, `saved` or `error` line.
fn transfer_json(t: &super::view::TransferInfo) -> Value {
    use super::view::TransferState;
    match &t.state {
        TransferState::Running => json!({
            "type": "progress",
            "file_id": t.file_id,
            "name": t.name,
            "done": t.done,
            "total": t.total,
            "bytes_per_sec": t.bytes_per_sec.round(),
            "eta_secs": t.eta_secs.map(|s| (s * 10.0).round() / 10.0),
        }),
        TransferState::Saved(path) => json!({
            "type": "saved",
            "file_id": t.file_id,
            "name": t.name,
            "size": t.total,
            "path": path.display().to_string(),
        }),
        TransferState::Failed(why) => json!({
            "type": "error",
            "file_id": t.file_id,
            "message": format!("{} not saved: {why}", t.name),
        }),
    }
}

/// The `/files` answer: every file offered, oldest first.
fn files_json(model: &Model) -> Value {
    let files: Vec<Value> = model
        .files()
        .filter_map(|l| {
            let f = l.file?;
            Some(json!({
                "file_id": f.file_id,
                "name": f.name,
                "size": f.size,
                "mime": f.mime,
                "from": l.author,
                "origin": l.origin.to_string(),
                "seq": l.seq,
            }))
        })
        .collect();
    json!({"type": "files", "files": files})
}

async fn on_session_event(
    event: SessionEvent,
    model: &mut Model,
    peers: &mut HashMap<NodeId, PeerRow>,
    last_progress: &mut Option<Instant>,
    out: &Out,
) {
    let line = match event {
        SessionEvent::Events(batch) => {
            let mut chunk = Vec::with_capacity(batch.rows.len() * 320);
            fold_batch(&batch, model, &mut chunk);
            let p = batch.progress;
            // Dropping the batch (here) returns its ticket: the feed may read the next.
            drop(batch);
            out.bytes(chunk).await;
            let due = last_progress.is_none_or(|t| t.elapsed() >= PROGRESS_GAP);
            if p.catching_up && due {
                *last_progress = Some(Instant::now());
                Some(progress_json(&p))
            } else {
                None
            }
        }
        SessionEvent::Progress(p) => {
            *last_progress = None;
            Some(progress_json(&p))
        }
        SessionEvent::Created(row) | SessionEvent::Received(row) => {
            model.apply(&row.event);
            Some(event_json(&row, model))
        }
        SessionEvent::Peers(rows) => {
            for row in &rows {
                let changed = peers
                    .get(&row.id)
                    .is_none_or(|old| old.state != row.state || old.name != row.name);
                if changed {
                    out.json(peer_json(row)).await;
                }
            }
            let ids: Vec<NodeId> = rows.iter().map(|r| r.id).collect();
            for gone in peers.keys().filter(|id| !ids.contains(id)) {
                out.json(json!({"type": "peer", "id": gone.to_string(), "state": "removed"}))
                    .await;
            }
            *peers = rows.into_iter().map(|r| (r.id, r)).collect();
            None
        }
        SessionEvent::Notice(m) => Some(json!({"type": "notice", "message": m})),
        SessionEvent::Warning(m) => Some(json!({"type": "warning", "message": m})),
        SessionEvent::Presence(note) => Some(presence_json(&note)),
        // Headless answers its commands itself (a `whois` line): this comes from a screen's.
        SessionEvent::Answer(lines) => Some(json!({"type": "notice", "message": lines.join("\n")})),
        SessionEvent::Equivocation(row) => Some(equivocation_json(&row, model)),
        SessionEvent::Transfer(t) => Some(transfer_json(&t)),
        // Headless::on_event prints these, with the typing state it keeps.
        SessionEvent::Exchange(_) | SessionEvent::Status(_) | SessionEvent::Signal(_) => None,
    };
    if let Some(v) = line {
        out.json(v).await;
    }
}

/// Writes queued chunks to stdout through one buffer, flushing whenever the queue is empty
/// or a sync asks: a burst costs a few large writes, a single line is out at once.
async fn write_lines(mut rx: mpsc::Receiver<Chunk>) {
    let mut stdout = tokio::io::BufWriter::with_capacity(256 * 1024, tokio::io::stdout());
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Chunk::Bytes(bytes) => {
                if stdout.write_all(&bytes).await.is_err() {
                    return;
                }
                if rx.is_empty() && stdout.flush().await.is_err() {
                    return;
                }
            }
            Chunk::Sync(done) => {
                if stdout.flush().await.is_err() {
                    return;
                }
                let _ = done.send(());
            }
        }
    }
    let _ = stdout.flush().await;
}

/// Resolves on Ctrl-C, or SIGTERM on unix.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppOp;

    fn model_with_item() -> (Model, uuid::Uuid) {
        let mut m = Model::new();
        let op = m.new_item_op("milk", None).unwrap();
        let AppOp::ListAdd { item, .. } = op else {
            panic!("not an add")
        };
        let e = crate::protocol::Event {
            id: uuid::Uuid::now_v7(),
            origin: NodeId::from_u128(1),
            seq: 1,
            hlc: 1,
            created_at_ms: 0,
            payload: op.encode().unwrap().into(),
            sig: bytes::Bytes::new(),
        };
        m.apply(&e);
        (m, item)
    }

    #[test]
    fn event_lines_are_the_bytes_of_event_json() {
        let (m, _) = model_with_item();
        let op = AppOp::chat("hi \"there\"\n").unwrap();
        let event = crate::protocol::Event {
            id: uuid::Uuid::now_v7(),
            origin: NodeId::from_u128(7),
            seq: 3,
            hlc: 9,
            created_at_ms: 12,
            payload: op.encode().unwrap().into(),
            sig: bytes::Bytes::new(),
        };
        let undecodable = crate::protocol::Event {
            payload: bytes::Bytes::from_static(b"\xff\x00"),
            ..event.clone()
        };
        let nick = crate::protocol::Event {
            payload: AppOp::nick("ann").unwrap().encode().unwrap().into(),
            ..event.clone()
        };
        for (event, from) in [
            (event.clone(), None),
            (event, Some(NodeId::from_u128(8))),
            (undecodable, Some(NodeId::from_u128(7))),
            (nick, None),
        ] {
            let row = EventRow {
                at: std::time::SystemTime::UNIX_EPOCH,
                event,
                from,
                age_ms: -4,
            };
            let mut out = Vec::new();
            write_event_line(&row, &m, &mut out);
            let want = format!("{}\n", event_json(&row, &m));
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn a_live_batch_is_folded_and_printed_and_a_reload_restarts_the_model() {
        let (mut m, _) = model_with_item();
        let row = |seq: u64, text: &str| EventRow {
            at: std::time::SystemTime::UNIX_EPOCH,
            event: crate::protocol::Event {
                id: uuid::Uuid::now_v7(),
                origin: NodeId::from_u128(2),
                seq,
                hlc: seq,
                created_at_ms: 0,
                payload: AppOp::chat(text).unwrap().encode().unwrap().into(),
                sig: bytes::Bytes::new(),
            },
            from: Some(NodeId::from_u128(2)),
            age_ms: 0,
        };
        let live = EventBatch::new(vec![row(1, "a"), row(2, "b")], Progress::default());
        let mut out = Vec::new();
        fold_batch(&live, &mut m, &mut out);
        assert_eq!(m.counts().events, 3);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
        let mut reload = EventBatch::new(vec![row(1, "a")], Progress::default());
        reload.kind = BatchKind::Reload { first: true };
        let mut out = Vec::new();
        fold_batch(&reload, &mut m, &mut out);
        assert!(out.is_empty(), "a reload prints no event lines");
        assert_eq!(
            m.counts().events,
            1,
            "the model was rebuilt from the reload"
        );
    }
}
