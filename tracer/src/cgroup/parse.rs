//! What the cgroup parsers share: the one error type, and the one parser of flat keyed files
//! (`key value` per line: `cpu.stat`, `memory.stat`, `memory.events`, `memory.oom_control`).
//! Pure; no input makes them panic.

use std::collections::BTreeMap;

/// Longest piece of offending input kept in a [`ParseError`].
pub(crate) const MAX_QUOTED: usize = 60;

/// Why the content of a cgroup file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The file was empty (or only whitespace).
    #[error("empty file")]
    Empty,
    /// A value that should have been a number was not.
    #[error("not a number: {0:?}")]
    NotANumber(String),
    /// A number outside what the kernel writes (e.g. a zero period).
    #[error("invalid value {value:?}: {why}")]
    Invalid {
        /// The offending text.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A line that does not have the expected shape.
    #[error("line {line}: unexpected {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// A key that appears twice.
    #[error("duplicate key {0:?}")]
    Duplicate(String),
    /// None of the keys this file must have.
    #[error("none of the expected keys")]
    NoKnownKeys,
}

pub(crate) fn quoted(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_QUOTED).collect();
    if s.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}

/// One number token (`Empty` when there is none).
pub(crate) fn number(t: &str) -> Result<u64, ParseError> {
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    t.parse().map_err(|_| ParseError::NotANumber(quoted(t)))
}

/// A file holding one count (`memory.current`, `pids.current`, ...).
pub fn parse_count(text: &str) -> Result<u64, ParseError> {
    number(text.trim())
}

pub(crate) fn single_token(text: &str) -> Result<&str, ParseError> {
    let mut tokens = text.split_whitespace();
    let first = tokens.next().ok_or(ParseError::Empty)?;
    if tokens.next().is_some() {
        return Err(ParseError::BadLine {
            line: 1,
            text: quoted(text.trim()),
        });
    }
    Ok(first)
}

/// The lines of a flat keyed file: (1-based line number, key, its value token, or
/// [`ParseError::BadLine`] when the line has no value or more than one). Blank lines are
/// skipped.
pub fn flat_keyed(text: &str) -> impl Iterator<Item = (usize, &str, Result<&str, ParseError>)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let mut tokens = line.split_whitespace();
        let key = tokens.next()?;
        let value = match (tokens.next(), tokens.next()) {
            (Some(value), None) => Ok(value),
            _ => Err(ParseError::BadLine {
                line: i + 1,
                text: quoted(line.trim()),
            }),
        };
        Some((i + 1, key, value))
    })
}

/// Every key with a number (`memory.events`, `memory.oom_control`, `memory.stat`); lines
/// that are not `key number` are skipped, a repeated key keeps its last value.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    flat_keyed(text)
        .filter_map(|(_, k, v)| Some((k.to_owned(), number(v.ok()?).ok()?)))
        .collect()
}

/// The values of `keys`, strictly: a known key must carry exactly one unsigned number and
/// appear once; unknown keys are skipped whatever their value, so new kernel keys do not
/// break the parser. At least one known key must be present.
pub fn parse_flat_keyed_keys<const N: usize>(
    text: &str,
    keys: [&str; N],
) -> Result<[Option<u64>; N], ParseError> {
    let mut out = [None; N];
    let mut found = false;
    for (_, key, value) in flat_keyed(text) {
        let Some(slot) = keys.iter().position(|k| *k == key) else {
            continue;
        };
        let value = value?;
        if out[slot].is_some() {
            return Err(ParseError::Duplicate(key.to_owned()));
        }
        out[slot] = Some(number(value)?);
        found = true;
    }
    if !found {
        return Err(if text.trim().is_empty() {
            ParseError::Empty
        } else {
            ParseError::NoKnownKeys
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files() {
        let ev = parse_flat_keyed("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\nbad\nx y\n");
        assert_eq!((ev["max"], ev["oom"], ev["oom_kill"]), (12, 1, 1));
        assert!(!ev.contains_key("x") && !ev.contains_key("bad"));
        assert_eq!(
            parse_flat_keyed_keys("a 1\nb x y\n\nc 3\n", ["a", "c"]),
            Ok([Some(1), Some(3)])
        );
        assert!(matches!(
            parse_flat_keyed_keys("a 1\nc 3 4\n", ["a", "c"]),
            Err(ParseError::BadLine { line: 2, .. })
        ));
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("3\n"), Ok(3));
        assert!(parse_count("\n").is_err());
        let long = "x".repeat(100);
        let ParseError::NotANumber(q) = parse_count(&long).unwrap_err() else {
            panic!()
        };
        assert_eq!(q.chars().count(), MAX_QUOTED + 1);
    }
}
