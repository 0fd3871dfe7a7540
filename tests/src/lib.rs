//! Helpers for ctrace's integration tests: run the real `ctrace` binary against this kernel,
//! drive real processes and containers, and collect its NDJSON.
//!
//! Preconditions (root, the `ctrace` binary, a container runtime) are checked by [`require`]:
//! when one is missing the test prints why and returns early, unless
//! `CTRACE_REQUIRE_INTEGRATION=1` (set by `cargo xtask test` and so by CI), where it fails.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

pub mod expect;

/// Why a test cannot run here: fails under `CTRACE_REQUIRE_INTEGRATION=1`, else skips loudly.
pub fn unavailable(why: &str) {
    if std::env::var("CTRACE_REQUIRE_INTEGRATION").is_ok_and(|v| v == "1") {
        panic!("integration test precondition failed: {why}");
    }
    // On the real stderr, past the test harness's capture: `cargo xtask test` scans for it.
    let _ = writeln!(
        std::io::stderr(),
        "SKIP: {why} (set CTRACE_REQUIRE_INTEGRATION=1 to make this a failure)"
    );
}

/// Path of the ctrace binary: `CTRACE_BIN`, else `target/debug/ctrace` of this workspace.
pub fn ctrace_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CTRACE_BIN") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/ctrace");
    p.is_file().then_some(p)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Check root and the binary. `None`: the caller returns (the reason was printed).
pub fn require() -> Option<PathBuf> {
    if !is_root() {
        unavailable("integration tests load eBPF programs and need root");
        return None;
    }
    let Some(bin) = ctrace_bin() else {
        unavailable("no ctrace binary: set CTRACE_BIN or run `cargo xtask test`");
        return None;
    };
    Some(bin)
}

