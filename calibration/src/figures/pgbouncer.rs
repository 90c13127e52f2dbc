//! The pgbouncer figures of a pgsim run, read from the per-second `metrics` events
//! (`client_requests`, `client_ok`, `client_failed`, `client_errors_<kind>` per tenant,
//! `bouncer_server_logins` per bouncer node, `bouncer_wait_ms` per tenant), the `fault_started`
//! / `node_restarted` events and summary.json's `stack.latency_ms.tenants.<t>`.
//!
//! Client outcomes are counted per second, so a moment such as "the first failed query" is
//! known to the second it fell in. Where the second also holds outcomes of the other kind, the
//! probe's steady rate places the change inside it: a second with `ok` successes then `failed`
//! failures changed over at `second + ok / (ok + failed)` (the mirrors' clients issue their
//! requests evenly, 10 ms apart or closer, as the real loops do).
//!
//! Figure names repeat across cases with a different origin (`first_error_s` is measured from
//! the load's start in pgbouncer-query-wait-timeout, from the fault in the login-retry cases),
//! so the scenario's name (summary.json `scenario`) says which case a run mirrors.
//!
//! pgbouncer-pool-refill reads the pool's fill from `bouncer_wait_ms` instead: its tenants
//! each send exactly one pool's worth of requests at once to an empty pool, so the first
//! request waits for the pool's first login and the last for its last (the distribution's min
//! and max over the tenant's seconds).

use crate::RunView;

/// The tenant of the single-tenant mirrors.
const PROBE: &str = "probe";
/// Length of the load window the real cases measure (saturation, reserve pool), in s.
const SATURATION_LOAD_S: u64 = 10;
/// Length of the real query-wait-timeout load, in s.
const QUERY_WAIT_LOAD_S: u64 = 20;
/// PgBouncer's default_pool_size in every case but pgbouncer-pool-refill.
const DEFAULT_POOL_SIZE: u64 = 5;
/// default_pool_size in pgbouncer-pool-refill: the logins each refill takes.
const REFILL_POOL_SIZE: f64 = 20.0;

/// A figure of this family read from a run; None for a figure this family does not know.
pub fn extract(figure: &str, run: &RunView) -> Option<Option<f64>> {
    let scenario = run.summary["scenario"].as_str().unwrap_or_default();
    if scenario.starts_with("pgbouncer-login-retry") {
        return login_retry(figure, run);
    }
    if scenario == "pgbouncer-query-wait-timeout" {
        return query_wait(figure, run);
    }
    if scenario == "pgbouncer-pool-refill" {
        return pool_refill(figure, run);
    }
    // Saturation and reserve pool: one tenant per N, named nN.
    if let Some(n) = figure.strip_prefix("qps_n") {
        return Some(qps(run, &format!("n{n}"), SATURATION_LOAD_S));
    }
    if let Some(n) = figure.strip_prefix("latency_p50_ms_n") {
        return Some(latency(run, &format!("n{n}"), "p50"));
    }
    if let Some(n) = figure.strip_prefix("latency_p99_ms_n") {
        return Some(latency(run, &format!("n{n}"), "p99"));
    }
    Some(match figure {
        "reserve_open_s" => reserve_open(run, "n20"),
        "servers_max_count" => servers_opened(run).map(|v| v.iter().map(|(_, n)| n).sum::<u64>() as f64),
        "maxwait_max_s" => max_wait_s(run, "n20"),
        _ => return None,
    })
}

/// (second, count) of a metric for one label, as a lookup.
fn series(run: &RunView, metric: &str, label: &str) -> Vec<(u64, u64)> {
    run.metric_series(metric, Some(label))
}

fn count_at(s: &[(u64, u64)], second: u64) -> u64 {
    s.iter().find(|(t, _)| *t == second).map_or(0, |(_, n)| *n)
}

fn sum_in(s: &[(u64, u64)], from: u64, until: u64) -> u64 {
    s.iter().filter(|(t, _)| (from..until).contains(t)).map(|(_, n)| n).sum()
}

/// The first second in which the tenant issued requests: the load's start.
fn load_start(run: &RunView, tenant: &str) -> Option<u64> {
    series(run, "client_requests", tenant).first().map(|(t, _)| *t)
}

/// Successful requests per second over the load window.
fn qps(run: &RunView, tenant: &str, window_s: u64) -> Option<f64> {
    let start = load_start(run, tenant)?;
    let ok = sum_in(&series(run, "client_ok", tenant), start, start + window_s);
    Some(ok as f64 / window_s as f64)
}

