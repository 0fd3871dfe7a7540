//! Reads of the host itself.
//!
//! - [`proc`]: the one reader of `/proc`, on the `procfs` crate.
//! - [`kmsg`]: the kernel's OOM reports from `/dev/kmsg` (every task of the OOM domain).

pub mod kmsg;
pub mod proc;
