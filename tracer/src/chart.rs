//! Pictures of a container's memory and CPU throttling: a sparkline (`ctrace top`), a braille
//! chart with the limit line for a terminal (`ctrace postmortem`), and an SVG chart with the
//! incidents marked (`ctrace postmortem --svg`). Pure: series in, text out.
//!
//! The SVG is written by hand (a few shapes and labels): a plotting crate would need a font
//! backend to lay out its labels, for a chart this simple.

use std::fmt::Write as _;

use crate::units::{bytes, seconds};

/// `▁▂▄▆█`: one character per value, scaled from 0 to `top`.
pub fn sparkline(values: &[u64], top: u64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|&v| {
            let level = if top == 0 {
                0
            } else {
                ((v.min(top) as f64 / top as f64) * 7.0).round() as usize
            };
            BARS[level.min(7)]
        })
        .collect()
}

/// At most `n` points: the highest usage of each of `n` equal runs of samples; the last
/// point is always the last sample.
pub fn downsample(values: &[u64], n: usize) -> Vec<u64> {
    let Some((&last, rest)) = values.split_last() else {
        return Vec::new();
    };
    if values.len() <= n || n < 2 {
        return values.to_vec();
    }
    let buckets = n - 1;
    let mut out: Vec<u64> = (0..buckets)
        .map(|i| {
            let (a, b) = (i * rest.len() / buckets, (i + 1) * rest.len() / buckets);
            rest[a..b.max(a + 1)].iter().copied().max().unwrap_or(0)
        })
        .collect();
    out.push(last);
    out
}

/// The value of each of `n` equal time slots of `[from_ns, to_ns]`: the highest sample in
/// the slot, else the last one before it (a step curve); `None` before the first sample.
pub fn resample(samples: &[(i64, u64)], from_ns: i64, to_ns: i64, n: usize) -> Vec<Option<u64>> {
    let span = (to_ns - from_ns).max(1) as f64;
    let slot = |t: i64| -> usize {
        let x = ((t - from_ns) as f64 / span * n as f64).floor();
        (x.max(0.0) as usize).min(n.saturating_sub(1))
    };
    let mut out: Vec<Option<u64>> = vec![None; n];
    let mut last_before: Option<u64> = None;
    for &(t, v) in samples {
        if t < from_ns {
            last_before = Some(v);
            continue;
        }
        if t > to_ns {
            break;
        }
        let s = slot(t);
        out[s] = Some(out[s].map_or(v, |o| o.max(v)));
    }
    let mut carry = last_before;
    for o in &mut out {
        match o {
            Some(v) => carry = Some(*v),
            None => *o = carry,
        }
    }
    out
}

/// A grid of braille cells (2 × 4 dots each).
struct Braille {
    cols: usize,
    rows: usize,
    cells: Vec<u8>,
}

impl Braille {
    fn new(cols: usize, rows: usize) -> Self {
        Self {
            cols,
            rows,
            cells: vec![0; cols * rows],
        }
    }

    fn width(&self) -> usize {
        self.cols * 2
    }

    fn height(&self) -> usize {
        self.rows * 4
    }

