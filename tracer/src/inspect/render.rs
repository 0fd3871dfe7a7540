//! The human report of `ctrace inspect` (pure). Every string from a container or the kernel
//! is escaped for the terminal.

use std::fmt::Write as _;

use super::{
    caps::CapSet,
    namespaces::{HostNsSource, NsType},
    proctree::render_tree,
    report::{Change, Comparison, Report, SetView},
};
use crate::{
    clock::{parse_rfc3339, utc_seconds},
    container::short_id,
    sink::escape::terminal,
};

/// Width of wrapped values.
pub(super) const WIDTH: usize = 100;

/// `key  value` lines, keys padded to one width.
fn kv(out: &mut String, rows: &[(String, String)]) {
    let w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in rows {
        let _ = writeln!(out, "{}", format!("  {k:<w$}  {v}").trim_end());
    }
}

/// A row whose value is a `", "`-separated list, wrapped onto continuation rows.
fn push_wrapped(rows: &mut Vec<(String, String)>, key: &str, value: &str) {
    for (i, line) in super::diff::wrap(value, WIDTH - 16).into_iter().enumerate() {
        rows.push((
            if i == 0 {
                key.to_owned()
            } else {
                String::new()
            },
            line,
        ));
    }
}

fn opt(s: Option<&str>) -> String {
    terminal(s.unwrap_or("-"))
}

fn set_line(set: SetView, same_as: Option<(&str, SetView)>) -> String {
    match same_as {
        Some((name, other)) if other == set => format!("same as {name}"),
        _ if set.names.is_empty() => "none".to_owned(),
        _ => format!("{}: {}", set.names.len(), set.names.list()),
    }
}

fn comparison_rows(
    rows: &mut Vec<(String, String)>,
    key: &str,
    c: &Comparison,
    show: impl Fn(&Change, CapSet) -> String,
    (eff, bnd): (CapSet, CapSet),
) {
    let (e, b) = (show(&c.effective, eff), show(&c.bounding, bnd));
    if e == b {
        push_wrapped(rows, key, &e);
    } else {
        push_wrapped(rows, key, &format!("effective: {e}"));
        push_wrapped(rows, "", &format!("bounding: {b}"));
    }
}

/// `adds nothing; drops 25 of the host's 41`: the host's sets are long, the names are in
/// `--json`.
pub(super) fn host_change(ch: &Change, actual: CapSet) -> String {
    let adds = if ch.added.is_empty() {
        "adds nothing".to_owned()
    } else {
        format!("adds {}", ch.added.list())
    };
    let host = actual.union(ch.dropped).difference(ch.added).len();
    if ch.dropped.is_empty() {
        format!("{adds}; drops nothing")
    } else {
        format!("{adds}; drops {} of the host's {host}", ch.dropped.len())
    }
}

/// Up to five names, then how many more.
pub(super) fn some_names(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let esc: Vec<String> = names.iter().take(SHOWN).map(|n| terminal(n)).collect();
    if names.len() > SHOWN {
        format!("{} and {} more", esc.join(", "), names.len() - SHOWN)
    } else {
        esc.join(", ")
    }
}

/// The human report. Pure; every string from a container or the kernel is escaped.
pub fn render(r: &Report) -> String {
    let id = &r.identity;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  ({} {}, {})",
        terminal(&id.display),
        id.runtime,
        terminal(short_id(&id.id)),
        r.state
    );

    identity_section(&mut out, r);
    processes_section(&mut out, r);
    namespaces_section(&mut out, r);
    capabilities_section(&mut out, r);
    resources_section(&mut out, r);
    incidents_section(&mut out, r);
    out
}

