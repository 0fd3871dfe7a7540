//! Reads of the host itself.
//!
//! - [`proc`]: the one reader of `/proc`, on the `procfs` crate.
//! - [`kmsg`]: the kernel's OOM reports from `/dev/kmsg` (every task of the OOM domain).
//! - [`heap`]: returning the allocator's free pages after start-up.

pub mod heap;
pub mod kmsg;
pub mod proc;
