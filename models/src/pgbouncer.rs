//! A PgBouncer pool as a flow (doc/config.md): client requests arrive per tick as counts, wait
//! in FIFO order for a server connection, and are served at the rate the pool's connections
//! allow. The stack (issue [stack]) runs one per process and tenant; this is the accounting.
//!
//! - `default_pool_size` server connections serve at once; when the oldest client has waited
//!   `reserve_pool_timeout`, up to `reserve_pool_size` more are opened.
//! - Opening a server connection takes `server_connect_time` (a backend fork on the database
//!   host); if the server refuses logins, new clients get errors at once for
//!   `server_login_retry`.
//! - Clients waiting longer than `query_wait_timeout` get an error; beyond `max_client_conn`
//!   clients are refused.

use std::collections::VecDeque;
use std::time::Duration;

use crate::time::SimTime;

/// `pool_mode`: when a server connection goes back to the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PoolMode {
    /// When the client disconnects (the default).
    #[default]
    Session,
    /// When the transaction ends.
    Transaction,
    /// When the statement ends (multi-statement transactions are not allowed).
    Statement,
}

/// PgBouncer's pool settings (doc/config.md), by their real names. The tick-based `Pool` below
/// reads the sizing ones; the flow model (`crate::flow::bouncer`) reads them all.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolConfig {
    pub pool_mode: PoolMode,
    pub default_pool_size: u32,
    /// Server connections kept open per pool even when idle.
    pub min_pool_size: u32,
    pub reserve_pool_size: u32,
    pub reserve_pool_timeout: Duration,
    /// Server connections per database across its pools (0: no limit).
    pub max_db_connections: u32,
    pub max_client_conn: u32,
    pub query_wait_timeout: Duration,
    /// Cancel a query running longer than this (0: never).
    pub query_timeout: Duration,
    /// A server connection not established within this fails, like a refused login.
    pub server_connect_timeout: Duration,
    pub server_login_retry: Duration,
    /// Not a PgBouncer setting: how long opening one server connection takes (TCP, backend
    /// fork, authentication) on an idle database host.
    pub server_connect_time: Duration,
}

impl Default for PoolConfig {
    /// PgBouncer's defaults; the connect time is a backend fork on an idle host.
    fn default() -> Self {
        PoolConfig {
            pool_mode: PoolMode::Session,
            default_pool_size: 20,
            min_pool_size: 0,
            reserve_pool_size: 0,
            reserve_pool_timeout: Duration::from_secs(5),
            max_db_connections: 0,
            max_client_conn: 100,
            query_wait_timeout: Duration::from_secs(120),
            query_timeout: Duration::ZERO,
            server_connect_timeout: Duration::from_secs(15),
            server_login_retry: Duration::from_secs(15),
            server_connect_time: Duration::from_millis(5),
        }
    }
}

/// What one tick did, in (fractional) requests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TickOutcome {
    pub served: f64,
    pub wait_timeouts: f64,
    /// Refused at once: max_client_conn, or the server is refusing logins.
    pub refused: f64,
    /// Mean time the served requests waited for a connection.
    pub mean_wait: Duration,
    pub waiting: f64,
}

pub struct Pool {
    cfg: PoolConfig,
    /// Waiting requests, as (arrival time, count) cohorts in FIFO order.
    queue: VecDeque<(SimTime, f64)>,
    open: u32,
    /// Connections being opened: when each batch is ready.
    opening: VecDeque<(SimTime, u32)>,
    login_refused_until: Option<SimTime>,
}

impl Pool {
    pub fn new(cfg: PoolConfig) -> Pool {
        assert!(cfg.default_pool_size > 0, "a pool needs at least one connection");
        Pool { cfg, queue: VecDeque::new(), open: 0, opening: VecDeque::new(), login_refused_until: None }
    }

    pub fn open_connections(&self) -> u32 {
        self.open
    }

