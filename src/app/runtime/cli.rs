//! The command line of `gossip-chat`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use super::config::{self, FlagValues, ScreenOptions, Settings};
use super::session::{Session, SessionError, SessionOptions};
use super::store_kind::StoreKind;
use crate::store::StoreError;
use crate::store::file::{FsyncPolicy, default_data_dir, room_dir};

const EXAMPLES: &str = "\
Examples:
  gossip-chat                              join room `lobby` on this LAN (mDNS finds peers)
  gossip-chat --name ana --room kitchen    another name and room
  gossip-chat --profile second             a second copy on this machine (own identity)
  gossip-chat --demo                       two local bot nodes join you, every panel alive
  gossip-chat --no-mdns --peer 10.0.0.5:7000   no multicast: dial a peer by address
  gossip-chat --headless < script.txt      scripting: stdin lines in, JSON lines out
  gossip-chat state --room kitchen         the folded chat and list as one JSON document
  gossip-chat export                       every stored event as JSON lines (also while it runs)
  gossip-chat export --since 120           only the events after commit 120
  gossip-chat tail                         follow new events as JSON lines while the app runs
  gossip-chat config                       the settings in force and where each came from
  gossip-chat --store sqlite               keep events in SQLite (a --features sqlite build)
  gossip-chat --metrics                    Prometheus metrics at http://127.0.0.1:9095/metrics";

/// LAN chat and a shared list, synced by gossip. No server, no account, no setup.
#[derive(Debug, Parser)]
#[command(name = "gossip-chat", version, after_help = EXAMPLES)]
pub struct Cli {
    /// A subcommand; without one, gossip-chat joins the room.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How to run.
    #[command(flatten)]
    pub run: RunArgs,
    /// The config file (default: gossip-chat.toml in the platform's config dir, e.g.
    /// ~/.config/gossip-chat/gossip-chat.toml); flags override it, e.g. --config ./chat.toml.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// Subcommands that read a store; they work while the app runs on it.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every stored event as one JSON object a line, in the order
    /// (hlc, origin, seq), with decoded app payloads and the author's name.
    Export(ReadArgs),
    /// Print the folded app state (chat in order, list items, nicks) as one JSON document;
    /// replicas holding the same events print byte-identical output.
    State(StoreArgs),
    /// Follow the store: print each new event as a JSON line (the export shape) as the
    /// running node stores it, until Ctrl-C.
    Tail(ReadArgs),
    /// Rewrite the store with the app stopped: keep every intact event, drop damaged
    /// stretches for good (peers send those events again), reclaim the space; prints what
    /// it did.
    Compact(StoreArgs),
    /// Print the settings in force (name, room, secret file, theme, bell, time) and where
    /// each came from: a flag, the config file or the default. Run flags go before it
    /// (gossip-chat --no-bell config), store flags after (gossip-chat config --room x).
    Config(StoreArgs),
}

/// A store and where to start reading it.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only events after this commit number (the `commit` field of a line), or created at
    /// or after this time (ms since the epoch with an `ms` suffix, or a UTC time),
    /// e.g. --since 120, --since 1796150000000ms, --since 2026-12-01T20:00:00Z.
    #[arg(long, value_name = "SEQ|TIME", value_parser = super::export::Since::parse)]
    pub since: Option<super::export::Since>,
}

/// Where the store is.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Data directory (default: the platform's data dir, e.g. ~/.local/share/gossip-chat).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Room: only peers in the same room sync with you, e.g. --room kitchen.
    #[arg(long, default_value = "lobby")]
    pub room: String,
    /// A separate identity and store under the data dir, to run several copies on one
    /// machine, e.g. --profile second.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Make the room private: a file holding the room secret (its first line). Only peers
    /// with the same secret can connect; export and state need it to find the store; mDNS
    /// shows a room id instead of the name. The environment variable GOSSIP_CHAT_SECRET
    /// works too (a secret is never a plain flag, which other users could read in the
    /// process list), e.g. --secret-file ~/.config/gossip-chat/kitchen.secret.
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
    /// Where events are kept: `file` (default) or `sqlite` (a build with
    /// `--features sqlite`), e.g. --store sqlite.
    #[arg(long = "store", value_enum, default_value_t = StoreKind::File)]
    pub kind: StoreKind,
}