/// Check that Docker answers and the local busybox image exists.
pub fn require_docker() -> bool {
    let ok = Command::new("docker")
        .args(["image", "inspect", "busybox:local"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status_bounded()
        .is_ok_and(|s| s.success());
    if !ok {
        unavailable(
            "docker is not running or has no busybox:local image (run `cargo xtask lab-up`)",
        );
    }
    ok
}

/// A running `ctrace watch --json` whose stdout is collected line by line.
pub struct Watch {
    child: Child,
    records: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
    reader: Option<thread::JoinHandle<()>>,
    err_reader: Option<thread::JoinHandle<()>>,
}

impl Watch {
    /// Start `ctrace watch --json ARGS` and wait until it says it is tracing.
    pub fn start(bin: &Path, args: &[&str]) -> Self {
        Self::start_with_env(bin, args, &[])
    }

    /// [`Watch::start`] with extra environment variables.
    pub fn start_with_env(bin: &Path, args: &[&str], env: &[(&str, &Path)]) -> Self {
        // Tests run watches side by side: each writes a journal only when it names one.
        let no_journal: &[&str] = if args.contains(&"--journal") {
            &[]
        } else {
            &["--no-journal"]
        };
        let mut argv = vec!["watch", "--json"];
        argv.extend_from_slice(no_journal);
        argv.extend_from_slice(args);
        Self::spawn_env(bin, &argv, env, "ctrace: tracing")
    }

    /// Start `ctrace record CAPTURE --json --no-journal ARGS` and wait until it says it is
    /// tracing.
    pub fn start_record(bin: &Path, capture: &Path, args: &[&str]) -> Self {
        let capture = capture.to_str().expect("a UTF-8 capture path");
        let mut argv = vec!["record", capture, "--json", "--no-journal"];
        argv.extend_from_slice(args);
        Self::spawn(bin, &argv, "ctrace: tracing")
    }

    /// Start `ctrace agent ARGS` and wait until it says it is tracing. Its stdout must stay
    /// empty: [`Watch::records`] shows anything it printed there.
    pub fn start_agent(bin: &Path, args: &[&str]) -> Self {
        Self::start_agent_with_env(bin, args, &[])
    }

    /// [`Watch::start_agent`] with extra environment variables.
    pub fn start_agent_with_env(bin: &Path, args: &[&str], env: &[(&str, &Path)]) -> Self {
        let mut argv = vec!["agent"];
        argv.extend_from_slice(args);
        Self::spawn_env(bin, &argv, env, "ctrace agent: tracing")
    }

    /// Start `ctrace bench-floor ARGS` (the bench's reference probe) and wait until it says it
    /// is tracing. It prints nothing on stdout.
    pub fn start_bench_floor(bin: &Path, args: &[&str]) -> Self {
        let mut argv = vec!["bench-floor"];
        argv.extend_from_slice(args);
        Self::spawn(bin, &argv, "ctrace floor: tracing")
    }

    fn spawn(bin: &Path, argv: &[&str], ready: &'static str) -> Self {
        Self::spawn_env(bin, argv, &[], ready)
    }

    fn spawn_env(bin: &Path, argv: &[&str], env: &[(&str, &Path)], ready: &'static str) -> Self {
        let mut child = Command::new(bin)
            .args(argv)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let records = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("piped stdout");
        let recs = Arc::clone(&records);
        let reader = thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("ctrace printed a line that is not JSON ({e}): {line}")
                });
                recs.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(v);
            }
        });
        let err = child.stderr.take().expect("piped stderr");
        let errs = Arc::clone(&stderr);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let err_reader = thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                // Kept before the start is signalled: a test that reads stderr right after
                // `start` returns sees the ready line and everything before it.
                {
                    let mut e = errs
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    e.push_str(&line);
                    e.push('\n');
                }
                if line.starts_with(ready) {
                    let _ = ready_tx.send(());
                }
            }
        });
        let mut w = Self {
            child,
            records,
            stderr,
            reader: Some(reader),
            err_reader: Some(err_reader),
        };
        if ready_rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = w.child.kill();
            let _ = w.child.wait();
            if let Some(h) = w.err_reader.take() {
                let _ = h.join();
            }
            panic!(
                "ctrace did not start tracing within 30 s; stderr:\n{}",
                w.stderr()
            );
        }
        w
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records so far.
    pub fn records(&self) -> Vec<Value> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Wait until `pred` holds for some record; returns it. Panics with context on timeout.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = self
                .records
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .find(|v| pred(v))
            {
                return v.clone();
            }
            if start.elapsed() > timeout {
                let seen = self.records().len();
                let stderr = self.stderr();
                panic!("timed out after {timeout:?} waiting for {what}; {seen} records seen; stderr:\n{stderr}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGINT, wait for a clean exit, return every record (the closing `stats` included).
    pub fn stop(self) -> (Vec<Value>, String) {
        self.stop_with(libc::SIGINT)
    }

    /// Like [`Watch::stop`], with another signal (SIGTERM, as a service manager sends).
    pub fn stop_with(mut self, sig: i32) -> (Vec<Value>, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait on ctrace") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "ctrace did not exit within 20 s of signal {sig}; stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        if let Some(h) = self.reader.take() {
            h.join().expect("stdout reader");
        }
        if let Some(h) = self.err_reader.take() {
            h.join().expect("stderr reader");
        }
        let stderr = self.stderr();
        assert!(
            status.success(),
            "ctrace exited with {status}; stderr:\n{stderr}"
        );
        (self.records(), stderr)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Taken by tests that load the whole machine (floods, busy loops, bursts): they run one at a
/// time, in their own test binary (see `storm/main.rs`).
pub fn storm() -> std::sync::MutexGuard<'static, ()> {
    static STORM: Mutex<()> = Mutex::new(());
    STORM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("ctrace-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copy a system binary under a unique name, so its comm identifies this test's processes.
pub fn unique_binary(dir: &TempDir, source: &str, name: &str) -> PathBuf {
    assert!(name.len() <= 15, "comm is at most 15 characters: {name}");
    let dst = dir.0.join(name);
    std::fs::copy(source, &dst).unwrap_or_else(|e| panic!("copy {source}: {e}"));
    dst
}

/// Run a command to completion, panicking with its output on failure.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output_bounded()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The longest any command a test runs may take. Past it the command is killed and the test
/// fails with the command's name: a test never hangs on a child.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(180);

/// `Command::output` and `Command::status` with a bound ([`COMMAND_LIMIT`]): past it the child
/// is killed and the call returns a `TimedOut` error naming the command.
pub trait Bounded {
    /// Like `output()` (stdin null, stdout and stderr captured), within [`COMMAND_LIMIT`].
    fn output_bounded(&mut self) -> std::io::Result<Output>;
    /// Like `status()` (stdio inherited unless set), within [`COMMAND_LIMIT`].
    fn status_bounded(&mut self) -> std::io::Result<ExitStatus>;
}

impl Bounded for Command {
    fn output_bounded(&mut self) -> std::io::Result<Output> {
        let what = format!("{self:?}");
        let child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        output_within(child, COMMAND_LIMIT, &what)
    }

    fn status_bounded(&mut self) -> std::io::Result<ExitStatus> {
        let what = format!("{self:?}");
        let mut child = self.spawn()?;
        wait_within(&mut child, Instant::now() + COMMAND_LIMIT, &what)
    }
}

fn timed_out(what: &str, why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: {why} within {COMMAND_LIMIT:?}"),
    )
}

/// Waits for `child` until `deadline`; past it, kills it and returns a `TimedOut` error.
fn wait_within(child: &mut Child, deadline: Instant, what: &str) -> std::io::Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(timed_out(what, "did not exit"));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// `Child::wait_with_output` within `limit`: the child's exit and the end of its stdout and
/// stderr (which a daemon it started may hold open) are both bounded.
pub fn output_within(mut child: Child, limit: Duration, what: &str) -> std::io::Result<Output> {
    use std::io::Read as _;
    let deadline = Instant::now() + limit;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(mut pipe) = pipe {
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send(buf);
            });
        } else {
            let _ = tx.send(Vec::new());
        }
        rx
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = wait_within(&mut child, deadline, what)?;
    let collect = |rx: std::sync::mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| timed_out(what, "exited, but its output was not closed"))
    };
    Ok(Output {
        status,
        stdout: collect(out)?,
        stderr: collect(err)?,
    })
}

