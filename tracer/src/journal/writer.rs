//! The batching writer thread: producers hand entries over without ever blocking.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::clock::{Clock, SystemClock};
use super::types::Entry;
use super::Journal;

/// How the writer batches and maintains.
#[derive(Clone)]
pub struct WriterOptions {
    /// Entries the queue holds before `try_send` drops (default 65536).
    pub capacity: usize,
    /// A batch is committed when it has this many entries (default 1000)...
    pub batch_max: usize,
    /// ...or when its first entry has waited this long (default 200 ms).
    pub batch_interval: Duration,
    /// Retention and thinning run at most this often (default 30 s, by `clock`).
    pub maintenance_interval: Duration,
    /// Wall-clock time one maintenance pass may take before yielding to writes (default
    /// 250 ms); unfinished work resumes after `batch_interval`.
    pub maintenance_budget: Duration,
    /// Consecutive failed batches after which the writer disables itself (default 3).
    pub max_consecutive_failures: u32,
    /// Time source for retention and maintenance scheduling.
    pub clock: Arc<dyn Clock>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            capacity: 65_536,
            batch_max: 1_000,
            batch_interval: Duration::from_millis(200),
            maintenance_interval: Duration::from_secs(30),
            maintenance_budget: Duration::from_millis(250),
            max_consecutive_failures: 3,
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for WriterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterOptions")
            .field("capacity", &self.capacity)
            .field("batch_max", &self.batch_max)
            .field("batch_interval", &self.batch_interval)
            .field("maintenance_interval", &self.maintenance_interval)
            .field("maintenance_budget", &self.maintenance_budget)
            .field("max_consecutive_failures", &self.max_consecutive_failures)
            .finish_non_exhaustive()
    }
}

/// Health of the writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStatus {
    /// Entries committed.
    pub written: u64,
    /// Entries not written: queue full, lost with a failed batch, or sent while the writer
    /// was disabled or closed.
    pub dropped: u64,
    /// Batches whose transaction failed.
    pub failed_batches: u64,
    /// Of `dropped`, entries of batches that failed at COMMIT: SQLite may have written them
    /// anyway (a full disk can fail a commit after its WAL frames are written), so the file
    /// holds between `written` and `written + unconfirmed` of the entries sent.
    pub unconfirmed: u64,
    /// The last error (writes or maintenance), if any.
    pub last_error: Option<String>,
    /// The writer gave up after repeated failures (or stopped); entries are only counted.
    pub disabled: bool,
}

enum Msg {
    Entry(Box<Entry>),
    Flush(SyncSender<()>),
    Close(SyncSender<()>),
}

#[derive(Default)]
struct Shared {
    written: AtomicU64,
    dropped: AtomicU64,
    failed_batches: AtomicU64,
    unconfirmed: AtomicU64,
    disabled: AtomicBool,
    closed: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Entries sent and not yet received by the writer: the queue's bound is kept with this
    /// count, not with a channel of fixed size. A bounded channel allocates and writes every
    /// slot up front: 2 MiB of the agent's memory for the default 65,536 entries, held
    /// while the queue is empty, which it nearly always is.
    queued: AtomicUsize,
}

impl Shared {
    fn set_error(&self, e: String) {
        if let Ok(mut l) = self.last_error.lock() {
            *l = Some(e);
        }
    }

    fn status(&self) -> WriterStatus {
        WriterStatus {
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            unconfirmed: self.unconfirmed.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|l| l.clone()),
            disabled: self.disabled.load(Ordering::Relaxed),
        }
    }

    fn drop_n(&self, n: usize) {
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The producers' side of the writer: cheap to clone, never blocks in [`try_send`].
///
/// [`try_send`]: JournalHandle::try_send
#[derive(Clone)]
pub struct JournalHandle {
    tx: Sender<Msg>,
    capacity: usize,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for JournalHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalHandle")
            .field("status", &self.status())
            .finish()
    }
}

