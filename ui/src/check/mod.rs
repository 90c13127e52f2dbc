//! `pgsim check`: every scenario file over a range of seeds, on worker processes; `pgsim merge`:
//! the `--json` results of several shards as one. Exit codes as `pgsim run`: 0 all passed, 1 an
//! assertion or invariant failed, 2 bad input (nothing runs, nothing is written), 3 an internal
//! error (3 wins over 1).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::cli::{EXIT_BAD_INPUT, EXIT_INTERNAL};

pub mod pool;
pub mod progress;
pub mod results;
pub mod spec;
pub mod worker;

use results::{Outcome, ResultsFile, RunRecord};
use spec::{SeedRange, Shard};

/// How often, at most, the `--json` file is rewritten while a check runs (also whenever a
/// scenario's last seed finishes).
const PARTIAL_JSON_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// At most this many runs in one check (a queue with a bound; split bigger sweeps with --shard).
pub const RUNS_MAX: u128 = 1_000_000;

pub const CHECK_HELP: &str = "\
Sharding: --shard I/N runs, of every file, the seeds whose 0-based position p in the --seeds
range has p % N == I; e.g. --seeds 100..110 --shard 1/3 runs seeds 101, 104 and 107. The N
shards of one range run each seed exactly once between them; `pgsim merge` combines their
--json files. I comes from the scheduler:
  GitHub Actions matrix   --shard ${{ matrix.shard }}/4    (strategy.matrix.shard: [0, 1, 2, 3])
  Kubernetes indexed Job  --shard $JOB_COMPLETION_INDEX/4  (completionMode: Indexed, completions: 4)
  Slurm job array         --shard $SLURM_ARRAY_TASK_ID/4   (sbatch --array=0-3)

Every failing seed is printed with the command that replays it: pgsim run FILE --seed S.

Swarm mode (--swarm): each seed replaces the scenario's [[fault]]s with a schedule of its own
(fault kinds enabled per seed, targets, times, durations, intensities; all healed by the end of
the fault phase) and its [[assert]]s with the swarm's properties: no commit a synchronous
standby confirmed is lost; no acknowledged commit is lost (unless [swarm] accept_data_loss);
the stack converges within the liveness bound after the last heal (one live primary per
database, commits acknowledged, synchronously where configured, etcd leading and committing,
no client request failing). A failing seed's scenario is written to --out DIR as
<scenario>-swarm-seed<N>.toml, replayed by `pgsim run`; the lowest failing seed of each failed
property is shrunk (faults removed, then halved, while that property still fails; at most
--shrink-runs runs) and written as <scenario>-swarm-seed<N>-shrunk.toml.
Exit codes: 0 all passed, 1 an assertion or invariant failed, 2 bad input (nothing runs),
3 an internal error (a panic, a worker process died; wins over 1).";

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Scenario files (TOML). All are validated before anything runs.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Seeds: A..B (B excluded), A..=B (B included) or one seed [default: each scenario's own].
    #[arg(long, value_name = "A..B", value_parser = spec::parse_seeds)]
    pub seeds: Option<SeedRange>,
    /// Worker processes [default: the available parallelism, at most the number of runs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,
    /// Run only the seeds at positions p with p % N == I (0 <= I < N); see below.
    #[arg(long, value_name = "I/N", value_parser = spec::parse_shard)]
    pub shard: Option<Shard>,
    /// Write JUnit XML here (one testsuite per scenario, one testcase per seed).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write machine-readable results here (what `pgsim merge` reads).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// No progress and no table: only failing seeds and the totals line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Swarm mode: each seed runs the scenario under a fault schedule of its own, then must
    /// converge once every fault has healed; failing seeds are written to --out and shrunk.
    #[arg(long)]
    pub swarm: bool,
    /// Swarm mode: the folder failing seeds' scenarios are written to [default: pgsim-swarm].
    #[arg(long, value_name = "DIR", requires = "swarm")]
    pub out: Option<PathBuf>,
    /// Swarm mode: at most this many runs to shrink one failing seed (0: no shrinking) [default: 40].
    #[arg(long, value_name = "N", requires = "swarm")]
    pub shrink_runs: Option<u32>,
    /// This seed's runs panic at 1 s of simulated time (tests of the internal-error path).
    #[arg(long, hide = true, value_name = "SEED")]
    pub debug_panic_seed: Option<u64>,
    /// A worker process aborts when handed this seed (tests of a worker's death).
    #[arg(long, hide = true, value_name = "SEED")]
    pub debug_abort_seed: Option<u64>,
    /// Applied to each run: a run that exceeds them is that seed's error, not the sweep's end.
    #[command(flatten)]
    pub guard: crate::cli::GuardArgs,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// `--json` files of `pgsim check` (e.g. one per shard).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write JUnit XML of the combined results here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the combined results here (same format).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Only failing seeds and the totals line.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[arg(long)]
    pub debug_panic_seed: Option<u64>,
    #[arg(long)]
    pub debug_abort_seed: Option<u64>,
    #[command(flatten)]
    pub guard: crate::cli::GuardArgs,
}

