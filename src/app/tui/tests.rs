//! Snapshot tests of every panel and of the whole screen (through ratatui's `TestBackend`,
//! with a fixed "now"), and tests of the key map and the update function.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use uuid::Uuid;

use super::*;
use crate::app::AppOp;
use crate::app::runtime::view::{ExchangeRow, PeerRow};
use crate::node::{Direction, ExchangeResult, PeerState};
use crate::protocol::{Event, NodeId, VectorClock};

/// 2023-11-14 22:13:20 UTC.
const NOW_SECS: u64 = 1_700_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn ann() -> NodeId {
    NodeId::from_u128(0xa11c_e000_0000_0000_0000_0000_0000_0001)
}

fn bob() -> NodeId {
    NodeId::from_u128(0xb0b0_0000_0000_0000_0000_0000_0000_0002)
}

fn cy() -> NodeId {
    NodeId::from_u128(0xc1c1_0000_0000_0000_0000_0000_0000_0003)
}

/// An event at logical time `tick`: created one minute per tick, ending a little before
/// "now", and stamped with the HLC of that creation time.
fn event(origin: NodeId, seq: u64, tick: u64, op: &AppOp) -> Event {
    let created_at_ms = (NOW_SECS - 3600 + tick * 60) * 1000;
    Event {
        id: Uuid::from_u128((origin.0.as_u128() >> 64 << 64) | u128::from(seq)),
        origin,
        seq,
        hlc: crate::protocol::Hlc::pack(created_at_ms, 0).0,
        created_at_ms,
        payload: Bytes::from(op.encode().expect("test ops are valid")),
        sig: Bytes::new(),
    }
}

fn row(ev: Event, from: Option<NodeId>, secs_ago: u64) -> EventRow {
    EventRow {
        at: now() - Duration::from_secs(secs_ago),
        event: ev,
        from,
        age_ms: if from.is_some() { 140 } else { 0 },
    }
}

fn status(mdns: bool) -> StatusInfo {
    let mut clock = VectorClock::new();
    clock.set(ann(), 4);
    clock.set(bob(), 4);
    StatusInfo {
        name: "ann".into(),
        node_id: ann(),
        room: "kitchen".into(),
        listen: "10.0.0.1:7777".parse().expect("a valid address"),
        mdns,
        private: false,
        events: 8,
        nodes: 2,
        store_bytes: 12_345,
        clock,
        data_dir: PathBuf::from("/tmp/gossip"),
        addresses: vec!["10.0.0.1:7777".parse().expect("a valid address")],
        sending: 0,
    }
}

fn item_id(n: u128) -> Uuid {
    Uuid::from_u128(0x1000 + n)
}

/// The events of a small session: two nicks, chat, three list items (one checked).
fn history() -> Vec<EventRow> {
    let ops: Vec<(NodeId, AppOp)> = vec![
        (ann(), AppOp::nick("ann").expect("valid")),
        (bob(), AppOp::nick("bob").expect("valid")),
        (
            ann(),
            AppOp::chat("hello bob, are you there?").expect("valid"),
        ),
        (
            bob(),
            AppOp::chat("yes! making the shopping list now").expect("valid"),
        ),
        (
            bob(),
            AppOp::list_add(item_id(1), "milk", "V").expect("valid"),
        ),
        (
            bob(),
            AppOp::list_add(item_id(2), "eggs", "k").expect("valid"),
        ),
        (
            ann(),
            AppOp::list_add(item_id(3), "bread", "r").expect("valid"),
        ),
        (ann(), AppOp::list_check(item_id(2), true)),
        (
            bob(),
            AppOp::chat(
                "a long message that wraps over more than one row of the chat panel, \
                 so the continuation rows are indented under the text",
            )
            .expect("valid"),
        ),
    ];
    let mut seqs = std::collections::BTreeMap::new();
    ops.into_iter()
        .enumerate()
        .map(|(i, (origin, op))| {
            let seq = seqs.entry(origin).or_insert(0u64);
            *seq += 1;
            let from = (origin != ann()).then_some(bob());
            let secs_ago = 60 - 5 * i as u64;
            row(event(origin, *seq, i as u64 + 1, &op), from, secs_ago)
        })
        .collect()
}

fn peers() -> Vec<PeerRow> {
    let peer = |id, name: &str, addr: &str, state, seen: Option<u64>| PeerRow {
        id,
        name: name.into(),
        addr: addr.into(),
        state,
        last_seen: seen.map(|s| now() - Duration::from_secs(s)),
        rtt: seen.map(|_| Duration::from_micros(1800)),
        ok: 12,
        failed: if state == PeerState::Suspect { 2 } else { 0 },
        events_received: 5,
        bytes_in: 0,
        bytes_out: 0,
        last_error: None,
        dial: None,
    };
    vec![
        peer(bob(), "bob", "10.0.0.2:7777", PeerState::Alive, Some(3)),
        peer(cy(), "cy", "10.0.0.3:7777", PeerState::Suspect, Some(75)),
        peer(
            NodeId::from_u128(0xd0d0 << 96),
            "dee",
            "10.0.0.4:7777",
            PeerState::Discovered,
            None,
        ),
    ]
}

fn exchange(
    secs_ago: u64,
    peer: NodeId,
    name: &str,
    out: bool,
    error: Option<&str>,
) -> ExchangeRow {
    ExchangeRow {
        at: now() - Duration::from_secs(secs_ago),
        peer,
        peer_name: name.into(),
        result: ExchangeResult {
            peer,
            direction: if out {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            success: error.is_none(),
            events_sent: 1,
            events_received: if error.is_none() { 3 } else { 0 },
            bytes: 1_536,
            duration: Duration::from_millis(4),
            error: error.map(str::to_string),
        },
    }
}

/// A screen with the history folded and live rows in every panel.
fn busy_app() -> TuiApp {
    let mut app = TuiApp::new(status(true), now());
    let history = history();
    let (stored, live) = history.split_at(4);
    app.load(stored);
    for r in live {
        let ev = if r.from.is_some() {
            SessionEvent::Received(r.clone())
        } else {
            SessionEvent::Created(r.clone())
        };
        app.update(Action::Session(ev));
    }
    app.update(Action::Session(SessionEvent::Peers(peers())));
    for x in [
        exchange(20, bob(), "bob", true, None),
        exchange(12, cy(), "cy", true, Some("connection refused")),
        exchange(2, bob(), "bob", false, None),
    ] {
        app.update(Action::Session(SessionEvent::Exchange(x)));
    }
    app.update(Action::Tick(now()));
    app
}

fn resized(mut app: TuiApp, w: u16, h: u16) -> TuiApp {
    app.update(Action::Resize(w, h));
    app
}

fn buffer_text(terminal: &Terminal<TestBackend>) -> String {
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The screen as text.
fn screen(app: &TuiApp, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("a test terminal");
    terminal
        .draw(|f| render(app, f))
        .expect("drawing to a test backend");
    buffer_text(&terminal)
}

/// One panel, drawn alone in a `w` x `h` area, as text.
fn panel(app: &TuiApp, w: u16, h: u16, draw: fn(&TuiApp, &mut ratatui::Frame, Rect)) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("a test terminal");
    terminal
        .draw(|f| draw(app, f, f.area()))
        .expect("drawing to a test backend");
    buffer_text(&terminal)
}

/// Compares `actual` with `tests/snapshots/tui_NAME.txt`. `UPDATE_SNAPSHOTS=1` rewrites the
/// file instead (then review the diff).
fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("tui_{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("a parent dir")).expect("mkdir snapshots");
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "snapshot {} differs (UPDATE_SNAPSHOTS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn key(app: &mut TuiApp, code: KeyCode) -> Vec<UiCommand> {
    key_mod(app, code, KeyModifiers::NONE)
}

/// The commands a key gives, without typing and presence notes (their own tests below
/// look at those, through [`key_all`]).
fn key_mod(app: &mut TuiApp, code: KeyCode, mods: KeyModifiers) -> Vec<UiCommand> {
    let mut cmds = key_all(app, code, mods);
    cmds.retain(|c| !matches!(c, UiCommand::Signal(_)));
    cmds
}

/// Every command a key gives.
fn key_all(app: &mut TuiApp, code: KeyCode, mods: KeyModifiers) -> Vec<UiCommand> {
    match map_key(app, &KeyEvent::new(code, mods)) {
        Some(action) => app.update(action),
        None => Vec::new(),
    }
}

fn type_str(app: &mut TuiApp, s: &str) {
    for c in s.chars() {
        assert!(key(app, KeyCode::Char(c)).is_empty());
    }
}

fn submit_line(app: &mut TuiApp, s: &str) -> Vec<UiCommand> {
    type_str(app, s);
    key(app, KeyCode::Enter)
}

/// Feeds ops back as if the session had stored them (as it does with `Submit`).
fn echo(app: &mut TuiApp, cmds: &[UiCommand], seq: &mut u64) {
    for cmd in cmds {
        if let UiCommand::Submit(op) = cmd {
            *seq += 1;
            let ev = event(ann(), 100 + *seq, 100 + *seq, op);
            app.update(Action::Session(SessionEvent::Created(row(ev, None, 0))));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Snapshots

#[test]
fn full_screen_80x24() {
    snapshot("full_80x24", &screen(&resized(busy_app(), 80, 24), 80, 24));
}

#[test]
fn full_screen_160x48() {
    snapshot(
        "full_160x48",
        &screen(&resized(busy_app(), 160, 48), 160, 48),
    );
}

#[test]
fn full_screen_160x48_events_tab_and_list_focus() {
    let mut app = resized(busy_app(), 160, 48);
    app.update(Action::SwitchLog);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('j'));
    snapshot("full_160x48_events", &screen(&app, 160, 48));
}

#[test]
fn narrow_screen_shows_the_log_when_it_has_focus() {
    let mut app = resized(busy_app(), 80, 24);
    for _ in 0..3 {
        key(&mut app, KeyCode::Tab);
    }
    assert_eq!(app.focus(), Focus::Log);
    let text = screen(&app, 80, 24);
    assert!(text.contains("connection refused"), "{text}");
    assert!(!text.contains("List 1/3"), "{text}");
    assert!(!text.contains("Chat (3)"), "{text}");
    snapshot("narrow_log_80x24", &text);
}

#[test]
fn empty_room_explains_how_to_get_company() {
    let app = resized(TuiApp::new(status(true), now()), 80, 24);
    let wide = screen(&app, 160, 48);
    assert!(
        wide.contains("Looking for peers on this LAN via mDNS, room `kitchen`"),
        "{wide}"
    );
    let text = screen(&app, 80, 24);
    assert!(text.contains("room `kitchen`"), "{text}");
    assert!(text.contains("--profile NAME"), "{text}");
    assert!(text.contains("--demo"), "{text}");
    snapshot("empty_80x24", &text);

    let app = TuiApp::new(status(false), now());
    let text = screen(&app, 160, 48);
    assert!(
        text.contains("mDNS is off: add a peer with /peer HOST:PORT"),
        "{text}"
    );
    assert!(
        text.contains("reach you with /peer 10.0.0.1:7777"),
        "{text}"
    );
    // A wildcard listen address is no use to type on another laptop.
    let mut st = status(false);
    st.listen = "0.0.0.0:4321".parse().expect("a valid address");
    let text = screen(&TuiApp::new(st, now()), 160, 48);
    assert!(text.contains("/peer THIS-LAPTOP-IP:4321"), "{text}");
}

/// Every text of the key map and the command table, found on the help pages at `w`x`h`
/// (scrolling with j), and the first page as a snapshot.
fn help_pages(w: u16, h: u16) -> String {
    let mut app = resized(busy_app(), w, h);
    key(&mut app, KeyCode::Char('?'));
    assert_eq!(app.popup(), Some(Popup::Help));
    let first = screen(&app, w, h);
    let mut seen = first.clone();
    for _ in 0..KEYMAP.len() + 3 * commands().count() {
        key(&mut app, KeyCode::Char('j'));
        seen.push_str(&screen(&app, w, h));
    }
    for b in KEYMAP.iter() {
        assert!(seen.contains(b.help), "{w}x{h}: help lacks {:?}", b.help);
    }
    for (name, _, what) in commands() {
        assert!(
            seen.contains(&format!("/{name}")),
            "{w}x{h}: help lacks /{name}"
        );
        // Long texts wrap over rows: look for their first row.
        let first = chat::wrap(what, 21, 21)[0];
        assert!(seen.contains(first), "{w}x{h}: help lacks {what}");
    }
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup(), None);
    first
}

#[test]
fn help_is_made_from_the_key_map_and_sized_to_the_screen() {
    let small = help_pages(60, 20);
    assert!(small.contains("j/k scroll"), "{small}");
    snapshot("help_60x20", &small);
    snapshot("help_80x24", &help_pages(80, 24));
    let big = help_pages(160, 48);
    // At 160x48 everything fits on one page, in columns.
    assert!(!big.contains("j/k scroll"), "{big}");
    assert!(big.contains("Ctrl-W, Alt-Bksp"), "{big}");
    snapshot("help_160x48", &big);
}

#[test]
fn clock_popup_names_every_origin() {
    let mut app = resized(busy_app(), 100, 30);
    app.update(Action::Clock);
    let text = screen(&app, 100, 30);
    assert!(text.contains("ann  4 (this laptop)"), "{text}");
    assert!(text.contains("bob  4"), "{text}");
}

#[test]
fn panel_chat() {
    snapshot("panel_chat", &panel(&busy_app(), 60, 9, chat::render));
}

#[test]
fn panel_list() {
    let mut app = busy_app();
    key(&mut app, KeyCode::Tab);
    snapshot("panel_list", &panel(&app, 34, 6, list::render));
}

#[test]
fn panel_peers() {
    snapshot("panel_peers", &panel(&busy_app(), 78, 6, peers::render));
}

#[test]
fn panel_exchanges() {
    snapshot(
        "panel_exchanges",
        &panel(&busy_app(), 90, 6, exchanges::render),
    );
}

#[test]
fn panel_events() {
    let mut app = busy_app();
    app.update(Action::SwitchLog);
    snapshot("panel_events", &panel(&app, 100, 9, events::render));
}

#[test]
fn panel_status() {
    snapshot("panel_status", &panel(&busy_app(), 120, 1, status::render));
}

#[test]
fn a_private_room_shows_a_lock_and_an_open_one_does_not() {
    let mut private = status(true);
    private.private = true;
    let mut app = busy_app();
    assert!(!panel(&app, 120, 1, status::render).contains('\u{1F512}'));
    app.update(Action::Session(SessionEvent::Status(private)));
    let bar = panel(&app, 120, 1, status::render);
    // The padlock is two cells wide: the test buffer shows a filler after it.
    assert!(
        bar.contains('\u{1F512}') && bar.contains("room kitchen"),
        "{bar}"
    );
}

#[test]
fn every_size_down_to_tiny_draws_without_panicking() {
    let app = busy_app();
    for (w, h) in [(80, 24), (99, 30), (100, 30), (40, 10), (10, 4), (1, 1)] {
        let app = resized(
            {
                let mut a = TuiApp::new(status(true), now());
                a.load(&history());
                a
            },
            w,
            h,
        );
        let text = screen(&app, w, h);
        assert_eq!(text.lines().count(), usize::from(h));
    }
    assert!(screen(&app, 80, 24).contains("room kitchen"));
}

// ---------------------------------------------------------------------------------------
// Keys and updates

#[test]
fn typing_and_enter_sends_a_chat_message() {
    let mut app = TuiApp::new(status(true), now());
    let cmds = submit_line(&mut app, "  hi there ");
    assert_eq!(
        cmds,
        vec![UiCommand::Submit(AppOp::Chat {
            text: "hi there".into()
        })]
    );
    assert!(app.input().is_empty());
    // Enter on an empty line sends nothing.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
}

#[test]
fn cursor_keys_edit_the_line() {
    let mut app = TuiApp::new(status(true), now());
    type_str(&mut app, "helo");
    key(&mut app, KeyCode::Left);
    type_str(&mut app, "l");
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Delete);
    type_str(&mut app, "H");
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.input().text(), "Hell");
    let cmds = key(&mut app, KeyCode::Enter);
    assert_eq!(
        cmds,
        vec![UiCommand::Submit(AppOp::chat("Hell").expect("valid"))]
    );
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input().text(), "Hell");
    key(&mut app, KeyCode::Down);
    assert_eq!(app.input().text(), "");
}

