//! `kind = "stolonctl-update"` end to end: the patch reaches the sentinels, the leader writes
//! the new spec to the cluster data, and the master's keeper changes synchronous_standby_names
//! on its next read, so commits are acknowledged without a standby's confirmation until a later
//! patch turns synchronous replication back on.

use models::trace::{Event, TraceKind};
use sim::{Detail, RunOptions, run};

const STACK: &str = include_str!("../../scenarios/stack-primary-crash.toml");

/// The shipped stack (synchronousReplication on, one synchronous standby) without its
/// crash, for 90 s, with synchronous replication switched off at 40 s and on again at 65 s.
fn scenario() -> scenarios::Scenario {
    let crash = "[[fault]]\nat = \"60s\"\nkind = \"node-crash\"\nnode = \"pdx-pg1\"\n";
    assert!(STACK.contains(crash), "the shipped scenario changed: update this test");
    let text = STACK.replace(crash, "").replace("duration = \"180s\"", "duration = \"90s\"")
        + r#"
[[action]]
at = "40s"
kind = "stolonctl-update"
cluster = "pdx"
patch = { synchronousReplication = false }

[[action]]
at = "65s"
kind = "stolonctl-update"
cluster = "pdx"
patch = { synchronousReplication = true }
"#;
    scenarios::parse_str("stack-stolonctl-update.toml", &text).unwrap_or_else(|d| panic!("{d}"))
}

fn at_s(e: &Event) -> f64 {
    e.t_ns as f64 / 1e9
}

#[test]
fn a_patch_changes_what_the_master_waits_for() {
    // Messages: acknowledged commits are detail, left out of the default trace.
    let out = run(&scenario(), RunOptions { seed: Some(3), detail: Detail::Messages, ..Default::default() });
    let events = &out.world.trace.events;
    let operator: Vec<(f64, &str)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::OperatorAction { action } => Some((at_s(e), action.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        operator,
        [
            (40.0, r#"stolonctl --cluster-name pdx update --patch '{"synchronousReplication": false}'"#),
            (65.0, r#"stolonctl --cluster-name pdx update --patch '{"synchronousReplication": true}'"#),
        ]
    );
    // The master's keeper, on its next read (every sleepInterval, 5 s), sets the names.
    let names: Vec<(f64, &str)> =
        events
            .iter()
            .filter_map(|e| match &e.kind {
                TraceKind::Stolon {
                    what: models::trace::StolonWhat::SyncStandbys, keeper: Some(k), reason, ..
                } if k == "pdx-pg1" => Some((at_s(e), reason.as_str())),
                _ => None,
            })
            .collect();
    let off = names.iter().find(|(t, _)| *t > 40.0).expect("the keeper applied the first patch");
    assert!(off.1.starts_with("synchronous_standby_names = ''") && off.0 < 50.0, "{names:?}");
    let on = names.iter().find(|(t, _)| *t > 65.0).expect("the keeper applied the second patch");
    // One standby again: whichever reported the lower position (Stolon adds the best standbys
    // in ascending position order, findBestStandbys).
    assert!(on.1.starts_with("synchronous_standby_names = '1 (pdx-pg") && on.0 < 75.0, "{names:?}");
    // Acknowledged commits: confirmed by pdx-pg2 before the first patch took effect and after
    // the second; acknowledged on the primary's own flush in between.
    let (mut synced_between, mut unsynced_between, mut unsynced_outside) = (0u64, 0u64, 0u64);
    for e in events {
        if let TraceKind::PgCommitsAcked { synced, count, .. } = &e.kind {
            let between = at_s(e) > off.0 + 0.5 && at_s(e) < on.0;
            let outside = at_s(e) < off.0 || at_s(e) > on.0 + 0.5;
            match (synced, between, outside) {
                (true, true, _) => synced_between += count,
                (false, true, _) => unsynced_between += count,
                (false, _, true) => unsynced_outside += count,
                _ => {}
            }
        }
    }
    assert!(unsynced_between > 1000, "writes go on without the standby: {unsynced_between}");
    assert_eq!((synced_between, unsynced_outside), (0, 0));
    assert!(out.world.trace.violations.is_empty(), "{:?}", out.world.trace.violations);
}
