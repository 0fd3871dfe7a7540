//! ctrace: eBPF-based container activity tracer.
//!
//! Flow: [`probe`] loads the kernel programs and owns the ring buffer; [`event`] decodes raw
//! records; [`pipeline`] adds stateful accounting; [`sink`] formats NDJSON and console lines;
//! [`cli`] wires them into subcommands.

pub mod cgroupfs;
pub mod cli;
pub mod clock;
pub mod container;
pub mod cpuwatch;
pub mod docker;
pub mod enrich;
pub mod event;
pub mod explain;
pub mod inspect;
pub mod journal;
pub mod names;
pub mod pipeline;
pub mod probe;
pub mod proctable;
pub mod recorder;
pub mod resolve;
pub mod runq;
pub mod sink;
pub mod throttle;
