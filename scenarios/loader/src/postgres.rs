//! PostgreSQL sections: `[postgres]` (server settings, with postgresql.conf names and
//! defaults), `[[pg_cluster]]` (a primary with its standbys, its `synchronous_standby_names`
//! and its write load, with `[[pg_cluster.phase]]` bulk loads), and `[node.postgres]`.

use std::time::Duration;

use serde::Deserialize;

use crate::bounds::{Bounds, DurBounds, days, hours, ms, secs, us};
use crate::diag::Diagnostic;
use crate::raw::{Bandwidth, Dur, S, Size};

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    pub wal_sender_timeout: Option<S<Dur>>,
    pub wal_receiver_timeout: Option<S<Dur>>,
    pub wal_receiver_status_interval: Option<S<Dur>>,
    pub wal_retrieve_retry_interval: Option<S<Dur>>,
    pub checkpoint_timeout: Option<S<Dur>>,
    /// How often the bulk load is advanced (flows per tick).
    pub flow_tick: Option<S<Dur>>,
    pub database_size: Option<S<Size>>,
    /// WAL kept in pg_wal (wal_keep_size, slots, archive lag): what an old pg_rewind copies.
    pub wal_retained: Option<S<Size>>,
    pub cores: Option<S<u32>>,
    pub read_service_time: Option<S<Dur>>,
    pub write_service_time: Option<S<Dur>>,
    pub max_connections: Option<S<u32>>,
    pub stale_read_lag: Option<S<Dur>>,
}

