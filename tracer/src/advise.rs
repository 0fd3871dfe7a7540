//! A least-privilege capability proposal from the capability checks a container made
//! (`ctrace caps`): which capabilities its programs used, which they were denied, which it
//! holds and never used, and the flags that grant exactly the used ones to Docker, an OCI
//! runtime (runc, `ctr`) and Kubernetes.
//!
//! Pure: the checks come from the journal (capability records, allowed ones folded per
//! container, capability and program by the recorder) and the held set from `/proc` or the
//! journal; the CLI reads both and renders.
//!
//! Two kinds of checks made in a container's cgroup are not its needs, and are set apart:
//! - the runtime's own setup (`runc:[2:INIT]` sets up mounts, users and capabilities with
//!   privileges the container does not keep): [`is_runtime_setup`];
//! - checks allowed for a capability the container does not hold: another set of credentials
//!   acted for it (overlayfs copies up and creates files with its mounter's credentials), so
//!   no `--cap-add` grants or takes them away.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

use crate::{inspect::CapSet, names::capability_name};

/// One folded capability check of a container's process, as read back from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub cap: u32,
    pub allowed: bool,
    /// Checks folded into this one.
    pub count: u64,
    /// The process's `comm` (untrusted).
    pub program: String,
    /// Unix ns.
    pub ts_ns: i64,
}

/// What the container holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "known", rename_all = "snake_case")]
pub enum Held {
    /// Its init's effective set, and where it was read (`/proc/1234/status`, or the journal).
    Known { set: CapSet, from: String },
    /// Not known, and why.
    Unknown { why: String },
}

impl Held {
    pub fn set(&self) -> Option<CapSet> {
        match self {
            Held::Known { set, .. } => Some(*set),
            Held::Unknown { .. } => None,
        }
    }
}

/// The checks of one capability, summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub cap: u32,
    /// `CAP_CHOWN`.
    pub name: String,
    pub allowed: u64,
    pub denied: u64,
    /// The programs allowed it, sorted (untrusted names).
    pub allowed_to: Vec<String>,
    /// The programs denied it, sorted (untrusted names).
    pub denied_to: Vec<String>,
    pub first_ns: i64,
    pub last_ns: i64,
}

/// The proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Advice {
    pub held: Held,
    /// Allowed to the container's own programs, from a capability it holds (or any, when
    /// what it holds is unknown): what it needs, the capabilities to add.
    pub used: Vec<Tally>,
    /// Denied to its programs and never used (it ran without them).
    pub denied: Vec<Tally>,
    /// Held and never used: what `--cap-drop` can take away. `None`: held unknown.
    pub unused: Option<CapSet>,
    /// Allowed although the container does not hold them: another's credentials acted.
    pub not_held: Vec<Tally>,
    /// Checks of the runtime's setup processes (not the container's needs).
    pub setup: Vec<Tally>,
    /// The capabilities to grant: the used ones.
    pub add: CapSet,
    /// Checks read, setup included.
    pub checks: u64,
}

/// Whether a `comm` is one of the runtime's setup processes, whose checks happen before the
/// container's own program runs: runc's (`runc`, `runc:[0:PARENT]`, `runc:[1:CHILD]`,
/// `runc:[2:INIT]`, `runc init`), crun's and youki's.
pub fn is_runtime_setup(comm: &str) -> bool {
    comm == "runc"
        || comm.starts_with("runc:[")
        || comm.starts_with("runc init")
        || comm == "crun"
        || comm == "youki"
}

