//! Stateful steps between the ring buffer and the sinks: decoding with error accounting,
//! turning the kernel's cumulative capability totals into exact per-record counts, and filling
//! in signal targets and OOM victims the kernel side could not read, from the process table.

use tracer_common::{kind, CapKey, CapState, SigRun};

use crate::event::{decode, Body, Capability, Event, Task};
use crate::proctable::{PidMap, ProcSource, ProcTable};

type CapSlot = (u64, u32, u32, i32, u32); // cgroup id, tgid, cap, ret, cpu

/// What a kernel-originated SIGKILL told about its target.
#[derive(Debug, Clone, Copy)]
struct KilledTask {
    tgid: u32,
    cgroup_id: u64,
    boot_ns: u64,
}

/// How long a SIGKILL target is remembered for an `oom:mark_victim` that follows it.
const KILL_MEMORY_NS: u64 = 10_000_000_000;

/// Where OOM victims' process and cgroup, read by the kernel at the OOM, can be looked up by
/// thread id (the `OOM_VICTIMS` map).
pub trait VictimSource {
    /// The last OOM victim with this thread id.
    fn victim(&self, tid: u32) -> Option<KernelVictim>;
}

/// An OOM victim as the kernel read it from the task at the OOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelVictim {
    pub tgid: u32,
    pub cgroup_id: u64,
    /// When it was read (boot clock).
    pub boot_ns: u64,
    pub memcg: Option<crate::event::MemcgAtOom>,
    /// The OOM killer's own context, where a hook on `oom_kill_process()` read it.
    pub context: Option<crate::event::OomContext>,
}

/// How far apart the kernel's reading of a victim and its OOM record may be (the same
/// tracepoint hit; more means a stale entry of a reused thread id).
const VICTIM_SAME_OOM_NS: u64 = 1_000_000_000;

/// A [`VictimSource`] in the pipeline.
pub struct Victims(pub Box<dyn VictimSource>);

impl std::fmt::Debug for Victims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Victims")
    }
}

#[derive(Debug, Default)]
pub struct Pipeline {
    /// Recent kernel SIGKILL targets by thread id, for OOM victim attribution.
    kernel_kills: PidMap<u32, KilledTask>,
    /// What was reported per capability key and CPU.
    caps: PidMap<CapSlot, CapSeen>,
    /// Map reads of the de-duplication map so far (see [`CapSeen::scan`]).
    cap_scans: u64,
    /// Per CPU, the highest slot generation forgotten to make room (see [`Pipeline::advance`]).
    cap_forgotten: PidMap<u32, u32>,
    /// Capability checks the records passed on stand for (the sum of their `count`s).
    pub cap_reported: u64,
    /// Checks of records that were not counted because their slot's reports were forgotten
    /// (its earlier reports unknown): left to `unreported`, never counted twice.
    pub cap_forgotten_records: u64,
    /// Per CPU, the run of folded signals its records reported last.
    sig_runs: PidMap<u32, SigRunSeen>,
    /// Tails of runs that a later record ended, passed on with the next flush.
    sig_tails: Vec<Event>,
    /// Folded signals the records passed on stand for beyond one each.
    pub sig_repeats: u64,
    /// Signals of runs whose every record was lost (the ring was full): known only from the
    /// total the next run's first record carries.
    pub sig_unattributed: u64,
    /// Processes and cgroups of tasks, from every record (fork records included).
    pub procs: ProcTable,
    /// OOM victims as the kernel read them, when it does.
    pub victims: Option<Victims>,
    /// Records that failed to decode (counted, skipped).
    pub decode_errors: u64,
    /// The same, per kind the record's header names (index 0: no known kind).
    pub decode_errors_by_kind: [u64; kind::COUNT],
    /// Records decoded, per kind.
    pub delivered: [u64; kind::COUNT],
}

/// What userspace reported of one kernel slot (key and CPU).
#[derive(Debug, Clone, Copy)]
struct CapSeen {
    /// The slot's incarnation (0: not known, records of older versions).
    generation: u32,
    /// Cumulative total reported so far.
    last: u64,
    /// When (boot clock) the last report was.
    last_ns: u64,
    /// The incarnation before, if the slot was evicted and started again: a record of it may
    /// still be in the ring.
    before: Option<(u32, u64)>,
    /// The last map read that found the slot (or a record of it came after): slots gone from
    /// the map are the only ones that may be forgotten.
    scan: u64,
}

