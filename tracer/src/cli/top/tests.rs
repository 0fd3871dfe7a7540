use std::{collections::BTreeMap, path::Path, sync::Arc};

use super::*;
use tracer::{
    container::Runtime,
    resolve::Container,
    runq::RunqDelta,
    throttle::{IntervalStats, Quota},
};

fn container(name: &str) -> Arc<Container> {
    Arc::new(Container {
        init_pid: Some(1),
        ..Container::named(&"a".repeat(64), name, Runtime::Docker)
    })
}

const THROTTLED: IntervalStats = IntervalStats {
    duration: Duration::from_secs(1),
    throttled_ratio: Some(0.98),
    throttled_ns: 990_000_000,
    usage_cpus: Some(0.01),
    quota: Some(Quota {
        quota_us: 1000,
        period_us: 100_000,
    }),
};

/// A throttled container with a limit and a counted OOM kill; one with no quota, no
/// limit and only OOM events; one with no data at all.
fn rows() -> [TopRow; 3] {
    let row = |name: &str, stats, memory_usage, memory_limit, oom_kills| TopRow {
        report: Report {
            container: container(name),
            cgroup_id: None,
            event: None,
            stats,
            runq: None,
            sample: None,
        },
        memory_usage,
        memory_limit,
        memory_limit_depth: 0,
        oom_kills,
        memory_trend: Vec::new(),
    };
    let free = IntervalStats {
        throttled_ratio: None,
        quota: None,
        ..THROTTLED
    };
    let mut buckets = [0; tracer_common::RUNQ_BUCKETS];
    // Ten waits: five of 32-65 ms, five of 65-131 ms.
    (buckets[15], buckets[16]) = (5, 5);
    let mut slow = row(
        "slow\u{1b}[2J",
        Some(THROTTLED),
        Some(60 << 20),
        Some(Limit::Bytes(64 << 20)),
        oom_kills(Some(2), Some(0)),
    );
    // A minute of refreshes, rising to 60 MiB of a 64 MiB limit.
    slow.memory_trend = (1..=60).map(|i| i << 20).collect();
    slow.report.runq = Some(RunqDelta {
        count: 10,
        sum_ns: 900_000_000,
        buckets,
    });
    [
        slow,
        row(
            "free",
            Some(free),
            Some(100 << 20),
            Some(Limit::Unlimited),
            oom_kills(None, Some(0)),
        ),
        row("new", None, None, None, oom_kills(None, None)),
    ]
}

/// Cells of each body line of `table`, by header (columns start where their header does).
fn cells(table: &str) -> Vec<BTreeMap<&'static str, String>> {
    let mut lines = table.lines();
    let head = lines.next().unwrap();
    let mut starts = Vec::new();
    let mut from = 0;
    for h in HEAD {
        let at = from + head[from..].find(h).unwrap();
        starts.push(at);
        from = at + h.len();
    }
    lines
        .filter(|l| !l.contains(" containers, "))
        .map(|l| {
            let chars: Vec<char> = l.chars().collect();
            HEAD.iter()
                .enumerate()
                .map(|(i, h)| {
                    let end = starts.get(i + 1).copied().unwrap_or(chars.len());
                    let cell: String = chars[starts[i].min(chars.len())..end.min(chars.len())]
                        .iter()
                        .collect();
                    (*h, cell.trim().to_owned())
                })
                .collect()
        })
        .collect()
}

/// The last minute of memory as a sparkline scaled to the limit, `-` with no sample.
#[test]
fn a_sparkline_of_the_last_minute() {
    let t = table(&rows(), 0);
    let c = cells(&t);
    let col = |h: &str| c.iter().map(|r| r[h].as_str()).collect::<Vec<_>>();
    assert_eq!(
        col("LAST MINUTE"),
        ["▁▂▂▂▃▃▃▄▄▄▅▅▅▆▆▆▇▇▇█", "-", "-"],
        "{t}"
    );
    assert_eq!(trend_len(Duration::from_secs(1)), 60);
    assert_eq!(trend_len(Duration::from_millis(100)), 600);
    assert_eq!(trend_len(Duration::from_secs(120)), 2);
}

