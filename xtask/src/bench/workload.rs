//! What the bench makes the machine do: a fork/exec storm, a signal storm, signals at a set
//! rate, and processes to kill.

use std::{
    os::unix::process::CommandExt as _,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

/// A shell running `/bin/true` `n` times: a fork, an exec and an exit each.
pub fn exec_storm(n: u32) -> Result<Duration> {
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
    Ok(took)
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

/// `n` SIGTERMs as fast as one thread sends them, to a process that ignores them.
pub fn signal_storm(n: u32) -> Result<Duration> {
    let target = Target::spawn()?;
    let start = Instant::now();
    for _ in 0..n {
        target.signal()?;
    }
    Ok(start.elapsed())
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
