//! One human line per event. Every string from the kernel is escaped for the terminal.

use super::{escape::terminal, json, Context, Loss};
use crate::{
    clock::time_of_day_us,
    event::{Body, Event},
};
use crate::{
    explain::Incident,
    resolve::{Attribution, Attrs, Update},
};

/// `18:40:01.123456 exec          web              pid=1234    ppid=1200    cgroup=4026   comm=sleep            /bin/sleep`
pub fn event(ev: &Event, attrs: &Attrs, ctx: &Context) -> String {
    let t = &ev.task;
    let other = |id: Option<u64>| {
        attrs
            .other
            .as_ref()
            .map(|a| format!(" [{}]", terminal(&json::label(a, id.unwrap_or(0)))))
            .unwrap_or_default()
    };
    let ppid = t.ppid.map_or_else(|| "?".to_owned(), |p| p.to_string());
    let detail = match &ev.body {
        Body::Exec(e) => terminal(&e.filename),
        Body::Exit(e) => match (e.signal(), e.code()) {
            (Some(s), Some(c)) => {
                format!("exit_code={c} ({})", crate::names::signal_name(s.into()))
            }
            (None, Some(c)) => format!("exit_code={c}"),
            _ => "exit_code=?".to_owned(),
        },
        Body::Fork(f) => format!("child={} {}", f.child_pid, terminal(&f.child_comm)),
        Body::Signal(s) => format!(
            "{} -> pid={} comm={}{} ({}){}",
            crate::names::signal_name(s.sig.into()),
            s.target_pid,
            terminal(&s.target_comm),
            other(s.target_cgroup_id),
            json::signal_result(s.result),
            json::repeat_note(s.fold.count, s.fold.span_ns)
        ),
        Body::OomVictim(o) => format!(
            "victim pid={} comm={}{} anon_rss={}KiB total_vm={}KiB",
            o.victim_pid,
            terminal(&o.victim_comm),
            other(o.victim_cgroup_id),
            o.anon_rss_kb,
            o.total_vm_kb
        ),
        Body::Capability(c) => format!(
            "{} {} x{}{}",
            crate::names::capability_name(c.cap),
            if c.allowed() { "allowed" } else { "DENIED" },
            c.count,
            if c.count > 1 && c.span_ns > 0 {
                format!(" in {}", crate::units::short_duration(c.span_ns))
            } else {
                String::new()
            }
        ),
        Body::Cgroup(c) => format!("id={} {}", c.id, terminal(&c.path)),
    };
    format!(
        "{} {:<13} {:<16} pid={:<7} ppid={:<7} cgroup={:<6} comm={:<16} {}",
        time_of_day_us(ctx.clock.unix_ns(ev.boot_ns)),
        json::type_name(ev),
        where_(&attrs.process, t.cgroup_id),
        t.pid,
        ppid,
        t.cgroup_id,
        terminal(&t.comm),
        detail
    )
}

/// The container column: its name, `host`, or `cgroup:<id>` when unplaced.
fn where_(a: &Attribution, cgroup_id: u64) -> String {
    match a {
        Attribution::Host => "host".to_owned(),
        Attribution::Container(c) => terminal(c.display()),
        Attribution::Unknown => format!("cgroup:{cgroup_id}"),
    }
}

/// A container became known or was named.
pub fn update(u: &Update, ctx: &Context) -> String {
    format!(
        "{} {:<13} {:<16} container {} is {} ({}){}",
        time_of_day_us(ctx.clock.unix_ns(u.boot_ns)),
        "container",
        terminal(u.container.display()),
        terminal(crate::container::short_id(&u.container.id)),
        terminal(u.container.display()),
        u.container.runtime,
        if u.container.gone { ", gone" } else { "" }
    )
}

/// An incident: the explanation, with the container in the column.
pub fn incident(i: &Incident, ctx: &Context) -> String {
    let who = i
        .container()
        .map_or_else(|| "host".to_owned(), |c| terminal(c.display()));
    format!(
        "{} {:<13} {:<16} {}",
        time_of_day_us(ctx.clock.unix_ns(i.boot_ns())),
        i.type_name().to_uppercase(),
        who,
        terminal(&i.explain())
    )
}