/// The run's latency percentile of the tenant's successful requests (the run is the load
/// window plus its start-up second).
fn latency(run: &RunView, tenant: &str, pct: &str) -> Option<f64> {
    run.summary["stack"]["latency_ms"]["tenants"][tenant][pct].as_f64()
}

/// Server connections opened per second (every bouncer node).
fn servers_opened(run: &RunView) -> Option<Vec<(u64, u64)>> {
    let s = run.metric_series("bouncer_server_logins", None);
    if s.is_empty() { None } else { Some(s) }
}

/// Seconds from the load's start to the second in which the pool passed default_pool_size
/// server connections (the reserve opened); None if it never did. Connections only close on
/// errors here, so logins counted so far are the connections open.
fn reserve_open(run: &RunView, tenant: &str) -> Option<f64> {
    let start = load_start(run, tenant)?;
    let mut total = 0;
    for (t, n) in servers_opened(run)? {
        total += n;
        if total > DEFAULT_POOL_SIZE {
            return Some(t as f64 + 0.5 - start as f64);
        }
    }
    None
}

/// The longest wait for a server connection of a served client, in s (real: the largest
/// `maxwait` SHOW POOLS showed, the oldest waiting client's wait).
fn max_wait_s(run: &RunView, tenant: &str) -> Option<f64> {
    let mut max: Option<f64> = None;
    for e in run.events_of("metrics") {
        for r in e["rows"].as_array().into_iter().flatten() {
            if r["metric"] == "bouncer_wait_ms" && r["label"] == tenant {
                let m = r["dist"]["max"].as_f64().unwrap_or(0.0) / 1e3;
                max = Some(max.map_or(m, |x: f64| x.max(m)));
            }
        }
    }
    max
}

/// (least, longest) wait for a server connection of a tenant's requests over the run, in s.
fn wait_range_s(run: &RunView, tenant: &str) -> Option<(f64, f64)> {
    let mut range: Option<(f64, f64)> = None;
    for e in run.events_of("metrics") {
        for r in e["rows"].as_array().into_iter().flatten() {
            if r["metric"] == "bouncer_wait_ms" && r["label"] == tenant {
                let (lo, hi) =
                    (r["dist"]["min"].as_f64().unwrap_or(0.0) / 1e3, r["dist"]["max"].as_f64().unwrap_or(0.0) / 1e3);
                range = Some(range.map_or((lo, hi), |(a, b): (f64, f64)| (a.min(lo), b.max(hi))));
            }
        }
    }
    range
}

/// The mean gap between a pool's consecutive logins, in ms, from its (first, last) login's
/// wait in s.
fn login_gap_ms((first, last): (f64, f64)) -> f64 {
    (last - first) * 1e3 / (REFILL_POOL_SIZE - 1.0)
}

/// The mirror's tenants: "one" fills alone (one_pool), "a" and "b" together (two_pools), "c"
/// while "bg" keeps its pool busy (one_of_two); each sent its 20 requests in one tick, so a
/// fill runs from that tick to its last request's forwarding.
fn pool_refill(figure: &str, run: &RunView) -> Option<Option<f64>> {
    let one = wait_range_s(run, "one");
    let (a, b) = (wait_range_s(run, "a"), wait_range_s(run, "b"));
    let c = wait_range_s(run, "c");
    // a and b arrived in the same tick: from it to the later pool's last login.
    let two = a.zip(b).map(|(a, b)| a.1.max(b.1));
    Some(match figure {
        "refill_one_pool_s" => one.map(|x| x.1),
        "refill_two_pools_s" => two,
        "refill_ratio_two_to_one" => two.zip(one).map(|(t, o)| t / o.1),
        "refill_one_of_two_s" => c.map(|x| x.1),
        "refill_ratio_two_to_one_of_two" => two.zip(c).map(|(t, c)| t / c.1),
        "login_ms_one_pool" => one.map(|x| x.1 * 1e3 / REFILL_POOL_SIZE),
        "login_ms_two_pools" => two.map(|t| t * 1e3 / REFILL_POOL_SIZE),
        // The real figure is the login cycle once the kill's backends have exited; the mirror
        // has no kill, so every gap between its first and last login counts.
        "login_gap_ms_after_exits_one_pool" => one.map(login_gap_ms),
        "login_gap_ms_after_exits_two_pools" => a.zip(b).map(|(a, b)| (login_gap_ms(a) + login_gap_ms(b)) / 2.0),
        // Each pool's fill runs from its first login to its last: how much of the shorter one
        // the other covers.
        "refill_overlap_two_pools" => a.zip(b).map(|(a, b)| {
            let shorter = (a.1 - a.0).min(b.1 - b.0);
            let common = a.1.min(b.1) - a.0.max(b.0);
            if shorter > 0.0 { common.max(0.0) / shorter } else { 1.0 }
        }),
        _ => return None,
    })
}

