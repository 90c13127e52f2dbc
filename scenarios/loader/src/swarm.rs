//! `[swarm]`: how `pgsim check --swarm` treats a scenario. Optional; every key has a default.

use std::time::Duration;

use serde::Deserialize;

use crate::diag::Diagnostic;
use crate::raw::{Dur, S};

type Res<T> = Result<T, Diagnostic>;

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSwarm {
    pub accept_data_loss: Option<bool>,
    pub failover_share: Option<S<f64>>,
    pub faults_max: Option<S<u32>>,
    pub kinds: Option<S<Vec<S<String>>>>,
    pub liveness_bound: Option<S<Dur>>,
    pub reorder_and_duplicate: Option<bool>,
    pub standby_then_primary: Option<bool>,
}

/// How long the stack may take to converge after the last heal.
pub const LIVENESS_BOUND: crate::bounds::DurBounds =
    crate::bounds::DurBounds::new("liveness_bound", crate::bounds::ms(1), crate::bounds::days(1));

/// Fault kinds a swarm draws unless `[swarm] kinds` says otherwise. Left out: `disk-errors` and
/// `disk-full`. A failed fsync halts an etcd member and PANICs a PostgreSQL server until the
/// process is restarted, and nothing in the simulated stack restarts it (no systemd), so after
/// the heal the node stays down: every such schedule would fail liveness by construction, and a
/// failure must point at the system, not at the schedule.
pub const DEFAULT_KINDS: &[&str] = &[
    "partition",
    "link-down",
    "link-degraded",
    "link-flapping",
    "switch-down",
    "switch-degraded",
    "switch-flapping",
    "node-crash",
    "node-pause",
    "disk-stall",
    "disk-slow",
    "apply-slow",
    "walreceiver-pause",
];

/// `failover_share`: a share of seeds, 0 (none) to 1 (every one).
pub const FAILOVER_SHARE: crate::bounds::Bounds<f64> = crate::bounds::Bounds::new("failover_share", 0.0, 1.0);

/// At most this many faults in one schedule (a swarm run's cost grows with them).
pub const FAULTS_MAX_LIMIT: u32 = 64;

#[derive(Clone, Debug, PartialEq)]
pub struct SwarmSpec {
    /// The scenario accepts losing acknowledged commits that no synchronous standby confirmed
    /// (asynchronous replication by design): the swarm then only requires that commits
    /// confirmed by synchronous standbys survive.
    pub accept_data_loss: bool,
    /// The share of seeds whose schedule also carries one fault aimed at a Stolon failover
    /// path (the primary's host crashed or paused, its keeper cut off from etcd, or the
    /// synchronous standby crashed), held long enough for the sentinel to act on it. Drawn
    /// apart from `kinds` and from the rest of the schedule: with uniform targets a 14-node
    /// stack fails over in a few seeds of a hundred, and most of what an HA stack can get
    /// wrong happens in a failover.
    pub failover_share: f64,
    /// Each seed draws between 1 and this many faults.
    pub faults_max: u32,
    /// The fault kinds a seed may enable (each seed enables a random subset of them).
    pub kinds: Vec<String>,
    /// Overrides the liveness bound derived from the scenario's settings.
    pub liveness_bound: Option<Duration>,
    /// Degraded links also reorder messages (`extra_jitter` up to 1 s) and, in half of them,
    /// duplicate up to half of them (`duplicate_ratio`). For Raft-only swarms: a protocol
    /// must survive both, but the stack's components talk over TCP, which does neither.
    pub reorder_and_duplicate: bool,
    /// Each schedule also crashes a standby of each cluster's first primary and, 0 to
    /// failInterval later, the primary itself: the race Stolon's synchronous-standby
    /// protocol exists for.
    pub standby_then_primary: bool,
}

impl Default for SwarmSpec {
    fn default() -> Self {
        SwarmSpec {
            accept_data_loss: false,
            failover_share: 0.75,
            faults_max: 6,
            kinds: DEFAULT_KINDS.iter().map(|k| k.to_string()).collect(),
            liveness_bound: None,
            reorder_and_duplicate: false,
            standby_then_primary: false,
        }
    }
}

pub(crate) fn swarm(path: &str, text: &str, raw: &RawSwarm) -> Res<SwarmSpec> {
    let d = SwarmSpec::default();
    let err = |span, msg: String| Err(Diagnostic::at(path, text, span, msg));
    let faults_max = match &raw.faults_max {
        Some(v) if *v.get_ref() == 0 || *v.get_ref() > FAULTS_MAX_LIMIT => {
            return err(v.span(), format!("faults_max must be between 1 and {FAULTS_MAX_LIMIT}, got {}", v.get_ref()));
        }
        Some(v) => *v.get_ref(),
        None => d.faults_max,
    };
    let kinds = match &raw.kinds {
        Some(list) => {
            if list.get_ref().is_empty() {
                return err(list.span(), "kinds must name at least one fault kind".into());
            }
            let mut kinds: Vec<String> = Vec::new();
            for k in list.get_ref() {
                let name = k.get_ref();
                let known = crate::faults::kind_names();
                if !known.contains(&name.as_str()) {
                    return err(
                        k.span(),
                        format!("unknown fault kind {name:?}; expected one of: {}", known.join(", ")),
                    );
                }
                if kinds.contains(name) {
                    return err(k.span(), format!("fault kind {name:?} is listed twice"));
                }
                kinds.push(name.clone());
            }
            kinds
        }
        None => d.kinds,
    };
    let liveness_bound = match &raw.liveness_bound {
        Some(v) => Some(LIVENESS_BOUND.check(path, text, v)?),
        None => None,
    };
    Ok(SwarmSpec {
        accept_data_loss: raw.accept_data_loss.unwrap_or(d.accept_data_loss),
        failover_share: FAILOVER_SHARE.or(path, text, &raw.failover_share, d.failover_share)?,
        faults_max,
        kinds,
        liveness_bound,
        reorder_and_duplicate: raw.reorder_and_duplicate.unwrap_or(d.reorder_and_duplicate),
        standby_then_primary: raw.standby_then_primary.unwrap_or(d.standby_then_primary),
    })
}
