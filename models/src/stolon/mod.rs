//! Stolon (v0.17, cluster spec names and defaults). This file holds the sentinel's decisions
//! as pure functions (is the master failed, which standby may replace it and why the others
//! may not, which standbys form the synchronous set) and the proxy's check-in rule; the
//! components that call them are sans-IO models talking to etcd:
//! - `Sentinel` (sentinel.rs): elects a leader among sentinels; the leader reads every
//!   keeper's published state and writes the cluster data;
//! - `Keeper` (keeper.rs): publishes its PostgreSQL's state and converges the server to the
//!   cluster data (promote, follow, fence and resync, synchronous_standby_names);
//! - `ProxyControl` (proxy.rs): the stolon-proxy's check-in, naming the server clients reach.

pub mod client;
pub mod cluster_data;
pub mod keeper;
pub mod proxy;
pub mod sentinel;
#[cfg(test)]
mod testkit;

pub use client::EtcdClient;
pub use cluster_data::{ClusterData, ClusterRole, DecodeError, DesiredRole, KeeperState, OpStamp, ServerRole};
pub use keeper::{Keeper, KeeperConfig, KeeperTimer, LocalPg, LocalRole, PgCommand};
pub use proxy::{ProxyConfig, ProxyControl, ProxyTimer};
pub use sentinel::{OperatorCmd, Sentinel, SentinelConfig, SentinelTimer};

use std::time::Duration;

use crate::time::SimTime;

/// The cluster spec keys these decisions read, spelled as Stolon spells them.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    /// `failInterval` (20s): a keeper silent this long is failed.
    pub fail_interval: Duration,
    /// `synchronousReplication` (false).
    pub synchronous_replication: bool,
    /// `minSynchronousStandbys` (1), `maxSynchronousStandbys` (1).
    pub min_synchronous_standbys: usize,
    pub max_synchronous_standbys: usize,
    /// `maxStandbyLag` (1232896 bytes): how far behind an async standby may be to be promoted.
    pub max_standby_lag: u64,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            fail_interval: Duration::from_secs(20),
            synchronous_replication: false,
            min_synchronous_standbys: 1,
            max_synchronous_standbys: 1,
            max_standby_lag: 1_232_896,
        }
    }
}

/// What the sentinel knows about one keeper (from its last published state).
#[derive(Clone, Debug, PartialEq)]
pub struct KeeperInfo {
    pub name: String,
    pub last_update: SimTime,
    pub db_healthy: bool,
    /// `--can-be-master`, `--can-be-synchronous-replica`.
    pub can_be_master: bool,
    pub can_be_synchronous_replica: bool,
    pub timeline: u32,
    pub xlog_pos: u64,
}

impl KeeperInfo {
    /// Published a healthy state within `failInterval`.
    pub fn healthy(&self, spec: &ClusterSpec, now: SimTime) -> bool {
        self.db_healthy && now.saturating_since(self.last_update) < spec.fail_interval
    }
}

/// Why a standby cannot become master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ineligible {
    Unhealthy,
    CannotBeMaster,
    /// With synchronousReplication, only a member of the synchronous set may be promoted.
    NotSynchronous,
    TimelineBehind {
        standby: u32,
        master: u32,
    },
    TooFarBehind {
        lag_bytes: u64,
        max_standby_lag: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    KeepMaster,
    Promote {
        keeper: String,
    },
    /// Stolon logs "no eligible masters"; the cluster stays without a writable master.
    NoEligibleMasters {
        reasons: Vec<(String, Ineligible)>,
    },
}

/// The failover decision for a cluster whose master is `master` (index into `keepers`) and
/// whose synchronous set is `sync_set`.
pub fn decide(
    spec: &ClusterSpec,
    now: SimTime,
    keepers: &[KeeperInfo],
    master: usize,
    sync_set: &[String],
) -> Decision {
    let m = &keepers[master];
    if m.healthy(spec, now) {
        return Decision::KeepMaster;
    }
    let mut reasons = Vec::new();
    let mut best: Option<&KeeperInfo> = None;
    for (i, k) in keepers.iter().enumerate() {
        if i == master {
            continue;
        }
        let why = if !k.healthy(spec, now) {
            Some(Ineligible::Unhealthy)
        } else if !k.can_be_master {
            Some(Ineligible::CannotBeMaster)
        } else if k.timeline < m.timeline {
            Some(Ineligible::TimelineBehind { standby: k.timeline, master: m.timeline })
        } else if spec.synchronous_replication && !sync_set.contains(&k.name) {
            Some(Ineligible::NotSynchronous)
        } else if !spec.synchronous_replication && m.xlog_pos.saturating_sub(k.xlog_pos) > spec.max_standby_lag {
            Some(Ineligible::TooFarBehind { lag_bytes: m.xlog_pos - k.xlog_pos, max_standby_lag: spec.max_standby_lag })
        } else {
            None
        };
        match why {
            Some(w) => reasons.push((k.name.clone(), w)),
            // The least lagging wins; ties go to the first declared.
            None if best.is_none_or(|b| k.xlog_pos > b.xlog_pos) => best = Some(k),
            None => {}
        }
    }
    match best {
        Some(k) => Decision::Promote { keeper: k.name.clone() },
        None => Decision::NoEligibleMasters { reasons },
    }
}

