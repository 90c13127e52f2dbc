//! Random fault schedules against a 3- or 5-member etcd cluster: the Raft checkers (one
//! leader per term, log safety, leader completeness) must never fire, and once every fault
//! has healed a leader must be elected and writes must commit again within a bound.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{Detail, RunOptions, run};

const SCHEDULES: u64 = 500;
const HEAL_BY_S: u64 = 60;
const DURATION_S: u64 = 90;
/// After the last fault heals, writes must commit again within this long. Worst case: a
/// member that ran ahead deposes the leader on heal, in-lease members delay the election, and
/// a split vote costs another 2 s timeout.
const LIVENESS_BOUND_S: u64 = 15;

fn schedule(i: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed ^ i);
    let members = if rng.gen_bool(0.5) { 3 } else { 5 };
    let pre_vote = rng.gen_bool(0.5);
    let mut s = format!(
        "[scenario]\nname = \"raft-property-{i}\"\nduration = \"{DURATION_S}s\"\nseed = {i}\n\n[etcd]\npre-vote = {pre_vote}\n\n[etcd_writer]\nstart_after = \"2s\"\n\n[[region]]\nname = \"r\"\n"
    );
    for m in 1..=members {
        s += &format!(
            "\n[[rack]]\nname = \"k{m}\"\nregion = \"r\"\n\n[[node]]\nname = \"e{m}\"\nrack = \"k{m}\"\nkind = \"etcd\"\n"
        );
    }
    s += "\n[[node]]\nname = \"w\"\nrack = \"k1\"\nkind = \"etcd-writer\"\n";
    // Two clients compete for an election key; the lease checker watches them.
    s += "\n[etcd_elector]\nttl = \"3s\"\ntick = \"200ms\"\n";
    for c in 1..=2 {
        s += &format!("\n[[node]]\nname = \"c{c}\"\nrack = \"k{c}\"\nkind = \"etcd-elector\"\n");
    }
    let node = |rng: &mut ChaCha8Rng| format!("e{}", rng.gen_range(1..=members));
    for _ in 0..rng.gen_range(1..=6) {
        let at = rng.gen_range(3..HEAL_BY_S - 5);
        let len = rng.gen_range(1..=(HEAL_BY_S - at).min(30));
        let head = format!("\n[[fault]]\nat = \"{at}s\"\nfor = \"{len}s\"\n");
        let body = match rng.gen_range(0..7) {
            0 => format!("kind = \"node-crash\"\nnode = \"{}\"\n", node(&mut rng)),
            1 => {
                // Pause a member or, as often, a lock holder (a GC pause in a client).
                let who = if rng.gen_bool(0.5) { node(&mut rng) } else { format!("c{}", rng.gen_range(1..=2)) };
                format!("kind = \"node-pause\"\nnode = \"{who}\"\n")
            }
            2 => {
                let a = node(&mut rng);
                let mut b = node(&mut rng);
                while b == a {
                    b = node(&mut rng);
                }
                let one_way = rng.gen_bool(0.3);
                format!("kind = \"partition\"\nfrom = [\"{a}\"]\nto = [\"{b}\"]\none_way = {one_way}\n")
            }
            3 => {
                let a = node(&mut rng);
                let mut b = node(&mut rng);
                while b == a {
                    b = node(&mut rng);
                }
                let period = rng.gen_range(2..8);
                format!("kind = \"link-flapping\"\nbetween = [\"{a}\", \"{b}\"]\nperiod = \"{period}s\"\n")
            }
            4 => {
                let loss = rng.gen_range(0.1..0.9);
                format!("kind = \"switch-degraded\"\nswitch = \"r-core\"\nloss_ratio = {loss:.2}\n")
            }
            5 => format!("kind = \"disk-stall\"\nnode = \"{}\"\n", node(&mut rng)),
            _ => {
                // Cut a minority (or, sometimes, a majority) off from the rest.
                let cut = rng.gen_range(1..=members / 2 + 1);
                let from: Vec<String> = (1..=cut).map(|m| format!("\"e{m}\"")).collect();
                let to: Vec<String> = (cut + 1..=members).map(|m| format!("\"e{m}\"")).collect();
                format!("kind = \"partition\"\nfrom = [{}]\nto = [{}]\n", from.join(", "), to.join(", "))
            }
        };
        s += &head;
        s += &body;
    }
    s
}

