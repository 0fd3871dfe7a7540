//! `cargo xtask vm-test`: the release ctrace on other kernels (Debian's generic 6.1 and 6.12),
//! each booted once under virtme-ng (qemu, TCG: KVM does not work on our CI machines) on a
//! read-only snapshot of this machine's filesystem. One scenario script per boot drives plain
//! runc containers (bundles made in the guest from busybox-static) under `ctrace watch`; the
//! records it prints are checked here with the same code as the host's integration tests
//! (`tests/src/expect.rs`). Any mismatch, a missing record or a boot that did not finish is an
//! error: nothing is skipped.

use std::{
    fs,
    io::Read as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde_json::Value;

#[path = "../../tests/src/expect.rs"]
#[allow(dead_code)]
mod expect;

use crate::util::{self, apt_install, capture, run, say, which};

#[derive(clap::Args, Debug, Default)]
pub struct VmArgs {
    /// A kernel image to boot (repeatable), e.g. /boot/vmlinuz-6.1.0-57-amd64. Default: the
    /// newest Debian 6.1 and 6.12 generic kernels, installed with apt-get when missing.
    #[arg(long)]
    pub kernel: Vec<PathBuf>,
    /// Every Debian 6.1 and 6.12 generic kernel installed in /boot, not only the newest.
    #[arg(long)]
    pub all: bool,
    /// Boot with this ctrace binary instead of building the release one.
    #[arg(long)]
    pub ctrace: Option<PathBuf>,
}

/// Kernel series of the matrix: the `linux-image-*` package pattern (generic flavour: the
/// `-cloud-` one lacks 9p) and the `/boot/vmlinuz-*` prefix and suffix of its images.
const SERIES: [(&str, &str, &str); 2] = [
    (
        "^linux-image-6\\.1\\.0-[0-9]+-amd64$",
        "vmlinuz-6.1.0-",
        "-amd64",
    ),
    (
        "^linux-image-6\\.12\\.[0-9]+\\+deb12-amd64$",
        "vmlinuz-6.12.",
        "+deb12-amd64",
    ),
];

/// One boot: the guest is killed past this (a TCG boot takes ~12 s and the scenario ~40 s on
/// an idle machine; several times that on a loaded one).
const BOOT_TIMEOUT: Duration = Duration::from_secs(900);

/// How a guest kernel's console starts a report of trouble.
const TROUBLE: &[&str] = &[
    "Kernel panic",
    "BUG:",
    "Oops:",
    "general protection fault",
    "watchdog:",
    "rcu_sched detected stall",
    "rcu: INFO:",
];

/// The container memory limit of the OOM scenario.
const OOM_LIMIT: u64 = 32 << 20;

/// Runs in the guest as root: `scenario.sh CTRACE`. Prints `CTRACE-VM` lines (facts),
/// `CTRACE-REC <pass> <json>` (records) and `CTRACE-ERR <pass> <line>` (ctrace's stderr).
const SCENARIO: &str = r#"#!/bin/bash
# ctrace's VM scenario (xtask/src/vm.rs). Guest only: root, pure cgroup v2, no daemons.
set -u
BIN=$1
say() { echo "CTRACE-VM $*"; }
fail() { say "FAIL $*"; exit 1; }
# The kernel's console is vng's stderr, apart from the records (stdout): all but debug
# messages, so that a guest that dies (vng's exit status 255) leaves its oops in the log.
echo 7 > /proc/sys/kernel/printk
say kernel "$(uname -r)"
# A fresh scratch folder made in the guest: folders the host made are not all visible here.
S=/tmp/ctrace-guest.$$
mkdir -p "$S" && mount -t tmpfs tmpfs "$S" || fail "scratch $S"
mkdir -p /run/runc
R=$S/rootfs
mkdir -p "$R"/bin "$R"/proc "$R"/sys "$R"/dev "$R"/tmp "$R"/etc
cp /bin/busybox "$R"/bin/busybox || fail "no /bin/busybox (busybox-static)"
for a in sh chown tail sleep true cat; do ln -s busybox "$R/bin/$a"; done
touch "$R"/f
( cd "$S" && runc spec ) || fail "runc spec"
# bundle NAME MEMORY_LIMIT ADD_CAPS ARGS...: a config for plain runc, no network namespace.
bundle() {
  local name=$1 mem=$2 caps=$3; shift 3
  mkdir -p "$S/$name"
  python3 - "$S/config.json" "$S/$name/config.json" "$R" "$mem" "$caps" "$@" <<'PY' || fail "bundle $name"
import json, sys
src, dst, root, mem, caps, args = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6:]
c = json.load(open(src))
c["root"] = {"path": root, "readonly": False}
p = c["process"]
p["terminal"] = False
p["args"] = args
for k in ("bounding", "effective", "permitted"):
    p["capabilities"][k] += [x for x in caps.split(",") if x]
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
if mem:
    c["linux"].setdefault("resources", {})["memory"] = {"limit": mem, "swap": mem}
json.dump(c, open(dst, "w"))
PY
}
CT=
start_ctrace() { # PASS HOOKS
  local pass=$1
  CTRACE_CAP_HOOKS=$2 "$BIN" watch --json --no-journal --events exec,exit,signal,oom,capability:all \
    --output "$S/$pass.ndjson" 2> "$S/$pass.err" &
  CT=$!
  for _ in $(seq 600); do
    grep -q "ctrace: tracing" "$S/$pass.err" && return 0
    kill -0 $CT 2>/dev/null || break
    sleep 0.1
  done
  cat "$S/$pass.err"; fail "ctrace did not start ($pass)"
}
stop_ctrace() { # PASS
  sleep 1
  kill -INT $CT; wait $CT; say "exit $1 $?"
  grep -E '"type":"(capability|oom_kill|kill|stats)"' "$S/$1.ndjson" | sed "s/^/CTRACE-REC $1 /"
  # The OOM victim's exit: what the exit record says where the tracepoint lacks group_dead.
  grep '"type":"exit"' "$S/$1.ndjson" | grep '"comm":"tail"' | head -n 1 | sed "s/^/CTRACE-REC $1 /"
  sed "s/^/CTRACE-ERR $1 /" "$S/$1.err"
}
chowns() { # PASS: CAP_CHOWN denied (not in runc's default set) and allowed (added)
  # Alive a moment around the chown: ctrace names a plain runc container from its state
  # file, which `runc run` removes as soon as the container exits.
  local c='sleep 1; chown 1 /f; r=$?; sleep 1; exit $r'
  bundle "deny-$1" 0 "" sh -c "$c"
  bundle "allow-$1" 0 CAP_CHOWN sh -c "$c"
  runc run --bundle "$S/deny-$1" "cdeny-$1" < /dev/null; say "deny-$1 exit $?"
  runc run --bundle "$S/allow-$1" "callow-$1" < /dev/null; say "allow-$1 exit $?"
}
T0=$(date +%s)
# Pass "default": the hooks ctrace picks on this kernel; the incidents too.
start_ctrace default tracepoint,fexit,kprobe
say started "$(( $(date +%s) - T0 ))"
chowns default
bundle oom OOM_LIMIT_BYTES "" tail /dev/zero
runc run --bundle "$S/oom" coom < /dev/null; say "oom exit $?"
bundle kill 0 "" sleep 1000
runc run -d --bundle "$S/kill" ckill < /dev/null > /dev/null 2>&1 || fail "runc run -d ckill"
PID=$(runc state ckill | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
sleep 0.5
kill -9 "$PID"; say "killed $PID"
sleep 1
runc delete -f ckill
stop_ctrace default
# Pass "kprobe": the same capability checks through kprobes, where fexit would be chosen;
# `ctrace doctor` meanwhile (its programs are its own), while the guest mostly sleeps.
start_ctrace kprobe kprobe
"$BIN" doctor --json > "$S/doctor.json" 2> "$S/doctor.err" &
DOC=$!
chowns kprobe
wait $DOC; say "doctor exit $?"
sed 's/^/CTRACE-DOC /' "$S/doctor.json"
sed 's/^/CTRACE-ERR doctor /' "$S/doctor.err"
stop_ctrace kprobe
say done "$(( $(date +%s) - T0 ))"
"#;

pub fn vm_test(args: &VmArgs, bin: &Path) -> Result<()> {
    util::become_root("vm-test")?;
    let started = Instant::now();
    install_tools()?;
    let kernels = if args.kernel.is_empty() {
        default_kernels(args.all)?
    } else {
        args.kernel.clone()
    };
    let dir = util::TempDir::new("ctrace-vm")?;
    // The guest sees this through 9p: world-readable, unlike a mktemp -d folder.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
    let script = dir.path().join("scenario.sh");
    fs::write(
        &script,
        SCENARIO.replace("OOM_LIMIT_BYTES", &OOM_LIMIT.to_string()),
    )?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    let mut failures = Vec::new();
    let mut table = Vec::new();
    // The guests boot side by side: each is one TCG thread, and the matrix's wall time is
    // what CI pays.
    let outcomes: Vec<(Result<String>, u64)> = std::thread::scope(|s| {
        let runs: Vec<_> = kernels
            .iter()
            .map(|kernel| {
                let script = &script;
                s.spawn(move || {
                    let t = Instant::now();
                    let outcome = boot(kernel, script, bin).and_then(|out| check(&out));
                    (outcome, t.elapsed().as_secs())
                })
            })
            .collect();
        runs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (Err(anyhow::anyhow!("the boot thread panicked")), 0))
            })
            .collect()
    });
    for (kernel, (outcome, secs)) in kernels.iter().zip(outcomes) {
        match outcome {
            Ok(summary) => {
                say!(
                    "vm-test: {} passed in {secs} s: {summary}",
                    kernel.display()
                );
                table.push(format!("{}: ok ({secs} s) {summary}", kernel.display()));
            }
            Err(e) => {
                say!("vm-test: {} FAILED in {secs} s: {e:#}", kernel.display());
                table.push(format!("{}: FAILED ({secs} s)", kernel.display()));
                failures.push(format!("{}: {e:#}", kernel.display()));
            }
        }
    }
    say!(
        "vm-test: {} kernel(s) in {} s:\n  {}",
        kernels.len(),
        started.elapsed().as_secs(),
        table.join("\n  ")
    );
    if !failures.is_empty() {
        bail!("vm-test failed:\n{}", failures.join("\n"));
    }
    Ok(())
}

