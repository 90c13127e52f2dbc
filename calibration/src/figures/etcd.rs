//! The etcd figures of a pgsim run (fixtures/etcd-*.json, compare/etcd.toml), read from the
//! trace as the real case reads the members' logs: `raft_campaign` with `pre_vote: false` is a
//! real campaign ("became candidate"), `raft_leader_elected` a leader change ("became leader"),
//! and `etcd_writes_resumed` a gap between acknowledged writes (its `unavailable_ms` is the gap
//! minus one write interval, the real case's definition). Every window starts at the scenario's
//! first `[[fault]]`; "during" ends when it heals, "after" runs to the end of the run.
//!
//! pgsim has one writer, which starts a write at every slot whatever is in flight; the real
//! case also records a one-at-a-time writer. Both real variants read the same pgsim writer
//! here; compare/etcd.toml compares the pipelined ones, which match pgsim's writer.

use serde_json::Value;

use crate::RunView;

/// A figure of this family read from a run; None for a figure this family does not know.
pub fn extract(figure: &str, run: &RunView) -> Option<Option<f64>> {
    let start = run.fault_started_s(0).unwrap_or(f64::INFINITY);
    // A fault without an end (the leader kill) has no "after".
    let healed = run.fault_healed_s(0).unwrap_or(f64::INFINITY);
    let end = f64::INFINITY;
    let v = match figure {
        "time_to_new_leader_s" => leaders(run).find(|&t| t >= start).map(|t| t - start),
        "write_outage_s"
        | "write_outage_pipelined_s"
        | "longest_write_outage_s"
        | "longest_write_outage_pipelined_s" => Some(outages(run, start, end).fold(0.0, f64::max)),
        "write_outage_during_s" | "write_outage_during_pipelined_s" => Some(total(outages(run, start, healed))),
        "write_outage_after_s" | "write_outage_after_pipelined_s" => Some(total(outages(run, healed, end))),
        "elections_count" => Some(count(campaigns(run), start, end)),
        "elections_during_count" => Some(count(campaigns(run), start, healed)),
        "elections_after_count" => Some(count(campaigns(run), healed, end)),
        "leader_changes_count" => Some(count(leaders(run), start, end)),
        "leader_changes_during_count" => Some(count(leaders(run), start, healed)),
        "leader_changes_after_count" => Some(count(leaders(run), healed, end)),
        "max_term" => max_term(run, end),
        "term_rise_count" => match (max_term(run, end), max_term(run, start)) {
            (Some(all), Some(before)) => Some(all - before),
            _ => None,
        },
        _ => return None,
    };
    Some(v)
}

/// When each real (not pre-vote) campaign started.
fn campaigns(run: &RunView) -> impl Iterator<Item = f64> + '_ {
    run.events_of("raft_campaign").filter(|e| e["pre_vote"] == Value::Bool(false)).map(|e| run.t_s(e))
}

/// When each member became leader.
fn leaders(run: &RunView) -> impl Iterator<Item = f64> + '_ {
    run.events_of("raft_leader_elected").map(|e| run.t_s(e))
}

/// A sum that is +0 when empty (an empty f64 sum is -0, which prints as "-0").
fn total(xs: impl Iterator<Item = f64>) -> f64 {
    xs.fold(0.0, |a, x| a + x)
}

fn count(times: impl Iterator<Item = f64>, from: f64, to: f64) -> f64 {
    times.filter(|&t| from <= t && t < to).count() as f64
}

/// Seconds without acknowledged writes of each gap that ended in [from, to).
fn outages(run: &RunView, from: f64, to: f64) -> impl Iterator<Item = f64> + '_ {
    run.events_of("etcd_writes_resumed")
        .filter(move |e| (from..to).contains(&run.t_s(e)))
        .map(|e| e["unavailable_ms"].as_f64().unwrap_or(0.0) / 1e3)
}

/// The highest term any real campaign reached before `before` (terms rise only by campaigns).
fn max_term(run: &RunView, before: f64) -> Option<f64> {
    run.events_of("raft_campaign")
        .chain(run.events_of("raft_leader_elected"))
        .filter(|e| e["pre_vote"] != Value::Bool(true) && run.t_s(e) < before)
        .filter_map(|e| e["term"].as_f64())
        .reduce(f64::max)
}
