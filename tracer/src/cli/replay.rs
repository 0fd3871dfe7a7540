//! `ctrace record FILE`: a `watch` that also writes a capture; `ctrace replay FILE`: the
//! capture run through the same flow offline, shown as `watch` showed it.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use tracer::{
    capture::Tape,
    container::Runtime,
    select::Selector,
    session,
    sink::{escape, filter, filter::Filter},
};

use super::watch::{self, ColorChoice, WatchCmd};

/// `ctrace record`.
#[derive(Debug, Args)]
pub struct RecordCmd {
    /// The capture to write (created 0600; an existing file is replaced).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub watch: WatchCmd,
}

/// `ctrace replay`.
#[derive(Debug, Args)]
pub struct ReplayCmd {
    /// A capture written by `ctrace record`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print one NDJSON object per line instead of human lines.
    #[arg(long)]
    pub json: bool,
    /// Colour the console output: auto, always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Event kinds to show, as for `watch --events` (the capture holds what was traced).
    #[arg(long, default_value = "exec,exit,signal,oom,capability,cpu_throttle")]
    pub events: String,
    /// Only events touching this container, as for `watch --container`; repeatable.
    #[arg(long, value_name = "NAME|ID", value_parser = Selector::parse)]
    pub container: Vec<Selector>,
    /// Only containers of this runtime; repeatable.
    #[arg(long, value_name = "RUNTIME", value_parser = filter::parse_runtime)]
    pub runtime: Vec<Runtime>,
    /// Also show host processes that touch no container.
    #[arg(long)]
    pub host: bool,
}

pub fn record(cmd: &RecordCmd) -> anyhow::Result<()> {
    if cmd.watch.trace.config.is_some() {
        anyhow::bail!("record takes no --config: give the options as flags");
    }
    watch::run_capturing(
        &cmd.watch.trace,
        watch::Mode::Watch {
            json: cmd.watch.json,
            color: cmd.watch.color,
        },
        Some(&cmd.file),
    )
}

pub fn replay(cmd: &ReplayCmd) -> anyhow::Result<()> {
    let shown = watch::parse_events(&cmd.events)?;
    let (header, tape) = Tape::open(&cmd.file)?;
    let mut out = watch::replay_output(
        cmd.json,
        cmd.color,
        shown,
        Filter {
            containers: cmd.container.clone(),
            runtimes: cmd.runtime.clone(),
            include_host: cmd.host,
        },
    );
    let summary = session::replay(&header, tape, &mut out);
    out.finish(summary.stats.as_ref())
        .with_context(|| format!("replaying {}", cmd.file.display()))?;
    let delivered: u64 = summary.delivered.iter().sum();
    eprintln!(
        "ctrace: replayed {} records ({delivered} delivered, {} undecodable) captured by ctrace {} on {}{}",
        summary.records,
        summary.decode_errors,
        escape::terminal(&header.ctrace),
        escape::terminal(&header.host),
        if summary.complete {
            ""
        } else {
            "; the capture was cut short (its session did not end cleanly)"
        }
    );
    if summary.out_of_step > 0 {
        eprintln!(
            "ctrace: warning: {} answers of the capture did not match what the replay asked \
             for: this output differs from the live one there",
            summary.out_of_step
        );
    }
    Ok(())
}
