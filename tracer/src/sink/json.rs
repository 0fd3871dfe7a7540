//! NDJSON records (`schema: ctrace.v1`), one object per line. serde_json escapes every control
//! character, so a record can never span lines whatever the kernel or a container put in it.

use serde_json::{json, Map, Value};

use tracer_common::kind;

use super::{Context, Loss};
use crate::{
    clock::rfc3339_ns,
    event::{kind_name, Body, CgroupOp, Event},
    names::{capability_name, signal_name},
    probe::{AttachedProgram, KindCounters},
    units::short_duration,
};
use crate::{
    explain::{ExitInfo, Incident, Party, StopReason},
    resolve::{Attribution, Attrs, Update},
};

pub const SCHEMA: &str = "ctrace.v1";

/// The common fields of a record, as an object to add to.
pub fn base_record(ctx: &Context, ty: &str, boot_ns: u64) -> Value {
    Value::Object(base(ctx, ty, boot_ns))
}

fn base(ctx: &Context, ty: &str, boot_ns: u64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("schema".into(), SCHEMA.into());
    m.insert("ts".into(), rfc3339_ns(ctx.clock.unix_ns(boot_ns)).into());
    m.insert("type".into(), ty.into());
    m.insert("host".into(), ctx.host.clone().into());
    m
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
    match a {
        Attribution::Host => Value::Null,
        Attribution::Container(c) => {
            let mut v = serde_json::to_value(c.as_ref()).unwrap_or(Value::Null);
            if let Some(m) = v.as_object_mut() {
                m.insert("resolved".into(), true.into());
            }
            v
        }
        Attribution::Unknown => json!({ "id": null, "resolved": false }),
    }
}

/// ` (x12 in 5s)` after a folded capability check: how many, over how long; nothing for one.
pub fn repeat_note(count: u64, span_ns: u64) -> String {
    match (count, span_ns) {
        (0 | 1, _) => String::new(),
        (n, 0) => format!(" (x{n})"),
        (n, ns) => format!(" (x{n} in {})", short_duration(ns)),
    }
}

/// `web (docker)`, `host`, or `cgroup 4242` in explanations.
pub fn label(a: &Attribution, cgroup_id: u64) -> String {
    match a {
        Attribution::Host => "host".to_owned(),
        Attribution::Container(c) => format!("{}, {}", c.display(), c.runtime),
        Attribution::Unknown => format!("cgroup {cgroup_id}"),
    }
}

/// A `container_update` record: a container became known, was named, or changed.
pub fn update(u: &Update, ctx: &Context) -> Value {
    let mut m = base(
        ctx,
        "container_update",
        crate::clock::BootClock::boot_now_ns(),
    );
    m.insert("cgroup_id".into(), u.cgroup_id.into());
    m.insert(
        "container".into(),
        container(&Attribution::Container(std::sync::Arc::clone(&u.container))),
    );
    m.insert("reason".into(), u.reason.into());
    m.insert(
        "explanation".into(),
        format!(
            "container {} is {} ({}){}",
            crate::container::short_id(&u.container.id),
            u.container.display(),
            u.container.runtime,
            u.cgroup_id
                .map(|id| format!(", cgroup {id}"))
                .unwrap_or_default()
        )
        .into(),
    );
    Value::Object(m)
}

