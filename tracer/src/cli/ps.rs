//! `ctrace ps`: every container of every runtime (Docker, containerd in any namespace, plain
//! runc under any state root) in one table, from their state on disk; runtime APIs only add
//! names and images.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use tracer::{
    cgroup::Mounts,
    container::{short_id, Runtime},
    docker, enrich,
    resolve::{self, Container, Names, Resolver},
    sink::{escape::terminal, filter},
    throttle::{self, CpuPaths},
    units::{bytes, format_cpus},
};

#[derive(Debug, Args)]
pub struct PsArgs {
    /// One JSON object per container per line.
    #[arg(long)]
    pub json: bool,
    /// Also scan this runc state root (`runc --root DIR`); repeatable.
    #[arg(long, value_name = "DIR")]
    pub runc_root: Vec<PathBuf>,
    /// Only containers of this runtime; repeatable.
    #[arg(long, value_name = "RUNTIME", value_parser = filter::parse_runtime)]
    pub runtime: Vec<Runtime>,
    /// Docker API socket (names and images also come from Docker's store on disk).
    #[arg(long, value_name = "PATH", default_value = docker::DEFAULT_SOCKET)]
    pub docker_socket: PathBuf,
    /// Do not ask the Docker API or ctr.
    #[arg(long)]
    pub no_api: bool,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub container: Arc<Container>,
    pub cgroup_id: Option<u64>,
    pub state: &'static str,
    pub memory_limit: Option<u64>,
    pub memory_usage: Option<u64>,
    pub cpu_quota: Option<f64>,
}

fn state_of(c: &Container) -> &'static str {
    state_in(c, tracer::host::proc::root())
}

/// `running` when the init runs (the process at its pid started when runc's state says: a
/// reused pid is another process), `stopped` when it does not, `created` when no init is known.
fn state_in(c: &Container, proc_root: &Path) -> &'static str {
    let Some(pid) = c.init_pid else {
        return "created";
    };
    let start = match tracer::inspect::read_stat_at(proc_root, pid) {
        Ok(stat) => stat.start_time,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => None,
        Err(_) => return "stopped",
    };
    match (c.init_start, start) {
        (Some(want), Some(got)) if want != got => "stopped",
        _ => "running",
    }
}

/// A resolver that has read every runc state root (the default ones and `extra_roots`) and,
/// unless `no_api`, taken names from the Docker API and images from containerd (no eBPF
/// needed). Shared by `ps` and `inspect`.
pub fn enriched_resolver(
    extra_roots: &[PathBuf],
    docker_socket: &Path,
    no_api: bool,
) -> anyhow::Result<Resolver> {
    let mut resolver = Resolver::new(resolve::Config {
        extra_state_roots: extra_roots.to_vec(),
        ..resolve::Config::default()
    });
    resolver.rescan();
    if !no_api {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        rt.block_on(async {
            if let Ok(client) =
                docker::DockerClient::connect(docker_socket, docker::DEFAULT_TIMEOUT).await
            {
                if let Ok(list) = client.list(true).await {
                    for info in list {
                        resolver.set_names(&info.id, Names::from(&info));
                    }
                }
            }
            for c in resolver.take_new() {
                if let (Runtime::Containerd, Some(ns), None) = (c.runtime, &c.namespace, &c.image) {
                    if let Some(image) =
                        enrich::containerd_image(ns, &c.id, Duration::from_secs(2)).await
                    {
                        resolver.set_names(
                            &c.id,
                            Names {
                                image: Some(image),
                                ..Names::default()
                            },
                        );
                    }
                }
            }
        });
    }
    Ok(resolver)
}

