//! Keeping long runs small: a chart is about 1000 pixels wide, so a 7-hour run's 25,200 points
//! per series, or its thousands of flapping phases, are reduced to what a pixel column can show
//! while keeping the extremes (a one-second spike must stay visible).

/// The most points a series keeps; spans and marks are thinned to the same resolution.
pub const MAX_POINTS: usize = 1500;

/// Reduces time-ordered `points` over `[t0, t1]` to at most `max_points`: the span is cut into
/// `max_points / 2` equal buckets and each keeps its lowest and its highest point, in time
/// order. A NaN (a gap: no sample that second) survives only in a bucket that has nothing
/// else, so gaps wider than a bucket still break the line.
pub fn min_max(points: &[(f64, f64)], t0: f64, t1: f64, max_points: usize) -> Vec<(f64, f64)> {
    if points.len() <= max_points {
        return points.to_vec();
    }
    let buckets = (max_points / 2).max(1);
    let width = (t1 - t0).max(f64::MIN_POSITIVE) / buckets as f64;
    let bucket_of = |t: f64| (((t - t0) / width).floor().max(0.0) as usize).min(buckets - 1);
    let mut out = Vec::with_capacity(max_points);
    let mut current: Option<Bucket> = None;
    for &(t, y) in points {
        let b = bucket_of(t);
        if current.as_ref().is_some_and(|c| c.index != b) {
            current.take().expect("checked").flush(&mut out);
        }
        let c = current.get_or_insert(Bucket { index: b, first_t: t, lo: None, hi: None });
        if y.is_nan() {
            continue;
        }
        if c.lo.is_none_or(|lo| y < lo.1) {
            c.lo = Some((t, y));
        }
        if c.hi.is_none_or(|hi| y > hi.1) {
            c.hi = Some((t, y));
        }
    }
    if let Some(c) = current {
        c.flush(&mut out);
    }
    out
}

/// One bucket of `min_max`: its lowest and highest points so far.
struct Bucket {
    index: usize,
    first_t: f64,
    lo: Option<(f64, f64)>,
    hi: Option<(f64, f64)>,
}

impl Bucket {
    fn flush(self, out: &mut Vec<(f64, f64)>) {
        match (self.lo, self.hi) {
            (Some(lo), Some(hi)) if lo.0 == hi.0 => out.push(lo),
            (Some(lo), Some(hi)) => {
                let (a, b) = if lo.0 < hi.0 { (lo, hi) } else { (hi, lo) };
                out.push(a);
                out.push(b);
            }
            // Nothing but gaps: keep one, so the line breaks here.
            _ => out.push((self.first_t, f64::NAN)),
        }
    }
}

/// Merges time-ordered spans closer than `min_gap` (less than a pixel apart at this zoom);
/// each result carries how many spans it stands for.
pub fn merge_spans(spans: &[(f64, f64)], min_gap: f64) -> Vec<(f64, f64, usize)> {
    let mut out: Vec<(f64, f64, usize)> = Vec::new();
    for &(a, b) in spans {
        match out.last_mut() {
            Some(last) if a - last.1 < min_gap => {
                last.1 = last.1.max(b);
                last.2 += 1;
            }
            _ => out.push((a, b, 1)),
        }
    }
    out
}

/// Thins time-ordered instants: one per `min_gap`, each with how many it stands for.
pub fn thin_instants(ts: &[f64], min_gap: f64) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut first_t = f64::NEG_INFINITY;
    for (i, &t) in ts.iter().enumerate() {
        match out.last_mut() {
            Some(last) if t - first_t < min_gap => last.1 += 1,
            _ => {
                out.push((i, 1));
                first_t = t;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_series_are_untouched() {
        let pts = vec![(0.5, 1.0), (1.5, f64::NAN), (2.5, 3.0)];
        let out = min_max(&pts, 0.0, 3.0, 10);
        assert_eq!(out.len(), 3);
        assert!(out[1].1.is_nan());
    }

    #[test]
    fn long_series_keep_spikes_and_dips_within_the_limit() {
        let n = 25_200;
        let mut pts: Vec<(f64, f64)> = (0..n).map(|s| (s as f64 + 0.5, 10.0)).collect();
        pts[12_345].1 = 900.0;
        pts[20_000].1 = 0.0;
        let out = min_max(&pts, 0.0, n as f64, MAX_POINTS);
        assert!(out.len() <= MAX_POINTS, "{} points", out.len());
        assert!(out.len() >= MAX_POINTS / 2, "every bucket keeps something");
        assert!(out.iter().any(|p| p.1 == 900.0), "spike kept");
        assert!(out.iter().any(|p| p.1 == 0.0), "dip kept");
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0), "time order kept");
    }

    #[test]
    fn gaps_survive_only_when_a_whole_bucket_is_empty() {
        let n = 10_000;
        let pts: Vec<(f64, f64)> =
            (0..n).map(|s| (s as f64, if (4000..6000).contains(&s) || s == 100 { f64::NAN } else { 1.0 })).collect();
        let out = min_max(&pts, 0.0, n as f64, 100);
        let gaps = out.iter().filter(|p| p.1.is_nan()).count();
        assert_eq!(gaps, 10, "2000 s of gap over 200 s buckets; the lone NaN at 100 s is absorbed");
    }

    #[test]
    fn spans_merge_below_a_pixel() {
        let spans: Vec<(f64, f64)> = (0..100).map(|i| (i as f64 * 4.0, i as f64 * 4.0 + 2.0)).collect();
        assert_eq!(merge_spans(&spans, 1.0).len(), 100);
        assert_eq!(merge_spans(&spans, 3.0), vec![(0.0, 398.0, 100)]);
    }

    #[test]
    fn instants_thin_to_one_per_gap() {
        let ts = [0.0, 0.1, 0.2, 5.0, 9.0, 9.5];
        assert_eq!(thin_instants(&ts, 1.0), vec![(0, 3), (3, 1), (4, 2)]);
    }
}
