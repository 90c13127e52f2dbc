//! The stack's components configured from a scenario: keepers on the PostgreSQL servers of
//! Stolon-managed clusters, sentinels, proxies, HAProxy, PgBouncer and client regions. One
//! entry per node (None for nodes of other kinds), so the factory just clones.

use std::collections::BTreeMap;

use models::NodeId;
use models::SimTime;
use models::flow::balancer::{BackendConfig, HaproxyConfig};
use models::flow::bouncer::{BouncerConfig, VegasConfig};
use models::flow::client::{ClientConfig, RetryPolicy, Spike, TenantLoad};
use models::haproxy::{Balance, CheckConfig};
use models::pgbouncer::{PoolConfig, PoolMode};
use models::stolon::proxy::ProxyConfig;
use models::stolon::sentinel::SentinelConfig;
use models::stolon::{ClusterRole, ClusterSpec, KeeperConfig};
use scenarios::{NodeKind, RetrySpec, Scenario, StackRole};

pub struct StackConfigs {
    pub keepers: Vec<Option<KeeperConfig>>,
    pub sentinels: Vec<Option<SentinelConfig>>,
    pub proxies: Vec<Option<ProxyConfig>>,
    pub haproxies: Vec<Option<HaproxyConfig>>,
    pub bouncers: Vec<Option<BouncerConfig>>,
    pub clients: Vec<Option<ClientConfig>>,
    pub copy_bytes_per_s: Vec<BTreeMap<NodeId, u64>>,
}

