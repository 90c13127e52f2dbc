//! Running a scenario: build the world, drive it on a fresh madsim runtime, summarise.

use std::sync::Arc;

use models::etcd::{ElectorConfig, EtcdConfig, EtcdElector, EtcdMember, EtcdMsg, EtcdWriter, WriterConfig};
use models::flow::balancer::Haproxy;
use models::flow::bouncer::Bouncer;
use models::flow::client::Client;
use models::flow::proxy_relay::ProxyRelay;
use models::pg::{
    Capacity, PgCommand, PgConfig, PgDurable, PgNode, Phase, RebuildMethod, SyncLevel, SyncStandbyNames, Workload,
};
use models::probe::{Probe, ProbeConfig};
use models::stack::StackOp;
use models::stack::{Hosted, PgKeeperHost, ProxyHost, StackDurable, StackMsg, StackNode};
use models::stolon::Keeper;
use models::stolon::proxy::ProxyControl;
use models::stolon::sentinel::OperatorCmd;
use models::stolon::sentinel::Sentinel;
use models::{NodeId, SimTime};
use scenarios::{ActionKind, NodeKind, Scenario, StackRole};
use serde_json::{Value, json};

use crate::engine::{EngineStats, Factory, Guard, drive_guarded};
use crate::summary::{self, AssertionResult};
use crate::trace::Detail;
use crate::world::{OperatorAction, World};

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

fn nodes_of(sc: &Scenario, kind: NodeKind) -> Vec<NodeId> {
    (0..sc.nodes.len()).filter(|&i| sc.nodes[i].kind == kind).map(|i| i as NodeId).collect()
}

/// Builds each node's component for an incarnation, from its durable state.
/// `copy_bytes_per_s[target][source]`: what a rebuild of `target` from `source` copies per
/// second (see `copy_throughput`), for keepers that resync on their own.
pub fn factory(sc: &Scenario, copy_bytes_per_s: Vec<std::collections::BTreeMap<NodeId, u64>>) -> Factory<StackNode> {
    let probes = nodes_of(sc, NodeKind::Probe);
    let members = nodes_of(sc, NodeKind::Etcd);
    let kinds: Vec<NodeKind> = sc.nodes.iter().map(|n| n.kind).collect();
    let (probe, etcd, writer, check_quorum) =
        (sc.probe.clone(), sc.etcd.clone(), sc.etcd_writer.clone(), sc.sim.check_quorum);
    let planted_bug = sc.sim.planted_bug;
    let elector = sc.etcd_elector.clone();
    let pg: Vec<Option<PgConfig>> = (0..sc.nodes.len()).map(|i| pg_config(sc, i)).collect();
    let stack = crate::stack_config::StackConfigs::new(sc, copy_bytes_per_s);
    Arc::new(move |id: NodeId, durable: StackDurable| match kinds[id as usize] {
        NodeKind::Probe => StackNode::Probe(Hosted::new(Probe::new(ProbeConfig {
            targets: probes.iter().copied().filter(|&p| p != id).collect(),
            interval: probe.interval,
            timeout: probe.timeout,
            payload_bytes: probe.payload_bytes,
            fsync_interval: probe.fsync_interval,
        }))),
        NodeKind::Etcd => {
            let hs = match durable {
                StackDurable::Etcd(hs) => hs,
                _ => Default::default(),
            };
            let cfg = EtcdConfig {
                peers: members.clone(),
                heartbeat_interval: etcd.heartbeat_interval,
                election_timeout: etcd.election_timeout,
                pre_vote: etcd.pre_vote,
                check_quorum,
                planted_bug,
            };
            StackNode::Etcd(Box::new(Hosted::new(EtcdMember::new(cfg, hs))))
        }
        NodeKind::EtcdWriter => StackNode::Writer(Hosted::new(EtcdWriter::new(WriterConfig {
            members: members.clone(),
            start_after: writer.start_after,
            write_interval: writer.write_interval,
            request_timeout: writer.request_timeout,
        }))),
        NodeKind::EtcdElector => StackNode::Elector(Hosted::new(EtcdElector::new(ElectorConfig {
            members: members.clone(),
            key: "/pgsim/election".into(),
            ttl_s: elector.ttl_s,
            tick: elector.tick,
            request_timeout: elector.request_timeout,
        }))),
        NodeKind::Postgres => {
            let durable = match durable {
                StackDurable::Pg(d) => d,
                _ => PgDurable::default(),
            };
            let cfg = pg[id as usize].clone().expect("postgres nodes have a config");
            let node = Hosted::new(PgNode::new(cfg, durable));
            match &stack.keepers[id as usize] {
                Some(k) => StackNode::PgKeeper(Box::new(PgKeeperHost {
                    pg: node,
                    keeper: Hosted::new(Keeper::new(k.clone())),
                    rebuild_bytes_per_s: stack.copy_bytes_per_s[id as usize].clone(),
                })),
                None => StackNode::Pg(Box::new(node)),
            }
        }
        NodeKind::StolonSentinel => {
            let cfg = stack.sentinels[id as usize].clone().expect("sentinels have a config");
            StackNode::Sentinel(Box::new(Hosted::new(Sentinel::new(cfg))))
        }
        NodeKind::StolonProxy => {
            let cfg = stack.proxies[id as usize].clone().expect("proxies have a config");
            StackNode::StolonProxy(Box::new(ProxyHost::new(
                ProxyControl::new(cfg),
                ProxyRelay::new(Default::default()),
            )))
        }
        NodeKind::Haproxy => {
            let cfg = stack.haproxies[id as usize].clone().expect("haproxies have a config");
            StackNode::Haproxy(Box::new(Hosted::new(Haproxy::new(cfg))))
        }
        NodeKind::Pgbouncer => {
            let cfg = stack.bouncers[id as usize].clone().expect("pgbouncers have a config");
            StackNode::Bouncer(Box::new(Hosted::new(Bouncer::new(cfg))))
        }
        NodeKind::Clients => {
            let cfg = stack.clients[id as usize].clone().expect("clients have a config");
            StackNode::Client(Box::new(Hosted::new(Client::new(cfg))))
        }
    })
}

