//! Generic charts over simulated time, drawn as inline SVG: a line chart from lists of
//! (seconds, value) points, and a lane chart from lists of state changes. Every chart, whatever
//! it shows, gets the runs' fault windows shaded and their marks drawn, and can overlay several
//! runs (a comparison): one colour per run, one dash pattern per series.

use std::fmt::Write;

use super::downsample::{self, MAX_POINTS};
use super::run::{Mark, Window};
use crate::xml::{coord, esc};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear,
    /// For latencies, whose spikes are orders of magnitude above the usual value.
    Log,
}

/// One line: time-ordered (seconds, value) points; NaN is a gap (no sample in that second).
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text and `data-series` attribute.
    pub key: String,
    /// Holds its value until the next point (a term, a count of members), else a polyline.
    pub step: bool,
    pub points: Vec<(f64, f64)>,
    /// For counters: the sum over the run, written as `data-total` so it can be checked
    /// against summary.json.
    pub total: Option<f64>,
}

/// One row of a lane chart: from each change's time on, the lane is in that state (`None`:
/// idle, nothing drawn). E.g. "e3" is "term 4" while it leads; later "pdx" is "pg2" while pg2
/// is the region's primary.
#[derive(Clone, Debug)]
pub struct Lane {
    pub name: String,
    pub changes: Vec<(f64, Option<String>)>,
}

#[derive(Clone, Debug)]
pub enum Body {
    Lines { unit: String, scale: Scale, series: Vec<Series> },
    Lanes(Vec<Lane>),
}

#[derive(Clone, Debug)]
pub struct Chart {
    /// Stable identifier: the section is `chart-<id>`, and a comparison pairs charts by it.
    pub id: String,
    pub title: String,
    pub note: String,
    pub body: Body,
    /// Marks that belong to this chart only (e.g. "writes resumed" on the etcd write charts).
    pub marks: Vec<Mark>,
}

/// One run's contribution to a drawn chart.
pub struct Layer<'a> {
    /// "A"/"B" in a comparison, "" alone.
    pub tag: &'a str,
    /// In a comparison, which run colour (0 for A, 1 for B); alone, `None`: a palette colour
    /// per series.
    pub colour: Option<usize>,
    pub chart: &'a Chart,
    pub windows: &'a [Window],
    pub marks: &'a [Mark],
}

const WIDTH: f64 = 1100.0;
const X0: f64 = 70.0;
const X1: f64 = WIDTH - 16.0;
const TOP: f64 = 8.0;
const PLOT_H: f64 = 170.0;
const AXIS_H: f64 = 22.0;
const LANE_H: f64 = 22.0;

const PALETTE: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
/// Run A and run B of a comparison.
pub const RUN_COLOURS: [&str; 2] = ["#1f5fbf", "#e4572e"];
const DASHES: [&str; 6] = ["", "7 3", "2 2", "9 3 2 3", "1 3", "14 4"];

fn series_style(tag_index: Option<usize>, i: usize) -> (String, &'static str) {
    match tag_index {
        None => (PALETTE[i % PALETTE.len()].to_string(), ""),
        Some(r) => (RUN_COLOURS[r % 2].to_string(), DASHES[i % DASHES.len()]),
    }
}

