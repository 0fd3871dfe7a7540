//! Scale with the event rate: the highest sustained rate of records `ctrace watch` delivers
//! with no loss at the default ring size, and what it loses at twice that rate.
//!
//! The records are SIGTERMs sent at a set rate to a process that ignores them: one record
//! each, a kind ctrace reports by default, and a rate one thread can set precisely (far above
//! what a fork/exec loop reaches on two cores). Identical ignored signals are folded in the
//! kernel by default, which would leave nothing to measure: `watch` runs here with
//! `--signal-window 0`, every signal a record.

use std::thread;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::{
    stats::Figure,
    tracer::{self, Config, Env, Output},
    workload, Plan,
};
use crate::util::say;

/// One trial: a fresh `watch`, signals at `rate` for the plan's time; (rate reached,
/// delivered, lost).
fn trial(plan: &Plan, env: &Env<'_>, rate: u64, log: &mut Vec<Value>) -> Result<(f64, u64, u64)> {
    let unfolded = ["--signal-window".to_owned(), "0".to_owned()];
    let t = tracer::start(Config::Watch, env, Output::Discard, &unfolded)?
        .context("watch is a tracer")?;
    thread::sleep(std::time::Duration::from_millis(300));
    let reached = workload::signals_at(rate, plan.rate_secs)?;
    thread::sleep(std::time::Duration::from_millis(500));
    let stderr = t.stop()?;
    let (delivered, lost) = tracer::parse_totals(&stderr).context("no totals line at exit")?;
    say!(
        "bench: rate: {rate}/s asked, {reached:.0}/s sent for {} s: {delivered} delivered, {lost} lost",
        plan.rate_secs
    );
    log.push(
        json!({"asked_per_s": rate, "sent_per_s": reached, "delivered": delivered, "lost": lost}),
    );
    Ok((reached, delivered, lost))
}

pub fn run(plan: &Plan, env: &Env<'_>) -> Result<Value> {
    say!(
        "bench: rate: searching the highest loss-free rate, {} s per trial",
        plan.rate_secs
    );
    let mut log = Vec::new();
    // Double until a loss (or until the sender cannot keep up), then bisect.
    let (mut good, mut bad) = (0u64, None);
    let mut rate = plan.rate_start;
    let mut sender_limit = None;
    while bad.is_none() {
        let (reached, _, lost) = trial(plan, env, rate, &mut log)?;
        if lost > 0 {
            bad = Some(rate);
        } else if reached < 0.9 * rate as f64 {
            sender_limit = Some(reached);
            good = reached as u64;
            break;
        } else {
            good = rate;
            rate *= 2;
        }
    }
    if let Some(mut hi) = bad {
        for _ in 0..plan.bisect {
            let mid = (good + hi) / 2;
            if hi - good < good / 20 {
                break;
            }
            let (_, _, lost) = trial(plan, env, mid, &mut log)?;
            if lost > 0 {
                hi = mid;
            } else {
                good = mid;
            }
        }
    }
    // The search saw one trial per rate: a rate is kept only when every round of it loses
    // nothing; otherwise it is lowered by a fifth and tried again.
    let mut at_lost;
    let mut at_reached;
    let mut lowered = 0;
    loop {
        say!(
            "bench: rate: confirming {good}/s over {} rounds",
            plan.rounds
        );
        (at_lost, at_reached) = (Figure::default(), Figure::default());
        for _ in 0..plan.rounds {
            let (reached, _, lost) = trial(plan, env, good, &mut log)?;
            at_lost.push(lost as f64);
            at_reached.push(reached);
            if lost > 0 {
                break;
            }
        }
        if at_lost.max() == 0.0 || lowered >= 4 {
            break;
        }
        good = good * 4 / 5;
        lowered += 1;
    }
    say!("bench: rate: measuring twice {good}/s");
    let (mut twice_loss, mut twice_reached) = (Figure::default(), Figure::default());
    for _ in 0..plan.rounds {
        let (reached, delivered, lost) = trial(plan, env, 2 * good, &mut log)?;
        twice_reached.push(reached);
        twice_loss.push(lost as f64 / (delivered + lost).max(1) as f64 * 100.0);
    }
    println!();
    println!(
        "event rate (SIGTERM records, ctrace watch --json --host, default ring), {} s trials, {} rounds",
        plan.rate_secs, plan.rounds
    );
    println!(
        "  highest loss-free rate found: {good}/s{}; at it: lost {} records; at 2x: {} % lost (sent {}/s)",
        if sender_limit.is_some() {
            " (the sender's own limit: no loss seen)"
        } else {
            ""
        },
        at_lost.show(0),
        twice_loss.show(2),
        twice_reached.show(0)
    );
    Ok(json!({
        "zero_loss_rate_per_s": good,
        "zero_loss_confirmed": at_lost.max() == 0.0,
        "lowered_after_search": lowered,
        "sender_limited": sender_limit.is_some(),
        "at_rate": {
            "lost_records": at_lost.json("records per trial"),
            "sent_per_s": at_reached.json("records/s"),
        },
        "at_twice_rate": {
            "rate_per_s": 2 * good,
            "loss_percent": twice_loss.json("% of records"),
            "sent_per_s": twice_reached.json("records/s"),
        },
        "trial_seconds": plan.rate_secs,
        "trials": log,
        "method": "a fresh `ctrace watch --json --host > /dev/null` per trial (default 4 MiB ring); \
                   SIGTERMs paced per millisecond to a process ignoring them; loss from ctrace's \
                   own totals at exit (records refused by the ring or skipped). The rate doubles \
                   from the start rate until a trial loses, then is bisected; the rate found is \
                   then run `rounds` times and lowered by a fifth until no round loses (at most 4 times); \
                   twice it is run `rounds` times.",
    }))
}
