//! The config file `gossip-chat.toml` and the effective settings: flags over the file over
//! the defaults, each setting remembering where it came from (`gossip-chat config` prints
//! them).
//!
//! ```toml
//! name = "ana"                 # your name (a later /nick in a room wins unless --name)
//! room = "kitchen"             # the room joined without --room
//! secret_file = "~/kitchen.secret"
//! theme = "dark"               # for the screen: "dark", "light" or "none" (--theme)
//! links = true                 # URLs as clickable hyperlinks (--no-links turns them off)
//! bell = true                  # ring on mentions (--no-bell turns it off)
//! time = "local"               # "local" (follows TZ) or "utc" (--utc)
//! time_format = "24h"          # "24h" or "12h"
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file name, in the platform's config dir.
pub const CONFIG_FILE: &str = "gossip-chat.toml";
/// The room joined when neither a flag nor the file names one.
pub const DEFAULT_ROOM: &str = "lobby";
/// The largest config file read: it is a handful of lines.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// The config file's contents. Unknown keys are errors, so a typo is not silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Your name.
    pub name: Option<String>,
    /// The room.
    pub room: Option<String>,
    /// The room secret's file.
    pub secret_file: Option<PathBuf>,
    /// The screen's theme.
    pub theme: Option<Theme>,
    /// Whether mentions ring the bell.
    pub bell: Option<bool>,
    /// Whether URLs are written as hyperlinks.
    pub links: Option<bool>,
    /// Which clock times are shown in.
    pub time: Option<TimeZoneChoice>,
    /// How times are written.
    pub time_format: Option<TimeFormat>,
}

/// The screen's colours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// Light text on a dark terminal.
    #[default]
    Dark,
    /// Dark text on a light terminal.
    Light,
    /// No colours at all (as with `NO_COLOR`).
    None,
}

/// Which clock the screen shows times in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeZoneChoice {
    /// The local zone (`TZ`, else the system's).
    #[default]
    Local,
    /// UTC.
    Utc,
}

/// How the screen writes times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TimeFormat {
    /// `14:05`.
    #[default]
    #[serde(rename = "24h")]
    H24,
    /// `2:05 pm`.
    #[serde(rename = "12h")]
    H12,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The config file.
    File(PathBuf),
    /// A command-line flag (named).
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "config file {}", p.display()),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value in force.
    pub value: T,
    /// Its source.
    pub source: Source,
}

/// What the command line said, for the settings the file can also give (`None`: not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagValues {
    /// `--name`.
    pub name: Option<String>,
    /// `--room`, only when typed (not clap's default).
    pub room: Option<String>,
    /// `--secret-file`.
    pub secret_file: Option<PathBuf>,
    /// `--theme`.
    pub theme: Option<Theme>,
    /// `--no-bell` was given.
    pub no_bell: bool,
    /// `--no-links` was given.
    pub no_links: bool,
    /// `--utc` was given.
    pub utc: bool,
}

/// Every setting in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The config file read, if one was found.
    pub file: Option<PathBuf>,
    /// Your name; `None` means "your last /nick in the room, else user@host".
    pub name: Setting<Option<String>>,
    /// The room.
    pub room: Setting<String>,
    /// The room secret's file.
    pub secret_file: Setting<Option<PathBuf>>,
    /// The theme.
    pub theme: Setting<Theme>,
    /// Whether mentions ring the bell.
    pub bell: Setting<bool>,
    /// Whether URLs are written as hyperlinks.
    pub links: Setting<bool>,
    /// The clock of shown times.
    pub time: Setting<TimeZoneChoice>,
    /// The format of shown times.
    pub time_format: Setting<TimeFormat>,
}

/// What the screen needs from the settings (the TUI reads these; `--headless` ignores them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScreenOptions {
    /// Whether a mention rings the terminal bell (`--no-bell`, `bell = false`).
    pub bell: bool,
    /// Whether times are shown in UTC instead of the local zone (`--utc`, `time = "utc"`).
    pub utc: bool,
    /// The colours.
    pub theme: Theme,
    /// Whether URLs in the chat are written as OSC 8 hyperlinks (`--no-links`,
    /// `links = false`).
    pub links: bool,
    /// 24 h or 12 h times.
    pub time_format: TimeFormat,
}

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It exists but cannot be read.
    #[error("cannot read the config file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// It is too large to be a config file.
    #[error("the config file {path} is over {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// It is not valid TOML or holds an unknown key or a bad value.
    #[error("the config file {path} is invalid: {error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why, with the line.
        error: String,
    },
}

/// The default config file: `gossip-chat.toml` in the platform's config dir
/// (`~/.config/gossip-chat/` on Linux).
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "gossip-chat").map(|p| p.config_dir().join(CONFIG_FILE))
}

