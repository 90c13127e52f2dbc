//! Generic charts over simulated time, drawn as inline SVG: a line chart from lists of
//! (seconds, value) points, and a lane chart from lists of state changes. Every chart, whatever
//! it shows, gets the runs' fault windows shaded and their marks drawn, and can overlay several
//! runs (a comparison): one colour per run, one dash pattern per series.

use std::fmt::Write;

use super::axis::fmt_seconds;
use super::downsample::{self, MAX_POINTS};
use super::lanes::lanes;
use super::lines::lines;
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
/// idle, nothing drawn). E.g. "e3" is "term 4" while it leads; "pdx" is "pdx-pg2 (timeline 2)"
/// while pdx-pg2 is the database's primary.
#[derive(Clone, Debug)]
pub struct Lane {
    pub name: String,
    pub changes: Vec<(f64, Option<String>)>,
    /// Colour each spell by its state's first word (the server: every primary spell its own
    /// colour, named in the chart's key) rather than one colour per lane.
    pub by_state: bool,
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

pub(super) const WIDTH: f64 = 1100.0;
pub(super) const X0: f64 = 70.0;
pub(super) const X1: f64 = WIDTH - 16.0;
pub(super) const TOP: f64 = 8.0;
pub(super) const PLOT_H: f64 = 170.0;
pub(super) const AXIS_H: f64 = 22.0;
pub(super) const LANE_H: f64 = 22.0;

pub(super) const PALETTE: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
/// Run A and run B of a comparison.
pub const RUN_COLOURS: [&str; 2] = ["#1f5fbf", "#e4572e"];
const DASHES: [&str; 6] = ["", "7 3", "2 2", "9 3 2 3", "1 3", "14 4"];

pub(super) fn series_style(tag_index: Option<usize>, i: usize) -> (String, &'static str) {
    match tag_index {
        None => (PALETTE[i % PALETTE.len()].to_string(), ""),
        Some(r) => (RUN_COLOURS[r % 2].to_string(), DASHES[i % DASHES.len()]),
    }
}

/// Draws the chart of `layers` (one per run, same chart id) over `[0, end_s]` as a
/// `<section>`: title, SVG, key.
pub fn render(layers: &[Layer], end_s: f64) -> String {
    let chart = layers[0].chart;
    let id = esc(&chart.id);
    let head = format!(r#"<section class="chart" id="chart-{id}" data-chart="{id}" data-kind="{{kind}}">"#);
    render_span(layers, 0.0, end_s, &head)
}

/// As `render`, over `[start_s, end_s]` only (a zoomed panel of an incident); `head` is the
/// opening `<section>` tag, in which `{kind}` becomes "lines" or "lanes".
pub fn render_span(layers: &[Layer], start_s: f64, end_s: f64, head: &str) -> String {
    let chart = layers[0].chart;
    let frame_span = Span { start_s, end_s: end_s.max(start_s + 1e-9) };
    let (kind, svg, mut legend) = match &chart.body {
        Body::Lines { unit, scale, .. } => {
            let (svg, legend) = lines(layers, unit, *scale, frame_span);
            ("lines", svg, legend)
        }
        Body::Lanes(_) => {
            let (svg, legend) = lanes(layers, frame_span);
            ("lanes", svg, legend)
        }
    };
    legend.push_str(&marks_key(layers, frame_span));
    let mut s = head.replace("{kind}", kind);
    let _ = write!(s, "<h3>{}</h3>", esc(&chart.title));
    if !chart.note.is_empty() {
        let _ = write!(s, r#"<p class="note">{}</p>"#, esc(&chart.note));
    }
    s.push_str(&svg);
    if !legend.is_empty() {
        let _ = write!(s, r#"<ul class="legend">{legend}</ul>"#);
    }
    s.push_str("</section>\n");
    s
}

/// The stretch of simulated time a chart shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub start_s: f64,
    pub end_s: f64,
}

impl Span {
    pub fn len_s(self) -> f64 {
        self.end_s - self.start_s
    }
    /// Whether `[a, b]` shows in the span.
    pub fn overlaps(self, a: f64, b: f64) -> bool {
        b >= self.start_s && a <= self.end_s
    }
}

/// The drawing area: `span` maps to the plot's width; `height` includes the time axis.
pub(super) struct Frame {
    pub span: Span,
    pub height: f64,
}

impl Frame {
    pub fn x(&self, t: f64) -> f64 {
        X0 + ((t - self.span.start_s) / self.span.len_s()).clamp(0.0, 1.0) * (X1 - X0)
    }
    pub fn plot_bottom(&self) -> f64 {
        self.height - AXIS_H
    }
    /// Simulated time a pixel column covers, roughly: what thinning merges.
    pub fn min_gap(&self) -> f64 {
        self.span.len_s() / MAX_POINTS as f64
    }
}

/// The chart's key entries for the kinds of marks it draws (a failover, a leader elected, ...),
/// each with a sample line styled as the marks are.
fn marks_key(layers: &[Layer], span: Span) -> String {
    let mut kinds: Vec<&'static str> = Vec::new();
    for layer in layers {
        for m in layer.marks.iter().chain(&layer.chart.marks) {
            if span.overlaps(m.t_s, m.t_s) && !kinds.contains(&m.kind) {
                kinds.push(m.kind);
            }
        }
    }
    kinds.sort_by_key(|k| super::run::MARK_KINDS.iter().position(|(kind, _)| kind == k));
    let mut s = String::new();
    for kind in kinds {
        let meaning = super::run::MARK_KINDS.iter().find(|(k, _)| *k == kind).map_or(kind, |(_, m)| m);
        let _ = write!(
            s,
            r#"<li data-mark-key="{kind}"><svg xmlns="http://www.w3.org/2000/svg" width="26" height="12"><line class="mark mark-{kind}" x1="13" x2="13" y1="0" y2="12"/></svg>{}</li>"#,
            esc(meaning)
        );
    }
    s
}

pub(super) fn open_svg(s: &mut String, frame: &Frame, label: &str) {
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}">"#,
        WIDTH,
        coord(frame.height),
        esc(label)
    );
}

/// Fault windows (light), their down phases (darker), under everything else.
pub(super) fn draw_windows(s: &mut String, layers: &[Layer], frame: &Frame) {
    let min_gap = frame.min_gap();
    let (top, h) = (TOP, frame.plot_bottom() - TOP);
    for (li, layer) in layers.iter().enumerate() {
        let run_attr = run_attr(layer.tag);
        let tinted = layers[li].colour.map(|r| RUN_COLOURS[r % 2]);
        for w in layer.windows {
            let end = w.end_s.unwrap_or(frame.span.end_s.max(w.start_s));
            if !frame.span.overlaps(w.start_s, end) {
                continue;
            }
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
            let shown: Vec<(f64, f64)> =
                w.down_s.iter().copied().filter(|(a, b)| frame.span.overlaps(*a, *b)).collect();
            for (a, b, n) in downsample::merge_spans(&shown, min_gap) {
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

pub(super) fn run_attr(tag: &str) -> String {
    if tag.is_empty() { String::new() } else { format!(r#" data-run="{}""#, esc(tag)) }
}

/// Up to this many marks of a kind get a line each, with a tooltip; beyond, one path draws
/// them all (a 7-hour flapping run elects thousands of leaders).
const LABELLED_MARKS: usize = 200;

/// The runs' marks and the chart's own, one per pixel column and kind. Each element's
/// `data-count` says how many marks it stands for.
pub(super) fn draw_marks(s: &mut String, layers: &[Layer], frame: &Frame) {
    let min_gap = frame.min_gap();
    let (y1, y2) = (coord(TOP), coord(frame.plot_bottom()));
    for layer in layers {
        let stroke = layer.colour.map_or(String::new(), |r| format!(r#" stroke="{}""#, RUN_COLOURS[r % 2]));
        let run = run_attr(layer.tag);
        let mut all: Vec<&Mark> =
            layer.marks.iter().chain(&layer.chart.marks).filter(|m| frame.span.overlaps(m.t_s, m.t_s)).collect();
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
