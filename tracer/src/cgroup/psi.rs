//! Pressure stall information (`cpu.pressure`, and the same format of `memory.pressure` and
//! `io.pressure`): the parser, and [`read_pressure`] for callers to whom a missing or
//! malformed file is only "no figure".

use std::path::Path;

use super::parse::{number, quoted, ParseError};

/// The PSI file `file` of the cgroup directory `dir`, boxed as records carry it; `None` when
/// it is missing (PSI off, a v1 directory, a cgroup gone) or unreadable.
pub fn read_pressure(dir: &Path, file: &str) -> Option<Box<Pressure>> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    parse_pressure(&text).ok().map(Box::new)
}

/// One line of a PSI file.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PressureLine {
    /// Share of wall time stalled over the last 10 s, in percent.
    pub avg10: Option<f64>,
    /// Same over 60 s.
    pub avg60: Option<f64>,
    /// Same over 300 s.
    pub avg300: Option<f64>,
    /// Total stall time, in µs.
    pub total_us: u64,
}

/// A PSI file (`cpu.pressure`): `some` always, `full` on 5.13+ kernels.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pressure {
    /// Some tasks of the cgroup were runnable but not running.
    pub some: PressureLine,
    /// All non-idle tasks were stalled at once.
    pub full: Option<PressureLine>,
}

fn parse_pressure_line(line_no: usize, rest: &str) -> Result<PressureLine, ParseError> {
    let mut line = PressureLine::default();
    let mut total = None;
    for field in rest.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            return Err(ParseError::BadLine {
                line: line_no,
                text: quoted(field),
            });
        };
        let avg = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| ParseError::NotANumber(quoted(value)))
        };
        match key {
            "avg10" => line.avg10 = Some(avg()?),
            "avg60" => line.avg60 = Some(avg()?),
            "avg300" => line.avg300 = Some(avg()?),
            "total" => total = Some(number(value)?),
            _ => {}
        }
    }
    line.total_us = total.ok_or(ParseError::BadLine {
        line: line_no,
        text: quoted(rest.trim()),
    })?;
    Ok(line)
}

/// Parses a PSI file such as `cpu.pressure`.
pub fn parse_pressure(text: &str) -> Result<Pressure, ParseError> {
    let mut some = None;
    let mut full = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let slot = match kind {
            "some" => &mut some,
            "full" => &mut full,
            _ => {
                return Err(ParseError::BadLine {
                    line: i + 1,
                    text: quoted(line),
                })
            }
        };
        if slot.is_some() {
            return Err(ParseError::Duplicate(kind.to_owned()));
        }
        *slot = Some(parse_pressure_line(i + 1, rest)?);
    }
    match (some, full) {
        (Some(some), full) => Ok(Pressure { some, full }),
        (None, _) if text.trim().is_empty() => Err(ParseError::Empty),
        (None, _) => Err(ParseError::NoKnownKeys),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../tests/fixtures/throttle/", $name))
        };
    }

    const V2_PRESSURE: &str = fixture!("v2-6.1-cpumax1000-cpu.pressure");
    const HYBRID_PRESSURE: &str = fixture!("v2-hybrid-6.18-cpus0.01-cpu.pressure");

    #[test]
    fn a_pressure_file_reads_as_its_figures_and_anything_else_as_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("memory.pressure"),
            "some avg10=1.50 avg60=0.00 avg300=0.00 total=10\n\
             full avg10=0.25 avg60=0.00 avg300=0.00 total=4\n",
        )
        .unwrap();
        let p = read_pressure(dir.path(), "memory.pressure").expect("figures");
        assert_eq!(
            (p.some.avg10, p.full.map(|f| f.total_us)),
            (Some(1.5), Some(4))
        );
        assert_eq!(read_pressure(dir.path(), "cpu.pressure"), None, "missing");
        std::fs::write(dir.path().join("io.pressure"), "not psi\n").unwrap();
        assert_eq!(read_pressure(dir.path(), "io.pressure"), None, "malformed");
    }

    #[test]
    fn pressure_fixtures_and_garbage() {
        let p = parse_pressure(V2_PRESSURE).unwrap();
        assert_eq!(p.some.total_us, 4_682_790);
        assert_eq!(p.some.avg10, Some(30.65));
        assert_eq!(p.full.map(|f| f.total_us), Some(4_682_790));
        let h = parse_pressure(HYBRID_PRESSURE).unwrap();
        assert_eq!(h.some.avg10, Some(98.03));
        assert_eq!(h.some.total_us, 139_855_613);
        // Before 5.13, cpu.pressure had no "full" line.
        let old = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        assert_eq!(old.full, None);
        assert_eq!(parse_pressure(""), Err(ParseError::Empty));
        assert!(parse_pressure("full avg10=0.00 total=1\n").is_err());
        assert!(parse_pressure("some avg10=0.00\n").is_err());
        assert!(parse_pressure("some total=x\n").is_err());
        assert!(parse_pressure("some avg10=nan total=1\n").is_err());
        assert!(parse_pressure("some total=1\nsome total=2\n").is_err());
        assert!(parse_pressure("other total=1\n").is_err());
        assert!(parse_pressure("some total\n").is_err());
    }
}
