//! Latency: from a record's kernel timestamp to its NDJSON line read from `ctrace watch`'s
//! stdout (a pipe), for SIGKILLs (urgent records) and for the rest (execs), idle and under a
//! fork/exec storm.
//!
//! Records carry `ts`, the kernel's boot-time stamp turned into wall-clock time with the wall
//! clock at boot. The bench reads its own wall clock at boot the same way (realtime minus
//! boottime, read together) and turns `ts` back into boot time, then compares it with
//! CLOCK_BOOTTIME when the read(2) that completed the line returned: a step of the wall clock
//! during the run moves neither. The time from the `kill(2)` call to the line is kept too (no
//! conversion at all). Lines are parsed only after the phase: parsing them as they came added
//! the bench's own backlog under the storm (p99 9–13 ms instead of 3–5 ms in the same hour).

use std::{
    collections::HashMap,
    io::Read,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::{
    stats::{self, percentile, Figure},
    tracer::{self, Config, Env, Output},
    workload, Plan,
};
use crate::util::say;

/// One line as read.
struct Seen {
    read_boot_ns: i128,
    ty: String,
    ts_ns: Option<i128>,
    target_pid: Option<u64>,
}

fn parse(line: &str, read_boot_ns: i128) -> Option<Seen> {
    let v: Value = serde_json::from_str(line).ok()?;
    Some(Seen {
        read_boot_ns,
        ty: v.get("type")?.as_str()?.to_owned(),
        ts_ns: v
            .get("ts")
            .and_then(Value::as_str)
            .and_then(stats::parse_rfc3339_ns),
        target_pid: v.pointer("/target/pid").and_then(Value::as_u64),
    })
}

/// Every line of `out` with the `CLOCK_BOOTTIME` at which the read that completed it returned.
fn read_stamped(mut out: impl Read) -> Vec<(String, i128)> {
    let mut lines = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let at = stats::boot_ns();
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            let line = &pending[start..start + end];
            lines.push((String::from_utf8_lossy(line).into_owned(), at));
            start += end + 1;
        }
        pending.drain(..start);
    }
    lines
}

/// Latencies of one phase, in ms.
#[derive(Default)]
struct Phase {
    /// SIGKILL: kernel stamp → line read.
    urgent: Vec<f64>,
    /// SIGKILL: kill(2) called → line read.
    urgent_from_call: Vec<f64>,
    /// exec records: kernel stamp → line read.
    rest: Vec<f64>,
    kills: u32,
    missed: u32,
}

pub fn run(plan: &Plan, env: &Env<'_>) -> Result<Value> {
    say!(
        "bench: latency: {} rounds of {} SIGKILLs, idle and under a fork/exec storm",
        plan.rounds,
        plan.kills
    );
    let mut figures: HashMap<(&str, &str, &str), Figure> = HashMap::new();
    let mut counts: HashMap<&str, (u32, u32)> = HashMap::new();
    for round in 0..plan.rounds {
        for (name, storm) in [("idle", false), ("storm", true)] {
            let p = phase(plan, env, storm)
                .with_context(|| format!("latency round {}, {name}", round + 1))?;
            for (what, v) in [
                ("urgent_sigkill", &p.urgent),
                ("urgent_sigkill_from_kill_call", &p.urgent_from_call),
                ("exec", &p.rest),
            ] {
                for (pname, pv) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
                    figures
                        .entry((name, what, pname))
                        .or_default()
                        .push(percentile(v, pv));
                }
            }
            let c = counts.entry(name).or_default();
            c.0 += p.kills;
            c.1 += p.missed;
            say!(
                "bench: latency round {}/{} {name}: SIGKILL p50 {:.2} ms p99 {:.2} ms; exec p50 {:.2} ms p99 {:.2} ms ({} execs); {} of {} kills not seen",
                round + 1,
                plan.rounds,
                percentile(&p.urgent, 50.0),
                percentile(&p.urgent, 99.0),
                percentile(&p.rest, 50.0),
                percentile(&p.rest, 99.0),
                p.rest.len(),
                p.missed,
                p.kills
            );
        }
    }
    println!();
    println!(
        "latency, kernel stamp to NDJSON line read (ms), per-round percentile, median [min..max] of {} rounds",
        plan.rounds
    );
    let mut out = serde_json::Map::new();
    for name in ["idle", "storm"] {
        let mut phase = serde_json::Map::new();
        for what in ["urgent_sigkill", "urgent_sigkill_from_kill_call", "exec"] {
            let mut w = serde_json::Map::new();
            for pname in ["p50", "p99", "max"] {
                let f = &figures[&(name, what, pname)];
                println!("  {name:<6} {what:<30} {pname:<4} {}", f.show(2));
                w.insert(pname.to_owned(), f.json("ms"));
            }
            phase.insert(what.to_owned(), Value::Object(w));
        }
        let (kills, missed) = counts.get(name).copied().unwrap_or_default();
        phase.insert("kills".to_owned(), json!(kills));
        phase.insert("kills_not_seen".to_owned(), json!(missed));
        out.insert(name.to_owned(), Value::Object(phase));
    }
    out.insert(
        "method".to_owned(),
        json!(format!(
            "ctrace watch --json --host (defaults, journal on) writing to a pipe read by the \
             bench; {} sleeps started and SIGKILLed one at a time ({} ms apart); latency = \
             CLOCK_BOOTTIME when the `kill` line is read minus its `ts` turned back into boot \
             time; exec = every exec line of the bench's own storm. Per round the p50/p99/max \
             of its samples; the figures are min/median/max of those over the rounds.",
            plan.kills,
            KILL_GAP.as_millis()
        )),
    );
    out.insert("poll_interval_ms".to_owned(), json!(50));
    Ok(Value::Object(out))
}

