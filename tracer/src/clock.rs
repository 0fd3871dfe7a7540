//! Wall-clock time, on [`jiff`]: kernel boot-time stamps turned into unix nanoseconds
//! ([`BootClock`]), RFC 3339 written ([`rfc3339_ns`], [`utc_ms`], [`utc_seconds`],
//! [`time_of_day_us`]) and read ([`parse_rfc3339`] for stored and runtime times,
//! [`parse_time_arg`] and [`parse_time`] for `--since`/`--until`). Every date in ctrace goes
//! through here; the calendar arithmetic is jiff's.

use std::time::Duration;

use jiff::{civil::DateTime, tz::Offset, Timestamp};

/// Offset between CLOCK_REALTIME and CLOCK_BOOTTIME, taken once at start.
#[derive(Debug, Clone, Copy)]
pub struct BootClock {
    /// Realtime ns at boot (may be negative for clocks set before 1970; saturates at 0).
    realtime_at_boot_ns: i128,
}

fn now_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl BootClock {
    pub fn new() -> Self {
        let boot = now_ns(libc::CLOCK_BOOTTIME);
        let real = now_ns(libc::CLOCK_REALTIME);
        Self {
            realtime_at_boot_ns: real - boot,
        }
    }

    /// A clock for tests: boot happened at `realtime_at_boot_ns`.
    pub fn fixed(realtime_at_boot_ns: i128) -> Self {
        Self {
            realtime_at_boot_ns,
        }
    }

    /// Unix nanoseconds of a boot-time stamp.
    pub fn unix_ns(&self, boot_ns: u64) -> i128 {
        self.realtime_at_boot_ns + i128::from(boot_ns)
    }

    pub fn boot_now_ns() -> u64 {
        u64::try_from(now_ns(libc::CLOCK_BOOTTIME)).unwrap_or(0)
    }
}

impl Default for BootClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Now, unix ns (the real-time clock; `i64::MAX` past 2262, 0 before 1970).
pub fn now_unix_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------
// Writing.

/// The UTC civil time of `unix_ns`, clamped to jiff's range (years -9999 to 9999, far
/// beyond any unix ns an `i64` or a boot clock holds).
fn utc(unix_ns: i128) -> DateTime {
    let ts = Timestamp::from_nanosecond(unix_ns).unwrap_or(if unix_ns < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    Offset::UTC.to_datetime(ts)
}

/// `2026-11-29T18:40:01.123456789Z`: RFC 3339 in UTC with nanoseconds, as in the NDJSON
/// records.
pub fn rfc3339_ns(unix_ns: impl Into<i128>) -> String {
    let unix_ns = unix_ns.into();
    if let Some(b) = rfc3339_ns_ascii(unix_ns) {
        // ASCII digits and separators.
        return String::from_utf8_lossy(&b).into_owned();
    }
    let t = utc(unix_ns);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.subsec_nanosecond()
    )
}

/// [`rfc3339_ns`] as its bytes, digits put in place rather than formatted (every record has
/// one); `None` for years before 0 (not written in 4 digits).
pub fn rfc3339_ns_ascii(unix_ns: i128) -> Option<[u8; 30]> {
    let t = utc(unix_ns);
    let (Ok(year @ 0..=9999), Ok(ns)) = (
        u32::try_from(t.year()),
        u32::try_from(t.subsec_nanosecond()),
    ) else {
        return None;
    };
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    let small = |v: i8| u32::try_from(v).unwrap_or(0);
    put_digits(&mut b[0..4], year);
    put_digits(&mut b[5..7], small(t.month()));
    put_digits(&mut b[8..10], small(t.day()));
    put_digits(&mut b[11..13], small(t.hour()));
    put_digits(&mut b[14..16], small(t.minute()));
    put_digits(&mut b[17..19], small(t.second()));
    put_digits(&mut b[20..29], ns);
    Some(b)
}

