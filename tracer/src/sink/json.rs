//! NDJSON records (`schema: ctrace.v1`), one object per line: built as the types of
//! [`crate::record`], written by [`line`] (from a `serde_json::Value`, keys sorted). serde_json
//! escapes every control character, so a record can never span lines whatever the kernel or a
//! container put in it.
//!
//! The sinks write the same bytes without the `Value`: [`write_line`] serialises a record
//! straight into a buffer, keys sorted as they are written (`super::sorted`), and
//! [`write_event`] writes an event's line straight from the event, no record built
//! (`super::direct`). Their tests hold both to `line(&to_value(..))`, byte for byte.

use std::sync::Arc;

use serde_json::Value;

use tracer_common::kind;

use super::{Context, Loss};
use crate::{
    clock::rfc3339_ns,
    event::{self, kind_name, Body, CgroupOp, Event},
    names::{capability_name, signal_name},
    probe::{AttachedProgram, KindCounters},
    units::short_duration,
};
use crate::{
    explain::{Cause, ExitInfo, Incident, OomIncident, OomScope, RestartLoop, StopReason},
    record::{self, ContainerInfo, EventBase, Origin, Record},
    resolve::{Attribution, Attrs, Container, Update},
    throttle::ThrottleEvent,
};

pub use crate::record::SCHEMA;

/// `schema`, `ts` and `host` of a record made at boot time `boot_ns`.
pub fn envelope(ctx: &Context, boot_ns: u64) -> record::Envelope {
    record::Envelope {
        schema: SCHEMA.to_owned(),
        ts: rfc3339_ns(ctx.clock.unix_ns(boot_ns)),
        host: ctx.host.clone(),
    }
}

/// A record as a JSON object (keys sorted, as [`line`] writes them).
pub fn to_value(r: &Record) -> Value {
    // Serialising a record cannot fail: its keys are strings, maps have string keys.
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// The NDJSON `type` of an event.
pub fn type_name(ev: &Event) -> &'static str {
    match &ev.body {
        Body::Exec(_) => "exec",
        Body::Exit(_) => "exit",
        Body::Fork(_) => "fork",
        Body::Signal(_) => "signal",
        Body::OomVictim(_) => "oom_victim",
        Body::Capability(_) => "capability",
        Body::Cgroup(c) => match c.op {
            CgroupOp::Mkdir => "cgroup_mkdir",
            CgroupOp::Rmdir => "cgroup_rmdir",
            CgroupOp::Attach => "cgroup_attach",
        },
    }
}

pub fn signal_result(r: i32) -> &'static str {
    // enum trace_signal_result, include/trace/events/signal.h
    match r {
        0 => "delivered",
        1 => "ignored",
        2 => "already_pending",
        3 => "overflow_fail",
        4 => "lose_info",
        _ => "unknown",
    }
}

/// The `container` object: `null` for a host process, the container's metadata, or
/// `{"id": null, "resolved": false}` for a cgroup ctrace could not place.
pub fn container(a: &Attribution) -> Value {
    serde_json::to_value(ContainerInfo::of(a)).unwrap_or(Value::Null)
}

/// ` (x12 in 5s)` after a folded capability check or signal: how many, over how long; nothing for one.
pub fn repeat_note(count: u64, span_ns: u64) -> String {
    match (count, span_ns) {
        (0 | 1, _) => String::new(),
        (n, 0) => format!(" (x{n})"),
        (n, ns) => format!(" (x{n} in {})", short_duration(ns)),
    }
}

/// `web (docker)`, `host`, or `cgroup 4242` in explanations.
pub fn label(a: &Attribution, cgroup_id: u64) -> String {
    Label(a, cgroup_id).to_string()
}

/// A `container_update` record: a container became known, was named, or changed.
pub fn update(u: &Update, ctx: &Context) -> Value {
    to_value(&update_record(u, ctx))
}

/// A `container_update` as its record.
pub fn update_record(u: &Update, ctx: &Context) -> Record {
    Record::ContainerUpdate(record::ContainerUpdateRecord {
        envelope: envelope(ctx, u.boot_ns),
        cgroup_id: u.cgroup_id,
        container: Some(ContainerInfo::from(u.container.as_ref())),
        reason: u.reason.to_owned(),
        explanation: format!(
            "container {} is {} ({}){}",
            crate::container::short_id(&u.container.id),
            u.container.display(),
            u.container.runtime,
            u.cgroup_id
                .map(|id| format!(", cgroup {id}"))
                .unwrap_or_default()
        ),
    })
}

/// One event as a JSON object.
pub fn event(ev: &Event, attrs: &Attrs, ctx: &Context) -> Value {
    to_value(&event_record(ev, attrs, ctx))
}