/// Sums `checks` per capability and sorts them into the proposal.
pub fn advise(checks: &[Check], held: Held) -> Advice {
    let mut own: BTreeMap<u32, Tally> = BTreeMap::new();
    let mut setup: BTreeMap<u32, Tally> = BTreeMap::new();
    let mut programs: BTreeMap<(bool, u32, bool), BTreeSet<String>> = BTreeMap::new();
    let mut total = 0u64;
    for c in checks {
        let count = c.count.max(1);
        total = total.saturating_add(count);
        let is_setup = is_runtime_setup(&c.program);
        let map = if is_setup { &mut setup } else { &mut own };
        let t = map.entry(c.cap).or_insert_with(|| Tally {
            cap: c.cap,
            name: capability_name(c.cap),
            allowed: 0,
            denied: 0,
            allowed_to: Vec::new(),
            denied_to: Vec::new(),
            first_ns: c.ts_ns,
            last_ns: c.ts_ns,
        });
        if c.allowed {
            t.allowed = t.allowed.saturating_add(count);
        } else {
            t.denied = t.denied.saturating_add(count);
        }
        t.first_ns = t.first_ns.min(c.ts_ns);
        t.last_ns = t.last_ns.max(c.ts_ns);
        programs
            .entry((is_setup, c.cap, c.allowed))
            .or_default()
            .insert(c.program.clone());
    }
    let with_programs = |setup_side: bool, mut t: Tally| {
        let list = |allowed| {
            programs
                .get(&(setup_side, t.cap, allowed))
                .map(|p| p.iter().cloned().collect())
                .unwrap_or_default()
        };
        t.allowed_to = list(true);
        t.denied_to = list(false);
        t
    };
    let held_set = held.set();
    let (mut used, mut denied, mut not_held) = (Vec::new(), Vec::new(), Vec::new());
    let mut add = CapSet::EMPTY;
    for t in own.into_values() {
        let t = with_programs(false, t);
        let holds = held_set.is_none_or(|h| h.contains(t.cap));
        if t.allowed > 0 && holds {
            add = add.union(CapSet::from_caps(&[t.cap]));
            used.push(t);
        } else if t.allowed > 0 {
            if t.denied > 0 {
                denied.push(t.clone());
            }
            not_held.push(t);
        } else {
            denied.push(t);
        }
    }
    Advice {
        unused: held_set.map(|h| h.difference(add)),
        held,
        used,
        denied,
        not_held,
        setup: setup
            .into_values()
            .map(|t| with_programs(true, t))
            .collect(),
        add,
        checks: total,
    }
}

/// A capability's name without its `CAP_` prefix, as Docker and Kubernetes take it.
fn short(name: &str) -> &str {
    name.strip_prefix("CAP_").unwrap_or(name)
}

/// `--cap-drop ALL --cap-add CHOWN --cap-add NET_BIND_SERVICE`.
pub fn docker_flags(add: CapSet) -> String {
    let mut out = "--cap-drop ALL".to_owned();
    for n in add.names() {
        out.push_str(" --cap-add ");
        out.push_str(short(&n));
    }
    out
}

/// The OCI runtime spec's `process.capabilities` (runc's `config.json`, `ctr`): the added
/// capabilities in the bounding, effective and permitted sets, none inheritable or ambient.
pub fn oci_capabilities(add: CapSet) -> Value {
    let names = add.names();
    json!({
        "bounding": names,
        "effective": names,
        "permitted": names,
        "inheritable": [],
        "ambient": [],
    })
}

