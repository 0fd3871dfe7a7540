//! The capabilities `watch` (and `agent`) need, and which of them this process lacks.
//!
//! Found by running `watch` under `setpriv --bounding-set=-all,+...` (docs/reliability.md):
//! as uid 0, CAP_BPF and CAP_PERFMON are enough to create the maps, load the programs (they
//! read kernel memory: `bpf_probe_read_kernel`), attach the tracepoints (perf events) and the
//! BTF-typed ones, and read everything else ctrace reads (root owns the runtimes' state, the
//! tracefs format files and the Docker socket). Without CAP_BPF map creation fails with EPERM;
//! without CAP_PERFMON program load does. Checked before anything is loaded, so the error
//! names what is missing instead of an EPERM from deep inside the loader.

/// One capability: its bit in the capability sets and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub bit: u32,
    pub name: &'static str,
}

pub const CAP_DAC_READ_SEARCH: Cap = Cap {
    bit: 2,
    name: "CAP_DAC_READ_SEARCH",
};
pub const CAP_SYS_ADMIN: Cap = Cap {
    bit: 21,
    name: "CAP_SYS_ADMIN",
};
pub const CAP_PERFMON: Cap = Cap {
    bit: 38,
    name: "CAP_PERFMON",
};
pub const CAP_BPF: Cap = Cap {
    bit: 39,
    name: "CAP_BPF",
};

/// What `watch` needs as uid 0.
pub const WATCH: [Cap; 2] = [CAP_BPF, CAP_PERFMON];

/// The effective set from a `/proc/<pid>/status` text (`CapEff:` in hex).
pub fn effective_from_status(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// This process's effective capabilities (`None` when /proc cannot say).
pub fn effective() -> Option<u64> {
    effective_from_status(
        &crate::host::proc::read_lossy(crate::host::proc::root(), "self", "status").ok()?,
    )
}

/// Those of `required` that `effective` lacks. CAP_SYS_ADMIN holds the powers of CAP_BPF and
/// CAP_PERFMON (kernels before 5.8 had only it): with it nothing is missing.
pub fn missing(required: &[Cap], effective: u64) -> Vec<Cap> {
    let has = |c: Cap| effective & (1u64 << c.bit) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    required.iter().copied().filter(|c| !has(*c)).collect()
}

/// The error line for a process that lacks `missing` of [`WATCH`].
pub fn message(missing: &[Cap]) -> String {
    let names: Vec<&str> = missing.iter().map(|c| c.name).collect();
    format!(
        "ctrace needs {} to load its eBPF programs; this process lacks {} (run it as root \
         with all capabilities, or grant them: setpriv --bounding-set=-all,+bpf,+perfmon)",
        WATCH.map(|c| c.name).join(" and "),
        names.join(" and ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BPF_PERFMON: u64 = (1 << 38) | (1 << 39);

    #[test]
    fn status_capeff() {
        let s = "Name:\tctrace\nCapInh:\t0000000000000000\nCapEff:\t000000c000000000\n";
        assert_eq!(effective_from_status(s), Some(BPF_PERFMON));
        assert_eq!(effective_from_status("Name: x\n"), None);
        assert_eq!(effective_from_status("CapEff:\tzz\n"), None);
    }

    #[test]
    fn missing_names_each_absent_capability() {
        assert!(missing(&WATCH, BPF_PERFMON).is_empty());
        assert!(missing(&WATCH, u64::MAX).is_empty(), "root with everything");
        assert_eq!(missing(&WATCH, 1 << 39), vec![CAP_PERFMON]);
        assert_eq!(missing(&WATCH, 1 << 38), vec![CAP_BPF]);
        assert_eq!(missing(&WATCH, 0), vec![CAP_BPF, CAP_PERFMON]);
        assert!(
            missing(&WATCH, 1 << 21).is_empty(),
            "CAP_SYS_ADMIN covers both"
        );
        assert_eq!(
            message(&[CAP_PERFMON]),
            "ctrace needs CAP_BPF and CAP_PERFMON to load its eBPF programs; this process lacks \
             CAP_PERFMON (run it as root with all capabilities, or grant them: setpriv \
             --bounding-set=-all,+bpf,+perfmon)"
        );
    }
}
