//! Logs go to a file in the store directory, never to the terminal the TUI draws on.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// The log file's name in the store directory.
pub const LOG_FILE: &str = "gossip-chat.log";

/// The environment variable that sets the log filter (`tracing` syntax, default `info`).
pub const LOG_ENV: &str = "GOSSIP_CHAT_LOG";

/// Sends `tracing` output to `<dir>/gossip-chat.log` (appending). Keep the guard alive:
/// dropping it flushes the log. The directory and the file are created private (0700,
/// 0600 on Unix). The log never holds message text: the app logs ids, counts and errors.
pub fn init(dir: &Path) -> std::io::Result<(WorkerGuard, PathBuf)> {
    use crate::store::file::modes;
    modes::create_private_dir(dir)?;
    // Created here, private, before the appender opens it with the default mode.
    modes::private_options()
        .append(true)
        .create(true)
        .open(dir.join(LOG_FILE))?;
    let appender = tracing_appender::rolling::never(dir, LOG_FILE);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter =
        EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info,mdns_sd=warn"));
    // A second init (tests, demo nodes) keeps the first subscriber: that is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok((guard, dir.join(LOG_FILE)))
}
