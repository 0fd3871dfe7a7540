//! The tracers the bench runs beside its workloads: `ctrace watch`, `ctrace agent` and
//! bpftrace, started until they say they trace, stopped with a signal, their stderr kept.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::util;

/// One way of running a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// No tracer.
    Baseline,
    /// `ctrace watch --json --host > /dev/null`, its defaults (journal on).
    Watch,
    /// The same with `--signal-window 0`: every signal a record, as before the kernel
    /// folded repeated ignored ones (what the fold buys, in the same run).
    WatchUnfolded,
    /// `ctrace agent --output FILE --metrics-addr 127.0.0.1:PORT` (journal on).
    Agent,
    /// bpftrace printing pid, comm and cgroup on exec, exit and signal_generate.
    Bpftrace,
    /// `ctrace bench-floor`: a ring record per exec, exit, fork and signal with pid, comm and
    /// cgroup, no wakeup, read every 10 ms and dropped: the least a streaming probe does.
    Floor,
    /// `ctrace bench-floor --empty`: programs that return at once on the same tracepoints,
    /// what running any program costs (bpf section only).
    Empty,
}

impl Config {
    pub fn key(self) -> &'static str {
        match self {
            Config::Baseline => "baseline",
            Config::Watch => "watch",
            Config::WatchUnfolded => "watch_unfolded",
            Config::Agent => "agent",
            Config::Bpftrace => "bpftrace",
            Config::Floor => "floor",
            Config::Empty => "empty",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Config::Baseline => "no tracer",
            Config::Watch => "ctrace watch --json --host >/dev/null (journal on)",
            Config::WatchUnfolded => "the same, --signal-window 0 (no signal folded)",
            Config::Agent => "ctrace agent --output FILE --metrics-addr (journal on)",
            Config::Bpftrace => "bpftrace: pid, comm, cgroup on exec, exit, signal_generate",
            Config::Floor => "ctrace bench-floor: a bare ring record per exec, exit, fork, signal",
            Config::Empty => "ctrace bench-floor --empty: a program that does nothing, same hooks",
        }
    }
}

/// The bpftrace program: the facts ctrace's records carry at least, on the same tracepoints.
const BPFTRACE_PROGRAM: &str = r#"BEGIN { printf("ready\n"); }
tracepoint:sched:sched_process_exec { printf("exec %d %s %llu %s\n", pid, comm, cgroup, str(args->filename)); }
tracepoint:sched:sched_process_exit { printf("exit %d %s %llu\n", pid, comm, cgroup); }
tracepoint:signal:signal_generate { printf("signal %d %s %llu sig %d to %d\n", pid, comm, cgroup, args->sig, args->pid); }
"#;

/// What the tracer's stdout becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `/dev/null` (watch), a file (agent, bpftrace).
    Discard,
    /// A pipe the caller reads ([`Running::take_stdout`]).
    Pipe,
}

/// Where a tracer keeps its files, and what ctrace is.
pub struct Env<'a> {
    pub bin: &'a Path,
    pub scratch: &'a Path,
}

/// A tracer running beside a workload.
pub struct Running {
    pub config: Config,
    child: Child,
    stderr: Option<thread::JoinHandle<String>>,
    /// Launch to "tracing".
    pub startup: Duration,
    /// The agent's metrics address, when it serves one.
    pub metrics_addr: Option<String>,
    /// The agent's `--output` file.
    pub output_file: Option<PathBuf>,
}

/// GET /metrics of an agent at `addr`: the whole answer, status line and headers included.
pub fn metrics_text(addr: &str) -> Result<String> {
    use std::io::{Read as _, Write as _};
    let mut c = std::net::TcpStream::connect(addr).with_context(|| format!("connecting {addr}"))?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        c,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = Vec::new();
    c.read_to_end(&mut body).context("reading /metrics")?;
    if !body.starts_with(b"HTTP/1.1 200") {
        anyhow::bail!("/metrics did not answer 200");
    }
    String::from_utf8(body).context("/metrics is not UTF-8")
}

/// The value of the sample `name` (with its labels, as written) in a metrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A port on 127.0.0.1 nobody listens on now.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = fs::remove_file(PathBuf::from(p));
    }
}

