//! `kind = "stolonctl-update"`: a patch of Stolon's cluster spec on the timeline. Each patch
//! changes the spec in force (`[stolon]` and the earlier patches, in time order), and one that
//! leaves it invalid, or names a key this model cannot change at run time, is refused where
//! it is written.

use std::time::Duration;

use scenarios::{ActionKind, Scenario, SpecPatch};

/// A managed cluster "pdx" (three keepers, sentinels, proxies): the shipped stack scenario.
const STACK: &str = include_str!("../../stack-primary-crash.toml");

fn with_actions(actions: &str) -> String {
    format!("{STACK}\n{actions}")
}

fn parse(actions: &str) -> Result<Scenario, scenarios::Diagnostic> {
    scenarios::parse_str("stack.toml", &with_actions(actions))
}

/// 1-based line and column of the first `needle` at or after the line holding `after`.
fn position(text: &str, after: &str, needle: &str) -> (usize, usize) {
    let from = text.find(after).expect("anchor present");
    let at = from + text[from..].find(needle).expect("needle present");
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

const TWO_PATCHES: &str = r#"
[[action]]
at = "90s"
kind = "stolonctl-update"
cluster = "pdx"
patch = { minSynchronousStandbys = 2, maxSynchronousStandbys = 2 }

[[action]]
at = "70s"
kind = "stolonctl-update"
cluster = "pdx"
[action.patch]
synchronousReplication = false
failInterval = "10s"
maxStandbyLag = 0
"#;

#[test]
fn patches_apply_to_the_spec_in_force_in_time_order() {
    let sc = parse(TWO_PATCHES).unwrap_or_else(|d| panic!("{d}"));
    assert!(sc.stolon.synchronous_replication, "[stolon] itself is unchanged");
    let pdx = sc.pg_clusters.iter().position(|c| c.name == "pdx").unwrap();
    let (late, early) = (&sc.actions[0], &sc.actions[1]);
    assert_eq!(
        early.kind,
        ActionKind::StolonctlUpdate {
            cluster: pdx,
            patch: SpecPatch {
                synchronous_replication: Some(false),
                fail_interval: Some(Duration::from_secs(10)),
                max_standby_lag_bytes: Some(0),
                ..SpecPatch::default()
            }
        }
    );
    let ActionKind::StolonctlUpdate { patch, .. } = &late.kind else { panic!("{:?}", late.kind) };
    assert_eq!(patch.to_json(), r#"{"minSynchronousStandbys": 2, "maxSynchronousStandbys": 2}"#);
    // The 70 s patch comes first though it is written second.
    let after_early = sc.stolon_spec_after(pdx, 1);
    assert!(!after_early.synchronous_replication);
    assert_eq!(after_early.fail_interval, Duration::from_secs(10));
    assert_eq!((after_early.min_synchronous_standbys, after_early.max_synchronous_standbys), (1, 1));
    let after_late = sc.stolon_spec_after(pdx, 0);
    assert_eq!((after_late.min_synchronous_standbys, after_late.max_synchronous_standbys), (2, 2));
    assert!(!after_late.synchronous_replication, "the earlier patch still holds");
    assert_eq!(after_late.max_standby_lag_bytes, 0);
    assert_eq!(after_late.sleep_interval, sc.stolon.sleep_interval, "keys no patch names are kept");
}

#[test]
fn a_patch_that_leaves_min_above_max_is_refused_where_it_is_written() {
    // Valid in file order (max 3 first), invalid in time order: at 40 s max is still 1.
    let actions = r#"
[[action]]
at = "60s"
kind = "stolonctl-update"
cluster = "pdx"
patch = { maxSynchronousStandbys = 3 }

[[action]]
at = "40s"
kind = "stolonctl-update"
cluster = "pdx"
patch = { minSynchronousStandbys = 2 }
"#;
    let d = parse(actions).unwrap_err();
    let text = with_actions(actions);
    assert_eq!((d.line, d.column), position(&text, "at = \"40s\"", "2 }"), "{d}");
    assert!(d.message.contains("minSynchronousStandbys (2) above maxSynchronousStandbys (1)"), "{d}");
    // Swapped in time, both are fine.
    let swapped = actions.replace("\"60s\"", "\"20s\"");
    let sc = parse(&swapped).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(sc.stolon_spec_after(0, 1).min_synchronous_standbys, 2);
}

#[test]
fn bad_patches_point_at_the_mistake() {
    let cases: [(&str, &str, &str); 5] = [
        (
            "kind = \"stolonctl-update\"\ncluster = \"pdx\"\npatch = { failInterval = \"0s\" }",
            "\"0s\"",
            "failInterval must be between 1ms and 1d, got 0s",
        ),
        (
            "kind = \"stolonctl-update\"\ncluster = \"pdx\"\npatch = { maxSynchronousStandbys = 0 }",
            "0 }",
            "maxSynchronousStandbys must be between 1 and 64, got 0",
        ),
        ("kind = \"stolonctl-update\"\ncluster = \"pdx\"\npatch = {}", "{}", "an empty patch changes nothing"),
        ("kind = \"stolonctl-update\"\ncluster = \"pdx\"", "\"stolonctl-update\"", "stolonctl-update needs `patch`"),
        (
            "kind = \"failkeeper\"\nnode = \"pdx-pg1\"\npatch = { synchronousReplication = false }",
            "{ sync",
            "action kind \"failkeeper\" does not take `patch`",
        ),
    ];
    for (body, needle, message) in cases {
        let actions = format!("\n[[action]]\nat = \"30s\"\n{body}\n");
        let d = parse(&actions).expect_err(body);
        let text = with_actions(&actions);
        assert_eq!((d.line, d.column), position(&text, "at = \"30s\"", needle), "{body}: {d}");
        assert!(d.message.contains(message), "{body}: {d}");
    }
}