/// Draws the chart of `layers` (one per run, same chart id) over `[0, end_s]` as a
/// `<section>`: title, SVG, legend.
pub fn render(layers: &[Layer], end_s: f64) -> String {
    let chart = layers[0].chart;
    let end_s = end_s.max(1e-9);
    let (kind, svg, legend) = match &chart.body {
        Body::Lines { unit, scale, .. } => {
            let (svg, legend) = lines(layers, unit, *scale, end_s);
            ("lines", svg, legend)
        }
        Body::Lanes(_) => ("lanes", lanes(layers, end_s), String::new()),
    };
    let mut s = String::new();
    let id = esc(&chart.id);
    let _ = write!(s, r#"<section class="chart" id="chart-{id}" data-chart="{id}" data-kind="{kind}">"#);
    let _ = write!(s, "<h3>{}</h3>", esc(&chart.title));
    if !chart.note.is_empty() {
        let _ = write!(s, r#"<p class="note">{}</p>"#, esc(&chart.note));
    }
    s.push_str(&svg);
    s.push_str(&legend);
    s.push_str("</section>\n");
    s
}

struct Frame {
    end_s: f64,
    height: f64,
}

impl Frame {
    fn x(&self, t: f64) -> f64 {
        X0 + (t / self.end_s).clamp(0.0, 1.0) * (X1 - X0)
    }
    fn plot_bottom(&self) -> f64 {
        self.height - AXIS_H
    }
}

struct YAxis {
    scale: Scale,
    lo: f64,
    hi: f64,
}

impl YAxis {
    fn fit(scale: Scale, values: impl Iterator<Item = f64>) -> YAxis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        let mut min_pos = f64::INFINITY;
        for v in values.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
            if v > 0.0 {
                min_pos = min_pos.min(v);
            }
        }
        match scale {
            Scale::Log if min_pos.is_finite() => {
                let lo = 10f64.powf(min_pos.log10().floor());
                let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
                YAxis { scale, lo, hi }
            }
            _ => {
                let lo = if lo.is_finite() { lo.min(0.0) } else { 0.0 };
                let hi = if hi.is_finite() && hi > lo { hi } else { lo + 1.0 };
                let step = nice_step(hi - lo, 4);
                YAxis { scale: Scale::Linear, lo: (lo / step).floor() * step, hi: (hi / step).ceil() * step }
            }
        }
    }

    /// 0 at the bottom of the plot, 1 at the top.
    fn frac(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10()),
        }
    }

    fn ticks(&self) -> Vec<f64> {
        match self.scale {
            Scale::Linear => {
                let step = nice_step(self.hi - self.lo, 4);
                let n = ((self.hi - self.lo) / step).round() as usize;
                (0..=n).map(|i| self.lo + i as f64 * step).collect()
            }
            Scale::Log => {
                let (a, b) = (self.lo.log10().round() as i32, self.hi.log10().round() as i32);
                (a..=b).map(|e| 10f64.powi(e)).collect()
            }
        }
    }
}

/// A round step (1, 2, 2.5 or 5 times a power of ten) giving about `target` ticks.
pub fn nice_step(range: f64, target: usize) -> f64 {
    let raw = (range / target as f64).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw * 0.999).unwrap_or(10.0 * mag)
}

/// Short number for an axis or a tooltip: 0.25, 12, 3.4k, 1.2M.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{:.0}", v)
    } else if a >= 0.1 {
        format!("{:.2}", v)
    } else {
        format!("{:.3}", v)
    };
    if s.contains('.') && !s.ends_with(['k', 'M']) {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Simulated time as a clock: "45s", "2m30s", "1h05m".
pub fn fmt_clock(t_s: f64) -> String {
    let t = t_s.round() as u64;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// A duration for tables: seconds with up to three decimals, and the clock form when long.
pub fn fmt_duration(t_s: f64) -> String {
    let secs = fmt_seconds(t_s);
    if t_s >= 120.0 { format!("{secs} s ({})", fmt_clock(t_s)) } else { format!("{secs} s") }
}

/// Seconds with up to three decimals, no trailing zeros.
pub fn fmt_seconds(t_s: f64) -> String {
    let s = format!("{:.3}", t_s);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn time_step(end_s: f64) -> f64 {
    const STEPS: [f64; 18] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
        43200.0, 86400.0,
    ];
    STEPS.iter().copied().find(|s| end_s / s <= 12.0).unwrap_or(86400.0)
}

fn open_svg(s: &mut String, frame: &Frame, label: &str) {
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}">"#,
        WIDTH,
        coord(frame.height),
        esc(label)
    );
}

