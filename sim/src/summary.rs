//! summary.json: the run's key figures, and the scenario's `[[assert]]`s evaluated on them.

use models::Label;
use models::probe::{
    METRIC_DISK_ERRORS, METRIC_FSYNC_MS, METRIC_RECEIVED, METRIC_RTT_MS, METRIC_SENT, METRIC_TIMED_OUT,
};
use models::raft::StepDown;
use models::trace::{DropReason, RebuildPhase, TraceKind};
use serde_json::{Map, Value, json};

use crate::metrics::{Acc, Metrics, label_string};
use crate::world::{METRIC_DELIVERED, METRIC_DROPPED};

/// What an assertion made of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Its bounds held.
    Passed,
    /// Its bounds did not hold: the run fails.
    Failed,
    /// A `share_of_seeds` assertion whose bounds did not hold: the run still passes, and a
    /// sweep counts the seeds it held in.
    Missed,
    /// Its `if` did not hold in this run, so it was not checked.
    Skipped,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AssertionResult {
    pub name: String,
    pub metric: String,
    /// The metric's value, when it is a number.
    pub value: Option<f64>,
    /// The run does not fail because of it (passed, missed or skipped).
    pub passed: bool,
    pub status: Status,
    /// Set for an assertion that must hold in only this share of a sweep's seeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_of_seeds: Option<f64>,
    pub detail: String,
}

impl AssertionResult {
    /// Whether its bounds held in this run.
    pub fn held(&self) -> bool {
        self.status == Status::Passed
    }
}

/// Evaluates the scenario's assertions in order: an assertion whose `if` names one that did
/// not hold is skipped, and one with a `share_of_seeds` below 1 that does not hold is missed
/// rather than failed.
pub fn judge(asserts: &[scenarios::Assertion], summary: &Value) -> Vec<AssertionResult> {
    let mut out: Vec<AssertionResult> = Vec::with_capacity(asserts.len());
    for (i, a) in asserts.iter().enumerate() {
        let mut r = evaluate(a, summary);
        let gate = a.given.as_ref().map(|id| {
            let j = asserts[..i].iter().position(|b| b.id.as_ref() == Some(id)).expect("the loader checks `if` ids");
            (id, &out[j])
        });
        if let Some((id, g)) = gate.filter(|(_, g)| !g.held()) {
            r.status = Status::Skipped;
            r.detail = format!("skipped: its `if` ({id}: {}) did not hold in this run", g.name);
        } else if a.is_share() && !r.held() {
            r.status = Status::Missed;
            r.detail = format!(
                "{} (missed in this seed; required in {} of a sweep's seeds)",
                r.detail,
                percent(a.share_of_seeds)
            );
        }
        r.passed = r.status != Status::Failed;
        out.push(r);
    }
    out
}

/// `0.9` -> `90 %`.
pub fn percent(share: f64) -> String {
    format!("{} %", (share * 1e4).round() / 1e2)
}

/// Rounds to 6 decimals so the JSON is short and the figures stable.
fn r6(x: f64) -> Value {
    if x.is_finite() { json!((x * 1e6).round() / 1e6) } else { Value::Null }
}

