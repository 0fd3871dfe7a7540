//! Exact capability counts under load (issue 16, item 2): 8 processes on both CPUs make denied
//! `chown` calls as fast as they can for 10 s, each counting its own failures, while ctrace's
//! reader is stopped (SIGSTOP) for 3 s in the middle. The `count`s of the `capability` records
//! add up to the processes' own count; any difference must be named by the closing `stats`
//! record (`capability_checks`: checks of evicted slots, checks that found no slot) and by
//! `lost` records, never silent.
//!
//! The processes are host processes without `CAP_CHOWN` (dropped from the bounding and
//! inheritable sets by `setpriv`, so root's exec of perl does not get it back), changing the
//! owner of a root-owned file: `chown_ok()` asks `capable_wrt_inode_uidgid(CAP_CHOWN)` once
//! per call, and the call fails with EPERM (fs/attr.c).

use std::{
    collections::HashMap,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use ctrace_tests::{get, require, Bounded as _, TempDir, Watch};
use serde_json::Value;

/// How many processes, and for how long each runs.
const PROCESSES: usize = 8;
const RUN_SECS: u64 = 10;
/// When the reader is stopped, and for how long.
const STALL_AFTER: Duration = Duration::from_secs(4);
const STALL: Duration = Duration::from_secs(3);

/// The loop each process runs: denied `chown` calls until its time is up, then its pid, its
/// EPERM count and any other failure.
const LOOP: &str = r#"
my ($f, $secs) = @ARGV;
my ($n, $other) = (0, 0);
my $end = time + $secs;
while (time < $end) {
    for (1 .. 1000) {
        next if chown(65534, -1, $f);
        if ($!{EPERM}) { $n++ } else { $other++ }
    }
}
print "$$ $n $other\n";
"#;

/// What one storm gave: the processes' own counts, what the records reported for them, the
/// `stats` record's `capability_checks`, and the records.
struct Storm {
    own: HashMap<u64, u64>,
    reported: HashMap<u64, u64>,
    checks: Value,
    records: Vec<Value>,
}

impl Storm {
    fn field(&self, name: &str) -> u64 {
        self.checks[name]
            .as_u64()
            .unwrap_or_else(|| panic!("capability_checks.{name} in {}", self.checks))
    }

    /// The books balance whatever the host did besides, every loss they name was said as a
    /// `lost` record too, no process has more reported than it made, and what is missing is
    /// named. Returns (own, reported) sums.
    fn check_books(&self) -> (u64, u64) {
        let (checked, all_reported, insert_failed, unreported) = (
            self.field("checked"),
            self.field("reported"),
            self.field("insert_failed"),
            self.field("unreported"),
        );
        let own: u64 = self.own.values().sum();
        let reported: u64 = self.reported.values().sum();
        eprintln!(
            "chown storm: {own} denied by the processes' own count, {reported} reported; \
             kernel: {}",
            self.checks
        );
        assert_eq!(self.field("over_reported"), 0, "{}", self.checks);
        assert_eq!(
            checked,
            all_reported + insert_failed + unreported,
            "{}",
            self.checks
        );
        assert!(
            checked >= own,
            "the kernel saw every check: {}",
            self.checks
        );
        for (site, n) in [
            ("kernel_cap_insert_failed", insert_failed),
            ("kernel_cap_slot_evicted", unreported),
        ] {
            let said: u64 = self
                .records
                .iter()
                .filter(|r| r["type"] == "lost" && r["where"] == site)
                .map(|r| r["count"].as_u64().unwrap())
                .sum();
            assert_eq!(said, n, "{site}");
        }
        for (pid, n) in &self.own {
            let r = self.reported.get(pid).copied().unwrap_or(0);
            assert!(r <= *n, "pid {pid}: {r} reported, only {n} made");
        }
        assert!(
            own - reported <= unreported + insert_failed,
            "{} checks missing, not named: {}",
            own - reported,
            self.checks
        );
        (own, reported)
    }
}

/// Runs [`PROCESSES`] chown loops for `secs` under `ctrace watch` (with `env`), stopping its
/// reader for `stall` after [`STALL_AFTER`] when given.
fn storm(bin: &Path, env: &[(&str, &Path)], secs: u64, stall: Option<Duration>) -> Storm {
    let dir = TempDir::new("capstorm");
    let file = dir.0.join("owned-by-root");
    std::fs::write(&file, b"x").unwrap();
    // A 1 s window: five times the records and map reads of the default, so that records
    // read after a newer map read (the stale case) happen during the run.
    let w = Watch::start_with_env(
        bin,
        &["--events", "capability", "--host", "--cap-window", "1"],
        env,
    );
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new("setpriv")
                .args(["--inh-caps=-chown", "--bounding-set=-chown", "--"])
                .args(["perl", "-e", LOOP])
                .arg(&file)
                .arg(secs.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .expect("setpriv perl")
        })
        .collect();
    if let Some(stall) = stall {
        std::thread::sleep(STALL_AFTER);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(w.pid() as i32, libc::SIGSTOP) };
        std::thread::sleep(stall);
        // SAFETY: as above.
        unsafe { libc::kill(w.pid() as i32, libc::SIGCONT) };
    }
    let mut own = HashMap::new();
    for c in children {
        let out = ctrace_tests::output_within(c, Duration::from_secs(secs + 60), "a chown loop")
            .expect("chown loop");
        assert!(out.status.success(), "{out:?}");
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<u64> = line
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        let [pid, n, other] = f[..] else {
            panic!("a loop said {line:?}")
        };
        assert_eq!(other, 0, "pid {pid}: chown failed otherwise than EPERM");
        assert!(n > 0, "pid {pid}: no denied chown at all");
        own.insert(pid, n);
    }
    // The tails of the last second are read by the final map read after the stop.
    std::thread::sleep(Duration::from_millis(1500));
    let (records, stderr) = w.stop();
    let stats = records.last().expect("records");
    assert_eq!(stats["type"], "stats", "{stderr}");
    let checks = stats["capability_checks"].clone();
    let mut reported: HashMap<u64, u64> = HashMap::new();
    for r in records.iter().filter(|r| r["type"] == "capability") {
        let pid = get(r, "process.pid").as_u64().unwrap();
        if own.contains_key(&pid) && r["capability"] == "CAP_CHOWN" {
            assert_eq!(r["verdict"], "denied", "{r}");
            *reported.entry(pid).or_default() += r["count"].as_u64().unwrap();
        }
    }
    Storm {
        own,
        reported,
        checks,
        records,
    }
}