#[test]
fn slash_commands() {
    let mut app = TuiApp::new(status(true), now());
    assert_eq!(
        submit_line(&mut app, "/nick  Zoé "),
        vec![UiCommand::Submit(AppOp::Nick {
            name: "Zoé".into()
        })]
    );
    let cmds = submit_line(&mut app, "/add oat milk");
    match cmds.as_slice() {
        [UiCommand::Submit(AppOp::ListAdd { text, .. })] => assert_eq!(text, "oat milk"),
        other => panic!("expected a list add, got {other:?}"),
    }
    assert_eq!(
        submit_line(&mut app, "/peer 10.0.0.7:7777"),
        vec![UiCommand::Connect("10.0.0.7:7777".into())]
    );
    assert_eq!(
        app.flash(),
        Some(&Flash::Info("connecting to 10.0.0.7:7777…".into()))
    );
    assert_eq!(
        submit_line(&mut app, "//not a command"),
        vec![UiCommand::Submit(AppOp::Chat {
            text: "/not a command".into()
        })]
    );
    assert!(submit_line(&mut app, "/help").is_empty());
    assert_eq!(app.popup(), Some(Popup::Help));
    key(&mut app, KeyCode::Esc);
    assert_eq!(submit_line(&mut app, "/quit"), vec![UiCommand::Quit]);
    assert!(app.should_quit());
}

#[test]
fn bad_input_shows_an_error_and_keeps_the_line() {
    let mut app = TuiApp::new(status(true), now());
    for (line, error) in [
        ("/frobnicate", "unknown command /frobnicate"),
        ("/peer nowhere", "/peer HOST:PORT"),
        ("/nick", "/nick NAME: needs NAME"),
        ("/nick  ", "/nick NAME: needs NAME"),
        ("/quit now", "/quit: takes no arguments"),
        ("/state", "/state works only with --headless"),
        ("/add ", "/add TEXT: needs TEXT"),
    ] {
        assert!(submit_line(&mut app, line).is_empty(), "{line}");
        match app.flash() {
            Some(Flash::Error(msg)) => assert!(msg.contains(error), "{msg}"),
            other => panic!("{line}: expected an error, got {other:?}"),
        }
        assert_eq!(app.input().text(), line);
        key(&mut app, KeyCode::Esc);
        while !app.input().is_empty() {
            key(&mut app, KeyCode::Backspace);
        }
    }
    let long = "x".repeat(crate::app::model::op::MAX_TEXT_BYTES + 1);
    app.update(Action::Session(SessionEvent::Peers(peers())));
    assert!(submit_line(&mut app, &long).is_empty());
    assert!(matches!(app.flash(), Some(Flash::Error(m)) if m.contains("over the limit")));
    let text = screen(&app, 80, 24);
    assert!(text.contains("not sent: the text is"), "{text}");
}

#[test]
fn ctrl_c_quits() {
    let mut app = busy_app();
    key(&mut app, KeyCode::Tab);
    assert_eq!(
        key_mod(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL),
        vec![UiCommand::Quit]
    );
    assert!(app.should_quit());
}

#[test]
fn tab_cycles_focus_and_esc_returns_to_input() {
    let mut app = busy_app();
    let mut seen = vec![app.focus()];
    for _ in 0..4 {
        key(&mut app, KeyCode::Tab);
        seen.push(app.focus());
    }
    assert_eq!(
        seen,
        [
            Focus::Input,
            Focus::List,
            Focus::Peers,
            Focus::Log,
            Focus::Input
        ]
    );
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.focus(), Focus::Log);
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.log_tab, LogTab::Events);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.focus(), Focus::Input);
}

fn list_texts(app: &TuiApp) -> Vec<(String, bool)> {
    app.model()
        .list()
        .map(|i| (i.text.to_string(), i.done))
        .collect()
}

#[test]
fn list_keys_toggle_move_edit_add() {
    let mut app = busy_app();
    let mut seq = 0;
    // Position keys "V" < "k" < "r".
    assert_eq!(
        list_texts(&app),
        [
            ("milk".into(), false),
            ("eggs".into(), true),
            ("bread".into(), false)
        ]
    );
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.selected_item(), Some(item_id(1)));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected_item(), Some(item_id(3)));
    // Past the end the selection stays on the last item.
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.selected_item(), Some(item_id(3)));
    let cmds = key(&mut app, KeyCode::Char(' '));
    assert_eq!(
        cmds,
        vec![UiCommand::Submit(AppOp::ListCheck {
            item: item_id(3),
            done: true
        })]
    );
    echo(&mut app, &cmds, &mut seq);
    // Already at the bottom: nothing to send.
    assert!(key(&mut app, KeyCode::Char('J')).is_empty());
    // Move bread up, above eggs; the selection follows it.
    let cmds = key(&mut app, KeyCode::Char('K'));
    assert!(
        matches!(cmds.as_slice(), [UiCommand::Submit(AppOp::ListMove { item, .. })] if *item == item_id(3))
    );
    echo(&mut app, &cmds, &mut seq);
    assert_eq!(
        list_texts(&app),
        [
            ("milk".into(), false),
            ("bread".into(), true),
            ("eggs".into(), true)
        ]
    );
    assert_eq!(app.selected_item(), Some(item_id(3)));
    let cmds = key(&mut app, KeyCode::Char('J'));
    echo(&mut app, &cmds, &mut seq);
    assert_eq!(list_texts(&app)[2].0, "bread");
    // Edit: the input opens with the text.
    key(&mut app, KeyCode::Char('e'));
    assert_eq!(app.focus(), Focus::Input);
    assert_eq!(app.input().text(), "bread");
    type_str(&mut app, " rolls");
    let cmds = key(&mut app, KeyCode::Enter);
    assert_eq!(
        cmds,
        vec![UiCommand::Submit(AppOp::ListEdit {
            item: item_id(3),
            text: "bread rolls".into()
        })]
    );
    assert_eq!(app.focus(), Focus::List);
    echo(&mut app, &cmds, &mut seq);
    // Add: a new item at the bottom, selected once it arrives.
    key(&mut app, KeyCode::Char('a'));
    let cmds = submit_line(&mut app, "butter");
    echo(&mut app, &cmds, &mut seq);
    assert_eq!(
        app.selected_item()
            .and_then(|id| app.model().item(id))
            .map(|i| i.text),
        Some("butter")
    );
    assert_eq!(
        list_texts(&app),
        [
            ("milk".into(), false),
            ("eggs".into(), true),
            ("bread rolls".into(), true),
            ("butter".into(), false)
        ]
    );
    // Esc cancels an add without sending.
    key(&mut app, KeyCode::Char('a'));
    type_str(&mut app, "nope");
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.mode, InputMode::Chat);
    assert!(app.input().is_empty());
}

