//! The slash commands of gossip-chat: one table and one parser, shared by the TUI and
//! `--headless`, so both accept the same lines and say the same things about bad ones.
//!
//! [`COMMANDS`] is plain data (name, aliases, argument shape, usage, help): front ends
//! generate their help from it. [`parse`] turns a line into an [`Input`] by the table alone
//! (no model); [`resolve`] then turns a parsed command into a [`Request`] against the
//! folded [`Model`] (item prefixes, list positions). To add a command: a [`Verb`], a row in
//! [`COMMANDS`], and its arm in [`resolve`] (or in the front end, for screen-only verbs).

use std::fmt;

use crate::app::{AppOp, Model};
use crate::protocol::NodeId;

/// A front end that reads command lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// The terminal UI.
    Tui,
    /// `--headless`, the scripting interface.
    Headless,
}

/// Both front ends.
const BOTH: &[Front] = &[Front::Tui, Front::Headless];

/// What a command takes after its name. Anything more is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgShape {
    /// Nothing.
    None,
    /// The rest of the line (required; may hold spaces).
    Text,
    /// One item id prefix.
    Item,
    /// One item id prefix, then the rest of the line as text (required).
    ItemText,
    /// One `HOST:PORT`.
    Addr,
    /// One word (a name), then the rest of the line as text (required).
    WordText,
    /// Nothing, or `last` (your last message).
    OptLast,
}

/// Which command a line names; what front ends match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Set the nickname.
    Nick,
    /// Add a list item.
    Add,
    /// Check an item.
    Done,
    /// Uncheck an item.
    Undone,
    /// Change an item's text.
    Edit,
    /// Remove an item.
    Rm,
    /// Connect to a peer.
    Peer,
    /// Print the folded state.
    State,
    /// Show the commands.
    Help,
    /// Leave.
    Quit,
    /// A `/me` action.
    Me,
    /// Delete your last message.
    Delete,
    /// Reply to someone's latest message.
    Reply,
    /// Who is a name: id, key, addresses, first and last seen.
    Whois,
    /// Cancel a dial.
    Unpeer,
    /// Drop offline peers from the peers panel.
    Forget,
    /// Offer a file.
    Send,
    /// Fetch and save an offered file.
    Save,
    /// List the files offered.
    Files,
}

/// The word that names your last message in `/edit last TEXT` and `/delete last`. It is
/// not hex, so it can never be an item id prefix.
pub const LAST: &str = "last";

/// One row of the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// What the command does, for front ends to match on.
    pub verb: Verb,
    /// Its name, without the slash.
    pub name: &'static str,
    /// Other names it answers to, without the slash.
    pub aliases: &'static [&'static str],
    /// What it takes after its name.
    pub args: ArgShape,
    /// The placeholder of its arguments for help and errors (`""` for none).
    pub usage: &'static str,
    /// One line saying what it does.
    pub help: &'static str,
    /// The front ends that offer it.
    pub fronts: &'static [Front],
}

impl CommandSpec {
    /// `/name ARGS`, as help and error messages show it.
    pub fn usage_line(&self) -> String {
        if self.usage.is_empty() {
            format!("/{}", self.name)
        } else {
            format!("/{} {}", self.name, self.usage)
        }
    }

    /// Whether `word` (without the slash) names this command.
    pub fn answers_to(&self, word: &str) -> bool {
        self.name == word || self.aliases.contains(&word)
    }

    /// Whether `front` offers this command.
    pub fn offered_by(&self, front: Front) -> bool {
        self.fronts.contains(&front)
    }
}

