//! Line charts: series of (seconds, value) points, downsampled, on a fitted value axis.

use std::fmt::Write;

use super::axis::{YAxis, draw_time_axis, fmt_num};
use super::chart::{
    AXIS_H, Body, Frame, Layer, PLOT_H, Scale, Series, Span, TOP, X0, X1, draw_marks, draw_windows, open_svg, run_attr,
    series_style,
};
use super::downsample::{self, MAX_POINTS};
use crate::xml::{coord, esc};

/// A layer's series with the points to draw (downsampled).
type Drawn<'a> = Vec<(&'a Series, Vec<(f64, f64)>)>;

/// The chart's SVG and its key entries (one per series).
pub(super) fn lines(layers: &[Layer], unit: &str, scale: Scale, span: Span) -> (String, String) {
    let frame = Frame { span, height: TOP + PLOT_H + AXIS_H };
    // Downsample first: the extremes survive, so the axis fits the drawn points.
    let drawn: Vec<Drawn> = layers
        .iter()
        .map(|l| match &l.chart.body {
            Body::Lines { series, .. } => series
                .iter()
                .map(|se| (se, downsample::min_max(&in_span(&se.points, span), span.start_s, span.end_s, MAX_POINTS)))
                .collect(),
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

    let mut legend = String::new();
    s.push_str(r#"<g class="series">"#);
    for (li, layer) in layers.iter().enumerate() {
        // The first series is the chart's main one (the first tenant, the ok requests): drawn
        // last, so the others do not hide it; the key keeps the catalog's order.
        let mut paths: Vec<String> = Vec::new();
        for (i, (se, pts)) in drawn[li].iter().enumerate() {
            let (colour, dash) = series_style(layers[li].colour, i);
            let d = path(pts, se.step, &frame, &py);
            let dash_attr = if dash.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{dash}""#) };
            let total = se.total.map_or(String::new(), |t| format!(r#" data-total="{t}""#));
            let max = pts.iter().map(|p| p.1).filter(|v| v.is_finite()).fold(f64::NAN, f64::max);
            let name = if layer.tag.is_empty() { se.key.clone() } else { format!("{}: {}", layer.tag, se.key) };
            paths.push(format!(
                r#"<path data-series="{}"{} data-points="{}"{total} stroke="{colour}"{dash_attr} d="{d}"><title>{} (max {})</title></path>"#,
                esc(&se.key),
                run_attr(layer.tag),
                pts.len(),
                esc(&name),
                fmt_num(max)
            ));
            let _ = write!(
                legend,
                r#"<li data-series="{}"{}><svg xmlns="http://www.w3.org/2000/svg" width="26" height="10"><line x1="1" x2="25" y1="5" y2="5" stroke="{colour}"{dash_attr}/></svg>{}</li>"#,
                esc(&se.key),
                run_attr(layer.tag),
                esc(&name)
            );
        }
        paths.reverse();
        s.push_str(&paths.concat());
    }
    s.push_str("</g>");
    draw_marks(&mut s, layers, &frame);
    s.push_str("</svg>");
    (s, legend)
}

/// The points inside the span, and the one on each side, so lines run to the edges.
fn in_span(points: &[(f64, f64)], span: Span) -> Vec<(f64, f64)> {
    let first = points.partition_point(|p| p.0 < span.start_s).saturating_sub(1);
    let last = points.partition_point(|p| p.0 <= span.end_s).min(points.len().saturating_sub(1));
    if points.is_empty() || first > last {
        return Vec::new();
    }
    points[first..=last].to_vec()
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
        let _ = write!(d, "H{}", coord(frame.x(frame.span.end_s)));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_break_at_gaps_and_dot_lone_points() {
        let frame = Frame { span: Span { start_s: 0.0, end_s: 10.0 }, height: 200.0 };
        let py = |v: f64| 100.0 - v;
        let d = path(&[(0.0, 1.0), (1.0, 2.0), (2.0, f64::NAN), (3.0, 5.0)], false, &frame, &py);
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert!(d.ends_with("h0"), "lone point drawn as a dot: {d}");
        let step = path(&[(0.0, 1.0), (5.0, 2.0)], true, &frame, &py);
        assert_eq!(step, format!("M{X0} 99H{}V98H{X1}", coord(X0 + (X1 - X0) / 2.0)));
    }
}