/// Gather the rows (no eBPF needed).
pub fn rows(args: &PsArgs) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let mut resolver = enriched_resolver(&args.runc_root, &args.docker_socket, args.no_api)?;
    let mounts = Mounts::current();
    let mut out = Vec::new();
    for (c, cgroup_id, gone) in resolver.containers() {
        if gone || !(args.runtime.is_empty() || args.runtime.contains(&c.runtime)) {
            continue;
        }
        let mem = c
            .cgroup_path_for("memory")
            .and_then(|p| mounts.memory(p))
            .map(|m| m.read());
        let cpu_quota = c
            .cgroup_path_for("cpu")
            .and_then(CpuPaths::for_cgroup)
            .and_then(|p| throttle::read_sample(&p, throttle::monotonic_now()).ok())
            .and_then(|s| s.quota)
            .map(|q| q.cpus());
        out.push(Row {
            state: state_of(&c),
            memory_limit: mem.as_ref().and_then(|m| m.limit_bytes),
            memory_usage: mem.as_ref().and_then(|m| m.usage_bytes),
            cpu_quota,
            container: c,
            cgroup_id,
        });
    }
    out.sort_by(|a, b| {
        (
            a.container.runtime,
            a.container.namespace.as_deref(),
            a.container.display(),
        )
            .cmp(&(
                b.container.runtime,
                b.container.namespace.as_deref(),
                b.container.display(),
            ))
    });
    Ok((out, std::mem::take(&mut resolver.warnings)))
}

pub fn json_row(r: &Row) -> serde_json::Value {
    let c = &r.container;
    json!({
        "runtime": c.runtime,
        "id": c.id,
        "name": c.name,
        "image": c.image,
        "namespace": c.namespace,
        "state": r.state,
        "init_pid": c.init_pid,
        "cgroup": c.cgroup_path,
        "cgroup_id": r.cgroup_id,
        "memory_limit_bytes": r.memory_limit,
        "memory_usage_bytes": r.memory_usage,
        "cpu_quota_cpus": r.cpu_quota,
        "labels": c.labels,
        "pod": c.pod,
    })
}

/// The human table.
pub fn table(rows: &[Row]) -> String {
    let head = [
        "RUNTIME",
        "NAMESPACE",
        "ID",
        "NAME",
        "IMAGE",
        "STATE",
        "PID",
        "CGROUP",
        "MEMORY",
        "CPUS",
    ];
    let mut lines: Vec<[String; 10]> = vec![head.map(str::to_owned)];
    for r in rows {
        let c = &r.container;
        lines.push([
            c.runtime.to_string(),
            terminal(c.namespace.as_deref().unwrap_or("-")),
            terminal(short_id(&c.id)),
            terminal(c.name.as_deref().unwrap_or("-")),
            terminal(c.image.as_deref().unwrap_or("-")),
            r.state.to_owned(),
            c.init_pid.map_or_else(|| "-".into(), |p| p.to_string()),
            terminal(c.cgroup_path.as_deref().unwrap_or("-")),
            r.memory_limit.map_or_else(|| "-".into(), bytes),
            r.cpu_quota.map_or_else(|| "-".into(), format_cpus),
        ]);
    }
    super::render_columns(&lines)
}

pub fn run(args: &PsArgs) -> anyhow::Result<()> {
    let (rows, warnings) = rows(args)?;
    for w in warnings {
        eprintln!("ctrace: warning: {}", terminal(&w));
    }
    let text = if args.json {
        rows.iter()
            .map(|r| format!("{}\n", tracer::sink::json::line(&json_row(r))))
            .collect()
    } else {
        table(&rows)
    };
    super::print_stdout(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(init_pid: Option<u32>, init_start: Option<u64>) -> Container {
        Container {
            init_pid,
            init_start,
            ..Container::named(&"a".repeat(64), "web", Runtime::Runc)
        }
    }

    /// A fake /proc whose pid 42 started at tick 34361.
    #[test]
    fn state_checks_the_inits_start_time() {
        let root = std::env::temp_dir().join(format!("ctrace-ps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("42")).unwrap();
        let mut stat = String::from("42 (sleep) S");
        for i in 4..=21 {
            stat.push_str(&format!(" {i}"));
        }
        stat.push_str(" 34361 0 0");
        std::fs::write(root.join("42/stat"), stat).unwrap();
        assert_eq!(
            state_in(&container(Some(42), Some(34361)), &root),
            "running"
        );
        assert_eq!(
            state_in(&container(Some(42), Some(1)), &root),
            "stopped",
            "pid 42 is another process now"
        );
        assert_eq!(state_in(&container(Some(42), None), &root), "running");
        assert_eq!(state_in(&container(Some(43), Some(1)), &root), "stopped");
        assert_eq!(state_in(&container(None, None), &root), "created");
        let _ = std::fs::remove_dir_all(&root);
    }
}
