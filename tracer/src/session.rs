//! A live tracing session: the probe, the pipeline from ring buffer to incidents, container
//! attribution and enrichment, CPU throttling and the journal, driven by one loop.
//!
//! `ctrace watch` and `ctrace agent` run one, and so can any program: start a [`Session`] with
//! a [`Config`], hand [`Session::run`] a [`Sink`] that receives what it produces (events,
//! incidents, throttling, container updates, losses, warnings, a status each second) and a
//! channel of [`Control`]s (stop, reopen the output), and read the [`Summary`] it returns: the
//! loss arithmetic of the run, with the closing `stats` record.
//!
//! The journal is the session's own: it records what happened to every container whatever
//! the sink shows, so that a post-mortem has it.

mod host_cgroups;

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use serde_json::Value;
use tokio::{io::unix::AsyncFd, sync::mpsc};

use host_cgroups::HostCgroups;
use tracer_common::{kind, kind_bit};

use crate::{
    activity::Activity,
    capture::{self, CapFrame, Frame, SigFrame, SigFrames, Tape},
    cgroup::Mounts,
    clock::BootClock,
    container::Runtime,
    cpuwatch::{self, CpuWatch},
    docker,
    enrich::{self, Feed},
    event::{Body, Event},
    explain::{CgroupMemory, Correlator, Incident, OomIncident, OomScope, OomTasks, TaskRss},
    host::kmsg::{self, Kmsg},
    journal::WriterStatus,
    pipeline::Pipeline,
    probe::{self, AttachedProgram, KindCounters, Options, Probe, ProbeError},
    recorder::{self, Recorder},
    resolve::{self, Attrs, Container, Names, Resolver, Update},
    restarts::RestartWatch,
    sink::{json, Context, Loss, LossTracker},
    throttle::{DetectorConfig, ThrottleEvent},
};

/// The kernel kinds a session must trace to show the kinds of `shown` (a [`kind_bit`] mask):
/// what each shown kind's explanation needs, and the state every session keeps.
///
/// - The OOM killer's SIGKILL names the victim's cgroup (see `OomVictim`): signals are traced
///   whenever OOM kills are, and shown only if asked for too.
/// - Kill and OOM incidents end with the target's exit.
/// - Fork records keep the process table current (it places signal targets and OOM victims
///   the kernel side could not read); cgroup creation, removal and moves keep container
///   attribution current.
pub fn kernel_kinds(shown: u32) -> u32 {
    let mut k = shown;
    if shown & kind_bit(kind::OOM_VICTIM) != 0 {
        k |= kind_bit(kind::SIGNAL);
    }
    if shown & (kind_bit(kind::SIGNAL) | kind_bit(kind::OOM_VICTIM)) != 0 {
        k |= kind_bit(kind::EXIT);
    }
    k | kind_bit(kind::FORK)
        | kind_bit(kind::CGROUP_MKDIR)
        | kind_bit(kind::CGROUP_RMDIR)
        | kind_bit(kind::CGROUP_ATTACH)
}

/// How a session traces. The probe's kinds are the kernel's ([`kernel_kinds`]).
#[derive(Debug, Clone)]
pub struct Config {
    pub probe: Options,
    pub resolver: resolve::Config,
    /// The Docker API socket, for names, images and labels; `None`: Docker is not asked
    /// (they are still read from Docker's store on disk).
    pub docker_socket: Option<PathBuf>,
    /// How often containers' CPU counters are sampled for throttling.
    pub throttle_interval: Duration,
    pub throttle: DetectorConfig,
    /// How often the journal samples each container's memory.
    pub memory_interval: Duration,
    /// The session stops by itself after this long.
    pub duration: Option<Duration>,
    /// Write a capture of the session here, for `ctrace replay`.
    pub capture: Option<PathBuf>,
    /// Programs (by comm) whose SIGKILL is a userspace OOM kill.
    pub oom_killers: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            probe: Options::default(),
            resolver: resolve::Config::default(),
            docker_socket: Some(PathBuf::from(docker::DEFAULT_SOCKET)),
            throttle_interval: Duration::from_secs(1),
            throttle: DetectorConfig::default(),
            memory_interval: Duration::from_secs(1),
            duration: None,
            capture: None,
            oom_killers: crate::explain::OOM_KILLERS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
        }
    }
}

/// What a running session is told from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Detach, drain what is left, report the last losses and return the summary.
    Stop,
    /// Reopen the output (log rotation): [`Sink::reopen`].
    Reopen,
}

/// Whether the session goes on after the sink wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// The output is gone (a closed pipe, a failed file): stop as on [`Control::Stop`].
    Stop,
}

