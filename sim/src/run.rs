//! Running a scenario: build the world, drive it on a fresh madsim runtime, summarise.

use std::sync::Arc;

use models::probe::{Probe, ProbeConfig};
use models::NodeId;
use scenarios::{NodeKind, Scenario};
use serde_json::{Value, json};

use crate::engine::{EngineStats, Factory, drive};
use crate::summary::{self, AssertionResult};
use crate::trace::Detail;
use crate::world::World;

#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    pub detail: Detail,
    /// Panic deliberately at this simulated time (tests of the tool's error handling).
    pub debug_panic_at: Option<std::time::Duration>,
}

pub struct RunOutput {
    pub seed: u64,
    pub world: World<Probe>,
    pub engine: EngineStats,
    pub wall_seconds: f64,
    pub assertions: Vec<AssertionResult>,
    pub summary: Value,
}

impl RunOutput {
    pub fn passed(&self) -> bool {
        self.assertions.iter().all(|a| a.passed) && self.world.trace.violations.is_empty()
    }
}

/// The model factory for a scenario's nodes.
pub fn probe_factory(sc: &Scenario) -> Factory<Probe> {
    let probes: Vec<NodeId> =
        (0..sc.nodes.len()).filter(|&i| sc.nodes[i].kind == NodeKind::Probe).map(|i| i as NodeId).collect();
    let spec = sc.probe.clone();
    Arc::new(move |id: NodeId, _durable: ()| {
        Probe::new(ProbeConfig {
            targets: probes.iter().copied().filter(|&p| p != id).collect(),
            interval: spec.interval,
            timeout: spec.timeout,
            payload_bytes: spec.payload_bytes,
            fsync_interval: spec.fsync_interval,
        })
    })
}

/// The simulation itself, inside a madsim runtime (also what the determinism check reruns).
pub async fn simulate(sc: &Scenario, seed: u64, detail: Detail) -> (World<Probe>, EngineStats) {
    simulate_with(sc, seed, RunOptions { seed: Some(seed), detail, debug_panic_at: None }).await
}

async fn simulate_with(sc: &Scenario, seed: u64, opts: RunOptions) -> (World<Probe>, EngineStats) {
    let mut world = World::new(sc, seed, opts.detail);
    if let Some(at) = opts.debug_panic_at {
        world.schedule_debug_panic(models::SimTime::from_duration(at));
    }
    let stats = drive(&mut world, probe_factory(sc)).await;
    (world, stats)
}

pub fn run(sc: &Scenario, opts: RunOptions) -> RunOutput {
    let seed = opts.seed.unwrap_or(sc.seed);
    // Wall time is read outside the runtime, where madsim does not intercept the clock.
    let wall = std::time::Instant::now();
    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    let (world, engine) = rt.block_on(simulate_with(sc, seed, opts));
    let wall_seconds = wall.elapsed().as_secs_f64();
    finish(sc, seed, world, engine, wall_seconds)
}

pub fn finish(sc: &Scenario, seed: u64, world: World<Probe>, engine: EngineStats, wall_seconds: f64) -> RunOutput {
    let mut summary = json!({
        "scenario": sc.name,
        "scenario_path": sc.path,
        "scenario_hash": sc.source_hash,
        "seed": seed,
        "pgsim_version": env!("CARGO_PKG_VERSION"),
        "sim_seconds": world.end.as_secs_f64(),
        "wall_seconds": (wall_seconds * 1e6).round() / 1e6,
        "events": world.trace.events.len(),
        "trace_hash": format!("{:016x}", world.trace.hash()),
        "faults_injected": world.faults_injected,
        "network": summary::network(&world.metrics, world.lookahead().as_secs_f64() * 1e3, world.messages_in_flight()),
        "probe": summary::probe(&world.metrics, &world.names),
        "disk": summary::disks(&world.metrics, &world.names),
        "nodes": summary::nodes(&world.trace.events, &world.names),
        "engine": { "windows": engine.windows, "node_wakeups": engine.node_wakeups },
    });
    let assertions: Vec<AssertionResult> = sc.asserts.iter().map(|a| summary::evaluate(a, &summary)).collect();
    let violations: Vec<Value> =
        world.trace.violations.iter().map(|(c, d)| json!({ "checker": c, "detail": d })).collect();
    let passed = assertions.iter().all(|a| a.passed) && violations.is_empty();
    let obj = summary.as_object_mut().expect("summary is an object");
    obj.insert("assertions".into(), serde_json::to_value(&assertions).expect("serialisable"));
    obj.insert("invariant_violations".into(), Value::Array(violations));
    obj.insert("outcome".into(), json!(if passed { "pass" } else { "fail" }));
    RunOutput { seed, world, engine, wall_seconds, assertions, summary }
}
