//! `gossip-chat --headless`: the scripting interface.
//!
//! Each stdin line is a chat message; lines starting with `/` are commands. stdout gets one
//! JSON object per line: `ready` once, then an `event` per event created or received, a
//! `peer` per peer change, `notice` / `warning` / `error` lines, and `state` on request. EOF
//! on stdin keeps the node running until SIGINT/SIGTERM (or `/quit`), which shut it down
//! cleanly. The shapes are documented in the README and kept stable.

use std::collections::HashMap;

use serde_json::{Value, json};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::command::{self, Front, Request};
use super::session::Session;
use super::stdin::{StdinLine, StdinLines};
use super::view::{EventRow, PeerRow, Presence, PresenceNote, SessionEvent, WhoisInfo};
use crate::app::{Applied, Model, payload_json};
use crate::protocol::{Event, NodeId};

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
        "lamport": e.lamport,
        "created_at_ms": e.created_at_ms,
        "from": row.from.map(|f| f.to_string()),
        "age_ms": row.age_ms,
        "op": payload_json(&e.payload),
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

/// Runs the headless loop until `/quit`, EOF (with `exit_on_eof`) or a signal, then the
/// stop sequence: offer every event to the connected peers (bounded by
/// [`STOP_DELIVERY_TIMEOUT`]), shut the session down, print the `stopped` line.
pub async fn run(
    session: Session,
    mut events: mpsc::Receiver<SessionEvent>,
    options: HeadlessOptions,
) -> std::io::Result<Stopped> {
    let mut out = Output::stdout();
    let mut model = Model::new();
    for row in session.history().await.unwrap_or_default() {
        model.apply(&row.event);
    }
    out.line(json!({
        "type": "ready",
        "node_id": session.node_id().to_string(),
        "name": session.name(),
        "room": session.options().room,
        "listen": session.listen_addr().to_string(),
        "port": session.listen_addr().port(),
        "data_dir": session.store_dir().display().to_string(),
        "mdns": session.options().mdns,
        "next_seq": session.node().next_seq(),
        "events": model.counts().events,
    }))
    .await;
    // Our nick event, if the name changed, comes before the first line's outcome.
    if let Some(event) = session.ensure_nick(model.nick(session.node_id())).await {
        out.line(created_json(event, &mut model)).await;
    }
    let mut peers: HashMap<NodeId, PeerRow> = HashMap::new();
    let mut stdin = StdinLines::spawn()?;
    let mut stop = std::pin::pin!(shutdown_signal());
    let reason = loop {
        tokio::select! {
            // A signal first, then stdin: a line waiting is handled before the session
            // events that arrived meanwhile (its own event among them).
            biased;
            _ = &mut stop => break StopReason::Signal,
            line = stdin.next() => {
                let text = match line {
                    StdinLine::Line(text) => text,
                    StdinLine::NotUtf8(n) => {
                        let message = format!("line {n} is not UTF-8");
                        out.line(json!({"type": "error", "message": message})).await;
                        stdin.done();
                        continue;
                    }
                    // EOF: keep running until a signal, as a daemon would, unless asked not to.
                    StdinLine::Eof if options.exit_on_eof => break StopReason::Eof,
                    StdinLine::Eof => continue,
                };
                let go_on = handle_line(&text, &session, &mut model, &mut out).await;
                stdin.done();
                if !go_on {
                    break StopReason::Quit;
                }
            }
            event = events.recv() => match event {
                Some(event) => on_session_event(event, &mut model, &mut peers, &mut out).await,
                None => break StopReason::SessionGone,
            },
        }
    };
    let stopped = stop_sequence(&session, reason).await;
    out.line(json!({
        "type": "stopped",
        "created": stopped.created,
        "unsent": stopped.unsent,
    }))
    .await;
    Ok(stopped)
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

/// Handles one stdin line, printing its outcome (the created event, an error, the state)
/// before returning; false means quit.
async fn handle_line(line: &str, session: &Session, model: &mut Model, out: &mut Output) -> bool {
    let reply = match command::interpret(line, Front::Headless, model, session.node_id()) {
        Ok(Request::Nothing) => None,
        Ok(Request::Op(op)) => match session.submit(&op).await {
            Ok(event) => Some(created_json(event, model)),
            Err(e) => Some(json!({"type": "error", "message": e.to_string()})),
        },
        Ok(Request::Connect(addr)) => {
            session.connect(addr.clone());
            Some(json!({"type": "notice", "message": format!("connecting to {addr}")}))
        }
        Ok(Request::State) => match model.state_json() {
            Ok(s) => Some(
                json!({"type": "state", "state": serde_json::from_str::<Value>(&s).unwrap_or(Value::Null)}),
            ),
            Err(e) => Some(json!({"type": "error", "message": e.to_string()})),
        },
        Ok(Request::Help) => Some(help_json()),
        Ok(Request::Unpeer(addr)) => {
            Some(json!({"type": "notice", "message": session.unpeer(&addr)}))
        }
        Ok(Request::Forget) => {
            let n = session.forget();
            Some(json!({"type": "notice", "message": format!("forgot {n} offline peer(s)")}))
        }
        Ok(Request::Whois(name)) => Some(match session.whois(&name) {
            Ok(found) => whois_json(&found),
            Err(e) => json!({"type": "error", "message": e}),
        }),
        Ok(Request::Quit) => return false,
        Err(e) => Some(json!({"type": "error", "message": e.to_string()})),
    };
    if let Some(v) = reply {
        out.line(v).await;
    }
    true
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

/// The line of an event this node just created, folded first: a `/state` on the next line
/// sees it, and the session's copy of it is then a duplicate, not printed twice.
fn created_json(event: Event, model: &mut Model) -> Value {
    model.apply(&event);
    let row = EventRow {
        at: std::time::SystemTime::now(),
        event,
        from: None,
        age_ms: 0,
    };
    event_json(&row, model)
}

/// The `help` line: every headless command's usage, from the shared table.
fn help_json() -> Value {
    let commands: Vec<String> = command::commands_for(Front::Headless)
        .map(|c| c.usage_line())
        .collect();
    json!({"type": "help", "commands": commands})
}

async fn on_session_event(
    event: SessionEvent,
    model: &mut Model,
    peers: &mut HashMap<NodeId, PeerRow>,
    out: &mut Output,
) {
    let line = match event {
        SessionEvent::Created(row) | SessionEvent::Received(row) => {
            // A duplicate is an event already printed (created by a stdin line) or folded
            // from the history.
            match model.apply(&row.event) {
                Applied::Duplicate => None,
                _ => Some(event_json(&row, model)),
            }
        }
        SessionEvent::Peers(rows) => {
            for row in &rows {
                let changed = peers
                    .get(&row.id)
                    .is_none_or(|old| old.state != row.state || old.name != row.name);
                if changed {
                    out.line(peer_json(row)).await;
                }
            }
            let ids: Vec<NodeId> = rows.iter().map(|r| r.id).collect();
            for gone in peers.keys().filter(|id| !ids.contains(id)) {
                out.line(json!({"type": "peer", "id": gone.to_string(), "state": "removed"}))
                    .await;
            }
            *peers = rows.into_iter().map(|r| (r.id, r)).collect();
            None
        }
        SessionEvent::Notice(m) => Some(json!({"type": "notice", "message": m})),
        SessionEvent::Warning(m) => Some(json!({"type": "warning", "message": m})),
        SessionEvent::Presence(note) => Some(presence_json(&note)),
        SessionEvent::Exchange(_) | SessionEvent::Status(_) => None,
    };
    if let Some(v) = line {
        out.line(v).await;
    }
}

/// stdout, one JSON object a line, each flushed before the next step: a script reading
/// the output sees a line's outcome before it sends more.
struct Output {
    stdout: tokio::io::Stdout,
    broken: bool,
}

impl Output {
    fn stdout() -> Output {
        Output {
            stdout: tokio::io::stdout(),
            broken: false,
        }
    }

    async fn line(&mut self, v: Value) {
        if self.broken {
            return;
        }
        let mut line = v.to_string();
        line.push('\n');
        if let Err(e) = self.stdout.write_all(line.as_bytes()).await {
            self.fail(e);
        } else if let Err(e) = self.stdout.flush().await {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: std::io::Error) {
        // The reader went away (a closed pipe): nothing more can be said to it.
        tracing::warn!(error = %e, "stdout closed; headless output stops");
        self.broken = true;
    }
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