/// Every command, in the order help lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        verb: Verb::Nick,
        name: "nick",
        aliases: &[],
        args: ArgShape::Text,
        usage: "NAME",
        help: "set your name",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Add,
        name: "add",
        aliases: &[],
        args: ArgShape::Text,
        usage: "TEXT",
        help: "add a list item",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Done,
        name: "done",
        aliases: &[],
        args: ArgShape::Item,
        usage: "ID-PREFIX",
        help: "check an item",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Undone,
        name: "undone",
        aliases: &[],
        args: ArgShape::Item,
        usage: "ID-PREFIX",
        help: "uncheck an item",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Edit,
        name: "edit",
        aliases: &[],
        args: ArgShape::ItemText,
        usage: "ID-PREFIX TEXT",
        help: "change an item's text; /edit last TEXT changes your last message",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Rm,
        name: "rm",
        aliases: &[],
        args: ArgShape::Item,
        usage: "ID-PREFIX",
        help: "remove an item",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Peer,
        name: "peer",
        aliases: &["connect"],
        args: ArgShape::Addr,
        usage: "HOST:PORT",
        help: "connect to a peer",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Unpeer,
        name: "unpeer",
        aliases: &[],
        args: ArgShape::Addr,
        usage: "HOST:PORT",
        help: "stop dialing a peer",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Forget,
        name: "forget",
        aliases: &[],
        args: ArgShape::None,
        usage: "",
        help: "drop offline peers from the peers panel (not their messages)",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Whois,
        name: "whois",
        aliases: &[],
        args: ArgShape::Text,
        usage: "NAME",
        help: "show a peer's id, key fingerprint, addresses, first and last seen",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Me,
        name: "me",
        aliases: &[],
        args: ArgShape::Text,
        usage: "TEXT",
        help: "an action: /me waves shows \"* you waves\"",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Reply,
        name: "reply",
        aliases: &[],
        args: ArgShape::WordText,
        usage: "NAME TEXT",
        help: "answer NAME's latest message, quoting its first line",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Delete,
        name: "delete",
        aliases: &["del"],
        args: ArgShape::OptLast,
        usage: "[last]",
        help: "delete your last message, for everyone",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Send,
        name: "send",
        aliases: &[],
        args: ArgShape::Text,
        usage: "PATH",
        help: "offer a file to the room (peers fetch it when they /save it)",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Save,
        name: "save",
        aliases: &[],
        args: ArgShape::Text,
        usage: "FILE-ID [DIR]",
        help: "fetch an offered file from whoever has it and save it in DIR",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Files,
        name: "files",
        aliases: &[],
        args: ArgShape::None,
        usage: "",
        help: "list the files offered in the room",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::State,
        name: "state",
        aliases: &[],
        args: ArgShape::None,
        usage: "",
        help: "print the folded state as JSON",
        fronts: &[Front::Headless],
    },
    CommandSpec {
        verb: Verb::Help,
        name: "help",
        aliases: &[],
        args: ArgShape::None,
        usage: "",
        help: "list the commands",
        fronts: BOTH,
    },
    CommandSpec {
        verb: Verb::Quit,
        name: "quit",
        aliases: &["exit"],
        args: ArgShape::None,
        usage: "",
        help: "leave",
        fronts: BOTH,
    },
];

/// The commands `front` offers, in table order.
pub fn commands_for(front: Front) -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS.iter().filter(move |c| c.offered_by(front))
}

/// The table row of a command name (or alias), without the slash.
pub fn find(word: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.answers_to(word))
}

/// The arguments of a parsed command, in the shape its row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// [`ArgShape::None`].
    None,
    /// [`ArgShape::Text`]: trimmed, non-empty.
    Text(String),
    /// [`ArgShape::Item`]: one word.
    Item(String),
    /// [`ArgShape::ItemText`].
    ItemText {
        /// The item id prefix.
        item: String,
        /// The text after it, trimmed, non-empty.
        text: String,
    },
    /// [`ArgShape::Addr`]: a `HOST:PORT` with a valid port.
    Addr(String),
    /// [`ArgShape::WordText`].
    WordText {
        /// The word.
        word: String,
        /// The text after it, trimmed, non-empty.
        text: String,
    },
}

/// A command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Its table row.
    pub spec: &'static CommandSpec,
    /// Its arguments.
    pub args: Args,
}

/// What one input line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A blank line.
    Empty,
    /// A chat message (`//text` sends `/text`).
    Chat(String),
    /// A slash command.
    Command(Command),
}