/// One event as its record.
pub fn event_record(ev: &Event, attrs: &Attrs, ctx: &Context) -> Record {
    let p = Parts { ev, attrs, ctx };
    let mut explanation = String::new();
    // Writing into a `String` cannot fail.
    let _ = explain_event(&mut explanation, ev, attrs);
    let base = p.base(explanation);
    match &ev.body {
        Body::Exec(e) => Record::Exec(record::ExecRecord {
            event: base,
            filename: e.filename.clone(),
            old_pid: e.old_pid,
        }),
        Body::Exit(e) => exit_record(base, e),
        Body::Fork(f) => Record::Fork(record::ForkRecord {
            event: base,
            child: record::Child {
                pid: f.child_pid,
                comm: f.child_comm.clone(),
            },
        }),
        Body::Signal(s) => signal_record(&p, base, s),
        Body::OomVictim(o) => oom_victim_record(&p, base, o),
        Body::Capability(c) => capability_record(base, c),
        Body::Cgroup(c) => cgroup_record(&p, base, c),
    }
}

/// [`label`] where it is written.
struct Label<'a>(&'a Attribution, u64);

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Attribution::Host => f.write_str("host"),
            Attribution::Container(c) => write!(f, "{}, {}", c.display(), c.runtime),
            Attribution::Unknown => write!(f, "cgroup {}", self.1),
        }
    }
}

/// The other party of an event (a signal's target, an OOM victim) as explanations name it:
/// its [`Label`], or `unattributed`.
struct Whom<'a>(Option<&'a Attribution>, Option<u64>);

impl std::fmt::Display for Whom<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(a) => Label(a, self.1.unwrap_or(0)).fmt(f),
            None => f.write_str("unattributed"),
        }
    }
}

/// `allowed` or `denied`.
pub(super) fn verdict(c: &event::Capability) -> &'static str {
    if c.allowed() {
        "allowed"
    } else {
        "denied"
    }
}

/// The `explanation` of an event's record.
pub(super) fn explain_event(
    w: &mut impl std::fmt::Write,
    ev: &Event,
    attrs: &Attrs,
) -> std::fmt::Result {
    let t = &ev.task;
    let (comm, pid, who) = (&t.comm, t.pid, Label(&attrs.process, t.cgroup_id));
    let whom = |cgroup_id| Whom(attrs.other.as_ref(), cgroup_id);
    match &ev.body {
        Body::Exec(e) => write!(w, "{comm} (pid {pid}, {who}) executed {}", e.filename),
        Body::Exit(e) => match (e.signal(), e.code()) {
            (Some(s), _) => write!(
                w,
                "{comm} (pid {pid}, {who}) was killed by {}",
                signal_name(s.into())
            ),
            (None, Some(c)) => write!(w, "{comm} (pid {pid}, {who}) exited with code {c}"),
            (None, None) => write!(w, "{comm} (pid {pid}, {who}) exited"),
        },
        Body::Fork(f) => write!(w, "{comm} (pid {pid}, {who}) forked {}", f.child_pid),
        Body::Signal(s) => write!(
            w,
            "{comm} (pid {pid}, {who}) sent {} to {} (pid {}, {}): {}{}",
            signal_name(s.sig.into()),
            s.target_comm,
            s.target_pid,
            whom(s.target_cgroup_id),
            signal_result(s.result),
            repeat_note(s.fold.count, s.fold.span_ns)
        ),
        Body::OomVictim(o) => write!(
            w,
            "OOM killer chose {} (pid {}, {}, anon RSS {} KiB); triggered by {comm} (pid {pid}, \
             {who})",
            o.victim_comm,
            o.victim_pid,
            whom(o.victim_cgroup_id),
            o.anon_rss_kb
        ),
        Body::Capability(c) => write!(
            w,
            "{comm} (pid {pid}, {who}) was {} {}{}",
            verdict(c),
            capability_name(c.cap),
            repeat_note(c.count, c.span_ns)
        ),
        Body::Cgroup(c) => match c.op {
            CgroupOp::Mkdir => write!(w, "cgroup {} created", c.path),
            CgroupOp::Rmdir => write!(w, "cgroup {} removed", c.path),
            CgroupOp::Attach => {
                write!(w, "pid {} moved into cgroup {}", c.pid.unwrap_or(0), c.path)
            }
        },
    }
}

/// What the records of one event share.
struct Parts<'a> {
    ev: &'a Event,
    attrs: &'a Attrs,
    ctx: &'a Context,
}

impl Parts<'_> {
    /// The fields every event record has, with `explanation`.
    fn base(&self, explanation: String) -> EventBase {
        let t = &self.ev.task;
        EventBase {
            envelope: envelope(self.ctx, self.ev.boot_ns),
            process: record::Process {
                pid: t.pid,
                tid: t.tid,
                ppid: t.ppid,
                uid: t.uid,
                comm: t.comm.clone(),
                exe: match &self.ev.body {
                    Body::Exec(e) => Some(e.filename.clone()),
                    _ => None,
                },
            },
            cgroup_id: t.cgroup_id,
            container: ContainerInfo::of(&self.attrs.process),
            explanation,
        }
    }

    /// The container of the other party (a signal's target, an OOM victim, a cgroup).
    fn other(&self) -> Option<ContainerInfo> {
        self.attrs.other.as_ref().and_then(ContainerInfo::of)
    }
}

