//! PgBouncer as a flow hop (doc/config.md), as the architecture runs it: several
//! single-threaded processes behind one port (`so_reuseport`), per-tenant pools, a per-tenant
//! concurrency limit that can adapt like TCP Vegas, and every server connection through one
//! HAProxy.
//!
//! - Processes: the kernel spreads connections evenly; each cohort goes whole to the next
//!   process in turn (cohorts are small and many, so the processes share the load evenly). Each process is a whole PgBouncer with its own
//!   pools, limits and `max_client_conn`, and spends `cpu_per_query_us` of its one core per
//!   query: it handles at most 1e6 / `cpu_per_query_us` queries/s, and the excess waits for
//!   the CPU (adding latency) while counting as client connections.
//! - Pools per (tenant, database), the database being `write` (kinds that need the primary) or
//!   `read`. A request holds one server connection while it is in flight downstream, so
//!   "server connections in use" is the count of requests in flight. `pool_mode` maps onto
//!   flows as follows (each request stands for one client transaction):
//!   `transaction` and `statement` give the connection back when the outcome arrives
//!   (a request is a single-statement transaction, so the two do not differ here); `session`
//!   keeps it assigned for `session_linger` more (the client's session outliving its query;
//!   0 makes it behave as `transaction`).
//! - Server connections: up to `default_pool_size` per pool open on demand, `reserve_pool_size`
//!   more once a client waited `reserve_pool_timeout`, at least `min_pool_size` always, at
//!   most `max_db_connections` per database. Opening one takes `server_connect_time`, and a
//!   pool has one opening in progress at a time (PgBouncer's `launch_new_connection` returns
//!   while the pool's `new_server_list` is not empty), so a pool that lost its connections
//!   refills one login after another while the other pools refill alongside it: after a
//!   failover every pool reconnects at once (a connection storm). A login slower than
//!   `server_connect_timeout` fails like a refused login.
//! - A `Refused` coming back is a failed login: for `server_login_retry` the pool gives new
//!   clients an error at once, as PgBouncer does ("server login has been failing, try again
//!   later"); clients already waiting keep waiting for the retry (or their own timeout, or
//!   `query_wait_timeout`), as PgBouncer 1.18 does (calibration/fixtures/pgbouncer-login-retry-*). Other errors except `ReadOnly`
//!   mean the server connection was closed (HAProxy's timeouts and shutdown-sessions, the
//!   stolon-proxy closing connections); the pool opens new ones as needed.
//! - Clients wait for a server connection at most `query_wait_timeout` (`PoolExhausted`);
//!   beyond `max_client_conn` client connections (waiting for the CPU, for a server
//!   connection, or in flight) new ones are refused.
//! - Tenant limit: at most `tenant_connection_limit` requests of a tenant in flight per process;
//!   with `vegas`, the limit adapts: each tick, the tenant's queueing delay (mean round trip
//!   minus the least round trip seen lately) above `beta` shrinks it by one, below `alpha`
//!   grows it by one (only while the tenant uses at least half of it).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::relay::{InFlight, Settled, fail_upstream, forward, pop_self, send_settled};
use super::{Cohort, ErrorKind, FlowMsg, ReqKind, Route, TenantId};
use crate::node::{Ctx, Label, LazyTick, Model, NodeId};
use crate::pgbouncer::{PoolConfig, PoolMode};
use crate::time::SimTime;

