//! Subcommands, one file each.

pub mod agent;
pub mod caps;
pub mod config;
pub mod doctor;
pub mod floor;
pub mod history;
pub mod inspect;
pub mod postmortem;
pub mod ps;
pub mod replay;
pub mod shell;
pub mod top;
pub mod watch;

use std::io::Write as _;

/// The command line's amounts (`--interval 1s`, `--journal-max-size 512MiB`).
pub use tracer::units::{parse_duration, parse_size};

/// Columns padded to their widest cell, two spaces apart, no trailing blanks. Cells must
/// already be escaped for the terminal.
pub fn render_columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Print to stdout; a closed pipe (`ctrace ps | head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

use clap::{Parser, Subcommand};

/// `ctrace --version`: `0.1.0 (<git revision>, ebpf <build id of the embedded object>)`.
pub(crate) fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        format!(
            "{} ({}, ebpf {})",
            env!("CARGO_PKG_VERSION"),
            env!("CTRACE_GIT_REV"),
            tracer::probe::object_build_id()
                .as_deref()
                .unwrap_or("none")
        )
    })
}

const EXAMPLES: &str = "\
Examples:
  sudo ctrace watch        # kills, OOM kills, throttling, live
  ctrace postmortem web    # why the container `web` ended
  ctrace completions bash > /etc/bash_completion.d/ctrace";

const WATCH_EXAMPLES: &str = "\
Examples:
  sudo ctrace watch
  sudo ctrace watch --container web --events all --json
  sudo ctrace watch --output /var/log/ctrace.ndjson --rotate-size 100MiB";

const AGENT_EXAMPLES: &str = "\
Examples:
  sudo ctrace agent --metrics-addr 127.0.0.1:9464 --output -
  ctrace agent --config /etc/ctrace/ctrace.toml --check-config";

const PS_EXAMPLES: &str = "\
Examples:
  ctrace ps
  ctrace ps --runtime docker --json";

const POSTMORTEM_EXAMPLES: &str = "\
Examples:
  ctrace postmortem web
  ctrace postmortem 3f2a9c --json";

const HISTORY_EXAMPLES: &str = "\
Examples:
  ctrace history --container web --since 1h --type oom_kill,kill
  ctrace history --since 2026-11-29T18:40:00Z --json --limit 0";

const CAPS_EXAMPLES: &str = "\
Examples:
  ctrace caps web
  ctrace caps web --json | jq .proposal.docker";

const TOP_EXAMPLES: &str = "\
Examples:
  sudo ctrace top
  sudo ctrace top --container web --json";

const INSPECT_EXAMPLES: &str = "\
Examples:
  ctrace inspect web
  ctrace inspect --diff web web-canary";

const RECORD_EXAMPLES: &str = "\
Examples:
  sudo ctrace record /tmp/incident.capture --duration 60
  ctrace replay /tmp/incident.capture --json";

const REPLAY_EXAMPLES: &str = "\
Examples:
  ctrace replay incident.capture
  ctrace replay incident.capture --container web --json";

const DOCTOR_EXAMPLES: &str = "\
Examples:
  sudo ctrace doctor
  sudo ctrace doctor --json | jq '.features[] | select(.on | not)'

Exit status: 0 when every core feature (exec/exit, kills, OOM kills,
capability checks, throttling) is on, 1 when one is off, 2 when the
eBPF programs could not be loaded to check (not root, ...) or on an error.";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  ctrace completions bash > /etc/bash_completion.d/ctrace
  ctrace completions zsh > \"${fpath[1]}/_ctrace\"
  ctrace completions fish > ~/.config/fish/completions/ctrace.fish";

#[derive(Debug, Parser)]
#[command(
    name = "ctrace",
    version = version(),
    about = "eBPF tracer of container activity: kills, OOM kills, throttling, capability checks",
    propagate_version = true,
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream events live, as lines for people or NDJSON for pipelines.
    #[command(after_help = WATCH_EXAMPLES)]
    Watch(Box<watch::WatchCmd>),
    /// Run as a service: trace and write the journal (and NDJSON with --output), with a
    /// periodic status line in the log instead of a stream on stdout.
    #[command(after_help = AGENT_EXAMPLES)]
    Agent(Box<agent::AgentCmd>),
    /// List the containers of every runtime: Docker, containerd, plain runc.
    #[command(after_help = PS_EXAMPLES)]
    Ps(ps::PsArgs),
    /// The story of a container's end from the journal: exits, restarts, OOM kills, kills.
    #[command(after_help = POSTMORTEM_EXAMPLES)]
    Postmortem(postmortem::PostmortemArgs),
    /// Past records from the journal, by container, time and type.
    #[command(after_help = HISTORY_EXAMPLES)]
    History(history::HistoryArgs),
    /// Least-privilege capabilities for a container, from the checks the journal recorded:
    /// used, denied, held and never used, with docker, OCI and Kubernetes settings.
    #[command(after_help = CAPS_EXAMPLES)]
    Caps(caps::CapsArgs),
    /// Live table per container: CPU against quota, throttling, run-queue delay, memory.
    #[command(after_help = TOP_EXAMPLES)]
    Top(top::TopArgs),
    /// One container's identity, process tree, namespaces, capabilities and limits.
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(inspect::InspectArgs),
    /// Trace like `watch` and also write a capture of the session, for `ctrace replay`.
    #[command(after_help = RECORD_EXAMPLES)]
    Record(Box<replay::RecordCmd>),
    /// Show a capture as `watch` showed it live, on any machine, without root or a kernel.
    #[command(after_help = REPLAY_EXAMPLES)]
    Replay(replay::ReplayCmd),
    /// What this host lets ctrace see: the kernel, BTF, cgroups, tracefs, each eBPF hook
    /// (attached, refused, absent) and what serves each feature, or why it is off.
    #[command(after_help = DOCTOR_EXAMPLES)]
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script to stdout.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(shell::CompletionsArgs),
    /// Write the man pages (ctrace.1, ctrace-<subcommand>.1) into DIR: `cargo xtask dist`.
    #[command(hide = true)]
    Man(shell::ManArgs),
    /// The bench's reference probe: a ring record per exec, exit, fork and signal, and
    /// nothing else (`cargo xtask bench`).
    #[command(hide = true)]
    BenchFloor(floor::FloorArgs),
}

#[cfg(test)]
mod tests {
    use std::{path::PathBuf, time::Duration};

    use clap::CommandFactory as _;

    use super::*;

    /// The help of `ctrace` and of each visible subcommand, as a user sees it at 72 columns,
    /// against `tracer/tests/snapshots/help-<sub>.txt`. `UPDATE_SNAPSHOTS=1` rewrites them.
    #[test]
    fn help_snapshots() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
        let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
        let cli = Cli::command();
        let mut names = vec![None];
        names.extend(
            cli.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(|s| Some(s.get_name().to_owned())),
        );
        let mut failures = Vec::new();
        for name in names {
            let mut argv = vec!["ctrace".to_owned()];
            argv.extend(name.clone());
            argv.push("--help".to_owned());
            let err = Cli::command()
                .term_width(72)
                .max_term_width(72)
                .try_get_matches_from(&argv)
                .expect_err("--help stops parsing");
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
            let actual = err.to_string();
            let label = name.as_deref().unwrap_or("ctrace");
            if label != "ctrace" {
                assert!(actual.contains("\nExamples:\n"), "{label}: no examples");
            }
            let path = dir.join(format!("help-{label}.txt"));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &actual).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if expected != actual {
                failures.push(format!("{}:\n{}", path.display(), diff(&expected, &actual)));
            }
        }
        assert!(
            failures.is_empty(),
            "help differs from its snapshot (rerun with UPDATE_SNAPSHOTS=1 if intended):\n{}",
            failures.join("\n")
        );
    }

    /// The differing lines, `-` expected and `+` actual, with their line numbers.
    fn diff(expected: &str, actual: &str) -> String {
        let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
        let mut out = String::new();
        for i in 0..e.len().max(a.len()) {
            let (x, y) = (e.get(i), a.get(i));
            if x != y {
                if let Some(x) = x {
                    out.push_str(&format!("{:4} - {x}\n", i + 1));
                }
                if let Some(y) = y {
                    out.push_str(&format!("{:4} + {y}\n", i + 1));
                }
            }
        }
        out
    }

    #[test]
    fn version_names_revision_and_object() {
        let v = version();
        assert!(v.starts_with(env!("CARGO_PKG_VERSION")), "{v}");
        assert!(v.contains(" ebpf "), "{v}");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("7 fortnights").is_err());
        assert!(parse_duration("x").is_err());
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }
}
