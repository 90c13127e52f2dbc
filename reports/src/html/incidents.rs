//! Incidents, zoomed: on a long run the overview squeezes a 15-minute fault into a few pixels,
//! so each fault window and failover, with time either side, also gets panels of the charts
//! that tell the story (the primary, availability, requests, etcd's leader) on a time axis of
//! its own.

use std::fmt::Write;

use super::axis::fmt_clock;
use super::chart::{self, Chart, Layer, Span};
use super::run::Run;
use crate::xml::esc;

/// An incident spanning at least this share of the run is plain in the overview already.
const ZOOM_SHARE_MAX: f64 = 0.3;
/// Time shown either side of an incident: this share of its length, and at least `PAD_S_MIN`.
const PAD_SHARE: f64 = 0.25;
const PAD_S_MIN: f64 = 30.0;
/// Panels at most (a swarm seed may have many faults); the rest are counted in a note.
const PANELS_MAX: usize = 6;
/// The charts a panel shows, those the run has, in this order, at most `CHARTS_PER_PANEL`.
const PANEL_CHARTS: [&str; 8] =
    ["primary", "availability", "requests", "pg-commits", "etcd-leader", "etcd-writes", "probe-rtt", "net-dropped"];
const CHARTS_PER_PANEL: usize = 4;

/// The stretches worth a closer look: every fault window (of one that never heals, its start:
/// "to the end of the run" is no stretch to zoom into) and every failover, padded, overlapping
/// ones merged, clipped to the run.
pub fn incidents(run: &Run) -> Vec<Span> {
    let mut raw: Vec<(f64, f64)> = run.windows.iter().map(|w| (w.start_s, w.end_s.unwrap_or(w.start_s))).collect();
    raw.extend(run.marks.iter().filter(|m| m.kind == "failover").map(|m| (m.t_s, m.t_s)));
    let mut padded: Vec<(f64, f64)> = raw
        .into_iter()
        .map(|(a, b)| {
            let pad = ((b - a) * PAD_SHARE).max(PAD_S_MIN);
            ((a - pad).max(0.0), (b + pad).min(run.end_s))
        })
        .collect();
    padded.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut out: Vec<Span> = Vec::new();
    for (a, b) in padded {
        match out.last_mut() {
            Some(last) if a <= last.end_s => last.end_s = last.end_s.max(b),
            _ => out.push(Span { start_s: a, end_s: b }),
        }
    }
    out
}

/// The incidents the overview cannot show well: those shorter than `ZOOM_SHARE_MAX` of the run.
pub fn zoomed(run: &Run) -> Vec<Span> {
    incidents(run).into_iter().filter(|s| s.len_s() < ZOOM_SHARE_MAX * run.end_s).collect()
}

/// The "Incidents, zoomed" part of report.html; empty when every incident shows well in the
/// overview.
pub fn section(run: &Run, charts: &[Chart]) -> String {
    let spans = zoomed(run);
    if spans.is_empty() {
        return String::new();
    }
    let mut picked: Vec<&Chart> =
        PANEL_CHARTS.iter().filter_map(|id| charts.iter().find(|c| c.id == *id)).take(CHARTS_PER_PANEL).collect();
    if picked.is_empty() {
        picked = charts.iter().take(2).collect();
    }
    let mut s = String::from(r#"<h2 id="incidents">Incidents, zoomed</h2>"#);
    s.push_str(
        r#"<p class="help">Each fault window and failover, with time either side, on a time axis of its own (the overview above squeezes them on a long run).</p>"#,
    );
    for (i, span) in spans.iter().take(PANELS_MAX).enumerate() {
        let _ = write!(
            s,
            r#"<section class="incident" id="incident-{i}" data-incident="{i}" data-start-s="{}" data-end-s="{}"><h3>Incident {}: {} to {}{}</h3>"#,
            span.start_s,
            span.end_s,
            i + 1,
            fmt_clock(span.start_s),
            fmt_clock(span.end_s),
            esc(&what_happened(run, *span))
        );
        for c in &picked {
            let layer = Layer { tag: "", colour: None, chart: c, windows: &run.windows, marks: &run.marks };
            let head = format!(r#"<section class="chart" data-incident-chart="{}" data-kind="{{kind}}">"#, esc(&c.id));
            s.push_str(&chart::render_span(&[layer], span.start_s, span.end_s, &head));
        }
        s.push_str("</section>\n");
    }
    if spans.len() > PANELS_MAX {
        let _ = write!(s, r#"<p class="note">{} more incidents are not zoomed.</p>"#, spans.len() - PANELS_MAX);
    }
    s
}

/// ": switch-degraded, failover of pdx-pg2": the faults starting and the failovers inside.
fn what_happened(run: &Run, span: Span) -> String {
    let mut parts: Vec<String> = Vec::new();
    for w in run.windows.iter().filter(|w| span.overlaps(w.start_s, w.start_s)) {
        if !parts.contains(&w.kind) {
            parts.push(w.kind.clone());
        }
    }
    let failovers = run.marks.iter().filter(|m| m.kind == "failover" && span.overlaps(m.t_s, m.t_s)).count();
    match failovers {
        0 => {}
        1 => parts.push("a failover".into()),
        n => parts.push(format!("{n} failovers")),
    }
    if parts.is_empty() { String::new() } else { format!(": {}", parts.join(", ")) }
}
