//! Tests of [`super`]: the cpu parsers on files captured from real kernels, and the readers
//! on scratch directories.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::cgroup::parse::MAX_QUOTED;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../tests/fixtures/throttle/", $name))
    };
}

const V1_QUOTA: &str = fixture!("v1-6.18-cpus0.01-cpu.cfs_quota_us");
const V1_PERIOD: &str = fixture!("v1-6.18-cpu.cfs_period_us");
const V1_NOQUOTA: &str = fixture!("v1-6.18-noquota-cpu.cfs_quota_us");
const V1_STAT_A: &str = fixture!("v1-6.18-cpus0.01-cpu.stat.a");
const V1_STAT_B: &str = fixture!("v1-6.18-cpus0.01-cpu.stat.b");
const V1_USAGE_A: &str = fixture!("v1-6.18-cpus0.01-cpuacct.usage.a");
const V1_USAGE_B: &str = fixture!("v1-6.18-cpus0.01-cpuacct.usage.b");
const V1_NOQUOTA_STAT: &str = fixture!("v1-6.18-noquota-cpu.stat");
const V2_MAX: &str = fixture!("v2-6.1-cpumax1000-cpu.max");
const V2_NOQUOTA_MAX: &str = fixture!("v2-6.1-noquota-cpu.max");
const V2_STAT_A: &str = fixture!("v2-6.1-cpumax1000-cpu.stat.a");
const V2_STAT_B: &str = fixture!("v2-6.1-cpumax1000-cpu.stat.b");
const V2_NOQUOTA_STAT: &str = fixture!("v2-6.1-noquota-cpu.stat");
const V2_PRESSURE: &str = fixture!("v2-6.1-cpumax1000-cpu.pressure");
const V2_ROOT_CONTROLLERS: &str = fixture!("v2-6.1-root-cgroup.controllers");
const V2_CG_CONTROLLERS: &str = fixture!("v2-6.1-cpumax1000-cgroup.controllers");
const HYBRID_CONTROLLERS: &str = fixture!("v2-hybrid-6.18-cgroup.controllers");
const HYBRID_STAT: &str = fixture!("v2-hybrid-6.18-nocpu-cpu.stat");
const HYBRID_PRESSURE: &str = fixture!("v2-hybrid-6.18-cpus0.01-cpu.pressure");
const MOUNTS_HYBRID: &str = fixture!("mounts-hybrid-6.18");
const MOUNTS_V2: &str = fixture!("mounts-v2-6.1");

const ID: &str = "7ee9da4aa77429359f59c265039380a9680f12dea35ee7fc91646ad882df78eb";

#[test]
fn v1_quota_fixtures() {
    let q = parse_v1_quota(V1_QUOTA, Some(V1_PERIOD)).unwrap().unwrap();
    assert_eq!(
        q,
        Quota {
            quota_us: 1000,
            period_us: 100_000
        }
    );
    assert!((q.cpus() - 0.01).abs() < 1e-12);
    assert_eq!(parse_v1_quota(V1_NOQUOTA, Some(V1_PERIOD)), Ok(None));
    // The period does not matter (nor need to exist) without a quota.
    assert_eq!(parse_v1_quota("-1\n", None), Ok(None));
    assert_eq!(parse_v1_cfs_period_us(V1_PERIOD), Ok(100_000));
}

#[test]
fn v1_quota_garbage() {
    assert_eq!(parse_v1_cfs_quota_us(""), Err(ParseError::Empty));
    assert_eq!(parse_v1_cfs_quota_us(" \n"), Err(ParseError::Empty));
    assert!(matches!(
        parse_v1_cfs_quota_us("abc"),
        Err(ParseError::NotANumber(_))
    ));
    assert!(matches!(
        parse_v1_cfs_quota_us("-5"),
        Err(ParseError::Invalid { .. })
    ));
    assert!(matches!(
        parse_v1_cfs_quota_us("0"),
        Err(ParseError::Invalid { .. })
    ));
    assert!(matches!(
        parse_v1_cfs_quota_us("1000 2"),
        Err(ParseError::BadLine { .. })
    ));
    assert!(matches!(
        parse_v1_cfs_period_us("0"),
        Err(ParseError::Invalid { .. })
    ));
    assert!(matches!(
        parse_v1_cfs_period_us("-1"),
        Err(ParseError::NotANumber(_))
    ));
    assert!(matches!(
        parse_v1_quota("1000", None),
        Err(ParseError::Invalid { .. })
    ));
    assert!(matches!(
        parse_v1_quota("1000", Some("x")),
        Err(ParseError::NotANumber(_))
    ));
    assert!(parse_v1_cpuacct_usage("12 13").is_err());
    assert!(parse_v1_cpuacct_usage("-12").is_err());
    assert_eq!(parse_v1_cpuacct_usage(V1_USAGE_A), Ok(1_505_610_096));
}

