//! `ctrace watch`: load the probes and stream events until Ctrl-C or SIGTERM.

use std::{
    io::{self, IsTerminal as _},
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Args;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::mpsc,
};

use tracer_common::{kind, kind_bit};

use tracer::{
    container::Runtime,
    cpuwatch, docker,
    event::{kind_name, Body, Event},
    explain::Incident,
    journal,
    metrics::{self, Metrics, MetricsConfig, MetricsSink},
    names::parse_signal,
    probe::{self, Options, Probe},
    recorder::{self, Recorder},
    resolve::{self, Attrs, Container, Update},
    select::Selector,
    session::{self, Control, Next, Session, Sink, Status},
    sink::{
        console, escape,
        file::{Discard, LineSink, RotatingFile, Stdout},
        filter::{self, Filter},
        json, Context, Loss,
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
    /// Colour the console output: auto (when stdout is a terminal and NO_COLOR is unset or
    /// empty), always, never.
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
    /// on SIGHUP); `-` for stdout (the agent in a container, for the cluster's log collector).
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
    /// Only events touching this container: name, id or id prefix (3+ characters), pod name,
    /// `NAMESPACE/NAME` or `RUNTIME/ID`; every container it matches; repeatable.
    #[arg(long, value_name = "NAME|ID", value_parser = Selector::parse)]
    pub container: Vec<Selector>,
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
    /// Read options from this TOML file (`agent`: /etc/ctrace/ctrace.toml when it exists);
    /// keys are the flags' names in snake_case, and flags given here win over them.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The config file the options came from, if any.
    #[arg(skip)]
    pub config_file: Option<super::config::FileInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Whether console lines are coloured: `always` and `never` as asked; `auto` when stdout is a
/// terminal and `NO_COLOR` is unset or empty (<https://no-color.org>: a flag wins over it).
fn use_color(choice: ColorChoice, stdout_tty: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stdout_tty && no_color.is_none_or(|v| v.is_empty()),
    }
}

impl WatchArgs {
    /// How a session traces for these arguments.
    fn session_config(&self, probe: Options) -> session::Config {
        session::Config {
            probe,
            resolver: resolve::Config {
                extra_state_roots: self.runc_root.clone(),
                ..resolve::Config::default()
            },
            docker_socket: (!self.no_docker).then(|| self.docker_socket.clone()),
            throttle_interval: self.throttle_interval,
            throttle: DetectorConfig {
                threshold: self.throttle_threshold,
                ..DetectorConfig::default()
            },
            memory_interval: self.memory_interval,
            duration: self
                .duration
                .filter(|d| d.is_finite() && *d >= 0.0)
                .map(Duration::from_secs_f64),
            capture: None,
        }
    }
}

impl WatchArgs {
    /// What is shown: `--container`, `--runtime`, `--host`.
    pub(crate) fn filter(&self) -> Filter {
        Filter {
            containers: self.container.clone(),
            runtimes: self.runtime.clone(),
            include_host: self.host,
        }
    }

    /// Check the options as a start would, attaching nothing.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        self.options().map(drop)
    }

    /// The kernel kinds of `--events`, and whether cpu_throttle is asked for (a userspace
    /// sampler, not a kernel event).
    fn event_spec(&self) -> anyhow::Result<(probe::KindSpec, bool)> {
        let (spec, throttle) = parse_events(&self.events)?;
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

    /// Whether allowed capability checks are shown: `--events capability:all` (or `all`), or
    /// `--verbose` with capability checks.
    fn shows_allowed_caps(&self, kinds: probe::KindSpec) -> bool {
        kinds.cap_allowed || (self.verbose && kinds.mask & kind_bit(kind::CAPABILITY) != 0)
    }

    fn options(&self) -> anyhow::Result<Options> {
        let (kinds, throttle) = self.event_spec()?;
        let kernel_kinds = session::kernel_kinds(kinds.mask);
        // Allowed checks are traced when shown, and whenever the journal records capability
        // checks: `ctrace caps` proposes what a container used (the recorder folds them).
        let journal_caps = !self.no_journal
            && kinds.mask & kind_bit(kind::CAPABILITY) != 0
            && self
                .journal_events
                .iter()
                .any(|t| t == "capability" || t == "all");
        let mut o = Options {
            kinds: kernel_kinds,
            cap_allowed: self.shows_allowed_caps(kinds) || journal_caps,
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

/// The kernel kinds of an `--events` list, and whether cpu_throttle is in it (a userspace
/// sampler, not a kernel event).
pub(crate) fn parse_events(events: &str) -> anyhow::Result<(probe::KindSpec, bool)> {
    let words: Vec<&str> = events.split(',').map(str::trim).collect();
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
    Ok((spec, throttle))
}

/// Output with broken-pipe detection: a closed stdout ends the watch quietly; a failing
/// `--output` file ends it with an error.
pub(crate) struct Out {
    w: Box<dyn LineSink>,
    /// Kinds the user asked to see (the kernel may trace more, for correlation).
    kinds: u32,
    /// Allowed capability checks are shown (they may be traced for the journal only).
    cap_allowed: bool,
    throttle: bool,
    json: bool,
    color: bool,
    filter: Filter,
    /// Where the filter is read again on SIGHUP.
    config_file: Option<super::config::FileInfo>,
    /// A status line on a terminal's stderr (events/s, losses).
    status: bool,
    /// The status line now shown, when shown.
    status_line: Option<String>,
    /// `ctrace agent`: a status line in the log at this interval, and when it was last written.
    agent_every: Option<(Duration, Instant)>,
    /// Lines were written since the last flush.
    dirty: bool,
    /// Set once writing failed: `Ok(())` for a broken pipe, the error otherwise.
    done: Option<anyhow::Result<()>>,
}

impl Sink for Out {
    fn event(&mut self, ev: &Event, attrs: &Attrs, ctx: &Context) {
        if self.kinds & kind_bit(ev.kind) == 0 || !self.filter.event(attrs) {
            return;
        }
        if matches!(&ev.body, Body::Capability(c) if c.allowed()) && !self.cap_allowed {
            return;
        }
        let s = if self.json {
            json::line(&json::event(ev, attrs, ctx))
        } else {
            let denied = matches!(&ev.body, Body::Capability(c) if !c.allowed());
            self.paint(
                console::event(ev, attrs, ctx),
                if denied { YELLOW } else { "" },
            )
        };
        self.line(&s);
    }

    fn incident(&mut self, i: &Incident, ctx: &Context) {
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
            json::line(&json::incident(i, ctx))
        } else {
            let color = match i {
                Incident::Kill(_) | Incident::Oom(_) => RED,
                _ => CYAN,
            };
            self.paint(console::incident(i, ctx), color)
        };
        self.line(&s);
    }

    fn throttle(&mut self, c: &Arc<Container>, ev: &ThrottleEvent, now: u64, ctx: &Context) {
        if !self.throttle || !self.filter.container(c) {
            return;
        }
        let s = if self.json {
            json::line(&session::throttle_record(c, ev, now, ctx))
        } else {
            let color = if ev.kind == throttle::ThrottleKind::Stop {
                CYAN
            } else {
                YELLOW
            };
            self.paint(
                format!(
                    "{} {:<13} {:<16} {}",
                    tracer::clock::time_of_day_us(ctx.clock.unix_ns(now)),
                    "CPU_THROTTLE",
                    escape::terminal(c.display()),
                    escape::terminal(&throttle::explain(&cpuwatch::label(c), ev))
                ),
                color,
            )
        };
        self.line(&s);
    }

    fn update(&mut self, u: &Update, ctx: &Context) {
        if !self.filter.container(&u.container) {
            return;
        }
        let s = if self.json {
            json::line(&json::update(u, ctx))
        } else {
            self.paint(console::update(u, ctx), CYAN)
        };
        self.line(&s);
    }

    fn loss(&mut self, l: &Loss, now: u64, ctx: &Context) {
        let s = if self.json {
            json::line(&json::loss(l, ctx, now))
        } else {
            self.paint(console::loss(l, ctx, now), MAGENTA)
        };
        self.line(&s);
    }

    fn warning(&mut self, w: &str) {
        eprintln!("ctrace: warning: {}", escape::terminal(w));
    }

    fn status(&mut self, st: &Status) {
        if self.status {
            let lost = st.lost.as_ref().map_or(0, |n| *n);
            let journal = match &st.journal {
                Some(j) if j.disabled => ", journal off",
                _ => "",
            };
            let line = format!(
                "[ctrace] {:.0} events/s, {lost} lost{journal}",
                st.records_per_sec
            );
            eprint!("\r\x1b[2K{line}");
            self.status_line = Some(line);
        }
        if let Some((every, last)) = &mut self.agent_every {
            if last.elapsed() >= *every {
                *last = Instant::now();
                eprintln!("{}", agent_status(st));
            }
        }
    }

    fn flush(&mut self) -> Next {
        if self.done.is_none() {
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
        if self.done.is_some() {
            Next::Stop
        } else {
            Next::Continue
        }
    }

    fn reopen(&mut self) {
        if let Some(file) = &self.config_file {
            let path = escape::terminal(&file.path.display().to_string());
            match file.reload_filter() {
                Ok(f) => {
                    eprintln!(
                        "ctrace: reloaded {path}: showing {}",
                        escape::terminal(&super::config::describe(&f))
                    );
                    self.filter = f;
                }
                Err(e) => eprintln!(
                    "ctrace: warning: not reloaded, the filter stays as it was: {}",
                    escape::terminal(&e)
                ),
            }
        }
        if let Err(e) = self.w.reopen() {
            self.fail(e);
        }
    }
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

    /// Colour a whole console line (its text is already escaped).
    fn paint(&self, line: String, color: &str) -> String {
        if self.color && !color.is_empty() {
            format!("{color}{line}\x1b[0m")
        } else {
            line
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

/// `--output -`: NDJSON on stdout (`/dev/stdout` is a symbolic link, which `--output` refuses).
fn is_stdout(output: &std::path::Path) -> bool {
    output.as_os_str() == "-"
}

/// How the stream is shown.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// `ctrace watch`: lines or NDJSON on stdout (or `--output`), a status line on a terminal.
    Watch { json: bool, color: ColorChoice },
    /// `ctrace agent`: the journal and `--output` only, a status line in the log every
    /// `status_every`, Prometheus metrics when given an address.
    Agent {
        status_every: Duration,
        metrics: Option<(SocketAddr, MetricsConfig)>,
    },
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
    run_capturing(args, mode, None)
}

/// Run a session as `mode` says, writing a capture of it to `capture` (`ctrace record`).
pub(crate) fn run_capturing(
    args: &WatchArgs,
    mode: Mode,
    capture: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let opts = args.options()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(watch(args, opts, mode, capture))
}

/// A replay's output, as `watch` shows a live session: lines for people or NDJSON on stdout,
/// with the same kinds and filter.
pub(crate) fn replay_output(
    json: bool,
    color: ColorChoice,
    shown: (probe::KindSpec, bool),
    filter: Filter,
) -> Out {
    let color = !json
        && use_color(
            color,
            io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
    Out {
        w: Box::new(Stdout::new()),
        kinds: shown.0.mask,
        cap_allowed: shown.0.cap_allowed,
        throttle: shown.1,
        json,
        color,
        filter,
        config_file: None,
        status: false,
        status_line: None,
        agent_every: None,
        dirty: false,
        done: None,
    }
}

impl Out {
    /// The closing `stats` record (NDJSON only), flushed; how writing went.
    pub(crate) fn finish(mut self, stats: Option<&serde_json::Value>) -> anyhow::Result<()> {
        if let (Some(stats), true) = (stats, self.json) {
            self.line(&json::line(stats));
        }
        let _ = self.flush();
        self.done.unwrap_or(Ok(()))
    }
}

/// The journal the arguments ask for: `None` with `--no-journal`, or when its storage is
/// unavailable (said in a warning: the live stream goes on); an error for a file that is not a
/// journal.
fn open_journal(args: &WatchArgs) -> anyhow::Result<Option<Recorder>> {
    if args.no_journal {
        return Ok(None);
    }
    match Recorder::open(
        &args.journal,
        journal::JournalOptions {
            retention: args.retention,
            max_size_bytes: args.max_size,
        },
        &args.journal_events,
    ) {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.is_storage_unavailable() => {
            eprintln!(
                "ctrace: warning: journaling is off: {}; the live stream goes on",
                escape::terminal(&e.to_string())
            );
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot use the journal at {} (use --journal PATH or --no-journal)",
            args.journal.display()
        ))),
    }
}

/// The kinds traced, for the banner: those shown, then those traced only to keep state.
fn kinds_banner(active: u32, shown_mask: u32) -> String {
    let names = |pick: &dyn Fn(u32) -> bool| -> String {
        (0..tracer_common::kind::COUNT as u16)
            .filter(|k| active & kind_bit(*k) != 0 && pick(kind_bit(*k)))
            .map(kind_name)
            .collect::<Vec<_>>()
            .join(",")
    };
    let shown = names(&|b| shown_mask & b != 0);
    let state = names(&|b| shown_mask & b == 0);
    if state.is_empty() {
        shown
    } else {
        format!("{shown}; {state} to keep state")
    }
}

async fn watch(
    args: &WatchArgs,
    opts: Options,
    mode: Mode,
    capture: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    // Signals first: a Ctrl-C that comes once the start line is out stops cleanly.
    let controls = controls_from_signals()?;
    Probe::check_privileges()?;
    // Open the output before attaching anything: a bad path fails fast and clearly.
    let sink = open_output(args, mode)?;
    // The journal too: a file that is not a journal is an error before anything is attached.
    let recorder = open_journal(args)?;
    if matches!(mode, Mode::Agent { .. }) && recorder.is_none() && args.output.is_none() {
        anyhow::bail!("the agent would record nothing: no journal and no --output");
    }
    // The metrics endpoint too: a port in use fails before anything is attached.
    let metrics = serve_metrics(mode).await?;
    let ring_bytes = opts.ring_bytes;
    let mut config = args.session_config(opts);
    config.capture = capture.map(std::path::Path::to_owned);
    let mut session = Session::start(config, recorder).await?;
    for w in session.take_warnings() {
        eprintln!("ctrace: warning: {}", escape::terminal(&w));
    }
    let shown_mask = args.event_spec().map_or(u32::MAX, |(k, _)| k.mask);
    print_banner(args, mode, &session, shown_mask, ring_bytes);
    if let Some(hook) = session.mechanisms().get("capability") {
        eprintln!("ctrace: capability checks via {}", cap_mechanism(hook));
    }
    for pattern in &args.container {
        if session.find(pattern).is_empty() {
            eprintln!(
                "ctrace: warning: no container matches {:?} yet; watching for it",
                escape::terminal(pattern.as_str())
            );
        }
    }

    let (status, json, color) = match mode {
        Mode::Watch { json, color } => {
            let json = json || args.output.is_some();
            let color = !json
                && use_color(
                    color,
                    io::stdout().is_terminal(),
                    std::env::var_os("NO_COLOR").as_deref(),
                );
            (io::stderr().is_terminal(), json, color)
        }
        Mode::Agent { .. } => (false, true, false),
    };
    let mut out = Out {
        w: sink,
        kinds: shown_mask,
        cap_allowed: args
            .event_spec()
            .is_ok_and(|(k, _)| args.shows_allowed_caps(k)),
        throttle: args.event_spec().is_ok_and(|(_, t)| t),
        json,
        color,
        filter: args.filter(),
        config_file: args.config_file.clone(),
        status,
        status_line: None,
        agent_every: match mode {
            Mode::Agent { status_every, .. } => Some((status_every, Instant::now())),
            Mode::Watch { .. } => None,
        },
        dirty: false,
        done: None,
    };
    let summary = match metrics {
        Some(m) => {
            let mut metrics = MetricsSink::new(m);
            session
                .run(&mut session::Both(&mut out, &mut metrics), controls)
                .await
        }
        None => session.run(&mut out, controls).await,
    }
    .context("waiting on the ring buffer")?;
    if out.status_line.take().is_some() {
        eprint!("\r\x1b[2K");
    }
    if let Some(stats) = &summary.stats {
        if out.json {
            out.line(&json::line(stats));
            let _ = out.flush();
        }
    }
    report_totals(summary);
    out.done.unwrap_or(Ok(()))
}

/// Where records are written: `--output` (a file, or `-` for stdout), else stdout for `watch`
/// and nowhere for `agent` (its journal and metrics keep what it sees).
fn open_output(args: &WatchArgs, mode: Mode) -> anyhow::Result<Box<dyn LineSink>> {
    Ok(match (&args.output, mode) {
        (Some(path), _) if is_stdout(path) => Box::new(Stdout::new()),
        (Some(path), _) => Box::new(
            RotatingFile::open(path, Some(args.rotate_size), args.rotate_keep)
                .context("cannot write --output")?,
        ),
        (None, Mode::Agent { .. }) => Box::new(Discard),
        (None, Mode::Watch { .. }) => Box::new(Stdout::new()),
    })
}

/// The agent's metrics endpoint, when asked for; bound before anything is attached, so a port
/// in use fails at once.
async fn serve_metrics(mode: Mode) -> anyhow::Result<Option<Metrics>> {
    let Mode::Agent {
        metrics: Some((addr, config)),
        ..
    } = mode
    else {
        return Ok(None);
    };
    let m = Metrics::new(config);
    let (bound, _server) = metrics::serve(addr, m.clone())
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    eprintln!("ctrace agent: metrics at http://{bound}/metrics");
    Ok(Some(m))
}

/// How capability checks are hooked, for the start line.
fn cap_mechanism(hook: &str) -> String {
    match hook {
        "tracepoint" => "the capability:cap_capable tracepoint".to_owned(),
        "fexit" => format!("fexit on {}()", tracer::probe::CAP_FUNCTION),
        "kprobe" => format!("kprobe/kretprobe on {}()", tracer::probe::CAP_FUNCTION),
        other => other.to_owned(),
    }
}

/// The start line: what is traced (shown, and kept only for state: the process table,
/// attribution, correlation), the ring buffer, and for the agent where its records go.
fn print_banner(args: &WatchArgs, mode: Mode, session: &Session, shown_mask: u32, ring_bytes: u32) {
    let kinds = kinds_banner(session.active_kinds(), shown_mask);
    match mode {
        Mode::Watch { .. } => eprintln!(
            "ctrace: tracing {kinds} (ring buffer {}); Ctrl-C to stop",
            tracer::units::bytes(u64::from(ring_bytes))
        ),
        Mode::Agent { .. } => eprintln!(
            "ctrace agent: tracing {kinds} (ring buffer {}); journal {}; NDJSON {}; SIGTERM to \
             stop",
            tracer::units::bytes(u64::from(ring_bytes)),
            session.journal_path().map_or_else(
                || "off".to_owned(),
                |p| escape::terminal(&p.display().to_string())
            ),
            args.output.as_ref().map_or_else(
                || "off".to_owned(),
                |p| if is_stdout(p) {
                    "stdout".to_owned()
                } else {
                    escape::terminal(&p.display().to_string())
                }
            ),
        ),
    }
}

/// SIGINT and SIGTERM stop the session; SIGHUP reloads the filter and reopens the output.
fn controls_from_signals() -> anyhow::Result<mpsc::Receiver<Control>> {
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let (control, controls) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let c = tokio::select! {
                _ = sighup.recv() => Control::Reopen,
                _ = sigint.recv() => Control::Stop,
                _ = sigterm.recv() => Control::Stop,
            };
            if control.send(c).await.is_err() {
                break;
            }
        }
    });
    Ok(controls)
}

/// The closing totals on stderr, and the journal's losses when it had any.
fn report_totals(summary: session::Summary) {
    if let Some((path, frames, error)) = &summary.capture {
        let path = escape::terminal(&path.display().to_string());
        match error {
            None => eprintln!("ctrace: capture {path}: {frames} frames"),
            Some(e) => eprintln!(
                "ctrace: capture {path}: cut short after {frames} frames: {}",
                escape::terminal(e)
            ),
        }
    }
    if let (Some(attempts), Some(lost)) = (summary.produced(), summary.lost()) {
        eprintln!(
            "ctrace: {} records delivered, {lost} lost, {attempts} produced by the kernel",
            summary.delivered()
        );
    }
    if let Some((path, st)) = summary.journal {
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
}

/// The agent's periodic line for its log: totals since start.
fn agent_status(st: &Status) -> String {
    let lost = match &st.lost {
        Ok(n) => n.to_string(),
        Err(e) => format!("? ({e})"),
    };
    let journal = match &st.journal {
        None => "journal off".to_owned(),
        Some(j) => format!(
            "journal {} written, {} not written{}",
            j.written,
            j.dropped,
            if j.disabled {
                " (writing disabled)"
            } else {
                ""
            }
        ),
    };
    format!(
        "ctrace agent: {} records, {lost} lost; {} live containers, {} gone; {journal}",
        st.delivered, st.live_containers, st.gone_containers
    )
}

#[cfg(test)]
mod output_tests {
    use std::path::Path;

    #[test]
    fn dash_is_stdout() {
        assert!(super::is_stdout(Path::new("-")));
        assert!(!super::is_stdout(Path::new("./-")));
        assert!(!super::is_stdout(Path::new("/dev/stdout")));
        assert!(!super::is_stdout(Path::new("events.ndjson")));
    }
}

#[cfg(test)]
mod color_tests {
    use std::ffi::OsStr;

    use super::{use_color, ColorChoice};

    #[test]
    fn no_color_turns_auto_off() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(use_color(ColorChoice::Auto, true, None));
        assert!(use_color(ColorChoice::Auto, true, empty));
        assert!(!use_color(ColorChoice::Auto, true, set));
        assert!(!use_color(ColorChoice::Auto, false, None));
        // An explicit flag wins over NO_COLOR.
        assert!(use_color(ColorChoice::Always, false, set));
        assert!(!use_color(ColorChoice::Never, true, None));
    }
}
