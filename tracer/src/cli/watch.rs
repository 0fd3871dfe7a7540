//! `ctrace watch`: load the probes and stream events until Ctrl-C or SIGTERM.

use std::{
    io::{self, IsTerminal as _},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use aya::maps::{MapData, RingBuf};
use clap::Args;
use serde_json::Value;
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{signal, SignalKind},
    sync::mpsc,
};

use tracer_common::{kind, kind_bit};

use crate::{
    cgroupfs::Mounts,
    clock::BootClock,
    container::Runtime,
    cpuwatch::{self, CpuWatch},
    docker,
    enrich::{self, Feed},
    event::{kind_name, Body, Event},
    explain::{CgroupMemory, Correlator, Incident},
    journal,
    names::parse_signal,
    pipeline::Pipeline,
    probe::{self, Options, Probe},
    recorder::{self, Recorder},
    resolve::{self, Attrs, Names, Resolver, Update},
    resolve::{Attribution, Container},
    sink::{
        console, escape,
        file::{Discard, LineSink, RotatingFile, Stdout},
        filter::{self, Filter},
        json, Context, Loss, LossTracker,
    },
    throttle::{self, DetectorConfig, ThrottleEvent},
};

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const MAGENTA: &str = "\x1b[35m";

/// `ctrace watch`: the tracing options and how to show the stream.
#[derive(Debug, Args)]
pub struct WatchCmd {
    /// Print one NDJSON object per line instead of human lines.
    #[arg(long)]
    pub json: bool,
    /// Colour the console output: auto (when stdout is a terminal), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    #[command(flatten)]
    pub trace: WatchArgs,
}

