//! `gossip-chat --headless`: the scripting interface.
//!
//! Each stdin line is a chat message; lines starting with `/` are commands. stdout gets one
//! JSON object per line: `ready` once, then an `event` per event created or received, a
//! `peer` per peer change, `notice` / `warning` / `error` lines, and `state` on request. EOF
//! on stdin keeps the node running until SIGINT/SIGTERM (or `/quit`), which shut it down
//! cleanly. The shapes are documented in the README and kept stable.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::command::{self, Front, Request};
use super::session::Session;
use super::view::{EventRow, PeerRow, Presence, PresenceNote, SessionEvent, WhoisInfo};
use crate::app::{Model, payload_json};
use crate::protocol::NodeId;

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

/// Runs the headless loop until `/quit` or a signal; returns once the session is down.
pub async fn run(
    session: Session,
    mut events: mpsc::Receiver<SessionEvent>,
) -> std::io::Result<()> {
    let (out, out_rx) = mpsc::channel::<Value>(1024);
    let writer = tokio::spawn(write_lines(out_rx));
    let mut model = Model::new();
    for row in session.history().await.unwrap_or_default() {
        model.apply(&row.event);
    }
    let _ = out
        .send(json!({
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
    let mut stdin_open = true;
    let mut peers: HashMap<NodeId, PeerRow> = HashMap::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            _ = &mut stop => break,
            line = lines.recv(), if stdin_open => match line {
                Some(line) => {
                    if !handle_line(&line, &session, &model, &out).await {
                        break;
                    }
                }
                // EOF: keep running until a signal, as a daemon would.
                None => stdin_open = false,
            },
            event = events.recv() => match event {
                Some(event) => on_session_event(event, &mut model, &mut peers, &out).await,
                None => break,
            },
        }
    }
    session.shutdown().await;
    drop(out);
    let _ = writer.await;
    Ok(())
}

/// Handles one stdin line; false means quit.
async fn handle_line(
    line: &str,
    session: &Session,
    model: &Model,
    out: &mpsc::Sender<Value>,
) -> bool {
    let reply = match command::interpret(line, Front::Headless, model, session.node_id()) {
        Ok(Request::Nothing) => None,
        Ok(Request::Op(op)) => match session.submit(&op).await {
            Ok(_) => None,
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
        let _ = out.send(v).await;
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
    out: &mpsc::Sender<Value>,
) {
    let line = match event {
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
                    let _ = out.send(peer_json(row)).await;
                }
            }
            let ids: Vec<NodeId> = rows.iter().map(|r| r.id).collect();
            for gone in peers.keys().filter(|id| !ids.contains(id)) {
                let _ = out
                    .send(json!({"type": "peer", "id": gone.to_string(), "state": "removed"}))
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
        let _ = out.send(v).await;
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

async fn write_lines(mut rx: mpsc::Receiver<Value>) {
    let mut stdout = tokio::io::stdout();
    while let Some(v) = rx.recv().await {
        let mut line = v.to_string();
        line.push('\n');
        if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
            return;
        }
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
