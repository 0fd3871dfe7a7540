//! The options of `watch` and `agent`: what is traced, recorded and written.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;

use tracer_common::{kind, kind_bit};

use tracer::{
    container::Runtime,
    docker, journal,
    names::parse_signal,
    probe::{self, Options},
    recorder::{self},
    resolve::{self},
    select::Selector,
    session::{self},
    sink::filter::{self, Filter},
    throttle::DetectorConfig,
};

/// What is traced, recorded and written; shared by `watch` and `agent`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Event kinds, comma-separated: exec, exit, fork, signal, oom, capability (denied checks),
    /// capability:all (allowed ones too), cgroup (= cgroup_mkdir, cgroup_rmdir,
    /// cgroup_attach), cpu_throttle, all.
    #[arg(long, default_value = "exec,exit,signal,oom,capability,cpu_throttle")]
    pub events: String,
    /// How often container CPU counters are sampled for cpu_throttle (e.g. 1s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::cli::parse_duration)]
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
    /// Userspace OOM killers, by the name (comm) of the process sending their SIGKILL: such a
    /// SIGKILL is reported as an `oom_kill` with `scope: userspace` and the cgroup's memory
    /// pressure, not as a kill.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = tracer::explain::OOM_KILLERS.iter().map(|s| (*s).to_owned()))]
    pub oom_killers: Vec<String>,
    /// Fold repeated identical capability checks within this many seconds into one record.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub cap_window: f64,
    /// Fold repeated identical signals that change nothing (ignored, or already pending)
    /// within this many seconds into one record with a count (0: every signal a record).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub signal_window: f64,
    /// Report the exit of every thread, not only of whole processes.
    #[arg(long)]
    pub all_threads: bool,
    /// Write NDJSON to this file instead of stdout (created 0600; symlinks refused; reopened
    /// on SIGHUP); `-` for stdout (the agent in a container, for the cluster's log collector).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Rotate --output when it would grow past this size, e.g. 100MiB (0: never).
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = crate::cli::parse_size)]
    pub rotate_size: u64,
    /// Rotated files to keep (FILE.1 ... FILE.N).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub rotate_keep: u32,
    /// Let --output be a FIFO or a character device (refused otherwise). A FIFO is opened
    /// non-blocking, so one with no reader fails at once instead of hanging ctrace.
    #[arg(long)]
    pub output_special: bool,
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
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = crate::cli::parse_duration)]
    pub retention: Duration,
    /// Keep the journal under this size (e.g. 512MiB).
    #[arg(long, value_name = "SIZE", default_value = "512MiB", value_parser = crate::cli::parse_size)]
    pub max_size: u64,
    /// How often the journal samples each container's memory (usage, limit, RSS of its top
    /// processes); containers in their first seconds are sampled more often.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::cli::parse_duration)]
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
    pub config_file: Option<crate::cli::config::FileInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Whether console lines are coloured: `always` and `never` as asked; `auto` when stdout is a
/// terminal and `NO_COLOR` is unset or empty (<https://no-color.org>: a flag wins over it).
pub(super) fn use_color(
    choice: ColorChoice,
    stdout_tty: bool,
    no_color: Option<&std::ffi::OsStr>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stdout_tty && no_color.is_none_or(|v| v.is_empty()),
    }
}

impl WatchArgs {
    /// How a session traces for these arguments.
    pub(super) fn session_config(&self, probe: Options) -> session::Config {
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
            oom_killers: self.oom_killers.clone(),
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
    pub(super) fn event_spec(&self) -> anyhow::Result<(probe::KindSpec, bool)> {
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
    pub(super) fn shows_allowed_caps(&self, kinds: probe::KindSpec) -> bool {
        kinds.cap_allowed || (self.verbose && kinds.mask & kind_bit(kind::CAPABILITY) != 0)
    }

    pub(super) fn options(&self) -> anyhow::Result<Options> {
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
            // Allowed checks traced for the journal only: the host's are of no use to it.
            cap_allowed_host: self.shows_allowed_caps(kinds),
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
        if !(self.signal_window.is_finite() && self.signal_window >= 0.0) {
            anyhow::bail!("--signal-window must be a number of seconds >= 0");
        }
        o.signal_window = Duration::from_secs_f64(self.signal_window);
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
