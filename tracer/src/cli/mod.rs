//! Subcommands, one file each.

pub mod agent;
pub mod config;
pub mod history;
pub mod inspect;
pub mod postmortem;
pub mod ps;
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

#[derive(Debug, Parser)]
#[command(
    name = "ctrace",
    version,
    about = "eBPF tracer of container activity: kills, OOM kills, throttling, capability checks",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream events live, as lines for people or NDJSON for pipelines.
    Watch(Box<watch::WatchCmd>),
    /// Run as a service: trace and write the journal (and NDJSON with --output), with a
    /// periodic status line in the log instead of a stream on stdout.
    Agent(Box<agent::AgentCmd>),
    /// List the containers of every runtime: Docker, containerd, plain runc.
    Ps(ps::PsArgs),
    /// The story of a container's end from the journal: exits, restarts, OOM kills, kills.
    Postmortem(postmortem::PostmortemArgs),
    /// Past records from the journal, by container, time and type.
    History(history::HistoryArgs),
    /// Live table per container: CPU against quota, throttling, run-queue delay, memory.
    Top(top::TopArgs),
    /// One container's identity, process tree, namespaces, capabilities and limits.
    Inspect(inspect::InspectArgs),
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
