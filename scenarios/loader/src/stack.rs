//! The HA stack's sections: `[stolon]` (Stolon's cluster spec, camelCase keys and Go durations,
//! with its defaults), `[haproxy]` (haproxy.cfg names), `[pgbouncer]` (pgbouncer.ini names),
//! `[workload]` and `[[tenant]]` (the client load), and the per-node tables that place
//! sentinels, proxies, HAProxy, PgBouncer and client regions.

use std::time::Duration;

use serde::Deserialize;

use crate::bounds::{Bounds, DurBounds, days, hours, ms, secs, us};
use crate::diag::Diagnostic;
use crate::model::NodeIdx;
use crate::raw::{Dur, S};

type Res<T> = Result<T, Diagnostic>;

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStolon {
    pub sleep_interval: Option<S<Dur>>,
    pub request_timeout: Option<S<Dur>>,
    pub fail_interval: Option<S<Dur>>,
    pub proxy_check_interval: Option<S<Dur>>,
    pub proxy_timeout: Option<S<Dur>>,
    pub synchronous_replication: Option<bool>,
    pub min_synchronous_standbys: Option<S<u32>>,
    pub max_synchronous_standbys: Option<S<u32>>,
    pub max_standby_lag: Option<S<u64>>,
    pub use_pgrewind: Option<bool>,
    /// The sentinels' etcd session TTL (not a cluster-spec key: a sentinel flag in Stolon).
    pub sentinel_session_ttl: Option<S<Dur>>,
}

