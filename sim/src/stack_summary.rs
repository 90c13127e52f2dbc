//! The stack's figures as clients see them: availability (overall, worst minute, seconds below
//! the SLO), latency per tenant, each failover with its cause, RTO and RPO, and the share of the
//! error budget used. Everything is computed from the trace's per-second metrics and events.

use std::collections::BTreeMap;

use models::Label;
use models::trace::{ClusterView, Event, StolonWhat, TraceKind};
use serde_json::{Map, Value, json};

use crate::metrics::Metrics;

/// The client metrics the availability figures are made of.
pub struct ClientMetrics {
    pub ok: &'static str,
    pub failed: &'static str,
    pub latency_ms: &'static str,
    /// (error kind, per-attempt error counter) for `errors_by_kind`.
    pub errors: Vec<(&'static str, &'static str)>,
    pub retries: &'static str,
}

fn r6(x: f64) -> Value {
    if x.is_finite() { json!((x * 1e6).round() / 1e6) } else { Value::Null }
}

/// Per second: (ok, finally failed) over all tenants; and the worst p99 latency of any tenant.
#[derive(Default, Clone, Copy)]
struct Second {
    ok: u64,
    failed: u64,
    p99_ms: f64,
}

fn seconds(events: &[Event], m: &ClientMetrics) -> BTreeMap<u64, Second> {
    let mut out: BTreeMap<u64, Second> = BTreeMap::new();
    for ev in events {
        let TraceKind::Metrics { second, rows } = &ev.kind else { continue };
        for r in rows {
            if *r.metric == *m.ok {
                out.entry(*second).or_default().ok += r.count;
            } else if *r.metric == *m.failed {
                out.entry(*second).or_default().failed += r.count;
            } else if *r.metric == *m.latency_ms
                && let Some(d) = &r.dist
            {
                let s = out.entry(*second).or_default();
                s.p99_ms = s.p99_ms.max(d.p99);
            }
        }
    }
    out
}

/// Availability over `[from, to)` seconds: ok / (ok + failed), or None without requests.
fn ratio(secs: &BTreeMap<u64, Second>, from: u64, to: u64) -> Option<f64> {
    let (ok, failed) = secs.range(from..to).fold((0, 0), |(o, f), (_, s)| (o + s.ok, f + s.failed));
    (ok + failed > 0).then(|| ok as f64 / (ok + failed) as f64)
}

pub struct StackInputs<'a> {
    pub events: &'a [Event],
    pub metrics: &'a Metrics,
    pub names: &'a [String],
    pub tenants: &'a [String],
    pub slo: f64,
    pub duration_s: u64,
    /// pg node index -> (cluster name, region name), for failovers.
    pub pg_nodes: BTreeMap<u32, (String, String)>,
    pub client: ClientMetrics,
    /// The durability checker's per-promotion losses (`postgres.promotion_losses`).
    pub promotion_losses: Option<&'a Value>,
}

pub fn stack(i: &StackInputs<'_>) -> Value {
    let secs = seconds(i.events, &i.client);
    let (ok, failed) = secs.values().fold((0u64, 0u64), |(o, f), s| (o + s.ok, f + s.failed));
    let overall = if ok + failed > 0 { ok as f64 / (ok + failed) as f64 } else { 1.0 };
    // The worst 60-second window (aligned to seconds; shorter runs use the whole run).
    let window = 60.min(i.duration_s.max(1));
    let mut worst = (1.0f64, 0u64);
    for start in 0..=i.duration_s.saturating_sub(window) {
        if let Some(r) = ratio(&secs, start, start + window)
            && r < worst.0
        {
            worst = (r, start);
        }
    }
    let below =
        secs.values().filter(|s| s.ok + s.failed > 0 && (s.ok as f64 / (s.ok + s.failed) as f64) < i.slo).count();
    let worst_p99 = secs.range(worst.1..worst.1 + window).map(|(_, s)| s.p99_ms).fold(0.0f64, f64::max);
    let mut tenants = Map::new();
    for (t, name) in i.tenants.iter().enumerate() {
        let Some(acc) = i.metrics.total(i.client.latency_ms, Label::Tenant(t as u16)).filter(|a| a.count > 0) else {
            continue;
        };
        tenants.insert(name.clone(), json!({ "p50": r6(acc.quantile(0.5)), "p99": r6(acc.quantile(0.99)) }));
    }
    let fails = failovers(i);
    let budget = if ok + failed > 0 { (failed as f64 / (ok + failed) as f64) / (1.0 - i.slo) } else { 0.0 };
    let total = |metric: &'static str| -> u64 {
        (0..i.tenants.len()).filter_map(|t| i.metrics.total(metric, Label::Tenant(t as u16))).map(|a| a.count).sum()
    };
    let mut errors = Map::new();
    for (kind, metric) in &i.client.errors {
        errors.insert(kind.to_string(), json!(total(metric)));
    }
    // HAProxy: state changes of each server and the sessions cut on the way down.
    let (mut transitions, mut cut) = (0u64, 0u64);
    for ev in i.events {
        if let TraceKind::HaproxyServer { sessions_cut, .. } = &ev.kind {
            transitions += 1;
            cut += sessions_cut;
        }
    }
    json!({
        "availability": {
            "overall": r6(overall),
            "worst_minute": r6(worst.0),
            "worst_minute_starts_at_seconds": worst.1,
            "seconds_below_slo": below,
            "slo": i.slo,
        },
        "requests": { "ok": ok, "failed": failed, "retries": total(i.client.retries) },
        "errors_by_kind": Value::Object(errors),
        "haproxy": { "server_transitions": transitions, "sessions_cut": cut },
        "latency_ms": { "tenants": Value::Object(tenants), "worst_minute_p99": r6(worst_p99) },
        "failover_count": fails.len(),
        "max_write_unavailable_seconds": fails.iter().filter_map(|f| f["write_unavailable_seconds"].as_u64()).max().unwrap_or(0),
        "commits_lost_in_failovers": fails.iter().filter_map(|f| f["commits_lost"].as_u64()).sum::<u64>(),
        "failovers": fails,
        "error_budget_used": r6(budget),
    })
}

