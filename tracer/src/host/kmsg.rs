//! The kernel's own OOM report, read from `/dev/kmsg`: every task of the OOM domain with its
//! RSS, which the eBPF record (the victim only) cannot give.
//!
//! The OOM killer writes, before it kills (`dump_header`): `Tasks state (memory values in
//! pages):`, a header naming the columns (they differ across kernels: 6.1 has no
//! `rss_anon`), one `[  pid]  uid  tgid …  name` line per task, then
//! `oom-kill:constraint=…,task=NAME,pid=PID,uid=UID`. [`ReportParser`] turns those lines into
//! an [`OomReport`] per kill; [`Kmsg`] reads the device without blocking, from where it was
//! opened (older messages are not ctrace's business), and keeps the last [`REPORTS_KEPT`].

use std::{
    collections::VecDeque,
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::OpenOptionsExt,
};

use serde::{Deserialize, Serialize};

/// The device.
pub const PATH: &str = "/dev/kmsg";
/// OOM reports kept (the newest).
pub const REPORTS_KEPT: usize = 32;
/// Tasks kept per report (the largest by RSS): a host-wide OOM lists every task of the host.
pub const TASKS_KEPT: usize = 64;
/// Records read per [`Kmsg::poll`] at most: a flood of kernel messages cannot hold the loop.
const READS_MAX: usize = 4096;

/// One task of the OOM domain, as the kernel listed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsgTask {
    pub pid: u32,
    pub tgid: Option<u32>,
    /// Resident pages.
    pub rss_pages: u64,
    pub oom_score_adj: Option<i32>,
    /// The task's comm (untrusted: a container chose it).
    pub name: String,
}

/// One OOM kill as the kernel reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OomReport {
    /// The victim (`pid=` of the `oom-kill:` line).
    pub victim_pid: u32,
    /// `CONSTRAINT_MEMCG`, `CONSTRAINT_NONE`, ...
    pub constraint: Option<String>,
    /// The cgroup whose limit was hit (`oom_memcg=`), for a cgroup OOM.
    pub oom_memcg: Option<String>,
    /// The largest tasks by RSS, largest first (at most [`TASKS_KEPT`]).
    pub tasks: Vec<KmsgTask>,
    /// Tasks the kernel listed, kept or not.
    pub tasks_listed: usize,
}

/// `pri,seq,usec,flags[,…];message`: the message of one `/dev/kmsg` record (its continuation
/// lines, ` KEY=value`, are not part of it).
pub fn message(record: &str) -> Option<&str> {
    let (head, rest) = record.split_once(';')?;
    if head.split(',').count() < 4 {
        return None;
    }
    Some(rest.split('\n').next().unwrap_or(rest))
}

/// Builds [`OomReport`]s from the messages of an OOM killer's report, in order.
#[derive(Debug, Default)]
pub struct ReportParser {
    /// Inside a task table: its column names, and the tasks so far.
    table: Option<(Vec<String>, Vec<KmsgTask>)>,
    /// The reports made, oldest first (the last [`REPORTS_KEPT`]).
    pub reports: VecDeque<OomReport>,
}

impl ReportParser {
    /// One message, in the order the kernel wrote them.
    pub fn feed(&mut self, msg: &str) {
        let msg = msg.trim_end();
        if msg.starts_with("Tasks state (memory values in pages)") {
            self.table = Some((Vec::new(), Vec::new()));
            return;
        }
        if let Some(rest) = msg.strip_prefix("oom-kill:") {
            let (_, tasks) = self.table.take().unwrap_or_default();
            if let Some(r) = report(rest, tasks) {
                if self.reports.len() >= REPORTS_KEPT {
                    self.reports.pop_front();
                }
                self.reports.push_back(r);
            }
            return;
        }
        let Some((columns, tasks)) = &mut self.table else {
            return;
        };
        if msg.starts_with("[  pid  ]") {
            *columns = msg
                .trim_start_matches("[  pid  ]")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        } else if let Some(t) = task(columns, msg) {
            tasks.push(t);
        } else if !msg.starts_with('[') {
            // Anything else ends the table (a report cut short, or lines interleaved).
            self.table = None;
        }
    }

