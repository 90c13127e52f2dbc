//! The parent's side of `pgsim check --swarm`: each failing seed's scenario written to `--out`,
//! then the lowest failing seed of each failed property (per scenario) shrunk on the worker
//! processes and written out again, with a line saying what was shrunk and how to replay it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{SeedFindings, SwarmReply};
use crate::check::pool::{self, Job, Mode};
use crate::check::results::{Outcome, RunRecord, write_atomically};
use crate::check::spec::shell_quote;

/// Where `--out` points when not given.
pub const OUT_DEFAULT: &str = "pgsim-swarm";

/// A swarm run's record besides its outcome (in `--json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SwarmRecord {
    #[serde(flatten)]
    pub found: SeedFindings,
    /// The failing seed's scenario, as written.
    pub file: Option<String>,
    pub shrunk: Option<ShrunkRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShrunkRecord {
    pub file: String,
    pub faults: usize,
    pub fault_seconds: f64,
    pub runs: u32,
    pub steps: u32,
    pub budget_spent: bool,
    /// The written file, run once more, fails the same property.
    pub replayed: bool,
    /// Why the written file fails (its first failure).
    pub reason: Option<String>,
}

/// Fails early (before any run) if `--out` could not be written at the end.
pub fn check_out(out: &Path) -> Result<(), String> {
    if out.exists() && !out.is_dir() {
        return Err(format!("--out {}: is a file; expected a folder", out.display()));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !out.exists() && !parent.is_dir() {
        return Err(format!("--out {}: folder {} does not exist", out.display(), parent.display()));
    }
    Ok(())
}

/// `<out>/<scenario>-swarm-seed<N>[-shrunk].toml`, written whole or not at all.
fn write(out: &Path, scenario: &str, seed: u64, shrunk: bool, text: &str) -> Result<PathBuf, String> {
    let name = format!("{scenario}-swarm-seed{seed}{}.toml", if shrunk { "-shrunk" } else { "" });
    let path = out.join(name);
    std::fs::create_dir_all(out)
        .and_then(|()| write_atomically(&path, text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The command that runs seed `seed` of `file` in swarm mode again.
pub fn replay(file: &str, seed: u64, extra: &str) -> String {
    format!("pgsim check --swarm {} --seeds {seed}{extra}", shell_quote(file))
}

/// Takes a swarm job's reply into its record; a failing seed's scenario is written to `out`
/// and becomes its replay command.
pub fn on_reply(record: &mut RunRecord, reply: Option<SwarmReply>, out: &Path) -> Result<(), String> {
    let Some(r) = reply else { return Ok(()) };
    let found = SeedFindings { fault_seconds: round3(r.found.fault_seconds), ..r.found };
    let mut rec = SwarmRecord { found, ..SwarmRecord::default() };
    let written = match r.text {
        Some(text) if record.outcome == Outcome::Fail => Some(write(out, &record.scenario, record.seed, false, &text)),
        _ => None,
    };
    let result = match written {
        Some(Ok(path)) => {
            let shown = path.display().to_string();
            record.replay = format!("pgsim run {}", shell_quote(&shown));
            rec.file = Some(shown);
            Ok(())
        }
        Some(Err(e)) => Err(e),
        None => Ok(()),
    };
    record.swarm = Some(rec);
    result
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// Per scenario, what its seeds' faults did: evidence that the sweep reached the paths that
/// matter (a sweep in which nothing ever failed over proves little about failovers).
pub fn coverage(records: &[RunRecord]) -> String {
    let mut out = String::new();
    for (name, rs) in crate::check::results::by_scenario(records) {
        let sw: Vec<&SwarmRecord> = rs.iter().filter_map(|r| r.swarm.as_ref()).collect();
        let count = |f: &dyn Fn(&SwarmRecord) -> bool| sw.iter().filter(|s| f(s)).count();
        let aimed = match count(&|s| s.found.aimed.is_some()) {
            0 => String::new(),
            n => format!(" ({n} aimed at a failover path)"),
        };
        let converged = match count(&|s| s.found.converged.is_some()) {
            0 => String::new(),
            _ => format!(", {} converged", count(&|s| s.found.converged == Some(true))),
        };
        let _ = writeln!(
            out,
            "swarm {name}: {} seeds, {} faults{aimed}; {} with a new etcd leader, {} with a promotion, {} lost \
             acknowledged commits{converged}",
            sw.len(),
            sw.iter().map(|s| s.found.faults).sum::<usize>(),
            count(&|s| s.found.new_etcd_leaders > 0),
            count(&|s| s.found.promotions > 0),
            count(&|s| s.found.commits_lost > 0),
        );
    }
    out
}

/// The records to shrink: per scenario, the lowest failing seed of each failed property.
pub fn targets(records: &[RunRecord]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..records.len()).filter(|&i| records[i].outcome == Outcome::Fail).collect();
    order.sort_by(|&a, &b| (&records[a].scenario, records[a].seed).cmp(&(&records[b].scenario, records[b].seed)));
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let mut out = Vec::new();
    for i in order {
        let r = &records[i];
        let Some(p) = r.swarm.as_ref().and_then(|s| s.found.property.as_deref()) else { continue };
        if !seen.contains(&(r.scenario.as_str(), p)) {
            seen.push((r.scenario.as_str(), p));
            out.push(i);
        }
    }
    out
}

/// Shrinks the `targets` on `workers` processes and writes each shrunk scenario; returns the
/// lines to print and the first write error.
pub fn shrink_failures(
    records: &mut [RunRecord],
    workers: usize,
    worker_args: &[String],
    out: &Path,
    runs_max: u32,
    log: impl Fn(&str),
) -> (String, Option<String>) {
    let picked = targets(records);
    if picked.is_empty() || runs_max == 0 {
        return (String::new(), None);
    }
    let jobs: Vec<Job> = picked
        .iter()
        .enumerate()
        .map(|(id, &i)| {
            let r = &records[i];
            let property = r.swarm.as_ref().and_then(|s| s.found.property.clone()).expect("targets have a property");
            Job { id, file: r.file.clone(), seed: r.seed, mode: Mode::Shrink { property, runs_max } }
        })
        .collect();
    let workers = workers.min(jobs.len()).max(1);
    log(&format!(
        "swarm: shrinking {} failing seed(s), at most {runs_max} runs each, on {workers} worker process(es)",
        jobs.len()
    ));
    let mut lines: Vec<(usize, String)> = Vec::new();
    let mut error = None;
    pool::run(
        &jobs,
        workers,
        worker_args,
        |reply| {
            let i = picked[reply.id];
            let r = &mut records[i];
            let shrunk = reply.swarm.as_ref().and_then(|s| s.shrink.clone().zip(s.text.clone()));
            let line = match shrunk {
                Some((s, text)) => match write(out, &r.scenario, r.seed, true, &text) {
                    Ok(path) => shrunk_line(r, &s, &path, reply.reason.clone()),
                    Err(e) => {
                        error.get_or_insert(e.clone());
                        format!("SHRUNK {} seed {}: {e}", r.scenario, r.seed)
                    }
                },
                None => format!(
                    "SHRINK FAILED {} seed {}: {}",
                    r.scenario,
                    r.seed,
                    reply.reason.clone().unwrap_or_else(|| "(no reason)".into())
                ),
            };
            log(line.lines().next().unwrap_or_default());
            lines.push((reply.id, line));
        },
        |line| log(&line),
    );
    lines.sort_by_key(|(id, _)| *id);
    let mut text = String::from("\n");
    for (_, l) in lines {
        let _ = writeln!(text, "{l}");
    }
    (text, error)
}

/// The report of a seed shrunk to `path`, which its record now names too.
fn shrunk_line(r: &mut RunRecord, s: &super::ShrinkReply, path: &Path, reason: Option<String>) -> String {
    let shown = path.display().to_string();
    let before = r.swarm.as_ref().map_or((0, 0.0), |w| (w.found.faults, w.found.fault_seconds));
    let mut line = format!(
        "SHRUNK {} seed {}: {} fault(s), {:.1} s of faults -> {}, {:.1} s in {} runs ({} kept); {}",
        r.scenario,
        r.seed,
        before.0,
        before.1,
        s.faults,
        s.fault_seconds,
        s.runs,
        s.steps,
        if s.replayed { "the written file fails the same way" } else { "the written file does NOT fail the same way" }
    );
    if let Some(p) = &s.panic {
        let _ = write!(line, "; a candidate panicked: {p}");
    }
    let _ =
        write!(line, "\n  {}\n  replay with: pgsim run {}", reason.clone().unwrap_or_default(), shell_quote(&shown));
    if let Some(w) = r.swarm.as_mut() {
        w.shrunk = Some(ShrunkRecord {
            file: shown,
            faults: s.faults,
            fault_seconds: round3(s.fault_seconds),
            runs: s.runs,
            steps: s.steps,
            budget_spent: s.budget_spent,
            replayed: s.replayed,
            reason,
        });
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(scenario: &str, seed: u64, property: Option<&str>) -> RunRecord {
        RunRecord {
            scenario: scenario.into(),
            file: format!("{scenario}.toml"),
            seed,
            outcome: if property.is_some() { Outcome::Fail } else { Outcome::Pass },
            reason: None,
            failures: Vec::new(),
            trace_hash: None,
            scenario_hash: "00".into(),
            wall_seconds: 0.0,
            shard: None,
            replay: String::new(),
            swarm: Some(SwarmRecord {
                found: SeedFindings { property: property.map(String::from), ..SeedFindings::default() },
                ..SwarmRecord::default()
            }),
            asserted: Default::default(),
        }
    }

    #[test]
    fn the_lowest_failing_seed_of_each_property_is_shrunk() {
        let rs = vec![
            rec("a", 9, Some("safety")),
            rec("a", 4, Some("safety")),
            rec("a", 5, None),
            rec("a", 7, Some("liveness")),
            rec("b", 8, Some("safety")),
        ];
        let picked: Vec<(String, u64)> =
            targets(&rs).into_iter().map(|i| (rs[i].scenario.clone(), rs[i].seed)).collect();
        assert_eq!(picked, [("a".into(), 4), ("a".into(), 7), ("b".into(), 8)]);
    }
}
