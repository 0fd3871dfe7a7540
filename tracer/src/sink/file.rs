//! NDJSON to a file with size-based rotation, for log shippers that tail files.
//!
//! - created `0600`, opened with `O_NOFOLLOW`: a symlink planted at the path is refused;
//! - an existing regular file is set to `0600` on every open (`fchmod`), rotation and reopen
//!   included; one owned by another user is refused rather than taken over (ctrace would
//!   make that user's file its own log, and the owner could chmod it open again);
//! - a regular file with more than one hard link is refused: a link planted in the output
//!   directory would point ctrace's records (and their mode change) at another file;
//! - anything but a regular file is refused, with a message naming the flag that allows FIFOs
//!   and character devices ([`Special::Allow`], `--output-special`): records meant for a
//!   file must not go to a reader nobody checked. Allowed, a FIFO is opened `O_NONBLOCK`, so
//!   one with no reader fails at once with "no reader on FIFO" instead of hanging ctrace at
//!   start; once opened (a reader exists), `O_NONBLOCK` is cleared and writes block like
//!   writes to a pipe on stdout;
//! - a line is written whole, with one `write`, and rotation happens only between lines, so no
//!   line is ever torn across two files;
//! - `reopen` (on SIGHUP) closes and reopens the path, for external rotation tools.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _},
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

/// Whether `--output` may be a FIFO or a character device (`--output-special`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Refuse,
    Allow,
}

/// A file rotated when the next line would take it past `max_size`: `path` → `path.1` →
/// ... → `path.<keep>`, the oldest dropped.
pub struct RotatingFile {
    path: PathBuf,
    special: Special,
    file: File,
    size: u64,
    max_size: Option<u64>,
    keep: u32,
    buf: Vec<u8>,
}

/// What a file that is not a regular one is, in words.
fn what(ty: fs::FileType) -> &'static str {
    if ty.is_fifo() {
        "a FIFO"
    } else if ty.is_char_device() {
        "a character device"
    } else if ty.is_block_device() {
        "a block device"
    } else if ty.is_socket() {
        "a socket"
    } else if ty.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Whether a file of type `ty` may be an output: a regular file, or with [`Special::Allow`] a
/// FIFO or a character device.
fn allowed(ty: fs::FileType, special: Special) -> bool {
    ty.is_file() || (special == Special::Allow && (ty.is_fifo() || ty.is_char_device()))
}

fn refused(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {what}; --output writes to regular files (--output-special allows a FIFO \
             or a character device)",
            path.display()
        ),
    )
}

fn open(path: &Path, special: Special) -> io::Result<File> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    // Refused before opening when it can be told: opening a device can act on it, and a
    // socket fails to open the way a FIFO with no reader does. (What is opened is judged again
    // below, in case the path changed in between; a symbolic link is refused by the open.)
    if let Ok(m) = fs::symlink_metadata(path) {
        let ty = m.file_type();
        if !ty.is_symlink() && !allowed(ty, special) {
            return Err(refused(path, what(ty)));
        }
    }
    // O_NONBLOCK: opening a FIFO for writing blocks until a reader opens it; non-blocking, it
    // fails at once (ENXIO) instead, and ctrace says so rather than hang before tracing.
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symbolic link; refusing to follow it",
                    path.display()
                ),
            ),
            Some(libc::ENXIO) if special == Special::Refuse => refused(path, "a FIFO"),
            Some(libc::ENXIO) => io::Error::new(
                io::ErrorKind::NotConnected,
                format!(
                    "{}: no reader on FIFO (start the reader first)",
                    path.display()
                ),
            ),
            _ => named(e),
        })?;
    // Checked on the open file, not the path: what was opened is what is judged.
    let meta = file.metadata().map_err(named)?;
    let ty = meta.file_type();
    if ty.is_file() {
        if meta.nlink() > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} has {} hard links; refusing to write to a hard-linked file",
                    path.display(),
                    meta.nlink()
                ),
            ));
        }
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to uid {}, not to ctrace's uid {euid}; refusing to write \
                     to another user's file",
                    path.display(),
                    meta.uid()
                ),
            ));
        }
        // An existing file keeps its mode on open: records are private whoever made it.
        if meta.permissions().mode() & 0o7777 != 0o600 {
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(named)?;
        }
    } else if !allowed(ty, special) {
        return Err(refused(path, what(ty)));
    }
    // A FIFO with a reader (or a device) is then written like stdout: blocking, so a slow
    // reader slows ctrace down (the ring buffer counts what that loses) rather than a write
    // failing half-way with EAGAIN.
    clear_nonblock(&file).map_err(named)?;
    Ok(file)
}

