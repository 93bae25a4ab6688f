//! The screen's state and its update function: every key and session event goes through
//! [`TuiApp::update`], which changes the state and returns what to ask the session.

use std::collections::VecDeque;
use std::time::SystemTime;

use ratatui::layout::{Position, Rect};
use uuid::Uuid;

use super::action::Action;
use super::chat;
use super::input::LineEditor;
use super::layout;
use crate::app::runtime::command::{self, Front, Request};
use crate::app::runtime::view::{
    BatchKind, EventRow, ExchangeRow, PeerRow, Progress, SessionEvent, StatusInfo, UiCommand,
};
use crate::app::{AppOp, Applied, Model, MoveTo};

/// How many exchange rows and event rows the logs keep.
pub const LOG_LEN: usize = 500;

/// The panel that takes keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The input line (and the chat above it).
    Input,
    /// The shared list.
    List,
    /// The peers.
    Peers,
    /// The exchanges / events log.
    Log,
}

impl Focus {
    const ORDER: [Focus; 4] = [Focus::Input, Focus::List, Focus::Peers, Focus::Log];

    fn step(self, by: isize) -> Focus {
        let i = Self::ORDER.iter().position(|f| *f == self).unwrap_or(0);
        let n = Self::ORDER.len() as isize;
        let j = (i as isize + by).rem_euclid(n);
        Self::ORDER[usize::try_from(j).unwrap_or(0)]
    }
}

/// Which log the log panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTab {
    /// Exchanges with peers.
    Exchanges,
    /// The raw event stream.
    Events,
}

/// What Enter does with the input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// Chat and `/` commands.
    Chat,
    /// The line is a new list item.
    AddItem,
    /// The line is the new text of this item.
    EditItem(Uuid),
}

/// A window over the panels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Popup {
    /// Every key.
    Help,
    /// The vector clock.
    Clock,
}

/// A one-line message under the input (the last one wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    /// For information.
    Info(String),
    /// Something went wrong in the session.
    Warning(String),
    /// The user's input was refused.
    Error(String),
}

/// An item as it was when removed, to put it back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Removed {
    text: String,
    pos: String,
    done: bool,
}

/// Everything the screen shows and remembers.
#[derive(Debug)]
pub struct TuiApp {
    pub(crate) model: Model,
    pub(crate) peers: Vec<PeerRow>,
    pub(crate) exchanges: VecDeque<ExchangeRow>,
    pub(crate) events: VecDeque<EventRow>,
    pub(crate) status: StatusInfo,
    /// The live view's catch-up, while a large history streams in.
    pub(crate) progress: Option<Progress>,
    pub(crate) focus: Focus,
    pub(crate) log_tab: LogTab,
    pub(crate) input: LineEditor,
    pub(crate) mode: InputMode,
    /// Chat rows scrolled back from the bottom; 0 follows new messages.
    pub(crate) chat_scroll: usize,
    /// The selected list item, and its row (kept for when the item disappears).
    pub(crate) list_selected: Option<Uuid>,
    pub(crate) list_row: usize,
    pub(crate) peers_row: usize,
    /// Log rows scrolled back from the newest.
    pub(crate) log_scroll: usize,
    pub(crate) popup: Option<Popup>,
    pub(crate) flash: Option<Flash>,
    last_removed: Option<Removed>,
    pub(crate) now: SystemTime,
    pub(crate) size: Rect,
    quit: bool,
}

impl TuiApp {
    /// A screen for a session with this status, nothing folded yet.
    pub fn new(status: StatusInfo, now: SystemTime) -> Self {
        TuiApp {
            model: Model::new(),
            peers: Vec::new(),
            exchanges: VecDeque::new(),
            events: VecDeque::new(),
            status,
            progress: None,
            focus: Focus::Input,
            log_tab: LogTab::Exchanges,
            input: LineEditor::default(),
            mode: InputMode::Chat,
            chat_scroll: 0,
            list_selected: None,
            list_row: 0,
            peers_row: 0,
            log_scroll: 0,
            popup: None,
            flash: None,
            last_removed: None,
            now,
            size: Rect::new(0, 0, 80, 24),
            quit: false,
        }
    }

