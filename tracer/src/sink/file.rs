//! NDJSON to a file with size-based rotation, for log shippers that tail files.
//!
//! - created `0600`, opened with `O_NOFOLLOW`: a symlink planted at the path is refused;
//! - a line is written whole, with one `write`, and rotation happens only between lines, so no
//!   line is ever torn across two files;
//! - `reopen` (on SIGHUP) closes and reopens the path, for external rotation tools.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

/// Where lines go: stdout or a rotating file.
pub trait LineSink {
    fn write_line(&mut self, line: &str) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    /// Reopen the destination (SIGHUP). A no-op for stdout.
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Nowhere: the agent without `--output` (its records go to the journal only).
pub struct Discard;

impl LineSink for Discard {
    fn write_line(&mut self, _line: &str) -> io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Buffered stdout.
pub struct Stdout(io::BufWriter<io::Stdout>);

impl Stdout {
    pub fn new() -> Self {
        Self(io::BufWriter::new(io::stdout()))
    }
}

impl Default for Stdout {
    fn default() -> Self {
        Self::new()
    }
}

impl LineSink for Stdout {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        self.0.write_all(line.as_bytes())?;
        self.0.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A file rotated when the next line would take it past `max_size`: `path` → `path.1` →
/// ... → `path.<keep>`, the oldest dropped.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    keep: u32,
    buf: Vec<u8>,
}

fn open(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is a symbolic link; refusing to follow it",
                        path.display()
                    ),
                )
            } else {
                io::Error::new(e.kind(), format!("{}: {e}", path.display()))
            }
        })?;
    let ty = file.metadata()?.file_type();
    if !(ty.is_file() || ty.is_fifo() || ty.is_char_device()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

impl RotatingFile {
    /// Open (creating it `0600`) or fail with a message naming the path.
    pub fn open(path: &Path, max_size: Option<u64>, keep: u32) -> io::Result<Self> {
        let file = open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            max_size: max_size.filter(|&m| m > 0),
            keep,
            buf: Vec::new(),
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            fs::remove_file(&self.path)?;
        } else {
            let _ = fs::remove_file(self.rotated(self.keep));
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            fs::rename(&self.path, self.rotated(1))?;
        }
        self.file = open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl LineSink for RotatingFile {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + len > max {
                self.rotate()?;
            }
        }
        self.buf.clear();
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        self.file.write_all(&self.buf)?;
        self.size += len;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.file = open(&self.path)?;
        self.size = self.file.metadata()?.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ctrace-file-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn rotates_between_lines_and_keeps_n() {
        let d = tmp("rotate");
        let p = d.join("events.ndjson");
        let mut f = RotatingFile::open(&p, Some(100), 2).unwrap();
        for i in 0..20 {
            f.write_line(&format!("{{\"n\":{i},\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}}"))
                .unwrap();
        }
        f.flush().unwrap();
        let mut lines = 0;
        for path in [
            p.clone(),
            d.join("events.ndjson.1"),
            d.join("events.ndjson.2"),
        ] {
            let text = fs::read_to_string(&path).unwrap();
            assert!(
                text.len() <= 100,
                "{} has {} bytes",
                path.display(),
                text.len()
            );
            for l in text.lines() {
                let v: serde_json::Value = serde_json::from_str(l).expect("whole lines only");
                assert!(v["n"].is_u64());
                lines += 1;
            }
        }
        assert!(!d.join("events.ndjson.3").exists());
        // The newest lines are kept: 20 written, the current and two rotated files hold the
        // most recent ones.
        assert!(lines >= 6);
        let newest = fs::read_to_string(&p).unwrap();
        assert!(newest.contains("\"n\":19"));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn created_0600_and_refuses_symlinks() {
        let d = tmp("perm");
        let p = d.join("out.ndjson");
        RotatingFile::open(&p, None, 1).unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let target = d.join("target");
        fs::write(&target, b"").unwrap();
        let link = d.join("link.ndjson");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = RotatingFile::open(&link, None, 1)
            .err()
            .expect("symlink refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(
            RotatingFile::open(&d, None, 1).is_err(),
            "a directory is refused"
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn reopen_follows_external_rotation() {
        let d = tmp("reopen");
        let p = d.join("out.ndjson");
        let mut f = RotatingFile::open(&p, None, 1).unwrap();
        f.write_line("{\"a\":1}").unwrap();
        fs::rename(&p, d.join("moved")).unwrap();
        f.reopen().unwrap();
        f.write_line("{\"a\":2}").unwrap();
        f.flush().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\"a\":2}\n");
        assert_eq!(fs::read_to_string(d.join("moved")).unwrap(), "{\"a\":1}\n");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn unwritable_path_names_the_path() {
        let err = RotatingFile::open(Path::new("/nonexistent-dir/x.ndjson"), None, 1)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("/nonexistent-dir/x.ndjson"),
            "{err}"
        );
    }
}
