//! Where a session's records go: lines for people or NDJSON, the status line, the agent's log line.

use std::{
    io::{self, IsTerminal as _},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use tracer_common::{kind, kind_bit};

use tracer::{
    cpuwatch,
    event::{Body, Event},
    explain::Incident,
    probe::{self},
    resolve::{Attrs, Container, Update},
    session::{Next, Sink, Status},
    sink::{
        console, escape,
        file::{Discard, LineSink, RotatingFile, Special, Stdout},
        filter::Filter,
        json, Context, Loss,
    },
    throttle::{self, ThrottleEvent},
};

use super::{
    args::{use_color, ColorChoice, WatchArgs},
    Mode,
};

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const MAGENTA: &str = "\x1b[35m";

/// Output with broken-pipe detection: a closed stdout ends the watch quietly; a failing
/// `--output` file ends it with an error.
pub(crate) struct Out {
    pub(super) w: Box<dyn LineSink>,
    /// Kinds the user asked to see (the kernel may trace more, for correlation).
    pub(super) kinds: u32,
    /// Allowed capability checks are shown (they may be traced for the journal only).
    pub(super) cap_allowed: bool,
    pub(super) throttle: bool,
    pub(super) json: bool,
    pub(super) color: bool,
    pub(super) filter: Filter,
    /// Where the filter is read again on SIGHUP.
    pub(super) config_file: Option<crate::cli::config::FileInfo>,
    /// A status line on a terminal's stderr (events/s, losses).
    pub(super) status: bool,
    /// The status line now shown, when shown.
    pub(super) status_line: Option<String>,
    /// `ctrace agent`: a status line in the log at this interval, and when it was last written.
    pub(super) agent_every: Option<(Duration, Instant)>,
    /// Lines were written since the last flush.
    pub(super) dirty: bool,
    /// Set once writing failed: `Ok(())` for a broken pipe, the error otherwise.
    pub(super) done: Option<anyhow::Result<()>>,
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
            json::event_line(ev, attrs, ctx)
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
            Incident::ContainerStop { .. } | Incident::RestartLoop(_) => kind::EXIT,
        };
        if self.kinds & kind_bit(from) == 0 || !self.filter.incident(i) {
            return;
        }
        let s = if self.json {
            json::record_line(&json::incident_record(i, ctx))
        } else {
            let color = match i {
                Incident::Kill(_) | Incident::Oom(_) | Incident::RestartLoop(_) => RED,
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
            json::record_line(&json::throttle_record(c, ev, now, ctx))
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
            json::record_line(&json::update_record(u, ctx))
        } else {
            self.paint(console::update(u, ctx), CYAN)
        };
        self.line(&s);
    }

    fn loss(&mut self, l: &Loss, now: u64, ctx: &Context) {
        let s = if self.json {
            json::record_line(&json::loss_record(l, ctx, now))
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
                        escape::terminal(&crate::cli::config::describe(&f))
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
    pub(super) fn line(&mut self, s: &str) {
        if self.done.is_some() {
            return;
        }
        self.dirty = true;
        if let Err(e) = self.w.write_line(s) {
            self.fail(e);
        }
    }

    /// Colour a whole console line (its text is already escaped).
    pub(super) fn paint(&self, line: String, color: &str) -> String {
        if self.color && !color.is_empty() {
            format!("{color}{line}\x1b[0m")
        } else {
            line
        }
    }

    pub(super) fn fail(&mut self, e: io::Error) {
        self.done = Some(if e.kind() == io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(anyhow::Error::new(e).context("writing output"))
        });
    }
}

/// `--output -`: NDJSON on stdout (`/dev/stdout` is a symbolic link, which `--output` refuses).
pub(super) fn is_stdout(output: &std::path::Path) -> bool {
    output.as_os_str() == "-"
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

/// Where records are written: `--output` (a file, or `-` for stdout), else stdout for `watch`
/// and nowhere for `agent` (its journal and metrics keep what it sees).
pub(super) fn open_output(args: &WatchArgs, mode: Mode) -> anyhow::Result<Box<dyn LineSink>> {
    Ok(match (&args.output, mode) {
        (Some(path), _) if is_stdout(path) => Box::new(Stdout::new()),
        (Some(path), _) => Box::new(
            RotatingFile::open(
                path,
                Some(args.rotate_size),
                args.rotate_keep,
                if args.output_special {
                    Special::Allow
                } else {
                    Special::Refuse
                },
            )
            .context("cannot write --output")?,
        ),
        (None, Mode::Agent { .. }) => Box::new(Discard),
        (None, Mode::Watch { .. }) => Box::new(Stdout::new()),
    })
}

/// The agent's periodic line for its log: totals since start.
pub(super) fn agent_status(st: &Status) -> String {
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
