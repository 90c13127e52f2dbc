//! Which charts a run gets. Each entry turns metrics or events into generic series or lanes and
//! is left out when the trace has no data for it, so a probe-only run shows no etcd charts.
//!
//! Adding a chart when a component starts recording is a few lines here, e.g. once PostgreSQL
//! and the clients exist:
//! - availability per tenant: `lines("availability", .., run.labels("client_ok_ratio")
//!   .map(|l| dist_series(run, "client_ok_ratio", l, l, |d| d.mean)))`;
//! - latency per tenant: the same with `client_latency_ms` p50/p99 and `Scale::Log`;
//! - requests by outcome: `counter_series` per label of `client_requests`;
//! - replication lag per standby: `dist_series` of `pg_replication_lag_bytes` per standby;
//! - primary of each region: a `Lane` per region whose state is the primary's name, from the
//!   promotion events (as `etcd_leader_lanes` does for Raft leaders).

use models::pg::{ServerRole, SyncLevel, acked_metric, timed_out_metric};
use models::trace::{DistStats, TraceKind};

use super::chart::{Body, Chart, Lane, Scale, Series};
use super::run::{Mark, Run, SecondRows, secs};

/// How many labelled series a chart shows at most (the rest are named in its note).
const TOP_SERIES: usize = 4;

/// Charts in the order a reader wants them: what clients saw and where the primary was first
/// (the incident is the point of a report), then PostgreSQL, then the layers beneath.
pub fn charts(run: &Run) -> Vec<Chart> {
    let mut out = Vec::new();
    out.extend(stack_charts(run));
    out.extend(postgres_charts(run));
    out.extend(network_charts(run));
    out.extend(probe_charts(run));
    out.extend(disk_charts(run));
    out.extend(etcd_charts(run));
    out
}

/// What clients see: availability per tenant (successes over finished requests, per second),
/// latency p50/p99 per tenant, requests by outcome; and which server is primary, per database.
fn stack_charts(run: &Run) -> Vec<Chart> {
    let tenants = run.labels("client_requests");
    let mut availability = Vec::new();
    let mut latency = Vec::new();
    for t in &tenants {
        let (Some(ok), failed) = (counter_series(run, "client_ok", t, t), counter_series(run, "client_failed", t, t))
        else {
            continue;
        };
        let points = ok
            .points
            .iter()
            .enumerate()
            .map(|(i, (x, o))| {
                let f = failed.as_ref().map_or(0.0, |f| f.points[i].1);
                (*x, if o + f > 0.0 { o / (o + f) } else { f64::NAN })
            })
            .collect();
        availability.push(Series { key: t.to_string(), step: false, points, total: None });
        latency.extend(dist_series(run, "client_latency_ms", t, &format!("{t} p50"), |d| d.p50));
        latency.extend(dist_series(run, "client_latency_ms", t, &format!("{t} p99"), |d| d.p99));
    }
    let sum = |metric: &str, key: &str| -> Option<Series> {
        let parts: Vec<Series> =
            run.labels(metric).iter().filter_map(|l| counter_series(run, metric, l, key)).collect();
        let first = parts.first()?.clone();
        let points =
            (0..first.points.len()).map(|i| (first.points[i].0, parts.iter().map(|p| p.points[i].1).sum())).collect();
        Some(Series { key: key.into(), step: false, points, total: Some(parts.iter().filter_map(|p| p.total).sum()) })
    };
    let mut outcomes: Vec<Series> = Vec::new();
    outcomes.extend(sum("client_ok", "ok"));
    for kind in ["refused", "timed_out", "read_only", "pool_exhausted", "connection_closed"] {
        outcomes.extend(sum(&format!("client_errors_{kind}"), kind));
    }
    let mut out: Vec<Chart> = Vec::new();
    let lanes = primary_lanes(run);
    if !lanes.is_empty() {
        out.push(Chart {
            id: "primary".into(),
            title: "Primary of each database".into(),
            note: "Which server is primary: each spell in its server's colour (a standby region shares its primary region's database).".into(),
            body: Body::Lanes(lanes),
            marks: Vec::new(),
        });
    }
    out.extend(
        [
            lines(
                "availability",
                "Availability",
                "Per tenant and second: requests that succeeded over requests that finished (after retries).".into(),
                "ratio",
                Scale::Linear,
                availability,
            ),
            lines(
                "latency",
                "Latency",
                "Per tenant: p50 and p99 of successful requests.".into(),
                "ms",
                Scale::Log,
                latency,
            ),
            lines(
                "requests",
                "Requests by outcome",
                "Per second, over all tenants: successes, and errors per attempt by kind.".into(),
                "requests/s",
                Scale::Linear,
                outcomes,
            ),
        ]
        .into_iter()
        .flatten(),
    );
    out
}

