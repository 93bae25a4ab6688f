//! What the user or the session asks of the screen. A leaf module: it names things and
//! imports nothing else of the screen, so the key map, the state and the panels can all use
//! it without importing each other.

use std::time::SystemTime;

use crate::app::MoveTo;
use crate::app::runtime::view::SessionEvent;

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

    /// The panel `by` steps along the Tab order (wrapping).
    pub(crate) fn step(self, by: isize) -> Focus {
        let i = Self::ORDER.iter().position(|f| *f == self).unwrap_or(0);
        let n = Self::ORDER.len() as isize;
        let j = (i as isize + by).rem_euclid(n);
        Self::ORDER[usize::try_from(j).unwrap_or(0)]
    }
}

/// A window over the panels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Popup {
    /// Every key.
    Help,
    /// The vector clock.
    Clock,
}

/// An edit of the input draft (the line editor's own keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOp {
    /// One character left.
    Left,
    /// One character right.
    Right,
    /// One word left.
    WordLeft,
    /// One word right.
    WordRight,
    /// To the start of the line.
    Home,
    /// To the end of the line.
    End,
    /// Delete before the cursor.
    Backspace,
    /// Delete under the cursor.
    Delete,
    /// Delete from the start of the line to the cursor.
    KillToStart,
    /// Delete from the cursor to the end of the line.
    KillToEnd,
    /// Delete the word before the cursor.
    KillWordBack,
    /// Delete the word after the cursor.
    KillWordForward,
    /// Put back the text the last kill removed.
    Yank,
    /// Undo the last edit.
    Undo,
    /// Redo what undo took back.
    Redo,
    /// Start a new line in the draft (a multi-line message).
    Newline,
}

/// One thing to do to the [`TuiApp`](super::TuiApp).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Leave.
    Quit,
    /// Focus the next panel.
    FocusNext,
    /// Focus the previous panel.
    FocusPrev,
    /// Close the popup, clear the draft or the search, cancel an item edit, focus the input.
    Escape,
    /// Open the help popup.
    Help,
    /// Scroll the help popup by this many rows.
    HelpScroll(isize),
    /// Open the vector clock popup.
    Clock,
    /// Type a character.
    Insert(char),
    /// Edit the draft.
    Edit(EditOp),
    /// Complete the nick or `/command` before the cursor (Tab).
    Complete,
    /// Text pasted at once (bracketed paste): one draft, however many lines.
    Paste(String),
    /// Up: the line above in a multi-line draft, else the previous sent line.
    Up,
    /// Down: the line below in a multi-line draft, else the next sent line.
    Down,
    /// The previous sent draft (whatever line the cursor is on).
    HistoryPrev,
    /// The next sent draft.
    HistoryNext,
    /// Put `/edit last TEXT` with our last message in the draft (Up on an empty line).
    EditLast,
    /// Send the draft.
    Submit,
    /// Scroll the chat back by this many rows.
    ScrollUp(usize),
    /// Scroll the chat forward by this many rows.
    ScrollDown(usize),
    /// Scroll the chat back a page.
    PageUp,
    /// Scroll the chat forward a page.
    PageDown,
    /// The chat's oldest message.
    ChatTop,
    /// The chat's newest message (and what is new since scrolling up).
    ChatBottom,
    /// Search the chat: the previous (older) match of the search, or start one.
    SearchOlder,
    /// Search the chat: the next (newer) match.
    SearchNewer,
    /// Turn mouse capture off (native selection and copy) or back on.
    ToggleSelect,
    /// Draw the whole screen again.
    Redraw,
    /// Suspend to the shell (Ctrl-Z).
    Suspend,
    /// Move the selection of the focused panel by this many rows.
    Select(isize),
    /// Check or uncheck the selected item.
    Toggle,
    /// Start typing a new item.
    AddItem,
    /// Start editing the selected item.
    EditItem,
    /// Remove the selected item.
    RemoveItem,
    /// Put back the last removed item.
    Undo,
    /// Move the selected item.
    MoveItem(MoveTo),
    /// Switch between the exchanges and events logs.
    SwitchLog,
    /// Start browsing the chat: a cursor on the newest message in view (Ctrl-↑). Keys
    /// then move it instead of typing, until Esc.
    Browse,
    /// Move the chat cursor by this many messages (negative: older), stopping at the ends.
    BrowseMove(isize),
    /// Put the chat cursor on the oldest message.
    BrowseOldest,
    /// Put the chat cursor on the newest message.
    BrowseNewest,
    /// Save the file of the message under the chat cursor, as `/save` does (Enter or `s`
    /// while browsing).
    SaveSelected,
    /// Something from the session.
    Session(SessionEvent),
    /// The clock moved (for "3s ago" fields).
    Tick(SystemTime),
    /// The terminal has a new size.
    Resize(u16, u16),
    /// The terminal window gained (`true`) or lost the user's focus.
    TerminalFocus(bool),
    /// The mouse wheel turned one notch over this cell.
    Wheel {
        /// The pointer's column.
        column: u16,
        /// The pointer's row.
        row: u16,
        /// Whether it turned up (back in time).
        up: bool,
    },
    /// A left click on this cell: focus the panel under it.
    Click {
        /// The pointer's column.
        column: u16,
        /// The pointer's row.
        row: u16,
    },
    /// The once-a-second check of typing and idle time (may send notes).
    IdleCheck(SystemTime),
}