/// A line that is not a valid command; the message says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub String);

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandError {}

/// Parses one input line for `front` by the table alone.
pub fn parse(line: &str, front: Front) -> Result<Input, CommandError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Input::Empty);
    }
    let Some(rest) = line.trim_start().strip_prefix('/') else {
        return Ok(Input::Chat(line.to_string()));
    };
    // "//text" sends "/text", for messages that start with a slash.
    if rest.starts_with('/') {
        return Ok(Input::Chat(rest.to_string()));
    }
    let (word, arg) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(w, a)| (w, a.trim()));
    let spec = match find(word) {
        Some(spec) if spec.offered_by(front) => spec,
        Some(spec) => {
            return Err(CommandError(format!(
                "{} works only with --headless",
                spec.usage_line()
            )));
        }
        None => return Err(unknown(word, front)),
    };
    let args = parse_args(spec, arg)?;
    Ok(Input::Command(Command { spec, args }))
}

fn unknown(word: &str, front: Front) -> CommandError {
    let names: Vec<String> = commands_for(front)
        .map(|c| format!("/{}", c.name))
        .collect();
    CommandError(format!(
        "unknown command /{word}; commands: {}",
        names.join(", ")
    ))
}

fn parse_args(spec: &'static CommandSpec, arg: &str) -> Result<Args, CommandError> {
    let err = |what: String| CommandError(format!("{}: {what}", spec.usage_line()));
    let (first, more) = arg
        .split_once(char::is_whitespace)
        .map_or((arg, ""), |(f, m)| (f, m.trim()));
    match spec.args {
        ArgShape::None if arg.is_empty() => Ok(Args::None),
        ArgShape::None => Err(err(format!("takes no arguments (got `{arg}`)"))),
        ArgShape::Text if arg.is_empty() => Err(err(format!("needs {}", spec.usage))),
        ArgShape::Text => Ok(Args::Text(arg.to_string())),
        ArgShape::Item | ArgShape::ItemText if first.is_empty() => {
            Err(err("needs an item id prefix".into()))
        }
        ArgShape::Item if !more.is_empty() => Err(err(format!("unexpected argument `{more}`"))),
        ArgShape::Item => Ok(Args::Item(first.to_string())),
        ArgShape::ItemText if more.is_empty() => Err(err("needs the new text".into())),
        ArgShape::ItemText => Ok(Args::ItemText {
            item: first.to_string(),
            text: more.to_string(),
        }),
        ArgShape::Addr if first.is_empty() => Err(err("needs an address".into())),
        ArgShape::Addr if !more.is_empty() => Err(err(format!("unexpected argument `{more}`"))),
        ArgShape::Addr if is_host_port(first) => Ok(Args::Addr(first.to_string())),
        ArgShape::Addr => Err(err(format!(
            "`{first}` is not HOST:PORT, e.g. 192.168.1.20:7777"
        ))),
        ArgShape::WordText if first.is_empty() => Err(err(format!("needs {}", spec.usage))),
        ArgShape::WordText if more.is_empty() => Err(err("needs the text".into())),
        ArgShape::WordText => Ok(Args::WordText {
            word: first.to_string(),
            text: more.to_string(),
        }),
        ArgShape::OptLast if arg.is_empty() || arg == LAST => Ok(Args::None),
        ArgShape::OptLast => Err(err(format!("unexpected argument `{arg}`"))),
    }
}

/// `host:port` with a non-empty host and a valid port (IPv6 as `[::1]:7777`).
fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// What a line asks the front end to do, once resolved against the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Nothing (a blank line).
    Nothing,
    /// Create an event with this op.
    Op(AppOp),
    /// Connect to a peer at this address.
    Connect(String),
    /// Stop dialing this address (and drop it if it never answered).
    Unpeer(String),
    /// Drop offline peers from the peers panel.
    Forget,
    /// Show what is known about the peer or origin of this name.
    Whois(String),
    /// Print the folded state.
    State,
    /// Show the commands.
    Help,
    /// Leave.
    Quit,
    /// Offer this file.
    SendFile(std::path::PathBuf),
    /// Fetch and save an offered file.
    SaveFile(SaveRequest),
    /// List the files offered.
    Files,
}