impl JournalHandle {
    /// Queues an entry without blocking; `false` (and counted in `dropped`) when the queue
    /// is full or the writer is disabled or closed.
    pub fn try_send(&self, entry: impl Into<Entry>) -> bool {
        let s = &self.shared;
        if s.disabled.load(Ordering::Relaxed) || s.closed.load(Ordering::Relaxed) {
            s.drop_n(1);
            return false;
        }
        if s.queued.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            s.queued.fetch_sub(1, Ordering::Relaxed);
            s.drop_n(1);
            return false;
        }
        match self.tx.send(Msg::Entry(Box::new(entry.into()))) {
            Ok(()) => true,
            Err(_) => {
                s.queued.fetch_sub(1, Ordering::Relaxed);
                s.drop_n(1);
                false
            }
        }
    }

    /// Entries not written so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Counters and state of the writer.
    pub fn status(&self) -> WriterStatus {
        self.shared.status()
    }

    /// Hands a control message over (behind the entries queued before it; control messages
    /// are not counted against the bound), then waits for the writer's acknowledgement until
    /// `deadline`. `false` if the writer is gone or time ran out.
    fn control(&self, make: fn(SyncSender<()>) -> Msg, deadline: Option<Instant>) -> bool {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if self.tx.send(make(ack_tx)).is_err() {
            return false;
        }
        match deadline {
            Some(d) => ack_rx
                .recv_timeout(d.saturating_duration_since(Instant::now()))
                .is_ok(),
            None => ack_rx.recv().is_ok(),
        }
    }

    /// Blocks until everything queued before the call is committed (or could not be);
    /// `false` on timeout or if the writer is gone. Not for the hot path.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.control(Msg::Flush, Some(Instant::now() + timeout))
    }

    /// Drains the queue, commits, and stops the writer thread (join its handle afterwards);
    /// later `try_send`s are dropped. Returns the final status.
    pub fn flush_and_close(&self) -> WriterStatus {
        if !self.shared.closed.load(Ordering::Relaxed) {
            self.control(Msg::Close, None);
        }
        self.shared.closed.store(true, Ordering::Relaxed);
        self.status()
    }
}

/// Marks the writer disabled if its thread ends other than by `flush_and_close` (a panic).
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let s = &self.0;
        if !s.closed.swap(true, Ordering::Relaxed) {
            s.disabled.store(true, Ordering::Relaxed);
            s.set_error("journal writer thread stopped unexpectedly".to_owned());
        }
    }
}

/// Starts the writer thread.
pub(crate) fn spawn(
    journal: Journal,
    opts: WriterOptions,
) -> (JournalHandle, JoinHandle<WriterStatus>) {
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Shared::default());
    if let Some(reason) = journal.read_only_reason() {
        shared.disabled.store(true, Ordering::Relaxed);
        shared.set_error(reason);
    }
    let handle = JournalHandle {
        tx,
        capacity: opts.capacity.max(1),
        shared: Arc::clone(&shared),
    };
    let thread = std::thread::Builder::new()
        .name("ctrace-journal".to_owned())
        .spawn(move || {
            let _guard = ExitGuard(Arc::clone(&shared));
            Writer {
                journal,
                opts,
                shared: Arc::clone(&shared),
                batch: Vec::new(),
                batch_started: None,
                consecutive_failures: 0,
                last_maintenance_ns: None,
                maintenance_pending: false,
            }
            .run(rx);
            shared.status()
        });
    match thread {
        Ok(t) => (handle, t),
        Err(e) => {
            // No thread: everything will be dropped and counted.
            handle.shared.disabled.store(true, Ordering::Relaxed);
            handle
                .shared
                .set_error(format!("cannot start the journal writer thread: {e}"));
            let status = handle.status();
            (handle, std::thread::spawn(move || status))
        }
    }
}

struct Writer {
    journal: Journal,
    opts: WriterOptions,
    shared: Arc<Shared>,
    batch: Vec<Entry>,
    batch_started: Option<Instant>,
    consecutive_failures: u32,
    last_maintenance_ns: Option<i64>,
    /// The last pass ran out of budget: continue soon.
    maintenance_pending: bool,
}