/// What is traced, recorded and written; shared by `watch` and `agent`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Event kinds, comma-separated: exec, exit, fork, signal, oom, capability (denied checks),
    /// capability:all (allowed ones too), cgroup (= cgroup_mkdir, cgroup_rmdir,
    /// cgroup_attach), cpu_throttle, all.
    #[arg(long, default_value = "exec,exit,signal,oom,capability,cpu_throttle")]
    pub events: String,
    /// How often container CPU counters are sampled for cpu_throttle (e.g. 1s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = super::parse_duration)]
    pub throttle_interval: Duration,
    /// Share of CFS periods throttled over an interval from which a container counts as
    /// throttled.
    #[arg(long, value_name = "RATIO", default_value_t = 0.10)]
    pub throttle_threshold: f64,
    /// Signals to report besides SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGKILL, SIGSEGV, SIGTERM
    /// (comma-separated names or numbers, or `all`).
    #[arg(long, value_name = "LIST")]
    pub signals: Option<String>,
    /// Ring buffer size in bytes (rounded up to a power of two).
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES")]
    pub ring_size: u64,
    /// Fold repeated identical capability checks within this many seconds into one record.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub cap_window: f64,
    /// Report the exit of every thread, not only of whole processes.
    #[arg(long)]
    pub all_threads: bool,
    /// Write NDJSON to this file instead of stdout (created 0600; symlinks refused; reopened
    /// on SIGHUP).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Rotate --output when it would grow past this size, e.g. 100MiB (0: never).
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = super::parse_size)]
    pub rotate_size: u64,
    /// Rotated files to keep (FILE.1 ... FILE.N).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub rotate_keep: u32,
    /// Also scan this runc state root (`runc --root DIR`) for containers; repeatable.
    #[arg(long, value_name = "DIR")]
    pub runc_root: Vec<PathBuf>,
    /// Only events touching this container (name, id or id prefix, pod name); repeatable.
    #[arg(long, value_name = "NAME|ID")]
    pub container: Vec<String>,
    /// Only containers of this runtime (docker, containerd, runc, crio, podman); repeatable.
    #[arg(long, value_name = "RUNTIME", value_parser = filter::parse_runtime)]
    pub runtime: Vec<Runtime>,
    /// Also show host processes that touch no container.
    #[arg(long)]
    pub host: bool,
    /// More detail: allowed capability checks too (like `--events capability:all`).
    #[arg(short, long)]
    pub verbose: bool,
    /// Docker API socket, for container names and images (they are also read from Docker's
    /// store on disk when the daemon does not answer).
    #[arg(long, value_name = "PATH", default_value = docker::DEFAULT_SOCKET)]
    pub docker_socket: PathBuf,
    /// Do not talk to the Docker API.
    #[arg(long)]
    pub no_docker: bool,
    /// Journal (SQLite) for `ctrace postmortem` and `ctrace history`.
    #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_PATH)]
    pub journal: PathBuf,
    /// Do not write the journal.
    #[arg(long)]
    pub no_journal: bool,
    /// Keep journal records this long (e.g. 7d, 12h).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = super::parse_duration)]
    pub retention: Duration,
    /// Keep the journal under this size (e.g. 512MiB).
    #[arg(long, value_name = "SIZE", default_value = "512MiB", value_parser = super::parse_size)]
    pub max_size: u64,
    /// How often the journal samples each container's memory (usage, limit, RSS of its top
    /// processes); containers in their first seconds are sampled more often.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = super::parse_duration)]
    pub memory_interval: Duration,
    /// Record types the journal stores, comma-separated, or `all` (default: incidents and
    /// what explains them, not every exec).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = recorder::DEFAULT_TYPES.iter().map(|s| (*s).to_owned()))]
    pub journal_events: Vec<String>,
    /// Print the eBPF programs' own diagnostics on stderr (ring buffer full, failed reads).
    #[arg(long)]
    pub ebpf_log: bool,
    /// Attach classic tracepoints only, as on kernels whose BTF-typed tracepoints cannot
    /// load: signal targets are then placed from ctrace's process table (kept from fork, exec
    /// and exit records), and run-queue delay is not measured.
    #[arg(long)]
    pub no_tp_btf: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl WatchArgs {
    /// The kernel kinds of `--events`, and whether cpu_throttle is asked for (a userspace
    /// sampler, not a kernel event).
    fn event_spec(&self) -> anyhow::Result<(probe::KindSpec, bool)> {
        let words: Vec<&str> = self.events.split(',').map(str::trim).collect();
        let throttle = words.iter().any(|w| *w == "cpu_throttle" || *w == "all");
        let kernel: Vec<&str> = words
            .into_iter()
            .filter(|w| *w != "cpu_throttle" && !w.is_empty())
            .collect();
        let spec = if kernel.is_empty() && throttle {
            probe::KindSpec {
                mask: 0,
                cap_allowed: false,
            }
        } else {
            probe::parse_kinds(&kernel.join(",")).map_err(anyhow::Error::msg)?
        };
        if !(self.throttle_threshold > 0.0 && self.throttle_threshold <= 1.0) {
            anyhow::bail!("--throttle-threshold must be in (0, 1]");
        }
        if self.throttle_interval < Duration::from_millis(100) {
            anyhow::bail!("--throttle-interval must be at least 100ms");
        }
        if self.memory_interval < Duration::from_millis(100) {
            anyhow::bail!("--memory-interval must be at least 100ms");
        }
        Ok((spec, throttle))
    }

    fn options(&self) -> anyhow::Result<Options> {
        let (kinds, throttle) = self.event_spec()?;
        let mut kernel_kinds = kinds.mask;
        // The OOM killer's SIGKILL names the victim's cgroup (see `OomVictim`): trace signals
        // in the kernel whenever OOM kills are asked for, and show them only if asked too.
        if kinds.mask & kind_bit(kind::OOM_VICTIM) != 0 {
            kernel_kinds |= kind_bit(kind::SIGNAL);
        }
        // Kill and OOM incidents end with the target's exit.
        if kinds.mask & (kind_bit(kind::SIGNAL) | kind_bit(kind::OOM_VICTIM)) != 0 {
            kernel_kinds |= kind_bit(kind::EXIT);
        }
        // State, traced whatever is shown: fork records keep the process table current (it
        // places signal targets and OOM victims the kernel side could not read), and cgroup
        // creation, removal and moves keep container attribution current.
        kernel_kinds |= kind_bit(kind::FORK)
            | kind_bit(kind::CGROUP_MKDIR)
            | kind_bit(kind::CGROUP_RMDIR)
            | kind_bit(kind::CGROUP_ATTACH);
        let mut o = Options {
            kinds: kernel_kinds,
            cap_allowed: kinds.cap_allowed
                || (self.verbose && kinds.mask & kind_bit(kind::CAPABILITY) != 0),
            ring_bytes: probe::ring_bytes(self.ring_size),
            runq: throttle,
            ebpf_log: self.ebpf_log,
            btf_tracepoints: !self.no_tp_btf,
            exit_all_threads: self.all_threads,
            ..Options::default()
        };
        if !(self.cap_window.is_finite() && self.cap_window >= 0.0) {
            anyhow::bail!("--cap-window must be a number of seconds >= 0");
        }
        o.cap_window = Duration::from_secs_f64(self.cap_window);
        if let Some(list) = &self.signals {
            for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if s.eq_ignore_ascii_case("all") {
                    o.signals = u64::MAX;
                    continue;
                }
                let n = parse_signal(s).with_context(|| format!("unknown signal {s:?}"))?;
                o.signals |= probe::signal_bit(n);
            }
        }
        Ok(o)
    }
}

