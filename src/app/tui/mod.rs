//! The terminal screen of gossip-chat: it renders the app model and the session's figures,
//! and turns keys into [`UiCommand`]s. It talks to the session only through two channels.
//!
//! Elm-shaped: [`TuiApp`] is the state, [`TuiApp::update`] applies one [`Action`] (a key, a
//! session event, a tick) and returns the commands for the session, and [`render`] is a
//! pure function of the state. Redraws follow events and are capped at 30 per second.

mod action;
mod app;
mod chat;
mod events;
mod exchanges;
mod help;
mod input;
mod layout;
mod list;
mod peers;
mod status;
mod theme;

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;

use std::io::{self, Stdout};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use tokio::sync::mpsc::{Receiver, Sender};

pub use action::{Action, map_event, map_key};
pub use app::{Flash, Focus, InputMode, LOG_LEN, LogTab, Popup, TuiApp};
pub use input::LineEditor;
pub use layout::{Areas, WIDE_MIN_WIDTH, areas, render};

use crate::app::runtime::view::{EventRow, SessionEvent, StatusInfo, UiCommand};

/// The shortest time between two frames (30 per second at most).
const FRAME_GAP: Duration = Duration::from_millis(33);
/// How many queued session events are folded before a frame is drawn.
const DRAIN_BATCH: usize = 4096;

/// Runs the screen until the user quits or the session goes away.
///
/// `initial` is every stored event, folded before the first frame; `events` brings what
/// the session does; `commands` takes what the user asks; `screen` holds the settings
/// for the screen (bell, UTC, theme, time format; from flags and the config file). The
/// terminal is restored on return, on error and on panic.
pub async fn run(
    initial: Vec<EventRow>,
    status: StatusInfo,
    screen: crate::app::runtime::config::ScreenOptions,
    mut events: Receiver<SessionEvent>,
    commands: Sender<UiCommand>,
) -> io::Result<()> {
    // Not read yet: the bell and the clock use them (the TUI side of issue 14).
    let _ = screen;
    let mut app = TuiApp::new(status, SystemTime::now());
    app.load(&initial);
    drop(initial);
    let prev_hook = install_panic_hook();
    let result = match enter() {
        Ok(mut terminal) => {
            let mut input = EventStream::new();
            let r = event_loop(&mut terminal, &mut input, &mut app, &mut events, &commands).await;
            let restored = restore();
            let _ = terminal.show_cursor();
            r.and(restored)
        }
        Err(e) => {
            let _ = restore();
            Err(e)
        }
    };
    std::panic::set_hook(Box::new(move |info| prev_hook(info)));
    result
}

type Hook = Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Restores the terminal before the previous hook prints the panic, so the message is
/// readable and the shell usable. Returns the previous hook, to put back on exit.
fn install_panic_hook() -> Hook {
    let prev: Hook = Arc::from(std::panic::take_hook());
    let chained = Arc::clone(&prev);
    std::panic::set_hook(Box::new(move |info| {
        let _ = restore();
        chained(info);
    }));
    prev
}

fn enter() -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
    enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    Ok(terminal)
}

fn restore() -> io::Result<()> {
    // Every step runs even if one fails, so a half-set-up terminal is undone as far as
    // possible.
    let raw = disable_raw_mode();
    let screen = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    raw.and(screen)
}

fn backend_error(e: impl std::error::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// The loop of [`run`], over any backend and any stream of terminal events, so tests can
/// drive it with a `TestBackend` and a channel.
async fn event_loop<B, S>(
    terminal: &mut Terminal<B>,
    input: &mut S,
    app: &mut TuiApp,
    events: &mut Receiver<SessionEvent>,
    commands: &Sender<UiCommand>,
) -> io::Result<()>
where
    B: Backend,
    S: Stream<Item = io::Result<TermEvent>> + Unpin,
{
    let size = terminal.size().map_err(backend_error)?;
    app.update(Action::Resize(size.width, size.height));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    loop {
        let due = last_draw.map_or(Instant::now(), |t| t + FRAME_GAP);
        if dirty && Instant::now() >= due {
            app.update(Action::Tick(SystemTime::now()));
            terminal
                .draw(|frame| render(app, frame))
                .map_err(backend_error)?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
        let mut cmds = Vec::new();
        tokio::select! {
            term = input.next() => match term {
                Some(Ok(ev)) => {
                    if let Some(action) = map_event(app, &ev) {
                        cmds = app.update(action);
                    }
                    dirty = true;
                }
                Some(Err(e)) => return Err(e),
                // No more terminal input: nothing more the user can do.
                None => {
                    let _ = commands.send(UiCommand::Quit).await;
                    return Ok(());
                }
            },
            ev = events.recv() => match ev {
                Some(ev) => {
                    app.update(Action::Session(ev));
                    // Fold what else is queued before drawing: a burst costs one frame.
                    for _ in 0..DRAIN_BATCH {
                        match events.try_recv() {
                            Ok(ev) => { app.update(Action::Session(ev)); }
                            Err(_) => break,
                        }
                    }
                    dirty = true;
                }
                // The session ended: the screen has nothing left to show.
                None => return Ok(()),
            },
            _ = tick.tick() => dirty = true,
            _ = tokio::time::sleep_until(due.into()), if dirty => {}
        }
        for cmd in cmds {
            let quit = cmd == UiCommand::Quit;
            if commands.send(cmd).await.is_err() || quit {
                return Ok(());
            }
        }
        if app.should_quit() {
            return Ok(());
        }
    }
}
