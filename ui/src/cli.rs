//! `pgsim run`, `pgsim validate`, `pgsim ui`, `pgsim compare`, `pgsim check`, `pgsim merge`.
//! Exit codes: 0 pass, 1 an assertion or invariant failed, 2 bad input or usage, 3 internal
//! error, 4 the run guard stopped the run (`--max-events`, `--max-wall-seconds`).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use sim::summary::Status;
use sim::{Detail, RunOptions};

pub const EXIT_PASS: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_INTERNAL: i32 = 3;
pub const EXIT_STOPPED: i32 = 4;

/// The largest shipped run (`stack-follow-the-sun`, 24 simulated hours) takes 59 M engine
/// events and the 7-hour 2020 replay 25 M (seed 1, measured): the default leaves 17 times the
/// largest, and stops a runaway after some ten minutes of work instead of hours.
pub const DEFAULT_MAX_EVENTS: u64 = 1_000_000_000;
/// The longest shipped run took 158 s of wall time on the project machine, with other builds on
/// its two cores: the default leaves 20 times that.
pub const DEFAULT_MAX_WALL_SECONDS: f64 = 3600.0;

/// The run guard: a run that does more work than this ends with a message and exit code 4 (in
/// `pgsim check`, that run is an error; the sweep goes on).
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct GuardArgs {
    /// Stop a run after this many engine events (messages and disk completions delivered,
    /// plus node wake-ups).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_EVENTS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_events: u64,
    /// Stop a run after this many seconds of wall-clock time.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_MAX_WALL_SECONDS, value_parser = parse_wall_seconds)]
    pub max_wall_seconds: f64,
}

impl Default for GuardArgs {
    fn default() -> Self {
        GuardArgs { max_events: DEFAULT_MAX_EVENTS, max_wall_seconds: DEFAULT_MAX_WALL_SECONDS }
    }
}

impl GuardArgs {
    pub fn apply(self, opts: RunOptions) -> RunOptions {
        let max_wall = Some(std::time::Duration::from_secs_f64(self.max_wall_seconds));
        RunOptions { max_events: Some(self.max_events), max_wall, ..opts }
    }

    /// The same flags, for a worker process's command line.
    pub fn to_args(self) -> Vec<String> {
        vec![
            "--max-events".into(),
            self.max_events.to_string(),
            "--max-wall-seconds".into(),
            self.max_wall_seconds.to_string(),
        ]
    }
}

fn parse_wall_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1e9 => Ok(x),
        _ => Err(format!("{s:?} is not a number of seconds between 0 and 1e9")),
    }
}

/// What a stopped run says: why, and how to let it run further.
pub fn stopped_message(stop: sim::engine::Stop, guard: GuardArgs) -> String {
    match stop {
        sim::engine::Stop::Events { max, at } => format!(
            "stopped by the run guard at {:.3} s simulated: more than {max} engine events (--max-events)",
            at.as_secs_f64()
        ),
        sim::engine::Stop::Wall { at } => format!(
            "stopped by the run guard at {:.3} s simulated: more than {} s of wall time (--max-wall-seconds)",
            at.as_secs_f64(),
            guard.max_wall_seconds
        ),
    }
}