/// Stolon's placeholder: named in synchronous_standby_names when too few real standbys are
/// healthy, so the master blocks writes rather than accept them without a second copy.
pub const FAKE_STANDBY: &str = "stolonfakestandby";

/// The synchronous set the sentinel keeps: current members that are still healthy, topped up
/// with healthy eligible standbys up to `maxSynchronousStandbys`; below
/// `minSynchronousStandbys`, the placeholder fills the gap.
pub fn synchronous_set(
    spec: &ClusterSpec,
    now: SimTime,
    keepers: &[KeeperInfo],
    master: usize,
    current: &[String],
) -> Vec<String> {
    if !spec.synchronous_replication {
        return Vec::new();
    }
    let eligible = |k: &KeeperInfo| k.healthy(spec, now) && k.can_be_synchronous_replica;
    let mut set: Vec<String> = current
        .iter()
        .filter(|n| keepers.iter().enumerate().any(|(i, k)| i != master && &k.name == *n && eligible(k)))
        .cloned()
        .collect();
    for (i, k) in keepers.iter().enumerate() {
        if set.len() >= spec.max_synchronous_standbys {
            break;
        }
        if i != master && eligible(k) && !set.contains(&k.name) {
            set.push(k.name.clone());
        }
    }
    while set.len() < spec.min_synchronous_standbys {
        set.push(FAKE_STANDBY.into());
    }
    set
}

/// The stolon-proxy's view (v0.17): it checks in with the store every `proxyCheckInterval`;
/// after `proxyTimeout` without a successful check-in it closes every client connection and
/// stops listening; it sends new connections only to the master the cluster data names, and
/// closes connections to a master that is no longer named.
#[derive(Clone, Debug, PartialEq)]
pub struct Proxy {
    /// `proxyTimeout` (15s).
    pub proxy_timeout: Duration,
    last_checkin: SimTime,
    master: Option<String>,
    listening: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyAction {
    /// Close every client connection and stop accepting (store unreachable).
    CloseAllAndStopListening,
    /// The master changed: close connections to the old one, send new ones to `to`.
    Retarget { from: Option<String>, to: Option<String> },
    /// Accepting again after the store came back.
    Listen,
}

impl Proxy {
    pub fn new(proxy_timeout: Duration, now: SimTime) -> Proxy {
        Proxy { proxy_timeout, last_checkin: now, master: None, listening: false }
    }

    pub fn is_listening(&self) -> bool {
        self.listening
    }

    pub fn master(&self) -> Option<&str> {
        if self.listening { self.master.as_deref() } else { None }
    }

    /// A successful read of the cluster data naming `master`.
    pub fn on_checkin(&mut self, now: SimTime, master: Option<String>) -> Vec<ProxyAction> {
        self.last_checkin = now;
        let mut actions = Vec::new();
        if !self.listening {
            self.listening = true;
            actions.push(ProxyAction::Listen);
        }
        if master != self.master {
            actions.push(ProxyAction::Retarget { from: self.master.clone(), to: master.clone() });
            self.master = master;
        }
        actions
    }