/// Reads the config file at `path`; a missing file is no config, not an error.
pub fn load(path: &Path) -> Result<Option<FileConfig>, ConfigError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(ConfigError::Read {
                path: path.into(),
                error,
            });
        }
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge { path: path.into() });
    }
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.into(),
        error,
    })?;
    parse(&text, path).map(Some)
}

/// Parses a config file's text (`path` is only for messages).
pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        error: e.to_string(),
    })
}

/// `~/` at the start of a path is the home directory, as a shell would read it.
fn expand_home(path: PathBuf) -> PathBuf {
    match (path.strip_prefix("~"), directories::BaseDirs::new()) {
        (Ok(rest), Some(dirs)) => dirs.home_dir().join(rest),
        _ => path,
    }
}

fn pick<T>(
    flag: Option<(T, &'static str)>,
    file: Option<T>,
    at: &Option<PathBuf>,
    default: T,
) -> Setting<T> {
    match (flag, file, at) {
        (Some((value, name)), _, _) => Setting {
            value,
            source: Source::Flag(name),
        },
        (None, Some(value), Some(path)) => Setting {
            value,
            source: Source::File(path.clone()),
        },
        _ => Setting {
            value: default,
            source: Source::Default,
        },
    }
}

impl Settings {
    /// The settings in force: each flag given wins over the file, which wins over the
    /// default. `file` is the config read from `path`, if any.
    pub fn resolve(
        flags: &FlagValues,
        file: Option<FileConfig>,
        path: Option<PathBuf>,
    ) -> Settings {
        let at = file.as_ref().and(path);
        let file = file.unwrap_or_default();
        Settings {
            name: pick(
                flags.name.clone().map(|n| (Some(n), "--name")),
                file.name.map(Some),
                &at,
                None,
            ),
            room: pick(
                flags.room.clone().map(|r| (r, "--room")),
                file.room,
                &at,
                DEFAULT_ROOM.to_string(),
            ),
            secret_file: pick(
                flags
                    .secret_file
                    .clone()
                    .map(|p| (Some(p), "--secret-file")),
                file.secret_file.map(|p| Some(expand_home(p))),
                &at,
                None,
            ),
            theme: pick(
                flags.theme.map(|t| (t, "--theme")),
                file.theme,
                &at,
                Theme::default(),
            ),
            bell: pick(
                flags.no_bell.then_some((false, "--no-bell")),
                file.bell,
                &at,
                true,
            ),
            links: pick(
                flags.no_links.then_some((false, "--no-links")),
                file.links,
                &at,
                true,
            ),
            time: pick(
                flags.utc.then_some((TimeZoneChoice::Utc, "--utc")),
                file.time,
                &at,
                TimeZoneChoice::default(),
            ),
            time_format: pick(None, file.time_format, &at, TimeFormat::default()),
            file: at,
        }
    }

    /// What the screen needs.
    pub fn screen(&self) -> ScreenOptions {
        ScreenOptions {
            bell: self.bell.value,
            utc: self.time.value == TimeZoneChoice::Utc,
            theme: self.theme.value,
            links: self.links.value,
            time_format: self.time_format.value,
        }
    }

    /// The report `gossip-chat config` prints: one line per setting with its source.
    pub fn report(&self, looked_at: Option<&Path>) -> String {
        let mut out = match (&self.file, looked_at) {
            (Some(p), _) => format!("config file: {}\n", p.display()),
            (None, Some(p)) => format!(
                "config file: {} (not found; defaults in force)\n",
                p.display()
            ),
            (None, None) => "config file: none (no config dir on this platform)\n".to_string(),
        };
        let mut row = |key: &str, value: String, source: &Source| {
            out.push_str(&format!("{key:<12} = {value:<24} # {source}\n"));
        };
        let name = match &self.name.value {
            Some(n) => format!("{n:?}"),
            None => "(your last /nick, else user@host)".into(),
        };
        row("name", name, &self.name.source);
        row("room", format!("{:?}", self.room.value), &self.room.source);
        let secret = match &self.secret_file.value {
            Some(p) => format!("{:?}", p.display().to_string()),
            None => "(none: a public room)".into(),
        };
        row("secret_file", secret, &self.secret_file.source);
        row(
            "theme",
            format!("{:?}", self.theme.value).to_lowercase(),
            &self.theme.source,
        );
        row("bell", self.bell.value.to_string(), &self.bell.source);
        row("links", self.links.value.to_string(), &self.links.source);
        row(
            "time",
            format!("{:?}", self.time.value).to_lowercase(),
            &self.time.source,
        );
        let format = match self.time_format.value {
            TimeFormat::H24 => "24h",
            TimeFormat::H12 => "12h",
        };
        row("time_format", format.into(), &self.time_format.source);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
name = "ana"
room = "kitchen"
secret_file = "/etc/kitchen.secret"
theme = "light"
bell = false
links = false
time = "utc"
time_format = "12h"
"#;

    fn path() -> PathBuf {
        PathBuf::from("/cfg/gossip-chat.toml")
    }

    #[test]
    fn defaults_without_a_file() {
        let s = Settings::resolve(&FlagValues::default(), None, Some(path()));
        assert_eq!(s.file, None);
        assert_eq!(s.room.value, "lobby");
        assert_eq!(s.room.source, Source::Default);
        assert_eq!(s.name.value, None);
        assert_eq!(
            s.screen(),
            ScreenOptions {
                bell: true,
                utc: false,
                theme: Theme::Dark,
                links: true,
                time_format: TimeFormat::H24
            }
        );
        assert!(s.report(Some(&path())).contains("not found"));
    }

    #[test]
    fn the_file_beats_the_defaults_and_flags_beat_the_file() {
        let file = parse(FILE, &path()).unwrap();
        let s = Settings::resolve(&FlagValues::default(), Some(file.clone()), Some(path()));
        assert_eq!(s.name.value.as_deref(), Some("ana"));
        assert_eq!(s.room.value, "kitchen");
        assert_eq!(s.room.source, Source::File(path()));
        assert_eq!(
            s.secret_file.value,
            Some(PathBuf::from("/etc/kitchen.secret"))
        );
        assert_eq!(
            s.screen(),
            ScreenOptions {
                bell: false,
                utc: true,
                theme: Theme::Light,
                links: false,
                time_format: TimeFormat::H12
            }
        );
        let flags = FlagValues {
            name: Some("bo".into()),
            room: Some("hall".into()),
            secret_file: Some("/tmp/s".into()),
            theme: None,
            no_bell: true,
            no_links: false,
            utc: true,
        };
        let s = Settings::resolve(&flags, Some(file), Some(path()));
        assert_eq!(s.name.value.as_deref(), Some("bo"));
        assert_eq!(s.name.source, Source::Flag("--name"));
        assert_eq!(s.room.value, "hall");
        assert_eq!(s.secret_file.source, Source::Flag("--secret-file"));
        assert_eq!(s.bell.source, Source::Flag("--no-bell"));
        // Not given as a flag: still the file's.
        assert_eq!(s.theme.source, Source::File(path()));
        assert_eq!(s.links.source, Source::File(path()));
        let flags = FlagValues {
            theme: Some(Theme::None),
            no_links: true,
            ..FlagValues::default()
        };
        let t = Settings::resolve(
            &flags,
            parse("theme = \"light\"", &path()).ok(),
            Some(path()),
        );
        assert_eq!(
            (t.theme.value, t.theme.source),
            (Theme::None, Source::Flag("--theme"))
        );
        assert_eq!(
            (t.links.value, t.links.source),
            (false, Source::Flag("--no-links"))
        );
        let report = s.report(Some(&path()));
        assert!(report.contains("name         = \"bo\""), "{report}");
        assert!(report.contains("# flag --room"), "{report}");
        assert!(
            report.contains("# config file /cfg/gossip-chat.toml"),
            "{report}"
        );
    }

    #[test]
    fn a_flag_that_agrees_with_the_default_still_beats_the_file() {
        let file = parse("room = \"kitchen\"", &path()).unwrap();
        let flags = FlagValues {
            room: Some("lobby".into()),
            ..FlagValues::default()
        };
        let s = Settings::resolve(&flags, Some(file), Some(path()));
        assert_eq!(s.room.value, "lobby");
        assert_eq!(s.room.source, Source::Flag("--room"));
    }

    #[test]
    fn bad_files_are_errors_that_name_the_file() {
        for text in [
            "nmae = \"typo\"",
            "bell = \"yes\"",
            "theme = \"pink\"",
            "name = ",
        ] {
            let e = parse(text, &path()).unwrap_err().to_string();
            assert!(
                e.contains("/cfg/gossip-chat.toml is invalid"),
                "{text}: {e}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("missing.toml")).unwrap().is_none());
        let big = dir.path().join("big.toml");
        std::fs::write(&big, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).unwrap();
        assert!(matches!(load(&big), Err(ConfigError::TooLarge { .. })));
        let ok = dir.path().join("ok.toml");
        std::fs::write(&ok, FILE).unwrap();
        assert_eq!(load(&ok).unwrap().unwrap().room.as_deref(), Some("kitchen"));
    }
}
