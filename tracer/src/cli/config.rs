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
    key("all_threads", Kind::Bool, For::Both),
    key("output", Kind::Text, For::Both),
    key("rotate_size", Kind::Scalar, For::Both),
    key("rotate_keep", Kind::Number, For::Both),
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
mod tests {
    use std::{collections::BTreeSet, time::Duration};

    use clap::ArgAction;

    use super::*;
    use crate::cli::{agent::AgentCmd, watch::WatchCmd};

    /// A config file removed on drop.
    struct File(PathBuf);

    impl File {
        fn new(text: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "ctrace-config-test-{}-{}.toml",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&p, text).unwrap();
            Self(p)
        }
        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("ctrace")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// A default path that does not exist.
    fn no_default() -> PathBuf {
        PathBuf::from("/nonexistent/ctrace-test/ctrace.toml")
    }

    fn agent(file: &File, args: &[&str]) -> Result<AgentCmd, Failure> {
        let mut a = vec!["agent", "--config", file.path()];
        a.extend_from_slice(args);
        match load_with(&argv(&a), &no_default())?.command {
            Command::Agent(a) => Ok(*a),
            c => panic!("{c:?}"),
        }
    }

    fn watch(file: &File, args: &[&str]) -> WatchCmd {
        let mut a = vec!["watch", "--config", file.path()];
        a.extend_from_slice(args);
        match load_with(&argv(&a), &no_default()).unwrap().command {
            Command::Watch(w) => *w,
            c => panic!("{c:?}"),
        }
    }