    /// Set the dot at `x` (from the left) and `y` (from the top).
    fn set(&mut self, x: usize, y: usize) {
        if x >= self.width() || y >= self.height() {
            return;
        }
        const BITS: [[u8; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];
        self.cells[(y / 4) * self.cols + x / 2] |= BITS[x % 2][y % 4];
    }

    fn row(&self, r: usize) -> String {
        self.cells[r * self.cols..(r + 1) * self.cols]
            .iter()
            .map(|&b| char::from_u32(0x2800 + u32::from(b)).unwrap_or(' '))
            .collect()
    }
}

/// Columns of the braille plot in [`memory_chart`]: with its scale, the `limit` mark and an
/// indent of 4, the chart fits 80 columns.
pub const CHART_COLS: usize = 56;
/// Rows of the braille plot in [`memory_chart`].
pub const CHART_ROWS: usize = 6;

/// The memory curve of `[from_ns, to_ns]` as braille lines for a terminal: usage as a line,
/// the limit as a dashed line marked `limit` on the right, the scale on the left and the
/// time below (`end` names the right edge: `kill`). At most 80 columns wide.
pub fn memory_chart(
    samples: &[(i64, u64)],
    from_ns: i64,
    to_ns: i64,
    limit: Option<u64>,
    end: &str,
) -> Vec<String> {
    let mut g = Braille::new(CHART_COLS, CHART_ROWS);
    let (w, h) = (g.width(), g.height());
    let max = samples.iter().map(|&(_, v)| v).max().unwrap_or(0);
    let top = limit.unwrap_or(0).max(max).max(1);
    let y_of = |v: u64| -> usize {
        let f = v.min(top) as f64 / top as f64;
        (h - 1) - (f * (h - 1) as f64).round() as usize
    };
    let limit_y = limit.map(y_of);
    if let Some(ly) = limit_y {
        for x in (0..w).filter(|x| x % 4 < 2) {
            g.set(x, ly);
        }
    }
    let mut prev: Option<usize> = None;
    for (x, v) in resample(samples, from_ns, to_ns, w).into_iter().enumerate() {
        let Some(v) = v else {
            prev = None;
            continue;
        };
        let y = y_of(v);
        let (a, b) = prev.map_or((y, y), |p| (p.min(y), p.max(y)));
        for yy in a..=b {
            g.set(x, yy);
        }
        prev = Some(y);
    }
    let label_top = bytes(top);
    let width = label_top.len().max(5);
    let mut out = Vec::new();
    for r in 0..CHART_ROWS {
        let label = if r == 0 {
            label_top.clone()
        } else if r == CHART_ROWS - 1 {
            "0".to_owned()
        } else {
            String::new()
        };
        let tick = if label.is_empty() { '│' } else { '┤' };
        let mut line = format!("{label:>width$} {tick}{}", g.row(r));
        if limit_y.is_some_and(|ly| ly / 4 == r) {
            line.push_str(" limit");
        }
        out.push(line);
    }
    out.push(format!("{:width$} └{}", "", "─".repeat(CHART_COLS)));
    let start = format!("-{}", seconds(to_ns - from_ns));
    let pad = CHART_COLS.saturating_sub(start.chars().count() + end.chars().count());
    out.push(format!("{:width$}  {start}{:pad$}{end}", "", ""));
    out
}

/// A vertical marker of an SVG chart: an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub ts_ns: i64,
    /// Shown as is (escaped for XML here).
    pub label: String,
    /// An SVG colour.
    pub color: &'static str,
}

/// What [`svg`] draws.
#[derive(Debug, Clone, PartialEq)]
pub struct SvgChart<'a> {
    pub title: String,
    pub from_ns: i64,
    pub to_ns: i64,
    /// Memory usage samples (time, bytes), oldest first.
    pub memory: &'a [(i64, u64)],
    pub limit: Option<u64>,
    /// CPU throttling (time, share of periods throttled 0..=1) from that time on.
    pub throttle: &'a [(i64, f64)],
    pub marks: &'a [Mark],
}

/// Text for XML: `&`, `<`, `>`, quotes escaped, control characters dropped.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

const SVG_W: f64 = 900.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 870.0;
const MEM_TOP: f64 = 60.0;
const MEM_BOTTOM: f64 = 300.0;
const CPU_TOP: f64 = 340.0;
const CPU_BOTTOM: f64 = 420.0;
const SVG_H: f64 = 470.0;

/// An SVG chart: the memory curve with its limit (top panel), CPU throttling (bottom panel),
/// and the incidents as vertical lines across both, the time in UTC below.
pub fn svg(c: &SvgChart<'_>) -> String {
    let max = c.memory.iter().map(|&(_, v)| v).max().unwrap_or(0);
    let k = Scale {
        from_ns: c.from_ns,
        span: (c.to_ns - c.from_ns).max(1) as f64,
        top: c.limit.unwrap_or(0).max(max).max(1) as f64 * 1.05,
    };
    let mut s = String::new();
    svg_frame(&mut s, c, &k);
    svg_memory(&mut s, c, &k);
    svg_throttle(&mut s, c, &k);
    svg_marks(&mut s, c, &k);
    s.push_str("</svg>\n");
    s
}

/// Where times, bytes and ratios go on the picture.
struct Scale {
    from_ns: i64,
    span: f64,
    /// The memory panel's top, in bytes.
    top: f64,
}

impl Scale {
    fn x(&self, t: i64) -> f64 {
        LEFT + ((t - self.from_ns) as f64 / self.span).clamp(0.0, 1.0) * (RIGHT - LEFT)
    }

    fn mem_y(&self, v: u64) -> f64 {
        MEM_BOTTOM - (v as f64 / self.top).min(1.0) * (MEM_BOTTOM - MEM_TOP)
    }

    fn cpu_y(r: f64) -> f64 {
        CPU_BOTTOM - r.clamp(0.0, 1.0) * (CPU_BOTTOM - CPU_TOP)
    }
}