/// A container's `securityContext.capabilities` for Kubernetes, as YAML.
pub fn kubernetes_yaml(add: CapSet) -> String {
    let list = add
        .names()
        .iter()
        .map(|n| format!("\"{}\"", short(n)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = String::from("securityContext:\n  capabilities:\n    drop: [\"ALL\"]\n");
    if !list.is_empty() {
        out.push_str(&format!("    add: [{list}]\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHOWN: u32 = 0;
    const DAC_OVERRIDE: u32 = 1;
    const NET_BIND: u32 = 10;
    const SYS_ADMIN: u32 = 21;
    const SETGID: u32 = 6;

    fn check(cap: u32, allowed: bool, count: u64, program: &str, ts_ns: i64) -> Check {
        Check {
            cap,
            allowed,
            count,
            program: program.to_owned(),
            ts_ns,
        }
    }

    /// What the lab recorded for a default Docker container running `chown` on a tmpfs file
    /// and `nc -l -p 80`: runc's setup, overlayfs acting with its mounter's credentials for
    /// `touch`, and the shell's denied CAP_SYS_ADMIN (a no-audit check of the kernel's).
    fn lab_run() -> Vec<Check> {
        vec![
            check(SETGID, true, 2, "runc:[2:INIT]", 10),
            check(SYS_ADMIN, true, 113, "runc:[2:INIT]", 11),
            check(SYS_ADMIN, false, 20, "runc:[2:INIT]", 12),
            check(SYS_ADMIN, true, 14, "runc", 9),
            check(SYS_ADMIN, true, 2, "touch", 20),
            check(SYS_ADMIN, false, 19, "sh", 21),
            check(CHOWN, true, 1, "chown", 22),
            check(CHOWN, true, 2, "chown", 23),
            check(NET_BIND, true, 1, "nc", 24),
        ]
    }

    fn held_default() -> Held {
        Held::Known {
            set: crate::inspect::OCI_DEFAULT_CAPS,
            from: "/proc/1/status".to_owned(),
        }
    }

    #[test]
    fn the_lab_run_needs_chown_and_net_bind_service_only() {
        let a = advise(&lab_run(), held_default());
        assert_eq!(a.add, CapSet::from_caps(&[CHOWN, NET_BIND]));
        let used: Vec<(&str, u64, &[String])> = a
            .used
            .iter()
            .map(|t| (t.name.as_str(), t.allowed, t.allowed_to.as_slice()))
            .collect();
        assert_eq!(
            used,
            [
                ("CAP_CHOWN", 3, &["chown".to_owned()][..]),
                ("CAP_NET_BIND_SERVICE", 1, &["nc".to_owned()][..]),
            ]
        );
        // CAP_SYS_ADMIN: allowed to touch only through overlayfs's credentials (not held), and
        // denied to sh: not proposed, reported as both.
        assert_eq!(a.not_held.len(), 1);
        assert_eq!((a.not_held[0].cap, a.not_held[0].allowed), (SYS_ADMIN, 2));
        assert_eq!(a.denied.len(), 1);
        assert_eq!((a.denied[0].cap, a.denied[0].denied), (SYS_ADMIN, 19));
        assert_eq!(a.denied[0].denied_to, ["sh"]);
        assert_eq!(a.denied[0].allowed_to, ["touch"]);
        // runc's own checks are set apart, whatever they were.
        let setup: Vec<u32> = a.setup.iter().map(|t| t.cap).collect();
        assert_eq!(setup, [SETGID, SYS_ADMIN]);
        assert_eq!(a.setup[1].allowed, 127);
        assert_eq!(a.setup[1].allowed_to, ["runc", "runc:[2:INIT]"]);
        assert_eq!(a.setup[1].denied_to, ["runc:[2:INIT]"]);
        assert_eq!(
            a.unused,
            Some(crate::inspect::OCI_DEFAULT_CAPS.difference(a.add))
        );
        assert_eq!(a.unused.unwrap().len(), 12);
        assert_eq!(a.checks, 2 + 113 + 20 + 14 + 2 + 19 + 1 + 2 + 1);
        assert_eq!((a.used[0].first_ns, a.used[0].last_ns), (22, 23));
    }

    #[test]
    fn unknown_holdings_propose_every_allowed_capability() {
        let a = advise(
            &lab_run(),
            Held::Unknown {
                why: "gone".to_owned(),
            },
        );
        assert_eq!(a.add, CapSet::from_caps(&[CHOWN, NET_BIND, SYS_ADMIN]));
        assert!(a.not_held.is_empty());
        assert_eq!(a.unused, None);
        assert!(a.denied.is_empty(), "SYS_ADMIN was allowed too: {a:?}");
    }

    #[test]
    fn a_cap_drop_all_container_was_denied_what_it_needed() {
        let a = advise(
            &[
                check(CHOWN, false, 1, "chown", 5),
                check(DAC_OVERRIDE, true, 1, "cat", 6),
            ],
            Held::Known {
                set: CapSet::EMPTY,
                from: "journal".to_owned(),
            },
        );
        assert_eq!(a.add, CapSet::EMPTY);
        assert_eq!(a.denied[0].name, "CAP_CHOWN");
        assert_eq!(a.not_held[0].name, "CAP_DAC_OVERRIDE");
        assert_eq!(a.unused, Some(CapSet::EMPTY));
        assert_eq!(docker_flags(a.add), "--cap-drop ALL");
        assert_eq!(
            kubernetes_yaml(a.add),
            "securityContext:\n  capabilities:\n    drop: [\"ALL\"]\n"
        );
    }

    #[test]
    fn nothing_recorded_proposes_nothing() {
        let a = advise(&[], held_default());
        assert_eq!(a.add, CapSet::EMPTY);
        assert_eq!(a.unused, Some(crate::inspect::OCI_DEFAULT_CAPS));
        assert_eq!(a.checks, 0);
    }

    #[test]
    fn flags_for_each_runtime() {
        let add = CapSet::from_caps(&[NET_BIND, CHOWN]);
        assert_eq!(
            docker_flags(add),
            "--cap-drop ALL --cap-add CHOWN --cap-add NET_BIND_SERVICE"
        );
        assert_eq!(
            oci_capabilities(add),
            json!({
                "bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
                "inheritable": [],
                "ambient": [],
            })
        );
        assert_eq!(
            kubernetes_yaml(add),
            "securityContext:\n  capabilities:\n    drop: [\"ALL\"]\n    add: [\"CHOWN\", \
             \"NET_BIND_SERVICE\"]\n"
        );
    }

    #[test]
    fn runtime_setup_programs() {
        for comm in [
            "runc",
            "runc:[0:PARENT]",
            "runc:[1:CHILD]",
            "runc:[2:INIT]",
            "crun",
        ] {
            assert!(is_runtime_setup(comm), "{comm}");
        }
        for comm in ["runcible", "sh", "nginx", "containerd-shim"] {
            assert!(!is_runtime_setup(comm), "{comm}");
        }
    }
}