/// Durability of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fsync {
    /// fsync before each event is acknowledged (safest, slowest).
    Always,
    /// group commit every 50 ms (default).
    Interval,
    /// leave it to the OS (survives a crash of the app, not of the machine).
    Never,
}

/// How to run the node.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Your name as others see it (default: user@host), e.g. --name ana.
    #[arg(long)]
    pub name: Option<String>,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// TCP port to listen on; 0 picks any free port (advertised over mDNS), e.g. --port 7000.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// A peer to dial by address, for networks without multicast; repeatable,
    /// e.g. --peer 10.0.0.5:7000 --peer laptop.local:7000.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// Do not use mDNS (no announcing, no browsing): only --peer and peers that dial you,
    /// e.g. --no-mdns --peer 10.0.0.5:7000.
    #[arg(long)]
    pub no_mdns: bool,
    /// When stored events are forced to disk, e.g. --fsync always.
    #[arg(long, value_enum, default_value_t = Fsync::Interval)]
    pub fsync: Fsync,
    /// No terminal UI: stdin lines are chat messages or /commands, stdout gets JSON lines,
    /// e.g. echo hello | gossip-chat --headless.
    #[arg(long)]
    pub headless: bool,
    /// With --headless: EOF on stdin stops the node like /quit (after offering every
    /// created event to the connected peers), e.g. printf 'hi\n' | gossip-chat --headless
    /// --exit-on-eof.
    #[arg(long, requires = "headless")]
    pub exit_on_eof: bool,
    /// Start N local bot nodes (default 2) over TCP on 127.0.0.1 that chat and edit the list,
    /// to see every panel alive. Without --room it runs in a room of its own
    /// (demo-<random>) on a temporary store, so its bots never reach your real rooms,
    /// e.g. --demo 3.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "2")]
    pub demo: Option<usize>,
    /// The address to listen on (default: every interface), e.g. --bind 192.168.1.20.
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub bind: IpAddr,
    /// Never ring the terminal bell on a mention (config: bell = false).
    #[arg(long)]
    pub no_bell: bool,
    /// Show times in UTC instead of the local zone (config: time = "utc").
    #[arg(long)]
    pub utc: bool,
    /// The largest file sent (/send) or saved (/save), in bytes or with a K, M or G suffix
    /// (powers of 1024), e.g. --max-file 500M.
    #[arg(long, value_name = "SIZE", default_value = "2G", value_parser = parse_size)]
    pub max_file: u64,
    /// The most the store's blobs (files sent and saved) may take, e.g. --blob-quota 20G.
    #[arg(long, value_name = "SIZE", default_value = "10G", value_parser = parse_size)]
    pub blob_quota: u64,
    /// What the screen needs from the settings (filled in from flags and the config file).
    #[arg(skip)]
    pub screen: ScreenOptions,
    /// Whether --name was given (it then overrides the stored nick).
    #[arg(skip)]
    pub name_given: bool,
    /// Whether --room was typed (not the default or the config file's).
    #[arg(skip)]
    pub room_given: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (default 127.0.0.1:9095 when the
    /// flag has no value; keep it on loopback unless the network may read them),
    /// e.g. --metrics 127.0.0.1:9095.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9095")]
    pub metrics: Option<std::net::SocketAddr>,
}

impl StoreArgs {
    /// The data directory with the profile applied.
    pub fn resolve_data_dir(&self) -> Result<PathBuf, String> {
        let base = match &self.data_dir {
            Some(d) => d.clone(),
            None => default_data_dir()
                .ok_or("no data directory on this platform: pass --data-dir DIR")?,
        };
        match &self.profile {
            None => Ok(base),
            Some(p) => {
                let ok = !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !ok {
                    return Err(format!(
                        "--profile {p:?}: use letters, digits, - and _ only"
                    ));
                }
                Ok(base.join("profiles").join(p))
            }
        }
    }
}

/// `user@host` from the environment, or "me".
pub fn default_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "me".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|h| !h.is_empty());
    match host {
        Some(h) => format!("{user}@{h}"),
        None => user,
    }
}

