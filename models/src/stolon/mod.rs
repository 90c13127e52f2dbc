//! Stolon (v0.17, cluster spec names and defaults). This file holds the sentinel's decisions
//! as pure functions (is the master failed, which standby may replace it and why the others
//! may not, how the synchronous standbys change: sorintlab/stolon `cmd/sentinel/cmd/
//! sentinel.go`, `updateCluster` and `findBestNewMasters`) and the proxy's check-in rule; the
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
pub use cluster_data::{
    ClusterData, ClusterRole, DecodeError, DesiredRole, KeeperState, OpStamp, ProxyInfo, ProxySpec, ServerRole,
};
pub use keeper::{Keeper, KeeperCommand, KeeperConfig, KeeperTimer, LocalPg, LocalRole};
pub use proxy::{ProxyConfig, ProxyControl, ProxyTimer};
pub use sentinel::{OperatorCmd, Sentinel, SentinelConfig, SentinelTimer};

use std::time::Duration;

use crate::time::SimTime;

/// When a Stolon process's loop first runs after it starts: a uniform phase in
/// `[1 ns, interval]`. Real keepers, sentinels and proxies are started at different moments
/// and loop as `work; time.Sleep(interval)`, so their rounds are out of phase with each
/// other; started together, every proxy's report would land just after the sentinel's read
/// of the same round (the sentinel would always wait a second round in the proxy handshake)
/// and every keeper's publication at the same instant. etcd's members take a phase the same
/// way (`etcd::member`).
pub(crate) fn start_phase(rng: &mut crate::rng::SimRng, interval: Duration) -> Duration {
    let interval_ns = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(rand::Rng::gen_range(rng, 1..=interval_ns))
}

/// Stolon v0.17's defaults for the settings several of its processes share, each once, under
/// Stolon's name for it (the cluster spec keys the sentinel decides with are `ClusterSpec`'s).
pub mod defaults {
    use std::time::Duration;

    /// `sleepInterval`: how often keepers and sentinels run their loop.
    pub const SLEEP_INTERVAL: Duration = Duration::from_secs(5);
    /// `requestTimeout`: how long a keeper, sentinel or proxy waits for etcd.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// `proxyCheckInterval`: how often a proxy checks in.
    pub const PROXY_CHECK_INTERVAL: Duration = Duration::from_secs(5);
    /// `proxyTimeout`: a proxy that has not checked in this long is not counted as up.
    pub const PROXY_TIMEOUT: Duration = Duration::from_secs(15);
    /// `usePgrewind`: resync a diverged standby with pg_rewind rather than a base backup.
    pub const USE_PGREWIND: bool = false;
    /// The TTL of the sentinels' etcd election session, seconds.
    pub const SENTINEL_SESSION_TTL_S: u64 = 20;
}

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
    /// The first round of the current run of rounds in which the keeper was in error (its
    /// info not updated, or its database not healthy); `None` while it is fine. Stolon's
    /// keeperErrorTimers/dbErrorTimers.
    pub error_since: Option<SimTime>,
    /// False when the keeper counts as failed whatever its error timer: forced failed
    /// (stolonctl failkeeper) for this round, or, in a new leader's first round, judged failed
    /// by the previous leader (the health stored in the cluster data; sentinel.go
    /// `clusterSentinelCheck`, `firstRun`).
    pub db_healthy: bool,
    /// `--can-be-master`, `--can-be-synchronous-replica`.
    pub can_be_master: bool,
    pub can_be_synchronous_replica: bool,
    /// Its server runs as the standby the cluster data asks for: not being rebuilt, fenced
    /// or promoted. Stolon's `dbConvergenceState` (the keeper reports the spec generation it
    /// has applied) inferred from what the keeper publishes; a DB still converging is not in
    /// good state, and `findBestStandbys` takes only those (`validStandbysByStatus`).
    pub converged: bool,
    pub timeline: u32,
    pub xlog_pos: u64,
}