fn exit_record(event: EventBase, e: &event::Exit) -> Record {
    Record::Exit(record::ExitRecord {
        event,
        exit_code: e.code(),
        signal: e.signal().map(|s| signal_name(s.into())),
        core_dumped: e.core_dumped(),
        status_raw: e.status,
        group_dead: e.group_dead,
    })
}

/// Whether a signal came from the kernel (`si_code > 0`) or from a process.
pub(super) fn origin(code: i32) -> Origin {
    if code > 0 {
        Origin::Kernel
    } else {
        Origin::User
    }
}

fn signal_record(p: &Parts, event: EventBase, s: &event::Signal) -> Record {
    Record::Signal(record::SignalRecord {
        event,
        signal: signal_name(s.sig.into()),
        signo: s.sig,
        code: s.code,
        origin: origin(s.code),
        target: record::SignalTarget {
            pid: s.target_pid,
            tgid: s.target_tgid,
            comm: s.target_comm.clone(),
            cgroup_id: s.target_cgroup_id,
            container: p.other(),
        },
        group: s.group,
        result: signal_result(s.result).to_owned(),
        errno: s.errno,
        count: (s.fold.count > 1).then_some(s.fold.count),
        span_ns: (s.fold.count > 1).then_some(s.fold.span_ns),
    })
}

fn oom_victim_record(p: &Parts, event: EventBase, o: &event::OomVictim) -> Record {
    Record::OomVictim(record::OomVictimRecord {
        event,
        victim: record::OomVictimTask {
            pid: o.victim_pid,
            tgid: o.victim_tgid,
            comm: o.victim_comm.clone(),
            uid: o.victim_uid,
            cgroup_id: o.victim_cgroup_id,
            container: p.other(),
        },
        total_vm_kb: o.total_vm_kb,
        anon_rss_kb: o.anon_rss_kb,
        file_rss_kb: o.file_rss_kb,
        shmem_rss_kb: o.shmem_rss_kb,
        pgtables_kb: o.pgtables_kb,
        oom_score_adj: o.oom_score_adj,
    })
}

fn capability_record(event: EventBase, c: &event::Capability) -> Record {
    Record::Capability(record::CapabilityRecord {
        event,
        capability: capability_name(c.cap),
        cap: c.cap,
        verdict: verdict(c).to_owned(),
        ret: c.ret,
        count: c.count,
        span_ns: c.span_ns,
    })
}

fn cgroup_record(p: &Parts, event: EventBase, c: &event::Cgroup) -> Record {
    let r = record::CgroupRecord {
        event,
        cgroup: record::CgroupInfo {
            id: c.id,
            path: c.path.clone(),
            level: c.level,
            hierarchy: c.root,
            container: p.other(),
        },
        pid: c.pid,
    };
    match c.op {
        CgroupOp::Mkdir => Record::CgroupMkdir(r),
        CgroupOp::Rmdir => Record::CgroupRmdir(r),
        CgroupOp::Attach => Record::CgroupAttach(r),
    }
}

fn exit_status(e: &ExitInfo) -> record::ExitStatus {
    record::ExitStatus {
        exit_code: e.code,
        signal: e.signal.map(|s| signal_name(s.into())),
    }
}

/// An incident record (`kill`, `oom_kill`, `container_start`, `container_stop`).
pub fn incident(i: &Incident, ctx: &Context) -> Value {
    to_value(&incident_record(i, ctx))
}

/// An incident as its record.
pub fn incident_record(i: &Incident, ctx: &Context) -> Record {
    let envelope = envelope(ctx, i.boot_ns());
    let explanation = i.explain();
    match i {
        Incident::Kill(k) => Record::Kill(record::KillRecord {
            envelope,
            container: ContainerInfo::of(&k.target.attribution),
            signal: signal_name(k.signo.into()),
            signo: k.signo,
            origin: if k.from_kernel {
                Origin::Kernel
            } else {
                Origin::User
            },
            sender: record::Party::from(&k.sender),
            target: record::Party::from(&k.target),
            target_exit: k.exit.as_ref().map(exit_status),
            container_stopped: k.container_stopped,
            explanation,
        }),
        Incident::Oom(o) => oom_record(o, envelope, explanation),
        Incident::ContainerStart {
            container: c,
            init,
            filename,
            ..
        } => Record::ContainerStart(record::ContainerStartRecord {
            envelope,
            container: Some(ContainerInfo::from(c.as_ref())),
            init: record::Party::from(init),
            filename: filename.clone(),
            explanation,
        }),
        Incident::ContainerStop {
            container: c,
            exit,
            reason,
            ..
        } => {
            let (reason, by) = match reason {
                StopReason::Exited => (record::StopReason::Exited, None),
                StopReason::Killed { by, .. } => {
                    (record::StopReason::Killed, Some(record::Party::from(by)))
                }
                StopReason::OomKilled => (record::StopReason::OomKilled, None),
                StopReason::Signaled => (record::StopReason::Signaled, None),
            };
            Record::ContainerStop(record::ContainerStopRecord {
                envelope,
                container: Some(ContainerInfo::from(c.as_ref())),
                exit: Some(exit_status(exit)),
                reason,
                by,
                explanation,
            })
        }
        Incident::RestartLoop(l) => {
            Record::RestartLoop(restart_loop(l, envelope, explanation, ctx))
        }
    }
}

