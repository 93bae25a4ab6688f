//! `gossip-chat --headless`: the scripting interface.
//!
//! Each stdin line is a chat message; lines starting with `/` are commands. stdout gets one
//! JSON object per line: `ready` once, then an `event` per event created or received, a
//! `peer` per peer change, `notice` / `warning` / `error` lines, `progress` lines while a
//! large history streams in, and `state` on request. EOF on stdin keeps the node running
//! until SIGINT/SIGTERM (or `/quit`), which shut it down cleanly. The shapes are documented
//! in the README and kept stable.
//!
//! The `event` lines are the live view of the store (see [`super::feed`]): every event the
//! store commits after `ready`, once, in commit order, none skipped; a slow reader of
//! stdout slows the feed, never loses a line. They are written a batch at a time through
//! one buffer, flushed when the writer has nothing more queued.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::session::Session;
use super::view::{
    BatchKind, EquivocationRow, EventBatch, EventRow, PeerRow, Progress, SessionEvent,
};
use crate::app::{AppOp, Model, payload_json};
use crate::protocol::NodeId;

/// Chunks of output queued for stdout; a full queue holds the feed back.
const OUT_CAPACITY: usize = 8;

/// Shortest time between two `progress` lines of one catch-up.
const PROGRESS_GAP: Duration = Duration::from_millis(100);

/// The commands `--headless` understands, for `/help` and errors.
pub const COMMANDS: &[&str] = &[
    "/nick NAME",
    "/add TEXT",
    "/done ID-PREFIX",
    "/undone ID-PREFIX",
    "/edit ID-PREFIX TEXT",
    "/rm ID-PREFIX",
    "/peer HOST:PORT",
    "/state",
    "/help",
    "/quit",
];

/// What one input line asks for.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// Nothing (a blank line).
    Nothing,
    /// Create an event with this op.
    Op(AppOp),
    /// Connect to a peer.
    Peer(String),
    /// Print the folded state.
    State,
    /// Print the commands.
    Help,
    /// Shut down.
    Quit,
}

/// Turns one input line into what it asks for, or a message saying what is wrong.
pub fn parse_line(line: &str, model: &Model) -> Result<Line, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Line::Nothing);
    }
    let Some(command) = line.strip_prefix('/') else {
        return AppOp::chat(line).map(Line::Op).map_err(|e| e.to_string());
    };
    let (verb, rest) = command
        .split_once(char::is_whitespace)
        .map_or((command, ""), |(v, r)| (v, r.trim()));
    let item = |prefix: &str| {
        if prefix.is_empty() {
            return Err(format!("/{verb} needs an item id prefix"));
        }
        model
            .find_item_by_prefix(prefix)
            .map_err(|e| format!("/{verb} {prefix}: {e}"))
    };
    let op = match verb {
        "nick" => AppOp::nick(rest).map_err(|e| e.to_string())?,
        "add" => model
            .new_item_op(rest, None)
            .map_err(|e| format!("/add: {e}"))?,
        "done" | "undone" => AppOp::list_check(item(rest)?, verb == "done"),
        "edit" => {
            let (prefix, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            AppOp::list_edit(item(prefix)?, text.trim()).map_err(|e| format!("/edit: {e}"))?
        }
        "rm" => AppOp::list_remove(item(rest)?),
        "peer" if rest.is_empty() => return Err("/peer needs HOST:PORT".into()),
        "peer" => return Ok(Line::Peer(rest.to_string())),
        "state" => return Ok(Line::State),
        "help" => return Ok(Line::Help),
        "quit" => return Ok(Line::Quit),
        _ => {
            return Err(format!(
                "unknown command /{verb}; commands: {}",
                COMMANDS.join(", ")
            ));
        }
    };
    Ok(Line::Op(op))
}

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