#[test]
fn raft_is_safe_and_live_under_random_fault_schedules() {
    let mut failures = Vec::new();
    let mut elections = 0u64;
    let mut lock_handovers = 0u64;
    for i in 0..SCHEDULES {
        let text = schedule(i);
        let sc = scenarios::parse_str(&format!("schedule-{i}.toml"), &text).expect("generated scenarios are valid");
        let opts = RunOptions { seed: Some(i), detail: Detail::Default, ..Default::default() };
        let out = match std::panic::catch_unwind(|| run(&sc, opts)) {
            Ok(out) => out,
            Err(e) => {
                let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
                failures.push(format!("schedule {i}: panicked: {msg}\n{text}"));
                continue;
            }
        };
        if !out.world.trace.violations.is_empty() {
            failures.push(format!("schedule {i}: invariant violated: {:?}\n{text}", out.world.trace.violations));
            continue;
        }
        elections += out.summary["etcd"]["elections_started"].as_u64().unwrap();
        let mut holder = None;
        for ev in &out.world.trace.events {
            if let models::trace::TraceKind::LockHeld { .. } = ev.kind
                && holder.replace(ev.node) != Some(ev.node)
            {
                lock_handovers += 1;
            }
        }
        // Liveness: every second from heal + bound to the end has committed writes.
        let from = HEAL_BY_S + LIVENESS_BOUND_S;
        let mut ok_seconds = std::collections::BTreeSet::new();
        for ev in &out.world.trace.events {
            if let models::trace::TraceKind::Metrics { second, rows } = &ev.kind
                && rows.iter().any(|r| &*r.metric == "etcd_writes_ok" && r.count > 0)
            {
                ok_seconds.insert(*second);
            }
        }
        let missing: Vec<u64> = (from..DURATION_S).filter(|s| !ok_seconds.contains(s)).collect();
        if !missing.is_empty() {
            failures.push(format!("schedule {i}: no committed write in seconds {missing:?}\n{text}"));
        }
    }
    assert!(
        failures.len() as u64 == SCHEDULES || elections > SCHEDULES,
        "the schedules do disturb the cluster ({elections} elections)"
    );
    assert!(failures.len() as u64 == SCHEDULES || lock_handovers > SCHEDULES, "locks change hands ({lock_handovers})");
    assert!(failures.is_empty(), "{} of {SCHEDULES} schedules failed:\n{}", failures.len(), failures.join("\n\n"));
}

/// Why etcd hard-wires CheckQuorum: without it, a leader cut off with a lock holder keeps
/// acknowledging the holder's keepalives while the majority elects a new leader, lets the lease
/// expire and hands the lock to someone else. The lease checker must catch that; with
/// CheckQuorum on, the same schedules are safe.
#[test]
fn without_check_quorum_a_stale_leader_lets_two_clients_hold_the_lock() {
    let text = |check_quorum: bool| {
        format!(
            r#"
[scenario]
name = "stale-leader-lease"
duration = "60s"
[sim]
check_quorum = {check_quorum}
[etcd_elector]
ttl = "3s"
tick = "200ms"
[[region]]
name = "r"
[[rack]]
name = "k1"
region = "r"
[[rack]]
name = "k2"
region = "r"
[[node]]
name = "e1"
rack = "k1"
kind = "etcd"
[[node]]
name = "e2"
rack = "k2"
kind = "etcd"
[[node]]
name = "e3"
rack = "k2"
kind = "etcd"
[[node]]
name = "c1"
rack = "k1"
kind = "etcd-elector"
[[node]]
name = "c2"
rack = "k2"
kind = "etcd-elector"
[[action]]
at = "3s"
kind = "move-leader"
to = "e1"
[[fault]]
at = "15s"
for = "30s"
kind = "partition"
from = ["k1"]
to = ["k2"]
"#
        )
    };
    let violated = |check_quorum: bool| -> usize {
        let sc = scenarios::parse_str("stale.toml", &text(check_quorum)).unwrap();
        (0..12)
            .filter(|&seed| {
                let out = run(&sc, RunOptions { seed: Some(seed), detail: Detail::Default, ..Default::default() });
                out.world.trace.violations.iter().any(|(c, _)| c == "lease_exclusivity")
            })
            .count()
    };
    assert_eq!(violated(true), 0, "CheckQuorum keeps the lock exclusive");
    assert!(violated(false) > 0, "without CheckQuorum the stale leader hands out a second holder");
}