const KILL_GAP: Duration = Duration::from_millis(40);

fn phase(plan: &Plan, env: &Env<'_>, storm: bool) -> Result<Phase> {
    let offset = stats::realtime_at_boot_ns();
    let mut t =
        tracer::start(Config::Watch, env, Output::Pipe, &[])?.context("watch is a tracer")?;
    let stdout = t.take_stdout().context("piped stdout")?;
    // The reader only stamps and splits what each read(2) returns: a line's time is when its
    // bytes reached the bench, not when the bench got round to parsing it (under the storm,
    // thousands of exec lines come ahead of a kill). Parsing waits for the end of the phase.
    let reader = thread::spawn(move || read_stamped(stdout));
    let stop = Arc::new(AtomicBool::new(false));
    let storm_thread = storm.then(|| {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if workload::exec_storm(200).is_err() {
                    break;
                }
            }
        })
    });
    thread::sleep(Duration::from_millis(300));
    let storm_from = stats::boot_ns();
    let mut sent: Vec<(u64, i128)> = Vec::new();
    for _ in 0..plan.kills {
        let mut v = workload::victim()?;
        thread::sleep(KILL_GAP / 2);
        let pid = u64::from(v.id());
        let at = stats::boot_ns();
        let _ = v.kill();
        let _ = v.wait();
        sent.push((pid, at));
        thread::sleep(KILL_GAP / 2);
    }
    let storm_to = stats::boot_ns();
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = storm_thread {
        let _ = h.join();
    }
    // Lines still on their way: a poll interval and more.
    thread::sleep(Duration::from_millis(500));
    t.stop()?;
    let lines = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the bench's line reader panicked"))?;
    let seen: Vec<Seen> = lines
        .iter()
        .filter_map(|(line, at)| parse(line, *at))
        .collect();
    let mut p = Phase {
        kills: plan.kills,
        ..Phase::default()
    };
    let ms = |ns: i128| ns as f64 / 1e6;
    for (pid, at) in sent {
        let line = seen
            .iter()
            .find(|s| (s.ty == "kill" || s.ty == "signal") && s.target_pid == Some(pid));
        match line {
            Some(s) => {
                if let Some(ts) = s.ts_ns {
                    p.urgent.push(ms(s.read_boot_ns - (ts - offset)));
                }
                p.urgent_from_call.push(ms(s.read_boot_ns - at));
            }
            None => p.missed += 1,
        }
    }
    for s in seen.iter().filter(|s| s.ty == "exec") {
        if let Some(ts) = s.ts_ns {
            let boot = ts - offset;
            if (storm_from..storm_to).contains(&boot) {
                p.rest.push(ms(s.read_boot_ns - boot));
            }
        }
    }
    Ok(p)
}
