//! The processes of a container as a tree, with the process just outside it (normally
//! `containerd-shim-runc-v2`) on top.
//!
//! Pure parts: [`parse_stat`], [`parse_cmdline`], [`UserNames::parse`], [`tree_rows`],
//! [`render_tree`]. The readers ([`process_tree`], [`process_tree_from_root`],
//! [`read_cgroup_pids`]) skip processes that exit while being read and never panic.
//!
//! All pids are as seen from the reader's pid namespace (the host's, when ctrace runs on the
//! host); [`ProcNode::ns_pid`] is the pid inside the process's own pid namespace.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fs, io,
    path::Path,
};

use serde::Serialize;

use super::caps::{read_lossy, ProcStatus};
use crate::{host, sink::escape::terminal};

/// The fields of `/proc/<pid>/stat` that `inspect` uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatLine {
    /// Field 1.
    pub pid: u32,
    /// Field 2 without its parentheses; may contain spaces and parentheses.
    pub comm: String,
    /// Field 3, e.g. `S`, `R`, `Z`.
    pub state: char,
    /// Field 4 (0 when the parent is outside the reader's pid namespace).
    pub ppid: u32,
    /// Field 5.
    pub pgrp: Option<i32>,
    /// Field 6.
    pub session: Option<i32>,
    /// Field 20.
    pub num_threads: Option<u32>,
    /// Field 22: start time in clock ticks after boot. With the pid it identifies a process
    /// across pid reuse.
    pub start_time: Option<u64>,
}

/// Parse one `/proc/<pid>/stat` line. Pure; `None` if pid, comm, state or ppid are missing.
///
/// comm is taken between the first `(` and the **last** `)`, since comm itself may contain
/// spaces and `)` (a program named `x) (y z)` gives `2429 (x) (y z)) S 2416 ...`).
pub fn parse_stat(line: &str) -> Option<StatLine> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = line[..open].trim().parse().ok()?;
    let comm = line[open + 1..close].to_owned();
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    let mut state_chars = rest.first()?.chars();
    let state = state_chars.next()?;
    if state_chars.next().is_some() {
        return None;
    }
    let ppid = rest.get(1)?.parse().ok()?;
    let field = |n: usize| rest.get(n - 3).copied();
    Some(StatLine {
        pid,
        comm,
        state,
        ppid,
        pgrp: field(5).and_then(|v| v.parse().ok()),
        session: field(6).and_then(|v| v.parse().ok()),
        num_threads: field(20).and_then(|v| v.parse().ok()),
        start_time: field(22).and_then(|v| v.parse().ok()),
    })
}

/// `stat` read through procfs ([`host::proc::read`]) and parsed by [`parse_stat`], not procfs's
/// `Stat`: that one needs every field (fixtures and old kernels have fewer) and fails where
/// [`parse_stat`] leaves a field unknown.
impl procfs::FromRead for StatLine {
    fn from_read<R: io::Read>(r: R) -> procfs::ProcResult<Self> {
        let text = <host::proc::Bytes as procfs::FromRead>::from_read(r)?.lossy();
        parse_stat(&text).ok_or_else(|| procfs::ProcError::Other("stat: unparsable".to_owned()))
    }
}

/// Read and parse `<proc_root>/<pid>/stat`. `NotFound` if the process is gone,
/// `InvalidData` if the line cannot be parsed.
pub fn read_stat_at(proc_root: &Path, pid: u32) -> io::Result<StatLine> {
    host::proc::read(proc_root, pid, "stat")
}

/// `/proc/<pid>/cmdline` (NUL-separated arguments) as one space-separated string. Trailing
/// NULs are dropped; invalid UTF-8 is replaced. The result is untrusted: escape it before
/// printing (as [`render_tree`] does).
pub fn parse_cmdline(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let joined: Vec<u8> = bytes[..end]
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    String::from_utf8_lossy(&joined).into_owned()
}

/// uid → user name, from a passwd file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserNames {
    names: HashMap<u32, String>,
}