    fn config_error(text: &str) -> ConfigError {
        let f = File::new(text);
        match agent(&f, &[]) {
            Err(Failure::Config(e)) => {
                assert_eq!(e.path, f.0);
                e
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    /// The table is clap's flags of `agent` and `watch`, with matching kinds.
    #[test]
    fn keys_are_the_flags() {
        let cli = Cli::command();
        let mut all = BTreeSet::new();
        for (name, sub) in [("agent", For::Agent), ("watch", For::Watch)] {
            let cmd = cli.find_subcommand(name).unwrap();
            let ids: BTreeSet<&str> = cmd
                .get_arguments()
                .map(|a| a.get_id().as_str())
                .filter(|id| !NOT_KEYS.contains(id))
                .collect();
            let keys: BTreeSet<&str> = KEYS
                .iter()
                .filter(|k| k.applies_to(sub))
                .map(|k| k.name)
                .collect();
            assert_eq!(ids, keys, "{name}");
            for arg in cmd.get_arguments() {
                let Some(k) = KEYS.iter().find(|k| k.name == arg.get_id()) else {
                    continue;
                };
                let switch = matches!(arg.get_action(), ArgAction::SetTrue);
                let repeat = matches!(arg.get_action(), ArgAction::Append);
                assert_eq!(k.kind == Kind::Bool, switch, "{}", k.name);
                assert_eq!(k.kind == Kind::List, repeat, "{}", k.name);
                assert_eq!(arg.get_long(), Some(&k.flag()[2..]), "{}", k.name);
            }
            all.extend(keys);
        }
        assert_eq!(all.len(), KEYS.len(), "a key of neither subcommand");
    }

    const EVERY_KEY: &str = r#"
# every key ctrace knows
events = ["exec", "exit", "oom"]
throttle_interval = "500ms"
throttle_threshold = 0.25
signals = "SIGUSR1,SIGUSR2"
ring_size = 1048576
cap_window = 2
all_threads = true
output = "/var/log/ctrace/events.ndjson"
rotate_size = "100MiB"
rotate_keep = 3
runc_root = ["/run/a", "/run/b"]
container = ["web", "db"]
runtime = "docker"
host = true
verbose = true
docker_socket = "/run/other.sock"
no_docker = true
journal = "/var/lib/ctrace/j.db"
no_journal = false
retention = "3d"
max_size = "1GiB"
memory_interval = "2s"
journal_events = ["oom_kill", "kill"]
ebpf_log = true
no_tp_btf = true
duration = 30.5
status_interval = "30s"
metrics_addr = 9464
metrics_expire = "10m"
metrics_max_containers = 100
json = true
color = "never"
"#;

    #[test]
    fn every_key_is_parsed() {
        let f = File::new(EVERY_KEY);
        let a = agent(&f, &[]).unwrap();
        let t = &a.trace;
        assert_eq!(t.events, "exec,exit,oom");
        assert_eq!(t.throttle_interval, Duration::from_millis(500));
        assert_eq!(t.throttle_threshold, 0.25);
        assert_eq!(t.signals.as_deref(), Some("SIGUSR1,SIGUSR2"));
        assert_eq!(t.ring_size, 1 << 20);
        assert_eq!(t.cap_window, 2.0);
        assert!(t.all_threads && t.host && t.verbose && t.no_docker && t.ebpf_log);
        assert!(t.no_tp_btf && !t.no_journal);
        assert_eq!(
            t.output.as_deref(),
            Some(Path::new("/var/log/ctrace/events.ndjson"))
        );
        assert_eq!(t.rotate_size, 100 << 20);
        assert_eq!(t.rotate_keep, 3);
        assert_eq!(
            t.runc_root,
            [PathBuf::from("/run/a"), PathBuf::from("/run/b")]
        );
        let names: Vec<&str> = t.container.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["web", "db"]);
        assert_eq!(t.runtime, [tracer::container::Runtime::Docker]);
        assert_eq!(t.docker_socket, Path::new("/run/other.sock"));
        assert_eq!(t.journal, Path::new("/var/lib/ctrace/j.db"));
        assert_eq!(t.retention, Duration::from_secs(3 * 86400));
        assert_eq!(t.max_size, 1 << 30);
        assert_eq!(t.memory_interval, Duration::from_secs(2));
        assert_eq!(t.journal_events, ["oom_kill", "kill"]);
        assert_eq!(t.duration, Some(30.5));
        assert_eq!(a.status_interval, Duration::from_secs(30));
        assert_eq!(a.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(a.metrics_expire, Duration::from_secs(600));
        assert_eq!(a.metrics_max_containers, 100);
        let info = t.config_file.as_ref().unwrap();
        assert_eq!((info.keys, info.overridden.len()), (KEYS.len(), 0));

        // `watch` takes its own keys and ignores the agent's.
        let w = watch(&f, &[]);
        assert!(w.json);
        assert_eq!(w.color, crate::cli::watch::ColorChoice::Never);
        assert_eq!(w.trace.retention, Duration::from_secs(3 * 86400));
    }

    #[test]
    fn flags_win_over_the_file() {
        let f = File::new(
            "host = true\ncontainer = [\"a\"]\nretention = \"1d\"\nrotate_keep = 9\n\
             status_interval = \"10s\"\n",
        );
        let a = agent(
            &f,
            &[
                "--retention",
                "2h",
                "--container",
                "b",
                "--status-interval",
                "5s",
            ],
        )
        .unwrap();
        assert_eq!(a.trace.retention, Duration::from_secs(7200));
        let names: Vec<&str> = a.trace.container.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["b"], "a repeatable flag replaces the file's list");
        assert_eq!(a.status_interval, Duration::from_secs(5));
        // What the command line left alone comes from the file, over the defaults.
        assert!(a.trace.host);
        assert_eq!(a.trace.rotate_keep, 9);
        let info = a.trace.config_file.unwrap();
        assert_eq!(
            info.overridden,
            ["container", "retention", "status_interval"]
        );
        // A flag equal to the default still wins over the file.
        let a = agent(&f, &["--rotate-keep", "5"]).unwrap();
        assert_eq!(a.trace.rotate_keep, 5);
    }

    #[test]
    fn the_default_file_is_optional_and_read_by_the_agent_only() {
        let f = File::new("rotate_keep = 7\n");
        let run = |sub: &str, default: &Path| {
            let cli = load_with(&argv(&[sub]), default).unwrap();
            match cli.command {
                Command::Agent(a) => a.trace.rotate_keep,
                Command::Watch(w) => w.trace.rotate_keep,
                _ => unreachable!(),
            }
        };
        assert_eq!(run("agent", &f.0), 7);
        assert_eq!(
            run("watch", &f.0),
            5,
            "watch reads a file only with --config"
        );
        assert_eq!(run("agent", &no_default()), 5);
        // --config must exist.
        let e = load_with(
            &argv(&["agent", "--config", "/nonexistent/ctrace.toml"]),
            &no_default(),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("config file /nonexistent/ctrace.toml: cannot read it: "),
            "{msg}"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let e = config_error("host = true\n\n# typo\nhots = true\n");
        assert_eq!(e.line, Some(4));
        assert_eq!(e.message, "unknown key `hots`");
        let e = config_error("rotate-size = \"1MiB\"\n");
        assert_eq!(e.line, Some(1));
        assert_eq!(
            e.message,
            "unknown key `rotate-size` (keys are snake_case: `rotate_size`)"
        );
        // Not a key: the file cannot name another file, nor hold sections.
        assert_eq!(
            config_error("config = \"x\"").message,
            "unknown key `config`"
        );
        let e = config_error("host = true\n[agent]\nhost = true\n");
        assert_eq!(
            (e.line, e.message.as_str()),
            (Some(2), "unknown key `agent`")
        );
        assert!(e
            .to_string()
            .starts_with("config file /tmp/ctrace-config-test-"));
        assert!(e.to_string().ends_with(", line 2: unknown key `agent`"));
    }

    #[test]
    fn wrong_types_are_named_with_their_line() {
        let cases = [
            (
                "host = \"yes\"",
                1,
                "`host` must be true or false, not a string \"yes\"",
            ),
            (
                "\nretention = true",
                2,
                "`retention` must be a string or a number, not a boolean true",
            ),
            (
                "output = 5",
                1,
                "`output` must be a string, not an integer 5",
            ),
            (
                "rotate_keep = \"5\"",
                1,
                "`rotate_keep` must be a number, not a string \"5\"",
            ),
            (
                "container = [\"a\", 1]",
                1,
                "`container` must be a string or an array of strings, not an array [\"a\", 1]",
            ),
            ("a = 1\n", 1, "unknown key `a`"),
        ];
        for (text, line, message) in cases {
            let e = config_error(text);
            assert_eq!(
                (e.line, e.message.as_str()),
                (Some(line), message),
                "{text}"
            );
        }
    }

    #[test]
    fn values_are_checked_by_the_flags_parsers() {
        let f = File::new("retention = 90\nmax_size = 1000\nrotate_size = \"2GiB\"\n");
        let a = agent(&f, &[]).unwrap();
        assert_eq!(a.trace.retention, Duration::from_secs(90));
        assert_eq!(a.trace.max_size, 1000);
        assert_eq!(a.trace.rotate_size, 2 << 30);

        let e = config_error("host = true\nretention = \"7 fortnights\"\n");
        assert_eq!(e.line, Some(2));
        assert!(
            e.message
                .starts_with("`retention`: invalid value '7 fortnights' for '--retention"),
            "{}",
            e.message
        );
        let e = config_error("runtime = [\"docker\", \"lxc\"]");
        assert_eq!(e.line, Some(1));
        assert!(
            e.message.contains("unknown runtime \"lxc\""),
            "{}",
            e.message
        );
        let e = config_error("max_size = \"lots\"");
        assert!(
            e.message.starts_with("`max_size`: invalid value 'lots'"),
            "{}",
            e.message
        );
        let e = config_error("metrics_max_containers = -1");
        assert!(
            e.message.starts_with("`metrics_max_containers`: "),
            "{}",
            e.message
        );
    }

    #[test]
    fn syntax_errors_have_their_line() {
        let e = config_error("host = true\nretention = \"7d\n");
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.starts_with("not TOML: "), "{e}");
        let e = config_error("host = true\nhost = false\n");
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn reload_reads_the_filter_again_and_flags_still_win() {
        let f = File::new("container = \"web\"\nrotate_keep = 2\n");
        let a = agent(&f, &["--runtime", "docker"]).unwrap();
        assert_eq!(describe(&a.trace.filter()), "container web, runtime docker");
        let info = a.trace.config_file.unwrap();
        std::fs::write(
            &f.0,
            "container = [\"db\", \"cache\"]\nruntime = \"runc\"\nhost = true\n",
        )
        .unwrap();
        let filter = info.reload_filter().unwrap();
        assert_eq!(
            describe(&filter),
            "container db,cache, runtime docker, host processes"
        );
        // A bad file is an error: the caller keeps its filter.
        std::fs::write(&f.0, "container = 5\n").unwrap();
        let e = info.reload_filter().unwrap_err();
        assert!(
            e.ends_with(
                ", line 1: `container` must be a string or an array of strings, not an integer 5"
            ),
            "{e}"
        );
        // The key gone: back to the default.
        std::fs::write(&f.0, "").unwrap();
        assert_eq!(
            describe(&info.reload_filter().unwrap()),
            "any container, runtime docker"
        );
    }

    #[test]
    fn lines_of_offsets() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a\n", 99), 2);
    }
}
