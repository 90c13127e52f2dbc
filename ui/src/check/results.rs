//! A check's results: one record per run, the `--json` file `pgsim merge` reads, the table,
//! the JUnit XML and the exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::pool::Asserted;
use crate::cli::{EXIT_FAIL, EXIT_INTERNAL, EXIT_PASS};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    /// An assertion or an invariant failed.
    Fail,
    /// The simulator panicked, or its worker process died.
    Error,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub scenario: String,
    /// The scenario file as given on the command line.
    pub file: String,
    pub seed: u64,
    pub outcome: Outcome,
    /// First failed assertion or invariant, or the panic message; null on a pass.
    pub reason: Option<String>,
    /// Every failed assertion (`FAIL name: detail`) and invariant (`INVARIANT checker: detail`).
    #[serde(default)]
    pub failures: Vec<String>,
    /// As in summary.json; null when the run did not finish.
    pub trace_hash: Option<String>,
    /// The scenario file's hash: shards merge only results of the same file.
    pub scenario_hash: String,
    pub wall_seconds: f64,
    /// The asserted values, share-of-seeds results and skips of this run.
    #[serde(flatten)]
    pub asserted: Asserted,
    /// `I/N` when the check ran one shard of its seeds.
    pub shard: Option<String>,
    /// The command that reproduces the run.
    pub replay: String,
    /// Swarm mode: the seed's schedule, what it failed, the files written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<crate::swarm::sweep::SwarmRecord>,
}

/// The `--json` file.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResultsFile {
    pub pgsim_version: String,
    /// `--seeds` as given (null: each scenario's own seed).
    pub seeds: Option<String>,
    pub shard: Option<String>,
    /// False while the check is still running (or if it never finished): `runs` then holds
    /// the runs finished so far. A long sweep rewrites its file as it goes, so an interrupted
    /// one keeps what it ran.
    #[serde(default = "complete_by_default")]
    pub complete: bool,
    pub runs: Vec<RunRecord>,
}

/// Files written before `complete` existed were written whole at the end.
fn complete_by_default() -> bool {
    true
}

/// Records grouped by scenario, in first-seen order; each group's seeds ascending.
pub fn by_scenario(records: &[RunRecord]) -> Vec<(String, Vec<&RunRecord>)> {
    let mut groups: Vec<(String, Vec<&RunRecord>)> = Vec::new();
    for r in records {
        match groups.iter_mut().find(|(name, _)| *name == r.scenario) {
            Some((_, rs)) => rs.push(r),
            None => groups.push((r.scenario.clone(), vec![r])),
        }
    }
    for (_, rs) in &mut groups {
        rs.sort_by_key(|r| r.seed);
    }
    groups
}

/// 0 if every run passed (and, when `judge_shares`, every `share_of_seeds` assertion held in
/// its share), 3 if any had an internal error, else 1.
pub fn exit_code(records: &[RunRecord], judge_shares: bool) -> i32 {
    let shares_failed = judge_shares && share_verdicts(records).iter().any(|v| !v.ok());
    match records.iter().map(|r| r.outcome).max() {
        Some(Outcome::Error) => EXIT_INTERNAL,
        Some(Outcome::Fail) => EXIT_FAIL,
        _ if shares_failed => EXIT_FAIL,
        _ => EXIT_PASS,
    }
}

/// A `share_of_seeds` assertion judged over the finished runs of its scenario.
#[derive(Debug)]
pub struct ShareVerdict<'a> {
    pub scenario: String,
    pub name: String,
    pub share_of_seeds: f64,
    /// How many runs it held in.
    pub held: usize,
    /// The runs it did not hold in.
    pub missed: Vec<&'a RunRecord>,
}

impl ShareVerdict<'_> {
    pub fn runs(&self) -> usize {
        self.held + self.missed.len()
    }

    pub fn ok(&self) -> bool {
        // Whole seeds: 90 % of 50 seeds is 45.
        self.held as f64 >= (self.share_of_seeds * self.runs() as f64 - 1e-9).ceil()
    }

    fn line(&self, judged: bool) -> String {
        let pct = 100.0 * self.held as f64 / self.runs().max(1) as f64;
        let mut s = format!(
            "{}{}: \"{}\" held in {} of {} seeds ({pct:.0} %), needs {}",
            if judged && !self.ok() { "FAIL " } else { "" },
            self.scenario,
            self.name,
            self.held,
            self.runs(),
            sim::summary::percent(self.share_of_seeds)
        );
        if judged {
            s.push_str(if self.ok() { ": ok" } else { ": too few" });
        }
        if !self.missed.is_empty() {
            let seeds: Vec<u64> = self.missed.iter().map(|r| r.seed).collect();
            let _ = write!(s, "; missed in seed{} {}", if seeds.len() == 1 { "" } else { "s" }, describe_list(&seeds));
        }
        s
    }
}

