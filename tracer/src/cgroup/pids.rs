//! The pids controller's files (`pids.max`, `pids.current`), the same on v1 and v2.

use super::{
    parse::{number, ParseError},
    reading::{count, limit},
    CgroupDir, Reading,
};

/// `pids.max`: `None` for `max`.
pub fn parse_pids_max(text: &str) -> Result<Option<u64>, ParseError> {
    match text.trim() {
        "max" => Ok(None),
        t => number(t).map(Some),
    }
}

/// Pids limit and count.
pub fn read_pids(dir: &CgroupDir) -> (Reading<u64>, Reading<u64>) {
    (
        limit(dir, "pids", "pids.max", parse_pids_max),
        count(dir, "pids", "pids.current"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_max() {
        assert_eq!(parse_pids_max("max\n"), Ok(None));
        assert_eq!(parse_pids_max("50\n"), Ok(Some(50)));
        assert!(parse_pids_max("maximum").is_err());
    }
}