/// The `oom_kill` record of an OOM incident.
fn oom_record(o: &OomIncident, envelope: record::Envelope, explanation: String) -> Record {
    let d = &o.details;
    Record::OomKill(record::OomKillRecord {
        envelope,
        container: ContainerInfo::of(&o.victim.attribution),
        scope: match o.scope {
            OomScope::ContainerLimit => record::OomScope::ContainerLimit,
            OomScope::Host => record::OomScope::Host,
            OomScope::Unknown => record::OomScope::Unknown,
            OomScope::Userspace => record::OomScope::Userspace,
        },
        victim: record::OomKillVictim {
            party: record::Party::from(&o.victim),
            rss_kb: d.anon_rss_kb + d.file_rss_kb + d.shmem_rss_kb,
            anon_rss_kb: d.anon_rss_kb,
            file_rss_kb: d.file_rss_kb,
            shmem_rss_kb: d.shmem_rss_kb,
            total_vm_kb: d.total_vm_kb,
            // The tracepoint's field is missing on older kernels; the OOM killer's
            // context reads it from the task.
            oom_score_adj: d
                .oom_context
                .and_then(|c| c.oom_score_adj)
                .unwrap_or(d.oom_score_adj),
        },
        trigger: record::Party::from(&o.trigger),
        memory: o.memory.clone().map(Box::new),
        victim_exit: o.exit.as_ref().map(exit_status),
        container_stopped: o.container_stopped,
        explanation,
        oom_context: d.oom_context.map(|c| {
            Box::new(record::OomContextRecord {
                source: "oom_kill_process".to_owned(),
                memcg_cgroup_id: c.memcg.and_then(|m| m.cgroup_id),
                limit_depth: c.memcg.and_then(|m| m.depth),
                points: c.points,
                oom_score_adj: c.oom_score_adj,
                trigger: c.trigger.map(|t| t.as_str().to_owned()),
                order: c.order,
            })
        }),
        group: o
            .group
            .iter()
            .map(|g| record::GroupVictimRecord {
                party: record::Party::from(&g.party),
                rss_kb: g.rss_kb,
            })
            .collect(),
        tasks: o.tasks.as_ref().map(|t| {
            Box::new(record::OomTasksRecord {
                source: t.source.to_owned(),
                note: t.note.clone(),
                listed: t.listed as u64,
                top: t
                    .top
                    .iter()
                    .map(|t| record::OomTaskRecord {
                        pid: t.pid,
                        comm: t.comm.clone(),
                        rss_bytes: t.rss_bytes,
                    })
                    .collect(),
            })
        }),
    })
}

fn restart_loop(
    l: &RestartLoop,
    envelope: record::Envelope,
    explanation: String,
    ctx: &Context,
) -> record::RestartLoopRecord {
    record::RestartLoopRecord {
        envelope,
        container: Some(ContainerInfo::from(l.container.as_ref())),
        count: l.count as u64,
        since: rfc3339_ns(ctx.clock.unix_ns(l.since_boot_ns)),
        window_s: l.window_ns as f64 / 1e9,
        deaths: l
            .deaths
            .iter()
            .map(|d| {
                let (limit_bytes, signal, by) = match &d.cause {
                    Cause::OomKilled { limit_bytes } => (*limit_bytes, None, None),
                    Cause::Killed { signo, by } => (
                        None,
                        Some(signal_name((*signo).into())),
                        Some(record::Party::from(by)),
                    ),
                    Cause::Exited | Cause::Signaled => (None, None, None),
                };
                record::LoopDeath {
                    ts: rfc3339_ns(ctx.clock.unix_ns(d.boot_ns)),
                    cause: d.cause.as_str().to_owned(),
                    exit: exit_status(&d.exit),
                    limit_bytes,
                    signal,
                    by,
                    restarted_after_s: d.restarted_after_ns.map(|n| n as f64 / 1e9),
                }
            })
            .collect(),
        explanation,
    }
}

