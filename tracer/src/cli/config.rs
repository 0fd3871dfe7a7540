//! The config file of `watch` and `agent`: `/etc/ctrace/ctrace.toml` (read by `ctrace agent`
//! when it exists) or `--config FILE` (either subcommand; the file must exist).
//!
//! Every key is a flag of `agent` or `watch`: the key `rotate_size` is the flag
//! `--rotate-size`, and takes the same values (`"100MiB"`, `"7d"`). A flag given on the command
//! line wins over the file's key. The file is applied by handing its keys to clap as flags
//! (`--rotate-size=100MiB`) after the command line's, for the options the command line left
//! alone ([`clap::ArgMatches::value_source`]): one parser, one set of defaults and checks.
//! Keys of the other subcommand (`metrics_addr` for `watch`, `json` for `agent`) are checked and
//! ignored, so one file serves both.
//!
//! On SIGHUP the running watch re-reads the file and replaces its filter (`container`,
//! `runtime`, `host`): [`FileInfo::reload_filter`].

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fmt,
    path::{Path, PathBuf},
};

use clap::{parser::ValueSource, CommandFactory as _, FromArgMatches as _};
use toml::{Spanned, Value};

use tracer::sink::filter::Filter;

use super::{Cli, Command};

/// Read by `ctrace agent` when it exists and no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/ctrace/ctrace.toml";

/// The TOML types a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `true` or `false`: a switch (`host = true` is `--host`).
    Bool,
    /// A string (a path, a name).
    Text,
    /// An integer or a float.
    Number,
    /// A duration or size as the flag takes it (`"7d"`, `"512MiB"`), or a bare number
    /// (seconds, bytes) or port.
    Scalar,
    /// A comma-separated string, or an array of strings (joined with commas).
    CommaList,
    /// A repeatable flag: a string, or an array of strings (one flag each).
    List,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Bool => "true or false",
            Kind::Text => "a string",
            Kind::Number => "a number",
            Kind::Scalar => "a string or a number",
            Kind::CommaList | Kind::List => "a string or an array of strings",
        }
    }
}

/// Which subcommand a key is a flag of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum For {
    Both,
    Agent,
    Watch,
}

/// One key of the file: the clap id of its flag (`rotate_size` for `--rotate-size`).
#[derive(Debug)]
struct Key {
    name: &'static str,
    kind: Kind,
    applies: For,
}

impl Key {
    fn applies_to(&self, sub: For) -> bool {
        self.applies == For::Both || self.applies == sub
    }

    fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }
}

const fn key(name: &'static str, kind: Kind, applies: For) -> Key {
    Key {
        name,
        kind,
        applies,
    }
}

/// Every key. The test `keys_are_the_flags` checks this against clap's definitions.
const KEYS: &[Key] = &[
    // `WatchArgs`: both subcommands.
    key("events", Kind::CommaList, For::Both),
    key("throttle_interval", Kind::Scalar, For::Both),
    key("throttle_threshold", Kind::Number, For::Both),
    key("signals", Kind::CommaList, For::Both),
    key("ring_size", Kind::Number, For::Both),
    key("cap_window", Kind::Number, For::Both),
    key("signal_window", Kind::Number, For::Both),
    key("all_threads", Kind::Bool, For::Both),
    key("output", Kind::Text, For::Both),
    key("rotate_size", Kind::Scalar, For::Both),
    key("rotate_keep", Kind::Number, For::Both),
    key("output_special", Kind::Bool, For::Both),
    key("runc_root", Kind::List, For::Both),
    key("container", Kind::List, For::Both),
    key("runtime", Kind::List, For::Both),
    key("host", Kind::Bool, For::Both),
    key("verbose", Kind::Bool, For::Both),
    key("docker_socket", Kind::Text, For::Both),
    key("no_docker", Kind::Bool, For::Both),
    key("journal", Kind::Text, For::Both),
    key("no_journal", Kind::Bool, For::Both),
    key("retention", Kind::Scalar, For::Both),
    key("max_size", Kind::Scalar, For::Both),
    key("memory_interval", Kind::Scalar, For::Both),
    key("journal_events", Kind::List, For::Both),
    key("oom_killers", Kind::List, For::Both),
    key("ebpf_log", Kind::Bool, For::Both),
    key("no_tp_btf", Kind::Bool, For::Both),
    key("duration", Kind::Number, For::Both),
    // `AgentCmd`.
    key("status_interval", Kind::Scalar, For::Agent),
    key("metrics_addr", Kind::Scalar, For::Agent),
    key("metrics_expire", Kind::Scalar, For::Agent),
    key("metrics_max_containers", Kind::Number, For::Agent),
    // `WatchCmd`.
    key("json", Kind::Bool, For::Watch),
    key("color", Kind::Text, For::Watch),
];