/// Output with broken-pipe detection: a closed stdout ends the watch quietly; a failing
/// `--output` file ends it with an error.
struct Out {
    w: Box<dyn LineSink>,
    /// Kinds the user asked to see (the kernel may trace more, for correlation).
    kinds: u32,
    throttle: bool,
    json: bool,
    color: bool,
    filter: Filter,
    ctx: Context,
    recorder: Option<Recorder>,
    /// The status line on a terminal's stderr (events/s, losses), when shown.
    status_line: Option<String>,
    /// Lines were written since the last flush.
    dirty: bool,
    /// Set once writing failed: `Ok(())` for a broken pipe, the error otherwise.
    done: Option<anyhow::Result<()>>,
}

impl Out {
    fn line(&mut self, s: &str) {
        if self.done.is_some() {
            return;
        }
        self.dirty = true;
        if let Err(e) = self.w.write_line(s) {
            self.fail(e);
        }
    }

    /// Hand a record to the journal when it stores this type; the value is built only then.
    fn journal(&self, ty: &str, boot_ns: u64, v: impl FnOnce() -> serde_json::Value) {
        if let Some(r) = &self.recorder {
            if r.stores(ty) {
                r.record(self.ctx.clock.unix_ns(boot_ns), &v());
            }
        }
    }

    fn event(&mut self, ev: &Event, attrs: &Attrs) {
        // The journal keeps what happened to every container, whatever the display filter.
        let journal_this = attrs.touches_container() || matches!(ev.body, Body::OomVictim(_));
        if journal_this {
            self.journal(json::type_name(ev), ev.boot_ns, || {
                json::event(ev, attrs, &self.ctx)
            });
        }
        if self.kinds & kind_bit(ev.kind) == 0 || !self.filter.event(attrs) {
            return;
        }
        let s = if self.json {
            json::line(&json::event(ev, attrs, &self.ctx))
        } else {
            let denied = matches!(&ev.body, Body::Capability(c) if !c.allowed());
            self.paint(
                console::event(ev, attrs, &self.ctx),
                if denied { YELLOW } else { "" },
            )
        };
        self.line(&s);
    }

    fn incident(&mut self, i: &Incident) {
        if i.touches_container() || matches!(i, Incident::Oom(_)) {
            self.journal(i.type_name(), i.boot_ns(), || json::incident(i, &self.ctx));
        }
        if let Some(r) = &mut self.recorder {
            let at = self.ctx.clock.unix_ns(i.boot_ns());
            match i {
                Incident::ContainerStart { container, .. } => {
                    r.container(container, at, None);
                    // Stamped when read: the start may be handled after usage grew.
                    r.sample(container, self.ctx.clock.unix_ns(BootClock::boot_now_ns()));
                }
                // The reading at the kill ends the memory curve, however fast usage rose; an
                // older sample (the cgroup was gone) is already on it, at its own time, and
                // a parent cgroup's figures are not the container's.
                Incident::Oom(o) => {
                    let at_kill = o
                        .memory
                        .as_ref()
                        .filter(|m| !m.stale && m.limit_depth.unwrap_or(0) == 0);
                    if let (Some(c), Some(m)) = (o.victim.container(), at_kill) {
                        if let Some(usage) = m.peak_bytes.or(m.usage_bytes) {
                            r.sample_at(c, at, usage, m.limit_bytes);
                        }
                    }
                }
                Incident::ContainerStop {
                    container, exit, ..
                } => r.container(
                    container,
                    at,
                    Some(exit.code.and_then(|c| i32::try_from(c).ok()).unwrap_or(-1)),
                ),
                _ => {}
            }
        }
        // An incident shows when the kind it comes from is shown.
        let from = match i {
            Incident::Kill(_) => kind::SIGNAL,
            Incident::Oom(_) => kind::OOM_VICTIM,
            Incident::ContainerStart { .. } => kind::EXEC,
            Incident::ContainerStop { .. } => kind::EXIT,
        };
        if self.kinds & kind_bit(from) == 0 || !self.filter.incident(i) {
            return;
        }
        let s = if self.json {
            json::line(&json::incident(i, &self.ctx))
        } else {
            let color = match i {
                Incident::Kill(_) | Incident::Oom(_) => RED,
                _ => CYAN,
            };
            self.paint(console::incident(i, &self.ctx), color)
        };
        self.line(&s);
    }

