//! `ctrace bench-floor` (hidden): the bench's reference probe, until SIGINT or SIGTERM.

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};
use tracer::probe::floor::{self, Floor, Programs};

#[derive(Debug, clap::Args)]
pub struct FloorArgs {
    /// Attach programs that do nothing instead: what running any program costs.
    #[arg(long)]
    pub empty: bool,
}

/// Attach the floor, say so on stderr, read its ring every 10 ms until told to stop, then
/// say how many records it read.
pub fn run(args: &FloorArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut probe = Floor::attach(if args.empty {
            Programs::Empty
        } else {
            Programs::Recording
        })?;
        eprintln!("ctrace floor: tracing");
        let mut records = 0u64;
        let mut poll = tokio::time::interval(floor::POLL);
        loop {
            tokio::select! {
                _ = poll.tick() => records += probe.drain(),
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
            }
        }
        probe.detach();
        records += probe.drain();
        eprintln!("ctrace floor: {records} records read");
        Ok(())
    })
}