/// A Docker container removed (`docker rm -f`) on drop.
pub struct DockerContainer {
    pub id: String,
    pub name: String,
}

impl DockerContainer {
    /// `docker run -d --network none --name NAME EXTRA... busybox:local CMD...`
    pub fn run(name: &str, extra: &[&str], cmd: &[&str]) -> Self {
        let _ = Command::new("docker")
            .args(["rm", "-f", name])
            .output_bounded();
        let out = run(Command::new("docker")
            .args(["run", "-d", "--network", "none", "--name", name])
            .args(extra)
            .arg("busybox:local")
            .args(cmd));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(id.len(), 64, "docker run printed an id: {id:?}");
        Self {
            id,
            name: name.to_owned(),
        }
    }

    /// `docker inspect -f FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        let out = run(Command::new("docker").args(["inspect", "-f", format, &self.id]));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn init_pid(&self) -> u32 {
        self.inspect("{{.State.Pid}}").parse().expect("pid")
    }

    /// Wait until the container has stopped; returns its exit code.
    pub fn wait(&self, timeout: Duration) -> i64 {
        let start = Instant::now();
        loop {
            if self.inspect("{{.State.Running}}") == "false" {
                return self
                    .inspect("{{.State.ExitCode}}")
                    .parse()
                    .expect("exit code");
            }
            assert!(
                start.elapsed() < timeout,
                "container {} still running",
                self.name
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn remove(&self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.id])
            .output_bounded();
    }
}

impl Drop for DockerContainer {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Inode of a directory: the cgroup id the kernel reports for a cgroup v2 directory.
pub fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Mount point of the cgroup v2 hierarchy: `/sys/fs/cgroup/unified` on hybrid hosts,
/// `/sys/fs/cgroup` on pure v2 ones.
pub fn cgroup2_root() -> PathBuf {
    procfs::mounts()
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.fs_vfstype == "cgroup2")
        .map_or_else(
            || PathBuf::from("/sys/fs/cgroup"),
            |m| PathBuf::from(m.fs_file),
        )
}

/// cgroup id (v2) of a process, from `/proc/<pid>/cgroup`.
pub fn cgroup_id_of(pid: u32) -> Option<u64> {
    let groups = process(pid)?.cgroups().ok()?;
    let unified = groups.into_iter().find(|g| g.hierarchy == 0)?;
    inode(&cgroup2_root().join(unified.pathname.trim_start_matches('/')))
}

/// The process `pid` in `/proc`, if it exists.
pub fn process(pid: u32) -> Option<procfs::process::Process> {
    procfs::process::Process::new(i32::try_from(pid).ok()?).ok()
}

/// The raw bytes of `/proc/<pid>/<file>` (e.g. a `comm` that is not UTF-8).
pub fn proc_bytes(pid: u32, file: &str) -> Option<Vec<u8>> {
    let p = process(pid)?;
    Some(p.read::<_, tracer::host::proc::Bytes>(file).ok()?.0)
}

/// Field access that reads well in assertions: `get(v, "process.pid")`.
pub fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

