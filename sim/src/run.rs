//! Running a scenario: build the world (`crate::build`), drive it on a fresh madsim runtime,
//! summarise.

use std::sync::Arc;

use models::SimTime;
use models::stack::StackNode;
use scenarios::{NodeKind, Scenario};
use serde_json::{Value, json};

use crate::engine::{EngineStats, Guard, drive_guarded};
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
    /// The run guard: stop after this many engine events (`EngineStats::events`)...
    pub max_events: Option<u64>,
    /// ...or once this much wall-clock time has passed.
    pub max_wall: Option<std::time::Duration>,
}

pub struct RunOutput {
    pub seed: u64,
    pub world: World<StackNode>,
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

/// The simulation itself, inside a madsim runtime (also what the determinism check reruns).
pub async fn simulate(sc: &Scenario, seed: u64, detail: Detail) -> (World<StackNode>, EngineStats) {
    let opts = RunOptions { seed: Some(seed), detail, ..RunOptions::default() };
    simulate_with(sc, seed, opts, &Guard::default()).await
}

async fn simulate_with(sc: &Scenario, seed: u64, opts: RunOptions, guard: &Guard) -> (World<StackNode>, EngineStats) {
    let (mut world, factory) = crate::build::build(sc, seed, opts.detail);
    if let Some(at) = opts.debug_panic_at {
        world.schedule_debug_panic(SimTime::from_duration(at));
    }
    let stats = drive_guarded(&mut world, factory, guard).await;
    (world, stats)
}

/// Runs a scenario; a run the guard stops comes back with `engine.stopped` set (its summary
/// covers the part that ran and is no result).
pub fn run(sc: &Scenario, opts: RunOptions) -> RunOutput {
    let seed = opts.seed.unwrap_or(sc.seed);
    // Wall time is read outside the runtime, where madsim does not intercept the clock.
    let wall = std::time::Instant::now();
    let (guard, _watchdog) = guard_for(&opts);
    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    let (world, engine) = rt.block_on(simulate_with(sc, seed, opts, &guard));
    let wall_seconds = wall.elapsed().as_secs_f64();
    finish(sc, seed, world, engine, wall_seconds)
}

/// The guard for `opts`, and the watchdog thread behind its wall-clock limit: a plain thread
/// outside the simulation that raises the flag when the limit passes, and ends when the
/// returned sender is dropped (the run is over).
fn guard_for(opts: &RunOptions) -> (Guard, Option<std::sync::mpsc::Sender<()>>) {
    let mut guard = Guard { max_events: opts.max_events, wall_expired: None };
    let Some(limit) = opts.max_wall else { return (guard, None) };
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let raise = flag.clone();
    std::thread::Builder::new()
        .name("pgsim-wall-guard".into())
        .spawn(move || {
            if done_rx.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                raise.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .expect("a thread for the wall-clock guard");
    guard.wall_expired = Some(flag);
    (guard, Some(done_tx))
}

pub fn finish(sc: &Scenario, seed: u64, world: World<StackNode>, engine: EngineStats, wall_seconds: f64) -> RunOutput {
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
        "engine": { "windows": engine.windows, "node_wakeups": engine.node_wakeups, "events": engine.events },
    });
    let obj = summary.as_object_mut().expect("summary is an object");
    for (section, value) in world.trace.reports() {
        obj.insert(section.into(), value);
    }
    if sc.nodes.iter().any(|n| n.kind == NodeKind::Postgres) {
        summary::postgres(obj, sc, &world.trace.events, &world.metrics, &world.names);
    }
    if sc.nodes.iter().any(|n| n.kind == NodeKind::Etcd) {
        let e = summary::etcd(&world.trace.events, &world.metrics, &world.names, world.end);
        obj.insert("etcd".into(), e);
    }
    if sc.nodes.iter().any(|n| n.kind == NodeKind::Clients) {
        let tenants: Vec<String> = sc.tenants.iter().map(|t| t.name.clone()).collect();
        let pg_nodes = sc
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let p = n.pg.as_ref()?;
                Some((i as u32, (sc.pg_clusters[p.cluster].name.clone(), sc.regions[n.region].name.clone())))
            })
            .collect();
        let losses = obj.get("postgres").and_then(|p| p.get("promotion_losses")).cloned();
        let inputs = crate::stack_summary::StackInputs {
            events: &world.trace.events,
            metrics: &world.metrics,
            names: &world.names,
            tenants: &tenants,
            slo: sc.workload.slo,
            duration_s: sc.duration.as_secs(),
            pg_nodes,
            client: crate::stack_summary::ClientMetrics {
                ok: models::flow::client::CLIENT_OK,
                failed: models::flow::client::CLIENT_FAILED,
                latency_ms: models::flow::client::CLIENT_LATENCY_MS,
                errors: models::flow::ErrorKind::ALL
                    .iter()
                    .map(|k| (k.as_str(), models::flow::client::error_metric(*k)))
                    .collect(),
                retries: models::flow::client::CLIENT_RETRIES,
            },
            promotion_losses: losses.as_ref(),
        };
        obj.insert("stack".into(), crate::stack_summary::stack(&inputs));
    }
    let assertions: Vec<AssertionResult> = summary::judge(&sc.asserts, &summary);
    let violations: Vec<Value> =
        world.trace.violations.iter().map(|(c, d)| json!({ "checker": c, "detail": d })).collect();
    let passed = assertions.iter().all(|a| a.passed) && violations.is_empty();
    let obj = summary.as_object_mut().expect("summary is an object");
    obj.insert("assertions".into(), serde_json::to_value(&assertions).expect("serialisable"));
    obj.insert("invariant_violations".into(), Value::Array(violations));
    obj.insert("outcome".into(), json!(if passed { "pass" } else { "fail" }));
    RunOutput { seed, world, engine, wall_seconds, assertions, summary }
}
