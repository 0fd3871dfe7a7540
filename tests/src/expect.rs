//! The facts a record must carry whatever the kernel and whichever hook produced it. Shared by
//! the host's integration tests and `cargo xtask vm-test` (which includes this file by path and
//! runs the same checks on the records of 6.1 and 6.12 guests): one definition of "the same
//! record". Pure functions over parsed NDJSON; each error says what differed.

use serde_json::Value;

/// Top-level fields of every `capability` record (docs/events.md), no more and no fewer.
pub const CAPABILITY_FIELDS: &[&str] = &[
    "cap",
    "capability",
    "cgroup_id",
    "container",
    "count",
    "explanation",
    "host",
    "process",
    "ret",
    "schema",
    "span_ns",
    "ts",
    "type",
    "verdict",
];

/// Fields of `process` in a capability record.
pub const CAPABILITY_PROCESS_FIELDS: &[&str] = &["comm", "pid", "ppid", "tid", "uid"];

/// The hooks that may serve capability checks.
pub const CAPABILITY_HOOKS: &[&str] = &["tp_btf", "tracepoint", "fexit", "kprobe"];

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    k.sort_unstable();
    k
}

fn same_fields(what: &str, v: &Value, expected: &[&str]) -> Result<(), String> {
    let mut want = expected.to_vec();
    want.sort_unstable();
    let got = keys(v);
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: fields {got:?}, expected {want:?}"))
    }
}

/// A `capability` record of `capability` (e.g. `CAP_CHOWN`, number `cap`) with `verdict`
/// (`denied` or `allowed`) asked by a process named `comm`, with exactly the documented fields.
pub fn capability_record(
    v: &Value,
    capability: &str,
    cap: u64,
    verdict: &str,
    comm: &str,
) -> Result<(), String> {
    let fail = |why: String| Err(format!("{why} in {v}"));
    same_fields("capability record", v, CAPABILITY_FIELDS).or_else(fail)?;
    same_fields("its process", &v["process"], CAPABILITY_PROCESS_FIELDS).or_else(fail)?;
    if v["schema"] != "ctrace.v1" || v["type"] != "capability" {
        return fail("not a ctrace.v1 capability record".into());
    }
    if v["capability"] != capability || v["cap"] != cap {
        return fail(format!("not {capability} ({cap})"));
    }
    if v["verdict"] != verdict {
        return fail(format!("verdict is not {verdict}"));
    }
    let ret = v["ret"].as_i64().unwrap_or(i64::MIN);
    let ret_ok = match verdict {
        "allowed" => ret == 0,
        // -EPERM: cap_capable() says no with it (security/commoncap.c).
        "denied" => ret == -1,
        _ => false,
    };
    if !ret_ok {
        return fail(format!("ret {ret} does not match verdict {verdict}"));
    }
    if v["process"]["comm"] != comm {
        return fail(format!("process is not {comm}"));
    }
    for (field, value) in [
        ("process.pid", &v["process"]["pid"]),
        ("cgroup_id", &v["cgroup_id"]),
        ("count", &v["count"]),
    ] {
        if value.as_u64().unwrap_or(0) == 0 {
            return fail(format!("{field} is not a positive number"));
        }
    }
    if v["explanation"]
        .as_str()
        .is_none_or(|e| !e.contains(capability))
    {
        return fail("explanation does not name the capability".into());
    }
    Ok(())
}

/// The hook that served capability checks, from the closing `stats` record
/// (`mechanisms.capability`); an error when absent or not one ctrace knows.
pub fn capability_mechanism(stats: &Value) -> Result<&str, String> {
    let m = stats["mechanisms"]["capability"]
        .as_str()
        .ok_or_else(|| format!("stats record without mechanisms.capability: {stats}"))?;
    if CAPABILITY_HOOKS.contains(&m) {
        Ok(m)
    } else {
        Err(format!("unknown capability mechanism {m:?}"))
    }
}

