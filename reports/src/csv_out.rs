//! metrics.csv: the per-second metrics of the trace in long form (RFC 4180, header row, units
//! in metric names such as `probe_rtt_ms`).

use std::path::Path;

use models::trace::{Event, TraceKind};

pub const HEADER: [&str; 9] = ["second", "metric", "label", "count", "min", "mean", "p50", "p99", "max"];

fn num(x: f64) -> String {
    let r = (x * 1e6).round() / 1e6;
    format!("{r}")
}

pub fn write_metrics(path: &Path, events: &[Event]) -> csv::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(HEADER)?;
    for ev in events {
        let TraceKind::Metrics { second, rows } = &ev.kind else { continue };
        for r in rows {
            let mut rec = vec![second.to_string(), r.metric.clone(), r.label.clone(), r.count.to_string()];
            match &r.dist {
                Some(d) => rec.extend([d.min, d.mean, d.p50, d.p99, d.max].map(num)),
                None => rec.extend(std::iter::repeat_n(String::new(), 5)),
            }
            w.write_record(&rec)?;
        }
    }
    w.flush()?;
    Ok(())
}