/// Whether containerd answers and has the lab image.
pub fn require_containerd() -> bool {
    let ok = Command::new("ctr")
        .args(["-n", "default", "image", "ls", "-q"])
        .output_bounded()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("busybox:local")
        });
    if !ok {
        unavailable("containerd is not running or lacks docker.io/library/busybox:local (run `cargo xtask lab-up`)");
    }
    ok
}

/// The lab's runc root file system (made by `cargo xtask lab-up`).
pub const RUNC_ROOTFS: &str = "/var/lib/ctrace-lab/rootfs";

pub fn require_runc() -> bool {
    let ok = Path::new(RUNC_ROOTFS).join("bin/busybox").exists()
        && Command::new("runc")
            .arg("--version")
            .output_bounded()
            .is_ok_and(|o| o.status.success());
    if !ok {
        unavailable("runc or the lab rootfs is missing (run `cargo xtask lab-up`)");
    }
    ok
}

/// A containerd container (`ctr -n NS run -d`), killed and removed on drop.
pub struct CtrContainer {
    pub namespace: String,
    pub id: String,
}

impl CtrContainer {
    pub const IMAGE: &'static str = "docker.io/library/busybox:local";

    pub fn run(namespace: &str, id: &str, extra: &[&str], cmd: &[&str]) -> Self {
        let c = Self {
            namespace: namespace.to_owned(),
            id: id.to_owned(),
        };
        c.remove();
        run(Command::new("ctr")
            .args(["-n", namespace, "run", "-d"])
            .args(extra)
            .arg(Self::IMAGE)
            .arg(id)
            .args(cmd)
            .stdin(Stdio::null()));
        c
    }

