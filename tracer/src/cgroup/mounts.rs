//! Where the cgroup hierarchies are mounted: each v1 controller's and the v2 one, from the
//! mount table (read through procfs), and cgroup paths joined under them.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    os::unix::ffi::OsStringExt as _,
    path::{Component, Path, PathBuf},
};

/// Mount points of the cgroup hierarchies (from `/proc/self/mounts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    /// cgroup2: `/sys/fs/cgroup` on pure v2 hosts, `/sys/fs/cgroup/unified` on hybrid ones.
    pub v2: Option<PathBuf>,
    /// v1 controller name (`memory`, `cpu`, `cpuacct`, `pids`, `name=systemd`, ...) → mount.
    pub v1: BTreeMap<String, PathBuf>,
}

impl Mounts {
    /// This host's mounts.
    pub fn current() -> Self {
        Self::parse(&crate::host::proc::self_mounts().unwrap_or_default())
    }

    /// Parse `/proc/self/mounts` content; the first mount of each hierarchy wins, malformed
    /// lines are skipped.
    pub fn parse(mounts: &str) -> Self {
        let mut m = Self::default();
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, mount_point, fs_type, options, ..] = fields[..] else {
                continue;
            };
            match fs_type {
                "cgroup2" => {
                    m.v2.get_or_insert_with(|| unescape(mount_point));
                }
                "cgroup" => {
                    for opt in options.split(',') {
                        if is_controller(opt) {
                            m.v1.entry(opt.to_owned())
                                .or_insert_with(|| unescape(mount_point));
                        }
                    }
                }
                _ => {}
            }
        }
        m
    }

    /// Directory of `cgroup_path` in the v1 hierarchy of `controller`.
    pub fn v1_dir(&self, controller: &str, cgroup_path: &str) -> Option<PathBuf> {
        join(self.v1.get(controller)?, cgroup_path)
    }

    /// Directory of `cgroup_path` in the v2 hierarchy.
    pub fn v2_dir(&self, cgroup_path: &str) -> Option<PathBuf> {
        join(self.v2.as_ref()?, cgroup_path)
    }
}

/// `cgroup_path`, then each of its ancestors below the hierarchy's root: `/a/b`, `/a`.
pub fn ancestors(cgroup_path: &str) -> impl Iterator<Item = &str> {
    let trimmed = cgroup_path.trim_end_matches('/');
    std::iter::successors((!trimmed.is_empty()).then_some(trimmed), |p| {
        let parent = &p[..p.rfind('/')?];
        (!parent.is_empty()).then_some(parent)
    })
}

/// Mount options that name a controller (not `rw`, `relatime`, ...).
fn is_controller(opt: &str) -> bool {
    const NOT: [&str; 8] = [
        "rw",
        "ro",
        "nosuid",
        "nodev",
        "noexec",
        "relatime",
        "noatime",
        "nsdelegate",
    ];
    !opt.is_empty()
        && !NOT.contains(&opt)
        && !opt.starts_with("release_agent")
        && !opt.starts_with("clone_children")
        && !opt.starts_with("seclabel")
        && !opt.starts_with("memory_")
        && opt != "xattr"
        && opt != "cpuset_v2_mode"
        && opt != "noprefix"
}

/// Undo `/proc/mounts` octal escapes (`\040` for a space).
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0')))
            .and_then(|v| u8::try_from(v).ok());
        match (b[i], octal) {
            (b'\\', Some(v)) => {
                out.push(v);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// `root` joined with a cgroup path, refusing `..` so a path from a container's state can
/// never leave the hierarchy.
pub fn join(root: &Path, cgroup_path: &str) -> Option<PathBuf> {
    let mut dir = root.to_path_buf();
    for c in Path::new(cgroup_path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => dir.push(part),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::MemoryDir;

    const HYBRID: &str = "\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    #[test]
    fn hybrid_and_pure_v2_mounts() {
        let m = Mounts::parse(HYBRID);
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(m.v1["memory"], Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(m.v1["name=systemd"], Path::new("/sys/fs/cgroup/systemd"));
        assert!(!m.v1.contains_key("rw") && !m.v1.contains_key("relatime"));
        assert_eq!(
            m.memory("/docker/abc"),
            Some(MemoryDir::V1(PathBuf::from(
                "/sys/fs/cgroup/memory/docker/abc"
            )))
        );
        let combined = Mounts::parse("cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0");
        assert_eq!(combined.v1["cpu"], combined.v1["cpuacct"]);
        let v2 =
            Mounts::parse("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate,memory_recursiveprot 0 0");
        assert_eq!(
            v2.memory("/system.slice/docker-x.scope"),
            Some(MemoryDir::V2(PathBuf::from(
                "/sys/fs/cgroup/system.slice/docker-x.scope"
            )))
        );
        assert_eq!(Mounts::parse("garbage\n\n"), Mounts::default());
        assert_eq!(unescape("/a\\040b\\777"), PathBuf::from("/a b\\777"));
        assert_eq!(unescape("a\\134b\\011"), PathBuf::from("a\\b\t"));
    }

    #[test]
    fn joins_refuse_escapes() {
        let root = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(join(root, "/docker/x"), Some(root.join("docker/x")));
        assert_eq!(join(root, "/"), Some(root.to_path_buf()));
        assert_eq!(join(root, "/docker/../../etc"), None);
    }

    #[test]
    fn ancestors_stop_below_the_root() {
        let all = |p| ancestors(p).collect::<Vec<_>>();
        assert_eq!(
            all("/kubepods/pod1/abc"),
            ["/kubepods/pod1/abc", "/kubepods/pod1", "/kubepods"]
        );
        assert_eq!(all("/docker/abc/"), ["/docker/abc", "/docker"]);
        assert_eq!(all("relative/x"), ["relative/x", "relative"]);
        assert!(all("/").is_empty());
        assert!(all("").is_empty());
    }
}