fn query_wait(figure: &str, run: &RunView) -> Option<Option<f64>> {
    let start = load_start(run, PROBE);
    let window = |metric: &str| start.map(|s| sum_in(&series(run, metric, PROBE), s, s + QUERY_WAIT_LOAD_S));
    Some(match figure {
        // The second of the first pool_exhausted (query_wait_timeout) error, placed inside it by
        // the share of successes that came before (see the module's comment).
        "first_error_s" => start.and_then(|s| {
            let errs = series(run, "client_errors_pool_exhausted", PROBE);
            let ok = series(run, "client_ok", PROBE);
            let (t, failed) = errs.iter().find(|(t, _)| *t >= s).copied()?;
            let before = count_at(&ok, t);
            Some(t as f64 + before as f64 / (before + failed) as f64 - s as f64)
        }),
        "error_share" => match (window("client_ok"), window("client_failed")) {
            (Some(ok), Some(failed)) if ok + failed > 0 => Some(failed as f64 / (ok + failed) as f64),
            _ => None,
        },
        "qps_ok" => window("client_ok").map(|ok| ok as f64 / QUERY_WAIT_LOAD_S as f64),
        "errors_count" => window("client_failed").map(|n| n as f64),
        _ => return None,
    })
}

/// When PostgreSQL accepts connections again: its node restarted (pgsim's PostgreSQL is
/// primary again at once; the real one needs ~0.1 s of startup, which the real figure leaves
/// out by measuring from its first accepted connection).
fn pg_back_s(run: &RunView) -> Option<f64> {
    let start = run.fault_started_s(0)?;
    run.events_of("node_restarted").map(|e| run.t_s(e)).find(|t| *t >= start)
}

/// The probe's outage around the fault: (first failure, first success after it), in s of
/// simulated time, each placed inside its second (module comment), and the failures from the
/// fault's second through the first success's second.
fn outage(run: &RunView) -> Option<(f64, Option<f64>, u64)> {
    let fault = run.fault_started_s(0)?;
    let fault_second = fault.floor() as u64;
    let ok = series(run, "client_ok", PROBE);
    let failed = series(run, "client_failed", PROBE);
    let (t_err, n_err) = failed.iter().find(|(t, _)| *t >= fault_second).copied()?;
    let ok_before = count_at(&ok, t_err);
    let first_err = (t_err as f64 + ok_before as f64 / (ok_before + n_err) as f64).max(fault);
    // The first second after the first failure's with a success; within it, the failures
    // came first. (Successes in the failure's own second came before it.)
    let first_ok = ok.iter().find(|(t, n)| *t > t_err && *n > 0).map(|&(t, n)| {
        let f = count_at(&failed, t);
        (t, t as f64 + f as f64 / (f + n) as f64)
    });
    let last = first_ok.map_or(u64::MAX, |(t, _)| t);
    let errors = failed.iter().filter(|(t, _)| *t >= fault_second && *t <= last).map(|(_, n)| n).sum();
    Some((first_err, first_ok.map(|(_, x)| x), errors))
}

