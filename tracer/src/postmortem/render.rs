//! The report for people.

use super::{Dated, Oom, Postmortem, Story, PLAIN_POINTS, SPARK_POINTS};
use crate::{
    chart::{self, downsample, sparkline},
    clock::utc_ms,
    container::short_id,
    journal::ContainerRow,
    record::{ContainerStopRecord, OomScope, Party, Record},
    sink::escape::terminal,
    units::{bytes, bytes_series_unit, seconds, short_number},
};

// ---------------------------------------------------------------------------------------
// Reading the records.

/// `tail (pid 42 in web, docker)`, `kill (pid 7, host)`, from a party of a record.
fn party(p: &Party) -> String {
    terminal(&p.describe())
}

fn display_name(c: &ContainerRow) -> String {
    terminal(c.name.as_deref().unwrap_or_else(|| short_id(&c.id)))
}

/// How a container stopped, from its `container_stop` record: `exit 137 (SIGKILL): its init
/// was OOM-killed`.
fn stop_reason(stop: &Record) -> String {
    match stop {
        Record::ContainerStop(stop) => terminal(&ContainerStopRecord::describe(stop)),
        _ => "exit unknown: it stopped".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Memory curves.

/// The usage line of an OOM kill: a sparkline on a terminal, the figures otherwise.
fn curve_text(o: &Oom, tty: bool) -> String {
    let values: Vec<u64> = o.curve.iter().map(|s| s.usage_bytes).collect();
    let (Some(first), Some(last)) = (o.curve.first(), o.curve.last()) else {
        return "no memory samples in the minute before (ctrace was not sampling)".to_owned();
    };
    let span = seconds(o.ts_ns - first.ts_ns);
    let n = values.len();
    let samples = if n == 1 {
        "1 sample".to_owned()
    } else {
        format!("{n} samples")
    };
    let max = values.iter().copied().max().unwrap_or(0);
    if tty {
        let top = o.limit.filter(|&l| l >= max).unwrap_or(max);
        format!(
            "{} {} → {} over the last {span} ({samples})",
            sparkline(&downsample(&values, SPARK_POINTS), top),
            bytes(first.usage_bytes),
            bytes(last.usage_bytes),
        )
    } else {
        let (div, unit) = bytes_series_unit(max);
        let points: Vec<String> = downsample(&values, PLAIN_POINTS)
            .iter()
            .map(|&v| short_number(v as f64 / div))
            .collect();
        format!(
            "last {span} before the kill ({samples}, {unit}): {}",
            points.join(" ")
        )
    }
}

// ---------------------------------------------------------------------------------------
// Human output.

fn match_line(c: &ContainerRow) -> String {
    let end = match c.gone_ns {
        Some(g) => format!(
            "gone {}{}",
            utc_ms(g),
            c.exit_code
                .map(|e| format!(", exit code {e}"))
                .unwrap_or_default()
        ),
        None => format!("last seen {}", utc_ms(c.last_seen_ns)),
    };
    format!(
        "  {:<10} {:<12}  {}  first seen {}  {end}\n",
        terminal(&c.runtime),
        terminal(short_id(&c.id)),
        display_name(c),
        utc_ms(c.first_seen_ns)
    )
}

/// `  name        value`, indented by `indent` spaces; values line up at column 14.
fn push_field(out: &mut String, indent: usize, name: &str, value: &str) {
    let width = 13usize.saturating_sub(indent);
    out.push_str(&format!("{:indent$}{name:<width$} {value}\n", ""));
}

fn render_oom(out: &mut String, o: &Oom, tty: bool) {
    let r = &o.record;
    let memory = r.memory.as_ref();
    let depth = memory.and_then(|m| m.limit_depth).unwrap_or(0);
    let scope = match (r.scope, depth) {
        (OomScope::ContainerLimit, 0) => {
            "the container hit its own memory limit (not a host-wide OOM)".to_owned()
        }
        (OomScope::ContainerLimit, n) => format!(
            "the container hit a memory limit set {n} cgroup level{} above its own (not a host-wide OOM)",
            if n == 1 { "" } else { "s" }
        ),
        (OomScope::Host, _) => {
            "the host ran out of memory (a host-wide OOM, not the container's limit)".to_owned()
        }
        (OomScope::Unknown, _) => "scope unknown".to_owned(),
        (OomScope::Userspace, _) => format!(
            "a userspace OOM killer, {}, sent SIGKILL (memory pressure, not the kernel's OOM killer)",
            party(&r.trigger)
        ),
    };
    out.push_str(&format!("  OOM kill at {}: {scope}\n", utc_ms(o.ts_ns)));
    let mut limit = o.limit.map_or_else(|| "none known".to_owned(), bytes);
    let at_kill: Vec<String> = [
        ("usage", memory.and_then(|m| m.usage_bytes)),
        ("peak", memory.and_then(|m| m.peak_bytes)),
    ]
    .iter()
    .filter_map(|(name, v)| v.map(|v| format!("{name} {}", bytes(v))))
    .collect();
    if !at_kill.is_empty() {
        // The cgroup was gone before it was read: the figures are the last sample.
        let when = if memory.is_some_and(|m| m.stale) {
            "last sample before the kill"
        } else {
            "at the kill"
        };
        limit.push_str(&format!("; {when}: {}", at_kill.join(", ")));
    }
    push_field(out, 4, "limit", &limit);
    push_field(out, 4, "usage", &curve_text(o, tty));
    if tty {
        if let Some(first) = o.curve.first() {
            let samples: Vec<(i64, u64)> =
                o.curve.iter().map(|s| (s.ts_ns, s.usage_bytes)).collect();
            for l in chart::memory_chart(&samples, first.ts_ns, o.ts_ns, o.limit, "kill") {
                out.push_str(&format!("    {l}\n"));
            }
        }
    }
    let v = &r.victim;
    let victim_pid = v.party.pid;
    let kb = |k: u64| bytes(k * 1024);
    let victim = format!(
        "{}, RSS {} (anon {}, file {}, shmem {})",
        party(&v.party),
        kb(v.rss_kb),
        kb(v.anon_rss_kb),
        kb(v.file_rss_kb),
        kb(v.shmem_rss_kb)
    );
    push_field(out, 4, "victim", &victim);
    let others = match &o.processes {
        None => "unknown: no process list was sampled before the kill".to_owned(),
        Some((ts, procs)) => {
            let list: Vec<String> = procs
                .iter()
                .filter(|p| p.pid != victim_pid)
                .map(|p| {
                    format!(
                        "{} (pid {}) {}",
                        terminal(&p.comm),
                        p.pid,
                        bytes(p.rss_bytes)
                    )
                })
                .collect();
            if list.is_empty() {
                format!("none besides the victim (sampled {})", utc_ms(*ts))
            } else {
                format!("{} (sampled {})", list.join(", "), utc_ms(*ts))
            }
        }
    };
    push_field(out, 4, "others", &others);
    let trigger = if r.trigger.pid == victim_pid {
        "its own allocation".to_owned()
    } else {
        party(&r.trigger)
    };
    push_field(out, 4, "trigger", &trigger);
    let comm = terminal(&v.party.comm);
    let mut outcome = match r.victim_exit.as_ref().and_then(|e| e.describe()) {
        Some(e) => format!("{comm} exited with {}", terminal(&e)),
        None => format!("{comm} had not exited when the incident was reported"),
    };
    if r.container_stopped {
        outcome.push_str("; the container stopped");
    } else if r.victim_exit.is_some() {
        // A child: the container went on, which no runtime counts as a restart.
        outcome.push_str("; the container went on (its init lives): not a restart");
    }
    push_field(out, 4, "outcome", &outcome);
}

/// `    2026-12-03 04:46:41.958  <explanation>`: one stored record of a story.
fn push_dated(out: &mut String, e: &Dated) {
    out.push_str(&format!(
        "    {}  {}\n",
        utc_ms(e.ts_ns),
        terminal(e.record.explanation().unwrap_or("-"))
    ));
}

fn render_story(out: &mut String, s: &Story, tty: bool) {
    let c = &s.container;
    let state = match c.gone_ns {
        Some(g) => format!(
            "gone since {}, exit code {}",
            utc_ms(g),
            c.exit_code
                .map_or_else(|| "unknown".to_owned(), |e| e.to_string())
        ),
        None => format!(
            "not known to be gone (last seen {})",
            utc_ms(c.last_seen_ns)
        ),
    };
    out.push_str(&format!(
        "{}: {} container, {state} (times UTC)\n",
        display_name(c),
        terminal(&c.runtime)
    ));
    push_field(out, 2, "id", &terminal(&c.id));
    if let Some(i) = &c.image {
        push_field(out, 2, "image", &terminal(i));
    }
    if let Some(ns) = &c.namespace {
        push_field(out, 2, "namespace", &terminal(ns));
    }
    push_field(out, 2, "first seen", &utc_ms(c.first_seen_ns));
    push_field(out, 2, "last seen", &utc_ms(c.last_seen_ns));
    let end = match (&s.last_stop, c.gone_ns) {
        (Some(stop), _) => Some(format!(
            "{}  {}",
            utc_ms(stop.ts_ns),
            stop_reason(&stop.record)
        )),
        (None, Some(g)) => Some(format!("{}  gone; its exit was not seen", utc_ms(g))),
        (None, None) => None,
    };
    if let Some(end) = end {
        // A container that ran again after its last stop has not ended.
        let name = if c.gone_ns.is_some() {
            "end"
        } else {
            "last stop"
        };
        push_field(out, 2, name, &end);
    }
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let restarts = match s.starts.saturating_sub(1) {
        0 => "no restart".to_owned(),
        n => plural(n, "restart", "restarts"),
    };
    let mut lifecycle = format!(
        "{}, {}, {restarts}",
        plural(s.starts, "start", "starts"),
        plural(s.stops, "stop", "stops")
    );
    if s.lifecycle.len() < s.starts + s.stops {
        lifecycle.push_str(&format!("; the last {} follow", s.lifecycle.len()));
    }
    push_field(out, 2, "lifecycle", &lifecycle);
    for e in &s.lifecycle {
        push_dated(out, e);
    }
    if s.loop_total > 0 {
        let mut loops = s.loop_total.to_string();
        if s.loops.len() < s.loop_total {
            loops.push_str(&format!(" (the last {} follow)", s.loops.len()));
        }
        push_field(out, 2, "loops", &loops);
        for e in &s.loops {
            out.push_str(&format!(
                "    {}  {}\n",
                utc_ms(e.ts_ns),
                terminal(e.record.explanation().unwrap_or("-"))
            ));
        }
    }
    let mut ooms = s.oom_total.to_string();
    if s.ooms.len() < s.oom_total {
        ooms.push_str(&format!(" (the last {} follow)", s.ooms.len()));
    }
    push_field(out, 2, "OOM kills", &ooms);
    let mut kills = s.kill_total.to_string();
    if s.kills.len() < s.kill_total {
        kills.push_str(&format!(" (the last {} follow)", s.kills.len()));
    }
    push_field(out, 2, "kills", &kills);
    if s.unreadable > 0 {
        push_field(
            out,
            2,
            "unreadable",
            &format!("{} records (damaged, or not ctrace.v1)", s.unreadable),
        );
    }
    for e in &s.kills {
        push_dated(out, e);
    }
    for o in &s.ooms {
        render_oom(out, o, tty);
    }
}

/// The report for people; `tty`: draw usage curves as sparklines.
pub fn render(pm: &Postmortem, tty: bool) -> String {
    let mut out = String::new();
    if pm.matches.len() > 1 {
        out.push_str(&format!(
            "{} containers match {:?} (newest first); {}:\n",
            pm.matches.len(),
            terminal(&pm.query),
            if pm.all {
                "the story of each follows"
            } else {
                "the newest one's story follows (--all for every one)"
            }
        ));
        for c in &pm.matches {
            out.push_str(&match_line(c));
        }
        out.push('\n');
    }
    for (i, s) in pm.stories.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_story(&mut out, s, tty);
    }
    out
}
