//! Progress on stderr: an indicatif bar on a terminal; otherwise a line per finished scenario
//! and per tenth of the runs, so CI logs stay short.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::results::Outcome;

pub struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    errors: usize,
    started: Instant,
    mode: Mode,
}

enum Mode {
    Bar(ProgressBar),
    /// Plain lines; the next tenth of the runs that prints one.
    Lines {
        next_tenth: usize,
    },
    Quiet,
}

impl Progress {
    pub fn new(total: usize, scenarios: usize, workers: usize, quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} runs  {msg}  ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message("0 failed");
            Mode::Bar(bar)
        } else {
            eprintln!(
                "check: {total} runs of {scenarios} scenario{} on {workers} worker process{}",
                if scenarios == 1 { "" } else { "s" },
                if workers == 1 { "" } else { "es" }
            );
            Mode::Lines { next_tenth: 1 }
        };
        Progress { total, done: 0, failed: 0, errors: 0, started: Instant::now(), mode }
    }

    pub fn run_finished(&mut self, outcome: Outcome) {
        self.done += 1;
        match outcome {
            Outcome::Pass => {}
            Outcome::Fail => self.failed += 1,
            Outcome::Error => self.errors += 1,
        }
        let (done, total) = (self.done, self.total);
        let counts = if self.errors > 0 {
            format!("{} failed, {} errors", self.failed, self.errors)
        } else {
            format!("{} failed", self.failed)
        };
        match &mut self.mode {
            Mode::Bar(bar) => {
                bar.set_message(counts);
                bar.inc(1);
            }
            Mode::Lines { next_tenth } => {
                if done * 10 >= *next_tenth * total {
                    while done * 10 >= *next_tenth * total && *next_tenth <= 10 {
                        *next_tenth += 1;
                    }
                    let elapsed = self.started.elapsed().as_secs_f64();
                    eprintln!("check: {done}/{total} runs ({}%), {counts}, {elapsed:.1} s", done * 100 / total);
                }
            }
            Mode::Quiet => {}
        }
    }

    /// A run failed or erred: said at once (with its replay command), so a long sweep shows
    /// what failed without waiting for its table. Quiet mode prints only the final list.
    pub fn run_not_passed(&self, line: &str) {
        match &self.mode {
            Mode::Bar(bar) => bar.println(line),
            Mode::Lines { .. } => eprintln!("{line}"),
            Mode::Quiet => {}
        }
    }

    /// Every seed of one scenario has run.
    pub fn scenario_finished(&self, name: &str, runs: usize, failed: usize, errors: usize) {
        let line = format!("check: {name} done: {runs} runs, {failed} failed, {errors} errors");
        match &self.mode {
            Mode::Bar(bar) => bar.println(line),
            Mode::Lines { .. } => eprintln!("{line}"),
            Mode::Quiet => {}
        }
    }

    /// Something a worker printed.
    pub fn log(&self, line: &str) {
        match &self.mode {
            Mode::Bar(bar) => bar.suspend(|| eprintln!("{line}")),
            _ => eprintln!("{line}"),
        }
    }

    pub fn finish(self) {
        if let Mode::Bar(bar) = self.mode {
            bar.finish_and_clear();
        }
    }
}