/// A file to fetch and save (`/save`, or Enter on a file message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveRequest {
    /// The blob.
    pub file_id: crate::protocol::blob::BlobId,
    /// The name to save under: already reduced to a safe base name.
    pub name: String,
    /// Its size as offered.
    pub size: u64,
    /// Who offered it (asked first).
    pub from: NodeId,
    /// Where to save it; `None`: the downloads directory.
    pub dir: Option<std::path::PathBuf>,
}

impl SaveRequest {
    /// The request to save the file of chat line `line` (which must be a file message).
    pub fn of_line(
        line: &crate::app::ChatLine<'_>,
        dir: Option<std::path::PathBuf>,
    ) -> Option<Self> {
        let f = line.file?;
        Some(SaveRequest {
            file_id: crate::protocol::blob::BlobId::from_hex(&f.file_id)?,
            name: crate::blobs::safe_name(&f.name),
            size: f.size,
            from: line.origin,
            dir,
        })
    }
}

/// The shortest file id prefix `/save` accepts.
pub const MIN_FILE_PREFIX: usize = 6;

fn save_request(model: &Model, arg: &str) -> Result<SaveRequest, String> {
    let (id, dir) = arg
        .split_once(char::is_whitespace)
        .map_or((arg, ""), |(i, d)| (i, d.trim()));
    if id.len() < MIN_FILE_PREFIX || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "`{id}` is not a file id (at least {MIN_FILE_PREFIX} hex digits; /files lists them)"
        ));
    }
    let found = model.find_files(id);
    let Some(line) = found.first() else {
        return Err(format!(
            "no file offered has an id starting with {id} (see /files)"
        ));
    };
    let distinct: std::collections::BTreeSet<&str> = found
        .iter()
        .filter_map(|l| l.file.map(|f| f.file_id.as_str()))
        .collect();
    if distinct.len() > 1 {
        return Err(format!(
            "{id} names {} files: type more of the id",
            distinct.len()
        ));
    }
    let dir = (!dir.is_empty()).then(|| std::path::PathBuf::from(dir));
    SaveRequest::of_line(line, dir).ok_or_else(|| "the offer has a bad file id".to_string())
}