/// Where a session's records go. `ctx` is the session's: its host and its clock turn boot
/// times into wall-clock times the same way for the sink and for the journal.
pub trait Sink {
    /// A decoded event and its attribution.
    fn event(&mut self, ev: &Event, attrs: &Attrs, ctx: &Context);
    /// An incident (kill, OOM kill, container start or stop).
    fn incident(&mut self, i: &Incident, ctx: &Context);
    /// A change in a container's CPU throttling, at boot time `boot_ns`.
    fn throttle(&mut self, c: &Arc<Container>, ev: &ThrottleEvent, boot_ns: u64, ctx: &Context);
    /// What the resolver learnt about a container (names, image, labels).
    fn update(&mut self, u: &Update, ctx: &Context);
    /// A gap: records lost since the last report, at boot time `boot_ns`.
    fn loss(&mut self, l: &Loss, boot_ns: u64, ctx: &Context);
    /// Something the user should know that is not a record (a runtime unreachable, ...).
    fn warning(&mut self, w: &str);
    /// Once a second: the session's health.
    fn status(&mut self, _s: &Status) {}
    /// Each throttle interval: the CPU figures of every live container (`ctrace top`).
    fn cpu(&mut self, _tick: &CpuTick<'_>) {}
    /// Whether [`Sink::cpu`] must have every container's full figures every tick (`top`'s
    /// table). Otherwise containers without a quota are read in full only every few ticks.
    fn cpu_figures_every_tick(&self) -> bool {
        false
    }
    /// After each turn of the loop. [`Next::Stop`] ends the session.
    fn flush(&mut self) -> Next {
        Next::Continue
    }
    /// [`Control::Reopen`].
    fn reopen(&mut self) {}
}

/// Two sinks as one: each record goes to `.0`, then to `.1`; the session stops when either
/// says so.
pub struct Both<'a, 'b>(pub &'a mut dyn Sink, pub &'b mut dyn Sink);

impl Sink for Both<'_, '_> {
    fn event(&mut self, ev: &Event, attrs: &Attrs, ctx: &Context) {
        self.0.event(ev, attrs, ctx);
        self.1.event(ev, attrs, ctx);
    }
    fn incident(&mut self, i: &Incident, ctx: &Context) {
        self.0.incident(i, ctx);
        self.1.incident(i, ctx);
    }
    fn throttle(&mut self, c: &Arc<Container>, ev: &ThrottleEvent, boot_ns: u64, ctx: &Context) {
        self.0.throttle(c, ev, boot_ns, ctx);
        self.1.throttle(c, ev, boot_ns, ctx);
    }
    fn update(&mut self, u: &Update, ctx: &Context) {
        self.0.update(u, ctx);
        self.1.update(u, ctx);
    }
    fn loss(&mut self, l: &Loss, boot_ns: u64, ctx: &Context) {
        self.0.loss(l, boot_ns, ctx);
        self.1.loss(l, boot_ns, ctx);
    }
    fn warning(&mut self, w: &str) {
        self.0.warning(w);
        self.1.warning(w);
    }
    fn status(&mut self, s: &Status) {
        self.0.status(s);
        self.1.status(s);
    }
    fn cpu(&mut self, tick: &CpuTick<'_>) {
        self.0.cpu(tick);
        self.1.cpu(tick);
    }
    fn cpu_figures_every_tick(&self) -> bool {
        self.0.cpu_figures_every_tick() || self.1.cpu_figures_every_tick()
    }
    fn flush(&mut self) -> Next {
        let (a, b) = (self.0.flush(), self.1.flush());
        if a == Next::Stop || b == Next::Stop {
            Next::Stop
        } else {
            Next::Continue
        }
    }
    fn reopen(&mut self) {
        self.0.reopen();
        self.1.reopen();
    }
}

/// The session's health, as of one second.
#[derive(Debug, Clone)]
pub struct Status {
    /// Records read from the ring buffer in the last interval, per second.
    pub records_per_sec: f64,
    /// Records delivered since start.
    pub delivered: u64,
    /// Records lost since start (kernel and userspace), plus program runs the kernel skipped
    /// ([`Status::recursion_misses`]), or why the counters cannot be read.
    pub lost: Result<u64, String>,
    /// Program runs the kernel's recursion guard skipped since start, all programs together:
    /// what they would have recorded is lost, and counted in no ring buffer counter.
    pub recursion_misses: u64,
    /// The kernel's counters per kind, when they could be read.
    pub counters: Option<[KindCounters; kind::COUNT]>,
    /// Records delivered, per kind.
    pub delivered_by_kind: [u64; kind::COUNT],
    /// Records userspace could not decode, per kind.
    pub decode_errors_by_kind: [u64; kind::COUNT],
    pub live_containers: usize,
    pub gone_containers: usize,
    /// Live containers skipped at the last sampling tick: nothing of theirs ran (see
    /// [`crate::activity`]).
    pub quiet_containers: usize,
    /// The journal writer, when journaling.
    pub journal: Option<WriterStatus>,
    /// Requests to runtimes (Docker's API, `ctr`) that failed since start.
    pub enrichment_failures: u64,
    /// The fullest the ring buffer was found at a read in the last interval, as a fraction
    /// of its size (0 to 1), when its size is known.
    pub ring_fill: Option<f64>,
}

/// One sampling of containers' CPU counters.
#[derive(Debug)]
pub struct CpuTick<'a> {
    /// The live containers sampled, with their cgroup ids.
    pub live: &'a [(Arc<Container>, Option<u64>)],
    /// The figures of those whose counters could be read (the first tick is the baseline:
    /// no figures over an interval yet).
    pub reports: &'a [cpuwatch::Report],
    /// Records lost since start, when the counters can be read.
    pub lost: Option<u64>,
    /// Which containers ran since the last tick: the figures of the others stand.
    pub activity: &'a Activity,
}

/// What a session did, at its end.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The kernel's counters per kind, or why they could not be read.
    pub counters: Result<[KindCounters; kind::COUNT], String>,
    /// Records decoded and handled, per kind.
    pub delivered: [u64; kind::COUNT],
    /// Records userspace could not decode, per kind their header named.
    pub decode_errors_by_kind: [u64; kind::COUNT],
    /// All records userspace could not decode (those of no known kind included).
    pub decode_errors: u64,
    /// The programs the session attached, with their kernel ids, detached at the end.
    pub programs: Vec<AttachedProgram>,
    /// The closing `stats` record (also in the journal), when the counters could be read.
    pub stats: Option<Value>,
    /// The journal's file and its writer's final status, when journaling.
    pub journal: Option<(PathBuf, WriterStatus)>,
    /// What the session held at its end (also in `stats`, as `state`).
    pub state: StateCounts,
    /// The capture, when one was written: its file, frames written, and the error that
    /// stopped it, if one did.
    pub capture: Option<(PathBuf, u64, Option<String>)>,
}

/// Entries the session's state holds: each is bounded, and the closing `stats` record shows
/// them (`state`) so that a long run can be checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// cgroup ids the resolver maps.
    pub resolver_slots: usize,
    /// Host cgroup entries dropped at the resolver's bound.
    pub resolver_slots_evicted: u64,
    /// Names from runtimes, per container id.
    pub names: usize,
    /// Live containers known.
    pub containers: usize,
    /// Gone containers kept for late events.
    pub tombstones: usize,
    /// Tasks in ctrace's process table (live and recently exited).
    pub processes: usize,
    /// Warnings forgotten at the bound of the set that says each once.
    pub warnings_forgotten: u64,
}

impl StateCounts {
    /// The `state` object of the `stats` record.
    pub fn json(&self) -> Value {
        serde_json::json!({
            "resolver_slots": self.resolver_slots,
            "resolver_slots_evicted": self.resolver_slots_evicted,
            "names": self.names,
            "containers": self.containers,
            "tombstones": self.tombstones,
            "processes": self.processes,
            "warnings_forgotten": self.warnings_forgotten,
        })
    }
}

impl Summary {
    /// Records the kernel produced.
    pub fn produced(&self) -> Option<u64> {
        self.counters
            .as_ref()
            .ok()
            .map(|c| c.iter().map(|c| c.attempts).sum())
    }

    /// Records lost, in the kernel (ring buffer full) and in userspace (undecodable).
    pub fn lost(&self) -> Option<u64> {
        self.counters
            .as_ref()
            .ok()
            .map(|c| LossTracker::total(c, self.decode_errors))
    }

