//! Bugs planted on purpose (`[sim] planted_bug`) are caught by the checkers every run has, and
//! the same scenario without the bug passes: the checkers see the bug, not the schedule.

use scenarios::Scenario;
use sim::{RunOptions, run};

/// Three members; e2's disk stalls from 5 s to 21 s. e1 (leader) dies at 8 s, so e2 and e3
/// elect while e2 can persist nothing; e3 dies at 14 s; e2 crashes at 18 s and comes back at
/// 21 s alone, from what its WAL held before the stall, and campaigns. A correct member never
/// let its vote for e3 out before the WAL held it; with the bug, it did, and now it votes again
/// (for itself) in a term it already voted in, with a term lower than it already sent.
const VOTE_NOT_DURABLE: &str = r#"
[scenario]
name = "planted-vote-not-durable"
duration = "40s"

[etcd]
heartbeat-interval = 100
election-timeout = 1000
pre-vote = false

[[region]]
name = "r"

[[rack]]
name = "k"
region = "r"

[[node]]
name = "e1"
rack = "k"
kind = "etcd"

[[node]]
name = "e2"
rack = "k"
kind = "etcd"

[[node]]
name = "e3"
rack = "k"
kind = "etcd"

[[action]]
at = "3s"
kind = "move-leader"
to = "e1"

[[fault]]
at = "5s"
until = "21s"
kind = "disk-stall"
node = "e2"

[[fault]]
at = "8s"
until = "40s"
kind = "node-crash"
node = "e1"

[[fault]]
at = "14s"
until = "40s"
kind = "node-crash"
node = "e3"

[[fault]]
at = "18s"
until = "21s"
kind = "node-crash"
node = "e2"
"#;

fn load(text: &str) -> Scenario {
    scenarios::parse_str("planted.toml", text).unwrap_or_else(|d| panic!("{d}"))
}

/// The checkers that fired, for each seed.
fn violations(text: &str, seeds: std::ops::Range<u64>) -> Vec<Vec<String>> {
    violations_of(&load(text), seeds)
}

fn violations_of(sc: &Scenario, seeds: std::ops::Range<u64>) -> Vec<Vec<String>> {
    seeds
        .map(|seed| {
            let out = run(sc, RunOptions { seed: Some(seed), ..Default::default() });
            out.world.trace.violations.iter().map(|(checker, _)| checker.clone()).collect()
        })
        .collect()
}

#[test]
fn a_vote_granted_before_it_is_durable_is_caught() {
    for (seed, found) in violations(VOTE_NOT_DURABLE, 0..10).into_iter().enumerate() {
        assert!(found.is_empty(), "seed {seed}: the correct member breaks nothing: {found:?}");
    }
    let planted = format!("{VOTE_NOT_DURABLE}\n[sim]\nplanted_bug = \"raft-vote-not-durable\"\n");
    let found = violations(&planted, 0..10);
    let raft = ["raft_one_vote_per_term", "raft_term_monotonic"];
    let caught: Vec<usize> =
        (0..found.len()).filter(|&s| found[s].iter().any(|c| raft.contains(&c.as_str()))).collect();
    // Whether e2 voted for e3 before the crash depends on who timed out first: not every seed.
    assert!(caught.len() >= 5, "caught in seeds {caught:?} only: {found:?}");
    for (seed, checkers) in found.iter().enumerate() {
        assert!(
            checkers.iter().all(|c| raft.contains(&c.as_str())),
            "seed {seed}: only Raft checkers fire: {checkers:?}"
        );
    }
}

/// A member that handles a vote request of a lower term as if it were current answers it in
/// that older term. In the shipped five-member partial partition, seed 14 has such a request
/// arrive (3 of 160 runs of the four shipped etcd scenarios, seeds 0..40, catch it; none
/// without the bug).
#[test]
fn a_vote_from_a_lower_term_is_caught() {
    let shipped = include_str!("../../scenarios/etcd-five-members-partial.toml");
    assert!(violations(shipped, 14..15)[0].is_empty(), "the correct member breaks nothing");
    let planted = format!("{shipped}\n[sim]\nplanted_bug = \"raft-vote-from-lower-term\"\n");
    let found = &violations(&planted, 14..15)[0];
    assert!(found.iter().any(|c| c == "raft_one_vote_per_term" || c == "raft_term_monotonic"), "{found:?}");
}

/// The planted bug "the sentinel may promote a standby outside the synchronous set". In the
/// shipped race the synchronous standby pdx-pg2 dies, then the primary pdx-pg1 before
/// failInterval: Stolon promotes nobody ("no eligible masters"); the bug promotes the
/// asynchronous pdx-pg3, which happens to hold every acknowledged commit (pdx-pg1 acknowledged
/// nothing once pdx-pg2 was gone), so the durability checker sees no loss: only the comparison
/// with the synchronous set pdx-pg1 had in force catches it.
#[test]
fn a_promotion_outside_the_synchronous_set_is_caught() {
    let shipped = include_str!("../../scenarios/stolon-sync-standby-race.toml");
    for (seed, found) in violations(shipped, 0..3).into_iter().enumerate() {
        assert!(found.is_empty(), "seed {seed}: the correct sentinel breaks nothing: {found:?}");
    }
    let planted = format!("{shipped}\n[sim]\nplanted_bug = \"stolon-promote-outside-sync-set\"\n");
    for (seed, found) in violations(&planted, 0..3).into_iter().enumerate() {
        assert!(found.iter().any(|c| c == "stolon_promoted_in_sync_set"), "seed {seed}: {found:?}");
    }
}

/// The planted bug "the old primary is never fenced". In the shipped connection storm an
/// operator's failkeeper moves the master from pdx-pg1, which stays up and reaches etcd: Stolon
/// fences it in the round its keeper reads that it must follow pdx-pg2. With the bug it runs on
/// as a primary to the end (85 s of two primaries, which the scenario's own assertions let
/// pass); its keeper reads the cluster data every 5 s, so the second read catches it.
#[test]
fn an_old_primary_never_fenced_is_caught() {
    // The scenario includes stack-primary-crash.toml: loaded from a file that includes it.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/stack-connection-storm.toml");
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("planted-never-fenced.toml");
    let load_with = |extra: &str| {
        std::fs::write(&file, format!("include = {shipped:?}\n{extra}")).expect("writable target dir");
        scenarios::load(&file).unwrap_or_else(|d| panic!("{d}"))
    };
    for (seed, found) in violations_of(&load_with(""), 0..3).into_iter().enumerate() {
        assert!(found.is_empty(), "seed {seed}: the correct keeper breaks nothing: {found:?}");
    }
    let planted = load_with("[sim]\nplanted_bug = \"stolon-old-primary-never-fenced\"\n");
    for (seed, found) in violations_of(&planted, 0..3).into_iter().enumerate() {
        assert_eq!(found, ["pg_split_brain"], "seed {seed}: reported once, by the split-brain checker");
    }
}
