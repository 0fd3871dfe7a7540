//! Capability sets and the other security fields of `/proc/<pid>/status`.
//!
//! [`parse_status`] is pure; [`read_status`] and [`read_proc_caps`] read a live process.

use std::{fmt, fs, io, path::Path};

use serde::{ser::SerializeSeq, Serialize, Serializer};

use crate::{
    host,
    names::{capability_name, CAPABILITIES},
};

/// A set of capabilities, bit `n` = capability `n` (as in the `Cap*` lines of
/// `/proc/<pid>/status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet(pub u64);

const fn bit(cap: u32) -> u64 {
    1 << cap
}

/// The capabilities runc, Docker and containerd give a container by default (the OCI default
/// set, 14 capabilities). Observed on this project's lab (Docker 20.10, runc 1.1):
/// `CapEff: 00000000a80425fb`.
pub const OCI_DEFAULT_CAPS: CapSet = CapSet(
    bit(0) // CAP_CHOWN
        | bit(1) // CAP_DAC_OVERRIDE
        | bit(3) // CAP_FOWNER
        | bit(4) // CAP_FSETID
        | bit(5) // CAP_KILL
        | bit(6) // CAP_SETGID
        | bit(7) // CAP_SETUID
        | bit(8) // CAP_SETPCAP
        | bit(10) // CAP_NET_BIND_SERVICE
        | bit(13) // CAP_NET_RAW
        | bit(18) // CAP_SYS_CHROOT
        | bit(27) // CAP_MKNOD
        | bit(29) // CAP_AUDIT_WRITE
        | bit(31), // CAP_SETFCAP
);

impl CapSet {
    /// No capabilities.
    pub const EMPTY: CapSet = CapSet(0);

    /// Every capability the kernel headers known to this build define (0..=40).
    pub const ALL_KNOWN: CapSet = CapSet((1u64 << CAPABILITIES.len()) - 1);

    /// Parse the hex value of a `Cap*` line (`00000000a80425fb`). Surrounding whitespace and a
    /// `0x` prefix are accepted; anything else that is not 1..=16 hex digits is `None`.
    pub fn from_hex(s: &str) -> Option<CapSet> {
        let s = s.trim();
        let s = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(CapSet)
    }

    /// The set holding the given capability numbers (numbers above 63 are ignored).
    pub fn from_caps(caps: &[u32]) -> CapSet {
        CapSet(
            caps.iter()
                .filter(|&&c| c < 64)
                .fold(0, |acc, &c| acc | bit(c)),
        )
    }

    /// The set holding the named capabilities (`CAP_SYS_ADMIN`, `sys_admin`, or `CAP_<n>`);
    /// `None` if a name is not recognised.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Option<CapSet> {
        let mut set = 0u64;
        for name in names {
            set |= bit(cap_number(name.as_ref())?);
        }
        Some(CapSet(set))
    }

    /// The 16-digit hex form used by `/proc/<pid>/status`.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// True if capability `cap` is in the set.
    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & bit(cap) != 0
    }

    /// True if the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of capabilities in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Capability numbers in the set, ascending.
    pub fn caps(self) -> Vec<u32> {
        (0..64).filter(|&c| self.contains(c)).collect()
    }

    /// Capability names in the set, ascending by number; unknown bits as `CAP_<n>`.
    pub fn names(self) -> Vec<String> {
        self.caps().into_iter().map(capability_name).collect()
    }

    /// Capabilities in `self` but not in `other`.
    pub fn difference(self, other: CapSet) -> CapSet {
        CapSet(self.0 & !other.0)
    }

    /// Capabilities in both sets.
    pub fn intersection(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    /// Capabilities in either set.
    pub fn union(self, other: CapSet) -> CapSet {
        CapSet(self.0 | other.0)
    }

    /// True if every capability of `self` is in `other`.
    pub fn is_subset(self, other: CapSet) -> bool {
        self.difference(other).is_empty()
    }

    /// `(added, dropped)`: capabilities of `self` missing from `baseline`, and capabilities of
    /// `baseline` missing from `self`.
    pub fn changes_from(self, baseline: CapSet) -> (CapSet, CapSet) {
        (self.difference(baseline), baseline.difference(self))
    }

    /// Names joined with `", "`, or `none` for the empty set.
    pub fn list(self) -> String {
        if self.is_empty() {
            "none".to_owned()
        } else {
            self.names().join(", ")
        }
    }
}