    /// Records delivered.
    pub fn delivered(&self) -> u64 {
        self.delivered.iter().sum()
    }
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("polling the {what}: {source}")]
    Poll {
        what: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Capture(#[from] capture::CaptureError),
}

/// Records handled per wakeup at most, so that controls (Ctrl-C) and timers are served even
/// when the buffer stays full; the rest is read on the next turn of the loop.
const DRAIN_BATCH: u64 = 16_384;

/// Time one wakeup may spend on records, for the same reason: a slow build or a loaded
/// machine handles far fewer than [`DRAIN_BATCH`] records in it.
const DRAIN_TIME: Duration = Duration::from_millis(100);

/// Empty polls in a row (half a second) after which the session stops polling the ring and
/// has the programs wake it with each record: an idle host costs no timer 20 times a second.
const NAP_AFTER_EMPTY_POLLS: u32 = 10;

/// Whether the session polls the ring or waits for records to wake it.
#[derive(Debug, Default)]
struct Nap {
    empty_polls: u32,
    asleep: bool,
}

impl Nap {
    /// After a poll that read `n` records: whether it is time to stop polling.
    fn polled(&mut self, n: u64) -> bool {
        if n > 0 {
            self.empty_polls = 0;
            return false;
        }
        self.empty_polls += 1;
        if self.empty_polls < NAP_AFTER_EMPTY_POLLS {
            return false;
        }
        self.empty_polls = 0;
        true
    }
}

/// Least time between two warnings about program runs the kernel skipped.
const MISSES_WARN_EVERY: Duration = Duration::from_secs(60);

/// How often the session gives free heap pages back (see [`crate::host::heap`]).
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// A live session. Start it inside a tokio runtime.
pub struct Session {
    probe: Probe,
    ring: AsyncFd<RingBuf<MapData>>,
    ebpf_log: Option<AsyncFd<aya_log::EbpfLogger<probe::EbpfLog>>>,
    flow: Flow,
    feed_rx: mpsc::Receiver<Feed>,
    cpu: CpuWatch,
    config: Config,
    warnings: Vec<String>,
    /// The ring buffer's size in bytes, when the kernel told it.
    ring_size: Option<u64>,
}

/// Everything between the ring buffer and the sink: decoding, attribution, correlation, and
/// the journal.
struct Flow {
    pipeline: Pipeline,
    resolver: Resolver,
    correlator: Correlator<capture::Memory>,
    /// Starts and stops, for restart loops.
    restarts: RestartWatch,
    /// The kernel's OOM reports, for who held the memory.
    kmsg: capture::KernelReports,
    feed: mpsc::Sender<Feed>,
    recorder: Option<Recorder>,
    /// Which containers ran since the last throttle tick: the quiet ones are not sampled.
    activity: Activity,
    ctx: Context,
    /// Requests to runtimes (Docker's API, `ctr`) that failed.
    enrichment_failures: u64,
    /// The most bytes found waiting in the ring buffer at one read since the last status.
    ring_peak: u64,
    /// Losses reported so far.
    losses: LossTracker,
    /// The capture being written, or read by a replay ([`Flow::replay`]).
    tape: Option<Tape>,
    /// Replaying: attributions and host answers come from the tape.
    replay: bool,
    /// Cgroups whose allowed capability checks the kernel may drop (live only).
    host_cgroups: HostCgroups,
}

impl Session {
    /// Loads and attaches the programs, starts container discovery (and Docker enrichment
    /// unless `config.docker_socket` is `None`) and opens the ring buffer. `recorder`: the
    /// journal, opened by the caller (which decides what an unusable journal means).
    pub async fn start(config: Config, recorder: Option<Recorder>) -> Result<Self, SessionError> {
        let mut probe = Probe::load(&config.probe)?;
        let mut warnings = probe.warnings.clone();
        let (ring, ring_size) = probe.take_ring()?;
        let ebpf_log = match probe.take_logger() {
            // SAFETY: as for the ring buffer below: the logger owns its map fd.
            Some(l) => Some(
                unsafe { AsyncFd::register_with_interest(l, tokio::io::Interest::READABLE) }
                    .map_err(|e| SessionError::Poll {
                        what: "eBPF log",
                        source: e.into_parts().1,
                    })?,
            ),
            None => None,
        };
        // SAFETY: the RingBuf owns its map fd for as long as the AsyncFd owns the RingBuf, and
        // the fd is not closed or replaced behind the registration's back.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| SessionError::Poll {
                what: "ring buffer",
                source: e.into_parts().1,
            })?;
        let mut resolver = Resolver::start(config.resolver.clone());
        warnings.append(&mut resolver.warnings);
        let (feed_tx, feed_rx) = mpsc::channel(1024);
        if let Some(socket) = &config.docker_socket {
            tokio::spawn(enrich::docker(
                socket.clone(),
                docker::DEFAULT_TIMEOUT,
                feed_tx.clone(),
            ));
        }
        let ctx = Context::new();
        let mut pipeline = Pipeline::live();
        let victims = probe.take_oom_victims();
        let tape = match &config.capture {
            Some(path) => {
                let header = capture::Header::new(
                    &ctx.host,
                    ctx.clock.unix_ns(0),
                    victims.is_some(),
                    probe.active_kinds,
                );
                let tape = Tape::create(path, &header)?;
                pipeline.procs.set_lookup(Some(Box::new(capture::Lookup {
                    live: Some(crate::proctable::ProcSource::host()),
                    tape: tape.clone(),
                })));
                Some(tape)
            }
            None => None,
        };
        pipeline.victims = victims.map(|v| {
            crate::pipeline::Victims(match &tape {
                Some(t) => Box::new(capture::KernelVictims {
                    live: Some(Box::new(v)),
                    tape: t.clone(),
                }),
                None => Box::new(v),
            })
        });
        if probe.active_kinds & kind_bit(kind::SIGNAL) != 0 && !probe.signal_targets_in_kernel {
            // Targets older than ctrace must be known before a SIGKILL removes them from /proc.
            let now = BootClock::boot_now_ns();
            let tasks = pipeline
                .procs
                .seed(&crate::proctable::ProcSource::host(), now);
            log::info!("process table: {} tasks read from /proc", tasks.len());
            if let Some(t) = &tape {
                t.write(&Frame::Seed {
                    boot_ns: now,
                    tasks,
                });
            }
        }
        let mut correlator = Correlator::new(capture::Memory {
            live: Some(CgroupMemory::new(Mounts::current())),
            tape: tape.clone(),
        });
        correlator.set_oom_killers(config.oom_killers.clone());
        let flow = Flow {
            pipeline,
            resolver,
            correlator,
            restarts: RestartWatch::default(),
            kmsg: capture::KernelReports {
                live: Some(Kmsg::open().map_err(|e| format!("cannot read {}: {e}", kmsg::PATH))),
                tape: tape.clone(),
                on_tape: false,
            },
            feed: feed_tx,
            recorder,
            activity: Activity::default(),
            ctx,
            enrichment_failures: 0,
            ring_peak: 0,
            losses: LossTracker::default(),
            tape,
            replay: false,
            host_cgroups: HostCgroups::new(probe.cap_host_filter),
        };
        Ok(Self {
            probe,
            ring,
            ebpf_log,
            flow,
            feed_rx,
            cpu: CpuWatch::new(config.throttle),
            config,
            warnings,
            ring_size,
        })
    }

    /// What the user should know from the start: tracepoints this kernel lacks, runtimes not
    /// found, ... (taken once).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Feature → the hook serving it on this kernel (`capability` → `tracepoint`, `fexit` or
    /// `kprobe`).
    pub fn mechanisms(&self) -> std::collections::BTreeMap<&'static str, &'static str> {
        probe::mechanisms(self.probe.programs())
    }

    /// The kernel kinds actually traced (a [`kind_bit`] mask).
    pub fn active_kinds(&self) -> u32 {
        self.probe.active_kinds
    }

    /// The session's host and clock, as handed to the sink.
    pub fn context(&self) -> &Context {
        &self.flow.ctx
    }

    /// The journal's file, when journaling.
    pub fn journal_path(&self) -> Option<&std::path::Path> {
        self.flow.recorder.as_ref().map(Recorder::path)
    }

    /// Entries the session's state holds now.
    pub fn state(&self) -> StateCounts {
        self.flow.state()
    }

    /// Containers known now that `selector` names (see [`crate::select`]).
    pub fn find(&self, selector: &crate::select::Selector) -> Vec<Arc<Container>> {
        self.flow.resolver.find(selector)
    }

    /// Runs until a [`Control::Stop`], the configured duration, or a sink that says
    /// [`Next::Stop`]. Then detaches the programs, drains what is left, reports the last
    /// losses and flushes pending incidents, so that the books balance: for every kind,
    /// `produced = delivered + lost`.
    pub async fn run(
        mut self,
        sink: &mut dyn Sink,
        mut controls: mpsc::Receiver<Control>,
    ) -> Result<Summary, std::io::Error> {
        self.flow.after(sink);
        self.cpu.detection_only(!sink.cpu_figures_every_tick());
        let mut poll = tokio::time::interval(probe::POLL_INTERVAL);
        // Polls stop while nothing comes; then each record wakes the loop.
        let mut nap = Nap::default();
        let mut second = tokio::time::interval(Duration::from_secs(1));
        let deadline = self
            .config
            .duration
            .map(|d| tokio::time::Instant::now() + d);
        let window_ns = u64::try_from(self.config.probe.cap_window.as_nanos()).unwrap_or(u64::MAX);
        let mut throttle_tick = tokio::time::interval(self.config.throttle_interval);
        // Containers often die of OOM within their first second: sample the young ones densely.
        let mut young_tick = tokio::time::interval(recorder::YOUNG_TICK);
        // The branch is off while no container is young: no catching up when it comes back.
        young_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut memory_tick = tokio::time::interval(self.config.memory_interval);
        let mut rate_start = Instant::now();
        let mut rate_count = 0u64;
        let journaling = self.flow.recorder.is_some();
        // Recursion misses said in a warning so far, and when (at most one a minute).
        let mut misses_warned = (0u64, None::<Instant>);
        // Start-up's garbage (the kernel's BTF, the /proc seed) goes back to the kernel now,
        // and whatever bursts leave behind once a minute.
        crate::host::heap::trim();
        let mut trim_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + TRIM_EVERY, TRIM_EVERY);
        loop {
            let young = self.flow.recorder.as_ref().is_some_and(Recorder::has_young);
            tokio::select! {
                guard = self.ring.readable_mut() => {
                    let mut guard = guard?;
                    let (n, left) = drain(guard.get_inner_mut(), &mut self.flow, sink);
                    rate_count += n;
                    if nap.asleep {
                        // Records are coming again: back to polling, and to batched wakeups.
                        self.probe.set_reader_asleep(false);
                        nap = Nap::default();
                        poll.reset();
                    }
                    // With records left, stay ready: the next turn reads on after serving the
                    // rest.
                    if !left {
                        guard.clear_ready();
                    }
                }
                _ = poll.tick(), if !nap.asleep => {
                    let n = drain(self.ring.get_mut(), &mut self.flow, sink).0;
                    rate_count += n;
                    if nap.polled(n) && self.probe.set_reader_asleep(true) {
                        // What was submitted before the programs saw the flag woke no one.
                        let n = drain(self.ring.get_mut(), &mut self.flow, sink).0;
                        rate_count += n;
                        if n > 0 {
                            self.probe.set_reader_asleep(false);
                        } else {
                            nap.asleep = true;
                        }
                    }
                }
                _ = second.tick() => {
                    if nap.asleep {
                        // A record submitted while the flag was being set, and not yet
                        // committed at the last read, woke no one: it waits a second at most.
                        rate_count += drain(self.ring.get_mut(), &mut self.flow, sink).0;
                    }
                    self.report(sink, window_ns);
                    let secs = rate_start.elapsed().as_secs_f64().max(0.001);
                    let misses = self.probe.refresh_programs();
                    let due = misses_warned.1.is_none_or(|t| t.elapsed() >= MISSES_WARN_EVERY);
                    if misses > misses_warned.0 && due {
                        let new = misses - misses_warned.0;
                        let w = recursion_warning(self.probe.programs(), new);
                        self.flow.warn(&w, sink);
                        misses_warned = (misses, Some(Instant::now()));
                    }
                    let status = self.status(rate_count as f64 / secs, misses);
                    self.flow.ring_peak = 0;
                    sink.status(&status);
                    rate_start = Instant::now();
                    rate_count = 0;
                }
                Some(f) = self.feed_rx.recv() => self.flow.feed(f, sink),
                _ = memory_tick.tick(), if journaling => self.flow.sample_memory(),
                _ = young_tick.tick(), if young => self.flow.sample_young(),
                _ = trim_tick.tick() => {
                    crate::host::heap::trim();
                }
                guard = readable(self.ebpf_log.as_mut()) => {
                    let mut guard = guard?;
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
                _ = throttle_tick.tick() => self.throttle_tick(sink),
                c = controls.recv() => match c {
                    Some(Control::Reopen) => sink.reopen(),
                    // No one can tell the session to stop any more: it stops now.
                    Some(Control::Stop) | None => break,
                },
                () = sleep_until(deadline) => break,
            }
            // Before the records that prompted them are out: who reads them can count on it.
            if self.flow.host_cgroups.has_pending() {
                for (id, host) in self.flow.host_cgroups.take() {
                    self.probe.mark_host_cgroup(id, host);
                }
            }
            if sink.flush() == Next::Stop {
                break;
            }
        }
        Ok(self.finish(sink))
    }

    fn status(&self, records_per_sec: f64, recursion_misses: u64) -> Status {
        let held = self.flow.resolver.counts();
        let counters = self.probe.counters();
        let pipeline = &self.flow.pipeline;
        Status {
            records_per_sec,
            delivered: pipeline.delivered.iter().sum(),
            lost: counters
                .as_ref()
                .map(|c| LossTracker::total(c, pipeline.decode_errors) + recursion_misses)
                .map_err(ToString::to_string),
            recursion_misses,
            counters: counters.ok(),
            delivered_by_kind: pipeline.delivered,
            decode_errors_by_kind: pipeline.decode_errors_by_kind,
            live_containers: held.live,
            gone_containers: held.tombstones,
            quiet_containers: self.flow.activity.quiet().len(),
            journal: self.flow.recorder.as_ref().map(Recorder::status),
            enrichment_failures: self.flow.enrichment_failures,
            ring_fill: self
                .ring_size
                .filter(|&size| size > 0)
                .map(|size| (self.flow.ring_peak as f64 / size as f64).min(1.0)),
        }
    }

    fn throttle_tick(&mut self, sink: &mut dyn Sink) {
        let live = self.flow.resolver.live();
        let runq = if self.probe.runq_active {
            self.probe.runq().ok().map(|h| self.cpu.runq_deltas(h))
        } else {
            None
        };
        // After the counts: a thread switched in between the two readings is in the next
        // counts, and one running on across this tick is found here.
        let running = runq.as_ref().and_then(|_| self.probe.runq_current().ok());
        let resolver = &self.flow.resolver;
        let cpu = &self.cpu;
        self.flow.activity.tick(
            live.iter().filter_map(|(_, id)| *id),
            runq.as_ref(),
            running.as_deref(),
            |id| resolver.container_cgroup_of(id),
            |id| {
                let (c, _) = live.iter().find(|(_, i)| *i == Some(id))?;
                cpu.usage_of(c)
            },
        );
        // Keep each container's memory figures fresh for OOM incidents.
        for (c, id) in &live {
            let activity = &self.flow.activity;
            if activity.stirred(*id) {
                self.flow
                    .correlator
                    .memory()
                    .refresh(c, activity.settling(*id));
            }
        }
        let reports = self.cpu.tick(&live, runq.as_ref(), &self.flow.activity);
        let now = BootClock::boot_now_ns();
        for r in &reports {
            if let Some(ev) = &r.event {
                self.flow.throttle(&r.container, ev, now, sink);
            }
        }
        let lost = self
            .probe
            .counters()
            .ok()
            .map(|c| LossTracker::total(&c, self.flow.pipeline.decode_errors));
        sink.cpu(&CpuTick {
            live: &live,
            reports: &reports,
            lost,
            activity: &self.flow.activity,
        });
    }

    /// Capability tails, incident deadlines, journal metadata and losses: what is due each
    /// second (and once more at the end, with `window_ns` 0).
    fn report(&mut self, sink: &mut dyn Sink, window_ns: u64) {
        let now = BootClock::boot_now_ns();
        let caps = self
            .probe
            .cap_states()
            .map_err(|e| log::warn!("reading capability state: {e}"))
            .ok();
        let counters = self
            .probe
            .counters()
            .map_err(|e| log::warn!("reading loss counters: {e}"))
            .ok();
        // The fold's tails are due a window after their run's last record; all at the end.
        let sig_window_ns = if window_ns == 0 {
            0
        } else {
            u64::try_from(self.config.probe.signal_window.as_nanos()).unwrap_or(u64::MAX)
        };
        let sigs = self
            .probe
            .signal_runs()
            .map_err(|e| log::warn!("reading the signal fold: {e}"))
            .ok()
            .map(|slots| (slots, sig_window_ns));
        if let Some(t) = &self.flow.tape {
            t.write(&Frame::Report {
                boot_ns: now,
                window_ns,
                caps: caps.as_ref().map(|states| {
                    states
                        .iter()
                        .map(|(k, cpu, st)| CapFrame::new(k, *cpu, st))
                        .collect()
                }),
                counters: counters.map(|c| {
                    c.iter()
                        .map(|k| [k.attempts, k.lost_ringbuf_full, k.read_errors, k.filtered])
                        .collect()
                }),
                sigs: sigs.as_ref().map(|(slots, window_ns)| SigFrames {
                    window_ns: *window_ns,
                    slots: slots
                        .iter()
                        .map(|(cpu, st)| SigFrame::new(*cpu, st))
                        .collect(),
                }),
            });
        }
        self.flow.report(now, window_ns, caps, counters, sigs, sink);
        // Checks that could not be counted in a slot are known at once; those of evicted
        // slots only at the end (`finish`).
        match self.probe.cap_counters() {
            Ok(Some(c)) => self.flow.cap_losses(now, c.insert_failed, None, sink),
            Ok(None) => {}
            Err(e) => log::warn!("reading capability counters: {e}"),
        }
    }

    /// Stop production first, then drain what is left, then report the final losses, so the
    /// books balance: attempts = delivered + lost.
    fn finish(mut self, sink: &mut dyn Sink) -> Summary {
        self.probe.detach();
        while drain(self.ring.get_mut(), &mut self.flow, sink).1 {}
        self.report(sink, 0);
        // Detached, drained, and every slot's tail read: what the kernel counted and no
        // record reported is now exact.
        let cap_checks = self
            .probe
            .cap_counters()
            .ok()
            .flatten()
            .filter(|c| c.checks > 0 || self.flow.pipeline.cap_reported > 0)
            .map(|c| {
                let p = &self.flow.pipeline;
                crate::record::CapabilityCheckStats::new(
                    &c,
                    p.cap_reported,
                    p.cap_forgotten_records,
                )
            });
        let now = BootClock::boot_now_ns();
        let cap_losses = cap_checks.as_ref().map(|c| [c.insert_failed, c.unreported]);
        // Written before what it prompts: the answers the pending incidents need come next.
        if let Some(t) = &self.flow.tape {
            t.write(&Frame::Close {
                boot_ns: now,
                cap_losses,
            });
        }
        self.flow.close(now, cap_losses, sink);
        let _ = sink.flush();
        // Detached but still loaded: the programs' final recursion misses.
        self.probe.refresh_programs();
        let state = self.flow.state();
        let pipeline = &self.flow.pipeline;
        let counters = self.probe.counters().map_err(|e| e.to_string());
        let stats = counters.as_ref().ok().map(|c| {
            let mut v = json::stats(
                c,
                &pipeline.delivered,
                &pipeline.decode_errors_by_kind,
                self.probe.programs(),
                &self.flow.ctx,
            );
            v["state"] = state.json();
            if let Some(c) = &cap_checks {
                v["capability_checks"] = serde_json::to_value(c).unwrap_or_default();
            }
            if pipeline.sig_repeats > 0 || pipeline.sig_unattributed > 0 {
                let folds = crate::record::SignalFoldStats {
                    repeats_reported: pipeline.sig_repeats,
                    unattributed: pipeline.sig_unattributed,
                };
                v["signal_folds"] = serde_json::to_value(folds).unwrap_or_default();
            }
            v
        });
        let capture = self.flow.tape.take().map(|t| {
            t.write(&Frame::End {
                stats: stats.clone(),
            });
            let st = t.finish();
            let path = self.config.capture.clone().unwrap_or_default();
            (path, st.frames, st.error.map(|e| e.to_string()))
        });
        let journal = self.flow.recorder.take().map(|r| {
            if let Some(stats) = &stats {
                r.record(self.flow.ctx.clock.unix_ns(BootClock::boot_now_ns()), stats);
            }
            let path = r.path().to_owned();
            (path, r.close())
        });
        Summary {
            counters,
            delivered: pipeline.delivered,
            decode_errors_by_kind: pipeline.decode_errors_by_kind,
            decode_errors: pipeline.decode_errors,
            programs: self.probe.programs().to_vec(),
            stats,
            journal,
            state,
            capture,
        }
    }
}