/// Flags of `watch`/`agent` that are not keys.
#[cfg(test)]
const NOT_KEYS: &[&str] = &["config", "check_config", "help", "version"];

/// A config file that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config file {}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// What a key sets.
#[derive(Debug, Clone, PartialEq)]
enum Setting {
    Switch(bool),
    Values(Vec<String>),
}

/// One key of a file, checked.
#[derive(Debug, Clone)]
struct Entry {
    key: &'static Key,
    setting: Setting,
}

impl Entry {
    /// The flags this key stands for.
    fn args(&self) -> Vec<OsString> {
        let flag = self.key.flag();
        match &self.setting {
            Setting::Switch(true) => vec![flag.into()],
            Setting::Switch(false) => Vec::new(),
            Setting::Values(v) => v.iter().map(|v| format!("{flag}={v}").into()).collect(),
        }
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Integer(n) => Some(n.to_string()),
        Value::Float(x) => Some(x.to_string()),
        _ => None,
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>(),
        _ => None,
    }
}

/// The setting of a value of this kind, or `None` for a value of the wrong type.
fn setting(kind: Kind, v: &Value) -> Option<Setting> {
    let one = |s: Option<String>| s.map(|s| Setting::Values(vec![s]));
    match kind {
        Kind::Bool => v.as_bool().map(Setting::Switch),
        Kind::Text => one(v.as_str().map(str::to_owned)),
        Kind::Number => one(matches!(v, Value::Integer(_) | Value::Float(_)).then(|| scalar(v))?),
        Kind::Scalar => one(scalar(v)),
        Kind::CommaList => strings(v).map(|l| {
            Setting::Values(if l.is_empty() {
                Vec::new()
            } else {
                vec![l.join(",")]
            })
        }),
        Kind::List => strings(v).map(Setting::Values),
    }
}

/// Check a value with the flag's own parser (durations, sizes, selectors, runtimes).
fn check_value(key: &Key, value: &str) -> Result<(), String> {
    let cli = Cli::command();
    let Some(sub) = ["agent", "watch"]
        .into_iter()
        .filter_map(|s| cli.find_subcommand(s))
        .find(|s| s.get_arguments().any(|a| a.get_id() == key.name))
    else {
        return Ok(());
    };
    let mut flag = OsString::from(format!("{}=", key.flag()));
    flag.push(value);
    sub.clone()
        .try_get_matches_from([OsString::from(sub.get_name()), flag])
        .map(drop)
        .map_err(|e| clap_message(&e))
}

/// The first line of a clap error, without its `error: ` prefix.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// Parse and check a file's text: every key known, of its type, with a value its flag
/// accepts. Errors name the key and its line.
fn parse(path: &Path, text: &str) -> Result<Vec<Entry>, ConfigError> {
    let err = |offset: Option<usize>, message: String| ConfigError {
        path: path.to_owned(),
        line: offset.map(|o| line_of(text, o)),
        message,
    };
    let doc: BTreeMap<Spanned<String>, Spanned<Value>> = toml::from_str(text).map_err(|e| {
        err(
            e.span().map(|s| s.start),
            format!("not TOML: {}", e.message()),
        )
    })?;
    let mut items: Vec<_> = doc.into_iter().collect();
    items.sort_by_key(|(k, _)| k.span().start);
    let mut entries = Vec::new();
    for (k, v) in items {
        let at = Some(k.span().start);
        let name = k.get_ref().as_str();
        let Some(key) = KEYS.iter().find(|key| key.name == name) else {
            let hint = KEYS
                .iter()
                .find(|key| key.name == name.replace('-', "_"))
                .map(|key| format!(" (keys are snake_case: `{}`)", key.name))
                .unwrap_or_default();
            return Err(err(
                at,
                format!("unknown key `{}`{hint}", name.escape_debug()),
            ));
        };
        let value = v.get_ref();
        let setting = setting(key.kind, value).ok_or_else(|| {
            err(
                Some(v.span().start),
                format!(
                    "`{name}` must be {}, not {} {value}",
                    key.kind.expected(),
                    a_type(value)
                ),
            )
        })?;
        if let Setting::Values(values) = &setting {
            for s in values {
                check_value(key, s)
                    .map_err(|e| err(Some(v.span().start), format!("`{name}`: {e}")))?;
            }
        }
        entries.push(Entry { key, setting });
    }
    Ok(entries)
}