/// Commits acknowledged per second, for seconds with any (the write path is up).
/// Commits acknowledged in each second, per server (the metrics rows' label).
fn write_seconds(events: &[Event]) -> BTreeMap<u64, BTreeMap<String, u64>> {
    let mut out: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
    for ev in events {
        if let TraceKind::Metrics { second, rows } = &ev.kind {
            for r in rows.iter().filter(|r| r.metric.starts_with("pg_commits_acked_") && r.count > 0) {
                *out.entry(*second).or_default().entry(r.label.to_string()).or_default() += r.count;
            }
        }
    }
    out
}

/// The seconds without commits around a promotion of `to` at second `at_s`: from the last
/// second with commits before it to the first second with commits from it on. The promotion's
/// own second can hold both the old primary's last commits and the new one's first: the
/// servers that committed in it tell which side of the outage it belongs to.
fn outage_around(writes: &BTreeMap<u64, BTreeMap<String, u64>>, to: &str, at_s: u64, end_s: u64) -> (Option<u64>, u64) {
    let in_promotion_second = writes.get(&at_s);
    let old_committed = in_promotion_second.is_some_and(|m| m.keys().any(|n| n != to));
    let new_committed = in_promotion_second.is_some_and(|m| m.contains_key(to));
    let before = if old_committed { Some(at_s) } else { writes.range(..at_s).next_back().map(|(s, _)| *s) };
    let after = if new_committed { at_s } else { writes.range(at_s + 1..).next().map_or(end_s, |(s, _)| *s) };
    (before, after)
}

/// The replication lag (seconds) a server reported in `second`, if it did.
fn lag_at(events: &[Event], node: &str, second: u64) -> Option<f64> {
    events.iter().find_map(|ev| match &ev.kind {
        TraceKind::Metrics { second: s, rows } if *s == second => rows
            .iter()
            .find(|r| &*r.metric == models::pg::METRIC_LAG_S && &*r.label == node)
            .and_then(|r| r.dist.as_ref().map(|d| d.max)),
        _ => None,
    })
}