impl Flow {
    fn state(&self) -> StateCounts {
        let r = self.resolver.counts();
        StateCounts {
            resolver_slots: r.slots,
            resolver_slots_evicted: r.slots_evicted,
            names: r.names,
            containers: r.live,
            tombstones: r.tombstones,
            processes: self.pipeline.procs.len(),
            warnings_forgotten: r.warnings_forgotten,
        }
    }

    fn handle(&mut self, ev: &Event, sink: &mut dyn Sink) {
        let attrs = match &self.tape {
            Some(t) if self.replay => t
                .take("the attribution of a record", |f| match f {
                    Frame::Attrs { p, o } => Some((*p, *o)),
                    _ => None,
                })
                .map_or(Attrs::HOST, |(p, o)| Attrs {
                    process: t.attribution(p),
                    other: o.map(|o| t.attribution(o)),
                }),
            tape => {
                let a = self.resolver.attribute(ev);
                if let Some(t) = tape {
                    t.attrs(&a);
                }
                self.host_cgroups.observe(ev, &a);
                a
            }
        };
        // The journal keeps what happened to every container, whatever the sink shows.
        if attrs.touches_container() || matches!(ev.body, Body::OomVictim(_)) {
            self.journal(json::type_name(ev), ev.boot_ns, || {
                json::event(ev, &attrs, &self.ctx)
            });
        }
        sink.event(ev, &attrs, &self.ctx);
        for i in self.correlator.observe(ev, &attrs) {
            self.incident(&i, sink);
        }
        self.after(sink);
    }