/// The allowed range of every setting of this file, next to the fields they check (see
/// `crate::bounds`). Intervals that drive periodic work are at least 1 ms; timeouts at most a day.
pub mod range {
    use super::*;
    pub const SLEEP_INTERVAL: DurBounds = DurBounds::new("sleepInterval", ms(1), hours(1));
    pub const REQUEST_TIMEOUT: DurBounds = DurBounds::new("requestTimeout", ms(1), days(1));
    pub const FAIL_INTERVAL: DurBounds = DurBounds::new("failInterval", ms(1), days(1));
    pub const PROXY_CHECK_INTERVAL: DurBounds = DurBounds::new("proxyCheckInterval", ms(1), hours(1));
    pub const PROXY_TIMEOUT: DurBounds = DurBounds::new("proxyTimeout", ms(1), days(1));
    pub const MIN_SYNCHRONOUS_STANDBYS: Bounds<u32> = Bounds::new("minSynchronousStandbys", 0, 64);
    pub const MAX_SYNCHRONOUS_STANDBYS: Bounds<u32> = Bounds::new("maxSynchronousStandbys", 1, 64);
    pub const SENTINEL_SESSION_TTL: DurBounds = DurBounds::new("sentinelSessionTtl", secs(1), days(1));
    // [haproxy]
    pub const INTER: DurBounds = DurBounds::new("inter", ms(1), hours(1));
    pub const FASTINTER: DurBounds = DurBounds::new("fastinter", ms(1), hours(1));
    pub const DOWNINTER: DurBounds = DurBounds::new("downinter", ms(1), hours(1));
    pub const RISE: Bounds<u32> = Bounds::new("rise", 1, 1000);
    pub const FALL: Bounds<u32> = Bounds::new("fall", 1, 1000);
    pub const TIMEOUT_CHECK: DurBounds = DurBounds::new("timeout_check", ms(1), days(1));
    pub const TIMEOUT_CONNECT: DurBounds = DurBounds::new("timeout_connect", ms(1), days(1));
    pub const TIMEOUT_CLIENT: DurBounds = DurBounds::new("timeout_client", ms(1), days(1));
    pub const TIMEOUT_SERVER: DurBounds = DurBounds::new("timeout_server", ms(1), days(1));
    pub const TIMEOUT_QUEUE: DurBounds = DurBounds::new("timeout_queue", ms(1), days(1));
    pub const MAXCONN: Bounds<u32> = Bounds::new("maxconn", 0, 10_000_000);
    pub const MAXQUEUE: Bounds<u32> = Bounds::new("maxqueue", 0, 10_000_000);
    // [pgbouncer]
    pub const PROCESSES: Bounds<u32> = Bounds::new("processes", 1, 256);
    pub const CPU_PER_QUERY: DurBounds = DurBounds::new("cpu_per_query", us(1), secs(10));
    pub const MAX_CLIENT_CONN: Bounds<u32> = Bounds::new("max_client_conn", 1, 10_000_000);
    pub const DEFAULT_POOL_SIZE: Bounds<u32> = Bounds::new("default_pool_size", 1, 100_000);
    pub const MIN_POOL_SIZE: Bounds<u32> = Bounds::new("min_pool_size", 0, 100_000);
    pub const RESERVE_POOL_SIZE: Bounds<u32> = Bounds::new("reserve_pool_size", 0, 100_000);
    pub const RESERVE_POOL_TIMEOUT: DurBounds = DurBounds::new("reserve_pool_timeout", ms(1), days(1));
    pub const MAX_DB_CONNECTIONS: Bounds<u32> = Bounds::new("max_db_connections", 0, 1_000_000);
    pub const QUERY_WAIT_TIMEOUT: DurBounds = DurBounds::new("query_wait_timeout", ms(1), days(1));
    pub const SERVER_CONNECT_TIMEOUT: DurBounds = DurBounds::new("server_connect_timeout", ms(1), days(1));
    pub const SERVER_LOGIN_RETRY: DurBounds = DurBounds::new("server_login_retry", ms(1), days(1));
    pub const TENANT_MAX_CONN: Bounds<u32> = Bounds::new("tenant_max_conn", 0, 10_000_000);
    // [workload]
    pub const TICK: DurBounds = DurBounds::new("tick", ms(1), secs(60));
    pub const START_AFTER: DurBounds = DurBounds::new("start_after", ms(0), days(7));
    // [[tenant]]: rates up to 10 million a second and spikes up to 10,000 times keep every
    // request counter far from u64's limit over the longest scenario.
    pub const READ_RPS: Bounds<f64> = Bounds::new("read_rps", 0.0, 1e7);
    pub const WRITE_RPS: Bounds<f64> = Bounds::new("write_rps", 0.0, 1e7);
    pub const DIURNAL_AMPLITUDE: Bounds<f64> = Bounds::new("diurnal_amplitude", 0.0, 1.0);
    pub const PEAK_HOUR: Bounds<f64> = Bounds::new("peak_hour", 0.0, 23.999);
    pub const USERS: Bounds<u64> = Bounds::new("users", 1, 10_000_000_000);
    pub const READ_AFTER_WRITE_WINDOW: DurBounds = DurBounds::new("read_after_write_window", ms(0), days(1));
    pub const TIMEOUT: DurBounds = DurBounds::new("timeout", ms(1), days(1));
    pub const MAX_RETRIES: Bounds<u32> = Bounds::new("max_retries", 0, 100);
    pub const BACKOFF_BASE: DurBounds = DurBounds::new("backoff_base", ms(1), hours(1));
    pub const BACKOFF_CAP: DurBounds = DurBounds::new("backoff_cap", ms(1), days(1));
    pub const SPIKE_AT: DurBounds = DurBounds::new("a spike's `at`", ms(0), days(7));
    pub const SPIKE_FOR: DurBounds = DurBounds::new("a spike's `for`", ms(1), days(7));
    pub const SPIKE_FACTOR: Bounds<f64> = Bounds::new("factor", 0.0, 10_000.0);
    /// All tenants' peak load together (`TenantSpec::peak_rps`), requests per second: over a
    /// week that is 6e14 requests, far from any counter's limit, however many tenants there are.
    pub const PEAK_RPS_TOTAL_MAX: f64 = 1e9;
}

#[derive(Clone, Debug, PartialEq)]
pub struct StolonSpec {
    pub sleep_interval: Duration,
    pub request_timeout: Duration,
    pub fail_interval: Duration,
    pub proxy_check_interval: Duration,
    pub proxy_timeout: Duration,
    pub synchronous_replication: bool,
    pub min_synchronous_standbys: u32,
    pub max_synchronous_standbys: u32,
    pub max_standby_lag_bytes: u64,
    pub use_pgrewind: bool,
    pub sentinel_session_ttl_s: u64,
}

