//! The stolon-sentinel. Several run per cluster; they elect a leader through an etcd lease
//! (`sentinel-leader`, session TTL 20 s) and only the leader decides. Every `sleepInterval`
//! every sentinel reads the cluster data (to learn which operator commands were applied and
//! the spec in force); the leader also reads every keeper's published state in the same
//! transaction, notes whose info uid changed, runs `decide()` and `update_synchronous_standbys()`, and
//! writes the new cluster data with a compare-and-swap on the revision it read, so a write
//! based on a stale read fails and is recomputed from a fresh one instead of overwriting.
//!
//! A keeper is in error in a round when its info is missing, has not changed for a
//! `sleepInterval` (Stolon's keeper info expires after that TTL), or reports a server that is
//! not running healthily; it is failed once its error has lasted *more* than `failInterval`
//! since the first round that saw it (Stolon's keeperErrorTimers/dbErrorTimers, cleared by a
//! good round: a crashed server that comes back within the interval causes no failover).
//! Tracking restarts whenever this sentinel becomes leader (Stolon's `firstRun` resets every
//! timer). In that first round the new leader decides on the health its predecessor stored in
//! the cluster data (`ClusterData::failed`), so it may fail over at once on that verdict; from
//! its second round its own timers, started fresh, apply: a keeper failed on the predecessor's
//! word counts as healthy again until it has been in error for a `failInterval`. The leader
//! stores its verdict in the cluster data whenever it changes.
//!
//! After an election the standbys keep following the old master, and the old master keeps its
//! master role, until the new master is healthy and converged; then every other keeper is told
//! to follow it (`repoint_standbys`; Stolon's `updateCluster`).
//!
//! The synchronous standbys follow Stolon's protocol (`update_synchronous_standbys`): they
//! change only while the master is healthy and converged, and only once its keeper reports
//! the wanted ones in sync; a failover picks only among standbys wanted and reported in sync.

use std::collections::BTreeMap;
use std::time::Duration;

use super::client::{EtcdClient, ID_SPAN};
use super::cluster_data::{ClusterData, ClusterRole, KeeperState, OpStamp, ServerRole};
use super::cluster_data::{
    ProxyInfo, cluster_data_key, keeper_info_key, proxy_info_key, sentinel_leader_key, valid_name,
};
use super::{
    ClusterSpec, Decision, Ineligible, KeeperInfo, SyncStandbys, SyncView, decide, update_proxy_spec,
    update_synchronous_standbys,
};
use crate::etcd::{Compare, ElectorConfig, ElectorTimer, EtcdElector, EtcdMsg, KeyValue, Op, Reply, Request, Revision};
use crate::node::{Ctx, Model, NodeId, TimerCmd};
use crate::planted::PlantedBug;
use crate::time::SimTime;
use crate::trace::{StolonWhat, TraceKind};

#[derive(Clone, Debug)]
pub struct SentinelConfig {
    pub cluster: String,
    /// etcd endpoints.
    pub members: Vec<NodeId>,
    /// Every keeper of the cluster, in declared order (a tie between equally good standbys
    /// goes to the first declared).
    pub keepers: Vec<String>,
    /// The master of a new cluster (when no cluster data exists yet).
    pub initial_master: String,
    /// The cluster's stolon-proxies, whose published info the leader reads every round (Stolon
    /// lists the `proxies/info` directory; pgsim's topology is fixed, so the names are known).
    pub proxies: Vec<String>,
    /// Master, or a standby cluster replicating from another region's master.
    pub initial_role: ClusterRole,
    pub spec: ClusterSpec,
    /// `sleepInterval` (5s).
    pub sleep_interval: Duration,
    /// `requestTimeout` (10s).
    pub request_timeout: Duration,
    /// The election session's TTL (20 s).
    pub election_ttl_s: u64,
    /// `convergenceTimeout` (30s): a master whose keeper has not reported it running in its
    /// role this long after this leader first saw it named is failed (Stolon's
    /// `dbConvergenceState(masterDB, convergenceTimeout) == ConvergenceFailed`). Simplified: a
    /// constant of the sentinel, not a cluster spec key that `stolonctl update` can change.
    pub convergence_timeout: Duration,
    /// The first round at a random phase (`stolon::start_phase`); off in unit tests.
    pub random_start_phase: bool,
    /// A bug planted on purpose (`[sim] planted_bug`); None in every real configuration.
    pub planted_bug: Option<PlantedBug>,
}

impl SentinelConfig {
    /// Stolon's defaults.
    pub fn new(
        cluster: impl Into<String>,
        members: Vec<NodeId>,
        keepers: Vec<String>,
        initial_master: impl Into<String>,
    ) -> SentinelConfig {
        SentinelConfig {
            cluster: cluster.into(),
            members,
            keepers,
            initial_master: initial_master.into(),
            proxies: Vec::new(),
            initial_role: ClusterRole::Master,
            spec: ClusterSpec::default(),
            sleep_interval: super::defaults::SLEEP_INTERVAL,
            request_timeout: super::defaults::REQUEST_TIMEOUT,
            election_ttl_s: super::defaults::SENTINEL_SESSION_TTL_S,
            convergence_timeout: Duration::from_secs(30),
            random_start_phase: true,
            planted_bug: None,
        }
    }
}

