//! The engine against the bare reference loop, determinism, and madsim's own check.

use models::stack::StackNode;
use sim::run::simulate;
use sim::trace::Detail;
use sim::world::World;
use sim::{RunOptions, run};

const SMOKE: &str = include_str!("../../scenarios/network-smoke.toml");

fn smoke() -> scenarios::Scenario {
    scenarios::parse_str("network-smoke.toml", SMOKE).expect("shipped scenario is valid")
}

fn bare(sc: &scenarios::Scenario, seed: u64) -> World<StackNode> {
    let (mut world, factory) = sim::build::build(sc, seed, Detail::Default);
    sim::bare::run(&mut world, &*factory);
    world
}

/// The engine's windows must not change what happens: with per-link and per-node random
/// streams, the bare one-event-at-a-time loop computes the same deliveries, losses, round
/// trips and disk latencies, faults included.
#[test]
fn engine_matches_bare_loop_on_the_smoke_scenario() {
    let sc = smoke();
    for seed in [1, 2, 3] {
        let engine = run(&sc, RunOptions { seed: Some(seed), detail: Detail::Default, ..Default::default() });
        let world = bare(&sc, seed);
        let reference = sim::run::finish(&sc, seed, world, Default::default(), 0.0);
        for key in ["probe", "disk", "network", "nodes", "faults_injected"] {
            assert_eq!(
                engine.summary[key], reference.summary[key],
                "seed {seed}: `{key}` differs between engine and bare loop"
            );
        }
        assert!(engine.summary["network"]["delivered"].as_u64().unwrap() > 40_000);
    }
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let sc = smoke();
    let a = run(&sc, RunOptions { seed: Some(5), detail: Detail::Default, ..Default::default() });
    let b = run(&sc, RunOptions { seed: Some(5), detail: Detail::Default, ..Default::default() });
    let c = run(&sc, RunOptions { seed: Some(6), detail: Detail::Default, ..Default::default() });
    assert_eq!(a.world.trace.hash(), b.world.trace.hash());
    assert_eq!(a.world.trace.events, b.world.trace.events);
    assert_ne!(a.world.trace.hash(), c.world.trace.hash());
}

#[test]
fn message_trace_adds_every_send() {
    let sc = smoke();
    let d = run(&sc, RunOptions { seed: Some(1), detail: Detail::Default, ..Default::default() });
    let m = run(&sc, RunOptions { seed: Some(1), detail: Detail::Messages, ..Default::default() });
    let sent = m.world.trace.events.iter().filter(|e| e.kind.name() == "message_sent").count() as u64;
    let delivered = m.summary["network"]["delivered"].as_u64().unwrap();
    let dropped_on_arrival = m.summary["network"]["dropped"]["node_down"].as_u64().unwrap()
        + m.summary["network"]["dropped"]["cut_in_flight"].as_u64().unwrap();
    let in_flight = m.summary["network"]["in_flight_at_end"].as_u64().unwrap();
    assert!(in_flight > 0, "the smoke run ends with pings on the wire");
    assert_eq!(sent, delivered + dropped_on_arrival + in_flight, "every routed message is traced once");
    assert_eq!(d.summary["probe"], m.summary["probe"], "tracing does not change the run");
    assert_ne!(d.world.trace.hash(), m.world.trace.hash());
}

/// madsim reruns the simulation and checks that every random decision it made (task
/// scheduling order included) was the same.
#[test]
fn madsim_determinism_check_with_faults() {
    async fn once() -> u64 {
        let sc = smoke();
        let (world, _) = simulate(&sc, 11, Detail::Default).await;
        world.trace.hash()
    }
    madsim::runtime::Runtime::check_determinism(11, madsim::Config::default(), once);
}

