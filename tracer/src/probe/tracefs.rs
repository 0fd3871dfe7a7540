//! tracefs: making sure it is mounted, and reading tracepoint `format` files, the stable ABI
//! of classic tracepoints, so that field offsets are never compiled in.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

pub const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// Where the tracing events live, mounting tracefs at `/sys/kernel/tracing` when it is not
/// there. Returns the events directory and whether this call mounted it.
pub fn ensure_mounted() -> Result<(PathBuf, bool), String> {
    for root in [TRACEFS, DEBUGFS_TRACING] {
        let events = Path::new(root).join("events");
        if events.is_dir() {
            return Ok((events, false));
        }
    }
    let target = std::ffi::CString::new(TRACEFS).expect("static path");
    let fstype = std::ffi::CString::new("tracefs").expect("static string");
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(format!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed: {err} \
             (mount it with `mount -t tracefs tracefs {TRACEFS}`)"
        ));
    }
    let events = Path::new(TRACEFS).join("events");
    if events.is_dir() {
        Ok((events, true))
    } else {
        Err(format!(
            "mounted tracefs at {TRACEFS} but it has no events/ directory"
        ))
    }
}

/// One field of a tracepoint record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub offset: u16,
    pub size: u16,
}

/// Fields of one tracepoint, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Format {
    pub fields: HashMap<String, Field>,
}

impl Format {
    /// Offset of `name` if it exists with one of the accepted sizes.
    pub fn offset(&self, name: &str, sizes: &[u16]) -> Option<u16> {
        self.fields
            .get(name)
            .filter(|f| sizes.contains(&f.size))
            .map(|f| f.offset)
    }
}

/// Parse a tracefs `format` file. Lines look like
/// `\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;`.
/// Lines that do not parse are skipped.
pub fn parse_format(text: &str) -> Format {
    let mut fields = HashMap::new();
    for line in text.lines() {
        let mut decl = None;
        let mut offset = None;
        let mut size = None;
        for part in line.split(';') {
            let part = part.trim();
            if let Some(d) = part.strip_prefix("field:") {
                decl = Some(d);
            } else if let Some(o) = part.strip_prefix("offset:") {
                offset = o.trim().parse::<u16>().ok();
            } else if let Some(s) = part.strip_prefix("size:") {
                size = s.trim().parse::<u16>().ok();
            }
        }
        let (Some(decl), Some(offset), Some(size)) = (decl, offset, size) else {
            continue;
        };
        if let Some(name) = field_name(decl) {
            fields.insert(name.to_owned(), Field { offset, size });
        }
    }
    Format { fields }
}

/// The identifier a C declaration declares: `char comm[16]` → `comm`,
/// `__data_loc char[] filename` → `filename`, `const struct cred * cred` → `cred`.
fn field_name(decl: &str) -> Option<&str> {
    let decl = decl.trim();
    let decl = match decl.find('[') {
        // `char comm[16]`: the name precedes the brackets; `char[] filename`: it follows them.
        Some(i) if decl[i..].contains(']') && decl[decl.rfind(']')? + 1..].trim().is_empty() => {
            &decl[..i]
        }
        _ => decl,
    };
    let name = decl
        .rsplit(|c: char| c.is_whitespace() || c == '*' || c == ']')
        .find(|s| !s.is_empty())?;
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then_some(name)
}

/// Read and parse `<events>/<category>/<name>/format`; `None` when the tracepoint does not
/// exist on this kernel.
pub fn read_format(events: &Path, category: &str, name: &str) -> Option<Format> {
    let text = std::fs::read_to_string(events.join(category).join(name).join("format")).ok()?;
    Some(parse_format(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: &str = "name: sched_process_exec
ID: 312
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:pid_t old_pid;\toffset:16;\tsize:4;\tsigned:1;

print fmt: \"filename=%s pid=%d old_pid=%d\", __get_str(filename), REC->pid, REC->old_pid
";

    #[test]
    fn parses_exec_format() {
        let f = parse_format(EXEC);
        assert_eq!(f.offset("filename", &[4]), Some(8));
        assert_eq!(f.offset("pid", &[4]), Some(12));
        assert_eq!(f.offset("old_pid", &[4]), Some(16));
        assert_eq!(f.offset("common_pid", &[4]), Some(4));
        assert_eq!(f.offset("pid", &[8]), None, "size mismatch is absent");
        assert_eq!(f.offset("nope", &[4]), None);
    }

    #[test]
    fn declarations() {
        assert_eq!(field_name("char comm[16]"), Some("comm"));
        assert_eq!(field_name("__data_loc char[] filename"), Some("filename"));
        assert_eq!(field_name("const struct cred * cred"), Some("cred"));
        assert_eq!(
            field_name("struct user_namespace *target_ns"),
            Some("target_ns")
        );
        assert_eq!(field_name("unsigned long total_vm"), Some("total_vm"));
        assert_eq!(field_name("bool group_dead"), Some("group_dead"));
        assert_eq!(field_name(""), None);
        assert_eq!(field_name("int a-b"), None);
    }

    #[test]
    fn garbage_is_skipped() {
        let f =
            parse_format("field:int x;offset:zz;size:4;\nfield:int;offset:1;size:1\n\u{0}\u{ffff}");
        assert!(f.fields.len() <= 1);
        let f = parse_format("field:int y;\toffset:99999999;\tsize:4;");
        assert!(f.fields.is_empty());
    }
}
