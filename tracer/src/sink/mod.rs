//! Turning events into output: NDJSON records and console lines.

pub mod console;
pub mod escape;
pub mod file;
pub mod filter;
pub mod json;

use crate::{clock::BootClock, probe::KindCounters};

/// What every formatter needs besides the event.
#[derive(Debug, Clone)]
pub struct Context {
    pub host: String,
    pub clock: BootClock,
}

impl Context {
    pub fn new() -> Self {
        Self {
            host: hostname(),
            clock: BootClock::new(),
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

fn hostname() -> String {
    crate::host::proc::hostname()
}

/// Where records were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossSite {
    /// The kernel found the ring buffer full.
    KernelRingbufFull,
    /// Userspace could not decode a record.
    UserspaceDecode,
}

impl LossSite {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KernelRingbufFull => "kernel_ringbuf_full",
            Self::UserspaceDecode => "userspace_decode",
        }
    }
}

/// A gap in the stream: `count` records of `kind` lost at `site` since the previous report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    pub kind: &'static str,
    pub count: u64,
    pub site: LossSite,
    /// Cumulative total at this site for this kind.
    pub total: u64,
}

/// Tracks what has been reported so that each loss is reported exactly once.
#[derive(Debug, Default)]
pub struct LossTracker {
    reported_kernel: [u64; tracer_common::kind::COUNT],
    /// Records userspace could not decode, per kind their header names (0: none known).
    pub decode_errors: [u64; tracer_common::kind::COUNT],
    reported_decode: [u64; tracer_common::kind::COUNT],
}

impl LossTracker {
    /// New losses since the last call.
    pub fn delta(&mut self, counters: &[KindCounters; tracer_common::kind::COUNT]) -> Vec<Loss> {
        let mut out = Vec::new();
        for (k, c) in counters.iter().enumerate() {
            let new = c.lost_ringbuf_full.saturating_sub(self.reported_kernel[k]);
            if new > 0 {
                self.reported_kernel[k] = c.lost_ringbuf_full;
                out.push(Loss {
                    kind: crate::event::kind_name(k as u16),
                    count: new,
                    site: LossSite::KernelRingbufFull,
                    total: c.lost_ringbuf_full,
                });
            }
        }
        for (k, &total) in self.decode_errors.iter().enumerate() {
            let new = total.saturating_sub(self.reported_decode[k]);
            if new > 0 {
                self.reported_decode[k] = total;
                out.push(Loss {
                    kind: crate::event::kind_name(k as u16),
                    count: new,
                    site: LossSite::UserspaceDecode,
                    total,
                });
            }
        }
        out
    }

    /// Total lost so far (reported or not), kernel and userspace.
    pub fn total(counters: &[KindCounters; tracer_common::kind::COUNT], decode_errors: u64) -> u64 {
        counters.iter().map(|c| c.lost_ringbuf_full).sum::<u64>() + decode_errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_reported_once() {
        let mut t = LossTracker::default();
        let mut c = [KindCounters::default(); tracer_common::kind::COUNT];
        assert!(t.delta(&c).is_empty());
        c[1].lost_ringbuf_full = 5;
        let d = t.delta(&c);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].kind, d[0].count, d[0].total), ("exec", 5, 5));
        assert!(t.delta(&c).is_empty());
        c[1].lost_ringbuf_full = 7;
        t.decode_errors[4] = 2; // signal records that did not decode
        t.decode_errors[0] = 1; // a record without a known kind
        let d = t.delta(&c);
        assert_eq!(d.iter().map(|l| l.count).collect::<Vec<_>>(), vec![2, 1, 2]);
        assert_eq!(
            (d[1].kind, d[1].site),
            ("unknown", LossSite::UserspaceDecode)
        );
        assert_eq!(
            (d[2].kind, d[2].site),
            ("signal", LossSite::UserspaceDecode)
        );
        assert!(t.delta(&c).is_empty(), "once");
        assert_eq!(LossTracker::total(&c, 3), 10);
    }
}
