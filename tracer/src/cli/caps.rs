//! `ctrace caps NAME|ID`: a least-privilege capability proposal for a container from the
//! capability checks the journal recorded (`watch` and `agent` record allowed checks, folded,
//! with their default options): the capabilities it used, those it was denied, those it holds
//! and never used, and the flags that grant only the used ones to Docker, an OCI runtime and
//! Kubernetes. The logic is [`tracer::advise`]; this file reads and renders.
//!
//! Exit codes: 0 done; 1 no journal, no such container, or no capability check recorded for
//! it; 2 an ambiguous id prefix or an unusable journal.

use std::{path::PathBuf, process::ExitCode};

use clap::Args;
use serde_json::{json, Value};

use super::{
    history::{finish, open_journal, query_failed, Failure, Output},
    postmortem::matching,
};
use tracer::{
    advise::{self, Advice, Check, Held, Tally},
    clock::utc_seconds,
    container::short_id,
    host,
    inspect::{read_status, CapSet},
    journal::{self, ContainerRow, Journal, RecordFilter},
    record::Record,
    resolve::{self, Resolver},
    select::Selector,
    sink::escape::terminal,
};

#[derive(Debug, Args)]
pub struct CapsArgs {
    /// The container: name, id, id prefix (3 characters or more), pod name, `NAMESPACE/NAME`
    /// or journal key (`docker/<id>`, `containerd/<namespace>/<id>`). When a name was reused,
    /// the newest container that had it.
    #[arg(value_name = "NAME|ID", value_parser = Selector::parse)]
    pub container: Selector,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
    /// The journal to read (never created or modified).
    #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_PATH)]
    pub journal: PathBuf,
}

/// The capability checks of a container in the journal.
fn checks(journal: &Journal, c: &ContainerRow) -> Result<Vec<Check>, Failure> {
    let records = journal
        .records(&RecordFilter {
            container_key: Some(c.key.clone()),
            types: vec!["capability".to_owned()],
            ..RecordFilter::default()
        })
        .map_err(|e| query_failed(&e))?;
    Ok(records
        .iter()
        .filter_map(|r| match serde_json::from_str(&r.json) {
            Ok(Record::Capability(cap)) => Some(Check {
                cap: cap.cap,
                allowed: cap.verdict == "allowed",
                count: cap.count,
                program: cap.event.process.comm,
                ts_ns: r.ts_ns,
            }),
            _ => None,
        })
        .collect())
}

