//! Tests of `ctrace history`, and the journal helpers other subcommands' tests share.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

use super::*;
use tracer::journal::{ContainerUpsert, Entry, JournalOptions, Record};

pub const SEC: i64 = 1_000_000_000;
/// 2026-11-29T18:40:00Z.
pub const T0: i64 = 1_795_977_600 * SEC;

/// A directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ctrace-cli-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `entries` into a new journal at `path`, synchronously, and closes it.
pub fn journal_with(path: &Path, entries: Vec<Entry>) {
    let mut j = Journal::open(path, JournalOptions::default()).unwrap();
    j.write(&entries).unwrap();
}

/// The `container` object of NDJSON records.
pub fn cjson(id: &str, name: &str, runtime: &str) -> Value {
    json!({
        "id": id, "name": name, "runtime": runtime, "image": "busybox:local",
        "namespace": null, "labels": {}, "pod": null, "resolved": true,
    })
}

pub fn rec(ts_ns: i64, v: Value) -> Entry {
    let mut v = v;
    v["schema"] = "ctrace.v1".into();
    v["ts"] = tracer::clock::rfc3339_ns(ts_ns).into();
    v["host"] = "vm".into();
    Entry::Record(Record::from_ndjson(ts_ns, &v))
}

pub fn upsert(key: &str, name: &str, seen_ns: i64, gone: Option<(i64, i32)>) -> Entry {
    let (runtime, id) = key.split_once('/').unwrap();
    Entry::ContainerUpsert(ContainerUpsert {
        key: key.to_owned(),
        id: id.rsplit('/').next().unwrap().to_owned(),
        name: Some(name.to_owned()),
        runtime: runtime.to_owned(),
        image: Some("busybox:local".to_owned()),
        seen_ns,
        gone_ns: gone.map(|g| g.0),
        exit_code: gone.map(|g| g.1),
        ..Default::default()
    })
}

fn args(path: &Path) -> HistoryArgs {
    HistoryArgs {
        container: None,
        since: None,
        until: None,
        types: Vec::new(),
        json: false,
        limit: DEFAULT_LIMIT,
        journal: path.to_owned(),
    }
}

const A: &str = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";
const B: &str = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222";

/// Two containers: `api` killed from the host, `db` OOM-killed; a host record and a
/// `stats` record.
fn fixture(path: &Path) {
    let api = cjson(A, "api", "docker");
    let db = cjson(B, "db", "docker");
    journal_with(
        path,
        vec![
            upsert(&format!("docker/{A}"), "api", T0, None),
            upsert(&format!("docker/{B}"), "db", T0, None),
            rec(
                T0 + SEC,
                json!({"type": "container_start", "container": api,
                       "explanation": "container api (docker) started: /bin/sleep (pid 100)"}),
            ),
            rec(
                T0 + 2 * SEC,
                json!({"type": "container_start", "container": db,
                       "explanation": "container db (docker) started: /bin/tail (pid 200)"}),
            ),
            rec(
                T0 + 3 * SEC,
                json!({"type": "capability", "container": null,
                       "explanation": "ctrace (pid 9, host) was denied CAP_SYS_ADMIN"}),
            ),
            rec(
                T0 + 600 * SEC,
                json!({"type": "oom_kill", "container": db,
                       "explanation": "tail (pid 200 in db, docker) was OOM-killed: db hit its memory limit of 100 MiB"}),
            ),
            rec(
                T0 + 3600 * SEC,
                json!({"type": "kill", "container": api,
                       "explanation": "sleep (pid 100 in api, docker) killed by SIGKILL from kill (pid 300, host); api exited with 137 (SIGKILL)"}),
            ),
            rec(
                T0 + 3601 * SEC,
                json!({"type": "stats", "kinds": {"exec": {"produced": 10, "delivered": 9, "lost_ringbuf_full": 1}}}),
            ),
        ],
    );
}

#[test]
fn human_output_is_time_type_container_explanation() {
    let t = Scratch::new("hist-human");
    let p = t.join("j.db");
    fixture(&p);
    let out = run(&args(&p), T0 + 7200 * SEC).unwrap();
    assert_eq!(
        out.text,
        "\
2026-11-29 18:40:01.000  container_start  api (docker)  container api (docker) started: /bin/sleep (pid 100)
2026-11-29 18:40:02.000  container_start  db (docker)   container db (docker) started: /bin/tail (pid 200)
2026-11-29 18:40:03.000  capability       host          ctrace (pid 9, host) was denied CAP_SYS_ADMIN
2026-11-29 18:50:00.000  oom_kill         db (docker)   tail (pid 200 in db, docker) was OOM-killed: db hit its memory limit of 100 MiB
2026-11-29 19:40:00.000  kill             api (docker)  sleep (pid 100 in api, docker) killed by SIGKILL from kill (pid 300, host); api exited with 137 (SIGKILL)
2026-11-29 19:40:01.000  stats            -             end of a watch: 10 records produced by the kernel, 9 delivered, 1 lost
"
    );
    assert!(out.notes.is_empty());
}

