//! Tests of `ctrace config`: the configuration file, its keys and errors, against the flags.

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
signal_window = 0.25
all_threads = true
output = "/var/log/ctrace/events.ndjson"
rotate_size = "100MiB"
rotate_keep = 3
output_special = true
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
oom_killers = ["earlyoom", "my-killer"]
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
    assert_eq!(t.signal_window, 0.25);
    assert!(t.all_threads && t.host && t.verbose && t.no_docker && t.ebpf_log);
    assert!(t.no_tp_btf && !t.no_journal);
    assert_eq!(
        t.output.as_deref(),
        Some(Path::new("/var/log/ctrace/events.ndjson"))
    );
    assert_eq!(t.rotate_size, 100 << 20);
    assert_eq!(t.rotate_keep, 3);
    assert!(t.output_special);
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
    assert_eq!(t.oom_killers, ["earlyoom", "my-killer"]);
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
