use serde_json::{json, Value};

use super::*;
use crate::cli::history::tests::{cjson, journal_with, rec, upsert, Scratch, SEC, T0};
use tracer::journal::{Entry as JEntry, JournalOptions};
use tracer::{
    chart::{downsample, sparkline},
    journal::{MemorySample, ProcRss},
    units::short_number,
};

const MIB: u64 = 1 << 20;
const W1: &str = "1111111111110000000000000000000000000000000000000000000000000001";
const W2: &str = "2222222222220000000000000000000000000000000000000000000000000002";
const W3: &str = "5f9cc76e3db05ee8276f704e67b9fd97f4e022d93d4e4fcfa7ea652d371ddf93";

/// `tracer/tests/snapshots/<name>` against `actual`; `UPDATE_SNAPSHOTS=1` rewrites it.
fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs (rerun with UPDATE_SNAPSHOTS=1 if intended):\n{actual}",
        path.display()
    );
}

fn key(id: &str) -> String {
    format!("docker/{id}")
}

fn args(path: &Path, container: &str) -> PostmortemArgs {
    PostmortemArgs {
        container: Selector::parse(container).unwrap(),
        json: false,
        all: false,
        journal: path.to_owned(),
        svg: None,
    }
}

fn proc_json(pid: u32, comm: &str, c: &Value) -> Value {
    json!({"pid": pid, "comm": comm, "cgroup_id": 4711, "container": c})
}

fn sample(id: &str, ts_ns: i64, usage: u64, top: Option<&[(u32, &str, u64)]>) -> JEntry {
    JEntry::MemorySample(MemorySample {
        container_key: key(id),
        ts_ns,
        usage_bytes: usage,
        limit_bytes: Some(100 * MIB),
        rss_top: top.map(|t| {
            t.iter()
                .map(|&(pid, comm, rss_bytes)| ProcRss {
                    pid,
                    comm: comm.to_owned(),
                    rss_bytes,
                })
                .collect()
        }),
    })
}

/// `web` (docker): started 80 s before T0, usage rising by 10 MiB a second from T0 + 1 s,
/// a child killed by SIGTERM at T0 + 5 s, OOM-killed at T0 + 9.5 s at its 100 MiB
/// limit, stopped, and later removed.
fn oom_fixture(id: &str, name: &str, base: i64) -> Vec<JEntry> {
    let c = cjson(id, name, "docker");
    let tail = proc_json(4242, "tail", &c);
    let sh = proc_json(4250, "sh", &c);
    let kill_at = base + 9 * SEC + SEC / 2;
    let mut e = vec![
        upsert(&key(id), name, base - 80 * SEC, None),
        rec(
            base - 80 * SEC,
            json!({"type": "container_start", "container": c, "init": tail,
                       "filename": "/bin/tail",
                       "explanation": format!("container {name} (docker) started: /bin/tail (pid 4242)")}),
        ),
        // Outside the minute before the kill.
        sample(
            id,
            base - 80 * SEC,
            5 * MIB,
            Some(&[(4242, "tail", 4 * MIB)]),
        ),
        rec(
            base + 5 * SEC,
            json!({"type": "kill", "container": c, "signal": "SIGTERM", "signo": 15,
                       "origin": "user", "sender": sh, "target": proc_json(4251, "sleep", &c),
                       "target_exit": {"exit_code": 143, "signal": "SIGTERM"},
                       "container_stopped": false,
                       "explanation": format!("sleep (pid 4251 in {name}, docker) killed by SIGTERM from sh (pid 4250 in {name}, docker); it exited with 143 (SIGTERM)")}),
        ),
    ];
    for i in 1..=9u64 {
        let usage = i * 10 * MIB;
        let mut top = vec![(4242, "tail", usage - 2 * MIB), (4250, "sh", MIB)];
        if i < 5 {
            top.push((4251, "sleep", 512 * 1024));
        }
        e.push(sample(id, base + i as i64 * SEC, usage, Some(&top)));
    }
    e.extend([
            rec(
                kill_at,
                json!({"type": "oom_kill", "container": c, "scope": "container_limit",
                       "victim": {"pid": 4242, "comm": "tail", "cgroup_id": 4711, "container": c,
                                  "rss_kb": 101_376, "anon_rss_kb": 100_352, "file_rss_kb": 1024,
                                  "shmem_rss_kb": 0, "total_vm_kb": 102_400, "oom_score_adj": 0},
                       "trigger": tail,
                       "memory": {"limit_bytes": 100 * MIB, "usage_bytes": 104_755_200u64,
                                  "peak_bytes": 100 * MIB, "failcnt": 12, "oom_events": null,
                                  "oom_kills": null, "max_events": null},
                       "victim_exit": {"exit_code": 137, "signal": "SIGKILL"},
                       "container_stopped": true,
                       "explanation": format!("tail (pid 4242 in {name}, docker) was OOM-killed: {name} hit its memory limit of 100 MiB (usage 99.9 MiB, peak 100 MiB); victim RSS 99 MiB; triggered by its own allocation; {name} stopped")}),
            ),
            // The reading at the kill ends the curve; later samples are not part of it.
            sample(id, kill_at, 100 * MIB, None),
            sample(id, base + 10 * SEC, MIB, Some(&[])),
            rec(
                base + 9 * SEC + 600_000_000,
                json!({"type": "container_stop", "container": c,
                       "exit": {"exit_code": 137, "signal": "SIGKILL"}, "reason": "oom_killed",
                       "by": null,
                       "explanation": format!("container {name} (docker) stopped with 137 (SIGKILL): its init was OOM-killed")}),
            ),
            upsert(&key(id), name, base + 9 * SEC + 600_000_000, Some((base + 9 * SEC + 600_000_000, 137))),
        ]);
    e
}