/// A PostgreSQL server's configuration from its cluster and the `[postgres]` settings.
fn pg_config(sc: &Scenario, i: usize) -> Option<PgConfig> {
    let spec = sc.nodes[i].pg.as_ref()?;
    let c = &sc.pg_clusters[spec.cluster];
    let p = &sc.postgres;
    // A standby cluster (another region) shares its primary cluster's WAL history: same first
    // timeline, and standby names known across clusters.
    let root = c.standby_of.unwrap_or(spec.cluster);
    let members: Vec<usize> = (0..sc.nodes.len()).filter(|&j| sc.nodes[j].pg.is_some()).collect();
    let primary = sc.cluster_leader(root) as usize;
    let at = |d: std::time::Duration| SimTime::from_duration(d);
    Some(PgConfig {
        cluster: sc.pg_clusters[root].name.clone(),
        names: members.iter().map(|&j| (j as NodeId, sc.nodes[j].name.clone())).collect(),
        initial_primary: primary as NodeId,
        initial_upstream: spec.upstream,
        synchronous_standby_names: SyncStandbyNames::parse(&c.synchronous_standby_names).expect("validated syntax"),
        wal_sender_timeout: p.wal_sender_timeout,
        wal_receiver_timeout: p.wal_receiver_timeout,
        wal_receiver_status_interval: p.wal_receiver_status_interval,
        wal_retrieve_retry_interval: p.wal_retrieve_retry_interval,
        flow_tick: p.flow_tick,
        workload: Workload {
            write_tps: c.write_tps,
            bytes_per_commit: c.bytes_per_commit,
            write_amplification: c.write_amplification,
            levels: vec![(SyncLevel::parse(&c.synchronous_commit).expect("validated level"), 1.0)],
            client_timeout: c.client_timeout,
            standby_read_tps: c.standby_read_tps,
            phases: c
                .phases
                .iter()
                .map(|ph| Phase {
                    from: at(ph.at),
                    until: at(ph.until),
                    extra_wal_bytes_per_s: ph.extra_wal_bytes_per_s as f64,
                    apply_slowdown: ph.apply_slowdown,
                })
                .collect(),
        },
        apply_bytes_per_s: spec.apply_bytes_per_s as f64,
        capacity: Capacity {
            cores: p.cores,
            read_service: p.read_service,
            write_service: p.write_service,
            max_connections: p.max_connections,
            ..Capacity::default()
        },
        stale_read_lag: p.stale_read_lag,
        database_bytes: p.database_bytes,
        wal_retained_bytes: p.wal_retained_bytes,
        checkpoint_timeout: p.checkpoint_timeout,
        max_inflight_bytes: 16 << 20,
        synchronous_commit: SyncLevel::parse(&c.synchronous_commit).expect("validated level"),
    })
}