/// The allowed ranges of this file's settings (see `crate::bounds`).
pub mod range {
    use super::*;
    const GB: u64 = 1_000_000_000;
    pub const WAL_SENDER_TIMEOUT: DurBounds = DurBounds::new("wal_sender_timeout", ms(1), days(1));
    pub const WAL_RECEIVER_TIMEOUT: DurBounds = DurBounds::new("wal_receiver_timeout", ms(1), days(1));
    pub const WAL_RECEIVER_STATUS_INTERVAL: DurBounds = DurBounds::new("wal_receiver_status_interval", ms(1), hours(1));
    pub const WAL_RETRIEVE_RETRY_INTERVAL: DurBounds = DurBounds::new("wal_retrieve_retry_interval", ms(1), hours(1));
    pub const CHECKPOINT_TIMEOUT: DurBounds = DurBounds::new("checkpoint_timeout", secs(1), days(1));
    pub const FLOW_TICK: DurBounds = DurBounds::new("flow_tick", ms(1), secs(60));
    pub const DATABASE_SIZE: Bounds<u64> = Bounds::new("database_size (bytes)", 0, 1_000_000 * GB);
    pub const WAL_RETAINED: Bounds<u64> = Bounds::new("wal_retained (bytes)", 0, 1_000_000 * GB);
    pub const CORES: Bounds<u32> = Bounds::new("cores", 1, 1024);
    pub const READ_SERVICE_TIME: DurBounds = DurBounds::new("read_service_time", us(1), secs(60));
    pub const WRITE_SERVICE_TIME: DurBounds = DurBounds::new("write_service_time", us(1), secs(60));
    pub const MAX_CONNECTIONS: Bounds<u32> = Bounds::new("max_connections", 1, 1_000_000);
    pub const STALE_READ_LAG: DurBounds = DurBounds::new("stale_read_lag", us(1), days(1));
    // [[pg_cluster]] and its phases
    pub const WRITE_TPS: Bounds<f64> = Bounds::new("write_tps", 0.0, 1e7);
    pub const STANDBY_READ_TPS: Bounds<f64> = Bounds::new("standby_read_tps", 0.0, 1e7);
    pub const BYTES_PER_COMMIT: Bounds<u64> = Bounds::new("bytes_per_commit (bytes)", 1, GB);
    pub const WRITE_AMPLIFICATION: Bounds<f64> = Bounds::new("write_amplification", 1.0, 100.0);
    pub const CLIENT_TIMEOUT: DurBounds = DurBounds::new("client_timeout", ms(1), days(1));
    pub const PHASE_AT: DurBounds = DurBounds::new("a phase's `at`", ms(0), days(7));
    pub const PHASE_FOR: DurBounds = DurBounds::new("a phase's `for`", ms(1), days(7));
    pub const EXTRA_WAL: Bounds<u64> = Bounds::new("extra_wal (bytes/s)", 1, 100 * GB);
    pub const APPLY_SLOWDOWN: Bounds<f64> = Bounds::new("apply_slowdown", 1.0, 1e6);
    pub const APPLY_RATE: Bounds<u64> = Bounds::new("apply_rate (bytes/s)", 1, 100 * GB);
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    pub at: S<Dur>,
    #[serde(rename = "for")]
    pub for_: S<Dur>,
    /// Extra WAL from a bulk load, ETL or mass delete.
    pub extra_wal: Option<S<Bandwidth>>,
    /// Replay on standbys is this many times slower (autovacuum, index maintenance).
    pub apply_slowdown: Option<S<f64>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: S<String>,
    #[serde(default)]
    pub synchronous_standby_names: Option<S<String>>,
    /// `synchronous_commit` of the write load.
    pub synchronous_commit: Option<S<String>>,
    pub write_tps: Option<S<f64>>,
    pub bytes_per_commit: Option<S<Size>>,
    pub write_amplification: Option<S<f64>>,
    pub client_timeout: Option<S<Dur>>,
    pub standby_read_tps: Option<S<f64>>,
    #[serde(default, rename = "phase")]
    pub phases: Vec<S<RawPhase>>,
    /// A standby cluster (Stolon `role: standby`) fed from this cluster's primary.
    pub standby_of: Option<S<String>>,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawPgNode {
    pub cluster: Option<S<String>>,
    /// The server it streams from; none for the primary.
    pub upstream: Option<S<String>>,
    /// How fast its startup process replays WAL.
    pub apply_rate: Option<S<Bandwidth>>,
    /// Stolon keeper flags `--can-be-master`, `--can-be-synchronous-replica` (both true).
    pub can_be_master: Option<bool>,
    pub can_be_synchronous_replica: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PgSettings {
    pub wal_sender_timeout: Duration,
    pub wal_receiver_timeout: Duration,
    pub wal_receiver_status_interval: Duration,
    pub wal_retrieve_retry_interval: Duration,
    pub checkpoint_timeout: Duration,
    pub flow_tick: Duration,
    pub database_bytes: u64,
    pub wal_retained_bytes: u64,
    pub cores: u32,
    pub read_service: Duration,
    pub write_service: Duration,
    pub max_connections: u32,
    pub stale_read_lag: Duration,
}

impl Default for PgSettings {
    /// PostgreSQL's defaults where it has them.
    fn default() -> Self {
        PgSettings {
            wal_sender_timeout: Duration::from_secs(60),
            wal_receiver_timeout: Duration::from_secs(60),
            wal_receiver_status_interval: Duration::from_secs(10),
            wal_retrieve_retry_interval: Duration::from_secs(5),
            checkpoint_timeout: Duration::from_secs(300),
            flow_tick: Duration::from_millis(10),
            database_bytes: 100_000_000_000,
            wal_retained_bytes: 16_000_000_000,
            cores: 32,
            read_service: Duration::from_micros(500),
            write_service: Duration::from_millis(2),
            max_connections: 100,
            stale_read_lag: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PhaseSpec {
    pub at: Duration,
    pub until: Duration,
    pub extra_wal_bytes_per_s: u64,
    pub apply_slowdown: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    pub name: String,
    pub synchronous_standby_names: String,
    pub synchronous_commit: String,
    pub write_tps: f64,
    pub bytes_per_commit: u64,
    pub write_amplification: f64,
    pub client_timeout: Duration,
    pub standby_read_tps: f64,
    pub phases: Vec<PhaseSpec>,
    /// A standby cluster: the cluster it replicates from (resolved after all are read).
    pub standby_of: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PgNodeSpec {
    pub cluster: usize,
    pub upstream: Option<u32>,
    pub apply_bytes_per_s: u64,
    pub can_be_master: bool,
    pub can_be_synchronous_replica: bool,
}

type Res<T> = Result<T, Diagnostic>;

pub(crate) fn settings(path: &str, text: &str, r: &RawPostgres) -> Res<PgSettings> {
    let d = PgSettings::default();
    let dur = |v: &Option<S<Dur>>, default: Duration, b: DurBounds| b.or(path, text, v, default);
    let cores = range::CORES.or(path, text, &r.cores, d.cores)?;
    Ok(PgSettings {
        wal_sender_timeout: dur(&r.wal_sender_timeout, d.wal_sender_timeout, range::WAL_SENDER_TIMEOUT)?,
        wal_receiver_timeout: dur(&r.wal_receiver_timeout, d.wal_receiver_timeout, range::WAL_RECEIVER_TIMEOUT)?,
        wal_receiver_status_interval: dur(
            &r.wal_receiver_status_interval,
            d.wal_receiver_status_interval,
            range::WAL_RECEIVER_STATUS_INTERVAL,
        )?,
        wal_retrieve_retry_interval: dur(
            &r.wal_retrieve_retry_interval,
            d.wal_retrieve_retry_interval,
            range::WAL_RETRIEVE_RETRY_INTERVAL,
        )?,
        checkpoint_timeout: dur(&r.checkpoint_timeout, d.checkpoint_timeout, range::CHECKPOINT_TIMEOUT)?,
        flow_tick: dur(&r.flow_tick, d.flow_tick, range::FLOW_TICK)?,
        database_bytes: crate::bounds::size_or(&range::DATABASE_SIZE, path, text, &r.database_size, d.database_bytes)?,
        wal_retained_bytes: crate::bounds::size_or(
            &range::WAL_RETAINED,
            path,
            text,
            &r.wal_retained,
            d.wal_retained_bytes,
        )?,
        cores,
        read_service: dur(&r.read_service_time, d.read_service, range::READ_SERVICE_TIME)?,
        write_service: dur(&r.write_service_time, d.write_service, range::WRITE_SERVICE_TIME)?,
        max_connections: range::MAX_CONNECTIONS.or(path, text, &r.max_connections, d.max_connections)?,
        stale_read_lag: dur(&r.stale_read_lag, d.stale_read_lag, range::STALE_READ_LAG)?,
    })
}

const LEVELS: &[&str] = &["off", "local", "remote_write", "on", "remote_apply"];

pub(crate) fn cluster(path: &str, text: &str, r: &RawCluster) -> Res<ClusterSpec> {
    let err = |span, msg: String| Err(Diagnostic::at(path, text, span, msg));
    let level = r.synchronous_commit.as_ref().map_or("on".to_string(), |v| v.get_ref().clone());
    if !LEVELS.contains(&level.as_str()) {
        let span = r.synchronous_commit.as_ref().map_or(0..0, |v| v.span());
        let near = crate::lint::hint(&level, LEVELS.iter().copied());
        return err(
            span,
            format!("unknown synchronous_commit {level:?}{near}; expected one of: {}", LEVELS.join(", ")),
        );
    }
    let names = r.synchronous_standby_names.as_ref().map_or(String::new(), |v| v.get_ref().clone());
    // The model's own parser judges the setting, so what validates is what runs.
    if let Err(e) = models::pg::SyncStandbyNames::parse(&names) {
        return err(
            r.synchronous_standby_names.as_ref().map_or(0..0, |v| v.span()),
            format!("synchronous_standby_names: {e}"),
        );
    }
    let amp = range::WRITE_AMPLIFICATION.or(path, text, &r.write_amplification, 2.0)?;
    let mut phases = Vec::new();
    for p in &r.phases {
        let q = p.get_ref();
        let at = range::PHASE_AT.check(path, text, &q.at)?;
        let len = range::PHASE_FOR.check(path, text, &q.for_)?;
        phases.push(PhaseSpec {
            at,
            until: at + len,
            extra_wal_bytes_per_s: crate::bounds::bandwidth_opt(&range::EXTRA_WAL, path, text, &q.extra_wal)?
                .unwrap_or(0),
            apply_slowdown: range::APPLY_SLOWDOWN.or(path, text, &q.apply_slowdown, 1.0)?,
        });
    }
    Ok(ClusterSpec {
        name: r.name.get_ref().clone(),
        synchronous_standby_names: names,
        synchronous_commit: level,
        write_tps: range::WRITE_TPS.or(path, text, &r.write_tps, 1000.0)?,
        bytes_per_commit: crate::bounds::size_or(&range::BYTES_PER_COMMIT, path, text, &r.bytes_per_commit, 2048)?,
        write_amplification: amp,
        client_timeout: range::CLIENT_TIMEOUT.or(path, text, &r.client_timeout, Duration::from_secs(30))?,
        standby_read_tps: range::STANDBY_READ_TPS.or(path, text, &r.standby_read_tps, 0.0)?,
        phases,
        standby_of: None,
    })
}