impl UserNames {
    /// Parse passwd text (`name:x:uid:gid:...`). Pure; malformed lines are skipped and the
    /// first name for a uid wins (as with `getpwuid`).
    pub fn parse(text: &str) -> UserNames {
        let mut names = HashMap::new();
        for line in text.lines() {
            let mut f = line.split(':');
            let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if name.is_empty() || name.starts_with('#') || name.starts_with('+') {
                continue;
            }
            if let Ok(uid) = uid.trim().parse::<u32>() {
                names.entry(uid).or_insert_with(|| name.to_owned());
            }
        }
        UserNames { names }
    }

    /// The host's `/etc/passwd` (empty if unreadable). Names are the host's: a uid inside a
    /// container may have another name in the container's own passwd file.
    pub fn load_host() -> UserNames {
        read_lossy(Path::new("/etc/passwd"))
            .map(|t| UserNames::parse(&t))
            .unwrap_or_default()
    }

    /// The name of `uid`, or the number itself.
    pub fn name(&self, uid: u32) -> String {
        self.names
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }
}

/// One process in (or just above) a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcNode {
    /// Pid in the reader's pid namespace.
    pub pid: u32,
    /// Parent pid in the reader's pid namespace.
    pub ppid: u32,
    /// Pid inside the process's own pid namespace (last `NSpid` entry), if known.
    pub ns_pid: Option<u32>,
    /// Command name (`/proc/<pid>/stat`); untrusted.
    pub comm: String,
    /// State letter (`S`, `R`, `D`, `Z`, ...).
    pub state: char,
    /// Effective uid, if `/proc/<pid>/status` could be read.
    pub uid: Option<u32>,
    /// User name from the host's passwd, or the uid as a number (`?` if unknown); untrusted.
    pub user: String,
    /// Arguments joined by spaces (empty for zombies and kernel threads); untrusted.
    pub cmdline: String,
    /// Number of threads.
    pub threads: Option<u32>,
    /// Start time in clock ticks after boot.
    pub start_time: Option<u64>,
    /// False for the ancestors above the container's processes.
    pub in_container: bool,
}

/// A container's processes and the processes directly above them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcTree {
    /// The container's processes that could be read, by pid.
    pub nodes: Vec<ProcNode>,
    /// For each container process whose parent is not in the container: that parent (the
    /// first process up the chain that is outside the container, e.g. the shim), by pid.
    pub ancestors: Vec<ProcNode>,
    /// Requested pids that could not be read (they exited meanwhile), ascending.
    pub vanished: Vec<u32>,
}

impl ProcTree {
    /// Find a node (container process or ancestor) by pid.
    pub fn get(&self, pid: u32) -> Option<&ProcNode> {
        self.nodes
            .iter()
            .chain(&self.ancestors)
            .find(|n| n.pid == pid)
    }
}

/// One line of a tree in pre-order: its pid, depth (0 = root) and whether it is the last
/// child of its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeRow {
    /// The process.
    pub pid: u32,
    /// Distance from its root.
    pub depth: usize,
    /// Last among its siblings.
    pub last: bool,
}

