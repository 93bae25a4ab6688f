//! The screen's state and its update function: every key and session event goes through
//! [`TuiApp::update`], which changes the state and returns what to ask the session.

use std::collections::VecDeque;
use std::time::SystemTime;

use ratatui::layout::{Position, Rect};
use uuid::Uuid;

use super::action::Action;
pub use super::action::{Focus, Popup};
use super::activity;
use super::attention::{self, Attention};
use super::chat;
use super::editor::Editor;
use super::format::TimeFmt;
use super::geometry;
use super::keymap::KeyContext;
use super::theme::Palette;
use crate::app::activity::{Activity, Own};
use crate::app::model::stamp::Stamp;
use crate::app::runtime::command::{self, Front, Request};
use crate::app::runtime::view::{
    BatchKind, EquivocationRow, EventRow, ExchangeRow, PeerRow, Progress, SessionEvent, StatusInfo,
    TransferInfo, TransferState, UiCommand,
};
use crate::app::{AppOp, Applied, Model, MoveTo};

/// How many exchange rows and event rows the logs keep.
pub const LOG_LEN: usize = 500;

/// A draft of more lines than this (a big paste) asks before it is sent.
pub const CONFIRM_LINES: usize = 20;

/// The commands of the screen itself, beside the shared table
/// ([`command::COMMANDS`]): (name, arguments, what it does).
pub const SCREEN_COMMANDS: &[(&str, &str, &str)] = &[
    (
        "search",
        "TEXT",
        "find in the chat (Ctrl-R older, Ctrl-S newer)",
    ),
    ("bell", "", "turn the bell on mentions off or on"),
    (
        "select",
        "",
        "mouse off, so the terminal selects and copies (F3)",
    ),
];

/// Every command the input line takes, as (name, arguments, what it does): the shared
/// table's commands for the TUI, then the screen's own. Tab completes them, help lists
/// them.
pub fn commands() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    command::COMMANDS
        .iter()
        .filter(|c| c.fronts.contains(&Front::Tui))
        .map(|c| (c.name, c.usage, c.help))
        .chain(SCREEN_COMMANDS.iter().copied())
}

/// How the screen is set up for a run (flags and config).
#[derive(Debug, Clone)]
pub struct TuiOptions {
    /// Ring the terminal bell on a mention.
    pub bell: bool,
    /// How times show.
    pub time: TimeFmt,
    /// The colours: dark, light, or none (`NO_COLOR`: glyphs and marks carry every
    /// state).
    pub palette: Palette,
    /// Write URLs in the chat as OSC 8 hyperlinks (see `hyperlink`).
    pub links: bool,
    /// The last message read in the previous run.
    pub last_read: Option<Stamp>,
}

impl Default for TuiOptions {
    fn default() -> Self {
        TuiOptions {
            bell: true,
            time: TimeFmt::utc(),
            palette: Palette::Dark,
            links: false,
            last_read: None,
        }
    }
}

/// What the loop does to the terminal on the state's behalf (the state itself does no
/// I/O).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Clear and draw everything again.
    Redraw,
    /// Give the terminal back and stop the process until the shell resumes it.
    Suspend,
}

/// How far back from the newest message an arrival is looked for (see `chat_arrived`).
const RECENT: usize = 256;

/// How many join, leave and rename lines the chat keeps.
pub const NOTICES_LEN: usize = 50;

/// A join, leave or rename line in the chat: this screen's view, not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    /// The message it follows (`None`: before any).
    pub(crate) after: Option<Stamp>,
    /// When it was noticed.
    pub(crate) at: SystemTime,
    /// What happened ("cy is now known as cyrus").
    pub(crate) text: String,
}

/// A search of the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Search {
    /// What is looked for (any case).
    pub(crate) query: String,
    /// The message shown as the current match.
    pub(crate) hit: Option<Stamp>,
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

/// Columns of the input box's bottom border that a flash cannot use (its corners and the
/// spaces around the text).
pub(crate) const FLASH_MARGIN: u16 = 4;