/// The messages that start or end a fault acting inside a PostgreSQL server.
fn model_fault(kind: &scenarios::FaultKind, start: bool) -> Vec<(NodeId, StackMsg)> {
    match kind {
        scenarios::FaultKind::ApplySlow { node, factor } => {
            let factor_permille = if start { (factor * 1000.0).round() as u32 } else { 1000 };
            vec![(*node, StackMsg::Op(StackOp::Pg(PgCommand::ApplyFactor { factor_permille })))]
        }
        scenarios::FaultKind::WalReceiverPause { node } => {
            vec![(*node, StackMsg::Op(StackOp::Pg(PgCommand::PauseReceiver { paused: start })))]
        }
        _ => Vec::new(),
    }
}

/// The scenario's operator actions as the messages they inject.
fn operator_actions(sc: &Scenario, world: &mut World<StackNode>) {
    for (i, a) in sc.actions.iter().enumerate() {
        let name = |n: u32| sc.nodes[n as usize].name.clone();
        let (description, inject): (String, Vec<(NodeId, StackMsg)>) = match &a.kind {
            ActionKind::MoveLeader { to } => (
                format!("etcdctl move-leader {}", name(*to)),
                nodes_of(sc, NodeKind::Etcd)
                    .into_iter()
                    .map(|m| (m, StackMsg::Etcd(EtcdMsg::MoveLeader { to: *to })))
                    .collect(),
            ),
            ActionKind::Promote { node, accept_data_loss } => (
                format!(
                    "pg_ctl promote on {}{}",
                    name(*node),
                    if *accept_data_loss { " (accepting data loss)" } else { "" }
                ),
                vec![(*node, StackMsg::Op(StackOp::Pg(PgCommand::Promote { accept_data_loss: *accept_data_loss })))],
            ),
            ActionKind::Fence { node } => {
                (format!("fence {}", name(*node)), vec![(*node, StackMsg::Op(StackOp::Pg(PgCommand::Fence)))])
            }
            ActionKind::Follow { node, upstream } => (
                format!("repoint {} to follow {}", name(*node), name(*upstream)),
                vec![(*node, StackMsg::Op(StackOp::Pg(PgCommand::Follow { upstream: *upstream })))],
            ),
            ActionKind::FailKeeper { node } => (
                format!("stolonctl failkeeper {}", name(*node)),
                to_sentinels(sc, *node, OperatorCmd::FailKeeper { keeper: name(*node) }),
            ),
            ActionKind::ForceMaster { node, accept_data_loss } => (
                format!(
                    "force {} to master{}",
                    name(*node),
                    if *accept_data_loss { " (accepting data loss)" } else { "" }
                ),
                to_sentinels(
                    sc,
                    *node,
                    OperatorCmd::ForceMaster { keeper: name(*node), accept_data_loss: *accept_data_loss },
                ),
            ),
            ActionKind::PromoteRegion { cluster, accept_data_loss } => {
                let c = &sc.pg_clusters[*cluster];
                let leader = sc.cluster_leader(*cluster);
                let mut cmds = Vec::new();
                if *accept_data_loss {
                    // First recorded: the standby leader will be promoted knowing it lacks
                    // what had not crossed; then the role change that promotes it.
                    cmds.push(OperatorCmd::ForceMaster { keeper: name(leader), accept_data_loss: true });
                }
                cmds.push(OperatorCmd::SetClusterRole { master: true, remote_master: None });
                let mut inject: Vec<(NodeId, StackMsg)> = Vec::new();
                for cmd in cmds {
                    for s in sentinels_of(sc, *cluster) {
                        inject.push((s, StackMsg::Op(StackOp::Stolon(cmd.clone()))));
                    }
                }
                let region = sc.nodes[leader as usize].region;
                inject.extend(to_clients(sc, |_| StackOp::WriteEntries(bouncers_in(sc, region))));
                let loss = if *accept_data_loss { ", accepting data loss" } else { "" };
                (
                    format!(
                        "promote standby cluster {} (stolonctl update role=master{loss}); writes to its region",
                        c.name
                    ),
                    inject,
                )
            }
            ActionKind::DemoteRegion { cluster, follow } => {
                let leader = sc.cluster_leader(*follow);
                let cmd = OperatorCmd::SetClusterRole { master: false, remote_master: Some(leader) };
                (
                    format!(
                        "make {} a standby cluster of {} (stolonctl update role=standby)",
                        sc.pg_clusters[*cluster].name,
                        name(leader)
                    ),
                    sentinels_of(sc, *cluster)
                        .into_iter()
                        .map(|s| (s, StackMsg::Op(StackOp::Stolon(cmd.clone()))))
                        .collect(),
                )
            }
            ActionKind::ShedLoad { factor } => (
                format!("shed load: clients keep {:.0} %", factor * 100.0),
                to_clients(sc, |_| StackOp::ShedLoad(*factor)),
            ),
            ActionKind::MoveReads { region } => (
                format!("move reads to {}", sc.regions[*region].name),
                to_clients(sc, |own| {
                    let mut e = bouncers_in(sc, *region);
                    e.extend(own.iter().filter(|b| sc.nodes[**b as usize].region != *region));
                    StackOp::ReadEntries(e)
                }),
            ),
            ActionKind::MoveWrites { region } => (
                format!("move writes to {}", sc.regions[*region].name),
                to_clients(sc, |_| StackOp::WriteEntries(bouncers_in(sc, *region))),
            ),
            ActionKind::StolonctlUpdate { cluster, patch } => {
                let spec = crate::stack_config::cluster_spec(&sc.stolon_spec_after(*cluster, i));
                let cmd = OperatorCmd::SetSpec(spec);
                (
                    format!(
                        "stolonctl --cluster-name {} update --patch '{}'",
                        sc.pg_clusters[*cluster].name,
                        patch.to_json()
                    ),
                    sentinels_of(sc, *cluster)
                        .into_iter()
                        .map(|s| (s, StackMsg::Op(StackOp::Stolon(cmd.clone()))))
                        .collect(),
                )
            }
            ActionKind::Rebuild { node, upstream, method } => {
                let method = RebuildMethod::parse(method).expect("validated method");
                let bytes_per_s = copy_throughput(sc, world, *upstream, *node);
                (
                    format!("rebuild {} from {} with {}", name(*node), name(*upstream), method.as_str()),
                    vec![(
                        *node,
                        StackMsg::Op(StackOp::Pg(PgCommand::Rebuild { method, upstream: *upstream, bytes_per_s })),
                    )],
                )
            }
        };
        world.schedule_operator(OperatorAction { at: SimTime::from_duration(a.at), description, inject });
    }
}