/// The start line `watch` prints for that mechanism (stderr).
pub fn capability_start_line(mechanism: &str) -> &'static str {
    match mechanism {
        "tracepoint" => "ctrace: capability checks via the capability:cap_capable tracepoint",
        "tp_btf" => {
            "ctrace: capability checks via the capability:cap_capable tracepoint (BTF-typed)"
        }
        "fexit" => "ctrace: capability checks via fexit on cap_capable()",
        "kprobe" => "ctrace: capability checks via kprobe/kretprobe on cap_capable()",
        _ => "ctrace: capability checks via ?",
    }
}

/// The features of `ctrace doctor --json`, in its order.
pub const DOCTOR_FEATURES: &[&str] = &[
    "exec_exit",
    "kills",
    "oom",
    "oom_kernel_figures",
    "capability",
    "runq_delay",
    "throttling",
    "docker",
    "containerd",
    "runc",
    "journal",
];

/// The features whose absence makes `ctrace doctor` exit non-zero.
pub const DOCTOR_CORE: &[&str] = &["exec_exit", "kills", "oom", "capability", "throttling"];

/// A `ctrace doctor --json` report that holds together: the kernel described, every feature
/// in order with the documented fields, a hook named by a feature attached among the hooks
/// tried, every refusal with its error, and `ok` true exactly when every core feature is on.
pub fn doctor_report(v: &Value) -> Result<(), String> {
    let fail = |why: String| Err(format!("doctor: {why} in {v}"));
    let k = &v["kernel"];
    if k["release"].as_str().is_none_or(str::is_empty) {
        return fail("no kernel release".into());
    }
    if !["v1", "hybrid", "v2", "none"].contains(&k["cgroup_mode"].as_str().unwrap_or("")) {
        return fail(format!("cgroup mode {}", k["cgroup_mode"]));
    }
    let features = v["features"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let names: Vec<&str> = features
        .iter()
        .filter_map(|f| f["feature"].as_str())
        .collect();
    if names != DOCTOR_FEATURES {
        return fail(format!("features {names:?}"));
    }
    let hooks = v["hooks"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for h in hooks {
        let status = h["status"].as_str().unwrap_or("");
        let complete = match status {
            "attached" => true,
            "refused" => h["error"].as_str().is_some_and(|e| !e.is_empty()),
            "absent" | "not_tried" => h["why"].as_str().is_some_and(|e| !e.is_empty()),
            _ => false,
        };
        if !complete || h["hook"].as_str().is_none() || h["target"].as_str().is_none() {
            return fail(format!("hook {h}"));
        }
    }
    let mut all_core = true;
    for f in features {
        let name = f["feature"].as_str().unwrap_or("");
        let (Some(on), Some(core)) = (f["on"].as_bool(), f["core"].as_bool()) else {
            return fail(format!("feature {f}"));
        };
        if core != DOCTOR_CORE.contains(&name) {
            return fail(format!("{name} core {core}"));
        }
        if f["mechanism"].as_str().is_none_or(str::is_empty) {
            return fail(format!("{name} without a mechanism or reason"));
        }
        if let Some(hook) = f["hook"].as_str() {
            let served = hooks
                .iter()
                .any(|h| h["hook"] == hook && h["status"] == "attached");
            if !on || !served {
                return fail(format!("{name} names hook {hook}, which is not attached"));
            }
        }
        all_core &= on || !core;
    }
    if v["ok"] != all_core {
        return fail(format!("ok is not {all_core}"));
    }
    Ok(())
}

/// The hook serving `feature` in a doctor report; an error when the feature is off.
pub fn doctor_hook<'a>(v: &'a Value, feature: &str) -> Result<&'a str, String> {
    let f = v["features"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["feature"] == feature))
        .ok_or_else(|| format!("doctor: no feature {feature}"))?;
    if f["on"] != true {
        return Err(format!("doctor: {feature} is off: {}", f["mechanism"]));
    }
    f["hook"]
        .as_str()
        .ok_or_else(|| format!("doctor: {feature} names no hook: {f}"))
}