/// The `cpu_throttle` record of `ev` in container `c`, at boot time `boot_ns`.
pub fn throttle(c: &Arc<Container>, ev: &ThrottleEvent, boot_ns: u64, ctx: &Context) -> Value {
    to_value(&throttle_record(c, ev, boot_ns, ctx))
}

/// The `cpu_throttle` record of `ev` in container `c`, as its record.
pub fn throttle_record(
    c: &Arc<Container>,
    ev: &ThrottleEvent,
    boot_ns: u64,
    ctx: &Context,
) -> Record {
    Record::CpuThrottle(record::CpuThrottleRecord {
        envelope: envelope(ctx, boot_ns),
        container: Some(ContainerInfo::from(c.as_ref())),
        phase: ev.kind.as_str().to_owned(),
        throttled_ratio: ev.ratio,
        throttled_ns: ev.throttled_ns,
        interval_ns: u64::try_from(ev.interval.as_nanos()).unwrap_or(u64::MAX),
        quota: record::CpuQuota {
            cpus: ev.quota_cpus,
            quota_us: ev.quota_us,
            period_us: ev.period_us,
            removed: ev.quota_removed,
        },
        usage_cpus: ev.usage_cpus,
        nr_periods: ev.nr_periods,
        nr_throttled: ev.nr_throttled,
        pressure_some_us: ev.pressure_some_us,
        runqueue: ev.runqueue.map(|r| record::Runqueue {
            p50_ns: r.p50_ns,
            p99_ns: r.p99_ns,
        }),
        explanation: crate::throttle::explain(&crate::cpuwatch::label(c), ev),
    })
}

/// A gap record.
pub fn loss(l: &Loss, ctx: &Context, boot_ns: u64) -> Value {
    to_value(&loss_record(l, ctx, boot_ns))
}

/// A gap, as its record.
pub fn loss_record(l: &Loss, ctx: &Context, boot_ns: u64) -> Record {
    Record::Lost(record::LostRecord {
        envelope: envelope(ctx, boot_ns),
        kind: l.kind.to_owned(),
        count: l.count,
        site: l.site.as_str().to_owned(),
        total: l.total,
        explanation: format!(
            "{} {} {} lost ({})",
            l.count,
            l.kind,
            l.site.unit(),
            l.site.as_str()
        ),
    })
}

/// The closing record of a run: per kind, what the kernel produced, what was delivered and
/// what was lost where. After the programs are detached and the ring drained,
/// `produced == delivered + lost_ringbuf_full` for every kind.
/// The closing `stats` record. Per kind, `produced = delivered + lost_ringbuf_full +
/// decode_errors`; `decode_errors` at the top is the total, records of no known kind included.
/// `programs` lists what was attached, with the kernel's program ids, and whether each was
/// detached before the record was written.
pub fn stats(
    counters: &[KindCounters; kind::COUNT],
    delivered: &[u64; kind::COUNT],
    decode_errors: &[u64; kind::COUNT],
    programs: &[AttachedProgram],
    ctx: &Context,
) -> Value {
    let kinds = counters
        .iter()
        .enumerate()
        .skip(1)
        .filter(|&(k, c)| {
            c.attempts != 0 || c.filtered != 0 || delivered[k] != 0 || decode_errors[k] != 0
        })
        .map(|(k, c)| {
            let s = record::KindStats {
                produced: c.attempts,
                delivered: delivered[k],
                lost_ringbuf_full: c.lost_ringbuf_full,
                decode_errors: decode_errors[k],
                read_errors: c.read_errors,
                filtered_in_kernel: c.filtered,
            };
            (kind_name(k as u16).to_owned(), s)
        })
        .collect();
    to_value(&Record::Stats(record::StatsRecord {
        envelope: envelope(ctx, crate::clock::BootClock::boot_now_ns()),
        kinds,
        decode_errors: decode_errors.iter().sum(),
        programs: programs
            .iter()
            .map(|p| record::ProgramStats {
                name: p.name.to_owned(),
                hook: Some(p.hook.to_owned()),
                id: p.id,
                detached: p.detached,
                recursion_misses: p.recursion_misses,
            })
            .collect(),
        mechanisms: crate::probe::mechanisms(programs)
            .into_iter()
            .map(|(f, h)| (f.to_owned(), h.to_owned()))
            .collect(),
        state: None,
        capability_checks: None,
        signal_folds: None,
    }))
}