/// `n`'s last decimal digits in `out`, zero-padded.
fn put_digits(out: &mut [u8], mut n: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `2026-11-29 18:40:01.123` (UTC, milliseconds truncated), for `history` and `postmortem`.
pub fn utc_ms(unix_ns: impl Into<i128>) -> String {
    let t = utc(unix_ns.into());
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.subsec_nanosecond() / 1_000_000
    )
}

/// `2026-11-29 18:40:01 UTC` (seconds truncated), for `inspect`.
pub fn utc_seconds(unix_ns: impl Into<i128>) -> String {
    let t = utc(unix_ns.into());
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `18:40:01.123456` (UTC, microseconds truncated), for the console.
pub fn time_of_day_us(unix_ns: impl Into<i128>) -> String {
    let t = utc(unix_ns.into());
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        t.hour(),
        t.minute(),
        t.second(),
        t.subsec_nanosecond() / 1000
    )
}

// ---------------------------------------------------------------------------------------
// Reading.

/// The pieces of a written time, before jiff checks the calendar.
#[derive(Debug, Default)]
struct Fields {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    /// 60 (a leap second) reads as 59, as jiff's own parser does.
    second: u32,
    nanos: u32,
    /// East of UTC.
    offset_secs: i32,
}

impl Fields {
    /// Unix ns, `None` for a day or time that does not exist (`2026-02-29`, `24:00`).
    fn unix_ns(&self) -> Option<i128> {
        let small = |v: u32| i8::try_from(v).ok();
        let dt = DateTime::new(
            i16::try_from(self.year).ok()?,
            small(self.month)?,
            small(self.day)?,
            small(self.hour)?,
            small(self.minute)?,
            small(self.second.min(59))?,
            i32::try_from(self.nanos).ok()?,
        )
        .ok()?;
        let ts = Offset::from_seconds(self.offset_secs)
            .ok()?
            .to_timestamp(dt)
            .ok()?;
        Some(ts.as_nanosecond())
    }
}

/// All ASCII digits, at least one, as a number (`None` past `u32`).
fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Exactly `n` ASCII digits.
fn digits_n(s: &str, n: usize) -> Option<u32> {
    (s.len() == n).then(|| digits(s)).flatten()
}

/// A fraction of a second after the dot: one digit or more, the first nine kept.
fn fraction(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nine: String = s.chars().chain(std::iter::repeat('0')).take(9).collect();
    nine.parse().ok()
}

/// `YYYY-MM-DD` and what follows it.
fn date(s: &str, f: &mut Fields) -> Option<()> {
    let d = s.get(..10)?;
    let b = d.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    f.year = digits_n(&d[..4], 4)?;
    f.month = digits_n(&d[5..7], 2)?;
    f.day = digits_n(&d[8..10], 2)?;
    Some(())
}

/// `Z`, `z`, `±HH:MM` or (when `compact`) `±HHMM`, as seconds east of UTC.
fn offset(z: &str, compact: bool) -> Option<i32> {
    if matches!(z, "Z" | "z") {
        return Some(0);
    }
    let sign = match z.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hm = &z[1..];
    let (h, m) = match hm.split_once(':') {
        Some(hm) => hm,
        None if compact && hm.len() == 4 => (hm.get(..2)?, hm.get(2..)?),
        None => return None,
    };
    let (h, m) = (digits_n(h, 2)?, digits_n(m, 2)?);
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * i32::try_from(h * 3600 + m * 60).ok()?)
}

/// RFC 3339 as runtimes and records write it: `2026-11-29T18:38:13.262143086Z`,
/// `2026-11-29T19:38:13.5+01:00` (`T`, `t` or a space between date and time; seconds and an
/// offset of `Z` or `±HH:MM` required; a fraction of any length, cut to nanoseconds) to unix
/// nanoseconds. `None` for anything else, including days that do not exist.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let s = s.trim();
    let mut f = Fields::default();
    date(s, &mut f)?;
    let b = s.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    f.hour = digits_n(s.get(11..13)?, 2)?;
    f.minute = digits_n(s.get(14..16)?, 2)?;
    f.second = digits_n(s.get(17..19)?, 2)?;
    if f.hour > 23 || f.minute > 59 || f.second > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        f.nanos = fraction(&r[..end])?;
        rest = &r[end..];
    }
    f.offset_secs = offset(rest, false)?;
    f.unix_ns()
}