#[test]
fn pause_is_madsims_and_crash_loses_volatile_state() {
    let sc = smoke();
    let out = run(&sc, RunOptions { seed: Some(1), detail: Detail::Default, ..Default::default() });
    let kinds: Vec<&str> = out.world.trace.events.iter().map(|e| e.kind.name()).collect();
    for k in ["node_paused", "node_resumed", "node_crashed", "node_restarted", "flapped", "message_dropped", "metrics"]
    {
        assert!(kinds.contains(&k), "trace lacks {k}");
    }
    // l2 restarted with a fresh probe: its ping sequence restarted, and it pinged again.
    let l2_sent = out.summary["probe"]["pairs"]["l2->p1"]["sent"].as_u64().unwrap();
    assert!((1000..1110).contains(&l2_sent), "l2 sent {l2_sent} pings: ~10 s of 120 s missing");
    assert!(out.passed(), "{:#?}", out.assertions);
}

/// A finished run frees its nodes' tasks and models: a `pgsim check` worker runs seed after
/// seed in one process and must not keep every run's models.
#[test]
fn a_finished_run_drops_every_node_task() {
    let sc = smoke();
    let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
    let factory = rt.block_on(async {
        let (mut world, factory) = sim::build::build(&sc, 1, Detail::Default);
        sim::engine::drive(&mut world, factory.clone()).await;
        factory
    });
    drop(rt);
    // Every node task held a clone of the factory.
    assert_eq!(std::sync::Arc::strong_count(&factory), 1, "node tasks outlived the run");
}

/// pg's process is killed at 10 s (restarted at 20 s) and stopped from 30 s to 45 s, its host
/// up all along; HAProxy checks it with its defaults.
const PROCESS_FAULTS: &str = r#"
[scenario]
name = "process-faults"
duration = "60s"

[[region]]
name = "r"

[[rack]]
name = "k"
region = "r"

[[node]]
name = "pg"
rack = "k"
kind = "postgres"

[[node]]
name = "hap"
rack = "k"
kind = "haproxy"
[node.haproxy]
read = ["pg"]
write = []

[[fault]]
at = "10s"
for = "10s"
kind = "process-crash"
node = "pg"

[[fault]]
at = "30s"
for = "15s"
kind = "process-pause"
node = "pg"
"#;

/// A killed process's kernel refuses HAProxy's checks at once (DOWN within the next check
/// plus two more, 4-6 s); a stopped one's completes them (never DOWN). The same in the engine
/// and the bare loop, the same on a rerun, and madsim's own check agrees.
#[test]
fn process_faults_answer_from_the_kernel_deterministically() {
    let sc = scenarios::parse_str("process-faults.toml", PROCESS_FAULTS).expect("valid");
    let transitions = |w: &World<StackNode>| -> Vec<(u64, models::trace::HaproxyServerState)> {
        w.trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                models::trace::TraceKind::HaproxyServer { state, .. } => Some((e.t_ns, *state)),
                _ => None,
            })
            .collect()
    };
    for seed in [1, 2] {
        let out = run(&sc, RunOptions { seed: Some(seed), detail: Detail::Default, ..Default::default() });
        let seen = transitions(&out.world);
        assert_eq!(seen.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(), ["DOWN", "UP"], "seed {seed}");
        let down_after_s = seen[0].0 as f64 / 1e9 - 10.0;
        assert!((4.0..6.1).contains(&down_after_s), "seed {seed}: DOWN {down_after_s} s after the kill");
        assert!(seen[1].0 < 30_000_000_000, "UP again after the restart, and never DOWN while stopped");
        assert!(out.summary["network"]["dropped"]["refused"].as_u64().unwrap() > 0);
        let again = run(&sc, RunOptions { seed: Some(seed), detail: Detail::Default, ..Default::default() });
        assert_eq!(out.world.trace.hash(), again.world.trace.hash());
        assert_eq!(transitions(&bare(&sc, seed)), seen, "seed {seed}: the bare loop agrees");
    }
    async fn once() -> u64 {
        let sc = scenarios::parse_str("process-faults.toml", PROCESS_FAULTS).expect("valid");
        simulate(&sc, 3, Detail::Default).await.0.trace.hash()
    }
    madsim::runtime::Runtime::check_determinism(3, madsim::Config::default(), once);
}