/// One event as a JSON object.
pub fn event(ev: &Event, attrs: &Attrs, ctx: &Context) -> Value {
    let mut m = base(ctx, type_name(ev), ev.boot_ns);
    let t = &ev.task;
    let mut process = json!({
        "pid": t.pid,
        "tid": t.tid,
        "ppid": t.ppid,
        "uid": t.uid,
        "comm": t.comm,
    });
    if let Body::Exec(e) = &ev.body {
        process["exe"] = e.filename.clone().into();
    }
    m.insert("process".into(), process);
    m.insert("cgroup_id".into(), t.cgroup_id.into());
    m.insert("container".into(), container(&attrs.process));
    let who = label(&attrs.process, t.cgroup_id);
    let other = attrs.other.as_ref().map(container);
    let explanation = match &ev.body {
        Body::Exec(e) => {
            m.insert("filename".into(), e.filename.clone().into());
            m.insert("old_pid".into(), e.old_pid.into());
            format!("{} (pid {}, {who}) executed {}", t.comm, t.pid, e.filename)
        }
        Body::Exit(e) => {
            m.insert("exit_code".into(), e.code().into());
            m.insert(
                "signal".into(),
                e.signal().map(|s| signal_name(s.into())).into(),
            );
            m.insert("core_dumped".into(), e.core_dumped().into());
            m.insert("status_raw".into(), e.status.into());
            m.insert("group_dead".into(), e.group_dead.into());
            match (e.signal(), e.code()) {
                (Some(s), _) => format!(
                    "{} (pid {}, {who}) was killed by {}",
                    t.comm,
                    t.pid,
                    signal_name(s.into())
                ),
                (None, Some(c)) => {
                    format!("{} (pid {}, {who}) exited with code {c}", t.comm, t.pid)
                }
                (None, None) => format!("{} (pid {}, {who}) exited", t.comm, t.pid),
            }
        }
        Body::Fork(f) => {
            m.insert(
                "child".into(),
                json!({ "pid": f.child_pid, "comm": f.child_comm }),
            );
            format!("{} (pid {}, {who}) forked {}", t.comm, t.pid, f.child_pid)
        }
        Body::Signal(s) => {
            let name = signal_name(s.sig.into());
            m.insert("signal".into(), name.clone().into());
            m.insert("signo".into(), s.sig.into());
            m.insert("code".into(), s.code.into());
            m.insert(
                "origin".into(),
                if s.code > 0 { "kernel" } else { "user" }.into(),
            );
            m.insert(
                "target".into(),
                json!({
                    "pid": s.target_pid,
                    "tgid": s.target_tgid,
                    "comm": s.target_comm,
                    "cgroup_id": s.target_cgroup_id,
                    "container": other.clone().unwrap_or(Value::Null),
                }),
            );
            m.insert("group".into(), s.group.into());
            m.insert("result".into(), signal_result(s.result).into());
            m.insert("errno".into(), s.errno.into());
            let whom = attrs.other.as_ref().map_or_else(
                || "unattributed".to_owned(),
                |a| label(a, s.target_cgroup_id.unwrap_or(0)),
            );
            format!(
                "{} (pid {}, {who}) sent {name} to {} (pid {}, {whom}): {}",
                t.comm,
                t.pid,
                s.target_comm,
                s.target_pid,
                signal_result(s.result)
            )
        }
        Body::OomVictim(o) => {
            m.insert(
                "victim".into(),
                json!({
                    "pid": o.victim_pid,
                    "tgid": o.victim_tgid,
                    "comm": o.victim_comm,
                    "uid": o.victim_uid,
                    "cgroup_id": o.victim_cgroup_id,
                    "container": other.clone().unwrap_or(Value::Null),
                }),
            );
            m.insert("total_vm_kb".into(), o.total_vm_kb.into());
            m.insert("anon_rss_kb".into(), o.anon_rss_kb.into());
            m.insert("file_rss_kb".into(), o.file_rss_kb.into());
            m.insert("shmem_rss_kb".into(), o.shmem_rss_kb.into());
            m.insert("pgtables_kb".into(), o.pgtables_kb.into());
            m.insert("oom_score_adj".into(), o.oom_score_adj.into());
            let whom = attrs.other.as_ref().map_or_else(
                || "unattributed".to_owned(),
                |a| label(a, o.victim_cgroup_id.unwrap_or(0)),
            );
            format!(
                "OOM killer chose {} (pid {}, {whom}, anon RSS {} KiB); triggered by {} (pid {}, \
                 {who})",
                o.victim_comm, o.victim_pid, o.anon_rss_kb, t.comm, t.pid
            )
        }
        Body::Capability(c) => {
            let name = capability_name(c.cap);
            let verdict = if c.allowed() { "allowed" } else { "denied" };
            m.insert("capability".into(), name.clone().into());
            m.insert("cap".into(), c.cap.into());
            m.insert("verdict".into(), verdict.into());
            m.insert("ret".into(), c.ret.into());
            m.insert("count".into(), c.count.into());
            m.insert("span_ns".into(), c.span_ns.into());
            format!(
                "{} (pid {}, {who}) was {verdict} {name}{}",
                t.comm,
                t.pid,
                repeat_note(c.count, c.span_ns)
            )
        }
        Body::Cgroup(c) => {
            m.insert(
                "cgroup".into(),
                json!({
                    "id": c.id,
                    "path": c.path,
                    "level": c.level,
                    "hierarchy": c.root,
                    "container": other.clone().unwrap_or(Value::Null),
                }),
            );
            if let Some(pid) = c.pid {
                m.insert("pid".into(), pid.into());
            }
            match c.op {
                CgroupOp::Mkdir => format!("cgroup {} created", c.path),
                CgroupOp::Rmdir => format!("cgroup {} removed", c.path),
                CgroupOp::Attach => {
                    format!("pid {} moved into cgroup {}", c.pid.unwrap_or(0), c.path)
                }
            }
        }
    };
    m.insert("explanation".into(), explanation.into());
    Value::Object(m)
}

fn party(p: &Party) -> Value {
    json!({
        "pid": p.pid,
        "comm": p.comm,
        "cgroup_id": p.cgroup_id,
        "container": container(&p.attribution),
    })
}

fn exit_info(e: Option<&ExitInfo>) -> Value {
    e.map_or(Value::Null, |e| {
        json!({
            "exit_code": e.code,
            "signal": e.signal.map(|s| signal_name(s.into())),
        })
    })
}