/// Client connections refused by `max_client_conn` (Label::Tenant).
pub const BOUNCER_REFUSED: &str = "bouncer_refused";
/// Clients failed at once while the pool's server logins fail (`server_login_retry`).
pub const BOUNCER_LOGIN_REFUSED: &str = "bouncer_login_refused";
/// Waiting clients that gave up (closed their connection) before being served.
pub const BOUNCER_CLIENTS_GONE: &str = "bouncer_clients_gone";
/// Clients that waited past `query_wait_timeout`.
pub const BOUNCER_WAIT_TIMEOUTS: &str = "bouncer_query_wait_timeouts";
/// Time from arrival to forwarding (CPU and pool wait), in ms (a distribution).
pub const BOUNCER_WAIT_MS: &str = "bouncer_wait_ms";
/// Server connections opened (Label::Node of the bouncer): a storm shows up here.
pub const BOUNCER_SERVER_LOGINS: &str = "bouncer_server_logins";
/// The tenant's concurrency limit summed over processes, sampled once a second.
pub const BOUNCER_TENANT_LIMIT: &str = "bouncer_tenant_limit";

/// Bound on queued cohort parts per process (CPU queue) and per pool.
const QUEUE_ENTRIES_MAX: usize = 1 << 16;

/// A Vegas-style adaptive concurrency limit per tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct VegasConfig {
    /// Queueing delay under which the limit grows by one per tick.
    pub alpha: Duration,
    /// Queueing delay over which the limit shrinks by one per tick.
    pub beta: Duration,
    pub initial_limit: u32,
    pub min_limit: u32,
    pub max_limit: u32,
    /// The least round trip is taken over the last one to two of these windows, so a path
    /// that got longer for good (the primary moved away) becomes the new base.
    pub min_rtt_window: Duration,
}

