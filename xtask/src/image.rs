//! `cargo xtask image`: the container image `ctrace:local`, built without a registry.
//!
//! The release binary is linked against glibc, so the image is a rootfs holding the binary,
//! the shared libraries `ldd` lists for it and the dynamic loader, plus the directories the
//! runtimes mount over: `tar | docker import`, as the lab builds `busybox:local`.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::util::{capture, say, TempDir};

/// The image's name, as docs/deploy.md and deploy/kubernetes/daemonset.yaml use it.
pub const IMAGE: &str = "ctrace:local";

/// Where the binary is in the image.
const BIN_IN_IMAGE: &str = "usr/local/bin/ctrace";

/// Builds the release binary, then the image; prints the image's name and size.
pub fn image() -> Result<()> {
    let bin = crate::build(true)?;
    let size = build_image(&bin)?;
    println!("{IMAGE} {size} bytes ({:.1} MiB)", size as f64 / 1048576.0);
    Ok(())
}

/// Builds [`IMAGE`] from `bin` into Docker; returns its size in bytes.
pub fn build_image(bin: &Path) -> Result<u64> {
    let tmp = TempDir::new("ctrace-image")?;
    let root = tmp.path().join("rootfs");
    build_rootfs(bin, &root)?;

    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "--owner=0", "--group=0", "-c", "."]);
    let mut import = Command::new("docker");
    import.args([
        "import",
        "--change",
        "ENTRYPOINT [\"/usr/local/bin/ctrace\"]",
        "--change",
        "CMD [\"agent\", \"--docker-socket\", \"/run/docker.sock\", \"--output\", \"-\", \
         \"--metrics-addr\", \"0.0.0.0:9464\"]",
        "--change",
        "EXPOSE 9464/tcp",
        "--change",
        "LABEL org.opencontainers.image.title=ctrace",
        "-",
        IMAGE,
    ]);
    crate::util::pipe_into_import(&mut tar, &mut import, IMAGE)?;
    let size =
        capture(Command::new("docker").args(["image", "inspect", "-f", "{{.Size}}", IMAGE]))?;
    let size: u64 = size
        .trim()
        .parse()
        .with_context(|| format!("docker image inspect printed {size:?} as the size"))?;
    say!(
        "image: built {IMAGE}: {size} bytes ({:.1} MiB)",
        size as f64 / 1048576.0
    );
    Ok(size)
}

/// The rootfs: the binary, its libraries and loader at their host paths, and empty
/// directories for the runtime's mounts and the journal.
fn build_rootfs(bin: &Path, root: &Path) -> Result<()> {
    say!("image: making a rootfs in {}", root.display());
    for dir in [
        "usr/local/bin",
        "etc",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "var/lib/ctrace",
    ] {
        let dir = root.join(dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(
        root.join("var/lib/ctrace"),
        fs::Permissions::from_mode(0o700),
    )?;
    copy_into(bin, &root.join(BIN_IN_IMAGE), 0o755)?;
    for lib in shared_libraries(bin)? {
        let rel = lib.strip_prefix("/").unwrap_or(&lib);
        copy_into(&lib, &root.join(rel), 0o755)?;
    }
    Ok(())
}

/// Copies `from` (following symbolic links) to `to`, creating `to`'s directory.
fn copy_into(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The libraries and the loader `ldd` lists for `bin`, by the paths the loader looks them up
/// at (the vDSO has no file).
fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out =
        capture(Command::new("ldd").arg(bin)).with_context(|| format!("ldd {}", bin.display()))?;
    let libs = parse_ldd(&out);
    if !libs
        .iter()
        .any(|l| l.to_string_lossy().contains("ld-linux"))
    {
        bail!(
            "ldd {} lists no dynamic loader (a static binary needs none, but this one is \
             expected to be linked against glibc):\n{out}",
            bin.display()
        );
    }
    Ok(libs)
}

fn parse_ldd(out: &str) -> Vec<PathBuf> {
    out.lines()
        .filter_map(|line| {
            let line = line.trim();
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or, for the loader,
            // `/lib64/ld-linux-x86-64.so.2 (0x...)`.
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line,
            };
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f27)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f27)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f27)\n";
        assert_eq!(
            parse_ldd(out),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }
}