    /// Host pid of the init (`ctr task ls`).
    pub fn init_pid(&self) -> u32 {
        let out = run(Command::new("ctr").args(["-n", &self.namespace, "task", "ls"]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next()? == self.id).then(|| f.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no task {} in ctr task ls", self.id))
    }

    /// `ctr task exec` a command; returns its exit status.
    pub fn exec(&self, exec_id: &str, cmd: &[&str]) -> std::process::ExitStatus {
        Command::new("ctr")
            .args([
                "-n",
                &self.namespace,
                "task",
                "exec",
                "--exec-id",
                exec_id,
                &self.id,
            ])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status_bounded()
            .expect("ctr task exec")
    }

    pub fn remove(&self) {
        let ctr = |args: &[&str]| {
            let _ = Command::new("ctr")
                .args(["-n", &self.namespace])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status_bounded();
        };
        ctr(&["task", "kill", "-s", "KILL", &self.id]);
        for _ in 0..50 {
            ctr(&["task", "delete", &self.id]);
            let gone = Command::new("ctr")
                .args(["-n", &self.namespace, "task", "ls", "-q"])
                .output_bounded()
                .map(|o| {
                    !String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .any(|l| l == self.id)
                })
                .unwrap_or(true);
            if gone {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        ctr(&["container", "delete", &self.id]);
    }
}

impl Drop for CtrContainer {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A plain runc container from a bundle made from the lab rootfs, killed and deleted on drop.
pub struct RuncContainer {
    pub root: Option<PathBuf>,
    pub id: String,
    bundle: TempDir,
}

impl RuncContainer {
    /// `runc [--root ROOT] run -d ID` with `args` as the process.
    pub fn run(root: Option<&Path>, id: &str, args: &[&str]) -> Self {
        Self::run_with_spec(root, id, args, |_| {})
    }

    fn runc(&self) -> Command {
        let mut cmd = Command::new("runc");
        if let Some(r) = &self.root {
            cmd.arg("--root").arg(r);
        }
        cmd
    }

    pub fn init_pid(&self) -> u32 {
        let out = run(self.runc().args(["state", &self.id]));
        let v: Value = serde_json::from_slice(&out.stdout).expect("runc state json");
        v["pid"].as_u64().expect("pid") as u32
    }

    pub fn exec(&self, cmd: &[&str]) -> std::process::ExitStatus {
        self.runc()
            .args(["exec", &self.id])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status_bounded()
            .expect("runc exec")
    }

    pub fn remove(&self) {
        let _ = self
            .runc()
            .args(["kill", &self.id, "KILL"])
            .stderr(Stdio::null())
            .status_bounded();
        thread::sleep(Duration::from_millis(100));
        let _ = self
            .runc()
            .args(["delete", "-f", &self.id])
            .stderr(Stdio::null())
            .status_bounded();
    }
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Run `ctrace ARGS` to completion and return stdout, asserting success.
pub fn ctrace(bin: &Path, args: &[&str]) -> String {
    let out = run(Command::new(bin).args(args));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Poll `f` until it returns `Some`, or panic with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until `/proc/<pid>/comm` reads `comm`. `Command::spawn` returns once the child's exec
/// has closed its close-on-exec files, which the kernel does before it renames the task
/// (fs/exec.c `begin_new_exec`): a signal sent at once can still see the old name.
pub fn wait_comm(pid: u32, comm: &str) {
    eventually(
        &format!("pid {pid} to be named {comm}"),
        Duration::from_secs(5),
        || {
            process(pid)
                .and_then(|p| p.stat().ok())
                .filter(|s| s.comm.trim_end() == comm)
        },
    );
}

/// `program args` with signal `sig` ignored (a disposition exec keeps), once it runs as
/// `comm`: a target whose every signal `sig` is generated with the result "ignored".
pub fn spawn_ignoring(program: &Path, args: &[&str], sig: i32, comm: &str) -> Child {
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: signal(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            libc::signal(sig, libc::SIG_IGN);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
    wait_comm(child.id(), comm);
    child
}

impl RuncContainer {
    /// Like [`RuncContainer::run`], with `edit` applied to the bundle's `config.json` before
    /// the container starts (e.g. to set `linux.resources.memory.limit`).
    pub fn run_with_spec(
        root: Option<&Path>,
        id: &str,
        args: &[&str],
        edit: impl FnOnce(&mut Value),
    ) -> Self {
        let bundle = TempDir::new(&format!("bundle-{id}"));
        run(Command::new("cp")
            .args(["-a", RUNC_ROOTFS])
            .arg(bundle.0.join("rootfs")));
        run(Command::new("runc").arg("spec").current_dir(&bundle.0));
        let spec_path = bundle.0.join("config.json");
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        spec["root"]["readonly"] = false.into();
        if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
        }
        edit(&mut spec);
        std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        let c = Self {
            root: root.map(Path::to_path_buf),
            id: id.to_owned(),
            bundle,
        };
        c.remove();
        // The container inherits runc's stdio: pipes would keep `output()` waiting forever.
        let status = c
            .runc()
            .args(["run", "-d", "--bundle"])
            .arg(&c.bundle.0)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status_bounded()
            .expect("runc run");
        assert!(status.success(), "runc run -d {id} failed: {status}");
        c
    }
}

/// Run `ctrace ARGS` to completion whatever its exit status: (exit code, stdout, stderr).
pub fn ctrace_status(bin: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output_bounded()
        .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", bin.display()));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `GET path` on `addr` (HTTP/1.0, so the server closes the connection at the end), with a
/// 10 s read timeout: the body of a 200 answer, else `None`.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")).then(|| body.to_owned())
}

/// A port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The loss books of a session that ended with its `stats` record (the last of `records`),
/// for each of `kinds`: produced = delivered + lost, no decode error, every delivered record
/// printed and every loss shown as `lost` records. Returns (produced, delivered, lost) per
/// kind, in order.
pub fn assert_books_balance(records: &[Value], kinds: &[&str]) -> Vec<(u64, u64, u64)> {
    let stats = records.last().expect("records");
    assert_eq!(stats["type"], "stats", "the last record: {stats}");
    kinds
        .iter()
        .map(|&kind| {
            let k = &stats["kinds"][kind];
            let n = |f: &str| {
                k[f].as_u64()
                    .unwrap_or_else(|| panic!("{kind}: no {f}: {k}"))
            };
            let (produced, delivered, lost) =
                (n("produced"), n("delivered"), n("lost_ringbuf_full"));
            assert_eq!(k["decode_errors"], 0, "{kind}: {k}");
            assert_eq!(produced, delivered + lost, "{kind}: {k}");
            let shown = records.iter().filter(|v| v["type"] == kind).count() as u64;
            assert_eq!(
                shown, delivered,
                "{kind}: every delivered record was printed"
            );
            let reported: u64 = records
                .iter()
                .filter(|v| v["type"] == "lost" && v["kind"] == kind)
                .map(|v| v["count"].as_u64().expect("count"))
                .sum();
            assert_eq!(reported, lost, "{kind}: every loss appears as a gap record");
            (produced, delivered, lost)
        })
        .collect()
}