fn run_ok(a: &PostmortemArgs, tty: bool) -> String {
    let out = run(a, tty).unwrap_or_else(|f| panic!("{f:?}"));
    assert!(out.notes.is_empty());
    out.text
}

#[test]
fn oom_story_with_a_rising_curve() {
    let t = Scratch::new("pm-oom");
    let p = t.join("j.db");
    journal_with(&p, oom_fixture(W3, "web", T0));
    assert_eq!(
            run_ok(&args(&p, "web"), false),
            "\
web: docker container, gone since 2026-11-29 18:40:09.600, exit code 137 (times UTC)
  id          5f9cc76e3db05ee8276f704e67b9fd97f4e022d93d4e4fcfa7ea652d371ddf93
  image       busybox:local
  first seen  2026-11-29 18:38:40.000
  last seen   2026-11-29 18:40:10.000
  end         2026-11-29 18:40:09.600  exit 137 (SIGKILL): its init was OOM-killed
  lifecycle   1 start, 1 stop, no restart
    2026-11-29 18:38:40.000  container web (docker) started: /bin/tail (pid 4242)
    2026-11-29 18:40:09.600  container web (docker) stopped with 137 (SIGKILL): its init was OOM-killed
  OOM kills   1
  kills       1
    2026-11-29 18:40:05.000  sleep (pid 4251 in web, docker) killed by SIGTERM from sh (pid 4250 in web, docker); it exited with 143 (SIGTERM)
  OOM kill at 2026-11-29 18:40:09.500: the container hit its own memory limit (not a host-wide OOM)
    limit     100 MiB; at the kill: usage 99.9 MiB, peak 100 MiB
    usage     last 8.5 s before the kill (10 samples, MiB): 10 20 30 40 50 60 70 80 90 100
    victim    tail (pid 4242 in web, docker), RSS 99 MiB (anon 98 MiB, file 1 MiB, shmem 0 B)
    others    sh (pid 4250) 1 MiB (sampled 2026-11-29 18:40:09.000)
    trigger   its own allocation
    outcome   tail exited with 137 (SIGKILL); the container stopped
"
        );
    // On a terminal: a sparkline scaled to the limit.
    let tty = run_ok(&args(&p, "web"), true);
    assert!(
        tty.contains(
            "    usage     ▂▂▃▄▅▅▆▇▇█ 10 MiB → 100 MiB over the last 8.5 s (10 samples)\n"
        ),
        "{tty}"
    );
    // The braille chart to the kill, with the limit line, fits 80 columns.
    let chart: Vec<&str> = tty
        .lines()
        .filter(|l| l.contains('┤') || l.contains('│'))
        .collect();
    assert_eq!(chart.len(), tracer::chart::CHART_ROWS, "{tty}");
    assert!(chart[0].ends_with(" limit"), "{tty}");
    for l in tty
        .lines()
        .filter(|l| l.contains('┤') || l.contains('│') || l.contains('└'))
    {
        assert!(l.chars().count() <= 80, "{l:?}");
    }
    snapshot("postmortem-oom-tty.txt", &tty);
    // --svg: the chart of the story, incidents marked.
    let svg_path = t.join("web.svg");
    let mut with_svg = args(&p, "web");
    with_svg.svg = Some(svg_path.clone());
    let out = run(&with_svg, false).unwrap_or_else(|f| panic!("{}", f.message));
    assert_eq!(
        out.notes,
        [format!("chart written to {}", svg_path.display())]
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("OOM kill of tail"), "{svg}");
    assert!(svg.contains("limit 100 MiB"), "{svg}");
    snapshot("postmortem-oom.svg", &svg);
    // By id prefix and by key: the same story.
    assert_eq!(
        run_ok(&args(&p, "5f9cc7"), false),
        run_ok(&args(&p, "web"), false)
    );
    assert_eq!(
        run_ok(&args(&p, &key(W3)), false),
        run_ok(&args(&p, "web"), false)
    );
}