/// `1, 5, 33` (at most 20, then `and N more`).
fn describe_list(seeds: &[u64]) -> String {
    let shown: Vec<String> = seeds.iter().take(20).map(u64::to_string).collect();
    let more = seeds.len().saturating_sub(20);
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

/// Every `share_of_seeds` assertion of every scenario, over the runs that finished (an
/// internal error has no verdicts of its own), in first-seen order.
pub fn share_verdicts(records: &[RunRecord]) -> Vec<ShareVerdict<'_>> {
    let mut out: Vec<ShareVerdict<'_>> = Vec::new();
    for (scenario, rs) in by_scenario(records) {
        let first = out.len();
        for r in rs.into_iter().filter(|r| r.outcome != Outcome::Error) {
            for s in &r.asserted.shares {
                let v = match out[first..].iter_mut().find(|v| v.name == s.name) {
                    Some(v) => v,
                    None => {
                        out.push(ShareVerdict {
                            scenario: scenario.clone(),
                            name: s.name.clone(),
                            share_of_seeds: s.share_of_seeds,
                            held: 0,
                            missed: Vec::new(),
                        });
                        out.last_mut().expect("just pushed")
                    }
                };
                if s.held {
                    v.held += 1;
                } else {
                    v.missed.push(r);
                }
            }
        }
    }
    out
}

