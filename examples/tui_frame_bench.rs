//! Frame time of the gossip-chat screen with a big history: 100,000 chat messages from 10
//! authors and 1,000 list items, drawn on a 160x48 `TestBackend`.
//!
//!     cargo run --release --example tui_frame_bench
//!
//! Prints the median and p99 over 200 frames for: the screen at rest, a new message folded
//! before every frame, the chat scrolled back 50 pages, and the list focused with the
//! selection in its middle.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use gossip::app::runtime::view::{EventRow, SessionEvent, StatusInfo};
use gossip::app::tui::{Action, TuiApp, render};
use gossip::app::{AppOp, Model};
use gossip::protocol::{Event, NodeId, VectorClock};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use uuid::Uuid;

const MESSAGES: u64 = 100_000;
const ITEMS: u64 = 1_000;
const AUTHORS: u64 = 10;
const FRAMES: usize = 200;

fn row(origin: NodeId, seq: u64, hlc: u64, op: &AppOp) -> EventRow {
    let payload = op.encode().unwrap_or_default();
    EventRow {
        at: SystemTime::now(),
        event: Event {
            id: Uuid::now_v7(),
            origin,
            seq,
            hlc,
            created_at_ms: 1_700_000_000_000 + hlc * 1000,
            payload: Bytes::from(payload),
            sig: Bytes::new(),
        },
        from: None,
        age_ms: 0,
    }
}

fn history() -> (Vec<EventRow>, Vec<u64>) {
    let author = |i: u64| NodeId::from_u128(u128::from(i + 1) << 64);
    let mut seqs = vec![0u64; AUTHORS as usize];
    let mut rows = Vec::new();
    let mut hlc = 0;
    let mut next = |i: u64, seqs: &mut Vec<u64>| {
        seqs[i as usize] += 1;
        hlc += 1;
        (author(i), seqs[i as usize], hlc)
    };
    for i in 0..AUTHORS {
        let (o, s, l) = next(i, &mut seqs);
        let op = AppOp::nick(&format!("author{i}")).unwrap_or(AppOp::Nick { name: "x".into() });
        rows.push(row(o, s, l, &op));
    }
    let mut model = Model::new();
    for n in 0..ITEMS {
        let (o, s, l) = next(n % AUTHORS, &mut seqs);
        let op = match model.new_item_op(&format!("item {n}: something to buy"), None) {
            Ok(op) => op,
            Err(e) => panic!("item op: {e}"),
        };
        let r = row(o, s, l, &op);
        model.apply(&r.event);
        rows.push(r);
    }
    for n in 0..MESSAGES {
        let (o, s, l) = next(n % AUTHORS, &mut seqs);
        // Every seventh message is long enough to wrap.
        let text = if n % 7 == 0 {
            format!(
                "message {n}: {}",
                "a fairly long sentence that wraps. ".repeat(4)
            )
        } else {
            format!("message {n}: hello there")
        };
        let op = AppOp::chat(&text).unwrap_or(AppOp::Chat { text: "x".into() });
        rows.push(row(o, s, l, &op));
    }
    (rows, seqs)
}

fn stats(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<40} median {:>8.1?}  p99 {:>8.1?}  max {:>8.1?}",
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}

fn frames(app: &mut TuiApp, mut before: impl FnMut(&mut TuiApp, usize)) -> Vec<Duration> {
    let mut terminal = match Terminal::new(TestBackend::new(160, 48)) {
        Ok(t) => t,
        Err(e) => panic!("test terminal: {e}"),
    };
    (0..FRAMES)
        .map(|i| {
            let started = Instant::now();
            before(app, i);
            if let Err(e) = terminal.draw(|f| render(app, f)) {
                panic!("draw: {e}");
            }
            started.elapsed()
        })
        .collect()
}

fn main() {
    let (rows, seqs) = history();
    let status = StatusInfo {
        name: "author0".into(),
        node_id: NodeId::from_u128(1 << 64),
        room: "bench".into(),
        listen: "127.0.0.1:7777".parse().unwrap_or_else(|e| panic!("{e}")),
        mdns: true,
        private: false,
        events: rows.len() as u64,
        nodes: AUTHORS,
        store_bytes: 20 << 20,
        clock: VectorClock::new(),
        data_dir: std::env::temp_dir(),
        addresses: Vec::new(),
        sending: 0,
    };
    let started = Instant::now();
    let mut app = TuiApp::new(status, SystemTime::now());
    app.load(&rows);
    app.update(Action::Resize(160, 48));
    println!(
        "folded {} events ({MESSAGES} messages, {ITEMS} items) in {:.2?}; {FRAMES} frames at 160x48 each:",
        rows.len(),
        started.elapsed()
    );

    stats("at rest (bottom of the chat)", frames(&mut app, |_, _| {}));

    let author = NodeId::from_u128(1 << 64);
    let mut seq = seqs[0];
    let mut hlc = rows.len() as u64;
    stats(
        "a new message before each frame",
        frames(&mut app, |app, i| {
            seq += 1;
            hlc += 1;
            let op = AppOp::chat(&format!("live {i}")).unwrap_or(AppOp::Chat { text: "x".into() });
            app.update(Action::Session(SessionEvent::Created(row(
                author, seq, hlc, &op,
            ))));
        }),
    );

    for _ in 0..50 {
        app.update(Action::PageUp);
    }
    stats("chat scrolled back 50 pages", frames(&mut app, |_, _| {}));
    app.update(Action::Escape);
    for _ in 0..60 {
        app.update(Action::PageDown);
    }

    app.update(Action::FocusNext);
    app.update(Action::Select(ITEMS as isize / 2));
    stats(
        "list focused, selection at item 500",
        frames(&mut app, |_, _| {}),
    );
}
