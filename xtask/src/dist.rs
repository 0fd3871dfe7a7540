//! `cargo xtask dist`: the release binary, its man pages and shell completions in
//! `target/dist/` (binary, `man/`, `completions/`), ready to package.

use std::{fs, path::Path, process::Command};

use anyhow::{Context, Result};

use crate::util::{self, say};

/// The shells `ctrace completions` writes for, with the file name each expects.
const COMPLETIONS: [(&str, &str); 3] = [
    ("bash", "ctrace.bash"),
    ("zsh", "_ctrace"),
    ("fish", "ctrace.fish"),
];

pub fn dist() -> Result<()> {
    let bin = crate::build(true)?;
    let dist = util::target_dir()?.join("dist");
    if dist.exists() {
        fs::remove_dir_all(&dist).with_context(|| format!("removing {}", dist.display()))?;
    }
    let (man, completions) = (dist.join("man"), dist.join("completions"));
    for dir in [&man, &completions] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut written = Vec::new();

    let target = dist.join("ctrace");
    fs::copy(&bin, &target)
        .with_context(|| format!("copying {} to {}", bin.display(), target.display()))?;
    written.push(target.clone());

    // The pages come from the binary's own clap definition (hidden `ctrace man DIR`).
    let pages = util::capture(Command::new(&target).arg("man").arg(&man))?;
    written.extend(pages.lines().map(Into::into));

    for (shell, file) in COMPLETIONS {
        let script = util::capture(Command::new(&target).args(["completions", shell]))?;
        let path = completions.join(file);
        fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }

    let version = util::capture(Command::new(&target).arg("--version"))?;
    say!("dist: {} in {}", version.trim(), dist.display());
    for path in &written {
        println!("{}", relative(path, &dist).display());
    }
    Ok(())
}

fn relative<'a>(path: &'a Path, base: &Path) -> &'a Path {
    path.strip_prefix(base).unwrap_or(path)
}
