//! The postgres figures of a pgsim run (fixtures/pg-*.json, compare/postgres.toml).
//!
//! The mirror scenarios name the servers as the real cases do: primary `p`, standbys `s1` and
//! `s2`; the fault is the scenario's first `[[fault]]` (a node-crash of s1, or s1-p cut).
//! Commits are read from the per-second `metrics` events (`pg_commits_acked_<level>` counts,
//! `pg_commit_ms` distributions per level), since the default trace keeps no per-commit event;
//! replication from the `pg_replication` events (`walsender_timeout` on the primary,
//! `wal_receiver_timeout` and `streaming` on the standby).

use serde_json::Value;

use crate::RunView;

/// How long after the restart the real case keeps looking for stalled commits.
const STALL_WINDOW_AFTER_RESTART_S: f64 = 10.0;

/// A figure of this family read from a run; None for a figure this family does not know.
pub fn extract(figure: &str, run: &RunView) -> Option<Option<f64>> {
    let v = match figure {
        "commit_stall_s" => commit_stall_s(run),
        "stall_after_restart_s" => stall_after_restart_s(run),
        "commits_during_outage_count" => commits_during_outage(run),
        "walsender_exit_s" => replication_after_fault(run, "p", "walsender_timeout", false),
        "walreceiver_exit_s" => replication_after_fault(run, "s1", "wal_receiver_timeout", false),
        "streaming_again_after_heal_s" => replication_after_fault(run, "s1", "streaming", true),
        _ => return None,
    };
    Some(v)
}

/// The fault's start and end (s1 killed and restarted, or the cut and the heal).
fn fault(run: &RunView) -> Option<(f64, f64)> {
    Some((run.fault_started_s(0)?, run.fault_healed_s(0)?))
}

/// (second, acknowledged commits, longest commit in ms) per second, over every level.
fn commit_seconds(run: &RunView) -> Vec<(u64, u64, f64)> {
    let mut out = Vec::new();
    for e in run.events_of("metrics") {
        let second = e["second"].as_u64().unwrap_or(0);
        let rows: Vec<&Value> = e["rows"].as_array().into_iter().flatten().collect();
        let acked: u64 = rows
            .iter()
            .filter(|r| r["metric"].as_str().is_some_and(|m| m.starts_with("pg_commits_acked_")))
            .map(|r| r["count"].as_u64().unwrap_or(0))
            .sum();
        let longest_ms = rows
            .iter()
            .filter(|r| r["metric"] == "pg_commit_ms")
            .filter_map(|r| r["dist"]["max"].as_f64())
            .fold(0.0, f64::max);
        if acked > 0 {
            out.push((second, acked, longest_ms));
        }
    }
    out
}

/// The longest commit acknowledged from the fault until 10 s after the restart (the real case
/// takes the longest commit in flight over the same window). Seconds.
fn commit_stall_s(run: &RunView) -> Option<f64> {
    let (start, end) = fault(run)?;
    let last = end + STALL_WINDOW_AFTER_RESTART_S;
    commit_seconds(run)
        .into_iter()
        .filter(|(s, _, _)| (*s + 1) as f64 > start && (*s as f64) < last)
        .map(|(_, _, ms)| ms / 1e3)
        .reduce(f64::max)
}

/// From s1's restart to the first commit acknowledged after it. A commit that waited across
/// the restart was created at the fault (within one commit interval) and took its latency, so
/// it returned at start + latency; otherwise the first second at or after the restart that
/// acknowledges commits counts, to the second (0 when it is the restart's own second).
fn stall_after_restart_s(run: &RunView) -> Option<f64> {
    let (start, end) = fault(run)?;
    let seconds = commit_seconds(run);
    let (second, _, ms) = seconds.into_iter().find(|(s, _, _)| (*s + 1) as f64 > end)?;
    let waited_across = start + ms / 1e3;
    if waited_across > end {
        return Some(waited_across - end);
    }
    Some((second as f64 - end).max(0.0))
}

/// Commits acknowledged between the fault and the restart (whole seconds: the mirror's fault
/// starts and ends on whole seconds).
fn commits_during_outage(run: &RunView) -> Option<f64> {
    let (start, end) = fault(run)?;
    let n: u64 = commit_seconds(run)
        .into_iter()
        .filter(|(s, _, _)| *s as f64 >= start.floor() && (*s as f64) < end.floor())
        .map(|(_, n, _)| n)
        .sum();
    Some(n as f64)
}

/// Seconds from the fault's start (or, `after_heal`, its end) to the first `pg_replication`
/// event on `node` with `state`; None if it never came.
fn replication_after_fault(run: &RunView, node: &str, state: &str, after_heal: bool) -> Option<f64> {
    let (start, end) = fault(run)?;
    let from = if after_heal { end } else { start };
    run.events_of("pg_replication")
        .filter(|e| e["node"] == node && e["state"] == state)
        .map(|e| run.t_s(e))
        .find(|&t| t >= from)
        .map(|t| t - from)
}
