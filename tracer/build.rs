//! Builds the eBPF objects (`tracer-ebpf`) with aya-build and leaves them in `OUT_DIR/tracer`,
//! where `src/probe/mod.rs` embeds it (`OBJECT`), and `OUT_DIR/floor`, the bench's reference
//! probe (`src/probe/floor.rs`).
//!
//! Without bpf-linker on PATH, or with `CTRACE_EBPF_STUB=1`/`AYA_BUILD_SKIP=1`, an empty stub is
//! written instead so that `cargo check`, clippy and unit tests work on any machine; the
//! resulting binary says at start that it has no eBPF programs and how to build them.
//!
//! It also sets `CTRACE_GIT_REV` (`git rev-parse --short HEAD`, or "unknown") for
//! `ctrace --version`.
use std::{env, fs, path::PathBuf, process::Command};

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=CTRACE_EBPF_STUB");
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    println!("cargo:rerun-if-env-changed=PATH");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?);
    let workspace = manifest_dir.parent().context("tracer/ has no parent")?;
    let object = out_dir.join("tracer");
    git_revision(workspace);

    let forced_stub = ["CTRACE_EBPF_STUB", "AYA_BUILD_SKIP"]
        .iter()
        .any(|v| env::var(v).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")));
    let linker = find_on_path("bpf-linker");
    if forced_stub || linker.is_none() {
        if !forced_stub {
            println!(
                "cargo:warning=bpf-linker not found on PATH: building ctrace WITHOUT its eBPF \
                 programs (run `cargo xtask setup`, or build with `cargo xtask build`)"
            );
        }
        for o in [&object, &out_dir.join("floor")] {
            fs::write(o, b"").with_context(|| format!("writing {}", o.display()))?;
        }
        println!("cargo:rustc-env=CTRACE_EBPF_STUB=1");
        return Ok(());
    }
    println!("cargo:rustc-env=CTRACE_EBPF_STUB=0");

    let ebpf_dir = workspace.join("tracer-ebpf");
    // aya-build watches the eBPF crate; the shared types live in tracer-common.
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("tracer-common").display()
    );
    let ebpf_dir = ebpf_dir.to_str().context("non UTF-8 path to tracer-ebpf")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "tracer-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}

/// `CTRACE_GIT_REV` for `--version`. Reruns only when HEAD moves: `.git/HEAD` (a checkout)
/// and the file of the branch it names (a commit), each watched only if it exists, since
/// cargo reruns on every build for a missing path.
fn git_revision(workspace: &std::path::Path) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(workspace)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let rev = git(&["rev-parse", "--short", "HEAD"]);
    println!(
        "cargo:rustc-env=CTRACE_GIT_REV={}",
        rev.as_deref().unwrap_or("unknown")
    );
    if rev.is_none() {
        return;
    }
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]) {
            if std::path::Path::new(&path).is_file() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
