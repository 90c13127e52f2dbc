//! Stolon's proxy handshake end to end ([ux] issue 19, item 3): with the primary's crash in
//! `stack-primary-crash.toml` moved to 90 s, pgsim's proxies used to read the new master from
//! the cluster data at the same check as its keeper, and switched to pdx-pg2 a few ms before
//! it was primary (in every seed); a write landing in those ms failed as read-only. In Stolon
//! (v0.17, sentinel.go `updateCluster`, proxy.go `Check`) the sentinel first tells the proxies
//! there is no master and names the new one only once every proxy has reported that, a round
//! later at the earliest; by then the keeper has promoted it.

use models::trace::{Event, TraceKind};
use sim::{Detail, RunOptions, run};

const STACK: &str = include_str!("../../scenarios/stack-primary-crash.toml");

/// The shipped scenario with its crash at 90 s, cut to 160 s.
fn scenario() -> scenarios::Scenario {
    let crash = "at = \"60s\"\nkind = \"node-crash\"";
    assert!(STACK.contains(crash), "the shipped scenario changed: update this test");
    let text = STACK
        .replace(crash, "at = \"1m30s\"\nkind = \"node-crash\"")
        .replace("duration = \"180s\"", "duration = \"160s\"");
    scenarios::parse_str("stack-primary-crash-at-90s.toml", &text).unwrap_or_else(|d| panic!("{d}"))
}

fn node(sc: &scenarios::Scenario, e: &Event) -> String {
    e.node.map_or_else(String::new, |n| sc.nodes[n.0 as usize].name.clone())
}

/// When pdx-pg2 became primary, and when each proxy started sending clients to it.
fn switch_times_ns(sc: &scenarios::Scenario, events: &[Event]) -> (Option<u64>, Vec<(String, u64)>) {
    let mut primary_at = None;
    let mut retargets = Vec::new();
    for e in events {
        match &e.kind {
            TraceKind::PgRole { role: models::pg::ServerRole::Primary, .. } if node(sc, e) == "pdx-pg2" => {
                primary_at.get_or_insert(e.t_ns);
            }
            TraceKind::Stolon { what: models::trace::StolonWhat::ProxyRetarget, keeper: Some(k), .. }
                if k == "pdx-pg2" =>
            {
                retargets.push((node(sc, e), e.t_ns));
            }
            _ => {}
        }
    }
    (primary_at, retargets)
}

#[test]
fn with_the_crash_at_90s_no_proxy_sends_clients_to_the_new_master_before_it_is_primary() {
    let sc = scenario();
    for seed in 0..12 {
        let out = run(&sc, RunOptions { seed: Some(seed), detail: Detail::Default, ..RunOptions::default() });
        let (primary_at, retargets) = switch_times_ns(&sc, &out.world.trace.events);
        let primary_at = primary_at.unwrap_or_else(|| panic!("seed {seed}: pdx-pg2 was never promoted"));
        assert_eq!(retargets.len(), 2, "seed {seed}: each proxy switches once: {retargets:?}");
        for (proxy, at) in &retargets {
            assert!(
                *at >= primary_at,
                "seed {seed}: {proxy} sends clients to pdx-pg2 at {at} ns, pdx-pg2 primary at {primary_at} ns"
            );
        }
        let read_only = &out.summary["stack"]["errors_by_kind"]["read_only"];
        assert!(read_only.is_null() || read_only == 0, "seed {seed}: writes reached a standby: {read_only}");
    }
}
