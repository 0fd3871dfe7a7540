//! `cargo xtask setup`: the Rust side of the toolchain. The nightly toolchain with rust-src
//! builds the eBPF crate, and bpf-linker links it. bpf-linker must be built against the same
//! LLVM major version as nightly's rustc; it links to the libLLVM that nightly ships.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context, Result};

use crate::util::{capture, home_dir, probe, run, say, which};

const NIGHTLY: &str = "nightly";

pub fn setup() -> Result<()> {
    ensure_nightly()?;
    ensure_rust_src()?;
    ensure_bpf_linker()?;
    say!("setup: done");
    Ok(())
}

fn rustup() -> Command {
    let mut cmd = Command::new("rustup");
    // Our own toolchain choice must not leak into rustup's answers.
    cmd.env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

fn rustc_nightly() -> Command {
    let mut cmd = Command::new("rustc");
    cmd.arg(format!("+{NIGHTLY}"))
        .env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

fn ensure_nightly() -> Result<()> {
    if which("rustup").is_none() {
        bail!("rustup is not on PATH (nor in ~/.cargo/bin): install it from https://rustup.rs");
    }
    let list = capture(rustup().args(["toolchain", "list"]))?;
    let installed = list
        .lines()
        .any(|l| l.split_whitespace().next().is_some_and(is_nightly_name));
    if installed {
        say!("setup: toolchain {NIGHTLY}: installed");
        return Ok(());
    }
    say!("setup: toolchain {NIGHTLY}: missing, installing it");
    run(rustup().args(["toolchain", "install", NIGHTLY, "--profile", "minimal"]))
        .context("installing the nightly toolchain (needed to build the eBPF programs)")
}

/// `nightly` or `nightly-<host triple>`, not dated ones like `nightly-2024-01-01`.
fn is_nightly_name(name: &str) -> bool {
    name == NIGHTLY
        || name
            .strip_prefix("nightly-")
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
}

fn ensure_rust_src() -> Result<()> {
    let components =
        capture(rustup().args(["component", "list", "--toolchain", NIGHTLY, "--installed"]))?;
    if components.lines().any(|l| l.trim().starts_with("rust-src")) {
        say!("setup: rust-src for {NIGHTLY}: installed");
        return Ok(());
    }
    say!("setup: rust-src for {NIGHTLY}: missing, adding it");
    run(rustup().args(["component", "add", "rust-src", "--toolchain", NIGHTLY]))
        .context("adding rust-src (needed for -Z build-std=core)")
}

/// The bpf-linker release known to build and work with the pinned aya crates here.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Where bpf-linker finds libLLVM: a stable prefix whose `lib/` links to nightly's libLLVM.
/// bpf-linker keeps an rpath to this directory.
struct LlvmPrefix {
    root: PathBuf,
    /// nightly's libLLVM, e.g. `<sysroot>/lib/libLLVM.so.22.1-rust-1.97.0-nightly`.
    library: PathBuf,
    major: String,
}

fn cache_dir() -> Result<PathBuf> {
    Ok(home_dir()?.join(".cache/ctrace"))
}

fn stamp_path() -> Result<PathBuf> {
    Ok(cache_dir()?.join("bpf-linker.llvm"))
}

fn nightly_llvm_major() -> Result<String> {
    let version = capture(rustc_nightly().arg("-vV"))?;
    let line = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version:"))
        .context("`rustc +nightly -vV` printed no `LLVM version:` line")?;
    let major: String = line
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if major.is_empty() {
        bail!("cannot read the LLVM major version from `LLVM version:{line}`");
    }
    Ok(major)
}

fn nightly_libllvm() -> Result<PathBuf> {
    let sysroot = capture(rustc_nightly().args(["--print", "sysroot"]))?;
    let lib = Path::new(sysroot.trim()).join("lib");
    let entries = fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so.") && n.contains("-rust-"))
        })
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "no libLLVM.so.*-rust-* in {}: the nightly toolchain looks incomplete \
             (try `rustup toolchain install nightly --force`)",
            lib.display()
        ),
        _ => bail!(
            "several libLLVM.so.*-rust-* in {}: {found:?}; cannot tell which one to use",
            lib.display()
        ),
    }
}

/// Creates (or repairs) `~/.cache/ctrace/llvm/lib` with `libLLVM.so` (what bpf-linker's build
/// links against) and a link under libLLVM's own soname (what the built binary asks the loader
/// for), both pointing at nightly's libLLVM. Links to other libLLVM versions are removed.
fn prepare_llvm_prefix() -> Result<LlvmPrefix> {
    let major = nightly_llvm_major()?;
    let library = nightly_libllvm()?;
    let file_name = library
        .file_name()
        .and_then(|n| n.to_str())
        .context("libLLVM has a non UTF-8 name")?
        .to_owned();
    if !file_name.starts_with(&format!("libLLVM.so.{major}")) {
        bail!(
            "nightly reports LLVM {major} but ships {file_name}: the toolchain looks inconsistent"
        );
    }
    let root = cache_dir()?.join("llvm");
    let lib = root.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    for entry in fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let wanted = name == "libLLVM.so" || name == file_name.as_str();
        if name.starts_with("libLLVM") && !wanted {
            say!("setup: removing stale {}", entry.path().display());
            fs::remove_file(entry.path())?;
        }
    }
    for name in ["libLLVM.so", file_name.as_str()] {
        let link = lib.join(name);
        if fs::read_link(&link).is_ok_and(|target| target == library) {
            continue;
        }
        if fs::symlink_metadata(&link).is_ok() {
            fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
        }
        say!("setup: linking {} -> {}", link.display(), library.display());
        symlink(&library, &link).with_context(|| format!("creating {}", link.display()))?;
    }
    Ok(LlvmPrefix {
        root,
        library,
        major,
    })
}

