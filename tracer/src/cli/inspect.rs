//! `ctrace inspect`: one container as the lab looks at it from the host (`ps -axfo`, `lsns`,
//! `grep Cap /proc/PID/status`), for any runtime: identity, process tree under its shim,
//! namespaces and who shares them, capability sets against the runtime's default and the
//! host, resource limits, and recent incidents from the journal. `--diff A B` puts two
//! containers side by side.
//!
//! Nothing here needs eBPF. The data comes from runc state (via the resolver `ctrace ps`
//! uses), `/proc`, the cgroup file systems and the journal; the report, how it is gathered
//! and rendered are in [`tracer::inspect`]. This file picks the containers, prints and sets
//! the exit code. What cannot be read is said so in its section, never guessed.
//!
//! Exit codes: 0 done; 1 no container matches, or the inspection of a running container is
//! incomplete (the init process exited meanwhile, a `/proc` entry or a cgroup file was
//! unreadable); 2 several containers match, or any other error.

use std::{fmt::Write as _, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{ArgGroup, Args};

use tracer::{
    clock::utc_seconds,
    container::{self, ContainerMeta},
    docker,
    inspect::{self as data, gather, render, ContainerView, Env, Report, Target},
    journal::{self, Journal},
    resolve::Container,
    select::{SelectError, Selector},
    sink::escape::terminal,
};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["container", "diff"])))]
pub struct InspectArgs {
    /// Container name, full id, id prefix (3+ characters), pod name, or `NAMESPACE/ID` and
    /// journal keys such as `containerd/default/ID` to tell containerd namespaces apart. An
    /// exact name or id wins over an id prefix; several matches are refused (exit 2).
    #[arg(value_name = "NAME|ID")]
    pub container: Option<String>,
    /// Compare two containers side by side: capability sets, namespaces, limits.
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "container")]
    pub diff: Option<Vec<String>>,
    /// One JSON object on one line.
    #[arg(long)]
    pub json: bool,
    /// Also scan this runc state root (`runc --root DIR`); repeatable.
    #[arg(long, value_name = "DIR")]
    pub runc_root: Vec<PathBuf>,
    /// Journal to read recent incidents from (a missing file just omits them).
    #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_PATH)]
    pub journal: PathBuf,
    /// Do not read the journal.
    #[arg(long)]
    pub no_journal: bool,
    /// Docker API socket (names also come from Docker's store on disk).
    #[arg(long, value_name = "PATH", default_value = docker::DEFAULT_SOCKET)]
    pub docker_socket: PathBuf,
    /// Do not ask the Docker API or ctr.
    #[arg(long)]
    pub no_api: bool,
}

/// A failure with its own exit code (1: nothing matches or incomplete; 2: ambiguous).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    fn error(code: u8, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Exit {
            code,
            message: message.into(),
        })
    }
}

/// Run `ctrace inspect` and turn its outcome into the process's exit code, errors on one line
/// as `main` prints them.
pub fn main(args: &InspectArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctrace: error: {e:#}");
            ExitCode::from(e.downcast_ref::<Exit>().map_or(2, |x| x.code))
        }
    }
}

pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let mut resolver =
        super::ps::enriched_resolver(&args.runc_root, &args.docker_socket, args.no_api)?;
    for w in std::mem::take(&mut resolver.warnings) {
        eprintln!("ctrace: warning: {}", terminal(&w));
    }
    let metas = state_metas(&args.runc_root);
    let targets: Vec<Target> = resolver
        .containers()
        .into_iter()
        .filter(|(_, _, gone)| !gone)
        .map(|(c, cgroup_id, _)| {
            let meta = metas
                .iter()
                .find(|m| m.id == c.id && m.namespace == c.namespace)
                .cloned();
            Target {
                container: c,
                cgroup_id,
                meta,
            }
        })
        .collect();
    let journal = (!args.no_journal).then(|| args.journal.clone());
    let env = Env::current(journal);
    match &args.diff {
        Some(pair) => {
            let [a, b] = pair.as_slice() else {
                anyhow::bail!("--diff takes two containers");
            };
            let ia = pick(&targets, a, &env)?;
            let ib = pick(&targets, b, &env)?;
            let ra = gather(&env, &targets[ia], &others(&targets, ia));
            let rb = gather(&env, &targets[ib], &others(&targets, ib));
            let (la, lb) = data::diff_labels(&targets[ia].container, &targets[ib].container);
            let va = view(&ra, &la)?;
            let vb = view(&rb, &lb)?;
            let text = if args.json {
                format!(
                    "{}\n",
                    tracer::sink::json::line(&data::diff_json(&ra, &rb, &va, &vb))
                )
            } else {
                data::render_side_by_side(&va, &vb)
            };
            super::print_stdout(&text)?;
            incomplete(&ra)?;
            incomplete(&rb)
        }
        None => {
            let pattern = args.container.as_deref().unwrap_or_default();
            let i = pick(&targets, pattern, &env)?;
            let report = gather(&env, &targets[i], &others(&targets, i));
            let text = if args.json {
                let v = serde_json::to_value(&report).context("serialising the report")?;
                format!("{}\n", tracer::sink::json::line(&v))
            } else {
                render(&report)
            };
            super::print_stdout(&text)?;
            incomplete(&report)
        }
    }
}

/// Exit 1 after the output when something could not be read while the container ran.
fn incomplete(r: &Report) -> anyhow::Result<()> {
    r.incomplete()
        .map_or(Ok(()), |why| Err(Exit::error(1, why)))
}

/// The runc state of every container (bundle, state root, created, init start time), which
/// the resolver's [`Container`] does not carry.
fn state_metas(extra_roots: &[PathBuf]) -> Vec<ContainerMeta> {
    let mut roots = container::default_state_roots();
    for r in extra_roots {
        if !roots.contains(r) {
            roots.push(r.clone());
        }
    }
    container::scan_state_roots(&roots).containers
}

fn others(targets: &[Target], skip: usize) -> Vec<&Target> {
    targets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != skip)
        .map(|(_, t)| t)
        .collect()
}

/// The index of the one container `pattern` names ([`Selector::resolve`]), or an [`Exit`]
/// error: 1 when none matches, 2 when several do (listed) or the pattern is malformed.
fn pick(targets: &[Target], pattern: &str, env: &Env) -> anyhow::Result<usize> {
    let cs: Vec<&Container> = targets.iter().map(|t| t.container.as_ref()).collect();
    let err = match Selector::parse(pattern).and_then(|s| s.resolve(&cs)) {
        Ok(i) => return Ok(i),
        Err(e) => e,
    };
    match err {
        SelectError::NotFound { .. } => {
            let mut msg = format!(
                "no container matches \"{}\" (ctrace ps lists them; plain runc containers \
                 under another root need --runc-root)",
                terminal(pattern)
            );
            if let Some(seen) = journal_knows(env, pattern) {
                let _ = write!(msg, "; the journal knows it: {seen}");
            }
            Err(Exit::error(1, msg))
        }
        SelectError::Ambiguous { .. } => Err(Exit::error(
            2,
            format!(
                "{}; name one by its key (or NAMESPACE/ID for containerd)",
                terminal(&err.to_string())
            ),
        )),
        SelectError::Invalid(_) => Err(Exit::error(2, terminal(&err.to_string()))),
    }
}

/// `name (gone at ...)` when the journal has a container by that name or id.
fn journal_knows(env: &Env, pattern: &str) -> Option<String> {
    let path = env.journal.as_ref().filter(|p| p.exists())?;
    let selector = Selector::parse(pattern).ok()?;
    let j = Journal::open_read_only(path).ok()?;
    let rows = j.containers_matching(&selector).ok()??.items;
    let row = rows.first()?;
    let when = row.gone_ns.map_or_else(
        || format!("last seen {}", utc_seconds(row.last_seen_ns)),
        |g| format!("gone at {}", utc_seconds(g)),
    );
    Some(format!(
        "{} {} ({when}; try ctrace postmortem)",
        terminal(&row.key),
        terminal(row.name.as_deref().unwrap_or("-"))
    ))
}

/// What `--diff` compares, from a report; an [`Exit`] error if the container does not run.
fn view(r: &Report, label: &str) -> anyhow::Result<ContainerView> {
    r.view(label).map_err(|why| Exit::error(1, why))
}
