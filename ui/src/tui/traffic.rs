//! Per-second traffic series for the sparklines, collected once from the trace's `metrics`
//! events (the cursor only picks a window of them).

use models::trace::{Event, MetricRows, TraceKind};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Combine {
    /// Sum of the counts of every label (messages per second).
    CountSum,
    /// The highest p99 of any label (the worst pair).
    P99Max,
}

struct Spec {
    label: &'static str,
    /// The metric's name; ending in `*`, a prefix (every commit level).
    metric: &'static str,
    combine: Combine,
}

impl Spec {
    fn matches(&self, metric: &str) -> bool {
        match self.metric.strip_suffix('*') {
            Some(prefix) => metric.starts_with(prefix),
            None => metric == self.metric,
        }
    }
}

const SPECS: [Spec; 8] = [
    Spec { label: "delivered/s", metric: "net_delivered", combine: Combine::CountSum },
    Spec { label: "dropped/s", metric: "net_dropped", combine: Combine::CountSum },
    Spec { label: "probe timeouts/s", metric: "probe_timed_out", combine: Combine::CountSum },
    Spec { label: "probe rtt p99 ms", metric: "probe_rtt_ms", combine: Combine::P99Max },
    Spec { label: "etcd writes ok/s", metric: "etcd_writes_ok", combine: Combine::CountSum },
    Spec { label: "etcd write p99 ms", metric: "etcd_write_ms", combine: Combine::P99Max },
    Spec { label: "pg commits/s", metric: "pg_commits_acked_*", combine: Combine::CountSum },
    Spec { label: "pg commit t/o /s", metric: "pg_commits_timed_out_*", combine: Combine::CountSum },
];

pub struct Series {
    pub label: &'static str,
    /// By simulated second; `None` where the metric saw no activity that second.
    pub per_second: Vec<Option<f64>>,
}

pub struct Traffic {
    /// Only the series this run has any data for, in `SPECS` order.
    pub series: Vec<Series>,
}

fn combine(spec: &Spec, rows: &MetricRows) -> Option<f64> {
    let mut matching = rows.iter().filter(|r| spec.matches(&r.metric)).peekable();
    matching.peek()?;
    Some(match spec.combine {
        Combine::CountSum => matching.map(|r| r.count as f64).sum(),
        Combine::P99Max => matching.filter_map(|r| r.dist.map(|d| d.p99)).fold(f64::NAN, f64::max),
    })
}

impl Traffic {
    pub fn from_events(events: &[Event]) -> Traffic {
        let seconds = events.last().map_or(0, |e| e.t_ns.div_ceil(1_000_000_000) as usize);
        let mut series: Vec<Series> =
            SPECS.iter().map(|s| Series { label: s.label, per_second: vec![None; seconds] }).collect();
        for ev in events {
            let TraceKind::Metrics { second, rows } = &ev.kind else { continue };
            for (spec, s) in SPECS.iter().zip(&mut series) {
                let second = *second as usize;
                if second >= s.per_second.len() {
                    s.per_second.resize(second + 1, None);
                }
                s.per_second[second] = combine(spec, rows).filter(|v| !v.is_nan());
            }
        }
        series.retain(|s| s.per_second.iter().any(Option::is_some));
        Traffic { series }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::DistStats;

    fn row(metric: &str, label: &str, count: u64, p99: Option<f64>) -> models::trace::MetricRow {
        let dist = p99.map(|p99| DistStats { min: 0.0, mean: 0.0, p50: 0.0, p99, max: p99 });
        models::trace::MetricRow { metric: metric.into(), label: label.into(), count, dist }
    }

    #[test]
    fn sums_counts_and_takes_the_worst_p99() {
        let events = vec![
            Event {
                seq: 0,
                t_ns: 1_000_000_000,
                node: None,
                kind: TraceKind::Metrics {
                    second: 0,
                    rows: vec![
                        row("net_delivered", "", 10, None),
                        row("probe_rtt_ms", "a->b", 3, Some(0.5)),
                        row("probe_rtt_ms", "a->c", 3, Some(140.0)),
                        row("net_dropped", "loss", 2, None),
                        row("net_dropped", "node_down", 5, None),
                        row("pg_commits_acked_on", "p", 900, None),
                        row("pg_commits_acked_local", "p", 100, None),
                    ]
                    .into(),
                },
            },
            Event {
                seq: 1,
                t_ns: 3_000_000_000,
                node: None,
                kind: TraceKind::Metrics { second: 2, rows: vec![row("net_delivered", "", 4, None)].into() },
            },
        ];
        let t = Traffic::from_events(&events);
        let labels: Vec<&str> = t.series.iter().map(|s| s.label).collect();
        assert_eq!(labels, ["delivered/s", "dropped/s", "probe rtt p99 ms", "pg commits/s"], "etcd series absent");
        assert_eq!(t.series[0].per_second, [Some(10.0), None, Some(4.0)]);
        assert_eq!(t.series[1].per_second, [Some(7.0), None, None]);
        assert_eq!(t.series[2].per_second, [Some(140.0), None, None]);
        assert_eq!(t.series[3].per_second, [Some(1000.0), None, None], "every commit level");
    }
}