fn ensure_bpf_linker() -> Result<()> {
    let prefix = prepare_llvm_prefix()?;
    let major = &prefix.major;
    let stamp_file = stamp_path()?;
    let stamp = fs::read_to_string(&stamp_file)
        .ok()
        .map(|s| s.trim().to_owned());

    let reason = match which("bpf-linker") {
        None => "not installed".to_owned(),
        Some(linker) => match stamp.as_deref() {
            Some(s) if s == major => {
                if runs(&linker) {
                    say!("setup: bpf-linker: {} (LLVM {major})", linker.display());
                    return Ok(());
                }
                "installed but does not run (nightly's libLLVM changed?)".to_owned()
            }
            Some(s) => format!("built for LLVM {s}, nightly uses LLVM {major}"),
            None => match detect_llvm_major(&linker, &prefix) {
                Some(found) if &found == major && runs(&linker) => {
                    say!(
                        "setup: bpf-linker: {} uses nightly's LLVM {major}; recording it in {}",
                        linker.display(),
                        stamp_file.display()
                    );
                    write_stamp(&stamp_file, major)?;
                    return Ok(());
                }
                Some(found) => format!("uses LLVM {found}, nightly uses LLVM {major}"),
                None => "installed, but its LLVM version is unknown".to_owned(),
            },
        },
    };
    say!("setup: bpf-linker: {reason}; building it for LLVM {major} (takes about a minute)");
    install_bpf_linker(&prefix)?;

    let linker = which("bpf-linker")
        .context("bpf-linker was installed but is not on PATH: add ~/.cargo/bin to PATH")?;
    if !runs(&linker) {
        bail!(
            "the freshly built {} does not run (`bpf-linker --version` fails); \
             check `ldd {}`",
            linker.display(),
            linker.display()
        );
    }
    write_stamp(&stamp_file, major)?;
    say!(
        "setup: bpf-linker: {} built for LLVM {major}",
        linker.display()
    );
    Ok(())
}

fn runs(linker: &Path) -> bool {
    probe(
        Command::new(linker).arg("--version"),
        Duration::from_secs(10),
    )
}

/// Which LLVM major an installed bpf-linker uses, without a stamp: from `--version` when it
/// says, otherwise from the libLLVM the loader picks for it (`ldd`), which counts only when it
/// is nightly's own libLLVM reached through our prefix.
fn detect_llvm_major(linker: &Path, prefix: &LlvmPrefix) -> Option<String> {
    if let Ok(version) = capture(Command::new(linker).arg("--version")) {
        if let Some(rest) = version.split("LLVM").nth(1) {
            let major: String = rest
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if !major.is_empty() {
                return Some(major);
            }
        }
    }
    let ldd = capture(Command::new("ldd").arg(linker)).ok()?;
    let resolved = ldd.lines().find_map(|line| {
        let (name, rest) = line.trim().split_once(" => ")?;
        if !name.starts_with("libLLVM") {
            return None;
        }
        let path = rest.split(" (").next()?.trim();
        Some(PathBuf::from(path))
    })?;
    let lib_dir = prefix.root.join("lib");
    if !resolved.starts_with(&lib_dir) {
        say!(
            "setup: bpf-linker loads {} (not from {})",
            resolved.display(),
            lib_dir.display()
        );
        return None;
    }
    let real = fs::canonicalize(&resolved).ok()?;
    if real != fs::canonicalize(&prefix.library).ok()? {
        return None;
    }
    let name = real.file_name()?.to_str()?;
    let version = name.strip_prefix("libLLVM.so.")?;
    let major: String = version.chars().take_while(char::is_ascii_digit).collect();
    (!major.is_empty()).then_some(major)
}

fn install_bpf_linker(prefix: &LlvmPrefix) -> Result<()> {
    let mut cmd = Command::new("cargo");
    // Plain `cargo` (stable) in a neutral directory, free of the settings of the build that
    // runs us.
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_MANIFEST_DIR",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "LD_LIBRARY_PATH",
    ] {
        cmd.env_remove(var);
    }
    cmd.current_dir(home_dir()?)
        .env("LLVM_PREFIX", &prefix.root)
        .args([
            "install",
            "bpf-linker",
            // Pinned: later releases may need a newer rustc than this machine kind has.
            "--version",
            BPF_LINKER_VERSION,
            "--locked",
            "--no-default-features",
            "--features",
        ])
        .arg(format!("llvm-{}", prefix.major))
        .arg("--force");
    run(&mut cmd).context(
        "building bpf-linker failed (it needs crates.io; see the cargo output above). \
         Retry with `cargo xtask setup`",
    )
}

fn write_stamp(path: &Path, major: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, format!("{major}\n")).with_context(|| format!("writing {}", path.display()))
}