pub fn worker(args: WorkerArgs) -> i32 {
    worker::main(worker::Debug { panic_seed: args.debug_panic_seed, abort_seed: args.debug_abort_seed }, args.guard)
}

struct Loaded {
    file: String,
    name: String,
    hash: String,
    range: SeedRange,
}

/// Loads every file (printing each diagnostic); None if any is bad or two share a name.
fn load_all(files: &[PathBuf], seeds: Option<SeedRange>) -> Option<Vec<Loaded>> {
    let mut loaded: Vec<Loaded> = Vec::new();
    let mut ok = true;
    for f in files {
        match crate::cli::load_linted(f) {
            Ok((sc, _)) => {
                let file = f.display().to_string();
                if let Some(other) = loaded.iter().find(|l| l.name == sc.name) {
                    eprintln!(
                        "{file}: scenario name {:?} is also the name in {}: results are keyed by scenario \
                         name, so one check takes each scenario once",
                        sc.name, other.file
                    );
                    ok = false;
                    continue;
                }
                let range = seeds.unwrap_or(SeedRange::single(sc.seed));
                loaded.push(Loaded { file, name: sc.name, hash: sc.source_hash, range });
            }
            Err(d) => {
                eprintln!("{d}");
                ok = false;
            }
        }
    }
    ok.then_some(loaded)
}

fn outputs_writable(json: Option<&Path>, junit: Option<&Path>) -> Result<(), String> {
    if let (Some(a), Some(b)) = (json, junit)
        && a == b
    {
        return Err(format!("--json and --junit both name {}", a.display()));
    }
    json.map_or(Ok(()), |p| results::check_writable("--json", p))?;
    junit.map_or(Ok(()), |p| results::check_writable("--junit", p))
}

pub fn check(args: CheckArgs) -> i32 {
    let Some(loaded) = load_all(&args.files, args.seeds) else { return EXIT_BAD_INPUT };
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(crate::swarm::sweep::OUT_DEFAULT));
    let shard = args.shard.unwrap_or(spec::ALL);
    if let Err(e) = preflight(&args, &loaded, &out, shard) {
        eprintln!("pgsim check: {e}");
        return EXIT_BAD_INPUT;
    }
    let shard_label = args.shard.map(|s| s.to_string());
    let (jobs, records, job_scenario) = plan(&args, &loaded, shard, &shard_label);
    let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = (args.jobs.map_or(parallelism, |j| j as usize)).min(jobs.len()).max(1);
    let worker_args = worker_args(&args);
    if jobs.is_empty() {
        eprintln!("pgsim check: shard {shard} gets none of the seeds: nothing to run");
    }
    let started = std::time::Instant::now();
    let mut progress = progress::Progress::new(jobs.len(), loaded.len(), workers, args.quiet);
    let mut tally = Tally::new(records, job_scenario, loaded.len());
    let seeds_label = args.seeds.map(|s| s.to_string());
    let files = TallyFiles { json: args.json.as_deref(), out: &out, seeds: &seeds_label, shard: &shard_label };
    let progress_cell = std::cell::RefCell::new(&mut progress);
    pool::run(
        &jobs,
        workers,
        &worker_args,
        |reply| tally.on_reply(reply, &loaded, &files, &mut progress_cell.borrow_mut()),
        |line| progress_cell.borrow().log(&line),
    );
    progress.finish();
    let Tally { mut records, write_error, .. } = tally;
    let shrink_runs = args.shrink_runs.unwrap_or(crate::swarm::SHRINK_RUNS_DEFAULT);
    let (shrunk, shrink_error) = if args.swarm {
        let log = |line: &str| {
            if !args.quiet {
                eprintln!("{line}");
            }
        };
        crate::swarm::sweep::shrink_failures(&mut records, workers, &worker_args, &out, shrink_runs, log)
    } else {
        (String::new(), None)
    };
    let elapsed = started.elapsed().as_secs_f64();
    let extra = if args.swarm { crate::swarm::sweep::coverage(&records) + &shrunk } else { String::new() };
    let judge_shares = args.shard.is_none();
    print!("{}", results::report_with(&records, args.quiet, &extra, judge_shares));
    if !args.quiet {
        println!("{:.1} s wall on {workers} worker process{}", elapsed, if workers == 1 { "" } else { "es" });
    }
    if let Err(e) =
        results::write_outputs(&records, seeds_label, shard_label, args.json.as_deref(), args.junit.as_deref())
    {
        eprintln!("pgsim check: {e}");
        return EXIT_BAD_INPUT;
    }
    if let Some(e) = write_error.or(shrink_error) {
        eprintln!("pgsim check: {e}");
        return EXIT_BAD_INPUT;
    }
    results::exit_code(&records, judge_shares)
}

