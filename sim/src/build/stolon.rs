//! Stolon: a keeper beside each PostgreSQL server of a cluster that sentinels manage, the
//! sentinels, and the stolon-proxies; all from `[stolon]`.

use std::collections::BTreeMap;

use models::NodeId;
use models::stolon::proxy::ProxyConfig;
use models::stolon::sentinel::SentinelConfig;
use models::stolon::{ClusterRole, ClusterSpec, KeeperConfig};
use scenarios::{PgNodeSpec, Scenario, StackRole, StolonSpec};

/// Whether sentinels manage `cluster` (its servers then run keepers).
pub(super) fn is_managed(sc: &Scenario, cluster: usize) -> bool {
    sc.nodes.iter().any(|n| n.stack == Some(StackRole::Sentinel { cluster }))
}

/// The servers of a cluster, in declared order.
fn members(sc: &Scenario, cluster: usize) -> Vec<NodeId> {
    (0..sc.nodes.len())
        .filter(|&i| sc.nodes[i].pg.as_ref().is_some_and(|p| p.cluster == cluster))
        .map(|i| i as NodeId)
        .collect()
}

/// Keeper name -> its server's node, for a cluster.
fn pg_nodes(sc: &Scenario, cluster: usize) -> BTreeMap<String, NodeId> {
    members(sc, cluster).into_iter().map(|i| (sc.nodes[i as usize].name.clone(), i)).collect()
}

/// The spec keys the sentinels decide with, from `[stolon]` (or the spec a stolonctl-update
/// leaves in force).
pub(super) fn cluster_spec(s: &StolonSpec) -> ClusterSpec {
    ClusterSpec {
        fail_interval: s.fail_interval,
        synchronous_replication: s.synchronous_replication,
        min_synchronous_standbys: s.min_synchronous_standbys as usize,
        max_synchronous_standbys: s.max_synchronous_standbys as usize,
        max_standby_lag: s.max_standby_lag_bytes,
    }
}

/// The keeper of server `name` (whose `[node.postgres]` is `spec`).
pub(super) fn keeper(sc: &Scenario, etcd: &[NodeId], name: &str, spec: &PgNodeSpec) -> KeeperConfig {
    let st = &sc.stolon;
    let cluster = &sc.pg_clusters[spec.cluster].name;
    let mut k = KeeperConfig::new(cluster, name, etcd.to_vec(), pg_nodes(sc, spec.cluster));
    k.sleep_interval = st.sleep_interval;
    k.request_timeout = st.request_timeout;
    k.can_be_master = spec.can_be_master;
    k.can_be_synchronous_replica = spec.can_be_synchronous_replica;
    k.use_pg_rewind = st.use_pgrewind;
    k.planted_bug = sc.sim.planted_bug;
    k
}

/// A sentinel of `cluster`.
pub(super) fn sentinel(sc: &Scenario, etcd: &[NodeId], cluster: usize) -> SentinelConfig {
    let st = &sc.stolon;
    let c = &sc.pg_clusters[cluster];
    let keepers = members(sc, cluster).iter().map(|&m| sc.nodes[m as usize].name.clone()).collect();
    let master = sc.nodes[sc.cluster_leader(cluster) as usize].name.clone();
    let mut s = SentinelConfig::new(&c.name, etcd.to_vec(), keepers, master);
    s.planted_bug = sc.sim.planted_bug;
    s.proxies =
        sc.nodes.iter().filter(|n| n.stack == Some(StackRole::Proxy { cluster })).map(|n| n.name.clone()).collect();
    s.initial_role = match c.standby_of {
        None => ClusterRole::Master,
        Some(m) => ClusterRole::Standby { remote_master: sc.cluster_leader(m) },
    };
    s.spec = cluster_spec(st);
    s.sleep_interval = st.sleep_interval;
    s.request_timeout = st.request_timeout;
    s.election_ttl_s = st.sentinel_session_ttl_s;
    s
}

/// The stolon-proxy `name` of `cluster`.
pub(super) fn proxy(sc: &Scenario, etcd: &[NodeId], cluster: usize, name: &str) -> ProxyConfig {
    let st = &sc.stolon;
    let mut p = ProxyConfig::new(&sc.pg_clusters[cluster].name, name, etcd.to_vec(), pg_nodes(sc, cluster));
    p.proxy_check_interval = st.proxy_check_interval;
    p.proxy_timeout = st.proxy_timeout;
    p.request_timeout = st.request_timeout;
    p
}