impl KeeperInfo {
    /// Not in error for longer than `failInterval` (Stolon's isKeeperHealthy and isDBHealthy:
    /// failed once `timer.Since(errorStart) > failInterval`).
    pub fn healthy(&self, spec: &ClusterSpec, now: SimTime) -> bool {
        self.db_healthy && self.error_since.is_none_or(|t| now.saturating_since(t) <= spec.fail_interval)
    }
}

/// Why a standby cannot become master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ineligible {
    Unhealthy,
    CannotBeMaster,
    /// Still converging to its spec (being rebuilt, say): not in good state.
    Converging,
    /// With synchronousReplication, only a member of the synchronous set may be promoted.
    NotSynchronous,
    /// On another timeline than the master (findBestStandbys skips `TimelineID !=`).
    OtherTimeline {
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

/// The failover decision for a cluster whose master is `master` (index into `keepers`),
/// as Stolon v0.17's `updateCluster` makes it with `findBestNewMasters`: the candidates are
/// the healthy standbys on the master's timeline that may be master (and, without synchronous
/// replication, within `maxStandbyLag` of the master's last reported position), sorted by
/// their reported position *ascending* (`sort.Sort(dbSlice)` with `Less` on `XLogPos <`) and
/// the first taken: among equally eligible standbys Stolon elects the least advanced one.
/// With synchronous replication only `sync_candidates` may be chosen: the standbys the old
/// master's keeper reported in sync that are also in its wanted set
/// (`util.CommonElements(Status.SynchronousStandbys, Spec.SynchronousStandbys)`).
pub fn decide(
    spec: &ClusterSpec,
    now: SimTime,
    keepers: &[KeeperInfo],
    master: usize,
    sync_candidates: &[String],
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
        } else if !k.converged {
            Some(Ineligible::Converging)
        } else if !k.can_be_master {
            Some(Ineligible::CannotBeMaster)
        } else if k.timeline != m.timeline {
            Some(Ineligible::OtherTimeline { standby: k.timeline, master: m.timeline })
        } else if spec.synchronous_replication && !sync_candidates.contains(&k.name) {
            Some(Ineligible::NotSynchronous)
        } else if !spec.synchronous_replication && m.xlog_pos.saturating_sub(k.xlog_pos) > spec.max_standby_lag {
            Some(Ineligible::TooFarBehind { lag_bytes: m.xlog_pos - k.xlog_pos, max_standby_lag: spec.max_standby_lag })
        } else {
            None
        };
        match why {
            Some(w) => reasons.push((k.name.clone(), w)),
            // The least advanced wins (see above); ties go to the first declared.
            None if best.is_none_or(|b| k.xlog_pos < b.xlog_pos) => best = Some(k),
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

/// The master's synchronous standbys as the sentinel keeps them in the cluster data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStandbys {
    /// Wanted in `synchronous_standby_names` (the master's DBSpec.SynchronousStandbys),
    /// real keepers only, sorted.
    pub wanted: Vec<String>,
    /// The placeholder is wanted too (DBSpec.ExternalSynchronousStandbys).
    pub fake: bool,
    /// Those of `wanted` the master's keeper has reported in sync since they were wanted
    /// (DBStatus.SynchronousStandbys).
    pub in_sync: Vec<String>,
}

impl SyncStandbys {
    /// From the cluster data's lists (the placeholder, if any, among `names`).
    pub fn from_data(names: &[String], in_sync: &[String]) -> SyncStandbys {
        SyncStandbys {
            wanted: names.iter().filter(|n| *n != FAKE_STANDBY).cloned().collect(),
            fake: names.iter().any(|n| n == FAKE_STANDBY),
            in_sync: in_sync.to_vec(),
        }
    }

    /// What goes into the cluster data (and so into synchronous_standby_names).
    pub fn names(&self) -> Vec<String> {
        let mut names = self.wanted.clone();
        if self.fake {
            names.push(FAKE_STANDBY.into());
        }
        names
    }

    /// The standbys a failover may promote: wanted and reported in sync.
    pub fn candidates(&self) -> Vec<String> {
        self.wanted.iter().filter(|n| self.in_sync.contains(n)).cloned().collect()
    }

    /// Whether the reported set is the wanted one: only then may the set change.
    pub fn settled(&self) -> bool {
        same_set(&self.in_sync, &self.wanted)
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// What one sentinel round knows about the master's standbys.
#[derive(Clone, Debug, Default)]
pub struct SyncView {
    /// What the master's keeper last reported in sync (`pg_stat_replication`'s
    /// `sync_state = 'sync'`: what the server has in force).
    pub reported: Vec<String>,
    /// Standbys in good state: healthy (within failInterval) and serving as standbys.
    pub good: Vec<String>,
    /// Good standbys on the master's timeline that may be synchronous, in the order Stolon
    /// adds them (`findBestStandbys`: reported position ascending, ties by declaration).
    pub best: Vec<String>,
}

/// One round of Stolon v0.17's synchronous-standby management (`updateCluster`, run only
/// while the master is healthy and converged):
/// 1. while the in-sync set differs from the wanted one, record the wanted standbys the
///    master now reports in sync; if one still awaited is no longer good, fall back to
///    wanting only those in sync; if they still differ, wait ("waiting for new defined
///    synchronous standbys to be in sync");
/// 2. otherwise compute the new set: the wanted ones still good, then the best other good
///    standbys up to `maxSynchronousStandbys`, then earlier ones (good or not) up to
///    `minSynchronousStandbys`; if that adds a standby, the earlier ones are kept too
///    (merge), so the set changes in two steps and a failover always finds a standby that
///    was wanted and in sync; the placeholder fills what is below the minimum.
pub fn update_synchronous_standbys(spec: &ClusterSpec, cur: &SyncStandbys, view: &SyncView) -> SyncStandbys {
    let mut next = cur.clone();
    if !next.settled() {
        let mut in_sync: Vec<String> = next.in_sync.iter().filter(|n| next.wanted.contains(n)).cloned().collect();
        for r in &view.reported {
            if next.wanted.contains(r) && !in_sync.contains(r) {
                in_sync.push(r.clone());
            }
        }
        let awaited_bad = next.wanted.iter().any(|w| !in_sync.contains(w) && !view.good.contains(w));
        in_sync.sort();
        next.in_sync = in_sync;
        if awaited_bad {
            next.wanted = next.in_sync.clone();
            next.wanted.sort();
        }
        if !next.settled() {
            return next;
        }
    }
    let prev = next.wanted.clone();
    let mut set: Vec<String> = prev.iter().filter(|n| view.good.contains(n)).cloned().collect();
    // In excess (maxSynchronousStandbys lowered): Stolon drops arbitrary ones (map order);
    // pgsim the last by name.
    set.truncate(spec.max_synchronous_standbys);
    for b in &view.best {
        if set.len() >= spec.max_synchronous_standbys {
            break;
        }
        if !set.contains(b) {
            set.push(b.clone());
        }
    }
    for p in &prev {
        if set.len() >= spec.min_synchronous_standbys {
            break;
        }
        if !set.contains(p) {
            set.push(p.clone());
        }
    }
    if set.iter().any(|n| !prev.contains(n)) {
        for p in &prev {
            if !set.contains(p) {
                set.push(p.clone());
            }
        }
    }
    set.sort();
    next.fake = set.len() < spec.min_synchronous_standbys;
    next.in_sync.retain(|n| set.contains(n));
    next.wanted = set;
    next
}

/// What the proxies are told after one sentinel round (Stolon v0.17, sentinel.go
/// `updateCluster`), for a cluster whose master is `master`; `elected`: it became master in
/// this round. `active`: every active proxy with the proxy generation it last reported.
/// - A new master: the proxies are told there is none (`MasterDBUID = ""`, generation bumped),
///   so each closes its connections to the old master at its next check.
/// - No master named: once every active proxy reports the current generation (each has
///   closed its connections to the old master, or has disappeared), name `master`.
/// - A master named: the enabled proxies become the active ones.
///
/// Stolon does not wait for the new master to be promoted before naming it: the proxies reach
/// it one round after the election at the earliest, by which time its keeper, checking every
/// `sleepInterval` too, has normally told it to promote.
pub fn update_proxy_spec(cur: &ProxySpec, master: &str, elected: bool, active: &[(String, u64)]) -> ProxySpec {
    let mut next = cur.clone();
    if elected {
        if next.master.is_some() {
            next.master = None;
            next.generation += 1;
        }
        return next;
    }
    match &next.master {
        None => {
            if active.iter().all(|(_, generation)| *generation == next.generation) {
                next.master = Some(master.to_string());
                next.generation += 1;
            }
        }
        Some(_) => {
            let mut enabled: Vec<String> = active.iter().map(|(p, _)| p.clone()).collect();
            enabled.sort();
            if enabled != next.enabled {
                next.enabled = enabled;
                next.generation += 1;
            }
        }
    }
    next
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
            // In error for 5 s (healthy) or since 0 s (failed at 100 s).
            error_since: Some(if healthy { SimTime::from_duration(Duration::from_secs(95)) } else { SimTime::ZERO }),
            db_healthy: true,
            can_be_master: true,
            can_be_synchronous_replica: true,
            converged: true,
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
        let ks = vec![k("m", false, 1000), k("a", true, 990), k("b", true, 900), k("c", true, 900)];
        assert_eq!(
            decide(&spec, now(), &ks, 0, &[]),
            Decision::Promote { keeper: "b".into() },
            "Stolon sorts the candidates by position ascending and takes the first; ties: first declared"
        );
    }

    #[test]
    fn a_standby_still_converging_is_not_elected() {
        // Async promotion seed 28 of the 2020 replay: the old master, rebuilt by base backup
        // but within failInterval of its last healthy report, was elected; Stolon's
        // findBestStandbys skips a DB that is not in good state (converging).
        let spec = ClusterSpec { synchronous_replication: false, ..ClusterSpec::default() };
        let rebuilding = KeeperInfo { converged: false, ..k("old", true, 900) };
        let ks = vec![k("m", false, 1000), rebuilding, k("b", true, 950)];
        assert_eq!(decide(&spec, now(), &ks, 0, &[]), Decision::Promote { keeper: "b".into() });
        let ks = vec![k("m", false, 1000), KeeperInfo { converged: false, ..k("old", true, 900) }];
        assert_eq!(
            decide(&spec, now(), &ks, 0, &[]),
            Decision::NoEligibleMasters { reasons: vec![("old".into(), Ineligible::Converging)] }
        );
    }

    #[test]
    fn failed_means_in_error_for_more_than_fail_interval() {
        let spec = ClusterSpec::default();
        let at = |s: u64| SimTime::from_duration(Duration::from_secs(s));
        let mut m = k("m", true, 0);
        m.error_since = None;
        assert!(m.healthy(&spec, at(1000)), "never in error");
        m.error_since = Some(at(10));
        assert!(m.healthy(&spec, at(30)), "exactly failInterval: not yet (timer.Since > failInterval)");
        assert!(!m.healthy(&spec, at(31)));
        m.error_since = None;
        m.db_healthy = false;
        assert!(!m.healthy(&spec, at(31)), "forced failed");
    }

    #[test]
    fn a_standby_on_another_timeline_is_not_promoted() {
        let spec = ClusterSpec::default();
        let mut ahead = k("ahead", true, 1000);
        ahead.timeline = 2;
        let ks = vec![k("m", false, 1000), ahead];
        assert_eq!(
            decide(&spec, now(), &ks, 0, &[]),
            Decision::NoEligibleMasters {
                reasons: vec![("ahead".into(), Ineligible::OtherTimeline { standby: 2, master: 1 })]
            }
        );
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

    /// Stolon's findBestNewMasters drops a standby when `masterXLogPos - XLogPos >
    /// maxStandbyLag`: a standby exactly maxStandbyLag behind may still be promoted.
    #[test]
    fn a_standby_exactly_max_standby_lag_behind_may_be_promoted() {
        let spec = ClusterSpec::default();
        let lag = spec.max_standby_lag;
        let ks = vec![k("m", false, 10_000_000), k("edge", true, 10_000_000 - lag)];
        assert_eq!(decide(&spec, now(), &ks, 0, &[]), Decision::Promote { keeper: "edge".into() });
        let ks = vec![k("m", false, 10_000_000), k("past", true, 10_000_000 - lag - 1)];
        assert!(matches!(decide(&spec, now(), &ks, 0, &[]), Decision::NoEligibleMasters { .. }));
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

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn reported(v: &[(&str, u64)]) -> Vec<(String, u64)> {
        v.iter().map(|(p, g)| (p.to_string(), *g)).collect()
    }

    fn proxy_spec(generation: u64, master: Option<&str>, enabled: &[&str]) -> ProxySpec {
        ProxySpec { generation, master: master.map(str::to_string), enabled: names(enabled) }
    }

    #[test]
    fn an_election_tells_the_proxies_there_is_no_master_once() {
        let cur = proxy_spec(4, Some("a"), &["p1", "p2"]);
        let all_at_4 = reported(&[("p1", 4), ("p2", 4)]);
        let emptied = update_proxy_spec(&cur, "b", true, &all_at_4);
        assert_eq!(emptied, proxy_spec(5, None, &["p1", "p2"]), "enabled proxies are kept");
        assert_eq!(update_proxy_spec(&emptied, "c", true, &all_at_4), emptied, "already empty: no new generation");
    }

    #[test]
    fn the_new_master_is_named_only_once_every_active_proxy_applied_the_empty_generation() {
        let emptied = proxy_spec(5, None, &["p1", "p2"]);
        let waiting = update_proxy_spec(&emptied, "b", false, &reported(&[("p1", 5), ("p2", 4)]));
        assert_eq!(waiting, emptied, "p2 may still send clients to the old master");
        let named = update_proxy_spec(&emptied, "b", false, &reported(&[("p1", 5), ("p2", 5)]));
        assert_eq!(named, proxy_spec(6, Some("b"), &["p1", "p2"]));
        assert_eq!(
            update_proxy_spec(&emptied, "b", false, &reported(&[("p1", 5)])),
            named,
            "a proxy no longer active is assumed to have closed its connections"
        );
        assert_eq!(update_proxy_spec(&emptied, "b", false, &[]), named, "no proxy at all");
    }

    #[test]
    fn with_a_master_named_the_enabled_proxies_follow_the_active_ones() {
        let named = proxy_spec(6, Some("b"), &["p1", "p2"]);
        let same = update_proxy_spec(&named, "b", false, &reported(&[("p2", 6), ("p1", 6)]));
        assert_eq!(same, named, "sorted: no change, no new generation");
        let one = update_proxy_spec(&named, "b", false, &reported(&[("p2", 6)]));
        assert_eq!(one, proxy_spec(7, Some("b"), &["p2"]));
        let back = update_proxy_spec(&one, "b", false, &reported(&[("p2", 7), ("p1", 3)]));
        assert_eq!(back, proxy_spec(8, Some("b"), &["p1", "p2"]), "whatever generation p1 last applied");
    }

    fn sync(wanted: &[&str], in_sync: &[&str]) -> SyncStandbys {
        SyncStandbys { wanted: names(wanted), fake: false, in_sync: names(in_sync) }
    }

    fn view(reported: &[&str], good: &[&str], best: &[&str]) -> SyncView {
        SyncView { reported: names(reported), good: names(good), best: names(best) }
    }

    #[test]
    fn a_settled_set_keeps_its_good_members() {
        let spec = ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() };
        let cur = sync(&["b"], &["b"]);
        assert_eq!(update_synchronous_standbys(&spec, &cur, &view(&["b"], &["a", "b"], &["a", "b"])), cur);
        assert_eq!(
            update_synchronous_standbys(&spec, &cur, &view(&[], &["a", "b"], &["a", "b"])),
            cur,
            "a report gap changes nothing"
        );
    }

    #[test]
    fn a_failed_member_is_replaced_in_two_steps_merge_first() {
        let spec = ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() };
        // b failed: a is added, and b kept with it (merge), b still the only one in sync.
        let step1 = update_synchronous_standbys(&spec, &sync(&["b"], &["b"]), &view(&["b"], &["a"], &["a"]));
        assert_eq!(step1, sync(&["a", "b"], &["b"]));
        assert_eq!(step1.candidates(), names(&["b"]), "a failover now may only pick b");
        // The master has not reported a in sync yet: wait, whatever the rounds.
        let wait = update_synchronous_standbys(&spec, &step1, &view(&["b"], &["a"], &["a"]));
        assert_eq!(wait, step1, "waiting for new defined synchronous standbys to be in sync");
        // Reported: a is recorded in sync, the set settles, and the next computation drops b.
        let step2 = update_synchronous_standbys(&spec, &step1, &view(&["a"], &["a"], &["a"]));
        assert_eq!(step2, sync(&["a"], &["a"]));
    }

    #[test]
    fn an_awaited_standby_that_fails_falls_back_to_those_in_sync() {
        let spec = ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() };
        // Waiting for a to be in sync, a fails: want only b (in sync), then recompute with c.
        let cur = sync(&["a", "b"], &["b"]);
        let next = update_synchronous_standbys(&spec, &cur, &view(&["b"], &["b", "c"], &["c", "b"]));
        assert_eq!(next, sync(&["b"], &["b"]), "b is good and in sync: it stays, and is enough");
        // Nothing in sync and nothing good: the placeholder blocks writes; the failed
        // member stays wanted (minSynchronousStandbys keeps earlier ones).
        let cur = sync(&["a"], &["a"]);
        let next = update_synchronous_standbys(&spec, &cur, &view(&[], &[], &[]));
        assert_eq!(next, sync(&["a"], &["a"]), "a kept to reach the minimum, no placeholder needed");
        let empty = update_synchronous_standbys(&spec, &SyncStandbys::default(), &view(&[], &[], &[]));
        assert_eq!((empty.wanted.len(), empty.fake), (0, true));
        assert_eq!(empty.names(), names(&[FAKE_STANDBY]));
    }

    /// While a wanted standby is not yet reported in sync but still good, the sentinel waits for
    /// it ("waiting for new defined synchronous standbys to be in sync"), even when another
    /// standby now ranks better: the set changes only once settled.
    #[test]
    fn an_awaited_standby_that_is_still_good_is_waited_for() {
        let spec = ClusterSpec { synchronous_replication: true, max_synchronous_standbys: 2, ..ClusterSpec::default() };
        let cur = sync(&["a", "b"], &["b"]);
        let next = update_synchronous_standbys(&spec, &cur, &view(&["b"], &["a", "b", "c"], &["c", "a", "b"]));
        assert_eq!(next, cur);
    }

    #[test]
    fn a_new_set_starts_from_the_best_standby_and_waits_for_its_report() {
        let spec = ClusterSpec { synchronous_replication: true, max_synchronous_standbys: 2, ..ClusterSpec::default() };
        let first = update_synchronous_standbys(
            &spec,
            &SyncStandbys::default(),
            &view(&[], &["a", "b", "c"], &["c", "a", "b"]),
        );
        assert_eq!(first, sync(&["a", "c"], &[]), "the first two of best, sorted by name");
        let half = update_synchronous_standbys(&spec, &first, &view(&["c", "b"], &["a", "b", "c"], &["c", "a", "b"]));
        assert_eq!(half, sync(&["a", "c"], &["c"]), "b is not wanted: its report is ignored");
        assert!(half.candidates() == names(&["c"]) && !half.settled());
        let full = update_synchronous_standbys(&spec, &half, &view(&["a", "c"], &["a", "b", "c"], &["c", "a", "b"]));
        assert_eq!(full, sync(&["a", "c"], &["a", "c"]));
        // A standby that may not be synchronous is not in `best`; with no other, the set
        // keeps what it has.
        let only = update_synchronous_standbys(&spec, &full, &view(&["a", "c"], &["a", "c"], &["a", "c"]));
        assert_eq!(only, full);
    }
}