    /// Hand a record to the journal when it stores this type; the value is built only then.
    fn journal(&self, ty: &str, boot_ns: u64, v: impl FnOnce() -> Value) {
        if let Some(r) = &self.recorder {
            if r.stores(ty) {
                r.record(self.ctx.clock.unix_ns(boot_ns), &v());
            }
        }
    }

    fn incident(&mut self, i: &Incident, sink: &mut dyn Sink) {
        let with_tasks;
        let i = match i {
            Incident::Oom(o) if o.tasks.is_none() && o.scope != OomScope::Userspace => {
                match self.oom_tasks(o) {
                    Some(tasks) => {
                        let mut o = o.clone();
                        o.tasks = Some(tasks);
                        with_tasks = Incident::Oom(o);
                        &with_tasks
                    }
                    None => i,
                }
            }
            _ => i,
        };
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
                Incident::Kill(_) | Incident::RestartLoop(_) => {}
            }
        }
        sink.incident(i, &self.ctx);
        if let Some(l) = self.restarts.observe(i) {
            self.incident(&Incident::RestartLoop(Box::new(l)), sink);
        }
    }

    /// The tasks of the OOM domain of `o` from the kernel's report; only the victim, said so,
    /// when the report cannot be read; `None` when not asked (a capture without them).
    fn oom_tasks(&mut self, o: &OomIncident) -> Option<OomTasks> {
        let page = procfs::page_size();
        let victim_only = |note: String| OomTasks {
            source: "victim_only",
            note: Some(note),
            listed: 1,
            top: vec![TaskRss {
                pid: o.victim.pid,
                comm: o.victim.comm.clone(),
                rss_bytes: (o.details.anon_rss_kb + o.details.file_rss_kb + o.details.shmem_rss_kb)
                    * 1024,
            }],
        };
        Some(match self.kmsg.report_for(o.victim.pid)? {
            Ok(Some(r)) => OomTasks {
                source: "kmsg",
                note: None,
                listed: r.tasks_listed,
                top: r
                    .tasks
                    .iter()
                    .map(|t| TaskRss {
                        pid: t.tgid.unwrap_or(t.pid),
                        comm: t.name.clone(),
                        rss_bytes: t.rss_pages.saturating_mul(page),
                    })
                    .collect(),
            },
            Ok(None) => victim_only("the kernel's OOM report was not found in /dev/kmsg".into()),
            Err(e) => victim_only(e),
        })
    }

    fn throttle(&mut self, c: &Arc<Container>, ev: &ThrottleEvent, now: u64, sink: &mut dyn Sink) {
        if let Some(t) = self.tape.as_ref().filter(|_| !self.replay) {
            t.write(&Frame::Throttle {
                boot_ns: now,
                c: t.container(c),
                ev: Box::new(*ev),
            });
        }
        self.journal("cpu_throttle", now, || {
            throttle_record(c, ev, now, &self.ctx)
        });
        sink.throttle(c, ev, now, &self.ctx);
    }

    fn update(&mut self, u: &Update, sink: &mut dyn Sink) {
        let now = u.boot_ns;
        if let Some(id) = u.cgroup_id {
            self.host_cgroups.unmark(id);
        }
        if let Some(t) = self.tape.as_ref().filter(|_| !self.replay) {
            t.write(&Frame::Update {
                boot_ns: now,
                cgroup_id: u.cgroup_id,
                c: t.container(&u.container),
                reason: u.reason.to_owned(),
            });
        }
        self.journal("container_update", now, || json::update(u, &self.ctx));
        if let Some(r) = &mut self.recorder {
            r.container(&u.container, self.ctx.clock.unix_ns(now), None);
        }
        sink.update(u, &self.ctx);
    }

    /// Report what the resolver learnt, and start enrichment of new containers.
    fn after(&mut self, sink: &mut dyn Sink) {
        if self.replay {
            self.replay_updates(sink);
        }
        for u in self.resolver.take_updates() {
            self.update(&u, sink);
        }
        for w in std::mem::take(&mut self.resolver.warnings) {
            self.warn(&w, sink);
        }
        for c in self.resolver.take_new() {
            // Its memory limit, read while the cgroup is there: an OOM kill may remove it
            // before the record is read.
            self.correlator.memory().refresh(&c, false);
            if let Some(r) = &mut self.recorder {
                r.saw_new_container();
            }
            if let (Runtime::Containerd, Some(ns), None) = (c.runtime, &c.namespace, &c.image) {
                let (ns, id, tx) = (ns.clone(), c.id.clone(), self.feed.clone());
                tokio::spawn(async move {
                    let feed =
                        match enrich::containerd_image(&ns, &id, Duration::from_secs(2)).await {
                            Some(image) => Feed::Names {
                                id,
                                names: Names {
                                    image: Some(image),
                                    ..Names::default()
                                },
                            },
                            None => Feed::Failure,
                        };
                    let _ = tx.send(feed).await;
                });
            }
        }
    }

    fn feed(&mut self, f: Feed, sink: &mut dyn Sink) {
        match f {
            Feed::Names { id, names } => self.resolver.set_names(&id, names),
            Feed::Warning(w) => self.warn(&w, sink),
            Feed::Failure => self.enrichment_failures += 1,
        }
        self.after(sink);
    }

    /// A warning for the user (and the capture).
    fn warn(&mut self, w: &str, sink: &mut dyn Sink) {
        if let Some(t) = self.tape.as_ref().filter(|_| !self.replay) {
            t.write(&Frame::Warning { text: w.to_owned() });
        }
        sink.warning(w);
    }

    /// What is due each second, on what was read from the kernel at boot time `now`: the
    /// capability tails, incident deadlines, journal metadata and losses.
    fn report(
        &mut self,
        now: u64,
        window_ns: u64,
        caps: Option<Vec<(tracer_common::CapKey, u32, tracer_common::CapState)>>,
        counters: Option<[KindCounters; kind::COUNT]>,
        sigs: Option<(Vec<(u32, tracer_common::SigRun)>, u64)>,
        sink: &mut dyn Sink,
    ) {
        if let Some(states) = caps {
            for ev in self.pipeline.flush_caps(states, now, window_ns) {
                self.handle(&ev, sink);
            }
        }
        // Tails of ended runs even without a slot reading (captures of older versions).
        let (slots, sig_window_ns) = sigs.unwrap_or((Vec::new(), u64::MAX));
        for ev in self.pipeline.flush_signals(slots, now, sig_window_ns) {
            self.handle(&ev, sink);
        }
        for i in self.correlator.tick(now) {
            self.incident(&i, sink);
        }
        let mut health = None;
        if let Some(r) = &mut self.recorder {
            let at = self.ctx.clock.unix_ns(now);
            for (c, _) in self.resolver.live() {
                r.container(&c, at, None);
            }
            health = r.health();
        }
        if let Some(w) = health {
            self.warn(&w, sink);
        }
        self.losses.decode_errors = self.pipeline.decode_errors_by_kind;
        if let Some(c) = counters {
            for l in self.losses.delta(&c) {
                self.journal("lost", now, || json::loss(&l, &self.ctx, now));
                sink.loss(&l, now, &self.ctx);
            }
        }
    }

    /// Capability checks lost since the last call, as `lost` records (see
    /// [`LossTracker::cap_delta`]).
    fn cap_losses(
        &mut self,
        now: u64,
        insert_failed: u64,
        unreported: Option<u64>,
        sink: &mut dyn Sink,
    ) {
        for l in self.losses.cap_delta(insert_failed, unreported) {
            self.journal("lost", now, || json::loss(&l, &self.ctx, now));
            sink.loss(&l, now, &self.ctx);
        }
    }

    /// The session is closing, at boot time `now`: the capability checks the kernel counted
    /// and no record reported (`[insert_failed, unreported]`), and every pending incident.
    fn close(&mut self, now: u64, cap_losses: Option<[u64; 2]>, sink: &mut dyn Sink) {
        if let Some([insert_failed, unreported]) = cap_losses {
            self.cap_losses(now, insert_failed, Some(unreported), sink);
        }
        for i in self.correlator.flush() {
            self.incident(&i, sink);
        }
    }

    fn sample_memory(&mut self) {
        let now = self.ctx.clock.unix_ns(BootClock::boot_now_ns());
        if let Some(r) = &mut self.recorder {
            for (c, id) in self.resolver.live() {
                if self.activity.stirred(id) {
                    r.sample(&c, now);
                }
            }
        }
    }

    fn sample_young(&mut self) {
        let now = self.ctx.clock.unix_ns(BootClock::boot_now_ns());
        if let Some(r) = self.recorder.as_mut() {
            let live = self.resolver.live();
            r.sample_young(live.iter().map(|(c, _)| c), now);
        }
    }
}

