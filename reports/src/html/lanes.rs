//! Lane charts: one row per lane (an etcd member, a database), a bar for each spell in a state
//! (leading in term 4; pdx-pg2 is primary on timeline 2).

use std::fmt::Write;

use super::axis::{draw_time_axis, fmt_seconds};
use super::chart::{
    AXIS_H, Body, Frame, LANE_H, Lane, Layer, PALETTE, RUN_COLOURS, Span, TOP, X0, X1, draw_marks, draw_windows,
    open_svg, run_attr,
};
use super::downsample::MAX_POINTS;
use crate::xml::{coord, esc};

/// A lane's drawn segments inside `span`: (start, end, state label, how many spells it stands
/// for). A spell narrower than a pixel merges with its neighbour, so thousands of short
/// leaderships stay drawable; spells wide enough to see stay apart, even when they touch (a
/// failover hands the primary straight from one server to the next).
pub fn lane_segments(lane: &Lane, span: Span) -> Vec<(f64, f64, String, usize)> {
    let mut exact: Vec<(f64, f64, String)> = Vec::new();
    let mut open: Option<(f64, String)> = None;
    for (t, state) in &lane.changes {
        if let Some((a, label)) = open.take() {
            exact.push((a, *t, label));
        }
        open = state.clone().map(|st| (*t, st));
    }
    if let Some((a, label)) = open {
        exact.push((a, span.end_s.max(a), label));
    }
    let min_gap = span.len_s() / MAX_POINTS as f64;
    let mut out: Vec<(f64, f64, String, usize)> = Vec::new();
    for (a, b, label) in exact.into_iter().filter(|(a, b, _)| span.overlaps(*a, *b)) {
        let (a, b) = (a.max(span.start_s), b.min(span.end_s));
        match out.last_mut() {
            Some(last) if a - last.1 < min_gap && (last.1 - last.0 < min_gap || b - a < min_gap) => {
                last.1 = last.1.max(b);
                last.3 += 1;
            }
            _ => out.push((a, b, label, 1)),
        }
    }
    out
}

/// The colour key of a state: its first word (the server of "pdx-pg2 (timeline 2)").
fn state_key(label: &str) -> &str {
    label.split(' ').next().unwrap_or(label)
}

/// The states of lanes coloured by state, in order of first appearance: their colours' order.
fn state_keys<'a>(layers: &'a [Layer]) -> Vec<&'a str> {
    let mut keys: Vec<&str> = Vec::new();
    for l in layers {
        let Body::Lanes(ls) = &l.chart.body else { continue };
        for (_, state) in ls.iter().filter(|lane| lane.by_state).flat_map(|lane| &lane.changes) {
            if let Some(k) = state.as_deref().map(state_key)
                && !keys.contains(&k)
            {
                keys.push(k);
            }
        }
    }
    keys
}

