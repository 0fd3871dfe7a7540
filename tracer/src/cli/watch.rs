//! `ctrace watch`: load the probes and stream events until Ctrl-C or SIGTERM.

mod args;
mod out;
#[cfg(test)]
mod tests;

pub(crate) use args::parse_events;
use args::use_color;
pub use args::{ColorChoice, WatchArgs};
use out::{is_stdout, open_output};
pub(crate) use out::{replay_output, Out};

use std::{
    io::{self, IsTerminal as _},
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Args;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::mpsc,
};

use tracer_common::kind_bit;

use tracer::{
    event::kind_name,
    journal,
    metrics::{self, Metrics, MetricsConfig, MetricsSink},
    probe::{Options, Probe},
    recorder::Recorder,
    session::{self, Control, Session, Sink},
    sink::{escape, json},
};

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
        "tp_btf" => "the capability:cap_capable tracepoint (BTF-typed)".to_owned(),
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