impl Default for VegasConfig {
    fn default() -> Self {
        VegasConfig {
            alpha: Duration::from_millis(2),
            beta: Duration::from_millis(10),
            initial_limit: 20,
            min_limit: 1,
            max_limit: 1000,
            min_rtt_window: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BouncerConfig {
    /// The HAProxy node every server connection goes through.
    pub haproxy: NodeId,
    /// Processes sharing the port with `so_reuseport` (1: PgBouncer's default, no reuseport).
    pub processes: u32,
    /// CPU per query in one process, in µs (0: unlimited).
    pub cpu_per_query_us: f64,
    /// How often connections, timeouts and limits are looked at (the model's resolution).
    pub tick: Duration,
    /// The pool settings, PgBouncer's defaults unless the scenario says otherwise.
    pub pool: PoolConfig,
    /// Requests of one tenant in flight per process (0: no limit).
    pub tenant_connection_limit: u32,
    /// Adapt the tenant limit to queueing delay (`None`: fixed limit only).
    pub vegas: Option<VegasConfig>,
    /// `pool_mode = session`: how long a client keeps its server connection after its query.
    pub session_linger: Duration,
    /// With `query_timeout` 0, a request unanswered this long fails as `TimedOut` anyway: it
    /// stands for TCP giving up on a dead peer and bounds what the bouncer holds.
    pub lost_part_timeout: Duration,
    /// Bound on distinct cohort parts in flight per process.
    pub max_parts: usize,
}

impl BouncerConfig {
    pub fn new(haproxy: NodeId) -> BouncerConfig {
        BouncerConfig {
            haproxy,
            processes: 1,
            cpu_per_query_us: 20.0,
            tick: Duration::from_millis(10),
            pool: PoolConfig::default(),
            tenant_connection_limit: 0,
            vegas: None,
            session_linger: Duration::ZERO,
            lost_part_timeout: Duration::from_secs(60),
            max_parts: 1 << 16,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BouncerTimer {
    Tick,
}

/// The database a pool connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Db {
    Write = 0,
    Read = 1,
}

impl Db {
    pub fn of(kind: ReqKind) -> Db {
        if kind.needs_primary() { Db::Write } else { Db::Read }
    }
}

#[derive(Clone, Debug)]
struct Waiting {
    cohort: Cohort,
    upstream: Route,
    remaining: u64,
    /// Arrival at the bouncer (waits are measured from here).
    arrived: SimTime,
}

#[derive(Clone, Debug, Default)]
struct Pool {
    waiting: VecDeque<Waiting>,
    waiting_count: u64,
    /// Established server connections (idle, busy or lingering).
    open: u32,
    /// Connections being opened: when each is ready, and whether it succeeds.
    opening: VecDeque<(SimTime, bool)>,
    /// Connections carrying a request downstream.
    busy: u64,
    /// Session mode: connections still assigned to a client after its outcome, until when.
    lingering: VecDeque<(SimTime, u64)>,
    lingering_count: u64,
    login_refused_until: Option<SimTime>,
}

impl Pool {
    fn refusing(&self, now: SimTime) -> bool {
        self.login_refused_until.is_some_and(|u| now < u)
    }
    fn free(&self) -> u64 {
        u64::from(self.open) - self.busy - self.lingering_count
    }
}

#[derive(Clone, Debug)]
struct Vegas {
    limit: u32,
    min_rtt_cur: Option<Duration>,
    min_rtt_prev: Option<Duration>,
    window_started: SimTime,
    rtt_sum_s: f64,
    rtt_samples: u64,
}

#[derive(Clone, Debug, Default)]
struct TenantState {
    in_flight: u64,
    vegas: Option<Vegas>,
}

/// One PgBouncer process.
#[derive(Clone, Debug)]
struct Process {
    cpu_tokens: f64,
    cpu_refilled: SimTime,
    cpu_queue: VecDeque<Waiting>,
    cpu_queued: u64,
    pools: BTreeMap<(TenantId, Db), Pool>,
    tenants: BTreeMap<TenantId, TenantState>,
    in_flight: InFlight,
    /// Pools that changed since they were last looked at.
    dirty: Vec<(TenantId, Db)>,
}

type BCtx<'a> = Ctx<'a, FlowMsg, BouncerTimer>;

impl Process {
    fn new(cfg: &BouncerConfig) -> Process {
        Process {
            cpu_tokens: 0.0,
            cpu_refilled: SimTime::ZERO,
            cpu_queue: VecDeque::new(),
            cpu_queued: 0,
            pools: BTreeMap::new(),
            tenants: BTreeMap::new(),
            in_flight: InFlight::new(cfg.max_parts),
            dirty: Vec::new(),
        }
    }

    /// Client connections held: waiting for the CPU, for a server connection, in flight, or
    /// (session mode) still holding a server connection.
    fn clients(&self) -> u64 {
        self.cpu_queued
            + self.pools.values().map(|p| p.waiting_count + p.lingering_count).sum::<u64>()
            + self.in_flight.total()
    }

    /// Anything the tick must look after: requests waiting for the CPU or a connection, in
    /// flight (their timeouts), connections being opened or lingering.
    fn busy(&self) -> bool {
        self.cpu_queued > 0
            || self.in_flight.total() > 0
            || self.pools.values().any(|p| !p.waiting.is_empty() || !p.opening.is_empty() || !p.lingering.is_empty())
    }

    fn tenant_limit(&self, cfg: &BouncerConfig, tenant: TenantId) -> u64 {
        let fixed = if cfg.tenant_connection_limit == 0 { u64::MAX } else { u64::from(cfg.tenant_connection_limit) };
        let vegas = match (&cfg.vegas, self.tenants.get(&tenant).and_then(|t| t.vegas.as_ref())) {
            (_, Some(v)) => u64::from(v.limit),
            // A tenant this process has not seen yet starts at the initial limit.
            (Some(vc), None) => u64::from(vc.initial_limit),
            (None, None) => u64::MAX,
        };
        fixed.min(vegas)
    }

    fn accept(&mut self, ctx: &mut BCtx<'_>, cfg: &BouncerConfig, cohort: Cohort, upstream: Route, n: u64) {
        let room = u64::from(cfg.pool.max_client_conn).saturating_sub(self.clients());
        let admitted = if self.cpu_queue.len() < QUEUE_ENTRIES_MAX { n.min(room) } else { 0 };
        if n > admitted {
            ctx.count(BOUNCER_REFUSED, Label::Tenant(cohort.tenant), n - admitted);
            fail_upstream(ctx, cohort, upstream, ErrorKind::Refused, n - admitted);
        }
        if admitted > 0 {
            self.cpu_queue.push_back(Waiting { cohort, upstream, remaining: admitted, arrived: ctx.now });
            self.cpu_queued += admitted;
        }
    }

    /// The process's core works through its queue at 1e6 / cpu_per_query_us queries/s, with up
    /// to one tick's worth of burst.
    fn run_cpu(&mut self, ctx: &mut BCtx<'_>, cfg: &BouncerConfig) {
        let unlimited = cfg.cpu_per_query_us <= 0.0;
        if !unlimited {
            let rate_per_s = 1e6 / cfg.cpu_per_query_us;
            let burst = (rate_per_s * cfg.tick.as_secs_f64()).max(1.0);
            let elapsed_s = ctx.now.saturating_since(self.cpu_refilled).as_secs_f64();
            self.cpu_tokens = (self.cpu_tokens + elapsed_s * rate_per_s).min(burst);
        }
        self.cpu_refilled = ctx.now;
        while let Some(front) = self.cpu_queue.front_mut() {
            let k = if unlimited { front.remaining } else { front.remaining.min(self.cpu_tokens.floor() as u64) };
            if k == 0 {
                break;
            }
            if !unlimited {
                self.cpu_tokens -= k as f64;
            }
            self.cpu_queued -= k;
            let mut part = front.clone();
            part.remaining = k;
            front.remaining -= k;
            if front.remaining == 0 {
                self.cpu_queue.pop_front();
            }
            self.enter_pool(ctx, cfg, part);
        }
    }

    fn enter_pool(&mut self, ctx: &mut BCtx<'_>, cfg: &BouncerConfig, w: Waiting) {
        let key = (w.cohort.tenant, Db::of(w.cohort.kind));
        self.tenants.entry(key.0).or_insert_with(|| TenantState {
            in_flight: 0,
            vegas: cfg.vegas.as_ref().map(|v| Vegas {
                limit: v.initial_limit,
                min_rtt_cur: None,
                min_rtt_prev: None,
                window_started: ctx.now,
                rtt_sum_s: 0.0,
                rtt_samples: 0,
            }),
        });
        let pool = self.pools.entry(key).or_default();
        if pool.refusing(ctx.now) || pool.waiting.len() >= QUEUE_ENTRIES_MAX {
            ctx.count(BOUNCER_LOGIN_REFUSED, Label::Tenant(key.0), w.remaining);
            fail_upstream(ctx, w.cohort, w.upstream, ErrorKind::Refused, w.remaining);
            return;
        }
        pool.waiting_count += w.remaining;
        pool.waiting.push_back(w);
        self.dirty.push(key);
    }

    /// An outcome (or a local failure) for requests that were in flight downstream.
    fn settle(&mut self, ctx: &mut BCtx<'_>, cfg: &BouncerConfig, s: &Settled) {
        let key = (s.cohort.tenant, Db::of(s.cohort.kind));
        let n = s.outcome.total();
        let pool = self.pools.get_mut(&key).expect("requests in flight belong to a pool");
        pool.busy -= n;
        let kept = s.outcome.ok + s.outcome.error(ErrorKind::ReadOnly);
        // Every other answer means the server side closed the connection.
        pool.open -= u32::try_from(n - kept).expect("fewer than 2^32 connections");
        if cfg.pool.pool_mode == PoolMode::Session && !cfg.session_linger.is_zero() && kept > 0 {
            pool.lingering.push_back((ctx.now + cfg.session_linger, kept));
            pool.lingering_count += kept;
        }
        if s.outcome.error(ErrorKind::Refused) > 0 {
            login_failed(pool, ctx.now, &cfg.pool);
        }
        let t = self.tenants.get_mut(&key.0).expect("tenant of a pool");
        t.in_flight -= n;
        if let Some(v) = &mut t.vegas
            && s.outcome.ok > 0
        {
            let rtt = ctx.now - s.sent;
            v.min_rtt_cur = Some(v.min_rtt_cur.map_or(rtt, |m| m.min(rtt)));
            v.rtt_sum_s += rtt.as_secs_f64() * s.outcome.ok as f64;
            v.rtt_samples += s.outcome.ok;
        }
        // Room in the pool, and in the tenant's limit for both of its pools.
        self.dirty.extend([(key.0, Db::Write), (key.0, Db::Read)]);
    }

    /// Connections ready, released or to open; refusals and wait timeouts; then forwarding.
    fn service(&mut self, ctx: &mut BCtx<'_>, cfg: &BouncerConfig, key: (TenantId, Db)) {
        let now = ctx.now;
        let pc = &cfg.pool;
        let db_conns: u64 = self
            .pools
            .iter()
            .filter(|(k, _)| k.1 == key.1)
            .map(|(_, p)| u64::from(p.open) + p.opening.len() as u64)
            .sum();
        let Some(pool) = self.pools.get_mut(&key) else { return };
        while pool.opening.front().is_some_and(|(at, _)| *at <= now) {
            let (_, ok) = pool.opening.pop_front().expect("peeked");
            if ok {
                pool.open += 1;
                ctx.count(BOUNCER_SERVER_LOGINS, Label::Node(ctx.id), 1);
            } else {
                login_failed(pool, now, pc);
            }
        }
        while pool.lingering.front().is_some_and(|(at, _)| *at <= now) {
            let (_, n) = pool.lingering.pop_front().expect("peeked");
            pool.lingering_count -= n;
        }
        let refusing = pool.refusing(now);
        while let Some(w) = pool.waiting.front() {
            let failing = if w.cohort.deadline <= now {
                // The client gave up and closed its connection: PgBouncer drops it from the
                // queue; the client has counted it already.
                let w = pool.waiting.pop_front().expect("peeked");
                pool.waiting_count -= w.remaining;
                ctx.count(BOUNCER_CLIENTS_GONE, Label::Tenant(key.0), w.remaining);
                continue;
            } else if w.arrived + pc.query_wait_timeout <= now {
                Some((ErrorKind::PoolExhausted, BOUNCER_WAIT_TIMEOUTS))
            } else {
                None
            };
            // FIFO: the oldest waits longest, so the first that has not timed out ends the scan.
            let Some((kind, metric)) = failing else { break };
            let w = pool.waiting.pop_front().expect("peeked");
            pool.waiting_count -= w.remaining;
            ctx.count(metric, Label::Tenant(key.0), w.remaining);
            fail_upstream(ctx, w.cohort, w.upstream, kind, w.remaining);
        }
        if !refusing {
            let oldest_wait = pool.waiting.front().map_or(Duration::ZERO, |w| now - w.arrived);
            let mut size = u64::from(pc.default_pool_size);
            if oldest_wait >= pc.reserve_pool_timeout {
                size += u64::from(pc.reserve_pool_size);
            }
            let demand = pool.busy + pool.lingering_count + pool.waiting_count;
            let target = demand.min(size).max(u64::from(pc.min_pool_size));
            let have = u64::from(pool.open) + pool.opening.len() as u64;
            let mut new = target.saturating_sub(have);
            if pc.max_db_connections > 0 {
                new = new.min(u64::from(pc.max_db_connections).saturating_sub(db_conns));
            }
            // One login in progress per pool: each starts when the one before it is in.
            let mut start = pool.opening.back().map_or(now, |(at, _)| (*at).max(now));
            for _ in 0..new {
                let done = if pc.server_connect_time <= pc.server_connect_timeout {
                    (start + pc.server_connect_time, true)
                } else {
                    (start + pc.server_connect_timeout, false)
                };
                pool.opening.push_back(done);
                start = done.0;
            }
        }
        // Forward what the free connections and the tenant's limit allow, oldest first.
        let limit = self.tenant_limit(cfg, key.0);
        let pool = self.pools.get_mut(&key).expect("looked up above");
        let tenant = self.tenants.get_mut(&key.0).expect("tenant of a pool");
        loop {
            let free = pool.free();
            let Some(w) = pool.waiting.front_mut() else { break };
            let k = w.remaining.min(free).min(limit.saturating_sub(tenant.in_flight));
            if k == 0 || !self.in_flight.add(&w.cohort, w.upstream, cfg.haproxy, now, k) {
                break;
            }
            forward(ctx, cfg.haproxy, &w.cohort, w.upstream, k);
            ctx.observe_n(BOUNCER_WAIT_MS, Label::Tenant(key.0), (now - w.arrived).as_secs_f64() * 1e3, k);
            pool.busy += k;
            tenant.in_flight += k;
            pool.waiting_count -= k;
            w.remaining -= k;
            if w.remaining == 0 {
                pool.waiting.pop_front();
            }
        }
    }

    /// Looks at the pools that changed (`all`: every pool).
    fn pump(&mut self, ctx: &mut BCtx<'_>, cfg: &BouncerConfig, all: bool) {
        self.run_cpu(ctx, cfg);
        let mut keys = std::mem::take(&mut self.dirty);
        if all {
            keys = self.pools.keys().copied().collect();
        }
        keys.sort();
        keys.dedup();
        for key in keys {
            self.service(ctx, cfg, key);
        }
        self.dirty.clear();
    }

    /// One Vegas step per tenant from the round trips seen since the last tick.
    fn adapt_limits(&mut self, now: SimTime, cfg: &VegasConfig) {
        for t in self.tenants.values_mut() {
            let Some(v) = &mut t.vegas else { continue };
            if now.saturating_since(v.window_started) >= cfg.min_rtt_window {
                v.min_rtt_prev = v.min_rtt_cur.take();
                v.window_started = now;
            }
            if v.rtt_samples == 0 {
                continue;
            }
            let rtt_s = v.rtt_sum_s / v.rtt_samples as f64;
            v.rtt_sum_s = 0.0;
            v.rtt_samples = 0;
            let base = match (v.min_rtt_cur, v.min_rtt_prev) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).expect("a sample sets the current minimum"),
            };
            let queueing_s = rtt_s - base.as_secs_f64();
            if queueing_s > cfg.beta.as_secs_f64() {
                v.limit = v.limit.saturating_sub(1).max(cfg.min_limit);
            } else if queueing_s < cfg.alpha.as_secs_f64() && t.in_flight * 2 >= u64::from(v.limit) {
                v.limit = (v.limit + 1).min(cfg.max_limit);
            }
        }
    }

    fn check_invariants(&self, cfg: &BouncerConfig) {
        self.in_flight.check_invariants();
        assert_eq!(self.cpu_queue.iter().map(|w| w.remaining).sum::<u64>(), self.cpu_queued);
        assert!(self.cpu_queue.len() <= QUEUE_ENTRIES_MAX);
        assert!(self.clients() <= u64::from(cfg.pool.max_client_conn), "more clients than max_client_conn");
        let pc = &cfg.pool;
        let mut busy_total = 0;
        let mut per_tenant: BTreeMap<TenantId, u64> = BTreeMap::new();
        let mut per_db = [0u64; 2];
        for (key, p) in &self.pools {
            assert_eq!(p.waiting.iter().map(|w| w.remaining).sum::<u64>(), p.waiting_count);
            assert!(p.waiting.len() <= QUEUE_ENTRIES_MAX && p.waiting.iter().all(|w| w.remaining > 0));
            assert_eq!(p.lingering.iter().map(|l| l.1).sum::<u64>(), p.lingering_count);
            assert!(p.busy + p.lingering_count <= u64::from(p.open), "more connections in use than open");
            let size = (pc.default_pool_size + pc.reserve_pool_size).max(pc.min_pool_size);
            assert!(p.open as usize + p.opening.len() <= size as usize, "pool over its size");
            busy_total += p.busy;
            *per_tenant.entry(key.0).or_default() += p.busy;
            per_db[key.1 as usize] += u64::from(p.open) + p.opening.len() as u64;
        }
        assert_eq!(busy_total, self.in_flight.total(), "pools' busy connections drift from what is in flight");
        for (id, t) in &self.tenants {
            assert_eq!(per_tenant.get(id).copied().unwrap_or(0), t.in_flight, "tenant in-flight count drifts");
            if let (Some(v), Some(vc)) = (&t.vegas, &cfg.vegas) {
                assert!((vc.min_limit..=vc.max_limit).contains(&v.limit), "vegas limit out of bounds");
            }
        }
        if pc.max_db_connections > 0 {
            assert!(per_db.iter().all(|&n| n <= u64::from(pc.max_db_connections)), "max_db_connections exceeded");
        }
    }
}

/// A login failed: new clients get errors at once for `server_login_retry`, and the
/// connections being opened to the same server are given up.
fn login_failed(pool: &mut Pool, now: SimTime, pc: &PoolConfig) {
    pool.login_refused_until = Some(now + pc.server_login_retry);
    pool.opening.clear();
}

pub struct Bouncer {
    cfg: BouncerConfig,
    procs: Vec<Process>,
    /// The process the next cohort goes to (so_reuseport spreads connections evenly).
    reuseport_rr: usize,
    last_limit_report: SimTime,
    deep: crate::node::DeepCheck,
    housekeeping: LazyTick,
}

impl Bouncer {
    pub fn new(cfg: BouncerConfig) -> Bouncer {
        assert!(cfg.processes >= 1, "at least one process");
        assert!(!cfg.tick.is_zero() && !cfg.lost_part_timeout.is_zero());
        assert!(cfg.cpu_per_query_us.is_finite() && cfg.cpu_per_query_us >= 0.0);
        assert!(cfg.pool.default_pool_size > 0, "a pool needs at least one connection");
        if let Some(v) = &cfg.vegas {
            assert!(1 <= v.min_limit && v.min_limit <= v.initial_limit && v.initial_limit <= v.max_limit);
            assert!(v.alpha <= v.beta, "vegas alpha above beta");
        }
        let procs = (0..cfg.processes).map(|_| Process::new(&cfg)).collect();
        Bouncer {
            cfg,
            procs,
            reuseport_rr: 0,
            last_limit_report: SimTime::ZERO,
            deep: Default::default(),
            housekeeping: LazyTick::default(),
        }
    }

    /// Server connections open for a (tenant, database), over all processes.
    pub fn open_connections(&self, tenant: TenantId, db: Db) -> u32 {
        self.procs.iter().filter_map(|p| p.pools.get(&(tenant, db))).map(|p| p.open).sum()
    }

    /// Requests of a (tenant, database) in flight downstream, over all processes.
    pub fn in_flight(&self, tenant: TenantId, db: Db) -> u64 {
        self.procs.iter().filter_map(|p| p.pools.get(&(tenant, db))).map(|p| p.busy).sum()
    }

    /// Requests waiting for a server connection, over all processes and pools.
    pub fn waiting(&self) -> u64 {
        self.procs.iter().flat_map(|p| p.pools.values()).map(|p| p.waiting_count).sum()
    }

    /// Requests waiting for a process's CPU.
    pub fn cpu_queued(&self) -> u64 {
        self.procs.iter().map(|p| p.cpu_queued).sum()
    }

    /// The tenant's concurrency limit summed over processes (`None`: unlimited).
    pub fn tenant_limit(&self, tenant: TenantId) -> Option<u64> {
        if self.cfg.tenant_connection_limit == 0 && self.cfg.vegas.is_none() {
            return None;
        }
        Some(self.procs.iter().map(|p| p.tenant_limit(&self.cfg, tenant)).sum())
    }

    fn pump_all(&mut self, ctx: &mut BCtx<'_>, all: bool) {
        for p in &mut self.procs {
            p.pump(ctx, &self.cfg, all);
        }
        // An idle pooler has nothing to time out or refill: its tick sleeps until work comes.
        // From the tick itself (`all`), the next one is the next grid instant, not this one.
        if self.procs.iter().any(Process::busy) {
            let earliest = if all { ctx.now + Duration::from_nanos(1) } else { ctx.now };
            self.housekeeping.arm(ctx, BouncerTimer::Tick, earliest);
        }
    }
}

impl Model for Bouncer {
    type Msg = FlowMsg;
    type Timer = BouncerTimer;
    type Durable = ();

    fn on_start(&mut self, ctx: &mut BCtx<'_>) {
        for p in &mut self.procs {
            p.cpu_refilled = ctx.now;
        }
        self.last_limit_report = ctx.now;
        // The instants an always-on tick armed here would fire at.
        self.housekeeping = LazyTick::every(ctx.now + self.cfg.tick, self.cfg.tick);
    }

    fn on_message(&mut self, ctx: &mut BCtx<'_>, from: NodeId, msg: FlowMsg) {
        match msg {
            FlowMsg::Requests { cohort, route } => {
                // The kernel spreads connections over the processes; a cohort (the
                // connections one client region opens in a tick) goes to the next process, so
                // over a second the processes share the load evenly and a cohort stays whole.
                let n_procs = self.procs.len();
                let p = self.reuseport_rr % n_procs;
                self.procs[p].accept(ctx, &self.cfg, cohort, route, cohort.count);
                self.reuseport_rr = (p + 1) % n_procs;
                self.pump_all(ctx, false);
            }
            FlowMsg::Outcome { cohort, mut outcome, route } => {
                pop_self(ctx.id, route);
                // Parts of one cohort may be in flight from several processes: credit them in
                // order, each up to what it owes.
                for p in &mut self.procs {
                    if outcome.total() == 0 {
                        break;
                    }
                    if let Some(s) = p.in_flight.on_outcome(from, &cohort, &mut outcome) {
                        p.settle(ctx, &self.cfg, &s);
                        send_settled(ctx, &s);
                    }
                }
                self.pump_all(ctx, false);
            }
            // PgBouncer's port is open while it runs.
            FlowMsg::Check { seq } => ctx.send(from, FlowMsg::CheckReply { seq, ok: true }),
            FlowMsg::CheckReply { .. } => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut BCtx<'_>, timer: BouncerTimer) {
        match timer {
            BouncerTimer::Tick => {
                self.housekeeping.fired();
                let timeout = if self.cfg.pool.query_timeout.is_zero() {
                    self.cfg.lost_part_timeout
                } else {
                    self.cfg.pool.query_timeout
                };
                for p in &mut self.procs {
                    for s in p.in_flight.expire(ctx.now, timeout) {
                        p.settle(ctx, &self.cfg, &s);
                        send_settled(ctx, &s);
                    }
                    if let Some(v) = &self.cfg.vegas {
                        p.adapt_limits(ctx.now, v);
                    }
                }
                self.pump_all(ctx, true);
                if self.cfg.vegas.is_some()
                    && ctx.now.saturating_since(self.last_limit_report) >= Duration::from_secs(1)
                {
                    self.last_limit_report = ctx.now;
                    let tenants: BTreeSet<TenantId> =
                        self.procs.iter().flat_map(|p| p.tenants.keys().copied()).collect();
                    for t in tenants {
                        if let Some(limit) = self.tenant_limit(t) {
                            ctx.observe(BOUNCER_TENANT_LIMIT, Label::Tenant(t), limit as f64);
                        }
                    }
                }
            }
        }
    }

    fn check_invariants(&self) {
        if !self.deep.due() {
            return;
        }
        for p in &self.procs {
            p.check_invariants(&self.cfg);
        }
    }
}

#[cfg(test)]
mod tests;