/// What a replay came to.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    /// Ring records read from the capture.
    pub records: u64,
    /// Records decoded and handled, per kind.
    pub delivered: [u64; kind::COUNT],
    /// Records that did not decode (counted, skipped, as live).
    pub decode_errors: u64,
    /// Answers the flow asked for that the capture did not have next: each is a difference
    /// from the live run (0 for a capture replayed by the ctrace that wrote it).
    pub out_of_step: u64,
    /// Whether the capture ended as its session did (not cut short).
    pub complete: bool,
    /// The live session's closing `stats` record.
    pub stats: Option<Value>,
}

/// Run a capture's records through the same flow as the live session that wrote it, with the
/// answers it got from the host, into `sink`: the same events, incidents, updates, losses and
/// warnings, at the same times. Needs no kernel, no root and no runtime.
pub fn replay(header: &capture::Header, tape: Tape, sink: &mut dyn Sink) -> ReplaySummary {
    let mut flow = Flow::replaying(header, &tape);
    let mut summary = ReplaySummary::default();
    while let Some(frame) = tape.next() {
        if !flow.replay_frame(frame, &tape, sink, &mut summary) {
            tape.stray();
        }
        if sink.flush() == Next::Stop {
            break;
        }
    }
    if !summary.complete {
        // Cut short (the live ctrace was killed): what was pending is told anyway.
        for i in flow.correlator.flush() {
            flow.incident(&i, sink);
        }
        let _ = sink.flush();
    }
    summary.delivered = flow.pipeline.delivered;
    summary.decode_errors = flow.pipeline.decode_errors;
    summary.out_of_step = tape.out_of_step();
    summary
}