fn login_retry(figure: &str, run: &RunView) -> Option<Option<f64>> {
    let fault = run.fault_started_s(0);
    let o = outage(run);
    Some(match figure {
        "first_error_s" => o.zip(fault).map(|((e, _, _), f)| e - f),
        "errors_count" => o.map(|(_, _, n)| n as f64),
        "first_success_after_start_s" => o.and_then(|(_, ok, _)| ok).zip(pg_back_s(run)).map(|(ok, back)| ok - back),
        "outage_s" => o.and_then(|(e, ok, _)| ok.map(|ok| ok - e)),
        // The node's own downtime: crash to restart.
        "pg_down_s" => fault.zip(pg_back_s(run)).map(|(f, b)| b - f),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn metrics(second: u64, rows: &[(&str, &str, u64)]) -> Value {
        let rows: Vec<Value> =
            rows.iter().map(|(m, l, c)| serde_json::json!({"metric": m, "label": l, "count": c})).collect();
        serde_json::json!({"kind": "metrics", "t_ns": (second + 1) * 1_000_000_000, "second": second, "rows": rows})
    }

    fn view(scenario: &str, events: Vec<Value>) -> RunView {
        RunView { seed: 0, summary: serde_json::json!({"scenario": scenario}), events }
    }

    #[test]
    fn the_login_retry_outage_is_placed_inside_its_seconds() {
        let mut events = vec![
            serde_json::json!({"kind": "fault_started", "fault": 0, "t_ns": 4_000_000_000u64}),
            serde_json::json!({"kind": "node_restarted", "t_ns": 14_000_000_000u64}),
        ];
        events.push(metrics(3, &[("client_requests", PROBE, 10), ("client_ok", PROBE, 10)]));
        events.push(metrics(4, &[("client_ok", PROBE, 3), ("client_failed", PROBE, 7)]));
        for s in 5..16 {
            events.push(metrics(s, &[("client_failed", PROBE, 10)]));
        }
        events.push(metrics(16, &[("client_failed", PROBE, 2), ("client_ok", PROBE, 8)]));
        let run = view("pgbouncer-login-retry-2s", events);
        let f = |name| extract(name, &run).expect("known").expect("happened");
        assert!((f("first_error_s") - 0.3).abs() < 1e-9);
        assert!((f("first_success_after_start_s") - 2.2).abs() < 1e-9);
        assert!((f("outage_s") - 11.9).abs() < 1e-9);
        assert_eq!(f("errors_count"), 7.0 + 110.0 + 2.0);
        assert_eq!(f("pg_down_s"), 10.0);
        assert_eq!(extract("no_such_figure", &run), None);
    }

    #[test]
    fn the_reserve_opens_once_logins_pass_the_pool_size() {
        let events = vec![
            metrics(1, &[("client_requests", "n20", 97), ("bouncer_server_logins", "bouncer", 5)]),
            metrics(4, &[("bouncer_server_logins", "bouncer", 1)]),
        ];
        let run = view("pgbouncer-reserve-pool", events);
        assert_eq!(extract("reserve_open_s", &run), Some(Some(3.5)));
        assert_eq!(extract("servers_max_count", &run), Some(Some(6.0)));
        let never = view("pgbouncer-reserve-pool", vec![metrics(1, &[("client_requests", "n20", 97)])]);
        assert_eq!(extract("reserve_open_s", &never), Some(None));
    }

    /// A second's `bouncer_wait_ms` row of a tenant: 20 waits from `min_ms` to `max_ms`.
    fn waits(second: u64, tenant: &str, min_ms: f64, max_ms: f64) -> Value {
        let dist = serde_json::json!({"min": min_ms, "mean": 0.0, "p50": 0.0, "p99": max_ms, "max": max_ms});
        let row = serde_json::json!({"metric": "bouncer_wait_ms", "label": tenant, "count": 20, "dist": dist});
        serde_json::json!({"kind": "metrics", "t_ns": (second + 1) * 1_000_000_000, "second": second, "rows": [row]})
    }

    #[test]
    fn pool_refills_are_read_from_the_first_and_last_waits() {
        // Side by side: a and b both fill from 5 to 100 ms; one pool after the other: b from
        // 105 to 200 ms.
        let side = view(
            "pgbouncer-pool-refill",
            vec![
                waits(1, "one", 5.0, 100.0),
                waits(2, "a", 5.0, 100.0),
                waits(2, "b", 5.0, 100.0),
                waits(3, "c", 5.0, 100.0),
            ],
        );
        let f = |run: &RunView, name| extract(name, run).expect("known").expect("happened");
        assert!((f(&side, "refill_one_pool_s") - 0.1).abs() < 1e-9);
        assert!((f(&side, "refill_ratio_two_to_one") - 1.0).abs() < 1e-9);
        assert!((f(&side, "refill_ratio_two_to_one_of_two") - 1.0).abs() < 1e-9);
        assert!((f(&side, "login_ms_two_pools") - 5.0).abs() < 1e-9);
        assert!((f(&side, "refill_overlap_two_pools") - 1.0).abs() < 1e-9);
        assert!((f(&side, "login_gap_ms_after_exits_one_pool") - 5.0).abs() < 1e-9);
        assert!((f(&side, "login_gap_ms_after_exits_two_pools") - 5.0).abs() < 1e-9);
        let serial = view(
            "pgbouncer-pool-refill",
            vec![waits(1, "one", 5.0, 100.0), waits(2, "a", 5.0, 100.0), waits(2, "b", 105.0, 200.0)],
        );
        assert!((f(&serial, "refill_two_pools_s") - 0.2).abs() < 1e-9);
        assert!((f(&serial, "refill_ratio_two_to_one") - 2.0).abs() < 1e-9);
        assert_eq!(f(&serial, "refill_overlap_two_pools"), 0.0);
        assert_eq!(extract("refill_one_of_two_s", &serial), Some(None));
    }
}