/// A time as a person types it on the command line, to unix ns:
/// `YYYY-MM-DD[(T|t| )HH:MM[:SS[.fraction]]][Z|±HH:MM|±HHMM]`, UTC when no offset is
/// given (`2026-11-29`, `2026-11-29 18:40`, `2026-11-29T19:40:00.5+01:00`). `None` for
/// anything else, days that do not exist, and times outside the `i64` ns range.
pub fn parse_time_arg(s: &str) -> Option<i64> {
    let s = s.trim();
    let mut f = Fields::default();
    date(s, &mut f)?;
    let mut rest = s.get(10..)?;
    if let Some(r) = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix('t'))
        .or_else(|| rest.strip_prefix(' '))
    {
        let end = r.find(['Z', 'z', '+', '-']).unwrap_or(r.len());
        let (time, zone) = r.split_at(end);
        let (hms, frac) = match time.split_once('.') {
            Some((hms, frac)) => (hms, Some(frac)),
            None => (time, None),
        };
        let mut parts = hms.split(':');
        f.hour = digits(parts.next()?)?;
        f.minute = digits(parts.next()?)?;
        f.second = match parts.next() {
            Some(x) => digits(x)?,
            None if frac.is_none() => 0,
            None => return None,
        };
        if parts.next().is_some() || f.hour > 23 || f.minute > 59 || f.second > 60 {
            return None;
        }
        if let Some(frac) = frac {
            f.nanos = fraction(frac)?;
        }
        rest = zone;
    }
    f.offset_secs = if rest.is_empty() {
        0
    } else {
        offset(rest, true)?
    };
    i64::try_from(f.unix_ns()?).ok()
}

/// A point in time given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// This long before now.
    Ago(Duration),
    /// This time, unix ns.
    At(i64),
}

impl TimeSpec {
    /// Unix ns, relative to `now_ns` for durations.
    pub fn resolve(self, now_ns: i64) -> i64 {
        match self {
            Self::Ago(d) => now_ns.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Self::At(t) => t,
        }
    }
}

