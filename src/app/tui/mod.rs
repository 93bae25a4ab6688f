//! The terminal screen of gossip-chat: it renders the app model and the session's figures,
//! and turns keys into [`UiCommand`]s. It talks to the session only through two channels.
//!
//! Elm-shaped: [`TuiApp`] is the state, [`TuiApp::update`] applies one [`Action`] (a key, a
//! session event, a tick) and returns the commands for the session, and [`render`] is a
//! pure function of the state. Redraws follow events and are capped at 30 per second.

mod action;
mod activity;
mod app;
mod attention;
mod browse;
mod chat;
mod editor;
mod events;
mod exchanges;
mod format;
mod geometry;
mod help;
mod hyperlink;
mod input;
mod keymap;
mod layout;
mod list;
mod peers;
mod status;
mod theme;

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;

use std::io::{self, Stdout, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, DisableMouseCapture, EnableBracketedPaste,
    EnableFocusChange, EnableMouseCapture, Event as TermEvent, EventStream, KeyEvent, MouseButton,
    MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, SetTitle, disable_raw_mode, enable_raw_mode,
};
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use tokio::sync::mpsc::{Receiver, Sender};

pub use action::{Action, EditOp, Focus, Popup};
pub use app::{
    CONFIRM_LINES, Effect, Flash, InputMode, LOG_LEN, LogTab, SCREEN_COMMANDS, TuiApp, TuiOptions,
    commands,
};
pub use attention::{LAST_READ_FILE, mentions};
pub use editor::Editor;
pub use format::TimeFmt;
pub use geometry::{Areas, WIDE_MIN_WIDTH, areas};
pub use keymap::{Binding, KEYMAP, Key, KeyContext, Scope, When};
pub use layout::render;
pub use theme::Palette;

use crate::app::runtime::config::{ScreenOptions, Theme, TimeFormat};
use crate::app::runtime::view::{EventRow, SessionEvent, StatusInfo, UiCommand};

/// The shortest time between two frames (30 per second at most).
const FRAME_GAP: Duration = Duration::from_millis(33);
/// How many queued session events are folded before a frame is drawn.
const DRAIN_BATCH: usize = 4096;

/// Refuses a terminal that cannot draw the screen (`TERM=dumb`: an editor's shell buffer,
/// a pipe), with a pointer to the line-based mode.
pub fn check_terminal() -> Result<(), String> {
    match std::env::var("TERM") {
        Ok(t) if t == "dumb" => Err("TERM=dumb: this terminal cannot draw the screen; \
             gossip-chat --headless reads commands and prints events line by line"
            .into()),
        _ => Ok(()),
    }
}

/// The palette for `theme`: `NO_COLOR` (set and not empty) takes the colours out of any.
fn palette(theme: Theme) -> Palette {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match theme {
        _ if no_color => Palette::Mono,
        Theme::Dark => Palette::Dark,
        Theme::Light => Palette::Light,
        Theme::None => Palette::Mono,
    }
}

/// The action for a key press.
pub fn map_key(app: &TuiApp, key: &KeyEvent) -> Option<Action> {
    keymap::lookup(&app.key_context(), key)
}

/// The action for a terminal event. `None`: nothing to do.
pub fn map_event(app: &TuiApp, ev: &TermEvent) -> Option<Action> {
    match ev {
        TermEvent::Key(key) => map_key(app, key),
        TermEvent::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => Some(Action::Wheel {
                column: m.column,
                row: m.row,
                up: m.kind == MouseEventKind::ScrollUp,
            }),
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click {
                column: m.column,
                row: m.row,
            }),
            _ => None,
        },
        TermEvent::Paste(text) => Some(Action::Paste(text.clone())),
        TermEvent::FocusGained => Some(Action::TerminalFocus(true)),
        TermEvent::FocusLost => Some(Action::TerminalFocus(false)),
        TermEvent::Resize(w, h) => Some(Action::Resize(*w, *h)),
    }
}

/// What the loop does to the real terminal besides drawing: the bell, the title, mouse
/// capture, suspending. Tests record the calls instead.
pub trait Shell {
    /// Rings the bell once.
    fn bell(&mut self) -> io::Result<()>;
    /// Sets the window title.
    fn title(&mut self, title: &str) -> io::Result<()>;
    /// Turns mouse capture on or off.
    fn mouse(&mut self, on: bool) -> io::Result<()>;
    /// Gives the terminal back, stops until resumed, takes it again.
    fn suspend(&mut self) -> io::Result<()>;
}

/// The [`Shell`] of a real terminal on stdout.
struct Crossterm;

