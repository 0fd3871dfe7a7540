//! The bench's floor (`ctrace bench-floor`): the least any probe that streams records does on
//! ctrace's tracepoints, loaded from the second eBPF object (`tracer-ebpf/src/floor.rs`). A ring
//! record per exec, exit, fork and signal, submitted without a wakeup and read every 10 ms,
//! counted and dropped. `cargo xtask bench` runs it beside ctrace: what ctrace costs above it
//! is what its filtering, folding, loss accounting and enrichment cost.
//!
//! With [`Programs::Empty`], programs that return at once on the same tracepoints: what running
//! any program at all costs there, the floor's floor.

use std::time::Duration;

use anyhow::{bail, Context as _};
use aya::{
    maps::{MapData, RingBuf},
    programs::{trace_point::TracePointLinkId, TracePoint},
    Ebpf,
};

/// The floor's eBPF object (empty when built without bpf-linker).
static FLOOR_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/floor"));

/// How often the ring is read, as a probe that does not wake its reader would.
pub const POLL: Duration = Duration::from_millis(10);

/// (program, tracepoint category, tracepoint): every program of the floor.
const RECORDING: [(&str, &str, &str); 4] = [
    ("floor_exec", "sched", "sched_process_exec"),
    ("floor_exit", "sched", "sched_process_exit"),
    ("floor_fork", "sched", "sched_process_fork"),
    ("floor_signal", "signal", "signal_generate"),
];

/// The same tracepoints, programs that do nothing.
const EMPTY: [(&str, &str, &str); 4] = [
    ("empty_exec", "sched", "sched_process_exec"),
    ("empty_exit", "sched", "sched_process_exit"),
    ("empty_fork", "sched", "sched_process_fork"),
    ("empty_signal", "signal", "signal_generate"),
];

/// Which of the floor's programs to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Programs {
    /// A bare ring record per event.
    Recording,
    /// Nothing per event: the cost of running a program at all.
    Empty,
}

/// The floor, loaded and attached; detached when dropped.
pub struct Floor {
    ebpf: Ebpf,
    links: Vec<(&'static str, TracePointLinkId)>,
    /// The ring the programs write to, mapped once.
    ring: RingBuf<MapData>,
}

impl Floor {
    /// Load the floor's programs and attach each of `which` to its tracepoint.
    pub fn attach(which: Programs) -> anyhow::Result<Self> {
        if FLOOR_OBJECT.is_empty() {
            bail!("this ctrace was built without eBPF programs (no bpf-linker): run `cargo xtask build`");
        }
        let mut ebpf = Ebpf::load(FLOOR_OBJECT).context("loading the floor's eBPF object")?;
        let mut links = Vec::new();
        let programs = match which {
            Programs::Recording => RECORDING,
            Programs::Empty => EMPTY,
        };
        for (name, category, tracepoint) in programs {
            let prog: &mut TracePoint = ebpf
                .program_mut(name)
                .with_context(|| format!("no program {name} in the floor's object"))?
                .try_into()
                .with_context(|| format!("{name} is not a tracepoint program"))?;
            prog.load().with_context(|| format!("loading {name}"))?;
            let link = prog
                .attach(category, tracepoint)
                .with_context(|| format!("attaching {name} to {category}:{tracepoint}"))?;
            links.push((name, link));
        }
        let map = ebpf
            .take_map("FLOOR")
            .context("no FLOOR map in the floor's object")?;
        let ring = RingBuf::try_from(map).context("FLOOR is not a ring buffer")?;
        Ok(Self { ebpf, links, ring })
    }

    /// Read every record waiting in the ring; how many there were.
    pub fn drain(&mut self) -> u64 {
        let mut n = 0;
        while self.ring.next().is_some() {
            n += 1;
        }
        n
    }

    /// Detach every program (the ring can still be drained).
    pub fn detach(&mut self) {
        for (name, link) in self.links.drain(..) {
            if let Ok(prog) = self
                .ebpf
                .program_mut(name)
                .context("")
                .and_then(|p| <&mut TracePoint>::try_from(p).context(""))
            {
                let _ = prog.detach(link);
            }
        }
    }
}