impl Flash {
    /// What it says.
    pub fn text(&self) -> &str {
        match self {
            Flash::Info(t) | Flash::Warning(t) | Flash::Error(t) => t,
        }
    }
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
    /// Ids of events-log rows that are the dropped side of an equivocation.
    pub(crate) equivocated: VecDeque<Uuid>,
    pub(crate) status: StatusInfo,
    /// The live view's catch-up, while a large history streams in.
    pub(crate) progress: Option<Progress>,
    pub(crate) focus: Focus,
    pub(crate) log_tab: LogTab,
    editor: Editor,
    pub(crate) mode: InputMode,
    /// A long draft waits for a second Enter.
    confirming: bool,
    attention: Attention,
    pub(crate) search: Option<Search>,
    pub(crate) notices: VecDeque<Notice>,
    /// Mouse capture is off so the terminal's own selection works.
    select_mode: bool,
    pub(crate) time: TimeFmt,
    pub(crate) palette: Palette,
    /// URLs in the chat are written as hyperlinks.
    pub(crate) links: bool,
    /// Help rows scrolled past.
    pub(crate) help_scroll: usize,
    effects: Vec<Effect>,
    /// Chat rows scrolled back from the bottom; 0 follows new messages.
    pub(crate) chat_scroll: usize,
    /// The message under the chat cursor while browsing the chat (see `browse`).
    pub(crate) browse: Option<Stamp>,
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
    /// Files being saved (and the last state of those done), by file id.
    pub(crate) transfers: std::collections::HashMap<String, TransferInfo>,
    /// When this user's typing and presence notes are due.
    pub(crate) own: Own,
    /// The others' typing and presence.
    pub(crate) activity: Activity,
}

impl TuiApp {
    /// A screen for a session with this status, nothing folded yet.
    pub fn new(status: StatusInfo, now: SystemTime) -> Self {
        TuiApp {
            model: Model::new(),
            peers: Vec::new(),
            exchanges: VecDeque::new(),
            events: VecDeque::new(),
            equivocated: VecDeque::new(),
            status,
            progress: None,
            focus: Focus::Input,
            log_tab: LogTab::Exchanges,
            editor: Editor::default(),
            mode: InputMode::Chat,
            confirming: false,
            attention: Attention::default(),
            search: None,
            notices: VecDeque::new(),
            select_mode: false,
            time: TimeFmt::utc(),
            palette: Palette::Dark,
            links: false,
            help_scroll: 0,
            effects: Vec::new(),
            chat_scroll: 0,
            browse: None,
            list_selected: None,
            list_row: 0,
            peers_row: 0,
            log_scroll: 0,
            transfers: std::collections::HashMap::new(),
            popup: None,
            flash: None,
            last_removed: None,
            now,
            size: Rect::new(0, 0, 80, 24),
            quit: false,
            own: Own::new(activity::ms(now)),
            activity: Activity::default(),
        }
    }