/// Start the tracer of `config` with `extra` arguments (ctrace only) and wait until it traces.
/// `None` for the baseline.
pub fn start(
    config: Config,
    env: &Env<'_>,
    output: Output,
    extra: &[String],
) -> Result<Option<Running>> {
    let mut metrics_addr = None;
    let mut output_file = None;
    let (mut cmd, ready, ready_on_stdout) = match config {
        Config::Baseline => return Ok(None),
        Config::Watch | Config::WatchUnfolded => {
            let journal = env.scratch.join("watch.db");
            remove_db(&journal);
            let mut cmd = Command::new(env.bin);
            cmd.args(["watch", "--json", "--host", "--journal"])
                .arg(&journal)
                .args(extra);
            if config == Config::WatchUnfolded {
                cmd.args(["--signal-window", "0"]);
            }
            (cmd, "ctrace: tracing", false)
        }
        Config::Agent => {
            let journal = env.scratch.join("agent.db");
            remove_db(&journal);
            let out = env.scratch.join("agent.ndjson");
            let _ = fs::remove_file(&out);
            let addr = format!("127.0.0.1:{}", free_port()?);
            let mut cmd = Command::new(env.bin);
            cmd.args(["agent", "--journal"])
                .arg(&journal)
                .arg("--output")
                .arg(&out)
                .args(["--metrics-addr", &addr, "--status-interval", "3600s"])
                .args(extra);
            metrics_addr = Some(addr);
            output_file = Some(out);
            (cmd, "ctrace agent: tracing", false)
        }
        Config::Floor | Config::Empty => {
            let mut cmd = Command::new(env.bin);
            cmd.arg("bench-floor");
            if config == Config::Empty {
                cmd.arg("--empty");
            }
            (cmd, "ctrace floor: tracing", false)
        }
        Config::Bpftrace => {
            // Its output goes to a pipe the bench drains: with `-o FILE` bpftrace buffers,
            // and its BEGIN line (printed once every probe is attached) would come late.
            let mut cmd = Command::new("bpftrace");
            cmd.args(["-e", BPFTRACE_PROGRAM]);
            (cmd, "ready", true)
        }
    };
    let stdout = if ready_on_stdout || (output == Output::Pipe && config == Config::Watch) {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let launched = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", util::show(&cmd)))?;
    let (tx, rx) = mpsc::channel();
    if ready_on_stdout {
        let out = child.stdout.take().context("piped stdout")?;
        let tx = tx.clone();
        thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line.starts_with(ready) => break,
                    Ok(_) => {}
                }
            }
            let _ = tx.send(Instant::now());
            // The rest is read and thrown away, so that a full pipe never slows it down.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
    }
    let err = child.stderr.take().context("piped stderr")?;
    let stderr = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if !ready_on_stdout && line.starts_with(ready) {
                let _ = tx.send(Instant::now());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut running = Running {
        config,
        child,
        stderr: Some(stderr),
        startup: Duration::ZERO,
        metrics_addr,
        output_file,
    };
    let deadline = launched + Duration::from_secs(60);
    let ready_at = loop {
        if let Ok(at) = rx.recv_timeout(Duration::from_millis(50)) {
            break Some(at);
        }
        if running.child.try_wait()?.is_some() || Instant::now() > deadline {
            break None;
        }
    };
    let Some(ready_at) = ready_at else {
        let _ = running.child.kill();
        let _ = running.child.wait();
        let err = running.collect_stderr();
        bail!(
            "{} did not start within 60 s; stderr:\n{err}",
            config.describe()
        );
    };
    running.startup = ready_at - launched;
    Ok(Some(running))
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote on stderr, once it has closed it.
    fn collect_stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    /// The piped stdout ([`Output::Pipe`]), once.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Stop it (SIGTERM for the agent, SIGINT otherwise), wait, return its stderr.
    pub fn stop(mut self) -> Result<String> {
        let sig = if self.config == Config::Agent {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: kill(2) on our own child's pid.
        if unsafe { libc::kill(pid, sig) } != 0 {
            bail!("could not signal {}", self.config.describe());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait()? {
                let err = self.collect_stderr();
                if !st.success() && self.config != Config::Bpftrace {
                    bail!(
                        "{} exited with {st}; stderr:\n{err}",
                        self.config.describe()
                    );
                }
                return Ok(err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "{} did not exit within 30 s of its signal",
                    self.config.describe()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A bench that failed half-way leaves no tracer behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `ctrace: N records delivered, M lost, K produced by the kernel` at exit: (delivered, lost).
pub fn parse_totals(stderr: &str) -> Option<(u64, u64)> {
    stderr.lines().find_map(|line| {
        let rest = line.strip_prefix("ctrace: ")?;
        let (delivered, rest) = rest.split_once(" records delivered, ")?;
        let (lost, _) = rest.split_once(" lost")?;
        Some((delivered.parse().ok()?, lost.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_line() {
        assert_eq!(
            parse_totals(
                "x\nctrace: 6000 records delivered, 12 lost, 6012 produced by the kernel\n"
            ),
            Some((6000, 12))
        );
        assert_eq!(parse_totals("ctrace: tracing exec"), None);
    }
}
