//! The library without the CLI: a program drives a `Session` in-process, through a real
//! container's kill, and reads what it produced from its own sink.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use ctrace_tests::{get, is_root, require_docker, unavailable, DockerContainer};
use serde_json::Value;
use tracer::{
    event::Event,
    explain::Incident,
    probe::Options,
    resolve::{Attrs, Container, Update},
    session::{self, Control, Session, Sink, Summary},
    sink::{json, Context, Loss},
    throttle::ThrottleEvent,
};
use tracer_common::{kind, kind_bit};

const WAIT: Duration = Duration::from_secs(60);

/// A sink that keeps every record as its NDJSON value, for the test thread to read.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Value>>>);

impl Collect {
    fn push(&self, v: Value) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(v);
    }

    fn snapshot(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Sink for Collect {
    fn event(&mut self, ev: &Event, attrs: &Attrs, ctx: &Context) {
        self.push(json::event(ev, attrs, ctx));
    }
    fn incident(&mut self, i: &Incident, ctx: &Context) {
        self.push(json::incident(i, ctx));
    }
    fn throttle(&mut self, c: &Arc<Container>, ev: &ThrottleEvent, boot_ns: u64, ctx: &Context) {
        self.push(session::throttle_record(c, ev, boot_ns, ctx));
    }
    fn update(&mut self, u: &Update, ctx: &Context) {
        self.push(json::update(u, ctx));
    }
    fn loss(&mut self, l: &Loss, boot_ns: u64, ctx: &Context) {
        self.push(json::loss(l, ctx, boot_ns));
    }
    fn warning(&mut self, w: &str) {
        eprintln!("session warning: {w}");
    }
}

#[test]
fn a_session_in_process_explains_a_docker_kill() {
    if !is_root() {
        unavailable("a session loads eBPF programs and needs root");
        return;
    }
    if !require_docker() {
        return;
    }
    let name = "ctrace-it-session-kill";
    let c = DockerContainer::run(name, &[], &["sleep", "300"]);
    let records = Collect::default();
    let (control, controls) = tokio::sync::mpsc::channel(1);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let sink = records.clone();
    // The session runs on its own thread and runtime, as a program embedding ctrace would.
    let runner = std::thread::spawn(move || -> Summary {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let shown = kind_bit(kind::SIGNAL) | kind_bit(kind::EXIT);
            let config = session::Config {
                probe: Options {
                    kinds: session::kernel_kinds(shown),
                    ..Options::default()
                },
                ..session::Config::default()
            };
            let session = Session::start(config, None).await.expect("session starts");
            started_tx.send(()).expect("test thread");
            let mut sink = sink;
            session
                .run(&mut sink, controls)
                .await
                .expect("session runs")
        })
    });
    started_rx
        .recv_timeout(WAIT)
        .expect("the session started within a minute");
    let init = c.init_pid();
    // SAFETY: kill(2) of the container's init, from this (host) process.
    assert_eq!(unsafe { libc::kill(init as i32, libc::SIGKILL) }, 0);
    assert_eq!(c.wait(WAIT), 137);
    let kill = ctrace_tests::eventually("the kill incident", WAIT, || {
        records
            .snapshot()
            .into_iter()
            .find(|v| v["type"] == "kill" && get(v, "container.name") == name)
    });
    assert_eq!(kill["signal"], "SIGKILL", "{kill}");
    assert_eq!(get(&kill, "target.pid"), init);
    assert_eq!(get(&kill, "container.runtime"), "docker");
    assert!(get(&kill, "sender.container").is_null(), "{kill}");
    assert_eq!(get(&kill, "sender.pid"), std::process::id());
    assert_eq!(get(&kill, "target_exit.exit_code"), 137);
    control.blocking_send(Control::Stop).expect("session");
    let summary = runner.join().expect("session thread");

    // The books balance, per kind, and every program was detached.
    let counters = summary.counters.as_ref().expect("counters");
    for (k, c) in counters.iter().enumerate() {
        assert_eq!(
            c.attempts,
            summary.delivered[k] + c.lost_ringbuf_full + summary.decode_errors_by_kind[k],
            "kind {k}: {c:?}"
        );
    }
    assert!(summary.delivered() > 0);
    assert!(!summary.programs.is_empty());
    assert!(
        summary.programs.iter().all(|p| p.detached),
        "{:?}",
        summary.programs
    );
    let stats = summary.stats.as_ref().expect("stats");
    assert_eq!(stats["type"], "stats");
    assert!(summary.journal.is_none(), "no journal was given");
}
