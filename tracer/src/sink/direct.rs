//! The NDJSON line of a kernel event written straight from the event, its attribution and
//! the context: no record built, no `serde_json::Value`, each object's keys written in the
//! order [`super::json::line`] sorts them in. Most lines are events; this is their fast path.
//!
//! [`crate::record`]'s types, as [`super::json::event_record`] fills them, stay the
//! definition of these lines: the explanation is the same code's, and a test holds what is
//! written here to `line(&event(..))`, byte for byte, for every event type and attribution
//! (`direct::tests`). A field added to an event record is added here too, in key order
//! (in debug builds a key out of order panics).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    json::{explain_event, origin, signal_result, type_name, verdict, InertFormatter},
    sorted::{self, put_str, Scratch},
    Context,
};
use crate::{
    clock::{rfc3339_ns, rfc3339_ns_ascii},
    event::{self, Body, Event, Task},
    names::{capability_name, signal_name},
    record::SCHEMA,
    resolve::{Attribution, Attrs, Container},
};

/// Buffers reused from one line to the next.
#[derive(Debug, Default)]
pub struct Buffers {
    /// The explanation, before it is escaped into the line.
    text: String,
    sorted: Scratch,
}

/// Append the line of `ev` to `out` (no newline): the bytes of `line(&event(ev, attrs, ctx))`.
pub fn write_event(ev: &Event, attrs: &Attrs, ctx: &Context, out: &mut Vec<u8>, b: &mut Buffers) {
    b.text.clear();
    // Writing into a `String` cannot fail.
    let _ = explain_event(&mut b.text, ev, attrs);
    let mut l = Line {
        ev,
        attrs,
        ctx,
        explanation: &b.text,
        s: &mut b.sorted,
    };
    let mut o = Obj::open(out);
    match &ev.body {
        Body::Exec(x) => l.exec(&mut o, x),
        Body::Exit(x) => l.exit(&mut o, x),
        Body::Fork(x) => l.fork(&mut o, x),
        Body::Signal(x) => l.signal(&mut o, x),
        Body::OomVictim(x) => l.oom_victim(&mut o, x),
        Body::Capability(x) => l.capability(&mut o, x),
        Body::Cgroup(x) => l.cgroup(&mut o, x),
    }
    o.close();
}

/// An object written member by member, in key order.
struct Obj<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
    /// The key before, to check the order.
    #[cfg(debug_assertions)]
    last: &'static str,
}