/// Shows [`CapSet::list`].
impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.list())
    }
}

/// Serialised as the list of names.
impl Serialize for CapSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let names = self.names();
        let mut seq = s.serialize_seq(Some(names.len()))?;
        for n in &names {
            seq.serialize_element(n)?;
        }
        seq.end()
    }
}

/// Number of a capability name: `CAP_SYS_ADMIN`, `SYS_ADMIN`, `sys_admin` or `CAP_21`.
pub fn cap_number(name: &str) -> Option<u32> {
    let up = name.trim().to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if let Some(i) = CAPABILITIES.iter().position(|&n| n == full) {
        return Some(i as u32);
    }
    full.strip_prefix("CAP_")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|&n| n < 64)
}

/// `adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing`: how `actual` differs from `baseline`
/// (names in capability-number order).
pub fn describe_diff(actual: CapSet, baseline: CapSet) -> String {
    let (added, dropped) = actual.changes_from(baseline);
    let part = |s: CapSet| {
        if s.is_empty() {
            "nothing".to_owned()
        } else {
            s.names().join(", ")
        }
    };
    format!("adds {}; drops {}", part(added), part(dropped))
}

/// The `Seccomp:` field of `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompMode {
    /// 0: no seccomp.
    Disabled,
    /// 1: strict mode (read, write, exit, sigreturn only).
    Strict,
    /// 2: one or more BPF filters.
    Filter,
}

impl SeccompMode {
    /// From the numeric field value.
    pub fn from_field(n: u32) -> Option<SeccompMode> {
        match n {
            0 => Some(SeccompMode::Disabled),
            1 => Some(SeccompMode::Strict),
            2 => Some(SeccompMode::Filter),
            _ => None,
        }
    }

    /// `disabled`, `strict` or `filter`.
    pub fn as_str(self) -> &'static str {
        match self {
            SeccompMode::Disabled => "disabled",
            SeccompMode::Strict => "strict",
            SeccompMode::Filter => "filter",
        }
    }
}

impl fmt::Display for SeccompMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A process's capability sets and related security state.
///
/// The optional fields are `None` when the kernel does not report them (`NoNewPrivs` since
/// Linux 4.10, `Seccomp` needs `CONFIG_SECCOMP`, `Seccomp_filters` since 5.9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProcCaps {
    /// `CapInh`.
    pub inheritable: CapSet,
    /// `CapPrm`.
    pub permitted: CapSet,
    /// `CapEff`.
    pub effective: CapSet,
    /// `CapBnd`.
    pub bounding: CapSet,
    /// `CapAmb`.
    pub ambient: CapSet,
    /// `NoNewPrivs`.
    pub no_new_privs: Option<bool>,
    /// `Seccomp`.
    pub seccomp: Option<SeccompMode>,
    /// `Seccomp_filters`: number of filters attached.
    pub seccomp_filters: Option<u32>,
}