/// Arrange `(pid, ppid)` pairs as a forest, in pre-order, children by ascending pid. Pure.
///
/// Roots are the pids whose parent is not among the pids (or is the pid itself), ascending.
/// Duplicate pids keep their first pair. Parent cycles cannot come from a real `/proc`, but
/// are handled: each cycle is entered at its smallest pid. Every distinct pid appears exactly
/// once.
pub fn tree_rows(pairs: &[(u32, u32)]) -> Vec<TreeRow> {
    let mut parent: BTreeMap<u32, u32> = BTreeMap::new();
    for &(pid, ppid) in pairs {
        parent.entry(pid).or_insert(ppid);
    }
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (&pid, &ppid) in &parent {
        if ppid != pid && parent.contains_key(&ppid) {
            children.entry(ppid).or_default().push(pid);
        } else {
            roots.push(pid);
        }
    }
    let mut rows = Vec::with_capacity(parent.len());
    let mut seen: BTreeSet<u32> = BTreeSet::new();
    let walk = |root: u32, rows: &mut Vec<TreeRow>, seen: &mut BTreeSet<u32>| {
        let mut stack = vec![TreeRow {
            pid: root,
            depth: 0,
            last: true,
        }];
        while let Some(row) = stack.pop() {
            if !seen.insert(row.pid) {
                continue;
            }
            rows.push(row);
            if let Some(kids) = children.get(&row.pid) {
                let kids: Vec<u32> = kids.iter().copied().filter(|k| !seen.contains(k)).collect();
                for (i, &k) in kids.iter().enumerate().rev() {
                    stack.push(TreeRow {
                        pid: k,
                        depth: row.depth + 1,
                        last: i + 1 == kids.len(),
                    });
                }
            }
        }
    };
    for &r in &roots {
        walk(r, &mut rows, &mut seen);
    }
    // Whatever is left lies on parent cycles.
    while let Some(&r) = parent.keys().find(|p| !seen.contains(p)) {
        walk(r, &mut rows, &mut seen);
    }
    rows
}

/// Render a [`ProcTree`] as an indented text tree, ancestors on top:
///
/// ```text
/// 23521 root S /usr/bin/containerd-shim-runc-v2 -namespace moby -id d83f… [outside]
/// └─ 23542 ns:1 root S sh -c sleep 3000 & sleep 3001 & wait
///    ├─ 23576 ns:6 root S sleep 3000
///    └─ 23577 ns:7 root S sleep 3001
/// ```
///
/// `ns:N` is the pid inside the container's pid namespace, shown when it differs. Processes
/// with no command line (zombies) show `[comm]`. comm, cmdline and user are escaped for the
/// terminal. Pure.
pub fn render_tree(tree: &ProcTree) -> String {
    let by_pid: HashMap<u32, &ProcNode> = tree
        .ancestors
        .iter()
        .chain(&tree.nodes)
        .map(|n| (n.pid, n))
        .collect();
    let pairs: Vec<(u32, u32)> = tree
        .ancestors
        .iter()
        .chain(&tree.nodes)
        .map(|n| (n.pid, n.ppid))
        .collect();
    let mut out = String::new();
    let mut last_at_depth: Vec<bool> = Vec::new();
    for row in tree_rows(&pairs) {
        let Some(node) = by_pid.get(&row.pid) else {
            continue;
        };
        last_at_depth.truncate(row.depth);
        for &last in last_at_depth.iter().skip(1) {
            out.push_str(if last { "   " } else { "│  " });
        }
        if row.depth > 0 {
            out.push_str(if row.last { "└─ " } else { "├─ " });
        }
        last_at_depth.push(row.last);
        out.push_str(&node_label(node));
        out.push('\n');
    }
    out
}

fn node_label(n: &ProcNode) -> String {
    let mut s = n.pid.to_string();
    if let Some(ns) = n.ns_pid.filter(|&ns| ns != n.pid) {
        s.push_str(&format!(" ns:{ns}"));
    }
    let cmd = if n.cmdline.is_empty() {
        format!("[{}]", n.comm)
    } else {
        n.cmdline.clone()
    };
    s.push_str(&format!(
        " {} {} {}",
        terminal(&n.user),
        n.state,
        terminal(&cmd)
    ));
    if !n.in_container {
        s.push_str(" [outside]");
    }
    s
}

