//! The parsers of untrusted input never panic: the record decoder (ring buffer bytes), the
//! cgroup path and `/proc/PID/cgroup` parsers, runc's `state.json`, OCI `config.json`,
//! Docker's `config.v2.json` and `hostconfig.json`, and the `/proc` `stat` and `status`
//! readers. Each is fed seeded mutations of valid inputs (bit flips, byte changes,
//! insertions, deletions, truncations, splices): a fixed number of cases from a fixed seed, so
//! a run is the same on every machine and takes seconds. The same parsers are the cargo-fuzz
//! targets of `fuzz/` (`cargo xtask fuzz`), for longer, coverage-guided runs.

use base64::Engine as _;
use procfs::FromRead as _;

/// Cases per parser.
const CASES: usize = 20_000;

/// xorshift64*: a small deterministic generator (no dependency, same sequence everywhere).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that make parsers take unusual paths.
const INTERESTING: &[u8] =
    b"\0\xff\x7f\x80{}[]\":,\\\n /0123456789-eE.nulltruefalse\xc3\xa9\xe2\x80\xae";

/// One mutation of `seeds[..]`: up to four edits of a seed, sometimes spliced with another.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => v.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 if at < v.len() => {
                let n = 1 + rng.below((v.len() - at).min(16));
                v.drain(at..at + n);
            }
            4 => v.truncate(at),
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                let n = rng.below(8);
                let b = (rng.next() & 0xff) as u8;
                v.splice(at..at, std::iter::repeat_n(b, n));
            }
        }
    }
    v
}

/// Feed `f` the seeds, which it must accept, then [`CASES`] mutations of them. `f` says
/// whether it accepted an input: the mutations must give both outcomes (inputs near enough
/// to valid to go deep, and broken ones), or the run proves little.
fn run(name: &str, seed: u64, seeds: &[Vec<u8>], f: impl Fn(&[u8]) -> bool) {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    for s in seeds {
        assert!(
            f(s),
            "{name}: a seed is refused: {:?}",
            String::from_utf8_lossy(s)
        );
    }
    let mut rng = Rng(seed | 1);
    let accepted = (0..CASES).filter(|_| f(&mutate(&mut rng, seeds))).count();
    assert!(
        accepted > 0 && accepted < CASES,
        "{name}: {accepted} of {CASES} mutations accepted"
    );
}

fn strs(seeds: &[&str]) -> Vec<Vec<u8>> {
    seeds.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn the_record_decoder_never_panics() {
    // Real ring records: those of the golden capture.
    let capture = include_str!("captures/lab.capture");
    let seeds: Vec<Vec<u8>> = capture
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["f"] == "record")
        .filter_map(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v["b"].as_str()?)
                .ok()
        })
        .collect();
    assert!(seeds.len() > 100, "records in the capture: {}", seeds.len());
    run("event::decode", 1, &seeds, |b| {
        tracer::event::decode(b).is_ok()
    });
}

#[test]
fn the_cgroup_path_parsers_never_panic() {
    let seeds = strs(&[
        "/system.slice/docker-5f9cc76e3db05ee8276f704e67b9fd97f4e022d93d4e4fcfa7ea652d371ddf93.scope",
        "/docker/5f9cc76e3db05ee8276f704e67b9fd97f4e022d93d4e4fcfa7ea652d371ddf93",
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789.scope",
        "0::/docker/5f9cc76e3db05ee8276f704e67b9fd97f4e022d93d4e4fcfa7ea652d371ddf93\n4:memory:/docker/5f9c\n1:name=systemd:/\n",
    ]);
    run("cgroup paths", 2, &seeds, |b| {
        let s = String::from_utf8_lossy(b);
        let _ = tracer::container::cgroup_path::parse_proc_cgroup(&s);
        tracer::container::cgroup_path::parse_cgroup_path(&s).is_some() || s.contains("::")
    });
}

