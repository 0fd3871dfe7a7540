//! Compare two containers: the fields that differ, as rows and as a side-by-side table.
//!
//! Pure: the caller gathers each [`ContainerView`] (capabilities from
//! [`read_proc_caps`](super::read_proc_caps) of the container's init, namespaces from
//! [`compare`](super::compare), limits from the cgroup files).

use std::fmt::Write as _;

use serde::Serialize;

use super::{
    caps::{describe_diff, CapSet, ProcCaps},
    namespaces::{NsShare, NsType},
};
use crate::{
    cgroup::Reading,
    sink::escape::terminal,
    units::{bytes, cpus_with_noun},
};

/// What `inspect` knows about one container, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerView {
    /// Name shown in column headers and summaries (e.g. the container name); untrusted.
    pub label: String,
    /// Capabilities of the container's init process.
    pub caps: ProcCaps,
    /// Its namespaces, from [`compare`](super::compare).
    pub namespaces: Vec<NsShare>,
    /// Memory limit in bytes (JSON: a number, or `null` for no limit or unknown).
    pub memory_limit: Reading<u64>,
    /// CPU quota in CPUs (quota / period).
    pub cpu_quota_cpus: Reading<f64>,
    /// Maximum number of tasks.
    pub pids_limit: Reading<u64>,
}

/// One field that differs between container A and container B.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffRow {
    /// What differs, e.g. `effective capabilities`, `pid namespace`, `memory limit`.
    pub field: String,
    /// A's value.
    pub a: String,
    /// B's value.
    pub b: String,
}

/// The fields in which `a` and `b` differ, in a fixed order: capability sets, no_new_privs,
/// seccomp, namespaces, limits. The label is not compared.
///
/// A capability row shows each side's count and what it has that the other lacks
/// (`16 caps: +CAP_NET_ADMIN, +CAP_SYS_ADMIN` vs `14 caps`). A namespace row appears when the
/// two are in different namespaces of that type *and* share them differently (`host` vs `own`,
/// say): two containers that each have their own namespace do not differ.
pub fn diff(a: &ContainerView, b: &ContainerView) -> Vec<DiffRow> {
    let mut rows = Vec::new();
    let mut push = |field: &str, va: String, vb: String| {
        if va != vb {
            rows.push(DiffRow {
                field: field.to_owned(),
                a: va,
                b: vb,
            });
        }
    };
    for ((set, sa), (_, sb)) in a.caps.sets().into_iter().zip(b.caps.sets()) {
        if sa != sb {
            push(
                &format!("{set} capabilities"),
                cap_side(sa, sb),
                cap_side(sb, sa),
            );
        }
    }
    push(
        "no_new_privs",
        opt_bool(a.caps.no_new_privs),
        opt_bool(b.caps.no_new_privs),
    );
    push("seccomp", seccomp(&a.caps), seccomp(&b.caps));
    for t in NsType::ALL {
        let na = a.namespaces.iter().find(|s| s.ns_type == t);
        let nb = b.namespaces.iter().find(|s| s.ns_type == t);
        let field = format!("{t} namespace");
        match (na, nb) {
            (Some(x), Some(y)) if x.inode == y.inode => {}
            (Some(x), Some(y)) if x.summary() == y.summary() => {}
            (None, None) => {}
            (x, y) => push(&field, ns_value(x), ns_value(y)),
        }
    }
    // A limit that could not be read differs from anything, even from another unknown one.
    let mut limit = |field: &str, va: String, vb: String, unknown: bool| {
        if unknown || va != vb {
            rows.push(DiffRow {
                field: field.to_owned(),
                a: va,
                b: vb,
            });
        }
    };
    limit(
        "memory limit",
        a.memory_limit.show_limit(|&n| bytes(n)),
        b.memory_limit.show_limit(|&n| bytes(n)),
        a.memory_limit.unknown().is_some() || b.memory_limit.unknown().is_some(),
    );
    limit(
        "cpu quota",
        a.cpu_quota_cpus.show_limit(|&c| cpus_with_noun(c)),
        b.cpu_quota_cpus.show_limit(|&c| cpus_with_noun(c)),
        a.cpu_quota_cpus.unknown().is_some() || b.cpu_quota_cpus.unknown().is_some(),
    );
    limit(
        "pids limit",
        a.pids_limit.show_limit(u64::to_string),
        b.pids_limit.show_limit(u64::to_string),
        a.pids_limit.unknown().is_some() || b.pids_limit.unknown().is_some(),
    );
    rows
}

