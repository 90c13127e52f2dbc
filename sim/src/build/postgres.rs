//! PostgreSQL servers: each one's configuration from its cluster and `[postgres]`, and the
//! faults that act inside a server (apply-slow, walreceiver-pause).

use models::pg::{Capacity, PgCommand, PgConfig, Phase, SyncLevel, SyncStandbyNames, Workload};
use models::stack::{StackMsg, StackOp};
use models::{NodeId, SimTime};
use scenarios::{FaultKind, PgNodeSpec, Scenario};

/// The configuration of the server whose `[node.postgres]` is `spec`.
pub(super) fn server(sc: &Scenario, spec: &PgNodeSpec) -> PgConfig {
    let c = &sc.pg_clusters[spec.cluster];
    let p = &sc.postgres;
    // A standby cluster (another region) shares its primary cluster's WAL history: same first
    // timeline, and standby names known across clusters.
    let root = c.standby_of.unwrap_or(spec.cluster);
    let members: Vec<usize> = (0..sc.nodes.len()).filter(|&j| sc.nodes[j].pg.is_some()).collect();
    let primary = sc.cluster_leader(root) as usize;
    PgConfig {
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
        workload: workload(sc, spec.cluster),
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
    }
}

/// The load a cluster's primary serves (`[[pg_cluster]]` and its phases).
fn workload(sc: &Scenario, cluster: usize) -> Workload {
    let c = &sc.pg_clusters[cluster];
    let at = SimTime::from_duration;
    Workload {
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
    }
}

/// The messages that start or end a fault acting inside a PostgreSQL server.
pub(super) fn model_fault(kind: &FaultKind, start: bool) -> Vec<(NodeId, StackMsg)> {
    match kind {
        FaultKind::ApplySlow { node, factor } => {
            let factor_permille = if start { (factor * 1000.0).round() as u32 } else { 1000 };
            vec![(*node, StackMsg::Op(StackOp::Pg(PgCommand::ApplyFactor { factor_permille })))]
        }
        FaultKind::WalReceiverPause { node } => {
            vec![(*node, StackMsg::Op(StackOp::Pg(PgCommand::PauseReceiver { paused: start })))]
        }
        _ => Vec::new(),
    }
}