/// What the container holds: its live init's effective set, else the one the journal kept
/// (read by the recorder once the runtime's setup was over), else unknown.
fn held(c: &ContainerRow) -> Held {
    if c.gone_ns.is_none() {
        if let Some(h) = live_held(c) {
            return h;
        }
    }
    let caps = c.meta.as_ref().and_then(|m| m.get("capabilities"));
    let effective = caps
        .and_then(|v| v.get("effective"))
        .and_then(Value::as_str)
        .and_then(CapSet::from_hex);
    match effective {
        Some(set) => Held::Known {
            set,
            from: format!(
                "the journal (init pid {})",
                caps.and_then(|v| v.get("pid"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            ),
        },
        None => Held::Unknown {
            why: if c.gone_ns.is_some() {
                "the container is gone and the journal has not kept its capability sets".into()
            } else {
                "its init could not be read and the journal has not kept its capability sets".into()
            },
        },
    }
}

/// The effective set of the live container's init, from `/proc/<pid>/status`.
fn live_held(c: &ContainerRow) -> Option<Held> {
    let mut resolver = Resolver::new(resolve::Config::default());
    resolver.rescan();
    let selector = Selector::parse(&c.key).ok()?;
    let pid = resolver
        .find(&selector)
        .into_iter()
        .find(|f| f.id == c.id)?
        .init_pid?;
    // The pid is the container's still (not reused by a process elsewhere).
    let cgroup = host::proc::read_lossy(host::proc::root(), pid, "cgroup").ok()?;
    if !cgroup.contains(&c.id) {
        return None;
    }
    let st = read_status(pid).ok()?;
    if st.name.as_deref().is_none_or(advise::is_runtime_setup) {
        return None;
    }
    Some(Held::Known {
        set: st.caps?.effective,
        from: format!("/proc/{pid}/status (the live init's effective set)"),
    })
}

/// `CAP_CHOWN  3 checks  chown, nc`, programs escaped.
fn tally_rows(tallies: &[Tally], denied: bool) -> Vec<[String; 3]> {
    tallies
        .iter()
        .map(|t| {
            let (n, programs) = if denied {
                (t.denied, &t.denied_to)
            } else {
                (t.allowed, &t.allowed_to)
            };
            [
                format!("  {}", t.name),
                format!("{n} check{}", if n == 1 { "" } else { "s" }),
                programs
                    .iter()
                    .map(|p| terminal(p))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect()
}

/// `head` then the words, comma-separated, wrapped under 80 columns with an indent.
fn wrapped(head: &str, words: &[String]) -> String {
    if words.is_empty() {
        return format!("{head}none\n");
    }
    let mut out = String::new();
    let mut line = head.to_owned();
    for (i, w) in words.iter().enumerate() {
        let word = if i + 1 < words.len() {
            format!("{w},")
        } else {
            w.clone()
        };
        if line.len() + word.len() > 79 && line.len() > head.len() {
            out.push_str(line.trim_end());
            out.push('\n');
            line = "  ".to_owned();
        }
        line.push_str(&word);
        line.push(' ');
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// The proposal for people.
pub fn render(c: &ContainerRow, journal: &std::path::Path, a: &Advice, others: usize) -> String {
    let mut out = String::new();
    let name = terminal(c.name.as_deref().unwrap_or("(unnamed)"));
    out.push_str(&format!(
        "{name} ({}, {}){}{}\n",
        terminal(&c.runtime),
        terminal(short_id(&c.id)),
        c.image
            .as_deref()
            .map(|i| format!(", image {}", terminal(i)))
            .unwrap_or_default(),
        if c.gone_ns.is_some() { ", gone" } else { "" },
    ));
    let first = a
        .used
        .iter()
        .chain(&a.denied)
        .chain(&a.not_held)
        .chain(&a.setup);
    let (from, to) = first.fold((i64::MAX, i64::MIN), |(f, t), x| {
        (f.min(x.first_ns), t.max(x.last_ns))
    });
    out.push_str(&format!(
        "journal {}: {} capability check{}",
        terminal(&journal.display().to_string()),
        a.checks,
        if a.checks == 1 { "" } else { "s" },
    ));
    if from <= to {
        out.push_str(&format!(
            ",\n  from {} to {}",
            utc_seconds(from),
            utc_seconds(to)
        ));
    }
    out.push('\n');
    if others > 0 {
        out.push_str(&format!(
            "({others} older container{} had this name: `ctrace caps` with its id for it)\n",
            if others == 1 { "" } else { "s" }
        ));
    }
    match &a.held {
        Held::Known { set, from } => out.push_str(&format!(
            "holds {} capabilit{}, from {}\n",
            set.len(),
            if set.len() == 1 { "y" } else { "ies" },
            terminal(from)
        )),
        Held::Unknown { why } => out.push_str(&format!("holds: unknown ({})\n", terminal(why))),
    }
    out.push_str(&format!("\nused ({}):\n", a.used.len()));
    if a.used.is_empty() {
        out.push_str("  none\n");
    }
    out.push_str(&super::render_columns(&tally_rows(&a.used, false)));
    if !a.denied.is_empty() {
        out.push_str(&format!(
            "denied ({}; it ran without them: add one only if that failure mattered):\n",
            a.denied.len()
        ));
        out.push_str(&super::render_columns(&tally_rows(&a.denied, true)));
    }
    if let Some(unused) = a.unused {
        out.push_str(&wrapped(
            &format!("held and never used ({}): ", unused.len()),
            &unused.names(),
        ));
    }
    if !a.not_held.is_empty() {
        out.push_str(&format!(
            "allowed though not held ({}; others' credentials acted, e.g. overlayfs's):\n",
            a.not_held.len()
        ));
        out.push_str(&super::render_columns(&tally_rows(&a.not_held, false)));
    }
    if !a.setup.is_empty() {
        let checks: u64 = a.setup.iter().map(|t| t.allowed + t.denied).sum();
        let mut programs: Vec<String> = a
            .setup
            .iter()
            .flat_map(|t| t.allowed_to.iter().chain(&t.denied_to).map(|p| terminal(p)))
            .collect();
        programs.sort();
        programs.dedup();
        out.push_str(&format!(
            "set apart, the runtime's setup ({}): {} checks of {} capabilit{}\n",
            programs.join(", "),
            checks,
            a.setup.len(),
            if a.setup.len() == 1 { "y" } else { "ies" }
        ));
    }
    out.push_str("\nleast privilege:\n");
    out.push_str(&format!("  docker run {}\n", advise::docker_flags(a.add)));
    out.push_str("  OCI process.capabilities (runc config.json, ctr):\n");
    let oci = serde_json::to_string_pretty(&advise::oci_capabilities(a.add)).unwrap_or_default();
    for l in oci.lines() {
        out.push_str(&format!("    {l}\n"));
    }
    out.push_str("  Kubernetes container:\n");
    for l in advise::kubernetes_yaml(a.add).lines() {
        out.push_str(&format!("    {l}\n"));
    }
    out.push_str(
        "\nOnly what was traced: a code path not taken while ctrace watched is not in it.\n",
    );
    out
}

fn tally_json(t: &Tally) -> Value {
    json!({
        "capability": t.name,
        "cap": t.cap,
        "allowed": t.allowed,
        "denied": t.denied,
        "allowed_to": t.allowed_to,
        "denied_to": t.denied_to,
        "first": tracer::clock::rfc3339_ns(t.first_ns),
        "last": tracer::clock::rfc3339_ns(t.last_ns),
    })
}

/// The proposal as one JSON object.
pub fn to_json(c: &ContainerRow, journal: &std::path::Path, a: &Advice) -> Value {
    let list = |v: &[Tally]| v.iter().map(tally_json).collect::<Vec<_>>();
    json!({
        "container": {
            "key": c.key,
            "id": c.id,
            "name": c.name,
            "runtime": c.runtime,
            "image": c.image,
            "namespace": c.namespace,
            "gone": c.gone_ns.map(tracer::clock::rfc3339_ns),
        },
        "journal": journal.display().to_string(),
        "checks": a.checks,
        "held": match &a.held {
            Held::Known { set, from } => json!({"known": true, "capabilities": set, "from": from}),
            Held::Unknown { why } => json!({"known": false, "why": why}),
        },
        "used": list(&a.used),
        "denied": list(&a.denied),
        "unused": a.unused,
        "not_held": list(&a.not_held),
        "runtime_setup": list(&a.setup),
        "proposal": {
            "add": a.add,
            "docker": advise::docker_flags(a.add),
            "oci": advise::oci_capabilities(a.add),
            "kubernetes": advise::kubernetes_yaml(a.add),
        },
    })
}

pub fn run(args: &CapsArgs) -> Result<Output, Failure> {
    let journal = open_journal(&args.journal)?;
    let matches = matching(&journal, &args.journal, &args.container)?;
    let c = &matches[0];
    let checks = checks(&journal, c)?;
    if checks.is_empty() {
        return Err(Failure::not_found(format!(
            "no capability check of {} in journal {}: was it traced by `ctrace watch` or \
             `ctrace agent` with the journal on?",
            terminal(c.name.as_deref().unwrap_or(&c.id)),
            terminal(&args.journal.display().to_string())
        )));
    }
    let advice = advise::advise(&checks, held(c));
    let text = if args.json {
        format!(
            "{}\n",
            tracer::sink::json::line(&to_json(c, &args.journal, &advice))
        )
    } else {
        render(c, &args.journal, &advice, matches.len() - 1)
    };
    Ok(Output {
        text,
        notes: Vec::new(),
    })
}

/// Entry point of `ctrace caps`: prints and returns the exit code.
pub fn main(args: &CapsArgs) -> ExitCode {
    finish(run(args))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn row(name: &str) -> ContainerRow {
        ContainerRow {
            key: "docker/3f2a9c1b2d4e5f60".to_owned(),
            id: "3f2a9c1b2d4e5f60".to_owned(),
            name: Some(name.to_owned()),
            runtime: "docker".to_owned(),
            image: Some("busybox:local".to_owned()),
            namespace: None,
            labels: Default::default(),
            first_seen_ns: 1_764_720_000_000_000_000,
            last_seen_ns: 1_764_720_005_000_000_000,
            gone_ns: Some(1_764_720_005_000_000_000),
            exit_code: Some(0),
            meta: Some(json!({"capabilities": {"pid": 4242, "effective": "00000000a80425fb"}})),
        }
    }

    fn advice() -> Advice {
        let t0 = 1_764_720_001_000_000_000;
        let check = |cap: u32, allowed: bool, count: u64, program: &str, dt: i64| Check {
            cap,
            allowed,
            count,
            program: program.to_owned(),
            ts_ns: t0 + dt,
        };
        advise::advise(
            &[
                check(21, true, 113, "runc:[2:INIT]", 0),
                check(21, true, 2, "touch", 100),
                check(21, false, 19, "sh", 200),
                check(0, true, 3, "chown", 300),
                check(10, true, 1, "nc\x1b[31m", 1_000_000_000),
            ],
            held(&row("web")),
        )
    }

    /// The human output on a fixture, against `tracer/tests/snapshots/caps-web.txt`
    /// (`UPDATE_SNAPSHOTS=1` rewrites it).
    #[test]
    fn render_snapshot() {
        let text = render(&row("web"), Path::new("/j.db"), &advice(), 1);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/caps-web.txt");
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
            std::fs::write(&path, &text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text, expected, "rerun with UPDATE_SNAPSHOTS=1 if intended");
        assert!(
            !text.contains('\x1b'),
            "a program name reached the terminal raw"
        );
    }

    #[test]
    fn held_from_the_journal_for_a_gone_container() {
        match held(&row("web")) {
            Held::Known { set, from } => {
                assert_eq!(set, tracer::inspect::OCI_DEFAULT_CAPS);
                assert_eq!(from, "the journal (init pid 4242)");
            }
            h => panic!("{h:?}"),
        }
        let mut bare = row("web");
        bare.meta = None;
        assert!(matches!(held(&bare), Held::Unknown { .. }));
    }

    #[test]
    fn json_has_the_proposal() {
        let v = to_json(&row("web"), Path::new("/j.db"), &advice());
        assert_eq!(
            v["proposal"]["add"],
            json!(["CAP_CHOWN", "CAP_NET_BIND_SERVICE"])
        );
        assert_eq!(
            v["proposal"]["docker"],
            "--cap-drop ALL --cap-add CHOWN --cap-add NET_BIND_SERVICE"
        );
        assert_eq!(v["denied"][0]["capability"], "CAP_SYS_ADMIN");
        assert_eq!(v["runtime_setup"][0]["allowed"], 113);
        assert_eq!(v["held"]["known"], true);
        assert_eq!(v["unused"].as_array().unwrap().len(), 12);
    }
}
