//! `pgsim check --swarm` end to end: the unsafe scenario fails under a seed's schedule, the
//! seed's written scenario replays the run bit for bit with `pgsim run`, the shrunk one is
//! smaller and fails the same way, and the safe counterpart passes the very same schedule.

use std::fs;
use std::path::{Path, PathBuf};

mod common;
use common::{pgsim, s, text};

const UNSAFE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/swarm/unsafe-async-failover.toml");
const SAFE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/swarm/safe-sync-failover.toml");
/// A seed whose aimed fault (`[swarm] failover_share`) cuts the primary's keeper off from every
/// etcd member (one way) while the primary serves on: the sentinel promotes an asynchronous
/// standby that lacks what the old primary acknowledged meanwhile (890 commits). One of the
/// first failing seeds of `--seeds 0..40`; the shrink keeps that fault alone (32.9 s).
const SEED: &str = "11";
const LOSS: &str = "FAIL safety: no acknowledged commit is lost: postgres.commits_lost_total = ";

fn tmp(name: &str) -> PathBuf {
    common::tmp("swarm", name)
}

fn faults_in(path: &Path) -> usize {
    fs::read_to_string(path).unwrap().lines().filter(|l| *l == "[[fault]]").count()
}

#[test]
fn an_unsafe_failover_is_caught_written_out_shrunk_and_replayed() {
    let base = tmp("unsafe");
    let out = base.join("out");
    let json = base.join("results.json");
    let junit = base.join("junit.xml");
    let o = pgsim(&[
        "check",
        "--swarm",
        UNSAFE,
        "--seeds",
        SEED,
        "--out",
        s(&out),
        "--shrink-runs",
        "12",
        "--json",
        s(&json),
        "--junit",
        s(&junit),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let written = out.join(format!("unsafe-async-failover-swarm-seed{SEED}.toml"));
    let shrunk = out.join(format!("unsafe-async-failover-swarm-seed{SEED}-shrunk.toml"));
    assert!(stdout.contains(&format!("FAIL unsafe-async-failover seed {SEED}: {LOSS}")), "{stdout}");
    assert!(stdout.contains(&format!("  replay with: pgsim run {}\n", written.display())), "{stdout}");
    assert!(stdout.contains(&format!("SHRUNK unsafe-async-failover seed {SEED}: ")), "{stdout}");
    assert!(stdout.contains("the written file fails the same way"), "{stdout}");
    assert!(stdout.contains(&format!("  replay with: pgsim run {}\n", shrunk.display())), "{stdout}");

    let results: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let run = &results["runs"][0];
    let swarm = &run["swarm"];
    assert_eq!(swarm["property"], "safety: no acknowledged commit is lost");
    assert!(swarm["promotions"].as_u64() >= Some(1) && swarm["commits_lost"].as_u64() > Some(0), "{swarm}");
    assert_eq!(swarm["shrunk"]["replayed"], true, "{swarm}");
    let (before, after) = (faults_in(&written), faults_in(&shrunk));
    assert_eq!(swarm["faults"].as_u64(), Some(before as u64));
    assert_eq!(swarm["shrunk"]["faults"].as_u64(), Some(after as u64));
    assert!(after >= 1 && after < before, "shrunk from {before} to {after} faults");
    let junit = fs::read_to_string(&junit).unwrap();
    assert!(junit.contains("failures=\"1\"") && junit.contains(&written.display().to_string()), "{junit}");

    // The seed's file replays the sweep's run exactly: same trace hash.
    let replay = pgsim(&["run", s(&written), "--out", s(&base.join("replay"))]);
    assert_eq!(replay.status.code(), Some(1), "{}", text(&replay));
    assert!(String::from_utf8_lossy(&replay.stdout).contains(LOSS), "{}", text(&replay));
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(base.join("replay/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["trace_hash"], run["trace_hash"], "pgsim run of the written file is the sweep's run");

    // The shrunk file fails the same way on its own.
    let replay = pgsim(&["run", s(&shrunk), "-q"]);
    assert_eq!(replay.status.code(), Some(1), "{}", text(&replay));
    let plain = pgsim(&["run", s(&shrunk)]);
    assert!(String::from_utf8_lossy(&plain.stdout).contains(LOSS), "{}", text(&plain));
    fs::remove_dir_all(&base).unwrap();
}

/// Synchronous replication under the very schedule that lost commits: nothing is lost, the
/// stack converges, nothing is written.
#[test]
fn the_safe_counterpart_passes_the_same_schedule() {
    let base = tmp("safe");
    let out = base.join("out");
    let o = pgsim(&["check", "--swarm", SAFE, "--seeds", SEED, "--out", s(&out), "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 passed, 0 failed"), "{}", text(&o));
    assert!(!out.exists(), "nothing failed, nothing written");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn swarm_flags_are_checked_before_anything_runs() {
    let base = tmp("flags");
    let file = base.join("a-file");
    fs::write(&file, "x").unwrap();
    for (args, says) in [
        (vec!["check", UNSAFE, "--out", s(&base)], "--swarm"),
        (vec!["check", UNSAFE, "--shrink-runs", "3"], "--swarm"),
        (vec!["check", "--swarm", UNSAFE, "--out", s(&file)], "is a file"),
        (vec!["check", "--swarm", UNSAFE, "--out", "/no/such/folder/out"], "does not exist"),
    ] {
        let o = pgsim(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says) && !err.contains("panicked"), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: nothing ran");
    }
    assert_eq!(fs::read_dir(&base).unwrap().count(), 1, "only a-file");
    fs::remove_dir_all(&base).unwrap();
}