#[test]
fn the_runtime_state_parsers_never_panic() {
    let runc = strs(&[
        r#"{"id":"web","init_process_pid":4242,"init_process_start":123456,"created":"2026-11-29T18:38:13.262143086Z","config":{"labels":["bundle=/run/b","org.ctrace=1"],"cgroups":{"path":"/docker/web"},"namespaces":[{"type":"NEWPID","path":""}]},"cgroup_paths":{"":"/sys/fs/cgroup/unified/docker/web","memory":"/sys/fs/cgroup/memory/docker/web"},"namespace_paths":{"NEWPID":"/proc/4242/ns/pid"}}"#,
        r#"{"id":"x","config":null}"#,
    ]);
    run("runc state.json", 3, &runc, |b| {
        tracer::container::runc_state::parse_runc_state(b).is_ok()
    });
    let oci = strs(&[
        r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_CHOWN"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN"],"inheritable":[],"ambient":[]}},"root":{"path":"rootfs"},"annotations":{"io.kubernetes.pod.name":"web-0"},"linux":{"resources":{"memory":{"limit":67108864},"cpu":{"quota":1000,"period":100000}},"cgroupsPath":"/default/web","namespaces":[{"type":"pid"},{"type":"network"}]}}"#,
    ]);
    run("OCI config.json", 4, &oci, |b| {
        tracer::container::oci_config::parse_oci_config(b).is_ok()
    });
    let docker = strs(&[
        r#"{"ID":"5f9c","Name":"/web","Config":{"Image":"busybox:local","Labels":{"com.docker.compose.project":"p","com.docker.compose.service":"s"},"Hostname":"h"},"State":{"Running":true,"Pid":4242,"ExitCode":0,"StartedAt":"2026-11-29T18:38:13.262143086Z","OOMKilled":false},"RestartCount":2,"Image":"sha256:abc"}"#,
        r#"{"CapAdd":["NET_ADMIN"],"CapDrop":["ALL"],"Privileged":false,"PidsLimit":100,"Memory":67108864,"NanoCpus":10000000,"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":5},"CgroupParent":"/pods"}"#,
    ]);
    run(
        "Docker config.v2.json and hostconfig.json",
        5,
        &docker,
        |b| {
            let v2 = tracer::docker::config_v2::parse_config_v2(b).is_ok();
            tracer::docker::config_v2::parse_hostconfig(b).is_ok() || v2
        },
    );
}

#[test]
fn the_proc_readers_never_panic() {
    let seeds = strs(&[
        "4242 (tail) R 4200 4242 4200 0 -1 4194560 25000 0 0 0 120 30 0 0 20 0 1 0 35675901 110000000 25000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
        "77 (a (b) c) S 1 77 77 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 5 1 1 1\n",
        "Name:\ttail\nUmask:\t0022\nState:\tR (running)\nTgid:\t4242\nPid:\t4242\nPPid:\t4200\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t4242\t1\nVmRSS:\t100000 kB\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t2\n",
    ]);
    run("/proc stat and status", 6, &seeds, |b| {
        let stat = tracer::inspect::proctree::StatLine::from_read(b).is_ok();
        let status = tracer::inspect::caps::ProcStatus::from_read(b)
            .is_ok_and(|s| s.name.is_some() || s.caps.is_some());
        stat || status
    });
}

/// Every input of the checked-in libFuzzer corpus (`fuzz/corpus/TARGET`, what the long runs of
/// `cargo xtask fuzz` kept: docs/reliability.md) through the parser its target feeds, as the
/// target does. The runs found no crash; this keeps it so, in seconds, without libFuzzer.
#[test]
fn the_fuzz_corpus_replays_without_a_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    type Target = (&'static str, fn(&[u8]));
    let targets: [Target; 6] = [
        ("record_decoder", |b| {
            let _ = tracer::event::decode(b);
        }),
        ("cgroup_path", |b| {
            if let Ok(s) = std::str::from_utf8(b) {
                let _ = tracer::container::cgroup_path::parse_cgroup_path(s);
                let _ = tracer::container::cgroup_path::parse_proc_cgroup(s);
            }
        }),
        ("runc_state", |b| {
            let _ = tracer::container::runc_state::parse_runc_state(b);
        }),
        ("oci_config", |b| {
            let _ = tracer::container::oci_config::parse_oci_config(b);
        }),
        ("docker_config_v2", |b| {
            let _ = tracer::docker::config_v2::parse_config_v2(b);
            let _ = tracer::docker::config_v2::parse_hostconfig(b);
        }),
        ("proc_readers", |b| {
            let _ = tracer::inspect::proctree::StatLine::from_read(b);
            let _ = tracer::inspect::caps::ProcStatus::from_read(b);
        }),
    ];
    for (target, parse) in targets {
        let dir = root.join(target);
        let inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        // The corpus is part of the tree: an empty one means it was lost, not that all is well.
        assert!(
            inputs.len() >= 10,
            "{}: {} inputs",
            dir.display(),
            inputs.len()
        );
        for path in &inputs {
            let bytes = std::fs::read(path).unwrap();
            let ok = std::panic::catch_unwind(|| parse(&bytes));
            assert!(ok.is_ok(), "{target}: {} panicked", path.display());
        }
        eprintln!("{target}: {} corpus inputs replayed", inputs.len());
    }
}