/// qemu (Debian) and virtme-ng (PyPI), installed when missing.
fn install_tools() -> Result<()> {
    // What boots the guests, and what the scenario runs in them from the host's own root:
    // busybox (virtme-ng's initramfs, the containers' root) and runc.
    for (cmd, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("runc", "runc"),
    ] {
        if which(cmd).is_none() {
            say!("vm-test: installing {package} with apt-get");
            apt_install(&[package])?;
        }
    }
    if which("vng").is_none() {
        say!("vm-test: installing virtme-ng with pip");
        let pip = || {
            let mut c = Command::new("python3");
            c.args(["-m", "pip", "install", "--quiet", "virtme-ng"]);
            c
        };
        if run(&mut pip()).is_err() {
            run(pip().arg("--break-system-packages")).context("pip install virtme-ng failed")?;
        }
        if which("vng").is_none() {
            bail!("virtme-ng installed but `vng` is not on PATH");
        }
    }
    Ok(())
}

/// The version part of `/boot/vmlinuz-<prefix>VERSION<suffix>` images, compared numerically.
fn image_version(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// The newest package of a series in apt's lists: (version, package name).
fn newest_package(pattern: &str, prefix: &str, suffix: &str) -> Result<Option<(u64, String)>> {
    let listing = capture(Command::new("apt-cache").args(["search", "--names-only", pattern]))
        .context("apt-cache search")?;
    Ok(listing
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|p| {
            let v = image_version(p.strip_prefix("linux-image-")?, &prefix[8..], suffix)?;
            Some((v, p.to_owned()))
        })
        .max())
}