impl Default for StolonSpec {
    /// Stolon v0.17's defaults, which live with the Stolon model.
    fn default() -> Self {
        use models::stolon::defaults;
        let spec = models::stolon::ClusterSpec::default();
        StolonSpec {
            sleep_interval: defaults::SLEEP_INTERVAL,
            request_timeout: defaults::REQUEST_TIMEOUT,
            fail_interval: spec.fail_interval,
            proxy_check_interval: defaults::PROXY_CHECK_INTERVAL,
            proxy_timeout: defaults::PROXY_TIMEOUT,
            synchronous_replication: spec.synchronous_replication,
            min_synchronous_standbys: spec.min_synchronous_standbys as u32,
            max_synchronous_standbys: spec.max_synchronous_standbys as u32,
            max_standby_lag_bytes: spec.max_standby_lag,
            use_pgrewind: defaults::USE_PGREWIND,
            sentinel_session_ttl_s: defaults::SENTINEL_SESSION_TTL_S,
        }
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawHaproxy {
    pub balance: Option<S<String>>,
    pub inter: Option<S<Dur>>,
    pub fastinter: Option<S<Dur>>,
    pub downinter: Option<S<Dur>>,
    pub rise: Option<S<u32>>,
    pub fall: Option<S<u32>>,
    pub timeout_check: Option<S<Dur>>,
    pub timeout_connect: Option<S<Dur>>,
    pub timeout_client: Option<S<Dur>>,
    pub timeout_server: Option<S<Dur>>,
    pub timeout_queue: Option<S<Dur>>,
    pub maxconn: Option<S<u32>>,
    pub maxqueue: Option<S<u32>>,
    /// `on-marked-down shutdown-sessions`.
    pub on_marked_down: Option<S<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HaproxySpec {
    pub balance: models::haproxy::Balance,
    pub inter: Duration,
    pub fastinter: Option<Duration>,
    pub downinter: Option<Duration>,
    pub rise: u32,
    pub fall: u32,
    pub timeout_check: Option<Duration>,
    pub timeout_connect: Duration,
    pub timeout_client: Duration,
    pub timeout_server: Duration,
    pub timeout_queue: Duration,
    /// Per server; 0 = no limit.
    pub maxconn: u32,
    pub maxqueue: u32,
    pub shutdown_sessions: bool,
}

impl Default for HaproxySpec {
    /// HAProxy's defaults, with the timeouts a PostgreSQL front end typically sets.
    fn default() -> Self {
        // The check settings' defaults live with the check model.
        let check = models::haproxy::CheckConfig::default();
        HaproxySpec {
            balance: models::haproxy::Balance::default(),
            inter: check.inter,
            fastinter: check.fastinter,
            downinter: check.downinter,
            rise: check.rise,
            fall: check.fall,
            timeout_check: check.timeout_check,
            timeout_connect: check.timeout_connect,
            timeout_client: Duration::from_secs(30 * 60),
            timeout_server: Duration::from_secs(30 * 60),
            timeout_queue: Duration::from_secs(5),
            maxconn: 0,
            maxqueue: 0,
            shutdown_sessions: false,
        }
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPgbouncer {
    /// Processes sharing the port with `so_reuseport = 1`.
    pub processes: Option<S<u32>>,
    /// CPU time one process spends on a query (parse, route, copy).
    pub cpu_per_query: Option<S<Dur>>,
    pub pool_mode: Option<S<String>>,
    pub max_client_conn: Option<S<u32>>,
    pub default_pool_size: Option<S<u32>>,
    pub min_pool_size: Option<S<u32>>,
    pub reserve_pool_size: Option<S<u32>>,
    pub reserve_pool_timeout: Option<S<Dur>>,
    pub max_db_connections: Option<S<u32>>,
    pub query_wait_timeout: Option<S<Dur>>,
    pub server_connect_timeout: Option<S<Dur>>,
    pub server_login_retry: Option<S<Dur>>,
    /// Connections one tenant may hold (0 = no limit).
    pub tenant_max_conn: Option<S<u32>>,
    /// Shrink a tenant's limit when its queueing delay grows (TCP Vegas style).
    pub tenant_adaptive_limit: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PgbouncerSpec {
    pub processes: u32,
    pub cpu_per_query: Duration,
    pub pool_mode: models::pgbouncer::PoolMode,
    pub max_client_conn: u32,
    pub default_pool_size: u32,
    pub min_pool_size: u32,
    pub reserve_pool_size: u32,
    pub reserve_pool_timeout: Duration,
    pub max_db_connections: u32,
    pub query_wait_timeout: Duration,
    pub server_connect_timeout: Duration,
    pub server_login_retry: Duration,
    pub tenant_max_conn: u32,
    pub tenant_adaptive_limit: bool,
}

impl Default for PgbouncerSpec {
    /// pgbouncer.ini's defaults (one process unless `processes` is set).
    fn default() -> Self {
        PgbouncerSpec {
            processes: 1,
            cpu_per_query: Duration::from_micros(20),
            pool_mode: models::pgbouncer::PoolMode::default(),
            max_client_conn: 100,
            default_pool_size: 20,
            min_pool_size: 0,
            reserve_pool_size: 0,
            reserve_pool_timeout: Duration::from_secs(5),
            max_db_connections: 0,
            query_wait_timeout: Duration::from_secs(120),
            server_connect_timeout: Duration::from_secs(15),
            server_login_retry: Duration::from_secs(15),
            tenant_max_conn: 0,
            tenant_adaptive_limit: false,
        }
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// How often clients, PgBouncer and HAProxy advance the bulk load.
    pub tick: Option<S<Dur>>,
    /// The availability objective seconds and the error budget are measured against.
    pub slo: Option<S<f64>>,
    /// When clients start sending (the simulated stack starts cold: etcd elects, sentinels
    /// elect and write the cluster data, proxies check in).
    pub start_after: Option<S<Dur>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSpec {
    pub tick: Duration,
    pub slo: f64,
    pub start_after: Duration,
}

impl Default for WorkloadSpec {
    /// Clients start once Stolon's first cycle has run with its default intervals: a sentinel
    /// leader, cluster data, proxies checked in, synchronous standbys set.
    fn default() -> Self {
        WorkloadSpec { tick: Duration::from_millis(100), slo: 0.99999, start_after: Duration::from_secs(30) }
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawSpike {
    pub at: S<Dur>,
    #[serde(rename = "for")]
    pub for_: S<Dur>,
    pub factor: S<f64>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    pub name: S<String>,
    pub read_rps: Option<S<f64>>,
    pub write_rps: Option<S<f64>>,
    pub diurnal_amplitude: Option<S<f64>>,
    pub peak_hour: Option<S<f64>>,
    pub users: Option<S<u64>>,
    pub read_after_write_window: Option<S<Dur>>,
    pub timeout: Option<S<Dur>>,
    /// none, immediate or backoff.
    pub retry: Option<S<String>>,
    pub max_retries: Option<S<u32>>,
    pub backoff_base: Option<S<Dur>>,
    pub backoff_cap: Option<S<Dur>>,
    pub jitter: Option<bool>,
    #[serde(default, rename = "spike")]
    pub spikes: Vec<S<RawSpike>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpikeSpec {
    pub at: Duration,
    pub until: Duration,
    pub factor: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RetrySpec {
    None,
    Immediate { max_retries: u32 },
    Backoff { base: Duration, cap: Duration, max_retries: u32, jitter: bool },
}

impl TenantSpec {
    /// The most requests a second this tenant can send: both rates at the diurnal peak, times
    /// its largest spike.
    pub fn peak_rps(&self) -> f64 {
        let spike = self.spikes.iter().map(|s| s.factor).fold(1.0, f64::max);
        (self.read_rps + self.write_rps) * (1.0 + self.diurnal_amplitude) * spike
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TenantSpec {
    pub name: String,
    pub read_rps: f64,
    pub write_rps: f64,
    pub diurnal_amplitude: f64,
    pub peak_hour: f64,
    pub users: u64,
    pub read_after_write_window: Duration,
    pub timeout: Duration,
    pub retry: RetrySpec,
    pub spikes: Vec<SpikeSpec>,
}

/// Per-node tables of the stack's node kinds.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawStackNode {
    /// stolon-sentinel, stolon-proxy: the pg_cluster they manage or serve.
    pub cluster: Option<S<String>>,
    /// haproxy: servers of the `write` backend (default: the region's stolon-proxies).
    pub write: Option<S<Vec<S<String>>>>,
    /// haproxy: servers of the `read` backend (default: the region's postgres nodes).
    pub read: Option<S<Vec<S<String>>>>,
    /// pgbouncer: the HAProxy it forwards to (default: the one in its region).
    pub haproxy: Option<S<String>>,
    /// clients: this region's share of every tenant's load (default: an equal share).
    pub share: Option<S<f64>>,
}

/// What a stack node does, names resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum StackRole {
    Sentinel {
        cluster: usize,
    },
    Proxy {
        cluster: usize,
    },
    Haproxy {
        write: Vec<NodeIdx>,
        read: Vec<NodeIdx>,
    },
    Pgbouncer {
        haproxy: NodeIdx,
    },
    /// `read_entries`: PgBouncers by nearness, this region's first; `write_entries`: the
    /// primary region's PgBouncers.
    Clients {
        share: f64,
        read_entries: Vec<NodeIdx>,
        write_entries: Vec<NodeIdx>,
    },
}

pub(crate) struct Cx<'a> {
    pub path: &'a str,
    pub text: &'a str,
}

impl Cx<'_> {
    fn err<T>(&self, span: std::ops::Range<usize>, msg: impl Into<String>) -> Res<T> {
        Err(Diagnostic::at(self.path, self.text, span, msg))
    }
    fn pos(&self, v: &Option<S<Dur>>, default: Duration, b: DurBounds) -> Res<Duration> {
        b.or(self.path, self.text, v, default)
    }
    fn opt(&self, v: &Option<S<Dur>>, b: DurBounds) -> Res<Option<Duration>> {
        b.opt(self.path, self.text, v)
    }
    fn count<T: crate::bounds::Value<Raw = T>>(&self, v: &Option<S<T>>, default: T, b: Bounds<T>) -> Res<T> {
        b.or(self.path, self.text, v, default)
    }
}

pub(crate) fn stolon(cx: &Cx<'_>, r: &RawStolon) -> Res<StolonSpec> {
    let d = StolonSpec::default();
    let min_sync =
        cx.count(&r.min_synchronous_standbys, d.min_synchronous_standbys, range::MIN_SYNCHRONOUS_STANDBYS)?;
    let max_sync =
        cx.count(&r.max_synchronous_standbys, d.max_synchronous_standbys, range::MAX_SYNCHRONOUS_STANDBYS)?;
    if min_sync > max_sync {
        let span = r.min_synchronous_standbys.as_ref().map_or(0..0, |v| v.span());
        return cx
            .err(span, format!("minSynchronousStandbys ({min_sync}) exceeds maxSynchronousStandbys ({max_sync})"));
    }
    let ttl =
        cx.pos(&r.sentinel_session_ttl, Duration::from_secs(d.sentinel_session_ttl_s), range::SENTINEL_SESSION_TTL)?;
    if ttl.subsec_nanos() != 0 {
        let span = r.sentinel_session_ttl.as_ref().map_or(0..0, |v| v.span());
        return cx.err(span, "sentinelSessionTtl must be a whole number of seconds");
    }
    Ok(StolonSpec {
        sleep_interval: cx.pos(&r.sleep_interval, d.sleep_interval, range::SLEEP_INTERVAL)?,
        request_timeout: cx.pos(&r.request_timeout, d.request_timeout, range::REQUEST_TIMEOUT)?,
        fail_interval: cx.pos(&r.fail_interval, d.fail_interval, range::FAIL_INTERVAL)?,
        proxy_check_interval: cx.pos(&r.proxy_check_interval, d.proxy_check_interval, range::PROXY_CHECK_INTERVAL)?,
        proxy_timeout: cx.pos(&r.proxy_timeout, d.proxy_timeout, range::PROXY_TIMEOUT)?,
        synchronous_replication: r.synchronous_replication.unwrap_or(d.synchronous_replication),
        min_synchronous_standbys: min_sync,
        max_synchronous_standbys: max_sync,
        max_standby_lag_bytes: r.max_standby_lag.as_ref().map_or(d.max_standby_lag_bytes, |v| *v.get_ref()),
        use_pgrewind: r.use_pgrewind.unwrap_or(d.use_pgrewind),
        sentinel_session_ttl_s: ttl.as_secs(),
    })
}

fn one_of(cx: &Cx<'_>, v: &Option<S<String>>, default: &str, allowed: &[&str], what: &str) -> Res<String> {
    match v {
        Some(x) if !allowed.contains(&x.get_ref().as_str()) => {
            cx.err(x.span(), format!("unknown {what} {:?}; expected one of: {}", x.get_ref(), allowed.join(", ")))
        }
        Some(x) => Ok(x.get_ref().clone()),
        None => Ok(default.into()),
    }
}

/// One of a setting's values, by the real program's name for it.
fn choice<T: Copy>(
    cx: &Cx<'_>,
    v: &Option<S<String>>,
    default: T,
    values: &[T],
    name: impl Fn(T) -> &'static str,
    what: &str,
) -> Res<T> {
    let Some(x) = v else { return Ok(default) };
    match values.iter().find(|&&value| name(value) == x.get_ref()) {
        Some(&value) => Ok(value),
        None => {
            let allowed: Vec<&str> = values.iter().map(|&value| name(value)).collect();
            cx.err(x.span(), format!("unknown {what} {:?}; expected one of: {}", x.get_ref(), allowed.join(", ")))
        }
    }
}

pub(crate) fn haproxy(cx: &Cx<'_>, r: &RawHaproxy) -> Res<HaproxySpec> {
    let d = HaproxySpec::default();
    let on_down = one_of(cx, &r.on_marked_down, "", &["shutdown-sessions"], "on_marked_down")?;
    Ok(HaproxySpec {
        balance: choice(cx, &r.balance, d.balance, &models::haproxy::Balance::ALL, |b| b.as_str(), "balance")?,
        inter: cx.pos(&r.inter, d.inter, range::INTER)?,
        fastinter: cx.opt(&r.fastinter, range::FASTINTER)?,
        downinter: cx.opt(&r.downinter, range::DOWNINTER)?,
        rise: cx.count(&r.rise, d.rise, range::RISE)?,
        fall: cx.count(&r.fall, d.fall, range::FALL)?,
        timeout_check: cx.opt(&r.timeout_check, range::TIMEOUT_CHECK)?,
        timeout_connect: cx.pos(&r.timeout_connect, d.timeout_connect, range::TIMEOUT_CONNECT)?,
        timeout_client: cx.pos(&r.timeout_client, d.timeout_client, range::TIMEOUT_CLIENT)?,
        timeout_server: cx.pos(&r.timeout_server, d.timeout_server, range::TIMEOUT_SERVER)?,
        timeout_queue: cx.pos(&r.timeout_queue, d.timeout_queue, range::TIMEOUT_QUEUE)?,
        maxconn: cx.count(&r.maxconn, d.maxconn, range::MAXCONN)?,
        maxqueue: cx.count(&r.maxqueue, d.maxqueue, range::MAXQUEUE)?,
        shutdown_sessions: on_down == "shutdown-sessions",
    })
}

pub(crate) fn pgbouncer(cx: &Cx<'_>, r: &RawPgbouncer) -> Res<PgbouncerSpec> {
    let d = PgbouncerSpec::default();
    Ok(PgbouncerSpec {
        processes: cx.count(&r.processes, d.processes, range::PROCESSES)?,
        cpu_per_query: cx.pos(&r.cpu_per_query, d.cpu_per_query, range::CPU_PER_QUERY)?,
        pool_mode: choice(
            cx,
            &r.pool_mode,
            d.pool_mode,
            &models::pgbouncer::PoolMode::ALL,
            |m| m.as_str(),
            "pool_mode",
        )?,
        max_client_conn: cx.count(&r.max_client_conn, d.max_client_conn, range::MAX_CLIENT_CONN)?,
        default_pool_size: cx.count(&r.default_pool_size, d.default_pool_size, range::DEFAULT_POOL_SIZE)?,
        min_pool_size: cx.count(&r.min_pool_size, d.min_pool_size, range::MIN_POOL_SIZE)?,
        reserve_pool_size: cx.count(&r.reserve_pool_size, d.reserve_pool_size, range::RESERVE_POOL_SIZE)?,
        reserve_pool_timeout: cx.pos(&r.reserve_pool_timeout, d.reserve_pool_timeout, range::RESERVE_POOL_TIMEOUT)?,
        max_db_connections: cx.count(&r.max_db_connections, d.max_db_connections, range::MAX_DB_CONNECTIONS)?,
        query_wait_timeout: cx.pos(&r.query_wait_timeout, d.query_wait_timeout, range::QUERY_WAIT_TIMEOUT)?,
        server_connect_timeout: cx.pos(
            &r.server_connect_timeout,
            d.server_connect_timeout,
            range::SERVER_CONNECT_TIMEOUT,
        )?,
        server_login_retry: cx.pos(&r.server_login_retry, d.server_login_retry, range::SERVER_LOGIN_RETRY)?,
        tenant_max_conn: cx.count(&r.tenant_max_conn, d.tenant_max_conn, range::TENANT_MAX_CONN)?,
        tenant_adaptive_limit: r.tenant_adaptive_limit.unwrap_or(false),
    })
}

pub(crate) fn workload(cx: &Cx<'_>, r: &RawWorkload) -> Res<WorkloadSpec> {
    let d = WorkloadSpec::default();
    let slo = match &r.slo {
        Some(v) if !(*v.get_ref() > 0.0 && *v.get_ref() < 1.0) => {
            return cx.err(v.span(), "slo must be between 0 and 1 (exclusive), e.g. 0.99999");
        }
        Some(v) => *v.get_ref(),
        None => d.slo,
    };
    Ok(WorkloadSpec {
        tick: cx.pos(&r.tick, d.tick, range::TICK)?,
        slo,
        start_after: cx.pos(&r.start_after, d.start_after, range::START_AFTER)?,
    })
}

pub(crate) fn tenant(cx: &Cx<'_>, r: &RawTenant) -> Res<TenantSpec> {
    let amp = cx.count(&r.diurnal_amplitude, 0.0, range::DIURNAL_AMPLITUDE)?;
    let peak = cx.count(&r.peak_hour, 14.0, range::PEAK_HOUR)?;
    let max_retries = cx.count(&r.max_retries, 3, range::MAX_RETRIES)?;
    let retry = match one_of(cx, &r.retry, "none", &["none", "immediate", "backoff"], "retry policy")?.as_str() {
        "none" => RetrySpec::None,
        "immediate" => RetrySpec::Immediate { max_retries },
        _ => {
            let base = cx.pos(&r.backoff_base, Duration::from_millis(100), range::BACKOFF_BASE)?;
            let cap = cx.pos(&r.backoff_cap, Duration::from_secs(10), range::BACKOFF_CAP)?;
            if cap < base {
                return cx.err(r.backoff_cap.as_ref().map_or(0..0, |v| v.span()), "backoff_cap is below backoff_base");
            }
            RetrySpec::Backoff { base, cap, max_retries, jitter: r.jitter.unwrap_or(true) }
        }
    };
    let mut spikes = Vec::new();
    for s in &r.spikes {
        let s = s.get_ref();
        let at = range::SPIKE_AT.check(cx.path, cx.text, &s.at)?;
        let len = range::SPIKE_FOR.check(cx.path, cx.text, &s.for_)?;
        let factor = range::SPIKE_FACTOR.check(cx.path, cx.text, &s.factor)?;
        spikes.push(SpikeSpec { at, until: at + len, factor });
    }
    let users = cx.count(&r.users, 10_000, range::USERS)?;
    Ok(TenantSpec {
        name: r.name.get_ref().clone(),
        read_rps: cx.count(&r.read_rps, 0.0, range::READ_RPS)?,
        write_rps: cx.count(&r.write_rps, 0.0, range::WRITE_RPS)?,
        diurnal_amplitude: amp,
        peak_hour: peak,
        users,
        read_after_write_window: cx.pos(&r.read_after_write_window, Duration::ZERO, range::READ_AFTER_WRITE_WINDOW)?,
        timeout: cx.pos(&r.timeout, Duration::from_secs(30), range::TIMEOUT)?,
        retry,
        spikes,
    })
}
