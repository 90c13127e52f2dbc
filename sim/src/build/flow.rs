//! The request path in front of PostgreSQL: HAProxy (`[haproxy]`), PgBouncer (`[pgbouncer]`)
//! and the client regions that carry the tenants' load (`[workload]`, `[[tenant]]`).

use models::flow::balancer::{BackendConfig, HaproxyConfig};
use models::flow::bouncer::{BouncerConfig, VegasConfig};
use models::flow::client::{ClientConfig, RetryPolicy, Spike, TenantLoad};
use models::haproxy::CheckConfig;
use models::pgbouncer::PoolConfig;
use models::{NodeId, SimTime};
use scenarios::{RetrySpec, Scenario};

/// An HAProxy with a `write` and a `read` backend.
pub(super) fn haproxy(sc: &Scenario, write: &[NodeId], read: &[NodeId]) -> HaproxyConfig {
    let h = &sc.haproxy;
    let mut cfg = HaproxyConfig::new(write, read);
    cfg.write = backend(sc, "write", write);
    cfg.read = backend(sc, "read", read);
    cfg.timeout_connect = h.timeout_connect;
    cfg.timeout_server = h.timeout_server;
    cfg.timeout_queue = Some(h.timeout_queue);
    cfg
}

fn backend(sc: &Scenario, name: &str, servers: &[NodeId]) -> BackendConfig {
    let h = &sc.haproxy;
    let mut b = BackendConfig::new(name, servers);
    b.balance = h.balance;
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
}

/// A PgBouncer in front of `haproxy`.
pub(super) fn bouncer(sc: &Scenario, haproxy: NodeId) -> BouncerConfig {
    let b = &sc.pgbouncer;
    let mut cfg = BouncerConfig::new(haproxy);
    cfg.processes = b.processes;
    cfg.cpu_per_query_us = b.cpu_per_query.as_secs_f64() * 1e6;
    cfg.tick = sc.workload.tick.min(std::time::Duration::from_millis(10));
    cfg.pool = PoolConfig {
        pool_mode: b.pool_mode,
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

/// A client region carrying `share` of every tenant's load.
pub(super) fn clients(sc: &Scenario, share: f64, read_entries: &[NodeId], write_entries: &[NodeId]) -> ClientConfig {
    let mut c = ClientConfig::new(tenants(sc, share), read_entries.to_vec(), write_entries.to_vec());
    c.tick = sc.workload.tick;
    c.start_after = sc.workload.start_after;
    c
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
