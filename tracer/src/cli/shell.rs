//! `ctrace completions SHELL` and the hidden `ctrace man DIR` (used by `cargo xtask dist`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory as _;

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Print the completion script to stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    super::print_stdout(&script(args.shell))
}

/// clap_complete offers hidden subcommands too: complete a copy of the command without them.
fn script(shell: clap_complete::Shell) -> String {
    let full = Cli::command();
    let mut cmd = clap::Command::new("ctrace")
        .version(super::version())
        .propagate_version(true)
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "ctrace", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Write `ctrace.1` and `ctrace-<sub>.1` for every visible subcommand; print each path.
pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let written = write_pages(&args.dir)?;
    let list: String = written
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    super::print_stdout(&list)
}

fn write_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    for sub in std::iter::once(&cmd).chain(cmd.get_subcommands().filter(|s| !s.is_hide_set())) {
        let path = clap_mangen::Man::new(sub.clone())
            .generate_to(dir)
            .with_context(|| {
                format!(
                    "writing the man page of {} in {}",
                    sub.get_name(),
                    dir.display()
                )
            })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_leave_out_hidden_subcommands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let text = script(shell);
            assert!(text.contains("postmortem"), "{shell}: {text}");
            assert!(
                !text.contains("subcmd__man") && !text.contains("man:"),
                "{shell}"
            );
            assert!(!text.contains("-a \"man\""), "{shell}");
        }
    }

    #[test]
    fn a_page_per_visible_subcommand() {
        let dir = std::env::temp_dir().join(format!("ctrace-man-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let written = write_pages(&dir).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"ctrace.1".to_owned()), "{names:?}");
        assert!(names.contains(&"ctrace-watch.1".to_owned()), "{names:?}");
        assert!(!names.iter().any(|n| n == "ctrace-man.1"), "{names:?}");
        let watch = std::fs::read_to_string(dir.join("ctrace-watch.1")).unwrap();
        assert!(watch.contains("Examples"), "{watch}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