    fn throttle(&mut self, c: &Arc<Container>, ev: &ThrottleEvent) {
        let now = BootClock::boot_now_ns();
        let record = || {
            let mut v = json::base_record(&self.ctx, "cpu_throttle", now);
            v["container"] = json::container(&Attribution::Container(Arc::clone(c)));
            if let (Some(m), Value::Object(f)) = (v.as_object_mut(), cpuwatch::json_fields(ev)) {
                m.extend(f);
            }
            v["explanation"] = throttle::explain(&cpuwatch::label(c), ev).into();
            v
        };
        self.journal("cpu_throttle", now, record);
        if !self.throttle || !self.filter.container(c) {
            return;
        }
        let s = if self.json {
            json::line(&record())
        } else {
            let color = if ev.kind == throttle::ThrottleKind::Stop {
                CYAN
            } else {
                YELLOW
            };
            self.paint(
                format!(
                    "{} {:<13} {:<16} {}",
                    crate::clock::time_of_day_us(self.ctx.clock.unix_ns(now)),
                    "CPU_THROTTLE",
                    escape::terminal(c.display()),
                    escape::terminal(&throttle::explain(&cpuwatch::label(c), ev))
                ),
                color,
            )
        };
        self.line(&s);
    }

    fn update(&mut self, u: &Update) {
        let now = BootClock::boot_now_ns();
        self.journal("container_update", now, || json::update(u, &self.ctx));
        if let Some(r) = &mut self.recorder {
            r.container(&u.container, self.ctx.clock.unix_ns(now), None);
        }
        if !self.filter.container(&u.container) {
            return;
        }
        let s = if self.json {
            json::line(&json::update(u, &self.ctx))
        } else {
            self.paint(console::update(u, &self.ctx), CYAN)
        };
        self.line(&s);
    }

    /// Colour a whole console line (its text is already escaped).
    fn paint(&self, line: String, color: &str) -> String {
        if self.color && !color.is_empty() {
            format!("{color}{line}\x1b[0m")
        } else {
            line
        }
    }

    fn loss(&mut self, l: &Loss) {
        let now = BootClock::boot_now_ns();
        self.journal("lost", now, || json::loss(l, &self.ctx, now));
        let s = if self.json {
            json::line(&json::loss(l, &self.ctx, now))
        } else {
            self.paint(console::loss(l, &self.ctx, now), MAGENTA)
        };
        self.line(&s);
    }

    fn flush(&mut self) {
        if self.done.is_some() {
            return;
        }
        // Keep the status line below the output: clear it, write, draw it again.
        if let (Some(st), true) = (&self.status_line, std::mem::take(&mut self.dirty)) {
            eprint!("\r\x1b[2K");
            let r = self.w.flush();
            eprint!("{st}");
            if let Err(e) = r {
                self.fail(e);
            }
        } else if let Err(e) = self.w.flush() {
            self.fail(e);
        }
    }

    fn reopen(&mut self) {
        if let Err(e) = self.w.reopen() {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.done = Some(if e.kind() == io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(anyhow::Error::new(e).context("writing output"))
        });
    }
}

/// Everything between the ring buffer and the output.
struct Flow {
    pipeline: Pipeline,
    resolver: Resolver,
    correlator: Correlator<CgroupMemory>,
    feed: mpsc::Sender<Feed>,
}

impl Flow {
    fn handle(&mut self, ev: &Event, out: &mut Out) {
        let attrs = self.resolver.attribute(ev);
        out.event(ev, &attrs);
        for i in self.correlator.observe(ev, &attrs) {
            out.incident(&i);
        }
        self.after(out);
    }