/// One sentence per distinct capability change, naming what A adds and drops relative to B;
/// sets that changed the same way share a sentence:
/// `a relative to b, effective, permitted and bounding capabilities: adds CAP_NET_ADMIN,
/// CAP_SYS_ADMIN; drops nothing`. Labels are escaped for the terminal.
pub fn cap_summary(a: &ContainerView, b: &ContainerView) -> Vec<String> {
    // (description of the change, names of the sets that changed that way)
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for ((set, sa), (_, sb)) in a.caps.sets().into_iter().zip(b.caps.sets()) {
        if sa == sb {
            continue;
        }
        let change = describe_diff(sa, sb);
        match groups.iter_mut().find(|(c, _)| *c == change) {
            Some((_, sets)) => sets.push(set),
            None => groups.push((change, vec![set])),
        }
    }
    groups
        .into_iter()
        .map(|(change, sets)| {
            format!(
                "{} relative to {}, {} capabilities: {change}",
                terminal(&a.label),
                terminal(&b.label),
                join_and(&sets)
            )
        })
        .collect()
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Merge consecutive capability rows with the same values:
/// `effective, permitted, bounding capabilities`.
fn merge_cap_rows(rows: Vec<DiffRow>) -> Vec<DiffRow> {
    let mut out: Vec<DiffRow> = Vec::new();
    for r in rows {
        if let Some(prev) = out.last_mut() {
            if prev.field.ends_with(" capabilities")
                && r.field.ends_with(" capabilities")
                && prev.a == r.a
                && prev.b == r.b
            {
                let head = prev.field.trim_end_matches(" capabilities");
                let this = r.field.trim_end_matches(" capabilities");
                prev.field = format!("{head}, {this} capabilities");
                continue;
            }
        }
        out.push(r);
    }
    out
}

/// A human side-by-side table of [`diff`] (capability sets that differ the same way share a
/// row), followed by [`cap_summary`]; `no differences` when there are none. Values are
/// escaped for the terminal; long capability lists wrap.
pub fn render_side_by_side(a: &ContainerView, b: &ContainerView) -> String {
    let rows = merge_cap_rows(diff(a, b));
    if rows.is_empty() {
        return format!(
            "{} and {}: no differences\n",
            terminal(&a.label),
            terminal(&b.label)
        );
    }
    const WRAP: usize = 48;
    let header = (
        "field".to_owned(),
        vec![format!("A: {}", terminal(&a.label))],
        vec![format!("B: {}", terminal(&b.label))],
    );
    let cells: Vec<(String, Vec<String>, Vec<String>)> = std::iter::once(header)
        .chain(rows.iter().map(|r| {
            (
                terminal(&r.field),
                wrap(&terminal(&r.a), WRAP),
                wrap(&terminal(&r.b), WRAP),
            )
        }))
        .collect();
    let width = |s: &str| s.chars().count();
    let wf = cells.iter().map(|c| width(&c.0)).max().unwrap_or(0);
    let wa = cells
        .iter()
        .flat_map(|c| c.1.iter().map(|l| width(l)))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (field, la, lb) in &cells {
        let lines = la.len().max(lb.len()).max(1);
        for i in 0..lines {
            let f = if i == 0 { field.as_str() } else { "" };
            let va = la.get(i).map_or("", String::as_str);
            let vb = lb.get(i).map_or("", String::as_str);
            let line = format!("{f:<wf$}  {va:<wa$}  {vb}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    let summary = cap_summary(a, b);
    if !summary.is_empty() {
        out.push('\n');
        for s in summary {
            let _ = writeln!(out, "{s}");
        }
    }
    out
}

/// `16 caps: +CAP_NET_ADMIN, +CAP_SYS_ADMIN` (what `mine` has that `other` lacks).
fn cap_side(mine: CapSet, other: CapSet) -> String {
    let n = mine.len();
    let noun = if n == 1 { "cap" } else { "caps" };
    let extra = mine.difference(other);
    if extra.is_empty() {
        format!("{n} {noun}")
    } else {
        let names: Vec<String> = extra.names().iter().map(|s| format!("+{s}")).collect();
        format!("{n} {noun}: {}", names.join(", "))
    }
}

fn opt_bool(v: Option<bool>) -> String {
    match v {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => "unknown".to_owned(),
    }
}

fn seccomp(c: &ProcCaps) -> String {
    match (c.seccomp, c.seccomp_filters) {
        (None, _) => "unknown".to_owned(),
        (Some(m), Some(n)) if n > 0 => {
            format!("{m} ({n} filter{})", if n == 1 { "" } else { "s" })
        }
        (Some(m), _) => m.to_string(),
    }
}

fn ns_value(s: Option<&NsShare>) -> String {
    s.map_or_else(
        || "unknown".to_owned(),
        |s| format!("{} [{}]", s.summary(), s.inode),
    )
}

/// Split `s` into lines of at most `width` characters at `", "` boundaries (a single longer
/// item stays whole). Also `ctrace inspect`'s long capability lists.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let parts: Vec<&str> = s.split(", ").collect();
    for (i, part) in parts.iter().enumerate() {
        let piece = if i + 1 < parts.len() {
            format!("{part},")
        } else {
            (*part).to_owned()
        };
        if !cur.is_empty() && cur.chars().count() + 1 + piece.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&piece);
    }
    lines.push(cur);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::caps::{parse_status, SeccompMode, OCI_DEFAULT_CAPS};

    const CAP_ADD: &str =
        include_str!("../../tests/fixtures/inspect/status-cap-add-sys_admin-net_admin.txt");
    const CAP_DROP_ALL: &str = include_str!("../../tests/fixtures/inspect/status-cap-drop-all.txt");
    const DEFAULT_CHILD: &str =
        include_str!("../../tests/fixtures/inspect/status-default-child.txt");

    fn share(t: NsType, inode: u64, host: bool) -> NsShare {
        NsShare {
            ns_type: t,
            inode,
            shared_with_host: host,
            shared_with: vec![],
        }
    }

    fn view(label: &str, status: &str) -> ContainerView {
        ContainerView {
            label: label.to_owned(),
            caps: parse_status(status).caps.unwrap(),
            namespaces: vec![
                share(NsType::Pid, 4026532253, false),
                share(NsType::Net, 4026532254, false),
                share(NsType::User, 4026531837, true),
            ],
            memory_limit: Reading::Unlimited,
            cpu_quota_cpus: Reading::Unlimited,
            pids_limit: Reading::Unlimited,
        }
    }

    #[test]
    fn privileged_vs_default_names_added_caps() {
        let a = view("priv", CAP_ADD);
        let b = view("default", DEFAULT_CHILD);
        let rows = diff(&a, &b);
        let fields: Vec<&str> = rows.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "effective capabilities",
                "permitted capabilities",
                "bounding capabilities"
            ]
        );
        assert_eq!(rows[0].a, "16 caps: +CAP_NET_ADMIN, +CAP_SYS_ADMIN");
        assert_eq!(rows[0].b, "14 caps");
        let summary = cap_summary(&a, &b);
        assert_eq!(
            summary,
            [
                "priv relative to default, effective, permitted and bounding capabilities: \
              adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing"
            ]
        );
        let text = render_side_by_side(&a, &b);
        assert_eq!(
            text,
            "field                                        A: priv                                  B: default\n\
             effective, permitted, bounding capabilities  16 caps: +CAP_NET_ADMIN, +CAP_SYS_ADMIN  14 caps\n\
             \n\
             priv relative to default, effective, permitted and bounding capabilities: \
             adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing\n"
        );
        assert!(text.contains("adds CAP_NET_ADMIN, CAP_SYS_ADMIN"), "{text}");
        assert!(text.starts_with("field"), "{text}");
    }

    #[test]
    fn privileged_vs_drop_all() {
        let mut a = view("priv", CAP_ADD);
        let mut b = view("dropall", CAP_DROP_ALL);
        a.namespaces[0] = share(NsType::Pid, 4026531836, true);
        b.memory_limit = Reading::Value(64 << 20);
        b.cpu_quota_cpus = Reading::Value(0.5);
        b.pids_limit = Reading::Value(100);
        b.caps.no_new_privs = Some(true);
        b.caps.seccomp = Some(SeccompMode::Disabled);
        b.caps.seccomp_filters = Some(0);
        let rows = diff(&a, &b);
        let get = |f: &str| rows.iter().find(|r| r.field == f).unwrap().clone();
        assert_eq!(get("effective capabilities").b, "0 caps");
        assert!(get("effective capabilities")
            .a
            .starts_with("16 caps: +CAP_CHOWN, "));
        assert_eq!(get("pid namespace").a, "host [4026531836]");
        assert_eq!(get("pid namespace").b, "own [4026532253]");
        assert_eq!(get("no_new_privs").a, "no");
        assert_eq!(get("no_new_privs").b, "yes");
        assert_eq!(get("seccomp").a, "filter (1 filter)");
        assert_eq!(get("seccomp").b, "disabled");
        assert_eq!(get("memory limit").a, "unlimited");
        assert_eq!(get("memory limit").b, "64 MiB");
        assert_eq!(get("cpu quota").b, "0.5 CPU");
        assert_eq!(get("pids limit").b, "100");
        assert!(rows.iter().all(|r| r.field != "net namespace"));
        let text = render_side_by_side(&a, &b);
        assert!(
            text.contains(
                "priv relative to dropall, effective, permitted and bounding capabilities: \
                 adds CAP_CHOWN, \
                 CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID, \
                 CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW, \
                 CAP_SYS_CHROOT, CAP_SYS_ADMIN, CAP_MKNOD, CAP_AUDIT_WRITE, CAP_SETFCAP; \
                 drops nothing"
            ),
            "{text}"
        );
        // Wrapped cells stay within the wrap width.
        for line in text.lines().take_while(|l| !l.is_empty()) {
            assert!(line.chars().count() < 140, "{line}");
        }
    }

    #[test]
    fn identical_and_shared_namespaces() {
        let a = view("a", DEFAULT_CHILD);
        let mut b = view("b", DEFAULT_CHILD);
        assert!(diff(&a, &b).is_empty());
        assert_eq!(render_side_by_side(&a, &b), "a and b: no differences\n");
        // Each has its own pid namespace: not a difference.
        b.namespaces[0].inode = 1;
        assert!(diff(&a, &b).is_empty());
        // A namespace known on one side only.
        b.namespaces.pop();
        let rows = diff(&a, &b);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].field, "user namespace");
        assert_eq!(rows[0].b, "unknown");
        assert_eq!(cap_summary(&a, &b), Vec::<String>::new());
        let _ = OCI_DEFAULT_CAPS;
    }

    #[test]
    fn unknown_limits_always_differ() {
        let a = view("a", DEFAULT_CHILD);
        let mut b = view("b", DEFAULT_CHILD);
        let why = "cannot read /cg/b/memory.max: permission denied";
        b.memory_limit = Reading::Unknown(why.to_owned());
        let rows = diff(&a, &b);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].field, "memory limit");
        assert_eq!(rows[0].a, "unlimited");
        assert_eq!(rows[0].b, format!("unknown ({why})"));
        // Unknown on both sides, for the same reason: still not "no difference".
        let mut a = a;
        a.memory_limit = b.memory_limit.clone();
        assert_eq!(diff(&a, &b).len(), 1);
        assert!(render_side_by_side(&a, &b).contains("memory limit"));
        // A controller that is off and a file that says `max`: both no limit.
        a.memory_limit = Reading::ControllerOff;
        b.memory_limit = Reading::Unlimited;
        b.pids_limit = Reading::ControllerOff;
        assert!(diff(&a, &b).is_empty());
        // The JSON of a view: numbers or null.
        b.cpu_quota_cpus = Reading::Value(0.5);
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["cpu_quota_cpus"], 0.5);
        assert!(v["memory_limit"].is_null() && v["pids_limit"].is_null());
    }

    #[test]
    fn formatting() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(1536 << 20), "1.5 GiB");
        assert_eq!(bytes(u64::MAX), "16 EiB");
        assert_eq!(cpus_with_noun(0.01), "0.01 CPU");
        assert_eq!(cpus_with_noun(1.0), "1 CPU");
        assert_eq!(cpus_with_noun(2.0), "2 CPUs");
        assert_eq!(cpus_with_noun(f64::NAN), "0 CPU");
        assert_eq!(wrap("a, b, c", 3), ["a,", "b,", "c"]);
        assert_eq!(wrap("a, b, c", 4), ["a,", "b, c"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(join_and(&["a"]), "a");
        assert_eq!(join_and(&["a", "b", "c"]), "a, b and c");
        assert_eq!(wrap("long-item, x", 3), ["long-item,", "x"]);
    }

    #[test]
    fn labels_are_escaped() {
        let a = view("evil\u{1b}[31m", CAP_ADD);
        let b = view("b", CAP_DROP_ALL);
        let text = render_side_by_side(&a, &b);
        assert!(!text.contains('\u{1b}'));
        assert!(text.contains("A: evil\\x1b[31m"));
    }
}