#[derive(Parser, Debug)]
#[command(name = "pgsim", version, about = "Deterministic simulator of a PostgreSQL high-availability stack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TraceLevel {
    /// Significant events and per-second metrics.
    Default,
    /// Also every message sent.
    Messages,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario and check its assertions.
    Run {
        /// Scenario file (TOML).
        file: PathBuf,
        /// Seed (default: the scenario's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Write summary.json, events.jsonl, metrics.csv, scenario.toml and report.html into this
        /// folder (replaced whole).
        #[arg(long)]
        out: Option<PathBuf>,
        /// How much goes into the trace.
        #[arg(long, value_enum, default_value = "default")]
        trace: TraceLevel,
        /// Print only the outcome line.
        #[arg(long, short)]
        quiet: bool,
        /// Panic at this simulated time: exercises the internal-error path (exit 3).
        #[arg(long, hide = true, value_parser = parse_duration_arg)]
        debug_panic_at: Option<std::time::Duration>,
        /// Print a line of timing and peak memory for `pgsim bench`.
        #[arg(long, hide = true)]
        bench_stats: bool,
        #[command(flatten)]
        guard: GuardArgs,
    },
    /// Step forwards and backwards through a run in the terminal.
    Ui {
        /// Scenario file (TOML) to run first.
        #[arg(required_unless_present = "trace", conflicts_with = "trace")]
        file: Option<PathBuf>,
        /// Seed (default: the scenario's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Open a saved run instead: a folder written by `pgsim run --out DIR`.
        #[arg(long, value_name = "DIR")]
        trace: Option<PathBuf>,
        /// Panic after the first frame: exercises the terminal restore on panic.
        #[arg(long, hide = true)]
        debug_panic: bool,
    },
    /// Check scenario files without running them.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Overlay two runs' output folders (from `run --out`) in one compare.html.
    Compare {
        /// Run A's folder (drawn in blue).
        dir_a: PathBuf,
        /// Run B's folder (drawn in orange); differences are B − A.
        dir_b: PathBuf,
        /// Folder for compare.html (replaced whole; default ./compare-<A>-vs-<B>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run scenario files over a range of seeds on worker processes; report every failing seed.
    #[command(after_help = crate::check::CHECK_HELP)]
    Check(crate::check::CheckArgs),
    /// Time runs of scenarios (each repetition a fresh process) and report medians and peak
    /// memory.
    Bench(crate::bench::BenchArgs),
    /// Combine the --json results of several `pgsim check` shards.
    Merge(crate::check::MergeArgs),
    /// One worker process of `pgsim check`: jobs on stdin, results on stdout.
    #[command(hide = true)]
    CheckWorker(crate::check::WorkerArgs),
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { EXIT_PASS };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Run { file, seed, out, trace, quiet, debug_panic_at, bench_stats, guard } => {
            let detail = match trace {
                TraceLevel::Default => Detail::Default,
                TraceLevel::Messages => Detail::Messages,
            };
            let opts = guard.apply(RunOptions { seed, detail, debug_panic_at, ..RunOptions::default() });
            run(&file, opts, out.as_deref(), quiet, bench_stats, guard)
        }
        Command::Ui { file, seed, trace, debug_panic } => {
            crate::tui::term::command(file.as_deref(), trace.as_deref(), seed, debug_panic)
        }
        Command::Validate { files } => validate(&files),
        Command::Compare { dir_a, dir_b, out } => match reports::html::write_compare(&dir_a, &dir_b, out.as_deref()) {
            Ok(dir) => {
                println!("wrote {}", dir.join("compare.html").display());
                EXIT_PASS
            }
            Err(e) => {
                eprintln!("pgsim compare: {e}");
                EXIT_BAD_INPUT
            }
        },
        Command::Check(args) => crate::check::check(args),
        Command::Bench(args) => crate::bench::bench(args),
        Command::Merge(args) => crate::check::merge(args),
        Command::CheckWorker(args) => crate::check::worker(args),
    }
}

/// Loads a scenario and checks its `[[assert]] metric` paths against the summary a run of it
/// writes, so a typo fails here rather than after a whole run or sweep.
pub fn load_linted(path: &Path) -> Result<(scenarios::Scenario, String), scenarios::Diagnostic> {
    // A scenario that panics the simulator at once is reported by its run, as an internal error.
    scenarios::load_checked(path, |sc| std::panic::catch_unwind(|| sim::summary::shape(sc)).ok())
}

fn validate(files: &[PathBuf]) -> i32 {
    let mut code = EXIT_PASS;
    for f in files {
        match load_linted(f) {
            Ok((sc, _)) => println!(
                "{}: ok ({} nodes, {} faults, {} assertions, {:?})",
                f.display(),
                sc.nodes.len(),
                sc.faults.len(),
                sc.asserts.len(),
                sc.duration
            ),
            Err(d) => {
                eprintln!("{d}");
                code = EXIT_BAD_INPUT;
            }
        }
    }
    code
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    scenarios::units::parse_duration(s)
}

