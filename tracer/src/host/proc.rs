//! The one reader of `/proc`, on the `procfs` crate.
//!
//! Every read of `/proc` in the library goes through here, under a root that tests replace
//! with a directory laid out like `/proc` ([`process`] takes it). procfs opens the process
//! directory once ([`Process::new_with_root`]) and reads its files relative to that handle.
//!
//! procfs's typed parsers are used where they fit (`statm`, `cgroup`, `task/`, the process
//! listing). `stat` and `status` of untrusted processes are parsed by ctrace's own
//! [`FromRead`] types instead (`inspect::StatLine`, `inspect::ProcStatus`), read through
//! [`Process::read`]: procfs's `Stat` needs all of its 35+ fields and its `Status` some 15
//! lines of valid UTF-8, where ctrace reads container-chosen names lossily and degrades field
//! by field ("unknown") rather than losing the whole record.

use std::{
    fmt::Display,
    io::{self, Read},
    path::{Path, PathBuf},
};

use procfs::{process::Process, FromRead, ProcError, ProcResult};

/// The host's procfs mount.
pub const ROOT: &str = "/proc";

/// [`ROOT`] as a path.
pub fn root() -> &'static Path {
    Path::new(ROOT)
}

/// The process `pid` (a number, a thread id, or `self`) under `root`. `NotFound` if it does
/// not exist.
pub fn process(root: &Path, pid: impl Display) -> io::Result<Process> {
    Process::new_with_root(root.join(pid.to_string())).map_err(into_io)
}

/// True for the errors that mean "this process is gone" (it exited between listing and
/// reading): `ENOENT` and `ESRCH`.
pub fn is_vanished(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ESRCH)
}

