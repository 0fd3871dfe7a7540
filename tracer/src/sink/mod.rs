//! Turning events into output: NDJSON records and console lines.

pub mod console;
mod direct;
pub mod escape;
pub mod file;
pub mod filter;
pub mod json;
mod sorted;

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
    /// Capability checks (not records) that found no `CAP_DEDUP` slot and could not make one.
    KernelCapInsertFailed,
    /// Capability checks (not records) the kernel counted that no record or map read
    /// reported: the tail of a `CAP_DEDUP` slot the LRU evicted before it was read. Known
    /// exactly once the programs are detached and the map read a last time.
    KernelCapSlotEvicted,
}

impl LossSite {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KernelRingbufFull => "kernel_ringbuf_full",
            Self::UserspaceDecode => "userspace_decode",
            Self::KernelCapInsertFailed => "kernel_cap_insert_failed",
            Self::KernelCapSlotEvicted => "kernel_cap_slot_evicted",
        }
    }

    /// What is counted at this site: `records`, or capability `checks`.
    pub fn unit(self) -> &'static str {
        match self {
            Self::KernelRingbufFull | Self::UserspaceDecode => "records",
            Self::KernelCapInsertFailed | Self::KernelCapSlotEvicted => "checks",
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
    /// Capability checks reported lost so far, per site (insert failed, slot evicted).
    reported_cap: [u64; 2],
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

    /// Capability checks newly lost since the last call: `insert_failed` is the kernel's
    /// counter; `unreported` (checks counted in the kernel that no report has), when given,
    /// is only known exactly at the end.
    pub fn cap_delta(&mut self, insert_failed: u64, unreported: Option<u64>) -> Vec<Loss> {
        let mut out = Vec::new();
        let sites = [
            (LossSite::KernelCapInsertFailed, Some(insert_failed)),
            (LossSite::KernelCapSlotEvicted, unreported),
        ];
        for (i, (site, total)) in sites.into_iter().enumerate() {
            let Some(total) = total else { continue };
            let new = total.saturating_sub(self.reported_cap[i]);
            if new > 0 {
                self.reported_cap[i] = total;
                out.push(Loss {
                    kind: crate::event::kind_name(tracer_common::kind::CAPABILITY),
                    count: new,
                    site,
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

    #[test]
    fn capability_checks_lost_reported_once_per_site() {
        let mut t = LossTracker::default();
        assert!(t.cap_delta(0, None).is_empty());
        let d = t.cap_delta(2, None);
        assert_eq!(
            (d[0].kind, d[0].count, d[0].site.unit()),
            ("capability", 2, "checks")
        );
        let d = t.cap_delta(3, Some(7));
        assert_eq!(
            d.iter().map(|l| (l.count, l.site)).collect::<Vec<_>>(),
            vec![
                (1, LossSite::KernelCapInsertFailed),
                (7, LossSite::KernelCapSlotEvicted)
            ]
        );
        assert!(t.cap_delta(3, Some(7)).is_empty(), "once");
    }
}
