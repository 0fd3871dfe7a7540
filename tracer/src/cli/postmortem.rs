//! `ctrace postmortem NAME|ID`: the story of a container's end, told from the journal alone,
//! so it works when the container no longer exists in any runtime: who it was, when it was
//! seen, its starts and stops, each OOM kill (limit, the usage curve of the minute before,
//! victim and the other processes with their RSS, trigger, container limit or host-wide) and
//! each kill (who sent which signal).

use std::{
    io::IsTerminal as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::Args;

use super::history::{finish, open_journal, query_failed, Failure, Output};
use tracer::{
    journal::{self, ContainerRow, Journal, JournalError},
    postmortem::{containers_from_records, render, story, svg_chart, to_json, Postmortem},
    select::{Match, Selector},
    sink::escape::terminal,
};

#[derive(Debug, Args)]
pub struct PostmortemArgs {
    /// The container: name, id, id prefix (3 characters or more), pod name, `NAMESPACE/NAME`
    /// or journal key (`docker/<id>`, `containerd/<namespace>/<id>`). An exact name or id
    /// wins over an id prefix; a prefix of several containers' ids is refused (exit 2).
    #[arg(value_name = "NAME|ID", value_parser = Selector::parse)]
    pub container: Selector,
    /// One JSON object (matches and stories).
    #[arg(long)]
    pub json: bool,
    /// When several containers match (a name reused over time): tell every story, not only
    /// the newest one.
    #[arg(long)]
    pub all: bool,
    /// The journal to read (never created or modified).
    #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_PATH)]
    pub journal: PathBuf,
    /// Also write an SVG chart of the newest story: the memory curve with its limit and the
    /// CPU throttling of the container's last minutes, with starts, stops, kills and OOM
    /// kills marked.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// Finds the containers `selector` names and tells the newest one's story (every one's with
/// `all`). Several containers by one name (reused over time) are fine; an id prefix of
/// several is ambiguous: exit code 2, listing them.
pub fn postmortem(
    journal: &Journal,
    path: &Path,
    selector: &Selector,
    all: bool,
) -> Result<Postmortem, Failure> {
    let q = |e: JournalError| query_failed(&e);
    let pattern = selector.as_str();
    let mut matches = matching(journal, path, selector)?;
    let told = if all { matches.len() } else { 1 };
    let stories = matches[..told]
        .iter()
        .map(|c| story(journal, c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(q)?;
    for (m, s) in matches.iter_mut().zip(&stories) {
        m.clone_from(&s.container);
    }
    Ok(Postmortem {
        query: pattern.to_owned(),
        journal: path.to_owned(),
        matches,
        stories,
        all,
    })
}

/// The containers of the journal `selector` names, newest first (never empty): by their
/// metadata, else by the records that name them. Several containers by one name (reused
/// over time) are fine; an id prefix of several is ambiguous: exit code 2, listing them.
/// Shared with `ctrace caps`.
pub fn matching(
    journal: &Journal,
    path: &Path,
    selector: &Selector,
) -> Result<Vec<ContainerRow>, Failure> {
    let q = |e: JournalError| query_failed(&e);
    let pattern = selector.as_str();
    let mut matches = match journal.containers_matching(selector).map_err(q)? {
        Some(b) if b.level == Match::Prefix && b.items.len() > 1 => {
            return Err(Failure::error(format!(
                "{}; name one by its name or key",
                terminal(&selector.ambiguous(&b.items).to_string())
            )));
        }
        Some(b) => b.items,
        None => Vec::new(),
    };
    if matches.is_empty() {
        matches = containers_from_records(journal, pattern).map_err(q)?;
    }
    if matches.is_empty() {
        return Err(Failure::not_found(format!(
            "no container named {:?} (or with that id) in journal {}",
            terminal(pattern),
            terminal(&path.display().to_string())
        )));
    }
    Ok(matches)
}

/// `ctrace postmortem`; `tty`: sparklines in the human output.
pub fn run(args: &PostmortemArgs, tty: bool) -> Result<Output, Failure> {
    let journal = open_journal(&args.journal)?;
    let pm = postmortem(&journal, &args.journal, &args.container, args.all)?;
    let mut notes = Vec::new();
    if let (Some(path), Some(story)) = (&args.svg, pm.stories.first()) {
        let svg = svg_chart(&journal, story).map_err(|e| query_failed(&e))?;
        std::fs::write(path, svg).map_err(|e| {
            Failure::error(format!(
                "cannot write {}: {e}",
                terminal(&path.display().to_string())
            ))
        })?;
        notes.push(format!(
            "chart written to {}",
            terminal(&path.display().to_string())
        ));
    }
    let text = if args.json {
        format!("{}\n", tracer::sink::json::line(&to_json(&pm)))
    } else {
        render(&pm, tty)
    };
    Ok(Output { text, notes })
}

/// Entry point of `ctrace postmortem`: prints and returns the exit code.
pub fn main(args: &PostmortemArgs) -> ExitCode {
    finish(run(args, std::io::stdout().is_terminal()))
}

#[cfg(test)]
mod tests;