/// Read one process. `Err` if its stat cannot be read or parsed; status and cmdline are
/// optional (fields left empty).
fn read_node(
    proc_root: &Path,
    pid: u32,
    users: &UserNames,
    in_container: bool,
) -> io::Result<ProcNode> {
    let p = host::proc::process(proc_root, pid)?;
    let stat: StatLine = p.read("stat").map_err(|e| match e {
        procfs::ProcError::Other(_) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}/{pid}/stat: unparsable", proc_root.display()),
        ),
        e => host::proc::into_io(e),
    })?;
    let status: Option<ProcStatus> = p.read("status").ok();
    let cmdline = p
        .read::<_, host::proc::Bytes>("cmdline")
        .map(|b| parse_cmdline(&b.0))
        .unwrap_or_default();
    let uid = status.as_ref().and_then(|s| s.uid_effective);
    Ok(ProcNode {
        pid,
        ppid: stat.ppid,
        ns_pid: status.as_ref().and_then(|s| s.pid_in_namespace()),
        comm: stat.comm,
        state: stat.state,
        uid,
        user: uid.map_or_else(|| "?".to_owned(), |u| users.name(u)),
        cmdline,
        threads: status.as_ref().and_then(|s| s.threads).or(stat.num_threads),
        start_time: stat.start_time,
        in_container,
    })
}

/// The process tree of a container given its pids (e.g. from [`read_cgroup_pids`]), with user
/// names from the host's `/etc/passwd`.
pub fn process_tree(pids: &[u32]) -> ProcTree {
    process_tree_at(host::proc::root(), pids, &UserNames::load_host())
}

/// [`process_tree`] under another procfs mount, with the given user names.
///
/// A pid that cannot be read goes to [`ProcTree::vanished`]; an ancestor that cannot be read
/// is left out. Never fails and never panics.
pub fn process_tree_at(proc_root: &Path, pids: &[u32], users: &UserNames) -> ProcTree {
    let wanted: BTreeSet<u32> = pids.iter().copied().collect();
    let mut tree = ProcTree::default();
    for &pid in &wanted {
        match read_node(proc_root, pid, users, true) {
            Ok(n) => tree.nodes.push(n),
            Err(_) => tree.vanished.push(pid),
        }
    }
    // The chain above each container root stops at the first process outside the container,
    // which by definition is the root's parent.
    let outside: BTreeSet<u32> = tree
        .nodes
        .iter()
        .map(|n| n.ppid)
        .filter(|p| *p != 0 && !wanted.contains(p))
        .collect();
    for ppid in outside {
        if let Ok(n) = read_node(proc_root, ppid, users, false) {
            tree.ancestors.push(n);
        }
    }
    tree
}

/// The process tree under `root` (itself and all its descendants), e.g. a container's init.
pub fn process_tree_from_root(root: u32) -> ProcTree {
    process_tree_from_root_at(host::proc::root(), root, &UserNames::load_host())
}

/// [`process_tree_from_root`] under another procfs mount.
pub fn process_tree_from_root_at(proc_root: &Path, root: u32, users: &UserNames) -> ProcTree {
    let pids = descendants(&all_parents(proc_root), root);
    process_tree_at(proc_root, &pids, users)
}

/// `(pid, ppid)` of every process under `proc_root` whose stat could be read.
pub fn all_parents(proc_root: &Path) -> Vec<(u32, u32)> {
    host::proc::pids(proc_root)
        .into_iter()
        .filter_map(|pid| read_stat_at(proc_root, pid).ok().map(|s| (pid, s.ppid)))
        .collect()
}

/// `root` and all its descendants according to `pairs` (`(pid, ppid)`), ascending. Pure.
pub fn descendants(pairs: &[(u32, u32)], root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(pid, ppid) in pairs {
        if pid != ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = BTreeSet::from([root]);
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if out.insert(c) {
                stack.push(c);
            }
        }
    }
    out.into_iter().collect()
}

