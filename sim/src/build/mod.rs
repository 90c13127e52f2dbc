//! A scenario becomes a world here, in one pass: the network and the disks, the trace with its
//! header and checkers, each node's configuration and the factory that starts its model, and
//! the timeline of faults and operator actions. `crate::world` is what the world then does;
//! `crate::run` runs it.
//!
//! By component: `network` (paths, probes, rebuild throughput), `etcd` (members, the KV
//! writer and elector), `postgres` (servers, faults inside them), `stolon` (keepers,
//! sentinels, proxies), `flow` (HAProxy, PgBouncer, client regions), `operator` (operator
//! actions), `nodes` (one configuration per node, and the factory).

mod etcd;
mod flow;
mod network;
mod nodes;
mod operator;
mod postgres;
mod stolon;

pub use network::network;

use models::rng::{Stream, stream_rng};
use models::stack::StackNode;
use models::trace::TraceKind;
use models::{NodeId, SimTime};
use scenarios::{NodeKind, Scenario};

use crate::disk::Disk;
use crate::engine::Factory;
use crate::net::Network;
use crate::trace::{Detail, Trace};
use crate::world::World;

/// The world a run of `sc` with `seed` starts from, and the factory that makes each node's
/// model (at the start, and again after each restart).
pub fn build(sc: &Scenario, seed: u64, detail: Detail) -> (World<StackNode>, Factory<StackNode>) {
    let names: Vec<String> = sc.nodes.iter().map(|n| n.name.clone()).collect();
    let net = network(sc, seed);
    let trace = trace(sc, seed, detail, &names, &net);
    let factory = nodes::factory(sc, &net);
    let operator = operator::actions(sc, &net);
    let mut world = World::new(seed, SimTime::from_duration(sc.duration), names, net, disks(sc, seed), trace);
    world.metrics.tenants = sc.tenants.iter().map(|t| t.name.clone()).collect();
    world.model_faults = Some(postgres::model_fault);
    for f in &sc.faults {
        world.schedule_fault(f.clone());
    }
    for action in operator {
        world.schedule_operator(action);
    }
    (world, factory)
}

/// The trace with every checker and the run header.
fn trace(sc: &Scenario, seed: u64, detail: Detail, names: &[String], net: &Network) -> Trace {
    let mut checkers = crate::check::all();
    checkers.push(Box::new(crate::converge::Convergence::new(crate::converge::ConvergeSpec::from_scenario(sc))));
    let mut trace = Trace::new(names, detail, checkers);
    trace.push(
        SimTime::ZERO,
        None,
        TraceKind::RunStarted {
            pgsim_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: sc.name.clone(),
            scenario_hash: sc.source_hash.clone(),
            seed,
            duration_ns: sc.duration.as_nanos() as u64,
            nodes: names.to_vec(),
            lookahead_ns: net.lookahead().as_nanos() as u64,
        },
    );
    trace
}

/// Each node's disk, with its own random stream.
fn disks(sc: &Scenario, seed: u64) -> Vec<Disk> {
    sc.nodes
        .iter()
        .enumerate()
        .map(|(i, nd)| Disk::new(nd.disk.clone(), stream_rng(seed, Stream::Disk { node: i as u32 })))
        .collect()
}

/// The nodes of one kind, in declared order.
fn nodes_of(sc: &Scenario, kind: NodeKind) -> Vec<NodeId> {
    (0..sc.nodes.len()).filter(|&i| sc.nodes[i].kind == kind).map(|i| i as NodeId).collect()
}
