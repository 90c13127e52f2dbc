//! Axes and the numbers on them: the value axis (linear, or logarithmic for latencies), the
//! time axis in simulated time, and the short formats shared with the tables.

use std::fmt::Write;

use super::chart::{Frame, Scale, X0, X1};
use crate::xml::coord;

/// The value axis of a line chart, fitted to the drawn points.
pub struct YAxis {
    pub scale: Scale,
    pub lo: f64,
    pub hi: f64,
}

impl YAxis {
    pub fn fit(scale: Scale, values: impl Iterator<Item = f64>) -> YAxis {
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
    pub fn frac(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10()),
        }
    }

    pub fn ticks(&self) -> Vec<f64> {
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

/// Short number for an axis or a tooltip: 0.25, 12, 3.4k, 1.2M, 60.0G (not "60000.0M").
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 1e12 {
        format!("{:.1}T", v / 1e12)
    } else if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
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
    // With a unit letter the decimal stays, so an axis reads 2.5k, 5.0k, 7.5k.
    if s.contains('.') && !s.ends_with(['k', 'M', 'G', 'T']) {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Simulated time as a clock: "45s", "2m30s", "1h05m", "1h05m30s" (a zoomed axis).
pub fn fmt_clock(t_s: f64) -> String {
    let t = t_s.round() as u64;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) if s != 0 => format!("{h}h{m:02}m{s:02}s"),
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

pub(super) fn draw_time_axis(s: &mut String, frame: &Frame) {
    let step = time_step(frame.span.len_s());
    let y = frame.plot_bottom();
    let _ = write!(s, r#"<g class="axis x-axis"><line x1="{X0}" x2="{X1}" y1="{0}" y2="{0}"/>"#, coord(y));
    let mut t = (frame.span.start_s / step).ceil() * step;
    while t <= frame.span.end_s + 1e-9 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_clocks_read_well() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(3400.0), "3.4k");
        assert_eq!(fmt_num(6e10), "60.0G", "a 60 GB lag axis, not 60000.0M");
        assert_eq!(fmt_num(2.5e6), "2.5M");
        assert_eq!(fmt_num(1.5e12), "1.5T");
        assert_eq!(fmt_num(0.0012), "0.001");
        assert_eq!(fmt_clock(45.0), "45s");
        assert_eq!(fmt_clock(150.0), "2m30s");
        assert_eq!(fmt_clock(3900.0), "1h05m");
        assert_eq!(fmt_clock(7200.0), "2h");
        assert_eq!(fmt_clock(3930.0), "1h05m30s");
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
}
