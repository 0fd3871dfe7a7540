//! Namespaces of a process, read as the inode numbers behind `/proc/<pid>/ns/<type>`, and
//! which of a container's namespaces it shares with the host or with other containers.
//!
//! Two processes are in the same namespace when their links show the same inode (all
//! namespace files live on the one nsfs device, so the inode alone identifies them).
//!
//! "The host" is the namespaces of PID 1 (`/proc/1/ns`). When those links cannot be read
//! (reading them needs ptrace access to PID 1; in a sandbox whose PID 1 holds capabilities the
//! reader lacks this fails with `EACCES`), [`read_host_ns`] falls back to the reader's own
//! namespaces (`/proc/self/ns`) and says so in [`HostNs::source`]. That fallback is right when
//! ctrace runs in the host's namespaces, which it must to see all containers anyway.

use std::{fmt, io, path::Path, str::FromStr};

use serde::{ser::SerializeMap, Serialize, Serializer};

use crate::host;

/// The eight namespace types, named as the files in `/proc/<pid>/ns/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NsType {
    /// Mount.
    Mnt,
    /// Hostname and domain name.
    Uts,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// Process ids.
    Pid,
    /// Network.
    Net,
    /// User and group ids, capabilities.
    User,
    /// Cgroup root directory.
    Cgroup,
    /// Boot and monotonic clocks (Linux 5.6+).
    Time,
}

impl NsType {
    /// All types, in display order.
    pub const ALL: [NsType; 8] = [
        NsType::Mnt,
        NsType::Uts,
        NsType::Ipc,
        NsType::Pid,
        NsType::Net,
        NsType::User,
        NsType::Cgroup,
        NsType::Time,
    ];

    /// The file name in `/proc/<pid>/ns/` and the prefix of its link (`net`).
    pub fn as_str(self) -> &'static str {
        match self {
            NsType::Mnt => "mnt",
            NsType::Uts => "uts",
            NsType::Ipc => "ipc",
            NsType::Pid => "pid",
            NsType::Net => "net",
            NsType::User => "user",
            NsType::Cgroup => "cgroup",
            NsType::Time => "time",
        }
    }

    /// True for the types Docker, containerd and runc give every container its own of by
    /// default (mnt, uts, ipc, pid, net). Sharing one of these with the host means an option
    /// such as `--pid host` or `--network host` was used. user and time are shared with the
    /// host by default, and cgroup too on cgroup v1 hosts.
    pub fn private_by_default(self) -> bool {
        matches!(
            self,
            NsType::Mnt | NsType::Uts | NsType::Ipc | NsType::Pid | NsType::Net
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for NsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NsType {
    type Err = ();

    /// Parse `mnt`, `net`, ... (exactly as in `/proc/<pid>/ns/`).
    fn from_str(s: &str) -> Result<Self, ()> {
        NsType::ALL.into_iter().find(|t| t.as_str() == s).ok_or(())
    }
}

/// The namespace inodes of one process; a type is `None` when the kernel has no such
/// namespace type (time before 5.6, cgroup before 4.6) or its link was unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NsSet {
    inodes: [Option<u64>; 8],
}

impl NsSet {
    /// The inode of namespace type `t`.
    pub fn get(&self, t: NsType) -> Option<u64> {
        self.inodes[t.index()]
    }

    /// Set the inode of namespace type `t`.
    pub fn set(&mut self, t: NsType, inode: Option<u64>) {
        self.inodes[t.index()] = inode;
    }

    /// Known `(type, inode)` pairs in [`NsType::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (NsType, u64)> + '_ {
        NsType::ALL
            .into_iter()
            .filter_map(|t| self.get(t).map(|i| (t, i)))
    }

    /// True if no inode is known.
    pub fn is_empty(&self) -> bool {
        self.inodes.iter().all(Option::is_none)
    }

    /// Build from link texts such as `net:[4026531840]`; unparsable ones are ignored.
    pub fn from_links<S: AsRef<str>>(links: &[S]) -> NsSet {
        let mut set = NsSet::default();
        for l in links {
            if let Some((t, inode)) = parse_ns_link(l.as_ref()) {
                set.set(t, Some(inode));
            }
        }
        set
    }
}

/// Serialised as a map `{"mnt": 4026532250, ...}` of the known types.
impl Serialize for NsSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (t, inode) in self.iter() {
            map.serialize_entry(t.as_str(), &inode)?;
        }
        map.end()
    }
}

/// Parse a namespace link's text, `net:[4026531840]`. Pure; `None` on anything else.
pub fn parse_ns_link(link: &str) -> Option<(NsType, u64)> {
    let (kind, rest) = link.trim().split_once(":[")?;
    let digits = rest.strip_suffix(']')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((kind.parse().ok()?, digits.parse().ok()?))
}