pub fn loss(l: &Loss, ctx: &Context, boot_ns: u64) -> String {
    format!(
        "{} {:<13} {} {} {} lost ({}; {} in total)",
        time_of_day_us(ctx.clock.unix_ns(boot_ns)),
        "LOST",
        l.count,
        l.kind,
        l.site.unit(),
        l.site.as_str(),
        l.total
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clock::BootClock, event as ev};

    #[test]
    fn exec_line() {
        let ctx = Context {
            host: "h".into(),
            clock: BootClock::fixed(1_795_977_181_000_000_000),
        };
        let e = ev::decode(&ev::tests::exec_record("/bin/\u{1b}]0;pwned\u{7}")).unwrap();
        let line = event(&e, &Attrs::HOST, &ctx);
        assert_eq!(
            line,
            "18:33:02.000000 exec          host             pid=100     ppid=1       \
             cgroup=4242   comm=sleep            /bin/\\x1b]0;pwned\\x07"
        );
    }

    fn web() -> std::sync::Arc<crate::resolve::Container> {
        std::sync::Arc::new(crate::resolve::Container {
            init_pid: Some(1000),
            ..crate::resolve::Container::named(
                &"a".repeat(64),
                "web",
                crate::container::Runtime::Docker,
            )
        })
    }

    /// The human line of each incident type, exactly.
    #[test]
    fn incident_lines() {
        use crate::explain::{ExitInfo, KillIncident, Party, StopReason};
        let ctx = Context {
            host: "h".into(),
            clock: BootClock::fixed(1_795_977_181_000_000_000),
        };
        let c = web();
        let target = Party {
            pid: 1000,
            comm: "nginx".into(),
            attribution: Attribution::Container(c.clone()),
            cgroup_id: Some(500),
        };
        let sender = Party {
            pid: 812,
            comm: "bash".into(),
            attribution: Attribution::Host,
            cgroup_id: Some(1),
        };
        let exit = ExitInfo {
            code: Some(137),
            signal: Some(9),
        };
        let kill = Incident::Kill(KillIncident {
            boot_ns: 0,
            signo: 9,
            from_kernel: false,
            sender: sender.clone(),
            target: target.clone(),
            exit: Some(exit),
            container_stopped: true,
        });
        assert_eq!(
            incident(&kill, &ctx),
            "18:33:01.000000 KILL          web              nginx (pid 1000 in web, docker) killed by \
             SIGKILL from bash (pid 812, host); web exited with 137 (SIGKILL)"
        );
        let start = Incident::ContainerStart {
            boot_ns: 0,
            container: c.clone(),
            init: target,
            filename: "/usr/sbin/nginx".into(),
        };
        assert_eq!(
            incident(&start, &ctx),
            "18:33:01.000000 CONTAINER_START web              container web (docker) started: \
             /usr/sbin/nginx (pid 1000)"
        );
        let stop = Incident::ContainerStop {
            boot_ns: 0,
            container: c.clone(),
            exit,
            reason: StopReason::Killed {
                signo: 9,
                by: sender,
            },
        };
        let oom = Incident::Oom(Box::new(crate::explain::OomIncident {
            tasks: None,
            group: Vec::new(),
            boot_ns: 0,
            victim: Party {
                pid: 4242,
                comm: "tail".into(),
                attribution: Attribution::Container(c.clone()),
                cgroup_id: Some(500),
            },
            victim_tgid: 4242,
            details: crate::event::OomVictim {
                victim_pid: 4242,
                victim_comm: "tail".into(),
                victim_uid: 0,
                total_vm_kb: 104_000,
                anon_rss_kb: 102_000,
                file_rss_kb: 400,
                shmem_rss_kb: 0,
                pgtables_kb: 250,
                oom_score_adj: 0,
                victim_tgid: Some(4242),
                victim_cgroup_id: Some(500),
                victim_memcg: None,
                oom_context: None,
            },
            trigger: Party {
                pid: 4242,
                comm: "tail".into(),
                attribution: Attribution::Container(c.clone()),
                cgroup_id: Some(500),
            },
            memory: Some(crate::cgroup::MemoryStats {
                limit_bytes: Some(100 << 20),
                usage_bytes: Some(100 << 20),
                peak_bytes: Some(100 << 20),
                failcnt: Some(12),
                ..crate::cgroup::MemoryStats::default()
            }),
            scope: crate::explain::OomScope::ContainerLimit,
            exit: Some(exit),
            container_stopped: true,
        }));
        assert_eq!(
            incident(&oom, &ctx),
            "18:33:01.000000 OOM_KILL      web              tail (pid 4242 in web, docker) was \
             OOM-killed: web hit its memory limit of 100 MiB (usage 100 MiB, peak 100 MiB); victim \
             RSS 100 MiB; triggered by its own allocation; web stopped"
        );
        assert_eq!(
            incident(&stop, &ctx),
            "18:33:01.000000 CONTAINER_STOP web              container web (docker) stopped with 137 \
             (SIGKILL): SIGKILL from bash (pid 812, host)"
        );
    }
}