    /// The report of the kill of `pid`, the newest first.
    pub fn find(&self, pid: u32) -> Option<&OomReport> {
        self.reports.iter().rev().find(|r| r.victim_pid == pid)
    }
}

/// `[  29851]     0 29851     8630     8412 … tail` under `columns` (`uid tgid total_vm rss …
/// name`).
fn task(columns: &[String], line: &str) -> Option<KmsgTask> {
    let rest = line.strip_prefix('[')?;
    let (pid, rest) = rest.split_once(']')?;
    let pid = pid.trim().parse().ok()?;
    // Every column but the last is one number; the name is the rest of the line.
    let numbers = columns.len().checked_sub(1)?;
    let mut rest = rest;
    let mut values = Vec::with_capacity(numbers);
    for _ in 0..numbers {
        let t = rest.trim_start();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        values.push(&t[..end]);
        rest = &t[end..];
    }
    let name = rest.trim().to_owned();
    let col = |n: &str| {
        columns
            .iter()
            .position(|c| c == n)
            .and_then(|i| values.get(i).copied())
    };
    Some(KmsgTask {
        pid,
        tgid: col("tgid").and_then(|v| v.parse().ok()),
        rss_pages: col("rss")?.parse().ok()?,
        oom_score_adj: col("oom_score_adj").and_then(|v| v.parse().ok()),
        name,
    })
}

