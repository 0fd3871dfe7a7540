//! `cargo xtask lab-up`: makes this machine ready for the integration tests. Packages,
//! tracefs, containerd and dockerd, a local busybox image (no registry is reachable) in Docker
//! and in two containerd namespaces, and a busybox rootfs for plain runc bundles.
//! Every step checks first and does nothing when its part is already there.

use std::{
    fs::{self, File, OpenOptions},
    io::Read,
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};

use crate::util::{capture, probe, run, say, tail, wait_until, which, TempDir};

/// The image the tests run, in Docker.
pub const DOCKER_IMAGE: &str = "busybox:local";
/// The same image in containerd, in each of [`CONTAINERD_NAMESPACES`].
pub const CONTAINERD_IMAGE: &str = "docker.io/library/busybox:local";
const CONTAINERD_BASE_NAME: &str = "docker.io/library/busybox";
pub const CONTAINERD_NAMESPACES: [&str; 2] = ["default", "other"];
/// A busybox rootfs for runc bundles made by the tests.
pub const RUNC_ROOTFS: &str = "/var/lib/ctrace-lab/rootfs";

const HOST_BUSYBOX: &str = "/bin/busybox";
const APPLETS: [&str; 17] = [
    "sh", "ls", "cat", "sleep", "tail", "sha1sum", "head", "dd", "yes", "true", "kill", "chown",
    "mknod", "id", "ps", "echo", "grep",
];
/// Recorded in the image (label) and next to the runc rootfs: change it (or the applets) to
/// make lab-up rebuild them.
const LAB_VERSION: &str = "1";
const LAB_LABEL: &str = "org.ctrace.lab";

const TRACEFS: &str = "/sys/kernel/tracing";
const CONTAINERD_SOCK: &str = "/run/containerd/containerd.sock";
const CONTAINERD_LOG: &str = "/var/log/containerd.log";
const DOCKERD_LOG: &str = "/var/log/dockerd.log";
const DOCKERD_PIDFILE: &str = "/var/run/docker.pid";
const CHECK_CONTAINER: &str = "ctrace-lab-check";

const REQUIRED_TOOLS: [&str; 10] = [
    "dockerd",
    "containerd",
    "runc",
    "ctr",
    "docker",
    "skopeo",
    "umoci",
    // The metrics tests scrape `ctrace agent` with a real Prometheus and check the exposition
    // with promtool (both from Debian's `prometheus`).
    "prometheus",
    "promtool",
    // The deploy tests check deploy/ctrace.service with `systemd-analyze verify`.
    "systemd-analyze",
];
const APT_PACKAGES: [&str; 8] = [
    "docker.io",
    "containerd",
    "runc",
    "busybox-static",
    "skopeo",
    "umoci",
    "prometheus",
    "systemd",
];
/// The deploy tests validate deploy/kubernetes with it (PyPI; it carries the schemas).
const KUBERNETES_VALIDATE: &str = "kubernetes-validate";
const APT_OPTIONAL: &str = "bpftool";

#[derive(Default)]
struct Summary {
    present: Vec<String>,
    done: Vec<String>,
}

impl Summary {
    fn present(&mut self, what: impl Into<String>) {
        let what = what.into();
        say!("lab-up: {what}: already there");
        self.present.push(what);
    }

    fn done(&mut self, what: impl Into<String>) {
        let what = what.into();
        say!("lab-up: {what}: done");
        self.done.push(what);
    }
}

