//! The SVG chart of a story's last minutes.

use super::{parse, Story, SEC};
use crate::{
    chart,
    clock::utc_ms,
    container::short_id,
    journal::{Journal, JournalError, RecordFilter},
    record::{ContainerStopRecord, Record},
};

/// The SVG chart of the container's last [`SVG_WINDOW_NS`] (or less): memory and its limit,
/// CPU throttling, and the incidents of its story.
pub fn svg_chart(journal: &Journal, s: &Story) -> Result<String, JournalError> {
    let c = &s.container;
    let end_ns = c.gone_ns.unwrap_or(c.last_seen_ns).max(c.first_seen_ns);
    let from_ns = end_ns.saturating_sub(SVG_WINDOW_NS).max(c.first_seen_ns);
    // A little room after the end, so that the reading at a kill shows beside its mark.
    let to_ns = end_ns + (end_ns - from_ns) / 40;
    let curve = journal.memory_curve(&c.key, from_ns, end_ns)?;
    let memory: Vec<(i64, u64)> = curve.iter().map(|m| (m.ts_ns, m.usage_bytes)).collect();
    let limit = s
        .ooms
        .last()
        .and_then(|o| o.limit)
        .or_else(|| curve.iter().rev().find_map(|m| m.limit_bytes));
    let records = journal.records(&RecordFilter {
        container_key: Some(c.key.clone()),
        types: vec!["cpu_throttle".to_owned()],
        since_ns: Some(from_ns),
        until_ns: Some(to_ns),
        ..RecordFilter::default()
    })?;
    let mut throttle: Vec<(i64, f64)> = records
        .iter()
        .filter_map(|r| match parse(r)?.record {
            Record::CpuThrottle(t) if t.phase == "stop" => Some((r.ts_ns, 0.0)),
            Record::CpuThrottle(t) => Some((r.ts_ns, t.throttled_ratio)),
            _ => None,
        })
        .collect();
    // A gone container is throttled no more.
    if c.gone_ns.is_some() && !throttle.is_empty() {
        throttle.push((end_ns, 0.0));
    }
    let mut marks = Vec::new();
    for e in s.lifecycle.iter().chain(&s.kills) {
        let (label, color) = match &e.record {
            Record::ContainerStart(_) => ("start".to_owned(), "#417505"),
            Record::ContainerStop(stop) => (
                ContainerStopRecord::describe(stop)
                    .split(':')
                    .next()
                    .unwrap_or("stop")
                    .to_owned(),
                "#555555",
            ),
            Record::Kill(k) => (format!("{} from {}", k.signal, k.sender.comm), "#f5a623"),
            _ => continue,
        };
        marks.push(chart::Mark {
            ts_ns: e.ts_ns,
            label,
            color,
        });
    }
    for o in &s.ooms {
        marks.push(chart::Mark {
            ts_ns: o.ts_ns,
            label: format!("OOM kill of {}", o.record.victim.party.comm),
            color: "#d0021b",
        });
    }
    marks.retain(|m| (from_ns..=to_ns).contains(&m.ts_ns));
    marks.sort_by_key(|m| m.ts_ns);
    Ok(chart::svg(&chart::SvgChart {
        title: format!(
            "{} ({}): memory and CPU throttling, {} UTC",
            c.name.as_deref().unwrap_or_else(|| short_id(&c.id)),
            c.runtime,
            utc_ms(from_ns)
        ),
        from_ns,
        to_ns,
        memory: &memory,
        limit,
        throttle: &throttle,
        marks: &marks,
    }))
}

/// The SVG chart covers at most this long before the container's end (or last sighting).
pub const SVG_WINDOW_NS: i64 = 5 * 60 * SEC;