/// The title, the two panels with their grids and scales, the time axis.
fn svg_frame(s: &mut String, c: &SvgChart<'_>, k: &Scale) {
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_W}" height="{SVG_H}" viewBox="0 0 {SVG_W} {SVG_H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{SVG_W}" height="{SVG_H}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{}</text>"#,
        xml_escape(&c.title)
    );
    // Panels, grid and scales.
    for (top_y, bottom_y, name) in [
        (MEM_TOP, MEM_BOTTOM, "memory"),
        (CPU_TOP, CPU_BOTTOM, "CPU throttled"),
    ] {
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top_y}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            RIGHT - LEFT,
            bottom_y - top_y
        );
        let _ = writeln!(
            s,
            r#"<text x="12" y="{}" font-weight="bold">{name}</text>"#,
            top_y - 6.0
        );
    }
    for f in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let v = (k.top / 1.05 * f) as u64;
        let y = k.mem_y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 6.0,
            y + 4.0,
            xml_escape(&bytes(v))
        );
    }
    for f in [0.0, 0.5, 1.0] {
        let y = Scale::cpu_y(f);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{:.0}%</text>"##,
            LEFT - 6.0,
            y + 4.0,
            f * 100.0
        );
    }
    // Time axis: five ticks, UTC time of day.
    for i in 0..=4 {
        let t = c.from_ns + ((c.to_ns - c.from_ns) as f64 * f64::from(i) / 4.0) as i64;
        let x = k.x(t);
        let label = crate::clock::utc_ms(t);
        let label = label.split_once(' ').map_or(label.as_str(), |(_, t)| t);
        // The outer labels stay inside the picture.
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{CPU_BOTTOM}" x2="{x:.1}" y2="{}" stroke="#999"/><text x="{x:.1}" y="{}" text-anchor="{anchor}">{}</text>"##,
            CPU_BOTTOM + 5.0,
            CPU_BOTTOM + 20.0,
            xml_escape(label)
        );
    }
}

/// The memory curve (a step curve, filled below) and the limit.
fn svg_memory(s: &mut String, c: &SvgChart<'_>, k: &Scale) {
    let pts = step_points(
        c.memory.iter().map(|&(t, v)| (k.x(t), k.mem_y(v))),
        // Not held past the last sample: the container may be gone after it.
        c.memory.last().map_or(LEFT, |&(t, _)| k.x(t)),
    );
    if let (Some(first), Some(last)) = (pts.first(), pts.last()) {
        let line = points_attr(&pts);
        let _ = writeln!(
            s,
            r##"<polygon points="{:.1},{MEM_BOTTOM} {line} {:.1},{MEM_BOTTOM}" fill="#4a90d9" fill-opacity="0.25" stroke="none"/>"##,
            first.0, last.0
        );
        let _ = writeln!(
            s,
            r##"<polyline points="{line}" fill="none" stroke="#1f5fa8" stroke-width="2"/>"##
        );
    } else {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#666">no memory samples</text>"##,
            (LEFT + RIGHT) / 2.0,
            (MEM_TOP + MEM_BOTTOM) / 2.0
        );
    }
    if let Some(limit) = c.limit {
        let y = k.mem_y(limit);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="#d0021b" stroke-width="1.5" stroke-dasharray="6,4"/><text x="{}" y="{:.1}" text-anchor="end" fill="#d0021b">limit {}</text>"##,
            RIGHT - 4.0,
            y - 5.0,
            xml_escape(&bytes(limit))
        );
    }
}

/// The throttled ratio, a step area.
fn svg_throttle(s: &mut String, c: &SvgChart<'_>, k: &Scale) {
    let pts = step_points(
        c.throttle.iter().map(|&(t, r)| (k.x(t), Scale::cpu_y(r))),
        k.x(c.to_ns),
    );
    if let (Some(first), Some(last)) = (pts.first(), pts.last()) {
        let _ = writeln!(
            s,
            r##"<polygon points="{:.1},{CPU_BOTTOM} {} {:.1},{CPU_BOTTOM}" fill="#f5a623" fill-opacity="0.6" stroke="#c77c02"/>"##,
            first.0,
            points_attr(&pts),
            last.0
        );
    } else {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#666">no CPU throttling recorded</text>"##,
            (LEFT + RIGHT) / 2.0,
            (CPU_TOP + CPU_BOTTOM) / 2.0 + 4.0
        );
    }
}

/// Incidents as vertical lines, their labels staggered so that neighbours stay readable.
fn svg_marks(s: &mut String, c: &SvgChart<'_>, k: &Scale) {
    for (i, m) in c.marks.iter().enumerate() {
        let x = k.x(m.ts_ns);
        // Below the limit's label, which sits at the top of the panel.
        let y = MEM_TOP + 30.0 + 14.0 * (i % 4) as f64;
        let anchor = if x > (LEFT + RIGHT) / 2.0 {
            ("end", x - 4.0)
        } else {
            ("start", x + 4.0)
        };
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{MEM_TOP}" x2="{x:.1}" y2="{CPU_BOTTOM}" stroke="{}" stroke-width="1.5"/><text x="{:.1}" y="{y:.1}" text-anchor="{}" fill="{}">{}</text>"#,
            m.color,
            anchor.1,
            anchor.0,
            m.color,
            xml_escape(&m.label)
        );
    }
}

