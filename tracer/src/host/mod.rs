//! Reads of the host itself.
//!
//! - [`proc`]: the one reader of `/proc`, on the `procfs` crate.

pub mod proc;