/// Serialise to exactly one line (no trailing newline). Besides what JSON must escape (C0
/// controls, quotes, backslashes), characters a terminal or a log pipeline may act on are
/// escaped as `\uXXXX` too: C1 controls (U+0080..U+009F: U+009B is a CSI on some terminals),
/// DEL, bidirectional controls, U+2028/U+2029 (line breaks to some readers), and zero-width
/// characters (a name that hides them shows as another): what `escape::is_invisible` lists.
/// The document stays the same JSON; `ctrace watch --json` on a terminal stays inert.
pub fn line(v: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, InertFormatter);
    // Serialising a `Value` cannot fail: keys are strings and numbers are finite.
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return String::from("{}");
    }
    // The formatter writes only what serde_json gives it (UTF-8) and ASCII escapes.
    String::from_utf8(out).unwrap_or_else(|_| String::from("{}"))
}

/// Append the line of `value` to `out` (no newline): the bytes `line(&to_value(value))`
/// gives, keys sorted in every object, written without building the `Value`.
pub fn write_line<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    thread_local! {
        static SCRATCH: std::cell::RefCell<super::sorted::Scratch> = Default::default();
    }
    let direct = SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => super::sorted::write(value, out, &mut s),
        Err(_) => super::sorted::write(value, out, &mut Default::default()),
    });
    if direct.is_err() {
        // What the direct writer leaves to serde_json (nothing a record holds).
        let v = serde_json::to_value(value).unwrap_or(Value::Null);
        out.extend_from_slice(line(&v).as_bytes());
    }
}

/// Append the line of an event to `out` (no newline): the bytes of
/// `line(&event(ev, attrs, ctx))`, written straight from the event (no record, no `Value`).
pub fn write_event(ev: &Event, attrs: &Attrs, ctx: &Context, out: &mut Vec<u8>) {
    thread_local! {
        static BUFFERS: std::cell::RefCell<super::direct::Buffers> = Default::default();
    }
    BUFFERS.with(|b| match b.try_borrow_mut() {
        Ok(mut b) => super::direct::write_event(ev, attrs, ctx, out, &mut b),
        Err(_) => super::direct::write_event(ev, attrs, ctx, out, &mut Default::default()),
    });
}

/// An event as one line (no newline), as [`write_event`] writes it.
pub fn event_line(ev: &Event, attrs: &Attrs, ctx: &Context) -> String {
    let mut out = Vec::with_capacity(512);
    write_event(ev, attrs, ctx, &mut out);
    // What serde_json gives the writers (UTF-8), and ASCII.
    String::from_utf8(out).unwrap_or_else(|_| String::from("{}"))
}

/// A record as one line (no newline): `line(&to_value(r))`, without the `Value`.
pub fn record_line(r: &Record) -> String {
    let mut out = Vec::with_capacity(1024);
    write_line(r, &mut out);
    // Both writers write UTF-8: what serde_json gives them, and ASCII escapes.
    String::from_utf8(out).unwrap_or_else(|_| String::from("{}"))
}

/// serde_json's compact formatter, escaping the characters [`line`] lists.
pub(super) struct InertFormatter;

fn needs_escape(c: char) -> bool {
    matches!(c as u32, 0x7f..=0x9f) || super::escape::is_invisible(c)
}

