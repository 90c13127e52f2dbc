//! Lane charts: one row per lane (an etcd member, later a region), a bar for each spell in a
//! state (leading in term 4; later "pg2 is primary").

use std::fmt::Write;

use super::axis::{draw_time_axis, fmt_seconds};
use super::chart::{
    AXIS_H, Body, Frame, LANE_H, Lane, Layer, PALETTE, RUN_COLOURS, TOP, X0, X1, draw_marks, draw_windows, open_svg,
    run_attr,
};
use super::downsample::MAX_POINTS;
use crate::xml::{coord, esc};

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

pub(super) fn lanes(layers: &[Layer], end_s: f64) -> String {
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