fn run(file: &Path, opts: RunOptions, out: Option<&Path>, quiet: bool, bench_stats: bool, guard: GuardArgs) -> i32 {
    let (sc, source) = match load_linted(file) {
        Ok(x) => x,
        Err(d) => {
            eprintln!("{d}");
            return EXIT_BAD_INPUT;
        }
    };
    let seed_used = opts.seed.unwrap_or(sc.seed);
    let opts = RunOptions { seed: Some(seed_used), ..opts };
    let result = std::panic::catch_unwind(|| sim::run(&sc, opts));
    let output = match result {
        Ok(o) => o,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            eprintln!("pgsim: internal error (seed {seed_used}): {msg}");
            let mut flags = String::new();
            if opts.detail == Detail::Messages {
                flags.push_str(" --trace messages");
            }
            if let Some(at) = opts.debug_panic_at {
                flags.push_str(&format!(" --debug-panic-at {}ms", at.as_millis()));
            }
            eprintln!("replay with: pgsim run {} --seed {seed_used}{flags}", file.display());
            return EXIT_INTERNAL;
        }
    };
    if let Some(stop) = output.engine.stopped {
        // A stopped run is no result: nothing is written, and the message says how to go further.
        eprintln!("pgsim: {} (seed {seed_used}); no output written", stopped_message(stop, guard));
        let further = match stop {
            sim::engine::Stop::Events { max, .. } => format!("--max-events {}", max.saturating_mul(10)),
            sim::engine::Stop::Wall { .. } => format!("--max-wall-seconds {}", guard.max_wall_seconds * 10.0),
        };
        eprintln!("to let it run further: pgsim run {} --seed {seed_used} {further}", file.display());
        return EXIT_STOPPED;
    }
    if let Some(dir) = out {
        let names = output.world.names.clone();
        let events = &output.world.trace.events;
        // The text the run was built from (merged with what it includes), so the folder
        // alone replays the run.
        let source = Some(source);
        let written = reports::write_dir_atomically(dir, |tmp| {
            reports::write_run_folder(tmp, &output.summary, events, &names, source.as_deref())
        });
        if let Err(e) = written {
            eprintln!("pgsim: cannot write {}: {e}", dir.display());
            return EXIT_BAD_INPUT;
        }
    }
    print_summary(&output, quiet);
    if !quiet {
        print_next_steps(out);
    }
    if bench_stats {
        let stats = crate::bench::RunStats {
            sim_seconds: output.summary["sim_seconds"].as_f64().unwrap_or(0.0),
            run_wall_seconds: output.wall_seconds,
            peak_rss_bytes: crate::bench::peak_rss_bytes(),
        };
        println!("{}{}", crate::bench::STATS_PREFIX, serde_json::to_string(&stats).expect("stats serialise"));
    }
    if output.passed() { EXIT_PASS } else { EXIT_FAIL }
}

/// Where the run's files went and the commands that look at them: a new user's next step.
fn print_next_steps(out: Option<&Path>) {
    let Some(dir) = out else {
        println!("no files written: add --out DIR to keep the trace, the report and the summary");
        return;
    };
    let shown = dir.display();
    // The folder's own listing, so this line cannot drift from what the writer writes.
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    files.sort();
    println!("wrote {shown}/: {}", files.join(", "));
    println!("next:");
    println!("  the report:       {shown}/report.html (open it in a browser)");
    println!("  step through it:  pgsim ui --trace {shown}");
    println!("  compare runs:     pgsim compare {shown} OTHER_RUN_DIR");
}

fn print_summary(o: &sim::RunOutput, quiet: bool) {
    let s = &o.summary;
    let sim_s = s["sim_seconds"].as_f64().unwrap_or(0.0);
    let outcome = s["outcome"].as_str().unwrap_or("?");
    if !quiet {
        println!(
            "{}  seed {}  {:.1} s simulated in {:.3} s ({:.0}x)",
            s["scenario"].as_str().unwrap_or("?"),
            o.seed,
            sim_s,
            o.wall_seconds,
            sim_s / o.wall_seconds.max(1e-9)
        );
        println!(
            "events {}  trace_hash {}  faults injected {}  messages delivered {}",
            s["events"],
            s["trace_hash"].as_str().unwrap_or("?"),
            s["faults_injected"],
            s["network"]["delivered"]
        );
        for a in &o.assertions {
            let word = match a.status {
                Status::Passed => "PASS",
                Status::Failed => "FAIL",
                Status::Missed => "MISS",
                Status::Skipped => "SKIP",
            };
            println!("  {word} {}: {}", a.name, a.detail);
        }
        for (checker, detail) in &o.world.trace.violations {
            println!("  INVARIANT {checker}: {detail}");
        }
    }
    let count = |st: Status| o.assertions.iter().filter(|a| a.status == st).count();
    let mut others = String::new();
    for (st, word) in [(Status::Missed, "missed"), (Status::Skipped, "skipped")] {
        if count(st) > 0 {
            others.push_str(&format!(", {} {word}", count(st)));
        }
    }
    println!("outcome: {outcome} ({} of {} assertions passed{others})", count(Status::Passed), o.assertions.len());
    if count(Status::Missed) > 0 {
        println!(
            "  a missed assertion must hold in a share of the seeds, not in each: \
             `pgsim check FILE --seeds A..B` judges the share"
        );
    }
}
