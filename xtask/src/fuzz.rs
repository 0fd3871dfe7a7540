//! A short libFuzzer run of every target in `fuzz/` (cargo-fuzz, nightly), seconds per target,
//! starting from the checked-in corpus (`fuzz/corpus/TARGET`, what the longer runs found).
//! `cargo xtask test` ends with it, so CI runs it; longer runs: `cd fuzz && cargo +nightly fuzz
//! run TARGET` (docs/reliability.md says what they found).

use std::{fs, path::Path, process::Command};

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

/// How the smoke run builds the targets: no sanitizer, no optimizations (so debug assertions and
/// overflow checks, cargo-fuzz's default without `-O`) and no debug info (`fuzz/Cargo.toml`). A
/// cold build took 2 min 36 s on 2 cores, against nearly 10 minutes for the optimized build
/// (cargo-fuzz's default, one codegen unit) even without a sanitizer. Outside one length-checked
/// read in the record decoder the parsers are safe Rust: what a short run can find is a panic, and
/// this build finds it. The long runs use the default build (docs/reliability.md).
const BUILD_FLAGS: [&str; 3] = ["-s", "none", "--dev"];

/// Where cargo-fuzz puts binaries built with [`BUILD_FLAGS`], under `fuzz/target`.
const BIN_DIR: &str = "x86_64-unknown-linux-gnu/debug";

/// Builds every target once, then runs each for `seconds` from its checked-in corpus. New
/// inputs go to a scratch directory, so the tree stays as it was; a crash fails with the
/// target's name and leaves its input in `fuzz/artifacts/TARGET/`.
pub fn smoke(seconds: u32) -> Result<()> {
    // libfuzzer-sys compiles libFuzzer, which is C++.
    if util::which("c++").is_none() {
        say!("fuzz: installing g++ with apt-get (libFuzzer is C++)");
        util::apt_install(&["g++"])?;
    }
    if util::which("cargo-fuzz").is_none() {
        say!("fuzz: installing cargo-fuzz");
        util::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let dir = util::workspace_root().join("fuzz");
    let target_dir = dir.join("target");
    say!(
        "fuzz: building {} targets once (cargo fuzz build {})",
        TARGETS.len(),
        BUILD_FLAGS.join(" ")
    );
    let mut build = Command::new("cargo");
    build
        .current_dir(&dir)
        // The parsers need no eBPF object.
        .env("AYA_BUILD_SKIP", "1")
        .args(["+nightly", "fuzz", "build"])
        .args(BUILD_FLAGS)
        .arg("--target-dir")
        .arg(&target_dir);
    util::run(&mut build).context("building the fuzz targets failed")?;

    let scratch = util::TempDir::new("ctrace-fuzz")?;
    for (i, t) in TARGETS.into_iter().enumerate() {
        let corpus = dir.join("corpus").join(t);
        let artifacts = dir.join("artifacts").join(t);
        fs::create_dir_all(&artifacts)
            .with_context(|| format!("creating {}", artifacts.display()))?;
        let new_inputs = scratch.path().join(t);
        fs::create_dir_all(&new_inputs)
            .with_context(|| format!("creating {}", new_inputs.display()))?;
        say!(
            "fuzz: [{}/{}] {t}: {seconds} s from {} inputs in fuzz/corpus/{t}",
            i + 1,
            TARGETS.len(),
            count_files(&corpus)
        );
        // The first directory takes what the run finds; the second is only read.
        let mut cmd = Command::new(target_dir.join(BIN_DIR).join(t));
        cmd.current_dir(&dir)
            .arg(format!("-max_total_time={seconds}"))
            .arg("-rss_limit_mb=2048")
            .arg("-timeout=10")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(&new_inputs)
            .arg(&corpus);
        util::run(&mut cmd).with_context(|| {
            format!(
                "fuzz target {t} failed (a crash leaves its input in {})",
                artifacts.display()
            )
        })?;
        say!(
            "fuzz: [{}/{}] {t}: no crash, {} new inputs (not kept)",
            i + 1,
            TARGETS.len(),
            count_files(&new_inputs)
        );
    }
    Ok(())
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |d| d.filter_map(Result::ok).count())
}
