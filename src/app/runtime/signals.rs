//! Typing and presence notes between the session and the node: sent as the library's
//! ephemeral messages, received into [`SessionEvent::Signal`]. Never stored, so never in
//! `export` or the history.

use std::time::SystemTime;

use tokio::sync::broadcast;

use super::session::{Session, SessionError};
use super::view::{SessionEvent, SignalNote};
use crate::app::activity::{SIGNAL_TTL, Signal};

impl Session {
    /// Sends `signal` to the connected peers (and one relay further). Returns how many
    /// direct peers it went to.
    pub async fn signal(&self, signal: &Signal) -> Result<usize, SessionError> {
        Ok(self
            .node()
            .broadcast_ephemeral(signal.encode(), SIGNAL_TTL)
            .await?)
    }

    /// Forwards the node's ephemeral notes that are gossip-chat signals to the screen.
    pub(super) fn spawn_signal_forwarder(&self) {
        let mut notes = self.node().on_ephemeral();
        let this = self.clone();
        self.spawn(async move {
            let mut refused: u64 = 0;
            loop {
                match notes.recv().await {
                    Ok(note) => match Signal::decode(&note.payload) {
                        Ok(signal) => this.emit(SessionEvent::Signal(SignalNote {
                            at: SystemTime::now(),
                            who: note.origin,
                            signal,
                        })),
                        Err(e) => {
                            refused += 1;
                            tracing::debug!(origin = %note.origin, error = %e, refused, "a note that is not a signal");
                        }
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        this.warn(format!(
                            "{n} typing/presence notes were not shown (the screen fell behind)"
                        ));
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}