/// Fault windows (light), their down phases (darker), under everything else.
fn draw_windows(s: &mut String, layers: &[Layer], frame: &Frame) {
    let min_gap = frame.end_s / MAX_POINTS as f64;
    let (top, h) = (TOP, frame.plot_bottom() - TOP);
    for (li, layer) in layers.iter().enumerate() {
        let run_attr = run_attr(layer.tag);
        let tinted = layers[li].colour.map(|r| RUN_COLOURS[r % 2]);
        for w in layer.windows {
            let end = w.end_s.unwrap_or(frame.end_s);
            let (x, x_end) = (frame.x(w.start_s), frame.x(end));
            let fill = tinted.map_or(String::new(), |c| format!(r#" fill="{c}""#));
            let _ = write!(
                s,
                r#"<rect class="fault" data-fault="{}" data-fault-kind="{}"{run_attr}{fill} x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>"#,
                w.fault,
                esc(&w.kind),
                coord(x),
                coord(top),
                coord((x_end - x).max(1.0)),
                coord(h),
                esc(&format!(
                    "fault {}: {} {} ({} to {})",
                    w.fault,
                    w.kind,
                    w.detail,
                    fmt_seconds(w.start_s),
                    w.end_s.map_or("end".to_string(), fmt_seconds)
                ))
            );
            for (a, b, n) in downsample::merge_spans(&w.down_s, min_gap) {
                let (xa, xb) = (frame.x(a), frame.x(b));
                let what = if n == 1 { "down".to_string() } else { format!("{n} down phases") };
                let _ = write!(
                    s,
                    r#"<rect class="down" data-fault="{}"{run_attr}{fill} x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>"#,
                    w.fault,
                    coord(xa),
                    coord(top),
                    coord((xb - xa).max(1.0)),
                    coord(h),
                    esc(&format!("fault {} {what}: {} to {}", w.fault, fmt_seconds(a), fmt_seconds(b)))
                );
            }
        }
    }
}

fn run_attr(tag: &str) -> String {
    if tag.is_empty() { String::new() } else { format!(r#" data-run="{}""#, esc(tag)) }
}

/// Up to this many marks of a kind get a line each, with a tooltip; beyond, one path draws
/// them all (a 7-hour flapping run elects thousands of leaders).
const LABELLED_MARKS: usize = 200;

/// The runs' marks and the chart's own, one per pixel column and kind. Each element's
/// `data-count` says how many marks it stands for.
fn draw_marks(s: &mut String, layers: &[Layer], frame: &Frame) {
    let min_gap = frame.end_s / MAX_POINTS as f64;
    let (y1, y2) = (coord(TOP), coord(frame.plot_bottom()));
    for layer in layers {
        let stroke = layer.colour.map_or(String::new(), |r| format!(r#" stroke="{}""#, RUN_COLOURS[r % 2]));
        let run = run_attr(layer.tag);
        let mut all: Vec<&Mark> = layer.marks.iter().chain(&layer.chart.marks).collect();
        all.sort_by(|a, b| a.kind.cmp(b.kind).then(a.t_s.total_cmp(&b.t_s)));
        for group in all.chunk_by(|a, b| a.kind == b.kind) {
            let kind = group[0].kind;
            let ts: Vec<f64> = group.iter().map(|m| m.t_s).collect();
            let thinned = downsample::thin_instants(&ts, min_gap);
            if thinned.len() > LABELLED_MARKS {
                let mut d = String::new();
                for (i, _) in &thinned {
                    let _ = write!(d, "M{}{y1}V{y2}", coord(frame.x(group[*i].t_s)));
                }
                let _ = write!(
                    s,
                    r#"<path class="mark mark-{kind}" data-mark="{kind}" data-count="{}"{run}{stroke} d="{d}"><title>{} {kind} marks, {} to {} s</title></path>"#,
                    group.len(),
                    group.len(),
                    fmt_seconds(ts[0]),
                    fmt_seconds(ts[ts.len() - 1])
                );
                continue;
            }
            for (i, n) in thinned {
                let m = group[i];
                let x = coord(frame.x(m.t_s));
                let title = if n > 1 { format!("{} (+{} more)", m.label, n - 1) } else { m.label.clone() };
                let _ = write!(
                    s,
                    r#"<line class="mark mark-{kind}" data-mark="{kind}" data-count="{n}"{run}{stroke} x1="{x}" x2="{x}" y1="{y1}" y2="{y2}"><title>{} s: {}</title></line>"#,
                    fmt_seconds(m.t_s),
                    esc(&title)
                );
            }
        }
    }
}

fn draw_time_axis(s: &mut String, frame: &Frame) {
    let step = time_step(frame.end_s);
    let y = frame.plot_bottom();
    let _ = write!(s, r#"<g class="axis x-axis"><line x1="{X0}" x2="{X1}" y1="{0}" y2="{0}"/>"#, coord(y));
    let mut t = 0.0;
    while t <= frame.end_s + 1e-9 {
        let x = coord(frame.x(t));
        let _ = write!(
            s,
            r#"<line x1="{x}" x2="{x}" y1="{}" y2="{}"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            coord(y),
            coord(y + 4.0),
            coord(y + 16.0),
            fmt_clock(t)
        );
        t += step;
    }
    s.push_str("</g>");
}

/// A layer's series with the points to draw (downsampled).
type Drawn<'a> = Vec<(&'a Series, Vec<(f64, f64)>)>;

fn lines(layers: &[Layer], unit: &str, scale: Scale, end_s: f64) -> (String, String) {
    let frame = Frame { end_s, height: TOP + PLOT_H + AXIS_H };
    // Downsample first: the extremes survive, so the axis fits the drawn points.
    let drawn: Vec<Drawn> = layers
        .iter()
        .map(|l| match &l.chart.body {
            Body::Lines { series, .. } => {
                series.iter().map(|se| (se, downsample::min_max(&se.points, 0.0, end_s, MAX_POINTS))).collect()
            }
            Body::Lanes(_) => Vec::new(),
        })
        .collect();
    let y = YAxis::fit(scale, drawn.iter().flatten().flat_map(|(_, pts)| pts.iter().map(|p| p.1)));
    let bottom = frame.plot_bottom();
    let py = |v: f64| bottom - y.frac(v).clamp(0.0, 1.0) * (bottom - TOP);

    let mut s = String::new();
    open_svg(&mut s, &frame, &format!("{} over simulated time", layers[0].chart.title));
    draw_windows(&mut s, layers, &frame);
    s.push_str(r#"<g class="axis y-axis">"#);
    for v in y.ticks() {
        let yy = coord(py(v));
        let _ = write!(
            s,
            r#"<line class="grid" x1="{X0}" x2="{X1}" y1="{yy}" y2="{yy}"/><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            X0 - 6.0,
            coord(py(v) + 4.0),
            fmt_num(v)
        );
    }
    let _ = write!(
        s,
        r#"<text class="unit" x="12" y="{}" transform="rotate(-90 12 {0})" text-anchor="middle">{}</text></g>"#,
        coord(TOP + (bottom - TOP) / 2.0),
        esc(unit)
    );
    draw_time_axis(&mut s, &frame);

    let mut legend = String::from(r#"<ul class="legend">"#);
    s.push_str(r#"<g class="series">"#);
    for (li, layer) in layers.iter().enumerate() {
        for (i, (se, pts)) in drawn[li].iter().enumerate() {
            let (colour, dash) = series_style(layers[li].colour, i);
            let d = path(pts, se.step, &frame, &py);
            let dash_attr = if dash.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{dash}""#) };
            let total = se.total.map_or(String::new(), |t| format!(r#" data-total="{t}""#));
            let max = pts.iter().map(|p| p.1).filter(|v| v.is_finite()).fold(f64::NAN, f64::max);
            let name = if layer.tag.is_empty() { se.key.clone() } else { format!("{}: {}", layer.tag, se.key) };
            let _ = write!(
                s,
                r#"<path data-series="{}"{} data-points="{}"{total} stroke="{colour}"{dash_attr} d="{d}"><title>{} (max {})</title></path>"#,
                esc(&se.key),
                run_attr(layer.tag),
                pts.len(),
                esc(&name),
                fmt_num(max)
            );
            let _ = write!(
                legend,
                r#"<li data-series="{}"{}><svg xmlns="http://www.w3.org/2000/svg" width="26" height="10"><line x1="1" x2="25" y1="5" y2="5" stroke="{colour}"{dash_attr}/></svg>{}</li>"#,
                esc(&se.key),
                run_attr(layer.tag),
                esc(&name)
            );
        }
    }
    s.push_str("</g>");
    draw_marks(&mut s, layers, &frame);
    s.push_str("</svg>");
    legend.push_str("</ul>");
    (s, legend)
}

/// An SVG path through the points; NaN lifts the pen. A lone point becomes a dot (a
/// zero-length segment with round caps).
fn path(pts: &[(f64, f64)], step: bool, frame: &Frame, py: &impl Fn(f64) -> f64) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for (i, &(t, v)) in pts.iter().enumerate() {
        if !v.is_finite() {
            pen_down = false;
            continue;
        }
        let (x, y) = (coord(frame.x(t)), coord(py(v)));
        if !pen_down {
            let _ = write!(d, "M{x} {y}");
            let next_is_gap = pts.get(i + 1).is_none_or(|p| !p.1.is_finite());
            if next_is_gap && !step {
                d.push_str("h0");
            }
            pen_down = true;
        } else if step {
            let _ = write!(d, "H{x}V{y}");
        } else {
            let _ = write!(d, "L{x} {y}");
        }
    }
    if step && pen_down {
        let _ = write!(d, "H{}", coord(frame.x(frame.end_s)));
    }
    d
}

/// A lane's drawn segments: (start, end, state label, how many segments it stands for).
/// Segments less than a pixel apart merge, so thousands of short leaderships stay drawable.
pub fn lane_segments(lane: &Lane, end_s: f64) -> Vec<(f64, f64, String, usize)> {
    let mut exact: Vec<(f64, f64, String)> = Vec::new();
    let mut open: Option<(f64, String)> = None;
    for (t, state) in &lane.changes {
        if let Some((a, label)) = open.take() {
            exact.push((a, *t, label));
        }
        open = state.clone().map(|st| (*t, st));
    }
    if let Some((a, label)) = open {
        exact.push((a, end_s, label));
    }
    let min_gap = end_s / MAX_POINTS as f64;
    let mut out: Vec<(f64, f64, String, usize)> = Vec::new();
    for (a, b, label) in exact {
        match out.last_mut() {
            Some(last) if a - last.1 < min_gap => {
                last.1 = last.1.max(b);
                last.3 += 1;
            }
            _ => out.push((a, b, label, 1)),
        }
    }
    out
}

fn lanes(layers: &[Layer], end_s: f64) -> String {
    let mut names: Vec<&str> = Vec::new();
    for l in layers {
        if let Body::Lanes(ls) = &l.chart.body {
            for lane in ls {
                if !names.contains(&lane.name.as_str()) {
                    names.push(&lane.name);
                }
            }
        }
    }
    let frame = Frame { end_s, height: TOP + names.len().max(1) as f64 * LANE_H + AXIS_H };
    let mut s = String::new();
    open_svg(&mut s, &frame, &format!("{} over simulated time", layers[0].chart.title));
    draw_windows(&mut s, layers, &frame);
    s.push_str(r#"<g class="axis lane-names">"#);
    for (row, name) in names.iter().enumerate() {
        let y = TOP + row as f64 * LANE_H;
        let _ = write!(
            s,
            r#"<line class="grid" x1="{X0}" x2="{X1}" y1="{0}" y2="{0}"/><text x="{1}" y="{2}" text-anchor="end">{3}</text>"#,
            coord(y + LANE_H),
            X0 - 6.0,
            coord(y + LANE_H / 2.0 + 4.0),
            esc(name)
        );
    }
    s.push_str("</g>");
    draw_time_axis(&mut s, &frame);
    s.push_str(r#"<g class="lanes">"#);
    let band = (LANE_H - 4.0) / layers.len() as f64;
    for (li, layer) in layers.iter().enumerate() {
        let Body::Lanes(ls) = &layer.chart.body else { continue };
        for lane in ls {
            let row = names.iter().position(|n| *n == lane.name).expect("collected above");
            let colour = match layers[li].colour {
                Some(r) => RUN_COLOURS[r % 2],
                None => PALETTE[row % PALETTE.len()],
            };
            let y = TOP + row as f64 * LANE_H + 2.0 + li as f64 * band;
            for (a, b, label, n) in lane_segments(lane, end_s) {
                let (xa, xb) = (frame.x(a), frame.x(b));
                let what = if n == 1 { label.clone() } else { format!("{n} spells, first {label}") };
                let _ = write!(
                    s,
                    r#"<rect class="seg" data-lane="{}"{} fill="{colour}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>"#,
                    esc(&lane.name),
                    run_attr(layer.tag),
                    coord(xa),
                    coord(y),
                    coord((xb - xa).max(1.0)),
                    coord(band),
                    esc(&format!(
                        "{}{}: {what}, {} to {} s",
                        if layer.tag.is_empty() { String::new() } else { format!("{} ", layer.tag) },
                        lane.name,
                        fmt_seconds(a),
                        fmt_seconds(b)
                    ))
                );
                // Labels only where they fit, and only for a single run (bands are thin).
                if layers.len() == 1 && n == 1 && xb - xa > 8.0 * label.len() as f64 + 8.0 {
                    let _ = write!(
                        s,
                        r#"<text class="seg-label" x="{}" y="{}">{}</text>"#,
                        coord(xa + 4.0),
                        coord(y + band / 2.0 + 4.0),
                        esc(&label)
                    );
                }
            }
        }
    }
    s.push_str("</g>");
    draw_marks(&mut s, layers, &frame);
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_clocks_read_well() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(3400.0), "3.4k");
        assert_eq!(fmt_num(0.0012), "0.001");
        assert_eq!(fmt_clock(45.0), "45s");
        assert_eq!(fmt_clock(150.0), "2m30s");
        assert_eq!(fmt_clock(3900.0), "1h05m");
        assert_eq!(fmt_clock(7200.0), "2h");
        assert_eq!(fmt_duration(25_200.0), "25200 s (7h)");
        assert_eq!(fmt_seconds(20.5), "20.5");
        assert_eq!(nice_step(100.0, 4), 25.0);
        assert_eq!(nice_step(7.0, 4), 2.0);
    }

    #[test]
    fn log_axis_spans_whole_decades() {
        let y = YAxis::fit(Scale::Log, [0.3, 2.0, 450.0].into_iter());
        assert_eq!((y.lo, y.hi), (0.1, 1000.0));
        assert_eq!(y.ticks().len(), 5);
        assert!((y.frac(1.0) - 0.25).abs() < 1e-9);
        let lin = YAxis::fit(Scale::Linear, [3.0, 97.0].into_iter());
        assert_eq!((lin.lo, lin.hi), (0.0, 100.0));
    }

    #[test]
    fn paths_break_at_gaps_and_dot_lone_points() {
        let frame = Frame { end_s: 10.0, height: 200.0 };
        let py = |v: f64| 100.0 - v;
        let d = path(&[(0.0, 1.0), (1.0, 2.0), (2.0, f64::NAN), (3.0, 5.0)], false, &frame, &py);
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert!(d.ends_with("h0"), "lone point drawn as a dot: {d}");
        let step = path(&[(0.0, 1.0), (5.0, 2.0)], true, &frame, &py);
        assert_eq!(step, format!("M{X0} 99H{}V98H{X1}", coord(X0 + (X1 - X0) / 2.0)));
    }

    #[test]
    fn lane_segments_close_and_merge_below_a_pixel() {
        let lane = Lane {
            name: "e1".into(),
            changes: vec![(1.0, Some("term 2".into())), (3.0, None), (5.0, Some("term 4".into()))],
        };
        let segs = lane_segments(&lane, 10.0);
        assert_eq!(segs, vec![(1.0, 3.0, "term 2".into(), 1), (5.0, 10.0, "term 4".into(), 1)]);
        // 7 hours of 2-second leaderships every 4 seconds: far more than pixels.
        let changes: Vec<(f64, Option<String>)> = (0..6300)
            .flat_map(|i| [(i as f64 * 4.0, Some(format!("term {i}"))), (i as f64 * 4.0 + 2.0, None)])
            .collect();
        let segs = lane_segments(&Lane { name: "e1".into(), changes }, 25_200.0);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].3, 6300);
    }
}
