//! The session's way to its screen: updates in order, never blocking the node, never lost
//! without saying so.
//!
//! Most updates go straight into the screen's bounded channel. When it is full (a screen
//! busy drawing a large catch-up), they wait in a bounded queue, in order, and a pump task
//! feeds them in as the screen reads. If even that queue is full, the update is counted and
//! the screen is told how many it missed, once there is room again: a screen that falls far
//! behind learns it, and the node's memory stays bounded.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::{Notify, mpsc};

use super::view::SessionEvent;

/// How many updates may wait for a full screen channel.
pub const MAX_WAITING: usize = 1024;

#[derive(Default)]
struct Waiting {
    queue: VecDeque<SessionEvent>,
    /// Updates that found the queue full too.
    lost: u64,
    /// Whether the pump holds an update it took but has not handed over yet.
    in_hand: bool,
}

/// The sending side of the screen channel, with its overflow queue.
pub struct Outbox {
    out: mpsc::Sender<SessionEvent>,
    waiting: Mutex<Waiting>,
    wake: Notify,
}

impl Outbox {
    /// An outbox over `out`. Run [`Outbox::pump`] in a task for the overflow to drain.
    pub fn new(out: mpsc::Sender<SessionEvent>) -> Self {
        Outbox {
            out,
            waiting: Mutex::new(Waiting::default()),
            wake: Notify::new(),
        }
    }

    /// The channel itself, for senders that wait for room (the live view's feed).
    pub fn sender(&self) -> &mpsc::Sender<SessionEvent> {
        &self.out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `event` without waiting: now if there is room and nothing waits before it,
    /// else after what waits.
    pub fn send(&self, event: SessionEvent) {
        let mut w = self.lock();
        let event = if w.queue.is_empty() && !w.in_hand {
            match self.out.try_send(event) {
                Ok(()) => return,
                // No screen any more: nothing to tell.
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(event)) => event,
            }
        } else {
            event
        };
        if w.queue.len() < MAX_WAITING {
            w.queue.push_back(event);
        } else {
            w.lost += 1;
        }
        drop(w);
        self.wake.notify_one();
    }

    /// Feeds waiting updates to the screen as it reads, in order; ends when the screen's
    /// channel closes.
    pub async fn pump(&self) {
        loop {
            self.wake.notified().await;
            loop {
                let next = {
                    let mut w = self.lock();
                    let next = w.queue.pop_front().or_else(|| {
                        (w.lost > 0).then(|| {
                            let n = std::mem::take(&mut w.lost);
                            SessionEvent::Warning(format!(
                                "{n} screen updates were not shown (the screen fell behind)"
                            ))
                        })
                    });
                    w.in_hand = next.is_some();
                    next
                };
                let Some(event) = next else { break };
                let sent = self.out.send(event).await;
                self.lock().in_hand = false;
                if sent.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(i: usize) -> SessionEvent {
        SessionEvent::Notice(i.to_string())
    }

    #[tokio::test]
    async fn a_full_screen_gets_every_update_in_order_later() {
        let (tx, mut rx) = mpsc::channel(2);
        let outbox = std::sync::Arc::new(Outbox::new(tx));
        for i in 0..10 {
            outbox.send(notice(i));
        }
        let pump = tokio::spawn({
            let o = outbox.clone();
            async move { o.pump().await }
        });
        let mut got = Vec::new();
        while got.len() < 10 {
            match rx.recv().await {
                Some(SessionEvent::Notice(n)) => got.push(n.parse::<usize>().unwrap()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        // Sent while the pump is idle and the channel has room: straight through.
        outbox.send(notice(10));
        assert_eq!(rx.recv().await, Some(notice(10)));
        pump.abort();
    }

    #[tokio::test]
    async fn beyond_the_queue_updates_are_counted_and_reported() {
        let (tx, mut rx) = mpsc::channel(1);
        let outbox = std::sync::Arc::new(Outbox::new(tx));
        for i in 0..(1 + MAX_WAITING + 5) {
            outbox.send(notice(i));
        }
        let pump = tokio::spawn({
            let o = outbox.clone();
            async move { o.pump().await }
        });
        let mut last = None;
        for _ in 0..(1 + MAX_WAITING + 1) {
            last = rx.recv().await;
        }
        assert_eq!(
            last,
            Some(SessionEvent::Warning(
                "5 screen updates were not shown (the screen fell behind)".into()
            ))
        );
        pump.abort();
    }
}