impl Shell for Crossterm {
    fn bell(&mut self) -> io::Result<()> {
        let mut out = io::stdout();
        out.write_all(b"\x07")?;
        out.flush()
    }

    fn title(&mut self, title: &str) -> io::Result<()> {
        execute!(io::stdout(), SetTitle(title))
    }

    fn mouse(&mut self, on: bool) -> io::Result<()> {
        if on {
            execute!(io::stdout(), EnableMouseCapture)
        } else {
            execute!(io::stdout(), DisableMouseCapture)
        }
    }

    #[cfg(unix)]
    fn suspend(&mut self) -> io::Result<()> {
        restore()?;
        // The default action of SIGTSTP stops the process here until the shell's `fg`.
        signal_hook::low_level::raise(signal_hook::consts::SIGTSTP)?;
        take_terminal()
    }

    #[cfg(not(unix))]
    fn suspend(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs the screen until the user quits or the session goes away.
///
/// `initial` is every stored event, folded before the first frame; `events` brings what
/// the session does; `commands` takes what the user asks; `screen` holds the settings for
/// the screen (bell, UTC, theme, time format; from flags and the config file; `NO_COLOR`,
/// `TZ` and the last-read mark are read here). The terminal is restored on return, on
/// error and on panic.
pub async fn run(
    initial: Vec<EventRow>,
    status: StatusInfo,
    screen: ScreenOptions,
    mut events: Receiver<SessionEvent>,
    commands: Sender<UiCommand>,
) -> io::Result<()> {
    check_terminal().map_err(io::Error::other)?;
    let last_read_path = attention::last_read_path(&status.data_dir);
    let mut app = TuiApp::new(status, SystemTime::now());
    app.configure(TuiOptions {
        bell: screen.bell,
        time: TimeFmt::new(!screen.utc, screen.time_format == TimeFormat::H12),
        palette: palette(screen.theme),
        links: screen.links && hyperlink::terminal_supports(std::env::var("TERM").ok().as_deref()),
        last_read: attention::load_last_read(&last_read_path),
    });
    app.load(&initial);
    drop(initial);
    let prev_hook = install_panic_hook();
    let result = match enter() {
        Ok(mut terminal) => {
            let mut input = EventStream::new();
            let mut shell = Crossterm;
            let r = event_loop(
                &mut terminal,
                &mut input,
                &mut shell,
                &mut app,
                &mut events,
                &commands,
            )
            .await;
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
    if let Some(stamp) = app.attention().read_upto()
        && let Err(e) = attention::save_last_read(&last_read_path, stamp)
    {
        tracing::warn!(path = %last_read_path.display(), "cannot keep the last-read mark: {e}");
    }
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
    take_terminal()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    Ok(terminal)
}

/// Raw mode, the alternate screen, the mouse, focus reports and bracketed paste (a paste
/// arrives as one event, not as keys: its newlines do not send it line by line).
fn take_terminal() -> io::Result<()> {
    enable_raw_mode()?;
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste,
        EnableFocusChange
    )
}

fn restore() -> io::Result<()> {
    // Every step runs even if one fails, so a half-set-up terminal is undone as far as
    // possible.
    let raw = disable_raw_mode();
    let screen = execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableFocusChange,
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
async fn event_loop<B, S, H>(
    terminal: &mut Terminal<B>,
    input: &mut S,
    shell: &mut H,
    app: &mut TuiApp,
    events: &mut Receiver<SessionEvent>,
    commands: &Sender<UiCommand>,
) -> io::Result<()>
where
    B: Backend,
    S: Stream<Item = io::Result<TermEvent>> + Unpin,
    H: Shell,
{
    let mut shown_title = String::new();
    let mut mouse_on = true;
    let size = terminal.size().map_err(backend_error)?;
    app.update(Action::Resize(size.width, size.height));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    loop {
        for effect in app.take_effects() {
            match effect {
                Effect::Suspend => {
                    shell.suspend()?;
                    // Taking the terminal back turned the mouse on again.
                    mouse_on = true;
                }
                Effect::Redraw => {}
            }
            // Both leave the screen in an unknown state: draw every cell again.
            terminal.clear().map_err(backend_error)?;
            dirty = true;
            last_draw = None;
        }
        for _ in 0..app.take_bells() {
            shell.bell()?;
        }
        if app.select_mode() == mouse_on {
            mouse_on = !mouse_on;
            shell.mouse(mouse_on)?;
        }
        let title = app.title();
        if title != shown_title {
            shell.title(&title)?;
            shown_title = title;
        }
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
            _ = tick.tick() => {
                cmds = app.update(Action::IdleCheck(SystemTime::now()));
                dirty = true;
            }
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
