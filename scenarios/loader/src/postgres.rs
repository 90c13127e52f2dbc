//! PostgreSQL sections: `[postgres]` (server settings, with postgresql.conf names and
//! defaults), `[[pg_cluster]]` (a primary with its standbys, its `synchronous_standby_names`
//! and its write load, with `[[pg_cluster.phase]]` bulk loads), and `[node.postgres]`.

use std::time::Duration;

use serde::Deserialize;

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
    let dur = |v: &Option<S<Dur>>, default: Duration, what: &str| {
        crate::components::positive_or(path, text, v, default, what)
    };
    let cores = r.cores.as_ref().map_or(Ok(d.cores), |c| {
        if *c.get_ref() == 0 {
            Err(Diagnostic::at(path, text, c.span(), "cores must be at least 1"))
        } else {
            Ok(*c.get_ref())
        }
    })?;
    Ok(PgSettings {
        wal_sender_timeout: dur(&r.wal_sender_timeout, d.wal_sender_timeout, "wal_sender_timeout")?,
        wal_receiver_timeout: dur(&r.wal_receiver_timeout, d.wal_receiver_timeout, "wal_receiver_timeout")?,
        wal_receiver_status_interval: dur(
            &r.wal_receiver_status_interval,
            d.wal_receiver_status_interval,
            "wal_receiver_status_interval",
        )?,
        wal_retrieve_retry_interval: dur(
            &r.wal_retrieve_retry_interval,
            d.wal_retrieve_retry_interval,
            "wal_retrieve_retry_interval",
        )?,
        checkpoint_timeout: dur(&r.checkpoint_timeout, d.checkpoint_timeout, "checkpoint_timeout")?,
        flow_tick: dur(&r.flow_tick, d.flow_tick, "flow_tick")?,
        database_bytes: r.database_size.as_ref().map_or(d.database_bytes, |v| v.get_ref().0),
        wal_retained_bytes: r.wal_retained.as_ref().map_or(d.wal_retained_bytes, |v| v.get_ref().0),
        cores,
        read_service: dur(&r.read_service_time, d.read_service, "read_service_time")?,
        write_service: dur(&r.write_service_time, d.write_service, "write_service_time")?,
        max_connections: r.max_connections.as_ref().map_or(d.max_connections, |v| *v.get_ref()),
        stale_read_lag: dur(&r.stale_read_lag, d.stale_read_lag, "stale_read_lag")?,
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
    if let Err(e) = crate::syncnames::check(&names) {
        return err(
            r.synchronous_standby_names.as_ref().map_or(0..0, |v| v.span()),
            format!("synchronous_standby_names: {e}"),
        );
    }
    let nonneg = |v: &Option<S<f64>>, default: f64, what: &str| -> Res<f64> {
        match v {
            Some(x) if !(x.get_ref().is_finite() && *x.get_ref() >= 0.0) => {
                Err(Diagnostic::at(path, text, x.span(), format!("{what} must be a number >= 0")))
            }
            Some(x) => Ok(*x.get_ref()),
            None => Ok(default),
        }
    };
    let amp = nonneg(&r.write_amplification, 2.0, "write_amplification")?;
    if amp < 1.0 {
        return err(
            r.write_amplification.as_ref().map_or(0..0, |v| v.span()),
            "write_amplification must be at least 1".into(),
        );
    }
    let mut phases = Vec::new();
    for p in &r.phases {
        let q = p.get_ref();
        if q.for_.get_ref().0.is_zero() {
            return err(q.for_.span(), "a phase's `for` must be greater than zero".into());
        }
        let slow = nonneg(&q.apply_slowdown, 1.0, "apply_slowdown")?;
        if slow < 1.0 {
            return err(
                q.apply_slowdown.as_ref().map_or(0..0, |v| v.span()),
                "apply_slowdown must be at least 1".into(),
            );
        }
        phases.push(PhaseSpec {
            at: q.at.get_ref().0,
            until: q.at.get_ref().0 + q.for_.get_ref().0,
            extra_wal_bytes_per_s: q.extra_wal.as_ref().map_or(0, |v| v.get_ref().0),
            apply_slowdown: slow,
        });
    }
    Ok(ClusterSpec {
        name: r.name.get_ref().clone(),
        synchronous_standby_names: names,
        synchronous_commit: level,
        write_tps: nonneg(&r.write_tps, 1000.0, "write_tps")?,
        bytes_per_commit: r.bytes_per_commit.as_ref().map_or(2048, |v| v.get_ref().0.max(1)),
        write_amplification: amp,
        client_timeout: r.client_timeout.as_ref().map_or(Duration::from_secs(30), |v| v.get_ref().0),
        standby_read_tps: nonneg(&r.standby_read_tps, 0.0, "standby_read_tps")?,
        phases,
        standby_of: None,
    })
}
