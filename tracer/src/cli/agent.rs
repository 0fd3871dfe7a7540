//! `ctrace agent`: `watch` as a service. It traces and explains exactly as `watch` does, and
//! writes the journal (for `postmortem` and `history`) and, with `--output`, NDJSON for a log
//! pipeline; stdout stays quiet, and a status line goes to the log (stderr) at an interval.

use std::time::Duration;

use clap::Args;

use super::watch::{self, Mode, WatchArgs};

#[derive(Debug, Args)]
pub struct AgentCmd {
    /// How often a status line (records, losses, containers, journal) goes to stderr.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = super::parse_duration)]
    pub status_interval: Duration,
    #[command(flatten)]
    pub trace: WatchArgs,
}

pub fn run(cmd: &AgentCmd) -> anyhow::Result<()> {
    if cmd.trace.no_journal && cmd.trace.output.is_none() {
        anyhow::bail!(
            "the agent would record nothing: --no-journal needs --output FILE (or drop \
             --no-journal)"
        );
    }
    if cmd.status_interval < Duration::from_secs(1) {
        anyhow::bail!("--status-interval must be at least 1s");
    }
    watch::run_mode(
        &cmd.trace,
        Mode::Agent {
            status_every: cmd.status_interval,
        },
    )
}
