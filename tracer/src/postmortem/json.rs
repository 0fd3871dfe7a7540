//! The report as one JSON object (`ctrace.postmortem.v1`).

use serde_json::{json, Value};

use super::{Dated, Oom, Postmortem, Story};
use crate::{clock::rfc3339_ns, journal::ContainerRow, record::Record};

fn container_json(c: &ContainerRow) -> Value {
    json!({
        "key": c.key,
        "id": c.id,
        "name": c.name,
        "runtime": c.runtime,
        "image": c.image,
        "namespace": c.namespace,
        "labels": c.labels,
        "first_seen": rfc3339_ns(c.first_seen_ns),
        "last_seen": rfc3339_ns(c.last_seen_ns),
        "gone": c.gone_ns.map(rfc3339_ns),
        "exit_code": c.exit_code,
    })
}

fn entry_json(e: &Dated) -> Value {
    let r = serde_json::to_value(&e.record).unwrap_or(Value::Null);
    let mut v = json!({
        "ts": rfc3339_ns(e.ts_ns),
        "type": e.record.type_name(),
        "explanation": e.record.explanation(),
    });
    for f in [
        "init",
        "filename",
        "exit",
        "reason",
        "by",
        "signal",
        "origin",
        "sender",
        "target",
        "target_exit",
        "container_stopped",
        "count",
        "since",
        "window_s",
        "deaths",
    ] {
        if let Some(x) = r.get(f) {
            v[f] = x.clone();
        }
    }
    v
}

fn oom_json(o: &Oom) -> Value {
    let r = &o.record;
    let v = &r.victim;
    let memory = r.memory.as_ref();
    json!({
        "ts": rfc3339_ns(o.ts_ns),
        "scope": r.scope,
        "limit_bytes": o.limit,
        "usage_bytes": memory.and_then(|m| m.usage_bytes),
        "peak_bytes": memory.and_then(|m| m.peak_bytes),
        "limit_depth": memory.and_then(|m| m.limit_depth),
        "figures_stale": memory.is_some_and(|m| m.stale),
        "curve": o.curve.iter().map(|s| json!({
            "ts": rfc3339_ns(s.ts_ns),
            "usage_bytes": s.usage_bytes,
        })).collect::<Vec<_>>(),
        "victim": {
            "pid": v.party.pid,
            "comm": v.party.comm,
            "rss_bytes": v.rss_kb * 1024,
            "anon_rss_bytes": v.anon_rss_kb * 1024,
            "file_rss_bytes": v.file_rss_kb * 1024,
            "shmem_rss_bytes": v.shmem_rss_kb * 1024,
        },
        "others": o.processes.as_ref().map(|(_, procs)| procs.iter()
            .filter(|p| p.pid != v.party.pid)
            .map(|p| json!({"pid": p.pid, "comm": p.comm, "rss_bytes": p.rss_bytes}))
            .collect::<Vec<_>>()),
        "others_sampled": o.processes.as_ref().map(|(ts, _)| rfc3339_ns(*ts)),
        "trigger": r.trigger,
        "own_allocation": r.trigger.pid == v.party.pid,
        "victim_exit": r.victim_exit,
        "container_stopped": r.container_stopped,
        "explanation": r.explanation,
        "record": Record::OomKill(r.clone()),
    })
}

fn story_json(s: &Story) -> Value {
    json!({
        "container": container_json(&s.container),
        "end": s.last_stop.as_ref().map(entry_json),
        "starts": s.starts,
        "stops": s.stops,
        "restarts": s.starts.saturating_sub(1),
        "lifecycle": s.lifecycle.iter().map(entry_json).collect::<Vec<_>>(),
        "oom_kills_total": s.oom_total,
        "oom_kills": s.ooms.iter().map(oom_json).collect::<Vec<_>>(),
        "kills_total": s.kill_total,
        "kills": s.kills.iter().map(entry_json).collect::<Vec<_>>(),
        "restart_loops_total": s.loop_total,
        "restart_loops": s.loops.iter().map(entry_json).collect::<Vec<_>>(),
        "unreadable_records": s.unreadable,
    })
}

/// The report as one JSON object.
pub fn to_json(pm: &Postmortem) -> Value {
    json!({
        "schema": "ctrace.postmortem.v1",
        "journal": pm.journal.display().to_string(),
        "query": pm.query,
        "matches": pm.matches.iter().map(container_json).collect::<Vec<_>>(),
        "stories": pm.stories.iter().map(story_json).collect::<Vec<_>>(),
    })
}