/// Clusters that sentinels manage.
pub fn managed_clusters(sc: &Scenario) -> Vec<usize> {
    let mut out: Vec<usize> = sc
        .nodes
        .iter()
        .filter_map(|n| match n.stack {
            Some(StackRole::Sentinel { cluster }) => Some(cluster),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The servers of a cluster, in declared order.
fn members(sc: &Scenario, cluster: usize) -> Vec<NodeId> {
    (0..sc.nodes.len())
        .filter(|&i| sc.nodes[i].pg.as_ref().is_some_and(|p| p.cluster == cluster))
        .map(|i| i as NodeId)
        .collect()
}

/// The spec keys the sentinels decide with, from `[stolon]` (or the spec a stolonctl-update
/// leaves in force).
pub fn cluster_spec(s: &scenarios::StolonSpec) -> ClusterSpec {
    ClusterSpec {
        fail_interval: s.fail_interval,
        synchronous_replication: s.synchronous_replication,
        min_synchronous_standbys: s.min_synchronous_standbys as usize,
        max_synchronous_standbys: s.max_synchronous_standbys as usize,
        max_standby_lag: s.max_standby_lag_bytes,
    }
}

fn tenants(sc: &Scenario, share: f64) -> Vec<TenantLoad> {
    let at = SimTime::from_duration;
    sc.tenants
        .iter()
        .map(|t| TenantLoad {
            name: t.name.clone(),
            read_rps: t.read_rps * share,
            write_rps: t.write_rps * share,
            diurnal_amplitude: t.diurnal_amplitude,
            peak_hour: t.peak_hour,
            spikes: t.spikes.iter().map(|s| Spike { from: at(s.at), until: at(s.until), factor: s.factor }).collect(),
            timeout: t.timeout,
            retry: match t.retry {
                RetrySpec::None => RetryPolicy::None,
                RetrySpec::Immediate { max_retries } => RetryPolicy::Immediate { max_retries },
                RetrySpec::Backoff { base, cap, max_retries, jitter } => {
                    RetryPolicy::Backoff { base, cap, max_retries, jitter }
                }
            },
            // The users behind this region's share of the load.
            users: ((t.users as f64 * share).round() as u64).max(1),
            read_after_write_window: t.read_after_write_window,
        })
        .collect()
}

fn haproxy(sc: &Scenario, write: &[NodeId], read: &[NodeId]) -> HaproxyConfig {
    let h = &sc.haproxy;
    let backend = |name: &str, servers: &[NodeId]| {
        let mut b = BackendConfig::new(name, servers);
        b.balance = match h.balance.as_str() {
            "leastconn" => Balance::LeastConn,
            "first" => Balance::First,
            _ => Balance::RoundRobin,
        };
        b.check = CheckConfig {
            inter: h.inter,
            fastinter: h.fastinter,
            downinter: h.downinter,
            rise: h.rise,
            fall: h.fall,
            timeout_check: h.timeout_check,
            timeout_connect: h.timeout_connect,
        };
        for s in &mut b.servers {
            s.maxconn = h.maxconn;
            s.maxqueue = h.maxqueue;
        }
        b.shutdown_sessions = h.shutdown_sessions;
        b
    };
    let mut cfg = HaproxyConfig::new(write, read);
    cfg.write = backend("write", write);
    cfg.read = backend("read", read);
    cfg.timeout_connect = h.timeout_connect;
    cfg.timeout_server = h.timeout_server;
    cfg.timeout_queue = Some(h.timeout_queue);
    cfg
}

fn bouncer(sc: &Scenario, haproxy: NodeId) -> BouncerConfig {
    let b = &sc.pgbouncer;
    let mut cfg = BouncerConfig::new(haproxy);
    cfg.processes = b.processes;
    cfg.cpu_per_query_us = b.cpu_per_query.as_secs_f64() * 1e6;
    cfg.tick = sc.workload.tick.min(std::time::Duration::from_millis(10));
    cfg.pool = PoolConfig {
        pool_mode: match b.pool_mode.as_str() {
            "transaction" => PoolMode::Transaction,
            "statement" => PoolMode::Statement,
            _ => PoolMode::Session,
        },
        default_pool_size: b.default_pool_size,
        min_pool_size: b.min_pool_size,
        reserve_pool_size: b.reserve_pool_size,
        reserve_pool_timeout: b.reserve_pool_timeout,
        max_db_connections: b.max_db_connections,
        max_client_conn: b.max_client_conn,
        query_wait_timeout: b.query_wait_timeout,
        server_connect_timeout: b.server_connect_timeout,
        server_login_retry: b.server_login_retry,
        ..PoolConfig::default()
    };
    cfg.tenant_connection_limit = b.tenant_max_conn;
    cfg.vegas = b.tenant_adaptive_limit.then(VegasConfig::default);
    cfg
}

impl StackConfigs {
    pub fn new(sc: &Scenario, copy_bytes_per_s: Vec<BTreeMap<NodeId, u64>>) -> StackConfigs {
        let n = sc.nodes.len();
        let etcd: Vec<NodeId> = (0..n).filter(|&i| sc.nodes[i].kind == NodeKind::Etcd).map(|i| i as NodeId).collect();
        let managed = managed_clusters(sc);
        let st = &sc.stolon;
        let pg_nodes = |c: usize| -> BTreeMap<String, NodeId> {
            members(sc, c).into_iter().map(|i| (sc.nodes[i as usize].name.clone(), i)).collect()
        };
        let mut out = StackConfigs {
            keepers: vec![None; n],
            sentinels: vec![None; n],
            proxies: vec![None; n],
            haproxies: vec![None; n],
            bouncers: vec![None; n],
            clients: vec![None; n],
            copy_bytes_per_s,
        };
        for (i, node) in sc.nodes.iter().enumerate() {
            let name = &node.name;
            if let Some(p) = &node.pg
                && managed.contains(&p.cluster)
            {
                let cluster = &sc.pg_clusters[p.cluster].name;
                let mut k = KeeperConfig::new(cluster, name, etcd.clone(), pg_nodes(p.cluster));
                k.sleep_interval = st.sleep_interval;
                k.request_timeout = st.request_timeout;
                k.can_be_master = p.can_be_master;
                k.can_be_synchronous_replica = p.can_be_synchronous_replica;
                k.use_pg_rewind = st.use_pgrewind;
                k.planted_bug = sc.sim.planted_bug;
                out.keepers[i] = Some(k);
            }
            match &node.stack {
                Some(StackRole::Sentinel { cluster }) => {
                    let c = &sc.pg_clusters[*cluster];
                    let keepers = members(sc, *cluster).iter().map(|&m| sc.nodes[m as usize].name.clone()).collect();
                    let master = sc.nodes[sc.cluster_leader(*cluster) as usize].name.clone();
                    let mut s = SentinelConfig::new(&c.name, etcd.clone(), keepers, master);
                    s.planted_bug = sc.sim.planted_bug;
                    s.proxies = sc
                        .nodes
                        .iter()
                        .filter(|n| matches!(n.stack, Some(StackRole::Proxy { cluster: pc }) if pc == *cluster))
                        .map(|n| n.name.clone())
                        .collect();
                    s.initial_role = match c.standby_of {
                        None => ClusterRole::Master,
                        Some(m) => ClusterRole::Standby { remote_master: sc.cluster_leader(m) },
                    };
                    s.spec = cluster_spec(&sc.stolon);
                    s.sleep_interval = st.sleep_interval;
                    s.request_timeout = st.request_timeout;
                    s.election_ttl_s = st.sentinel_session_ttl_s;
                    out.sentinels[i] = Some(s);
                }
                Some(StackRole::Proxy { cluster }) => {
                    let mut p =
                        ProxyConfig::new(&sc.pg_clusters[*cluster].name, name, etcd.clone(), pg_nodes(*cluster));
                    p.proxy_check_interval = st.proxy_check_interval;
                    p.proxy_timeout = st.proxy_timeout;
                    p.request_timeout = st.request_timeout;
                    out.proxies[i] = Some(p);
                }
                Some(StackRole::Haproxy { write, read }) => out.haproxies[i] = Some(haproxy(sc, write, read)),
                Some(StackRole::Pgbouncer { haproxy }) => {
                    out.bouncers[i] = Some(bouncer(sc, *haproxy));
                }
                Some(StackRole::Clients { share, read_entries, write_entries }) => {
                    let mut c = ClientConfig::new(tenants(sc, *share), read_entries.clone(), write_entries.clone());
                    c.tick = sc.workload.tick;
                    c.start_after = sc.workload.start_after;
                    out.clients[i] = Some(c);
                }
                None => {}
            }
        }
        out
    }
}
