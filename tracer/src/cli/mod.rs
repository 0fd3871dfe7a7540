//! Subcommands, one file each.

pub mod watch;

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
}