    pub fn waiting(&self) -> f64 {
        self.queue.iter().map(|(_, n)| n).sum()
    }

    /// The server's connections were lost (restart, failover): they must be opened again.
    pub fn server_lost(&mut self) {
        self.open = 0;
        self.opening.clear();
    }

    /// Advances the pool by `dt` ending at `now`: `arrivals` new requests, each holding a
    /// server connection for `service`; `server_accepts` says whether logins succeed.
    pub fn tick(
        &mut self,
        now: SimTime,
        dt: Duration,
        arrivals: f64,
        service: Duration,
        server_accepts: bool,
    ) -> TickOutcome {
        assert!(arrivals >= 0.0 && !service.is_zero());
        let mut out = TickOutcome::default();
        while self.opening.front().is_some_and(|(at, _)| *at <= now) {
            let (_, n) = self.opening.pop_front().expect("peeked");
            if server_accepts {
                self.open += n;
            } else {
                self.login_refused_until = Some(now + self.cfg.server_login_retry);
            }
        }
        if !server_accepts {
            self.open = 0;
        }
        let mut refusing = self.login_refused_until.is_some_and(|u| now < u);
        if !server_accepts && !refusing && (arrivals > 0.0 || self.waiting() > 0.0) {
            // A login attempt fails: PgBouncer waits server_login_retry before the next one and
            // fails clients at once meanwhile, including those already waiting.
            self.login_refused_until = Some(now + self.cfg.server_login_retry);
            refusing = true;
        }
        if refusing {
            out.refused += self.waiting();
            self.queue.clear();
        }
        // Admission: refused at once while logins fail, or beyond max_client_conn.
        let room = (self.cfg.max_client_conn as f64 - self.waiting()).max(0.0);
        let admitted = if refusing { 0.0 } else { arrivals.min(room) };
        out.refused += arrivals - admitted;
        if admitted > 0.0 {
            self.queue.push_back((now, admitted));
        }
        // Clients that waited too long give up.
        while let Some(&(at, n)) = self.queue.front() {
            if now - at < self.cfg.query_wait_timeout {
                break;
            }
            out.wait_timeouts += n;
            self.queue.pop_front();
        }
        // Size the pool: the default size, plus the reserve once a client waited long enough.
        let oldest_wait = self.queue.front().map_or(Duration::ZERO, |(at, _)| now - *at);
        let mut target = self.cfg.default_pool_size;
        if oldest_wait >= self.cfg.reserve_pool_timeout {
            target += self.cfg.reserve_pool_size;
        }
        let pending: u32 = self.opening.iter().map(|(_, n)| n).sum();
        if server_accepts && !refusing && self.waiting() > 0.0 && self.open + pending < target {
            self.opening.push_back((now + self.cfg.server_connect_time, target - self.open - pending));
        }
        // Serve FIFO at the pool's rate.
        let mut capacity = self.open as f64 * dt.as_secs_f64() / service.as_secs_f64();
        let mut waited_s = 0.0;
        while capacity > 0.0 {
            let Some((at, n)) = self.queue.front_mut() else { break };
            let take = n.min(capacity);
            *n -= take;
            capacity -= take;
            out.served += take;
            waited_s += take * (now - *at).as_secs_f64();
            if *n <= 1e-9 {
                self.queue.pop_front();
            }
        }
        if out.served > 0.0 {
            out.mean_wait = Duration::from_secs_f64(waited_s / out.served);
        }
        out.waiting = self.waiting();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(100);

    fn run(pool: &mut Pool, from_s: f64, seconds: f64, rate: f64, service: Duration, up: bool) -> TickOutcome {
        let mut total = TickOutcome::default();
        let ticks = (seconds / TICK.as_secs_f64()).round() as u64;
        for k in 1..=ticks {
            let now = SimTime::from_duration(Duration::from_secs_f64(from_s) + TICK * k as u32);
            let o = pool.tick(now, TICK, rate * TICK.as_secs_f64(), service, up);
            total.served += o.served;
            total.wait_timeouts += o.wait_timeouts;
            total.refused += o.refused;
            total.waiting = o.waiting;
            total.mean_wait = total.mean_wait.max(o.mean_wait);
        }
        total
    }

    #[test]
    fn under_capacity_everything_is_served_promptly() {
        // 20 connections x 1 / 10 ms = 2000 requests/s; offer 1000.
        let mut p = Pool::new(PoolConfig::default());
        let o = run(&mut p, 0.0, 10.0, 1000.0, Duration::from_millis(10), true);
        assert!((o.served - 10_000.0).abs() < 200.0, "served {}", o.served);
        assert_eq!(o.wait_timeouts, 0.0);
        assert_eq!(p.open_connections(), 20);
        assert!(o.waiting < 1.0);
    }

    #[test]
    fn overload_queues_then_times_out_at_query_wait_timeout() {
        let cfg = PoolConfig {
            max_client_conn: 100_000,
            query_wait_timeout: Duration::from_secs(2),
            ..PoolConfig::default()
        };
        let mut p = Pool::new(cfg);
        // 2000/s capacity, 3000/s offered: the queue grows 1000/s until waits reach 2 s.
        let o = run(&mut p, 0.0, 20.0, 3000.0, Duration::from_millis(10), true);
        assert!((o.served / 20.0 - 2000.0).abs() < 100.0, "served at capacity: {}", o.served / 20.0);
        assert!(o.wait_timeouts > 10_000.0, "clients give up: {}", o.wait_timeouts);
        assert!(o.mean_wait > Duration::from_millis(1500), "waits approach the timeout: {:?}", o.mean_wait);
    }

    #[test]
    fn the_reserve_pool_opens_after_its_timeout() {
        let cfg = PoolConfig {
            reserve_pool_size: 20,
            reserve_pool_timeout: Duration::from_secs(1),
            max_client_conn: 100_000,
            ..PoolConfig::default()
        };
        let mut p = Pool::new(cfg);
        run(&mut p, 0.0, 0.5, 3000.0, Duration::from_millis(10), true);
        assert_eq!(p.open_connections(), 20, "not yet");
        let o = run(&mut p, 0.5, 10.0, 3000.0, Duration::from_millis(10), true);
        assert_eq!(p.open_connections(), 40);
        assert!(o.served / 10.0 > 2900.0, "the reserve absorbs the load: {}", o.served / 10.0);
    }

    #[test]
    fn a_refusing_server_makes_clients_fail_at_once_for_login_retry() {
        let mut p = Pool::new(PoolConfig::default());
        run(&mut p, 0.0, 1.0, 100.0, Duration::from_millis(10), true);
        p.server_lost();
        let down = run(&mut p, 1.0, 5.0, 100.0, Duration::from_millis(10), false);
        assert!(down.refused > 400.0, "refused at once while logins fail: {}", down.refused);
        // The server is back, but PgBouncer waits server_login_retry (15 s) before trying again.
        let waiting = run(&mut p, 6.0, 5.0, 100.0, Duration::from_millis(10), true);
        assert!(waiting.refused > 400.0 && waiting.served < 1.0, "{waiting:?}");
        let back = run(&mut p, 11.0, 15.0, 100.0, Duration::from_millis(10), true);
        assert!(back.served > 900.0, "served again after the retry interval: {back:?}");
    }

    #[test]
    fn max_client_conn_refuses_the_excess() {
        let cfg = PoolConfig { default_pool_size: 1, max_client_conn: 50, ..PoolConfig::default() };
        let mut p = Pool::new(cfg);
        let o = run(&mut p, 0.0, 5.0, 1000.0, Duration::from_millis(100), true);
        assert!(o.waiting <= 50.0 + 1e-9);
        assert!(o.refused > 4000.0, "{o:?}");
    }
}
