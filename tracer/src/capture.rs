//! Captures: what a session read from the kernel and what the host answered while it handled
//! it, in order, so that a replay ([`crate::session::replay`]) runs the same flow offline,
//! on another machine, and writes the same lines.
//!
//! A capture is NDJSON: a [`Header`] line, then one [`Frame`] per line. Ring records are kept
//! raw (base64), as the kernel wrote them, and go through the decoder again on replay. What
//! the host answered is kept as the flow used it: the container each record was attributed
//! to, `/proc` lookups, cgroup memory figures, CPU throttling transitions, the kernel maps
//! read each second (capability tails, loss counters). Those answers are replayed in the same
//! order as they were asked; a replay that asks something else is out of step, which it
//! counts and reports rather than guesses.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fs::File,
    io::{BufRead, BufReader, BufWriter, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cgroup::MemoryStats;
use crate::container::{PodInfo, Runtime};
use crate::event::MemcgAtOom;
use crate::explain::{CgroupMemory, MemoryReader};
use crate::host::kmsg::{Kmsg, OomReport};
use crate::pipeline::KernelVictim;
use crate::resolve::{Attribution, Attrs, Compose, Container};
use crate::throttle::detector::ThrottleEvent;

/// The `format` of a capture's header.
pub const FORMAT: &str = "ctrace-capture";
/// The version of the frames written here. Version 2 added [`Frame::Close`]; a reader takes
/// every version from [`OLDEST_VERSION`] and refuses the others.
pub const VERSION: u32 = 2;
/// The oldest version this ctrace replays.
pub const OLDEST_VERSION: u32 = 1;

/// The first line of a capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The ctrace that wrote it.
    pub ctrace: String,
    /// The layout version of the raw records (`tracer_common::LAYOUT_VERSION`).
    pub layout: u8,
    /// The host's name, as records name it.
    pub host: String,
    /// Wall clock at boot, ns since the epoch: turns the records' boot-time stamps into
    /// times.
    pub realtime_at_boot_ns: i128,
    /// Whether the kernel read OOM victims itself (then the capture has its answers).
    pub victims_in_kernel: bool,
    /// The kinds the session traced in the kernel (a bit per kind).
    pub kernel_kinds: u32,
    /// Whether the session asked the kernel's OOM reports (`/dev/kmsg`) for each OOM kill
    /// (then the capture has the answers). Captures before it have none.
    #[serde(default)]
    pub kmsg: bool,
}

impl Header {
    pub fn new(host: &str, realtime_at_boot_ns: i128, victims: bool, kernel_kinds: u32) -> Self {
        Self {
            format: FORMAT.to_owned(),
            version: VERSION,
            ctrace: env!("CARGO_PKG_VERSION").to_owned(),
            layout: tracer_common::LAYOUT_VERSION,
            host: host.to_owned(),
            realtime_at_boot_ns,
            victims_in_kernel: victims,
            kernel_kinds,
            kmsg: true,
        }
    }
}

/// How a record's task, or the other task of a signal or OOM kill, was attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrFrame {
    Host,
    Unknown,
    /// A container, by its index in the capture (see [`Frame::Container`]).
    Container(u32),
}

/// A container with every field the flow uses (the NDJSON form leaves some out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerFrame {
    pub id: String,
    pub name: Option<String>,
    pub runtime: Runtime,
    pub image: Option<String>,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub pod: Option<PodInfo>,
    pub init_pid: Option<u32>,
    pub init_start: Option<u64>,
    pub restart_count: Option<u64>,
    pub compose: Option<Compose>,
    pub cgroup_path: Option<String>,
    pub cgroup_paths: BTreeMap<String, String>,
    pub gone: bool,
}

impl From<&Container> for ContainerFrame {
    fn from(c: &Container) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            runtime: c.runtime,
            image: c.image.clone(),
            namespace: c.namespace.clone(),
            labels: c.labels.clone(),
            pod: c.pod.clone(),
            init_pid: c.init_pid,
            init_start: c.init_start,
            restart_count: c.restart_count,
            compose: c.compose.clone(),
            cgroup_path: c.cgroup_path.clone(),
            cgroup_paths: c.cgroup_paths.clone(),
            gone: c.gone,
        }
    }
}