#[test]
fn remove_then_undo_restores_text_place_and_check() {
    let mut app = busy_app();
    let mut seq = 0;
    key(&mut app, KeyCode::Tab);
    assert!(matches!(
        app.update(Action::Undo).as_slice(),
        [] if matches!(app.flash(), Some(Flash::Error(m)) if m == "nothing to undo")
    ));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.selected_item(), Some(item_id(2)));
    let cmds = key(&mut app, KeyCode::Char('d'));
    assert_eq!(
        cmds,
        vec![UiCommand::Submit(AppOp::list_remove(item_id(2)))]
    );
    echo(&mut app, &cmds, &mut seq);
    assert_eq!(list_texts(&app).len(), 2);
    // The selection falls back to the row it was on.
    assert_eq!(app.selected_item(), Some(item_id(3)));
    let cmds = key(&mut app, KeyCode::Char('u'));
    let new_id = match cmds.as_slice() {
        [
            UiCommand::Submit(AppOp::ListAdd { item, text, pos }),
            UiCommand::Submit(AppOp::ListCheck {
                item: checked,
                done: true,
            }),
        ] => {
            assert_eq!((text.as_str(), pos.as_str()), ("eggs", "k"));
            assert_eq!(item, checked);
            assert_ne!(*item, item_id(2));
            *item
        }
        other => panic!("expected add + check, got {other:?}"),
    };
    echo(&mut app, &cmds, &mut seq);
    assert_eq!(
        list_texts(&app),
        [
            ("milk".into(), false),
            ("eggs".into(), true),
            ("bread".into(), false)
        ]
    );
    assert_eq!(app.selected_item(), Some(new_id));
    // One undo per remove.
    assert!(key(&mut app, KeyCode::Char('u')).is_empty());
}

fn chat_app(n: u64) -> TuiApp {
    let mut app = resized(TuiApp::new(status(true), now()), 80, 24);
    let events: Vec<EventRow> = (1..=n)
        .map(|i| {
            let op = AppOp::chat(&format!("message {i}")).expect("valid");
            row(event(bob(), i, i, &op), Some(bob()), 0)
        })
        .collect();
    app.load(&events);
    app
}

fn receive_chat(app: &mut TuiApp, seq: u64, text: &str) {
    let op = AppOp::chat(text).expect("valid");
    let r = row(event(cy(), seq, 10_000 + seq, &op), Some(cy()), 0);
    app.update(Action::Session(SessionEvent::Received(r)));
}

#[test]
fn chat_sticks_to_the_bottom_unless_scrolled_up() {
    let mut app = chat_app(200);
    let text = screen(&app, 80, 24);
    assert!(text.contains("message 200"), "{text}");
    receive_chat(&mut app, 1, "newest one");
    assert_eq!(app.chat_scroll(), 0);
    assert!(screen(&app, 80, 24).contains("newest one"));

    key(&mut app, KeyCode::PageUp);
    assert!(app.chat_scroll() > 0);
    let before = screen(&app, 80, 24);
    assert!(!before.contains("newest one"), "{before}");
    // New messages do not move what the user is reading.
    receive_chat(&mut app, 2, "while scrolled");
    let after = screen(&app, 80, 24);
    let body = |s: &str| -> Vec<String> {
        s.lines()
            .skip(1)
            .take(18)
            .map(|l| l.chars().take(40).collect())
            .collect()
    };
    assert_eq!(body(&before), body(&after));
    // Back down: following again.
    for _ in 0..3 {
        key(&mut app, KeyCode::PageDown);
    }
    assert_eq!(app.chat_scroll(), 0);
    assert!(screen(&app, 80, 24).contains("while scrolled"));
    // Scrolling back stops at the first message.
    for _ in 0..100 {
        app.update(Action::ScrollUp(50));
    }
    let top = screen(&app, 80, 24);
    assert!(
        top.contains("message 1\n") || top.contains("message 1 "),
        "{top}"
    );
}

#[test]
fn a_huge_chat_draws_only_what_shows() {
    let app = chat_app(100_000);
    let started = std::time::Instant::now();
    let text = screen(&app, 160, 48);
    assert!(text.contains("message 100000"), "{text}");
    // Generous for a debug build on a shared machine; a full walk would take far longer.
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[test]
fn logs_are_bounded() {
    let mut app = TuiApp::new(status(true), now());
    for i in 0..(LOG_LEN as u64 + 20) {
        app.update(Action::Session(SessionEvent::Exchange(exchange(
            0,
            bob(),
            "bob",
            true,
            None,
        ))));
        let op = AppOp::chat("x").expect("valid");
        let r = row(event(bob(), i + 1, i + 1, &op), Some(bob()), 0);
        app.update(Action::Session(SessionEvent::Received(r)));
    }
    assert_eq!(app.exchanges.len(), LOG_LEN);
    assert_eq!(app.events.len(), LOG_LEN);
    assert_eq!(
        app.events.back().map(|r| r.event.seq),
        Some(LOG_LEN as u64 + 20)
    );
    assert_eq!(app.model().chat().len(), LOG_LEN + 20);
}

#[test]
fn session_notices_and_warnings_show_under_the_input() {
    let mut app = busy_app();
    app.update(Action::Session(SessionEvent::Warning(
        "peer 10.0.0.9 refused".into(),
    )));
    assert!(screen(&app, 80, 24).contains("peer 10.0.0.9 refused"));
    app.update(Action::Session(SessionEvent::Notice(
        "connected to 10.0.0.9".into(),
    )));
    assert_eq!(
        app.flash(),
        Some(&Flash::Info("connected to 10.0.0.9".into()))
    );
}

#[test]
fn the_wheel_scrolls_the_panel_under_the_pointer() {
    use crossterm::event::{MouseEvent, MouseEventKind};
    let wheel = |app: &TuiApp, column, row, kind| {
        let ev = crossterm::event::Event::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        });
        map_event(app, &ev)
    };
    let mut app = chat_app(200);
    app.update(Action::Session(SessionEvent::Peers(peers())));
    // 80x24: chat on the left, list at the top right.
    let action = wheel(&app, 5, 5, MouseEventKind::ScrollUp).expect("an action");
    app.update(action);
    assert_eq!(app.chat_scroll(), 3);
    let action = wheel(&app, 5, 5, MouseEventKind::ScrollDown).expect("an action");
    app.update(action);
    assert_eq!(app.chat_scroll(), 0);
    // Over the peers panel: its selection moves, the chat stays.
    let action = wheel(&app, 60, 16, MouseEventKind::ScrollDown).expect("an action");
    app.update(action);
    assert_eq!((app.peers_row, app.chat_scroll()), (1, 0));
    assert_eq!(
        wheel(&app, 1, 1, MouseEventKind::Moved),
        None,
        "only the wheel acts"
    );
}

// ---------------------------------------------------------------------------------------
// The event loop, driven through a channel of terminal events and a TestBackend

/// A [`Shell`] that writes down what the loop asked of the terminal.
#[derive(Debug, Default, Clone)]
struct Recorder {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recorder {
    fn push(&self, s: String) {
        self.log.lock().expect("not poisoned").push(s);
    }

    fn calls(&self) -> Vec<String> {
        self.log.lock().expect("not poisoned").clone()
    }
}

impl Shell for Recorder {
    fn bell(&mut self) -> std::io::Result<()> {
        self.push("bell".into());
        Ok(())
    }
    fn title(&mut self, title: &str) -> std::io::Result<()> {
        self.push(format!("title {title}"));
        Ok(())
    }
    fn mouse(&mut self, on: bool) -> std::io::Result<()> {
        self.push(format!("mouse {on}"));
        Ok(())
    }
    fn suspend(&mut self) -> std::io::Result<()> {
        self.push("suspend".into());
        Ok(())
    }
}

type TermTx = futures::channel::mpsc::UnboundedSender<std::io::Result<crossterm::event::Event>>;

fn press(tx: &TermTx, code: KeyCode, mods: KeyModifiers) {
    let ev = crossterm::event::Event::Key(KeyEvent::new(code, mods));
    tx.unbounded_send(Ok(ev)).expect("the loop is listening");
}

/// The next command other than a typing or presence note.
async fn next_command(rx: &mut tokio::sync::mpsc::Receiver<UiCommand>) -> Option<UiCommand> {
    loop {
        let cmd = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .ok()
            .flatten();
        if !matches!(cmd, Some(UiCommand::Signal(_))) {
            return cmd;
        }
    }
}

#[tokio::test]
async fn the_loop_draws_session_events_sends_commands_and_quits_on_ctrl_c() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("a test terminal");
    let (term_tx, mut term_rx) = futures::channel::mpsc::unbounded();
    let (session_tx, mut session_rx) = tokio::sync::mpsc::channel(16);
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::channel(16);
    let mut app = TuiApp::new(status(true), now());
    let mut shell = Recorder::default();
    let looping = tokio::spawn(async move {
        let r = event_loop(
            &mut terminal,
            &mut term_rx,
            &mut shell,
            &mut app,
            &mut session_rx,
            &cmd_tx,
        )
        .await;
        (r, buffer_text(&terminal))
    });
    let op = AppOp::chat("from the session").expect("valid");
    session_tx
        .send(SessionEvent::Received(row(
            event(bob(), 1, 1, &op),
            Some(bob()),
            0,
        )))
        .await
        .expect("the loop is listening");
    for c in "hi".chars() {
        press(&term_tx, KeyCode::Char(c), KeyModifiers::NONE);
    }
    press(&term_tx, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(
        next_command(&mut cmd_rx).await,
        Some(UiCommand::Submit(AppOp::chat("hi").expect("valid")))
    );
    // Frames are at most 33 ms apart while something changed; give one time to land.
    tokio::time::sleep(Duration::from_millis(150)).await;
    press(&term_tx, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(next_command(&mut cmd_rx).await, Some(UiCommand::Quit));
    let (result, text) = tokio::time::timeout(Duration::from_secs(5), looping)
        .await
        .expect("the loop ends after Ctrl-C")
        .expect("the loop does not panic");
    assert!(result.is_ok(), "{result:?}");
    assert!(text.contains("from the session"), "{text}");
}

#[tokio::test]
async fn the_loop_ends_when_the_session_goes_away() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("a test terminal");
    let (_term_tx, mut term_rx) = futures::channel::mpsc::unbounded();
    let (session_tx, mut session_rx) = tokio::sync::mpsc::channel(16);
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::channel(16);
    let mut app = TuiApp::new(status(true), now());
    let mut shell = Recorder::default();
    drop(session_tx);
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        event_loop(
            &mut terminal,
            &mut term_rx,
            &mut shell,
            &mut app,
            &mut session_rx,
            &cmd_tx,
        ),
    )
    .await
    .expect("the loop ends");
    assert!(r.is_ok());
    drop(cmd_tx);
    assert_eq!(
        cmd_rx.recv().await,
        None,
        "nothing to ask a session that is gone"
    );
}