/// Runs the headless loop until `/quit` or a signal; returns once the session is down.
pub async fn run(
    session: Session,
    mut events: mpsc::Receiver<SessionEvent>,
) -> std::io::Result<()> {
    let (out, out_rx) = mpsc::channel::<Vec<u8>>(OUT_CAPACITY);
    let out = Out(out);
    let writer = tokio::spawn(write_lines(out_rx));
    let mut model = Model::new();
    match session.open_view().await {
        Ok(rows) => rows.iter().for_each(|row| {
            model.apply(&row.event);
        }),
        Err(e) => {
            out.json(json!({"type": "error", "message": format!("cannot read the store: {e}; its events follow as they are read")}))
                .await;
        }
    }
    out.json(json!({
        "type": "ready",
        "node_id": session.node_id().to_string(),
        "name": session.options().name,
        "room": session.options().room,
        "listen": session.listen_addr().to_string(),
        "port": session.listen_addr().port(),
        "data_dir": session.store_dir().display().to_string(),
        "mdns": session.options().mdns,
        "next_seq": session.node().next_seq(),
        "events": model.counts().events,
    }))
    .await;
    session.ensure_nick(model.nick(session.node_id())).await;
    let (lines_tx, mut lines) = mpsc::channel::<String>(64);
    tokio::spawn(read_lines(lines_tx));
    // Typed ops are created one after the other, in order, beside the loop: while the node
    // waits to learn its own seq (after a lost tail) they are "sending…", and stdin, the
    // screen and signals stay live.
    let (ops_tx, ops_rx) = mpsc::channel::<AppOp>(1024);
    let mut sender = tokio::spawn(send_ops(session.clone(), ops_rx, out.clone()));
    let mut stdin_open = true;
    let mut peers: HashMap<NodeId, PeerRow> = HashMap::new();
    let mut last_progress: Option<Instant> = None;
    let mut stop = std::pin::pin!(shutdown_signal());
    let mut signalled = false;
    loop {
        tokio::select! {
            _ = &mut stop => {
                signalled = true;
                break;
            }
            line = lines.recv(), if stdin_open => match line {
                Some(line) => {
                    if !handle_line(&line, &session, &model, &out, &ops_tx).await {
                        break;
                    }
                }
                // EOF: keep running until a signal, as a daemon would.
                None => stdin_open = false,
            },
            event = events.recv() => match event {
                Some(event) => {
                    on_session_event(event, &mut model, &mut peers, &mut last_progress, &out).await
                }
                None => break,
            },
        }
    }
    // What was typed before a /quit goes out first (a signal does not wait for it).
    drop(ops_tx);
    if signalled {
        sender.abort();
    } else {
        tokio::select! {
            _ = &mut sender => {}
            _ = &mut stop => sender.abort(),
        }
    }
    session.shutdown().await;
    drop(out);
    let _ = writer.await;
    Ok(())
}

/// Creates typed ops in order; says "sending…" while own events wait for a peer.
async fn send_ops(session: Session, mut ops: mpsc::Receiver<AppOp>, out: Out) {
    while let Some(op) = ops.recv().await {
        if session.node().is_learning_seq() {
            out.json(json!({
                "type": "notice",
                "message": "sending…: waiting for a peer to confirm this node's last message number (the store lost its tail)",
                "pending": session.node().pending_own() + 1 + ops.len(),
            }))
            .await;
        }
        if let Err(e) = session.submit(&op).await {
            out.json(json!({"type": "error", "message": e.to_string()}))
                .await;
        }
    }
}