/// The chart's SVG and its key entries (each state's colour, for lanes coloured by state).
pub(super) fn lanes(layers: &[Layer], span: Span) -> (String, String) {
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
    let frame = Frame { span, height: TOP + names.len().max(1) as f64 * LANE_H + AXIS_H };
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
    let keys = state_keys(layers);
    s.push_str(r#"<g class="lanes">"#);
    let band = (LANE_H - 4.0) / layers.len() as f64;
    for (li, layer) in layers.iter().enumerate() {
        let Body::Lanes(ls) = &layer.chart.body else { continue };
        for lane in ls {
            let row = names.iter().position(|n| *n == lane.name).expect("collected above");
            let y = TOP + row as f64 * LANE_H + 2.0 + li as f64 * band;
            for (a, b, label, n) in lane_segments(lane, span) {
                let colour = match layers[li].colour {
                    Some(r) => RUN_COLOURS[r % 2],
                    None if lane.by_state => PALETTE[key_index(&keys, &label) % PALETTE.len()],
                    None => PALETTE[row % PALETTE.len()],
                };
                draw_segment(&mut s, &frame, (layers, layer, lane), (a, b, &label, n), (colour, y, band));
            }
        }
    }
    s.push_str("</g>");
    draw_marks(&mut s, layers, &frame);
    s.push_str("</svg>");
    let legend = if layers.len() == 1 { key_entries(&keys) } else { String::new() };
    (s, legend)
}

fn key_index(keys: &[&str], label: &str) -> usize {
    keys.iter().position(|k| *k == state_key(label)).unwrap_or(0)
}

fn key_entries(keys: &[&str]) -> String {
    let mut s = String::new();
    for (i, k) in keys.iter().enumerate() {
        let _ = write!(
            s,
            r#"<li data-state="{0}"><svg xmlns="http://www.w3.org/2000/svg" width="26" height="10"><rect x="1" y="0" width="24" height="10" fill="{1}"/></svg>{0}</li>"#,
            esc(k),
            PALETTE[i % PALETTE.len()]
        );
    }
    s
}

/// One spell's bar, with its tooltip, and its label where it fits.
fn draw_segment(
    s: &mut String,
    frame: &Frame,
    (layers, layer, lane): (&[Layer], &Layer, &Lane),
    (a, b, label, n): (f64, f64, &str, usize),
    (colour, y, band): (&str, f64, f64),
) {
    let (xa, xb) = (frame.x(a), frame.x(b));
    let what = if n == 1 { label.to_string() } else { format!("{n} spells, first {label}") };
    let _ = write!(
        s,
        r#"<rect class="seg" data-lane="{}"{} data-state="{}" fill="{colour}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>"#,
        esc(&lane.name),
        run_attr(layer.tag),
        esc(label),
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
    if layers.len() == 1 && n == 1 && xb - xa > 7.0 * label.len() as f64 + 8.0 {
        let _ = write!(
            s,
            r#"<text class="seg-label" x="{}" y="{}">{}</text>"#,
            coord(xa + 4.0),
            coord(y + band / 2.0 + 4.0),
            esc(label)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_segments_close_and_merge_below_a_pixel() {
        let lane = Lane {
            name: "e1".into(),
            changes: vec![(1.0, Some("term 2".into())), (3.0, None), (5.0, Some("term 4".into()))],
            by_state: false,
        };
        let segs = lane_segments(&lane, Span { start_s: 0.0, end_s: 10.0 });
        assert_eq!(segs, vec![(1.0, 3.0, "term 2".into(), 1), (5.0, 10.0, "term 4".into(), 1)]);
        // 7 hours of 2-second leaderships every 4 seconds: far more than pixels.
        let changes: Vec<(f64, Option<String>)> = (0..6300)
            .flat_map(|i| [(i as f64 * 4.0, Some(format!("term {i}"))), (i as f64 * 4.0 + 2.0, None)])
            .collect();
        let segs = lane_segments(
            &Lane { name: "e1".into(), changes, by_state: false },
            Span { start_s: 0.0, end_s: 25_200.0 },
        );
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].3, 6300);
    }

    /// A failover hands the primary from one server to the next at one instant: two spells,
    /// not one merged bar (which is what the report drew before).
    #[test]
    fn touching_spells_stay_apart_and_a_span_clips_them() {
        let lane = Lane {
            name: "pdx".into(),
            changes: vec![(0.0, Some("pdx-pg1 (timeline 1)".into())), (90.0, Some("pdx-pg2 (timeline 2)".into()))],
            by_state: true,
        };
        let segs = lane_segments(&lane, Span { start_s: 0.0, end_s: 180.0 });
        assert_eq!(
            segs,
            vec![(0.0, 90.0, "pdx-pg1 (timeline 1)".into(), 1), (90.0, 180.0, "pdx-pg2 (timeline 2)".into(), 1)]
        );
        let zoomed = lane_segments(&lane, Span { start_s: 80.0, end_s: 100.0 });
        assert_eq!(zoomed[0].0, 80.0, "clipped to the span");
        assert_eq!(zoomed[1].1, 100.0);
        let last = lane_segments(&lane, Span { start_s: 200.0, end_s: 300.0 });
        assert_eq!(last, vec![(200.0, 300.0, "pdx-pg2 (timeline 2)".into(), 1)], "the last spell lasts to the end");
    }
}