#[tokio::test]
async fn a_burst_of_session_events_is_folded_before_one_frame() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("a test terminal");
    let (term_tx, mut term_rx) = futures::channel::mpsc::unbounded();
    let (session_tx, mut session_rx) = tokio::sync::mpsc::channel(2048);
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::channel(16);
    let mut app = TuiApp::new(status(true), now());
    let mut shell = Recorder::default();
    for i in 1..=1000 {
        let op = AppOp::chat(&format!("burst {i}")).expect("valid");
        session_tx
            .send(SessionEvent::Received(row(
                event(bob(), i, i, &op),
                Some(bob()),
                0,
            )))
            .await
            .expect("room in the channel");
    }
    let looping = tokio::spawn(async move {
        let r = event_loop(
            &mut terminal,
            &mut term_rx,
            &mut shell,
            &mut app,
            &mut session_rx,
            &cmd_tx,
        )
        .await;
        (r, buffer_text(&terminal), app.model().chat().len())
    });
    // The quit key is read after the queued burst: the screen has it all.
    tokio::time::sleep(Duration::from_millis(100)).await;
    press(&term_tx, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(next_command(&mut cmd_rx).await, Some(UiCommand::Quit));
    let (result, text, folded) = looping.await.expect("the loop does not panic");
    assert!(result.is_ok());
    assert_eq!(folded, 1000);
    assert!(text.contains("burst 1000"), "{text}");
}

#[test]
fn peers_are_named_by_their_latest_nickname() {
    let mut app = busy_app();
    // The session named the peers before their nicknames arrived.
    let mut rows = peers();
    for p in &mut rows {
        p.name = p.id.short();
    }
    app.update(Action::Session(SessionEvent::Peers(rows)));
    let text = panel(&app, 78, 6, peers::render);
    assert!(text.contains("● bob "), "{text}");
    // cy has no nickname event: the session's name stays.
    assert!(text.contains(&format!("◐ {} ", cy().short())), "{text}");
}

#[test]
fn the_selected_peer_shows_its_last_error() {
    let mut app = busy_app();
    let mut rows = peers();
    rows[1].last_error = Some("connection refused".into());
    app.update(Action::Session(SessionEvent::Peers(rows)));
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    assert!(!panel(&app, 78, 6, peers::render).contains("connection refused"));
    key(&mut app, KeyCode::Char('j'));
    let text = panel(&app, 78, 6, peers::render);
    assert!(text.contains("connection refused"), "{text}");
}

#[test]
fn altgr_characters_are_typed_and_ctrl_keys_are_not() {
    let mut app = TuiApp::new(status(true), now());
    key_mod(
        &mut app,
        KeyCode::Char('@'),
        KeyModifiers::CONTROL | KeyModifiers::ALT,
    );
    key_mod(&mut app, KeyCode::Char('x'), KeyModifiers::CONTROL);
    key_mod(&mut app, KeyCode::Char('A'), KeyModifiers::SHIFT);
    assert_eq!(app.input().text(), "@A");
}

#[test]
fn each_day_starts_with_a_separator() {
    let mut app = TuiApp::new(status(true), now());
    let op = AppOp::chat("from yesterday, long enough to wrap onto a second row").expect("valid");
    let mut old = event(bob(), 1, 1, &op);
    old.created_at_ms -= 86_400_000;
    let today = event(bob(), 2, 2, &AppOp::chat("from today").expect("valid"));
    app.load(&[row(old, Some(bob()), 0), row(today, Some(bob()), 0)]);
    let text = panel(&app, 44, 7, chat::render);
    assert_eq!(
        text.lines().skip(1).take(5).collect::<Vec<_>>(),
        [
            "│──────────── Mon 13 Nov 2023 ─────────────│",
            "│21:14 b0b00000: from yesterday, long      │",
            "│      enough to wrap onto a second row    │",
            "│───────── Today, Tue 14 Nov 2023 ─────────│",
            "│21:15 b0b00000: from today                │",
        ],
        "{text}"
    );
    snapshot("date_separator", &text);
}

#[test]
fn times_follow_the_time_zone() {
    let mut app = TuiApp::new(status(true), now());
    app.configure(TuiOptions {
        time: TimeFmt::zone(jiff::tz::TimeZone::fixed(jiff::tz::offset(9))),
        ..TuiOptions::default()
    });
    let today = event(bob(), 2, 2, &AppOp::chat("from today").expect("valid"));
    app.load(&[row(today, Some(bob()), 0)]);
    let text = panel(&app, 44, 5, chat::render);
    // 21:15 UTC on the 14th is 06:15 on the 15th at UTC+9.
    assert!(text.contains("│06:15 b0b00000: from today"), "{text}");
    assert!(text.contains("Wed 15 Nov 2023"), "{text}");
}

#[test]
fn page_keys_page_the_focused_log() {
    let mut app = resized(TuiApp::new(status(true), now()), 160, 48);
    for i in 0..100 {
        app.update(Action::Session(SessionEvent::Exchange(exchange(
            100 - i,
            bob(),
            "bob",
            true,
            None,
        ))));
    }
    for _ in 0..3 {
        key(&mut app, KeyCode::Tab);
    }
    key(&mut app, KeyCode::PageDown);
    // The log is 16 rows high at 160x48: 14 inside its borders, one of them the header.
    assert_eq!(app.log_scroll, 12);
    key(&mut app, KeyCode::PageUp);
    assert_eq!((app.log_scroll, app.chat_scroll()), (0, 0));
}

#[test]
fn a_hidden_chat_keeps_its_scroll_in_its_own_rows() {
    let mut app = chat_app(200);
    key(&mut app, KeyCode::PageUp);
    let scrolled = app.chat_scroll();
    // At 80 columns the log takes the screen while it has focus, hiding the chat.
    app.update(Action::FocusPrev);
    assert_eq!(app.focus(), Focus::Log);
    receive_chat(&mut app, 1, "one row");
    // One row, and the separator of its day (it was written days after the others).
    assert_eq!(app.chat_scroll(), scrolled + 2);
}

// ---------------------------------------------------------------------------------------
// The editor, pastes, attention, search, accessibility

/// A message from bob at Lamport `lamport`, as received live.
fn from_bob(app: &mut TuiApp, seq: u64, lamport: u64, text: &str) {
    let op = AppOp::chat(text).expect("valid");
    let r = row(event(bob(), seq, lamport, &op), Some(bob()), 0);
    app.update(Action::Session(SessionEvent::Received(r)));
}