/// Handles one stdin line; false means quit.
async fn handle_line(
    line: &str,
    session: &Session,
    model: &Model,
    out: &Out,
    ops: &mpsc::Sender<AppOp>,
) -> bool {
    let reply = match parse_line(line, model) {
        Ok(Line::Nothing) => None,
        Ok(Line::Op(op)) => match ops.send(op).await {
            Ok(()) => None,
            Err(_) => Some(json!({"type": "error", "message": "the sender has stopped"})),
        },
        Ok(Line::Peer(addr)) => {
            session.connect(addr.clone());
            Some(json!({"type": "notice", "message": format!("connecting to {addr}")}))
        }
        Ok(Line::State) => match model.state_json() {
            Ok(s) => Some(
                json!({"type": "state", "state": serde_json::from_str::<Value>(&s).unwrap_or(Value::Null)}),
            ),
            Err(e) => Some(json!({"type": "error", "message": e.to_string()})),
        },
        Ok(Line::Help) => Some(json!({"type": "help", "commands": COMMANDS})),
        Ok(Line::Quit) => return false,
        Err(message) => Some(json!({"type": "error", "message": message})),
    };
    if let Some(v) = reply {
        out.json(v).await;
    }
    true
}

/// The queue to the stdout writer.
#[derive(Clone)]
struct Out(mpsc::Sender<Vec<u8>>);

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
            let _ = self.0.send(chunk).await;
        }
    }
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
        SessionEvent::Equivocation(row) => Some(equivocation_json(&row, model)),
        SessionEvent::Exchange(_) | SessionEvent::Status(_) => None,
    };
    if let Some(v) = line {
        out.json(v).await;
    }
}

async fn read_lines(tx: mpsc::Sender<String>) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if tx.send(line).await.is_err() {
            return;
        }
    }
}

/// Writes queued chunks to stdout through one buffer, flushing whenever the queue is empty:
/// a burst costs a few large writes, a single line is out at once.
async fn write_lines(mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut stdout = tokio::io::BufWriter::with_capacity(256 * 1024, tokio::io::stdout());
    while let Some(chunk) = rx.recv().await {
        if stdout.write_all(&chunk).await.is_err() {
            return;
        }
        let more = !rx.is_empty();
        if !more && stdout.flush().await.is_err() {
            return;
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
    fn plain_lines_are_chat_and_commands_parse() {
        let (m, item) = model_with_item();
        let prefix = &item.simple().to_string()[..6];
        assert_eq!(parse_line("", &m), Ok(Line::Nothing));
        assert!(matches!(
            parse_line("hi there", &m),
            Ok(Line::Op(AppOp::Chat { .. }))
        ));
        assert!(matches!(
            parse_line("/nick bob", &m),
            Ok(Line::Op(AppOp::Nick { .. }))
        ));
        assert!(matches!(
            parse_line("/add eggs", &m),
            Ok(Line::Op(AppOp::ListAdd { .. }))
        ));
        assert_eq!(
            parse_line(&format!("/done {prefix}"), &m),
            Ok(Line::Op(AppOp::list_check(item, true)))
        );
        assert_eq!(
            parse_line(&format!("/undone {prefix}"), &m),
            Ok(Line::Op(AppOp::list_check(item, false)))
        );
        assert!(matches!(
            parse_line(&format!("/edit {prefix} oat milk"), &m),
            Ok(Line::Op(AppOp::ListEdit { .. }))
        ));
        assert_eq!(
            parse_line(&format!("/rm {prefix}"), &m),
            Ok(Line::Op(AppOp::list_remove(item)))
        );
        assert_eq!(
            parse_line("/peer 10.0.0.2:4000", &m),
            Ok(Line::Peer("10.0.0.2:4000".into()))
        );
        assert_eq!(parse_line("/quit", &m), Ok(Line::Quit));
        assert_eq!(parse_line("/state", &m), Ok(Line::State));
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

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let (m, _) = model_with_item();
        assert!(
            parse_line("/frobnicate", &m)
                .unwrap_err()
                .contains("unknown command")
        );
        assert!(parse_line("/done zzzz", &m).is_err());
        assert!(
            parse_line("/done", &m)
                .unwrap_err()
                .contains("needs an item")
        );
        assert!(parse_line("/peer", &m).unwrap_err().contains("HOST:PORT"));
        assert!(parse_line("/nick", &m).is_err());
        assert!(parse_line(&"x".repeat(5000), &m).is_err());
        assert!(parse_line("/add ", &m).is_err());
    }
}