/// Pids listed in a `cgroup.procs` file (one per line); other lines are skipped. Pure.
pub fn parse_pid_list(text: &str) -> Vec<u32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Every pid in the cgroup directory `dir` and the cgroups below it (`cgroup.procs` lists
/// only a cgroup's own members), ascending and deduplicated. `Err` only if `dir` itself has no
/// readable `cgroup.procs`; sub-cgroups removed meanwhile are skipped.
pub fn read_cgroup_pids(dir: &Path) -> io::Result<Vec<u32>> {
    let mut pids: BTreeSet<u32> = parse_pid_list(&read_lossy(&dir.join("cgroup.procs"))?)
        .into_iter()
        .collect();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let sub = e.path();
                if let Ok(t) = read_lossy(&sub.join("cgroup.procs")) {
                    pids.extend(parse_pid_list(&t));
                }
                stack.push(sub);
            }
        }
    }
    Ok(pids.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const STAT_PAREN: &str = include_str!("../../tests/fixtures/inspect/stat-comm-paren-space.txt");

    #[test]
    fn stat_with_parens_and_spaces_in_comm() {
        let s = parse_stat(STAT_PAREN).unwrap();
        assert_eq!(s.pid, 2429);
        assert_eq!(s.comm, "x) (y z)");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 2416);
        assert_eq!(s.pgrp, Some(2416));
        assert_eq!(s.session, Some(22256));
        assert_eq!(s.num_threads, Some(1));
        assert_eq!(s.start_time, Some(135231));
    }

    #[test]
    fn stat_edge_cases() {
        let s = parse_stat("7 () R 0").unwrap();
        assert_eq!((s.pid, s.comm.as_str(), s.state, s.ppid), (7, "", 'R', 0));
        assert_eq!(s.start_time, None);
        let s = parse_stat("8 ((sd-pam)) S 1 8 8 0").unwrap();
        assert_eq!(s.comm, "(sd-pam)");
        assert_eq!(parse_stat("8 (a S 1"), None);
        assert_eq!(parse_stat("8 )a( S 1"), None);
        assert_eq!(parse_stat("x (a) S 1"), None);
        assert_eq!(parse_stat("8 (a)"), None);
        assert_eq!(parse_stat("8 (a) SS 1"), None);
        assert_eq!(parse_stat("8 (a) S -1"), None);
        assert_eq!(parse_stat(""), None);
        // Field 22 (start time), counted from the last `)`.
        let stat = "6071 (sleep) S 6060 6071 6071 0 -1 4194560 109 0 0 0 0 0 0 0 20 0 1 0 34361 1335296 1 18446744073709551615";
        assert_eq!(parse_stat(stat).unwrap().start_time, Some(34361));
        let stat = "42 (a) b) (c) R 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0";
        assert_eq!(parse_stat(stat).unwrap().start_time, Some(777));
        assert_eq!(parse_stat("1 (x) R 1").unwrap().start_time, None);
    }

    #[test]
    fn cmdline() {
        assert_eq!(
            parse_cmdline(b"sh\0-c\0sleep 3000 & wait\0"),
            "sh -c sleep 3000 & wait"
        );
        assert_eq!(
            parse_cmdline(b"nginx: worker process\0\0\0"),
            "nginx: worker process"
        );
        assert_eq!(parse_cmdline(b""), "");
        assert_eq!(parse_cmdline(b"\0\0"), "");
        assert_eq!(parse_cmdline(b"a\xff\0b"), "a\u{fffd} b");
    }

    #[test]
    fn passwd() {
        let u = UserNames::parse(
            "root:x:0:0:root:/root:/bin/bash\n# c\nbroken\nnobody:x:65534:65534::/:/x\n\
             toor:x:0:0::/:/x\n+nis::::::\n",
        );
        assert_eq!(u.name(0), "root");
        assert_eq!(u.name(65534), "nobody");
        assert_eq!(u.name(1000), "1000");
    }

    fn rows(pairs: &[(u32, u32)]) -> Vec<(u32, usize, bool)> {
        tree_rows(pairs)
            .into_iter()
            .map(|r| (r.pid, r.depth, r.last))
            .collect()
    }

    #[test]
    fn forest_building() {
        // shim 23521 -> sh 23542 -> sleeps; a docker-exec'd process under the same shim.
        let pairs = [
            (23577, 23542),
            (23542, 23521),
            (23576, 23542),
            (23521, 1),
            (23600, 23521),
        ];
        assert_eq!(
            rows(&pairs),
            [
                (23521, 0, true),
                (23542, 1, false),
                (23576, 2, false),
                (23577, 2, true),
                (23600, 1, true),
            ]
        );
        // Two roots; duplicates; self-parent.
        assert_eq!(
            rows(&[(5, 5), (3, 9), (4, 3), (4, 5)]),
            [(3, 0, true), (4, 1, true), (5, 0, true)]
        );
        // A cycle is entered at its smallest pid and nothing is lost.
        assert_eq!(
            rows(&[(1, 2), (2, 1), (3, 2)]),
            [(1, 0, true), (2, 1, true), (3, 2, true)]
        );
        assert!(rows(&[]).is_empty());
        assert_eq!(descendants(&pairs, 23542), [23542, 23576, 23577]);
        assert_eq!(descendants(&[(1, 2), (2, 1)], 1), [1, 2]);
    }

    fn node(pid: u32, ppid: u32, ns_pid: u32, cmd: &str, inside: bool) -> ProcNode {
        ProcNode {
            pid,
            ppid,
            ns_pid: Some(ns_pid),
            comm: cmd.split(' ').next().unwrap_or("").to_owned(),
            state: 'S',
            uid: Some(0),
            user: "root".to_owned(),
            cmdline: cmd.to_owned(),
            threads: Some(1),
            start_time: None,
            in_container: inside,
        }
    }

    #[test]
    fn render() {
        let mut zombie = node(23590, 23576, 8, "", true);
        zombie.comm = "evil\u{1b}[2J".to_owned();
        zombie.state = 'Z';
        let tree = ProcTree {
            nodes: vec![
                node(
                    23542,
                    23521,
                    1,
                    "sh -c sleep 3000 & sleep 3001 & wait",
                    true,
                ),
                node(23576, 23542, 6, "sleep 3000", true),
                node(23577, 23542, 7, "sleep 3001", true),
                zombie,
            ],
            ancestors: vec![node(
                23521,
                1,
                23521,
                "/usr/bin/containerd-shim-runc-v2 -namespace moby",
                false,
            )],
            vanished: vec![],
        };
        assert_eq!(
            render_tree(&tree),
            "23521 root S /usr/bin/containerd-shim-runc-v2 -namespace moby [outside]\n\
             └─ 23542 ns:1 root S sh -c sleep 3000 & sleep 3001 & wait\n\
             \x20  ├─ 23576 ns:6 root S sleep 3000\n\
             \x20  │  └─ 23590 ns:8 root Z [evil\\x1b[2J]\n\
             \x20  └─ 23577 ns:7 root S sleep 3001\n"
        );
        assert_eq!(render_tree(&ProcTree::default()), "");
    }

    /// A scratch directory laid out like /proc.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(tag: &str) -> FakeProc {
            let d =
                std::env::temp_dir().join(format!("ctrace-inspect-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            FakeProc(d)
        }

        fn add(&self, pid: u32, stat: &str, status: Option<&str>, cmdline: &[u8]) {
            let d = self.0.join(pid.to_string());
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("stat"), stat).unwrap();
            if let Some(s) = status {
                fs::write(d.join("status"), s).unwrap();
            }
            fs::write(d.join("cmdline"), cmdline).unwrap();
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn reads_fake_proc_and_skips_vanished() {
        let p = FakeProc::new("tree");
        p.add(
            100,
            "100 (containerd-shim) S 1 100 100 0 -1 0 0 0 0 0 0 0 0 0 20 0 12 0 500 0",
            Some("Uid:\t0\t0\t0\t0\nThreads:\t12\n"),
            b"/usr/bin/containerd-shim-runc-v2\0-id\0abc\0",
        );
        p.add(
            101,
            "101 (x) (y z)) S 100 101 101 0",
            Some("Uid:\t1000\t1000\t1000\t1000\nNSpid:\t101\t1\n"),
            b"x) (y z)\0",
        );
        p.add(102, "102 (sleep) S 101 101 101 0", None, b"");
        p.add(103, "garbage", None, b"");
        let users = UserNames::parse("root:x:0:0::/:/x\nalice:x:1000:1000::/:/x\n");
        // 104 does not exist (exited); 103 is unreadable garbage.
        let tree = process_tree_at(&p.0, &[101, 102, 103, 104, 102], &users);
        assert_eq!(tree.vanished, [103, 104]);
        let pids: Vec<u32> = tree.nodes.iter().map(|n| n.pid).collect();
        assert_eq!(pids, [101, 102]);
        assert_eq!(tree.ancestors.len(), 1);
        let shim = &tree.ancestors[0];
        assert_eq!(
            (shim.pid, shim.in_container, shim.threads),
            (100, false, Some(12))
        );
        let n101 = tree.get(101).unwrap();
        assert_eq!(n101.comm, "x) (y z)");
        assert_eq!((n101.user.as_str(), n101.ns_pid), ("alice", Some(1)));
        let n102 = tree.get(102).unwrap();
        assert_eq!((n102.user.as_str(), n102.uid), ("?", None));
        assert_eq!(
            render_tree(&tree),
            "100 root S /usr/bin/containerd-shim-runc-v2 -id abc [outside]\n\
             └─ 101 ns:1 alice S x) (y z)\n\
             \x20  └─ 102 ? S [sleep]\n"
        );
        let from_root = process_tree_from_root_at(&p.0, 101, &users);
        assert_eq!(from_root.nodes, tree.nodes);
        assert!(process_tree_at(&p.0.join("nope"), &[1], &users)
            .nodes
            .is_empty());
    }

    #[test]
    fn cgroup_pid_walk() {
        let p = FakeProc::new("cgroup");
        fs::write(p.0.join("cgroup.procs"), "5\n3\nbad\n").unwrap();
        fs::create_dir_all(p.0.join("child/grandchild")).unwrap();
        fs::write(p.0.join("child/cgroup.procs"), "9\n3\n").unwrap();
        fs::write(p.0.join("child/grandchild/cgroup.procs"), "11\n").unwrap();
        assert_eq!(read_cgroup_pids(&p.0).unwrap(), [3, 5, 9, 11]);
        assert!(read_cgroup_pids(&p.0.join("nope")).is_err());
    }

    #[test]
    fn live_tree_of_this_process() {
        let me = std::process::id();
        let tree = process_tree(&[me]);
        assert_eq!(tree.nodes.len(), 1);
        assert_eq!(tree.nodes[0].pid, me);
        assert!(tree.nodes[0].in_container);
        assert!(tree.vanished.is_empty());
        assert!(!render_tree(&tree).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn parse_stat_never_panics(s in "\\PC{0,80}") {
            let _ = parse_stat(&s);
        }

        #[test]
        fn parse_stat_round_trips_comm(comm in "[ -~]{0,16}", pid in 1u32.., ppid in 0u32..) {
            let line = format!("{pid} ({comm}) S {ppid} 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0");
            let s = parse_stat(&line).unwrap();
            proptest::prop_assert_eq!(s.comm, comm);
            proptest::prop_assert_eq!((s.pid, s.ppid, s.start_time), (pid, ppid, Some(77)));
        }

        #[test]
        fn cmdline_and_passwd_never_panic(
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            s in "\\PC{0,80}",
        ) {
            let _ = parse_cmdline(&b);
            let _ = UserNames::parse(&s);
            let _ = parse_pid_list(&s);
        }

        #[test]
        fn every_pid_rendered_once(
            pairs in proptest::collection::vec((0u32..20, 0u32..20), 0..30)
        ) {
            let rows = tree_rows(&pairs);
            let mut got: Vec<u32> = rows.iter().map(|r| r.pid).collect();
            got.sort_unstable();
            let mut want: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            want.sort_unstable();
            want.dedup();
            proptest::prop_assert_eq!(got, want);
            // Depths only grow by one per step.
            let mut prev = 0usize;
            for r in &rows {
                proptest::prop_assert!(r.depth <= prev + 1);
                prev = r.depth;
            }
        }
    }
}