/// The newest installed image of each series (all of them with `all`), installing the newest
/// package of a series that has none.
fn default_kernels(all: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (pattern, prefix, suffix) in SERIES {
        let mut found = installed(prefix, suffix)?;
        if found.is_empty() {
            // Package lists on a fresh machine can predate a series: refreshed once when the
            // search finds nothing.
            let newest = match newest_package(pattern, prefix, suffix)? {
                Some(p) => p,
                None => {
                    say!("vm-test: no package matches {pattern}: apt-get update");
                    run(Command::new("apt-get").arg("update")).context("apt-get update")?;
                    newest_package(pattern, prefix, suffix)?.with_context(|| {
                        format!("no package matches {pattern}, even after apt-get update")
                    })?
                }
            };
            say!("vm-test: installing {}", newest.1);
            apt_install(&[&newest.1])?;
            found = installed(prefix, suffix)?;
        }
        if all {
            out.extend(found.into_iter().map(|(_, p)| p));
        } else {
            out.extend(found.into_iter().max().map(|(_, p)| p));
        }
    }
    if out.len() < SERIES.len() {
        bail!("a kernel of the matrix is missing from /boot after installing it");
    }
    Ok(out)
}

fn installed(prefix: &str, suffix: &str) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir("/boot").context("/boot")? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(v) = image_version(&name, prefix, suffix) {
            out.push((v, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Boot `kernel` once with the scenario; its console output.
fn boot(kernel: &Path, script: &Path, bin: &Path) -> Result<String> {
    let mut cmd = Command::new("vng");
    cmd.arg("--run")
        .arg(kernel)
        .args([
            "--disable-kvm",
            "--force-9p",
            "--memory",
            "2G",
            "--verbose",
            "--exec",
        ])
        .arg(format!("bash {} {}", script.display(), bin.display()))
        // One TCG thread for both vCPUs. With a thread per vCPU, a vCPU can run code another
        // is patching through int3 (text_poke_bp: a static key flips as runc attaches its
        // device-cgroup program) after the patch is done, and the guest dies of
        // "Oops: int3" in devcgroup_check_permission (seen on 6.12; vng's status 255).
        .arg("--qemu-opts=-accel tcg,thread=single")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    say!("vm-test: $ {}", util::show(&cmd));
    let mut child = cmd.spawn().context("starting vng")?;
    let mut stdout = child.stdout.take().context("vng stdout")?;
    let mut stderr = child.stderr.take().context("vng stderr")?;
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + BOOT_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    // The whole console, for a failure's post-mortem: target/vm-test/<image>.log.
    let log_dir = util::target_dir()?.join("vm-test");
    let log = log_dir.join(format!(
        "{}.log",
        kernel
            .file_name()
            .map_or("kernel".into(), |n| n.to_string_lossy())
    ));
    fs::create_dir_all(&log_dir)
        .and_then(|()| fs::write(&log, format!("{out}\n--- stderr ---\n{err}")))
        .with_context(|| format!("writing {}", log.display()))?;
    say!(
        "vm-test: console of {} in {}",
        kernel.display(),
        log.display()
    );
    let tail = |s: &str| {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    // The kernel's console, from its first report of trouble (a guest that died with
    // vng's status 255 has panicked or oopsed), or its last lines.
    let console = |s: &str| {
        let lines: Vec<&str> = s.lines().collect();
        let from = lines
            .iter()
            .position(|l| TROUBLE.iter().any(|t| l.contains(t)))
            .map_or(lines.len().saturating_sub(30), |i| i.saturating_sub(5));
        lines[from..lines.len().min(from + 100)].join("\n")
    };
    match status {
        None => bail!(
            "the guest did not finish within {} s\n{}\n{}",
            BOOT_TIMEOUT.as_secs(),
            tail(&out),
            console(&err)
        ),
        Some(st) if !st.success() => {
            bail!("vng exited with {st}\n{}\n{}", tail(&out), console(&err))
        }
        Some(_) => Ok(out),
    }
}

/// What one guest printed, by pass.
#[derive(Default)]
struct Pass {
    records: Vec<Value>,
    stderr: Vec<String>,
}

/// A guest's output, sorted: `CTRACE-VM` facts, records and stderr by pass, doctor's report.
#[derive(Default)]
struct Guest {
    facts: Vec<String>,
    passes: std::collections::BTreeMap<String, Pass>,
    doctor: Option<Value>,
}

impl Guest {
    fn parse(out: &str) -> Result<Self> {
        let mut g = Self::default();
        for line in out.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(rest) = line.split_once("CTRACE-VM ").map(|(_, r)| r) {
                g.facts.push(rest.to_owned());
            } else if let Some(rest) = line.split_once("CTRACE-REC ").map(|(_, r)| r) {
                let (pass, json) = rest.split_once(' ').context("a CTRACE-REC line")?;
                let v: Value = serde_json::from_str(json).with_context(|| {
                    format!("a record that is not JSON (console noise?): {json}")
                })?;
                g.passes.entry(pass.to_owned()).or_default().records.push(v);
            } else if let Some(rest) = line.split_once("CTRACE-ERR ").map(|(_, r)| r) {
                let (pass, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                g.passes
                    .entry(pass.to_owned())
                    .or_default()
                    .stderr
                    .push(msg.to_owned());
            } else if let Some(json) = line.split_once("CTRACE-DOC ").map(|(_, r)| r) {
                g.doctor = Some(serde_json::from_str(json).with_context(|| {
                    format!("doctor's report is not JSON (console noise?): {json}")
                })?);
            }
        }
        Ok(g)
    }

    fn fact(&self, prefix: &str) -> Option<&str> {
        self.facts.iter().find_map(|f| f.strip_prefix(prefix))
    }
}

/// Checks a guest's output; a one-line summary of what it showed.
fn check(out: &str) -> Result<String> {
    let g = Guest::parse(out)?;
    if let Some(f) = g.fact("FAIL ") {
        bail!(
            "the scenario failed in the guest: {f}\n{}",
            g.facts.join("\n")
        );
    }
    let kernel = g
        .fact("kernel ")
        .context("the guest never ran the scenario")?
        .to_owned();
    if g.fact("done ").is_none() {
        bail!("the scenario did not finish: {}", g.facts.join("; "));
    }
    let mut summary = vec![format!("kernel {kernel}")];
    for (pass, expected_hook) in [("default", "fexit"), ("kprobe", "kprobe")] {
        let ctx = format!("pass {pass} on {kernel}");
        summary.extend(check_capability_pass(&g, pass, expected_hook).context(ctx)?);
    }
    summary.extend(check_incidents(&g.passes["default"])?);
    summary.push(check_doctor(&g)?);
    Ok(summary.join("; "))
}

/// One `watch` pass: ctrace exited cleanly, served capability checks through the hook
/// expected and said so, and gave the documented denied and allowed `CAP_CHOWN` records.
fn check_capability_pass(g: &Guest, pass: &str, want: &str) -> Result<Vec<String>> {
    let p = g
        .passes
        .get(pass)
        .with_context(|| format!("no output from pass {pass}"))?;
    if g.fact(&format!("exit {pass} ")) != Some("0") {
        bail!(
            "ctrace exited {:?}: {}",
            g.fact(&format!("exit {pass} ")),
            p.stderr.join("\n")
        );
    }
    let stats = p
        .records
        .iter()
        .rev()
        .find(|v| v["type"] == "stats")
        .context("no stats record")?;
    let hook = expect::capability_mechanism(stats).map_err(anyhow::Error::msg)?;
    // The matrix's kernels lack the tracepoint (before 6.13) and allow fexit: a kernel
    // that fell further back is a regression to look at, not a pass.
    if hook != want {
        bail!("capability checks served by {hook}, expected {want}");
    }
    let line = expect::capability_start_line(hook);
    if !p.stderr.iter().any(|l| l == line) {
        bail!("watch did not say {line:?}:\n{}", p.stderr.join("\n"));
    }
    let mut summary = Vec::new();
    for (verdict, container) in [("denied", "cdeny"), ("allowed", "callow")] {
        let id = format!("{container}-{pass}");
        let rec = p
            .records
            .iter()
            .find(|v| {
                v["type"] == "capability"
                    && v["capability"] == "CAP_CHOWN"
                    && v["verdict"] == verdict
                    && v["process"]["comm"] == "chown"
                    && v["container"]["name"] == id.as_str()
            })
            .with_context(|| format!("no {verdict} CAP_CHOWN record in {id}"))?;
        expect::capability_record(rec, "CAP_CHOWN", 0, verdict, "chown")
            .map_err(anyhow::Error::msg)?;
        if rec["container"]["runtime"] != "runc" {
            bail!("{id} not attributed to runc: {rec}");
        }
        if pass == "default" && verdict == "denied" {
            summary.push(format!("denied record: {rec}"));
        }
    }
    for (name, code) in [("deny", "1"), ("allow", "0")] {
        let got = g.fact(&format!("{name}-{pass} exit "));
        if got != Some(code) {
            bail!("chown in {name}-{pass} exited {got:?}, expected {code}");
        }
    }
    summary.push(format!("{pass}: capability via {hook}"));
    Ok(summary)
}

/// The incidents of the default pass: the OOM kill with the kernel's figures and scope, the
/// victim's exit without a made-up `group_dead`, the kill from the host.
fn check_incidents(p: &Pass) -> Result<Vec<String>> {
    let mut summary = Vec::new();
    let oom = p
        .records
        .iter()
        .find(|v| v["type"] == "oom_kill" && v["container"]["name"] == "coom")
        .context("no oom_kill record for coom")?;
    if oom["memory"]["limit_bytes"] != OOM_LIMIT {
        bail!("oom_kill limit is not {OOM_LIMIT}: {oom}");
    }
    if oom["scope"] != "container_limit" {
        bail!("oom_kill scope is not container_limit: {oom}");
    }
    let source = oom["memory"]["source"].as_str().unwrap_or("?");
    // Both kernels let ctrace read the OOM killer's context: the limit is the kernel's word.
    let stats = p
        .records
        .iter()
        .rev()
        .find(|v| v["type"] == "stats")
        .context("no stats record")?;
    let oom_hook = stats["mechanisms"]["oom_context"].as_str();
    if oom_hook != Some("fentry") {
        bail!("OOM context not read through fentry on oom_kill_process: {oom_hook:?}");
    }
    if source != "kernel" || oom["memory"]["limit_depth"] != 0 {
        bail!("oom_kill figures not from the kernel's OOM context: {oom}");
    }
    // The scope is the OOM killer's word: its context names the container's own memory
    // cgroup, a memcg-triggered OOM, and the victim's score.
    let c = &oom["oom_context"];
    let points = c["points"].as_i64().unwrap_or(0);
    if c["source"] != "oom_kill_process"
        || c["memcg_cgroup_id"] != oom["victim"]["cgroup_id"]
        || c["limit_depth"] != 0
        || c["trigger"] != "memcg"
        || points <= 0
        || c["oom_score_adj"] != oom["victim"]["oom_score_adj"]
    {
        bail!("oom_kill without the OOM killer's context (its own cgroup, memcg, points): {oom}");
    }
    summary.push(format!(
        "oom_kill limit {OOM_LIMIT} scope container_limit from {source}, scope from \
         oom_context (memcg {}, points {points})",
        c["memcg_cgroup_id"]
    ));
    // Neither kernel's sched_process_exit has group_dead: the record leaves it out, and
    // watch says so; sched_process_fork's child_comm is read from its fixed array.
    let exit = p
        .records
        .iter()
        .find(|v| v["type"] == "exit")
        .context("no exit record for the OOM victim (tail)")?;
    if exit.get("group_dead").is_some() || exit["signal"] != "SIGKILL" {
        bail!("the OOM victim's exit claims a group_dead or lacks its SIGKILL: {exit}");
    }
    let gap = "tracepoint sched_process_exit on this kernel lacks group_dead: exit records \
               leave it out";
    if !p.stderr.iter().any(|l| l.ends_with(gap))
        || p.stderr.iter().any(|l| l.contains("child_comm"))
    {
        bail!(
            "warnings about missing fields are not accurate:\n{}",
            p.stderr.join("\n")
        );
    }
    summary.push("exit without group_dead".to_owned());
    let kill = p
        .records
        .iter()
        .find(|v| {
            v["type"] == "kill"
                && v["signal"] == "SIGKILL"
                && v["target"]["container"]["name"] == "ckill"
        })
        .context("no kill incident for ckill")?;
    if kill["target"]["comm"] != "sleep" {
        bail!("kill target is not sleep: {kill}");
    }
    summary.push("kill SIGKILL of ckill".to_owned());
    Ok(summary)
}

/// `ctrace doctor --json` in the guest: every core feature on, and the mechanisms these
/// kernels give (no capability tracepoint; fexit and fentry allowed; pure cgroup v2).
fn check_doctor(g: &Guest) -> Result<String> {
    let d = g.doctor.as_ref().context("no doctor report")?;
    let errors = g.passes.get("doctor").map(|p| p.stderr.join("\n"));
    if g.fact("doctor exit ") != Some("0") {
        bail!(
            "doctor exited {:?}: {d}\n{}",
            g.fact("doctor exit "),
            errors.unwrap_or_default()
        );
    }
    expect::doctor_report(d).map_err(anyhow::Error::msg)?;
    let tracepoint = expect::doctor_hook_status(d, "tracepoint", "capability:cap_capable");
    if tracepoint.is_none_or(|h| h["status"] != "absent") {
        bail!("doctor: the capability tracepoint is not reported absent: {tracepoint:?}");
    }
    for (feature, want) in [
        ("capability", "fexit"),
        ("oom_kernel_figures", "fentry"),
        ("exec_exit", "tracepoint"),
        ("oom", "tracepoint"),
    ] {
        let got = expect::doctor_hook(d, feature).map_err(anyhow::Error::msg)?;
        if got != want {
            bail!("doctor: {feature} served by {got}, expected {want}: {d}");
        }
    }
    // Debian's kernels have the members the kernel's own run-queue stamp needs: run-queue
    // delay then comes from sched_switch alone, and the verifier of these kernels admits it.
    let runq = d["features"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["feature"] == "runq_delay")
        .and_then(|f| f["mechanism"].as_str())
        .unwrap_or("");
    if !runq.contains("sched_info") {
        bail!("doctor: run-queue delay not from the kernel's sched_info stamps: {runq:?}");
    }
    if d["kernel"]["cgroup_mode"] != "v2" {
        bail!(
            "doctor: cgroup mode {} in a pure v2 guest",
            d["kernel"]["cgroup_mode"]
        );
    }
    let features: Vec<String> = d["features"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["hook"].is_string() || f["core"] == true)
        .map(|f| {
            let how = f["hook"]
                .as_str()
                .unwrap_or(if f["on"] == true { "on" } else { "off" });
            format!("{}={how}", f["feature"].as_str().unwrap_or("?"))
        })
        .collect();
    Ok(format!("doctor: {}", features.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_versions() {
        assert_eq!(
            image_version("vmlinuz-6.1.0-57-amd64", "vmlinuz-6.1.0-", "-amd64"),
            Some(57)
        );
        assert_eq!(
            image_version(
                "vmlinuz-6.12.117+deb12-amd64",
                "vmlinuz-6.12.",
                "+deb12-amd64"
            ),
            Some(117)
        );
        assert_eq!(
            image_version("vmlinuz-6.1.0-57-cloud-amd64", "vmlinuz-6.1.0-", "-amd64"),
            None
        );
        assert_eq!(
            image_version(
                "linux-image-6.12.117+deb12-amd64"
                    .strip_prefix("linux-image-")
                    .unwrap(),
                "6.12.",
                "+deb12-amd64"
            ),
            Some(117)
        );
    }

    #[test]
    fn a_guest_that_printed_nothing_fails() {
        assert!(check("").is_err());
        assert!(check("CTRACE-VM kernel 6.1.0\nCTRACE-VM FAIL runc spec\n").is_err());
        assert!(check("CTRACE-VM kernel 6.1.0\nCTRACE-VM done 3\n").is_err());
        assert!(check("CTRACE-VM kernel 6.1.0\nCTRACE-REC default {bad\n").is_err());
    }
}
