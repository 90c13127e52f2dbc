//! summary.json: the run's key figures, and the scenario's `[[assert]]`s evaluated on them.

use models::Label;
use models::probe::{METRIC_DISK_ERRORS, METRIC_FSYNC_MS, METRIC_RECEIVED, METRIC_RTT_MS, METRIC_SENT, METRIC_TIMED_OUT};
use models::trace::{DropReason, TraceKind};
use serde_json::{Map, Value, json};

use crate::metrics::{Acc, Metrics, label_string};
use crate::world::{METRIC_DELIVERED, METRIC_DROPPED};

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AssertionResult {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// Rounds to 6 decimals so the JSON is short and the figures stable.
fn r6(x: f64) -> Value {
    if x.is_finite() { json!((x * 1e6).round() / 1e6) } else { Value::Null }
}

fn dist(prefix: &str, acc: Option<&Acc>, out: &mut Map<String, Value>) {
    let Some(a) = acc.filter(|a| a.count > 0) else { return };
    out.insert(format!("{prefix}_min"), r6(a.min));
    out.insert(format!("{prefix}_p50"), r6(a.quantile(0.5)));
    out.insert(format!("{prefix}_p99"), r6(a.quantile(0.99)));
    out.insert(format!("{prefix}_max"), r6(a.max));
}

pub fn network(metrics: &Metrics, lookahead_ms: f64, in_flight_at_end: usize) -> Value {
    let count = |m, l| metrics.total(m, l).map_or(0, |a| a.count);
    let mut dropped = Map::new();
    for r in DropReason::ALL {
        dropped.insert(r.as_str().into(), json!(count(METRIC_DROPPED, Label::Tag(r.as_str()))));
    }
    json!({
        "delivered": count(METRIC_DELIVERED, Label::None),
        "dropped": dropped,
        "in_flight_at_end": in_flight_at_end,
        "lookahead_ms": r6(lookahead_ms),
    })
}

/// Per-pair probe figures: sent, received, timed out, loss ratio and round-trip times.
pub fn probe(metrics: &Metrics, names: &[String]) -> Value {
    let mut pairs = Map::new();
    for (metric, label, acc) in metrics.totals() {
        if metric != METRIC_SENT {
            continue;
        }
        let sent = acc.count;
        let received = metrics.total(METRIC_RECEIVED, label).map_or(0, |a| a.count);
        let timed_out = metrics.total(METRIC_TIMED_OUT, label).map_or(0, |a| a.count);
        let mut p = Map::new();
        p.insert("sent".into(), json!(sent));
        p.insert("received".into(), json!(received));
        p.insert("timed_out".into(), json!(timed_out));
        // Over resolved pings only: those still in flight when the run ends (or when the
        // pinger crashed) are neither answered nor lost.
        let resolved = received + timed_out;
        p.insert("loss_ratio".into(), r6(if resolved > 0 { timed_out as f64 / resolved as f64 } else { 0.0 }));
        dist("rtt_ms", metrics.total(METRIC_RTT_MS, label), &mut p);
        pairs.insert(label_string(label, names), Value::Object(p));
    }
    json!({ "pairs": pairs })
}

pub fn disks(metrics: &Metrics, names: &[String]) -> Value {
    let mut out = Map::new();
    for (i, name) in names.iter().enumerate() {
        let label = Label::Node(i as u32);
        let fsync = metrics.total(METRIC_FSYNC_MS, label);
        let errors = metrics.total(METRIC_DISK_ERRORS, label).map_or(0, |a| a.count);
        if fsync.is_none() && errors == 0 {
            continue;
        }
        let mut d = Map::new();
        d.insert("fsyncs".into(), json!(fsync.map_or(0, |a| a.count)));
        dist("fsync_ms", fsync, &mut d);
        d.insert("errors".into(), json!(errors));
        out.insert(name.clone(), Value::Object(d));
    }
    Value::Object(out)
}

/// Crashes, restarts and pauses per node, counted from the trace.
pub fn nodes(events: &[models::trace::Event], names: &[String]) -> Value {
    let mut counts = vec![[0u64; 3]; names.len()];
    for ev in events {
        let Some(node) = ev.node else { continue };
        let k = match ev.kind {
            TraceKind::NodeCrashed => 0,
            TraceKind::NodeRestarted { .. } => 1,
            TraceKind::NodePaused => 2,
            _ => continue,
        };
        counts[node.0 as usize][k] += 1;
    }
    let mut out = Map::new();
    for (name, [crashes, restarts, pauses]) in names.iter().zip(counts) {
        out.insert(name.clone(), json!({ "crashes": crashes, "restarts": restarts, "pauses": pauses }));
    }
    Value::Object(out)
}

/// Looks a dotted path up in the summary. Keys may contain "->" but not ".".
pub fn lookup<'a>(summary: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut v = summary;
    let mut walked = String::new();
    for part in path.split('.') {
        v = match v.get(part) {
            Some(next) => next,
            None => {
                let keys = match v {
                    Value::Object(m) => m.keys().take(20).cloned().collect::<Vec<_>>().join(", "),
                    _ => "(not an object)".into(),
                };
                let at = if walked.is_empty() { "the top level".to_string() } else { format!("`{walked}`") };
                return Err(format!("no `{part}` at {at}; there: {keys}"));
            }
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
    }
    Ok(v)
}

pub fn evaluate(a: &scenarios::Assertion, summary: &Value) -> AssertionResult {
    let fail = |detail: String| AssertionResult { name: a.name.clone(), passed: false, detail };
    let value = match lookup(summary, &a.metric) {
        Ok(v) => v,
        Err(e) => return fail(format!("{}: {e}", a.metric)),
    };
    let Some(x) = value.as_f64() else {
        return fail(format!("{} is {value}, not a number", a.metric));
    };
    let mut bounds = Vec::new();
    let mut ok = true;
    if let Some(lo) = a.min {
        ok &= x >= lo;
        bounds.push(format!(">= {lo}"));
    }
    if let Some(hi) = a.max {
        ok &= x <= hi;
        bounds.push(format!("<= {hi}"));
    }
    if let Some(eq) = a.equals {
        ok &= (x - eq).abs() <= 1e-9 * eq.abs().max(1.0);
        bounds.push(format!("== {eq}"));
    }
    AssertionResult { name: a.name.clone(), passed: ok, detail: format!("{} = {x} (expected {})", a.metric, bounds.join(" and ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assertion(metric: &str, min: Option<f64>, max: Option<f64>) -> scenarios::Assertion {
        scenarios::Assertion { name: "t".into(), line: 1, metric: metric.into(), min, max, equals: None }
    }

    #[test]
    fn evaluates_paths_with_arrows() {
        let s = json!({"probe": {"pairs": {"a->b": {"loss_ratio": 0.25}}}});
        assert!(evaluate(&assertion("probe.pairs.a->b.loss_ratio", Some(0.2), Some(0.3)), &s).passed);
        let r = evaluate(&assertion("probe.pairs.a->b.loss_ratio", None, Some(0.1)), &s);
        assert!(!r.passed);
        assert_eq!(r.detail, "probe.pairs.a->b.loss_ratio = 0.25 (expected <= 0.1)");
        let r = evaluate(&assertion("probe.pairs.b->a.loss_ratio", Some(0.0), None), &s);
        assert!(!r.passed && r.detail.contains("no `b->a` at `probe.pairs`; there: a->b"), "{}", r.detail);
        assert!(!evaluate(&assertion("probe", Some(0.0), None), &s).passed, "an object is not a number");
    }
}