fn clear_nonblock(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on an fd this File owns, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl RotatingFile {
    /// Open (creating it, or setting it, `0600`) or fail with a message naming the path.
    pub fn open(
        path: &Path,
        max_size: Option<u64>,
        keep: u32,
        special: Special,
    ) -> io::Result<Self> {
        let file = open(path, special)?;
        let meta = file.metadata()?;
        Ok(Self {
            path: path.to_owned(),
            special,
            file,
            size: meta.len(),
            // A FIFO or a device has no size to rotate on, and is never renamed away.
            max_size: max_size.filter(|&m| m > 0 && meta.is_file()),
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
        self.file = open(&self.path, self.special)?;
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
        self.file = open(&self.path, self.special)?;
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
        let mut f = RotatingFile::open(&p, Some(100), 2, Special::Refuse).unwrap();
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
        RotatingFile::open(&p, None, 1, Special::Refuse).unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let target = d.join("target");
        fs::write(&target, b"").unwrap();
        let link = d.join("link.ndjson");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = RotatingFile::open(&link, None, 1, Special::Refuse)
            .err()
            .expect("symlink refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(
            RotatingFile::open(&d, None, 1, Special::Refuse).is_err(),
            "a directory is refused"
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn reopen_follows_external_rotation() {
        let d = tmp("reopen");
        let p = d.join("out.ndjson");
        let mut f = RotatingFile::open(&p, None, 1, Special::Refuse).unwrap();
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
    fn an_existing_file_is_set_to_0600_on_open_and_after_rotation() {
        let d = tmp("existing");
        let p = d.join("out.ndjson");
        fs::write(&p, b"{\"old\":1}\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let mut f = RotatingFile::open(&p, Some(40), 1, Special::Refuse).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&p), 0o600, "an existing 0644 file is made 0600");
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "{\"old\":1}\n",
            "and appended to, not truncated"
        );
        // Rotation: the new file is 0600 too, whatever the umask.
        for i in 0..5 {
            f.write_line(&format!("{{\"n\":{i},\"pad\":\"xxxxxxxxxxxxxxxx\"}}"))
                .unwrap();
        }
        assert!(d.join("out.ndjson.1").exists(), "rotated");
        assert_eq!(mode(&p), 0o600);
        // Reopen (SIGHUP) after someone loosened it.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
        f.reopen().unwrap();
        assert_eq!(mode(&p), 0o600);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn hard_links_are_refused() {
        let d = tmp("hardlink");
        let target = d.join("precious");
        fs::write(&target, b"keep\n").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        let link = d.join("out.ndjson");
        fs::hard_link(&target, &link).unwrap();
        let err = RotatingFile::open(&link, None, 1, Special::Refuse)
            .err()
            .expect("hard link refused");
        assert!(
            err.to_string().contains("hard link") && err.to_string().contains("out.ndjson"),
            "{err}"
        );
        // Untouched: neither written nor chmod-ed.
        assert_eq!(fs::read(&target).unwrap(), b"keep\n");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Alone again, the file is fine.
        fs::remove_file(&target).unwrap();
        RotatingFile::open(&link, None, 1, Special::Refuse).unwrap();
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn another_users_file_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return; // only root can give a file away
        }
        let d = tmp("owner");
        let p = d.join("out.ndjson");
        fs::write(&p, b"").unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        let err = RotatingFile::open(&p, None, 1, Special::Refuse)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("uid 65534"), "{err}");
        let _ = fs::remove_dir_all(&d);
    }

    fn mkfifo(p: &Path) {
        use std::os::unix::ffi::OsStrExt as _;
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn a_fifo_without_reader_fails_at_once_and_with_one_blocks_like_a_pipe() {
        use std::io::Read as _;
        let d = tmp("fifo");
        let p = d.join("pipe");
        mkfifo(&p);
        let start = std::time::Instant::now();
        let err = RotatingFile::open(&p, None, 1, Special::Allow)
            .err()
            .expect("no reader: refused");
        assert!(err.to_string().contains("no reader on FIFO"), "{err}");
        assert!(err.to_string().contains("pipe"), "names the path: {err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        // With a reader (opened non-blocking, so this test does not wait either).
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .unwrap();
        let mut f = RotatingFile::open(&p, Some(10), 1, Special::Allow).unwrap();
        {
            use std::os::fd::AsRawFd as _;
            // SAFETY: F_GETFL on an fd the RotatingFile owns.
            let flags = unsafe { libc::fcntl(f.file.as_raw_fd(), libc::F_GETFL) };
            assert_eq!(flags & libc::O_NONBLOCK, 0, "writes block, like to a pipe");
        }
        // A FIFO is never rotated away (it has no size), whatever --rotate-size says.
        for _ in 0..3 {
            f.write_line("{\"a\":1}").unwrap();
        }
        f.flush().unwrap();
        let mut buf = [0u8; 256];
        let n = reader.read(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "{\"a\":1}\n".repeat(3)
        );
        assert!(p.exists() && !d.join("pipe.1").exists());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn fifos_and_devices_are_refused_unless_allowed_and_the_message_names_the_flag() {
        let d = tmp("special");
        let p = d.join("pipe");
        mkfifo(&p);
        for (path, what) in [
            (p.as_path(), "a FIFO"),
            (Path::new("/dev/null"), "a character device"),
        ] {
            let err = RotatingFile::open(path, None, 1, Special::Refuse)
                .err()
                .expect("refused");
            let msg = err.to_string();
            assert!(msg.contains(what), "{msg}");
            assert!(msg.contains("--output-special"), "names the flag: {msg}");
            assert!(
                msg.contains(&path.display().to_string()),
                "names the path: {msg}"
            );
        }
        // Allowed: a device opens; a FIFO still needs a reader.
        RotatingFile::open(Path::new("/dev/null"), Some(10), 1, Special::Allow).unwrap();
        let err = RotatingFile::open(&p, None, 1, Special::Allow)
            .err()
            .expect("no reader");
        assert!(err.to_string().contains("no reader on FIFO"), "{err}");
        // A directory or a socket is never an output.
        let err = RotatingFile::open(&d, None, 1, Special::Allow)
            .err()
            .expect("a directory");
        assert!(err.to_string().contains("a directory"), "{err}");
        let sock = d.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let err = RotatingFile::open(&sock, None, 1, Special::Allow)
            .err()
            .expect("a socket");
        assert!(err.to_string().contains("a socket"), "{err}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn unwritable_path_names_the_path() {
        let err = RotatingFile::open(
            Path::new("/nonexistent-dir/x.ndjson"),
            None,
            1,
            Special::Refuse,
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("/nonexistent-dir/x.ndjson"),
            "{err}"
        );
    }
}