#[test]
fn filters_by_type_time_container_and_limit() {
    let t = Scratch::new("hist-filters");
    let p = t.join("j.db");
    fixture(&p);
    let now = T0 + 7200 * SEC;
    let types = |out: &Output| -> Vec<String> {
        out.text
            .lines()
            .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
            .collect()
    };
    let mut a = args(&p);
    a.types = vec!["oom_kill".into(), "kill".into()];
    assert_eq!(types(&run(&a, now).unwrap()), ["oom_kill", "kill"]);
    // --since 1h: only the last hour (kill at now - 1 h exactly, and stats).
    let mut a = args(&p);
    a.since = Some(parse_time("1h").unwrap());
    assert_eq!(types(&run(&a, now).unwrap()), ["kill", "stats"]);
    // RFC 3339 bounds, with an offset.
    let mut a = args(&p);
    a.since = Some(parse_time("2026-11-29T19:40:01.5+01:00").unwrap());
    a.until = Some(parse_time("2026-11-29T18:50:00Z").unwrap());
    assert_eq!(
        types(&run(&a, now).unwrap()),
        ["container_start", "capability", "oom_kill"]
    );
    // By container name, id prefix and key.
    for pattern in ["db", "bbbbbbbb", &format!("docker/{B}")] {
        let mut a = args(&p);
        a.container = Some(Selector::parse(pattern).unwrap());
        assert_eq!(
            types(&run(&a, now).unwrap()),
            ["container_start", "oom_kill"],
            "{pattern}"
        );
    }
    // Limit: the newest N, oldest first.
    let mut a = args(&p);
    a.limit = 2;
    let out = run(&a, now).unwrap();
    assert_eq!(types(&out), ["kill", "stats"]);
    assert!(
        out.notes[0].contains("newest 2 matching records"),
        "{:?}",
        out.notes
    );
    a.limit = 0;
    let out = run(&a, now).unwrap();
    assert!(
        types(&out).len() > 2 && out.notes.is_empty(),
        "{:?}",
        out.notes
    );
    a.limit = types(&out).len();
    assert!(
        run(&a, now).unwrap().notes.is_empty(),
        "exactly all: no note"
    );
    let mut a = args(&p);
    a.container = Some(Selector::parse("api").unwrap());
    a.limit = 1;
    assert_eq!(types(&run(&a, now).unwrap()), ["kill"]);
    // Nothing in range: empty output, a note, success.
    let mut a = args(&p);
    a.types = vec!["signal".into()];
    let out = run(&a, now).unwrap();
    assert_eq!(out.text, "");
    assert_eq!(out.notes.len(), 1);
    // An unknown container: exit code 1.
    let mut a = args(&p);
    a.container = Some(Selector::parse("nope").unwrap());
    let f = run(&a, now).unwrap_err();
    assert_eq!(f.code, 1);
    assert!(f.message.contains("no container named \"nope\""), "{f:?}");
    // --since after --until: exit code 2.
    let mut a = args(&p);
    a.since = Some(parse_time("10m").unwrap());
    a.until = Some(parse_time("1h").unwrap());
    assert_eq!(run(&a, now).unwrap_err().code, 2);
}

#[test]
fn json_prints_the_stored_lines_exactly() {
    let t = Scratch::new("hist-json");
    let p = t.join("j.db");
    fixture(&p);
    let mut a = args(&p);
    a.json = true;
    a.types = vec!["oom_kill".into()];
    let out = run(&a, T0).unwrap();
    let stored = Journal::open_read_only(&p)
        .unwrap()
        .records(&RecordFilter {
            types: vec!["oom_kill".into()],
            ..RecordFilter::default()
        })
        .unwrap();
    assert_eq!(out.text, format!("{}\n", stored[0].json));
    let v: Value = serde_json::from_str(out.text.trim()).unwrap();
    assert_eq!(v["schema"], "ctrace.v1");
    assert_eq!(v["type"], "oom_kill");
    assert_eq!(v["ts"], "2026-11-29T18:50:00.000000000Z");
}

#[test]
fn missing_journal_is_exit_1_and_creates_nothing() {
    let t = Scratch::new("hist-missing");
    let p = t.join("sub/j.db");
    let f = run(&args(&p), T0).unwrap_err();
    assert_eq!(f.code, 1);
    assert!(f.message.contains(&p.display().to_string()), "{f:?}");
    assert!(f.message.contains("ctrace watch"), "{f:?}");
    assert!(!t.join("sub").exists());
}

#[test]
fn non_journal_is_exit_2_and_left_untouched() {
    let t = Scratch::new("hist-text");
    let p = t.join("j.db");
    let content = b"this is not a database, just some text that is long enough\n".repeat(20);
    std::fs::write(&p, &content).unwrap();
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
    let f = run(&args(&p), T0).unwrap_err();
    assert_eq!(f.code, 2);
    assert!(f.message.contains(&p.display().to_string()), "{f:?}");
    assert!(f.message.contains("not a usable ctrace journal"), "{f:?}");
    assert_eq!(std::fs::read(&p).unwrap(), content);
    assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), mtime);
    let names: Vec<_> = std::fs::read_dir(&t.0).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "no -wal or -shm file appeared");
}

#[test]
fn hostile_strings_are_escaped() {
    let t = Scratch::new("hist-escape");
    let p = t.join("j.db");
    let c = cjson(A, "evil\u{1b}[2Jname", "docker");
    journal_with(
        &p,
        vec![rec(
            T0,
            json!({"type": "kill", "container": c, "explanation": "x\u{1b}]0;pwned\u{7}\nsecond line"}),
        )],
    );
    let out = run(&args(&p), T0).unwrap();
    assert!(
        !out.text.trim_end().contains(['\u{1b}', '\u{7}', '\n']),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("evil\\x1b[2Jname (docker)"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("x\\x1b]0;pwned\\x07\\nsecond line"),
        "{}",
        out.text
    );
}