impl Flow {
    /// A flow whose every question to the host is answered by the tape.
    fn replaying(header: &capture::Header, tape: &Tape) -> Flow {
        let mut pipeline = Pipeline::new();
        pipeline.procs.set_lookup(Some(Box::new(capture::Lookup {
            live: None,
            tape: tape.clone(),
        })));
        if header.victims_in_kernel {
            pipeline.victims = Some(crate::pipeline::Victims(Box::new(capture::KernelVictims {
                live: None,
                tape: tape.clone(),
            })));
        }
        let (feed, _) = mpsc::channel(1);
        Flow {
            pipeline,
            // Attribution comes from the tape: the host's mount table is not read, and the
            // resolver's host paths are never looked at.
            resolver: Resolver::new(resolve::Config {
                docker_root: None,
                ..resolve::Config::with_cgroup2_root(PathBuf::from("/sys/fs/cgroup"))
            }),
            correlator: Correlator::new(capture::Memory {
                live: None,
                tape: Some(tape.clone()),
            }),
            restarts: RestartWatch::default(),
            kmsg: capture::KernelReports {
                live: None,
                tape: Some(tape.clone()),
                on_tape: header.kmsg,
            },
            feed,
            recorder: None,
            activity: Activity::default(),
            ctx: Context {
                host: header.host.clone(),
                clock: BootClock::fixed(header.realtime_at_boot_ns),
            },
            enrichment_failures: 0,
            ring_peak: 0,
            losses: LossTracker::default(),
            tape: Some(tape.clone()),
            replay: true,
            host_cgroups: HostCgroups::new(false),
        }
    }

    /// Replays a container update as the live session reported it; false for a container the
    /// tape never named.
    fn replay_update(
        &mut self,
        tape: &Tape,
        boot_ns: u64,
        cgroup_id: Option<u64>,
        c: u32,
        reason: &str,
        sink: &mut dyn Sink,
    ) -> bool {
        let Some(container) = tape.container_at(c) else {
            return false;
        };
        let reason = Update::REASONS
            .into_iter()
            .find(|r| *r == reason)
            .unwrap_or("changed");
        let u = Update {
            cgroup_id,
            container,
            reason,
            boot_ns,
        };
        self.update(&u, sink);
        true
    }

    /// Replay: the updates the live session reported at this point, after a record was
    /// handled. Most come as the next frames of the loop; but a report's flush handles several
    /// records in one step, and the updates the first one's attribution brought (a rescan
    /// that found a container changed) were written before the second one's answers.
    fn replay_updates(&mut self, sink: &mut dyn Sink) {
        let Some(tape) = self.tape.clone() else {
            return;
        };
        while let Some((boot_ns, cgroup_id, c, reason)) = tape.take_if(|f| match f {
            Frame::Update {
                boot_ns,
                cgroup_id,
                c,
                reason,
            } => Some((*boot_ns, *cgroup_id, *c, reason.clone())),
            _ => None,
        }) {
            if !self.replay_update(&tape, boot_ns, cgroup_id, c, &reason, sink) {
                tape.stray();
            }
        }
    }

    /// Replays one frame as the live session did; false for a frame out of step (an answer
    /// no one asked for, or a container the tape never named).
    fn replay_frame(
        &mut self,
        frame: Frame,
        tape: &Tape,
        sink: &mut dyn Sink,
        summary: &mut ReplaySummary,
    ) -> bool {
        match frame {
            Frame::Raw(bytes) => {
                summary.records += 1;
                if let Some(ev) = self.pipeline.ingest(&bytes) {
                    self.handle(&ev, sink);
                }
            }
            // Reading the capture decoded every record it could (`Frame::Raw`): what is left
            // is base64 that does not decode, a record lost as live an undecodable one is.
            Frame::Record { .. } => {
                summary.records += 1;
                self.pipeline.decode_errors += 1;
            }
            Frame::Seed { boot_ns, tasks } => self.pipeline.procs.seed_from(&tasks, boot_ns),
            Frame::Update {
                boot_ns,
                cgroup_id,
                c,
                reason,
            } => return self.replay_update(tape, boot_ns, cgroup_id, c, &reason, sink),
            Frame::Warning { text } => self.warn(&text, sink),
            Frame::Throttle { boot_ns, c, ev } => {
                let Some(container) = tape.container_at(c) else {
                    return false;
                };
                self.throttle(&container, &ev, boot_ns, sink);
            }
            Frame::Report {
                boot_ns,
                window_ns,
                caps,
                counters,
                sigs,
            } => {
                let caps = caps.map(|v| v.iter().map(CapFrame::slot).collect());
                let counters = counters.map(|v| kind_counters(&v));
                let sigs =
                    sigs.map(|f| (f.slots.iter().map(SigFrame::slot).collect(), f.window_ns));
                self.report(boot_ns, window_ns, caps, counters, sigs, sink);
            }
            Frame::Close {
                boot_ns,
                cap_losses,
            } => self.close(boot_ns, cap_losses, sink),
            // Captures of version 1 have no `Close`: what was pending is told here (the
            // answers it needed, written before, are out of step).
            Frame::End { stats } => {
                for i in self.correlator.flush() {
                    self.incident(&i, sink);
                }
                summary.complete = true;
                summary.stats = stats;
            }
            // An answer no one asked for: the flow took another path than the live one.
            Frame::Attrs { .. }
            | Frame::Proc { .. }
            | Frame::Victim { .. }
            | Frame::Memory { .. }
            | Frame::Kmsg { .. }
            | Frame::Container { .. } => return false,
        }
        true
    }
}

