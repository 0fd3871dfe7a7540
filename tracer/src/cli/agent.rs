//! `ctrace agent`: `watch` as a service. It traces and explains exactly as `watch` does, and
//! writes the journal (for `postmortem` and `history`) and, with `--output`, NDJSON for a log
//! pipeline; stdout stays quiet, and a status line goes to the log (stderr) at an interval.

use std::{net::SocketAddr, time::Duration};

use clap::Args;

use super::watch::{self, Mode, WatchArgs};
use tracer::metrics::MetricsConfig;

#[derive(Debug, Args)]
pub struct AgentCmd {
    /// How often a status line (records, losses, containers, journal) goes to stderr.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = super::parse_duration)]
    pub status_interval: Duration,
    /// Serve Prometheus metrics at http://ADDR/metrics: `HOST:PORT`, or a port alone for
    /// 127.0.0.1 (off by default).
    #[arg(long, value_name = "ADDR", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<SocketAddr>,
    /// Drop a gone container's series this long after it was last seen.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::parse_duration)]
    pub metrics_expire: Duration,
    /// Containers with series at once; more are refused and counted
    /// (`ctrace_metrics_containers_refused_total`).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub metrics_max_containers: usize,
    /// Check the config file and the flags, print a summary and exit (0: valid, 2: not);
    /// nothing is attached, root is not needed.
    #[arg(long)]
    pub check_config: bool,
    #[command(flatten)]
    pub trace: WatchArgs,
}

pub fn run(cmd: &AgentCmd) -> anyhow::Result<()> {
    if cmd.trace.no_journal && cmd.trace.output.is_none() {
        anyhow::bail!(
            "the agent would record nothing: --no-journal needs --output FILE (or drop \
             --no-journal)"
        );
    }
    if cmd.status_interval < Duration::from_secs(1) {
        anyhow::bail!("--status-interval must be at least 1s");
    }
    if cmd.metrics_max_containers == 0 {
        anyhow::bail!("--metrics-max-containers must be at least 1");
    }
    if cmd.check_config {
        cmd.trace.check()?;
        let line = tracer::sink::escape::terminal(&check_summary(cmd));
        return super::print_stdout(&format!("{line}\n"));
    }
    watch::run_mode(
        &cmd.trace,
        Mode::Agent {
            status_every: cmd.status_interval,
            metrics: cmd.metrics_addr.map(|addr| {
                (
                    addr,
                    MetricsConfig {
                        expire_after: cmd.metrics_expire,
                        max_containers: cmd.metrics_max_containers,
                    },
                )
            }),
        },
    )
}

/// `--check-config`: one line on what the agent would do.
fn check_summary(cmd: &AgentCmd) -> String {
    let t = &cmd.trace;
    let file = match &t.config_file {
        None => format!(
            "no config file ({} does not exist)",
            super::config::DEFAULT_PATH
        ),
        Some(f) => {
            let over = if f.overridden.is_empty() {
                String::new()
            } else {
                format!("; overridden by flags: {}", f.overridden.join(", "))
            };
            format!("{} ({} keys{over})", f.path.display(), f.keys)
        }
    };
    let path =
        |p: Option<&std::path::Path>| p.map_or("off".to_owned(), |p| p.display().to_string());
    format!(
        "ctrace agent: configuration OK: {file}; events {}; journal {}; output {}; showing {}; \
         metrics {}",
        t.events,
        path((!t.no_journal).then_some(t.journal.as_path())),
        path(t.output.as_deref()),
        super::config::describe(&t.filter()),
        cmd.metrics_addr.map_or("off".to_owned(), |a| a.to_string()),
    )
}

/// `127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`, or `9464` alone for 127.0.0.1.
fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is not an address to listen on (e.g. 127.0.0.1:9464, or 9464)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_addresses() {
        assert_eq!(
            parse_metrics_addr("9464"),
            Ok("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(
            parse_metrics_addr("0.0.0.0:9100"),
            Ok("0.0.0.0:9100".parse().unwrap())
        );
        assert_eq!(
            parse_metrics_addr("[::1]:9464"),
            Ok("[::1]:9464".parse().unwrap())
        );
        assert!(parse_metrics_addr("localhost").is_err());
        assert!(parse_metrics_addr("127.0.0.1:99999").is_err());
    }
}