/// What must hold before any run starts: the outputs can be written, and the check is not
/// larger than `RUNS_MAX`.
fn preflight(args: &CheckArgs, loaded: &[Loaded], out: &Path, shard: Shard) -> Result<(), String> {
    outputs_writable(args.json.as_deref(), args.junit.as_deref())?;
    if args.swarm {
        crate::swarm::sweep::check_out(out)?;
    }
    let total: u128 = loaded.iter().map(|l| shard.count_in(l.range)).sum();
    if total > RUNS_MAX {
        return Err(format!("{total} runs; at most {RUNS_MAX} in one check: narrow --seeds or split it with --shard"));
    }
    Ok(())
}

/// One job per (scenario, seed) of this shard, its record (filled in when its result arrives)
/// and the index of its scenario in `loaded`.
fn plan(
    args: &CheckArgs,
    loaded: &[Loaded],
    shard: Shard,
    shard_label: &Option<String>,
) -> (Vec<pool::Job>, Vec<RunRecord>, Vec<usize>) {
    let mut jobs = Vec::new();
    let mut records: Vec<RunRecord> = Vec::new();
    let mut job_scenario = Vec::new();
    for (i, l) in loaded.iter().enumerate() {
        for seed in shard.seeds(l.range) {
            let extra = match args.debug_panic_seed {
                Some(s) if s == seed && args.swarm => format!(" --debug-panic-seed {seed}"),
                Some(s) if s == seed => format!(" --debug-panic-at {}ms", worker::DEBUG_PANIC_AT.as_millis()),
                _ => String::new(),
            };
            let mode = if args.swarm { pool::Mode::Swarm } else { pool::Mode::Run };
            jobs.push(pool::Job { id: jobs.len(), file: l.file.clone(), seed, mode });
            job_scenario.push(i);
            records.push(RunRecord {
                scenario: l.name.clone(),
                file: l.file.clone(),
                seed,
                outcome: Outcome::Error,
                reason: Some("not run".into()),
                failures: Vec::new(),
                trace_hash: None,
                scenario_hash: l.hash.clone(),
                wall_seconds: 0.0,
                asserted: pool::Asserted::default(),
                shard: shard_label.clone(),
                replay: if args.swarm {
                    crate::swarm::sweep::replay(&l.file, seed, &extra)
                } else {
                    spec::replay(&l.file, seed, &extra)
                },
                swarm: None,
            });
        }
    }
    (jobs, records, job_scenario)
}

/// The arguments every worker process gets: the run guard and the debug hooks.
fn worker_args(args: &CheckArgs) -> Vec<String> {
    let mut worker_args = args.guard.to_args();
    if let Some(s) = args.debug_panic_seed {
        worker_args.extend(["--debug-panic-seed".to_string(), s.to_string()]);
    }
    if let Some(s) = args.debug_abort_seed {
        worker_args.extend(["--debug-abort-seed".to_string(), s.to_string()]);
    }
    worker_args
}

/// Where a check writes as its results arrive.
struct TallyFiles<'a> {
    json: Option<&'a Path>,
    /// The swarm's output folder.
    out: &'a Path,
    seeds: &'a Option<String>,
    shard: &'a Option<String>,
}

/// The check's records as results arrive.
struct Tally {
    records: Vec<RunRecord>,
    /// Per job: its scenario's index in `loaded`.
    job_scenario: Vec<usize>,
    finished: Vec<bool>,
    /// Per scenario: its runs not finished yet.
    left: Vec<usize>,
    json_written: Option<std::time::Instant>,
    write_error: Option<String>,
}