/// How long an idle writer sleeps before looking at maintenance again.
const IDLE_TICK: Duration = Duration::from_secs(1);

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let timeout = match self.batch_started {
                Some(t) => self.opts.batch_interval.saturating_sub(t.elapsed()),
                None => IDLE_TICK,
            };
            match rx.recv_timeout(timeout) {
                Ok(Msg::Entry(e)) => self.take(*e),
                Ok(Msg::Flush(ack)) => {
                    self.commit();
                    let _ = ack.send(());
                }
                Ok(Msg::Close(ack)) => {
                    // Refuse new entries first, so a busy producer cannot keep us draining.
                    self.shared.closed.store(true, Ordering::Relaxed);
                    self.drain(&rx);
                    let _ = ack.send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.commit();
                    self.shared.closed.store(true, Ordering::Relaxed);
                    return;
                }
            }
            if self
                .batch_started
                .is_some_and(|t| t.elapsed() >= self.opts.batch_interval)
            {
                self.commit();
            }
            self.maybe_maintain();
        }
    }

    /// Everything still queued, then a final commit.
    fn drain(&mut self, rx: &Receiver<Msg>) {
        loop {
            match rx.try_recv() {
                Ok(Msg::Entry(e)) => self.take(*e),
                Ok(Msg::Flush(ack) | Msg::Close(ack)) => {
                    self.commit();
                    let _ = ack.send(());
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        self.commit();
    }

    /// An entry off the queue.
    fn take(&mut self, e: Entry) {
        self.shared.queued.fetch_sub(1, Ordering::Relaxed);
        self.push(e);
    }

    fn push(&mut self, e: Entry) {
        if self.shared.disabled.load(Ordering::Relaxed) {
            self.shared.drop_n(1);
            return;
        }
        self.batch.push(e);
        self.batch_started.get_or_insert_with(Instant::now);
        if self.batch.len() >= self.opts.batch_max {
            self.commit();
        }
    }

    fn commit(&mut self) {
        self.batch_started = None;
        if self.batch.is_empty() {
            return;
        }
        let n = self.batch.len();
        if self.shared.disabled.load(Ordering::Relaxed) {
            self.shared.drop_n(n);
            self.batch.clear();
            return;
        }
        match self.journal.write_batch(&self.batch) {
            Ok(_) => {
                self.shared.written.fetch_add(n as u64, Ordering::Relaxed);
                self.consecutive_failures = 0;
            }
            Err((e, at_commit)) => {
                self.shared.drop_n(n);
                if at_commit {
                    self.shared
                        .unconfirmed
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
                self.shared.failed_batches.fetch_add(1, Ordering::Relaxed);
                self.consecutive_failures += 1;
                if self.consecutive_failures >= self.opts.max_consecutive_failures {
                    self.shared.disabled.store(true, Ordering::Relaxed);
                    let msg = format!(
                        "journal writing disabled after {} failed batches in a row: {e}",
                        self.consecutive_failures
                    );
                    log::error!("{msg}");
                    self.shared.set_error(msg);
                } else {
                    log::warn!("journal batch of {n} entries lost: {e}");
                    self.shared.set_error(e.to_string());
                }
            }
        }
        self.batch.clear();
    }

    /// Runs a maintenance pass when one is due, between batches only (a pending batch is
    /// never committed early for it).
    fn maybe_maintain(&mut self) {
        if self.shared.disabled.load(Ordering::Relaxed) || !self.batch.is_empty() {
            return;
        }
        let now = self.opts.clock.now_ns();
        let interval = if self.maintenance_pending {
            self.opts.batch_interval
        } else {
            self.opts.maintenance_interval
        };
        let interval_ns = i64::try_from(interval.as_nanos()).unwrap_or(i64::MAX);
        if self
            .last_maintenance_ns
            .is_some_and(|last| now.saturating_sub(last) < interval_ns && now >= last)
        {
            return;
        }
        self.last_maintenance_ns = Some(now);
        let deadline = Instant::now() + self.opts.maintenance_budget;
        match self.journal.maintain(now, Some(deadline)) {
            Ok(rep) => {
                self.maintenance_pending = !rep.complete;
                log::debug!("journal maintenance: {rep:?}");
            }
            Err(e) => {
                self.maintenance_pending = false;
                log::warn!("journal maintenance failed: {e}");
                self.shared.set_error(format!("maintenance: {e}"));
            }
        }
    }
}
