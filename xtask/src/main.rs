//! Project tasks for ctrace: `cargo xtask <command>` (alias in .cargo/config.toml).

mod bench;
mod dist;
mod fuzz;
mod image;
mod lab;
mod setup;
mod util;
mod vm;

use std::{ffi::OsString, os::unix::process::CommandExt, path::PathBuf, process::Command};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use util::say;

#[derive(Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "ctrace project tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building the eBPF programs needs: nightly, rust-src, bpf-linker.
    Setup,
    /// Build ctrace (with its eBPF programs) and print the binary's path.
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build ctrace (optimized) and run it as root, e.g. `cargo xtask run -- watch`.
    Run {
        /// Build without optimizations (a debug build handles records many times slower and
        /// loses more in bursts).
        #[arg(long)]
        debug: bool,
        /// The default; kept so older command lines still work.
        #[arg(long, hide = true, conflicts_with = "debug")]
        release: bool,
        /// Arguments for ctrace.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Prepare this machine for the integration tests (packages, daemons, images). Needs root.
    LabUp,
    /// Prepare the lab, build, and run every test: integration tests and the VM kernel matrix.
    /// Needs root.
    Test {
        /// Extra arguments for `cargo test`, e.g. `cargo xtask test -- -p ctrace-tests`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Measure what ctrace costs and how it scales (overhead on fork/exec and signal storms
    /// beside no tracer and bpftrace, BPF ns per event, the userspace pipeline alone,
    /// latency, containers, event rate) into target/bench/report.json. Needs root.
    Bench(bench::BenchArgs),
    /// Build the container image `ctrace:local` (release binary, its glibc libraries and
    /// loader, no registry) into Docker and print its size. Needs Docker.
    Image,
    /// Build the release binary, its man pages (one per subcommand) and shell completions
    /// into target/dist/ (ctrace, man/, completions/) and list what was written.
    Dist,
    /// Boot Debian's 6.1 and 6.12 kernels under virtme-ng (qemu, TCG) and check, with the
    /// release ctrace and plain runc containers inside, the records the host's tests check
    /// (capability checks through fexit and kprobes, OOM, kill). Installs qemu, virtme-ng and
    /// the kernels when missing. Needs root.
    VmTest(vm::VmArgs),
    /// Build every libFuzzer target in fuzz/ once (cargo-fuzz, nightly; installed when missing)
    /// and run each for SECONDS from its checked-in corpus (about 3 minutes from cold with 5 s
    /// each). `test` ends with this run.
    Fuzz {
        #[arg(default_value_t = 5)]
        seconds: u32,
    },
}

fn main() {
    if let Err(err) = try_main() {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(2);
    }
}

fn try_main() -> Result<()> {
    let cli = Cli::parse();
    util::ensure_path()?;
    match cli.command {
        Cmd::Setup => setup::setup(),
        Cmd::Build { release } => build(release).map(|bin| println!("{}", bin.display())),
        Cmd::Run { debug, args, .. } => run_ctrace(!debug, &args),
        Cmd::LabUp => {
            util::become_root("lab-up")?;
            lab::lab_up()
        }
        Cmd::Test { args } => test(&args),
        Cmd::Bench(args) => bench::bench(&args),
        Cmd::Image => image::image(),
        Cmd::Dist => dist::dist(),
        Cmd::Fuzz { seconds } => fuzz::smoke(seconds),
        Cmd::VmTest(args) => {
            util::become_root("vm-test")?;
            let bin = match &args.ctrace {
                Some(bin) => bin.clone(),
                None => build(true)?,
            };
            vm::vm_test(&args, &bin)
        }
    }
}

/// Builds `ctrace` (tracer/build.rs builds the eBPF object with bpf-linker) and returns the
/// path of the binary.
fn build(release: bool) -> Result<PathBuf> {
    setup::setup()?;
    let profile = if release { "release" } else { "debug" };
    say!("build: building ctrace ({profile})");
    let mut cmd = util::cargo()?;
    cmd.args(["build", "--package", "tracer"]);
    if release {
        cmd.arg("--release");
    }
    util::run(&mut cmd).context("building ctrace failed")?;
    let bin = util::target_dir()?.join(profile).join("ctrace");
    if !bin.is_file() {
        bail!("cargo build succeeded but {} does not exist", bin.display());
    }
    say!("build: {}", bin.display());
    Ok(bin)
}

/// Builds ctrace, then replaces this process with it (through sudo when not root), so that its
/// exit status and signals are ctrace's own.
fn run_ctrace(release: bool, args: &[OsString]) -> Result<()> {
    let bin = build(release)?;
    let mut cmd = if util::is_root() {
        Command::new(&bin)
    } else if let Some(sudo) = util::which("sudo") {
        say!("run: ctrace needs root: running it through sudo");
        let mut cmd = Command::new(sudo);
        cmd.arg("-E").arg(&bin);
        cmd
    } else {
        bail!(
            "ctrace needs root (to load eBPF programs) and sudo is not installed: run {} as root",
            bin.display()
        );
    };
    cmd.args(args);
    say!("$ {}", util::show(&cmd));
    let err = cmd.exec();
    Err(err).with_context(|| format!("could not run {}", bin.display()))
}

fn test(args: &[OsString]) -> Result<()> {
    util::become_root("test")?;
    lab::lab_up()?;
    // The integration tests drive the binary users run: optimized. A debug build handles
    // records some 20 times slower, so under a burst it loses records and takes seconds to
    // drain its ring buffer at Ctrl-C, which says nothing about ctrace. (Unit tests still
    // build with debug assertions and overflow checks.)
    let bin = build(true)?;
    // tests/integration/image.rs runs this image as the agent, in a container.
    image::build_image(&bin)?;
    say!(
        "test: running all tests with the lab: docker image {}, containerd image {} \
         (namespaces {}), runc rootfs {}",
        lab::DOCKER_IMAGE,
        lab::CONTAINERD_IMAGE,
        lab::CONTAINERD_NAMESPACES.join(", "),
        lab::RUNC_ROOTFS
    );
    let mut cmd = util::cargo()?;
    cmd.arg("test");
    if !selects_packages(args) {
        // tracer-ebpf builds only for bpfel-unknown-none (tracer/build.rs builds it): a host
        // build of its no_main binary cannot link.
        cmd.args(["--workspace", "--exclude", "tracer-ebpf"]);
    }
    if !args.iter().any(|a| a == "--no-fail-fast") {
        // One failing test binary must not hide the results of the others (CI shows them all).
        cmd.arg("--no-fail-fast");
    }
    cmd.env("CTRACE_BIN", &bin)
        .env("CTRACE_IMAGE", image::IMAGE)
        .env("CTRACE_REQUIRE_INTEGRATION", "1")
        .args(args);
    // Every test must run here: one that printed `SKIP:` (a unit test that found no BTF, say)
    // tested nothing, and a green run would hide it.
    let skipped = util::run_scanning(&mut cmd, "SKIP:").context("tests failed")?;
    if !skipped.is_empty() {
        bail!(
            "{} test(s) skipped where every test must run (CTRACE_REQUIRE_INTEGRATION=1):\n  {}",
            skipped.len(),
            skipped.join("\n  ")
        );
    }
    // The same binary on the kernels users run (6.1, 6.12), one boot each.
    vm::vm_test(&vm::VmArgs::default(), &bin).context("the VM kernel matrix failed")?;
    // Every parser of untrusted input under libFuzzer for a few seconds, from the corpus the
    // longer runs kept (the suite above replays that corpus too: tracer/tests/robustness.rs).
    fuzz::smoke(FUZZ_SMOKE_SECONDS).context("the libFuzzer smoke run failed")
}

/// Seconds of libFuzzer per target at the end of `cargo xtask test`.
const FUZZ_SMOKE_SECONDS: u32 = 5;

/// Whether `cargo test` arguments pick packages themselves (`-p`/`--package` before `--`):
/// `--workspace` would override them.
fn selects_packages(args: &[OsString]) -> bool {
    args.iter()
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .any(|a| a.starts_with("-p") || a == "--package" || a.starts_with("--package="))
}