    /// Report what the resolver learnt, and start enrichment of new containers.
    fn after(&mut self, out: &mut Out) {
        for u in self.resolver.take_updates() {
            out.update(&u);
        }
        for w in self.resolver.warnings.drain(..) {
            eprintln!("ctrace: warning: {}", escape::terminal(&w));
        }
        for c in self.resolver.take_new() {
            // Its memory limit, read while the cgroup is there: an OOM kill may remove it
            // before the record is read.
            self.correlator.memory().refresh(&c);
            if let Some(r) = &mut out.recorder {
                r.saw_new_container();
            }
            if let (Runtime::Containerd, Some(ns), None) = (c.runtime, &c.namespace, &c.image) {
                let (ns, id, tx) = (ns.clone(), c.id.clone(), self.feed.clone());
                tokio::spawn(async move {
                    if let Some(image) =
                        enrich::containerd_image(&ns, &id, Duration::from_secs(2)).await
                    {
                        let names = Names {
                            image: Some(image),
                            ..Names::default()
                        };
                        let _ = tx.send(Feed::Names { id, names }).await;
                    }
                });
            }
        }
    }

    fn feed(&mut self, f: Feed, out: &mut Out) {
        match f {
            Feed::Names { id, names } => self.resolver.set_names(&id, names),
            Feed::Warning(w) => eprintln!("ctrace: warning: {}", escape::terminal(&w)),
        }
        self.after(out);
    }
}

/// Records handled per wakeup at most, so that signals (Ctrl-C) and timers are served even
/// when the buffer stays full; the rest is read on the next turn of the loop.
const DRAIN_BATCH: u64 = 16_384;

/// Time one wakeup may spend on records, for the same reason: a slow build or a loaded
/// machine handles far fewer than [`DRAIN_BATCH`] records in it.
const DRAIN_TIME: Duration = Duration::from_millis(100);

/// Handle what the ring buffer holds, up to [`DRAIN_BATCH`] records or [`DRAIN_TIME`];
/// returns how many, and whether it stopped with records left.
fn drain(ring: &mut RingBuf<MapData>, flow: &mut Flow, out: &mut Out) -> (u64, bool) {
    let start = Instant::now();
    let mut n = 0;
    loop {
        if n == DRAIN_BATCH || (n % 256 == 255 && start.elapsed() >= DRAIN_TIME) {
            return (n, true);
        }
        let Some(item) = ring.next() else {
            return (n, false);
        };
        n += 1;
        if let Some(ev) = flow.pipeline.ingest(&item) {
            flow.handle(&ev, out);
        }
    }
}

/// How the stream is shown.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// `ctrace watch`: lines or NDJSON on stdout (or `--output`), a status line on a terminal.
    Watch { json: bool, color: ColorChoice },
    /// `ctrace agent`: the journal and `--output` only, a status line in the log every
    /// `status_every`.
    Agent { status_every: Duration },
}

pub fn run(cmd: &WatchCmd) -> anyhow::Result<()> {
    run_mode(
        &cmd.trace,
        Mode::Watch {
            json: cmd.json,
            color: cmd.color,
        },
    )
}

pub(crate) fn run_mode(args: &WatchArgs, mode: Mode) -> anyhow::Result<()> {
    let opts = args.options()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(watch(args, opts, mode))
}