#[test]
fn v1_cpu_stat_fixtures() {
    let a = parse_v1_cpu_stat(V1_STAT_A).unwrap();
    assert_eq!(
        a,
        V1CpuStat {
            nr_periods: Some(1490),
            nr_throttled: Some(1489),
            throttled_time_ns: Some(146_125_733_840),
            nr_bursts: Some(0),
            burst_time_ns: Some(0),
        }
    );
    let none = parse_v1_cpu_stat(V1_NOQUOTA_STAT).unwrap();
    assert_eq!(none.nr_periods, Some(0));
    assert_eq!(none.nr_throttled, Some(0));
}

#[test]
fn v1_cpu_stat_old_kernel_and_extra_keys() {
    // Before 5.14: no burst keys. Unknown future keys, even with odd values, are skipped.
    let s = parse_v1_cpu_stat(
        "nr_periods 7\nnr_throttled 2\nthrottled_time 300\nwait_sum 1 2\nfancy x\n\n",
    )
    .unwrap();
    assert_eq!(s.nr_periods, Some(7));
    assert_eq!(s.nr_throttled, Some(2));
    assert_eq!(s.throttled_time_ns, Some(300));
    assert_eq!(s.nr_bursts, None);
    assert_eq!(s.burst_time_ns, None);
    // Missing keys stay None, not 0.
    let s = parse_v1_cpu_stat("nr_periods 7\n").unwrap();
    assert_eq!(s.nr_throttled, None);
}

#[test]
fn v1_cpu_stat_garbage() {
    assert_eq!(parse_v1_cpu_stat(""), Err(ParseError::Empty));
    assert_eq!(
        parse_v1_cpu_stat("hello world\n"),
        Err(ParseError::NoKnownKeys)
    );
    assert!(matches!(
        parse_v1_cpu_stat("nr_periods x\n"),
        Err(ParseError::NotANumber(_))
    ));
    assert!(matches!(
        parse_v1_cpu_stat("nr_periods -3\n"),
        Err(ParseError::NotANumber(_))
    ));
    assert!(matches!(
        parse_v1_cpu_stat("nr_periods\n"),
        Err(ParseError::BadLine { line: 1, .. })
    ));
    assert!(matches!(
        parse_v1_cpu_stat("nr_periods 1\nnr_throttled 1 2\n"),
        Err(ParseError::BadLine { line: 2, .. })
    ));
    assert_eq!(
        parse_v1_cpu_stat("nr_periods 1\nnr_periods 2\n"),
        Err(ParseError::Duplicate("nr_periods".into()))
    );
    // Long garbage is cut in the error.
    let long = format!("nr_periods {}", "9".repeat(500));
    let Err(ParseError::NotANumber(q)) = parse_v1_cpu_stat(&long) else {
        panic!("expected NotANumber");
    };
    assert!(q.chars().count() <= MAX_QUOTED + 1);
}

#[test]
fn v2_cpu_max_fixtures_and_garbage() {
    assert_eq!(
        parse_v2_cpu_max(V2_MAX),
        Ok(Some(Quota {
            quota_us: 1000,
            period_us: 100_000
        }))
    );
    assert_eq!(parse_v2_cpu_max(V2_NOQUOTA_MAX), Ok(None));
    assert_eq!(parse_v2_cpu_max("max"), Ok(None));
    assert_eq!(
        parse_v2_cpu_max("250000 1000000\n")
            .unwrap()
            .unwrap()
            .cpus(),
        0.25
    );
    assert_eq!(parse_v2_cpu_max(""), Err(ParseError::Empty));
    assert!(matches!(
        parse_v2_cpu_max("1000"),
        Err(ParseError::Invalid { .. })
    ));
    assert!(matches!(
        parse_v2_cpu_max("1000 0"),
        Err(ParseError::Invalid { .. })
    ));
    assert!(matches!(
        parse_v2_cpu_max("0 100000"),
        Err(ParseError::Invalid { .. })
    ));
    assert!(matches!(
        parse_v2_cpu_max("max x"),
        Err(ParseError::NotANumber(_))
    ));
    assert!(matches!(
        parse_v2_cpu_max("lots 100000"),
        Err(ParseError::NotANumber(_))
    ));
    assert!(matches!(
        parse_v2_cpu_max("1 2 3"),
        Err(ParseError::BadLine { .. })
    ));
}