/// A procfs error as the `io::Error` that reading the file directly would have given
/// (`ENOENT` for a vanished process, `EACCES`), so callers keep their messages.
pub fn into_io(e: ProcError) -> io::Error {
    match e {
        ProcError::NotFound(_) => io::Error::from_raw_os_error(libc::ENOENT),
        ProcError::PermissionDenied(_) => io::Error::from_raw_os_error(libc::EACCES),
        ProcError::Io(e, _) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// A file's raw bytes, for ctrace's own parsers (through [`Process::read`]).
pub struct Bytes(pub Vec<u8>);

impl FromRead for Bytes {
    fn from_read<R: Read>(mut r: R) -> ProcResult<Self> {
        let mut b = Vec::new();
        r.read_to_end(&mut b)?;
        Ok(Bytes(b))
    }
}

impl Bytes {
    /// The bytes as text, invalid UTF-8 replaced (comm and cmdline are arbitrary bytes).
    pub fn lossy(self) -> String {
        match String::from_utf8(self.0) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

/// Parse the file `file` of process `pid` under `root` with `T`'s [`FromRead`].
pub fn read<T: FromRead>(root: &Path, pid: impl Display, file: &str) -> io::Result<T> {
    process(root, pid)?.read(file).map_err(into_io)
}

/// The file `file` of process `pid` under `root`, as lossy text.
pub fn read_lossy(root: &Path, pid: impl Display, file: &str) -> io::Result<String> {
    read::<Bytes>(root, pid, file).map(Bytes::lossy)
}

/// The `Key:<TAB>value` lines of a `status` file as (key, value after the colon), the one
/// splitter of that format: [`tgid`] reads one key through it, `inspect::parse_status` the
/// rest. Lines without a colon are skipped.
pub fn status_fields(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|l| l.split_once(':'))
}

/// The process (thread group) task `tid` belongs to: `Tgid` of its `status`. `/proc/<tid>`
/// resolves threads too (they are hidden from listings only). The line is found by its key
/// alone: the rest of `status` (a comm that is not UTF-8, say) does not matter.
pub fn tgid(root: &Path, tid: u32) -> Option<u32> {
    let text = read_lossy(root, tid, "status").ok()?;
    let (_, value) = status_fields(&text).find(|(key, _)| *key == "Tgid")?;
    value.trim().parse().ok()
}

/// The pids under `root` (directories named by a number), unordered. Empty if `root`
/// cannot be listed.
pub fn pids(root: &Path) -> Vec<u32> {
    let Ok(all) = procfs::process::all_processes_with_root(root) else {
        return Vec::new();
    };
    all.filter_map(|p| u32::try_from(p.ok()?.pid()).ok())
        .collect()
}

/// The thread ids of process `pid` (`<root>/<pid>/task`); empty if it is gone.
pub fn tids(root: &Path, pid: u32) -> Vec<u32> {
    let Ok(tasks) = process(root, pid).and_then(|p| p.tasks().map_err(into_io)) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| u32::try_from(t.ok()?.tid).ok())
        .collect()
}

/// The unified (v2) cgroup path of task `pid` (`0::<path>` of `<root>/<pid>/cgroup`), without
/// the ` (deleted)` mark of a removed cgroup.
pub fn unified_cgroup(root: &Path, pid: u32) -> Option<String> {
    let groups = process(root, pid).ok()?.cgroups().ok()?;
    let g = groups
        .into_iter()
        .find(|g| g.hierarchy == 0 && g.controllers.is_empty())?;
    let path = g.pathname;
    let path = path.strip_suffix(" (deleted)").unwrap_or(&path);
    path.starts_with('/').then(|| path.to_owned())
}

/// Resident set size in pages (`statm`) and command name (`comm`, trailing whitespace
/// removed) of a live process; `None` if it is gone or its name is not UTF-8.
pub fn rss_pages_and_comm(pid: u32) -> Option<(u64, String)> {
    let p = process(root(), pid).ok()?;
    let resident = p.statm().ok()?.resident;
    let comm = String::from_utf8(p.read::<_, Bytes>("comm").ok()?.0).ok()?;
    Some((resident, comm.trim_end().to_owned()))
}

/// The target of the link `<root>/<pid>/<rel>` (a namespace link, `ns/net` -> `net:[4026..]`).
///
/// Read by hand: procfs has no readlink, and its `Process::namespaces` stats the links
/// instead, which fails for the whole set on one unreadable link and cannot read the
/// dangling links of a test directory.
pub fn read_link(root: &Path, pid: &str, rel: &str) -> io::Result<PathBuf> {
    std::fs::read_link(root.join(pid).join(rel))
}

/// Whether `<root>/<pid>/<rel>` exists (a process that exited mid-read has no `ns`).
pub fn exists(root: &Path, pid: &str, rel: &str) -> bool {
    root.join(pid).join(rel).exists()
}

/// `/proc/self/mounts`, the mount table of this process's mount namespace.
pub fn self_mounts() -> io::Result<String> {
    read_lossy(root(), "self", "mounts")
}

/// `/proc/sys/kernel/hostname`, trimmed; empty if unreadable. procfs has no API for it, so it
/// is read through procfs's [`FromRead::from_file`].
pub fn hostname() -> String {
    Bytes::from_file(root().join("sys/kernel/hostname"))
        .map(|b| b.lossy().trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(pids(root()).contains(&me));
        assert!(tids(root(), me).contains(&me));
        assert!(read_lossy(root(), me, "status").unwrap().contains("Tgid:"));
        assert!(self_mounts().unwrap().contains(" / "));
        let gone = read_lossy(root(), u32::MAX, "status").unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn reads_a_test_directory() {
        let d = std::env::temp_dir().join(format!("ctrace-host-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("7/task/7")).unwrap();
        std::fs::create_dir_all(d.join("7/task/9")).unwrap();
        std::fs::create_dir_all(d.join("nope")).unwrap();
        std::fs::write(d.join("7/cgroup"), "1:name=systemd:/x\n0::/a/b (deleted)\n").unwrap();
        std::fs::write(d.join("7/comm"), b"a\xffb\n").unwrap();
        std::fs::write(d.join("7/status"), b"Name:\ta\xff:b\nTgid:\t5\nPid:\t7\n").unwrap();
        assert_eq!(
            tgid(&d, 7),
            Some(5),
            "a thread of process 5, whatever its name"
        );
        assert_eq!(tgid(&d, 8), None);
        assert_eq!(pids(&d), [7]);
        let mut t = tids(&d, 7);
        t.sort_unstable();
        assert_eq!(t, [7, 9]);
        assert_eq!(unified_cgroup(&d, 7).as_deref(), Some("/a/b"));
        assert_eq!(read_lossy(&d, 7, "comm").unwrap(), "a\u{fffd}b\n");
        assert_eq!(
            read_lossy(&d, 8, "comm").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
