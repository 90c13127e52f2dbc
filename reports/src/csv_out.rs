//! metrics.csv: the per-second metrics of the trace in long form (RFC 4180: CRLF line ends,
//! fields quoted when they hold a comma, quote or line break; a header row; units in metric
//! names such as `probe_rtt_ms`).

use std::path::Path;

use models::trace::{Event, TraceKind};

pub const HEADER: [&str; 9] = ["second", "metric", "label", "count", "min", "mean", "p50", "p99", "max"];

fn num(x: f64) -> String {
    let r = (x * 1e6).round() / 1e6;
    format!("{r}")
}

pub fn write_metrics(path: &Path, events: &[Event]) -> csv::Result<()> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_path(path)?;
    w.write_record(HEADER)?;
    for ev in events {
        let TraceKind::Metrics { second, rows } = &ev.kind else { continue };
        for r in rows {
            let mut rec = vec![second.to_string(), r.metric.to_string(), r.label.to_string(), r.count.to_string()];
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

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::{DistStats, MetricRow};

    #[test]
    fn rfc4180_crlf_header_and_quoting() {
        let rows = vec![
            MetricRow { metric: "net_delivered".into(), label: "".into(), count: 12, dist: None },
            MetricRow {
                metric: "probe_rtt_ms".into(),
                label: "a,\"b\"".into(),
                count: 2,
                dist: Some(DistStats { min: 0.25, mean: 0.5, p50: 0.5, p99: 0.75, max: 0.75 }),
            },
        ];
        let events = vec![Event {
            seq: 0,
            t_ns: 1_000_000_000,
            node: None,
            kind: TraceKind::Metrics { second: 0, rows: rows.into() },
        }];
        let path = std::env::temp_dir().join(format!("pgsim-metrics-{}.csv", std::process::id()));
        write_metrics(&path, &events).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            text,
            "second,metric,label,count,min,mean,p50,p99,max\r\n0,net_delivered,,12,,,,,\r\n0,probe_rtt_ms,\"a,\"\"b\"\"\",2,0.25,0.5,0.5,0.75,0.75\r\n"
        );
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(r.headers().unwrap(), HEADER.as_slice());
        let recs: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(&recs[1][2], "a,\"b\"");
    }
}