/// The status of `hook` on `target` among the hooks doctor tried (`attached`, `refused`, ...).
pub fn doctor_hook_status<'a>(v: &'a Value, hook: &str, target: &str) -> Option<&'a Value> {
    v["hooks"]
        .as_array()?
        .iter()
        .find(|h| h["hook"] == hook && h["target"] == target)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn denied() -> Value {
        json!({"cap":0,"capability":"CAP_CHOWN","cgroup_id":4242,"container":null,"count":1,
            "explanation":"chown (pid 7) was denied CAP_CHOWN","host":"vm",
            "process":{"comm":"chown","pid":7,"ppid":1,"tid":7,"uid":0},"ret":-1,
            "schema":"ctrace.v1","span_ns":0,"ts":"2026-12-02T23:44:25.217941932Z",
            "type":"capability","verdict":"denied"})
    }

    #[test]
    fn accepts_the_documented_shape_and_names_what_differs() {
        let v = denied();
        capability_record(&v, "CAP_CHOWN", 0, "denied", "chown").unwrap();
        let e = capability_record(&v, "CAP_CHOWN", 0, "allowed", "chown").unwrap_err();
        assert!(e.contains("verdict"), "{e}");
        let mut extra = v.clone();
        extra["new"] = json!(1);
        let e = capability_record(&extra, "CAP_CHOWN", 0, "denied", "chown").unwrap_err();
        assert!(e.contains("fields"), "{e}");
        let mut zero = v.clone();
        zero["cgroup_id"] = json!(0);
        assert!(capability_record(&zero, "CAP_CHOWN", 0, "denied", "chown").is_err());
        let mut allowed = v;
        allowed["verdict"] = json!("allowed");
        assert!(capability_record(&allowed, "CAP_CHOWN", 0, "allowed", "chown").is_err());
        allowed["ret"] = json!(0);
        capability_record(&allowed, "CAP_CHOWN", 0, "allowed", "chown").unwrap();
    }

    #[test]
    fn doctor_reports_hold_together() {
        let mut v = json!({
            "kernel": {"release": "6.1.0-57-amd64", "cgroup_mode": "v2"},
            "hooks": [
                {"hook": "tracepoint", "target": "capability:cap_capable", "program": "cap_capable",
                 "status": "absent", "why": "the tracepoint does not exist on this kernel"},
                {"hook": "fexit", "target": "cap_capable", "program": "cap_capable_fexit",
                 "status": "attached"},
                {"hook": "fentry", "target": "oom_kill_process", "program": "x",
                 "status": "refused", "errno": 1, "error": "EPERM"}
            ],
            "features": DOCTOR_FEATURES.iter().map(|f| json!({
                "feature": f, "core": DOCTOR_CORE.contains(f), "on": true, "mechanism": "m"
            })).collect::<Vec<_>>(),
            "warnings": [],
            "ok": true
        });
        v["features"][4]["hook"] = json!("fexit");
        doctor_report(&v).unwrap();
        assert_eq!(doctor_hook(&v, "capability"), Ok("fexit"));
        assert_eq!(
            doctor_hook_status(&v, "fentry", "oom_kill_process").unwrap()["errno"],
            1
        );
        // A hook named but not attached, a core feature off with ok true: both caught.
        let mut bad = v.clone();
        bad["features"][4]["hook"] = json!("kprobe");
        assert!(doctor_report(&bad).unwrap_err().contains("not attached"));
        let mut bad = v.clone();
        bad["features"][0]["on"] = json!(false);
        bad["features"][0]["hook"] = Value::Null;
        assert!(doctor_report(&bad).unwrap_err().contains("ok is not false"));
        bad["ok"] = json!(false);
        doctor_report(&bad).unwrap();
        assert!(doctor_hook(&bad, "exec_exit").is_err());
    }

    #[test]
    fn mechanism_from_stats() {
        let s = json!({"type":"stats","mechanisms":{"capability":"fexit"}});
        assert_eq!(capability_mechanism(&s), Ok("fexit"));
        assert!(capability_mechanism(&json!({"type":"stats"})).is_err());
        assert!(capability_mechanism(&json!({"mechanisms":{"capability":"x"}})).is_err());
    }
}
