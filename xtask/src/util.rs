//! Small helpers: logging, running commands, finding things on the machine.

use std::{
    env,
    ffi::OsStr,
    fs,
    io::{self, Read, Seek, SeekFrom},
    os::{fd::AsFd, unix::process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};

/// Prints one progress line to stderr with the `xtask:` prefix.
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("xtask: {}", format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Renders a command the way one would type it in a shell (environment changes first).
pub fn show(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            parts.push(format!("{}={}", key.to_string_lossy(), quote(value)));
        }
    }
    parts.push(quote(cmd.get_program()));
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn spawn_error(cmd: &Command) -> String {
    let program = cmd.get_program().to_string_lossy();
    format!("could not start `{program}` (is it installed and on PATH?)")
}

/// Runs a command that changes something, echoing it first. Its output goes to our stderr, with
/// our own messages, so that stdout carries only results.
pub fn run(cmd: &mut Command) -> Result<()> {
    let stderr = io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot duplicate stderr")?;
    run_with_stdout(cmd.stdout(stderr))
}

/// Like [`run`], but leaves the command's stdout as set (inherited by default).
pub fn run_with_stdout(cmd: &mut Command) -> Result<()> {
    say!("$ {}", show(cmd));
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| spawn_error(cmd))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

/// Like [`run_with_stdout`], copying the command's stdout and stderr through as they come and
/// returning every line (of either) that contains `needle`. The command's own status is
/// checked after the copy ends.
pub fn run_scanning(cmd: &mut Command, needle: &'static str) -> Result<Vec<String>> {
    use std::io::BufRead as _;
    say!("$ {}", show(cmd));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| spawn_error(cmd))?;
    fn copy<W: io::Write>(
        from: impl io::Read,
        mut to: W,
        needle: &str,
    ) -> thread::Result<Vec<String>> {
        let mut found = Vec::new();
        let mut reader = io::BufReader::new(from);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let _ = to.write_all(&line);
            let _ = to.flush();
            let text = String::from_utf8_lossy(&line);
            if text.contains(needle) {
                found.push(text.trim_end().to_owned());
            }
            line.clear();
        }
        Ok(found)
    }
    let out = child.stdout.take().context("piped stdout")?;
    let err = child.stderr.take().context("piped stderr")?;
    let out = thread::spawn(move || copy(out, io::stdout(), needle));
    let err = thread::spawn(move || copy(err, io::stderr(), needle));
    let status = child.wait().with_context(|| spawn_error(cmd))?;
    let mut found = Vec::new();
    for h in [out, err] {
        found.extend(h.join().ok().and_then(Result::ok).unwrap_or_default());
    }
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(found)
}

/// `tar | docker import`: pipes `tar`'s stdout into `import` (a `docker import ... - IMAGE`),
/// echoing the pipeline first; `what` names the result in errors.
pub fn pipe_into_import(tar: &mut Command, import: &mut Command, what: &str) -> Result<()> {
    say!("$ {} | {}", show(tar), show(import));
    let mut tar_child = tar
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start tar")?;
    let tar_out = tar_child.stdout.take().context("tar has no stdout")?;
    let import_status = import
        .stdin(tar_out)
        .stdout(Stdio::null())
        .status()
        .context("could not start docker (is dockerd running? `cargo xtask lab-up` starts it)")?;
    let tar_status = tar_child.wait()?;
    if !tar_status.success() {
        bail!("tar of the rootfs of {what} failed ({tar_status})");
    }
    if !import_status.success() {
        bail!("docker import of {what} failed ({import_status})");
    }
    Ok(())
}

