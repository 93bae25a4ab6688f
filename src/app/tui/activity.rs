//! Typing and presence on the screen: keystrokes in the draft say "typing" (see
//! [`crate::app::activity::Own`] for when), the others' notes show as "ana is typing…"
//! under the chat and "away" beside their names. Nothing here is stored.

use std::time::SystemTime;

use super::action::Action;
use super::app::{InputMode, TuiApp};
use crate::app::activity::{Availability, Signal, typing_line};
use crate::app::runtime::view::{SignalNote, UiCommand};
use crate::protocol::NodeId;

/// What an action means for this user's activity.
pub(super) enum Touch {
    /// An edit of the draft: maybe typing.
    Draft,
    /// The draft was submitted.
    Submit,
    /// Some other key or click: not idle.
    Key,
    /// The once-a-second check.
    Idle(SystemTime),
    /// Not the user's doing.
    None,
}

/// How `action` touches the user's activity.
pub(super) fn touch_of(action: &Action) -> Touch {
    match action {
        Action::Insert(_) | Action::Edit(_) | Action::Paste(_) => Touch::Draft,
        Action::Submit => Touch::Submit,
        Action::IdleCheck(now) => Touch::Idle(*now),
        Action::Session(_) | Action::Tick(_) | Action::Resize(..) | Action::TerminalFocus(_) => {
            Touch::None
        }
        _ => Touch::Key,
    }
}

pub(super) fn ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl TuiApp {
    /// The notes this action makes due, as commands for the session.
    pub(super) fn track_activity(&mut self, touch: Touch) -> Vec<UiCommand> {
        let now = ms(self.now);
        let due = match touch {
            Touch::Draft => {
                let text = self.input().text();
                let message = self.mode == InputMode::Chat && !text.trim_start().starts_with('/');
                if text.trim().is_empty() {
                    // A cleared draft is not typing any more.
                    self.own.sent(now)
                } else if message {
                    self.own.keystroke(now)
                } else {
                    self.own.touch(now)
                }
            }
            Touch::Submit if self.input().text().is_empty() => self.own.sent(now),
            Touch::Submit | Touch::Key => self.own.touch(now),
            Touch::Idle(at) => {
                self.now = self.now.max(at);
                let now = ms(self.now);
                self.activity.expire(now);
                self.own.tick(now, true)
            }
            Touch::None => Vec::new(),
        };
        due.into_iter().map(UiCommand::Signal).collect()
    }

    /// `/away [TEXT]` and `/back`: the note to send.
    pub(super) fn set_availability(&mut self, away: Option<Signal>) -> Vec<UiCommand> {
        let now = ms(self.now);
        let due = match away {
            Some(Signal::Away { text }) => self.own.set_away(text, now),
            _ => self.own.set_back(now),
        };
        due.into_iter().map(UiCommand::Signal).collect()
    }

    /// A peer's note arrived.
    pub(super) fn on_signal(&mut self, note: SignalNote) {
        self.activity
            .observe(note.who, &note.signal, ms(note.at.max(self.now)));
    }

    /// A message from `who` arrived: they stopped typing it.
    pub(super) fn message_from(&mut self, who: NodeId) {
        self.activity.stop_typing(who, ms(self.now));
    }

    /// "ana is typing…", "ana and bo are typing…", or nothing.
    pub(crate) fn typing_line(&self) -> Option<String> {
        let names: Vec<String> = self
            .activity
            .typists(ms(self.now))
            .into_iter()
            .filter(|id| *id != self.status.node_id)
            .map(|id| self.shown_name(id))
            .collect();
        typing_line(&names)
    }

    /// Whether `id` is here or away, as its notes say.
    pub(crate) fn availability(&self, id: NodeId) -> Availability {
        if id == self.status.node_id {
            return self.own.availability();
        }
        self.activity.availability(id, ms(self.now))
    }

    /// This user's own availability.
    pub(crate) fn own_availability(&self) -> Availability {
        self.own.availability()
    }

    /// The name shown for `id`: its nickname, else its peer row's name, else its short id.
    fn shown_name(&self, id: NodeId) -> String {
        if let Some(nick) = self.model.nick(id) {
            return nick.to_string();
        }
        self.peers.iter().find(|p| p.id == id).map_or_else(
            || self.model.display_name(id).into_owned(),
            |p| p.name.clone(),
        )
    }
}
