//! Turning kernel boot-time nanoseconds into wall-clock RFC 3339 timestamps.

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

/// Civil date from days since 1970-01-01 (proleptic Gregorian; Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-11-29T18:40:01.123456789Z`.
pub fn rfc3339_ns(unix_ns: i128) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000) as i64;
    let nanos = unix_ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// `18:40:01.123456` (UTC), for the console.
pub fn time_of_day_us(unix_ns: i128) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000) as i64;
    let micros = unix_ns.rem_euclid(1_000_000_000) / 1000;
    let sod = secs.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}.{micros:06}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        // 2026-11-29T18:33:01.5Z
        let t = 1_795_977_181_500_000_000i128;
        assert_eq!(rfc3339_ns(t), "2026-11-29T18:33:01.500000000Z");
        assert_eq!(time_of_day_us(t), "18:33:01.500000");
        assert_eq!(
            rfc3339_ns(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(rfc3339_ns(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn boot_offset() {
        let c = BootClock::fixed(1_000);
        assert_eq!(c.unix_ns(5), 1_005);
        let live = BootClock::new();
        let now = live.unix_ns(BootClock::boot_now_ns());
        assert!(now > 1_700_000_000_000_000_000, "clock is sane");
    }
}
