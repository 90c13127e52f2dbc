//! `pgsim check-worker` (hidden): reads jobs from stdin, one JSON line each, runs them one after
//! the other and writes one result line per run to stdout. A panic costs only its run: it is
//! caught (as `pgsim run` does) and reported as an internal error with its message.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use scenarios::Scenario;
use sim::summary::Status;
use sim::{Detail, RunOptions};

use super::pool::{Asserted, Job, Mode, RESULT_PREFIX, Reply};
use super::results::Outcome;
use crate::cli::{EXIT_INTERNAL, EXIT_PASS, GuardArgs};
use crate::swarm::scenario::Base;

/// When `--debug-panic-seed` makes a run panic (the replay command says so too).
pub const DEBUG_PANIC_AT: Duration = Duration::from_secs(1);

/// Switches for tests of the error paths.
#[derive(Clone, Copy, Debug, Default)]
pub struct Debug {
    /// This seed's run panics at `DEBUG_PANIC_AT`.
    pub panic_seed: Option<u64>,
    /// The worker process aborts when handed this seed.
    pub abort_seed: Option<u64>,
}

/// The first panic of the current run, with its location (the hook sees it; the payload alone
/// has no location).
static PANIC: Mutex<Option<String>> = Mutex::new(None);

fn take_panic() -> Option<String> {
    PANIC.lock().unwrap_or_else(|e| e.into_inner()).take()
}

pub fn main(debug: Debug, guard: GuardArgs) -> i32 {
    // Panics are reported in the result line, not printed over the parent's progress display.
    panic::set_hook(Box::new(|info| {
        let msg = info.payload_as_str().unwrap_or("(no message)");
        let text = match info.location() {
            Some(at) => format!("panicked at {at}: {msg}"),
            None => format!("panicked: {msg}"),
        };
        let mut slot = PANIC.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(text);
        }
    }));
    let mut scenarios: BTreeMap<String, Result<Scenario, String>> = BTreeMap::new();
    let mut bases: BTreeMap<String, Result<Base, String>> = BTreeMap::new();
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { return EXIT_INTERNAL };
        let job: Job = match serde_json::from_str(&line) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("pgsim check-worker: unreadable job {line:?}: {e}");
                return EXIT_INTERNAL;
            }
        };
        if debug.abort_seed == Some(job.seed) {
            eprintln!("pgsim check-worker: aborting on seed {} (--debug-abort-seed)", job.seed);
            std::process::abort();
        }
        let gone = |diag: &str| Reply::error(job.id, format!("the scenario file no longer loads: {diag}"));
        let reply = if job.mode == Mode::Run {
            let sc = scenarios
                .entry(job.file.clone())
                .or_insert_with(|| scenarios::load(job.file.as_ref()).map_err(|d| d.to_string()));
            match sc {
                Ok(sc) => run_one(sc, &job, debug, guard),
                Err(diag) => gone(diag),
            }
        } else {
            let base =
                bases.entry(job.file.clone()).or_insert_with(|| Base::load(&job.file).map_err(|d| d.to_string()));
            let debug_panic_at = (debug.panic_seed == Some(job.seed)).then_some(DEBUG_PANIC_AT);
            match base {
                Ok(base) => crate::swarm::work(base, &job, debug_panic_at, guard),
                Err(diag) => gone(diag),
            }
        };
        let text = format!("{RESULT_PREFIX}{}\n", serde_json::to_string(&reply).expect("serialisable"));
        let mut out = io::stdout().lock();
        if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
            return EXIT_INTERNAL;
        }
    }
    EXIT_PASS
}

fn run_one(sc: &Scenario, job: &Job, debug: Debug, guard: GuardArgs) -> Reply {
    let debug_panic_at = (debug.panic_seed == Some(job.seed)).then_some(DEBUG_PANIC_AT);
    match run_caught(sc, job.seed, debug_panic_at, guard) {
        Ok(r) => Reply {
            id: job.id,
            outcome: if r.passed { Outcome::Pass } else { Outcome::Fail },
            reason: r.failures.first().cloned(),
            failures: r.failures,
            trace_hash: r.trace_hash,
            wall_seconds: r.wall_seconds,
            asserted: r.asserted,
            swarm: None,
        },
        Err((msg, wall_seconds)) => Reply { wall_seconds, ..Reply::error(job.id, msg) },
    }
}

/// One finished run, as a check reports it.
pub struct Ran {
    pub passed: bool,
    /// `FAIL name: detail` per failed assertion, then `INVARIANT checker: detail`.
    pub failures: Vec<String>,
    /// The first failed assertion's name, else `invariant <checker>` of the first violation.
    pub property: Option<String>,
    pub trace_hash: Option<String>,
    pub wall_seconds: f64,
    pub asserted: Asserted,
    pub summary: serde_json::Value,
}

/// Runs `sc` with `seed`, catching a panic: Err(("internal error: ...", wall seconds)); a run
/// the guard stops is an error too (Err(("stopped by the run guard ...", wall seconds))).
pub fn run_caught(
    sc: &Scenario,
    seed: u64,
    debug_panic_at: Option<Duration>,
    guard: GuardArgs,
) -> Result<Ran, (String, f64)> {
    let opts =
        guard.apply(RunOptions { seed: Some(seed), detail: Detail::Default, debug_panic_at, ..RunOptions::default() });
    take_panic();
    // Read outside the runtime, where madsim does not intercept the clock.
    let wall = Instant::now();
    match panic::catch_unwind(AssertUnwindSafe(|| sim::run(sc, opts))) {
        Ok(o) if o.engine.stopped.is_some() => {
            let stop = o.engine.stopped.expect("matched");
            Err((crate::cli::stopped_message(stop, guard), o.wall_seconds))
        }
        Ok(o) => {
            let failed: Vec<_> = o.assertions.iter().filter(|a| a.status == Status::Failed).collect();
            let mut failures: Vec<String> = failed.iter().map(|a| format!("FAIL {}: {}", a.name, a.detail)).collect();
            failures.extend(o.world.trace.violations.iter().map(|(c, d)| format!("INVARIANT {c}: {d}")));
            let property = failed
                .first()
                .map(|a| a.name.clone())
                .or_else(|| o.world.trace.violations.first().map(|(c, _)| format!("invariant {c}")));
            Ok(Ran {
                passed: o.passed(),
                failures,
                property,
                trace_hash: o.summary["trace_hash"].as_str().map(String::from),
                wall_seconds: o.wall_seconds,
                asserted: Asserted::of(&o.assertions),
                summary: o.summary,
            })
        }
        Err(payload) => {
            let msg = take_panic().unwrap_or_else(|| {
                let text = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                format!("panicked: {text}")
            });
            Err((format!("internal error: {msg}"), wall.elapsed().as_secs_f64()))
        }
    }
}