/// The points of a step curve through `points` (each value held until the next), held to
/// `end_x` after the last.
fn step_points(points: impl Iterator<Item = (f64, f64)>, end_x: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (x, y) in points {
        if let Some(&(_, py)) = out.last() {
            out.push((x, py));
        }
        out.push((x, y));
    }
    if let Some(&(x, y)) = out.last() {
        if end_x > x {
            out.push((end_x, y));
        }
    }
    out
}

fn points_attr(pts: &[(f64, f64)]) -> String {
    pts.iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const MIB: u64 = 1 << 20;

    #[test]
    fn sparkline_scales_to_top() {
        assert_eq!(sparkline(&[0, 50, 100], 100), "▁▅█");
        assert_eq!(sparkline(&[5, 500], 0), "▁▁");
    }

    #[test]
    fn resample_takes_the_highest_and_holds_the_last() {
        let s = [(0, 1), (1, 5), (2, 3), (9 * S, 7)];
        let r = resample(&s, 0, 10 * S, 5);
        assert_eq!(r, [Some(5), Some(5), Some(5), Some(5), Some(7)]);
        let late = resample(&[(6 * S, 4)], 0, 10 * S, 5);
        assert_eq!(late, [None, None, None, Some(4), Some(4)]);
        let before = resample(&[(-S, 2)], 0, 10 * S, 2);
        assert_eq!(before, [Some(2), Some(2)]);
    }

    #[test]
    fn braille_dots() {
        let mut g = Braille::new(2, 1);
        g.set(0, 0);
        g.set(1, 3);
        g.set(2, 1);
        g.set(99, 99);
        assert_eq!(g.row(0), "⢁⠂");
    }

    /// A curve rising to a 100 MiB limit over 60 s, as `ctrace postmortem` draws it.
    #[test]
    fn memory_chart_snapshot() {
        let samples: Vec<(i64, u64)> = (0..=60)
            .map(|i| (i * S, (i as u64 * 100 / 60) * MIB))
            .collect();
        let lines = memory_chart(&samples, 0, 60 * S, Some(100 * MIB), "kill");
        let text = lines.join("\n") + "\n";
        for l in &lines {
            assert!(l.chars().count() <= 80, "{l:?} is wider than 80 columns");
        }
        assert!(lines[0].starts_with("100 MiB ┤"), "{text}");
        assert!(lines[0].ends_with(" limit"), "{text}");
        assert!(lines.last().unwrap().ends_with("kill"), "{text}");
        super::tests_support::snapshot("chart-memory.txt", &text);
    }

    #[test]
    fn svg_snapshot() {
        let memory: Vec<(i64, u64)> = (0..=20).map(|i| (i * 3 * S, i as u64 * 5 * MIB)).collect();
        let throttle = [(10 * S, 0.4), (20 * S, 1.0), (40 * S, 0.0)];
        let marks = [
            Mark {
                ts_ns: 0,
                label: "start".to_owned(),
                color: "#417505",
            },
            Mark {
                ts_ns: 60 * S,
                label: "OOM kill of <tail> & co".to_owned(),
                color: "#d0021b",
            },
        ];
        let text = svg(&SvgChart {
            title: "web (docker)".to_owned(),
            from_ns: 0,
            to_ns: 60 * S,
            memory: &memory,
            limit: Some(100 * MIB),
            throttle: &throttle,
            marks: &marks,
        });
        assert!(text.contains("OOM kill of &lt;tail&gt; &amp; co"), "{text}");
        assert!(text.contains("limit 100 MiB"));
        assert!(!text.contains("<tail>"));
        super::tests_support::snapshot("chart.svg", &text);
    }

    #[test]
    fn empty_series_say_so() {
        let text = svg(&SvgChart {
            title: String::new(),
            from_ns: 0,
            to_ns: S,
            memory: &[],
            limit: None,
            throttle: &[],
            marks: &[],
        });
        assert!(text.contains("no memory samples"));
        assert!(text.contains("no CPU throttling recorded"));
        let lines = memory_chart(&[], 0, S, None, "end");
        assert!(lines.iter().all(|l| l.chars().count() <= 80));
    }

    #[test]
    fn xml_escaping() {
        assert_eq!(xml_escape("a<b>&\"'\x1b"), "a&lt;b&gt;&amp;&quot;&apos;?");
    }
}

/// Snapshot files for this module's tests: `tracer/tests/snapshots/<name>`, rewritten with
/// `UPDATE_SNAPSHOTS=1`.
#[cfg(test)]
mod tests_support {
    pub(super) fn snapshot(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(name);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == actual,
            "{} differs (rerun with UPDATE_SNAPSHOTS=1 if intended):\n{actual}",
            path.display()
        );
    }
}
