//! A short libFuzzer run of every target in `fuzz/` (cargo-fuzz, nightly): part of `cargo xtask
//! test`, seconds per target. Longer runs: `cd fuzz && cargo +nightly fuzz run TARGET`
//! (docs/reliability.md says what they found).

use std::process::Command;

use anyhow::{Context as _, Result};

use crate::util::{self, say};

/// The targets of `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 6] = [
    "record_decoder",
    "cgroup_path",
    "runc_state",
    "oci_config",
    "docker_config_v2",
    "proc_readers",
];

/// Run each target for `seconds`; a crash fails with the target's name (libFuzzer leaves the
/// input in `fuzz/artifacts/TARGET/`).
pub fn smoke(seconds: u32) -> Result<()> {
    if util::which("cargo-fuzz").is_none() {
        say!("fuzz: installing cargo-fuzz");
        util::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let dir = util::workspace_root().join("fuzz");
    for t in TARGETS {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&dir)
            // The parsers need no eBPF object.
            .env("AYA_BUILD_SKIP", "1")
            .args(["+nightly", "fuzz", "run", t, "--"])
            .arg(format!("-max_total_time={seconds}"));
        util::run(&mut cmd).with_context(|| format!("fuzz target {t} failed"))?;
    }
    Ok(())
}