#[test]
fn table_shows_no_data_and_no_quota_distinctly() {
    let t = table(&rows(), 3);
    assert!(t.starts_with("NAME"), "{t}");
    let c = cells(&t);
    let col = |h: &str| c.iter().map(|r| r[h].as_str()).collect::<Vec<_>>();
    assert_eq!(col("CPU"), ["0.01", "0.01", "-"], "{t}");
    assert_eq!(
        col("QUOTA"),
        ["0.01", "none", "-"],
        "unknown is not none: {t}"
    );
    assert_eq!(col("THROTTLED"), ["98%", "n/a", "-"], "{t}");
    assert_eq!(col("RUNQ p99"), ["<=131ms", "-", "-"], "{t}");
    assert_eq!(col("MEMORY"), ["60 MiB", "100 MiB", "-"], "{t}");
    assert_eq!(col("LIMIT"), ["64 MiB", "none", "-"], "{t}");
    assert_eq!(col("OOM KILLS"), ["2", "0", "-"], "{t}");
    assert!(!t.contains('\u{1b}'), "names are escaped");
    assert!(t.ends_with("3 containers, 3 events lost\n"));
}

/// A parent's lower limit (a pod's) is shown as such.
#[test]
fn a_parents_limit_says_so() {
    let [mut slow, mut free, _] = rows();
    slow.memory_limit_depth = 1;
    free.memory_limit_depth = 2; // no limit anywhere: the depth means nothing
    let mut far = slow.clone();
    far.memory_limit_depth = 3;
    let t = table(&[slow.clone(), far, free.clone()], 0);
    let c = cells(&t);
    let col = |h: &str| c.iter().map(|r| r[h].as_str()).collect::<Vec<_>>();
    assert_eq!(
        col("LIMIT"),
        ["64 MiB (parent)", "64 MiB (3 up)", "none"],
        "{t}"
    );
    assert_eq!(json_row(&slow, 0)["memory_limit_depth"], 1);
    assert!(json_row(&free, 0)["memory_limit_depth"].is_null());
    assert_eq!(json_row(&rows()[0], 0)["memory_limit_depth"], 0);
}

#[test]
fn json_rows_keep_no_data_null() {
    let [slow, free, new] = rows().map(|r| json_row(&r, 7));
    for v in [&slow, &free, &new] {
        assert_eq!(
            (&v["schema"], &v["type"]),
            (&json!("ctrace.v1"), &json!("top"))
        );
        assert_eq!(v["lost"], 7, "the snapshot's total, in every row");
    }
    assert_eq!(slow["container"]["name"], "slow\u{1b}[2J");
    assert_eq!(slow["interval_ns"], 1_000_000_000u64);
    assert_eq!(
        (&slow["cpu_quota_cpus"], &slow["cpu_quota_set"]),
        (&json!(0.01), &json!(true))
    );
    assert_eq!(slow["throttled_ratio"], 0.98);
    assert_eq!(slow["throttled_ns"], 990_000_000u64);
    assert_eq!(
        (&slow["runqueue_p50_ns"], &slow["runqueue_p99_ns"]),
        (&json!(65_536_000), &json!(131_072_000))
    );
    assert_eq!(
        (&slow["memory_limit_bytes"], &slow["memory_limit_set"]),
        (&json!(64u64 << 20), &json!(true))
    );
    assert_eq!(
        (&slow["oom_kills"], &slow["oom_kills_source"]),
        (&json!(2), &json!("cgroup"))
    );
    assert_eq!(
        (&free["cpu_quota_cpus"], &free["cpu_quota_set"]),
        (&json!(null), &json!(false)),
        "no quota"
    );
    assert!(free["throttled_ratio"].is_null() && free["throttled_ns"] == 990_000_000u64);
    assert_eq!(
        (&free["memory_limit_bytes"], &free["memory_limit_set"]),
        (&json!(null), &json!(false)),
        "no limit"
    );
    assert_eq!(
        (&free["oom_kills"], &free["oom_kills_source"]),
        (&json!(0), &json!("events"))
    );
    for f in [
        "interval_ns",
        "cpu_usage_cpus",
        "cpu_quota_cpus",
        "cpu_quota_set",
        "throttled_ratio",
        "throttled_ns",
        "runqueue_p50_ns",
        "runqueue_p99_ns",
        "memory_usage_bytes",
        "memory_limit_bytes",
        "memory_limit_set",
        "memory_limit_depth",
        "oom_kills",
        "oom_kills_source",
    ] {
        assert!(new[f].is_null(), "{f} of a row without data: {new}");
    }
}