/// `1h`, `30m`, `7d` (that long ago, as [`crate::units::parse_duration`] reads it) or a time
/// as [`parse_time_arg`] reads it (`2026-11-29T18:40:00Z`, `2026-11-29 18:40:00.5+01:00`,
/// `2026-11-29`; without an offset, UTC). For `--since` and `--until`.
pub fn parse_time(s: &str) -> Result<TimeSpec, String> {
    let t = s.trim();
    let looks_like_date = t.len() >= 10
        && t.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && t.as_bytes()[4] == b'-';
    if looks_like_date {
        return parse_time_arg(t)
            .map(TimeSpec::At)
            .ok_or_else(|| format!("{s:?} is not an RFC 3339 time (e.g. 2026-11-29T18:40:00Z)"));
    }
    crate::units::parse_duration(t)
        .map(TimeSpec::Ago)
        .map_err(|_| {
            format!(
                "{s:?} is neither a duration (30m, 1h, 7d) nor an RFC 3339 time (2026-11-29T18:40:00Z)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;
    /// 2026-11-29T18:40:00Z.
    const T0: i64 = 1_795_977_600 * SEC;

    #[test]
    fn formats() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        // 2026-11-29T18:33:01.5Z
        let t = 1_795_977_181_500_000_000i128;
        assert_eq!(rfc3339_ns(t), "2026-11-29T18:33:01.500000000Z");
        assert_eq!(time_of_day_us(t), "18:33:01.500000");
        assert_eq!(
            rfc3339_ns(951_782_400_000_000_000i64),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(rfc3339_ns(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn formats_in_every_width() {
        let t = T0 + 123_456_789;
        assert_eq!(rfc3339_ns(t), "2026-11-29T18:40:00.123456789Z");
        assert_eq!(utc_ms(t), "2026-11-29 18:40:00.123");
        assert_eq!(utc_seconds(t), "2026-11-29 18:40:00 UTC");
        assert_eq!(time_of_day_us(t), "18:40:00.123456");
        // Truncated, never rounded up into the next second.
        assert_eq!(utc_ms(T0 - 1), "2026-11-29 18:39:59.999");
        assert_eq!(utc_ms(T0 + 1_500_000), "2026-11-29 18:40:00.001");
        assert_eq!(utc_seconds(T0 - 1), "2026-11-29 18:39:59 UTC");
        assert_eq!(time_of_day_us(-1), "23:59:59.999999");
        // Every integer type that holds unix ns.
        assert_eq!(rfc3339_ns(0i64), rfc3339_ns(0u64));
        assert_eq!(utc_seconds(0), "1970-01-01 00:00:00 UTC");
        // The ends of i64 and u64 ns.
        assert_eq!(rfc3339_ns(i64::MAX), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(rfc3339_ns(i64::MIN), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(rfc3339_ns(u64::MAX), "2554-07-21T23:34:33.709551615Z");
        // Past jiff's range (years ±9999): clamped, not a panic.
        assert!(rfc3339_ns(i128::MAX).starts_with("9999-12-3"));
        assert!(rfc3339_ns(i128::MIN).starts_with("-9999-01-0"));
        // Leap days.
        assert_eq!(
            utc_ms(parse_time_arg("2024-02-29").unwrap()),
            "2024-02-29 00:00:00.000"
        );
        assert_eq!(
            rfc3339_ns(parse_rfc3339("2100-02-28T23:59:59.999999999Z").unwrap() + 1),
            "2100-03-01T00:00:00.000000000Z"
        );
    }

    proptest::proptest! {
        /// The digits put in place are what `format!` writes.
        #[test]
        fn rfc3339_ns_is_the_formatted_one(ns in proptest::prelude::any::<i64>(), far in -400_000_000_000_000_000_000i128..400_000_000_000_000_000_000) {
            for v in [i128::from(ns), far] {
                let t = utc(v);
                let want = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
                    t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second(),
                    t.subsec_nanosecond()
                );
                proptest::prop_assert_eq!(rfc3339_ns(v), want);
            }
        }
    }

    #[test]
    fn boot_offset() {
        let c = BootClock::fixed(1_000);
        assert_eq!(c.unix_ns(5), 1_005);
        let live = BootClock::new();
        let now = live.unix_ns(BootClock::boot_now_ns());
        assert!(now > 1_700_000_000_000_000_000, "clock is sane");
        assert!(now_unix_ns() > 1_700_000_000 * SEC);
    }

    #[test]
    fn rfc3339_as_written_by_runtimes() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-11-29T18:38:13.262143086Z").map(rfc3339_ns),
            Some("2026-11-29T18:38:13.262143086Z".to_owned())
        );
        assert_eq!(
            parse_rfc3339("2026-11-29T19:38:13.5+01:00").map(rfc3339_ns),
            Some("2026-11-29T18:38:13.500000000Z".to_owned())
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T23:30:00-01:30").map(rfc3339_ns),
            Some("2024-03-01T01:00:00.000000000Z".to_owned())
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1_000_000_000));
        // Lower case, a space, surrounding blanks, more than nine digits (cut).
        assert_eq!(parse_rfc3339(" 2026-11-29t18:40:00z\n"), Some(T0.into()));
        assert_eq!(parse_rfc3339("2026-11-29 18:40:00Z"), Some(T0.into()));
        assert_eq!(
            parse_rfc3339("2026-11-29T18:40:00.1234567899Z"),
            Some(i128::from(T0) + 123_456_789)
        );
        assert_eq!(parse_rfc3339("2026-11-29T18:40:00-00:00"), Some(T0.into()));
        assert_eq!(parse_rfc3339("2026-11-30T18:10:00+23:30"), Some(T0.into()));
        // A leap second reads as the second before it.
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            parse_rfc3339("2016-12-31T23:59:59Z")
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(951_782_400 * i128::from(SEC))
        );
        for bad in [
            "",
            "2026-11-29",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-11-29T18:38:13",
            "2026-11-29T18:38:13.Z",
            "2026-11-29T25:00:00Z",
            "2026-11-29T18:60:00Z",
            "2026-11-29T18:38:13+0100",
            "2026-11-29T18:38:13+01",
            "2026-11-29T18:38:13+24:00",
            "2026-11-29T18:38:13Zjunk",
            "2026-11-29T18:38Z",
            "2026-11-29X18:38:13Z",
            "２026-11-29T18:38:13Z",
            "2026-11-29T18:38:1３Z",
            "2026-11-29T18:38:13.５Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_typed_on_the_command_line() {
        let at = parse_time_arg;
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(at("2026-11-29T18:40:00Z"), Some(T0));
        assert_eq!(at("2026-11-29 18:40:00"), Some(T0));
        assert_eq!(at("2026-11-29t18:40z"), Some(T0));
        assert_eq!(at("2026-11-29T19:40:00+01:00"), Some(T0));
        assert_eq!(at("2026-11-29T17:10:00-0130"), Some(T0));
        assert_eq!(at("2026-11-29T20:10:00+0130"), Some(T0));
        assert_eq!(at("2026-11-29T18:40:00.25Z"), Some(T0 + SEC / 4));
        assert_eq!(at("2026-11-29T18:40:00.000000001Z"), Some(T0 + 1));
        assert_eq!(at("2026-11-29"), Some(T0 - (18 * 3600 + 40 * 60) * SEC));
        assert_eq!(
            at("2026-11-29+01:00"),
            Some(T0 - (19 * 3600 + 40 * 60) * SEC)
        );
        assert_eq!(at("2000-02-29T00:00:00Z"), Some(951_782_400 * SEC));
        assert_eq!(at("2024-02-29"), Some(1_709_164_800 * SEC));
        assert_eq!(at("1969-12-31T23:59:59Z"), Some(-SEC));
        assert_eq!(at("2016-12-31T23:59:60Z"), at("2016-12-31T23:59:59Z"));
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-11-31",
            "2026-11-29T24:00",
            "2026-11-29T18",
            "2026-11-29T18:40:00+1",
            "2026-11-29T18:40:00+01",
            "2026-11-29T18:40:00Zjunk",
            "2026-11-29T18:40:.5",
            "2026-11-29T18:40.5",
            "2026-1-029",
            // Past the i64 ns range of the journal.
            "2263-01-01",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_and_until() {
        assert_eq!(
            parse_time("30m"),
            Ok(TimeSpec::Ago(Duration::from_secs(1800)))
        );
        assert_eq!(
            parse_time(" 1h "),
            Ok(TimeSpec::Ago(Duration::from_secs(3600)))
        );
        assert_eq!(parse_time("2026-11-29T18:40:00Z"), Ok(TimeSpec::At(T0)));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-11-29T99:00").is_err());
        assert!(parse_time("2026-02-29")
            .unwrap_err()
            .contains("not an RFC 3339 time"));
        assert_eq!(TimeSpec::Ago(Duration::from_secs(1)).resolve(T0), T0 - SEC);
        assert_eq!(TimeSpec::At(5).resolve(T0), 5);
        assert_eq!(
            TimeSpec::Ago(Duration::MAX).resolve(T0),
            T0.saturating_sub(i64::MAX)
        );
    }
}
