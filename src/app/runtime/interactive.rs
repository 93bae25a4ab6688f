//! The interactive mode: the terminal UI on a running session.
//!
//! The screen (`tui`) knows only two channels; this module connects them to the session:
//! commands from the screen become ops and dials, and the session's events reach the
//! screen through a relay that also ends the screen on SIGTERM (the terminal is restored by
//! the screen itself when its event channel closes).

use tokio::sync::mpsc;

use super::config::ScreenOptions;
use super::session::Session;
use super::view::{EventRow, SessionEvent, UiCommand};
use crate::app::{AppOp, tui};
use crate::protocol::NodeId;

/// Capacity of the screen -> session command channel.
const COMMANDS_CAPACITY: usize = 64;

/// Runs the TUI until the user quits or a signal arrives, then stops the session.
/// `screen` carries the settings the TUI reads (bell, UTC, theme, time format).
pub async fn run(
    session: Session,
    events: mpsc::Receiver<SessionEvent>,
    screen: ScreenOptions,
) -> std::io::Result<()> {
    let history = match session.open_view().await {
        Ok(rows) => rows,
        Err(e) => {
            session.warn(format!(
                "cannot read the store: {e}; its events follow as they are read"
            ));
            Vec::new()
        }
    };
    let current = latest_nick(&history, session.node_id());
    session.ensure_nick(current.as_deref()).await;
    let status = session.status().await;
    let (commands_tx, commands_rx) = mpsc::channel(COMMANDS_CAPACITY);
    let (screen_tx, screen_rx) = mpsc::channel(super::session::EVENTS_CAPACITY);
    let relay = tokio::spawn(relay_until_signal(events, screen_tx));
    let worker = tokio::spawn(serve_commands(session.clone(), commands_rx));
    let result = tui::run(history, status, screen, screen_rx, commands_tx).await;
    relay.abort();
    worker.abort();
    session.shutdown().await;
    result
}

/// The nick our own events last set (by HLC order), if any.
fn latest_nick(history: &[EventRow], me: NodeId) -> Option<String> {
    history
        .iter()
        .rev()
        .filter(|r| r.event.origin == me)
        .find_map(|r| match AppOp::decode(&r.event.payload) {
            Ok(AppOp::Nick { name }) => Some(name),
            _ => None,
        })
}

/// Passes session events to the screen until a signal (or the session) ends it; dropping
/// the sender then closes the screen cleanly.
async fn relay_until_signal(
    mut events: mpsc::Receiver<SessionEvent>,
    screen: mpsc::Sender<SessionEvent>,
) {
    let mut stop = std::pin::pin!(super::headless::shutdown_signal());
    loop {
        tokio::select! {
            _ = &mut stop => return,
            e = events.recv() => match e {
                Some(e) => {
                    if screen.send(e).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
        }
    }
}

/// Carries out what the screen asks.
async fn serve_commands(session: Session, mut commands: mpsc::Receiver<UiCommand>) {
    while let Some(command) = commands.recv().await {
        match command {
            UiCommand::Submit(op) => {
                if let Err(e) = session.submit(&op).await {
                    session.warn(format!("not sent: {e}"));
                }
            }
            UiCommand::Connect(addr) => session.connect(addr),
            UiCommand::Unpeer(addr) => {
                let done = session.unpeer(&addr);
                session.notice(done);
            }
            UiCommand::Forget => {
                let n = session.forget();
                session.notice(format!("forgot {n} offline peer(s)"));
            }
            UiCommand::Whois(name) => match session.whois(&name) {
                Ok(found) => {
                    for w in found {
                        session.notice(w.to_string());
                    }
                }
                Err(e) => session.warn(e),
            },
            UiCommand::SendFile(path) => {
                let session = session.clone();
                // Hashing a large file takes a while: the next commands need not wait.
                tokio::spawn(async move {
                    if let Err(e) = session.send_file(&path).await {
                        session.warn(format!("not sent: {e}"));
                    }
                });
            }
            UiCommand::SaveFile(request) => session.save_file(request),
            UiCommand::Quit => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Event;
    use std::time::SystemTime;

    fn row(origin: u128, seq: u64, op: AppOp) -> EventRow {
        EventRow {
            at: SystemTime::UNIX_EPOCH,
            event: Event {
                id: uuid::Uuid::now_v7(),
                origin: NodeId::from_u128(origin),
                seq,
                hlc: seq,
                created_at_ms: 0,
                payload: op.encode().unwrap().into(),
                sig: Default::default(),
            },
            from: None,
            age_ms: 0,
        }
    }

    #[test]
    fn the_latest_own_nick_is_found() {
        let me = NodeId::from_u128(1);
        let history = vec![
            row(1, 1, AppOp::nick("old").unwrap()),
            row(1, 2, AppOp::chat("hi").unwrap()),
            row(2, 3, AppOp::nick("someone else").unwrap()),
            row(1, 4, AppOp::nick("new").unwrap()),
            row(2, 5, AppOp::nick("not me").unwrap()),
        ];
        assert_eq!(latest_nick(&history, me).as_deref(), Some("new"));
        assert_eq!(latest_nick(&history[..2], me).as_deref(), Some("old"));
        assert_eq!(latest_nick(&[], me), None);
    }
}