/// An incident record (`kill`, `oom_kill`, `container_start`, `container_stop`).
pub fn incident(i: &Incident, ctx: &Context) -> Value {
    let mut m = base(ctx, i.type_name(), i.boot_ns());
    match i {
        Incident::Kill(k) => {
            m.insert("container".into(), container(&k.target.attribution));
            m.insert("signal".into(), signal_name(k.signo.into()).into());
            m.insert("signo".into(), k.signo.into());
            m.insert(
                "origin".into(),
                if k.from_kernel { "kernel" } else { "user" }.into(),
            );
            m.insert("sender".into(), party(&k.sender));
            m.insert("target".into(), party(&k.target));
            m.insert("target_exit".into(), exit_info(k.exit.as_ref()));
            m.insert("container_stopped".into(), k.container_stopped.into());
        }
        Incident::Oom(o) => {
            m.insert("container".into(), container(&o.victim.attribution));
            m.insert("scope".into(), o.scope.as_str().into());
            let mut victim = party(&o.victim);
            let d = &o.details;
            victim["rss_kb"] = (d.anon_rss_kb + d.file_rss_kb + d.shmem_rss_kb).into();
            victim["anon_rss_kb"] = d.anon_rss_kb.into();
            victim["file_rss_kb"] = d.file_rss_kb.into();
            victim["shmem_rss_kb"] = d.shmem_rss_kb.into();
            victim["total_vm_kb"] = d.total_vm_kb.into();
            victim["oom_score_adj"] = d.oom_score_adj.into();
            m.insert("victim".into(), victim);
            m.insert("trigger".into(), party(&o.trigger));
            m.insert(
                "memory".into(),
                o.memory.as_ref().map_or(Value::Null, |mem| {
                    serde_json::to_value(mem).unwrap_or(Value::Null)
                }),
            );
            m.insert("victim_exit".into(), exit_info(o.exit.as_ref()));
            m.insert("container_stopped".into(), o.container_stopped.into());
        }
        Incident::ContainerStart {
            container: c,
            init,
            filename,
            ..
        } => {
            m.insert(
                "container".into(),
                container(&Attribution::Container(std::sync::Arc::clone(c))),
            );
            m.insert("init".into(), party(init));
            m.insert("filename".into(), filename.clone().into());
        }
        Incident::ContainerStop {
            container: c,
            exit,
            reason,
            ..
        } => {
            m.insert(
                "container".into(),
                container(&Attribution::Container(std::sync::Arc::clone(c))),
            );
            m.insert("exit".into(), exit_info(Some(exit)));
            let (r, by) = match reason {
                StopReason::Exited => ("exited", Value::Null),
                StopReason::Killed { by, .. } => ("killed", party(by)),
                StopReason::OomKilled => ("oom_killed", Value::Null),
                StopReason::Signaled => ("signaled", Value::Null),
            };
            m.insert("reason".into(), r.into());
            m.insert("by".into(), by);
        }
    }
    m.insert("explanation".into(), i.explain().into());
    Value::Object(m)
}

/// A gap record.
pub fn loss(l: &Loss, ctx: &Context, boot_ns: u64) -> Value {
    let mut m = base(ctx, "lost", boot_ns);
    m.insert("kind".into(), l.kind.into());
    m.insert("count".into(), l.count.into());
    m.insert("where".into(), l.site.as_str().into());
    m.insert("total".into(), l.total.into());
    m.insert(
        "explanation".into(),
        format!("{} {} records lost ({})", l.count, l.kind, l.site.as_str()).into(),
    );
    Value::Object(m)
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
    let mut m = base(ctx, "stats", crate::clock::BootClock::boot_now_ns());
    let mut kinds = Map::new();
    for (k, c) in counters.iter().enumerate().skip(1) {
        if c.attempts == 0 && c.filtered == 0 && delivered[k] == 0 && decode_errors[k] == 0 {
            continue;
        }
        kinds.insert(
            kind_name(k as u16).into(),
            json!({
                "produced": c.attempts,
                "delivered": delivered[k],
                "lost_ringbuf_full": c.lost_ringbuf_full,
                "decode_errors": decode_errors[k],
                "read_errors": c.read_errors,
                "filtered_in_kernel": c.filtered,
            }),
        );
    }
    m.insert("kinds".into(), Value::Object(kinds));
    m.insert(
        "decode_errors".into(),
        decode_errors.iter().sum::<u64>().into(),
    );
    m.insert(
        "programs".into(),
        programs
            .iter()
            .map(|p| json!({ "name": p.name, "id": p.id, "detached": p.detached }))
            .collect(),
    );
    Value::Object(m)
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

/// serde_json's compact formatter, escaping the characters [`line`] lists.
struct InertFormatter;

fn needs_escape(c: char) -> bool {
    matches!(c as u32, 0x7f..=0x9f) || super::escape::is_invisible(c)
}

impl serde_json::ser::Formatter for InertFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if needs_escape(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
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