/// Runs a query and returns its stdout; on failure the error carries its stderr.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| spawn_error(cmd))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("`{}` failed ({}): {}", show(cmd), out.status, stderr.trim());
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{}` printed non-UTF-8", show(cmd)))
}

/// Runs a quiet check: true when the command starts and exits 0 within `timeout`.
/// A command still running at the deadline is killed and counts as a failure.
pub fn probe(cmd: &mut Command, timeout: Duration) -> bool {
    let Ok(mut child) = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// Polls `check` every 250 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Finds an executable on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub fn home_dir() -> Result<PathBuf> {
    match env::var_os("HOME") {
        Some(home) if !home.is_empty() => Ok(PathBuf::from(home)),
        _ => bail!("HOME is not set: cannot find ~/.cargo and ~/.cache"),
    }
}

/// Where `cargo install` puts binaries: `$CARGO_HOME/bin`, by default `~/.cargo/bin`.
pub fn cargo_bin_dir() -> Result<PathBuf> {
    match env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => Ok(PathBuf::from(home).join("bin")),
        _ => Ok(home_dir()?.join(".cargo/bin")),
    }
}

/// Completes PATH (for us and every child): `~/.cargo/bin` first when missing (rustup, cargo
/// and bpf-linker live there), and the sbin directories last when missing (dockerd, runc and
/// mount live there; minimal CI environments may leave them out).
pub fn ensure_path() -> Result<()> {
    let path = env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = env::split_paths(&path).collect();
    let before = dirs.clone();
    let cargo_bin = cargo_bin_dir()?;
    if !dirs.contains(&cargo_bin) {
        dirs.insert(0, cargo_bin);
    }
    for sbin in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        let sbin = PathBuf::from(sbin);
        if !dirs.contains(&sbin) {
            dirs.push(sbin);
        }
    }
    if dirs != before {
        let joined = env::join_paths(dirs).context("cannot build PATH")?;
        env::set_var("PATH", joined);
    }
    Ok(())
}

/// Whether the effective user id is 0, from `/proc/self/status` (through procfs).
pub fn is_root() -> bool {
    procfs::process::Process::myself()
        .and_then(|p| p.status())
        .is_ok_and(|s| s.euid == 0)
}

const SUDO_MARKER: &str = "CTRACE_XTASK_SUDO";

/// Makes sure we run as root: re-executes this xtask through `sudo -E` when possible.
/// Returns only when already root.
pub fn become_root(what: &str) -> Result<()> {
    if is_root() {
        return Ok(());
    }
    if env::var_os(SUDO_MARKER).is_some() {
        bail!("{what} needs root, and re-running through sudo did not give root");
    }
    let Some(sudo) = which("sudo") else {
        bail!(
            "{what} needs root and sudo is not installed: run it as root \
             (for example `su -c 'cargo xtask ...'`)"
        );
    };
    let exe = env::current_exe().context("cannot find the running xtask binary")?;
    let mut cmd = Command::new(sudo);
    // sudo may reset PATH (secure_path): hand ours over explicitly.
    cmd.arg("-E")
        .arg("env")
        .arg(format!("{SUDO_MARKER}=1"))
        .arg(format!("PATH={}", env::var("PATH").unwrap_or_default()))
        .arg(exe)
        .args(env::args_os().skip(1));
    say!("{what} needs root: re-running through sudo");
    say!("$ {}", show(&cmd));
    let err = cmd.exec();
    Err(err).context("could not run sudo")
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (made absolute) or `<workspace>/target`.
pub fn target_dir() -> Result<PathBuf> {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                Ok(dir)
            } else {
                Ok(env::current_dir()
                    .context("cannot read the current directory")?
                    .join(dir))
            }
        }
        _ => Ok(workspace_root().join("target")),
    }
}

/// A `cargo` command in the workspace root, with the target directory made explicit so that
/// the binaries end up where [`target_dir`] says.
pub fn cargo() -> Result<Command> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    if env::var_os("CARGO_TARGET_DIR").is_some() {
        cmd.env("CARGO_TARGET_DIR", target_dir()?);
    }
    Ok(cmd)
}

/// The last `lines` lines of a (log) file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return format!("({} cannot be read)", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A directory under the system temp dir, removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Installs Debian packages with apt-get, updating its lists once if the install fails.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let install = || {
        let mut c = Command::new("apt-get");
        c.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages);
        c
    };
    if run(&mut install()).is_err() {
        run(Command::new("apt-get").arg("update")).context("apt-get update failed")?;
        run(&mut install()).with_context(|| format!("apt-get install {packages:?} failed"))?;
    }
    Ok(())
}