/// What an operator tells the cluster (stolonctl). The simulator delivers each command to
/// every sentinel; each applies it to its own copy, and the leader acts on it.
#[derive(Clone, Debug, PartialEq)]
pub enum OperatorCmd {
    /// `stolonctl failkeeper`: the keeper counts as failed for one decision (a master is
    /// replaced: manual failover or planned switchover).
    FailKeeper { keeper: String },
    /// Make this keeper master whatever `decide()` says; its promotion accepts losing
    /// unreplicated commits if `accept_data_loss`.
    ForceMaster { keeper: String, accept_data_loss: bool },
    /// `stolonctl update --patch '{"role": ...}'`: promote a standby cluster (`master: true`)
    /// or make this one a standby of `remote_master`.
    SetClusterRole { master: bool, remote_master: Option<NodeId> },
    /// Change the spec knobs.
    SetSpec(ClusterSpec),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SentinelTimer {
    Tick,
    Elector(ElectorTimer),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Req {
    /// The cluster data alone (a sentinel that is not leader).
    ReadData,
    /// The cluster data and every keeper's state, in one transaction (the leader).
    ReadAll,
    Write,
}

/// One-shot operator commands wait here until a cluster data write records them applied.
#[derive(Clone, Debug, PartialEq)]
enum OneShot {
    FailKeeper { keeper: String },
    ForceMaster { keeper: String, accept_data_loss: bool },
}

#[derive(Clone, Debug)]
struct Tracked {
    uid: Option<u64>,
    state: Option<KeeperState>,
    last_uid_change: SimTime,
    /// The first round of the current error (see the module comment), `None` while fine.
    error_since: Option<SimTime>,
    /// Why, in the round that started it.
    stale: bool,
    failed: bool,
    /// Failed in this leader's first round on its predecessor's verdict (the cluster data's
    /// stored health), not on this leader's own error timer.
    inherited: bool,
}

impl Tracked {
    fn fresh(now: SimTime) -> Tracked {
        Tracked {
            uid: None,
            state: None,
            last_uid_change: now,
            error_since: None,
            stale: false,
            failed: false,
            inherited: false,
        }
    }
}

/// A trace to emit once the write that carries the decision commits.
type Note = (StolonWhat, Option<String>, String);

/// A round's new cluster data, the notes to trace once it is written, and the failover it
/// carries (a `StolonFailover` event for the checkers), if any.
type Decided = (ClusterData, Vec<Note>, Option<TraceKind>);

pub struct Sentinel {
    cfg: SentinelConfig,
    elector: EtcdElector,
    elector_timers: Vec<TimerCmd<ElectorTimer>>,
    client: EtcdClient<Req>,
    spec: ClusterSpec,
    role: ClusterRole,
    /// Stamp of the operator command that set `spec`/`role` (zero: the configuration).
    spec_stamp: OpStamp,
    last_stamp: OpStamp,
    ops: Vec<(OpStamp, OneShot)>,
    leading: bool,
    /// This leader has not run a round yet (Stolon's `firstRun`: the first check after
    /// gaining leadership, whatever its write's outcome).
    first_round: bool,
    /// The master named in the cluster data and since when this leader has seen it not
    /// converged (Stolon keeps the DB's `ChangeTime` in the cluster data; a new leader here
    /// starts counting afresh, which can only delay the verdict).
    unconverged: Option<(String, SimTime)>,
    /// The master failed this round for not converging within `convergence_timeout`.
    convergence_failed: Option<String>,
    tracked: BTreeMap<String, Tracked>,
    /// The cluster data as last read or written, with its mod revision.
    data: Option<(ClusterData, Revision)>,
    /// The write in flight, and what to trace when it commits.
    writing: Option<Decided>,
    /// The last "no eligible masters" explanation traced, so it is traced once per change.
    no_eligible: Option<String>,
    /// Stolon's proxyInfoHistories: proxy -> (its info uid, the round this leader first saw
    /// that uid). A proxy is active until its info has not changed for twice its proxyTimeout.
    proxy_seen: BTreeMap<String, (u64, SimTime)>,
    /// The last "waiting for proxies" traced, so it is traced once per change.
    proxy_wait: Option<String>,
}

type SCtx<'a> = Ctx<'a, EtcdMsg, SentinelTimer>;

/// Requests of the data client; the elector's ids stay below.
const CLIENT_ID_BASE: u64 = ID_SPAN;

impl Sentinel {
    pub fn new(cfg: SentinelConfig) -> Sentinel {
        assert!(!cfg.keepers.is_empty(), "a cluster needs keepers");
        for k in &cfg.keepers {
            assert!(valid_name(k), "keeper name {k:?} must be [A-Za-z0-9_.-]+");
        }
        assert!(cfg.keepers.contains(&cfg.initial_master), "initial master {} is not a keeper", cfg.initial_master);
        assert!(!cfg.sleep_interval.is_zero() && cfg.election_ttl_s > 0);
        let elector = EtcdElector::new(ElectorConfig {
            members: cfg.members.clone(),
            key: sentinel_leader_key(&cfg.cluster),
            ttl_s: cfg.election_ttl_s,
            // Checked often enough that keepalives (every TTL/3) go out on time.
            tick: Duration::from_secs(cfg.election_ttl_s).div_f64(10.0).max(Duration::from_millis(100)),
            request_timeout: cfg.request_timeout,
        });
        let tracked = cfg.keepers.iter().map(|k| (k.clone(), Tracked::fresh(SimTime::ZERO))).collect();
        Sentinel {
            client: EtcdClient::new(cfg.members.clone(), CLIENT_ID_BASE),
            spec: cfg.spec.clone(),
            role: cfg.initial_role,
            cfg,
            elector,
            elector_timers: Vec::new(),
            spec_stamp: OpStamp::default(),
            last_stamp: OpStamp::default(),
            ops: Vec::new(),
            leading: false,
            first_round: false,
            unconverged: None,
            convergence_failed: None,
            tracked,
            data: None,
            writing: None,
            no_eligible: None,
            proxy_seen: BTreeMap::new(),
            proxy_wait: None,
        }
    }

    pub fn is_leader(&self, now: SimTime) -> bool {
        self.elector.is_leader(now)
    }

    /// The cluster data as this sentinel last read or wrote it.
    pub fn cluster_data(&self) -> Option<&ClusterData> {
        self.data.as_ref().map(|(cd, _)| cd)
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    pub fn role(&self) -> ClusterRole {
        self.role
    }

    /// An operator command (see `OperatorCmd`).
    pub fn operator(&mut self, ctx: &mut SCtx<'_>, cmd: OperatorCmd) {
        let now_ns = ctx.now.as_nanos();
        let seq = if self.last_stamp.at_ns == now_ns { self.last_stamp.seq + 1 } else { 0 };
        let stamp = OpStamp { at_ns: now_ns, seq };
        self.last_stamp = stamp;
        let known = |k: &str| self.cfg.keepers.iter().any(|x| x == k);
        match cmd {
            OperatorCmd::FailKeeper { keeper } | OperatorCmd::ForceMaster { keeper, .. } if !known(&keeper) => {
                self.trace(ctx, StolonWhat::OperatorError, Some(keeper), "no such keeper".into());
            }
            OperatorCmd::FailKeeper { keeper } => self.ops.push((stamp, OneShot::FailKeeper { keeper })),
            OperatorCmd::ForceMaster { keeper, accept_data_loss } => {
                self.ops.push((stamp, OneShot::ForceMaster { keeper, accept_data_loss }))
            }
            OperatorCmd::SetClusterRole { master: true, .. } => {
                self.role = ClusterRole::Master;
                self.spec_stamp = stamp;
            }
            OperatorCmd::SetClusterRole { master: false, remote_master: Some(remote_master) } => {
                self.role = ClusterRole::Standby { remote_master };
                self.spec_stamp = stamp;
            }
            OperatorCmd::SetClusterRole { master: false, remote_master: None } => {
                self.trace(ctx, StolonWhat::OperatorError, None, "a standby cluster needs a remote master".into());
            }
            OperatorCmd::SetSpec(spec) => {
                self.spec = spec;
                self.spec_stamp = stamp;
            }
        }
        // The leader acts now rather than at its next tick.
        self.read(ctx);
    }

    fn trace(&self, ctx: &mut SCtx<'_>, what: StolonWhat, keeper: Option<String>, reason: String) {
        ctx.trace(TraceKind::Stolon { cluster: self.cfg.cluster.clone(), what, keeper, reason });
    }

    /// Runs the elector with its own timers, mapped into ours; its messages are ours as they are.
    fn elector_call(
        &mut self,
        ctx: &mut SCtx<'_>,
        f: impl FnOnce(&mut EtcdElector, &mut Ctx<'_, EtcdMsg, ElectorTimer>),
    ) {
        let mut timers = std::mem::take(&mut self.elector_timers);
        {
            let mut inner =
                Ctx { now: ctx.now, id: ctx.id, rng: &mut *ctx.rng, effects: &mut *ctx.effects, timers: &mut timers };
            f(&mut self.elector, &mut inner);
        }
        for t in timers.drain(..) {
            ctx.timers.push(match t {
                TimerCmd::Set { timer, at } => TimerCmd::Set { timer: SentinelTimer::Elector(timer), at },
                TimerCmd::Cancel { timer } => TimerCmd::Cancel { timer: SentinelTimer::Elector(timer) },
            });
        }
        self.elector_timers = timers;
        self.observe_leadership(ctx);
    }

    fn observe_leadership(&mut self, ctx: &mut SCtx<'_>) {
        let leading = self.elector.is_leader(ctx.now);
        if leading == self.leading {
            return;
        }
        self.leading = leading;
        if leading {
            // Start tracking afresh: see the module comment.
            for t in self.tracked.values_mut() {
                *t = Tracked::fresh(ctx.now);
            }
            self.first_round = true;
            self.no_eligible = None;
            self.unconverged = None;
            // Stolon's first run as leader resets the proxy histories too: every proxy that has
            // published is active until it has been silent for twice its proxyTimeout.
            self.proxy_seen.clear();
            self.proxy_wait = None;
            self.trace(ctx, StolonWhat::SentinelLeader, None, "won the sentinel election".into());
        } else {
            self.trace(ctx, StolonWhat::SentinelLeader, None, "lost the sentinel leadership".into());
        }
    }

    /// Starts this round's read unless one (or a write) is in flight.
    fn read(&mut self, ctx: &mut SCtx<'_>) {
        if self.client.pending_len() > 0 {
            return;
        }
        let cd_key = cluster_data_key(&self.cfg.cluster);
        if self.elector.is_leader(ctx.now) {
            let mut gets = vec![Op::Get { key: cd_key }];
            gets.extend(self.cfg.keepers.iter().map(|k| Op::Get { key: keeper_info_key(&self.cfg.cluster, k) }));
            gets.extend(self.cfg.proxies.iter().map(|p| Op::Get { key: proxy_info_key(&self.cfg.cluster, p) }));
            self.client.send(ctx, Req::ReadAll, Request::Txn { compare: vec![], success: gets, failure: vec![] });
        } else {
            self.client.send(ctx, Req::ReadData, Request::Op(Op::Get { key: cd_key }));
        }
    }

    /// Takes in the cluster data read: drop the operator commands it says were applied, and
    /// adopt a spec set by a command this sentinel did not see (it was down).
    fn absorb(&mut self, ctx: &mut SCtx<'_>, kv: Option<&KeyValue>) -> Result<(), ()> {
        let Some(kv) = kv else {
            self.data = None;
            return Ok(());
        };
        match ClusterData::decode(&kv.value) {
            Ok(cd) => {
                self.ops.retain(|(s, _)| *s > cd.applied_op);
                if cd.spec_stamp > self.spec_stamp {
                    self.spec = cd.spec.clone();
                    self.role = cd.role;
                    self.spec_stamp = cd.spec_stamp;
                }
                self.data = Some((cd, kv.mod_revision));
                Ok(())
            }
            Err(e) => {
                // Not ours to repair: a cluster data we cannot read is left alone.
                self.trace(ctx, StolonWhat::SentinelError, None, format!("unreadable cluster data: {e}"));
                Err(())
            }
        }
    }

    /// Notes which keepers published a new state since the last round, and which are in
    /// error this round. In a new leader's first round it only records what each keeper
    /// published: Stolon's `updateKeepersStatus` with `firstRun` puts the infos in its history
    /// and starts no error timer (a keeper whose info is missing is in error from the second
    /// round).
    fn track(&mut self, now: SimTime, infos: &[Option<KeyValue>]) {
        let first_round = self.first_round;
        let sleep = self.cfg.sleep_interval;
        for (name, kv) in self.cfg.keepers.iter().zip(infos) {
            let state = kv.as_ref().and_then(|kv| KeeperState::decode(&kv.value).ok());
            let t = self.tracked.get_mut(name).expect("every keeper is tracked");
            let stale = match &state {
                None => true,
                Some(s) if t.uid != Some(s.uid) => {
                    t.uid = Some(s.uid);
                    t.last_uid_change = now;
                    false
                }
                Some(_) => now.saturating_since(t.last_uid_change) >= sleep,
            };
            // A server being rebuilt or fenced cannot serve: no better than a dead one.
            let db_bad = state
                .as_ref()
                .is_none_or(|s| !s.healthy || matches!(s.role, ServerRole::Rebuilding | ServerRole::Fenced));
            if first_round {
                // No error timer yet: see above.
            } else if stale || db_bad {
                if t.error_since.is_none() {
                    t.error_since = Some(now);
                    t.stale = stale;
                }
            } else {
                t.error_since = None;
            }
            if let Some(s) = state {
                t.state = Some(s);
            }
        }
    }

    /// The active proxies with the proxy generation each reported (Stolon's
    /// `activeProxiesInfos`): a proxy whose info is missing is gone; one whose info uid has not
    /// changed for more than twice its proxyTimeout is stale (Stolon's key would have expired
    /// by then: its TTL is twice the proxyTimeout); one seen for the first time is active.
    fn active_proxies(&mut self, now: SimTime, infos: &[Option<KeyValue>]) -> Vec<(String, u64)> {
        let mut active = Vec::new();
        for (name, kv) in self.cfg.proxies.iter().zip(infos) {
            let Some(info) = kv.as_ref().and_then(|kv| ProxyInfo::decode(&kv.value).ok()) else {
                self.proxy_seen.remove(name);
                continue;
            };
            let stale_after = Duration::from_millis(info.proxy_timeout_ms) * 2;
            match self.proxy_seen.get(name) {
                Some(&(uid, since)) if uid == info.info_uid => {
                    if now.saturating_since(since) > stale_after {
                        continue;
                    }
                }
                _ => {
                    self.proxy_seen.insert(name.clone(), (info.info_uid, now));
                }
            }
            active.push((name.clone(), info.generation));
        }
        active
    }

    /// What the proxies are told this round (see `update_proxy_spec`), with the traces.
    fn next_proxy_spec(
        &mut self,
        ctx: &mut SCtx<'_>,
        next: &mut ClusterData,
        old_master: Option<&str>,
        active: &[(String, u64)],
        notes: &mut Vec<Note>,
    ) {
        // Cluster data without a master (written by hand): nothing to name.
        let Some(master) = next.master.clone() else { return };
        let elected = old_master != Some(master.as_str());
        let proxy = update_proxy_spec(&next.proxy, &master, elected, active);
        if proxy.master != next.proxy.master {
            let why = match &proxy.master {
                None => format!("no master until every active proxy has applied generation {}", proxy.generation),
                Some(m) => {
                    let names: Vec<&str> = active.iter().map(|(p, _)| p.as_str()).collect();
                    format!(
                        "master {m}: every active proxy applied generation {} ([{}])",
                        next.proxy.generation,
                        names.join(", ")
                    )
                }
            };
            notes.push((StolonWhat::ProxyMaster, proxy.master.clone(), why));
        } else if proxy.enabled != next.proxy.enabled {
            let why = format!("enabled proxies [{}] -> [{}]", next.proxy.enabled.join(", "), proxy.enabled.join(", "));
            notes.push((StolonWhat::ProxyEnabled, None, why));
        }
        // Stolon logs "waiting for proxies to be converged to the current generation" every
        // round; traced here once per change of who is awaited.
        // Not in the round of the election itself, whose StolonWhat::ProxyMaster note says it.
        let awaited: Vec<&str> = active
            .iter()
            .filter(|(_, g)| !elected && proxy.master.is_none() && *g != proxy.generation)
            .map(|(p, _)| p.as_str())
            .collect();
        let wait = (!awaited.is_empty())
            .then(|| format!("waiting for proxies [{}] to apply generation {}", awaited.join(", "), proxy.generation));
        if wait.is_some() && wait != self.proxy_wait {
            self.trace(ctx, StolonWhat::ProxyWait, None, wait.clone().expect("checked"));
        }
        self.proxy_wait = wait;
        next.proxy = proxy;
    }

    fn forced_failed(&self, applied: OpStamp) -> Vec<String> {
        self.ops
            .iter()
            .filter(|(s, _)| *s > applied)
            .filter_map(|(_, op)| match op {
                OneShot::FailKeeper { keeper } => Some(keeper.clone()),
                OneShot::ForceMaster { .. } => None,
            })
            .collect()
    }

    /// Why `keeper` counts as failed.
    fn failure_cause(&self, now: SimTime, keeper: &str, forced: &[String]) -> String {
        if forced.iter().any(|f| f == keeper) {
            return "stolonctl failkeeper".into();
        }
        if self.convergence_failed.as_deref() == Some(keeper) {
            let secs = self.cfg.convergence_timeout.as_secs();
            return format!("not converged to master within convergenceTimeout ({secs}s)");
        }
        let t = &self.tracked[keeper];
        if t.inherited {
            return "judged failed by the previous sentinel leader (the health in the cluster data)".into();
        }
        let since = t.error_since.map_or(0, |e| now.saturating_since(e).as_secs());
        if t.uid.is_none() {
            format!("never published its state ({since}s in error)")
        } else if t.stale {
            format!("not updated for {}s", now.saturating_since(t.last_uid_change).as_secs())
        } else {
            format!("database not running or unhealthy for {since}s")
        }
    }

    /// What `decide()` knows of each keeper. `inherited`: the keepers the previous leader
    /// judged failed, in this leader's first round (empty otherwise): failed whatever this
    /// leader's own (fresh) error timer says.
    fn infos(&self, forced: &[String], inherited: &[String]) -> Vec<KeeperInfo> {
        self.cfg
            .keepers
            .iter()
            .map(|name| {
                let t = &self.tracked[name];
                let s = t.state.as_ref();
                KeeperInfo {
                    name: name.clone(),
                    error_since: t.error_since,
                    db_healthy: !forced.contains(name) && !inherited.contains(name),
                    // A keeper never heard from offers nothing.
                    can_be_master: s.is_some_and(|s| s.can_be_master),
                    can_be_synchronous_replica: s.is_some_and(|s| s.can_be_synchronous_replica),
                    converged: s.is_some_and(|s| s.role == ServerRole::Standby),
                    timeline: s.map_or(0, |s| s.tli),
                    xlog_pos: s.map_or(0, |s| s.xlog_pos),
                }
            })
            .collect()
    }

    /// Traces keepers that became failed or healthy again.
    fn health_transitions(
        &mut self,
        ctx: &mut SCtx<'_>,
        infos: &[KeeperInfo],
        forced: &[String],
        inherited: &[String],
    ) {
        let spec = self.spec.clone();
        for info in infos {
            let failed = !info.healthy(&spec, ctx.now);
            let was_inherited = self.tracked[&info.name].inherited;
            self.tracked.get_mut(&info.name).expect("tracked").inherited = inherited.contains(&info.name);
            if failed == self.tracked[&info.name].failed {
                continue;
            }
            let reason = if failed {
                self.failure_cause(ctx.now, &info.name, forced)
            } else if was_inherited {
                // Stolon's second round as leader recomputes the health with timers started
                // at its first: a keeper failed on the predecessor's word is healthy again
                // until it has been in error for a failInterval.
                "healthy by this leader's own error timer (started at its first round)".into()
            } else {
                "publishes a healthy state again".into()
            };
            self.tracked.get_mut(&info.name).expect("tracked").failed = failed;
            let what = if failed { StolonWhat::KeeperFailed } else { StolonWhat::KeeperHealthy };
            self.trace(ctx, what, Some(info.name.clone()), reason);
        }
    }

    /// The synchronous standbys after this round (see `update_synchronous_standbys`).
    fn next_sync(
        &self,
        now: SimTime,
        infos: &[KeeperInfo],
        old_master: Option<&str>,
        next: &ClusterData,
        cur: SyncStandbys,
    ) -> SyncStandbys {
        // A standby cluster's leader has no synchronous standbys of its own.
        if next.role != ClusterRole::Master {
            return SyncStandbys::default();
        }
        let sync_repl = self.spec.synchronous_replication;
        // No master, or one this sentinel does not know (cluster data written by hand).
        let Some(master) = next.master.as_deref() else { return cur };
        let Some(m) = self.cfg.keepers.iter().position(|k| k == master) else { return cur };
        if old_master.is_some_and(|old| old != master) {
            // A new master starts from the old one's wanted set, itself replaced by the old
            // master, with nothing reported in sync yet (the old master is dropped once the
            // new one has converged, as its DB is).
            if !sync_repl {
                return SyncStandbys::default();
            }
            let old = old_master.expect("checked");
            let mut wanted: Vec<String> =
                cur.wanted.iter().map(|n| if n == master { old.to_string() } else { n.clone() }).collect();
            wanted.sort();
            return SyncStandbys { fake: wanted.is_empty(), wanted, in_sync: Vec::new() };
        }
        // Changed only while the master is healthy and converged (promoted, serving);
        // otherwise frozen: the commits it acknowledged are only on the standbys it had.
        if !self.master_converged(now, infos, next) {
            return cur;
        }
        let state = self.tracked[master].state.as_ref();
        if !sync_repl {
            return SyncStandbys::default();
        }
        let master_tli = state.map_or(0, |s| s.tli);
        let good: Vec<usize> = (0..infos.len())
            .filter(|&i| i != m && infos[i].healthy(&self.spec, now))
            .filter(|&i| {
                let s = self.tracked[&self.cfg.keepers[i]].state.as_ref();
                s.is_some_and(|s| s.role == ServerRole::Standby)
            })
            .collect();
        let mut best: Vec<usize> = good
            .iter()
            .copied()
            .filter(|&i| infos[i].timeline == master_tli && infos[i].can_be_synchronous_replica)
            .collect();
        best.sort_by_key(|&i| infos[i].xlog_pos);
        let view = SyncView {
            reported: state.map_or_else(Vec::new, |s| s.sync_standbys.clone()),
            good: good.iter().map(|&i| self.cfg.keepers[i].clone()).collect(),
            best: best.iter().map(|&i| self.cfg.keepers[i].clone()).collect(),
        };
        update_synchronous_standbys(&self.spec, &cur, &view)
    }

    /// The leader's round: the cluster data as it should be now, and what to trace once it is
    /// written. `None` when nothing changes.
    fn compute(&mut self, ctx: &mut SCtx<'_>, proxies: &[(String, u64)]) -> Option<Decided> {
        let now = ctx.now;
        let mut notes: Vec<Note> = Vec::new();
        let (cur, mut next) = match &self.data {
            Some((cd, _)) => (Some(cd.clone()), cd.clone()),
            None => {
                let cd =
                    ClusterData::initial(&self.cfg.keepers, &self.cfg.initial_master, self.role, self.spec.clone());
                let why = "new cluster: the configured initial master".to_string();
                notes.push((StolonWhat::MasterElected, Some(self.cfg.initial_master.clone()), why));
                (None, cd)
            }
        };
        let applied = next.applied_op;
        let forced = self.forced_failed(applied);
        // A new leader's first round decides on the health its predecessor stored
        // (sentinel.go `clusterSentinelCheck`: on `firstRun`, `updateKeepersStatus` returns the
        // cluster data as read, with its `Status.Healthy` flags).
        let inherited = if self.first_round { next.failed.clone() } else { Vec::new() };
        let mut infos = self.infos(&forced, &inherited);
        self.health_transitions(ctx, &infos, &forced, &inherited);
        self.convergence_failed = self.master_convergence_failed(now, &infos, &next);
        if let Some(m) = &self.convergence_failed {
            let i = self.cfg.keepers.iter().position(|k| k == m).expect("the master is a keeper");
            infos[i].db_healthy = false;
        }
        self.absorb_config(&mut next, &mut notes);
        let old_master = next.master.clone();
        let sync_now = SyncStandbys::from_data(&next.synchronous_standbys, &next.in_sync_standbys);
        let forced_master = self.elect(ctx, &mut next, &infos, &forced, &sync_now, &mut notes);
        let failover = self.failover_fact(old_master.as_deref(), &next, forced_master);
        self.repoint_standbys(now, &infos, old_master.as_deref(), &mut next, &mut notes);
        let sync = self.next_sync(now, &infos, old_master.as_deref(), &next, sync_now);
        let names = sync.names();
        if names != next.synchronous_standbys {
            let why =
                format!("synchronous standbys [{}] -> [{}]", next.synchronous_standbys.join(", "), names.join(", "));
            notes.push((StolonWhat::SyncStandbys, None, why));
        }
        if sync.in_sync != next.in_sync_standbys {
            let why = format!("in sync [{}] -> [{}]", next.in_sync_standbys.join(", "), sync.in_sync.join(", "));
            notes.push((StolonWhat::SyncInSync, None, why));
        }
        next.synchronous_standbys = names;
        next.in_sync_standbys = sync.in_sync;
        self.next_proxy_spec(ctx, &mut next, old_master.as_deref(), proxies, &mut notes);
        if let Some((last, _)) = self.ops.iter().rfind(|(s, _)| *s > applied) {
            next.applied_op = *last;
        }
        // The health as judged this round, stored for a successor (Stolon writes
        // `Keepers[..].Status.Healthy` and `DBs[..].Status.Healthy` with every cluster data).
        next.failed = infos.iter().filter(|i| !i.healthy(&self.spec, now)).map(|i| i.name.clone()).collect();
        next.failed.sort();
        match cur {
            Some(cur) if ClusterData { generation: cur.generation, ..next.clone() } == cur => None,
            cur => {
                next.generation = cur.map_or(1, |c| c.generation + 1);
                Some((next, notes, failover))
            }
        }
    }

    /// Keepers added to the configuration, the cluster role and the spec in force.
    fn absorb_config(&self, next: &mut ClusterData, notes: &mut Vec<Note>) {
        // Keepers added to the configuration since the data was written follow the master.
        for k in &self.cfg.keepers {
            if !next.keepers.contains_key(k) {
                let role = match &next.master {
                    Some(m) => super::DesiredRole::Standby { follow: m.clone() },
                    None => super::DesiredRole::Master,
                };
                next.keepers.insert(k.clone(), role);
            }
        }
        if next.role != self.role {
            let shown = match self.role {
                ClusterRole::Master => "master".to_string(),
                ClusterRole::Standby { remote_master } => format!("standby of node {remote_master}"),
            };
            notes.push((StolonWhat::ClusterRole, None, format!("cluster role is now {shown}")));
            next.role = self.role;
        }
        next.spec = self.spec.clone();
        next.spec_stamp = self.spec_stamp;
    }

    /// The failover this round makes (the master named changes), as the checkers see it.
    fn failover_fact(&self, old: Option<&str>, next: &ClusterData, forced: Option<bool>) -> Option<TraceKind> {
        let (old, new) = (old?, next.master.as_deref()?);
        (old != new).then(|| TraceKind::StolonFailover {
            cluster: self.cfg.cluster.clone(),
            old_master: old.to_string(),
            new_master: new.to_string(),
            synchronous_replication: self.spec.synchronous_replication,
            forced: forced.is_some(),
            accept_data_loss: forced.unwrap_or(false),
        })
    }

    /// The master after this round: the operator's forced one, or `decide()`'s. Returns
    /// `Some(accept_data_loss)` when an operator forced it.
    fn elect(
        &mut self,
        ctx: &mut SCtx<'_>,
        next: &mut ClusterData,
        infos: &[KeeperInfo],
        forced: &[String],
        sync_now: &SyncStandbys,
        notes: &mut Vec<Note>,
    ) -> Option<bool> {
        let applied = next.applied_op;
        let force = self.ops.iter().rev().find_map(|(s, op)| match op {
            OneShot::ForceMaster { keeper, accept_data_loss } if *s > applied => {
                Some((keeper.clone(), *accept_data_loss))
            }
            _ => None,
        });
        let master_idx = next.master.as_ref().and_then(|m| self.cfg.keepers.iter().position(|k| k == m));
        match (force, master_idx) {
            (Some((keeper, accept_data_loss)), _) => {
                if next.master.as_ref() != Some(&keeper) {
                    let why = format!("operator forced {keeper} master (accept_data_loss={accept_data_loss})");
                    notes.push((StolonWhat::MasterElected, Some(keeper.clone()), why));
                    next.set_master(&keeper);
                    self.no_eligible = None;
                }
                // Also when the keeper already is the master: a standby cluster's leader that
                // the operator is about to promote (it lacks what had not crossed the WAN).
                next.accept_data_loss = accept_data_loss;
                Some(accept_data_loss)
            }
            (None, Some(m)) => {
                self.decide_failover(ctx, next, infos, m, forced, sync_now, notes);
                None
            }
            // Cluster data without a master (written by hand): nothing to decide from.
            (None, None) => None,
        }
    }

    /// `decide()`'s verdict on master `m` carried out: kept, replaced, or none eligible.
    #[allow(clippy::too_many_arguments)]
    fn decide_failover(
        &mut self,
        ctx: &mut SCtx<'_>,
        next: &mut ClusterData,
        infos: &[KeeperInfo],
        m: usize,
        forced: &[String],
        sync_now: &SyncStandbys,
        notes: &mut Vec<Note>,
    ) {
        let now = ctx.now;
        let candidates = match self.cfg.planted_bug {
            // The planted bug: any healthy standby on the master's timeline will do.
            Some(PlantedBug::PromoteOutsideSyncSet) => self.cfg.keepers.clone(),
            _ => sync_now.candidates(),
        };
        match decide(&self.spec, now, infos, m, &candidates) {
            Decision::KeepMaster => self.no_eligible = None,
            Decision::Promote { keeper } => {
                let old = &self.cfg.keepers[m];
                let new = &infos[self.cfg.keepers.iter().position(|k| *k == keeper).expect("a keeper")];
                let how = if self.spec.synchronous_replication {
                    "synchronous standby reported in sync"
                } else {
                    "asynchronous standby within maxStandbyLag"
                };
                let why = format!(
                    "keeper {old} failed: {}; promoting {keeper} ({how}, xlog_pos {}, timeline {})",
                    self.failure_cause(now, old, forced),
                    new.xlog_pos,
                    new.timeline
                );
                notes.push((StolonWhat::MasterElected, Some(keeper.clone()), why));
                next.set_master(&keeper);
                next.accept_data_loss = false;
                self.no_eligible = None;
            }
            Decision::NoEligibleMasters { reasons } => {
                let old = &self.cfg.keepers[m];
                let mut why_not = String::new();
                for (k, r) in &reasons {
                    why_not.push_str(&format!("; {k}: {}", describe(r)));
                }
                if reasons.is_empty() {
                    why_not.push_str("; no other keeper");
                }
                // Traced again only when the reasons change, not as the outage grows.
                if self.no_eligible.as_ref() != Some(&why_not) {
                    let why = format!("master {old} failed: {}{why_not}", self.failure_cause(now, old, forced));
                    self.trace(ctx, StolonWhat::NoEligibleMasters, None, why);
                    self.no_eligible = Some(why_not);
                }
            }
        }
    }

    /// The master `next` names if it has not converged within `convergence_timeout` of when
    /// this leader first saw it named and not converged (sentinel.go `updateCluster`: "db not
    /// converged", `masterOK = false`): a promotion that never completes while its keeper
    /// keeps publishing. A master that is not healthy is `decide()`'s already.
    fn master_convergence_failed(&mut self, now: SimTime, infos: &[KeeperInfo], next: &ClusterData) -> Option<String> {
        let master = next.master.clone()?;
        if self.master_converged(now, infos, next) {
            self.unconverged = None;
            return None;
        }
        let since = match &self.unconverged {
            Some((m, t)) if *m == master => *t,
            _ => {
                self.unconverged = Some((master.clone(), now));
                now
            }
        };
        (now.saturating_since(since) > self.cfg.convergence_timeout).then_some(master)
    }

    /// Whether the master `next` names is healthy and converged: its keeper publishes a
    /// healthy server in the role the cluster data gives it (a primary; in a standby cluster, a
    /// standby of the remote master). Stolon's `masterDB.Status.Healthy &&
    /// dbConvergenceState(masterDB, ...) == Converged`, the convergence inferred from what the
    /// keeper publishes (pgsim's keepers do not report a spec generation).
    fn master_converged(&self, now: SimTime, infos: &[KeeperInfo], next: &ClusterData) -> bool {
        let Some(master) = next.master.as_deref() else { return false };
        let Some(m) = self.cfg.keepers.iter().position(|k| k == master) else { return false };
        let want = match next.role {
            ClusterRole::Master => ServerRole::Primary,
            ClusterRole::Standby { .. } => ServerRole::Standby,
        };
        let state = self.tracked[master].state.as_ref();
        infos[m].healthy(&self.spec, now) && state.is_some_and(|s| s.healthy && s.role == want)
    }

    /// Once the master is healthy and converged, the old masters and every standby follow it
    /// (sentinel.go `updateCluster`: "Set standbys to follow master only if it's healthy and
    /// converged", in a round that did not elect it). Until then the standbys keep streaming
    /// from the old master and the old master keeps its master role (`ClusterData::set_master`).
    fn repoint_standbys(
        &self,
        now: SimTime,
        infos: &[KeeperInfo],
        old_master: Option<&str>,
        next: &mut ClusterData,
        notes: &mut Vec<Note>,
    ) {
        if next.master.as_deref() != old_master || !self.master_converged(now, infos, next) {
            return;
        }
        let moved = next.follow_master();
        if !moved.is_empty() {
            let master = next.master.clone().expect("converged: a master is named");
            let why = format!("master {master} is healthy and converged: [{}] now follow it", moved.join(", "));
            notes.push((StolonWhat::StandbysFollow, Some(master), why));
        }
    }

    fn on_read(&mut self, ctx: &mut SCtx<'_>, gets: &[Option<KeyValue>]) {
        self.observe_leadership(ctx);
        if self.absorb(ctx, gets[0].as_ref()).is_err() || !self.leading {
            return;
        }
        let proxies_at = 1 + self.cfg.keepers.len();
        self.track(ctx.now, &gets[1..proxies_at]);
        let active = self.active_proxies(ctx.now, &gets[proxies_at..]);
        let computed = self.compute(ctx, &active);
        // Stolon's `firstRun` is over after one check, whether or not its write succeeds.
        self.first_round = false;
        let Some((next, notes, failover)) = computed else { return };
        let key = cluster_data_key(&self.cfg.cluster);
        let compare = match &self.data {
            Some((_, rev)) => Compare::ModRevision { key: key.clone(), revision: *rev },
            None => Compare::CreateRevision { key: key.clone(), revision: 0 },
        };
        assert!(self.elector.is_leader(ctx.now), "only the leader writes cluster data");
        let put = Op::Put { key, value: next.encode(), lease: None };
        self.client.send(ctx, Req::Write, Request::Txn { compare: vec![compare], success: vec![put], failure: vec![] });
        self.writing = Some((next, notes, failover));
    }
}

fn describe(r: &Ineligible) -> String {
    match r {
        Ineligible::Unhealthy => "unhealthy".into(),
        Ineligible::CannotBeMaster => "cannot be master".into(),
        Ineligible::Converging => "still converging (not running as a standby)".into(),
        Ineligible::NotSynchronous => "not in the synchronous set".into(),
        Ineligible::OtherTimeline { standby, master } => format!("timeline {standby}, the master's is {master}"),
        Ineligible::TooFarBehind { lag_bytes, max_standby_lag } => {
            format!("{lag_bytes} bytes behind (maxStandbyLag {max_standby_lag})")
        }
    }
}

impl Model for Sentinel {
    type Msg = EtcdMsg;
    type Timer = SentinelTimer;
    type Durable = ();

    fn on_start(&mut self, ctx: &mut SCtx<'_>) {
        for t in self.tracked.values_mut() {
            *t = Tracked::fresh(ctx.now);
        }
        self.elector_call(ctx, |e, c| e.on_start(c));
        let first = if self.cfg.random_start_phase {
            super::start_phase(ctx.rng, self.cfg.sleep_interval)
        } else {
            self.cfg.sleep_interval
        };
        ctx.set_timer(SentinelTimer::Tick, first);
    }

    fn on_message(&mut self, ctx: &mut SCtx<'_>, from: NodeId, msg: EtcdMsg) {
        let EtcdMsg::Resp { id, result } = msg else { return };
        if !self.client.owns(id) {
            return self.elector_call(ctx, |e, c| e.on_message(c, from, EtcdMsg::Resp { id, result }));
        }
        let Some((req, result)) = self.client.on_response(ctx, from, id, result) else { return };
        match (req, result) {
            (Req::ReadData, Ok(Reply::Get { kv, .. })) => {
                let _ = self.absorb(ctx, kv.as_ref());
            }
            (Req::ReadAll, Ok(Reply::Txn { gets, .. }))
                if gets.len() == 1 + self.cfg.keepers.len() + self.cfg.proxies.len() =>
            {
                self.on_read(ctx, &gets)
            }
            (Req::Write, Ok(Reply::Txn { succeeded: true, revision, .. })) => {
                let (cd, notes, failover) = self.writing.take().expect("a write was in flight");
                self.ops.retain(|(s, _)| *s > cd.applied_op);
                self.data = Some((cd, revision));
                for (what, keeper, reason) in notes {
                    self.trace(ctx, what, keeper, reason);
                }
                if let Some(failover) = failover {
                    ctx.trace(failover);
                }
            }
            (Req::Write, Ok(Reply::Txn { succeeded: false, .. })) => {
                // Someone wrote since our read: decide again from what is there now.
                self.writing = None;
                self.read(ctx);
            }
            (Req::Write, _) => self.writing = None, // outcome unknown: the next round re-reads
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut SCtx<'_>, timer: SentinelTimer) {
        match timer {
            SentinelTimer::Elector(t) => self.elector_call(ctx, |e, c| e.on_timer(c, t)),
            SentinelTimer::Tick => {
                for req in self.client.expire(ctx, self.cfg.request_timeout) {
                    if req == Req::Write {
                        self.writing = None;
                    }
                }
                self.observe_leadership(ctx);
                self.read(ctx);
                ctx.set_timer(SentinelTimer::Tick, self.cfg.sleep_interval);
            }
        }
    }

    fn check_invariants(&self) {
        self.elector.check_invariants();
        self.client.check_invariants();
        assert!(self.client.pending_len() <= 1, "one read or one write per round");
        assert_eq!(self.writing.is_some(), self.client.in_flight(&Req::Write), "a write is tracked while in flight");
        assert!(self.ops.len() <= 1024, "operator commands never applied");
        if let Some((cd, _)) = &self.data
            && let Some(m) = &cd.master
        {
            assert_eq!(cd.keepers.get(m), Some(&super::DesiredRole::Master), "the master is told it is master");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stolon::DesiredRole;
    use crate::stolon::testkit::{Driver, FakeEtcd, MEMBERS, secs};

    /// Sentinels on one etcd, and keepers whose published state the test controls.
    struct World {
        etcd: FakeEtcd,
        sentinels: Vec<Driver<Sentinel>>,
        /// Keeper -> the state it publishes every second, `None` while it is silent.
        keepers: BTreeMap<String, Option<KeeperState>>,
        /// The master reports its live wanted standbys in sync (false: a server that has not
        /// applied the wanted synchronous_standby_names, or whose standbys are catching up).
        reports_in_sync: bool,
        /// Keepers whose promotion does not complete: named master, they go on publishing the
        /// state the test gave them (a standby) instead of a primary.
        not_promoting: Vec<String>,
        /// Proxy -> what it publishes every second.
        proxies: BTreeMap<String, ProxyPub>,
        t: u64,
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum ProxyPub {
        /// The proxy generation of the cluster data as it is now.
        Applies,
        /// This generation, whatever the data says (a proxy whose check keeps failing).
        Stuck(u64),
        /// Nothing: its last info stays as it was.
        Silent,
    }

    fn state(xlog_pos: u64) -> Option<KeeperState> {
        Some(KeeperState {
            uid: 0,
            healthy: true,
            role: ServerRole::Standby,
            tli: 1,
            xlog_pos,
            can_be_master: true,
            can_be_synchronous_replica: true,
            sync_standbys: Vec::new(),
        })
    }

    fn config(spec: ClusterSpec) -> SentinelConfig {
        let keepers = vec!["pg1".into(), "pg2".into(), "pg3".into()];
        SentinelConfig { spec, random_start_phase: false, ..SentinelConfig::new("c", MEMBERS.to_vec(), keepers, "pg1") }
    }

    impl World {
        fn new(spec: ClusterSpec, sentinels: usize) -> World {
            World::with_proxies(spec, sentinels, &[])
        }

        fn with_proxies(spec: ClusterSpec, sentinels: usize, proxies: &[&str]) -> World {
            let mut etcd = FakeEtcd::default();
            let cfg = SentinelConfig { proxies: v(proxies), ..config(spec) };
            let sentinels =
                (0..sentinels).map(|i| Driver::start(Sentinel::new(cfg.clone()), 31 + i as u32, &mut etcd)).collect();
            let keepers = [("pg1", state(5000)), ("pg2", state(4000)), ("pg3", state(4900))]
                .into_iter()
                .map(|(k, s)| (k.to_string(), s))
                .collect();
            let proxies = proxies.iter().map(|p| (p.to_string(), ProxyPub::Applies)).collect();
            World { etcd, sentinels, keepers, reports_in_sync: true, not_promoting: Vec::new(), proxies, t: 0 }
        }

        /// Second by second to `t`: live keepers publish, then every sentinel runs. The
        /// keeper the data names master publishes a primary that has the wanted synchronous
        /// standbys in force: those that are live are reported in sync, as PostgreSQL would.
        fn run_to(&mut self, t: u64) {
            while self.t < t {
                self.t += 1;
                let cd = self.etcd.value(&cluster_data_key("c")).and_then(|v| ClusterData::decode(&v).ok());
                for (name, s) in &self.keepers {
                    if let Some(s) = s {
                        let mut s = KeeperState { uid: self.t, ..s.clone() };
                        let promoted = !self.not_promoting.contains(name);
                        if let Some(cd) = cd.as_ref().filter(|cd| promoted && cd.master.as_ref() == Some(name)) {
                            s.role = ServerRole::Primary;
                            s.sync_standbys = cd
                                .synchronous_standbys
                                .iter()
                                .filter(|n| self.reports_in_sync && self.keepers.get(*n).is_some_and(Option::is_some))
                                .cloned()
                                .collect();
                        }
                        self.etcd.put(&keeper_info_key("c", name), &s.encode());
                    }
                }
                for (name, publish) in &self.proxies {
                    let generation = match publish {
                        ProxyPub::Applies => cd.as_ref().map_or(0, |cd| cd.proxy.generation),
                        ProxyPub::Stuck(g) => *g,
                        ProxyPub::Silent => continue,
                    };
                    let info = ProxyInfo { info_uid: self.t, generation, proxy_timeout_ms: 15_000 };
                    self.etcd.put(&proxy_info_key("c", name), &info.encode());
                }
                for d in &mut self.sentinels {
                    d.run_until(&mut self.etcd, secs(self.t));
                }
            }
        }

        fn data(&self) -> ClusterData {
            ClusterData::decode(&self.etcd.value(&cluster_data_key("c")).expect("cluster data")).unwrap()
        }

        fn leader(&self) -> usize {
            let leaders: Vec<usize> =
                (0..self.sentinels.len()).filter(|i| self.sentinels[*i].model.is_leader(secs(self.t))).collect();
            assert_eq!(leaders.len(), 1, "exactly one leader at {}s", self.t);
            leaders[0]
        }

        fn silence(&mut self, keeper: &str) {
            *self.keepers.get_mut(keeper).unwrap() = None;
        }

        fn operator(&mut self, cmd: OperatorCmd) {
            for d in &mut self.sentinels {
                d.call(&mut self.etcd, |s, ctx| s.operator(ctx, cmd.clone()));
            }
        }
    }

    #[test]
    fn a_silent_master_fails_after_fail_interval_and_the_least_advanced_eligible_standby_takes_over() {
        let mut w = World::new(ClusterSpec::default(), 1);
        w.run_to(5);
        let cd = w.data();
        assert_eq!((cd.generation, cd.master.as_deref()), (1, Some("pg1")), "the leader created the cluster");
        assert_eq!(cd.keepers["pg2"], DesiredRole::Standby { follow: "pg1".into() });
        assert!(cd.synchronous_standbys.is_empty(), "asynchronous replication");
        w.run_to(30);
        w.silence("pg1"); // last seen at the 30 s round
        // In error from the 35 s round (unchanged for a sleepInterval); failed in the first
        // round more than failInterval after that.
        w.run_to(59);
        assert_eq!(w.data().master.as_deref(), Some("pg1"), "in error for 20 s is not yet a failure");
        assert!(w.sentinels[0].events(StolonWhat::KeeperFailed).is_empty());
        w.run_to(60);
        let cd = w.data();
        assert_eq!(cd.master.as_deref(), Some("pg2"), "pg2 lags 1000 bytes, pg3 100: Stolon takes the lowest");
        assert_eq!(cd.failed, v(&["pg1"]), "the verdict is stored with the election");
        assert_eq!(cd.keepers["pg1"], DesiredRole::Master, "the old master keeps its role until pg2 converges");
        assert_eq!(cd.keepers["pg3"], DesiredRole::Standby { follow: "pg1".into() });
        w.run_to(65);
        let cd = w.data();
        assert_eq!(cd.keepers["pg1"], DesiredRole::Standby { follow: "pg2".into() }, "the old master follows");
        assert_eq!(cd.keepers["pg3"], DesiredRole::Standby { follow: "pg2".into() });
        let s = &w.sentinels[0];
        assert_eq!(s.events(StolonWhat::KeeperFailed), vec![(Some("pg1".into()), "not updated for 30s".into())]);
        let elected = s.events(StolonWhat::MasterElected);
        assert_eq!(elected.len(), 2, "{elected:?}");
        assert_eq!(elected[1].0.as_deref(), Some("pg2"));
        assert!(elected[1].1.starts_with("keeper pg1 failed: not updated for 30s"), "{}", elected[1].1);
        // The old master comes back: healthy again, but it stays a standby.
        w.keepers.insert("pg1".into(), state(5000));
        w.run_to(80);
        assert_eq!(w.data().master.as_deref(), Some("pg2"));
        assert_eq!(
            w.sentinels[0].events(StolonWhat::KeeperHealthy),
            vec![(Some("pg1".into()), "publishes a healthy state again".into())]
        );
        assert_eq!(w.sentinels[0].events(StolonWhat::MasterElected).len(), 2);
    }

    #[test]
    fn a_master_that_never_converges_is_replaced_after_convergence_timeout() {
        let mut w = World::new(ClusterSpec::default(), 1);
        w.run_to(30);
        w.silence("pg1");
        // pg2 is elected at 60 s (see the test above) but its promotion never completes: its
        // keeper keeps publishing a healthy standby.
        w.not_promoting.push("pg2".into());
        w.run_to(60);
        assert_eq!(w.data().master.as_deref(), Some("pg2"));
        // First seen named and not converged at the 65 s round: failed once more than
        // convergenceTimeout (30 s) has passed, at the 100 s round.
        w.run_to(99);
        assert_eq!(w.data().master.as_deref(), Some("pg2"), "30 s unconverged is not yet a failure");
        w.run_to(100);
        assert_eq!(w.data().master.as_deref(), Some("pg3"), "pg1 is silent: pg3 is the one left");
        let elected = w.sentinels[0].events(StolonWhat::MasterElected);
        assert_eq!(elected.len(), 3, "{elected:?}");
        let why = &elected[2].1;
        assert!(why.starts_with("keeper pg2 failed: not converged to master within convergenceTimeout (30s)"), "{why}");
    }

    #[test]
    fn a_master_whose_database_stays_down_for_fail_interval_is_replaced_but_a_quick_restart_is_not() {
        let mut w = World::new(ClusterSpec::default(), 1);
        w.run_to(10);
        let down = Some(KeeperState { healthy: false, ..state(5000).unwrap() });
        w.keepers.insert("pg1".into(), down.clone());
        // Seen healthy at the 10 s round, down at 15 s and 20 s, healthy at 25 s: in error
        // for 10 s, then cleared.
        w.run_to(20);
        w.keepers.insert("pg1".into(), state(5000));
        w.run_to(60);
        assert_eq!(w.data().master.as_deref(), Some("pg1"));
        w.keepers.insert("pg1".into(), down); // last seen healthy at the 60 s round
        w.run_to(89);
        assert_eq!(w.data().master.as_deref(), Some("pg1"), "in error from the 65 s round: 20 s is not more");
        w.run_to(90);
        assert_eq!(w.data().master.as_deref(), Some("pg2"));
        let elected = w.sentinels[0].events(StolonWhat::MasterElected);
        assert!(elected[1].1.contains("database not running or unhealthy for 25s"), "{}", elected[1].1);
    }

    #[test]
    fn with_synchronous_replication_only_the_synchronous_standby_is_promoted() {
        let spec = ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() };
        let mut w = World::new(spec, 1);
        w.run_to(5);
        assert!(w.data().synchronous_standbys.is_empty(), "the master has not converged yet");
        w.run_to(10);
        let cd = w.data();
        assert_eq!(cd.synchronous_standbys, vec!["pg2".to_string()], "the least advanced good standby");
        assert!(cd.in_sync_standbys.is_empty(), "not reported yet");
        w.run_to(15);
        assert_eq!(w.data().in_sync_standbys, vec!["pg2".to_string()], "reported in sync by the master");
        w.run_to(30);
        w.silence("pg1");
        w.run_to(60);
        let cd = w.data();
        assert_eq!(cd.master.as_deref(), Some("pg2"), "pg3 is ahead but asynchronous");
        assert_eq!(
            (cd.synchronous_standbys.clone(), cd.in_sync_standbys.clone()),
            (vec!["pg1".to_string()], vec![]),
            "the new master starts with the old master's set, itself replaced by the old master"
        );
        w.run_to(65);
        assert_eq!(w.data().synchronous_standbys, vec!["pg3".to_string()], "converged: pg1 dropped, pg3 added");
        w.run_to(70);
        assert_eq!(w.data().in_sync_standbys, vec!["pg3".to_string()]);
        let sync = w.sentinels[0].events(StolonWhat::SyncStandbys);
        assert_eq!(sync.last().unwrap().1, "synchronous standbys [pg1] -> [pg3]");
    }

    #[test]
    fn no_eligible_masters_when_the_only_survivor_is_asynchronous() {
        let spec = ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() };
        let mut w = World::new(spec, 1);
        w.run_to(30);
        assert_eq!(w.data().synchronous_standbys, vec!["pg2".to_string()]);
        w.silence("pg1");
        w.silence("pg2");
        w.run_to(90);
        let cd = w.data();
        assert_eq!(cd.master.as_deref(), Some("pg1"), "nobody may replace it");
        assert_eq!(cd.synchronous_standbys, vec!["pg2".to_string()], "the failed master's set is frozen");
        assert_eq!(cd.in_sync_standbys, vec!["pg2".to_string()]);
        let s = &w.sentinels[0];
        assert_eq!(
            s.events(StolonWhat::NoEligibleMasters),
            vec![(
                None,
                "master pg1 failed: not updated for 30s; pg2: unhealthy; pg3: not in the synchronous set".into()
            )],
            "traced once, not every round"
        );
        // The synchronous standby returns: it is promoted.
        w.keepers.insert("pg2".into(), state(4000));
        w.run_to(95);
        assert_eq!(w.data().master.as_deref(), Some("pg2"));
    }

    /// With the planted bug `stolon-promote-outside-sync-set` (which `sim/tests/planted_bugs.rs`
    /// shows the checkers catch), the asynchronous survivor is promoted where the real rule
    /// finds no eligible master.
    #[test]
    fn the_planted_bug_promotes_outside_the_synchronous_set() {
        let spec = ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() };
        let mut w = World::new(spec, 1);
        w.sentinels[0].model.cfg.planted_bug = Some(PlantedBug::PromoteOutsideSyncSet);
        w.run_to(30);
        assert_eq!(w.data().synchronous_standbys, vec!["pg2".to_string()]);
        w.silence("pg1");
        w.silence("pg2");
        w.run_to(90);
        assert_eq!(w.data().master.as_deref(), Some("pg3"), "asynchronous, promoted all the same");
    }

    /// A keeper that may not be a synchronous replica (`--can-be-synchronous-replica=false`)
    /// is never put in the synchronous set, however well placed.
    #[test]
    fn a_standby_that_may_not_be_synchronous_is_not_made_one() {
        let spec = ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() };
        let mut w = World::new(spec, 1);
        let unwilling = KeeperState { can_be_synchronous_replica: false, ..state(4000).unwrap() };
        w.keepers.insert("pg2".into(), Some(unwilling));
        w.run_to(15);
        assert_eq!(w.data().synchronous_standbys, vec!["pg3".to_string()], "pg2 is the least advanced");
    }

    /// The election's trace names the promoted standby's own position and timeline.
    #[test]
    fn the_election_note_gives_the_promoted_standbys_position() {
        let mut w = World::new(ClusterSpec::default(), 1);
        w.run_to(30);
        w.silence("pg1");
        w.run_to(60);
        let elected = w.sentinels[0].events(StolonWhat::MasterElected);
        let why = &elected.last().expect("an election").1;
        assert!(
            why.ends_with("promoting pg2 (asynchronous standby within maxStandbyLag, xlog_pos 4000, timeline 1)"),
            "{why}"
        );
    }

    #[test]
    fn only_the_leader_writes_and_another_takes_over_when_it_is_cut_off() {
        let mut w = World::new(ClusterSpec::default(), 2);
        w.run_to(30);
        let key = cluster_data_key("c");
        let leader = w.leader();
        let (l, f) = (31 + leader as u32, 32 - leader as u32);
        assert!(w.etcd.writes_to(l, &key) >= 1);
        assert_eq!(w.etcd.writes_to(f, &key), 0, "the sentinel that is not leader writes nothing");
        assert_eq!(w.sentinels[leader].events(StolonWhat::SentinelLeader).len(), 1);
        // The leader loses etcd; the master dies too. The other sentinel takes over once the
        // session expires, then waits a full failInterval from its own start as leader.
        w.etcd.cut_off.push(l);
        w.silence("pg1");
        w.run_to(45);
        assert_eq!(w.leader(), leader, "the old leader still holds its session");
        w.run_to(60);
        assert_eq!(w.leader(), 1 - leader, "the session expired");
        assert_eq!(w.data().master.as_deref(), Some("pg1"));
        let took_over = w.t;
        w.run_to(took_over + 30);
        assert_eq!(w.data().master.as_deref(), Some("pg2"));
        assert!(w.etcd.writes_to(f, &key) >= 1);
        let lost = w.sentinels[leader].events(StolonWhat::SentinelLeader);
        // The event's node is the sentinel; its reason does not repeat it as a number.
        assert_eq!(lost.last().unwrap().1, "lost the sentinel leadership");
    }

    #[test]
    fn a_failed_compare_and_swap_rereads_instead_of_overwriting() {
        let mut w = World::new(ClusterSpec::default(), 1);
        w.run_to(30);
        w.silence("pg1");
        w.run_to(59);
        // Someone else (an operator with stolonctl) makes pg3 master just before the sentinel
        // writes its failover to pg2.
        let mut theirs = w.data();
        theirs.set_master("pg3");
        theirs.generation = 50;
        w.etcd.interject = Some((cluster_data_key("c"), theirs.encode()));
        w.run_to(60);
        assert!(w.etcd.interject.is_none(), "the sentinel tried to write");
        let cd = w.data();
        assert_eq!(cd.failed, v(&["pg1"]), "it adds only the health it judged");
        let ours = ClusterData { generation: theirs.generation, failed: Vec::new(), ..cd.clone() };
        assert_eq!(ours, theirs, "pg3 is healthy: the sentinel keeps what it re-read");
        assert_eq!(w.sentinels[0].model.cluster_data(), Some(&cd));
        assert_eq!(w.sentinels[0].events(StolonWhat::MasterElected).len(), 1, "the lost write traced nothing");
        w.run_to(80);
        assert_eq!(w.data().master.as_deref(), Some("pg3"));
    }

    #[test]
    fn failkeeper_switches_over_once_even_when_leadership_moves() {
        let mut w = World::new(ClusterSpec::default(), 2);
        w.run_to(20);
        let leader = w.leader();
        w.operator(OperatorCmd::FailKeeper { keeper: "pg1".into() });
        assert_eq!(w.data().master.as_deref(), Some("pg2"), "acted on at once");
        let s = &w.sentinels[leader];
        assert_eq!(s.events(StolonWhat::KeeperFailed), vec![(Some("pg1".into()), "stolonctl failkeeper".into())]);
        assert!(s.events(StolonWhat::MasterElected)[1].1.starts_with("keeper pg1 failed: stolonctl failkeeper"));
        w.run_to(30);
        assert_eq!(w.sentinels[leader].events(StolonWhat::KeeperHealthy).len(), 1, "failed for one decision only");
        assert_eq!(w.data().master.as_deref(), Some("pg2"));
        // Switch back; then leadership moves. The other sentinel got the failkeeper too, but
        // learned from the data that it was applied: it does not fail pg1 over again.
        w.operator(OperatorCmd::ForceMaster { keeper: "pg1".into(), accept_data_loss: false });
        assert_eq!(w.data().master.as_deref(), Some("pg1"));
        w.etcd.cut_off.push(31 + leader as u32);
        w.run_to(90);
        assert_eq!(w.leader(), 1 - leader);
        assert_eq!(w.data().master.as_deref(), Some("pg1"));
        assert!(w.sentinels[1 - leader].events(StolonWhat::MasterElected).is_empty());
        assert!(w.sentinels[1 - leader].events(StolonWhat::KeeperFailed).is_empty());
    }

    #[test]
    fn force_master_accepts_data_loss_and_the_cluster_role_and_spec_follow_the_operator() {
        let spec = ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() };
        let mut w = World::new(spec, 1);
        w.run_to(20);
        w.silence("pg1");
        w.silence("pg2");
        w.run_to(55);
        assert_eq!(w.sentinels[0].events(StolonWhat::NoEligibleMasters).len(), 1);
        w.operator(OperatorCmd::ForceMaster { keeper: "pg3".into(), accept_data_loss: true });
        let cd = w.data();
        assert_eq!((cd.master.as_deref(), cd.accept_data_loss), (Some("pg3"), true));
        // Make the region a standby of another one, then promote it back.
        w.operator(OperatorCmd::SetClusterRole { master: false, remote_master: Some(77) });
        let cd = w.data();
        assert_eq!(cd.role, ClusterRole::Standby { remote_master: 77 });
        assert!(cd.synchronous_standbys.is_empty(), "a standby leader has no synchronous standbys");
        w.operator(OperatorCmd::SetClusterRole { master: true, remote_master: None });
        assert_eq!(w.data().role, ClusterRole::Master);
        assert_eq!(w.sentinels[0].events(StolonWhat::ClusterRole).len(), 2);
        // A spec change reaches the data, and a sentinel started later adopts it from there.
        let relaxed = ClusterSpec { synchronous_replication: false, ..ClusterSpec::default() };
        w.operator(OperatorCmd::SetSpec(relaxed.clone()));
        assert_eq!(w.data().spec, relaxed);
        assert!(w.data().synchronous_standbys.is_empty());
        let mut late = Driver::start_at(Sentinel::new(config(ClusterSpec::default())), 40, &mut w.etcd, secs(w.t));
        late.run_until(&mut w.etcd, secs(w.t + 5));
        assert_eq!(late.model.spec(), &relaxed);
        assert_eq!(late.model.role(), ClusterRole::Master);
    }

    fn sync_spec() -> ClusterSpec {
        ClusterSpec { synchronous_replication: true, ..ClusterSpec::default() }
    }

    fn sets(w: &World) -> (Vec<String>, Vec<String>) {
        let cd = w.data();
        (cd.synchronous_standbys, cd.in_sync_standbys)
    }

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_synchronous_standby_dies_then_the_master_before_fail_interval_nobody_is_promoted() {
        let mut w = World::new(sync_spec(), 1);
        w.run_to(30);
        assert_eq!(sets(&w), (v(&["pg2"]), v(&["pg2"])));
        w.silence("pg2"); // the synchronous standby dies
        w.run_to(33);
        w.silence("pg1"); // and the master 3 s later
        // pg2 in error from the 35 s round, failed at 60 s, while pg1 (in error from 40 s)
        // still counts as healthy: the sentinel adds pg3 but keeps pg2 (merge), and pg3 is
        // not reported in sync by a master that is gone.
        w.run_to(60);
        assert_eq!(sets(&w), (v(&["pg2", "pg3"]), v(&["pg2"])));
        w.run_to(120);
        let cd = w.data();
        assert_eq!(cd.master.as_deref(), Some("pg1"), "no promotion");
        assert_eq!(sets(&w), (v(&["pg2", "pg3"]), v(&["pg2"])), "frozen with the master gone");
        let s = &w.sentinels[0];
        assert_eq!(s.events(StolonWhat::MasterElected).len(), 1, "only the initial master");
        assert_eq!(
            s.events(StolonWhat::NoEligibleMasters),
            vec![(
                None,
                "master pg1 failed: not updated for 30s; pg2: unhealthy; pg3: not in the synchronous set".into()
            )]
        );
        assert!(s.events(StolonWhat::SyncInSync).iter().all(|(_, why)| !why.ends_with("pg3]")), "pg3 never in sync");
    }

    #[test]
    fn with_the_master_alive_a_failed_synchronous_standby_is_replaced_in_two_steps() {
        let mut w = World::new(sync_spec(), 1);
        w.run_to(30);
        w.silence("pg2");
        w.run_to(59);
        assert_eq!(sets(&w), (v(&["pg2"]), v(&["pg2"])), "pg2 still within failInterval: writes block");
        w.run_to(60);
        assert_eq!(sets(&w), (v(&["pg2", "pg3"]), v(&["pg2"])), "step 1: merged");
        w.run_to(65);
        assert_eq!(sets(&w), (v(&["pg3"]), v(&["pg3"])), "step 2: pg3 reported in sync, pg2 dropped");
        assert_eq!(w.data().master.as_deref(), Some("pg1"));
    }

    #[test]
    fn the_set_changes_only_once_the_master_reports_the_wanted_standbys_in_sync() {
        let mut w = World::new(sync_spec(), 1);
        w.run_to(30);
        w.reports_in_sync = false; // e.g. pg3 still catching up
        w.silence("pg2");
        w.run_to(100);
        assert_eq!(sets(&w), (v(&["pg2", "pg3"]), v(&["pg2"])), "waiting for pg3 to be in sync");
        // The master dies now: pg3 was wanted but never reported in sync; pg2 is gone.
        w.silence("pg1");
        w.run_to(150);
        assert_eq!(w.data().master.as_deref(), Some("pg1"));
        // pg2 comes back: it was in sync, so it is the one promoted.
        w.keepers.insert("pg2".into(), state(4000));
        w.run_to(155);
        assert_eq!(w.data().master.as_deref(), Some("pg2"));
        assert_eq!(sets(&w), (v(&["pg1", "pg3"]), v(&[])), "pg2 replaced by the old master in the new master's set");
    }

    #[test]
    fn after_an_election_the_proxies_get_the_new_master_only_once_every_active_proxy_has_let_go_of_the_old() {
        let mut w = World::with_proxies(ClusterSpec::default(), 1, &["p1", "p2"]);
        w.run_to(30);
        let cd = w.data();
        assert_eq!((cd.proxy.master.as_deref(), cd.proxy.enabled.clone()), (Some("pg1"), v(&["p1", "p2"])));
        let before = cd.proxy.generation;
        // p2's checks stop applying new generations (it keeps publishing the old one).
        w.proxies.insert("p2".into(), ProxyPub::Stuck(before));
        w.silence("pg1");
        w.run_to(60);
        let cd = w.data();
        assert_eq!(cd.master.as_deref(), Some("pg2"), "elected at the 60 s round");
        assert_eq!((cd.proxy.master.clone(), cd.proxy.generation), (None, before + 1), "proxies told: no master");
        assert_eq!(cd.proxy.enabled, v(&["p1", "p2"]), "the enabled proxies stay");
        w.run_to(100);
        assert_eq!(w.data().proxy.master, None, "p2 may still hold connections to pg1");
        let s = &w.sentinels[0];
        let why = format!("waiting for proxies [p2] to apply generation {}", before + 1);
        assert_eq!(s.events(StolonWhat::ProxyWait), vec![(None, why)], "traced once, not every round");
        w.proxies.insert("p2".into(), ProxyPub::Applies);
        w.run_to(101);
        assert_eq!(w.data().proxy.master, None, "seen at the sentinel's next round");
        w.run_to(105);
        let cd = w.data();
        assert_eq!((cd.proxy.master.as_deref(), cd.proxy.generation), (Some("pg2"), before + 2));
        let named = w.sentinels[0].events(StolonWhat::ProxyMaster);
        let why = format!("master pg2: every active proxy applied generation {} ([p1, p2])", before + 1);
        assert_eq!(named.last(), Some(&(Some("pg2".to_string()), why)));
    }

    #[test]
    fn a_proxy_silent_for_twice_its_proxy_timeout_is_no_longer_awaited_nor_enabled() {
        let mut w = World::with_proxies(ClusterSpec::default(), 1, &["p1", "p2"]);
        w.run_to(30);
        // p2 dies: its last info (written at 30 s) stays. The master dies too.
        w.proxies.insert("p2".into(), ProxyPub::Silent);
        w.silence("pg1");
        w.run_to(60);
        assert_eq!((w.data().master.as_deref(), w.data().proxy.master.clone()), (Some("pg2"), None));
        // The leader first saw p2's last info uid at the 30 s round: active while unchanged
        // for up to 30 s (2 x proxyTimeout), so awaited at 60 s, dropped from 65 s.
        w.run_to(64);
        assert_eq!(w.data().proxy.master, None);
        w.run_to(65);
        assert_eq!(w.data().proxy.master.as_deref(), Some("pg2"), "p1 alone is awaited");
        w.run_to(70);
        assert_eq!(w.data().proxy.enabled, v(&["p1"]), "enabled: the active proxies, one round later");
        // p2 comes back: it is active and enabled again (it forwards at its next check).
        w.proxies.insert("p2".into(), ProxyPub::Applies);
        w.run_to(75);
        assert_eq!(w.data().proxy.enabled, v(&["p1", "p2"]));
        assert_eq!(w.data().proxy.master.as_deref(), Some("pg2"));
    }

    #[test]
    fn a_new_cluster_names_its_master_to_the_proxies_then_enables_those_that_reported() {
        let mut w = World::with_proxies(ClusterSpec::default(), 1, &["p1", "p2"]);
        w.run_to(5);
        let cd = w.data();
        assert_eq!(
            (cd.proxy.master.as_deref(), cd.proxy.enabled.len(), cd.proxy.generation),
            (Some("pg1"), 0, 1),
            "no proxy has published yet: none to wait for"
        );
        w.run_to(10);
        assert_eq!((w.data().proxy.enabled.clone(), w.data().proxy.generation), (v(&["p1", "p2"]), 2));
    }

    /// Every keeper follows the master or an old master that still has its master role: a
    /// standby is never told to follow another standby.
    fn assert_follows_a_master(cd: &ClusterData) {
        for (k, role) in &cd.keepers {
            if let DesiredRole::Standby { follow } = role {
                assert_eq!(cd.keepers.get(follow), Some(&DesiredRole::Master), "{k} follows {follow}, not a master");
            }
        }
    }

    #[test]
    fn standbys_follow_the_new_master_only_once_it_is_healthy_and_converged() {
        let mut w = World::new(ClusterSpec::default(), 1);
        w.run_to(30);
        w.not_promoting.push("pg2".into()); // its promotion hangs
        w.silence("pg1");
        w.run_to(60);
        assert_eq!(w.data().master.as_deref(), Some("pg2"));
        w.run_to(90);
        let cd = w.data();
        assert_follows_a_master(&cd);
        assert_eq!(cd.keepers["pg1"], DesiredRole::Master, "the old master keeps its master role");
        assert_eq!(
            cd.keepers["pg3"],
            DesiredRole::Standby { follow: "pg1".into() },
            "sentinel.go updateCluster: standbys follow the master only once it is healthy and converged"
        );
        assert!(w.sentinels[0].events(StolonWhat::StandbysFollow).is_empty());
        // The promotion completes (published at 91 s, within convergenceTimeout): repointed at
        // the next round.
        w.not_promoting.clear();
        w.run_to(94);
        assert_eq!(w.data().keepers["pg3"], DesiredRole::Standby { follow: "pg1".into() }, "not seen yet");
        w.run_to(95);
        let cd = w.data();
        assert_follows_a_master(&cd);
        assert!(cd.keepers.iter().all(|(k, r)| k == "pg2" || *r == DesiredRole::Standby { follow: "pg2".into() }));
        assert_eq!(
            w.sentinels[0].events(StolonWhat::StandbysFollow),
            vec![(Some("pg2".into()), "master pg2 is healthy and converged: [pg1, pg3] now follow it".into())]
        );
    }

    #[test]
    fn a_new_leader_decides_its_first_round_on_the_stored_health_then_on_its_own_timers() {
        let mut w = World::new(ClusterSpec::default(), 1);
        // A predecessor judged every keeper failed (stored with its last write); pg1 is gone.
        let mut stored =
            ClusterData::initial(&v(&["pg1", "pg2", "pg3"]), "pg1", ClusterRole::Master, Default::default());
        stored.generation = 7;
        stored.failed = v(&["pg1", "pg2", "pg3"]);
        w.etcd.put(&cluster_data_key("c"), &stored.encode());
        w.run_to(1); // pg1's last publication
        w.silence("pg1");
        w.run_to(5);
        let s = &w.sentinels[0];
        let inherited = "judged failed by the previous sentinel leader (the health in the cluster data)";
        assert_eq!(
            s.events(StolonWhat::KeeperFailed).len(),
            3,
            "clusterSentinelCheck firstRun: the stored Healthy flags"
        );
        assert_eq!(
            s.events(StolonWhat::NoEligibleMasters),
            vec![(None, format!("master pg1 failed: {inherited}; pg2: unhealthy; pg3: unhealthy"))]
        );
        assert_eq!(w.data().failed, v(&["pg1", "pg2", "pg3"]), "the first round keeps the stored verdict");
        // Second round: health recomputed with timers started fresh; pg1 in error from now.
        w.run_to(10);
        assert!(w.data().failed.is_empty(), "the changed verdict is written");
        let healthy = w.sentinels[0].events(StolonWhat::KeeperHealthy);
        assert_eq!(healthy.len(), 3);
        assert!(
            healthy
                .iter()
                .all(|(_, why)| why == "healthy by this leader's own error timer (started at its first round)")
        );
        w.run_to(34);
        assert_eq!(w.data().master.as_deref(), Some("pg1"), "in error from the 10 s round: not failed before 35 s");
        w.run_to(35);
        let cd = w.data();
        assert_eq!((cd.master.as_deref(), cd.failed.clone()), (Some("pg2"), v(&["pg1"])));
    }

    #[test]
    fn a_new_leader_fails_over_at_once_on_its_predecessors_verdict() {
        let mut w = World::new(ClusterSpec::default(), 2);
        let no_master = KeeperState { can_be_master: false, ..state(4900).unwrap() };
        w.keepers.insert("pg3".into(), Some(no_master));
        w.run_to(30);
        let leader = w.leader();
        w.silence("pg1");
        w.run_to(50);
        // pg2 is being rebuilt (in error since the 55 s round, not failed yet: converging) when
        // the leader finds the silent pg1 failed at its 60 s round: no eligible master.
        let rebuilding = KeeperState { role: ServerRole::Rebuilding, ..state(4000).unwrap() };
        w.keepers.insert("pg2".into(), Some(rebuilding));
        w.run_to(60);
        assert_eq!(w.sentinels[leader].events(StolonWhat::NoEligibleMasters).len(), 1);
        assert_eq!(w.data().failed, v(&["pg1"]), "the leader stored its verdict");
        // The leader loses etcd; pg2's rebuild completes.
        w.etcd.cut_off.push(31 + leader as u32);
        w.keepers.insert("pg2".into(), state(4000));
        let other = 1 - leader;
        while !w.sentinels[other].model.is_leader(secs(w.t)) {
            assert!(w.t < 120, "the other sentinel never took over");
            w.run_to(w.t + 1);
        }
        let took_over = w.t;
        assert_eq!(w.data().master.as_deref(), Some("pg1"));
        w.run_to(took_over + 5); // its first round
        assert_eq!(w.data().master.as_deref(), Some("pg2"), "failed over in the new leader's first round");
        let elected = w.sentinels[other].events(StolonWhat::MasterElected);
        assert_eq!(elected.len(), 1, "{:?} {took_over}", w.sentinels[other].stolon());
        assert!(elected[0].1.starts_with("keeper pg1 failed: judged failed by the previous sentinel leader"));
    }
}