    /// Called every `proxyCheckInterval`, whether or not the check-in succeeded.
    pub fn on_tick(&mut self, now: SimTime) -> Option<ProxyAction> {
        if self.listening && now.saturating_since(self.last_checkin) >= self.proxy_timeout {
            self.listening = false;
            return Some(ProxyAction::CloseAllAndStopListening);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str, healthy: bool, xlog: u64) -> KeeperInfo {
        KeeperInfo {
            name: name.into(),
            last_update: if healthy { SimTime::from_duration(Duration::from_secs(95)) } else { SimTime::ZERO },
            db_healthy: true,
            can_be_master: true,
            can_be_synchronous_replica: true,
            timeline: 1,
            xlog_pos: xlog,
        }
    }
    fn now() -> SimTime {
        SimTime::from_duration(Duration::from_secs(100))
    }

    #[test]
    fn a_healthy_master_is_kept_and_a_silent_one_replaced() {
        let spec = ClusterSpec::default();
        let ks = vec![k("m", true, 1000), k("a", true, 900)];
        assert_eq!(decide(&spec, now(), &ks, 0, &[]), Decision::KeepMaster);
        let ks = vec![k("m", false, 1000), k("a", true, 900), k("b", true, 990)];
        assert_eq!(decide(&spec, now(), &ks, 0, &[]), Decision::Promote { keeper: "b".into() }, "least lag wins");
    }

    #[test]
    fn synchronous_replication_promotes_only_from_the_synchronous_set() {
        let spec = ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() };
        let ks = vec![k("m", false, 1000), k("sync", false, 1000), k("async", true, 1000)];
        match decide(&spec, now(), &ks, 0, &["sync".into()]) {
            Decision::NoEligibleMasters { reasons } => {
                assert_eq!(
                    reasons,
                    vec![("sync".into(), Ineligible::Unhealthy), ("async".into(), Ineligible::NotSynchronous)]
                );
            }
            other => panic!("expected no eligible masters, got {other:?}"),
        }
        let ks = vec![k("m", false, 1000), k("sync", true, 800), k("async", true, 1000)];
        assert_eq!(decide(&spec, now(), &ks, 0, &["sync".into()]), Decision::Promote { keeper: "sync".into() });
    }

    #[test]
    fn async_standbys_too_far_behind_or_unwilling_are_not_promoted() {
        let spec = ClusterSpec::default();
        let mut unwilling = k("u", true, 1_000_000);
        unwilling.can_be_master = false;
        let ks = vec![k("m", false, 2_000_000), k("far", true, 100_000), unwilling];
        match decide(&spec, now(), &ks, 0, &[]) {
            Decision::NoEligibleMasters { reasons } => {
                assert_eq!(
                    reasons[0],
                    ("far".into(), Ineligible::TooFarBehind { lag_bytes: 1_900_000, max_standby_lag: 1_232_896 })
                );
                assert_eq!(reasons[1], ("u".into(), Ineligible::CannotBeMaster));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_proxy_stops_after_proxy_timeout_and_follows_the_named_master() {
        let t = |s: u64| SimTime::from_duration(Duration::from_secs(s));
        let mut p = Proxy::new(Duration::from_secs(15), t(0));
        assert_eq!(p.master(), None, "not listening before the first check-in");
        assert_eq!(
            p.on_checkin(t(1), Some("k1".into())),
            vec![ProxyAction::Listen, ProxyAction::Retarget { from: None, to: Some("k1".into()) }]
        );
        assert_eq!(p.on_tick(t(15)), None, "14 s since the check-in");
        assert_eq!(p.on_tick(t(16)), Some(ProxyAction::CloseAllAndStopListening));
        assert_eq!(p.master(), None);
        assert_eq!(p.on_tick(t(20)), None, "closes once");
        assert_eq!(
            p.on_checkin(t(21), Some("k2".into())),
            vec![ProxyAction::Listen, ProxyAction::Retarget { from: Some("k1".into()), to: Some("k2".into()) }]
        );
        assert_eq!(p.on_checkin(t(26), Some("k2".into())), vec![], "nothing changes");
        assert_eq!(p.master(), Some("k2"));
    }

    #[test]
    fn the_synchronous_set_keeps_members_and_blocks_with_a_placeholder() {
        let spec = ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() };
        let ks = vec![k("m", true, 0), k("a", true, 0), k("b", true, 0)];
        assert_eq!(
            synchronous_set(&spec, now(), &ks, 0, &["b".into()]),
            vec!["b".to_string()],
            "the current member stays"
        );
        let ks = vec![k("m", true, 0), k("a", true, 0), k("b", false, 0)];
        assert_eq!(
            synchronous_set(&spec, now(), &ks, 0, &["b".into()]),
            vec!["a".to_string()],
            "an unhealthy one is replaced"
        );
        let ks = vec![k("m", true, 0), k("a", false, 0), k("b", false, 0)];
        assert_eq!(
            synchronous_set(&spec, now(), &ks, 0, &["b".into()]),
            vec![FAKE_STANDBY.to_string()],
            "writes block"
        );
        assert!(synchronous_set(&ClusterSpec::default(), now(), &ks, 0, &[]).is_empty());
    }
}