impl From<ContainerFrame> for Container {
    fn from(f: ContainerFrame) -> Self {
        let mut c = Container::named(&f.id, "", f.runtime);
        c.name = f.name;
        c.image = f.image;
        c.namespace = f.namespace;
        c.labels = f.labels;
        c.pod = f.pod;
        c.init_pid = f.init_pid;
        c.init_start = f.init_start;
        c.restart_count = f.restart_count;
        c.compose = f.compose;
        c.cgroup_path = f.cgroup_path;
        c.cgroup_paths = f.cgroup_paths;
        c.gone = f.gone;
        c
    }
}

/// An OOM victim as the kernel read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VictimFrame {
    pub tgid: u32,
    pub cgroup_id: u64,
    pub boot_ns: u64,
    /// (depth, usage, limit, peak, failcnt) of the memory cgroup read at the OOM.
    pub memcg: Option<(u32, u64, Option<u64>, u64, u64)>,
    /// The OOM killer's context, where it was read (absent from older captures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<crate::event::OomContext>,
}

impl From<&KernelVictim> for VictimFrame {
    fn from(v: &KernelVictim) -> Self {
        Self {
            tgid: v.tgid,
            cgroup_id: v.cgroup_id,
            boot_ns: v.boot_ns,
            memcg: v.memcg.map(|m| {
                (
                    m.depth,
                    m.usage_bytes,
                    m.limit_bytes,
                    m.peak_bytes,
                    m.failcnt,
                )
            }),
            context: v.context,
        }
    }
}

impl From<VictimFrame> for KernelVictim {
    fn from(v: VictimFrame) -> Self {
        Self {
            tgid: v.tgid,
            cgroup_id: v.cgroup_id,
            boot_ns: v.boot_ns,
            memcg: v
                .memcg
                .map(
                    |(depth, usage_bytes, limit_bytes, peak_bytes, failcnt)| MemcgAtOom {
                        depth,
                        usage_bytes,
                        limit_bytes,
                        peak_bytes,
                        failcnt,
                    },
                ),
            context: v.context,
        }
    }
}

/// One capability de-duplication slot as read from the kernel map, per CPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapFrame {
    pub cgroup_id: u64,
    pub tgid: u32,
    pub cap: u32,
    pub ret: i32,
    pub cpu: u32,
    pub last_emit_ns: u64,
    pub total: u64,
    pub comm: String,
    pub pid: u32,
    pub uid: u32,
    /// The slot's incarnation (absent in captures of versions before it, and when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
}

/// The signal fold's slots as read from the kernel, and the fold window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigFrames {
    pub window_ns: u64,
    pub slots: Vec<SigFrame>,
}

/// One CPU's slot of the signal fold: what a flush uses of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigFrame {
    pub cpu: u32,
    pub run: u32,
    pub total: u64,
    pub last_emit_ns: u64,
    pub last_ns: u64,
}

impl SigFrame {
    pub fn new(cpu: u32, st: &tracer_common::SigRun) -> Self {
        Self {
            cpu,
            run: st.run,
            total: st.total,
            last_emit_ns: st.last_emit_ns,
            last_ns: st.last_ns,
        }
    }

