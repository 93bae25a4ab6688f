//! The screen fed by the live view: batches fold into the model, a catch-up shows in the
//! status bar until its end is reported, and a reload rebuilds the model.

use std::path::PathBuf;
use std::time::SystemTime;

use bytes::Bytes;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::*;
use crate::app::AppOp;
use crate::app::runtime::view::{BatchKind, EventBatch, Progress};
use crate::protocol::{Event, NodeId, VectorClock};

fn status() -> StatusInfo {
    StatusInfo {
        name: "ann".into(),
        node_id: NodeId::from_u128(1),
        room: "kitchen".into(),
        listen: "10.0.0.1:7777".parse().expect("a valid address"),
        mdns: false,
        private: false,
        events: 0,
        nodes: 0,
        store_bytes: 0,
        clock: VectorClock::new(),
        data_dir: PathBuf::from("/tmp/gossip"),
        addresses: Vec::new(),
        sending: 0,
    }
}

fn rows(from: u64, to: u64) -> Vec<EventRow> {
    (from..=to)
        .map(|seq| EventRow {
            at: SystemTime::UNIX_EPOCH,
            event: Event {
                id: uuid::Uuid::now_v7(),
                origin: NodeId::from_u128(2),
                seq,
                hlc: seq,
                created_at_ms: 0,
                payload: Bytes::from(AppOp::chat(&format!("m{seq}")).unwrap().encode().unwrap()),
                sig: Bytes::new(),
            },
            from: Some(NodeId::from_u128(2)),
            age_ms: 0,
        })
        .collect()
}

fn screen(app: &TuiApp) -> String {
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).expect("a test terminal");
    terminal.draw(|f| render(app, f)).expect("a frame");
    let buffer = terminal.backend().buffer().clone();
    buffer
        .content()
        .chunks(120)
        .map(|line| line.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_catch_up_shows_in_the_status_bar_until_its_end() {
    let mut app = TuiApp::new(status(), SystemTime::UNIX_EPOCH);
    app.update(Action::Resize(120, 30));
    let progress = Progress {
        shown: 1500,
        held: 3000,
        catching_up: true,
    };
    app.update(Action::Session(SessionEvent::Events(EventBatch::new(
        rows(1, 1500),
        progress,
    ))));
    assert_eq!(app.model().counts().events, 1500);
    assert_eq!(
        app.events.len(),
        LOG_LEN,
        "the events log keeps its newest rows"
    );
    assert!(screen(&app).contains("catching up: 1500 of 3000"));
    let done = Progress {
        shown: 3000,
        held: 3000,
        catching_up: false,
    };
    app.update(Action::Session(SessionEvent::Events(EventBatch::new(
        rows(1501, 3000),
        progress,
    ))));
    app.update(Action::Session(SessionEvent::Progress(done)));
    assert_eq!(app.model().counts().events, 3000);
    assert!(!screen(&app).contains("catching up"));
}

#[test]
fn a_reload_rebuilds_the_model_from_its_rows() {
    let mut app = TuiApp::new(status(), SystemTime::UNIX_EPOCH);
    app.update(Action::Session(SessionEvent::Events(EventBatch::new(
        rows(1, 10),
        Progress::default(),
    ))));
    let logged = app.events.len();
    let mut reload = EventBatch::new(rows(1, 4), Progress::default());
    reload.kind = BatchKind::Reload { first: true };
    app.update(Action::Session(SessionEvent::Events(reload)));
    assert_eq!(app.model().counts().events, 4);
    assert_eq!(app.events.len(), logged, "a reload is not new events");
}