/// The namespaces of a live process (`/proc/<pid>/ns/*`). `NotFound` if the process does not
/// exist or exited while being read; other errors (`PermissionDenied`) are passed on.
pub fn read_ns(pid: u32) -> io::Result<NsSet> {
    read_ns_at(host::proc::root(), &pid.to_string())
}

/// [`read_ns`] under another procfs mount, for a pid or `self`.
pub fn read_ns_at(proc_root: &Path, pid: &str) -> io::Result<NsSet> {
    let dir = proc_root.join(pid);
    let mut set = NsSet::default();
    for t in NsType::ALL {
        match host::proc::read_link(proc_root, pid, &format!("ns/{}", t.as_str())) {
            Ok(target) => {
                // A link of the wrong type would be a bug elsewhere; treat it as unknown.
                set.set(
                    t,
                    parse_ns_link(&target.to_string_lossy())
                        .filter(|(lt, _)| *lt == t)
                        .map(|(_, inode)| inode),
                );
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Either this kernel lacks the type, or the process is gone.
                if !host::proc::exists(proc_root, pid, "ns") {
                    return Err(e);
                }
            }
            Err(e) if host::proc::is_vanished(&e) => {
                return Err(io::Error::new(io::ErrorKind::NotFound, e));
            }
            Err(e) => return Err(e),
        }
    }
    // Re-check: a process that exited mid-read may have given a partial set.
    if !host::proc::exists(proc_root, pid, "ns") {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: process exited", dir.display()),
        ));
    }
    Ok(set)
}

/// Where [`read_host_ns`] took the host's namespaces from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HostNsSource {
    /// `/proc/1/ns`.
    Pid1,
    /// `/proc/self/ns`, because `/proc/1/ns` could not be read (the error is kept).
    CurrentProcess {
        /// Why `/proc/1/ns` was not used.
        reason: String,
    },
}

/// The host's namespaces and where they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostNs {
    /// The namespace inodes.
    pub ns: NsSet,
    /// Their source.
    pub source: HostNsSource,
}

/// The host's namespaces: those of PID 1, or the reader's own if PID 1's cannot be read.
pub fn read_host_ns() -> io::Result<HostNs> {
    read_host_ns_at(host::proc::root())
}

/// [`read_host_ns`] under another procfs mount.
pub fn read_host_ns_at(proc_root: &Path) -> io::Result<HostNs> {
    match read_ns_at(proc_root, "1") {
        Ok(ns) if !ns.is_empty() => Ok(HostNs {
            ns,
            source: HostNsSource::Pid1,
        }),
        other => {
            let reason = match other {
                Err(e) => format!("/proc/1/ns unreadable: {e}"),
                Ok(_) => "/proc/1/ns empty".to_owned(),
            };
            Ok(HostNs {
                ns: read_ns_at(proc_root, "self")?,
                source: HostNsSource::CurrentProcess { reason },
            })
        }
    }
}

/// One namespace of a container and who else is in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NsShare {
    /// The namespace type.
    pub ns_type: NsType,
    /// Its inode.
    pub inode: u64,
    /// True if the host is in the same namespace.
    pub shared_with_host: bool,
    /// Names of the other containers in the same namespace, in the order given.
    pub shared_with: Vec<String>,
}

impl NsShare {
    /// `host`, `own`, `shared with a, b` or `host, shared with a`.
    pub fn summary(&self) -> String {
        match (self.shared_with_host, self.shared_with.is_empty()) {
            (true, true) => "host".to_owned(),
            (false, true) => "own".to_owned(),
            (true, false) => format!("host, shared with {}", self.shared_with.join(", ")),
            (false, false) => format!("shared with {}", self.shared_with.join(", ")),
        }
    }

    /// True if this namespace is shared with the host although containers normally get their
    /// own (see [`NsType::private_by_default`]), e.g. `--pid host`.
    pub fn is_unusual_host_share(&self) -> bool {
        self.shared_with_host && self.ns_type.private_by_default()
    }
}