impl ProcCaps {
    /// The five sets by name, in the order `inspect` shows them.
    pub fn sets(&self) -> [(&'static str, CapSet); 5] {
        [
            ("effective", self.effective),
            ("permitted", self.permitted),
            ("bounding", self.bounding),
            ("inheritable", self.inheritable),
            ("ambient", self.ambient),
        ]
    }
}

/// The fields of `/proc/<pid>/status` that `inspect` uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcStatus {
    /// `Name`: the command name as the kernel prints it (it escapes `\n` and `\\`); untrusted.
    pub name: Option<String>,
    /// `State`, e.g. `S (sleeping)`.
    pub state: Option<String>,
    /// `PPid`, in the reader's pid namespace (0 when the parent is outside it).
    pub ppid: Option<u32>,
    /// `Tgid`: the process a thread belongs to, in the reader's pid namespace.
    #[serde(skip)]
    pub tgid: Option<u32>,
    /// Real uid (first field of `Uid`).
    pub uid_real: Option<u32>,
    /// Effective uid (second field of `Uid`).
    pub uid_effective: Option<u32>,
    /// `NSpid`: the pid in each pid namespace, from the reader's outward-in to the process's
    /// own (e.g. `[23576, 6]`); empty if absent.
    pub nspid: Vec<u32>,
    /// `Threads`.
    pub threads: Option<u32>,
    /// Capability sets; `None` unless all five `Cap*` lines were present and valid.
    pub caps: Option<ProcCaps>,
}

impl ProcStatus {
    /// The pid inside the process's own (innermost) pid namespace: last entry of `NSpid`.
    pub fn pid_in_namespace(&self) -> Option<u32> {
        self.nspid.last().copied()
    }
}

/// Parse the text of `/proc/<pid>/status`. Pure: unknown, missing or malformed fields become
/// `None`; never panics.
pub fn parse_status(text: &str) -> ProcStatus {
    let mut st = ProcStatus::default();
    let mut cap = [None::<CapSet>; 5];
    let mut nnp = None;
    let mut seccomp = None;
    let mut filters = None;
    let mut seen_nspid = false;
    for (key, raw) in host::proc::status_fields(text) {
        let value = raw.trim();
        let num = || value.parse::<u32>().ok();
        match key {
            // Keep the name byte-exact apart from the separator: comm may end in spaces.
            "Name" if st.name.is_none() => {
                st.name = Some(raw.strip_prefix('\t').unwrap_or(raw).to_owned());
            }
            "State" if st.state.is_none() && !value.is_empty() => {
                st.state = Some(value.to_owned());
            }
            "PPid" if st.ppid.is_none() => st.ppid = num(),
            "Tgid" if st.tgid.is_none() => st.tgid = num(),
            "Threads" if st.threads.is_none() => st.threads = num(),
            "Uid" if st.uid_real.is_none() && st.uid_effective.is_none() => {
                let mut ids = value.split_whitespace().map(|v| v.parse::<u32>().ok());
                st.uid_real = ids.next().flatten();
                st.uid_effective = ids.next().flatten();
            }
            "NSpid" if !seen_nspid => {
                seen_nspid = true;
                let ids: Option<Vec<u32>> =
                    value.split_whitespace().map(|v| v.parse().ok()).collect();
                st.nspid = ids.unwrap_or_default();
            }
            "CapInh" | "CapPrm" | "CapEff" | "CapBnd" | "CapAmb" => {
                let i = match key {
                    "CapInh" => 0,
                    "CapPrm" => 1,
                    "CapEff" => 2,
                    "CapBnd" => 3,
                    _ => 4,
                };
                if cap[i].is_none() {
                    cap[i] = CapSet::from_hex(value);
                }
            }
            "NoNewPrivs" if nnp.is_none() => {
                nnp = match value {
                    "0" => Some(false),
                    "1" => Some(true),
                    _ => None,
                };
            }
            "Seccomp" if seccomp.is_none() => seccomp = num().and_then(SeccompMode::from_field),
            "Seccomp_filters" if filters.is_none() => filters = num(),
            _ => {}
        }
    }
    if let [Some(inh), Some(prm), Some(eff), Some(bnd), Some(amb)] = cap {
        st.caps = Some(ProcCaps {
            inheritable: inh,
            permitted: prm,
            effective: eff,
            bounding: bnd,
            ambient: amb,
            no_new_privs: nnp,
            seccomp,
            seccomp_filters: filters,
        });
    }
    st
}