    /// Applies the run's options.
    pub fn configure(&mut self, options: TuiOptions) {
        self.attention.set_bell(options.bell);
        self.attention.resume(options.last_read);
        self.time = options.time;
        self.palette = options.palette;
        self.links = options.links;
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

    /// The draft being typed.
    pub fn input(&self) -> &Editor {
        &self.editor
    }

    /// The attention state (unread, mentions, bell).
    pub fn attention(&self) -> &Attention {
        &self.attention
    }

    /// Whether mouse capture is off (select mode).
    pub fn select_mode(&self) -> bool {
        self.select_mode
    }

    /// The terminal's title: the unread count, the program, the room.
    pub fn title(&self) -> String {
        match self.attention.unread() {
            0 => format!("gossip-chat — {}", self.status.room),
            n => format!("({n}) gossip-chat — {}", self.status.room),
        }
    }

    /// Bells due since the last call (one per mention).
    pub fn take_bells(&mut self) -> usize {
        self.attention.take_bells()
    }

    /// What the loop must do to the terminal, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The facts the key map needs.
    pub fn key_context(&self) -> KeyContext {
        KeyContext {
            focus: self.focus,
            popup: self.popup,
            draft_empty: self.editor.is_empty(),
            word_before: self.editor.word_before().is_some(),
            browsing: self.browse.is_some(),
        }
    }

    /// The panels' places at the current size.
    pub(crate) fn areas(&self) -> geometry::Areas {
        geometry::areas(self.size, self.focus, self.editor.lines().len())
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
    pub(crate) fn chat_inner(&self) -> (usize, usize) {
        let a = geometry::areas(self.size, Focus::Input, self.editor.lines().len()).chat;
        (
            usize::from(a.width.saturating_sub(2)),
            usize::from(a.height.saturating_sub(2)),
        )
    }

    /// Handles one action; returns what to ask the session.
    pub fn update(&mut self, action: Action) -> Vec<UiCommand> {
        let touch = activity::touch_of(&action);
        let mut cmds = self.apply(action);
        cmds.extend(self.track_activity(touch));
        if self.chat_scroll == 0 {
            let newest = self.model.chat().next_back().map(|l| stamp_of(&l));
            self.attention.seen_bottom(newest);
        }
        cmds
    }

    fn apply(&mut self, action: Action) -> Vec<UiCommand> {
        // A key closes the popup and still does what it does (it is never swallowed).
        let passive = matches!(
            action,
            Action::Session(_)
                | Action::Tick(_)
                | Action::IdleCheck(_)
                | Action::Resize(..)
                | Action::TerminalFocus(_)
                | Action::HelpScroll(_)
                | Action::Escape
                | Action::Help
                | Action::Clock
        );
        if !passive {
            self.popup = None;
        }
        match action {
            Action::Quit => {
                self.quit = true;
                return vec![UiCommand::Quit];
            }
            Action::FocusNext => self.set_focus(self.focus.step(1)),
            Action::FocusPrev => self.set_focus(self.focus.step(-1)),
            Action::Escape => self.escape(),
            Action::Help => {
                self.popup = Some(Popup::Help);
                self.help_scroll = 0;
            }
            Action::HelpScroll(by) => {
                let max = super::help::max_scroll(self.size);
                self.help_scroll = self.help_scroll.saturating_add_signed(by).min(max);
            }
            Action::Clock => self.popup = Some(Popup::Clock),
            Action::Insert(c) => {
                self.confirming = false;
                self.editor.insert(c);
            }
            Action::Edit(op) => {
                self.confirming = false;
                self.editor.edit(op);
            }
            Action::Complete => self.complete(),
            Action::Paste(text) => self.paste(&text),
            Action::Up => self.editor.up(),
            Action::HistoryPrev => self.editor.history_prev(),
            Action::HistoryNext => self.editor.history_next(),
            Action::EditLast => self.edit_last(),
            Action::Down => self.editor.down(),
            Action::Submit => return self.submit(),
            Action::ScrollUp(n) => self.scroll_chat_up(n),
            Action::ScrollDown(n) => self.chat_scroll = self.chat_scroll.saturating_sub(n),
            Action::PageUp => self.page(-1),
            Action::PageDown => self.page(1),
            Action::ChatTop => self.scroll_chat_up(usize::MAX / 4),
            Action::ChatBottom => self.chat_scroll = 0,
            Action::SearchOlder => self.search_step(true),
            Action::SearchNewer => self.search_step(false),
            Action::ToggleSelect => self.toggle_select(),
            Action::Redraw => self.effects.push(Effect::Redraw),
            Action::Suspend => self.effects.push(Effect::Suspend),
            Action::Select(by) => self.select(by),
            Action::Toggle => return self.toggle(),
            Action::AddItem => {
                self.mode = InputMode::AddItem;
                self.editor.clear();
                self.focus = Focus::Input;
            }
            Action::EditItem => self.start_edit(),
            Action::RemoveItem => return self.remove(),
            Action::Undo => return self.undo(),
            Action::MoveItem(to) => return self.move_item(to),
            Action::Browse => self.browse_start(),
            Action::BrowseMove(by) => self.browse_move(by),
            Action::BrowseOldest => self.browse_end(true),
            Action::BrowseNewest => self.browse_end(false),
            Action::SaveSelected => return self.save_selected(),
            Action::SwitchLog => {
                self.log_tab = match self.log_tab {
                    LogTab::Exchanges => LogTab::Events,
                    LogTab::Events => LogTab::Exchanges,
                };
                self.log_scroll = 0;
            }
            Action::Session(ev) => self.session(ev),
            Action::Tick(now) => self.now = now,
            // Handled by `track_activity`, which sends what it makes due.
            Action::IdleCheck(_) => {}
            Action::Resize(w, h) => self.size = Rect::new(0, 0, w, h),
            Action::TerminalFocus(on) => self.attention.set_focused(on),
            Action::Wheel { column, row, up } => self.wheel(column, row, up),
            Action::Click { column, row } => {
                if let Some(focus) = geometry::panel_at(&self.areas(), column, row) {
                    self.set_focus(focus);
                }
            }
        }
        Vec::new()
    }

    /// Esc: closes the popup, else takes back a pending long send, else ends the search,
    /// else leaves a panel or an item edit for the input, else clears the draft (undo
    /// brings it back).
    fn escape(&mut self) {
        if self.popup.take().is_some() {
            return;
        }
        self.flash = None;
        if std::mem::take(&mut self.confirming) {
            return;
        }
        if self.browse.take().is_some() {
            return;
        }
        if self.search.take().is_some() {
            return;
        }
        if self.focus != Focus::Input || self.mode != InputMode::Chat {
            if self.mode != InputMode::Chat {
                self.editor.clear();
            }
            self.mode = InputMode::Chat;
            self.focus = Focus::Input;
            return;
        }
        self.editor.clear();
    }

    /// Up on an empty line: our last message, ready to change with `/edit last`; with no
    /// message of ours, the previous sent line.
    fn edit_last(&mut self) {
        let me = self.status.node_id;
        let last = self
            .model
            .chat()
            .rev()
            .find(|l| l.origin == me && !l.deleted && l.unsupported.is_none())
            .map(|l| l.text.to_string());
        match last {
            Some(text) => self.editor.set(&format!("/edit last {text}")),
            None => self.editor.history_prev(),
        }
    }

    fn paste(&mut self, text: &str) {
        self.confirming = false;
        self.popup = None;
        // A paste is meant for the draft: it ends browsing the chat.
        self.browse = None;
        self.focus = Focus::Input;
        self.editor.paste(text);
        let lines = self.editor.lines().len();
        if lines > 1 {
            self.flash = Some(Flash::Info(format!(
                "pasted: {lines} lines, Enter sends them as one message"
            )));
        }
    }

    fn complete(&mut self) {
        let commands: Vec<&str> = commands().map(|(name, _, _)| name).collect();
        let mut nicks: Vec<String> = self
            .peers
            .iter()
            .map(|p| self.peer_name(p.id, &p.name).to_string())
            .collect();
        nicks.extend(
            self.model
                .chat()
                .rev()
                .take(200)
                .map(|l| l.author.into_owned()),
        );
        if !self.editor.complete(&commands, &nicks) {
            self.flash = Some(Flash::Info("no completion".into()));
        }
    }

    fn toggle_select(&mut self) {
        self.select_mode = !self.select_mode;
        self.flash = Some(Flash::Info(if self.select_mode {
            "select mode: the mouse selects and copies; F3 or /select ends it".into()
        } else {
            "mouse back: clicks focus panels, the wheel scrolls".into()
        }));
    }

    /// The newest (`older`) or next newer match of the search, shown in the chat.
    fn search_step(&mut self, older: bool) {
        let Some(search) = self.search.clone() else {
            // No search yet: Ctrl-R starts one on the input line.
            if self.editor.is_empty() {
                self.editor.set("/search ");
                self.focus = Focus::Input;
            }
            return;
        };
        let query = search.query.to_lowercase();
        let matches = |l: &crate::app::ChatLine<'_>| l.text.to_lowercase().contains(&query);
        let found = if older {
            self.model
                .chat()
                .rev()
                .filter(|l| search.hit.is_none_or(|h| stamp_of(l) < h))
                .find(|l| matches(l))
                .map(|l| stamp_of(&l))
        } else {
            self.model
                .chat()
                .filter(|l| search.hit.is_some_and(|h| stamp_of(l) > h))
                .find(|l| matches(l))
                .map(|l| stamp_of(&l))
        };
        match found {
            Some(hit) => {
                self.search = Some(Search {
                    hit: Some(hit),
                    ..search
                });
                self.show_message(hit);
            }
            None => {
                let which = if older { "older" } else { "newer" };
                self.flash = Some(Flash::Info(format!(
                    "no {which} message with \"{}\"",
                    search.query
                )));
            }
        }
    }

    /// Scrolls so the message `at` shows a third of the way up the chat; while browsing,
    /// the cursor goes there too (a search then picks the message Enter acts on).
    fn show_message(&mut self, at: Stamp) {
        if self.browse.is_some() {
            self.browse = Some(at);
        }
        let (width, height) = self.chat_inner();
        let below = chat::rows_below(self, width, at);
        let max = chat::count_rows(self, width, usize::MAX / 4).saturating_sub(height);
        self.chat_scroll = below.saturating_sub(height / 3).min(max);
    }

    fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        if focus != Focus::Input {
            self.browse = None;
        }
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
        let wanted = self.chat_scroll.saturating_add(by);
        // Count rows only as far as needed, so scrolling stays cheap in a long history.
        let total = chat::count_rows(self, width, wanted.saturating_add(height));
        self.chat_scroll = wanted.min(total.saturating_sub(height));
    }

    fn submit(&mut self) -> Vec<UiCommand> {
        let line = self.editor.text();
        if line.trim().is_empty() {
            return Vec::new();
        }
        let lines = self.editor.lines().len();
        if self.mode == InputMode::Chat && lines > CONFIRM_LINES && !self.confirming {
            // Say what is wrong first: no point confirming a message that cannot go.
            if let Err(e) = AppOp::chat(&line) {
                return self.error(format!("not sent: {e}"));
            }
            // A big paste sent by mistake cannot be taken back: ask once.
            self.confirming = true;
            self.flash = Some(Flash::Warning(format!(
                "send {lines} lines as one message? Enter sends, Esc goes back to editing"
            )));
            return Vec::new();
        }
        self.confirming = false;
        // A stale message would read as the outcome of this line.
        self.flash = None;
        if self.mode == InputMode::Chat
            && let Some(done) = self.screen_command(&line)
        {
            if done {
                self.editor.take();
            }
            return Vec::new();
        }
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
                self.editor.take();
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

    /// The commands of the screen itself (no op, no session); `None`: not one of them.
    /// `Some(false)`: refused, the line stays.
    fn screen_command(&mut self, line: &str) -> Option<bool> {
        let rest = line.trim_start().strip_prefix('/')?;
        let (cmd, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let arg = arg.trim();
        match cmd {
            "search" if arg.is_empty() => {
                self.flash = Some(Flash::Error("/search TEXT: what to look for".into()));
                Some(false)
            }
            "search" => {
                self.search = Some(Search {
                    query: arg.to_string(),
                    hit: None,
                });
                self.search_step(true);
                Some(true)
            }
            "bell" => {
                let on = !self.attention.bell();
                self.attention.set_bell(on);
                let state = if on { "on" } else { "off" };
                self.flash = Some(Flash::Info(format!("the bell on mentions is {state}")));
                Some(true)
            }
            "select" => {
                self.toggle_select();
                Some(true)
            }
            _ => None,
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
                self.help_scroll = 0;
                Vec::new()
            }
            Request::Quit => vec![UiCommand::Quit],
            Request::Unpeer(addr) => vec![UiCommand::Unpeer(addr)],
            Request::Forget => vec![UiCommand::Forget],
            Request::Whois(name) => vec![UiCommand::Whois(name)],
            Request::SendFile(path) => {
                self.flash = Some(Flash::Info(format!("hashing {}…", path.display())));
                vec![UiCommand::SendFile(path)]
            }
            Request::SaveFile(request) => {
                self.flash = Some(Flash::Info(format!("saving {}…", request.name)));
                vec![UiCommand::SaveFile(request)]
            }
            Request::Files => {
                self.list_files();
                Vec::new()
            }
            Request::Away(away) => {
                let cmds = self.set_availability(Some(away));
                let label = self.own_availability().label();
                self.flash = Some(Flash::Info(format!(
                    "the others see you {label}; /back when you are back"
                )));
                cmds
            }
            Request::Back => {
                self.flash = Some(Flash::Info("the others see you here".into()));
                self.set_availability(None)
            }
            // Offered to scripts only: here, keystrokes say it.
            Request::Typing => Vec::new(),
        })
    }

    /// `/files`: one chat notice per file offered, newest last.
    fn list_files(&mut self) {
        let after = self.model.chat().next_back().map(|l| stamp_of(&l));
        let mut rows: Vec<String> = self
            .model
            .files()
            .filter_map(|l| {
                let f = l.file?;
                Some(format!(
                    "file {} {} ({}) from {}",
                    &f.file_id[..12],
                    f.name,
                    super::format::bytes(f.size),
                    l.author
                ))
            })
            .collect();
        if rows.is_empty() {
            rows.push("no file has been offered in this room (/send PATH offers one)".into());
        }
        for text in rows {
            if self.notices.len() == NOTICES_LEN {
                self.notices.pop_front();
            }
            self.notices.push_back(Notice {
                after,
                at: self.now,
                text,
            });
        }
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
        let a = self.areas();
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
                self.browse_follow_view();
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
        let a = self.areas();
        let at = Position::new(column, row);
        let under = |r: Option<Rect>| r.is_some_and(|r| r.contains(at));
        let by: isize = if up { -1 } else { 1 };
        if under(a.list) {
            self.select_item(by);
        } else if under(a.peers) {
            self.select_peer(by);
        } else if under(a.log) {
            self.scroll_log(3 * by);
        } else {
            if up {
                self.scroll_chat_up(3);
            } else {
                self.chat_scroll = self.chat_scroll.saturating_sub(3);
            }
            self.browse_follow_view();
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
        self.editor.set(&text);
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
                    BatchKind::Live => {
                        // A history streaming in is not news: no bells, no unread counts.
                        let live = !batch.progress.catching_up;
                        batch.rows.into_iter().for_each(|r| self.fold_row(r, live));
                    }
                    BatchKind::Reload { first } => {
                        if first {
                            self.model = Model::new();
                        }
                        self.load(&batch.rows);
                    }
                }
            }
            SessionEvent::Progress(p) => self.progress = p.catching_up.then_some(p),
            SessionEvent::Created(row) | SessionEvent::Received(row) => self.fold_row(row, true),
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
            SessionEvent::Notice(msg) => self.session_flash(Flash::Info(msg)),
            SessionEvent::Warning(msg) => self.session_flash(Flash::Warning(msg)),
            SessionEvent::Equivocation(row) => {
                let EquivocationRow {
                    at,
                    equivocation: eq,
                } = *row;
                self.flash = Some(Flash::Warning(format!(
                    "{} signed two different events as seq {}; the room keeps one",
                    self.model.display_name(eq.origin()),
                    eq.seq()
                )));
                if self.log_scroll > 0 && self.log_tab == LogTab::Events {
                    self.log_scroll += 1;
                }
                push_bounded(&mut self.equivocated, eq.loser.id);
                push_bounded(
                    &mut self.events,
                    EventRow {
                        at,
                        event: eq.loser,
                        from: None,
                        age_ms: 0,
                    },
                );
            }
            SessionEvent::Status(status) => self.status = status,
            SessionEvent::Transfer(t) => {
                match &t.state {
                    TransferState::Saved(path) => {
                        self.flash = Some(Flash::Info(format!(
                            "saved {} to {}",
                            t.name,
                            path.display()
                        )));
                    }
                    TransferState::Failed(why) => {
                        self.flash = Some(Flash::Warning(format!("{} not saved: {why}", t.name)));
                    }
                    TransferState::Running => {}
                }
                self.transfers.insert(t.file_id.clone(), t);
            }
            SessionEvent::Signal(note) => self.on_signal(note),
            SessionEvent::Presence(note) => self.add_notice(note.at, note.to_string()),
            SessionEvent::Answer(lines) => {
                for line in lines {
                    self.add_notice(self.now, line);
                }
            }
        }
    }

    /// Shows the session's `flash` under the input; one too long for that line is also
    /// put in the chat in full, so no error is only ever seen cut (the flash then ends in
    /// "…").
    fn session_flash(&mut self, flash: Flash) {
        let text = flash.text();
        let room = geometry::areas(self.size, self.focus, self.editor.lines().len())
            .input
            .width
            .saturating_sub(FLASH_MARGIN);
        if ratatui::text::Span::raw(text).width() > usize::from(room) {
            let line = match &flash {
                Flash::Warning(_) | Flash::Error(_) => format!("⚠ {text}"),
                Flash::Info(_) => text.to_string(),
            };
            self.add_notice(self.now, line);
        }
        self.flash = Some(flash);
    }

    /// A line for the chat after the newest message (a join, a `/whois` answer), shown
    /// but never stored; the oldest goes past [`NOTICES_LEN`].
    fn add_notice(&mut self, at: SystemTime, text: String) {
        let after = self.model.chat().next_back().map(|l| stamp_of(&l));
        if self.notices.len() == NOTICES_LEN {
            self.notices.pop_front();
        }
        self.notices.push_back(Notice { after, at, text });
        if self.chat_scroll > 0 {
            self.chat_scroll += 1;
        }
    }
}