async fn watch(args: &WatchArgs, opts: Options, mode: Mode) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    Probe::check_privileges()?;
    // Open the output before attaching anything: a bad path fails fast and clearly.
    let sink: Box<dyn LineSink> = match (&args.output, mode) {
        (Some(path), _) => Box::new(
            RotatingFile::open(path, Some(args.rotate_size), args.rotate_keep)
                .context("cannot write --output")?,
        ),
        (None, Mode::Agent { .. }) => Box::new(Discard),
        (None, Mode::Watch { .. }) => Box::new(Stdout::new()),
    };
    // The journal too: a file that is not a journal is an error before anything is attached.
    let recorder = if args.no_journal {
        None
    } else {
        match Recorder::open(
            &args.journal,
            journal::JournalOptions {
                retention: args.retention,
                max_size_bytes: args.max_size,
            },
            &args.journal_events,
        ) {
            Ok(r) => Some(r),
            Err(e) if e.is_storage_unavailable() => {
                eprintln!(
                    "ctrace: warning: journaling is off: {}; the live stream goes on",
                    escape::terminal(&e.to_string())
                );
                None
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot use the journal at {} (use --journal PATH or --no-journal)",
                    args.journal.display()
                )))
            }
        }
    };
    if matches!(mode, Mode::Agent { .. }) && recorder.is_none() && args.output.is_none() {
        anyhow::bail!("the agent would record nothing: no journal and no --output");
    }
    let mut probe = Probe::load(&opts)?;
    for w in &probe.warnings {
        eprintln!("ctrace: warning: {w}");
    }
    let ring = probe.take_ring()?;
    let mut ebpf_log = match probe.take_logger() {
        // SAFETY: as for the ring buffer below: the logger owns its map fd.
        Some(l) => Some(
            unsafe { AsyncFd::register_with_interest(l, tokio::io::Interest::READABLE) }
                .map_err(|e| anyhow::anyhow!("polling the eBPF log: {}", e.into_parts().1))?,
        ),
        None => None,
    };
    // SAFETY: the RingBuf owns its map fd for as long as the AsyncFd owns the RingBuf, and the
    // fd is not closed or replaced behind the registration's back.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("polling the ring buffer: {}", e.into_parts().1))?;
    // What is shown, and what is traced only to keep state (the process table, attribution,
    // correlation).
    let shown_mask = args.event_spec().map_or(u32::MAX, |(k, _)| k.mask);
    let names = |pick: &dyn Fn(u32) -> bool| -> String {
        (0..tracer_common::kind::COUNT as u16)
            .filter(|k| probe.active_kinds & kind_bit(*k) != 0 && pick(kind_bit(*k)))
            .map(kind_name)
            .collect::<Vec<_>>()
            .join(",")
    };
    let shown = names(&|b| shown_mask & b != 0);
    let state = names(&|b| shown_mask & b == 0);
    let kinds = if state.is_empty() {
        shown
    } else {
        format!("{shown}; {state} to keep state")
    };
    match mode {
        Mode::Watch { .. } => eprintln!(
            "ctrace: tracing {kinds} (ring buffer {} KiB); Ctrl-C to stop",
            opts.ring_bytes / 1024
        ),
        Mode::Agent { .. } => eprintln!(
            "ctrace agent: tracing {kinds} (ring buffer {} KiB); journal {}; NDJSON {}; SIGTERM to \
             stop",
            opts.ring_bytes / 1024,
            recorder.as_ref().map_or_else(
                || "off".to_owned(),
                |r| escape::terminal(&r.path().display().to_string())
            ),
            args.output.as_ref().map_or_else(
                || "off".to_owned(),
                |p| escape::terminal(&p.display().to_string())
            ),
        ),
    }

    let (status, json, color) = match mode {
        Mode::Watch { json, color } => {
            let json = json || args.output.is_some();
            let color = !json
                && match color {
                    ColorChoice::Always => true,
                    ColorChoice::Never => false,
                    ColorChoice::Auto => io::stdout().is_terminal(),
                };
            (io::stderr().is_terminal(), json, color)
        }
        Mode::Agent { .. } => (false, true, false),
    };
    let mut out = Out {
        w: sink,
        kinds: args.event_spec().map_or(u32::MAX, |(k, _)| k.mask),
        throttle: args.event_spec().is_ok_and(|(_, t)| t),
        json,
        color,
        filter: Filter {
            containers: args.container.clone(),
            runtimes: args.runtime.clone(),
            include_host: args.host,
        },
        ctx: Context::new(),
        recorder,
        status_line: None,
        dirty: false,
        done: None,
    };
    let mut resolver = Resolver::start(resolve::Config {
        extra_state_roots: args.runc_root.clone(),
        ..resolve::Config::default()
    });
    for w in resolver.warnings.drain(..) {
        eprintln!("ctrace: warning: {}", escape::terminal(&w));
    }
    for pattern in &args.container {
        if resolver.find(pattern).is_empty() {
            eprintln!(
                "ctrace: warning: no container matches {:?} yet; watching for it",
                escape::terminal(pattern)
            );
        }
    }
    let (feed_tx, mut feed_rx) = mpsc::channel(1024);
    if !args.no_docker {
        tokio::spawn(enrich::docker(
            args.docker_socket.clone(),
            docker::DEFAULT_TIMEOUT,
            feed_tx.clone(),
        ));
    }
    let mut pipeline = Pipeline::live();
    pipeline.victims = probe
        .take_oom_victims()
        .map(|v| crate::pipeline::Victims(Box::new(v)));
    if probe.active_kinds & kind_bit(kind::SIGNAL) != 0 && !probe.signal_targets_in_kernel {
        // Targets older than ctrace must be known before a SIGKILL removes them from /proc.
        let n = pipeline.procs.seed(crate::clock::BootClock::boot_now_ns());
        log::info!("process table: {n} tasks read from /proc");
    }
    let mut flow = Flow {
        pipeline,
        resolver,
        correlator: Correlator::new(CgroupMemory::new(Mounts::current())),
        feed: feed_tx,
    };
    flow.after(&mut out);
    let mut losses = LossTracker::default();
    let mut poll = tokio::time::interval(probe::POLL_INTERVAL);
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let deadline = args
        .duration
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map(|d| tokio::time::Instant::now() + Duration::from_secs_f64(d));
    let window_ns = u64::try_from(opts.cap_window.as_nanos()).unwrap_or(u64::MAX);
    let mut throttle_tick = tokio::time::interval(args.throttle_interval);
    // Containers often die of OOM within their first second: sample the young ones densely.
    let mut young_tick = tokio::time::interval(recorder::YOUNG_TICK);
    let mut memory_tick = tokio::time::interval(args.memory_interval);
    let mut cpu = CpuWatch::new(DetectorConfig {
        threshold: args.throttle_threshold,
        ..DetectorConfig::default()
    });
    let mut rate_start = Instant::now();
    let mut rate_count = 0u64;
    let agent_every = match mode {
        Mode::Agent { status_every } => Some(status_every),
        Mode::Watch { .. } => None,
    };
    let mut agent_tick = tokio::time::interval(agent_every.unwrap_or(Duration::from_secs(3600)));
    agent_tick.tick().await;

    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.context("waiting on the ring buffer")?;
                let (n, left) = drain(guard.get_inner_mut(), &mut flow, &mut out);
                rate_count += n;
                // With records left, stay ready: the next turn reads on after serving the rest.
                if !left {
                    guard.clear_ready();
                }
            }
            _ = poll.tick() => {
                rate_count += drain(ring.get_mut(), &mut flow, &mut out).0;
            }
            _ = second.tick() => {
                report(&probe, &mut flow, &mut losses, &mut out, window_ns);
                if status {
                    let secs = rate_start.elapsed().as_secs_f64().max(0.001);
                    let lost = probe.counters().map(|c| LossTracker::total(&c, flow.pipeline.decode_errors)).unwrap_or(0);
                    let journal = match &out.recorder {
                        Some(r) if r.status().disabled => ", journal off",
                        _ => "",
                    };
                    let st = format!(
                        "[ctrace] {:.0} events/s, {lost} lost{journal}",
                        rate_count as f64 / secs
                    );
                    eprint!("\r\x1b[2K{st}");
                    out.status_line = Some(st);
                    rate_start = Instant::now();
                    rate_count = 0;
                }
            }
            _ = agent_tick.tick(), if agent_every.is_some() => {
                eprintln!("{}", agent_status(&probe, &flow, &out));
            }
            Some(f) = feed_rx.recv() => flow.feed(f, &mut out),
            _ = memory_tick.tick(), if out.recorder.is_some() => {
                let now = out.ctx.clock.unix_ns(BootClock::boot_now_ns());
                if let Some(r) = &mut out.recorder {
                    for (c, _, gone) in flow.resolver.containers() {
                        if !gone {
                            r.sample(&c, now);
                        }
                    }
                }
            }
            _ = young_tick.tick(), if out.recorder.is_some() => {
                let now = out.ctx.clock.unix_ns(BootClock::boot_now_ns());
                // Only while a new container is young: the list is not walked every 20 ms
                // for nothing.
                if let Some(r) = out.recorder.as_mut().filter(|r| r.has_young()) {
                    let live = flow.resolver.containers();
                    r.sample_young(live.iter().filter(|(_, _, gone)| !gone).map(|(c, _, _)| c), now);
                }
            }
            guard = readable(ebpf_log.as_mut()) => {
                let mut guard = guard.context("waiting on the eBPF log")?;
                guard.get_inner_mut().flush();
                guard.clear_ready();
            }
            _ = throttle_tick.tick() => {
                let live: Vec<_> = flow
                    .resolver
                    .containers()
                    .into_iter()
                    .filter(|(_, _, gone)| !gone)
                    .map(|(c, id, _)| (c, id))
                    .collect();
                // Keep each container's memory figures fresh for OOM incidents.
                for (c, _) in &live {
                    flow.correlator.memory().refresh(c);
                }
                let runq = if probe.runq_active { probe.runq().ok() } else { None };
                for r in cpu.tick(&live, runq) {
                    if let Some(ev) = &r.event {
                        out.throttle(&r.container, ev);
                    }
                }
            }
            _ = sighup.recv() => out.reopen(),
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            () = sleep_until(deadline) => break,
        }
        out.flush();
        if out.done.is_some() {
            break;
        }
    }
    // Stop production first, then drain what is left, then report the final losses, so the
    // books balance: attempts = delivered + lost.
    probe.detach();
    while drain(ring.get_mut(), &mut flow, &mut out).1 {}
    report(&probe, &mut flow, &mut losses, &mut out, 0);
    for i in flow.correlator.flush() {
        out.incident(&i);
    }
    let recorder = out.recorder.take();
    out.flush();
    if out.status_line.take().is_some() {
        eprint!("\r\x1b[2K");
    }
    if let Ok(c) = probe.counters() {
        let stats = json::stats(
            &c,
            &flow.pipeline.delivered,
            &flow.pipeline.decode_errors_by_kind,
            probe.programs(),
            &out.ctx,
        );
        if let Some(r) = &recorder {
            r.record(out.ctx.clock.unix_ns(BootClock::boot_now_ns()), &stats);
        }
        if out.json {
            out.line(&json::line(&stats));
            out.flush();
        }
        let attempts: u64 = c.iter().map(|c| c.attempts).sum();
        let lost = LossTracker::total(&c, flow.pipeline.decode_errors);
        let delivered: u64 = flow.pipeline.delivered.iter().sum();
        eprintln!(
            "ctrace: {delivered} records delivered, {lost} lost, {attempts} produced by the kernel"
        );
    }
    if let Some(r) = recorder {
        let path = r.path().to_owned();
        let st = r.close();
        if st.dropped > 0 || st.disabled {
            let maybe = if st.unconfirmed > 0 {
                format!(
                    " ({} of them may be in the file: the disk failed during commit)",
                    st.unconfirmed
                )
            } else {
                String::new()
            };
            eprintln!(
                "ctrace: journal {}: {} entries written, {} not written{maybe}{}",
                path.display(),
                st.written,
                st.dropped,
                st.last_error.map(|e| format!(" ({e})")).unwrap_or_default()
            );
        }
    }
    out.done.unwrap_or(Ok(()))
}