/// Every promotion: when, where, from which primary to which server, why (the sentinel's or
/// the operator's reason), for how long no write committed around it, and what it lost.
fn failovers(i: &StackInputs<'_>) -> Vec<Value> {
    let writes = write_seconds(i.events);
    // Keyed by the database (the cluster name PostgreSQL's events carry: a standby region's
    // servers share their primary region's), so a cross-region promotion names the primary it
    // replaces.
    let mut view = ClusterView::new();
    let mut last_cause: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut last_operator: Option<(u64, String)> = None;
    let mut out = Vec::new();
    let cause_window_ns = 120_000_000_000;
    for ev in i.events {
        view.apply(ev);
        match &ev.kind {
            TraceKind::Stolon { cluster, what: StolonWhat::MasterElected, reason, .. } => {
                last_cause.insert(cluster.clone(), (ev.t_ns, reason.clone()));
            }
            TraceKind::OperatorAction { action } => last_operator = Some((ev.t_ns, action.clone())),
            TraceKind::PgPromoted { tli, cluster: database, .. } => {
                let Some(to) = ev.node.map(|n| n.0) else { continue };
                let Some((cluster, region)) = i.pg_nodes.get(&to) else { continue };
                let recent = |c: &Option<(u64, String)>| {
                    c.as_ref().filter(|(t, _)| ev.t_ns.saturating_sub(*t) <= cause_window_ns).cloned()
                };
                let sentinel = recent(&last_cause.get(cluster).cloned());
                let operator = recent(&last_operator);
                // The most recent of the two explains the promotion.
                let cause = match (sentinel, operator) {
                    (Some(s), Some(o)) if o.0 > s.0 => format!("operator: {}", o.1),
                    (Some(s), _) => format!("sentinel: {}", s.1),
                    (None, Some(o)) => format!("operator: {}", o.1),
                    (None, None) => "unknown".into(),
                };
                let from = view.last_primary(database).filter(|&p| p != to).map(|p| i.names[p as usize].clone());
                let at_s = ev.t_ns / 1_000_000_000;
                let (before, after) = outage_around(&writes, &i.names[to as usize], at_s, i.duration_s);
                // The write rate before the outage, to express the loss as seconds of writes:
                // over the last minute in which writes committed, so that an earlier outage
                // does not count as seconds of no writes (it would inflate the loss's seconds).
                let rate = before.map_or(0.0, |b| {
                    let last_minute: Vec<u64> =
                        writes.range(..b).rev().take(60).map(|(_, n)| n.values().sum::<u64>()).collect();
                    last_minute.iter().sum::<u64>() as f64 / last_minute.len().max(1) as f64
                });
                let unavailable = before.map_or(0, |b| after.saturating_sub(b + 1));
                let lost = i
                    .promotion_losses
                    .and_then(Value::as_array)
                    .and_then(|l| {
                        l.iter().find(|p| {
                            p["tli"] == json!(tli)
                                && (p["at_seconds"].as_f64().unwrap_or(-1.0) - ev.t_ns as f64 / 1e9).abs() < 1e-6
                        })
                    })
                    .and_then(|p| p["commits_lost"].as_u64())
                    .unwrap_or(0);
                // How far behind the promoted server was when writes last committed: with
                // asynchronous replication, what the promotion loses.
                let lag = before.and_then(|b| lag_at(i.events, &i.names[to as usize], b));
                let rpo = if rate > 0.0 { lost as f64 / rate } else { 0.0 };
                out.push(json!({
                    "at_seconds": r6(ev.t_ns as f64 / 1e9),
                    "cause": cause,
                    "cluster": cluster,
                    "region": region,
                    "from": from,
                    "to": i.names[to as usize],
                    "write_unavailable_seconds": unavailable,
                    "commits_lost": lost,
                    "rpo_seconds": r6(rpo),
                    "standby_lag_seconds_before": lag.map_or(Value::Null, r6),
                    "rpo_over_lag": lag.filter(|l| *l > 0.0).map_or(Value::Null, |l| r6(rpo / l)),
                }));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::{DistStats, MetricRow, NodeRef};

    fn row(metric: &str, count: u64, p99: Option<f64>) -> MetricRow {
        MetricRow {
            metric: metric.into(),
            label: "t".into(),
            count,
            dist: p99.map(|p| DistStats { min: 0.0, mean: p, p50: p, p99: p, max: p }),
        }
    }

    fn metrics_ev(second: u64, ok: u64, failed: u64, acked: u64) -> Event {
        let mut rows =
            vec![row("ok", ok, None), row("failed", failed, None), row("lat", ok, Some(5.0 + failed as f64))];
        if acked > 0 {
            rows.push(row("pg_commits_acked_on", acked, None));
        }
        Event {
            seq: 0,
            t_ns: (second + 1) * 1_000_000_000,
            node: None,
            kind: TraceKind::Metrics { second, rows: rows.into() },
        }
    }

    /// The stack summary of two servers p1 and p2 of cluster "c", with `lost` commits lost at
    /// the promotion at `promoted_at_s`.
    fn stack_of(events: &[Event], duration_s: u64, promoted_at_s: f64, lost: u64) -> Value {
        let names = vec!["p1".to_string(), "p2".to_string()];
        let losses = json!([{ "at_seconds": promoted_at_s, "cluster": "c", "tli": 2, "commits_lost": lost }]);
        let inputs = StackInputs {
            events,
            metrics: &Metrics::default(),
            names: &names,
            tenants: &[],
            slo: 0.99999,
            duration_s,
            pg_nodes: [(0, ("c".to_string(), "r".to_string())), (1, ("c".to_string(), "r".to_string()))].into(),
            client: ClientMetrics { ok: "ok", failed: "failed", latency_ms: "lat", errors: vec![], retries: "r" },
            promotion_losses: Some(&losses),
        };
        stack(&inputs)
    }

    /// p2 promoted to timeline 2 at `t_ns`.
    fn promoted_p2(t_ns: u64) -> Event {
        let kind = TraceKind::PgPromoted {
            cluster: "c".into(),
            tli: 2,
            origin: 1,
            parent_tli: 1,
            parent_origin: 0,
            switch_lsn: 9,
            accept_data_loss: false,
        };
        Event { seq: 0, t_ns, node: Some(NodeRef(1)), kind }
    }

    /// A promotion with `lost` commits lost at 110 s; writes (10 a second) stopped at 100 s,
    /// and earlier, from 50 to 80 s, as well.
    fn rpo_after_an_earlier_outage(lost: u64) -> Value {
        let mut events: Vec<Event> =
            (0..120).map(|s| metrics_ev(s, 100, 0, if (50..80).contains(&s) || s >= 100 { 0 } else { 10 })).collect();
        events.push(promoted_p2(110_000_000_000));
        stack_of(&events, 120, 110.0, lost)["failovers"][0].clone()
    }

    #[test]
    fn rpo_is_the_loss_in_seconds_of_writing_not_of_an_earlier_outage() {
        let f = rpo_after_an_earlier_outage(20);
        assert_eq!(f["commits_lost"], json!(20));
        // 20 commits at 10 a second: 2 s (the 30 s without writes before would make it 4 s).
        assert_eq!(f["rpo_seconds"], json!(2.0));
        assert_eq!(rpo_after_an_earlier_outage(0)["rpo_seconds"], json!(0.0));
    }

    #[test]
    fn an_outage_that_starts_in_the_promotions_second_is_counted() {
        // p1 commits (label p1) up to second 110; p2 is promoted at 110.5 s and first commits
        // at 140 s: 29 seconds without writes (111..139), although second 110 has commits.
        let mut events: Vec<Event> = Vec::new();
        for s in 0..200u64 {
            let label = if s <= 110 {
                Some("p1")
            } else if s >= 140 {
                Some("p2")
            } else {
                None
            };
            let mut rows = vec![row("ok", 100, None)];
            if let Some(l) = label {
                rows.push(MetricRow { label: l.into(), ..row("pg_commits_acked_on", 10, None) });
            }
            events.push(Event {
                seq: 0,
                t_ns: (s + 1) * 1_000_000_000,
                node: None,
                kind: TraceKind::Metrics { second: s, rows: rows.into() },
            });
        }
        events.push(promoted_p2(110_500_000_000));
        assert_eq!(stack_of(&events, 200, 110.5, 0)["failovers"][0]["write_unavailable_seconds"], json!(29));
    }

    #[test]
    fn availability_worst_minute_budget_and_failover_rto() {
        let mut events = vec![Event {
            seq: 0,
            t_ns: 0,
            node: Some(NodeRef(0)),
            kind: TraceKind::PgRole {
                cluster: "c".into(),
                role: models::pg::ServerRole::Primary,
                tli: 1,
                origin: 0,
                upstream: None,
            },
        }];
        for s in 0..300 {
            // Seconds 100..130 fail entirely (no writes commit); the rest all succeed.
            let down = (100..130).contains(&s);
            events.push(metrics_ev(
                s,
                if down { 0 } else { 100 },
                if down { 100 } else { 0 },
                if down { 0 } else { 10 },
            ));
        }
        events.push(Event {
            seq: 0,
            t_ns: 125_000_000_000,
            node: None,
            kind: TraceKind::Stolon {
                cluster: "c".into(),
                what: StolonWhat::MasterElected,
                keeper: Some("p2".into()),
                reason: "keeper p1 failed".into(),
            },
        });
        events.push(promoted_p2(129_500_000_000));
        let v = stack_of(&events, 300, 129.5, 0);
        let a = &v["availability"];
        assert_eq!(a["overall"], json!(0.9), "30 of 300 seconds failed");
        assert_eq!(a["worst_minute"], json!(0.5), "a minute holding all 30 failed seconds");
        assert_eq!(a["seconds_below_slo"], json!(30));
        assert_eq!(v["error_budget_used"].as_f64().unwrap().round(), 10_000.0, "10 % failed against 0.001 %");
        assert_eq!(v["latency_ms"]["worst_minute_p99"], json!(105.0));
        let f = &v["failovers"][0];
        assert_eq!((f["from"].as_str(), f["to"].as_str()), (Some("p1"), Some("p2")));
        assert_eq!(f["write_unavailable_seconds"], json!(30));
        assert_eq!(f["cause"], json!("sentinel: keeper p1 failed"));
        assert_eq!(f["commits_lost"], json!(0));
    }
}
