//! The userspace pipeline alone, on one core: a recorded capture replayed through the flow a
//! live session runs (decode → attribute → explain → encode as NDJSON), timed, many times.
//!
//! `cargo bench -p tracer --bench pipeline -- [--capture FILE] [--rounds N] [--secs S]
//! [--json OUT]`; `cargo xtask bench --sections pipeline` runs it and keeps its figures.
//!
//! A replay answers attribution and `/proc` questions from the capture instead of asking the
//! host. The capture's raw records are base64, decoded when the capture is read, with its JSON
//! frames, before the clock starts: a live session never does it. What it costs is timed apart
//! (`base64_ns_per_record`).
//! This is a benchmark, not a test: it asserts nothing about time.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::json;
use tracer::{
    capture::{Frame, Tape},
    event::{Body, Event},
    explain::Incident,
    resolve::{Attrs, Container, Update},
    session::{self, Sink},
    sink::{json as ndjson, Context, Loss},
    throttle::ThrottleEvent,
};
use tracer_common::kind;

/// What `ctrace watch --json --host` writes in its defaults (the kinds it shows, denied
/// capability checks only), into memory. Records of the kinds kept for state (fork, cgroup)
/// go through the pipeline but are not written, as live.
struct Lines {
    out: Vec<u8>,
    lines: u64,
    encode: bool,
}

impl Lines {
    fn put(&mut self, r: impl FnOnce() -> tracer::record::Record) {
        if self.encode {
            ndjson::write_line(&r(), &mut self.out);
            self.out.push(b'\n');
            self.lines += 1;
        }
    }
}

impl Sink for Lines {
    fn event(&mut self, ev: &Event, attrs: &Attrs, ctx: &Context) {
        let shown = [
            kind::EXEC,
            kind::EXIT,
            kind::SIGNAL,
            kind::OOM_VICTIM,
            kind::CAPABILITY,
        ];
        if !shown.contains(&ev.kind) || matches!(&ev.body, Body::Capability(c) if c.allowed()) {
            return;
        }
        if self.encode {
            ndjson::write_event(ev, attrs, ctx, &mut self.out);
            self.out.push(b'\n');
            self.lines += 1;
        }
    }
    fn incident(&mut self, i: &Incident, ctx: &Context) {
        self.put(|| ndjson::incident_record(i, ctx));
    }
    fn throttle(&mut self, c: &Arc<Container>, ev: &ThrottleEvent, boot_ns: u64, ctx: &Context) {
        self.put(|| ndjson::throttle_record(c, ev, boot_ns, ctx));
    }
    fn update(&mut self, u: &Update, ctx: &Context) {
        self.put(|| ndjson::update_record(u, ctx));
    }
    fn loss(&mut self, l: &Loss, boot_ns: u64, ctx: &Context) {
        self.put(|| ndjson::loss_record(l, ctx, boot_ns));
    }
    fn warning(&mut self, _w: &str) {}
}

/// The same lines, each step timed: building the record, writing it as one escaped line (keys
/// sorted) as the sinks write incidents; and, for comparison, the `Value` path the journal
/// takes: turning the record into a JSON value (keys sorted), writing the value as one line.
/// Events and incidents only. And events' lines as the sinks write them, straight from the
/// event (no record).
#[derive(Default)]
struct Stages {
    ns: [u128; 5],
    lines: u64,
    events: u64,
    out: Vec<u8>,
}

impl Stages {
    fn time(&mut self, build: impl FnOnce() -> tracer::record::Record) {
        let t0 = Instant::now();
        let r = build();
        let t1 = Instant::now();
        self.out.clear();
        ndjson::write_line(&r, &mut self.out);
        let t2 = Instant::now();
        let v = ndjson::to_value(&r);
        let t3 = Instant::now();
        let l = ndjson::line(&v);
        let t4 = Instant::now();
        std::hint::black_box((&self.out, l));
        for (i, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4)]
            .into_iter()
            .enumerate()
        {
            self.ns[i] += (b - a).as_nanos();
        }
        self.lines += 1;
    }
}