pub fn lab_up() -> Result<()> {
    let mut summary = Summary::default();
    ensure_packages(&mut summary)?;
    ensure_kubernetes_validate(&mut summary)?;
    ensure_tracefs(&mut summary)?;
    ensure_containerd(&mut summary)?;
    ensure_dockerd(&mut summary)?;
    let rebuilt = ensure_docker_image(&mut summary)?;
    for namespace in CONTAINERD_NAMESPACES {
        ensure_containerd_image(namespace, rebuilt, &mut summary)?;
    }
    check_containerd_run()?;
    ensure_runc_rootfs(&mut summary)?;

    let list = |items: &[String]| {
        if items.is_empty() {
            "nothing".to_owned()
        } else {
            items.join(", ")
        }
    };
    say!(
        "lab-up: ready. Already there: {}. Done now: {}.",
        list(&summary.present),
        list(&summary.done)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Packages

fn ensure_packages(summary: &mut Summary) -> Result<()> {
    let mut missing: Vec<String> = REQUIRED_TOOLS
        .iter()
        .filter(|tool| which(tool).is_none())
        .map(|tool| tool.to_string())
        .collect();
    if !is_static_elf(Path::new(HOST_BUSYBOX)) {
        missing.push(format!("static {HOST_BUSYBOX}"));
    }
    if missing.is_empty() {
        summary.present("packages");
        return Ok(());
    }
    say!(
        "lab-up: missing {}: installing packages with apt-get",
        missing.join(", ")
    );
    if which("apt-get").is_none() {
        bail!(
            "missing {} and apt-get is not available: install the equivalents of {} by hand",
            missing.join(", "),
            APT_PACKAGES.join(" ")
        );
    }
    run(Command::new("apt-get").arg("update")).context("apt-get update failed")?;
    let mut packages: Vec<&str> = APT_PACKAGES.to_vec();
    if apt_installable(APT_OPTIONAL) {
        packages.push(APT_OPTIONAL);
    } else {
        say!("lab-up: {APT_OPTIONAL} is not available from apt here; going on without it");
    }
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&packages))
    .context("apt-get install failed")?;

    let still: Vec<&str> = REQUIRED_TOOLS
        .iter()
        .copied()
        .filter(|tool| which(tool).is_none())
        .collect();
    if !still.is_empty() {
        bail!(
            "still missing after apt-get install: {} (is /usr/sbin on PATH?)",
            still.join(", ")
        );
    }
    if !is_static_elf(Path::new(HOST_BUSYBOX)) {
        bail!("{HOST_BUSYBOX} is still not a static binary: install busybox-static");
    }
    summary.done(format!("installed {}", packages.join(" ")));
    Ok(())
}

/// `kubernetes-validate` from PyPI, with pip (from apt when missing); on a Python that is
/// "externally managed" (PEP 668), with `--break-system-packages`.
fn ensure_kubernetes_validate(summary: &mut Summary) -> Result<()> {
    // The tests run it as `python3 -m kubernetes_validate`: pip may put its script off PATH.
    let importable = || {
        probe(
            Command::new("python3").args(["-c", "import kubernetes_validate"]),
            Duration::from_secs(30),
        )
    };
    if importable() {
        summary.present(KUBERNETES_VALIDATE);
        return Ok(());
    }
    let has_pip = || {
        probe(
            Command::new("python3").args(["-m", "pip", "--version"]),
            Duration::from_secs(30),
        )
    };
    if !has_pip() {
        say!("lab-up: no pip: installing python3-pip with apt-get");
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends", "python3-pip"]))
        .context("apt-get install python3-pip failed")?;
    }
    let pip = || {
        let mut c = Command::new("python3");
        c.args(["-m", "pip", "install", "--quiet", KUBERNETES_VALIDATE]);
        c
    };
    if run(&mut pip()).is_err() {
        say!("lab-up: pip install refused; retrying with --break-system-packages");
        run(pip().arg("--break-system-packages"))
            .with_context(|| format!("pip install {KUBERNETES_VALIDATE} failed"))?;
    }
    if !importable() {
        bail!("{KUBERNETES_VALIDATE} was installed but python3 cannot import kubernetes_validate");
    }
    summary.done(format!("installed {KUBERNETES_VALIDATE} (pip)"));
    Ok(())
}

fn apt_installable(package: &str) -> bool {
    let Ok(policy) = capture(Command::new("apt-cache").args(["policy", package])) else {
        return false;
    };
    policy
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .is_some_and(|candidate| candidate.trim() != "(none)")
}