/// Resolves a parsed line against the folded model: builds the op (item prefixes, list
/// positions, text checks, your own messages for `me`) or names the front-end action.
pub fn resolve(input: Input, model: &Model, me: NodeId) -> Result<Request, CommandError> {
    let command = match input {
        Input::Empty => return Ok(Request::Nothing),
        Input::Chat(text) => {
            return AppOp::chat(&text)
                .map(Request::Op)
                .map_err(|e| CommandError(format!("not sent: {e}")));
        }
        Input::Command(command) => command,
    };
    let spec = command.spec;
    let err = |what: String| CommandError(format!("{}: {what}", spec.usage_line()));
    let item = |prefix: &str| {
        model
            .find_item_by_prefix(prefix)
            .map_err(|e| err(format!("{prefix}: {e}")))
    };
    let op = match (spec.verb, command.args) {
        (Verb::Nick, Args::Text(name)) => AppOp::nick(&name).map_err(|e| err(e.to_string()))?,
        (Verb::Add, Args::Text(text)) => model
            .new_item_op(&text, None)
            .map_err(|e| err(format!("cannot add the item: {e}")))?,
        (Verb::Done, Args::Item(p)) => AppOp::list_check(item(&p)?, true),
        (Verb::Undone, Args::Item(p)) => AppOp::list_check(item(&p)?, false),
        (Verb::Edit, Args::ItemText { item: p, text }) if p == LAST => {
            let last = model
                .last_own_message(me)
                .ok_or_else(|| err("you have no message to edit".into()))?;
            model
                .edit_op(me, last.seq, &text)
                .map_err(|e| err(e.to_string()))?
        }
        (Verb::Edit, Args::ItemText { item: p, text }) => {
            AppOp::list_edit(item(&p)?, &text).map_err(|e| err(e.to_string()))?
        }
        (Verb::Delete, Args::None) => {
            let last = model
                .last_own_message(me)
                .ok_or_else(|| err("you have no message to delete".into()))?;
            model
                .delete_op(me, last.seq)
                .map_err(|e| err(e.to_string()))?
        }
        (Verb::Me, Args::Text(text)) => AppOp::action(&text).map_err(|e| err(e.to_string()))?,
        (Verb::Reply, Args::WordText { word, text }) => {
            let (origin, seq) = latest_message_of(model, &word).map_err(err)?;
            model
                .reply_op(origin, seq, &text)
                .map_err(|e| err(e.to_string()))?
        }
        (Verb::Unpeer, Args::Addr(addr)) => return Ok(Request::Unpeer(addr)),
        (Verb::Forget, Args::None) => return Ok(Request::Forget),
        (Verb::Whois, Args::Text(name)) => return Ok(Request::Whois(name)),
        (Verb::Rm, Args::Item(p)) => AppOp::list_remove(item(&p)?),
        (Verb::Peer, Args::Addr(addr)) => return Ok(Request::Connect(addr)),
        (Verb::State, Args::None) => return Ok(Request::State),
        (Verb::Help, Args::None) => return Ok(Request::Help),
        (Verb::Quit, Args::None) => return Ok(Request::Quit),
        (Verb::Send, Args::Text(path)) => return Ok(Request::SendFile(path.into())),
        (Verb::Save, Args::Text(arg)) => {
            return save_request(model, &arg)
                .map(Request::SaveFile)
                .map_err(err);
        }
        (Verb::Files, Args::None) => return Ok(Request::Files),
        // Only reachable if a table row and this match disagree; the table test covers it.
        (verb, args) => {
            return Err(CommandError(format!(
                "internal: {verb:?} does not take {args:?}"
            )));
        }
    };
    Ok(Request::Op(op))
}

/// The origins whose shown name (or nickname) is `name`, case-insensitively: `me@vm·5bac`
/// names one of two `me@vm`s, `me@vm` names both.
pub fn origins_named(model: &Model, name: &str) -> Vec<NodeId> {
    let name = name.trim().trim_start_matches('@');
    model
        .nicks()
        .filter(|(origin, nick)| {
            nick.eq_ignore_ascii_case(name)
                || model.display_name(*origin).eq_ignore_ascii_case(name)
        })
        .map(|(origin, _)| origin)
        .collect()
}

/// The `(origin, seq)` of the latest message (not deleted) of the one origin called `name`.
fn latest_message_of(model: &Model, name: &str) -> Result<(NodeId, u64), String> {
    let origins = origins_named(model, name);
    match origins.as_slice() {
        [] => Err(format!("nobody here is called {name}")),
        [origin] => model
            .chat()
            .rev()
            .find(|l| l.origin == *origin && !l.deleted && l.unsupported.is_none())
            .map(|l| (l.origin, l.seq))
            .ok_or_else(|| format!("{name} has no message to answer")),
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|o| model.display_name(*o).into_owned())
                .collect();
            Err(format!("{name} is ambiguous: {}", names.join(", ")))
        }
    }
}