/// The stamp of a chat line (its place in the total order).
pub(crate) fn stamp_of(l: &crate::app::ChatLine<'_>) -> Stamp {
    Stamp {
        hlc: l.hlc,
        origin: l.origin,
        seq: l.seq,
    }
}

impl TuiApp {
    /// A live chat message was folded: keep a scrolled-up view in place, count it, ring.
    fn chat_arrived(&mut self, stamp: Stamp, prev_newest: Option<u64>, live: bool) {
        // Browsing holds the view like scrolling back does: the cursor stays on screen.
        let scrolled = self.chat_scroll > 0 || self.browse.is_some();
        if !live && !scrolled {
            return;
        }
        let width = self.chat_inner().0;
        // A new message is almost always among the newest; one that lands far back (an
        // old event arriving late) is above the rows on screen and not news: a bounded
        // look keeps a long catch-up linear.
        let Some(line) = self
            .model
            .chat()
            .rev()
            .take(RECENT)
            .find(|l| stamp_of(l) == stamp)
        else {
            return;
        };
        let mut rows = 0;
        if scrolled {
            // Keep the rows the user is reading in place while new ones arrive.
            rows = chat::message_height(self, &line, width);
            let day = self.time.day_ms(line.created_at_ms);
            if prev_newest.is_none_or(|p| self.time.day_ms(p) != day) {
                rows += 1;
            }
        }
        let mine = stamp.origin == self.status.node_id;
        let mentioned = !mine && !attention::mentions(line.text, &self.status.name).is_empty();
        drop(line);
        self.chat_scroll += rows;
        if live {
            self.attention.arrived(stamp, mine, mentioned, scrolled);
        }
    }

    /// Folds one new row into the model and the events log, keeping a scrolled-back chat
    /// or log where the user is reading; `live`: it is news (bells, unread counts).
    fn fold_row(&mut self, row: EventRow, live: bool) {
        let prev_newest = self.model.chat().next_back().map(|l| l.created_at_ms);
        let applied = self.model.apply(&row.event);
        // A new message (an edit or a delete changes one in place).
        if matches!(applied, Applied::Folded { .. })
            && matches!(
                AppOp::decode(&row.event.payload),
                Ok(AppOp::Chat { .. } | AppOp::Action { .. } | AppOp::Reply { .. })
            )
        {
            self.chat_arrived(Stamp::of(&row.event), prev_newest, live);
            if live {
                self.message_from(row.event.origin);
            }
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