/// True for an ELF executable without an interpreter (PT_INTERP), i.e. one that runs in an
/// empty rootfs. Only 64-bit little-endian ELF is understood, which is what we run on.
fn is_static_elf(path: &Path) -> bool {
    fn read(path: &Path) -> std::io::Result<Vec<u8>> {
        let mut head = Vec::new();
        File::open(path)?.take(64 * 1024).read_to_end(&mut head)?;
        Ok(head)
    }
    let Ok(head) = read(path) else {
        return false;
    };
    let u16_at = |off: usize| {
        head.get(off..off + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |off: usize| {
        head.get(off..off + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |off: usize| {
        head.get(off..off + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if head.get(0..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    const PT_INTERP: u32 = 3;
    (0..usize::from(phnum)).all(|i| {
        let off = phoff as usize + i * usize::from(phentsize);
        u32_at(off).is_some_and(|p_type| p_type != PT_INTERP)
    })
}

// ---------------------------------------------------------------------------------------------
// tracefs

fn ensure_tracefs(summary: &mut Summary) -> Result<()> {
    let mounts = procfs::mounts().context("reading /proc/mounts")?;
    let mounted = mounts
        .iter()
        .any(|m| m.fs_file == TRACEFS && m.fs_vfstype == "tracefs");
    if mounted {
        summary.present(format!("tracefs at {TRACEFS}"));
        return Ok(());
    }
    run(Command::new("mount").args(["-t", "tracefs", "tracefs", TRACEFS])).with_context(|| {
        format!("cannot mount tracefs at {TRACEFS}; the tracer's tracepoints need it")
    })?;
    summary.done(format!("mounted tracefs at {TRACEFS}"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Daemons

fn containerd_answers() -> bool {
    probe(
        Command::new("ctr").args(["--connect-timeout", "2s", "version"]),
        Duration::from_secs(5),
    )
}

fn docker_answers(subcommand: &str) -> bool {
    let mut cmd = Command::new("docker");
    cmd.arg(subcommand);
    if subcommand == "version" {
        cmd.args(["--format", "{{.Server.Version}}"]);
    }
    probe(&mut cmd, Duration::from_secs(10))
}

/// Starts a daemon in its own session with its output appended to `log`. The returned child
/// is the daemon itself (`setsid` execs it), so an early exit can be noticed.
fn spawn_daemon(program: &str, args: &[&str], log: &str) -> Result<Child> {
    let open_log = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {log}"))
    };
    let mut cmd = Command::new("setsid");
    cmd.arg(program)
        .args(args)
        .current_dir("/")
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?);
    say!("$ {} >>{log} 2>&1 &", crate::util::show(&cmd));
    cmd.spawn()
        .with_context(|| format!("could not start {program} (through setsid)"))
}

/// Waits for a daemon we started to answer; fails early when it exits.
fn wait_for_daemon(
    name: &str,
    child: &mut Child,
    timeout: Duration,
    log: &str,
    mut answers: impl FnMut() -> bool,
) -> Result<()> {
    let ready = wait_until(timeout, || {
        if let Some(status) = child.try_wait()? {
            bail!(
                "{name} exited right after start ({status}); last lines of {log}:\n{}",
                tail(Path::new(log), 30)
            );
        }
        Ok(answers())
    })?;
    if !ready {
        bail!(
            "{name} did not answer within {}s; last lines of {log}:\n{}",
            timeout.as_secs(),
            tail(Path::new(log), 30)
        );
    }
    Ok(())
}

fn ensure_containerd(summary: &mut Summary) -> Result<()> {
    if containerd_answers() {
        summary.present("containerd");
        return Ok(());
    }
    say!("lab-up: containerd does not answer on {CONTAINERD_SOCK}: starting it");
    let mut child = spawn_daemon("containerd", &[], CONTAINERD_LOG)?;
    wait_for_daemon(
        "containerd",
        &mut child,
        Duration::from_secs(30),
        CONTAINERD_LOG,
        containerd_answers,
    )?;
    summary.done(format!(
        "started containerd (pid {}, log {CONTAINERD_LOG})",
        child.id()
    ));
    Ok(())
}

fn ensure_dockerd(summary: &mut Summary) -> Result<()> {
    if docker_answers("version") {
        summary.present("dockerd");
        return Ok(());
    }
    // A dockerd that is alive but not answering yet (still starting): wait for it instead of
    // starting a second one, which would refuse to run anyway because of the pid file.
    if let Some(pid) = live_pid_from(DOCKERD_PIDFILE, "dockerd") {
        say!("lab-up: dockerd (pid {pid}) is running but does not answer yet: waiting for it");
        let ready = wait_until(Duration::from_secs(60), || Ok(docker_answers("info")))?;
        if !ready {
            bail!(
                "dockerd (pid {pid}) runs but does not answer; stop it (kill {pid}) and rerun \
                 `cargo xtask lab-up`; last lines of {DOCKERD_LOG}:\n{}",
                tail(Path::new(DOCKERD_LOG), 30)
            );
        }
        summary.present("dockerd");
        return Ok(());
    }
    if Path::new(DOCKERD_PIDFILE).exists() {
        say!("lab-up: removing stale {DOCKERD_PIDFILE}");
        fs::remove_file(DOCKERD_PIDFILE).with_context(|| format!("removing {DOCKERD_PIDFILE}"))?;
    }
    say!("lab-up: dockerd does not answer: starting it");
    let containerd_flag = format!("--containerd={CONTAINERD_SOCK}");
    let mut child = spawn_daemon(
        "dockerd",
        &[
            &containerd_flag,
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
        ],
        DOCKERD_LOG,
    )?;
    wait_for_daemon(
        "dockerd",
        &mut child,
        Duration::from_secs(60),
        DOCKERD_LOG,
        || docker_answers("info"),
    )?;
    summary.done(format!(
        "started dockerd (pid {}, log {DOCKERD_LOG})",
        child.id()
    ));
    Ok(())
}

/// The pid in `pidfile` when that process is alive and is `comm`.
fn live_pid_from(pidfile: &str, comm: &str) -> Option<u32> {
    let pid: u32 = fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let actual = procfs::process::Process::new(i32::try_from(pid).ok()?)
        .and_then(|p| p.stat())
        .ok()?
        .comm;
    (actual.trim() == comm).then_some(pid)
}

// ---------------------------------------------------------------------------------------------
// Images

fn lab_fingerprint() -> String {
    format!("{LAB_VERSION}:{}", APPLETS.join(","))
}

/// Ensures `busybox:local` in Docker; true when it was (re)built now.
fn ensure_docker_image(summary: &mut Summary) -> Result<bool> {
    let label = capture(Command::new("docker").args([
        "image",
        "inspect",
        "--format",
        &format!("{{{{index .Config.Labels \"{LAB_LABEL}\"}}}}"),
        DOCKER_IMAGE,
    ]));
    match label {
        Ok(label) if label.trim() == lab_fingerprint() => {
            summary.present(format!("docker image {DOCKER_IMAGE}"));
            return Ok(false);
        }
        Ok(_) => say!("lab-up: docker image {DOCKER_IMAGE} is outdated: rebuilding it"),
        Err(_) => say!("lab-up: docker image {DOCKER_IMAGE} is missing: building it"),
    }
    let tmp = TempDir::new("ctrace-lab")?;
    let rootfs = tmp.path().join("rootfs");
    build_rootfs(&rootfs)?;

    let mut tar = Command::new("tar");
    tar.arg("-C").arg(&rootfs).args(["-c", "."]);
    let mut import = Command::new("docker");
    import.args([
        "import",
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        "CMD [\"/bin/sh\"]",
        "--change",
        &format!("LABEL {LAB_LABEL}={}", lab_fingerprint()),
        "-",
        DOCKER_IMAGE,
    ]);
    crate::util::pipe_into_import(&mut tar, &mut import, DOCKER_IMAGE)?;
    summary.done(format!("built docker image {DOCKER_IMAGE}"));
    Ok(true)
}

/// A minimal rootfs: static busybox with applet links and the few files programs expect.
fn build_rootfs(root: &Path) -> Result<()> {
    say!("lab-up: making a busybox rootfs in {}", root.display());
    for dir in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        let dir = root.join(dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o700))?;
    let busybox = root.join("bin/busybox");
    fs::copy(HOST_BUSYBOX, &busybox)
        .with_context(|| format!("copying {HOST_BUSYBOX} (from busybox-static)"))?;
    fs::set_permissions(&busybox, fs::Permissions::from_mode(0o755))?;
    for applet in APPLETS {
        symlink("busybox", root.join("bin").join(applet))
            .with_context(|| format!("linking bin/{applet}"))?;
    }
    let files = [
        ("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n"),
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    ];
    for (path, content) in files {
        fs::write(root.join(path), content).with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}

fn ctr(namespace: &str) -> Command {
    let mut cmd = Command::new("ctr");
    cmd.args(["-n", namespace]);
    cmd
}

fn containerd_has_image(namespace: &str) -> Result<bool> {
    let images = capture(ctr(namespace).args(["image", "ls", "-q"]))?;
    Ok(images.lines().any(|l| l.trim() == CONTAINERD_IMAGE))
}

fn ensure_containerd_image(namespace: &str, rebuilt: bool, summary: &mut Summary) -> Result<()> {
    if !rebuilt && containerd_has_image(namespace)? {
        summary.present(format!("containerd image in namespace {namespace}"));
        return Ok(());
    }
    let tmp = TempDir::new("ctrace-lab")?;
    let archive = tmp.path().join("bb.tar");
    run(Command::new("docker")
        .args(["save", DOCKER_IMAGE, "-o"])
        .arg(&archive))?;
    run(ctr(namespace)
        .args(["image", "import", "--base-name", CONTAINERD_BASE_NAME])
        .arg(&archive))?;
    if !containerd_has_image(namespace)? {
        let images = capture(ctr(namespace).args(["image", "ls", "-q"]))?;
        bail!(
            "after the import, containerd namespace {namespace} still has no {CONTAINERD_IMAGE}; \
             it has: {}",
            images.split_whitespace().collect::<Vec<_>>().join(", ")
        );
    }
    summary.done(format!(
        "imported {CONTAINERD_IMAGE} into containerd namespace {namespace}"
    ));
    Ok(())
}

/// Runs a container from the image in containerd for real, then removes it.
fn check_containerd_run() -> Result<()> {
    let ns = CONTAINERD_NAMESPACES[0];
    remove_check_container(ns);
    say!("lab-up: checking that containerd runs {CONTAINERD_IMAGE}");
    let started = run(ctr(ns).args([
        "run",
        "-d",
        CONTAINERD_IMAGE,
        CHECK_CONTAINER,
        "sleep",
        "1000",
    ]));
    let running = started.and_then(|()| {
        let ok = wait_until(Duration::from_secs(5), || {
            let tasks = capture(ctr(ns).args(["task", "ls"]))?;
            Ok(tasks.lines().any(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                fields.first() == Some(&CHECK_CONTAINER) && fields.get(2) == Some(&"RUNNING")
            }))
        })?;
        if !ok {
            bail!("the task of {CHECK_CONTAINER} is not RUNNING");
        }
        Ok(())
    });
    remove_check_container(ns);
    running.context(format!(
        "containerd cannot run {CONTAINERD_IMAGE} (namespace {ns}); see {CONTAINERD_LOG}"
    ))
}

fn remove_check_container(ns: &str) {
    let quiet = Duration::from_secs(10);
    if !probe(ctr(ns).args(["container", "info", CHECK_CONTAINER]), quiet) {
        return;
    }
    probe(
        ctr(ns).args(["task", "kill", "-s", "KILL", CHECK_CONTAINER]),
        quiet,
    );
    // The task must have stopped before it can be deleted.
    let _ = wait_until(Duration::from_secs(5), || {
        Ok(
            probe(ctr(ns).args(["task", "delete", CHECK_CONTAINER]), quiet)
                || !probe(ctr(ns).args(["task", "ps", CHECK_CONTAINER]), quiet),
        )
    });
    if !probe(
        ctr(ns).args(["container", "delete", CHECK_CONTAINER]),
        quiet,
    ) {
        say!("lab-up: warning: could not delete the check container {CHECK_CONTAINER} in {ns}");
    }
}

// ---------------------------------------------------------------------------------------------
// runc rootfs

fn ensure_runc_rootfs(summary: &mut Summary) -> Result<()> {
    let rootfs = PathBuf::from(RUNC_ROOTFS);
    let stamp = rootfs.with_extension("version");
    let current = fs::read_to_string(&stamp).ok();
    if rootfs.join("bin/busybox").is_file()
        && current.as_deref().map(str::trim) == Some(&lab_fingerprint())
    {
        summary.present(format!("runc rootfs {RUNC_ROOTFS}"));
        return Ok(());
    }
    let parent = rootfs.parent().context("rootfs path has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = rootfs.with_extension("new");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    build_rootfs(&staging)?;
    if rootfs.exists() {
        fs::remove_dir_all(&rootfs).with_context(|| format!("removing old {RUNC_ROOTFS}"))?;
    }
    fs::rename(&staging, &rootfs).with_context(|| format!("moving rootfs to {RUNC_ROOTFS}"))?;
    fs::write(&stamp, format!("{}\n", lab_fingerprint()))
        .with_context(|| format!("writing {}", stamp.display()))?;
    summary.done(format!("made runc rootfs {RUNC_ROOTFS}"));
    Ok(())
}