impl serde_json::ser::Formatter for InertFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // Every character [`needs_escape`] lists is at or above U+007F: runs of ASCII below it
        // are copied as they are, and only the other characters are decoded and looked at.
        let bytes = fragment.as_bytes();
        let (mut start, mut i) = (0, 0);
        while let Some(off) = bytes[i..].iter().position(|&b| b >= 0x7f) {
            let at = i + off;
            // `at` starts a character: what precedes it is ASCII or whole characters.
            let Some(c) = fragment[at..].chars().next() else {
                break;
            };
            if needs_escape(c) {
                writer.write_all(&bytes[start..at])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                start = at + c.len_utf8();
            }
            i = at + c.len_utf8();
        }
        writer.write_all(&bytes[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clock::BootClock, event};

    #[test]
    fn lines_escape_what_terminals_and_log_readers_act_on() {
        let hostile = "a\u{1b}[2J\u{7}\u{7f}\u{9b}31m\u{202e}txt\u{2028}b\nc\u{fffd}ü";
        let v = serde_json::json!({ "comm": hostile, hostile: 1 });
        let l = line(&v);
        assert_eq!(
            l,
            r#"{"a\u001b[2J\u0007\u007f\u009b31m\u202etxt\u2028b\nc�ü":1,"comm":"a\u001b[2J\u0007\u007f\u009b31m\u202etxt\u2028b\nc�ü"}"#
        );
        assert_eq!(
            serde_json::from_str::<Value>(&l).unwrap(),
            v,
            "the same document"
        );
    }

    #[test]
    fn lines_escape_bidi_controls_separators_and_zero_width_characters() {
        let hostile = "\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}\
                       \u{200e}\u{200f}\u{61c}|\u{2028}\u{2029}|\u{200b}\u{200c}\u{200d}\u{2060}\
                       \u{2064}\u{180e}\u{feff}|ok\u{2019}\u{fffd}";
        let v = serde_json::json!({ "name": hostile });
        let l = line(&v);
        assert_eq!(
            l,
            r#"{"name":"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c|\u2028\u2029|\u200b\u200c\u200d\u2060\u2064\u180e\ufeff|ok’�"}"#,
            "visible characters stay as they are"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&l).unwrap(),
            v,
            "the same document"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_string_is_one_inert_line_of_the_same_json(s in "\\PC*|[\\x00-\\x{a0}\\x{200b}-\\x{206f}\\x{180e}\\x{feff}]*") {
            let v = serde_json::json!({ "s": s });
            let l = line(&v);
            proptest::prop_assert!(!l.chars().any(|c| c.is_control() || needs_escape(c)), "{l:?}");
            proptest::prop_assert_eq!(serde_json::from_str::<Value>(&l).unwrap(), v);
        }
    }

    fn ctx() -> Context {
        Context {
            host: "h".into(),
            clock: BootClock::fixed(1_795_977_181_000_000_000),
        }
    }

    #[test]
    fn repeated_checks_say_how_many_in_how_long() {
        assert_eq!(repeat_note(1, 5_000_000_000), "");
        assert_eq!(repeat_note(12, 0), " (x12)");
        assert_eq!(repeat_note(12, 5_000_000_000), " (x12 in 5s)");
        assert_eq!(repeat_note(3, 12_540_000_000), " (x3 in 12.5s)");
        assert_eq!(repeat_note(3, 850_000_000), " (x3 in 850ms)");
        assert_eq!(repeat_note(3, 200_000_000_000), " (x3 in 3m20s)");
    }

    #[test]
    fn capability_sentence() {
        let mut ev = event::decode(&event::tests::exec_record("/bin/x")).unwrap();
        ev.kind = tracer_common::kind::CAPABILITY;
        ev.body = Body::Capability(crate::event::Capability {
            cap: 12,
            ret: -1,
            cpu: 0,
            generation: 0,
            total: 12,
            count: 12,
            span_ns: 5_000_000_000,
        });
        let v = event(&ev, &Attrs::HOST, &ctx());
        assert_eq!(
            v["explanation"],
            "sleep (pid 100, host) was denied CAP_NET_ADMIN (x12 in 5s)"
        );
        assert_eq!(v["span_ns"], 5_000_000_000u64);
    }

    #[test]
    fn exec_record() {
        let ev = event::decode(&event::tests::exec_record("/bin/sleep")).unwrap();
        let v = event(&ev, &Attrs::HOST, &ctx());
        assert_eq!(v["schema"], "ctrace.v1");
        assert_eq!(v["type"], "exec");
        assert_eq!(v["ts"], "2026-11-29T18:33:02.000000123Z");
        assert_eq!(v["process"]["pid"], 100);
        assert_eq!(v["process"]["ppid"], 1);
        assert_eq!(v["process"]["exe"], "/bin/sleep");
        assert_eq!(v["cgroup_id"], 4242);
        assert!(v["container"].is_null());
        assert_eq!(
            v["explanation"],
            "sleep (pid 100, host) executed /bin/sleep"
        );
    }

    #[test]
    fn hostile_strings_stay_on_one_line() {
        let ev = event::decode(&event::tests::exec_record("/tmp/a\nb\u{1b}c\"d")).unwrap();
        let l = line(&event(&ev, &Attrs::HOST, &ctx()));
        assert!(!l.contains('\n'));
        assert!(!l.contains('\u{1b}'));
        let back: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(back["filename"], "/tmp/a\nb\u{1b}c\"d");
    }

    /// What the writer builds reads back as its type and writes the same JSON.
    #[test]
    fn written_records_read_back_as_their_type() {
        let mut c = crate::resolve::Container::named(
            "6f97f0f8567499d0b2bd94070f50da52179582e0a750084d1f740e30b576a181",
            "web",
            crate::container::Runtime::Docker,
        );
        c.init_pid = Some(7);
        let c = std::sync::Arc::new(c);
        let attributions = [
            Attribution::Host,
            Attribution::Unknown,
            Attribution::Container(std::sync::Arc::clone(&c)),
        ];
        let base = event::decode(&event::tests::exec_record("/bin/x")).unwrap();
        let bodies = [
            base.body.clone(),
            Body::Exit(crate::event::Exit {
                status: Some(9),
                group_dead: Some(true),
            }),
            Body::Cgroup(crate::event::Cgroup {
                op: CgroupOp::Attach,
                root: 0,
                level: 2,
                id: 9,
                pid: Some(5),
                path: "/docker/x".into(),
            }),
            Body::Cgroup(crate::event::Cgroup {
                op: CgroupOp::Mkdir,
                root: 0,
                level: 2,
                id: 9,
                pid: None,
                path: "/docker/x".into(),
            }),
        ];
        for body in bodies {
            for a in &attributions {
                let mut ev = base.clone();
                ev.body = body.clone();
                let attrs = Attrs {
                    process: a.clone(),
                    other: Some(a.clone()),
                };
                let v = event(&ev, &attrs, &ctx());
                let r: Record = serde_json::from_value(v.clone()).unwrap();
                assert_eq!(r.type_name(), type_name(&ev));
                assert_eq!(to_value(&r), v);
                let built = event_record(&ev, &attrs, &ctx());
                assert_eq!(record_line(&built), line(&v), "the sinks' line");
            }
        }
        let l = Loss {
            kind: "exec",
            count: 3,
            site: super::super::LossSite::UserspaceDecode,
            total: 10,
        };
        let v = loss(&l, &ctx(), 0);
        assert_eq!(to_value(&serde_json::from_value(v.clone()).unwrap()), v);
    }

    /// Strings a container or the kernel may put in a record: C0 and C1 controls, escapes,
    /// bidirectional and zero-width characters, separators, quotes, astral characters.
    const HOSTILE: [&str; 5] = [
        "a\u{1b}[2J\u{7}\u{7f}\u{9b}31m\u{202e}txt\u{2028}b\nc\u{fffd}ü",
        "\"\\/\u{0}\u{1f}\t\r\u{200b}\u{feff}\u{61c}\u{2029}\u{180e}",
        "",
        "\u{10ffff}😀 ~/x",
        "container_stopped",
    ];

    /// The line the sinks write is the one of the `Value` path, byte for byte.
    fn assert_same_line(r: &Record) {
        let want = line(&to_value(r));
        assert_eq!(record_line(r), want);
        let mut out = b"before".to_vec();
        write_line(r, &mut out);
        assert_eq!(&out[6..], want.as_bytes(), "appended");
    }

    /// JSON pointers of `v`'s strings, and of its objects that are maps of free keys.
    fn pointers(v: &Value, at: String, strings: &mut Vec<String>, maps: &mut Vec<String>) {
        match v {
            Value::String(_) => strings.push(at),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    pointers(x, format!("{at}/{i}"), strings, maps);
                }
            }
            Value::Object(m) => {
                if ["/labels", "/kinds", "/mechanisms"]
                    .iter()
                    .any(|e| at.ends_with(e))
                {
                    maps.push(at.clone());
                }
                for (k, x) in m {
                    let k = k.replace('~', "~0").replace('/', "~1");
                    pointers(x, format!("{at}/{k}"), strings, maps);
                }
            }
            _ => {}
        }
    }

    /// `v` with, in turn, each of its strings replaced by `s`, and `s` added as a key to each
    /// of its maps: those that still read as a record.
    fn hostile_variants(v: &Value, s: &str) -> Vec<Record> {
        let (mut strings, mut maps) = (Vec::new(), Vec::new());
        pointers(v, String::new(), &mut strings, &mut maps);
        let mut out = Vec::new();
        for p in strings {
            let mut x = v.clone();
            if let Some(slot) = x.pointer_mut(&p) {
                *slot = Value::String(s.to_owned());
            }
            out.extend(serde_json::from_value(x).ok());
        }
        for p in maps {
            let mut x = v.clone();
            if let Some(Value::Object(m)) = x.pointer_mut(&p) {
                let entry = if p.ends_with("/kinds") {
                    serde_json::json!({"produced": 1})
                } else {
                    Value::String(s.to_owned())
                };
                m.insert(s.to_owned(), entry);
            }
            out.extend(serde_json::from_value(x).ok());
        }
        out
    }

    /// Every record type (the examples of docs/events.md), with hostile strings in every
    /// field and map key that takes a string: written directly, the same bytes as through
    /// `serde_json::to_value` and [`line`].
    #[test]
    fn every_record_type_writes_the_bytes_of_the_value_path() {
        let examples = crate::record::examples_in(include_str!("../../../docs/events.md"));
        let mut types = std::collections::BTreeSet::new();
        for (t, text) in examples {
            let v: Value = serde_json::from_str(&text).unwrap();
            let r: Record = serde_json::from_value(v.clone()).unwrap();
            assert_same_line(&r);
            for s in HOSTILE {
                let variants = hostile_variants(&v, s);
                assert!(variants.len() >= 3, "{t}: {} variants", variants.len());
                for r in &variants {
                    assert_same_line(r);
                }
            }
            types.insert(t);
        }
        assert_eq!(types.len(), Record::TYPES.len(), "every type");
    }

    #[test]
    fn loss_record() {
        let l = Loss {
            kind: "exec",
            count: 3,
            site: super::super::LossSite::KernelRingbufFull,
            total: 10,
        };
        let v = loss(&l, &ctx(), 0);
        assert_eq!(v["type"], "lost");
        assert_eq!(v["count"], 3);
        assert_eq!(v["where"], "kernel_ringbuf_full");
    }
}