/// Read and parse `/proc/<pid>/status`. `NotFound` if the process does not exist (or exited).
pub fn read_status(pid: u32) -> io::Result<ProcStatus> {
    read_status_at(host::proc::root(), pid)
}

/// [`read_status`] under another procfs mount (or a test directory laid out like one).
pub fn read_status_at(proc_root: &Path, pid: u32) -> io::Result<ProcStatus> {
    host::proc::read(proc_root, pid, "status")
}

/// `status` read through procfs ([`host::proc::read`]) and parsed by [`parse_status`], not
/// procfs's `Status`: that one needs some 15 lines of valid UTF-8, and `Name` is whatever
/// bytes the container chose.
impl procfs::FromRead for ProcStatus {
    fn from_read<R: io::Read>(r: R) -> procfs::ProcResult<Self> {
        let text = <host::proc::Bytes as procfs::FromRead>::from_read(r)?.lossy();
        Ok(parse_status(&text))
    }
}

/// The capability state of a live process. `NotFound` if it does not exist, `InvalidData` if
/// its status has no complete set of `Cap*` lines.
pub fn read_proc_caps(pid: u32) -> io::Result<ProcCaps> {
    read_status(pid)?.caps.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status: no capability lines"),
        )
    })
}

/// Read a file as text, replacing invalid UTF-8 (comm and cmdline are arbitrary bytes).
pub(crate) fn read_lossy(path: &Path) -> io::Result<String> {
    let bytes = fs::read(path)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP_ADD: &str =
        include_str!("../../tests/fixtures/inspect/status-cap-add-sys_admin-net_admin.txt");
    const CAP_DROP_ALL: &str = include_str!("../../tests/fixtures/inspect/status-cap-drop-all.txt");
    const DEFAULT_CHILD: &str =
        include_str!("../../tests/fixtures/inspect/status-default-child.txt");
    const PID_HOST: &str = include_str!("../../tests/fixtures/inspect/status-pid-host.txt");
    const NOBODY_NNP: &str =
        include_str!("../../tests/fixtures/inspect/status-user-nobody-nnp-unconfined.txt");

    #[test]
    fn oci_default_matches_observed_docker_set() {
        assert_eq!(
            OCI_DEFAULT_CAPS,
            CapSet::from_hex("00000000a80425fb").unwrap()
        );
        let expected = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE",
        ];
        assert_eq!(CapSet::from_names(&expected), Some(OCI_DEFAULT_CAPS));
        assert_eq!(OCI_DEFAULT_CAPS.len(), 14);
        // The comments next to the bits name the right capabilities.
        assert_eq!(
            OCI_DEFAULT_CAPS.names(),
            [
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
                "CAP_FOWNER",
                "CAP_FSETID",
                "CAP_KILL",
                "CAP_SETGID",
                "CAP_SETUID",
                "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
                "CAP_SYS_CHROOT",
                "CAP_MKNOD",
                "CAP_AUDIT_WRITE",
                "CAP_SETFCAP",
            ]
        );
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(CapSet::from_hex("0000000000000000"), Some(CapSet::EMPTY));
        assert_eq!(
            CapSet::from_hex(" 000001ffffffffff\n"),
            Some(CapSet(0x1ff_ffff_ffff))
        );
        assert_eq!(CapSet::from_hex("0x20"), Some(CapSet(0x20)));
        assert_eq!(CapSet::from_hex("ffffffffffffffff"), Some(CapSet(u64::MAX)));
        assert_eq!(CapSet::from_hex("1ffffffffffffffff"), None);
        assert_eq!(CapSet::from_hex(""), None);
        assert_eq!(CapSet::from_hex("+12"), None);
        assert_eq!(CapSet::from_hex("12g"), None);
        assert_eq!(CapSet::from_hex("0x"), None);
        assert_eq!(CapSet(0xa80425fb).to_hex(), "00000000a80425fb");
        assert_eq!(CapSet::ALL_KNOWN, CapSet(0x1ff_ffff_ffff));
    }

    #[test]
    fn names_and_unknown_bits() {
        let s = CapSet(bit(21) | bit(12) | bit(41) | bit(63));
        assert_eq!(
            s.names(),
            ["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_41", "CAP_63"]
        );
        assert_eq!(s.caps(), [12, 21, 41, 63]);
        assert!(s.contains(21) && !s.contains(0) && !s.contains(64));
        assert_eq!(CapSet::EMPTY.to_string(), "none");
        assert_eq!(
            CapSet::from_names(&["sys_admin", "NET_ADMIN", "CAP_41"]),
            Some(CapSet(bit(21) | bit(12) | bit(41)))
        );
        assert_eq!(CapSet::from_names(&["CAP_NOPE"]), None);
        assert_eq!(CapSet::from_caps(&[0, 64, 200]), CapSet(1));
        assert_eq!(
            serde_json::to_string(&CapSet(bit(0) | bit(5))).unwrap(),
            r#"["CAP_CHOWN","CAP_KILL"]"#
        );
    }

    #[test]
    fn set_operations() {
        let a = CapSet(0b1100);
        let b = CapSet(0b1010);
        assert_eq!(a.difference(b), CapSet(0b0100));
        assert_eq!(a.intersection(b), CapSet(0b1000));
        assert_eq!(a.union(b), CapSet(0b1110));
        assert!(CapSet(0b1000).is_subset(a));
        assert!(!a.is_subset(b));
        assert_eq!(a.changes_from(b), (CapSet(0b0100), CapSet(0b0010)));
    }

    #[test]
    fn cap_add_fixture() {
        let st = parse_status(CAP_ADD);
        assert_eq!(st.name.as_deref(), Some("sleep"));
        assert_eq!(st.state.as_deref(), Some("S (sleeping)"));
        assert_eq!(st.ppid, Some(23385));
        assert_eq!((st.uid_real, st.uid_effective), (Some(0), Some(0)));
        assert_eq!(st.nspid, [23405, 1]);
        assert_eq!(st.pid_in_namespace(), Some(1));
        assert_eq!(st.threads, Some(1));
        let caps = st.caps.unwrap();
        assert_eq!(caps.effective, CapSet(0xa82435fb));
        assert_eq!(caps.permitted, caps.effective);
        assert_eq!(caps.bounding, caps.effective);
        assert!(caps.inheritable.is_empty() && caps.ambient.is_empty());
        assert_eq!(caps.no_new_privs, Some(false));
        assert_eq!(caps.seccomp, Some(SeccompMode::Filter));
        assert_eq!(caps.seccomp_filters, Some(1));
        assert_eq!(
            describe_diff(caps.effective, OCI_DEFAULT_CAPS),
            "adds CAP_NET_ADMIN, CAP_SYS_ADMIN; drops nothing"
        );
    }

    #[test]
    fn cap_drop_all_fixture() {
        let caps = parse_status(CAP_DROP_ALL).caps.unwrap();
        for set in [
            caps.inheritable,
            caps.permitted,
            caps.effective,
            caps.bounding,
            caps.ambient,
        ] {
            assert!(set.is_empty());
        }
        assert_eq!(
            describe_diff(caps.effective, OCI_DEFAULT_CAPS),
            "adds nothing; drops CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, \
             CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_NET_RAW, \
             CAP_SYS_CHROOT, CAP_MKNOD, CAP_AUDIT_WRITE, CAP_SETFCAP"
        );
        assert_eq!(
            describe_diff(OCI_DEFAULT_CAPS, OCI_DEFAULT_CAPS),
            "adds nothing; drops nothing"
        );
    }

    #[test]
    fn default_child_and_pid_host_fixtures() {
        let st = parse_status(DEFAULT_CHILD);
        assert_eq!(st.nspid, [23576, 6]);
        assert_eq!(st.ppid, Some(23542));
        assert_eq!(st.caps.unwrap().effective, OCI_DEFAULT_CAPS);
        let st = parse_status(PID_HOST);
        // --pid host: only one pid namespace level.
        assert_eq!(st.nspid, [23613]);
        assert_eq!(st.caps.unwrap().bounding, OCI_DEFAULT_CAPS);
    }

    #[test]
    fn nobody_no_new_privs_unconfined_fixture() {
        let st = parse_status(NOBODY_NNP);
        assert_eq!((st.uid_real, st.uid_effective), (Some(65534), Some(65534)));
        let caps = st.caps.unwrap();
        // A non-root user keeps the bounding set but has no effective capabilities.
        assert!(caps.effective.is_empty() && caps.permitted.is_empty());
        assert_eq!(caps.bounding, OCI_DEFAULT_CAPS);
        assert_eq!(caps.no_new_privs, Some(true));
        assert_eq!(caps.seccomp, Some(SeccompMode::Disabled));
        assert_eq!(caps.seccomp_filters, Some(0));
    }

    #[test]
    fn partial_and_odd_input() {
        let st = parse_status("Name:\tx) (y z) \nCapEff:\t00000000000000ff\n");
        assert_eq!(st.name.as_deref(), Some("x) (y z) "));
        assert_eq!(st.caps, None);
        let st = parse_status("Uid:\t1000\nNSpid:\t5 x\nSeccomp:\t7\nPPid:\t-1\n");
        assert_eq!((st.uid_real, st.uid_effective), (Some(1000), None));
        assert!(st.nspid.is_empty());
        assert_eq!(st.ppid, None);
        let old_kernel = "CapInh:\t0\nCapPrm:\t1\nCapEff:\t1\nCapBnd:\t1\nCapAmb:\t0\n";
        let caps = parse_status(old_kernel).caps.unwrap();
        assert_eq!(caps.effective, CapSet(1));
        assert_eq!(
            (caps.no_new_privs, caps.seccomp, caps.seccomp_filters),
            (None, None, None)
        );
        assert_eq!(parse_status(""), ProcStatus::default());
    }

    #[test]
    fn reads_own_status() {
        let st = read_status(std::process::id()).unwrap();
        assert!(st.caps.is_some());
        assert!(!st.nspid.is_empty());
        assert!(read_proc_caps(std::process::id()).is_ok());
        let err = read_proc_caps(u32::MAX).unwrap_err();
        assert!(crate::inspect::is_vanished(&err));
    }

    proptest::proptest! {
        #[test]
        fn parse_status_never_panics(s in "\\PC*") {
            let _ = parse_status(&s);
        }

        #[test]
        fn parse_status_lines_never_panic(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "Name", "State", "PPid", "Uid", "NSpid", "Threads", "CapInh", "CapPrm",
                        "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters",
                    ]),
                    "[ \t0-9a-fx:-]{0,24}",
                ),
                0..20,
            )
        ) {
            let text: String = lines.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
            let _ = parse_status(&text);
        }

        #[test]
        fn hex_round_trip(v in proptest::num::u64::ANY) {
            let s = CapSet(v);
            proptest::prop_assert_eq!(CapSet::from_hex(&s.to_hex()), Some(s));
            proptest::prop_assert_eq!(s.names().len(), s.len());
            let (add, drop) = s.changes_from(OCI_DEFAULT_CAPS);
            proptest::prop_assert_eq!(OCI_DEFAULT_CAPS.union(add).difference(drop), s);
        }

        #[test]
        fn from_hex_never_panics(s in "\\PC{0,40}") {
            let _ = CapSet::from_hex(&s);
            let _ = cap_number(&s);
        }
    }
}
