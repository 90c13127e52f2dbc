//! The `pgsim` binary as users and CI run it: exit codes, output folders, determinism across
//! processes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SMOKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/network-smoke.toml");

fn pgsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgsim")).args(args).env_remove("RUST_BACKTRACE").output().expect("runs pgsim")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pgsim-cli-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[test]
fn run_writes_summary_events_and_metrics() {
    let base = tmp("out");
    let out = base.join("run");
    let o = pgsim(&["run", SMOKE, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("outcome: pass"), "{stdout}");
    let s = summary(&out);
    for key in [
        "scenario",
        "seed",
        "pgsim_version",
        "sim_seconds",
        "wall_seconds",
        "events",
        "trace_hash",
        "faults_injected",
        "assertions",
        "outcome",
    ] {
        assert!(s.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(s["outcome"], "pass");
    assert_eq!(s["sim_seconds"], 120.0);
    let a = &s["assertions"][0];
    assert!(a["name"].is_string() && a["passed"].is_boolean() && a["detail"].is_string());
    let events = fs::read(out.join("events.jsonl")).unwrap();
    let lines = events.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    assert_eq!(lines as u64, s["events"].as_u64().unwrap());
    assert_eq!(format!("{:016x}", fnv1a64(&events)), s["trace_hash"], "trace_hash is the hash of events.jsonl");
    let csv = fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("second,metric,label,count,min,mean,p50,p99,max\r\n"), "RFC 4180: CRLF");
    assert!(csv.lines().any(|l| l.contains(",probe_rtt_ms,p1->p2,")));
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn run_ends_by_naming_the_output_folder_and_the_next_commands() {
    let base = tmp("next");
    let out = base.join("run");
    let shown = out.display();
    let o = pgsim(&["run", SMOKE, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let tail: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("outcome:")).skip(1).collect();
    assert_eq!(
        tail.first().copied(),
        Some(format!("wrote {shown}/: events.jsonl, metrics.csv, report.html, scenario.toml, summary.json").as_str()),
        "{stdout}"
    );
    assert!(tail.iter().any(|l| l.contains(&format!("{shown}/report.html"))), "{stdout}");
    assert!(tail.iter().any(|l| l.contains(&format!("pgsim ui --trace {shown}"))), "{stdout}");
    let o = pgsim(&["run", SMOKE]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.lines().last().unwrap().contains("add --out DIR"),
        "without --out it says how to keep files: {stdout}"
    );
    let quiet = pgsim(&["run", SMOKE, "-q", "--out", out.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&quiet.stdout).lines().count(), 1, "-q prints only the outcome line");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn same_seed_in_two_processes_gives_the_same_trace() {
    let base = tmp("det");
    let runs: Vec<(serde_json::Value, Vec<u8>)> = ["a", "b", "c"]
        .iter()
        .zip(["7", "7", "8"])
        .map(|(name, seed)| {
            let dir = base.join(name);
            let o = pgsim(&["run", SMOKE, "--seed", seed, "--out", dir.to_str().unwrap(), "-q"]);
            assert!(o.status.success());
            (summary(&dir), fs::read(dir.join("events.jsonl")).unwrap())
        })
        .collect();
    assert_eq!(runs[0].0["trace_hash"], runs[1].0["trace_hash"]);
    assert!(runs[0].1 == runs[1].1, "events.jsonl byte-identical");
    assert_ne!(runs[0].0["trace_hash"], runs[2].0["trace_hash"]);
    assert_eq!(runs[2].0["seed"], 8);
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn bad_input_exits_2_with_position_and_writes_nothing() {
    let base = tmp("bad");
    let file = base.join("bad.toml");
    let text = fs::read_to_string(SMOKE).unwrap().replace("kind = \"partition\"", "kind = \"partitoin\"");
    fs::write(&file, &text).unwrap();
    let out = base.join("never");
    let o = pgsim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    let line = text.lines().position(|l| l.contains("partitoin")).unwrap() + 1;
    assert!(err.starts_with(&format!("{}:{line}:8: unknown fault kind \"partitoin\"", file.display())), "{err}");
    assert!(!out.exists(), "no output folder for bad input");
    assert_eq!(fs::read_dir(&base).unwrap().count(), 1, "no temporary folder either");
    let v = pgsim(&["validate", SMOKE, file.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&v.stdout).contains("network-smoke.toml: ok"));
    assert_eq!(pgsim(&["validate", SMOKE]).status.code(), Some(0));
    assert_eq!(pgsim(&["run", "/no/such/file.toml"]).status.code(), Some(2));
    assert_eq!(pgsim(&["run", SMOKE, "--seed", "abc"]).status.code(), Some(2), "usage errors exit 2");
    assert_eq!(pgsim(&["frobnicate"]).status.code(), Some(2));
    fs::remove_dir_all(&base).unwrap();
}

const PRIMARY_CRASH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/stack-primary-crash.toml");

/// Writes `text` with `from` replaced by `to` (which must occur) and validates it: (exit code,
/// stderr, the 1-based line of `to`).
fn validate_edit(base: &Path, text: &str, from: &str, to: &str) -> (Option<i32>, String, usize) {
    assert!(text.contains(from), "{from}");
    let edited = text.replacen(from, to, 1);
    let file = base.join("edited.toml");
    fs::write(&file, &edited).unwrap();
    let o = pgsim(&["validate", file.to_str().unwrap()]);
    let line = edited[..edited.find(to).unwrap()].matches('\n').count() + 1;
    let err = String::from_utf8_lossy(&o.stderr).replace(&format!("{}:", file.display()), "FILE:");
    (o.status.code(), err, line)
}

#[test]
fn validate_checks_assert_metrics_against_the_summary_with_did_you_mean() {
    let base = tmp("lint-metric");
    let text = fs::read_to_string(PRIMARY_CRASH).unwrap();
    let (code, err, line) =
        validate_edit(&base, &text, r#"metric = "stack.failover_count""#, r#"metric = "stack.failover_cnt""#);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "FILE:{line}:10: no metric `stack.failover_cnt` in summary.json: no `failover_cnt` under `stack`; \
             did you mean `stack.failover_count`?"
        )),
        "{err}"
    );
    let (code, err, line) =
        validate_edit(&base, &text, r#"metric = "stack.failover_count""#, r#"metric = "stack.availability""#);
    assert_eq!(code, Some(2));
    assert!(err.starts_with(&format!("FILE:{line}:10: `stack.availability` is an object")), "{err}");
    assert!(err.contains("overall"), "names the keys that are there: {err}");
    // Below what a run fills from its data (failovers, probe pairs), any path passes.
    let (code, err, _) =
        validate_edit(&base, &text, r#"metric = "stack.failover_count""#, r#"metric = "stack.failovers.0.at_seconds""#);
    assert_eq!(code, Some(0), "{err}");
    // A sweep refuses the typo before running a single seed.
    let (_, _, _) =
        validate_edit(&base, &text, r#"metric = "stack.failover_count""#, r#"metric = "stack.failover_cnt""#);
    let o = pgsim(&["check", base.join("edited.toml").to_str().unwrap(), "--seeds", "0..50", "-q"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean `stack.failover_count`?"));
    let o = pgsim(&["run", base.join("edited.toml").to_str().unwrap(), "-q"]);
    assert_eq!(o.status.code(), Some(2), "run refuses it too, before simulating");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn validate_refuses_what_would_start_after_the_end() {
    let base = tmp("lint-time");
    let text = fs::read_to_string(SMOKE).unwrap();
    let (code, err, line) = validate_edit(&base, &text, "at = \"95s\"", "at = \"2m30s\"");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "FILE:{line}:6: this fault starts at 150s, but the scenario ends at 120s (its `duration`): it would never happen"
        )),
        "{err}"
    );
    let text = fs::read_to_string(PRIMARY_CRASH).unwrap()
        + "\n[[action]]\nat = \"180s\"\nkind = \"failkeeper\"\nnode = \"pdx-pg2\"\n";
    let (code, err, line) = validate_edit(&base, &text, "at = \"180s\"", "at = \"180s\"");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!("FILE:{line}:6: this action starts at 180s, but the scenario ends at 180s")),
        "{err}"
    );
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn validate_suggests_near_misses_of_keys_and_names() {
    let base = tmp("lint-near");
    let text = fs::read_to_string(PRIMARY_CRASH).unwrap();
    let (code, err, _) = validate_edit(&base, &text, "[stolon]\n", "[stolon]\nfailIntervl = \"8s\"\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown field `failIntervl`") && err.contains("did you mean `failInterval`?"), "{err}");
    let (code, err, line) = validate_edit(&base, &text, "node = \"pdx-pg1\"", "node = \"pdx-pgl\"");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.starts_with(&format!("FILE:{line}:8: unknown node \"pdx-pgl\" (did you mean \"pdx-pg1\"?)")), "{err}");
    let (code, err, _) = validate_edit(&base, &text, "kind = \"node-crash\"", "kind = \"node-crsh\"");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown fault kind \"node-crsh\" (did you mean \"node-crash\"?)"), "{err}");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn every_shipped_scenario_passes_the_lint() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
    let mut files: Vec<String> = Vec::new();
    for sub in [dir.to_string(), format!("{dir}/swarm")] {
        for e in fs::read_dir(&sub).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(p.display().to_string());
            }
        }
    }
    files.sort();
    let args: Vec<&str> = std::iter::once("validate").chain(files.iter().map(String::as_str)).collect();
    let o = pgsim(&args);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn failed_assertion_exits_1_and_still_writes_output() {
    let base = tmp("fail");
    let file = base.join("strict.toml");
    let text = fs::read_to_string(SMOKE).unwrap()
        + "\n[[assert]]\nname = \"impossible\"\nmetric = \"faults_injected\"\nequals = 99\n";
    fs::write(&file, text).unwrap();
    let out = base.join("run");
    let o = pgsim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL impossible: faults_injected = 6 (expected == 99)"));
    assert_eq!(summary(&out)["outcome"], "fail");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn internal_error_exits_3_with_replay_command() {
    let base = tmp("panic");
    let out = base.join("run");
    let o = pgsim(&["run", SMOKE, "--seed", "4", "--debug-panic-at", "30s", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("internal error (seed 4)"), "{err}");
    assert!(err.contains(&format!("replay with: pgsim run {SMOKE} --seed 4 --debug-panic-at 30000ms")), "{err}");
    assert!(!out.exists(), "no half-written output");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn run_writes_a_report_and_compare_overlays_two_folders() {
    let base = tmp("compare");
    for (name, seed) in [("a", "1"), ("b", "2")] {
        let dir = base.join(name);
        let o = pgsim(&["run", SMOKE, "--seed", seed, "--out", dir.to_str().unwrap(), "-q"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let html = fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains(r#"data-chart="probe-rtt""#));
        assert_eq!(fs::read_to_string(dir.join("scenario.toml")).unwrap(), fs::read_to_string(SMOKE).unwrap());
    }
    // Default folder: ./compare-<A>-vs-<B>, relative to where pgsim runs.
    let o = Command::new(env!("CARGO_BIN_EXE_pgsim")).args(["compare", "a", "b"]).current_dir(&base).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let html = fs::read_to_string(base.join("compare-a-vs-b/compare.html")).unwrap();
    assert!(html.contains(r#"data-run="A""#) && html.contains(r#"data-run="B""#));
    let out = base.join("cmp");
    let o = pgsim(&[
        "compare",
        base.join("a").to_str().unwrap(),
        base.join("missing").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "a missing run folder is bad input");
    assert!(String::from_utf8_lossy(&o.stderr).contains("summary.json"));
    assert!(!out.exists());
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn bench_reports_medians_and_peak_memory_per_scenario() {
    let dir = tmp("bench");
    let json = dir.join("bench.json");
    let o = pgsim(&["bench", SMOKE, "--reps", "3", "--seed", "4", "--json", json.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let row = &rows[0];
    assert_eq!(row["scenario"], "network-smoke");
    assert_eq!((row["reps"].as_u64(), row["sim_seconds"].as_f64()), (Some(3), Some(120.0)));
    let (lo, med, hi) = (
        row["wall_seconds_min"].as_f64().unwrap(),
        row["wall_seconds_median"].as_f64().unwrap(),
        row["wall_seconds_max"].as_f64().unwrap(),
    );
    assert!(0.0 < lo && lo <= med && med <= hi, "{lo} {med} {hi}");
    assert!(row["run_wall_seconds_median"].as_f64().unwrap() <= med, "the simulation is part of the process");
    if cfg!(target_os = "linux") {
        let peak = row["peak_rss_bytes_max"].as_u64().unwrap();
        assert!((1 << 20..1 << 30).contains(&peak), "peak {peak} bytes");
    }
    let bad = pgsim(&["bench", "no-such-file.toml"]);
    assert_eq!(bad.status.code(), Some(2));
}