fn a_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Read and check a file. `Ok(None)`: it does not exist and was not `required`.
fn read(path: &Path, required: bool) -> Result<Option<Vec<Entry>>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text).map(Some),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError {
            path: path.to_owned(),
            line: None,
            message: format!("cannot read it: {e}"),
        }),
    }
}

/// The file a `watch` or `agent` was configured from.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub path: PathBuf,
    /// Keys in the file.
    pub keys: usize,
    /// Keys the command line overrode.
    pub overridden: Vec<&'static str>,
    /// To read it again: the command line, and where the default file is.
    argv: Vec<OsString>,
    default: PathBuf,
}

impl FileInfo {
    /// The filter (`container`, `runtime`, `host`) the file asks for now, flags still winning.
    /// An error leaves the caller's filter as it was.
    pub fn reload_filter(&self) -> Result<Filter, String> {
        let cli = load_with(&self.argv, &self.default).map_err(|f| f.to_string())?;
        match &cli.command {
            Command::Agent(a) => Ok(a.trace.filter()),
            Command::Watch(w) => Ok(w.trace.filter()),
            _ => Err("not a watch".to_owned()),
        }
    }
}

/// Why the command line cannot run.
#[derive(Debug)]
pub enum Failure {
    /// A usage error, or `--help`/`--version`: clap prints it and picks the exit code.
    Clap(clap::Error),
    Config(ConfigError),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Clap(e) => f.write_str(&clap_message(e)),
            Failure::Config(e) => e.fmt(f),
        }
    }
}

/// Parse the process's command line and config file; on failure print why and exit (2, or 0
/// for `--help`).
pub fn parse_cli() -> Cli {
    let argv: Vec<OsString> = std::env::args_os().collect();
    match load_with(&argv, Path::new(DEFAULT_PATH)) {
        Ok(cli) => cli,
        Err(Failure::Clap(e)) => e.exit(),
        Err(Failure::Config(e)) => {
            eprintln!(
                "ctrace: error: {}",
                tracer::sink::escape::terminal(&e.to_string())
            );
            std::process::exit(2)
        }
    }
}

/// The command line `argv`, with the config file's keys for the options it did not give.
fn load_with(argv: &[OsString], default: &Path) -> Result<Cli, Failure> {
    let matches = Cli::command()
        .try_get_matches_from(argv)
        .map_err(Failure::Clap)?;
    let plain = |m: &clap::ArgMatches| Cli::from_arg_matches(m).map_err(Failure::Clap);
    let (sub, sm) = match matches.subcommand() {
        Some(("agent", sm)) => (For::Agent, sm),
        Some(("watch", sm)) => (For::Watch, sm),
        _ => return plain(&matches),
    };
    let (path, required) = match sm.get_one::<PathBuf>("config") {
        Some(p) => (p.clone(), true),
        None if sub == For::Agent => (default.to_owned(), false),
        None => return plain(&matches),
    };
    let Some(entries) = read(&path, required).map_err(Failure::Config)? else {
        return plain(&matches);
    };
    let mut full = argv.to_vec();
    let mut overridden = Vec::new();
    for e in entries.iter().filter(|e| e.key.applies_to(sub)) {
        if sm.value_source(e.key.name) == Some(ValueSource::CommandLine) {
            overridden.push(e.key.name);
        } else {
            full.extend(e.args());
        }
    }
    let mut cli = plain(
        &Cli::command()
            .try_get_matches_from(&full)
            .map_err(Failure::Clap)?,
    )?;
    let info = FileInfo {
        path,
        keys: entries.len(),
        overridden,
        argv: argv.to_vec(),
        default: default.to_owned(),
    };
    match &mut cli.command {
        Command::Agent(a) => a.trace.config_file = Some(info),
        Command::Watch(w) => w.trace.config_file = Some(info),
        _ => {}
    }
    Ok(cli)
}

/// A filter in a few words, for logs.
pub fn describe(f: &Filter) -> String {
    let mut parts = Vec::new();
    if f.containers.is_empty() {
        parts.push("any container".to_owned());
    } else {
        let names: Vec<&str> = f.containers.iter().map(|s| s.as_str()).collect();
        parts.push(format!("container {}", names.join(",")));
    }
    if !f.runtimes.is_empty() {
        let names: Vec<&str> = f.runtimes.iter().map(|r| r.as_str()).collect();
        parts.push(format!("runtime {}", names.join(",")));
    }
    if f.include_host {
        parts.push("host processes".to_owned());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests;
