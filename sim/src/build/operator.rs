//! The scenario's operator actions (`[[action]]`), each turned into the commands it injects:
//! etcdctl, pg_ctl and stolonctl, and the client regions' traffic moves.

use models::NodeId;
use models::SimTime;
use models::etcd::EtcdMsg;
use models::pg::PgCommand;
use models::stack::{StackMsg, StackNode, StackOp};
use models::stolon::sentinel::OperatorCmd;
use scenarios::{ActionKind, NodeKind, Scenario, StackRole};

use super::network::copy_throughput;
use super::{nodes_of, stolon};
use crate::net::Network;
use crate::world::OperatorAction;

type Inject = Vec<(NodeId, StackMsg)>;

pub(super) fn actions(sc: &Scenario, net: &Network) -> Vec<OperatorAction<StackNode>> {
    sc.actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let (description, inject) = action(sc, net, i, &a.kind);
            OperatorAction { at: SimTime::from_duration(a.at), description, inject }
        })
        .collect()
}

/// What action `i` says it does, and what it injects.
fn action(sc: &Scenario, net: &Network, i: usize, kind: &ActionKind) -> (String, Inject) {
    let name = |n: u32| sc.nodes[n as usize].name.clone();
    let accepting = |loss: bool| if loss { " (accepting data loss)" } else { "" };
    match kind {
        ActionKind::MoveLeader { to } => (
            format!("etcdctl move-leader {}", name(*to)),
            nodes_of(sc, NodeKind::Etcd)
                .into_iter()
                .map(|m| (m, StackMsg::Etcd(EtcdMsg::MoveLeader { to: *to })))
                .collect(),
        ),
        ActionKind::Promote { node, accept_data_loss } => (
            format!("pg_ctl promote on {}{}", name(*node), accepting(*accept_data_loss)),
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
            to_sentinels_of_node(sc, *node, OperatorCmd::FailKeeper { keeper: name(*node) }),
        ),
        ActionKind::ForceMaster { node, accept_data_loss } => {
            let cmd = OperatorCmd::ForceMaster { keeper: name(*node), accept_data_loss: *accept_data_loss };
            (
                format!("force {} to master{}", name(*node), accepting(*accept_data_loss)),
                to_sentinels_of_node(sc, *node, cmd),
            )
        }
        ActionKind::PromoteRegion { cluster, accept_data_loss } => promote_region(sc, *cluster, *accept_data_loss),
        ActionKind::DemoteRegion { cluster, follow } => {
            let leader = sc.cluster_leader(*follow);
            let cmd = OperatorCmd::SetClusterRole { master: false, remote_master: Some(leader) };
            (
                format!(
                    "make {} a standby cluster of {} (stolonctl update role=standby)",
                    sc.pg_clusters[*cluster].name,
                    name(leader)
                ),
                to_sentinels(sc, *cluster, &cmd),
            )
        }
        ActionKind::ShedLoad { factor } => {
            (format!("shed load: clients keep {:.0} %", factor * 100.0), to_clients(sc, |_| StackOp::ShedLoad(*factor)))
        }
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
            let cmd = OperatorCmd::SetSpec(stolon::cluster_spec(&sc.stolon_spec_after(*cluster, i)));
            (
                format!(
                    "stolonctl --cluster-name {} update --patch '{}'",
                    sc.pg_clusters[*cluster].name,
                    patch.to_json()
                ),
                to_sentinels(sc, *cluster, &cmd),
            )
        }
        ActionKind::Rebuild { node, upstream, method } => {
            let method = *method;
            let bytes_per_s = copy_throughput(sc, net, *upstream, *node);
            (
                format!("rebuild {} from {} with {}", name(*node), name(*upstream), method.as_str()),
                vec![(
                    *node,
                    StackMsg::Op(StackOp::Pg(PgCommand::Rebuild { method, upstream: *upstream, bytes_per_s })),
                )],
            )
        }
    }
}

/// A standby cluster becomes a master cluster, and the clients write to its region.
fn promote_region(sc: &Scenario, cluster: usize, accept_data_loss: bool) -> (String, Inject) {
    let leader = sc.cluster_leader(cluster);
    let mut inject = Vec::new();
    if accept_data_loss {
        // First recorded: the standby leader will be promoted knowing it lacks what had not
        // crossed; then the role change that promotes it.
        let keeper = sc.nodes[leader as usize].name.clone();
        inject.extend(to_sentinels(sc, cluster, &OperatorCmd::ForceMaster { keeper, accept_data_loss: true }));
    }
    inject.extend(to_sentinels(sc, cluster, &OperatorCmd::SetClusterRole { master: true, remote_master: None }));
    let region = sc.nodes[leader as usize].region;
    inject.extend(to_clients(sc, |_| StackOp::WriteEntries(bouncers_in(sc, region))));
    let loss = if accept_data_loss { ", accepting data loss" } else { "" };
    let description = format!(
        "promote standby cluster {} (stolonctl update role=master{loss}); writes to its region",
        sc.pg_clusters[cluster].name
    );
    (description, inject)
}

/// An operator command for every sentinel of `cluster`.
fn to_sentinels(sc: &Scenario, cluster: usize, cmd: &OperatorCmd) -> Inject {
    (0..sc.nodes.len())
        .filter(|&i| sc.nodes[i].stack == Some(StackRole::Sentinel { cluster }))
        .map(|i| (i as NodeId, StackMsg::Op(StackOp::Stolon(cmd.clone()))))
        .collect()
}

/// An operator command for the sentinels of the cluster `node` belongs to.
fn to_sentinels_of_node(sc: &Scenario, node: NodeId, cmd: OperatorCmd) -> Inject {
    let cluster = sc.nodes[node as usize].pg.as_ref().expect("validated: a postgres node").cluster;
    to_sentinels(sc, cluster, &cmd)
}

/// A command for every client region, given its own read entries.
fn to_clients(sc: &Scenario, op: impl Fn(&[NodeId]) -> StackOp) -> Inject {
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