/// Per-kind counters from a capture's `[attempts, lost, read_errors, filtered]` rows.
fn kind_counters(rows: &[[u64; 4]]) -> [KindCounters; kind::COUNT] {
    let mut out = [KindCounters::default(); kind::COUNT];
    for (c, &[attempts, lost, read_errors, filtered]) in out.iter_mut().zip(rows) {
        *c = KindCounters {
            attempts,
            lost_ringbuf_full: lost,
            read_errors,
            filtered,
        };
    }
    out
}

/// The warning for program runs the kernel skipped: how many since the last one, and which
/// programs have skipped runs in total.
fn recursion_warning(programs: &[AttachedProgram], new: u64) -> String {
    let which: Vec<String> = programs
        .iter()
        .filter_map(|p| Some((p.name, p.recursion_misses.filter(|&n| n > 0)?)))
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    format!(
        "the kernel skipped {new} more runs of ctrace's eBPF programs (its recursion guard: \
         another BPF program was running on the CPU); what they would have recorded is lost \
         (in total: {})",
        which.join(", ")
    )
}

/// The `cpu_throttle` record of `ev` in container `c`, at boot time `boot_ns`.
pub fn throttle_record(
    c: &Arc<Container>,
    ev: &ThrottleEvent,
    boot_ns: u64,
    ctx: &Context,
) -> Value {
    json::throttle(c, ev, boot_ns, ctx)
}

/// Handle what the ring buffer holds, up to [`DRAIN_BATCH`] records or [`DRAIN_TIME`];
/// returns how many, and whether it stopped with records left.
fn drain(ring: &mut RingBuf<MapData>, flow: &mut Flow, sink: &mut dyn Sink) -> (u64, bool) {
    let start = Instant::now();
    let mut n = 0;
    // Bytes this read found waiting: a measure of how full the buffer was when it began.
    let mut bytes = 0;
    let left = loop {
        if n == DRAIN_BATCH || (n % 256 == 255 && start.elapsed() >= DRAIN_TIME) {
            break true;
        }
        let Some(item) = ring.next() else {
            break false;
        };
        n += 1;
        if let Some(t) = &flow.tape {
            t.record(&item);
        }
        bytes += ring_footprint(item.len());
        if let Some(ev) = flow.pipeline.ingest(&item) {
            flow.handle(&ev, sink);
        }
    };
    flow.ring_peak = flow.ring_peak.max(bytes);
    (n, left)
}

/// Space a record of `len` bytes takes in a BPF ring buffer: an 8-byte header, and the whole
/// rounded up to 8 bytes.
fn ring_footprint(len: usize) -> u64 {
    (len as u64 + 8).div_ceil(8) * 8
}

/// Readiness of an optional fd: never, when there is none.
async fn readable<T: std::os::fd::AsRawFd>(
    fd: Option<&mut AsyncFd<T>>,
) -> std::io::Result<tokio::io::unix::AsyncFdReadyMutGuard<'_, T>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(kinds: &[u16]) -> u32 {
        kinds.iter().fold(0, |m, &k| m | kind_bit(k))
    }

    const STATE: [u16; 4] = [
        kind::FORK,
        kind::CGROUP_MKDIR,
        kind::CGROUP_RMDIR,
        kind::CGROUP_ATTACH,
    ];

    #[test]
    fn the_reader_naps_after_half_a_second_of_empty_polls_and_not_before() {
        let mut nap = Nap::default();
        for _ in 1..NAP_AFTER_EMPTY_POLLS {
            assert!(!nap.polled(0));
        }
        // A record resets the count.
        assert!(!nap.polled(3));
        for _ in 1..NAP_AFTER_EMPTY_POLLS {
            assert!(!nap.polled(0));
        }
        assert!(nap.polled(0));
        // Refused (no map): asked again only after as many empty polls, not at every poll.
        assert!(!nap.polled(0));
    }

    #[test]
    fn a_record_takes_its_length_and_a_header_rounded_up_to_8_bytes() {
        assert_eq!(ring_footprint(0), 8);
        assert_eq!(ring_footprint(1), 16);
        assert_eq!(ring_footprint(8), 16);
        assert_eq!(ring_footprint(60), 72);
    }

    #[test]
    fn recursion_warning_names_the_programs_that_missed() {
        let prog = |name, misses| AttachedProgram {
            name,
            hook: "tracepoint",
            id: Some(1),
            detached: false,
            recursion_misses: misses,
        };
        let w = recursion_warning(
            &[
                prog("sched_switch", Some(12)),
                prog("sched_process_exec", Some(0)),
                prog("cap_capable", None),
            ],
            5,
        );
        assert!(w.contains("skipped 5 more runs"), "{w}");
        assert!(w.ends_with("(in total: sched_switch 12)"), "{w}");
    }

    #[test]
    fn state_counts_in_stats() {
        let v = StateCounts {
            resolver_slots: 3,
            processes: 7,
            ..StateCounts::default()
        }
        .json();
        assert_eq!(
            (v["resolver_slots"].as_u64(), v["processes"].as_u64()),
            (Some(3), Some(7))
        );
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "containers",
                "names",
                "processes",
                "resolver_slots",
                "resolver_slots_evicted",
                "tombstones",
                "warnings_forgotten"
            ]
        );
    }

    #[test]
    fn every_session_keeps_state() {
        assert_eq!(kernel_kinds(0), bits(&STATE));
        assert_eq!(
            kernel_kinds(bits(&[kind::EXEC])),
            bits(&STATE) | bits(&[kind::EXEC])
        );
    }

    #[test]
    fn oom_kills_need_signals_and_exits() {
        assert_eq!(
            kernel_kinds(bits(&[kind::OOM_VICTIM])),
            bits(&STATE) | bits(&[kind::OOM_VICTIM, kind::SIGNAL, kind::EXIT])
        );
    }

    #[test]
    fn kills_need_exits() {
        assert_eq!(
            kernel_kinds(bits(&[kind::SIGNAL])),
            bits(&STATE) | bits(&[kind::SIGNAL, kind::EXIT])
        );
        assert_eq!(
            kernel_kinds(bits(&[kind::CAPABILITY])),
            bits(&STATE) | bits(&[kind::CAPABILITY])
        );
    }
}
