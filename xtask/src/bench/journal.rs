//! The journal: what the agent writes to disk with running containers, idle and for incidents,
//! and the size after a day, extrapolated from one long run.

use std::{
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{
    scale::{Sleepers, LABEL},
    stats::{self, Figure},
    tracer::{self, Config, Env, Output},
    Plan,
};
use crate::{lab, util::say};

/// Windows the idle run is cut into: min, median and max are over them.
const WINDOWS: u32 = 5;
/// Containers started and killed for the incident part.
const KILLED: usize = 20;
/// After "tracing": the first full reads of every container (one row each) are start-up.
const SETTLE: Duration = Duration::from_secs(5);

/// The agent's journal as it stands: bytes written by the process, database bytes on disk
/// (with its WAL), memory sample rows and records.
#[derive(Debug, Clone, Copy)]
struct Books {
    written: u64,
    on_disk: u64,
    samples: u64,
    records: u64,
}

fn books(pid: u32, db: &Path) -> Result<Books> {
    let io = stats::process(pid)?
        .io()
        .context("reading the agent's /proc/PID/io")?;
    let mut on_disk = 0;
    for suffix in ["", "-wal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        on_disk += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }
    let count = |table: &str| -> Result<u64> {
        let out = Command::new("sqlite3")
            .arg(format!("file:{}?mode=ro", db.display()))
            .arg(format!("select count(*) from {table}"))
            .stdin(Stdio::null())
            .output()
            .context("sqlite3 (Debian package sqlite3)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim().parse().with_context(|| {
            format!(
                "counting {table}: {text:?} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    Ok(Books {
        written: io.write_bytes,
        on_disk,
        samples: count("memory_samples")?,
        records: count("records")?,
    })
}

fn docker(args: &[&str]) -> Result<()> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("docker")?;
    if !out.status.success() {
        bail!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub fn run(plan: &Plan, env: &Env<'_>) -> Result<Value> {
    lab::lab_up().context("the journal section needs the lab (dockerd, busybox:local)")?;
    if Command::new("sqlite3").arg("-version").output().is_err() {
        bail!("the journal section counts rows with the sqlite3 tool: apt-get install sqlite3");
    }
    let n = plan.journal_containers;
    say!(
        "bench: journal: agent with {n} containers, {} s idle in {WINDOWS} windows, then {KILLED} containers killed",
        plan.journal.as_secs()
    );
    let mut sleepers = Sleepers::new()?;
    sleepers.grow_to(n, plan.batch)?;
    let t = tracer::start(Config::Agent, env, Output::Discard, &[])?
        .context("the agent is a tracer")?;
    let db = env.scratch.join("agent.db");
    thread::sleep(SETTLE);

    let mut written_per_min = Figure::default();
    let mut disk_per_min = Figure::default();
    let mut samples_per_min = Figure::default();
    let window = plan.journal / WINDOWS;
    let start = books(t.pid(), &db)?;
    let mut last = start;
    for w in 0..WINDOWS {
        let began = Instant::now();
        thread::sleep(window);
        let now = books(t.pid(), &db)?;
        let per_min = 60.0 / began.elapsed().as_secs_f64();
        written_per_min.push((now.written - last.written) as f64 * per_min);
        disk_per_min.push(now.on_disk.saturating_sub(last.on_disk) as f64 * per_min);
        samples_per_min.push((now.samples - last.samples) as f64 * per_min);
        say!(
            "bench: journal: window {}/{WINDOWS}: {:.0} bytes written/min, {:.0} bytes on disk/min, {:.1} samples/min",
            w + 1,
            written_per_min.values.last().unwrap_or(&0.0),
            disk_per_min.values.last().unwrap_or(&0.0),
            samples_per_min.values.last().unwrap_or(&0.0)
        );
        last = now;
    }
    let idle = last;
    let idle_minutes = plan.journal.as_secs_f64() / 60.0;
    let idle_samples = idle.samples - start.samples;
    // A day from the whole run, not from a window's median: quiet containers are read (and
    // sampled) in full only every few minutes, which some windows catch and others do not.
    let written_avg = (idle.written - start.written) as f64 / idle_minutes;
    let disk_avg = idle.on_disk.saturating_sub(start.on_disk) as f64 / idle_minutes;
    let samples_avg = idle_samples as f64 / idle_minutes;
    let written_per_sample = (idle.written - start.written) as f64 / (idle_samples.max(1)) as f64;

    // Incidents: containers started, then each killed from the host (a kill record and the
    // container's stop each).
    let names: Vec<String> = (0..KILLED)
        .map(|i| format!("ctrace-bench-jk-{i}"))
        .collect();
    for name in &names {
        docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            LABEL,
            "--name",
            name,
            crate::lab::DOCKER_IMAGE,
            "sleep",
            "1000000",
        ])?;
    }
    thread::sleep(SETTLE);
    let before = books(t.pid(), &db)?;
    for name in &names {
        docker(&["kill", name])?;
    }
    // Wait for the records, not for a time: a kill and a stop per container.
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        thread::sleep(Duration::from_secs(2));
        let b = books(t.pid(), &db)?;
        if b.records >= before.records + 2 * KILLED as u64 || Instant::now() > deadline {
            break b;
        }
    };
    t.stop()?;
    drop(sleepers);
    let records = after.records - before.records;
    let incident_written = (after.written - before.written) as f64 / records.max(1) as f64;
    let incident_disk = after.on_disk.saturating_sub(before.on_disk) as f64 / records.max(1) as f64;

    let disk_per_day = disk_avg * 1440.0;
    let max_size = 512.0 * 1024.0 * 1024.0;
    println!();
    println!(
        "journal, agent with {n} idle containers, {} s in {WINDOWS} windows: median [min..max]",
        plan.journal.as_secs()
    );
    println!(
        "  bytes written per minute  {written_avg:.0} over the run; windows {}",
        written_per_min.show(0)
    );
    println!(
        "  bytes on disk per minute  {disk_avg:.0} over the run; windows {}",
        disk_per_min.show(0)
    );
    println!(
        "  samples per minute        {samples_avg:.1} over the run; windows {}",
        samples_per_min.show(1)
    );
    println!("  bytes written per sample  {written_per_sample:.0}");
    println!(
        "  a day: {:.1} MB on disk, {:.1} MB written; the default --journal-max-size (512 MiB) holds {:.1} days",
        disk_per_day / 1e6,
        written_avg * 1440.0 / 1e6,
        if disk_per_day > 0.0 { max_size / disk_per_day } else { f64::INFINITY }
    );
    println!(
        "  {records} records for {KILLED} kills: {incident_written:.0} bytes written and {incident_disk:.0} bytes on disk per record"
    );
    Ok(json!({
        "containers": n,
        "idle_seconds": plan.journal.as_secs_f64(),
        "written_bytes_per_min_over_run": written_avg,
        "on_disk_bytes_per_min_over_run": disk_avg,
        "samples_per_min_over_run": samples_avg,
        "written_bytes_per_min": written_per_min.json("bytes per minute (/proc/PID/io write_bytes)"),
        "on_disk_bytes_per_min": disk_per_min.json("bytes per minute (database + WAL)"),
        "samples_per_min": samples_per_min.json("memory sample rows per minute"),
        "written_bytes_per_sample": written_per_sample,
        "written_bytes_per_day": written_avg * 1440.0,
        "on_disk_bytes_per_day": disk_per_day,
        "days_in_default_max_size": if disk_per_day > 0.0 { Some(max_size / disk_per_day) } else { None },
        "incidents": {
            "containers_killed": KILLED,
            "records": records,
            "written_bytes_per_record": incident_written,
            "on_disk_bytes_per_record": incident_disk,
        },
        "method": format!(
            "{n} busybox sleepers, the agent (journal on, --output, --metrics-addr) started \
             after them; after {} s of settling, {} s of idling cut into {WINDOWS} windows: the \
             agent's write_bytes, the database and WAL size and the memory_samples rows per \
             window, scaled to a minute; a day is the whole run's minute times 1440. Then {KILLED} \
             more containers started and killed from the host with `docker kill`: bytes per \
             record written while their kill and stop records came.",
            SETTLE.as_secs(),
            plan.journal.as_secs()
        ),
    }))
}