fn sentinels_of(sc: &Scenario, cluster: usize) -> Vec<NodeId> {
    (0..sc.nodes.len())
        .filter(|&i| sc.nodes[i].stack == Some(StackRole::Sentinel { cluster }))
        .map(|i| i as NodeId)
        .collect()
}

/// An operator command for the sentinels of the cluster `node` belongs to.
fn to_sentinels(sc: &Scenario, node: NodeId, cmd: OperatorCmd) -> Vec<(NodeId, StackMsg)> {
    let cluster = sc.nodes[node as usize].pg.as_ref().expect("validated: a postgres node").cluster;
    sentinels_of(sc, cluster).into_iter().map(|s| (s, StackMsg::Op(StackOp::Stolon(cmd.clone())))).collect()
}

/// A command for every client region, given its own read entries.
fn to_clients(sc: &Scenario, op: impl Fn(&[NodeId]) -> StackOp) -> Vec<(NodeId, StackMsg)> {
    (0..sc.nodes.len())
        .filter_map(|i| match &sc.nodes[i].stack {
            Some(StackRole::Clients { read_entries, .. }) => Some((i as NodeId, StackMsg::Op(op(read_entries)))),
            _ => None,
        })
        .collect()
}

fn bouncers_in(sc: &Scenario, region: usize) -> Vec<NodeId> {
    (0..sc.nodes.len())
        .filter(|&i| sc.nodes[i].kind == NodeKind::Pgbouncer && sc.nodes[i].region == region)
        .map(|i| i as NodeId)
        .collect()
}