impl<'o> Obj<'o> {
    fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj {
            out,
            first: true,
            #[cfg(debug_assertions)]
            last: "",
        }
    }

    /// `"key":` after its separator (keys here are plain ASCII); returns where the value goes.
    fn key(&mut self, k: &'static str) -> &mut Vec<u8> {
        #[cfg(debug_assertions)]
        {
            assert!(self.first || self.last < k, "key {k} after {}", self.last);
            self.last = k;
        }
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn str(&mut self, k: &'static str, v: &str) {
        put_str(self.key(k), v);
    }

    fn opt_str(&mut self, k: &'static str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.key(k).extend_from_slice(b"null"),
        }
    }

    fn bool(&mut self, k: &'static str, v: bool) {
        self.key(k)
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    /// A number (or `null` for `None`) as serde_json writes it.
    fn num(&mut self, k: &'static str, v: impl Serialize) {
        let out = self.key(k);
        // Integers and options of them: nothing that can fail, no object to sort.
        let _ = v.serialize(&mut serde_json::Serializer::with_formatter(
            out,
            InertFormatter,
        ));
    }

    /// Anything else: serde's way, keys sorted.
    fn value(&mut self, k: &'static str, v: &impl Serialize, s: &mut Scratch) {
        let out = self.key(k);
        if sorted::write(v, out, s).is_err() {
            let v = serde_json::to_value(v).unwrap_or_default();
            out.extend_from_slice(super::json::line(&v).as_bytes());
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// An event's line being written.
struct Line<'a> {
    ev: &'a Event,
    attrs: &'a Attrs,
    ctx: &'a Context,
    explanation: &'a str,
    s: &'a mut Scratch,
}

/// The members of event lines: those every event has, then each type's object, its keys in
/// order.
impl Line<'_> {
    fn cgroup_id(&self, o: &mut Obj) {
        o.num("cgroup_id", self.ev.task.cgroup_id);
    }

    fn container(&mut self, o: &mut Obj) {
        container(o.key("container"), Some(&self.attrs.process), self.s);
    }

    /// The container of the other party (a signal's target, an OOM victim, a cgroup).
    fn other(&mut self, o: &mut Obj) {
        container(o.key("container"), self.attrs.other.as_ref(), self.s);
    }

    fn explanation(&self, o: &mut Obj) {
        o.str("explanation", self.explanation);
    }

    fn host(&self, o: &mut Obj) {
        o.str("host", &self.ctx.host);
    }

    fn process(&self, o: &mut Obj) {
        let exe = match &self.ev.body {
            Body::Exec(e) => Some(e.filename.as_str()),
            _ => None,
        };
        process(o.key("process"), &self.ev.task, exe);
    }

    fn schema(&self, o: &mut Obj) {
        o.str("schema", SCHEMA);
    }

    fn ts(&self, o: &mut Obj) {
        let ns = self.ctx.clock.unix_ns(self.ev.boot_ns);
        let out = o.key("ts");
        match rfc3339_ns_ascii(ns) {
            Some(b) => {
                out.push(b'"');
                out.extend_from_slice(&b);
                out.push(b'"');
            }
            None => put_str(out, &rfc3339_ns(ns)),
        }
    }

    fn ty(&self, o: &mut Obj) {
        o.str("type", type_name(self.ev));
    }

    fn exec(&mut self, o: &mut Obj, e: &event::Exec) {
        self.cgroup_id(o);
        self.container(o);
        self.explanation(o);
        o.str("filename", &e.filename);
        self.host(o);
        o.num("old_pid", e.old_pid);
        self.process(o);
        self.schema(o);
        self.ts(o);
        self.ty(o);
    }

    fn exit(&mut self, o: &mut Obj, e: &event::Exit) {
        self.cgroup_id(o);
        self.container(o);
        o.bool("core_dumped", e.core_dumped());
        o.num("exit_code", e.code());
        self.explanation(o);
        if let Some(g) = e.group_dead {
            o.bool("group_dead", g);
        }
        self.host(o);
        self.process(o);
        self.schema(o);
        o.opt_str(
            "signal",
            e.signal().map(|s| signal_name(s.into())).as_deref(),
        );
        o.num("status_raw", e.status);
        self.ts(o);
        self.ty(o);
    }

    fn fork(&mut self, o: &mut Obj, f: &event::Fork) {
        self.cgroup_id(o);
        let mut c = Obj::open(o.key("child"));
        c.str("comm", &f.child_comm);
        c.num("pid", f.child_pid);
        c.close();
        self.container(o);
        self.explanation(o);
        self.host(o);
        self.process(o);
        self.schema(o);
        self.ts(o);
        self.ty(o);
    }

    fn signal(&mut self, o: &mut Obj, s: &event::Signal) {
        self.cgroup_id(o);
        o.num("code", s.code);
        self.container(o);
        let folded = (s.fold.count > 1).then_some(s.fold);
        if let Some(f) = folded {
            o.num("count", f.count);
        }
        o.num("errno", s.errno);
        self.explanation(o);
        o.bool("group", s.group);
        self.host(o);
        o.value("origin", &origin(s.code), self.s);
        self.process(o);
        o.str("result", signal_result(s.result));
        self.schema(o);
        o.str("signal", &signal_name(s.sig.into()));
        o.num("signo", s.sig);
        if let Some(f) = folded {
            o.num("span_ns", f.span_ns);
        }
        let mut t = Obj::open(o.key("target"));
        t.num("cgroup_id", s.target_cgroup_id);
        t.str("comm", &s.target_comm);
        self.other(&mut t);
        t.num("pid", s.target_pid);
        t.num("tgid", s.target_tgid);
        t.close();
        self.ts(o);
        self.ty(o);
    }

    fn oom_victim(&mut self, o: &mut Obj, v: &event::OomVictim) {
        o.num("anon_rss_kb", v.anon_rss_kb);
        self.cgroup_id(o);
        self.container(o);
        self.explanation(o);
        o.num("file_rss_kb", v.file_rss_kb);
        self.host(o);
        o.num("oom_score_adj", v.oom_score_adj);
        o.num("pgtables_kb", v.pgtables_kb);
        self.process(o);
        self.schema(o);
        o.num("shmem_rss_kb", v.shmem_rss_kb);
        o.num("total_vm_kb", v.total_vm_kb);
        self.ts(o);
        self.ty(o);
        let mut t = Obj::open(o.key("victim"));
        t.num("cgroup_id", v.victim_cgroup_id);
        t.str("comm", &v.victim_comm);
        self.other(&mut t);
        t.num("pid", v.victim_pid);
        t.num("tgid", v.victim_tgid);
        t.num("uid", v.victim_uid);
        t.close();
    }

    fn capability(&mut self, o: &mut Obj, c: &event::Capability) {
        o.num("cap", c.cap);
        o.str("capability", &capability_name(c.cap));
        self.cgroup_id(o);
        self.container(o);
        o.num("count", c.count);
        self.explanation(o);
        self.host(o);
        self.process(o);
        o.num("ret", c.ret);
        self.schema(o);
        o.num("span_ns", c.span_ns);
        self.ts(o);
        self.ty(o);
        o.str("verdict", verdict(c));
    }

    fn cgroup(&mut self, o: &mut Obj, c: &event::Cgroup) {
        let mut g = Obj::open(o.key("cgroup"));
        self.other(&mut g);
        g.num("hierarchy", c.root);
        g.num("id", c.id);
        g.num("level", c.level);
        g.str("path", &c.path);
        g.close();
        self.cgroup_id(o);
        self.container(o);
        self.explanation(o);
        self.host(o);
        if let Some(pid) = c.pid {
            o.num("pid", pid);
        }
        self.process(o);
        self.schema(o);
        self.ts(o);
        self.ty(o);
    }
}

/// `process`: the task that was current.
fn process(out: &mut Vec<u8>, t: &Task, exe: Option<&str>) {
    let mut o = Obj::open(out);
    o.str("comm", &t.comm);
    if let Some(exe) = exe {
        o.str("exe", exe);
    }
    o.num("pid", t.pid);
    o.num("ppid", t.ppid);
    o.num("tid", t.tid);
    o.num("uid", t.uid);
    o.close();
}

/// A `container` member's value: `null` for the host (or no attribution), the metadata of a
/// resolved container, `{"id":null,"resolved":false}` for a cgroup not placed.
fn container(out: &mut Vec<u8>, a: Option<&Attribution>, s: &mut Scratch) {
    match a {
        None | Some(Attribution::Host) => out.extend_from_slice(b"null"),
        Some(Attribution::Unknown) => out.extend_from_slice(br#"{"id":null,"resolved":false}"#),
        Some(Attribution::Container(c)) => resolved(out, c, s),
    }
}

/// `record::ContainerInfo::from(c)`, written.
fn resolved(out: &mut Vec<u8>, c: &Container, s: &mut Scratch) {
    let mut o = Obj::open(out);
    if let Some(p) = &c.compose {
        let mut x = Obj::open(o.key("compose"));
        x.str("project", &p.project);
        x.opt_str("service", p.service.as_deref());
        x.close();
    }
    o.str("id", &c.id);
    o.opt_str("image", c.image.as_deref());
    if let Some(pid) = c.init_pid {
        o.num("init_pid", pid);
    }
    labels(o.key("labels"), &c.labels);
    o.opt_str("name", c.name.as_deref());
    o.opt_str("namespace", c.namespace.as_deref());
    o.value("pod", &c.pod, s);
    o.bool("resolved", true);
    if let Some(n) = c.restart_count {
        o.num("restart_count", n);
    }
    o.value("runtime", &c.runtime, s);
    o.close();
}

/// A map of strings: its keys are in order already.
fn labels(out: &mut Vec<u8>, labels: &BTreeMap<String, String>) {
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_str(out, k);
        out.push(b':');
        put_str(out, v);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::{collection, option, prelude::*, strategy::ValueTree};

    use super::*;
    use crate::{
        clock::BootClock,
        container::{PodInfo, Runtime},
        event::CgroupOp,
        resolve::Compose,
        sink::json,
    };

    /// Any text, or the characters escaping is about: controls, quotes, backslashes, DEL,
    /// C1, bidirectional and zero-width characters, separators.
    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,10}|[\\x00-\\x{a0}\\x{200b}-\\x{206f}\\x{180e}\\x{feff}\"\\\\]{0,10}|[a-z0-9]{1,8}"
    }

    fn container() -> impl Strategy<Value = Container> {
        let ids = prop_oneof!["[0-9a-f]{64}", text()];
        let runtimes = prop_oneof![
            Just(Runtime::Docker),
            Just(Runtime::Containerd),
            Just(Runtime::Runc),
            Just(Runtime::CriO),
            Just(Runtime::Podman)
        ];
        let pod = (text(), text(), option::of(text()), option::of(text())).prop_map(
            |(name, namespace, container, uid)| PodInfo {
                name,
                namespace,
                container,
                uid,
            },
        );
        let compose = (text(), option::of(text()))
            .prop_map(|(project, service)| Compose { project, service });
        (
            (ids, option::of(text()), runtimes, option::of(text())),
            (
                option::of(text()),
                collection::btree_map(text(), text(), 0..4),
            ),
            (
                option::of(pod),
                option::of(any::<u32>()),
                option::of(any::<u64>()),
            ),
            option::of(compose),
        )
            .prop_map(
                |((id, name, runtime, image), (namespace, labels), rest, compose)| {
                    let mut c = Container::named(&id, "", runtime);
                    (c.name, c.image, c.namespace, c.labels) = (name, image, namespace, labels);
                    (c.pod, c.init_pid, c.restart_count) = rest;
                    c.compose = compose;
                    c
                },
            )
    }

    fn attribution() -> impl Strategy<Value = Attribution> {
        prop_oneof![
            Just(Attribution::Host),
            Just(Attribution::Unknown),
            container().prop_map(|c| Attribution::Container(Arc::new(c))),
        ]
    }

    fn task() -> impl Strategy<Value = Task> {
        (any::<(u32, u32, Option<u32>, u32, u64)>(), text()).prop_map(
            |((tid, pid, ppid, uid, cgroup_id), comm)| Task {
                tid,
                pid,
                ppid,
                uid,
                cgroup_id,
                comm,
            },
        )
    }

    fn signal() -> impl Strategy<Value = Body> {
        let numbers = (
            any::<i32>(),
            -2..70i32,
            any::<i32>(),
            any::<i32>(),
            -1..6i32,
        );
        let target = (any::<(Option<u32>, Option<u64>, u32, bool)>(), text());
        let fold = (1..4u64, any::<u64>());
        (numbers, target, fold).prop_map(
            |(
                (errno, sig, code, code2, result),
                ((tgid, cgroup_id, pid, group), comm),
                (count, span_ns),
            )| {
                Body::Signal(event::Signal {
                    sig,
                    target_tgid: tgid,
                    target_cgroup_id: cgroup_id,
                    errno,
                    code: if sig % 2 == 0 { code } else { code2 },
                    target_pid: pid,
                    target_comm: comm,
                    group,
                    result,
                    fold: event::Fold {
                        count,
                        span_ns,
                        ..event::Fold::ONE
                    },
                })
            },
        )
    }

    fn oom_victim() -> impl Strategy<Value = Body> {
        let sizes = any::<(u64, u64, u64, u64, u64, i16)>();
        let victim = (any::<(u32, u32, Option<u32>, Option<u64>)>(), text());
        (sizes, victim).prop_map(|((vm, anon, file, shmem, pgtables, adj), (v, comm))| {
            Body::OomVictim(Box::new(event::OomVictim {
                victim_pid: v.0,
                victim_comm: comm,
                victim_uid: v.1,
                total_vm_kb: vm,
                anon_rss_kb: anon,
                file_rss_kb: file,
                shmem_rss_kb: shmem,
                pgtables_kb: pgtables,
                oom_score_adj: adj,
                victim_tgid: v.2,
                victim_cgroup_id: v.3,
                victim_memcg: None,
                oom_context: None,
            }))
        })
    }

    fn body() -> impl Strategy<Value = Body> {
        let ops = prop_oneof![
            Just(CgroupOp::Mkdir),
            Just(CgroupOp::Rmdir),
            Just(CgroupOp::Attach)
        ];
        prop_oneof![
            (any::<u32>(), text())
                .prop_map(|(old_pid, filename)| Body::Exec(event::Exec { old_pid, filename })),
            any::<(Option<u32>, Option<bool>)>()
                .prop_map(|(status, group_dead)| Body::Exit(event::Exit { status, group_dead })),
            (any::<u32>(), text()).prop_map(|(child_pid, child_comm)| {
                Body::Fork(event::Fork {
                    child_pid,
                    child_comm,
                })
            }),
            signal(),
            oom_victim(),
            (
                0..48u32,
                prop_oneof![Just(0), any::<i32>()],
                any::<(u64, u64)>()
            )
                .prop_map(|(cap, ret, (count, span_ns))| {
                    Body::Capability(event::Capability {
                        cap,
                        ret,
                        cpu: 0,
                        generation: 0,
                        total: count,
                        count,
                        span_ns: span_ns % 400_000_000_000,
                    })
                }),
            (ops, any::<(i32, i32, u64, Option<u32>)>(), text()).prop_map(
                |(op, (root, level, id, pid), path)| {
                    Body::Cgroup(event::Cgroup {
                        op,
                        root,
                        level,
                        id,
                        pid,
                        path,
                    })
                }
            ),
        ]
    }

    fn event() -> impl Strategy<Value = Event> {
        (any::<u64>(), task(), body()).prop_map(|(boot_ns, task, body)| Event {
            kind: 0,
            boot_ns,
            task,
            body,
        })
    }

    /// The line of the record [`json::event_record`] builds, through `serde_json::Value`.
    fn via_record(ev: &Event, attrs: &Attrs, ctx: &Context) -> String {
        json::line(&json::event(ev, attrs, ctx))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Every event type, any field, any attribution of the process and of the other
        /// party, hostile strings: the bytes of the record's line.
        #[test]
        fn an_event_line_is_the_line_of_its_record(
            ev in event(),
            process in attribution(),
            other in option::of(attribution()),
            host in text(),
            at_boot in prop_oneof![Just(1_795_977_181_000_000_000i128), any::<i64>().prop_map(i128::from)],
        ) {
            let ctx = Context { host, clock: BootClock::fixed(at_boot) };
            let attrs = Attrs { process, other };
            let want = via_record(&ev, &attrs, &ctx);
            prop_assert_eq!(json::event_line(&ev, &attrs, &ctx), want.clone());
            let mut out = b"before\n".to_vec();
            json::write_event(&ev, &attrs, &ctx, &mut out);
            prop_assert_eq!(&out[7..], want.as_bytes(), "appended");
        }
    }

    /// Each type with each kind of attribution, at least once whatever proptest draws.
    #[test]
    fn every_event_type_with_every_attribution() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut c = Container::named(&"6f".repeat(32), "web", Runtime::Docker);
        c.labels.insert("a\u{202e}".into(), "\"x\"".into());
        c.init_pid = Some(7);
        let attributions = [
            Attribution::Host,
            Attribution::Unknown,
            Attribution::Container(Arc::new(c)),
        ];
        let ctx = Context {
            host: "h".into(),
            clock: BootClock::fixed(1_795_977_181_000_000_000),
        };
        let mut types = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let ev = event().new_tree(&mut runner).unwrap().current();
            for a in &attributions {
                let attrs = Attrs {
                    process: a.clone(),
                    other: Some(a.clone()),
                };
                assert_eq!(
                    json::event_line(&ev, &attrs, &ctx),
                    via_record(&ev, &attrs, &ctx)
                );
            }
            types.insert(type_name(&ev));
        }
        assert_eq!(types.len(), 9, "{types:?}");
    }
}