#[test]
fn v2_cpu_stat_fixtures() {
    let b = parse_v2_cpu_stat(V2_STAT_B).unwrap();
    assert_eq!(
        b,
        V2CpuStat {
            usage_usec: Some(46_746),
            user_usec: Some(46_746),
            system_usec: Some(0),
            nr_periods: Some(47),
            nr_throttled: Some(45),
            throttled_usec: Some(4_144_097),
            nr_bursts: Some(0),
            burst_usec: Some(0),
        }
    );
    let free = parse_v2_cpu_stat(V2_NOQUOTA_STAT).unwrap();
    assert_eq!(free.nr_throttled, Some(0));
    // Hybrid host: the unified hierarchy has no cpu controller, so only usage keys
    // (6.18 adds nice_usec, which is skipped).
    let hybrid = parse_v2_cpu_stat(HYBRID_STAT).unwrap();
    assert_eq!(hybrid.usage_usec, Some(1_516_067));
    assert_eq!(hybrid.nr_periods, None);
    assert_eq!(hybrid.throttled_usec, None);
    // Kernels with core scheduling add another key.
    let core = parse_v2_cpu_stat(
        "usage_usec 5\nuser_usec 3\nsystem_usec 2\ncore_sched.force_idle_usec 0\n",
    )
    .unwrap();
    assert_eq!(core.usage_usec, Some(5));
    assert!(matches!(
        parse_v2_cpu_stat("usage_usec 1.5\n"),
        Err(ParseError::NotANumber(_))
    ));
    assert_eq!(
        parse_v2_cpu_stat(V1_STAT_A).map(|s| s.nr_periods),
        Ok(Some(1490))
    );
    assert_eq!(
        parse_v2_cpu_stat("\u{0}\u{1}garbage"),
        Err(ParseError::NoKnownKeys)
    );
}

#[test]
fn controllers() {
    assert!(controllers_include_cpu(V2_ROOT_CONTROLLERS));
    assert!(controllers_include_cpu(V2_CG_CONTROLLERS));
    assert!(!controllers_include_cpu(HYBRID_CONTROLLERS));
    assert!(!controllers_include_cpu("cpuset io memory\n"));
}

#[test]
fn samples_from_fixtures() {
    let quota = parse_v1_quota(V1_QUOTA, Some(V1_PERIOD)).unwrap();
    let s = CpuSample::from_v1(
        Duration::from_secs(5),
        quota,
        Some(&parse_v1_cpu_stat(V1_STAT_B).unwrap()),
        Some(parse_v1_cpuacct_usage(V1_USAGE_B).unwrap()),
        None,
    );
    assert_eq!(s.nr_periods, Some(1500));
    assert_eq!(s.throttled_ns, Some(147_310_381_431));
    assert_eq!(s.usage_ns, Some(1_516_067_079));
    assert_eq!(s.pressure_some_total_us, None);
    let v2 = CpuSample::from_v2(
        Duration::from_secs(5),
        parse_v2_cpu_max(V2_MAX).unwrap(),
        Some(&parse_v2_cpu_stat(V2_STAT_A).unwrap()),
        Some(&parse_pressure(V2_PRESSURE).unwrap()),
    );
    assert_eq!(v2.throttled_ns, Some(3_055_770_000));
    assert_eq!(v2.usage_ns, Some(35_583_000));
    assert_eq!(v2.pressure_some_total_us, Some(4_682_790));
    let bare = CpuSample::from_v2(Duration::ZERO, None, None, None);
    assert_eq!(bare.nr_periods, None);
    assert_eq!(bare.usage_ns, None);
}

#[test]
fn mounts_hybrid() {
    let m = Mounts::parse(MOUNTS_HYBRID);
    assert_eq!(
        m.v1.get("cpu").map(PathBuf::as_path),
        Some(Path::new("/sys/fs/cgroup/cpu"))
    );
    assert_eq!(
        m.v1.get("cpuacct").map(PathBuf::as_path),
        Some(Path::new("/sys/fs/cgroup/cpuacct"))
    );
    assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
    let cg = format!("/docker/{ID}");
    // The v1 cpu controller wins even if someone claims cgroup2 has cpu.
    let p = CpuPaths::from_mounts(&m, &cg, Some("cpu")).unwrap();
    assert_eq!(
        p,
        CpuPaths::V1 {
            cpu_dir: PathBuf::from(format!("/sys/fs/cgroup/cpu/docker/{ID}")),
            cpuacct_dir: Some(PathBuf::from(format!("/sys/fs/cgroup/cpuacct/docker/{ID}"))),
            unified_dir: Some(PathBuf::from(format!("/sys/fs/cgroup/unified/docker/{ID}"))),
        }
    );
    assert_eq!(
        p.main_dir(),
        Path::new(&format!("/sys/fs/cgroup/cpu/docker/{ID}"))
    );
}

