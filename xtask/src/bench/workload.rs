//! What the bench makes the machine do: a fork/exec storm, a signal storm, signals at a set
//! rate, and processes to kill.

use std::{
    os::unix::process::CommandExt as _,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

/// How long a storm took, and the CPU time its own processes used: the tracer's programs run in
/// their context (a tracepoint's program runs in the task that hit it), so this is the cost
/// tracing adds to the traced work itself, apart from whatever else the machine does.
#[derive(Debug, Clone, Copy)]
pub struct Ran {
    pub wall: Duration,
    pub cpu_s: f64,
}

/// User + system seconds of `getrusage(who)`.
fn rusage_secs(who: libc::c_int) -> f64 {
    // SAFETY: an all-zero rusage is a valid value; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A shell running `/bin/true` `n` times: a fork, an exec and an exit each. Its CPU time is
/// that of the shell and everything it waited for (the bench's waited-for children).
pub fn exec_storm(n: u32) -> Result<Ran> {
    let cpu_before = rusage_secs(libc::RUSAGE_CHILDREN);
    let start = Instant::now();
    let st = Command::new("/bin/sh")
        .args([
            "-c",
            &format!("i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"),
        ])
        .stdin(Stdio::null())
        .status()
        .context("running the fork/exec storm")?;
    let took = start.elapsed();
    if !st.success() {
        bail!("the fork/exec storm failed: {st}");
    }
    Ok(Ran {
        wall: took,
        cpu_s: rusage_secs(libc::RUSAGE_CHILDREN) - cpu_before,
    })
}

/// A process that ignores SIGTERM: each SIGTERM sent to it is a `signal_generate` (result
/// "ignored") that ctrace reports (SIGTERM is among its default signals) and nothing else.
pub struct Target(Child);

impl Target {
    pub fn spawn() -> Result<Self> {
        let mut cmd = Command::new("sleep");
        cmd.arg("100000").stdin(Stdio::null()).stdout(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec; an ignored disposition
        // survives exec (signal(7)).
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                Ok(())
            });
        }
        Ok(Self(cmd.spawn().context("starting sleep")?))
    }

    pub fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.0.id()).unwrap_or(0)
    }

    /// One SIGTERM.
    pub fn signal(&self) -> Result<()> {
        // SAFETY: kill(2) on our own child.
        if unsafe { libc::kill(self.pid(), libc::SIGTERM) } != 0 {
            bail!("kill: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` SIGTERMs as fast as one thread sends them, to a process that ignores them. Its CPU time
/// is the sending thread's (kill(2), and the programs on `signal_generate` within it).
pub fn signal_storm(n: u32) -> Result<Ran> {
    let target = Target::spawn()?;
    let cpu_before = rusage_secs(libc::RUSAGE_THREAD);
    let start = Instant::now();
    for _ in 0..n {
        target.signal()?;
    }
    Ok(Ran {
        wall: start.elapsed(),
        cpu_s: rusage_secs(libc::RUSAGE_THREAD) - cpu_before,
    })
}

/// SIGTERMs at `rate` per second for `secs` seconds, paced per millisecond; returns the rate
/// reached (a loaded machine may not reach the one asked for).
pub fn signals_at(rate: u64, secs: f64) -> Result<f64> {
    let target = Target::spawn()?;
    let start = Instant::now();
    let total = (rate as f64 * secs) as u64;
    let mut sent = 0u64;
    while sent < total {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        let due = due.min(total);
        while sent < due {
            target.signal()?;
            sent += 1;
        }
        if sent < total {
            thread::sleep(Duration::from_micros(500));
        }
    }
    Ok(sent as f64 / start.elapsed().as_secs_f64())
}

/// A short-lived process to kill with SIGKILL.
pub fn victim() -> Result<Child> {
    Command::new("sleep")
        .arg("100000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("starting sleep")
}
