//! `pgsim check` and `pgsim merge` as CI runs them: results independent of the number of worker
//! processes and of sharding, failing seeds with their replay commands, JUnit XML, exit codes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

mod common;
use common::{pgsim, s, text};

const CRASH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/etcd-leader-crash.toml");
const SMOKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/network-smoke.toml");

fn tmp(name: &str) -> PathBuf {
    common::tmp("check", name)
}

/// (scenario, seed) -> (outcome, trace_hash) from a `--json` file.
fn runs(path: &Path) -> BTreeMap<(String, u64), (String, String)> {
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (r["scenario"].as_str().unwrap().to_string(), r["seed"].as_u64().unwrap()),
                (r["outcome"].as_str().unwrap().to_string(), r["trace_hash"].as_str().unwrap().to_string()),
            )
        })
        .collect()
}

#[test]
fn results_do_not_depend_on_jobs_or_shards() {
    let base = tmp("det");
    let json = |name: &str| base.join(format!("{name}.json"));
    let check = |extra: &[&str], name: &str| {
        let out = json(name);
        let mut args = vec!["check", CRASH, SMOKE, "--seeds", "0..4", "--json", s(&out)];
        args.extend_from_slice(extra);
        let o = pgsim(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        runs(&out)
    };
    let one = check(&["--jobs", "1"], "one");
    let two = check(&["--jobs", "2"], "two");
    assert_eq!(one.len(), 8);
    assert_eq!(one, two, "the same trace hashes whatever the number of worker processes");
    // The same as `pgsim run` of that seed in a process of its own.
    let dir = base.join("run");
    assert!(pgsim(&["run", CRASH, "--seed", "2", "--out", s(&dir), "-q"]).status.success());
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(one[&("etcd-leader-crash".to_string(), 2)].1, summary["trace_hash"].as_str().unwrap());
    // Each run's asserted values are recorded, as the run's own summary has them.
    let results: serde_json::Value = serde_json::from_str(&fs::read_to_string(json("one")).unwrap()).unwrap();
    let rec = results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["scenario"] == "etcd-leader-crash" && r["seed"] == 2)
        .unwrap();
    let asserted = summary["assertions"].as_array().unwrap();
    assert!(!asserted.is_empty());
    for a in asserted {
        let metric = a["metric"].as_str().unwrap();
        assert_eq!(rec["values"][metric], a["value"], "{metric}");
    }

    let s0 = check(&["--jobs", "1", "--shard", "0/2"], "s0");
    let s1 = check(&["--jobs", "2", "--shard", "1/2"], "s1");
    assert_eq!(s0.keys().map(|k| k.1).collect::<Vec<_>>(), [0, 2, 0, 2], "positions 0 and 2 of each file's range");
    assert_eq!(s1.keys().map(|k| k.1).collect::<Vec<_>>(), [1, 3, 1, 3]);
    let junit = base.join("merged.xml");
    let o = pgsim(&["merge", s(&json("s0")), s(&json("s1")), "--json", s(&json("merged")), "--junit", s(&junit)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("etcd-leader-crash") && stdout.contains("check: 8 runs of 2 scenarios: 8 passed"),
        "{stdout}"
    );
    assert_eq!(runs(&json("merged")), one, "shards 0/2 + 1/2 merged = the unsharded run");
    let xml = fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(doc.root_element().attribute("tests"), Some("8"));

    // A shard missing: merged anyway, with a warning.
    let o = pgsim(&["merge", s(&json("s0"))]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("shard(s) 1/2 missing"), "{}", text(&o));

    // One seed's trace hash differs between two files: determinism broken, exit 3.
    let tampered = fs::read_to_string(json("one")).unwrap().replacen(
        &one[&("etcd-leader-crash".to_string(), 0)].1,
        "0123456789abcdef",
        1,
    );
    fs::write(json("tampered"), tampered).unwrap();
    let o = pgsim(&["merge", s(&json("two")), s(&json("tampered"))]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("ERROR etcd-leader-crash seed 0: determinism broken"), "{stdout}");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn failing_seeds_exit_1_with_replay_commands_and_junit_failures() {
    let base = tmp("fail");
    let file = base.join("strict.toml");
    let scenario = fs::read_to_string(CRASH).unwrap()
        + "\n[[assert]]\nname = \"impossible\"\nmetric = \"etcd.max_term\"\nequals = 99\n";
    fs::write(&file, scenario).unwrap();
    let junit = base.join("junit.xml");
    let o = pgsim(&["check", s(&file), SMOKE, "--seeds", "3..=5", "--jobs", "2", "--junit", s(&junit)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for seed in 3..=5 {
        assert!(
            stdout.contains(&format!("FAIL etcd-leader-crash seed {seed}: FAIL impossible: etcd.max_term = ")),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("replay with: pgsim run {} --seed {seed}\n", file.display())), "{stdout}");
    }
    assert!(stdout.contains("check: 6 runs of 2 scenarios: 3 passed, 3 failed, 0 errors"), "{stdout}");
    // Each failing seed is also said as it finishes, before the table (stderr, with progress).
    let stderr = String::from_utf8_lossy(&o.stderr);
    for seed in 3..=5 {
        let line = format!("FAIL etcd-leader-crash seed {seed}: FAIL impossible: etcd.max_term = ");
        assert!(stderr.contains(&line), "{stderr}");
    }
    let xml = fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failures: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("failure")).collect();
    assert_eq!(failures.len(), 3);
    assert!(failures[0].text().unwrap().ends_with(&format!("replay with: pgsim run {} --seed 3", file.display())));
    assert_eq!(fs::read_dir(&base).unwrap().count(), 2, "no temporary file left beside junit.xml");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn the_scenarios_name_keys_results_so_a_check_takes_it_once() {
    let base = tmp("dup");
    let junit = base.join("junit.xml");
    let o = pgsim(&["check", CRASH, CRASH, "--junit", s(&junit)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("scenario name \"etcd-leader-crash\" is also the name in"));
    assert!(!junit.exists());
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn bad_input_exits_2_before_anything_runs_and_writes_nothing() {
    let base = tmp("bad");
    let bad = base.join("bad.toml");
    let scenario = fs::read_to_string(CRASH).unwrap().replace("kind = \"node-crash\"", "kind = \"node-crahs\"");
    fs::write(&bad, &scenario).unwrap();
    let junit = base.join("junit.xml");
    let json = base.join("results.json");
    let line = scenario.lines().position(|l| l.contains("node-crahs")).unwrap() + 1;
    let o = pgsim(&["check", CRASH, s(&bad), "--junit", s(&junit), "--json", s(&json)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with(&format!("{}:{line}:8: unknown fault kind \"node-crahs\"", bad.display())), "{err}");
    assert!(o.stdout.is_empty(), "nothing ran: {}", text(&o));
    for (args, says) in [
        (vec!["--shard", "4/4"], "I must be below N"),
        (vec!["--shard", "1"], "expected I/N"),
        (vec!["--seeds", "5..2"], "empty seed range 5..2"),
        (vec!["--seeds", "x"], "not a seed"),
        (vec!["--jobs", "0"], "0 is not in 1..=1024"),
        (vec!["--junit", "/no/such/folder/junit.xml"], "does not exist"),
        (vec!["--seeds", "0..=18446744073709551615"], "at most 1000000"),
    ] {
        let mut all = vec!["check", CRASH, "--json", s(&json)];
        all.extend(args.iter());
        let o = pgsim(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says) && !err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(pgsim(&["check", "/no/such/file.toml"]).status.code(), Some(2));
    let o = pgsim(&["merge", s(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a `pgsim check --json` file"), "{}", text(&o));
    assert_eq!(fs::read_dir(&base).unwrap().count(), 1, "only bad.toml: no JUnit, no JSON, no temporary file");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn a_panic_or_a_dead_worker_costs_one_seed_and_exits_3() {
    let base = tmp("panic");
    let json = base.join("results.json");
    let o = pgsim(&[
        "check",
        CRASH,
        "--seeds",
        "0..6",
        "--jobs",
        "2",
        "--debug-panic-seed",
        "1",
        "--debug-abort-seed",
        "4",
        "--json",
        s(&json),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("ERROR etcd-leader-crash seed 1: internal error: panicked at "), "{stdout}");
    assert!(stdout.contains("debug panic requested"), "{stdout}");
    assert!(stdout.contains(&format!("replay with: pgsim run {CRASH} --seed 1 --debug-panic-at 1000ms\n")), "{stdout}");
    assert!(stdout.contains("ERROR etcd-leader-crash seed 4: worker process died"), "{stdout}");
    assert!(stdout.contains("aborting on seed 4"), "the dead worker's last words: {stdout}");
    let r = runs_any(&json);
    assert_eq!(r.len(), 6);
    assert_eq!(
        r.iter().map(|(seed, o)| (*seed, o.as_str())).collect::<Vec<_>>(),
        [(0, "pass"), (1, "error"), (2, "pass"), (3, "pass"), (4, "error"), (5, "pass")],
        "the other seeds ran on the surviving and the replacement workers"
    );
    fs::remove_dir_all(&base).unwrap();
}

fn runs_any(path: &Path) -> Vec<(u64, String)> {
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["seed"].as_u64().unwrap(), r["outcome"].as_str().unwrap().into()))
        .collect()
}

/// A `share_of_seeds` assertion is judged over a sweep (or a merge of its shards), never per
/// seed; an assertion with `if` is skipped in the seeds where its condition did not hold.
#[test]
fn a_share_of_seeds_is_judged_over_the_sweep_and_if_skips_what_depends_on_it() {
    let base = tmp("share");
    let file = base.join("share.toml");
    // etcd-leader-crash's writes stop ~1-1.4 s in seeds 0..10, 2.4 s in seed 6 (which also
    // reaches term 4, not 3).
    let scenario = fs::read_to_string(CRASH).unwrap()
        + "\n[[assert]]\nid = \"fast\"\nname = \"writes back within 2 s\"\nmetric = \"etcd.write_unavailable_seconds\"\nmax = 2\nshare_of_seeds = 0.9\n"
        + "\n[[assert]]\nif = \"fast\"\nname = \"one election\"\nmetric = \"etcd.max_term\"\nmax = 3\n";
    fs::write(&file, scenario).unwrap();
    let json = base.join("all.json");
    let o = pgsim(&["check", s(&file), "--seeds", "0..10", "--jobs", "2", "--json", s(&json)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("\"writes back within 2 s\" held in 9 of 10 seeds (90 %), needs 90 %: ok; missed in seed 6"),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["complete"], true, "written whole at the end");
    let six = v["runs"].as_array().unwrap().iter().find(|r| r["seed"] == 6).unwrap();
    assert_eq!((six["outcome"].as_str(), six["skipped"].as_u64()), (Some("pass"), Some(1)), "{six}");
    assert_eq!(six["shares"][0]["held"], false);

    // Seeds 0..8: 7 of 8 is below 90 %; every seed passes, the sweep does not.
    let o = pgsim(&["check", s(&file), "--seeds", "0..8", "--jobs", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("\"writes back within 2 s\" held in 7 of 8 seeds"), "{stdout}");
    assert!(stdout.contains("8 passed, 0 failed, 0 errors; 1 assertion held in too few seeds"), "{stdout}");
    // Its shards only count; their merge judges.
    let shard = |i: &str| {
        let out = base.join(format!("s{i}.json"));
        let o = pgsim(&["check", s(&file), "--seeds", "0..8", "--shard", &format!("{i}/2"), "--json", s(&out)]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("`pgsim merge` judges the whole sweep"), "{}", text(&o));
        out
    };
    let (s0, s1) = (shard("0"), shard("1"));
    let o = pgsim(&["merge", s(&s0), s(&s1)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("held in 7 of 8 seeds"), "{}", text(&o));

    // `pgsim run` of seed 6 passes, and says what it missed and skipped.
    let o = pgsim(&["run", s(&file), "--seed", "6"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("  MISS writes back within 2 s: etcd.write_unavailable_seconds = 2.4"), "{stdout}");
    assert!(stdout.contains("  SKIP one election: skipped: its `if` (fast: writes back within 2 s)"), "{stdout}");
    assert!(stdout.contains("1 missed, 1 skipped)"), "{stdout}");
    fs::remove_dir_all(&base).unwrap();
}