/// The agent's periodic line for its log: totals since start.
fn agent_status(probe: &Probe, flow: &Flow, out: &Out) -> String {
    let delivered: u64 = flow.pipeline.delivered.iter().sum();
    let lost = probe
        .counters()
        .map(|c| LossTracker::total(&c, flow.pipeline.decode_errors).to_string())
        .unwrap_or_else(|e| format!("? ({e})"));
    let containers = flow.resolver.containers();
    let live = containers.iter().filter(|(_, _, gone)| !gone).count();
    let journal = match &out.recorder {
        None => "journal off".to_owned(),
        Some(r) => {
            let st = r.status();
            format!(
                "journal {} written, {} not written{}",
                st.written,
                st.dropped,
                if st.disabled {
                    " (writing disabled)"
                } else {
                    ""
                }
            )
        }
    };
    format!(
        "ctrace agent: {delivered} records, {lost} lost; {live} live containers, {} gone; \
         {journal}",
        containers.len() - live
    )
}

/// Readiness of an optional fd: never, when there is none.
async fn readable<T: std::os::fd::AsRawFd>(
    fd: Option<&mut AsyncFd<T>>,
) -> io::Result<tokio::io::unix::AsyncFdReadyMutGuard<'_, T>> {
    match fd {
        Some(fd) => fd.readable_mut().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn report(probe: &Probe, flow: &mut Flow, losses: &mut LossTracker, out: &mut Out, window_ns: u64) {
    match probe.cap_states() {
        Ok(states) => {
            for ev in flow
                .pipeline
                .flush_caps(states, BootClock::boot_now_ns(), window_ns)
            {
                flow.handle(&ev, out);
            }
        }
        Err(e) => log::warn!("reading capability state: {e}"),
    }
    for i in flow.correlator.tick(BootClock::boot_now_ns()) {
        out.incident(&i);
    }
    if let Some(r) = &mut out.recorder {
        let now = out.ctx.clock.unix_ns(BootClock::boot_now_ns());
        for (c, _, gone) in flow.resolver.containers() {
            if !gone {
                r.container(&c, now, None);
            }
        }
        if let Some(w) = r.health() {
            eprintln!("ctrace: warning: {}", escape::terminal(&w));
        }
    }
    losses.decode_errors = flow.pipeline.decode_errors_by_kind;
    match probe.counters() {
        Ok(c) => {
            for l in losses.delta(&c) {
                out.loss(&l);
            }
        }
        Err(e) => log::warn!("reading loss counters: {e}"),
    }
}