#[test]
fn mounts_combined_v1() {
    let text = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0\n\
                cgroup /sys/fs/cgroup/cpuset cgroup rw,nosuid,nodev,noexec,relatime,cpuset 0 0\n";
    let m = Mounts::parse(text);
    assert_eq!(m.v1.get("cpu"), m.v1.get("cpuacct"));
    assert_eq!(m.v2, None);
    let p = CpuPaths::from_mounts(&m, "docker/abc", None).unwrap();
    let CpuPaths::V1 {
        cpu_dir,
        cpuacct_dir,
        unified_dir,
    } = p
    else {
        panic!("expected v1")
    };
    assert_eq!(cpu_dir, Path::new("/sys/fs/cgroup/cpu,cpuacct/docker/abc"));
    assert_eq!(cpuacct_dir.as_deref(), Some(cpu_dir.as_path()));
    assert_eq!(unified_dir, None);
    // The cpuset controller alone is not cpu.
    let m = Mounts::parse("cgroup /c cgroup rw,cpuset 0 0\n");
    assert_eq!(m.v1.get("cpu"), None);
    assert_eq!(CpuPaths::from_mounts(&m, "/x", Some("cpu")), None);
}

#[test]
fn mounts_pure_v2() {
    let m = Mounts::parse(MOUNTS_V2);
    assert_eq!(m.v1.get("cpu"), None);
    assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup")));
    assert_eq!(
        CpuPaths::from_mounts(
            &m,
            "/system.slice/docker-abc.scope",
            Some(V2_ROOT_CONTROLLERS)
        ),
        Some(CpuPaths::V2 {
            dir: PathBuf::from("/sys/fs/cgroup/system.slice/docker-abc.scope")
        })
    );
    // Root cgroup.
    assert_eq!(
        CpuPaths::from_mounts(&m, "/", Some(V2_ROOT_CONTROLLERS)),
        Some(CpuPaths::V2 {
            dir: PathBuf::from("/sys/fs/cgroup")
        })
    );
    // cgroup2 without the cpu controller (hybrid unified), or unknown controllers.
    assert_eq!(
        CpuPaths::from_mounts(&m, "/x", Some(HYBRID_CONTROLLERS)),
        None
    );
    assert_eq!(CpuPaths::from_mounts(&m, "/x", None), None);
    // Nothing mounted.
    assert_eq!(
        CpuPaths::from_mounts(&Mounts::default(), "/x", Some("cpu")),
        None
    );
}