/// Whether `id` was typed on the command line (not a default).
fn typed(m: &ArgMatches, id: &str) -> bool {
    m.try_get_raw(id).ok().flatten().is_some()
        && m.value_source(id) == Some(ValueSource::CommandLine)
}

/// The command line with the config file applied: for each setting the file can give, a
/// typed flag wins, then the file, then the default. Also returns the settings, for
/// `gossip-chat config`.
pub fn resolve(
    mut cli: Cli,
    matches: &ArgMatches,
) -> Result<(Cli, Settings, Option<PathBuf>), String> {
    let path = cli.config.clone().or_else(config::default_config_path);
    let file = match &path {
        Some(p) => config::load(p).map_err(|e| e.to_string())?,
        None => None,
    };
    // Subcommands take their store flags after their name.
    let (store_m, store) = match (&mut cli.command, matches.subcommand()) {
        (
            Some(
                Command::Export(ReadArgs { store: a, .. })
                | Command::Tail(ReadArgs { store: a, .. })
                | Command::State(a)
                | Command::Compact(a)
                | Command::Config(a),
            ),
            Some((_, m)),
        ) => (m, a),
        _ => (matches, &mut cli.run.store),
    };
    let env_secret = std::env::var_os(SECRET_ENV).is_some();
    let flags = FlagValues {
        name: cli.run.name.clone(),
        room: typed(store_m, "room").then(|| store.room.clone()),
        secret_file: store.secret_file.clone(),
        no_bell: cli.run.no_bell,
        utc: cli.run.utc,
    };
    let settings = Settings::resolve(&flags, file, path.clone());
    store.room = settings.room.value.clone();
    // The environment's secret beats the config file's secret file (not a typed flag).
    if store.secret_file.is_none() && !env_secret {
        store.secret_file = settings.secret_file.value.clone();
    }
    cli.run.room_given = flags.room.is_some();
    cli.run.name_given = flags.name.is_some();
    cli.run.name = settings.name.value.clone();
    cli.run.screen = settings.screen();
    Ok((cli, settings, path))
}

/// The `--version` text: what two machines that do not talk compare.
pub fn version_text() -> String {
    format!(
        "{} (commit {}, protocol {}, store format {})",
        env!("CARGO_PKG_VERSION"),
        env!("GOSSIP_GIT_COMMIT"),
        crate::transport::codec::PROTOCOL_VERSION,
        crate::store::file::STORE_FORMAT_VERSION,
    )
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // Leaked once: clap wants a 'static version string, and this one is built at run time.
    let version: &'static str = Box::leak(version_text().into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let (cli, settings, config_path) = match resolve(cli, &matches) {
        Ok(r) => r,
        Err(message) => {
            eprintln!("gossip-chat: {message}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Config(_)) = cli.command {
        print!("{}", settings.report(config_path.as_deref()));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gossip-chat: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Export(args)) => {
                super::export::export(&store_ref(&args.store)?, args.since).await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(Command::State(args)) => {
                super::export::state(&store_ref(&args)?).await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(Command::Tail(args)) => {
                super::export::tail(&store_ref(&args.store)?, args.since).await?;
                Ok(ExitCode::SUCCESS)
            }
            Some(Command::Compact(args)) => {
                let store = store_ref(&args)?;
                let dir = store.dir.clone();
                let report = tokio::task::spawn_blocking(move || {
                    crate::store::file::compact::compact(&store.dir, store.at_rest.as_ref())
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(explain_store_error)?;
                println!("compacted {}: {report}", dir.display());
                Ok(ExitCode::SUCCESS)
            }
            Some(Command::Config(_)) => Ok(ExitCode::SUCCESS),
            None => run(cli.run).await,
        }
    });
    // Bot nodes and stray tasks must not keep the process alive after the session ended.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("gossip-chat: {message}");
            ExitCode::FAILURE
        }
    }
}

fn explain_store_error(e: StoreError) -> String {
    match e {
        StoreError::Locked { dir, pid } => format!(
            "another gossip-chat (pid {pid}) is using {}.\n\
             To run a second copy on this machine, give it its own identity and store: \
             gossip-chat --profile NAME",
            dir.display()
        ),
        other => other.to_string(),
    }
}

