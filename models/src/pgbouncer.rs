//! PgBouncer's pool settings (doc/config.md), with its defaults. The pools themselves, their
//! accounting and the processes behind one port are `flow::bouncer`.

use std::time::Duration;

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

impl PoolMode {
    pub const ALL: [PoolMode; 3] = [PoolMode::Session, PoolMode::Transaction, PoolMode::Statement];
    /// pgbouncer.ini's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
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