#[test]
fn a_7kb_paste_is_one_draft_and_a_long_paste_one_message() {
    let mut app = resized(TuiApp::new(status(true), now()), 120, 40);
    let paste = |n: usize| -> String {
        (1..=n)
            .map(|i| format!("{i:03} {}", "x".repeat(66)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let big = paste(100);
    assert!(big.len() > 7000, "{}", big.len());
    let ev = crossterm::event::Event::Paste(big.clone());
    app.update(map_event(&app, &ev).expect("an action"));
    assert_eq!(app.input().text(), big, "the whole paste, in one draft");
    // Over the size of a message: refused at once, the draft kept to trim.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(matches!(app.flash(), Some(Flash::Error(m)) if m.contains("over the limit")));
    assert_eq!(app.input().lines().len(), 100);
    key(&mut app, KeyCode::Esc);
    assert!(app.input().is_empty());
    // Over CONFIRM_LINES lines: the first Enter asks, the second sends one message.
    let long = paste(50);
    app.update(Action::Paste(long.clone()));
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(matches!(app.flash(), Some(Flash::Warning(m)) if m.contains("send 50 lines")));
    assert_eq!(app.input().lines().len(), 50, "asking keeps the draft");
    let cmds = key(&mut app, KeyCode::Enter);
    assert_eq!(
        cmds,
        vec![UiCommand::Submit(AppOp::chat(&long).expect("valid"))]
    );
    assert!(app.input().is_empty());
}

#[test]
fn a_short_paste_sends_at_once_and_esc_takes_back_the_question() {
    let mut app = TuiApp::new(status(true), now());
    app.update(Action::Paste("one\r\ntwo\r\nthree".into()));
    let cmds = key(&mut app, KeyCode::Enter);
    assert_eq!(
        cmds,
        vec![UiCommand::Submit(
            AppOp::chat("one\ntwo\nthree").expect("valid")
        )]
    );
    let long: String = (0..30).map(|i| format!("line {i}\n")).collect();
    app.update(Action::Paste(long));
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    key(&mut app, KeyCode::Esc);
    assert!(app.flash().is_none());
    assert_eq!(
        app.input().lines().len(),
        30,
        "Esc after the question keeps the draft (the paste's last newline dropped)"
    );
    key(&mut app, KeyCode::Esc);
    assert!(app.input().is_empty(), "a second Esc clears it");
}

#[test]
fn readline_keys_and_multi_line_drafts_through_the_key_map() {
    let mut app = TuiApp::new(status(true), now());
    type_str(&mut app, "hello brave world");
    key_mod(&mut app, KeyCode::Char('w'), KeyModifiers::CONTROL);
    assert_eq!(app.input().text(), "hello brave ");
    key_mod(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert!(app.input().is_empty());
    key_mod(&mut app, KeyCode::Char('_'), KeyModifiers::CONTROL);
    assert_eq!(app.input().text(), "hello brave ");
    type_str(&mut app, "new");
    key_mod(&mut app, KeyCode::Enter, KeyModifiers::ALT);
    type_str(&mut app, "world");
    let cmds = key(&mut app, KeyCode::Enter);
    assert_eq!(
        cmds,
        vec![UiCommand::Submit(
            AppOp::chat("hello brave new\nworld").expect("valid")
        )]
    );
    // Up brings the sent draft back, Esc clears it.
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input().text(), "hello brave new\nworld");
    key(&mut app, KeyCode::Esc);
    assert!(app.input().is_empty());
}

#[test]
fn tab_completes_nicks_and_commands_and_moves_on_from_an_empty_line() {
    let mut app = busy_app();
    type_str(&mut app, "hi @b");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input().text(), "hi @bob");
    assert_eq!(app.focus(), Focus::Input);
    key_mod(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    type_str(&mut app, "/se");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input().text(), "/search");
    key_mod(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focus(), Focus::List);
}

#[test]
fn mentions_are_highlighted_counted_and_ring_once_each() {
    let mut app = resized(busy_app(), 80, 24);
    from_bob(&mut app, 20, 20, "@Ann can you buy milk?");
    from_bob(&mut app, 21, 21, "joanna is not you, nor is annex");
    from_bob(&mut app, 22, 22, "thanks ann");
    assert_eq!(app.take_bells(), 2);
    assert_eq!(app.take_bells(), 0);
    let text = panel(&app, 60, 8, chat::render);
    assert!(text.contains("!bob: @Ann can you buy milk?"), "{text}");
    assert!(text.contains(" bob: joanna"), "{text}");
    snapshot("mentions", &text);
    // The highlight is a style of its own on exactly the mention.
    let mut terminal = Terminal::new(TestBackend::new(60, 8)).expect("a test terminal");
    terminal
        .draw(|f| chat::render(&app, f, f.area()))
        .expect("drawing");
    let buf = terminal.backend().buffer();
    let styled: String = (0..60u16)
        .flat_map(|x| (0..8u16).map(move |y| (x, y)))
        .filter(|&(x, y)| buf[(x, y)].bg == ratatui::style::Color::Yellow)
        .map(|(x, y)| buf[(x, y)].symbol().to_string())
        .collect();
    // The two mentions and the `!` marks in the gutter of their messages.
    assert_eq!(
        styled.chars().count(),
        2 + "@Ann".len() + "ann".len(),
        "{styled}"
    );
    app.update(Action::Session(SessionEvent::Status(StatusInfo {
        name: "bell-test".into(),
        ..status(true)
    })));
}

#[test]
fn the_bell_toggle_silences_mentions() {
    let mut app = busy_app();
    submit_line(&mut app, "/bell");
    assert!(matches!(app.flash(), Some(Flash::Info(m)) if m.contains("off")));
    from_bob(&mut app, 20, 20, "ann?");
    assert_eq!(app.take_bells(), 0);
    let mut quiet = TuiApp::new(status(true), now());
    quiet.configure(TuiOptions {
        bell: false,
        ..TuiOptions::default()
    });
    from_bob(&mut quiet, 20, 20, "ann?");
    assert_eq!(quiet.take_bells(), 0);
}

#[test]
fn scrolled_up_new_messages_are_counted_and_end_jumps_back() {
    let mut app = chat_app(200);
    key(&mut app, KeyCode::PageUp);
    assert!(app.chat_scroll() > 0);
    assert_eq!(app.title(), "gossip-chat — kitchen");
    for i in 0..3 {
        from_bob(&mut app, 300 + i, 300 + i, &format!("new {i}"));
    }
    assert_eq!(app.attention().new_below(), 3);
    assert_eq!(app.title(), "(3) gossip-chat — kitchen");
    let text = screen(&app, 80, 24);
    assert!(text.contains("3 new ↓ End"), "{text}");
    assert!(!text.contains("new 2"), "{text}");
    snapshot("unread_80x24", &text);
    key(&mut app, KeyCode::End);
    assert_eq!(app.chat_scroll(), 0);
    assert_eq!(app.title(), "gossip-chat — kitchen");
    let text = screen(&app, 80, 24);
    assert!(text.contains("new 2") && !text.contains("new ↓"), "{text}");
}

#[test]
fn an_unfocused_terminal_counts_unread_in_the_title() {
    let mut app = chat_app(3);
    app.update(Action::TerminalFocus(false));
    from_bob(&mut app, 10, 10, "while away");
    assert_eq!(app.title(), "(1) gossip-chat — kitchen");
    app.update(Action::TerminalFocus(true));
    assert_eq!(app.title(), "gossip-chat — kitchen");
}

#[test]
fn new_since_you_left_marks_the_last_message_read() {
    let mut app = TuiApp::new(status(true), now());
    let events: Vec<EventRow> = (1..=6)
        .map(|i| {
            let op = AppOp::chat(&format!("message {i}")).expect("valid");
            row(event(bob(), i, i, &op), Some(bob()), 0)
        })
        .collect();
    app.configure(TuiOptions {
        last_read: Some(crate::app::model::stamp::Stamp::of(&events[3].event)),
        ..TuiOptions::default()
    });
    app.load(&events);
    let text = panel(&app, 50, 10, chat::render);
    let lines: Vec<&str> = text.lines().collect();
    let marker = lines.iter().position(|l| l.contains("new since you left"));
    let four = lines.iter().position(|l| l.contains("message 4"));
    let five = lines.iter().position(|l| l.contains("message 5"));
    assert!(marker.is_some() && four < marker && marker < five, "{text}");
    snapshot("new_since_you_left", &text);
    // What is read now is kept for the next run.
    assert_eq!(
        app.attention().read_upto(),
        Some(crate::app::model::stamp::Stamp::of(&events[3].event))
    );
    app.update(Action::Tick(now()));
    assert_eq!(
        app.attention().read_upto(),
        Some(crate::app::model::stamp::Stamp::of(&events[5].event))
    );
}

#[test]
fn search_finds_older_and_newer_matches_and_esc_ends_it() {
    let mut app = chat_app(200);
    submit_line(&mut app, "/search message 17");
    // The newest match first: "message 179".
    let text = screen(&app, 80, 24);
    assert!(text.contains(">b0b00000: message 179"), "{text}");
    assert!(app.chat_scroll() > 0);
    key_mod(&mut app, KeyCode::Char('r'), KeyModifiers::CONTROL);
    assert!(screen(&app, 80, 24).contains(">b0b00000: message 178"));
    key_mod(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert!(screen(&app, 80, 24).contains(">b0b00000: message 179"));
    key(&mut app, KeyCode::Esc);
    assert!(app.search.is_none());
    submit_line(&mut app, "/search nowhere");
    assert!(matches!(app.flash(), Some(Flash::Info(m)) if m.contains("no older message")));
    // Ctrl-R without a search starts one on the input line.
    let mut fresh = chat_app(3);
    key_mod(&mut fresh, KeyCode::Char('r'), KeyModifiers::CONTROL);
    assert_eq!(fresh.input().text(), "/search ");
}

#[test]
fn home_and_end_on_an_empty_line_go_to_the_top_and_bottom() {
    let mut app = chat_app(200);
    key(&mut app, KeyCode::Home);
    assert!(
        screen(&app, 80, 24).contains("message 1\n") || screen(&app, 80, 24).contains("message 1 ")
    );
    key(&mut app, KeyCode::End);
    assert_eq!(app.chat_scroll(), 0);
}

#[test]
fn states_have_glyphs_and_focus_a_mark_without_colour() {
    let mut app = busy_app();
    app.configure(TuiOptions {
        palette: Palette::Mono,
        ..TuiOptions::default()
    });
    let mut rows = peers();
    rows[2].state = PeerState::Offline;
    app.update(Action::Session(SessionEvent::Peers(rows)));
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("a test terminal");
    terminal.draw(|f| render(&app, f)).expect("drawing");
    let buf = terminal.backend().buffer();
    assert!(
        buf.content
            .iter()
            .all(|c| c.fg == ratatui::style::Color::Reset && c.bg == ratatui::style::Color::Reset),
        "NO_COLOR leaves no colour"
    );
    let text = buffer_text(&terminal);
    for glyph in ["● bob", "◐ cy", "○ dee"] {
        assert!(text.contains(glyph), "{glyph}: {text}");
    }
    assert!(text.contains("▶ Chat"), "{text}");
    snapshot("no_color_160x48", &text);
    key(&mut app, KeyCode::Tab);
    let text = screen(&app, 160, 48);
    assert!(
        text.contains("▶ List") && !text.contains("▶ Chat"),
        "{text}"
    );
}

#[test]
fn the_clock_popup_does_not_swallow_the_next_key() {
    let mut app = busy_app();
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('c'));
    assert_eq!(app.popup(), Some(Popup::Clock));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.popup(), None);
    assert_eq!(
        app.selected_row(),
        Some(1),
        "j closed the clock and moved the selection"
    );
}

#[test]
fn a_click_focuses_the_panel_under_it_and_select_mode_frees_the_mouse() {
    let mut app = resized(busy_app(), 160, 48);
    let a = areas(Rect::new(0, 0, 160, 48), app.focus(), 1);
    let peers = a.peers.expect("a peers panel");
    let click = crossterm::event::Event::Mouse(crossterm::event::MouseEvent {
        kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
        column: peers.x + 2,
        row: peers.y + 2,
        modifiers: KeyModifiers::NONE,
    });
    let action = map_event(&app, &click).expect("a click acts");
    app.update(action);
    assert_eq!(app.focus(), Focus::Peers);
    key(&mut app, KeyCode::F(3));
    assert!(app.select_mode());
    assert!(screen(&app, 160, 48).contains("select"));
    submit_line(&mut app, "/select");
}

#[test]
fn urls_are_kept_whole_on_one_row() {
    let mut app = TuiApp::new(status(true), now());
    let url = "https://example.com/a/rather/long/path/to/a/page?with=query";
    let op = AppOp::chat(&format!("look at {url} please")).expect("valid");
    app.load(&[row(event(bob(), 1, 1, &op), Some(bob()), 0)]);
    let text = panel(&app, 50, 6, chat::render);
    // The URL is wider than the panel: it gets a row of its own, clipped, never split.
    assert!(
        text.contains("      https://example.com/a/rather/long/path/t"),
        "{text}"
    );
    assert!(!text.contains("to/a/page"), "{text}");
}

#[test]
fn whois_answers_and_joins_before_any_message_show_in_full_in_the_chat() {
    let mut app = TuiApp::new(status(false), now());
    app.update(Action::Session(SessionEvent::Presence(
        crate::app::runtime::view::PresenceNote {
            at: now(),
            who: bob(),
            kind: crate::app::runtime::view::Presence::Joined { name: "bob".into() },
        },
    )));
    let text = panel(&app, 60, 20, chat::render);
    assert!(text.contains("· bob joined"), "{text}");
    assert!(text.contains("mDNS is off"), "the welcome stays: {text}");
    let whois = "bob: id b0b00000-0000-0000-0000-000000000002, key 70ac 7091 4f33 f2aa, \
                 at 127.0.0.1:47002, alive, first seen 3 min ago, last seen 1 s ago";
    let cmds = submit_line(&mut app, "/whois bob");
    assert_eq!(cmds, vec![UiCommand::Whois("bob".into())]);
    let op = AppOp::chat("hello").expect("valid");
    app.update(Action::Session(SessionEvent::Received(row(
        event(bob(), 1, 1, &op),
        Some(bob()),
        0,
    ))));
    app.update(Action::Session(SessionEvent::Answer(vec![whois.into()])));
    let text = panel(&app, 60, 12, chat::render);
    // Every word of the answer is on screen: it wraps under its text instead of being cut.
    let shown: String = text
        .lines()
        .map(|l| l.trim_matches('│').trim())
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<&str> = whois.split(' ').collect();
    assert!(shown.contains(&words.join(" ")), "{text}");
    assert!(text.contains("  · bob: id b0b0"), "{text}");
    assert!(text.contains("last seen 1 s ago"), "{text}");
}

#[test]
fn a_warning_too_long_for_the_flash_is_cut_there_and_whole_in_the_chat() {
    let mut app = resized(TuiApp::new(status(false), now()), 80, 24);
    let long = "cannot reach 127.0.0.1:47999: nothing listens there (network: cannot connect: \
                connection refused); retrying in the background (/unpeer 127.0.0.1:47999 stops)";
    app.update(Action::Session(SessionEvent::Warning(long.into())));
    let text = screen(&app, 80, 24);
    assert!(text.contains(" cannot reach 127.0.0.1:47999"), "{text}");
    assert!(text.contains("…"), "the flash says it is cut: {text}");
    let chat = panel(&app, 60, 20, chat::render);
    let shown: String = chat
        .lines()
        .map(|l| l.trim_matches('│').trim())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(shown.contains(&format!("⚠ {long}")), "{chat}");
    // A short one stays in the flash only.
    app.update(Action::Session(SessionEvent::Notice(
        "connected to x".into(),
    )));
    assert_eq!(app.notices.len(), 1);
}

/// The screen of `app` with one message of bob's holding two URLs (one clipped) and a
/// mention, drawn at 60x12 with hyperlinks on or off.
fn linked_screen(links: bool) -> ratatui::buffer::Buffer {
    let mut app = TuiApp::new(status(true), now());
    app.configure(TuiOptions {
        links,
        ..TuiOptions::default()
    });
    let short = AppOp::chat("ann: menu at https://e.io/m, ok?").expect("valid");
    let long = AppOp::chat("and https://example.com/a/rather/long/path/to/a/page?with=query")
        .expect("valid");
    app.load(&[
        row(event(bob(), 1, 1, &short), Some(bob()), 0),
        row(event(bob(), 2, 2, &long), Some(bob()), 0),
    ]);
    let mut terminal = Terminal::new(TestBackend::new(60, 12)).expect("a test terminal");
    terminal
        .draw(|f| chat::render(&app, f, f.area()))
        .expect("drawing");
    terminal.backend().buffer().clone()
}

#[test]
fn urls_are_osc8_hyperlinks_and_the_layout_does_not_change() {
    use ratatui::backend::Backend;
    use ratatui::buffer::CellWidth;
    let plain = linked_screen(false);
    let linked = linked_screen(true);
    let mut urls_seen = std::collections::BTreeMap::<&str, usize>::new();
    for (a, b) in plain.content.iter().zip(&linked.content) {
        let (text, url) = hyperlink::unlinked(b.symbol());
        // Every cell shows what it showed without links, in the same style and width.
        assert_eq!(text, a.symbol());
        assert_eq!((a.fg, a.bg, a.modifier), (b.fg, b.bg, b.modifier));
        assert_eq!(a.cell_width(), b.cell_width());
        if let Some(url) = url {
            *urls_seen.entry(url).or_default() += 1;
        }
    }
    // The short URL whole (its comma not linked), the long one as far as the screen goes.
    assert_eq!(urls_seen.get("https://e.io/m"), Some(&14), "{urls_seen:?}");
    let long = "https://example.com/a/rather/long/path/to/a/page?with=query";
    assert_eq!(urls_seen.get(long), Some(&(60 - 2 - 6)), "{urls_seen:?}");
    assert_eq!(urls_seen.len(), 2, "{urls_seen:?}");
    // What reaches the terminal: the same bytes as without links once the OSC 8 sequences
    // are taken out (same cells, same cursor moves), and the sequences themselves.
    let bytes = |buf: &ratatui::buffer::Buffer| {
        let empty = ratatui::buffer::Buffer::empty(buf.area);
        let out = SharedOut::default();
        let mut backend = ratatui::backend::CrosstermBackend::new(out.clone());
        backend
            .draw(empty.diff(buf).into_iter())
            .expect("drawing to memory");
        String::from_utf8(out.0.lock().expect("not poisoned").clone()).expect("utf-8 output")
    };
    let (plain_out, linked_out) = (bytes(&plain), bytes(&linked));
    let open = "\x1b]8;;https://e.io/m\x1b\\";
    let close = "\x1b]8;;\x1b\\";
    assert!(
        linked_out.contains(&format!("{open}h{close}{open}t{close}")),
        "{linked_out:?}"
    );
    let mut stripped = linked_out.clone();
    for url in [long, "https://e.io/m", ""] {
        stripped = stripped.replace(&format!("\x1b]8;;{url}\x1b\\"), "");
    }
    assert_eq!(stripped, plain_out);
}

/// Bytes written to a terminal, kept for a look.
#[derive(Clone, Default)]
struct SharedOut(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Relative luminance (WCAG) of a 256-colour index, or of black/white for the terminal's
/// default colours on a light background.
fn luminance(c: ratatui::style::Color, default: f64) -> Option<f64> {
    use ratatui::style::Color;
    let rgb = match c {
        Color::Reset => return Some(default),
        Color::Black => (0, 0, 0),
        Color::Indexed(i @ 16..=231) => {
            let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            let i = i - 16;
            (level(i / 36), level(i / 6 % 6), level(i % 6))
        }
        Color::Indexed(i @ 232..=255) => {
            let v = 8 + 10 * (i - 232);
            (v, v, v)
        }
        // A named colour's shade is the terminal's: the light palette uses none.
        _ => return None,
    };
    let lin = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    Some(0.2126 * lin(rgb.0) + 0.7152 * lin(rgb.1) + 0.0722 * lin(rgb.2))
}

#[test]
fn the_light_palette_is_readable_on_white_and_keeps_authors_apart() {
    let mut app = busy_app();
    let op = AppOp::chat("ann: the menu is at https://e.io/m").expect("valid");
    app.update(Action::Session(SessionEvent::Received(row(
        event(bob(), 9, 40, &op),
        Some(bob()),
        1,
    ))));
    app.configure(TuiOptions {
        palette: Palette::Light,
        ..TuiOptions::default()
    });
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).expect("a test terminal");
    terminal.draw(|f| render(&app, f)).expect("drawing");
    let buf = terminal.backend().buffer().clone();
    let mut colours = std::collections::BTreeSet::new();
    for (i, cell) in buf.content.iter().enumerate() {
        let (x, y) = (i % 100, i / 100);
        let fg = luminance(cell.fg, 0.0);
        let bg = luminance(cell.bg, 1.0);
        let (Some(fg), Some(bg)) = (fg, bg) else {
            panic!(
                "({x},{y}) {:?} on {:?}: a named colour in the light palette",
                cell.fg, cell.bg
            );
        };
        let contrast = (fg.max(bg) + 0.05) / (fg.min(bg) + 0.05);
        assert!(
            contrast >= 4.5 || cell.symbol() == " ",
            "({x},{y}) {:?} {:?} on {:?}: contrast {contrast:.2}",
            cell.symbol(),
            cell.fg,
            cell.bg
        );
        colours.insert(format!("{:?}", cell.fg));
    }
    assert!(colours.len() >= 6, "{colours:?}");
    // Each dark author colour has its own light shade.
    let authors: std::collections::BTreeSet<String> = (0..200u128)
        .map(|n| {
            let mut b = ratatui::buffer::Buffer::empty(Rect::new(0, 0, 1, 1));
            b[(0, 0)].set_fg(theme::author_color(NodeId::from_u128(n)));
            Palette::Light.apply(&mut b);
            format!("{:?}", b[(0, 0)].fg)
        })
        .collect();
    assert_eq!(authors.len(), 10, "{authors:?}");
    snapshot("light_100x30", &styled_text(&buf));
}

/// A buffer as text with its colours: `{fg/bg}` before each run of cells whose colours
/// change (`-` for the terminal's default), so a snapshot shows the palette too.
fn styled_text(buf: &ratatui::buffer::Buffer) -> String {
    let name = |c: ratatui::style::Color| match c {
        ratatui::style::Color::Reset => "-".to_string(),
        ratatui::style::Color::Indexed(i) => i.to_string(),
        other => format!("{other:?}"),
    };
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut last = (ratatui::style::Color::Reset, ratatui::style::Color::Reset);
        for x in 0..buf.area.width {
            let cell = &buf[(x, y)];
            if (cell.fg, cell.bg) != last && cell.symbol() != " " {
                last = (cell.fg, cell.bg);
                line.push_str(&format!("{{{}/{}}}", name(cell.fg), name(cell.bg)));
            }
            line.push_str(cell.symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn the_loop_rings_sets_the_title_frees_the_mouse_and_redraws() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("a test terminal");
    let (term_tx, mut term_rx) = futures::channel::mpsc::unbounded();
    let (session_tx, mut session_rx) = tokio::sync::mpsc::channel(16);
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::channel(16);
    let mut app = TuiApp::new(status(true), now());
    let mut shell = Recorder::default();
    let calls = shell.clone();
    let looping = tokio::spawn(async move {
        event_loop(
            &mut terminal,
            &mut term_rx,
            &mut shell,
            &mut app,
            &mut session_rx,
            &cmd_tx,
        )
        .await
    });
    let op = AppOp::chat("ann, lunch?").expect("valid");
    session_tx
        .send(SessionEvent::Received(row(
            event(bob(), 1, 1, &op),
            Some(bob()),
            0,
        )))
        .await
        .expect("the loop is listening");
    press(&term_tx, KeyCode::F(3), KeyModifiers::NONE);
    press(&term_tx, KeyCode::Char('l'), KeyModifiers::CONTROL);
    press(&term_tx, KeyCode::F(3), KeyModifiers::NONE);
    tokio::time::sleep(Duration::from_millis(150)).await;
    press(&term_tx, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(next_command(&mut cmd_rx).await, Some(UiCommand::Quit));
    let r = looping.await.expect("the loop does not panic");
    assert!(r.is_ok(), "{r:?}");
    let calls = calls.calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "bell").count(),
        1,
        "{calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("mouse"))
            .collect::<Vec<_>>(),
        ["mouse false", "mouse true"],
        "{calls:?}"
    );
    assert!(
        calls.contains(&"title gossip-chat — kitchen".to_string()),
        "{calls:?}"
    );
}

#[test]
fn edited_deleted_actions_replies_and_presence_lines_show() {
    let mut app = resized(busy_app(), 80, 24);
    let ops = [
        (bob(), 20, AppOp::chat("the train is late").expect("valid")),
        (bob(), 21, AppOp::chat("oops, wrong room").expect("valid")),
        (
            bob(),
            22,
            AppOp::chat_edit(20, "the train is very late").expect("valid"),
        ),
        (bob(), 23, AppOp::chat_delete(21).expect("valid")),
        (
            bob(),
            24,
            AppOp::action("waves at everyone").expect("valid"),
        ),
        (
            ann(),
            25,
            AppOp::reply(bob(), 20, "then I take the bus").expect("valid"),
        ),
    ];
    for (origin, seq, op) in ops {
        let from = (origin != ann()).then_some(origin);
        let r = row(event(origin, seq, seq, &op), from, 0);
        let ev = if from.is_some() {
            SessionEvent::Received(r)
        } else {
            SessionEvent::Created(r)
        };
        app.update(Action::Session(ev));
    }
    app.update(Action::Session(SessionEvent::Presence(
        crate::app::runtime::view::PresenceNote {
            at: now(),
            who: cy(),
            kind: crate::app::runtime::view::Presence::Renamed {
                from: "cy".into(),
                to: "cyrus".into(),
            },
        },
    )));
    let text = panel(&app, 60, 12, chat::render);
    for needle in [
        "bob: the train is very late (edited)",
        "bob: (deleted)",
        "* bob waves at everyone",
        "↳ bob: the train is very late",
        "ann: then I take the bus",
        "· cy is now known as cyrus",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    assert!(!text.contains("oops"), "{text}");
    snapshot("message_ops", &text);
    // Up on an empty line offers our last message for /edit last.
    key(&mut app, KeyCode::Up);
    assert_eq!(app.input().text(), "/edit last then I take the bus");
}

#[test]
fn an_equivocation_shows_as_a_warning_and_an_events_row() {
    use crate::app::runtime::view::EquivocationRow;
    use crate::protocol::equivocation::Equivocation;
    let mut app = busy_app();
    app.update(Action::SwitchLog);
    let a = event(bob(), 9, 20, &AppOp::chat("one").expect("valid"));
    let mut b = a.clone();
    b.payload = Bytes::from(AppOp::chat("two").expect("valid").encode().expect("valid"));
    let equivocation = Equivocation::detect(&a, &b).expect("an equivocation");
    app.update(Action::Session(SessionEvent::Equivocation(Box::new(
        EquivocationRow {
            at: UNIX_EPOCH + Duration::from_secs(NOW_SECS),
            equivocation,
        },
    ))));
    assert!(matches!(app.flash(), Some(Flash::Warning(m)) if m.contains("seq 9")));
    let panel = panel(&app, 100, 9, events::render);
    assert!(panel.contains("EQUIVOCATED"), "{panel}");
    assert!(panel.contains("b0b00000:9"), "{panel}");
}

#[test]
fn own_messages_waiting_show_as_sending_in_the_status_bar() {
    let mut s = status(true);
    assert!(!panel(&TuiApp::new(s.clone(), now()), 120, 1, status::render).contains("sending"));
    s.sending = 2;
    let app = TuiApp::new(s, now());
    assert!(panel(&app, 120, 1, status::render).contains("sending… 2"));
}

#[test]
fn a_file_message_shows_name_size_author_and_a_gauge_while_saving() {
    use crate::app::runtime::view::{TransferInfo, TransferState};
    let mut app = busy_app();
    let id = crate::protocol::blob::BlobId([0x5c; 32]);
    let offer = AppOp::file(id, "holiday-photos.tar", 52_428_800, "application/x-tar")
        .expect("a valid offer");
    app.update(Action::Session(SessionEvent::Received(row(
        event(bob(), 9, 90, &offer),
        Some(bob()),
        1,
    ))));
    app.update(Action::Session(SessionEvent::Transfer(TransferInfo {
        file_id: id.to_hex(),
        name: "holiday-photos.tar".into(),
        done: 23_592_960,
        total: 52_428_800,
        bytes_per_sec: 12_900_000.0,
        eta_secs: Some(2.2),
        state: TransferState::Running,
    })));
    let shown = screen(&app, 140, 30);
    assert!(
        shown.contains("bob: [file] holiday-photos.tar · 50.0 MiB · /save 5c5c5c5c5c5c"),
        "{shown}"
    );
    assert!(
        shown.contains("[█████████░░░░░░░░░░░]  45% · 12.3 MiB/s · ETA 3s"),
        "{shown}"
    );
    snapshot("file_gauge_140x30", &shown);
}

// ---------------------------------------------------------------------------------------
// Typing and presence (ephemeral notes: never stored)

fn ana() -> NodeId {
    NodeId::from_u128(0xa0a0_0000_0000_0000_0000_0000_0000_0005)
}

fn note(app: &mut TuiApp, who: NodeId, signal: crate::app::activity::Signal) {
    app.update(Action::Session(SessionEvent::Signal(
        crate::app::runtime::view::SignalNote {
            at: app.now,
            who,
            signal,
        },
    )));
}

/// The busy screen with ana among the peers.
fn app_with_ana() -> TuiApp {
    let mut app = busy_app();
    let mut rows = peers();
    let mut row = rows[0].clone();
    row.id = ana();
    row.name = "ana".into();
    row.addr = "10.0.0.5:7777".into();
    rows.insert(0, row);
    app.update(Action::Session(SessionEvent::Peers(rows)));
    app
}

fn signals(cmds: &[UiCommand]) -> Vec<crate::app::activity::Signal> {
    cmds.iter()
        .filter_map(|c| match c {
            UiCommand::Signal(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_typist_shows_under_the_chat_and_several_are_named() {
    use crate::app::activity::Signal;
    let mut app = app_with_ana();
    note(&mut app, ana(), Signal::Typing);
    snapshot("panel_chat_typing", &panel(&app, 60, 9, chat::render));
    assert!(panel(&app, 60, 9, chat::render).contains("ana is typing…"));
    note(&mut app, bob(), Signal::Typing);
    assert!(panel(&app, 60, 9, chat::render).contains("ana and bob are typing…"));
    note(&mut app, bob(), Signal::StoppedTyping);
    assert!(panel(&app, 60, 9, chat::render).contains("ana is typing…"));
    // No "stopped" note from ana: she stops being shown after 6 s all the same.
    app.update(Action::Tick(now() + Duration::from_secs(6)));
    assert!(!panel(&app, 60, 9, chat::render).contains("typing"));
    // A message from a typist ends their typing at once.
    note(&mut app, bob(), Signal::Typing);
    let op = AppOp::chat("finished").expect("valid");
    let ev = event(bob(), 50, 70, &op);
    app.update(Action::Session(SessionEvent::Received(row(
        ev,
        Some(bob()),
        0,
    ))));
    assert!(!panel(&app, 60, 9, chat::render).contains("typing"));
}

#[test]
fn away_shows_beside_the_peers_name() {
    use crate::app::activity::Signal;
    let mut app = app_with_ana();
    note(&mut app, ana(), Signal::away("lunch").expect("valid"));
    note(&mut app, cy(), Signal::Away { text: None });
    let shown = panel(&app, 78, 7, peers::render);
    snapshot("panel_peers_away", &shown);
    assert!(shown.contains("ana (away: lunch)"), "{shown}");
    assert!(shown.contains("cy (away)"), "{shown}");
    note(&mut app, ana(), Signal::Active);
    assert!(!panel(&app, 78, 7, peers::render).contains("ana (away"));
}

#[test]
fn keystrokes_say_typing_at_most_every_two_seconds_and_enter_stops_it() {
    use crate::app::activity::Signal;
    let mut app = TuiApp::new(status(true), now());
    let k =
        |app: &mut TuiApp, c: char| signals(&key_all(app, KeyCode::Char(c), KeyModifiers::NONE));
    assert_eq!(k(&mut app, 'h'), vec![Signal::Typing]);
    assert!(k(&mut app, 'i').is_empty());
    app.update(Action::Tick(now() + Duration::from_secs(2)));
    assert_eq!(k(&mut app, '!'), vec![Signal::Typing]);
    let enter = key_all(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(signals(&enter), vec![Signal::StoppedTyping]);
    assert!(enter.contains(&UiCommand::Submit(AppOp::chat("hi!").expect("valid"))));
    // A command in the draft is not typing a message.
    assert!(k(&mut app, '/').is_empty());
    assert!(k(&mut app, 'b').is_empty());
}

#[test]
fn five_quiet_seconds_stop_typing_and_ten_idle_minutes_are_away() {
    use crate::app::activity::Signal;
    let mut app = TuiApp::new(status(true), now());
    key_all(&mut app, KeyCode::Char('x'), KeyModifiers::NONE);
    let idle = |app: &mut TuiApp, secs: u64| {
        signals(&app.update(Action::IdleCheck(now() + Duration::from_secs(secs))))
    };
    assert!(idle(&mut app, 4).is_empty());
    assert_eq!(idle(&mut app, 5), vec![Signal::StoppedTyping]);
    assert!(idle(&mut app, 6).is_empty());
    assert_eq!(idle(&mut app, 600), vec![Signal::Away { text: None }]);
    assert_eq!(
        app.availability(app.status.node_id),
        crate::app::activity::Availability::Away(None)
    );
    // The next key is back (and typing).
    let back = signals(&key_all(&mut app, KeyCode::Char('y'), KeyModifiers::NONE));
    assert_eq!(back, vec![Signal::Active, Signal::Typing]);
}

#[test]
fn away_and_back_commands_send_notes_not_events() {
    use crate::app::activity::Signal;
    let mut app = TuiApp::new(status(true), now());
    type_str_all(&mut app, "/away lunch");
    let cmds = key_all(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(
        cmds,
        vec![UiCommand::Signal(Signal::Away {
            text: Some("lunch".into())
        })]
    );
    assert!(matches!(app.flash(), Some(Flash::Info(m)) if m.contains("away: lunch")));
    type_str_all(&mut app, "/back");
    let cmds = key_all(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(cmds, vec![UiCommand::Signal(Signal::Active)]);
    type_str_all(&mut app, "/typing");
    let cmds = key_all(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert!(cmds.is_empty(), "scripts only: {cmds:?}");
    assert!(matches!(app.flash(), Some(Flash::Error(m)) if m.contains("--headless")));
}

fn type_str_all(app: &mut TuiApp, s: &str) {
    for c in s.chars() {
        key_all(app, KeyCode::Char(c), KeyModifiers::NONE);
    }
}

// ---------------------------------------------------------------------------------------
// Browsing the chat: a cursor on a message, Enter or s saves a file

const FILE_ID: crate::protocol::blob::BlobId = crate::protocol::blob::BlobId([0x5c; 32]);

/// The busy screen with bob's file offer as the newest message.
fn app_with_file() -> TuiApp {
    let mut app = resized(busy_app(), 140, 30);
    let offer = AppOp::file(
        FILE_ID,
        "holiday-photos.tar",
        52_428_800,
        "application/x-tar",
    )
    .expect("a valid offer");
    app.update(Action::Session(SessionEvent::Received(row(
        event(bob(), 9, 90, &offer),
        Some(bob()),
        1,
    ))));
    app
}

fn ctrl_up(app: &mut TuiApp) -> Vec<UiCommand> {
    key_mod(app, KeyCode::Up, KeyModifiers::CONTROL)
}

/// The text of the message under the chat cursor.
fn browsed_text(app: &TuiApp) -> Option<String> {
    let at = app.browse?;
    app.model
        .chat()
        .find(|l| app::stamp_of(l) == at)
        .map(|l| match l.file {
            Some(f) => format!("[file] {}", f.name),
            None => l.text.to_string(),
        })
}

fn the_save(cmds: &[UiCommand]) -> Option<&crate::app::runtime::command::SaveRequest> {
    match cmds {
        [UiCommand::SaveFile(r)] => Some(r),
        _ => None,
    }
}

#[test]
fn enter_or_s_on_a_browsed_file_message_saves_it_like_save() {
    let mut app = app_with_file();
    assert!(ctrl_up(&mut app).is_empty());
    assert_eq!(
        browsed_text(&app).as_deref(),
        Some("[file] holiday-photos.tar")
    );
    for k in [KeyCode::Enter, KeyCode::Char('s')] {
        let cmds = key(&mut app, k);
        let save = the_save(&cmds).unwrap_or_else(|| panic!("{k:?} gave {cmds:?}"));
        assert_eq!(save.file_id, FILE_ID);
        assert_eq!(save.name, "holiday-photos.tar");
        assert_eq!(save.size, 52_428_800);
        assert_eq!(save.from, bob());
        // Into the downloads directory, as `/save ID` without a DIR.
        assert_eq!(save.dir, None);
        assert_eq!(
            app.flash(),
            Some(&Flash::Info("saving holiday-photos.tar…".into()))
        );
        // Still browsing: another file can be saved next.
        assert!(app.browse.is_some());
    }
    // The same request `/save` makes.
    key(&mut app, KeyCode::Esc);
    let typed = submit_line(&mut app, "/save 5c5c5c");
    assert_eq!(the_save(&typed), the_save(&key_and_save(&mut app)));
}

/// Ctrl-↑ then Enter: the save of the newest message.
fn key_and_save(app: &mut TuiApp) -> Vec<UiCommand> {
    ctrl_up(app);
    let cmds = key(app, KeyCode::Enter);
    key(app, KeyCode::Esc);
    cmds
}

#[test]
fn the_cursor_moves_over_messages_and_enter_on_text_does_nothing() {
    let mut app = app_with_file();
    ctrl_up(&mut app);
    assert!(key(&mut app, KeyCode::Char('k')).is_empty());
    assert!(
        browsed_text(&app).is_some_and(|t| t.starts_with("a long message")),
        "{:?}",
        browsed_text(&app)
    );
    // Enter and s on a text message only say what they are for.
    for k in [KeyCode::Enter, KeyCode::Char('s')] {
        assert!(key(&mut app, k).is_empty());
        assert!(
            app.flash()
                .is_some_and(|f| f.text().starts_with("not a file message")),
            "{:?}",
            app.flash()
        );
    }
    assert!(app.input().is_empty(), "nothing was typed");
    key(&mut app, KeyCode::Up);
    assert_eq!(
        browsed_text(&app).as_deref(),
        Some("yes! making the shopping list now")
    );
    // The ends: Home/g the oldest, End/G the newest, and no step past them.
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(
        browsed_text(&app).as_deref(),
        Some("hello bob, are you there?")
    );
    key(&mut app, KeyCode::Char('k'));
    assert_eq!(
        browsed_text(&app).as_deref(),
        Some("hello bob, are you there?")
    );
    key(&mut app, KeyCode::Down);
    assert_eq!(
        browsed_text(&app).as_deref(),
        Some("yes! making the shopping list now")
    );
    key_mod(&mut app, KeyCode::Char('G'), KeyModifiers::SHIFT);
    assert_eq!(
        browsed_text(&app).as_deref(),
        Some("[file] holiday-photos.tar")
    );
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(
        browsed_text(&app).as_deref(),
        Some("[file] holiday-photos.tar")
    );
    key(&mut app, KeyCode::Home);
    assert_eq!(
        browsed_text(&app).as_deref(),
        Some("hello bob, are you there?")
    );
    key(&mut app, KeyCode::End);
    assert_eq!(
        browsed_text(&app).as_deref(),
        Some("[file] holiday-photos.tar")
    );
}

#[test]
fn s_typed_in_the_input_never_saves_and_esc_goes_back_to_the_draft() {
    let mut app = app_with_file();
    // Typing: `s` and Enter are the draft's, whatever the newest message is.
    type_str(&mut app, "so");
    assert_eq!(app.input().text(), "so");
    assert!(app.browse.is_none());
    // Browsing keeps the draft aside; letters there move or act, none types.
    ctrl_up(&mut app);
    for c in ['x', 'j', 'k', 'q'] {
        assert!(key(&mut app, KeyCode::Char(c)).is_empty(), "{c}");
    }
    assert_eq!(app.input().text(), "so");
    // Esc leaves browsing only: the draft is still there, and `s` types again.
    key(&mut app, KeyCode::Esc);
    assert!(app.browse.is_none());
    assert_eq!(app.input().text(), "so");
    assert!(key(&mut app, KeyCode::Char('s')).is_empty());
    assert_eq!(app.input().text(), "sos");
    // Another panel ends browsing too.
    ctrl_up(&mut app);
    key(&mut app, KeyCode::Tab);
    assert!(app.browse.is_none());
    assert_eq!(app.focus(), Focus::List);
    // A paste goes to the draft and ends browsing.
    key(&mut app, KeyCode::Esc);
    ctrl_up(&mut app);
    app.update(Action::Paste("!".into()));
    assert!(app.browse.is_none());
    assert_eq!(app.input().text(), "sos!");
}

#[test]
fn an_empty_chat_has_nothing_to_browse() {
    let mut app = TuiApp::new(status(true), now());
    assert!(ctrl_up(&mut app).is_empty());
    assert!(app.browse.is_none());
    assert_eq!(
        app.flash(),
        Some(&Flash::Info("no message to pick yet".into()))
    );
    // Alt-↑ does the same (for terminals that keep Ctrl-↑ for themselves).
    let mut app = app_with_file();
    key_mod(&mut app, KeyCode::Up, KeyModifiers::ALT);
    assert!(app.browse.is_some());
}

#[test]
fn the_browsed_message_is_marked_and_reversed() {
    let mut app = app_with_file();
    ctrl_up(&mut app);
    key(&mut app, KeyCode::Char('k'));
    let shown = panel(&app, 60, 12, chat::render);
    snapshot("panel_chat_browse", &shown);
    assert!(
        shown.contains("Chat: browsing (Enter or s saves a file, Esc)"),
        "{shown}"
    );
    // The gutter mark on each of its rows, and on no other (the title's is focus).
    let marked: Vec<&str> = shown.lines().skip(1).filter(|l| l.contains('▶')).collect();
    assert_eq!(marked.len(), 3, "{shown}");
    assert!(marked[0].contains("bob: a long message"), "{shown}");
    // Reversed (not only coloured), so it shows with NO_COLOR too.
    let mut terminal = Terminal::new(TestBackend::new(60, 12)).expect("a test terminal");
    terminal
        .draw(|f| chat::render(&app, f, f.area()))
        .expect("drawing to a test backend");
    let buf = terminal.backend().buffer();
    let y = (1..12)
        .find(|&y| (0..60).any(|x| buf[(x, y)].symbol() == "▶"))
        .expect("a marked row");
    let reversed = |y: u16| {
        (0..60).any(|x| {
            buf[(x, y)]
                .modifier
                .contains(ratatui::style::Modifier::REVERSED)
        })
    };
    assert!(reversed(y) && reversed(y + 2));
    assert!(!reversed(y + 3), "the file message below is not reversed");
    // The input says keys are not typing now.
    let whole = screen(&app, 140, 30);
    assert!(
        whole.contains("Browsing the chat (Esc goes back to typing)"),
        "{whole}"
    );
}

/// The busy screen with `n` more messages from bob, the file offer among the first.
fn long_chat(n: u64) -> TuiApp {
    let mut app = app_with_file();
    for i in 0..n {
        let op = AppOp::chat(&format!("message number {i}")).expect("valid");
        app.update(Action::Session(SessionEvent::Received(row(
            event(bob(), 10 + i, 91 + i, &op),
            Some(bob()),
            0,
        ))));
    }
    app
}

#[test]
fn the_view_follows_the_cursor_and_a_page_brings_the_cursor_along() {
    let mut app = long_chat(40);
    ctrl_up(&mut app);
    assert_eq!(browsed_text(&app).as_deref(), Some("message number 39"));
    assert_eq!(app.chat_scroll(), 0);
    // Up to the file offer, 40 messages back: the view scrolls to show it.
    for _ in 0..40 {
        key(&mut app, KeyCode::Char('k'));
    }
    assert_eq!(
        browsed_text(&app).as_deref(),
        Some("[file] holiday-photos.tar")
    );
    assert!(app.chat_scroll() > 0);
    let shown = screen(&app, 140, 30);
    assert!(shown.contains("▶bob: [file] holiday-photos.tar"), "{shown}");
    let save = key(&mut app, KeyCode::Enter);
    assert_eq!(the_save(&save).map(|r| r.file_id), Some(FILE_ID));
    // A page down leaves the file message out of view: the cursor comes along.
    key(&mut app, KeyCode::PageDown);
    let shown = screen(&app, 140, 30);
    assert!(!shown.contains("[file] holiday-photos"), "{shown}");
    let at = browsed_text(&app).unwrap_or_default();
    assert!(at.starts_with("message number"), "{at}");
    assert!(shown.contains(&format!("▶bob: {at}")), "{shown}");
    // New messages while browsing hold the view (as when scrolled back) and say so.
    let before = app.chat_scroll();
    let op = AppOp::chat("a late one").expect("valid");
    app.update(Action::Session(SessionEvent::Received(row(
        event(bob(), 100, 131, &op),
        Some(bob()),
        0,
    ))));
    assert_eq!(app.chat_scroll(), before + 1);
    assert!(screen(&app, 140, 30).contains(&format!("▶bob: {at}")));
}

#[test]
fn a_search_while_browsing_puts_the_cursor_on_the_match() {
    let mut app = long_chat(40);
    submit_line(&mut app, "/search number 3");
    ctrl_up(&mut app);
    assert_eq!(browsed_text(&app).as_deref(), Some("message number 39"));
    let ctrl_r = |app: &mut TuiApp| key_mod(app, KeyCode::Char('r'), KeyModifiers::CONTROL);
    ctrl_r(&mut app);
    assert_eq!(browsed_text(&app).as_deref(), Some("message number 38"));
    for _ in 0..9 {
        ctrl_r(&mut app);
    }
    assert_eq!(browsed_text(&app).as_deref(), Some("message number 3"));
    // On screen, marked.
    let shown = screen(&app, 140, 30);
    assert!(
        shown
            .split('│')
            .any(|cell| cell.trim_end().ends_with("▶bob: message number 3")),
        "{shown}"
    );
}

#[test]
fn help_has_the_browsing_keys() {
    let mut app = resized(busy_app(), 160, 48);
    key(&mut app, KeyCode::Char('?'));
    let shown = screen(&app, 160, 48);
    for text in [
        "Ctrl-↑, Alt-↑",
        "browse, save a file",
        "Browsing the chat",
        "Enter, s",
        "save the file (/save)",
        "back to typing",
    ] {
        assert!(shown.contains(text), "help lacks {text}\n{shown}");
    }
}
