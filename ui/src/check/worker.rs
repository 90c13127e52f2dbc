//! `pgsim check-worker` (hidden): reads jobs from stdin, one JSON line each, runs them one after
//! the other and writes one result line per run to stdout. A panic costs only its run: it is
//! caught (as `pgsim run` does) and reported as an internal error with its message.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use scenarios::Scenario;
use sim::{Detail, RunOptions};

use super::pool::{Job, RESULT_PREFIX, Reply};
use super::results::Outcome;
use crate::cli::{EXIT_INTERNAL, EXIT_PASS};

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

pub fn main(debug: Debug) -> i32 {
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
        let sc = scenarios
            .entry(job.file.clone())
            .or_insert_with(|| scenarios::load(job.file.as_ref()).map_err(|d| d.to_string()));
        let reply = match sc {
            Ok(sc) => run_one(sc, &job, debug),
            Err(diag) => Reply::error(job.id, format!("the scenario file no longer loads: {diag}")),
        };
        let text = format!("{RESULT_PREFIX}{}\n", serde_json::to_string(&reply).expect("serialisable"));
        let mut out = io::stdout().lock();
        if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
            return EXIT_INTERNAL;
        }
    }
    EXIT_PASS
}

fn run_one(sc: &Scenario, job: &Job, debug: Debug) -> Reply {
    let debug_panic_at = (debug.panic_seed == Some(job.seed)).then_some(DEBUG_PANIC_AT);
    let opts = RunOptions { seed: Some(job.seed), detail: Detail::Default, debug_panic_at };
    take_panic();
    // Read outside the runtime, where madsim does not intercept the clock.
    let wall = Instant::now();
    match panic::catch_unwind(AssertUnwindSafe(|| sim::run(sc, opts))) {
        Ok(o) => {
            let mut failures: Vec<String> =
                o.assertions.iter().filter(|a| !a.passed).map(|a| format!("FAIL {}: {}", a.name, a.detail)).collect();
            failures.extend(o.world.trace.violations.iter().map(|(c, d)| format!("INVARIANT {c}: {d}")));
            let passed = o.passed();
            Reply {
                id: job.id,
                outcome: if passed { Outcome::Pass } else { Outcome::Fail },
                reason: failures.first().cloned(),
                failures,
                trace_hash: o.summary["trace_hash"].as_str().map(String::from),
                wall_seconds: o.wall_seconds,
            }
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
            Reply {
                wall_seconds: wall.elapsed().as_secs_f64(),
                ..Reply::error(job.id, format!("internal error: {msg}"))
            }
        }
    }
}
