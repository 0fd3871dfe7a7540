//! Integration tests: the real `ctrace` binary, this kernel, real processes and containers.
//! Run as root through `cargo xtask test` (which also starts the container runtimes).

mod attribution;
mod capability;
mod caps;
mod cgroup;
mod cli;
mod config;
mod conventions;
mod deploy;
mod floor;
mod hostile;
mod image;
mod incidents;
mod inspect;
mod journal;
mod kernels;
mod metrics;
mod oom;
mod output;
mod privilege;
mod process;
mod replay;
mod schema;
mod session;
mod signal;