#[test]
fn mounts_escapes_garbage_and_traversal() {
    let m = Mounts::parse(
        "garbage\n\ncgroup2 /mnt/my\\040cgroups cgroup2 rw 0 0\ncgroup2 /second cgroup2 rw 0 0\n\
         cgroup /a\\ cgroup cpu 0 0\n",
    );
    assert_eq!(m.v2.as_deref(), Some(Path::new("/mnt/my cgroups")));
    assert_eq!(
        m.v1.get("cpu").map(PathBuf::as_path),
        Some(Path::new("/a\\"))
    );
    let m = Mounts::parse(MOUNTS_HYBRID);
    assert_eq!(CpuPaths::from_mounts(&m, "/docker/../../etc", None), None);
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ctrace-throttle-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn sub(&self, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let dir = self.0.join(name);
        fs::create_dir_all(&dir).unwrap();
        for (file, content) in files {
            fs::write(dir.join(file), content).unwrap();
        }
        dir
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const AT: Duration = Duration::from_secs(42);

#[test]
fn read_v1_full() {
    let t = TempDir::new();
    let cpu = t.sub(
        "cpu",
        &[
            ("cpu.cfs_quota_us", V1_QUOTA.as_bytes()),
            ("cpu.cfs_period_us", V1_PERIOD.as_bytes()),
            ("cpu.stat", V1_STAT_A.as_bytes()),
        ],
    );
    let acct = t.sub("cpuacct", &[("cpuacct.usage", V1_USAGE_A.as_bytes())]);
    let unified = t.sub(
        "unified",
        &[
            ("cpu.stat", HYBRID_STAT.as_bytes()),
            ("cpu.pressure", HYBRID_PRESSURE.as_bytes()),
        ],
    );
    let paths = CpuPaths::V1 {
        cpu_dir: cpu,
        cpuacct_dir: Some(acct),
        unified_dir: Some(unified.clone()),
    };
    let s = read_sample(&paths, AT).unwrap();
    assert_eq!(
        s,
        CpuSample {
            at: AT,
            quota: Some(Quota {
                quota_us: 1000,
                period_us: 100_000
            }),
            nr_periods: Some(1490),
            nr_throttled: Some(1489),
            throttled_ns: Some(146_125_733_840),
            usage_ns: Some(1_505_610_096),
            pressure_some_total_us: Some(139_855_613),
        }
    );
    // Without cpuacct, usage comes from the unified hierarchy's cpu.stat.
    let CpuPaths::V1 { cpu_dir, .. } = paths else {
        unreachable!()
    };
    let paths = CpuPaths::V1 {
        cpu_dir,
        cpuacct_dir: None,
        unified_dir: Some(unified),
    };
    assert_eq!(
        read_sample(&paths, AT).unwrap().usage_ns,
        Some(1_516_067_000)
    );
}

#[test]
fn read_v1_missing_files_are_none() {
    let t = TempDir::new();
    let cpu = t.sub("cpu", &[("cpu.stat", V1_NOQUOTA_STAT.as_bytes())]);
    let paths = CpuPaths::V1 {
        cpu_dir: cpu,
        cpuacct_dir: Some(t.0.join("no-such-cpuacct")),
        unified_dir: Some(t.0.join("no-such-unified")),
    };
    let s = read_sample(&paths, AT).unwrap();
    assert_eq!(
        s,
        CpuSample {
            at: AT,
            quota: None,
            nr_periods: Some(0),
            nr_throttled: Some(0),
            throttled_ns: Some(0),
            usage_ns: None,
            pressure_some_total_us: None,
        }
    );
    // A quota without its period is malformed.
    let cpu = t.sub("cpu2", &[("cpu.cfs_quota_us", b"5000\n")]);
    let paths = CpuPaths::V1 {
        cpu_dir: cpu,
        cpuacct_dir: None,
        unified_dir: None,
    };
    assert!(matches!(
        read_sample(&paths, AT),
        Err(SampleError::Parse { .. })
    ));
    // An empty cgroup directory: everything unknown, nothing made up.
    let empty = t.sub("empty", &[]);
    let paths = CpuPaths::V1 {
        cpu_dir: empty,
        cpuacct_dir: None,
        unified_dir: None,
    };
    assert_eq!(
        read_sample(&paths, AT).unwrap(),
        CpuSample {
            at: AT,
            ..CpuSample::default()
        }
    );
}

#[test]
fn read_gone_and_garbage() {
    let t = TempDir::new();
    let gone = CpuPaths::V2 {
        dir: t.0.join("gone"),
    };
    assert!(matches!(read_sample(&gone, AT), Err(SampleError::Gone(p)) if p == t.0.join("gone")));
    let bad = t.sub(
        "bad",
        &[
            ("cpu.max", b"1000 100000\n"),
            ("cpu.stat", b"nr_periods banana\n"),
        ],
    );
    let err = read_sample(&CpuPaths::V2 { dir: bad.clone() }, AT).unwrap_err();
    assert!(matches!(&err, SampleError::Parse { path, .. } if *path == bad.join("cpu.stat")));
    assert!(err.to_string().contains("banana"), "{err}");
    let binary = t.sub("binary", &[("cpu.stat", b"\xff\xfe\x00garbage")]);
    assert!(matches!(
        read_sample(&CpuPaths::V2 { dir: binary }, AT),
        Err(SampleError::Parse { .. })
    ));
    // A directory where a file should be is an I/O error, not "missing".
    let weird = t.sub("weird", &[]);
    fs::create_dir(weird.join("cpu.stat")).unwrap();
    assert!(matches!(
        read_sample(&CpuPaths::V2 { dir: weird }, AT),
        Err(SampleError::Io { .. })
    ));
}

#[test]
fn read_v2() {
    let t = TempDir::new();
    let dir = t.sub(
        "cg",
        &[
            ("cpu.max", V2_MAX.as_bytes()),
            ("cpu.stat", V2_STAT_B.as_bytes()),
            ("cpu.pressure", V2_PRESSURE.as_bytes()),
        ],
    );
    let s = read_sample(&CpuPaths::V2 { dir }, AT).unwrap();
    assert_eq!(
        s,
        CpuSample {
            at: AT,
            quota: Some(Quota {
                quota_us: 1000,
                period_us: 100_000
            }),
            nr_periods: Some(47),
            nr_throttled: Some(45),
            throttled_ns: Some(4_144_097_000),
            usage_ns: Some(46_746_000),
            pressure_some_total_us: Some(4_682_790),
        }
    );
    // cpu controller not enabled for this cgroup: usage only.
    let dir = t.sub("nocpu", &[("cpu.stat", HYBRID_STAT.as_bytes())]);
    let s = read_sample(&CpuPaths::V2 { dir }, AT).unwrap();
    assert_eq!(s.quota, None);
    assert_eq!(s.nr_periods, None);
    assert_eq!(s.usage_ns, Some(1_516_067_000));
    let dir = t.sub("unlimited", &[("cpu.max", V2_NOQUOTA_MAX.as_bytes())]);
    assert_eq!(read_sample(&CpuPaths::V2 { dir }, AT).unwrap().quota, None);
}

#[test]
fn monotonic_clock_advances() {
    let a = monotonic_now();
    let b = monotonic_now();
    assert!(a > Duration::ZERO);
    assert!(b >= a);
}

#[test]
fn read_usage_reads_one_file_of_each_layout() {
    let t = TempDir::new();
    let cpu = t.sub("cpu", &[]);
    let acct = t.sub("cpuacct", &[("cpuacct.usage", V1_USAGE_A.as_bytes())]);
    let unified = t.sub("unified", &[("cpu.stat", HYBRID_STAT.as_bytes())]);
    let v1 = |cpuacct_dir: Option<&PathBuf>, unified_dir: Option<&PathBuf>| CpuPaths::V1 {
        cpu_dir: cpu.clone(),
        cpuacct_dir: cpuacct_dir.cloned(),
        unified_dir: unified_dir.cloned(),
    };
    let acct_ns = parse_v1_cpuacct_usage(V1_USAGE_A).unwrap();
    assert_eq!(
        read_usage(&v1(Some(&acct), Some(&unified))).unwrap(),
        Some(acct_ns)
    );
    // Without cpuacct, the unified hierarchy's cpu.stat (µs, as ns).
    assert_eq!(
        read_usage(&v1(None, Some(&unified))).unwrap(),
        Some(1_516_067_000)
    );
    assert_eq!(read_usage(&v1(None, None)).unwrap(), None);
    assert_eq!(
        read_usage(&CpuPaths::V2 { dir: unified }).unwrap(),
        Some(1_516_067_000)
    );
    // Garbage is an error, not a figure.
    let bad = t.sub("bad", &[("cpuacct.usage", b"twelve\n")]);
    assert!(read_usage(&v1(Some(&bad), None)).is_err());
}

#[test]
fn a_hierarchy_read_once_gives_the_paths_of_every_cgroup() {
    // Pure v2: the root's cgroup.controllers, read once, says whether cpu is there.
    let t = TempDir::new();
    let with_cpu = t.sub(
        "with",
        &[("cgroup.controllers", b"cpuset cpu io memory pids\n")],
    );
    let without_cpu = t.sub("without", &[("cgroup.controllers", b"memory pids\n")]);
    let v2 = |root: &Path| Mounts {
        v2: Some(root.to_owned()),
        ..Mounts::default()
    };
    let h = CpuHierarchy::of(v2(&with_cpu));
    // The file goes: the paths come from what was read.
    fs::remove_file(with_cpu.join("cgroup.controllers")).unwrap();
    for id in ["a", "b"] {
        assert_eq!(
            h.paths(&format!("/docker/{id}")),
            Some(CpuPaths::V2 {
                dir: with_cpu.join("docker").join(id)
            })
        );
    }
    assert_eq!(CpuHierarchy::of(v2(&without_cpu)).paths("/docker/a"), None);
    // v1 with cpu: no file is read.
    let m = Mounts::parse("cgroup /c/cpu cgroup rw,cpu 0 0\n");
    assert_eq!(
        CpuHierarchy::of(m.clone()).paths("/docker/a"),
        CpuPaths::from_mounts(&m, "/docker/a", None)
    );
}