    /// Folds the events stored before the screen opened. They go into the model only,
    /// not the live events log, which shows what happens while the screen is open.
    pub fn load<'a>(&mut self, stored: impl IntoIterator<Item = &'a EventRow>) {
        for row in stored {
            self.model.apply(&row.event);
        }
    }

    /// The folded app state.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The panel that takes keys.
    pub fn focus(&self) -> Focus {
        self.focus
    }

    /// The open popup.
    pub fn popup(&self) -> Option<Popup> {
        self.popup
    }

    /// The input line.
    pub fn input(&self) -> &LineEditor {
        &self.input
    }

    /// The message under the input.
    pub fn flash(&self) -> Option<&Flash> {
        self.flash.as_ref()
    }

    /// Chat rows scrolled back (0: following the newest).
    pub fn chat_scroll(&self) -> usize {
        self.chat_scroll
    }

    /// Whether the user asked to leave.
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// The selected list item.
    pub fn selected_item(&self) -> Option<Uuid> {
        self.resolve_selection()
    }

    /// The name to show for a peer: the nickname its events carry (the freshest), else the
    /// name the session gave (`fallback`: mDNS name or short id).
    pub(crate) fn peer_name<'a>(
        &'a self,
        id: crate::protocol::NodeId,
        fallback: &'a str,
    ) -> &'a str {
        self.model.nick(id).unwrap_or(fallback)
    }

    /// The chat's inner size (without borders) at the current terminal size, where it shows:
    /// a narrow screen hides it while the log has focus, and scrolling must not be reckoned
    /// in a zero-width chat then.
    fn chat_inner(&self) -> (usize, usize) {
        let a = layout::areas(self.size, Focus::Input).chat;
        (
            usize::from(a.width.saturating_sub(2)),
            usize::from(a.height.saturating_sub(2)),
        )
    }

    /// Handles one action; returns what to ask the session.
    pub fn update(&mut self, action: Action) -> Vec<UiCommand> {
        match action {
            Action::Quit => {
                self.quit = true;
                return vec![UiCommand::Quit];
            }
            Action::FocusNext => self.set_focus(self.focus.step(1)),
            Action::FocusPrev => self.set_focus(self.focus.step(-1)),
            Action::Escape => {
                if self.popup.take().is_none() {
                    if self.mode != InputMode::Chat {
                        self.input.clear();
                    }
                    self.mode = InputMode::Chat;
                    self.focus = Focus::Input;
                    self.flash = None;
                }
            }
            Action::Help => self.popup = Some(Popup::Help),
            Action::Clock => self.popup = Some(Popup::Clock),
            Action::Insert(c) => self.input.insert(c),
            Action::Backspace => self.input.backspace(),
            Action::Delete => self.input.delete(),
            Action::Left => self.input.left(),
            Action::Right => self.input.right(),
            Action::Home => self.input.home(),
            Action::End => self.input.end(),
            Action::HistoryPrev => self.input.history_prev(),
            Action::HistoryNext => self.input.history_next(),
            Action::Submit => return self.submit(),
            Action::ScrollUp(n) => self.scroll_chat_up(n),
            Action::ScrollDown(n) => self.chat_scroll = self.chat_scroll.saturating_sub(n),
            Action::PageUp => self.page(-1),
            Action::PageDown => self.page(1),
            Action::Select(by) => self.select(by),
            Action::Toggle => return self.toggle(),
            Action::AddItem => {
                self.mode = InputMode::AddItem;
                self.input.clear();
                self.focus = Focus::Input;
            }
            Action::EditItem => self.start_edit(),
            Action::RemoveItem => return self.remove(),
            Action::Undo => return self.undo(),
            Action::MoveItem(to) => return self.move_item(to),
            Action::SwitchLog => {
                self.log_tab = match self.log_tab {
                    LogTab::Exchanges => LogTab::Events,
                    LogTab::Events => LogTab::Exchanges,
                };
                self.log_scroll = 0;
            }
            Action::Session(ev) => self.session(ev),
            Action::Tick(now) => self.now = now,
            Action::Resize(w, h) => self.size = Rect::new(0, 0, w, h),
            Action::Wheel { column, row, up } => self.wheel(column, row, up),
        }
        Vec::new()
    }

    fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        if focus == Focus::List && self.list_selected.is_none() {
            self.list_selected = self.model.list().next().map(|i| i.id);
            self.list_row = 0;
        }
    }

    fn error(&mut self, msg: impl Into<String>) -> Vec<UiCommand> {
        self.flash = Some(Flash::Error(msg.into()));
        Vec::new()
    }

    fn scroll_chat_up(&mut self, by: usize) {
        let (width, height) = self.chat_inner();
        let wanted = self.chat_scroll + by;
        // Count rows only as far as needed, so scrolling stays cheap in a long history.
        let limit = wanted + height;
        let mut total = 0;
        let today = super::theme::day_of(self.now);
        for line in self.model.chat().rev() {
            total += chat::message_height(&line, width, today);
            if total >= limit {
                break;
            }
        }
        self.chat_scroll = wanted.min(total.saturating_sub(height));
    }

    fn submit(&mut self) -> Vec<UiCommand> {
        let line = self.input.text().to_string();
        if line.trim().is_empty() {
            return Vec::new();
        }
        // A stale message would read as the outcome of this line.
        self.flash = None;
        let result = match self.mode {
            InputMode::Chat => self.command(&line),
            InputMode::AddItem => self.add_item(&line),
            InputMode::EditItem(item) => match AppOp::list_edit(item, &line) {
                Ok(op) => Ok(vec![UiCommand::Submit(op)]),
                Err(e) => Err(format!("cannot edit the item: {e}")),
            },
        };
        match result {
            Ok(cmds) => {
                self.input.take();
                if self.mode != InputMode::Chat {
                    self.mode = InputMode::Chat;
                    self.focus = Focus::List;
                }
                self.chat_scroll = 0;
                if cmds.contains(&UiCommand::Quit) {
                    self.quit = true;
                }
                cmds
            }
            // The line stays, so the user can fix it.
            Err(msg) => self.error(msg),
        }
    }

    /// Selects an item about to be added: once folded, it is what the user looks at next.
    fn select_new_item(&mut self, item: Uuid) {
        self.list_selected = Some(item);
        self.list_row = self.model.list_len();
    }

    fn add_item(&mut self, text: &str) -> Result<Vec<UiCommand>, String> {
        match self.model.new_item_op(text, None) {
            Ok(op) => {
                if let AppOp::ListAdd { item, .. } = &op {
                    self.select_new_item(*item);
                }
                Ok(vec![UiCommand::Submit(op)])
            }
            Err(e) => Err(format!("cannot add the item: {e}")),
        }
    }

    /// A line typed in chat mode: a `/` command or a message, by the shared parser.
    fn command(&mut self, line: &str) -> Result<Vec<UiCommand>, String> {
        let request = command::interpret(line, Front::Tui, &self.model, self.status.node_id)
            .map_err(|e| e.to_string())?;
        Ok(match request {
            Request::Nothing | Request::State => Vec::new(),
            Request::Op(op) => {
                match &op {
                    AppOp::Nick { name } => {
                        self.flash = Some(Flash::Info(format!("others now see you as {name}")));
                    }
                    // Select the new item once it is folded: it is what the user looks at next.
                    AppOp::ListAdd { item, .. } => self.select_new_item(*item),
                    _ => {}
                }
                vec![UiCommand::Submit(op)]
            }
            Request::Connect(addr) => {
                self.flash = Some(Flash::Info(format!("connecting to {addr}…")));
                vec![UiCommand::Connect(addr)]
            }
            Request::Help => {
                self.popup = Some(Popup::Help);
                Vec::new()
            }
            Request::Quit => vec![UiCommand::Quit],
            Request::Unpeer(addr) => vec![UiCommand::Unpeer(addr)],
            Request::Forget => vec![UiCommand::Forget],
            Request::Whois(name) => vec![UiCommand::Whois(name)],
        })
    }

    /// The selected item, or the one now at the remembered row if it went away.
    fn resolve_selection(&self) -> Option<Uuid> {
        if let Some(id) = self.list_selected
            && self.model.item(id).is_some()
        {
            return Some(id);
        }
        let len = self.model.list_len();
        if len == 0 {
            return None;
        }
        self.model
            .list()
            .nth(self.list_row.min(len - 1))
            .map(|i| i.id)
    }

    /// The row of the selected item, for rendering.
    pub(crate) fn selected_row(&self) -> Option<usize> {
        let id = self.resolve_selection()?;
        self.model.list().position(|i| i.id == id)
    }

    /// Pages the focused list or log, else the chat; `dir` is -1 (up) or 1 (down).
    fn page(&mut self, dir: isize) {
        let a = layout::areas(self.size, self.focus);
        // A page keeps one row of context; borders and the header row are not rows.
        let rows = |r: Option<Rect>, chrome: u16| {
            r.map_or(1, |r| r.height.saturating_sub(chrome + 1).max(1)) as isize
        };
        match self.focus {
            Focus::List => self.select_item(dir * rows(a.list, 2)),
            Focus::Log => self.scroll_log(dir * rows(a.log, 3)),
            Focus::Input | Focus::Peers => {
                let page = self.chat_inner().1.saturating_sub(1).max(1);
                if dir < 0 {
                    self.scroll_chat_up(page);
                } else {
                    self.chat_scroll = self.chat_scroll.saturating_sub(page);
                }
            }
        }
    }

    fn select(&mut self, by: isize) {
        match self.focus {
            Focus::List => self.select_item(by),
            Focus::Peers => self.select_peer(by),
            Focus::Log => self.scroll_log(by),
            Focus::Input => {}
        }
    }

    fn select_item(&mut self, by: isize) {
        let len = self.model.list_len();
        if len == 0 {
            return;
        }
        let row = self.selected_row().unwrap_or(0);
        let next = row.saturating_add_signed(by).min(len - 1);
        self.list_selected = self.model.list().nth(next).map(|i| i.id);
        self.list_row = next;
    }

    fn select_peer(&mut self, by: isize) {
        let last = self.peers.len().saturating_sub(1);
        self.peers_row = self.peers_row.saturating_add_signed(by).min(last);
    }

    fn scroll_log(&mut self, by: isize) {
        let len = match self.log_tab {
            LogTab::Exchanges => self.exchanges.len(),
            LogTab::Events => self.events.len(),
        };
        // Down goes towards older rows; the newest is at the top.
        self.log_scroll = self
            .log_scroll
            .saturating_add_signed(by)
            .min(len.saturating_sub(1));
    }

    /// The mouse wheel scrolls the panel under the pointer, whatever has focus.
    fn wheel(&mut self, column: u16, row: u16, up: bool) {
        let a = layout::areas(self.size, self.focus);
        let at = Position::new(column, row);
        let under = |r: Option<Rect>| r.is_some_and(|r| r.contains(at));
        let by: isize = if up { -1 } else { 1 };
        if under(a.list) {
            self.select_item(by);
        } else if under(a.peers) {
            self.select_peer(by);
        } else if under(a.log) {
            self.scroll_log(3 * by);
        } else if up {
            self.scroll_chat_up(3);
        } else {
            self.chat_scroll = self.chat_scroll.saturating_sub(3);
        }
    }

    fn toggle(&mut self) -> Vec<UiCommand> {
        let Some(id) = self.resolve_selection() else {
            return self.error("the list is empty: press a to add an item");
        };
        match self.model.toggle_op(id) {
            Ok(op) => vec![UiCommand::Submit(op)],
            Err(e) => self.error(e.to_string()),
        }
    }

    fn start_edit(&mut self) {
        let Some(item) = self.resolve_selection().and_then(|id| self.model.item(id)) else {
            self.flash = Some(Flash::Error("no item selected".into()));
            return;
        };
        let (id, text) = (item.id, item.text.to_string());
        self.mode = InputMode::EditItem(id);
        self.input.set(&text);
        self.focus = Focus::Input;
    }

    fn remove(&mut self) -> Vec<UiCommand> {
        let Some(item) = self.resolve_selection().and_then(|id| self.model.item(id)) else {
            return self.error("no item selected");
        };
        let removed = Removed {
            text: item.text.to_string(),
            pos: item.pos.to_string(),
            done: item.done,
        };
        let id = item.id;
        self.flash = Some(Flash::Info(format!(
            "removed \"{}\": press u to undo",
            removed.text
        )));
        self.last_removed = Some(removed);
        vec![UiCommand::Submit(AppOp::list_remove(id))]
    }

    fn undo(&mut self) -> Vec<UiCommand> {
        let Some(r) = self.last_removed.take() else {
            return self.error("nothing to undo");
        };
        // A tombstone is final, so the item comes back as a new one in the same place.
        let id = Uuid::new_v4();
        let op = match AppOp::list_add(id, &r.text, &r.pos) {
            Ok(op) => op,
            Err(e) => return self.error(format!("cannot restore the item: {e}")),
        };
        let mut cmds = vec![UiCommand::Submit(op)];
        if r.done {
            cmds.push(UiCommand::Submit(AppOp::list_check(id, true)));
        }
        self.list_selected = Some(id);
        self.flash = Some(Flash::Info(format!("restored \"{}\"", r.text)));
        cmds
    }

    fn move_item(&mut self, to: MoveTo) -> Vec<UiCommand> {
        let Some(id) = self.resolve_selection() else {
            return Vec::new();
        };
        self.list_selected = Some(id);
        match self.model.move_op(id, to) {
            Ok(op) => {
                self.list_row = match to {
                    MoveTo::Down => self.list_row.saturating_add(1),
                    _ => self.list_row.saturating_sub(1),
                };
                vec![UiCommand::Submit(op)]
            }
            // At the edge there is nowhere to go; not worth a message.
            Err(crate::app::ListOpError::AtEdge) => Vec::new(),
            Err(e) => self.error(e.to_string()),
        }
    }

    fn session(&mut self, ev: SessionEvent) {
        match ev {
            SessionEvent::Events(batch) => {
                self.progress = batch.progress.catching_up.then_some(batch.progress);
                match batch.kind {
                    BatchKind::Live => batch.rows.into_iter().for_each(|r| self.fold_row(r)),
                    BatchKind::Reload { first } => {
                        if first {
                            self.model = Model::new();
                        }
                        self.load(&batch.rows);
                    }
                }
            }
            SessionEvent::Progress(p) => self.progress = p.catching_up.then_some(p),
            SessionEvent::Created(row) | SessionEvent::Received(row) => self.fold_row(row),
            SessionEvent::Peers(peers) => {
                self.peers = peers;
                self.peers_row = self.peers_row.min(self.peers.len().saturating_sub(1));
            }
            SessionEvent::Exchange(row) => {
                if self.log_scroll > 0 && self.log_tab == LogTab::Exchanges {
                    self.log_scroll += 1;
                }
                push_bounded(&mut self.exchanges, row);
            }
            SessionEvent::Notice(msg) => self.flash = Some(Flash::Info(msg)),
            SessionEvent::Warning(msg) => self.flash = Some(Flash::Warning(msg)),
            SessionEvent::Status(status) => self.status = status,
            SessionEvent::Presence(note) => self.flash = Some(Flash::Info(note.to_string())),
        }
    }
}

impl TuiApp {
    /// Folds one new row into the model and the events log, keeping a scrolled-back chat
    /// or log where the user is reading.
    fn fold_row(&mut self, row: EventRow) {
        let applied = self.model.apply(&row.event);
        if self.chat_scroll > 0
            && matches!(applied, Applied::Folded { kind: "chat" })
            && let Ok(AppOp::Chat { text }) = AppOp::decode(&row.event.payload)
        {
            let width = self.chat_inner().0;
            let name = self.model.display_name(row.event.origin);
            let today = super::theme::day_of(self.now);
            self.chat_scroll +=
                chat::text_height(name.as_ref(), &text, row.event.created_at_ms, width, today);
        }
        if self.log_scroll > 0 && self.log_tab == LogTab::Events {
            self.log_scroll += 1;
        }
        push_bounded(&mut self.events, row);
    }
}

fn push_bounded<T>(log: &mut VecDeque<T>, row: T) {
    if log.len() == LOG_LEN {
        log.pop_front();
    }
    log.push_back(row);
}