impl Sink for Stages {
    fn event(&mut self, ev: &Event, attrs: &Attrs, ctx: &Context) {
        let shown = [
            kind::EXEC,
            kind::EXIT,
            kind::SIGNAL,
            kind::OOM_VICTIM,
            kind::CAPABILITY,
        ];
        if !shown.contains(&ev.kind) || matches!(&ev.body, Body::Capability(c) if c.allowed()) {
            return;
        }
        let t0 = Instant::now();
        self.out.clear();
        ndjson::write_event(ev, attrs, ctx, &mut self.out);
        self.ns[4] += t0.elapsed().as_nanos();
        self.events += 1;
        self.time(|| ndjson::event_record(ev, attrs, ctx));
    }
    fn incident(&mut self, i: &Incident, ctx: &Context) {
        self.time(|| ndjson::incident_record(i, ctx));
    }
    fn throttle(&mut self, _: &Arc<Container>, _: &ThrottleEvent, _: u64, _: &Context) {}
    fn update(&mut self, _: &Update, _: &Context) {}
    fn loss(&mut self, _: &Loss, _: u64, _: &Context) {}
    fn warning(&mut self, _w: &str) {}
}

/// ns per line in each encoding step (record, line; value, line from the value; an event's
/// line from the event).
fn stages(bytes: &[u8], path: &std::path::Path, n: usize) -> [f64; 5] {
    let mut st = Stages::default();
    for _ in 0..n {
        let (header, tape) = Tape::read(bytes, path).expect("reading the capture");
        session::replay(&header, tape, &mut st);
    }
    let per = |i: usize| st.ns[i] as f64 / st.lines.max(1) as f64;
    let event = st.ns[4] as f64 / st.events.max(1) as f64;
    [per(0), per(1), per(2), per(3), event]
}

struct Args {
    capture: PathBuf,
    rounds: u32,
    secs: f64,
    json: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        capture: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/captures/lab.capture"),
        rounds: 5,
        secs: 2.0,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        // `cargo bench` adds `--bench`; other flags of libtest are ignored too.
        match arg.as_str() {
            "--capture" => a.capture = it.next().expect("--capture FILE").into(),
            "--rounds" => a.rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--secs" => a.secs = it.next().and_then(|v| v.parse().ok()).expect("--secs S"),
            "--json" => a.json = Some(it.next().expect("--json FILE").into()),
            _ => {}
        }
    }
    a
}

/// One timed pass: the capture read `n` times (untimed: reading JSON frames is not the
/// pipeline's work), then replayed `n` times; (records, lines, bytes, time spent replaying).
fn pass(bytes: &[u8], path: &std::path::Path, n: usize, encode: bool) -> (u64, u64, u64, Duration) {
    let mut sink = Lines {
        out: Vec::with_capacity(1 << 20),
        lines: 0,
        encode,
    };
    let tapes: Vec<_> = (0..n)
        .map(|_| Tape::read(bytes, path).expect("reading the capture"))
        .collect();
    let (mut records, mut lines, mut written) = (0, 0, 0);
    let start = Instant::now();
    for (header, tape) in tapes {
        let summary = session::replay(&header, tape, &mut sink);
        records += summary.records;
        lines += sink.lines;
        written += sink.out.len() as u64;
        sink.out.clear();
        sink.lines = 0;
    }
    let spent = start.elapsed();
    std::hint::black_box(&sink.out);
    (records, lines, written, spent)
}

/// Replays of the capture that take about `secs`.
fn replays_for(bytes: &[u8], path: &std::path::Path, secs: f64) -> usize {
    let (_, _, _, one) = pass(bytes, path, 3, true);
    ((secs / (one.as_secs_f64() / 3.0)).ceil() as usize).clamp(3, 100_000)
}

/// µs a replay spends on its own setup (a session's flow, its resolver and correlator), from
/// a capture with a header and no frames: paid once per session live, once per replay here.
fn setup_us(bytes: &[u8], path: &std::path::Path) -> f64 {
    let header_only = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let (_, _, _, spent) = pass(header_only, path, 200, true);
    spent.as_secs_f64() * 1e6 / 200.0
}