/// Per database (the cluster name PostgreSQL's events carry), the server that is primary.
fn primary_lanes(run: &Run) -> Vec<Lane> {
    let mut lanes: Vec<(String, Lane, Option<u32>)> = Vec::new();
    for ev in &run.events {
        let Some(node) = ev.node else { continue };
        if matches!(ev.kind, TraceKind::NodeCrashed) {
            // A crashed primary serves nothing: its spell ends here, and the lane stays empty
            // until a server is primary again (the failover, or its own restart).
            for (_, lane, current) in lanes.iter_mut().filter(|l| l.2 == Some(node.0)) {
                lane.changes.push((secs(ev.t_ns), None));
                *current = None;
            }
            continue;
        }
        let TraceKind::PgRole { cluster, role, tli, .. } = &ev.kind else { continue };
        let i = match lanes.iter().position(|l| &l.0 == cluster) {
            Some(i) => i,
            None => {
                let lane = Lane { name: cluster.clone(), changes: Vec::new(), by_state: true };
                lanes.push((cluster.clone(), lane, None));
                lanes.len() - 1
            }
        };
        let (_, lane, current) = &mut lanes[i];
        let name = run.nodes.get(node.0 as usize).cloned().unwrap_or_else(|| node.0.to_string());
        if *role == ServerRole::Primary {
            lane.changes.push((secs(ev.t_ns), Some(format!("{name} (timeline {tli})"))));
            *current = Some(node.0);
        } else if *current == Some(node.0) {
            lane.changes.push((secs(ev.t_ns), None));
            *current = None;
        }
    }
    lanes.into_iter().map(|l| l.1).collect()
}