/// Compare a container's namespaces with the host's and with other containers'. Pure.
///
/// One entry per namespace type the container has an inode for, in [`NsType::ALL`] order.
/// `others` should not contain the container itself; a name listed twice is reported once.
pub fn compare(container: &NsSet, host: &NsSet, others: &[(String, NsSet)]) -> Vec<NsShare> {
    container
        .iter()
        .map(|(t, inode)| {
            let mut shared_with: Vec<String> = Vec::new();
            for (name, set) in others {
                if set.get(t) == Some(inode) && !shared_with.contains(name) {
                    shared_with.push(name.clone());
                }
            }
            NsShare {
                ns_type: t,
                inode,
                shared_with_host: host.get(t) == Some(inode),
                shared_with,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const OBSERVED: &str = include_str!("../../tests/fixtures/inspect/namespaces-readlink.txt");

    /// `name -> NsSet` from the fixture (lines `name type link`).
    fn observed() -> BTreeMap<String, NsSet> {
        let mut m: BTreeMap<String, NsSet> = BTreeMap::new();
        for line in OBSERVED.lines() {
            let mut f = line.split_whitespace();
            let (Some(name), Some(t), Some(link)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let (lt, inode) = parse_ns_link(link).unwrap();
            assert_eq!(lt.as_str(), t);
            m.entry(name.to_owned()).or_default().set(lt, Some(inode));
        }
        m
    }

    #[test]
    fn link_parsing() {
        assert_eq!(
            parse_ns_link("net:[4026531840]"),
            Some((NsType::Net, 4026531840))
        );
        assert_eq!(
            parse_ns_link("time:[4026531834]\n"),
            Some((NsType::Time, 4026531834))
        );
        assert_eq!(parse_ns_link("pid_for_children:[1]"), None);
        assert_eq!(parse_ns_link("net:[]"), None);
        assert_eq!(parse_ns_link("net:[12"), None);
        assert_eq!(parse_ns_link("net:[-1]"), None);
        assert_eq!(parse_ns_link("net:[99999999999999999999999]"), None);
        assert_eq!(parse_ns_link("bogus:[1]"), None);
        assert_eq!(parse_ns_link(""), None);
        assert_eq!("cgroup".parse::<NsType>(), Ok(NsType::Cgroup));
        assert!("NET".parse::<NsType>().is_err());
    }

    #[test]
    fn observed_docker_namespaces() {
        let m = observed();
        let host = m["self"];
        let others: Vec<(String, NsSet)> = m
            .iter()
            .filter(|(n, _)| n.as_str() != "self")
            .map(|(n, s)| (n.clone(), *s))
            .collect();
        let others_of = |name: &str| -> Vec<(String, NsSet)> {
            others.iter().filter(|(n, _)| n != name).cloned().collect()
        };
        let get = |v: &[NsShare], t: NsType| v.iter().find(|s| s.ns_type == t).unwrap().clone();

        // Default container: own mnt/uts/ipc/pid/net; user, cgroup (v1 host) and time shared.
        let def = compare(&m["insp-def"], &host, &others_of("insp-def"));
        assert_eq!(def.len(), 8);
        for t in [NsType::Mnt, NsType::Uts, NsType::Ipc, NsType::Pid] {
            assert_eq!(get(&def, t).summary(), "own");
        }
        assert_eq!(
            get(&def, NsType::Net).summary(),
            "shared with insp-netshare"
        );
        assert_eq!(get(&def, NsType::Net).inode, 4026532400);
        for t in [NsType::User, NsType::Cgroup, NsType::Time] {
            let s = get(&def, t);
            assert!(s.shared_with_host && !s.is_unusual_host_share());
        }

        // --pid host: the pid namespace is the host's.
        let ph = compare(&m["insp-pidhost"], &host, &others_of("insp-pidhost"));
        let pid = get(&ph, NsType::Pid);
        assert!(pid.shared_with_host && pid.is_unusual_host_share());
        assert_eq!(pid.inode, 4026531836);
        assert!(!get(&ph, NsType::Net).shared_with_host);

        // --network container:insp-def
        let ns = compare(&m["insp-netshare"], &host, &others_of("insp-netshare"));
        assert_eq!(get(&ns, NsType::Net).shared_with, ["insp-def"]);
        assert_eq!(get(&ns, NsType::Ipc).summary(), "own");
    }

    #[test]
    fn compare_edge_cases() {
        let mut c = NsSet::default();
        c.set(NsType::Net, Some(5));
        let mut o = NsSet::default();
        o.set(NsType::Net, Some(5));
        let others = vec![
            ("a".to_owned(), o),
            ("a".to_owned(), o),
            ("b".to_owned(), o),
        ];
        let v = compare(&c, &NsSet::default(), &others);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].shared_with, ["a", "b"]);
        assert!(!v[0].shared_with_host);
        assert!(compare(&NsSet::default(), &c, &others).is_empty());
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"net":5}"#,);
    }

    #[test]
    fn reads_own_namespaces() {
        let me = read_ns(std::process::id()).unwrap();
        assert!(me.get(NsType::Net).is_some() && me.get(NsType::Pid).is_some());
        let host = read_host_ns().unwrap();
        assert!(!host.ns.is_empty());
        let err = read_ns(u32::MAX).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    proptest::proptest! {
        #[test]
        fn parse_ns_link_never_panics(s in "\\PC{0,40}") {
            let _ = parse_ns_link(&s);
        }

        #[test]
        fn parse_ns_link_round_trip(i in 0usize..8, inode in proptest::num::u64::ANY) {
            let t = NsType::ALL[i];
            proptest::prop_assert_eq!(
                parse_ns_link(&format!("{}:[{}]", t, inode)),
                Some((t, inode))
            );
        }
    }
}