impl Tally {
    fn new(records: Vec<RunRecord>, job_scenario: Vec<usize>, scenarios: usize) -> Tally {
        let mut left: Vec<usize> = vec![0; scenarios];
        for &i in &job_scenario {
            left[i] += 1;
        }
        let finished = vec![false; records.len()];
        Tally { records, job_scenario, finished, left, json_written: None, write_error: None }
    }

    fn on_reply(&mut self, reply: pool::Reply, loaded: &[Loaded], files: &TallyFiles<'_>, p: &mut progress::Progress) {
        let r = &mut self.records[reply.id];
        r.outcome = reply.outcome;
        r.reason = reply.reason;
        r.failures = reply.failures;
        r.trace_hash = reply.trace_hash;
        r.asserted = reply.asserted;
        r.wall_seconds = (reply.wall_seconds * 1e6).round() / 1e6;
        if let Err(e) = crate::swarm::sweep::on_reply(r, reply.swarm, files.out) {
            self.write_error.get_or_insert(e);
        }
        if r.outcome != Outcome::Pass {
            let what = if r.outcome == Outcome::Fail { "FAIL" } else { "ERROR" };
            let reason = r.reason.as_deref().unwrap_or("");
            p.run_not_passed(&format!("{what} {} seed {}: {reason}\n  replay with: {}", r.scenario, r.seed, r.replay));
        }
        p.run_finished(r.outcome);
        let s = self.job_scenario[reply.id];
        self.finished[reply.id] = true;
        self.left[s] -= 1;
        if self.left[s] == 0 {
            let mine = || self.records.iter().zip(&self.job_scenario).filter(|(_, j)| **j == s).map(|(r, _)| r);
            let count = |o: Outcome| mine().filter(|r| r.outcome == o).count();
            p.scenario_finished(&loaded[s].name, mine().count(), count(Outcome::Fail), count(Outcome::Error));
        }
        self.write_partial_json(files, self.left[s] == 0);
    }

    /// The --json file is kept current while the check runs (the runs finished so far, marked
    /// incomplete): first as soon as one run has finished, then every PARTIAL_JSON_EVERY and at
    /// each scenario's end, so a sweep that is interrupted keeps what it ran.
    fn write_partial_json(&mut self, files: &TallyFiles<'_>, scenario_done: bool) {
        let Some(path) = files.json else { return };
        if !(scenario_done || self.json_written.is_none_or(|at| at.elapsed() >= PARTIAL_JSON_EVERY)) {
            return;
        }
        let done = self.records.iter().zip(&self.finished).filter(|(_, f)| **f).map(|(r, _)| r);
        if let Err(e) = results::write_json(path, done, files.seeds.clone(), files.shard.clone(), false) {
            self.write_error.get_or_insert(e);
        }
        self.json_written = Some(std::time::Instant::now());
    }
}

pub fn merge(args: MergeArgs) -> i32 {
    if let Err(e) = outputs_writable(args.json.as_deref(), args.junit.as_deref()) {
        eprintln!("pgsim merge: {e}");
        return EXIT_BAD_INPUT;
    }
    let mut files = Vec::new();
    for f in &args.files {
        let shown = f.display().to_string();
        let parsed = std::fs::read_to_string(f).map_err(|e| e.to_string()).and_then(|t| {
            serde_json::from_str::<ResultsFile>(&t).map_err(|e| format!("not a `pgsim check --json` file: {e}"))
        });
        match parsed {
            Ok(p) => files.push((shown, p)),
            Err(e) => {
                eprintln!("pgsim merge: {shown}: {e}");
                return EXIT_BAD_INPUT;
            }
        }
    }
    let (records, warnings) = match results::merge(&files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("pgsim merge: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    for w in warnings {
        eprintln!("pgsim merge: warning: {w}");
    }
    let broken =
        records.iter().filter(|r| r.reason.as_deref().is_some_and(|s| s.starts_with("determinism broken"))).count();
    print!("{}", results::report(&records, args.quiet));
    let mut seeds: Vec<Option<&String>> = files.iter().map(|(_, f)| f.seeds.as_ref()).collect();
    seeds.dedup();
    let seeds = if seeds.len() == 1 { seeds[0].cloned() } else { None };
    if let Err(e) = results::write_outputs(&records, seeds, None, args.json.as_deref(), args.junit.as_deref()) {
        eprintln!("pgsim merge: {e}");
        return EXIT_BAD_INPUT;
    }
    if broken > 0 {
        eprintln!("pgsim merge: {broken} run(s) gave different trace hashes in different files: determinism is broken");
        return EXIT_INTERNAL;
    }
    results::exit_code(&records, true)
}