/// Commits acknowledged per second on each server (by level), and replication lag per standby
/// in seconds and bytes.
fn postgres_charts(run: &Run) -> Vec<Chart> {
    let mut commits = Vec::new();
    let mut timed_out = Vec::new();
    for level in SyncLevel::ALL {
        let name = level.as_str();
        let metric = acked_metric(level);
        for server in run.labels(metric) {
            commits.extend(counter_series(run, metric, server, &format!("{server} {name}")));
        }
    }
    for level in SyncLevel::ALL {
        let name = level.as_str();
        let metric = timed_out_metric(level);
        for server in run.labels(metric) {
            timed_out.extend(counter_series(run, metric, server, &format!("{server} {name}")));
        }
    }
    let (lagging, n) = top_labels(run, "pg_replication_lag_s", TOP_SERIES, |r| max_of(r, |d| d.max));
    let lag_s = lagging.iter().filter_map(|l| dist_series(run, "pg_replication_lag_s", l, l, |d| d.max)).collect();
    let lag_bytes =
        lagging.iter().filter_map(|l| dist_series(run, "pg_replication_lag_bytes", l, l, |d| d.max)).collect();
    [
        lines(
            "pg-commits",
            "PostgreSQL commits acknowledged",
            "Per second, by server and synchronous_commit level.".into(),
            "commits/s",
            Scale::Linear,
            commits,
        ),
        lines(
            "pg-commits-timed-out",
            "PostgreSQL commits given up by their clients",
            "Commits still waiting (for a synchronous standby) when client_timeout expired.".into(),
            "commits/s",
            Scale::Linear,
            timed_out,
        ),
        lines(
            "pg-lag-seconds",
            "Replication lag",
            top_note(lagging.len(), n, "standbys lagging most"),
            "s",
            Scale::Linear,
            lag_s,
        ),
        lines("pg-lag-bytes", "Replication lag in bytes", String::new(), "bytes", Scale::Linear, lag_bytes),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A line chart, or nothing when no series has a point.
pub fn lines(id: &str, title: &str, note: String, unit: &str, scale: Scale, series: Vec<Series>) -> Option<Chart> {
    let series: Vec<Series> = series.into_iter().filter(|s| s.points.iter().any(|p| p.1.is_finite())).collect();
    (!series.is_empty()).then(|| Chart {
        id: id.into(),
        title: title.into(),
        note,
        body: Body::Lines { unit: unit.into(), scale, series },
        marks: Vec::new(),
    })
}

/// The number of whole or partial seconds the run's metrics cover.
fn seconds(run: &Run) -> u64 {
    run.end_s.ceil() as u64
}

/// A point per second, in the middle of the second it summarises.
fn at(run: &Run, second: u64) -> f64 {
    (second as f64 + 0.5).min(run.end_s)
}

/// A counter per second; quiet seconds (no row in the trace) are 0.
pub fn counter_series(run: &Run, metric: &str, label: &str, key: &str) -> Option<Series> {
    let rows = run.series(metric, label)?;
    let mut by_second = vec![0u64; seconds(run).max(1) as usize];
    for (s, count, _) in rows {
        // The closing rollup covers events at the very end instant: part of the last second.
        let slot = (*s as usize).min(by_second.len() - 1);
        by_second[slot] += count;
    }
    let total = rows.iter().map(|r| r.1).sum::<u64>() as f64;
    let points = by_second.iter().enumerate().map(|(s, c)| (at(run, s as u64), *c as f64)).collect();
    Some(Series { key: key.into(), step: false, points, total: Some(total) })
}

/// One statistic of a distribution per second; seconds without samples are gaps.
pub fn dist_series(run: &Run, metric: &str, label: &str, key: &str, pick: fn(&DistStats) -> f64) -> Option<Series> {
    let rows = run.series(metric, label)?;
    let mut points = Vec::with_capacity(rows.len() * 2);
    let mut next = 0u64;
    for (s, _, d) in rows {
        let Some(d) = d else { continue };
        if *s > next {
            points.push((at(run, next), f64::NAN));
        }
        points.push((at(run, *s), pick(d)));
        next = s + 1;
    }
    Some(Series { key: key.into(), step: false, points, total: None })
}

/// The `k` labels of `metric` with the highest `score`, and how many labels there are.
fn top_labels<'a>(run: &'a Run, metric: &str, k: usize, score: impl Fn(&SecondRows) -> f64) -> (Vec<&'a str>, usize) {
    let labels = run.labels(metric);
    let mut scored: Vec<(f64, &str)> = labels.iter().map(|l| (run.series(metric, l).map_or(0.0, &score), *l)).collect();
    // Highest first; ties by name so the choice is stable.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    (scored.into_iter().take(k).map(|(_, l)| l).collect(), labels.len())
}

fn max_of(rows: &SecondRows, pick: fn(&DistStats) -> f64) -> f64 {
    rows.iter().filter_map(|r| r.2.as_ref().map(pick)).fold(0.0, f64::max)
}

fn count_of(rows: &SecondRows) -> f64 {
    rows.iter().map(|r| r.1 as f64).sum()
}

fn top_note(shown: usize, of: usize, by: &str) -> String {
    if shown < of { format!("The {shown} of {of} {by}.") } else { String::new() }
}

fn network_charts(run: &Run) -> Vec<Chart> {
    let delivered = counter_series(run, "net_delivered", "", "delivered").into_iter().collect();
    let dropped = run.labels("net_dropped").iter().filter_map(|r| counter_series(run, "net_dropped", r, r)).collect();
    [
        lines("net-delivered", "Messages delivered", String::new(), "messages/s", Scale::Linear, delivered),
        lines(
            "net-dropped",
            "Messages dropped, by reason",
            "Per second, by why the network did not deliver (loss, partition, link_down, switch_*, node_down).".into(),
            "messages/s",
            Scale::Linear,
            dropped,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn probe_charts(run: &Run) -> Vec<Chart> {
    let (pairs, n) = top_labels(run, "probe_rtt_ms", TOP_SERIES, |r| max_of(r, |d| d.p99));
    let rtt = pairs
        .iter()
        .flat_map(|p| {
            [
                dist_series(run, "probe_rtt_ms", p, &format!("{p} p50"), |d| d.p50),
                dist_series(run, "probe_rtt_ms", p, &format!("{p} p99"), |d| d.p99),
            ]
        })
        .flatten()
        .collect();
    let (lossy, m) = top_labels(run, "probe_timed_out", TOP_SERIES, count_of);
    let timeouts = lossy.iter().filter_map(|p| counter_series(run, "probe_timed_out", p, p)).collect();
    [
        lines(
            "probe-rtt",
            "Probe round trips",
            format!("p50 and p99 per second. {}", top_note(pairs.len(), n, "pairs with the highest per-second p99")),
            "ms",
            Scale::Log,
            rtt,
        ),
        lines(
            "probe-timeouts",
            "Probe losses (timed-out pings)",
            top_note(lossy.len(), m, "pairs with the most timeouts"),
            "timeouts/s",
            Scale::Linear,
            timeouts,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn disk_charts(run: &Run) -> Vec<Chart> {
    let (nodes, n) = top_labels(run, "disk_fsync_ms", TOP_SERIES * 2, |r| max_of(r, |d| d.p99));
    let series = nodes.iter().filter_map(|l| dist_series(run, "disk_fsync_ms", l, &format!("{l} p99"), |d| d.p99));
    lines(
        "disk-fsync",
        "Disk fsync latency",
        format!("p99 per second. {}", top_note(nodes.len(), n, "nodes with the highest p99")),
        "ms",
        Scale::Log,
        series.collect(),
    )
    .into_iter()
    .collect()
}

/// Per etcd member, the spells in which it believed it led (a deposed leader keeps its lane
/// until it hears of the higher term or crashes, so overlaps are real).
pub fn etcd_leader_lanes(run: &Run) -> Vec<Lane> {
    let mut lanes: Vec<(u32, Lane, Option<u64>)> = Vec::new();
    for ev in &run.events {
        let Some(node) = ev.node else { continue };
        let is_raft = matches!(
            ev.kind,
            TraceKind::RaftCampaign { .. } | TraceKind::RaftLeaderElected { .. } | TraceKind::RaftSteppedDown { .. }
        );
        let idx = match lanes.iter().position(|l| l.0 == node.0) {
            Some(i) => i,
            None if is_raft => {
                let name = run.nodes.get(node.0 as usize).cloned().unwrap_or_else(|| node.0.to_string());
                lanes.push((node.0, Lane { name, changes: Vec::new(), by_state: false }, None));
                lanes.len() - 1
            }
            None => continue,
        };
        let (_, lane, leading) = &mut lanes[idx];
        let t = secs(ev.t_ns);
        match &ev.kind {
            TraceKind::RaftLeaderElected { term, .. } => {
                lane.changes.push((t, Some(format!("term {term}"))));
                *leading = Some(*term);
            }
            TraceKind::RaftSteppedDown { term, .. } if *leading == Some(*term) => {
                lane.changes.push((t, None));
                *leading = None;
            }
            TraceKind::NodeCrashed | TraceKind::EtcdHalted { .. } if leading.is_some() => {
                lane.changes.push((t, None));
                *leading = None;
            }
            _ => {}
        }
    }
    lanes.sort_by_key(|l| l.0);
    lanes.into_iter().map(|l| l.1).collect()
}

/// The highest Raft term any member has reached, as a step line.
fn term_series(run: &Run) -> Series {
    let mut points = Vec::new();
    let mut max = 0u64;
    for ev in &run.events {
        let term = match ev.kind {
            TraceKind::RaftCampaign { term, pre_vote: false, .. } | TraceKind::RaftLeaderElected { term, .. } => term,
            _ => continue,
        };
        if term > max || points.is_empty() {
            max = max.max(term);
            points.push((secs(ev.t_ns), max as f64));
        }
    }
    Series { key: "highest term".into(), step: true, points, total: None }
}

fn etcd_charts(run: &Run) -> Vec<Chart> {
    let mut out = Vec::new();
    let lanes = etcd_leader_lanes(run);
    if lanes.iter().any(|l| !l.changes.is_empty()) {
        out.push(Chart {
            id: "etcd-leader".into(),
            title: "etcd leader".into(),
            note: "Which member believes it leads, and in which term.".into(),
            body: Body::Lanes(lanes),
            marks: Vec::new(),
        });
    }
    out.extend(lines("etcd-term", "etcd term", String::new(), "term", Scale::Linear, vec![term_series(run)]));
    let resumed: Vec<Mark> = run
        .events
        .iter()
        .filter_map(|ev| match ev.kind {
            TraceKind::EtcdWritesResumed { unavailable_ms } => Some(Mark {
                t_s: secs(ev.t_ns),
                kind: "writes-resumed",
                label: format!("writes resumed after {unavailable_ms:.0} ms"),
            }),
            _ => None,
        })
        .collect();
    let writers = run.labels("etcd_writes_ok");
    let writers: Vec<&str> =
        writers.into_iter().chain(run.labels("etcd_writes_failed")).fold(Vec::new(), |mut v, w| {
            if !v.contains(&w) {
                v.push(w);
            }
            v
        });
    let name = |w: &str, what: &str| if writers.len() > 1 { format!("{w} {what}") } else { what.to_string() };
    let counts = writers
        .iter()
        .flat_map(|w| {
            [
                counter_series(run, "etcd_writes_ok", w, &name(w, "ok")),
                counter_series(run, "etcd_writes_failed", w, &name(w, "failed")),
            ]
        })
        .flatten()
        .collect();
    let latency = run
        .labels("etcd_write_ms")
        .iter()
        .flat_map(|w| {
            let many = run.labels("etcd_write_ms").len() > 1;
            let key = |q: &str| if many { format!("{w} {q}") } else { q.to_string() };
            [
                dist_series(run, "etcd_write_ms", w, &key("p50"), |d| d.p50),
                dist_series(run, "etcd_write_ms", w, &key("p99"), |d| d.p99),
            ]
        })
        .flatten()
        .collect();
    let note = "Marks: writes resuming after a gap (etcd_writes_resumed).".to_string();
    for mut c in [
        lines("etcd-writes", "etcd writes (availability)", note.clone(), "writes/s", Scale::Linear, counts),
        lines(
            "etcd-write-latency",
            "etcd write latency",
            format!("p50 and p99 per second. {note}"),
            "ms",
            Scale::Log,
            latency,
        ),
    ]
    .into_iter()
    .flatten()
    {
        c.marks = resumed.clone();
        out.push(c);
    }
    out
}