/// The report's lines on `share_of_seeds` assertions (empty when there are none). A shard
/// only counts: the share is judged over the whole sweep by `pgsim merge`.
fn share_report(verdicts: &[ShareVerdict<'_>], judged: bool) -> String {
    if verdicts.is_empty() {
        return String::new();
    }
    let mut out = String::from(if judged {
        "assertions that must hold in a share of the seeds:\n"
    } else {
        "assertions that must hold in a share of the seeds (a shard only counts; `pgsim merge` judges the whole sweep):\n"
    });
    for v in verdicts {
        let _ = writeln!(out, "  {}", v.line(judged));
        if judged && !v.ok() {
            for r in v.missed.iter().take(3) {
                let _ = writeln!(out, "    replay seed {} with: {}", r.seed, r.replay);
            }
        }
    }
    out
}

/// Sorted seeds, short: `0..50`, `7`, `1..=49 step 2`, or `12 seeds in 3..=90`.
pub fn describe_seeds(seeds: &[u64]) -> String {
    match seeds {
        [] => "-".into(),
        [s] => s.to_string(),
        [a, b, ..] => {
            let (first, last) = (*a, *seeds.last().expect("non-empty"));
            let step = b - a;
            if seeds.windows(2).all(|w| w[1] - w[0] == step) {
                match step {
                    1 if last < u64::MAX => format!("{first}..{}", last + 1),
                    1 => format!("{first}..={last}"),
                    _ => format!("{first}..={last} step {step}"),
                }
            } else {
                format!("{} seeds in {first}..={last}", seeds.len())
            }
        }
    }
}

/// The table (one row per scenario), every failing seed with its reason and replay command,
/// and the totals line.
pub fn report(records: &[RunRecord], quiet: bool) -> String {
    report_with(records, quiet, "", true)
}

/// `report`, with `extra` (lines, if any) before the totals line; `judge_shares` false for a
/// shard, whose seeds are only part of the sweep.
pub fn report_with(records: &[RunRecord], quiet: bool, extra: &str, judge_shares: bool) -> String {
    let groups = by_scenario(records);
    let mut out = String::new();
    if !quiet && !records.is_empty() {
        let header = ["scenario", "file", "seeds", "runs", "passed", "failed", "errors", "wall s"];
        let mut rows: Vec<[String; 8]> = vec![header.map(String::from)];
        for (name, rs) in &groups {
            let seeds: Vec<u64> = rs.iter().map(|r| r.seed).collect();
            let count = |o: Outcome| rs.iter().filter(|r| r.outcome == o).count().to_string();
            let mut files: Vec<&str> = rs.iter().map(|r| r.file.as_str()).collect();
            files.dedup();
            rows.push([
                name.clone(),
                files.join(", "),
                describe_seeds(&seeds),
                rs.len().to_string(),
                count(Outcome::Pass),
                count(Outcome::Fail),
                count(Outcome::Error),
                format!("{:.1}", rs.iter().map(|r| r.wall_seconds).sum::<f64>()),
            ]);
        }
        let widths: Vec<usize> =
            (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        for row in &rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                // Text columns left-aligned, numbers right-aligned.
                if c < 3 {
                    let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
                } else {
                    let _ = write!(line, "{cell:>w$}  ", w = widths[c]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    let failing: Vec<&RunRecord> =
        groups.iter().flat_map(|(_, rs)| rs.iter().copied()).filter(|r| r.outcome != Outcome::Pass).collect();
    if !failing.is_empty() {
        out.push('\n');
    }
    for r in failing {
        let tag = if r.outcome == Outcome::Error { "ERROR" } else { "FAIL" };
        let reason = r.reason.as_deref().unwrap_or("(no reason recorded)");
        let _ = writeln!(out, "{tag} {} seed {}: {reason}", r.scenario, r.seed);
        let _ = writeln!(out, "  replay with: {}", r.replay);
    }
    let verdicts = share_verdicts(records);
    let shares = share_report(&verdicts, judge_shares);
    if !shares.is_empty() {
        out.push('\n');
        out.push_str(&shares);
    }
    if !extra.is_empty() {
        out.push('\n');
        out.push_str(extra);
    }
    let count = |o: Outcome| records.iter().filter(|r| r.outcome == o).count();
    let short = if judge_shares { verdicts.iter().filter(|v| !v.ok()).count() } else { 0 };
    let _ = writeln!(
        out,
        "{}check: {} runs of {} scenario{}: {} passed, {} failed, {} errors{}",
        if quiet { "" } else { "\n" },
        records.len(),
        groups.len(),
        if groups.len() == 1 { "" } else { "s" },
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Error),
        match short {
            0 => String::new(),
            1 => "; 1 assertion held in too few seeds".into(),
            n => format!("; {n} assertions held in too few seeds"),
        }
    );
    out
}

/// One suite per scenario, one case per seed; when `judge_shares`, one more case per
/// `share_of_seeds` assertion, failed when it held in too few seeds.
pub fn junit_suites(records: &[RunRecord], judge_shares: bool) -> Vec<reports::junit::Suite> {
    let verdicts = if judge_shares { share_verdicts(records) } else { Vec::new() };
    by_scenario(records)
        .into_iter()
        .map(|(name, rs)| {
            let shares = verdicts.iter().filter(|v| v.scenario == name).map(|v| reports::junit::Case {
                seed: v.missed.first().map_or(0, |r| r.seed),
                name: Some(format!("share of seeds: {}", v.name)),
                wall_seconds: 0.0,
                outcome: if v.ok() {
                    reports::junit::Outcome::Passed
                } else {
                    reports::junit::Outcome::Failed { message: v.line(true), detail: v.line(true) }
                },
                replay: v.missed.first().map(|r| r.replay.clone()).unwrap_or_default(),
            });
            let cases = rs.iter().map(|r| {
                let message = r.reason.clone().unwrap_or_default();
                reports::junit::Case {
                    seed: r.seed,
                    name: None,
                    wall_seconds: r.wall_seconds,
                    outcome: match r.outcome {
                        Outcome::Pass => reports::junit::Outcome::Passed,
                        Outcome::Fail => reports::junit::Outcome::Failed { message, detail: r.failures.join("\n") },
                        Outcome::Error => reports::junit::Outcome::Error { message },
                    },
                    replay: r.replay.clone(),
                }
            });
            reports::junit::Suite {
                file: rs.first().map(|r| r.file.clone()).unwrap_or_default(),
                cases: cases.chain(shares).collect(),
                name,
            }
        })
        .collect()
}

/// Writes `path` whole or not at all: the bytes go to a temporary sibling renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| io::Error::other(format!("{} is not a file name", path.display())))?;
    let tmp = parent.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Fails early (before any run) if an output file could not be written at the end.
pub fn check_writable(flag: &str, path: &Path) -> Result<(), String> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.is_dir() {
        return Err(format!("{flag} {}: is a folder; expected a file name", path.display()));
    }
    if !parent.is_dir() {
        return Err(format!("{flag} {}: folder {} does not exist", path.display(), parent.display()));
    }
    Ok(())
}

/// Writes the `--json` file (atomically): `runs`, and whether they are all of the check's.
pub fn write_json<'a>(
    path: &Path,
    runs: impl Iterator<Item = &'a RunRecord>,
    seeds: Option<String>,
    shard: Option<String>,
    complete: bool,
) -> Result<(), String> {
    let file = ResultsFile {
        pgsim_version: env!("CARGO_PKG_VERSION").into(),
        seeds,
        shard,
        complete,
        runs: runs.cloned().collect(),
    };
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
    text.push('\n');
    write_atomically(path, text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `--json` and `--junit` (each atomically). Returns a message on failure.
pub fn write_outputs(
    records: &[RunRecord],
    seeds: Option<String>,
    shard: Option<String>,
    json: Option<&Path>,
    junit: Option<&Path>,
) -> Result<(), String> {
    // A shard's seeds are only part of the sweep: its shares are judged by `pgsim merge`.
    let judge_shares = shard.is_none();
    if let Some(path) = json {
        write_json(path, records.iter(), seeds, shard, true)?;
    }
    if let Some(path) = junit {
        let text = reports::junit::to_string(&junit_suites(records, judge_shares));
        write_atomically(path, text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Shard files combined: each (scenario, seed) once. The same run in two files must have the
/// same trace hash; if not, the determinism of the simulator is broken and the run becomes an
/// error. Err: files that do not belong together (a message; exit 2).
pub fn merge(files: &[(String, ResultsFile)]) -> Result<(Vec<RunRecord>, Vec<String>), String> {
    let mut merged: Vec<RunRecord> = Vec::new();
    let mut origin: Vec<&str> = Vec::new();
    let mut index: BTreeMap<(String, u64), usize> = BTreeMap::new();
    let mut warnings = Vec::new();
    let versions: std::collections::BTreeSet<&str> = files.iter().map(|(_, f)| f.pgsim_version.as_str()).collect();
    if versions.len() > 1 {
        warnings.push(format!("the files come from different pgsim versions ({versions:?})"));
    }
    for (path, file) in files {
        if !file.complete {
            warnings.push(format!(
                "{path} was written by a check that had not finished: only its {} finished runs are merged",
                file.runs.len()
            ));
        }
        for r in &file.runs {
            let key = (r.scenario.clone(), r.seed);
            let Some(&i) = index.get(&key) else {
                index.insert(key, merged.len());
                merged.push(r.clone());
                origin.push(path);
                continue;
            };
            let first = &merged[i];
            if first.scenario_hash != r.scenario_hash {
                return Err(format!(
                    "{} seed {}: {} ran scenario file {} (hash {}), {} ran {} (hash {}): not the same scenario",
                    r.scenario, r.seed, origin[i], first.file, first.scenario_hash, path, r.file, r.scenario_hash
                ));
            }
            match (&first.trace_hash, &r.trace_hash) {
                (Some(a), Some(b)) if a != b => {
                    let reason = format!(
                        "determinism broken: trace hash {a} in {} but {b} in {path} for the same scenario file and seed",
                        origin[i]
                    );
                    let m = &mut merged[i];
                    m.outcome = Outcome::Error;
                    m.failures.push(reason.clone());
                    m.reason = Some(reason);
                }
                // The same run twice (overlapping shards, a re-run): keep the worse outcome.
                _ if r.outcome > first.outcome => merged[i] = r.clone(),
                _ => {}
            }
        }
    }
    // Shards of one split that are missing.
    let shards: Vec<(u64, u64)> = files
        .iter()
        .filter_map(|(_, f)| f.shard.as_deref())
        .filter_map(|s| crate::check::spec::parse_shard(s).ok())
        .map(|s| (s.index, s.count))
        .collect();
    let counts: std::collections::BTreeSet<u64> = shards.iter().map(|s| s.1).collect();
    if counts.len() > 1 {
        warnings.push(format!("the files split the seeds in different numbers of shards ({counts:?})"));
    } else if let Some(&n) = counts.first() {
        let missing: Vec<String> =
            (0..n).filter(|i| !shards.iter().any(|s| s.0 == *i)).map(|i| format!("{i}/{n}")).collect();
        if !missing.is_empty() && n <= 1000 {
            warnings.push(format!("shard(s) {} missing", missing.join(", ")));
        }
    }
    Ok((merged, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::pool::ShareRun;

    fn rec(scenario: &str, seed: u64, outcome: Outcome, hash: &str) -> RunRecord {
        RunRecord {
            scenario: scenario.into(),
            file: format!("scenarios/{scenario}.toml"),
            seed,
            outcome,
            reason: (outcome != Outcome::Pass).then(|| "FAIL a: x = 1 (expected == 2)".into()),
            failures: Vec::new(),
            trace_hash: Some(hash.into()),
            scenario_hash: "00ff".into(),
            wall_seconds: 0.5,
            asserted: Asserted::default(),
            shard: None,
            replay: format!("pgsim run scenarios/{scenario}.toml --seed {seed}"),
            swarm: None,
        }
    }

    fn file(shard: Option<&str>, runs: Vec<RunRecord>) -> ResultsFile {
        ResultsFile {
            pgsim_version: "0.1.0".into(),
            seeds: Some("0..4".into()),
            shard: shard.map(Into::into),
            complete: true,
            runs,
        }
    }

    #[test]
    fn seeds_are_described_briefly() {
        assert_eq!(describe_seeds(&[0, 1, 2, 3]), "0..4");
        assert_eq!(describe_seeds(&[5]), "5");
        assert_eq!(describe_seeds(&[1, 3, 5]), "1..=5 step 2");
        assert_eq!(describe_seeds(&[1, 2, 5]), "3 seeds in 1..=5");
        assert_eq!(describe_seeds(&[u64::MAX - 1, u64::MAX]), format!("{}..={}", u64::MAX - 1, u64::MAX));
    }

    #[test]
    fn exit_code_error_wins_over_fail() {
        let mut rs = vec![rec("a", 0, Outcome::Pass, "1")];
        assert_eq!(exit_code(&rs, true), EXIT_PASS);
        rs.push(rec("a", 1, Outcome::Fail, "2"));
        assert_eq!(exit_code(&rs, true), EXIT_FAIL);
        rs.push(rec("b", 1, Outcome::Error, "3"));
        assert_eq!(exit_code(&rs, true), EXIT_INTERNAL);
        assert_eq!(exit_code(&[], true), EXIT_PASS);
    }

    /// Seeds 0..10 of a scenario whose cascade (a 90 % share assertion) is missed in `missed`.
    fn cascade_sweep(missed: &[u64]) -> Vec<RunRecord> {
        (0..10)
            .map(|seed| {
                let mut r = rec("replay", seed, Outcome::Pass, "1");
                let held = !missed.contains(&seed);
                r.asserted.shares = vec![ShareRun { name: "fails over".into(), share_of_seeds: 0.9, held }];
                r.asserted.skipped = if held { 0 } else { 3 };
                r
            })
            .collect()
    }

    #[test]
    fn a_share_assertion_is_judged_over_the_sweep_not_per_seed() {
        // One miss in ten seeds: 90 % held, enough; every seed passes.
        let rs = cascade_sweep(&[3]);
        let v = share_verdicts(&rs);
        assert_eq!((v.len(), v[0].runs(), v[0].held, v[0].ok()), (1, 10, 9, true));
        assert_eq!(exit_code(&rs, true), EXIT_PASS);
        let text = report(&rs, true);
        assert!(
            text.contains("replay: \"fails over\" held in 9 of 10 seeds (90 %), needs 90 %: ok; missed in seed 3"),
            "{text}"
        );
        // Two misses: 80 %, too few; the sweep fails though each seed passed, and says which.
        let rs = cascade_sweep(&[3, 7]);
        assert!(!share_verdicts(&rs)[0].ok());
        assert_eq!(exit_code(&rs, true), EXIT_FAIL);
        let text = report(&rs, true);
        assert!(
            text.contains(
                "FAIL replay: \"fails over\" held in 8 of 10 seeds (80 %), needs 90 %: too few; missed in seeds 3, 7"
            ),
            "{text}"
        );
        assert!(text.contains("replay seed 7 with: pgsim run scenarios/replay.toml --seed 7"), "{text}");
        assert!(text.contains("10 passed, 0 failed, 0 errors; 1 assertion held in too few seeds"), "{text}");
        let xml = reports::junit::to_string(&junit_suites(&rs, true));
        assert!(
            xml.contains(r#"name="share of seeds: fails over""#) && xml.contains(r#"tests="11" failures="1""#),
            "{xml}"
        );
        // A shard only counts: no verdict, no failure, and JUnit has only its seeds.
        assert_eq!(exit_code(&rs, false), EXIT_PASS);
        assert!(report_with(&rs, true, "", false).contains("`pgsim merge` judges the whole sweep"));
        assert!(!reports::junit::to_string(&junit_suites(&rs, false)).contains("share of seeds"));
    }

    #[test]
    fn merge_keeps_one_record_per_seed_and_flags_a_determinism_break() {
        let a = file(Some("0/3"), vec![rec("a", 0, Outcome::Pass, "11"), rec("a", 2, Outcome::Pass, "22")]);
        let b = file(Some("1/3"), vec![rec("a", 1, Outcome::Pass, "33"), rec("a", 2, Outcome::Pass, "22")]);
        let (merged, warnings) = merge(&[("a.json".into(), a), ("b.json".into(), b)]).unwrap();
        assert_eq!(merged.iter().map(|r| r.seed).collect::<Vec<_>>(), [0, 2, 1]);
        assert_eq!(by_scenario(&merged)[0].1.iter().map(|r| r.seed).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(warnings, ["shard(s) 2/3 missing"]);
        let c = file(None, vec![rec("a", 2, Outcome::Pass, "99")]);
        let d = file(None, vec![rec("a", 2, Outcome::Pass, "22")]);
        let (merged, _) = merge(&[("c.json".into(), c), ("d.json".into(), d)]).unwrap();
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].outcome, Outcome::Error);
        assert!(merged[0].reason.as_deref().unwrap().contains("determinism broken: trace hash 99 in c.json"));
        let mut other = rec("a", 2, Outcome::Pass, "22");
        other.scenario_hash = "1234".into();
        let e = merge(&[
            ("d.json".into(), file(None, vec![rec("a", 2, Outcome::Pass, "22")])),
            ("e.json".into(), file(None, vec![other])),
        ]);
        assert!(e.unwrap_err().contains("not the same scenario"));
    }

    #[test]
    fn report_lists_every_failing_seed_with_its_replay_command() {
        let rs =
            vec![rec("a", 0, Outcome::Pass, "1"), rec("a", 1, Outcome::Fail, "2"), rec("b", 3, Outcome::Pass, "3")];
        let text = report(&rs, false);
        assert!(text.starts_with("scenario  file"), "{text}");
        assert!(
            text.contains(
                "FAIL a seed 1: FAIL a: x = 1 (expected == 2)\n  replay with: pgsim run scenarios/a.toml --seed 1\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("check: 3 runs of 2 scenarios: 2 passed, 1 failed, 0 errors\n"), "{text}");
        let quiet = report(&rs, true);
        assert!(!quiet.contains("scenario  file") && quiet.contains("replay with"), "{quiet}");
    }

    #[test]
    fn a_partial_file_is_merged_with_a_warning_and_an_old_file_counts_as_complete() {
        let mut partial = file(None, vec![rec("a", 0, Outcome::Pass, "11")]);
        partial.complete = false;
        let whole = file(None, vec![rec("a", 1, Outcome::Pass, "22")]);
        let (merged, warnings) = merge(&[("p.json".into(), partial), ("w.json".into(), whole)]).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(
            warnings,
            ["p.json was written by a check that had not finished: only its 1 finished runs are merged"]
        );
        let old: ResultsFile =
            serde_json::from_str(r#"{"pgsim_version": "0.1.0", "seeds": null, "shard": null, "runs": []}"#).unwrap();
        assert!(old.complete, "files from before `complete` were written whole");
    }

    #[test]
    fn atomic_write_replaces_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("pgsim-check-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.xml");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert!(write_atomically(&dir.join("no/such/dir.xml"), b"x").is_err());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