/// What userspace reported of the run of identical signals one CPU counts (tracer-common
/// `SigRun`).
#[derive(Debug, Clone)]
struct SigRunSeen {
    run: u32,
    /// Its cumulative total reported so far.
    reported: u64,
    /// When (boot clock) the last signal reported was sent.
    last_ns: u64,
    /// The run's first record: what a report of its tail repeats, with a count.
    first: Event,
}

impl SigRunSeen {
    /// A record of `count` more signals of the run, up to the one sent at `last_ns`.
    fn tail(&mut self, count: u64, last_ns: u64) -> Event {
        let mut ev = self.first.clone();
        ev.boot_ns = last_ns;
        if let Body::Signal(s) = &mut ev.body {
            s.fold.count = count;
            s.fold.span_ns = last_ns.saturating_sub(self.last_ns);
        }
        self.reported += count;
        self.last_ns = last_ns;
        ev
    }
}

/// Cap on remembered capability slots. The kernel holds at most `CAP_DEDUP`'s 16384 keys on
/// each CPU; past this, only slots the last map read did not find are forgotten.
const MAX_CAP_SLOTS: usize = 1 << 16;

/// Whether generation `a` came after `b` (per CPU, increasing, wrapping).
fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Pipeline {
    /// A pipeline whose process table knows only what records tell it (tests, replays).
    pub fn new() -> Self {
        Self::default()
    }

    /// A pipeline whose process table also reads this host's `/proc` for tasks older than
    /// ctrace.
    pub fn live() -> Self {
        Self {
            procs: ProcTable::new(Some(Box::new(ProcSource::host()))),
            ..Self::default()
        }
    }

    /// Decode one record; failures are counted, never fatal.
    pub fn ingest(&mut self, buf: &[u8]) -> Option<Event> {
        match decode(buf) {
            Ok(mut ev) => {
                if let Some(d) = self.delivered.get_mut(usize::from(ev.kind)) {
                    *d += 1;
                }
                self.procs.observe(&ev);
                match &mut ev.body {
                    Body::Capability(c) => {
                        let slot = (ev.task.cgroup_id, ev.task.pid, c.cap, c.ret, c.cpu);
                        (c.count, c.span_ns) =
                            self.advance(slot, c.generation, c.total, ev.boot_ns);
                        // Nothing new: a flush read the map between the program's count and
                        // its record (per-CPU values are copied while the program may run),
                        // and reported these checks already. Delivered, but not shown twice.
                        if c.count == 0 {
                            return None;
                        }
                    }
                    Body::Signal(s) => {
                        // The classic tracepoint only names the target thread.
                        if s.target_cgroup_id.is_none() {
                            if let Some(f) = self.procs.lookup(s.target_pid, ev.boot_ns) {
                                s.target_tgid = f.tgid;
                                s.target_cgroup_id = Some(f.cgroup_id);
                            }
                        }
                        if s.sig == 9 && s.code > 0 {
                            if let Some(cgroup_id) = s.target_cgroup_id {
                                self.remember_kill(
                                    s.target_pid,
                                    KilledTask {
                                        tgid: s.target_tgid.unwrap_or(s.target_pid),
                                        cgroup_id,
                                        boot_ns: ev.boot_ns,
                                    },
                                );
                            }
                        }
                    }
                    Body::OomVictim(o) => {
                        // Read from the victim task at the OOM, where the kernel can.
                        if let Some(k) = self
                            .victims
                            .as_ref()
                            .and_then(|v| v.0.victim(o.victim_pid))
                            .filter(|k| ev.boot_ns.abs_diff(k.boot_ns) < VICTIM_SAME_OOM_NS)
                        {
                            o.victim_tgid = Some(k.tgid);
                            o.victim_cgroup_id = Some(k.cgroup_id);
                            o.victim_memcg = k.memcg;
                            o.oom_context = k.context;
                        } else if let Some(k) = self.kernel_kills.get(&o.victim_pid) {
                            if ev.boot_ns.saturating_sub(k.boot_ns) < KILL_MEMORY_NS {
                                o.victim_tgid = Some(k.tgid);
                                o.victim_cgroup_id = Some(k.cgroup_id);
                            }
                        }
                        // The OOM killer's SIGKILL record was lost or not traced.
                        if o.victim_cgroup_id.is_none() {
                            if let Some(f) = self.procs.lookup(o.victim_pid, ev.boot_ns) {
                                o.victim_tgid = f.tgid.or(Some(o.victim_pid));
                                o.victim_cgroup_id = Some(f.cgroup_id);
                            }
                        }
                    }
                    _ => {}
                }
                self.fold_signal(&mut ev).then_some(ev)
            }
            Err(e) => {
                self.decode_errors += 1;
                // The header's kind, when the record is long enough to have one and it is known.
                let k = buf
                    .get(..2)
                    .map(|b| usize::from(u16::from_ne_bytes([b[0], b[1]])))
                    .filter(|&k| k < kind::COUNT)
                    .unwrap_or(0);
                self.decode_errors_by_kind[k] += 1;
                log::debug!("skipping undecodable record: {e}");
                None
            }
        }
    }

    /// Turns a folded signal record's cumulative totals into its count, and keeps the tail of
    /// the run it ended for the next flush. False: the record says nothing new (a flush
    /// reported its signals already).
    fn fold_signal(&mut self, ev: &mut Event) -> bool {
        let Body::Signal(s) = &mut ev.body else {
            return true;
        };
        let f = s.fold;
        if f.run == 0 {
            return true;
        }
        if f.prev_run != 0 {
            match self.sig_runs.remove(&f.cpu) {
                Some(mut seen) if seen.run == f.prev_run => {
                    if f.prev_total > seen.reported {
                        let count = f.prev_total - seen.reported;
                        self.sig_repeats += count;
                        self.sig_tails.push(seen.tail(count, f.prev_last_ns));
                    }
                }
                // The run's records were all lost: its signals are known only as a number.
                _ => self.sig_unattributed += f.prev_total,
            }
        }
        let (count, span_ns) = match self.sig_runs.get_mut(&f.cpu) {
            Some(seen) if seen.run == f.run => {
                let count = f.total.saturating_sub(seen.reported);
                if count == 0 {
                    return false;
                }
                let span = ev.boot_ns.saturating_sub(seen.last_ns);
                (seen.reported, seen.last_ns) = (f.total, ev.boot_ns);
                self.sig_repeats += count - 1;
                (count, span)
            }
            _ => {
                // A run's first record (or its first one that arrived: the count then holds
                // the signals of the lost ones).
                self.sig_repeats += f.total.saturating_sub(1);
                let mut first = ev.clone();
                if let Body::Signal(s) = &mut first.body {
                    s.fold.count = 1;
                }
                self.sig_runs.insert(
                    f.cpu,
                    SigRunSeen {
                        run: f.run,
                        reported: f.total,
                        last_ns: ev.boot_ns,
                        first,
                    },
                );
                (f.total, 0)
            }
        };
        if let Body::Signal(s) = &mut ev.body {
            (s.fold.count, s.fold.span_ns) = (count, span_ns);
        }
        true
    }

    /// Folded signals no record reported yet: the tails of runs a later record ended, and of
    /// runs still counting whose last record is older than `window_ns`, read from the
    /// kernel's `SIG_FOLD` slots (CPU, slot). One record per run, with the count.
    pub fn flush_signals(
        &mut self,
        slots: impl IntoIterator<Item = (u32, SigRun)>,
        now_boot_ns: u64,
        window_ns: u64,
    ) -> Vec<Event> {
        let mut out = std::mem::take(&mut self.sig_tails);
        for (cpu, st) in slots {
            let Some(seen) = self.sig_runs.get_mut(&cpu) else {
                continue;
            };
            // A run the records did not name yet (the slot is read while a new run starts),
            // or nothing new.
            if st.run != seen.run || st.total <= seen.reported {
                continue;
            }
            // A run still going: its next record, due within the window, reports these.
            if now_boot_ns.saturating_sub(st.last_emit_ns) < window_ns {
                continue;
            }
            let count = st.total - seen.reported;
            self.sig_repeats += count;
            out.push(seen.tail(count, st.last_ns));
        }
        out
    }

    fn remember_kill(&mut self, pid: u32, k: KilledTask) {
        if self.kernel_kills.len() >= 4096 {
            self.kernel_kills
                .retain(|_, old| k.boot_ns.saturating_sub(old.boot_ns) < KILL_MEMORY_NS);
        }
        if self.kernel_kills.len() < 4096 {
            self.kernel_kills.insert(pid, k);
        }
    }

    /// (checks since the last report of `slot`, time since it) for a record or map read with
    /// cumulative `total` of incarnation `generation` at `boot_ns`; counted in
    /// [`Pipeline::cap_reported`]. Nothing is counted twice:
    /// - same incarnation: only what is above the last report; a record read after a newer map
    ///   read (`total` below the last) is stale and counts nothing;
    /// - a newer incarnation (the kernel's LRU evicted the slot and it started again): all of
    ///   `total`; the old incarnation's unreported tail is what the kernel's `CHECKS` counter
    ///   has that no report has (`unreported` in the `stats` record);
    /// - the incarnation before: against its own last report;
    /// - generation 0 (records of versions without it): a total below the last is a restart.
    fn advance(&mut self, slot: CapSlot, generation: u32, total: u64, boot_ns: u64) -> (u64, u64) {
        if self.caps.len() >= MAX_CAP_SLOTS && !self.caps.contains_key(&slot) {
            self.forget_gone_slots();
        }
        let scan = self.cap_scans;
        let (count, span) = match self.caps.get_mut(&slot) {
            None => {
                let forgotten = self
                    .cap_forgotten
                    .get(&slot.4)
                    .is_some_and(|&g| generation != 0 && !newer(generation, g));
                if forgotten {
                    // Its reports were forgotten to make room: counting its total again could
                    // count reported checks twice. Not counted here; the kernel's `CHECKS`
                    // still has them, so they show as `unreported`, never silently.
                    self.cap_forgotten_records += 1;
                    return (0, 0);
                }
                if self.caps.len() < MAX_CAP_SLOTS {
                    self.caps.insert(
                        slot,
                        CapSeen {
                            generation,
                            last: total,
                            last_ns: boot_ns,
                            before: None,
                            scan,
                        },
                    );
                }
                (total, 0)
            }
            Some(s) => {
                let span = boot_ns.saturating_sub(s.last_ns);
                s.scan = s.scan.max(scan);
                if generation == s.generation {
                    if total > s.last {
                        let n = total - s.last;
                        (s.last, s.last_ns) = (total, boot_ns);
                        (n, span)
                    } else if generation == 0 && total < s.last {
                        // Without generations a restart cannot be told from a stale record.
                        (s.last, s.last_ns) = (total, boot_ns);
                        (total, span)
                    } else {
                        (0, 0)
                    }
                } else if newer(generation, s.generation) || s.generation == 0 {
                    s.before = Some((s.generation, s.last));
                    (s.generation, s.last, s.last_ns) = (generation, total, boot_ns);
                    (total, span)
                } else {
                    match &mut s.before {
                        Some((g, last)) if *g == generation => {
                            let n = total.saturating_sub(*last);
                            *last = (*last).max(total);
                            (n, 0)
                        }
                        // Two incarnations back, never seen: nothing of it was reported.
                        _ => (total, 0),
                    }
                }
            }
        };
        self.cap_reported += count;
        (count, span)
    }

    /// Makes room: forgets the slots the last map read did not find (evicted in the kernel,
    /// or fully reported and gone); when all are still there (many CPUs), the eighth reported
    /// longest ago. Remembers per CPU the newest generation forgotten, so that a later record
    /// of a forgotten slot is recognised and not counted twice.
    fn forget_gone_slots(&mut self) {
        let scan = self.cap_scans;
        let mut gone: Vec<(CapSlot, u32)> = self
            .caps
            .iter()
            .filter(|(_, s)| s.scan < scan)
            .map(|(k, s)| (*k, s.generation))
            .collect();
        if gone.is_empty() {
            let mut by_age: Vec<_> = self.caps.iter().map(|(k, s)| (s.last_ns, *k)).collect();
            by_age.sort_unstable();
            gone = by_age
                .iter()
                .take(MAX_CAP_SLOTS / 8)
                .map(|(_, k)| (*k, self.caps[k].generation))
                .collect();
        }
        for (slot, generation) in gone {
            self.caps.remove(&slot);
            let g = self.cap_forgotten.entry(slot.4).or_insert(generation);
            if newer(generation, *g) {
                *g = generation;
            }
        }
    }

    /// Checks the kernel counted but no record reported yet (the tail of a burst), read from
    /// the de-duplication map. Emits one synthetic record per key and CPU with the difference.
    /// Only keys whose last record is older than `window_ns` are flushed, so a burst in
    /// progress is reported by the kernel's own next record.
    pub fn flush_caps(
        &mut self,
        states: impl IntoIterator<Item = (CapKey, u32, CapState)>,
        now_boot_ns: u64,
        window_ns: u64,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        self.cap_scans += 1;
        let scan = self.cap_scans;
        for (key, cpu, st) in states {
            let slot = (key.cgroup_id, key.tgid, key.cap, key.ret, cpu);
            if let Some(s) = self.caps.get_mut(&slot) {
                s.scan = scan;
                // Without generations (captures of older versions) a lower total is not
                // taken for a restart here, as those versions did not.
                if st.generation == 0 && s.generation == 0 && st.total <= s.last {
                    continue;
                }
            }
            if st.total == 0 || now_boot_ns.saturating_sub(st.last_emit_ns) < window_ns {
                continue;
            }
            let (count, span_ns) = self.advance(slot, st.generation, st.total, now_boot_ns);
            if count == 0 {
                continue;
            }
            out.push(Event {
                kind: kind::CAPABILITY,
                boot_ns: now_boot_ns,
                task: Task {
                    tid: st.pid,
                    pid: key.tgid,
                    ppid: None,
                    uid: st.uid,
                    cgroup_id: key.cgroup_id,
                    comm: crate::event::c_str(&st.comm),
                },
                body: Body::Capability(Capability {
                    cap: key.cap,
                    ret: key.ret,
                    cpu,
                    generation: st.generation,
                    total: st.total,
                    count,
                    span_ns,
                }),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::{as_bytes, header};
    use tracer_common::CapabilityEvent;

    fn cap_record(total: u64, cpu: u32) -> Vec<u8> {
        cap_record_of(1, total, cpu)
    }

    /// A record of slot incarnation `generation`.
    fn cap_record_of(generation: u32, total: u64, cpu: u32) -> Vec<u8> {
        as_bytes(&CapabilityEvent {
            hdr: header(kind::CAPABILITY, std::mem::size_of::<CapabilityEvent>()),
            cap: 0,
            ret: -1,
            cpu,
            generation,
            total,
        })
    }

    fn count(ev: Option<Event>) -> u64 {
        match ev.expect("decodes").body {
            Body::Capability(c) => c.count,
            _ => panic!("not a capability"),
        }
    }

    #[test]
    fn cumulative_totals_become_counts() {
        let mut p = Pipeline::new();
        assert_eq!(count(p.ingest(&cap_record(1, 0))), 1);
        assert_eq!(count(p.ingest(&cap_record(500, 0))), 499);
        assert_eq!(count(p.ingest(&cap_record(1, 1))), 1, "per CPU");
        assert_eq!(
            count(p.ingest(&cap_record_of(2, 3, 0))),
            3,
            "evicted slot restarts"
        );
        assert_eq!(p.delivered[usize::from(kind::CAPABILITY)], 4);
        assert_eq!(p.cap_reported, 1 + 499 + 1 + 3);
    }

    /// Issue 16: a record read after a flush that reported more (`total` below the last
    /// report) was taken for an eviction, and its whole total counted again.
    #[test]
    fn a_stale_record_is_not_taken_for_an_eviction() {
        let mut p = Pipeline::new();
        assert_eq!(count(p.ingest(&cap_record(1, 0))), 1);
        let (key, st) = map_entry(9);
        let now = header(kind::CAPABILITY, 0).boot_ns + 1_000;
        assert_eq!(p.flush_caps([(key, 0, st)], now, 100).len(), 1);
        assert!(p.ingest(&cap_record(5, 0)).is_none(), "stale, nothing new");
        assert_eq!(count(p.ingest(&cap_record(12, 0))), 3);
        assert_eq!(p.cap_reported, 12);
        // The slot is evicted and starts again; a late record of the old one still counts
        // only what it adds.
        assert_eq!(count(p.ingest(&cap_record_of(2, 2, 0))), 2);
        assert_eq!(count(p.ingest(&cap_record(14, 0))), 2);
        assert!(p.ingest(&cap_record(13, 0)).is_none());
        assert_eq!(count(p.ingest(&cap_record_of(2, 3, 0))), 1);
        assert_eq!(p.cap_reported, 12 + 2 + 2 + 1);
    }

    /// A folded signal record of `run` on CPU 1 at `boot_ns`, with the run before it.
    fn sig_record(run: u32, total: u64, prev: (u32, u64, u64), boot_ns: u64) -> Vec<u8> {
        let mut ev = crate::event::tests::signal_event(15, 1);
        ev.hdr.boot_ns = boot_ns;
        (ev.run, ev.cpu, ev.total) = (run, 1, total);
        (ev.prev_run, ev.prev_total, ev.prev_last_ns) = prev;
        as_bytes(&ev)
    }

    fn fold(ev: &Event) -> (u64, u64, u64) {
        match &ev.body {
            Body::Signal(s) => (s.fold.count, s.fold.span_ns, ev.boot_ns),
            _ => panic!("not a signal"),
        }
    }

    fn slot(run: u32, total: u64, last_emit_ns: u64, last_ns: u64) -> (u32, SigRun) {
        let st = SigRun {
            run,
            total,
            last_emit_ns,
            last_ns,
            ..SigRun::default()
        };
        (1, st)
    }

    /// Every signal of a run is reported exactly once: by the kernel's records (cumulative
    /// totals), by the next run's first record (the old run's final total), or by a reading
    /// of the slot once the run is quiet for a window.
    #[test]
    fn folded_signals_are_each_reported_once() {
        let mut p = Pipeline::new();
        let s = 1_000_000_000;
        let ev = p.ingest(&sig_record(7, 1, (0, 0, 0), 10 * s)).unwrap();
        assert_eq!(
            fold(&ev),
            (1, 0, 10 * s),
            "a run's first record stands for itself"
        );
        let ev = p.ingest(&sig_record(7, 500, (0, 0, 0), 11 * s)).unwrap();
        assert_eq!(
            fold(&ev),
            (499, s, 11 * s),
            "the window's repeats, over its time"
        );
        // A slot reading while the run goes on within the window: left to the kernel.
        assert!(p
            .flush_signals([slot(7, 600, 11 * s, 11 * s + 5)], 11 * s + 10, s)
            .is_empty());
        // A quiet run: its tail comes from the slot, once.
        let tail = p.flush_signals([slot(7, 600, 11 * s, 11 * s + 5)], 12 * s + 1, s);
        assert_eq!(
            tail.iter().map(fold).collect::<Vec<_>>(),
            [(100, 5, 11 * s + 5)]
        );
        assert!(p
            .flush_signals([slot(7, 600, 11 * s, 11 * s + 5)], 13 * s, s)
            .is_empty());
        // The kernel's record of the same signals, read after the slot: nothing new.
        assert!(p.ingest(&sig_record(7, 600, (0, 0, 0), 13 * s)).is_none());
        // Another signal starts run 8 and ends run 7 at 800: 200 more, with the next flush.
        let ev = p
            .ingest(&sig_record(8, 1, (7, 800, 14 * s), 15 * s))
            .unwrap();
        assert_eq!(fold(&ev), (1, 0, 15 * s));
        let tail = p.flush_signals([], 15 * s, s);
        assert_eq!(
            tail.iter().map(fold).collect::<Vec<_>>(),
            [(200, 3 * s - 5, 14 * s)]
        );
        // Beyond the one signal of each of the run's two records.
        assert_eq!(p.sig_repeats, 498 + 100 + 200);
        assert_eq!(p.sig_unattributed, 0);
        // Run 9's records were all lost: run 10 knows only its number of signals.
        p.ingest(&sig_record(10, 1, (9, 42, 16 * s), 17 * s))
            .unwrap();
        assert_eq!(p.sig_unattributed, 42);
        // Run 8 ended unseen with run 9: its tail is unknown, not guessed.
        assert!(p.flush_signals([], 17 * s, 0).is_empty());
        // Not folded: a record of one signal, whatever else came.
        let mut plain = crate::event::tests::signal_event(9, 0);
        plain.hdr.boot_ns = 18 * s;
        assert_eq!(fold(&p.ingest(&as_bytes(&plain)).unwrap()), (1, 0, 18 * s));
    }

    /// Records of versions without generations (captures): a lower total is a restart, as it
    /// was.
    #[test]
    fn records_without_generations_keep_the_old_reading() {
        let mut p = Pipeline::new();
        assert_eq!(count(p.ingest(&cap_record_of(0, 5, 0))), 5);
        assert_eq!(count(p.ingest(&cap_record_of(0, 2, 0))), 2);
    }

    /// Issue 16: clearing every remembered slot at `MAX_CAP_SLOTS` counted reported checks
    /// again. Only slots gone from the map are forgotten, and a late record of one counts
    /// nothing (left to `unreported`).
    #[test]
    fn a_full_table_forgets_only_what_the_kernel_dropped_and_never_counts_twice() {
        let mut p = Pipeline::new();
        let (key, mut st) = map_entry(0);
        let now = header(kind::CAPABILITY, 0).boot_ns + 1_000;
        // Slots of many tasks; the last map read finds only the first one.
        for tgid in 0..MAX_CAP_SLOTS as u32 - 1 {
            let slot = (1, tgid + 1000, 0, -1, 0);
            p.advance(slot, tgid + 10, 4, now);
        }
        st.total = 4;
        st.generation = 1;
        let mine = (key.cgroup_id, key.tgid, 0, -1, 0);
        p.advance(mine, 1, 4, now);
        assert!(p.flush_caps([(key, 0, st)], now, 0).is_empty(), "reported");
        let before = p.cap_reported;
        // A new slot: room is made from the gone ones only.
        assert_eq!(p.advance((2, 1, 0, -1, 0), 1 << 30, 1, now).0, 1);
        assert!(p.caps.len() <= 2);
        // Mine was kept: its next record counts what it adds.
        assert_eq!(p.advance(mine, 1, 6, now).0, 2);
        // A late record of a forgotten slot counts nothing, and is counted as such.
        assert_eq!(p.advance((1, 1000 + 7, 0, -1, 0), 17, 9, now).0, 0);
        assert_eq!(p.cap_forgotten_records, 1);
        assert_eq!(p.cap_reported, before + 1 + 2);
    }

    /// The de-duplication map's entry for the task of [`cap_record`], last emitted at 10 ns.
    fn map_entry(total: u64) -> (CapKey, CapState) {
        let hdr = header(kind::CAPABILITY, 0);
        let key = CapKey {
            cgroup_id: hdr.cgroup_id,
            tgid: hdr.tgid,
            cap: 0,
            ret: -1,
            _pad: 0,
        };
        let st = CapState {
            last_emit_ns: 10,
            total,
            comm: [0; 16],
            pid: hdr.pid,
            uid: 0,
            generation: 1,
            _pad: 0,
        };
        (key, st)
    }

    #[test]
    fn flush_reports_the_tail_once() {
        let mut p = Pipeline::new();
        p.ingest(&cap_record(1, 0));
        let (key, st) = map_entry(10_000);
        // Within the window: the kernel will report it itself.
        assert!(p.flush_caps([(key, 0, st)], 15, 100).is_empty());
        let out = p.flush_caps([(key, 0, st)], 200, 100);
        assert_eq!(out.len(), 1);
        let Body::Capability(c) = &out[0].body else {
            panic!()
        };
        assert_eq!(c.count, 9_999);
        assert!(
            p.flush_caps([(key, 0, st)], 300, 100).is_empty(),
            "reported once"
        );
    }

    /// The flush can read the map between the program's count and its record: that record
    /// then reports nothing new and is not shown (a record of 0 checks would be).
    #[test]
    fn a_record_the_flush_already_reported_is_not_shown_again() {
        let mut p = Pipeline::new();
        assert_eq!(count(p.ingest(&cap_record(1, 0))), 1);
        let (key, st) = map_entry(7);
        let now = header(kind::CAPABILITY, 0).boot_ns + 1_000;
        let out = p.flush_caps([(key, 0, st)], now, 100);
        assert_eq!(out.len(), 1);
        let Body::Capability(c) = &out[0].body else {
            panic!()
        };
        assert_eq!(c.count, 6);
        assert!(p.ingest(&cap_record(7, 0)).is_none(), "already reported");
        assert_eq!(count(p.ingest(&cap_record(8, 0))), 1);
        assert_eq!(
            p.delivered[usize::from(kind::CAPABILITY)],
            3,
            "all delivered"
        );
    }

    fn victim_record(pid: u32, comm: [u8; 16]) -> tracer_common::OomVictimEvent {
        tracer_common::OomVictimEvent {
            hdr: header(
                kind::OOM_VICTIM,
                std::mem::size_of::<tracer_common::OomVictimEvent>(),
            ),
            victim_pid: pid,
            victim_uid: 0,
            total_vm_kb: 1,
            anon_rss_kb: 2,
            file_rss_kb: 3,
            shmem_rss_kb: 4,
            pgtables_kb: 5,
            oom_score_adj: 0,
            _pad: [0; 6],
            victim_comm: comm,
        }
    }

    #[test]
    fn oom_victim_takes_process_and_cgroup_from_the_kernels_sigkill() {
        use tracer_common::SignalEvent;
        let mut p = Pipeline::new();
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"tail");
        let kill = SignalEvent {
            target_tgid: 777,
            ..crate::event::tests::signal_event(9, 0)
        };
        let victim = victim_record(777, comm);
        // A user-sent SIGKILL does not count.
        let user_kill = SignalEvent {
            code: 0,
            target_cgroup_id: 1,
            ..kill
        };
        p.ingest(&as_bytes(&user_kill));
        let Body::OomVictim(o) = p.ingest(&as_bytes(&victim)).unwrap().body else {
            panic!()
        };
        assert_eq!(o.victim_cgroup_id, None);
        p.ingest(&as_bytes(&kill));
        let Body::OomVictim(o) = p.ingest(&as_bytes(&victim)).unwrap().body else {
            panic!()
        };
        assert_eq!((o.victim_tgid, o.victim_cgroup_id), (Some(777), Some(4711)));
    }

    /// Classic `signal_generate` records name only the target thread; a child forked while
    /// ctrace runs is placed from the fork record (its parent's cgroup), and so is an OOM
    /// victim whose SIGKILL record never arrived.
    #[test]
    fn targets_the_kernel_could_not_read_come_from_the_process_table() {
        use tracer_common::{ForkEvent, SignalEvent};
        let mut p = Pipeline::new();
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"tail");
        p.ingest(&as_bytes(&ForkEvent {
            hdr: header(kind::FORK, std::mem::size_of::<ForkEvent>()),
            child_pid: 900,
            _pad: 0,
            child_comm: comm,
        }));
        let classic = SignalEvent {
            sig: 15,
            code: 0,
            target_pid: 900,
            target_comm: comm,
            target_tgid: 0,
            flags: 0,
            target_cgroup_id: 0,
            ..crate::event::tests::signal_event(15, 0)
        };
        let Body::Signal(s) = p.ingest(&as_bytes(&classic)).unwrap().body else {
            panic!()
        };
        assert_eq!((s.target_tgid, s.target_cgroup_id), (None, Some(4242)));
        // Unknown task: left unknown, never guessed.
        let stranger = SignalEvent {
            target_pid: 901,
            ..classic
        };
        let Body::Signal(s) = p.ingest(&as_bytes(&stranger)).unwrap().body else {
            panic!()
        };
        assert_eq!(s.target_cgroup_id, None);
        let victim = victim_record(900, comm);
        let Body::OomVictim(o) = p.ingest(&as_bytes(&victim)).unwrap().body else {
            panic!()
        };
        assert_eq!((o.victim_tgid, o.victim_cgroup_id), (Some(900), Some(4242)));
        assert_eq!(p.procs.stats.unknown, 1);
    }

    /// The kernel's reading of the victim task wins over the SIGKILL and the process table; a
    /// stale one (a reused thread id, read at another OOM) is ignored.
    #[test]
    fn oom_victim_read_by_the_kernel_comes_first() {
        let memcg = crate::event::MemcgAtOom {
            depth: 0,
            usage_bytes: 100 << 20,
            limit_bytes: Some(100 << 20),
            peak_bytes: 100 << 20,
            failcnt: 7,
        };
        struct Fake(u64, crate::event::MemcgAtOom);
        impl VictimSource for Fake {
            fn victim(&self, tid: u32) -> Option<KernelVictim> {
                (tid == 900).then_some(KernelVictim {
                    tgid: 899,
                    cgroup_id: 5150,
                    boot_ns: self.0,
                    memcg: Some(self.1),
                    context: None,
                })
            }
        }
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"tail");
        let oom_ns = header(kind::OOM_VICTIM, 0).boot_ns;
        let mut p = Pipeline::new();
        p.victims = Some(Victims(Box::new(Fake(oom_ns - 1000, memcg))));
        let Body::OomVictim(o) = p.ingest(&as_bytes(&victim_record(900, comm))).unwrap().body
        else {
            panic!()
        };
        assert_eq!((o.victim_tgid, o.victim_cgroup_id), (Some(899), Some(5150)));
        assert_eq!(o.victim_memcg, Some(memcg));
        let mut p = Pipeline::new();
        p.victims = Some(Victims(Box::new(Fake(
            oom_ns + 5 * VICTIM_SAME_OOM_NS,
            memcg,
        ))));
        let Body::OomVictim(o) = p.ingest(&as_bytes(&victim_record(900, comm))).unwrap().body
        else {
            panic!()
        };
        assert_eq!(o.victim_cgroup_id, None, "stale: not this OOM's victim");
        assert_eq!(o.victim_memcg, None, "nor its memory");
    }

    #[test]
    fn garbage_is_counted() {
        let mut p = Pipeline::new();
        assert!(p.ingest(&[1, 2, 3]).is_none());
        assert_eq!(p.decode_errors, 1);
        // Its first two bytes name kind 0x0201: no known kind.
        assert_eq!(p.decode_errors_by_kind[0], 1);
        assert!(p.ingest(&[5]).is_none(), "too short for a kind");
        assert_eq!(p.decode_errors_by_kind[0], 2);
    }
}