/// Identity rows: runtime, id, names, state, init pid, cgroup, labels.
fn identity_section(out: &mut String, r: &Report) {
    let id = &r.identity;
    out.push_str("\nidentity\n");
    let mut rows: Vec<(String, String)> = vec![
        ("runtime".into(), id.runtime.to_string()),
        ("id".into(), terminal(&id.id)),
        ("name".into(), opt(id.name.as_deref())),
        ("image".into(), opt(id.image.as_deref())),
    ];
    if let Some(ns) = &id.namespace {
        rows.push(("namespace".into(), terminal(ns)));
    }
    if let Some(p) = &id.pod {
        rows.push((
            "pod".into(),
            terminal(&format!(
                "{}/{}{}",
                p.namespace,
                p.name,
                p.container
                    .as_deref()
                    .map_or_else(String::new, |c| format!(" container {c}"))
            )),
        ));
    }
    rows.push((
        "created".into(),
        id.created.as_deref().map_or_else(
            || "-".to_owned(),
            |c| parse_rfc3339(c).map_or_else(|| terminal(c), utc_seconds),
        ),
    ));
    rows.push(("bundle".into(), opt(id.bundle.as_deref())));
    rows.push(("state root".into(), opt(id.state_root.as_deref())));
    rows.push((
        "init pid".into(),
        format!(
            "{}, from {}",
            id.init_pid
                .map_or_else(|| "-".to_owned(), |p| p.to_string()),
            terminal(&id.init_pid_source)
        ),
    ));
    rows.push((
        "cgroup".into(),
        format!(
            "{}{}",
            opt(id.cgroup.as_deref()),
            id.cgroup_id
                .map_or_else(String::new, |i| format!(" (cgroup v2 id {i})"))
        ),
    ));
    rows.push(("journal key".into(), terminal(&id.journal_key)));
    if id.labels.is_empty() {
        rows.push(("labels".into(), "none".into()));
    }
    for (i, (k, v)) in id.labels.iter().enumerate() {
        let key = if i == 0 { "labels" } else { "" };
        // One label per line: a label value may itself contain ", ".
        rows.push((key.into(), terminal(&format!("{k}={v}"))));
    }
    kv(out, &rows);
}

/// The process tree, host pids.
fn processes_section(out: &mut String, r: &Report) {
    out.push_str("\nprocesses  (host pids; ns:N = pid inside the container)\n");
    match &r.processes {
        Some(tree) => {
            for line in render_tree(tree).lines() {
                let _ = writeln!(out, "  {line}");
            }
            if !tree.vanished.is_empty() {
                let pids: Vec<String> = tree.vanished.iter().map(u32::to_string).collect();
                let _ = writeln!(
                    out,
                    "  ({} exited while being read: {})",
                    if pids.len() == 1 {
                        "1 process"
                    } else {
                        "processes"
                    },
                    pids.join(", ")
                );
            }
        }
        None => section_unavailable(out, r, "processes"),
    }
}

/// Each namespace and who shares it.
fn namespaces_section(out: &mut String, r: &Report) {
    match &r.namespaces {
        Some(ns) => {
            let host = match &ns.host_source {
                Some(HostNsSource::Pid1) => "host = pid 1's".to_owned(),
                Some(HostNsSource::CurrentProcess { reason }) => {
                    format!("host = ctrace's own, {}", terminal(reason))
                }
                None => "host namespaces unknown".to_owned(),
            };
            let _ = writeln!(out, "\nnamespaces  (of pid {}; {host})", ns.pid);
            let mut rows = Vec::new();
            for s in &ns.list {
                let mut shared = match (s.shared_with_host, s.shared_with.is_empty()) {
                    (true, true) => "host".to_owned(),
                    (false, true) => "own".to_owned(),
                    (true, false) => format!("host, shared with {}", some_names(&s.shared_with)),
                    (false, false) => format!("shared with {}", some_names(&s.shared_with)),
                };
                if s.is_unusual_host_share() {
                    let _ = write!(
                        shared,
                        "  (containers get their own by default: e.g. --{} host)",
                        match s.ns_type {
                            NsType::Net => "network",
                            t => t.as_str(),
                        }
                    );
                }
                rows.push((s.ns_type.to_string(), format!("{:<11} {shared}", s.inode)));
            }
            kv(out, &rows);
        }
        None => {
            out.push_str("\nnamespaces\n");
            section_unavailable(out, r, "namespaces");
        }
    }
}