    pub fn slot(&self) -> (u32, tracer_common::SigRun) {
        (
            self.cpu,
            tracer_common::SigRun {
                run: self.run,
                total: self.total,
                last_emit_ns: self.last_emit_ns,
                last_ns: self.last_ns,
                ..tracer_common::SigRun::default()
            },
        )
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl CapFrame {
    pub fn new(key: &tracer_common::CapKey, cpu: u32, st: &tracer_common::CapState) -> Self {
        let end = st
            .comm
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(st.comm.len());
        Self {
            cgroup_id: key.cgroup_id,
            tgid: key.tgid,
            cap: key.cap,
            ret: key.ret,
            cpu,
            last_emit_ns: st.last_emit_ns,
            total: st.total,
            comm: base64::engine::general_purpose::STANDARD.encode(&st.comm[..end]),
            pid: st.pid,
            uid: st.uid,
            generation: st.generation,
        }
    }

    pub fn slot(&self) -> (tracer_common::CapKey, u32, tracer_common::CapState) {
        let mut comm = [0u8; tracer_common::COMM_LEN];
        if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(&self.comm) {
            let n = b.len().min(comm.len());
            comm[..n].copy_from_slice(&b[..n]);
        }
        (
            tracer_common::CapKey {
                cgroup_id: self.cgroup_id,
                tgid: self.tgid,
                cap: self.cap,
                ret: self.ret,
                _pad: 0,
            },
            self.cpu,
            tracer_common::CapState {
                last_emit_ns: self.last_emit_ns,
                total: self.total,
                comm,
                pid: self.pid,
                uid: self.uid,
                generation: self.generation,
                _pad: 0,
            },
        )
    }
}

/// One line of a capture after the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Frame {
    /// A raw ring record (base64).
    Record { b: String },
    /// A raw ring record as read back: [`Frame::Record`]'s base64 decoded with the rest of the
    /// capture, so that a replay does the pipeline's work only. Never written.
    #[serde(skip)]
    Raw(Vec<u8>),
    /// Tasks read from `/proc` at the start, as (thread, process, cgroup id), at `boot_ns`.
    Seed {
        boot_ns: u64,
        tasks: Vec<(u32, u32, u64)>,
    },
    /// A `/proc` lookup of a task the records had not shown.
    Proc {
        tid: u32,
        answer: Option<(u32, u64)>,
    },
    /// A lookup in the kernel's map of OOM victims (boxed, as `Throttle`: with both inline,
    /// every frame took 152 bytes instead of 64).
    Victim {
        tid: u32,
        answer: Option<Box<VictimFrame>>,
    },
    /// The kernel's report of an OOM kill (`/dev/kmsg`), by victim pid; `report: None` when
    /// none was found, `error` when the device could not be read.
    Kmsg {
        pid: u32,
        report: Option<Box<OomReport>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A container's memory figures, read from its cgroup files for an incident.
    Memory {
        id: String,
        stats: Option<Box<MemoryStats>>,
    },
    /// How the record just handled was attributed.
    Attrs { p: AttrFrame, o: Option<AttrFrame> },
    /// A container as attributed from here on, by index (defined before its first use).
    Container { i: u32, c: Box<ContainerFrame> },
    /// The resolver learnt something about a container.
    Update {
        boot_ns: u64,
        cgroup_id: Option<u64>,
        c: u32,
        reason: String,
    },
    /// A warning the session gave.
    Warning { text: String },
    /// A CPU throttling transition of a container (boxed: the largest frame, and a rare one;
    /// every frame of a replay is moved as it is read).
    Throttle {
        boot_ns: u64,
        c: u32,
        ev: Box<ThrottleEvent>,
    },
    /// The session's second: capability tails and loss counters as read from the kernel.
    Report {
        boot_ns: u64,
        window_ns: u64,
        caps: Option<Vec<CapFrame>>,
        /// Per kind: attempts, lost (ring buffer full), read errors, filtered.
        counters: Option<Vec<[u64; 4]>>,
        /// The signal fold's slots, and its window (absent in captures of versions before
        /// it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigs: Option<SigFrames>,
    },
    /// The session is closing: its programs are detached and the ring is drained, so what
    /// was pending is told now (the answers it needs follow), with the capability checks the
    /// kernel counted and no record reported (`[insert_failed, unreported]`). Version 2.
    Close {
        boot_ns: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap_losses: Option<[u64; 2]>,
    },
    /// The session ended; its closing `stats` record.
    End { stats: Option<Value> },
}

/// Why a capture could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a ctrace capture (its first line is not a capture header)")]
    NotACapture { path: PathBuf },
    #[error(
        "{path}: capture version {found}, this ctrace reads versions {OLDEST_VERSION} to {VERSION}"
    )]
    Version { path: PathBuf, found: u32 },
    #[error(
        "{path}: its records have layout {found}, this ctrace decodes layout {}",
        tracer_common::LAYOUT_VERSION
    )]
    Layout { path: PathBuf, found: u8 },
    #[error("{path}:{line}: {message}")]
    Frame {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

struct Writing {
    out: BufWriter<File>,
    /// Containers written so far, by the address of the `Arc` the flow holds (kept alive
    /// here, so an address is never reused for another).
    ids: HashMap<usize, (u32, Arc<Container>)>,
    frames: u64,
    error: Option<std::io::Error>,
}

struct Reading {
    frames: VecDeque<Frame>,
    containers: Vec<Arc<Container>>,
    /// Answers asked for that the capture did not have next.
    out_of_step: u64,
}

enum Inner {
    Writing(Writing),
    Reading(Reading),
}

/// A capture being written by a live session, or read by a replay. Cloning shares it.
#[derive(Clone)]
pub struct Tape(Arc<Mutex<Inner>>);

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_replay() {
            "Tape(replay)"
        } else {
            "Tape(capture)"
        })
    }
}