/// `constraint=CONSTRAINT_MEMCG,…,oom_memcg=/docker/…,task_memcg=…,task=tail,pid=29851,uid=0`.
fn report(line: &str, mut tasks: Vec<KmsgTask>) -> Option<OomReport> {
    let field = |k: &str| {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let victim_pid = field("pid")?.parse().ok()?;
    let tasks_listed = tasks.len();
    tasks.sort_by(|a, b| b.rss_pages.cmp(&a.rss_pages).then(a.pid.cmp(&b.pid)));
    tasks.truncate(TASKS_KEPT);
    Some(OomReport {
        victim_pid,
        constraint: field("constraint"),
        oom_memcg: field("oom_memcg").filter(|m| !m.is_empty()),
        tasks,
        tasks_listed,
    })
}

/// `/dev/kmsg`, read without blocking from where it was opened.
pub struct Kmsg {
    file: File,
    parser: ReportParser,
    buf: Vec<u8>,
}

impl Kmsg {
    /// Opens the device at its end. Fails without the right to read it (`dmesg_restrict`
    /// without CAP_SYSLOG, a container without `/dev/kmsg`).
    pub fn open() -> io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(PATH)?;
        file.seek(SeekFrom::End(0))?;
        Ok(Self {
            file,
            parser: ReportParser::default(),
            buf: vec![0; 8192],
        })
    }

    /// Reads what the kernel wrote since the last call.
    pub fn poll(&mut self) {
        for _ in 0..READS_MAX {
            match self.file.read(&mut self.buf) {
                Ok(0) => return,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&self.buf[..n]);
                    if let Some(m) = message(&text) {
                        self.parser.feed(m);
                    }
                }
                // Overwritten before it was read: the next read goes on from the oldest left.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// The kernel's report of the OOM kill of `pid`, if it wrote one since ctrace started.
    pub fn report_for(&mut self, pid: u32) -> Option<OomReport> {
        self.poll();
        self.parser.find(pid).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As 6.18 writes it (two tasks), with unrelated messages around.
    const REPORT_618: &[&str] = &[
        "6,2244,33523692110,-;tail invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "6,2245,33523692395,-;memory: usage 131072kB, limit 131072kB, failcnt 67",
        "6,2290,33523693191,-;Tasks state (memory values in pages):",
        "6,2291,33523693193,-;[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name",
        "6,2292,33523693194,-;[  29850]     0 29850    10630    10240     9900      340         0   110592        0             0 awk",
        "6,2293,33523693196,-;[  29851]     0 29851    22630    21412    21096      316         0   110592        0             0 tail",
        "6,2294,33523693202,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=e35d,mems_allowed=0,oom_memcg=/docker/e35d,task_memcg=/docker/e35d,task=tail,pid=29851,uid=0",
        "3,2295,33523693262,-;Memory cgroup out of memory: Killed process 29851 (tail) total-vm:34520kB",
    ];

    fn parse(lines: &[&str]) -> ReportParser {
        let mut p = ReportParser::default();
        for l in lines {
            p.feed(message(l).unwrap());
        }
        p
    }

    #[test]
    fn a_618_report_lists_the_tasks_largest_first() {
        let p = parse(REPORT_618);
        let r = p.find(29851).expect("a report");
        assert_eq!(r.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
        assert_eq!(r.oom_memcg.as_deref(), Some("/docker/e35d"));
        assert_eq!(r.tasks_listed, 2);
        let names: Vec<(&str, u64)> = r
            .tasks
            .iter()
            .map(|t| (t.name.as_str(), t.rss_pages))
            .collect();
        assert_eq!(names, [("tail", 21412), ("awk", 10240)]);
        assert_eq!(r.tasks[0].tgid, Some(29851));
        assert_eq!(r.tasks[0].oom_score_adj, Some(0));
        assert!(p.find(1).is_none());
    }

    #[test]
    fn a_61_report_has_fewer_columns_and_names_may_hold_spaces() {
        let p = parse(&[
            "6,1,1,-;Tasks state (memory values in pages):",
            "6,2,2,-;[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
            "6,3,3,-;[    812]     0   812    50000     2000    65536        0          -500 my worker",
            "6,4,4,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=my worker,pid=812,uid=0",
        ]);
        let r = p.find(812).unwrap();
        assert_eq!(r.oom_memcg, None, "a host-wide OOM names no memcg");
        assert_eq!(r.constraint.as_deref(), Some("CONSTRAINT_NONE"));
        assert_eq!(
            r.tasks,
            [KmsgTask {
                pid: 812,
                tgid: Some(812),
                rss_pages: 2000,
                oom_score_adj: Some(-500),
                name: "my worker".into(),
            }]
        );
    }

    #[test]
    fn damaged_and_unrelated_lines_are_not_reports() {
        let p = parse(&[
            "6,1,1,-;Tasks state (memory values in pages):",
            "6,2,2,-;[  pid  ]   uid  tgid total_vm      rss name",
            "6,3,3,-;[  garbage]",
            "6,4,4,-;something else entirely",
            // The table ended: these rows belong to no report.
            "6,5,5,-;[    9]     0     9     1     1 x",
            "6,6,6,-;oom-kill:constraint=CONSTRAINT_MEMCG,task=x",
        ]);
        assert!(p.reports.is_empty(), "no pid: {:?}", p.reports);
        assert_eq!(message("no separator"), None);
        assert_eq!(message("6,1;short head"), None);
        // A record's continuation lines are not its message.
        assert_eq!(message("6,1,1,-;msg\n SUBSYSTEM=x"), Some("msg"));
    }

    #[test]
    fn reports_and_tasks_are_bounded() {
        let mut p = ReportParser::default();
        for pid in 0..(REPORTS_KEPT as u32 + 5) {
            p.feed("Tasks state (memory values in pages):");
            p.feed("[  pid  ]   uid  tgid total_vm      rss name");
            for t in 0..(TASKS_KEPT as u32 + 3) {
                p.feed(&format!("[ {t}]     0 {t}     1     {t} t{t}"));
            }
            p.feed(&format!(
                "oom-kill:constraint=CONSTRAINT_MEMCG,task=t,pid={pid},uid=0"
            ));
        }
        assert_eq!(p.reports.len(), REPORTS_KEPT);
        let r = p.find(REPORTS_KEPT as u32 + 4).unwrap();
        assert_eq!(r.tasks.len(), TASKS_KEPT);
        assert_eq!(r.tasks_listed, TASKS_KEPT + 3);
        assert_eq!(r.tasks[0].name, format!("t{}", TASKS_KEPT + 2));
        assert!(p.find(0).is_none(), "the oldest are forgotten");
    }
}