/// ns per record spent decoding the capture's base64 (a replay's cost, not a live session's).
fn base64_ns(bytes: &[u8], path: &std::path::Path) -> f64 {
    let (_, tape) = Tape::read(bytes, path).expect("reading the capture");
    // Read back decoded (`Frame::Raw`): encoded again to time the decoding a replay skips.
    let mut raw = Vec::new();
    while let Some(f) = tape.next() {
        if let Frame::Raw(bytes) = f {
            raw.push(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
    }
    let reps = 200;
    let start = Instant::now();
    for _ in 0..reps {
        for b in &raw {
            std::hint::black_box(
                base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .ok(),
            );
        }
    }
    start.elapsed().as_nanos() as f64 / (reps * raw.len().max(1)) as f64
}

fn figure(v: &mut [f64], unit: &str) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    let median = if v.is_empty() {
        f64::NAN
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    json!({
        "min": v.first(), "median": median, "max": v.last(),
        "rounds": v.len(), "unit": unit, "values": v,
    })
}

fn main() {
    let a = args();
    let bytes = std::fs::read(&a.capture)
        .unwrap_or_else(|e| panic!("reading {}: {e}", a.capture.display()));
    // Warm up: caches, allocator, lazily built tables.
    let n = replays_for(&bytes, &a.capture, a.secs);
    let (mut full, mut steady, mut bare, mut lines_per_s, mut mb_per_s, mut b64, mut setup) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut stage_record, mut stage_encode) = (Vec::new(), Vec::new());
    let (mut stage_value, mut stage_line, mut stage_event) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_replay = (0u64, 0u64);
    for round in 1..=a.rounds {
        let (records, lines, written, spent) = pass(&bytes, &a.capture, n, true);
        let s = spent.as_secs_f64();
        let setup_s = setup_us(&bytes, &a.capture) * 1e-6;
        setup.push(setup_s * 1e6);
        full.push(records as f64 / s);
        steady.push(records as f64 / (s - setup_s * n as f64).max(1e-9));
        lines_per_s.push(lines as f64 / s);
        mb_per_s.push(written as f64 / s / 1e6);
        let (r2, _, _, spent2) = pass(&bytes, &a.capture, n / 2 + 1, false);
        bare.push(r2 as f64 / spent2.as_secs_f64());
        b64.push(base64_ns(&bytes, &a.capture));
        let st = stages(&bytes, &a.capture, (n / 4).max(3));
        stage_record.push(st[0]);
        stage_encode.push(st[1]);
        stage_value.push(st[2]);
        stage_line.push(st[3]);
        stage_event.push(st[4]);
        per_replay = (records / n as u64, lines / n as u64);
        eprintln!(
            "pipeline: round {round}/{}: {:.0} records/s with NDJSON ({:.0} without the per-replay setup of {:.0} us), {:.0} without encoding",
            a.rounds,
            full.last().unwrap(),
            steady.last().unwrap(),
            setup.last().unwrap(),
            bare.last().unwrap()
        );
    }
    let report = json!({
        "capture": a.capture.display().to_string(),
        "records_per_replay": per_replay.0,
        "lines_per_replay": per_replay.1,
        "seconds_per_round": a.secs,
        "replays_per_round": n,
        "records_per_s": figure(&mut full, "records/s, one core, NDJSON encoded"),
        "records_per_s_steady": figure(&mut steady, "records/s, one core, NDJSON encoded, per-replay setup taken out"),
        "setup_us_per_replay": figure(&mut setup, "us (a session's setup, once per replay)"),
        "records_per_s_no_encode": figure(&mut bare, "records/s, one core, sink does nothing"),
        "lines_per_s": figure(&mut lines_per_s, "NDJSON lines/s"),
        "ndjson_mb_per_s": figure(&mut mb_per_s, "MB/s of NDJSON"),
        "base64_ns_per_record": figure(&mut b64, "ns (replay only)"),
        "encode_ns_per_line": {
            "build_record": figure(&mut stage_record, "ns per line: the record type, explanation, ts"),
            "encode": figure(&mut stage_encode, "ns per line: record to one escaped line, keys sorted (json::write_line)"),
            "to_value": figure(&mut stage_value, "ns per line: record to serde_json::Value (keys sorted), the journal's path"),
            "write_line": figure(&mut stage_line, "ns per line: Value to one escaped line (json::line), the journal's path"),
            "event_line": figure(&mut stage_event, "ns per event line: straight from the event, no record (json::write_event), as the sinks write events"),
        },
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if let Some(path) = a.json {
        std::fs::write(&path, report.to_string())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}