/// The store of a room (a private room's directory is named by its id, and its payloads
/// are sealed with a key derived from the room key).
///
/// These read the log file directly (`LogReader`), without the store's lock, so they work
/// while the app runs. A SQLite store is refused with a message: it has no lock-free
/// reader here, and opening it as a store would take the running app's lock.
fn store_ref(args: &StoreArgs) -> Result<super::export::StoreRef, String> {
    if args.kind == StoreKind::Sqlite {
        return Err(
            "export, state, tail and compact read a file store only; for a SQLite store \
             (--store sqlite) read events.sqlite3 in its store directory with sqlite3 -readonly"
                .into(),
        );
    }
    let key = room_key(args)?;
    let public = match &key {
        Some(key) => key.room_id(&args.room),
        None => args.room.clone(),
    };
    Ok(super::export::StoreRef {
        dir: room_dir(&args.resolve_data_dir()?, &public),
        room: args.room.clone(),
        at_rest: key.map(|k| crate::store::file::AtRestKey::derive(&k.bytes())),
    })
}

fn session_options(args: &RunArgs) -> Result<SessionOptions, String> {
    args.store.kind.check_available()?;
    Ok(SessionOptions {
        name: args.name.clone().unwrap_or_else(default_name),
        name_given: args.name_given,
        room: args.store.room.clone(),
        port: args.port,
        listen_ip: args.bind,
        data_dir: args.store.resolve_data_dir()?,
        peers: args.peers.clone(),
        mdns: !args.no_mdns,
        fsync: match args.fsync {
            Fsync::Always => FsyncPolicy::Always,
            Fsync::Interval => FsyncPolicy::default(),
            Fsync::Never => FsyncPolicy::Never,
        },
        room_key: room_key(&args.store)?,
        store: args.store.kind,
        blobs: crate::blobs::BlobLimits {
            max_file: args.max_file,
            quota: args.blob_quota,
        },
    })
}

/// A size: digits, optionally followed by K, M or G (powers of 1024), e.g. `500M`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 2G, 500M, 1048576)"))?;
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("`{text}`: the unit must be K, M or G")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// The environment variable that may hold the room secret.
pub const SECRET_ENV: &str = "GOSSIP_CHAT_SECRET";

/// The room key from `--secret-file` or `GOSSIP_CHAT_SECRET` (the file wins), if either.
fn room_key(args: &StoreArgs) -> Result<Option<crate::auth::RoomKey>, String> {
    let secret = match (&args.secret_file, std::env::var_os(SECRET_ENV)) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--secret-file {}: {e}", path.display()))?;
            text.lines().next().unwrap_or("").trim_end().to_string()
        }
        (None, Some(v)) => v
            .into_string()
            .map_err(|_| format!("{SECRET_ENV} is not valid UTF-8"))?,
        (None, None) => return Ok(None),
    };
    crate::auth::RoomKey::derive(&args.room, secret.as_bytes())
        .map(Some)
        .map_err(|e| format!("room secret: {e}"))
}

/// Runs the node; with `--headless`, exits 1 when created events were not shown to reach
/// every connected peer before the stop.
async fn run(args: RunArgs) -> Result<ExitCode, String> {
    if !args.headless {
        crate::app::tui::check_terminal()?;
    }
    let mut opts = session_options(&args)?;
    // The demo's bots must never reach a real room: without an explicit --room they and
    // we run in a room of our own, on a store that is removed afterwards.
    let demo_store = match args.demo {
        Some(n) if n > 0 && !args.room_given => Some(isolate_demo(&mut opts)?),
        _ => None,
    };
    let (_log_guard, log_path) = super::logging::init(&opts.store_dir()).map_err(|e| {
        format!(
            "cannot write the log in {}: {e}",
            opts.store_dir().display()
        )
    })?;
    let (session, events) = Session::start(opts).await.map_err(|e| match e {
        SessionError::Store(s) => explain_store_error(s),
        other => other.to_string(),
    })?;
    tracing::info!(log = %log_path.display(), "logging here");
    // Held for the whole session: dropping it stops the endpoint.
    let _metrics = match args.metrics {
        Some(addr) => match crate::metrics::serve(addr, session.metrics()).await {
            Ok(server) => Some(server),
            Err(e) => {
                session.shutdown().await;
                return Err(format!("--metrics {addr}: {e}"));
            }
        },
        None => None,
    };
    let demo = match args.demo {
        Some(n) if n > 0 => Some(super::demo::Demo::start(n, &session).await?),
        _ => None,
    };
    let result = if args.headless {
        let options = super::headless::HeadlessOptions {
            exit_on_eof: args.exit_on_eof,
        };
        super::headless::run(session, events, options)
            .await
            .map(|s| match s.unsent {
                0 => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            })
    } else {
        super::interactive::run(session, events, args.screen)
            .await
            .map(|()| ExitCode::SUCCESS)
    };
    if let Some(d) = demo {
        d.stop().await;
    }
    if let Some(dir) = demo_store
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the demo store");
    }
    result.map_err(|e| e.to_string())
}

