//! `ctrace doctor`: the kernel, its hooks and which mechanism serves each feature here.

use std::{path::PathBuf, process::ExitCode};

use tracer::{
    doctor::{self, Report},
    sink::escape,
};

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The journal whose place to check.
    #[arg(long, value_name = "PATH", default_value = tracer::journal::DEFAULT_PATH)]
    pub journal: PathBuf,
    /// Docker's API socket.
    #[arg(long, value_name = "PATH", default_value = tracer::docker::DEFAULT_SOCKET)]
    pub docker_socket: PathBuf,
}

/// Exit 0 when every core feature is on, 1 when one is off, 2 on an error, including when the
/// programs could not be loaded to check (not root, a binary without them): the report is
/// printed all the same.
pub fn main(args: &DoctorArgs) -> ExitCode {
    let paths = doctor::Paths {
        journal: args.journal.clone(),
        docker_socket: args.docker_socket.clone(),
        ..doctor::Paths::default()
    };
    let report = doctor::examine(&paths);
    let text = if args.json {
        match serde_json::to_string(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("ctrace: error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        render(&report)
    };
    if let Err(e) = super::print_stdout(&text) {
        eprintln!("ctrace: error: {e:#}");
        return ExitCode::from(2);
    }
    match (&report.load_error, report.ok) {
        (Some(e), _) => {
            eprintln!("ctrace: error: {}", escape::terminal(e));
            ExitCode::from(2)
        }
        (None, true) => ExitCode::SUCCESS,
        (None, false) => ExitCode::from(1),
    }
}

/// The report for people: the kernel, every hook tried, every feature.
pub fn render(r: &Report) -> String {
    let k = &r.kernel;
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or("absent".to_owned(), |p| p.display().to_string())
    };
    let mut tracefs = path(&k.tracefs);
    if k.tracefs_mounted_by_ctrace {
        tracefs.push_str(" (was not mounted: ctrace mounted it)");
    }
    let cgroups = match &k.cgroup2_mount {
        Some(m) => format!("{} (cgroup2 at {})", k.cgroup_mode, m.display()),
        None => k.cgroup_mode.to_owned(),
    };
    let mut out = super::render_columns(&[
        ["kernel".to_owned(), escape::terminal(&k.release)],
        ["btf".to_owned(), path(&k.btf)],
        ["cgroups".to_owned(), cgroups],
        ["tracefs".to_owned(), tracefs],
    ]);
    if let Some(e) = &r.load_error {
        out.push_str(&format!(
            "\neBPF programs not loaded: {}\n",
            escape::terminal(e)
        ));
    }
    if !r.hooks.is_empty() {
        out.push_str("\nhooks\n");
        let rows: Vec<[String; 4]> = r
            .hooks
            .iter()
            .map(|h| {
                [
                    String::new(),
                    h.hook.to_owned(),
                    h.target.clone(),
                    escape::terminal(&doctor::status_text(&h.status)),
                ]
            })
            .collect();
        out.push_str(&super::render_columns(&rows));
    }
    out.push_str("\nfeatures\n");
    let rows: Vec<[String; 4]> = r
        .features
        .iter()
        .map(|f| {
            let state = match (f.on, f.core) {
                (true, _) => "on",
                (false, true) => "OFF",
                (false, false) => "off",
            };
            let mut how = escape::terminal(&f.mechanism);
            for n in &f.notes {
                how.push_str(&format!("; {}", escape::terminal(n)));
            }
            [String::new(), f.feature.to_owned(), state.to_owned(), how]
        })
        .collect();
    out.push_str(&super::render_columns(&rows));
    if !r.warnings.is_empty() {
        out.push_str("\nwarnings\n");
        for w in &r.warnings {
            out.push_str(&format!("  {}\n", escape::terminal(w)));
        }
    }
    let off: Vec<&str> = r
        .features
        .iter()
        .filter(|f| f.core && !f.on)
        .map(|f| f.feature)
        .collect();
    out.push('\n');
    if off.is_empty() {
        out.push_str("every core feature is on\n");
    } else {
        out.push_str(&format!("core feature(s) off: {}\n", off.join(", ")));
    }
    out
}