/// Whether the storm's tools are here (else skipped, or a failure when integration is
/// required).
fn tools() -> bool {
    let have = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdout(Stdio::null())
            .status_bounded()
            .is_ok_and(|s| s.success())
    };
    if have("setpriv", "--version") && have("perl", "-v") {
        return true;
    }
    ctrace_tests::unavailable("setpriv and perl are needed for the chown storm");
    false
}

#[test]
fn denied_chown_storm_with_a_stalled_reader_is_counted_exactly() {
    let Some(bin) = require() else { return };
    if !tools() {
        return;
    }
    let _storm = ctrace_tests::storm();
    let s = storm(&bin, &[], RUN_SECS, Some(STALL));
    let (own, reported) = s.check_books();
    assert_eq!(
        reported, own,
        "16 slots never fill a 16384-entry map: the counts must be exact ({})",
        s.checks
    );
}

/// The same storm against a de-duplication map of 2 keys (`CTRACE_CAP_SLOTS`): 8 processes
/// make the kernel's LRU evict slots with unreported tails (and fail inserts) all the time.
/// What the records miss is exactly what the named counters say, per the kernel's own count.
#[test]
fn denied_chown_storm_in_a_tiny_map_names_every_check_it_cannot_report() {
    let Some(bin) = require() else { return };
    if !tools() {
        return;
    }
    let _storm = ctrace_tests::storm();
    let s = storm(&bin, &[("CTRACE_CAP_SLOTS", Path::new("2"))], 5, None);
    let (own, reported) = s.check_books();
    let named = s.field("unreported") + s.field("insert_failed");
    assert!(named > 0, "a 2-key map must evict: {}", s.checks);
    assert!(reported < own, "{}", s.checks);
}
