//! `pgsim check --swarm`: each seed runs the scenario under a fault schedule of its own
//! (`sim::swarm`), with safety checked all along and convergence required after every fault has
//! healed. A failing seed's scenario is written out; the lowest failing seed of each failed
//! property is then shrunk and written out again, smaller. This module is the worker's side of
//! it (a swarm job, a shrink job); `sweep` is the parent's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::pool::{Job, Mode, Reply};
use crate::check::results::Outcome;
use crate::check::worker::{Ran, run_caught};

pub mod scenario;
pub mod shrink;
pub mod sweep;

use scenario::{Base, fault_seconds};

/// Runs a shrink may make when `--shrink-runs` does not say.
pub const SHRINK_RUNS_DEFAULT: u32 = 40;

/// What one seed's schedule was and what its faults did: the worker reports it, the parent
/// records it (in `--json`, flattened into both).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedFindings {
    /// The fault kinds the seed enabled.
    pub kinds: Vec<String>,
    /// The failover path its aimed fault hit (`[swarm] failover_share`), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aimed: Option<String>,
    /// The seed's schedule: how many faults, lasting how long in all.
    pub faults: usize,
    pub fault_seconds: f64,
    /// What the faults did (stateright's "sometimes": evidence that a sweep exercised the
    /// interesting paths): promotions, acknowledged commits lost, and whether the stack
    /// converged after the last heal.
    pub promotions: u64,
    pub commits_lost: u64,
    /// etcd leaders elected after the first (Raft's own failovers).
    #[serde(default)]
    pub new_etcd_leaders: u64,
    /// None when there is nothing to converge (no database, etcd or clients).
    pub converged: Option<bool>,
    /// The failed property: the first failed assertion's name, else `invariant <checker>`.
    pub property: Option<String>,
}

/// What a swarm job reports besides the run's outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SwarmReply {
    #[serde(flatten)]
    pub found: SeedFindings,
    /// The scenario text that failed (the parent writes it out).
    pub text: Option<String>,
    pub shrink: Option<ShrinkReply>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShrinkReply {
    pub faults: usize,
    pub fault_seconds: f64,
    /// Runs tried and changes kept.
    pub runs: u32,
    pub steps: u32,
    pub budget_spent: bool,
    /// The shrunk text, run once more as written, fails the same property.
    pub replayed: bool,
    /// A candidate's panic, if one panicked (it counted as not failing the same way).
    pub panic: Option<String>,
}

/// A failing run's failures, the convergence checker's reason appended to a liveness failure
/// (`convergence.converged = 0` alone does not say what was missing).
fn explained(r: &Ran) -> Vec<String> {
    let why = r.summary["convergence"]["why_not_converged"].as_str();
    r.failures
        .iter()
        .map(|f| match why {
            Some(w) if f.contains(": convergence.") => format!("{f}; {w}"),
            _ => f.clone(),
        })
        .collect()
}

fn reply(job: &Job, r: &Ran, swarm: SwarmReply) -> Reply {
    let failures = explained(r);
    Reply {
        id: job.id,
        outcome: if r.passed { Outcome::Pass } else { Outcome::Fail },
        reason: failures.first().cloned(),
        failures,
        trace_hash: r.trace_hash.clone(),
        wall_seconds: r.wall_seconds,
        asserted: r.asserted.clone(),
        swarm: Some(swarm),
    }
}

/// Runs a swarm or shrink job.
pub fn work(base: &Base, job: &Job, debug_panic_at: Option<Duration>, guard: crate::cli::GuardArgs) -> Reply {
    let plan = base.plan(job.seed);
    let faults = plan.schedule.faults.clone();
    let mut info = SwarmReply {
        found: SeedFindings {
            kinds: plan.schedule.kinds.iter().map(|k| k.to_string()).collect(),
            aimed: plan.schedule.aimed.map(|a| a.name().to_string()),
            faults: faults.len(),
            fault_seconds: fault_seconds(&faults),
            ..SeedFindings::default()
        },
        ..SwarmReply::default()
    };
    let shown = format!("{}#swarm-seed{}", base.file, job.seed);
    let run = |text: &str| -> Result<Ran, (String, f64)> {
        let sc = base
            .load_text(&shown, text)
            .map_err(|d| (format!("internal error: the swarm scenario does not load: {d}"), 0.0))?;
        run_caught(&sc, job.seed, debug_panic_at, guard)
    };
    match &job.mode {
        Mode::Run => unreachable!("plain runs are the check worker's"),
        Mode::Swarm => {
            let text = base.text(job.seed, &plan, &faults, &[]);
            match run(&text) {
                Ok(r) => {
                    info.found.promotions = r.summary["postgres"]["promotions"].as_u64().unwrap_or(0);
                    info.found.commits_lost = r.summary["postgres"]["commits_lost_total"].as_u64().unwrap_or(0);
                    let leaders = r.summary["etcd"]["leader_changes"].as_u64().unwrap_or(0);
                    info.found.new_etcd_leaders = leaders.saturating_sub(1);
                    info.found.converged = r.summary["convergence"]["converged"].as_u64().map(|c| c == 1);
                    if !r.passed {
                        info.found.property = r.property.clone();
                        info.text = Some(text);
                    }
                    reply(job, &r, info)
                }
                Err((msg, wall)) => Reply { wall_seconds: wall, swarm: Some(info), ..Reply::error(job.id, msg) },
            }
        }
        Mode::Shrink { property, runs_max } => {
            let mut panic = None;
            let wall = std::time::Instant::now();
            let shrunk =
                shrink::shrink(faults.clone(), *runs_max, |cand| match run(&base.text(job.seed, &plan, cand, &[])) {
                    Ok(r) => !r.passed && failed_property(&r, property),
                    Err((msg, _)) => {
                        panic.get_or_insert(msg);
                        false
                    }
                });
            let notes = vec![
                format!(
                    "Shrunk from {} fault(s) ({:.1} s of faults) to {} ({:.1} s) in {} runs: it still fails",
                    faults.len(),
                    fault_seconds(&faults),
                    shrunk.faults.len(),
                    fault_seconds(&shrunk.faults),
                    shrunk.runs
                ),
                format!("\"{property}\"."),
            ];
            let text = base.text(job.seed, &plan, &shrunk.faults, &notes);
            info.found.property = Some(property.clone());
            let mut result = ShrinkReply {
                faults: shrunk.faults.len(),
                fault_seconds: fault_seconds(&shrunk.faults),
                runs: shrunk.runs,
                steps: shrunk.steps,
                budget_spent: shrunk.budget_spent,
                replayed: false,
                panic,
            };
            match run(&text) {
                Ok(r) => {
                    result.replayed = !r.passed && failed_property(&r, property);
                    info.text = Some(text);
                    info.shrink = Some(result);
                    Reply { wall_seconds: wall.elapsed().as_secs_f64(), ..reply(job, &r, info) }
                }
                Err((msg, _)) => {
                    Reply { wall_seconds: wall.elapsed().as_secs_f64(), swarm: Some(info), ..Reply::error(job.id, msg) }
                }
            }
        }
    }
}

/// Whether `r` failed `property` (among its failures, not necessarily first).
fn failed_property(r: &Ran, property: &str) -> bool {
    r.property.as_deref() == Some(property)
        || r.failures.iter().any(|f| {
            f.strip_prefix("FAIL ").is_some_and(|rest| rest.starts_with(&format!("{property}: ")))
                || property.strip_prefix("invariant ").is_some_and(|c| f.starts_with(&format!("INVARIANT {c}: ")))
        })
}