#[test]
fn oom_story_as_json() {
    let t = Scratch::new("pm-json");
    let p = t.join("j.db");
    journal_with(&p, oom_fixture(W3, "web", T0));
    let mut a = args(&p, "web");
    a.json = true;
    let text = run_ok(&a, true);
    assert_eq!(text.lines().count(), 1, "one object on one line");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], "ctrace.postmortem.v1");
    assert_eq!(v["query"], "web");
    assert_eq!(v["matches"].as_array().unwrap().len(), 1);
    let s = &v["stories"][0];
    assert_eq!(s["container"]["id"], W3);
    assert_eq!(s["container"]["runtime"], "docker");
    assert_eq!(s["container"]["gone"], "2026-11-29T18:40:09.600000000Z");
    assert_eq!(s["container"]["exit_code"], 137);
    assert_eq!(s["end"]["reason"], "oom_killed");
    assert_eq!(
        (s["starts"].as_u64(), s["restarts"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(s["kills_total"], 1);
    assert_eq!(s["kills"][0]["signal"], "SIGTERM");
    assert_eq!(s["kills"][0]["sender"]["comm"], "sh");
    assert_eq!(s["oom_kills_total"], 1);
    let o = &s["oom_kills"][0];
    assert_eq!(o["ts"], "2026-11-29T18:40:09.500000000Z");
    assert_eq!(o["scope"], "container_limit");
    assert_eq!(o["limit_bytes"], 100 * MIB);
    assert_eq!(o["victim"]["comm"], "tail");
    assert_eq!(o["victim"]["rss_bytes"], 101_376u64 * 1024);
    assert_eq!(
        o["others"],
        json!([{"pid": 4250, "comm": "sh", "rss_bytes": MIB}])
    );
    assert_eq!(o["own_allocation"], true);
    assert_eq!(o["victim_exit"]["exit_code"], 137);
    let curve: Vec<u64> = o["curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["usage_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(curve, (1..=10).map(|i| i * 10 * MIB).collect::<Vec<_>>());
    assert_eq!(o["curve"][0]["ts"], "2026-11-29T18:40:01.000000000Z");
    assert_eq!(o["curve"][9]["ts"], o["ts"]);
    assert_eq!(o["record"]["type"], "oom_kill");
}

/// Three containers used the name `web`: an old one that exited, one killed from the
/// host, and the current one, still running.
fn reused_name(p: &Path) {
    let c1 = cjson(W1, "web", "docker");
    let c2 = cjson(W2, "web", "docker");
    let killer = json!({"pid": 300, "comm": "kill", "cgroup_id": 1, "container": null});
    let mut e = vec![
        upsert(&key(W1), "web", T0 - 7200 * SEC, None),
        rec(
            T0 - 7000 * SEC,
            json!({"type": "container_stop", "container": c1,
                       "exit": {"exit_code": 0, "signal": null}, "reason": "exited", "by": null,
                       "explanation": "container web (docker) stopped with 0: its init exited"}),
        ),
        upsert(&key(W1), "web", T0 - 7000 * SEC, Some((T0 - 7000 * SEC, 0))),
        upsert(&key(W2), "web", T0 - 3600 * SEC, None),
        rec(
            T0 - 3000 * SEC,
            json!({"type": "kill", "container": c2, "signal": "SIGKILL", "signo": 9,
                       "origin": "user", "sender": killer,
                       "target": proc_json(777, "nginx", &c2),
                       "target_exit": {"exit_code": 137, "signal": "SIGKILL"},
                       "container_stopped": true,
                       "explanation": "nginx (pid 777 in web, docker) killed by SIGKILL from kill (pid 300, host); web exited with 137 (SIGKILL)"}),
        ),
        rec(
            T0 - 3000 * SEC,
            json!({"type": "container_stop", "container": c2,
                       "exit": {"exit_code": 137, "signal": "SIGKILL"}, "reason": "killed",
                       "by": killer,
                       "explanation": "container web (docker) stopped with 137 (SIGKILL): SIGKILL from kill (pid 300, host)"}),
        ),
        upsert(
            &key(W2),
            "web",
            T0 - 3000 * SEC,
            Some((T0 - 3000 * SEC, 137)),
        ),
    ];
    e.extend(oom_fixture(W3, "web", T0));
    // The current `web` is W3 started again after its OOM kill (a restart), running.
    let c3 = cjson(W3, "web", "docker");
    e.extend([
        rec(
            T0 + 20 * SEC,
            json!({"type": "container_start", "container": c3,
                       "init": proc_json(5000, "tail", &c3), "filename": "/bin/tail",
                       "explanation": "container web (docker) started: /bin/tail (pid 5000)"}),
        ),
        upsert(&key(W3), "web", T0 + 30 * SEC, None),
    ]);
    journal_with(p, e);
}

#[test]
fn a_reused_name_lists_every_container_and_tells_the_newest() {
    let t = Scratch::new("pm-ambiguous");
    let p = t.join("j.db");
    reused_name(&p);
    let text = run_ok(&args(&p, "web"), false);
    let head: Vec<&str> = text.lines().take(6).collect();
    assert_eq!(
            head,
            [
                "3 containers match \"web\" (newest first); the newest one's story follows (--all for every one):",
                "  docker     5f9cc76e3db0  web  first seen 2026-11-29 18:38:40.000  last seen 2026-11-29 18:40:30.000",
                "  docker     222222222222  web  first seen 2026-11-29 17:40:00.000  gone 2026-11-29 17:50:00.000, exit code 137",
                "  docker     111111111111  web  first seen 2026-11-29 16:40:00.000  gone 2026-11-29 16:43:20.000, exit code 0",
                "",
                "web: docker container, not known to be gone (last seen 2026-11-29 18:40:30.000) (times UTC)",
            ]
        );
    assert!(
        text.contains("  lifecycle   2 starts, 1 stop, 1 restart\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "  last stop   2026-11-29 18:40:09.600  exit 137 (SIGKILL): its init was OOM-killed\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  OOM kill at 2026-11-29 18:40:09.500"),
        "{text}"
    );
    assert_eq!(text.matches(" container, ").count(), 1, "one story: {text}");

    let mut a = args(&p, "web");
    a.all = true;
    let text = run_ok(&a, false);
    assert!(
        text.starts_with("3 containers match \"web\" (newest first); the story of each follows:\n")
    );
    assert_eq!(
        text.matches(" container, ").count(),
        3,
        "three stories: {text}"
    );
    assert!(
            text.contains(
                "  end         2026-11-29 17:50:00.000  exit 137 (SIGKILL): its init was killed by SIGKILL from kill (pid 300, host)\n"
            ),
            "{text}"
        );
    assert!(
        text.contains("  end         2026-11-29 16:43:20.000  exit 0: its init exited\n"),
        "{text}"
    );
    a.json = true;
    let v: Value = serde_json::from_str(&run_ok(&a, false)).unwrap();
    assert_eq!(v["matches"].as_array().unwrap().len(), 3);
    assert_eq!(v["stories"].as_array().unwrap().len(), 3);
    assert_eq!(v["stories"][1]["kills"][0]["sender"]["comm"], "kill");
    assert_eq!(v["stories"][2]["container"]["exit_code"], 0);
    // An id picks one container, without a list.
    let text = run_ok(&args(&p, "222222"), false);
    assert!(
        text.starts_with(
            "web: docker container, gone since 2026-11-29 17:50:00.000, exit code 137"
        ),
        "{text}"
    );
}

#[test]
fn an_ambiguous_id_prefix_is_exit_2_listing_the_candidates() {
    const W4: &str = "2222aaaa00000000000000000000000000000000000000000000000000000004";
    let t = Scratch::new("pm-prefix");
    let p = t.join("j.db");
    reused_name(&p);
    journal_with(&p, vec![upsert(&key(W4), "api", T0 - 60 * SEC, None)]);
    let f = run(&args(&p, "2222"), false).unwrap_err();
    assert_eq!(f.code, 2);
    assert_eq!(
        f.message,
        format!(
            "\"2222\" matches 2 containers: api (id 2222aaaa0000, docker, key docker/{W4}), \
                 web (id 222222222222, docker, key docker/{W2}); name one by its name or key"
        )
    );
    // A longer prefix, the name, or the key names one.
    assert!(run_ok(&args(&p, "2222a"), false).starts_with("api: docker container"));
    assert!(run_ok(&args(&p, "api"), false).starts_with("api: docker container"));
    assert!(run_ok(&args(&p, &key(W2)), false).starts_with("web: docker container"));
    // A name that is also an id prefix: the name wins.
    journal_with(&p, vec![upsert("runc/zzz", "2222", T0, None)]);
    assert!(run_ok(&args(&p, "2222"), false).starts_with("2222: runc container"));
}

/// A record that does not read as its type (damaged, or of an incompatible ctrace) is
/// counted and said, not listed; its container still names the story.
#[test]
fn unreadable_records_are_counted_not_listed() {
    let t = Scratch::new("pm-unreadable");
    let p = t.join("j.db");
    let c = cjson(W1, "odd", "docker");
    journal_with(
        &p,
        vec![rec(
            T0,
            json!({"type": "kill", "container": c, "explanation": "no sender, no target"}),
        )],
    );
    let text = run_ok(&args(&p, "odd"), false);
    assert!(text.starts_with("odd: docker container, "), "{text}");
    assert!(
        text.contains("  kills       0\n  unreadable  1 records (damaged, or not ctrace.v1)\n"),
        "{text}"
    );
    assert!(!text.contains("no sender"), "{text}");
    let mut a = args(&p, "odd");
    a.json = true;
    let v: Value = serde_json::from_str(&run_ok(&a, false)).unwrap();
    assert_eq!(v["stories"][0]["unreadable_records"], 1);
    assert_eq!(v["stories"][0]["kills_total"], 0);
}

#[test]
fn a_gone_container_known_only_from_its_records() {
    let t = Scratch::new("pm-records");
    let p = t.join("j.db");
    let c = cjson(W1, "ghost", "docker");
    journal_with(
        &p,
        vec![
            rec(
                T0,
                json!({"type": "container_start", "container": c,
                           "init": proc_json(9, "sh", &c), "filename": "/bin/sh",
                           "explanation": "container ghost (docker) started: /bin/sh (pid 9)"}),
            ),
            rec(
                T0 + SEC,
                json!({"type": "container_stop", "container": c,
                           "exit": {"exit_code": 3, "signal": null}, "reason": "exited", "by": null,
                           "explanation": "container ghost (docker) stopped with 3: its init exited"}),
            ),
        ],
    );
    let text = run_ok(&args(&p, "ghost"), false);
    assert!(
            text.starts_with(
                "ghost: docker container, gone since 2026-11-29 18:40:01.000, exit code 3 (times UTC)\n"
            ),
            "{text}"
        );
    assert!(
        text.contains("  OOM kills   0\n  kills       0\n"),
        "{text}"
    );
}

/// Metadata written late (the start reported once the container was named, after its
/// stop): its records still bound the container's life.
#[test]
fn records_older_than_the_metadata_set_first_seen() {
    let t = Scratch::new("pm-late");
    let p = t.join("j.db");
    let c = cjson(W1, "fast", "docker");
    journal_with(
        &p,
        vec![
            rec(
                T0,
                json!({"type": "container_start", "container": c,
                           "init": proc_json(9, "tail", &c), "filename": "/bin/tail",
                           "explanation": "container fast (docker) started: /bin/tail (pid 9)"}),
            ),
            upsert(&key(W1), "fast", T0 + SEC, Some((T0 + SEC, 137))),
        ],
    );
    let mut a = args(&p, "fast");
    let text = run_ok(&a, false);
    assert!(
        text.contains("  first seen  2026-11-29 18:40:00.000\n"),
        "{text}"
    );
    a.json = true;
    let v: Value = serde_json::from_str(&run_ok(&a, false)).unwrap();
    assert_eq!(
        v["matches"][0]["first_seen"],
        "2026-11-29T18:40:00.000000000Z"
    );
    assert_eq!(
        v["stories"][0]["container"]["first_seen"],
        "2026-11-29T18:40:00.000000000Z"
    );
    // Gone, without a stop record.
    assert!(
        text.contains("  end         2026-11-29 18:40:01.000  gone; its exit was not seen\n"),
        "{text}"
    );
}

#[test]
fn an_oom_without_samples_or_processes_says_so() {
    let t = Scratch::new("pm-nosamples");
    let p = t.join("j.db");
    let entries: Vec<JEntry> = oom_fixture(W3, "web", T0)
        .into_iter()
        .filter(|e| !matches!(e, JEntry::MemorySample(_)))
        .collect();
    journal_with(&p, entries);
    let text = run_ok(&args(&p, "web"), false);
    assert!(
        text.contains(
            "    usage     no memory samples in the minute before (ctrace was not sampling)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("    others    unknown: no process list was sampled before the kill\n"),
        "{text}"
    );
    assert!(
        text.contains("    limit     100 MiB;"),
        "from the record: {text}"
    );
}

/// The OOM record of the fixture with its `memory` changed.
fn oom_fixture_with(memory: impl Fn(&mut serde_json::Value)) -> Vec<JEntry> {
    oom_fixture(W3, "web", T0)
        .into_iter()
        .map(|e| match e {
            JEntry::Record(r) if r.kind == "oom_kill" => {
                let mut v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
                memory(&mut v["memory"]);
                JEntry::Record(tracer::journal::Record::from_ndjson(r.ts_ns, &v))
            }
            other => other,
        })
        .collect()
}

/// A parent's limit (a pod's) is named as such; figures from an older sample are said to
/// be one, not passed off as the figures at the kill.
#[test]
fn oom_of_a_parent_limit_and_stale_figures_say_so() {
    let t = Scratch::new("pm-depth");
    let p = t.join("j.db");
    journal_with(&p, oom_fixture_with(|m| m["limit_depth"] = 1.into()));
    let text = run_ok(&args(&p, "web"), false);
    assert!(
            text.contains(": the container hit a memory limit set 1 cgroup level above its own (not a host-wide OOM)\n"),
            "{text}"
        );
    let json = run(
        &PostmortemArgs {
            json: true,
            ..args(&p, "web")
        },
        false,
    )
    .unwrap()
    .text;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let o = &v["stories"][0]["oom_kills"][0];
    assert_eq!(
        (o["limit_depth"].as_u64(), o["figures_stale"].as_bool()),
        (Some(1), Some(false))
    );

    let t = Scratch::new("pm-stale");
    let p = t.join("j.db");
    journal_with(&p, oom_fixture_with(|m| m["stale"] = true.into()));
    let text = run_ok(&args(&p, "web"), false);
    assert!(
        text.contains(
            "    limit     100 MiB; last sample before the kill: usage 99.9 MiB, peak 100 MiB\n"
        ),
        "{text}"
    );
}

#[test]
fn no_such_container_and_an_empty_journal_are_exit_1() {
    let t = Scratch::new("pm-empty");
    let p = t.join("j.db");
    drop(Journal::open(&p, JournalOptions::default()).unwrap());
    let f = run(&args(&p, "web"), false).unwrap_err();
    assert_eq!(f.code, 1);
    assert_eq!(
        f.message,
        format!(
            "no container named \"web\" (or with that id) in journal {}",
            p.display()
        )
    );
    journal_with(&p, oom_fixture(W3, "web", T0));
    assert_eq!(run(&args(&p, "db"), false).unwrap_err().code, 1);
    // Two characters are not an id prefix.
    assert_eq!(run(&args(&p, "5f"), false).unwrap_err().code, 1);
}

#[test]
fn a_missing_journal_is_exit_1_naming_it_and_creates_nothing() {
    let t = Scratch::new("pm-missing");
    let p = t.join("var/lib/ctrace/journal.db");
    let f = run(&args(&p, "web"), false).unwrap_err();
    assert_eq!(f.code, 1);
    assert_eq!(
        f.message,
        format!(
            "no journal at {}: `ctrace watch` creates and keeps one (on by default; give it \
                 the same --journal PATH)",
            p.display()
        )
    );
    assert!(!t.join("var").exists());
}

#[test]
fn files_that_are_not_journals_are_exit_2_and_untouched() {
    let t = Scratch::new("pm-notjournal");
    // Text.
    let text = t.join("text.db");
    let content = b"not a database\n".repeat(100);
    std::fs::write(&text, &content).unwrap();
    // Another application's SQLite database.
    let other = t.join("other.db");
    {
        let c = rusqlite::Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let other_content = std::fs::read(&other).unwrap();
    for (path, bytes, reason) in [
        (&text, &content, "no SQLite header"),
        (&other, &other_content, "another application"),
    ] {
        let before = std::fs::metadata(path).unwrap().modified().unwrap();
        for json in [false, true] {
            let mut a = args(path, "web");
            a.json = json;
            let f = run(&a, false).unwrap_err();
            assert_eq!(f.code, 2, "{f:?}");
            assert!(
                f.message.starts_with(&format!(
                    "{} is not a usable ctrace journal",
                    path.display()
                )),
                "{f:?}"
            );
            assert!(f.message.contains(reason), "{f:?}");
        }
        assert_eq!(&std::fs::read(path).unwrap(), bytes);
        assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), before);
    }
    let mut names: Vec<String> = std::fs::read_dir(&t.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["other.db", "text.db"], "no -wal or -shm appeared");
}

#[test]
fn a_newer_journal_is_exit_2_and_untouched() {
    let t = Scratch::new("pm-newer");
    let p = t.join("j.db");
    journal_with(&p, oom_fixture(W3, "web", T0));
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let content = std::fs::read(&p).unwrap();
    let f = run(&args(&p, "web"), false).unwrap_err();
    assert_eq!(f.code, 2);
    assert!(f.message.contains("schema version 99, newer than"), "{f:?}");
    assert!(f.message.contains(&p.display().to_string()), "{f:?}");
    assert_eq!(std::fs::read(&p).unwrap(), content);
}

#[test]
fn reading_does_not_modify_a_journal() {
    let t = Scratch::new("pm-readonly");
    let p = t.join("j.db");
    journal_with(&p, oom_fixture(W3, "web", T0));
    let ls = || {
        let mut names: Vec<String> = std::fs::read_dir(&t.0)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let files = ls();
    let content = std::fs::read(&p).unwrap();
    let mut a = args(&p, "web");
    run_ok(&a, false);
    a.json = true;
    run_ok(&a, false);
    assert_eq!(std::fs::read(&p).unwrap(), content);
    // `Journal::open_read_only` reads a WAL journal like any reader, which lets SQLite add
    // its (empty) `-wal` and `-shm` files next to it; nothing else may appear, and no
    // page of the journal changes.
    let added: Vec<String> = ls().into_iter().filter(|f| !files.contains(f)).collect();
    assert!(
        added.iter().all(|f| f == "j.db-wal" || f == "j.db-shm"),
        "{added:?}"
    );
    let wal = t.join("j.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
}

#[test]
fn hostile_strings_are_escaped() {
    let t = Scratch::new("pm-escape");
    let p = t.join("j.db");
    let mut e = oom_fixture(W3, "evil\u{1b}[2J\u{202e}name", T0);
    e.push(sample(
        W3,
        T0 + 9 * SEC + 1,
        90 * MIB,
        Some(&[(4250, "s\u{7}h\nx", MIB)]),
    ));
    journal_with(&p, e);
    let text = run_ok(&args(&p, &key(W3)), true);
    assert!(
        !text
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
        "{text:?}"
    );
    assert!(
        text.starts_with("evil\\x1b[2J\\u{202e}name: docker container"),
        "{text}"
    );
    assert!(text.contains("s\\x07h\\nx (pid 4250) 1 MiB"), "{text}");
}

#[test]
fn curves() {
    assert_eq!(downsample(&[1, 2, 3], 5), [1, 2, 3]);
    assert_eq!(downsample(&[1, 5, 2, 2, 9, 3, 4], 3), [5, 9, 4]);
    assert_eq!(downsample(&[], 3), Vec::<u64>::new());
    assert_eq!(downsample(&(0..100).collect::<Vec<_>>(), 16).len(), 16);
    assert_eq!(sparkline(&[0, 50, 100], 100), "▁▅█");
    assert_eq!(sparkline(&[0, 0], 0), "▁▁");
    assert_eq!(short_number(2.25), "2.2");
    assert_eq!(short_number(42.4), "42");
}

/// A restart loop is told once, from its last report (each report holds the loop so far).
#[test]
fn a_restart_loop_is_one_story() {
    let t = Scratch::new("pm-loop");
    let p = t.join("j.db");
    let c = cjson(W1, "crashy", "docker");
    let death = |ts: i64, after: Option<f64>| {
        json!({"ts": tracer::clock::rfc3339_ns(ts), "cause": "oom_killed",
               "exit": {"exit_code": 137, "signal": "SIGKILL"}, "limit_bytes": 33554432,
               "restarted_after_s": after})
    };
    let since = tracer::clock::rfc3339_ns(T0);
    let report = |n: usize, expl: &str| {
        let deaths: Vec<Value> = (0..n)
            .map(|i| death(T0 + i as i64 * SEC, (i + 1 < n).then_some(0.5)))
            .collect();
        rec(
            T0 + (n as i64 - 1) * SEC,
            json!({"type": "restart_loop", "container": c, "count": n, "since": since,
                   "window_s": 600.0, "deaths": deaths, "explanation": expl}),
        )
    };
    journal_with(
        &p,
        vec![
            report(3, "crashy (docker) is in a restart loop: 3 deaths in 2 s"),
            report(4, "crashy (docker) is in a restart loop: 4 deaths in 3 s"),
        ],
    );
    let text = run_ok(&args(&p, "crashy"), false);
    assert!(
        text.contains(&format!(
            "  loops       1\n    {}  crashy (docker) is in a restart loop: 4 deaths in 3 s\n",
            tracer::clock::utc_ms(T0 + 3 * SEC)
        )),
        "{text}"
    );
    assert!(
        !text.contains("3 deaths"),
        "the earlier report is part of it: {text}"
    );
    let mut a = args(&p, "crashy");
    a.json = true;
    let v: Value = serde_json::from_str(&run_ok(&a, false)).unwrap();
    assert_eq!(v["stories"][0]["restart_loops_total"], 1);
    let l = &v["stories"][0]["restart_loops"][0];
    assert_eq!(l["count"], 4);
    assert_eq!(l["deaths"].as_array().unwrap().len(), 4);
}
