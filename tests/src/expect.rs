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
pub const CAPABILITY_HOOKS: &[&str] = &["tracepoint", "fexit", "kprobe"];

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
        "fexit" => "ctrace: capability checks via fexit on cap_capable()",
        "kprobe" => "ctrace: capability checks via kprobe/kretprobe on cap_capable()",
        _ => "ctrace: capability checks via ?",
    }
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
    fn mechanism_from_stats() {
        let s = json!({"type":"stats","mechanisms":{"capability":"fexit"}});
        assert_eq!(capability_mechanism(&s), Ok("fexit"));
        assert!(capability_mechanism(&json!({"type":"stats"})).is_err());
        assert!(capability_mechanism(&json!({"mechanisms":{"capability":"x"}})).is_err());
    }
}
