//! `--demo N`: local bot nodes that join the user's room over real TCP on 127.0.0.1, each
//! with a real file store in a temporary directory, chatting and editing the list now and
//! then, so one person sees every panel alive.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::session::{Session, SessionOptions};
use super::view::{BatchKind, SessionEvent};
use crate::app::{AppOp, Model};
use crate::store::file::FsyncPolicy;

const NAMES: &[&str] = &["ada", "grace", "linus", "barbara", "ken", "radia", "edsger"];
const LINES: &[&str] = &[
    "anyone up for lunch?",
    "pushed the fix, have a look",
    "the printer on floor 2 is jammed again",
    "who took the last coffee filter",
    "meeting moved to 3pm",
    "nice, that works on my laptop too",
    "brb",
    "does the wifi feel slow to anyone else?",
];
const ITEMS: &[&str] = &[
    "coffee beans",
    "milk",
    "whiteboard markers",
    "HDMI adapter",
    "fix the flaky test",
    "book the big room",
    "water the plant",
];

/// The running bots.
pub struct Demo {
    bots: Vec<(Session, JoinHandle<()>)>,
    dirs: Vec<PathBuf>,
}

impl Demo {
    /// Starts `n` bots that dial `main`.
    pub async fn start(n: usize, main: &Session) -> Result<Demo, String> {
        let target = format!("127.0.0.1:{}", main.listen_addr().port());
        let mut demo = Demo {
            bots: Vec::new(),
            dirs: Vec::new(),
        };
        for i in 0..n {
            let dir =
                std::env::temp_dir().join(format!("gossip-chat-demo-{}-{i}", std::process::id()));
            demo.dirs.push(dir.clone());
            let name = format!("{}-bot", NAMES[i % NAMES.len()]);
            let opts = SessionOptions {
                name: name.clone(),
                name_given: true,
                room: main.options().room.clone(),
                port: 0,
                listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                data_dir: dir,
                peers: vec![target.clone()],
                mdns: false,
                fsync: FsyncPolicy::Never,
                room_key: main.options().room_key.clone(),
                store: main.options().store,
                blobs: main.options().blobs,
            };
            let (bot, events) = match Session::start(opts).await {
                Ok(s) => s,
                Err(e) => {
                    demo.stop().await;
                    return Err(format!("demo bot {name}: {e}"));
                }
            };
            let task = tokio::spawn(behave(bot.clone(), events, name, i as u64));
            demo.bots.push((bot, task));
        }
        Ok(demo)
    }

    /// Stops the bots and removes their stores.
    pub async fn stop(self) {
        for (bot, task) in self.bots {
            task.abort();
            bot.shutdown().await;
        }
        for dir in self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One bot: a nick, then now and then a chat line, a new item, or a toggle.
async fn behave(bot: Session, mut events: mpsc::Receiver<SessionEvent>, name: String, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed ^ crate::node::now_ms());
    let mut model = Model::new();
    for row in bot.open_view().await.unwrap_or_default() {
        model.apply(&row.event);
    }
    if let Ok(op) = AppOp::nick(&name) {
        let _ = bot.submit(&op).await;
    }
    loop {
        let wait = Duration::from_millis(rng.random_range(2500..7000));
        let deadline = tokio::time::Instant::now() + wait;
        // Keep the bot's model current while it waits.
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                e = events.recv() => match e {
                    Some(SessionEvent::Events(batch)) => {
                        if batch.kind == (BatchKind::Reload { first: true }) {
                            model = Model::new();
                        }
                        for r in &batch.rows {
                            model.apply(&r.event);
                        }
                    }
                    Some(_) => {}
                    None => return,
                },
            }
        }
        let op = match rng.random_range(0..10) {
            0..=5 => LINES.choose(&mut rng).and_then(|l| AppOp::chat(l).ok()),
            6 | 7 => ITEMS
                .choose(&mut rng)
                .and_then(|t| model.new_item_op(t, None).ok()),
            _ => {
                let ids: Vec<_> = model.list().map(|i| i.id).collect();
                ids.choose(&mut rng)
                    .and_then(|id| model.toggle_op(*id).ok())
            }
        };
        if let Some(op) = op
            && let Err(e) = bot.submit(&op).await
        {
            tracing::debug!(bot = %name, error = %e, "demo bot op refused");
        }
    }
}