/// A distribution's min, p50, p99 and max; null without data, so a summary's keys do not
/// depend on what the run happened to measure (`pgsim validate` checks paths against them).
fn dist(prefix: &str, acc: Option<&Acc>, out: &mut Map<String, Value>) {
    let Some(a) = acc.filter(|a| a.count > 0) else {
        for q in ["min", "p50", "p99", "max"] {
            out.insert(format!("{prefix}_{q}"), Value::Null);
        }
        return;
    };
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
        // Arrays are indexed by position: `stack.failovers.0.cause`.
        let item = match (v, part.parse::<usize>()) {
            (Value::Array(a), Ok(i)) => a.get(i),
            _ => v.get(part),
        };
        v = match item {
            Some(next) => next,
            None => {
                let keys = match v {
                    Value::Object(m) => m.keys().take(20).cloned().collect::<Vec<_>>().join(", "),
                    Value::Array(a) => format!("an array of {} items (index 0..{})", a.len(), a.len()),
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
    let share_of_seeds = a.is_share().then_some(a.share_of_seeds);
    let fail = |detail: String| AssertionResult {
        name: a.name.clone(),
        metric: a.metric.clone(),
        value: None,
        passed: false,
        status: Status::Failed,
        share_of_seeds,
        detail,
    };
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
    AssertionResult {
        name: a.name.clone(),
        metric: a.metric.clone(),
        value: Some(x),
        passed: ok,
        status: if ok { Status::Passed } else { Status::Failed },
        share_of_seeds,
        detail: format!("{} = {x} (expected {})", a.metric, bounds.join(" and ")),
    }
}

/// The `etcd` object: elections, leaders, and whether writes could commit.
pub fn etcd(events: &[models::trace::Event], metrics: &Metrics, names: &[String], end: models::SimTime) -> Value {
    use models::etcd::writer_metrics::{FAILED, OK, UNAVAILABLE_US, WRITE_MS};
    let (mut leader_changes, mut elections, mut pre_votes, mut max_term) = (0u64, 0u64, 0u64, 0u64);
    let (mut higher_term, mut check_quorum, mut transfer) = (0u64, 0u64, 0u64);
    // Leaderless time: from the start, or a step-down, until the next election win.
    let mut leader: Option<(u32, u64)> = None;
    let mut leaderless_since = Some(0u64);
    let mut leaderless_ns = 0u64;
    for ev in events {
        match &ev.kind {
            TraceKind::RaftCampaign { term, pre_vote, .. } => {
                if *pre_vote {
                    pre_votes += 1;
                } else {
                    elections += 1;
                    max_term = max_term.max(*term);
                }
            }
            TraceKind::RaftLeaderElected { term, .. } => {
                leader_changes += 1;
                max_term = max_term.max(*term);
                leader = ev.node.map(|n| (n.0, *term));
                if let Some(since) = leaderless_since.take() {
                    leaderless_ns += ev.t_ns - since;
                }
            }
            TraceKind::RaftSteppedDown { reason, term } => {
                match reason {
                    StepDown::CheckQuorum => check_quorum += 1,
                    StepDown::Transfer => transfer += 1,
                    StepDown::HigherTerm => higher_term += 1,
                }
                if leader.is_some_and(|(n, t)| Some(n) == ev.node.map(|x| x.0) && t == *term) {
                    leader = None;
                    leaderless_since = Some(ev.t_ns);
                }
            }
            TraceKind::NodeCrashed | TraceKind::EtcdHalted { .. }
                if leader.is_some_and(|(n, _)| Some(n) == ev.node.map(|x| x.0)) =>
            {
                leader = None;
                leaderless_since = Some(ev.t_ns);
            }
            _ => {}
        }
    }
    if let Some(since) = leaderless_since {
        leaderless_ns += end.0.saturating_sub(since);
    }
    let sum = |m| metrics.totals().filter(|(name, _, _)| *name == m).map(|(_, _, a)| a.count).sum::<u64>();
    let (ok, failed) = (sum(OK), sum(FAILED));
    let mut out = Map::new();
    out.insert("leader_changes".into(), json!(leader_changes));
    out.insert("elections_started".into(), json!(elections));
    out.insert("pre_vote_campaigns".into(), json!(pre_votes));
    out.insert("max_term".into(), json!(max_term));
    out.insert(
        "step_downs".into(),
        json!({ "higher_term": higher_term, "check_quorum": check_quorum, "transfer": transfer }),
    );
    out.insert("leader".into(), leader.map_or(Value::Null, |(n, _)| json!(names[n as usize])));
    out.insert("leaderless_seconds".into(), r6(leaderless_ns as f64 / 1e9));
    out.insert("writes_ok".into(), json!(ok));
    out.insert("writes_failed".into(), json!(failed));
    // Gaps between acknowledged writes beyond one interval (see the writer). With several
    // writers, the mean over them.
    let writers = metrics.totals().filter(|(n, _, _)| *n == OK).count().max(1) as f64;
    out.insert("write_unavailable_seconds".into(), r6(sum(UNAVAILABLE_US) as f64 / 1e6 / writers));
    let mut lat = Map::new();
    let all: Vec<&Acc> = metrics.totals().filter(|(n, _, _)| *n == WRITE_MS).map(|(_, _, a)| a).collect();
    // With several writers there is no one latency to report; with none yet, nulls.
    match all.as_slice() {
        [one] => dist("write_ms", Some(one), &mut lat),
        [] => dist("write_ms", None, &mut lat),
        _ => {}
    }
    out.extend(lat);
    Value::Object(out)
}

/// Adds to the `postgres` object (which the durability checker started): lag per standby,
/// reads, timed-out commits, rebuilds, and per-cluster write availability.
pub fn postgres(
    obj: &mut Map<String, Value>,
    sc: &scenarios::Scenario,
    events: &[models::trace::Event],
    metrics: &Metrics,
    names: &[String],
) {
    use models::pg::{
        METRIC_LAG_BYTES, METRIC_LAG_S, METRIC_READS_OK, METRIC_READS_STALE, SyncLevel, acked_metric, timed_out_metric,
    };
    let pg = obj.entry("postgres").or_insert_with(|| json!({}));
    let out = pg.as_object_mut().expect("postgres is an object");
    let mut lag_s = Map::new();
    let mut lag_bytes = Map::new();
    for (i, name) in names.iter().enumerate() {
        let label = Label::Node(i as u32);
        if let Some(a) = metrics.total(METRIC_LAG_S, label) {
            lag_s.insert(name.clone(), r6(a.max));
        }
        if let Some(a) = metrics.total(METRIC_LAG_BYTES, label) {
            lag_bytes.insert(name.clone(), json!(a.max as u64));
        }
    }
    out.insert("replication_lag_seconds_max".into(), Value::Object(lag_s));
    out.insert("replication_lag_bytes_max".into(), Value::Object(lag_bytes));
    let total = |m: &'static str| metrics.totals().filter(|(n, _, _)| *n == m).map(|(_, _, a)| a.count).sum::<u64>();
    out.insert("reads".into(), json!(total(METRIC_READS_OK) + total(METRIC_READS_STALE)));
    out.insert("stale_reads".into(), json!(total(METRIC_READS_STALE)));
    let mut timed_out = Map::new();
    let mut acked = Map::new();
    for l in SyncLevel::ALL {
        timed_out.insert(l.as_str().into(), json!(total(timed_out_metric(l))));
        acked.insert(l.as_str().into(), json!(total(acked_metric(l))));
    }
    out.insert("commits_acknowledged_by_level".into(), Value::Object(acked));
    out.insert("commits_timed_out".into(), Value::Object(timed_out));
    let mut rebuilds = Vec::new();
    let mut rebuild_seconds = Map::new();
    for ev in events {
        if let TraceKind::PgRebuild { method, phase, seconds, .. } = &ev.kind
            && *phase == RebuildPhase::Started
        {
            let node = ev.node.map_or(String::new(), |n| names[n.0 as usize].clone());
            rebuild_seconds.insert(node.clone(), r6(*seconds));
            rebuilds.push(json!({ "node": node, "method": method, "seconds": r6(*seconds) }));
        }
    }
    out.insert("rebuilds".into(), Value::Array(rebuilds));
    out.insert("rebuild_seconds".into(), Value::Object(rebuild_seconds));
    // Per cluster: seconds (after the first acknowledged commit) in which no commit was acknowledged.
    let mut clusters = Map::new();
    for (c, spec) in sc.pg_clusters.iter().enumerate() {
        let members: Vec<&str> = sc
            .nodes
            .iter()
            .filter(|n| n.pg.as_ref().is_some_and(|p| p.cluster == c))
            .map(|n| n.name.as_str())
            .collect();
        let mut acked_seconds = std::collections::BTreeSet::new();
        for ev in events {
            if let TraceKind::Metrics { second, rows } = &ev.kind
                && rows.iter().any(|r| r.metric.starts_with("pg_commits_acked_") && members.contains(&&*r.label))
            {
                acked_seconds.insert(*second);
            }
        }
        let first = acked_seconds.first().copied().unwrap_or(0);
        let last_second = sc.duration.as_secs();
        let unavailable = (first..last_second).filter(|s| !acked_seconds.contains(s)).count();
        clusters.insert(spec.name.clone(), json!({ "write_unavailable_seconds": unavailable }));
    }
    out.insert("clusters".into(), Value::Object(clusters));
}

/// The shape of the summary.json a run of `sc` writes, for `pgsim validate`'s check of
/// `[[assert]] metric` paths: the summary of a run of the scenario that ends after 1 ms, made
/// by `run::finish` as every summary is, so the metric paths have one source. (1 ms, not 0: the
/// durability checker's `postgres` figures appear once it has seen a server's first role.)
/// An object keyed by what the run met (nodes, probe pairs, tenants, clusters) or still empty
/// then (failovers) is open: only a run knows its keys.
pub fn shape(sc: &scenarios::Scenario) -> scenarios::lint::Shape {
    let mut short = sc.clone();
    short.duration = std::time::Duration::from_millis(1);
    let out = crate::run(&short, crate::RunOptions::default());
    let mut names: Vec<&str> = sc.nodes.iter().map(|n| n.name.as_str()).collect();
    names.extend(sc.tenants.iter().map(|t| t.name.as_str()));
    names.extend(sc.pg_clusters.iter().map(|c| c.name.as_str()));
    shape_of(&out.summary, &names)
}

fn shape_of(v: &Value, names: &[&str]) -> scenarios::lint::Shape {
    use scenarios::lint::Shape;
    let keyed_by_the_run = |m: &Map<String, Value>| m.keys().any(|k| k.contains("->") || names.contains(&k.as_str()));
    match v {
        Value::Object(m) if m.is_empty() || keyed_by_the_run(m) => Shape::Open,
        Value::Object(m) => Shape::Object(m.iter().map(|(k, v)| (k.clone(), shape_of(v, names))).collect()),
        Value::Array(_) => Shape::Open,
        _ => Shape::Value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assertion(metric: &str, min: Option<f64>, max: Option<f64>) -> scenarios::Assertion {
        scenarios::Assertion { line: 1, ..scenarios::Assertion::new("t", metric, min, max, None) }
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

    /// The cascade gate of the 2020 files in small: a share assertion and what depends on it.
    fn gated(failovers: f64, stop_s: f64) -> Vec<AssertionResult> {
        use scenarios::Assertion;
        let asserts = vec![
            Assertion {
                id: Some("cascade".into()),
                share_of_seeds: 0.9,
                ..Assertion::new("fails over", "failovers", Some(1.0), None, None)
            },
            Assertion {
                given: Some("cascade".into()),
                ..Assertion::new("writes stop", "stop_s", Some(700.0), None, None)
            },
            Assertion { id: Some("long".into()), ..Assertion::new("long stop", "stop_s", Some(800.0), None, None) },
            Assertion { given: Some("long".into()), ..Assertion::new("no loss", "lost", None, Some(0.0), None) },
        ];
        judge(&asserts, &json!({"failovers": failovers, "stop_s": stop_s, "lost": 0}))
    }

    #[test]
    fn a_gate_that_misses_skips_what_depends_on_it_and_fails_nothing() {
        let status = |rs: &[AssertionResult]| rs.iter().map(|r| r.status).collect::<Vec<_>>();
        use Status::*;
        // The cascade: everything checked.
        assert_eq!(status(&gated(1.0, 850.0)), [Passed, Passed, Passed, Passed]);
        // The cascade with too short a stop: a plain failure, and the run fails.
        let rs = gated(1.0, 750.0);
        assert_eq!(status(&rs), [Passed, Passed, Failed, Skipped]);
        assert!(!rs.iter().all(|r| r.passed));
        // No cascade: the share assertion is missed, its dependant skipped, the run passes;
        // an assertion without an `if` is still checked (and fails here).
        let rs = gated(0.0, 6.0);
        assert_eq!(status(&rs), [Missed, Skipped, Failed, Skipped]);
        assert!(rs[0].passed && rs[1].passed && !rs[2].passed);
        assert!(rs[0].detail.contains("required in 90 % of a sweep's seeds"), "{}", rs[0].detail);
        assert!(rs[1].detail.contains("cascade: fails over"), "{}", rs[1].detail);
        assert_eq!((rs[0].share_of_seeds, rs[1].share_of_seeds), (Some(0.9), None));
    }
}