/// [`parse`] then [`resolve`]: what one line from the node `me` asks `front` to do.
pub fn interpret(
    line: &str,
    front: Front,
    model: &Model,
    me: NodeId,
) -> Result<Request, CommandError> {
    resolve(parse(line, front)?, model, me)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(m: &mut Model, origin: u128, seq: u64, op: &AppOp) {
        let e = crate::protocol::Event {
            id: uuid::Uuid::now_v7(),
            origin: NodeId::from_u128(origin),
            seq,
            hlc: seq,
            created_at_ms: 0,
            payload: op.encode().unwrap().into(),
            sig: bytes::Bytes::new(),
        };
        m.apply(&e);
    }

    /// A list item, and node 1 called "ann" who said "hi" (seq 3).
    fn model_with_item() -> (Model, uuid::Uuid) {
        let mut m = Model::new();
        let op = m.new_item_op("milk", None).unwrap();
        let AppOp::ListAdd { item, .. } = op else {
            panic!("not an add")
        };
        apply(&mut m, 1, 1, &op);
        apply(&mut m, 1, 2, &AppOp::nick("ann").unwrap());
        apply(&mut m, 1, 3, &AppOp::chat("hi").unwrap());
        (m, item)
    }

    #[test]
    fn message_commands_act_on_your_own_or_a_named_latest_message() {
        let (mut m, _) = model_with_item();
        let me = NodeId::from_u128(1);
        let as_bob = |line: &str, m: &Model| interpret(line, Front::Tui, m, NodeId::from_u128(2));
        assert_eq!(
            run("/me waves", &m),
            Ok(Request::Op(AppOp::action("waves").unwrap()))
        );
        assert_eq!(
            run("/edit last hello", &m),
            Ok(Request::Op(AppOp::chat_edit(3, "hello").unwrap()))
        );
        assert_eq!(
            run("/delete", &m),
            Ok(Request::Op(AppOp::chat_delete(3).unwrap()))
        );
        assert_eq!(run("/del last", &m), run("/delete", &m));
        assert!(
            run("/delete 3", &m)
                .unwrap_err()
                .0
                .contains("unexpected argument")
        );
        // Bob has no message: nothing of Ann's can be his to change.
        assert!(
            as_bob("/edit last x", &m)
                .unwrap_err()
                .0
                .contains("no message to edit")
        );
        assert!(
            as_bob("/delete", &m)
                .unwrap_err()
                .0
                .contains("no message to delete")
        );
        assert_eq!(
            as_bob("/reply @Ann sure", &m),
            Ok(Request::Op(AppOp::reply(me, 3, "sure").unwrap()))
        );
        assert!(
            as_bob("/reply cy sure", &m)
                .unwrap_err()
                .0
                .contains("nobody here is called cy")
        );
        assert!(
            as_bob("/reply ann", &m)
                .unwrap_err()
                .0
                .contains("needs the text")
        );
        // Two origins called ann: the short id tells them apart.
        apply(&mut m, 0xbb << 120, 1, &AppOp::nick("ann").unwrap());
        assert!(
            as_bob("/reply ann x", &m)
                .unwrap_err()
                .0
                .contains("ambiguous")
        );
        let first = m.display_name(me).into_owned();
        assert!(as_bob(&format!("/reply {first} x"), &m).is_ok());
        assert_eq!(run("/whois ann", &m), Ok(Request::Whois("ann".into())));
        assert_eq!(
            run("/unpeer 10.0.0.2:4000", &m),
            Ok(Request::Unpeer("10.0.0.2:4000".into()))
        );
        assert_eq!(run("/forget", &m), Ok(Request::Forget));
    }

    fn run(line: &str, m: &Model) -> Result<Request, CommandError> {
        interpret(line, Front::Headless, m, NodeId::from_u128(1))
    }

    #[test]
    fn plain_lines_are_chat_and_commands_parse() {
        let (m, item) = model_with_item();
        let prefix = &item.simple().to_string()[..6];
        assert_eq!(run("", &m), Ok(Request::Nothing));
        assert_eq!(run("  \r\n", &m), Ok(Request::Nothing));
        assert!(matches!(
            run("hi there", &m),
            Ok(Request::Op(AppOp::Chat { .. }))
        ));
        assert_eq!(
            run("//not a command", &m),
            Ok(Request::Op(AppOp::chat("/not a command").unwrap()))
        );
        assert_eq!(
            run("/nick bob", &m),
            Ok(Request::Op(AppOp::nick("bob").unwrap()))
        );
        assert!(matches!(
            run("/add eggs", &m),
            Ok(Request::Op(AppOp::ListAdd { .. }))
        ));
        assert_eq!(
            run(&format!("/done {prefix}"), &m),
            Ok(Request::Op(AppOp::list_check(item, true)))
        );
        assert_eq!(
            run(&format!("/undone {prefix}"), &m),
            Ok(Request::Op(AppOp::list_check(item, false)))
        );
        assert_eq!(
            run(&format!("/edit {prefix} oat  milk"), &m),
            Ok(Request::Op(AppOp::list_edit(item, "oat  milk").unwrap()))
        );
        assert_eq!(
            run(&format!("/rm {prefix}"), &m),
            Ok(Request::Op(AppOp::list_remove(item)))
        );
        assert_eq!(
            run("/peer 10.0.0.2:4000", &m),
            Ok(Request::Connect("10.0.0.2:4000".into()))
        );
        assert_eq!(
            run("/connect [::1]:4000", &m),
            Ok(Request::Connect("[::1]:4000".into()))
        );
        assert_eq!(run("/quit", &m), Ok(Request::Quit));
        assert_eq!(run("/exit", &m), Ok(Request::Quit));
        assert_eq!(run("/state", &m), Ok(Request::State));
        assert_eq!(run("/help", &m), Ok(Request::Help));
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let (m, item) = model_with_item();
        let prefix = &item.simple().to_string()[..6];
        let err = |line: &str| run(line, &m).unwrap_err().0;
        assert!(err("/frobnicate").contains("unknown command /frobnicate; commands: /nick"));
        assert!(err("/done zzzz").starts_with("/done ID-PREFIX: zzzz"));
        assert!(err("/done").contains("needs an item id prefix"));
        assert!(err(&format!("/done {prefix} extra")).contains("unexpected argument `extra`"));
        assert!(err(&format!("/edit {prefix}")).contains("needs the new text"));
        assert!(err("/peer").contains("/peer HOST:PORT"));
        assert!(err("/peer nowhere").contains("is not HOST:PORT"));
        assert!(err("/peer a:1 b:2").contains("unexpected argument"));
        assert!(err("/nick").contains("/nick NAME: needs NAME"));
        assert!(err("/add ").contains("/add TEXT: needs TEXT"));
        assert!(err("/quit now").contains("/quit: takes no arguments (got `now`)"));
        assert!(err("/state all").contains("takes no arguments"));
        assert!(err(&"x".repeat(5000)).contains("not sent: "));
    }

    #[test]
    fn fronts_filter_the_table() {
        let m = Model::new();
        let tui = interpret("/state", Front::Tui, &m, NodeId::from_u128(1))
            .unwrap_err()
            .0;
        assert!(tui.contains("only with --headless"), "{tui}");
        let tui_names: Vec<_> = commands_for(Front::Tui).map(|c| c.name).collect();
        assert!(!tui_names.contains(&"state"));
        assert!(tui_names.contains(&"rm"));
        let unknown = interpret("/zz", Front::Tui, &m, NodeId::from_u128(1))
            .unwrap_err()
            .0;
        assert!(!unknown.contains("/state"), "{unknown}");
    }

    /// Every row's shape resolves to something other than the internal mismatch error, so
    /// the table and [`resolve`] cannot drift apart.
    #[test]
    fn every_row_resolves() {
        let (m, item) = model_with_item();
        let prefix = item.simple().to_string();
        let mut seen = std::collections::HashSet::new();
        for spec in COMMANDS {
            assert!(seen.insert(spec.name), "duplicate {}", spec.name);
            for alias in spec.aliases {
                assert!(seen.insert(alias), "duplicate {alias}");
            }
            let sample = match spec.args {
                ArgShape::None => String::new(),
                ArgShape::Text => "word".into(),
                ArgShape::Item => prefix.clone(),
                ArgShape::ItemText => format!("{prefix} word"),
                ArgShape::Addr => "127.0.0.1:1".into(),
                ArgShape::WordText => "ann word".into(),
                ArgShape::OptLast => String::new(),
            };
            let line = format!("/{} {sample}", spec.name);
            let got = run(&line, &m);
            assert!(got.is_ok(), "{line}: {got:?}");
            assert!(!spec.help.is_empty());
        }
    }
}