#[test]
fn the_documented_row_has_the_fields_of_a_real_one() {
    let doc = include_str!("../../../../docs/events.md");
    let section = doc
        .split("### `top --json` row")
        .nth(1)
        .expect("docs/events.md documents top rows");
    let example = section
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .unwrap();
    let documented: serde_json::Value = serde_json::from_str(example).unwrap();
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(keys(&documented), keys(&json_row(&rows()[0], 0)));
    assert_eq!(documented["type"], "top");
}

#[test]
fn oom_kills_prefer_the_cgroup_counter() {
    let k = |count, source| Some(OomKills { count, source });
    assert_eq!(oom_kills(Some(3), Some(1)), k(3, OomSource::Cgroup));
    assert_eq!(oom_kills(Some(0), None), k(0, OomSource::Cgroup));
    assert_eq!(oom_kills(None, Some(0)), k(0, OomSource::Events));
    assert_eq!(oom_kills(None, None), None, "no data is not 0");
}

fn fixture_dir(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ctrace-top-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for (f, text) in files {
        std::fs::write(d.join(f), text).unwrap();
    }
    d
}

#[test]
fn memory_figures_from_v1_and_v2_cgroups() {
    // cgroup v1, 4.13+: `oom_kill` in memory.oom_control.
    let v1 = fixture_dir(
        "v1",
        &[
            ("memory.limit_in_bytes", "67108864\n"),
            ("memory.usage_in_bytes", "66969600\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
        ],
    );
    let m = memory_figures(Some(&MemoryDir::V1(v1.clone())));
    assert_eq!(
        m,
        MemoryFigures {
            usage: Some(66_969_600),
            limit: Some(Limit::Bytes(64 << 20)),
            oom_kills: Some(3),
        }
    );
    assert_eq!(
        oom_kills(m.oom_kills, Some(1)).map(|o| (o.count, o.source)),
        Some((3, OomSource::Cgroup))
    );
    // cgroup v1 before 4.13: no `oom_kill` line; no limit (the sentinel).
    let old = fixture_dir(
        "v1-old",
        &[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.usage_in_bytes", "1052672\n"),
            ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n"),
        ],
    );
    let m = memory_figures(Some(&MemoryDir::V1(old.clone())));
    assert_eq!(
        (m.limit, m.oom_kills),
        (Some(Limit::Unlimited), None),
        "no counter: no data"
    );
    assert_eq!(
        oom_kills(m.oom_kills, Some(1)).map(|o| (o.count, o.source)),
        Some((1, OomSource::Events)),
        "falls back to the events seen"
    );
    // cgroup v2: memory.events.
    let v2 = fixture_dir(
        "v2",
        &[
            ("memory.max", "max\n"),
            ("memory.current", "4096000\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 412\noom 1\noom_kill 1\noom_group_kill 0\n",
            ),
        ],
    );
    let m = memory_figures(Some(&MemoryDir::V2(v2.clone())));
    assert_eq!(
        m,
        MemoryFigures {
            usage: Some(4_096_000),
            limit: Some(Limit::Unlimited),
            oom_kills: Some(1),
        }
    );
    // Missing files and directories: no data, never 0 or "no limit".
    let empty = fixture_dir("empty", &[]);
    for dir in [
        MemoryDir::V1(empty.clone()),
        MemoryDir::V2(empty.clone()),
        MemoryDir::V2(Path::new(&empty).join("gone")),
    ] {
        assert_eq!(
            memory_figures(Some(&dir)),
            MemoryFigures::default(),
            "{dir:?}"
        );
    }
    assert_eq!(memory_figures(None), MemoryFigures::default());
    for d in [v1, old, v2, empty] {
        let _ = std::fs::remove_dir_all(d);
    }
}
