//! The one result model of the cgroup layer, and the reads behind it.
//!
//! Each value is a [`Reading`]: what the file says, "no limit" because the file says so (or,
//! on v2, because the controller is not enabled for the cgroup, so no limit can be set), or
//! unknown with the reason. A missing, unreadable or garbled file is never shown as
//! "unlimited".

use std::{
    fmt::Display,
    fs, io,
    path::{Path, PathBuf},
};

use serde::{Serialize, Serializer};

use super::{mounts::join, parse::ParseError, Mounts};

/// One value from a cgroup file.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading<T> {
    /// The file holds this value.
    Value(T),
    /// The file says there is no limit (`max`, `-1`, v1's page-rounded `i64::MAX`).
    Unlimited,
    /// cgroup v2: the controller is not enabled for the cgroup (not in its
    /// `cgroup.controllers`), so the file does not exist and the cgroup has no such limit.
    ControllerOff,
    /// Could not be read or understood: why.
    Unknown(String),
}

impl<T> Reading<T> {
    /// The value, if the file gave one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Reading::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Why the value is unknown; `None` when it is known (a value or no limit).
    pub fn unknown(&self) -> Option<&str> {
        match self {
            Reading::Unknown(why) => Some(why),
            _ => None,
        }
    }

    /// The same reading with the value, if any, converted by `f`.
    pub fn map<U>(&self, f: impl FnOnce(&T) -> U) -> Reading<U> {
        match self {
            Reading::Value(v) => Reading::Value(f(v)),
            Reading::Unlimited => Reading::Unlimited,
            Reading::ControllerOff => Reading::ControllerOff,
            Reading::Unknown(why) => Reading::Unknown(why.clone()),
        }
    }

    /// A limit for a comparison table: the value, `unlimited`, or `unknown (why)`.
    pub fn show_limit(&self, show: impl FnOnce(&T) -> String) -> String {
        match self {
            Reading::Value(v) => show(v),
            Reading::Unlimited | Reading::ControllerOff => "unlimited".to_owned(),
            Reading::Unknown(why) => format!("unknown ({why})"),
        }
    }
}

/// JSON: the value, or `null` (no limit or unknown; [`Resources`] says which).
impl<T: Serialize> Serialize for Reading<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reading::Value(v) => s.serialize_some(v),
            _ => s.serialize_none(),
        }
    }
}

/// The directory of one controller of a cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupDir {
    V1(PathBuf),
    V2(PathBuf),
}

impl CgroupDir {
    /// Where `controller` of a cgroup is: its v1 hierarchy when one is mounted (hybrid hosts
    /// bind it there), else the unified one. `v1_path` and `v2_path` are the cgroup's paths
    /// inside the hierarchies (`/docker/<id>`). `Err`: why there is none.
    pub fn locate(
        mounts: &Mounts,
        controller: &str,
        v1_path: Option<&str>,
        v2_path: Option<&str>,
    ) -> Result<CgroupDir, String> {
        let join = |root: &Path, path: Option<&str>| {
            let p = path.ok_or_else(|| "the container's cgroup path is unknown".to_owned())?;
            join(root, p).ok_or_else(|| format!("cgroup path {p:?} leaves the hierarchy"))
        };
        if let Some(root) = mounts.v1.get(controller) {
            return join(root, v1_path).map(CgroupDir::V1);
        }
        match &mounts.v2 {
            Some(root) => join(root, v2_path).map(CgroupDir::V2),
            None => Err(format!(
                "no cgroup hierarchy with the {controller} controller is mounted"
            )),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            CgroupDir::V1(d) | CgroupDir::V2(d) => d,
        }
    }
}

/// Why a file gave no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Absent {
    /// v2: the controller is not enabled for the cgroup.
    ControllerOff(String),
    Unreadable(String),
}

impl Absent {
    /// For a limit: no controller means no limit.
    pub(crate) fn limit<T>(self) -> Reading<T> {
        match self {
            Absent::ControllerOff(_) => Reading::ControllerOff,
            Absent::Unreadable(why) => Reading::Unknown(why),
        }
    }

    /// For usage: no controller means not counted there.
    pub(crate) fn usage<T>(self) -> Reading<T> {
        match self {
            Absent::ControllerOff(why) | Absent::Unreadable(why) => Reading::Unknown(why),
        }
    }
}

/// Why `path` could not be read, in words.
pub fn read_error(path: &Path, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        io::ErrorKind::PermissionDenied => {
            format!("cannot read {}: permission denied", path.display())
        }
        io::ErrorKind::InvalidData => format!("{} is not text", path.display()),
        _ => format!("cannot read {}: {e}", path.display()),
    }
}

/// The text of `file` of `controller` in `dir`.
pub(crate) fn read(dir: &CgroupDir, controller: &str, file: &str) -> Result<String, Absent> {
    let d = dir.path();
    let path = d.join(file);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !d.is_dir() {
                return Err(Absent::Unreadable(format!(
                    "cgroup directory {} does not exist",
                    d.display()
                )));
            }
            if let CgroupDir::V2(_) = dir {
                if let Ok(list) = fs::read_to_string(d.join("cgroup.controllers")) {
                    if !list.split_whitespace().any(|c| c == controller) {
                        return Err(Absent::ControllerOff(format!(
                            "{} does not exist: the {controller} controller is not enabled \
                             for the cgroup",
                            path.display()
                        )));
                    }
                }
            }
            Err(Absent::Unreadable(read_error(&path, &e)))
        }
        Err(e) => Err(Absent::Unreadable(read_error(&path, &e))),
    }
}

pub(crate) fn garbled(dir: &CgroupDir, file: &str, e: impl Display) -> String {
    format!("{}: {e}", dir.path().join(file).display())
}

/// A limit file: parsed by `parse`, `None` = no limit.
pub(crate) fn limit<T>(
    dir: &CgroupDir,
    controller: &str,
    file: &str,
    parse: impl FnOnce(&str) -> Result<Option<T>, ParseError>,
) -> Reading<T> {
    match read(dir, controller, file) {
        Ok(text) => match parse(&text) {
            Ok(Some(v)) => Reading::Value(v),
            Ok(None) => Reading::Unlimited,
            Err(e) => Reading::Unknown(garbled(dir, file, e)),
        },
        Err(a) => a.limit(),
    }
}

pub(crate) fn count(dir: &CgroupDir, controller: &str, file: &str) -> Reading<u64> {
    match read(dir, controller, file) {
        Ok(text) => match super::parse::parse_count(&text) {
            Ok(v) => Reading::Value(v),
            Err(e) => Reading::Unknown(garbled(dir, file, e)),
        },
        Err(a) => a.usage(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_in_words() {
        let p = Path::new("/sys/fs/cgroup/x/memory.max");
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(
            read_error(p, &e(libc::EACCES)),
            "cannot read /sys/fs/cgroup/x/memory.max: permission denied"
        );
        assert_eq!(
            read_error(p, &e(libc::ENOENT)),
            "/sys/fs/cgroup/x/memory.max does not exist"
        );
        assert!(
            read_error(p, &e(libc::EIO)).starts_with("cannot read /sys/fs/cgroup/x/memory.max: ")
        );
    }
}