/// Moves `opts` to a fresh demo room (`demo-<random>`) on a new temporary data dir, with
/// no secret and no mDNS (the bots dial over loopback); returns the dir to remove after.
fn isolate_demo(opts: &mut SessionOptions) -> Result<PathBuf, String> {
    let tag: u32 = rand::random();
    let dir =
        std::env::temp_dir().join(format!("gossip-chat-demo-{}-{tag:08x}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot make the demo store in {}: {e}", dir.display()))?;
    opts.room = format!("demo-{:04x}", tag & 0xffff);
    opts.data_dir = dir.clone();
    opts.room_key = None;
    opts.mdns = false;
    Ok(dir)
}

#[cfg(test)]
mod secret_tests {
    use clap::Parser;

    use super::*;

    fn options(args: &[&str]) -> Result<SessionOptions, String> {
        let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
        session_options(&cli.run)
    }

    #[test]
    fn a_secret_file_makes_the_room_private_under_its_room_id() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "correct horse\nignored second line\n").unwrap();
        let path = secret.to_str().unwrap();
        let base = ["gossip-chat", "--room", "kitchen", "--data-dir", "/tmp/x"];
        let private = options(&[&base[..], &["--secret-file", path]].concat()).unwrap();
        let key = private.room_key.clone().expect("a room key");
        assert_eq!(
            key,
            crate::auth::RoomKey::derive("kitchen", b"correct horse").unwrap()
        );
        assert_eq!(private.public_room(), key.room_id("kitchen"));
        assert!(!private.store_dir().to_string_lossy().contains("kitchen"));
        let missing = options(&[&base[..], &["--secret-file", "/nonexistent/secret"]].concat());
        assert!(missing.unwrap_err().contains("--secret-file"));
        // The secret itself is never a flag.
        assert!(options(&[&base[..], &["--secret", "x"]].concat()).is_err());
    }
}

#[cfg(test)]
mod store_flag_tests {
    use clap::Parser;

    use super::*;

    fn options(args: &[&str]) -> Result<SessionOptions, String> {
        let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
        session_options(&cli.run)
    }

    #[test]
    fn the_readers_refuse_a_sqlite_store_with_what_to_use() {
        let cli = Cli::try_parse_from([
            "gossip-chat",
            "export",
            "--data-dir",
            "/tmp/x",
            "--store",
            "sqlite",
        ])
        .unwrap();
        let Some(Command::Export(args)) = cli.command else {
            panic!("not export");
        };
        let e = store_ref(&args.store).unwrap_err();
        assert!(
            e.contains("file store only") && e.contains("sqlite3 -readonly"),
            "{e}"
        );
    }

    #[test]
    fn the_file_store_is_the_default() {
        let o = options(&["gossip-chat", "--data-dir", "/tmp/x"]).unwrap();
        assert_eq!(o.store, StoreKind::File);
    }

    #[test]
    fn sqlite_is_chosen_by_flag_or_refused_with_the_build_to_use() {
        let o = options(&["gossip-chat", "--data-dir", "/tmp/x", "--store", "sqlite"]);
        if cfg!(feature = "sqlite") {
            assert_eq!(o.unwrap().store, StoreKind::Sqlite);
        } else {
            let e = o.unwrap_err();
            assert!(e.contains("--features sqlite"), "{e}");
        }
    }
}