/// What writing a capture came to.
#[derive(Debug)]
pub struct WriteStatus {
    pub frames: u64,
    /// The first write error, after which nothing more was written.
    pub error: Option<std::io::Error>,
}

impl Tape {
    /// Start a capture at `path` (created 0600, replacing an earlier file) with its header.
    pub fn create(path: &Path, header: &Header) -> Result<Self, CaptureError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |source| CaptureError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        serde_json::to_writer(&mut out, header)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(io)?;
        Ok(Self(Arc::new(Mutex::new(Inner::Writing(Writing {
            out,
            ids: HashMap::new(),
            frames: 0,
            error: None,
        })))))
    }

    /// Read a whole capture for replay.
    pub fn open(path: &Path) -> Result<(Header, Self), CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::read(BufReader::new(file), path)
    }

    /// Read a capture from `input` (`path` names it in errors).
    pub fn read(input: impl BufRead, path: &Path) -> Result<(Header, Self), CaptureError> {
        let mut lines = input.lines().enumerate();
        let not_capture = || CaptureError::NotACapture {
            path: path.to_owned(),
        };
        let first = match lines.next() {
            Some((_, Ok(l))) => l,
            Some((_, Err(source))) => {
                return Err(CaptureError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
            None => return Err(not_capture()),
        };
        let probe: Value = serde_json::from_str(&first).map_err(|_| not_capture())?;
        if probe.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(not_capture());
        }
        let found = probe.get("version").and_then(Value::as_u64).unwrap_or(0);
        if !(u64::from(OLDEST_VERSION)..=u64::from(VERSION)).contains(&found) {
            return Err(CaptureError::Version {
                path: path.to_owned(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        let header: Header = serde_json::from_value(probe).map_err(|e| CaptureError::Frame {
            path: path.to_owned(),
            line: 1,
            message: e.to_string(),
        })?;
        if header.layout != tracer_common::LAYOUT_VERSION {
            return Err(CaptureError::Layout {
                path: path.to_owned(),
                found: header.layout,
            });
        }
        let mut r = Reading {
            frames: VecDeque::new(),
            containers: Vec::new(),
            out_of_step: 0,
        };
        for (n, line) in lines {
            let line = line.map_err(|source| CaptureError::Io {
                path: path.to_owned(),
                source,
            })?;
            if line.is_empty() {
                continue;
            }
            let bad = |message: String| CaptureError::Frame {
                path: path.to_owned(),
                line: n + 1,
                message,
            };
            match serde_json::from_str::<Frame>(&line).map_err(|e| bad(e.to_string()))? {
                Frame::Container { i, c } => {
                    if i as usize != r.containers.len() {
                        return Err(bad(format!(
                            "container {i} defined out of order (expected {})",
                            r.containers.len()
                        )));
                    }
                    r.containers.push(Arc::new((*c).into()));
                }
                // Undecodable base64 stays as it is: the replay counts it as a bad record.
                Frame::Record { b } => r.frames.push_back(
                    match base64::engine::general_purpose::STANDARD.decode(b.as_bytes()) {
                        Ok(raw) => Frame::Raw(raw),
                        Err(_) => Frame::Record { b },
                    },
                ),
                f => r.frames.push_back(f),
            }
        }
        Ok((header, Self(Arc::new(Mutex::new(Inner::Reading(r))))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding it leaves plain data behind: use it.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this tape is read (a replay) rather than written.
    pub fn is_replay(&self) -> bool {
        matches!(*self.lock(), Inner::Reading(_))
    }

    /// Append a frame (writing only).
    pub fn write(&self, frame: &Frame) {
        if let Inner::Writing(w) = &mut *self.lock() {
            w.write(frame);
        }
    }

    /// A raw ring record (writing only).
    pub fn record(&self, bytes: &[u8]) {
        if let Inner::Writing(w) = &mut *self.lock() {
            let b = base64::engine::general_purpose::STANDARD.encode(bytes);
            w.write(&Frame::Record { b });
        }
    }

    /// The attribution of a record (writing only).
    pub fn attrs(&self, attrs: &Attrs) {
        if let Inner::Writing(w) = &mut *self.lock() {
            let p = w.attr(&attrs.process);
            let o = attrs.other.as_ref().map(|a| w.attr(a));
            w.write(&Frame::Attrs { p, o });
        }
    }

    /// The index of a container, written first if new (writing only; 0 when reading).
    pub fn container(&self, c: &Arc<Container>) -> u32 {
        match &mut *self.lock() {
            Inner::Writing(w) => w.container(c),
            Inner::Reading(_) => 0,
        }
    }

    /// Flush and report (writing).
    pub fn finish(&self) -> WriteStatus {
        match &mut *self.lock() {
            Inner::Writing(w) => {
                if w.error.is_none() {
                    if let Err(e) = w.out.flush() {
                        w.error = Some(e);
                    }
                }
                WriteStatus {
                    frames: w.frames,
                    error: w.error.take(),
                }
            }
            Inner::Reading(_) => WriteStatus {
                frames: 0,
                error: None,
            },
        }
    }

    /// The next frame of a replay, whatever it is.
    pub fn next(&self) -> Option<Frame> {
        match &mut *self.lock() {
            Inner::Reading(r) => r.frames.pop_front(),
            Inner::Writing(_) => None,
        }
    }

    /// The next frame of a replay if `pick` takes it; otherwise the replay is out of step:
    /// counted, and the frame left for the next reader.
    pub fn take<T>(&self, what: &str, pick: impl FnOnce(&Frame) -> Option<T>) -> Option<T> {
        let mut inner = self.lock();
        let Inner::Reading(r) = &mut *inner else {
            return None;
        };
        match r.frames.front().map(pick) {
            Some(Some(v)) => {
                r.frames.pop_front();
                Some(v)
            }
            _ => {
                r.out_of_step += 1;
                log::debug!(
                    "replay out of step: wanted {what}, next is {:?}",
                    r.frames.front()
                );
                None
            }
        }
    }

    /// The next frame of a replay if `pick` takes it; otherwise nothing, the frame left and
    /// nothing counted: for frames that may or may not come at this point.
    pub fn take_if<T>(&self, pick: impl FnOnce(&Frame) -> Option<T>) -> Option<T> {
        let mut inner = self.lock();
        let Inner::Reading(r) = &mut *inner else {
            return None;
        };
        let v = r.frames.front().and_then(pick)?;
        r.frames.pop_front();
        Some(v)
    }

    /// Counts a frame the replay could not use (an answer no one asked for, a container the
    /// tape never named).
    pub fn stray(&self) {
        if let Inner::Reading(r) = &mut *self.lock() {
            r.out_of_step += 1;
        }
    }

    /// The container of an index (replay).
    pub fn container_at(&self, i: u32) -> Option<Arc<Container>> {
        match &*self.lock() {
            Inner::Reading(r) => r.containers.get(i as usize).cloned(),
            Inner::Writing(_) => None,
        }
    }

    /// An attribution as captured (replay).
    pub fn attribution(&self, a: AttrFrame) -> Attribution {
        match a {
            AttrFrame::Host => Attribution::Host,
            AttrFrame::Unknown => Attribution::Unknown,
            AttrFrame::Container(i) => self
                .container_at(i)
                .map_or(Attribution::Unknown, Attribution::Container),
        }
    }

    /// Answers a replay asked for that the capture did not have next.
    pub fn out_of_step(&self) -> u64 {
        match &*self.lock() {
            Inner::Reading(r) => r.out_of_step,
            Inner::Writing(_) => 0,
        }
    }
}

impl Writing {
    fn write(&mut self, frame: &Frame) {
        if self.error.is_some() {
            return;
        }
        let r = serde_json::to_writer(&mut self.out, frame)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        match r {
            Ok(()) => self.frames += 1,
            Err(e) => self.error = Some(e),
        }
    }

    fn container(&mut self, c: &Arc<Container>) -> u32 {
        let key = Arc::as_ptr(c) as usize;
        if let Some((i, _)) = self.ids.get(&key) {
            return *i;
        }
        let i = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        self.ids.insert(key, (i, Arc::clone(c)));
        self.write(&Frame::Container {
            i,
            c: Box::new(ContainerFrame::from(c.as_ref())),
        });
        i
    }

    fn attr(&mut self, a: &Attribution) -> AttrFrame {
        match a {
            Attribution::Host => AttrFrame::Host,
            Attribution::Unknown => AttrFrame::Unknown,
            Attribution::Container(c) => AttrFrame::Container(self.container(c)),
        }
    }
}

/// `/proc` lookups of tasks the records had not shown: answered live and written down, or
/// answered from a capture.
#[derive(Debug)]
pub struct Lookup {
    /// `None`: replaying.
    pub live: Option<crate::proctable::ProcSource>,
    pub tape: Tape,
}

impl crate::proctable::TaskLookup for Lookup {
    fn read(&mut self, tid: u32) -> Option<(u32, u64)> {
        match &mut self.live {
            Some(src) => {
                let answer = crate::proctable::TaskLookup::read(src, tid);
                self.tape.write(&Frame::Proc { tid, answer });
                answer
            }
            None => self
                .tape
                .take("a /proc lookup", |f| match f {
                    Frame::Proc { tid: t, answer } if *t == tid => Some(*answer),
                    _ => None,
                })
                .flatten(),
        }
    }
}

/// The kernel's map of OOM victims: answered live and written down, or from a capture.
pub struct KernelVictims {
    /// `None`: replaying.
    pub live: Option<Box<dyn crate::pipeline::VictimSource>>,
    pub tape: Tape,
}

impl crate::pipeline::VictimSource for KernelVictims {
    fn victim(&self, tid: u32) -> Option<KernelVictim> {
        match &self.live {
            Some(src) => {
                let answer = src.victim(tid);
                self.tape.write(&Frame::Victim {
                    tid,
                    answer: answer.as_ref().map(|a| Box::new(VictimFrame::from(a))),
                });
                answer
            }
            None => self
                .tape
                .take("an OOM victim", |f| match f {
                    Frame::Victim { tid: t, answer } if *t == tid => {
                        Some(answer.as_deref().copied().map(Into::into))
                    }
                    _ => None,
                })
                .flatten(),
        }
    }
}

/// Containers' memory figures for incidents: read from the cgroup files (and written down
/// when capturing), or from a capture.
pub struct Memory {
    /// `None`: replaying.
    pub live: Option<CgroupMemory>,
    pub tape: Option<Tape>,
}

impl Memory {
    /// Read and remember a live container's figures (nothing when replaying); see
    /// [`CgroupMemory::refresh`].
    pub fn refresh(&self, c: &Container, at_once: bool) {
        if let Some(m) = &self.live {
            m.refresh(c, at_once);
        }
    }
}

impl MemoryReader for Memory {
    fn read(&self, c: &Container) -> Option<MemoryStats> {
        match (&self.live, &self.tape) {
            (Some(m), tape) => {
                let stats = m.read(c);
                if let Some(t) = tape {
                    t.write(&Frame::Memory {
                        id: c.id.clone(),
                        stats: stats.clone().map(Box::new),
                    });
                }
                stats
            }
            (None, Some(t)) => t
                .take("memory figures", |f| match f {
                    Frame::Memory { id, stats } if *id == c.id => Some(stats.as_deref().cloned()),
                    _ => None,
                })
                .flatten(),
            (None, None) => None,
        }
    }
}

/// The kernel's OOM reports for incidents: from `/dev/kmsg` (and written down when
/// capturing), or from a capture that has them.
pub struct KernelReports {
    /// `None`: replaying. `Err`: why the device cannot be read.
    pub live: Option<Result<Kmsg, String>>,
    pub tape: Option<Tape>,
    /// Replaying a capture that has the answers.
    pub on_tape: bool,
}

impl KernelReports {
    /// The kernel's report of the OOM kill of `pid`: `Ok(None)` when it wrote none that
    /// ctrace saw, `Err` when it cannot be read; `None` when not asked (an older capture).
    pub fn report_for(&mut self, pid: u32) -> Option<Result<Option<OomReport>, String>> {
        let answer = match &mut self.live {
            Some(Ok(k)) => Ok(k.report_for(pid)),
            Some(Err(e)) => Err(e.clone()),
            None if self.on_tape => {
                let t = self.tape.as_ref()?;
                return t.take("a kernel OOM report", |f| match f {
                    Frame::Kmsg {
                        pid: p,
                        report,
                        error,
                    } if *p == pid => Some(match error {
                        Some(e) => Err(e.clone()),
                        None => Ok(report.as_deref().cloned()),
                    }),
                    _ => None,
                });
            }
            None => return None,
        };
        if let Some(t) = &self.tape {
            let (report, error) = match &answer {
                Ok(r) => (r.clone().map(Box::new), None),
                Err(e) => (None, Some(e.clone())),
            };
            t.write(&Frame::Kmsg { pid, report, error });
        }
        Some(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header::new("lab", 1_700_000_000_000_000_000, true, 0xff)
    }

    fn roundtrip(frames: impl FnOnce(&Tape)) -> (Header, Tape) {
        let dir = std::env::temp_dir().join(format!("ctrace-capture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:p}.capture", &frames));
        let tape = Tape::create(&path, &header()).unwrap();
        frames(&tape);
        let st = tape.finish();
        assert!(st.error.is_none());
        let out = Tape::open(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        out
    }

    #[test]
    fn records_come_back_decoded_and_bad_base64_as_it_was() {
        let (_, tape) = roundtrip(|t| {
            t.write(&Frame::Record {
                b: "%% not base64".into(),
            });
            t.record(&[4, 5, 6]);
        });
        // Left for the replay to count as an undecodable record, as live would.
        assert_eq!(
            tape.next(),
            Some(Frame::Record {
                b: "%% not base64".into()
            })
        );
        assert_eq!(tape.next(), Some(Frame::Raw(vec![4, 5, 6])));
        assert_eq!(tape.next(), None);
    }

    #[test]
    fn a_replay_counts_bad_base64_as_an_undecodable_record() {
        struct Nothing;
        impl crate::session::Sink for Nothing {
            fn event(&mut self, _: &crate::event::Event, _: &Attrs, _: &crate::sink::Context) {}
            fn incident(&mut self, _: &crate::explain::Incident, _: &crate::sink::Context) {}
            fn throttle(
                &mut self,
                _: &Arc<Container>,
                _: &crate::throttle::ThrottleEvent,
                _: u64,
                _: &crate::sink::Context,
            ) {
            }
            fn update(&mut self, _: &crate::resolve::Update, _: &crate::sink::Context) {}
            fn loss(&mut self, _: &crate::sink::Loss, _: u64, _: &crate::sink::Context) {}
            fn warning(&mut self, _: &str) {}
        }
        let (h, tape) = roundtrip(|t| {
            t.write(&Frame::Record {
                b: "%% not base64".into(),
            });
        });
        let summary = crate::session::replay(&h, tape, &mut Nothing);
        assert_eq!((summary.records, summary.decode_errors), (1, 1));
    }

    #[test]
    fn frames_come_back_in_order_with_containers_by_index() {
        let c = Arc::new(Container::named("abc", "web", Runtime::Docker));
        let (h, tape) = roundtrip(|t| {
            t.record(&[1, 2, 3]);
            t.attrs(&Attrs {
                process: Attribution::Container(Arc::clone(&c)),
                other: Some(Attribution::Host),
            });
            t.attrs(&Attrs {
                process: Attribution::Container(Arc::clone(&c)),
                other: None,
            });
            t.write(&Frame::Proc {
                tid: 7,
                answer: Some((7, 42)),
            });
        });
        assert_eq!(h, header());
        assert!(tape.is_replay());
        assert_eq!(tape.next(), Some(Frame::Raw(vec![1, 2, 3])));
        let p = AttrFrame::Container(0);
        assert_eq!(
            tape.next(),
            Some(Frame::Attrs {
                p,
                o: Some(AttrFrame::Host)
            })
        );
        // The same container is written once.
        assert_eq!(tape.next(), Some(Frame::Attrs { p, o: None }));
        assert_eq!(tape.attribution(p), Attribution::Container(Arc::clone(&c)));
        // Asking for something else is out of step, and leaves the frame.
        assert_eq!(tape.take("memory", |_| None::<()>), None);
        assert_eq!(tape.out_of_step(), 1);
        let answer = tape.take("proc", |f| match f {
            Frame::Proc { answer, .. } => Some(*answer),
            _ => None,
        });
        assert_eq!(answer, Some(Some((7, 42))));
        assert_eq!(tape.next(), None);
    }

    #[test]
    fn a_file_that_is_not_a_capture_or_of_another_version_is_refused() {
        let p = Path::new("x.capture");
        let read = |s: &str| Tape::read(s.as_bytes(), p).map(|_| ());
        assert!(matches!(read(""), Err(CaptureError::NotACapture { .. })));
        assert!(matches!(
            read("{\"type\":\"exec\"}\n"),
            Err(CaptureError::NotACapture { .. })
        ));
        let mut h = serde_json::to_value(header()).unwrap();
        h["version"] = 99.into();
        assert!(matches!(
            read(&h.to_string()),
            Err(CaptureError::Version { found: 99, .. })
        ));
        h["version"] = VERSION.into();
        h["layout"] = 200.into();
        assert!(matches!(
            read(&h.to_string()),
            Err(CaptureError::Layout { found: 200, .. })
        ));
        h["layout"] = tracer_common::LAYOUT_VERSION.into();
        let bad = format!("{h}\n{{\"f\":\"record\"}}\n");
        let e = read(&bad).unwrap_err().to_string();
        assert!(e.starts_with("x.capture:2: "), "{e}");
        // A container used before it is defined cannot be: one defined out of order is an
        // error.
        let c = ContainerFrame::from(&Container::named("a", "a", Runtime::Runc));
        let f = serde_json::to_string(&Frame::Container {
            i: 3,
            c: Box::new(c),
        })
        .unwrap();
        assert!(read(&format!("{h}\n{f}\n")).is_err());
    }

    #[test]
    fn capability_slots_and_victims_survive_the_round_trip() {
        let mut comm = [0u8; tracer_common::COMM_LEN];
        comm[..5].copy_from_slice(b"chown");
        let key = tracer_common::CapKey {
            cgroup_id: 9,
            tgid: 10,
            cap: 0,
            ret: -1,
            _pad: 0,
        };
        let st = tracer_common::CapState {
            last_emit_ns: 5,
            total: 6,
            comm,
            pid: 11,
            uid: 0,
            generation: 4,
            _pad: 0,
        };
        let f = CapFrame::new(&key, 1, &st);
        let back: CapFrame = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back.slot(), (key, 1, st));
        let v = KernelVictim {
            tgid: 1,
            cgroup_id: 2,
            boot_ns: 3,
            memcg: Some(MemcgAtOom {
                depth: 1,
                usage_bytes: 4,
                limit_bytes: None,
                peak_bytes: 5,
                failcnt: 6,
            }),
            context: None,
        };
        assert_eq!(KernelVictim::from(VictimFrame::from(&v)), v);
        // Frames of older captures have no context; the context round-trips.
        assert!(!serde_json::to_string(&VictimFrame::from(&v))
            .unwrap()
            .contains("context"));
        let v = KernelVictim {
            context: Some(crate::event::OomContext {
                memcg: None,
                points: Some(42),
                oom_score_adj: Some(-500),
                trigger: Some(crate::event::OomTrigger::Global),
                order: Some(0),
            }),
            ..v
        };
        let frame: VictimFrame =
            serde_json::from_str(&serde_json::to_string(&VictimFrame::from(&v)).unwrap()).unwrap();
        assert_eq!(KernelVictim::from(frame), v);
        let c = Container::named("id", "name", Runtime::Containerd);
        assert_eq!(Container::from(ContainerFrame::from(&c)), c);
    }
}