/// The capability sets and how they differ from the default and the host.
fn capabilities_section(out: &mut String, r: &Report) {
    match &r.capabilities {
        Some(c) => {
            let _ = writeln!(
                out,
                "\ncapabilities  (of pid {}{})",
                c.pid,
                c.uid.map_or_else(String::new, |u| format!(", uid {u}"))
            );
            let mut rows = Vec::new();
            push_wrapped(&mut rows, "effective", &set_line(c.effective, None));
            let same = Some(("effective", c.effective));
            push_wrapped(&mut rows, "permitted", &set_line(c.permitted, same));
            push_wrapped(&mut rows, "bounding", &set_line(c.bounding, same));
            push_wrapped(&mut rows, "inheritable", &set_line(c.inheritable, None));
            push_wrapped(&mut rows, "ambient", &set_line(c.ambient, None));
            let sets = (c.effective.names, c.bounding.names);
            let summary = |ch: &Change, _: CapSet| ch.summary.clone();
            comparison_rows(&mut rows, "vs default", &c.vs_default, summary, sets);
            rows.push((
                String::new(),
                format!("(against {})", c.vs_default.baseline),
            ));
            if let Some(h) = &c.vs_host {
                comparison_rows(&mut rows, "vs host", h, host_change, sets);
                rows.push((
                    String::new(),
                    format!("(against {}; --json names them)", terminal(&h.baseline)),
                ));
            }
            rows.push((
                "no_new_privs".to_owned(),
                match c.no_new_privs {
                    Some(true) => "yes".to_owned(),
                    Some(false) => "no".to_owned(),
                    None => "unknown".to_owned(),
                },
            ));
            rows.push((
                "seccomp".to_owned(),
                match (c.seccomp, c.seccomp_filters) {
                    (None, _) => "unknown".to_owned(),
                    (Some(m), Some(n)) if n > 0 => {
                        format!("{m} ({n} filter{})", if n == 1 { "" } else { "s" })
                    }
                    (Some(m), _) => m.to_string(),
                },
            ));
            kv(out, &rows);
        }
        None => {
            out.push_str("\ncapabilities\n");
            section_unavailable(out, r, "capabilities");
        }
    }
}

/// Limits and usage.
fn resources_section(out: &mut String, r: &Report) {
    out.push_str("\nresources\n");
    let rows: Vec<(String, String)> = r
        .resources
        .rows()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), terminal(&v)))
        .collect();
    kv(out, &rows);
}

/// Recent incidents from the journal, in UTC; then what could not be read.
fn incidents_section(out: &mut String, r: &Report) {
    let inc = &r.incidents;
    match (inc.status, inc.journal.as_deref()) {
        ("disabled", _) | (_, None) => {
            out.push_str("\nrecent incidents\n  not read (--no-journal)\n");
        }
        ("no_journal", Some(j)) => {
            let _ = writeln!(out, "\nrecent incidents\n  no journal at {}", terminal(j));
        }
        ("error", Some(j)) => {
            let _ = writeln!(
                out,
                "\nrecent incidents  (journal {})\n  unreadable: {}",
                terminal(j),
                terminal(inc.error.as_deref().unwrap_or("unknown error"))
            );
        }
        (_, Some(j)) => {
            let _ = writeln!(out, "\nrecent incidents  (journal {}, UTC)", terminal(j));
            if inc.records.is_empty() {
                out.push_str("  none recorded\n");
            }
            for i in &inc.records {
                let when = parse_rfc3339(&i.ts).map_or_else(|| i.ts.clone(), utc_seconds);
                let _ = writeln!(
                    out,
                    "  {}  {:<15} {}",
                    when.trim_end_matches(" UTC"),
                    terminal(&i.kind),
                    terminal(i.explanation.as_deref().unwrap_or(""))
                );
            }
        }
    }
    if !r.problems.is_empty() {
        out.push_str("\nincomplete\n");
        for p in &r.problems {
            let _ = writeln!(out, "  {}", terminal(p));
        }
    }
}

fn section_unavailable(out: &mut String, r: &Report, section: &str) {
    let why = r
        .unavailable
        .get(section)
        .map_or("unavailable", String::as_str);
    let _ = writeln!(out, "  {}", terminal(why));
}