/// What a rebuild copies per second: the slowest of the path between the servers (a 10
/// Gbit/s NIC where the scenario sets no bandwidth), the source's disk reads and the target's
/// disk writes.
fn copy_throughput(sc: &Scenario, world: &World<StackNode>, source: NodeId, target: NodeId) -> u64 {
    let nic = 1_250_000_000;
    let path = world.net.path_bandwidth(source, target).unwrap_or(nic);
    path.min(sc.nodes[source as usize].disk.read_bytes_per_s)
        .min(sc.nodes[target as usize].disk.write_bytes_per_s)
        .max(1)
}

/// The factory for a world built from `sc` (its paths give the rebuild throughputs).
pub fn factory_for(sc: &Scenario, world: &World<StackNode>) -> Factory<StackNode> {
    factory(sc, copy_table(sc, world))
}

/// Rebuild throughput between every pair of PostgreSQL servers.
pub fn copy_table(sc: &Scenario, world: &World<StackNode>) -> Vec<std::collections::BTreeMap<NodeId, u64>> {
    let pg = nodes_of(sc, NodeKind::Postgres);
    (0..sc.nodes.len() as NodeId)
        .map(|t| {
            if !pg.contains(&t) {
                return Default::default();
            }
            pg.iter().filter(|&&s| s != t).map(|&s| (s, copy_throughput(sc, world, s, t))).collect()
        })
        .collect()
}

/// A world ready to run: trace header written, operator actions scheduled.
pub fn world(sc: &Scenario, seed: u64, detail: Detail) -> World<StackNode> {
    let mut world = World::new(sc, seed, detail);
    world.model_faults = Some(model_fault);
    world.metrics.tenants = sc.tenants.iter().map(|t| t.name.clone()).collect();
    operator_actions(sc, &mut world);
    world
}

/// The simulation itself, inside a madsim runtime (also what the determinism check reruns).
pub async fn simulate(sc: &Scenario, seed: u64, detail: Detail) -> (World<StackNode>, EngineStats) {
    let opts = RunOptions { seed: Some(seed), detail, ..RunOptions::default() };
    simulate_with(sc, seed, opts, &Guard::default()).await
}

async fn simulate_with(sc: &Scenario, seed: u64, opts: RunOptions, guard: &Guard) -> (World<StackNode>, EngineStats) {
    let mut world = world(sc, seed, opts.detail);
    if let Some(at) = opts.debug_panic_at {
        world.schedule_debug_panic(SimTime::from_duration(at));
    }
    let factory = factory_for(sc, &world);
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
