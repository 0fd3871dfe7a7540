//! Subcommands, one file each.

pub mod ps;
pub mod watch;

use std::io::Write as _;

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
    Watch(watch::WatchArgs),
    /// List the containers of every runtime: Docker, containerd, plain runc.
    Ps(ps::PsArgs),
}
