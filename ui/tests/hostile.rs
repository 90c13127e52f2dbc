//! Files that validate must run: values that used to pass `pgsim validate` and then panic (or
//! run without end) inside the simulator are rejected by validate, at their place in the file.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{pgsim, s, text, tmp};

const STACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/stack-primary-crash.toml");

/// The shipped stack scenario with `from` replaced by `to` (once), written to a scratch folder.
fn mutated(name: &str, from: &str, to: &str) -> PathBuf {
    let text = fs::read_to_string(STACK).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} occurs once in {STACK}");
    let path = tmp("hostile", name).join(format!("{name}.toml"));
    fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

/// `pgsim validate` exits 2 with a diagnostic at `path:line:column` whose message has `needle`.
fn rejected_at(path: &Path, line: usize, needle: &str) -> String {
    let o = pgsim(&["validate", s(path)]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains(&format!("{}:{line}:", s(path))), "located at line {line}: {out}");
    assert!(err.contains(needle), "says {needle:?}: {out}");
    assert!(!err.contains("panicked"), "{out}");
    err
}

fn line_of(path: &Path, needle: &str) -> usize {
    let text = fs::read_to_string(path).unwrap();
    text[..text.find(needle).unwrap()].matches('\n').count() + 1
}

#[test]
fn more_synchronous_standbys_than_names_is_rejected() {
    let path = mutated("any5", "\"FIRST 1 (pdx-pg2)\"", "\"ANY 5 (pdx-pg2, pdx-pg3)\"");
    rejected_at(&path, line_of(&path, "ANY 5"), "5 synchronous standbys requested but only 2 named");
}

#[test]
fn a_write_rate_beyond_its_range_is_rejected() {
    let path = mutated("rps", "write_rps = 1500", "write_rps = 9223372036854775807");
    rejected_at(&path, line_of(&path, "9223372036854775807"), "write_rps");
}

/// `pgsim ARGS`, killed (and the test failed) if it runs longer than `limit`.
fn pgsim_within(args: &[&str], limit: std::time::Duration) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs pgsim");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("pgsim {args:?} still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn endless_or_special_files_are_refused_quickly() {
    let dir = tmp("hostile", "include");
    let limit = std::time::Duration::from_secs(20);
    let o = pgsim_within(&["validate", "/dev/zero"], limit);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("larger than 1024 KiB"), "{}", text(&o));
    for (name, target, says) in [
        ("zero", "/dev/zero", "is not a regular file"),
        ("urandom", "/dev/urandom", "is not a regular file"),
        ("dir", "/tmp", "is a directory"),
    ] {
        let path = dir.join(format!("{name}.toml"));
        fs::write(&path, format!("include = \"{target}\"\n[scenario]\nname = \"x\"\n")).unwrap();
        let o = pgsim_within(&["validate", s(&path)], limit);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("{}:1:11: included file {target} {says}", s(&path))), "{}", text(&o));
    }
}

#[test]
fn a_truncated_including_file_is_located_in_itself() {
    let dir = tmp("hostile", "truncated");
    fs::copy(STACK, dir.join("base.toml")).unwrap();
    let path = dir.join("child.toml");
    fs::write(&path, "include = \"base.toml\"\n\n[scenario]\nname = \"child\"\n\n[[node]]\nname = \"x\n").unwrap();
    let err = rejected_at(&path, 7, "invalid basic string");
    assert!(!err.contains("base.toml"), "{err}");
}

const SMOKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/network-smoke.toml");

#[test]
fn the_run_guard_stops_a_run_with_its_own_exit_code_and_no_folder() {
    let dir = tmp("hostile", "guard");
    let out = dir.join("run");
    let o = pgsim(&["run", SMOKE, "--max-events", "1000", "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("more than 1000 engine events (--max-events)"), "{}", text(&o));
    assert!(err.contains("--max-events 10000"), "says how to go further: {}", text(&o));
    assert!(!out.exists(), "a stopped run writes no folder");
    let o = pgsim(&["run", SMOKE, "--max-wall-seconds", "0.001", "-q"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("(--max-wall-seconds)"), "{}", text(&o));
}

#[test]
fn the_run_guard_does_not_change_a_run_it_does_not_stop() {
    let dir = tmp("hostile", "guard-same");
    let hash = |args: &[&str], name: &str| {
        let out = dir.join(name);
        let mut all = vec!["run", SMOKE, "-q", "--out", s(&out)];
        all.extend_from_slice(args);
        let o = pgsim(&all);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let summary: serde_json::Value = serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
        (summary["trace_hash"].clone(), summary["engine"]["events"].as_u64().unwrap())
    };
    let (loose, events) = hash(&[], "loose");
    let (tight, _) = hash(&["--max-events", &events.to_string(), "--max-wall-seconds", "600"], "tight");
    assert_eq!(loose, tight, "a guard at exactly the run's event count lets it finish unchanged");
}

#[test]
fn check_counts_a_stopped_run_as_that_seeds_error() {
    let dir = tmp("hostile", "guard-check");
    let json = dir.join("r.json");
    let o =
        pgsim(&["check", SMOKE, "--seeds", "0..3", "--jobs", "1", "--max-events", "1000", "--json", s(&json), "-q"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let runs = r["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "every seed ran: {r}");
    for run in runs {
        assert_eq!(run["outcome"], "error");
        assert!(run["reason"].as_str().unwrap().contains("--max-events"), "{run}");
    }
}

#[test]
fn check_writes_its_json_as_soon_as_the_first_run_finishes() {
    use std::process::{Command, Stdio};
    let dir = tmp("hostile", "early-json");
    let json = dir.join("r.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args(["check", SMOKE, "--seeds", "0..200", "--jobs", "1", "--json", s(&json), "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !json.exists() && started.elapsed() < std::time::Duration::from_secs(25) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Killed as an impatient user or a CI timeout would, long before the 30 s flush.
    child.kill().unwrap();
    child.wait().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&fs::read(&json).expect("--json exists")).unwrap();
    assert_eq!(r["complete"], false, "{r}");
    let runs = r["runs"].as_array().unwrap().len();
    assert!((1..200).contains(&runs), "the runs finished so far: {runs}");
}

/// Each rate is in its range, but together with a spike they would overflow the request
/// counters over a long run: the tenants' peak load is bounded as a whole.
#[test]
fn the_tenants_peak_load_is_bounded_as_a_whole() {
    let path = mutated("peak", "read_rps = 2000", "read_rps = 9000000");
    let spike = "\n[[tenant.spike]]\nat = \"100s\"\nfor = \"1s\"\nfactor = 200\n";
    fs::write(&path, fs::read_to_string(&path).unwrap() + spike).unwrap();
    let line = line_of(&path, "name = \"dashboard\"");
    rejected_at(&path, line, "the tenants' peak load reaches 1800029500 requests/s");
}
