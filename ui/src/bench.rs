//! `pgsim bench`: how fast and how big runs of shipped scenarios are. Each repetition is a
//! fresh `pgsim run` process, so its peak memory is its own (the kernel's high-water mark of
//! resident memory, VmHWM) and nothing cached by one repetition helps the next. Medians are
//! what BENCHMARKS.md quotes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use crate::cli::{EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_PASS};

/// The line a `pgsim run --bench-stats` child prints after its run.
pub const STATS_PREFIX: &str = "bench-stats ";

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Scenario files (TOML).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Repetitions per scenario (each a fresh process).
    #[arg(long, default_value_t = 5)]
    pub reps: u32,
    /// Seed (default: each scenario's own).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What one `pgsim run --bench-stats` reports about itself.
#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct RunStats {
    pub sim_seconds: f64,
    /// The simulation alone (no loading, no writing).
    pub run_wall_seconds: f64,
    /// The process's peak resident memory; 0 where the OS does not tell.
    pub peak_rss_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct BenchRow {
    pub scenario: String,
    pub file: String,
    pub reps: u32,
    pub sim_seconds: f64,
    /// Whole process, start to exit (loading, simulating, the summary).
    pub wall_seconds_median: f64,
    pub wall_seconds_min: f64,
    pub wall_seconds_max: f64,
    pub run_wall_seconds_median: f64,
    pub speedup_median: f64,
    pub peak_rss_bytes_max: u64,
}

/// Peak resident memory of this process so far (Linux: VmHWM in /proc/self/status).
pub fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

pub fn median(xs: &mut [f64]) -> f64 {
    assert!(!xs.is_empty(), "the median of nothing");
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

fn one_rep(exe: &Path, file: &Path, seed: Option<u64>) -> Result<(f64, RunStats), String> {
    let mut cmd = Command::new(exe);
    cmd.arg("run").arg(file).arg("--quiet").arg("--bench-stats");
    if let Some(s) = seed {
        cmd.arg("--seed").arg(s.to_string());
    }
    let started = Instant::now();
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::inherit()).output().map_err(|e| format!("cannot start: {e}"))?;
    let wall = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(STATS_PREFIX))
        .ok_or_else(|| format!("the run printed no statistics (exit {:?})", out.status.code()))?;
    let stats: RunStats = serde_json::from_str(line).map_err(|e| format!("unreadable statistics {line:?}: {e}"))?;
    Ok((wall, stats))
}

pub fn bench(args: BenchArgs) -> i32 {
    if args.reps == 0 {
        eprintln!("pgsim bench: --reps must be at least 1");
        return EXIT_BAD_INPUT;
    }
    for f in &args.files {
        if let Err(d) = scenarios::load(f) {
            eprintln!("{d}");
            return EXIT_BAD_INPUT;
        }
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("pgsim bench: cannot find this program's path: {e}");
            return EXIT_INTERNAL;
        }
    };
    println!(
        "{:<36} {:>9} {:>5} {:>10} {:>10} {:>10} {:>9} {:>8}",
        "scenario", "sim s", "reps", "median s", "min s", "max s", "x real", "peak MB"
    );
    let mut rows = Vec::new();
    for file in &args.files {
        let name = scenarios::load(file).map(|s| s.name).unwrap_or_default();
        let mut walls = Vec::new();
        let mut run_walls = Vec::new();
        let mut peak = 0;
        let mut sim_seconds = 0.0;
        for _ in 0..args.reps {
            match one_rep(&exe, file, args.seed) {
                Ok((wall, s)) => {
                    walls.push(wall);
                    run_walls.push(s.run_wall_seconds);
                    peak = peak.max(s.peak_rss_bytes);
                    sim_seconds = s.sim_seconds;
                }
                Err(e) => {
                    eprintln!("pgsim bench: {}: {e}", file.display());
                    return EXIT_INTERNAL;
                }
            }
        }
        let wall_median = median(&mut walls);
        let row = BenchRow {
            scenario: name,
            file: file.display().to_string(),
            reps: args.reps,
            sim_seconds,
            wall_seconds_median: wall_median,
            wall_seconds_min: walls[0],
            wall_seconds_max: walls[walls.len() - 1],
            run_wall_seconds_median: median(&mut run_walls),
            speedup_median: sim_seconds / wall_median.max(1e-9),
            peak_rss_bytes_max: peak,
        };
        println!(
            "{:<36} {:>9.0} {:>5} {:>10.3} {:>10.3} {:>10.3} {:>9.0} {:>8.1}",
            row.scenario,
            row.sim_seconds,
            row.reps,
            row.wall_seconds_median,
            row.wall_seconds_min,
            row.wall_seconds_max,
            row.speedup_median,
            row.peak_rss_bytes_max as f64 / 1e6
        );
        let _ = std::io::stdout().flush();
        rows.push(row);
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&rows).expect("rows serialise");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("pgsim bench: cannot write {}: {e}", path.display());
            return EXIT_BAD_INPUT;
        }
    }
    EXIT_PASS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn this_process_has_a_peak_on_linux() {
        if cfg!(target_os = "linux") {
            let kept: Vec<u8> = vec![1; 32 << 20];
            assert!(peak_rss_bytes() >= 32 << 20, "32 MB touched, peak {}", peak_rss_bytes());
            assert_eq!(kept.iter().map(|&b| b as usize).sum::<usize>(), 32 << 20);
        }
    }
}
