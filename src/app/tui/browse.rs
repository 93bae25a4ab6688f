//! Browsing the chat: a cursor on one message (Ctrl-↑ from the input), moved with j/k and
//! the arrows, that Enter or `s` acts on: on a file message it saves the file, as `/save`
//! does. While browsing, keys move the cursor and none of them types, so a letter meant
//! for the draft can never save a file; Esc goes back to typing.

use super::app::{Flash, Focus, TuiApp, stamp_of};
use super::chat;
use crate::app::runtime::command::SaveRequest;
use crate::app::runtime::view::UiCommand;

impl TuiApp {
    /// Ctrl-↑: the cursor on the newest message in view (the newest of all when the view
    /// follows the chat).
    pub(super) fn browse_start(&mut self) {
        let (width, height) = self.chat_inner();
        let in_view = chat::messages_in_view(self, width, self.chat_scroll, height);
        let newest = self.model.chat().next_back().map(|l| stamp_of(&l));
        let Some(at) = in_view.first().copied().or(newest) else {
            self.flash = Some(Flash::Info("no message to pick yet".into()));
            return;
        };
        self.focus = Focus::Input;
        self.browse = Some(at);
        self.scroll_to_cursor();
    }

    /// Moves the cursor `by` messages (negative: older), stopping at the oldest and the
    /// newest.
    pub(super) fn browse_move(&mut self, by: isize) {
        let Some(at) = self.browse else { return };
        let len = self.model.chat().len();
        // Counted from the newest, where the cursor usually is: a step stays cheap in a
        // long history.
        let back = self
            .model
            .chat()
            .rev()
            .position(|l| stamp_of(&l) == at)
            .unwrap_or(0);
        let to = back
            .saturating_add_signed(by.saturating_neg())
            .min(len.saturating_sub(1));
        self.browse = self.model.chat().rev().nth(to).map(|l| stamp_of(&l));
        self.scroll_to_cursor();
    }

    /// The cursor on the oldest (`oldest`) or the newest message.
    pub(super) fn browse_end(&mut self, oldest: bool) {
        if self.browse.is_none() {
            return;
        }
        let mut chat = self.model.chat();
        let line = if oldest {
            chat.next()
        } else {
            chat.next_back()
        };
        let at = line.map(|l| stamp_of(&l));
        drop(chat);
        self.browse = at;
        self.scroll_to_cursor();
    }

    /// Enter or `s` while browsing: saves the file of the message under the cursor into
    /// the downloads directory; on any other message it only says so.
    pub(super) fn save_selected(&mut self) -> Vec<UiCommand> {
        let Some(at) = self.browse else {
            return Vec::new();
        };
        let request = {
            let Some(line) = self.model.chat().rev().find(|l| stamp_of(l) == at) else {
                self.browse = None;
                return Vec::new();
            };
            if line.file.is_none() {
                self.flash = Some(Flash::Info(
                    "not a file message: Enter or s saves the file of a [file] message".into(),
                ));
                return Vec::new();
            }
            SaveRequest::of_line(&line, None)
        };
        let Some(request) = request else {
            self.flash = Some(Flash::Error("the offer has a bad file id".into()));
            return Vec::new();
        };
        self.flash = Some(Flash::Info(format!("saving {}…", request.name)));
        vec![UiCommand::SaveFile(request)]
    }

    /// Scrolls the least that shows the cursor's message, its first row at least.
    fn scroll_to_cursor(&mut self) {
        let Some(at) = self.browse else { return };
        let (width, height) = self.chat_inner();
        let Some(rows) = chat::message_rows(self, width, at) else {
            return;
        };
        if rows.start < self.chat_scroll {
            self.chat_scroll = rows.start;
        }
        if rows.end > self.chat_scroll + height {
            self.chat_scroll = rows.end.saturating_sub(height);
        }
    }

    /// After the view scrolled by a page or the wheel: a cursor it left behind moves to
    /// the nearest message still in view, so Enter never acts on a message off screen.
    pub(super) fn browse_follow_view(&mut self) {
        let Some(at) = self.browse else { return };
        let (width, height) = self.chat_inner();
        let in_view = chat::messages_in_view(self, width, self.chat_scroll, height);
        if in_view.contains(&at) {
            return;
        }
        // In view, newest first: a cursor newer than all of them was left below.
        let nearest = if in_view.first().is_some_and(|&s| at > s) {
            in_view.first()
        } else {
            in_view.last()
        };
        if let Some(&s) = nearest {
            self.browse = Some(s);
        }
    }
}
