//! The kernel's own accounting of BPF programs: run count and run time per program, counted
//! only while statistics are enabled (they cost a clock read per run).
//!
//! Statistics are enabled with `bpf(BPF_ENABLE_STATS, BPF_STATS_RUN_TIME)` rather than by
//! writing `kernel.bpf_stats_enabled`: both raise the same kernel switch
//! (`bpf_stats_enabled_key`, kernel/bpf/syscall.c), but the syscall returns a descriptor that
//! turns it back off when closed, so the machine is left as it was even when the bench is
//! interrupted, and the sysctl keeps whatever value an administrator gave it.

use std::{
    collections::BTreeMap,
    os::fd::{FromRawFd as _, OwnedFd},
    process::Command,
};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::util;

/// `BPF_ENABLE_STATS` of `enum bpf_cmd` (include/uapi/linux/bpf.h).
const BPF_ENABLE_STATS: libc::c_long = 32;
/// `BPF_STATS_RUN_TIME` of `enum bpf_stats_type`.
const BPF_STATS_RUN_TIME: u32 = 0;

/// BPF run-time statistics, on while this lives.
pub struct Stats(#[allow(dead_code)] OwnedFd);

/// Turn BPF run-time statistics on until the returned value is dropped.
pub fn enable() -> Result<Stats> {
    // `union bpf_attr`'s `enable_stats` member: one u32, the rest zero.
    let attr = [BPF_STATS_RUN_TIME, 0, 0, 0];
    // SAFETY: bpf(2) reads `size_of_val(&attr)` bytes of `attr`, which outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_ENABLE_STATS,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        bail!(
            "bpf(BPF_ENABLE_STATS) failed: {}",
            std::io::Error::last_os_error()
        );
    }
    let fd = i32::try_from(fd).context("fd out of range")?;
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    Ok(Stats(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// One loaded program, as `bpftool prog show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prog {
    pub id: u64,
    pub name: String,
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// Every loaded program, by id.
pub fn programs() -> Result<BTreeMap<u64, Prog>> {
    let out = util::capture(Command::new("bpftool").args(["prog", "show", "--json"]))
        .context("listing BPF programs (is bpftool installed?)")?;
    parse_programs(&out)
}

fn parse_programs(json: &str) -> Result<BTreeMap<u64, Prog>> {
    let v: Value = serde_json::from_str(json).context("bpftool printed no JSON")?;
    let list = v.as_array().context("bpftool printed no list")?;
    Ok(list
        .iter()
        .filter_map(|p| {
            let id = p.get("id")?.as_u64()?;
            Some((
                id,
                Prog {
                    id,
                    name: p
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned(),
                    run_time_ns: p.get("run_time_ns").and_then(Value::as_u64).unwrap_or(0),
                    run_cnt: p.get("run_cnt").and_then(Value::as_u64).unwrap_or(0),
                },
            ))
        })
        .collect())
}

/// Per program among `ids`: (name, runs, run time ns) between `before` and `after`. Names the
/// kernel cut to 15 bytes may repeat (bpftrace's `sched_process_exec` and `_exit` are both
/// `sched_process_e`): the second of a name, in id (load) order, is `name#2`, and so on.
pub fn delta(
    ids: &[u64],
    before: &BTreeMap<u64, Prog>,
    after: &BTreeMap<u64, Prog>,
) -> Vec<(String, u64, u64)> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    ids.iter()
        .filter_map(|id| {
            let a = after.get(id)?;
            let b = before.get(id);
            let n = seen.entry(a.name.as_str()).or_default();
            *n += 1;
            let name = if *n == 1 {
                a.name.clone()
            } else {
                format!("{}#{n}", a.name)
            };
            Some((
                name,
                a.run_cnt.saturating_sub(b.map_or(0, |b| b.run_cnt)),
                a.run_time_ns.saturating_sub(b.map_or(0, |b| b.run_time_ns)),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpftool_json() {
        let progs = parse_programs(
            r#"[{"id":7,"type":"tracepoint","name":"sched_process_exec","run_time_ns":900,"run_cnt":3},
                {"id":8,"type":"tracing","name":"runq_switch"},
                {"id":9,"type":"tracing","name":"runq_switch","run_cnt":1}]"#,
        )
        .unwrap();
        assert_eq!(progs[&7].run_cnt, 3);
        assert_eq!(progs[&8].run_time_ns, 0);
        let mut later = progs.clone();
        later.get_mut(&7).unwrap().run_cnt = 5;
        later.get_mut(&7).unwrap().run_time_ns = 1500;
        assert_eq!(
            delta(&[9, 7, 8, 10], &progs, &later),
            vec![
                ("sched_process_exec".to_owned(), 2, 600),
                ("runq_switch".to_owned(), 0, 0),
                ("runq_switch#2".to_owned(), 0, 0),
            ]
        );
    }
}
