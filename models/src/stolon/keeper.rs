//! The stolon-keeper: one per PostgreSQL server, on the same host. Every `sleepInterval` it
//! publishes its server's state (a fresh info uid each time: the sentinel's proof of life)
//! and reads the cluster data, then converges the server to what the data says: promote,
//! follow another upstream, fence and resync an old master, resync a standby its upstream
//! refuses, set `synchronous_standby_names` on the master. An old master keeps running as a
//! primary while the cluster data still gives it its master role (until the new master has
//! converged, as Stolon keeps the old master's DB until then); it is stopped and resynced once
//! the data tells it to follow the new master.
//!
//! The keeper does not own the server: the host gives it a snapshot of the server before
//! every call (`set_local`) and carries out the commands it leaves (`take_commands`). When
//! etcd is unreachable the keeper changes nothing: Stolon never demotes a master for losing
//! the store (the proxies stop sending it clients instead).

use std::collections::BTreeMap;
use std::time::Duration;

use super::client::EtcdClient;
use super::cluster_data::{ClusterData, ClusterRole, DesiredRole, KeeperState, ServerRole};
use super::cluster_data::{cluster_data_key, keeper_info_key, valid_name};
use crate::etcd::{EtcdMsg, Op, Reply, Request};
use crate::node::{Ctx, Model, NodeId};
use crate::pg::RebuildMethod;
use crate::pg::syncrep::{SyncMethod, SyncStandbyNames};
use crate::planted::PlantedBug;
use crate::trace::{StolonWhat, TraceKind};

#[derive(Clone, Debug)]
pub struct KeeperConfig {
    pub cluster: String,
    /// The keeper's name: its key in the cluster data and its server's standby name.
    pub name: String,
    /// etcd endpoints.
    pub members: Vec<NodeId>,
    /// `sleepInterval` (5s).
    pub sleep_interval: Duration,
    /// `requestTimeout` (10s).
    pub request_timeout: Duration,
    /// `--can-be-master` (true).
    pub can_be_master: bool,
    /// `--can-be-synchronous-replica` (true).
    pub can_be_synchronous_replica: bool,
    /// `usePgrewind` (false): resync with pg_rewind, falling back to a base backup when the
    /// rewind did not make the server acceptable to its upstream.
    pub use_pg_rewind: bool,
    /// Which pg_rewind the server's PostgreSQL version has (see `RebuildMethod`); default
    /// `PgRewindFromDivergence` (PostgreSQL 14 and later).
    pub pg_rewind_method: RebuildMethod,
    /// Keeper name -> its PostgreSQL server's node. Must contain this keeper.
    pub pg_nodes: BTreeMap<String, NodeId>,
    /// The first round at a random phase (`stolon::start_phase`); off in unit tests.
    pub random_start_phase: bool,
    /// A bug planted on purpose (`[sim] planted_bug`); None in every real configuration.
    pub planted_bug: Option<PlantedBug>,
}

impl KeeperConfig {
    /// Stolon's defaults.
    pub fn new(
        cluster: impl Into<String>,
        name: impl Into<String>,
        members: Vec<NodeId>,
        pg_nodes: BTreeMap<String, NodeId>,
    ) -> KeeperConfig {
        KeeperConfig {
            cluster: cluster.into(),
            name: name.into(),
            members,
            sleep_interval: super::defaults::SLEEP_INTERVAL,
            request_timeout: super::defaults::REQUEST_TIMEOUT,
            can_be_master: true,
            can_be_synchronous_replica: true,
            use_pg_rewind: super::defaults::USE_PGREWIND,
            pg_rewind_method: RebuildMethod::PgRewindFromDivergence,
            pg_nodes,
            random_start_phase: true,
            planted_bug: None,
        }
    }
}

/// What the local server is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LocalRole {
    Primary,
    Standby {
        upstream: NodeId,
    },
    Promoting,
    Rebuilding,
    /// Stopped by the keeper (or never started).
    #[default]
    Fenced,
}

/// A snapshot of the local server, set by the host before every call into the keeper.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalPg {
    /// Running and answering. A crashed server is unhealthy; a fenced one may be either.
    pub healthy: bool,
    pub role: LocalRole,
    pub tli: u32,
    /// Flushed WAL position in bytes.
    pub xlog_pos: u64,
    /// The upstream refused to stream to this standby (its WAL diverged): only a resync helps.
    pub refused_by_upstream: bool,
    /// A primary's standbys in `sync_state = 'sync'` (pg_stat_replication), as Stolon's
    /// `GetInSyncStandbys` reads them: what the server has in force, not what was asked.
    pub sync_standbys: Vec<String>,
}

/// What the keeper asks of its server. The host carries each out as a `pg::PgCommand`,
/// adding what only the host knows (a resync's copy throughput).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeeperCommand {
    Promote {
        accept_data_loss: bool,
    },
    Follow {
        upstream: NodeId,
    },
    /// Stop accepting writes (Stolon stops the old master before resyncing it).
    Fence,
    Rebuild {
        method: RebuildMethod,
        upstream: NodeId,
    },
    SetSynchronousStandbyNames(Option<SyncStandbyNames>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeeperTimer {
    Tick,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Req {
    PublishState,
    ReadClusterData,
}

/// What the cluster data wants of the local server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// The master the cluster data names.
    Primary,
    /// An old master: its DB spec is still a master's, because the new master has not
    /// converged yet (sentinel.go `updateCluster` removes the old master's DB only then). The
    /// keeper applies its spec as it is (keeper.go `postgresKeeperSM`): the server keeps
    /// running as a primary, with the synchronous standbys it had.
    OldPrimary,
    Standby(NodeId),
}

/// Commands a host has not taken yet; more means the host forgot to drain them.
const MAX_QUEUED_COMMANDS: usize = 64;

pub struct Keeper {
    cfg: KeeperConfig,
    client: EtcdClient<Req>,
    local: LocalPg,
    /// The next info uid. Starts at the start time in ns, so uids keep growing across restarts.
    next_uid: u64,
    cluster_data: Option<ClusterData>,
    /// The last `synchronous_standby_names` this keeper set, `None` until it sets one (a new
    /// incarnation sets it once, whatever the server was started with).
    sync_names_set: Option<Option<SyncStandbyNames>>,
    /// The last resync ordered and from whom; a pg_rewind that did not help is not repeated.
    last_rebuild: Option<(RebuildMethod, NodeId)>,
    /// As an old master, the new master it was last traced waiting for (traced once).
    old_master_of: Option<String>,
    commands: Vec<KeeperCommand>,
}

type KCtx<'a> = Ctx<'a, EtcdMsg, KeeperTimer>;

impl Keeper {
    pub fn new(cfg: KeeperConfig) -> Keeper {
        assert!(valid_name(&cfg.name), "keeper name {:?} must be [A-Za-z0-9_.-]+", cfg.name);
        assert!(cfg.pg_nodes.contains_key(&cfg.name), "pg_nodes must name keeper {}'s own server", cfg.name);
        assert!(!cfg.sleep_interval.is_zero());
        let client = EtcdClient::new(cfg.members.clone(), 0);
        Keeper {
            cfg,
            client,
            local: LocalPg::default(),
            next_uid: 1,
            cluster_data: None,
            sync_names_set: None,
            last_rebuild: None,
            old_master_of: None,
            commands: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The local server as it is now; call before every handler.
    pub fn set_local(&mut self, local: LocalPg) {
        self.local = local;
    }

    /// Commands for the local server, oldest first; the host applies them in order.
    pub fn take_commands(&mut self) -> Vec<KeeperCommand> {
        std::mem::take(&mut self.commands)
    }

    /// The cluster data last read (None before the first successful read).
    pub fn cluster_data(&self) -> Option<&ClusterData> {
        self.cluster_data.as_ref()
    }

    /// A server by its keeper's name, for trace reasons (a node number tells a reader nothing).
    fn server_name(&self, node: NodeId) -> String {
        let name = self.cfg.pg_nodes.iter().find(|(_, n)| **n == node).map(|(name, _)| name.clone());
        name.unwrap_or_else(|| format!("node {node}"))
    }

    fn trace(&self, ctx: &mut KCtx<'_>, what: StolonWhat, reason: String) {
        ctx.trace(TraceKind::Stolon {
            cluster: self.cfg.cluster.clone(),
            what,
            keeper: Some(self.cfg.name.clone()),
            reason,
        });
    }

    fn command(&mut self, cmd: KeeperCommand) {
        self.commands.push(cmd);
    }

    fn tick(&mut self, ctx: &mut KCtx<'_>) {
        self.client.expire(ctx, self.cfg.request_timeout);
        // A publication still in flight is not stacked with another: the sentinel only needs
        // to see the uid change, and a backlog would make etcd's recovery slower.
        if !self.client.in_flight(&Req::PublishState) {
            let state = self.state();
            self.next_uid += 1;
            let key = keeper_info_key(&self.cfg.cluster, &self.cfg.name);
            self.client.send(ctx, Req::PublishState, Request::Op(Op::Put { key, value: state.encode(), lease: None }));
        }
        if !self.client.in_flight(&Req::ReadClusterData) {
            let key = cluster_data_key(&self.cfg.cluster);
            self.client.send(ctx, Req::ReadClusterData, Request::Op(Op::Get { key }));
        }
        ctx.set_timer(KeeperTimer::Tick, self.cfg.sleep_interval);
    }

    fn state(&self) -> KeeperState {
        KeeperState {
            uid: self.next_uid,
            healthy: self.local.healthy,
            role: match self.local.role {
                LocalRole::Primary => ServerRole::Primary,
                LocalRole::Standby { .. } => ServerRole::Standby,
                LocalRole::Promoting => ServerRole::Promoting,
                LocalRole::Rebuilding => ServerRole::Rebuilding,
                LocalRole::Fenced => ServerRole::Fenced,
            },
            tli: self.local.tli,
            xlog_pos: self.local.xlog_pos,
            can_be_master: self.cfg.can_be_master,
            can_be_synchronous_replica: self.cfg.can_be_synchronous_replica,
            sync_standbys: self.local.sync_standbys.clone(),
        }
    }

    fn want(&self, cd: &ClusterData) -> Option<Want> {
        match cd.keepers.get(&self.cfg.name)? {
            DesiredRole::Master => Some(match cd.role {
                ClusterRole::Master if cd.master.as_deref() == Some(self.cfg.name.as_str()) => Want::Primary,
                ClusterRole::Master => Want::OldPrimary,
                // The standby leader replicates from the other region's master.
                ClusterRole::Standby { remote_master } => Want::Standby(remote_master),
            }),
            DesiredRole::Standby { follow } => self.cfg.pg_nodes.get(follow).map(|id| Want::Standby(*id)),
        }
    }

    /// Stolon's `N (a, b)`: every listed standby must confirm (N = the list's length), so a
    /// standby the sentinel may promote is never one that silently dropped out of sync.
    fn sync_names(cd: &ClusterData) -> Option<SyncStandbyNames> {
        if cd.synchronous_standbys.is_empty() {
            return None;
        }
        let names = cd.synchronous_standbys.clone();
        Some(SyncStandbyNames { method: SyncMethod::First, num_sync: names.len(), names })
    }

    fn set_sync_names(&mut self, ctx: &mut KCtx<'_>, cd: &ClusterData) {
        let names = Self::sync_names(cd);
        if self.sync_names_set.as_ref() == Some(&names) {
            return;
        }
        self.trace(ctx, StolonWhat::SyncStandbys, sync_names_reason(names.as_ref(), cd.generation));
        self.command(KeeperCommand::SetSynchronousStandbyNames(names.clone()));
        self.sync_names_set = Some(names);
    }

    fn rebuild(&mut self, ctx: &mut KCtx<'_>, upstream: NodeId, why: &str) {
        let rewind = self.cfg.pg_rewind_method;
        let method = if !self.cfg.use_pg_rewind {
            RebuildMethod::Basebackup
        } else if self.last_rebuild == Some((rewind, upstream)) {
            // The rewind from this upstream did not leave a server it accepts: wipe and copy.
            RebuildMethod::Basebackup
        } else {
            rewind
        };
        let from = self.server_name(upstream);
        self.trace(ctx, StolonWhat::KeeperResync, format!("{why}: {} from {from}", method.as_str()));
        self.command(KeeperCommand::Rebuild { method, upstream });
        self.last_rebuild = Some((method, upstream));
    }

    /// An old master whose successor has not converged: the server keeps running as a primary,
    /// its `synchronous_standby_names` untouched (Stolon leaves the old master's DB spec as it
    /// was: `updateCluster` only empties its followers). The proxies no longer send it clients.
    fn hold_old_master(&mut self, ctx: &mut KCtx<'_>, cd: &ClusterData) {
        let master = cd.master.clone().unwrap_or_default();
        if self.old_master_of.as_ref() == Some(&master) {
            return;
        }
        let why = format!(
            "an old master: cluster data gen {} makes {master} master; running as a primary until it has converged",
            cd.generation
        );
        self.trace(ctx, StolonWhat::KeeperOldMaster, why);
        self.old_master_of = Some(master);
    }

    /// One step towards what the cluster data says; a step the server is still carrying out
    /// (promoting, rebuilding) is waited for, not repeated.
    fn converge(&mut self, ctx: &mut KCtx<'_>) {
        let Some(cd) = self.cluster_data.clone() else { return };
        let Some(want) = self.want(&cd) else { return };
        let local = self.local.clone();
        // A server that is down cannot take commands; the host restarts it. A fenced one is
        // down on purpose and still needs its resync.
        if !local.healthy && local.role != LocalRole::Fenced {
            return;
        }
        let generation = cd.generation;
        if want != Want::OldPrimary {
            self.old_master_of = None;
        }
        match (want, local.role) {
            (Want::Primary, LocalRole::Primary) => self.set_sync_names(ctx, &cd),
            (Want::Primary, LocalRole::Standby { .. }) => {
                // The synchronous set first, so no commit is acknowledged without it.
                self.set_sync_names(ctx, &cd);
                let accept_data_loss = cd.accept_data_loss;
                let why = if accept_data_loss { ", accepting data loss" } else { "" };
                self.trace(
                    ctx,
                    StolonWhat::KeeperPromote,
                    format!("cluster data gen {generation} names this keeper master{why}"),
                );
                self.command(KeeperCommand::Promote { accept_data_loss });
            }
            (Want::Primary | Want::OldPrimary, LocalRole::Promoting | LocalRole::Rebuilding | LocalRole::Fenced) => {}
            (Want::OldPrimary, LocalRole::Primary) => self.hold_old_master(ctx, &cd),
            (Want::OldPrimary, LocalRole::Standby { .. }) => {
                // Elected earlier and replaced before it converged: its DB spec still says
                // master, and Stolon's keeper promotes whatever its spec says. It gets no
                // clients (the proxies follow the current master) and is resynced once the
                // current master has converged.
                let master = cd.master.clone().unwrap_or_default();
                self.trace(
                    ctx,
                    StolonWhat::KeeperPromote,
                    format!(
                        "cluster data gen {generation} still gives this keeper a master DB ({master} has not converged)"
                    ),
                );
                self.command(KeeperCommand::Promote { accept_data_loss: false });
            }
            (Want::Standby(_), LocalRole::Primary)
                if self.cfg.planted_bug == Some(PlantedBug::OldPrimaryNeverFenced) =>
            {
                self.hold_old_master(ctx, &cd);
            }
            (Want::Standby(upstream), LocalRole::Primary) => {
                let master = cd.master.clone().unwrap_or_default();
                self.trace(
                    ctx,
                    StolonWhat::KeeperFence,
                    format!("an old master: cluster data gen {generation} makes {master} master"),
                );
                self.command(KeeperCommand::Fence);
                // Whatever it wrote after the failover is not on the new master: resync.
                self.sync_names_set = None;
                self.rebuild(ctx, upstream, "old master rejoins as a standby");
            }
            (Want::Standby(upstream), LocalRole::Fenced) => self.rebuild(ctx, upstream, "fenced server rejoins"),
            (Want::Standby(upstream), LocalRole::Standby { upstream: current }) => {
                if current != upstream {
                    self.trace(
                        ctx,
                        StolonWhat::KeeperFollow,
                        format!(
                            "cluster data gen {generation}: follow {} instead of {}",
                            self.server_name(upstream),
                            self.server_name(current)
                        ),
                    );
                    self.command(KeeperCommand::Follow { upstream });
                } else if local.refused_by_upstream {
                    self.rebuild(ctx, upstream, "the upstream refuses replication (diverged WAL)");
                } else {
                    self.last_rebuild = None; // streaming: whatever resync ran, it worked
                }
            }
            (Want::Standby(_), LocalRole::Promoting | LocalRole::Rebuilding) => {}
        }
    }
}

impl Model for Keeper {
    type Msg = EtcdMsg;
    type Timer = KeeperTimer;
    type Durable = ();

    fn on_start(&mut self, ctx: &mut KCtx<'_>) {
        self.next_uid = self.next_uid.max(ctx.now.as_nanos());
        if self.cfg.random_start_phase {
            let phase = super::start_phase(ctx.rng, self.cfg.sleep_interval);
            ctx.set_timer(KeeperTimer::Tick, phase);
        } else {
            self.tick(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut KCtx<'_>, from: NodeId, msg: EtcdMsg) {
        let EtcdMsg::Resp { id, result } = msg else { return };
        let Some((req, result)) = self.client.on_response(ctx, from, id, result) else { return };
        // No cluster data yet, a failed read or a publication answered: nothing to do until
        // the next tick.
        let (Req::ReadClusterData, Ok(Reply::Get { kv: Some(kv), .. })) = (req, result) else { return };
        match ClusterData::decode(&kv.value) {
            Ok(cd) => {
                let follow = match cd.keepers.get(&self.cfg.name) {
                    Some(DesiredRole::Standby { follow }) => Some(follow.clone()),
                    _ => None,
                };
                ctx.trace(TraceKind::StolonKeeperRead {
                    cluster: self.cfg.cluster.clone(),
                    keeper: self.cfg.name.clone(),
                    generation: cd.generation,
                    follow,
                });
                self.cluster_data = Some(cd);
                self.converge(ctx);
            }
            Err(e) => self.trace(ctx, StolonWhat::KeeperError, format!("unreadable cluster data: {e}")),
        }
    }

    fn on_timer(&mut self, ctx: &mut KCtx<'_>, _t: KeeperTimer) {
        self.tick(ctx);
    }

    fn check_invariants(&self) {
        self.client.check_invariants();
        assert!(self.client.pending_len() <= 2, "one publication and one read at most");
        assert!(self.commands.len() <= MAX_QUEUED_COMMANDS, "the host does not take the keeper's commands");
    }
}

/// The reason of a keeper's `sync_standbys` trace event: the `synchronous_standby_names` it
/// gives its PostgreSQL (`''` or `'N (a, b)'`) and the cluster data generation that asked for it.
/// [`sync_names_from_reason`] reads the setting back (the terminal UI shows what is in force).
pub fn sync_names_reason(names: Option<&SyncStandbyNames>, generation: u64) -> String {
    let shown = match names {
        None => "''".to_string(),
        Some(n) => format!("'{} ({})'", n.num_sync, n.names.join(", ")),
    };
    format!("synchronous_standby_names = {shown} (cluster data gen {generation})")
}

/// The setting a keeper's `sync_standbys` reason names: `Some(None)` for `''` (asynchronous),
/// `None` when the text is not such a reason (the sentinel's own `sync_standbys` events).
pub fn sync_names_from_reason(reason: &str) -> Option<Option<SyncStandbyNames>> {
    let quoted = reason.strip_prefix("synchronous_standby_names = '")?;
    let (value, _) = quoted.split_once('\'')?;
    SyncStandbyNames::parse(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stolon::FAKE_STANDBY;
    use crate::stolon::testkit::{Driver, FakeEtcd, MEMBERS, secs};

    const PG1: NodeId = 11;
    const PG2: NodeId = 12;
    const PG3: NodeId = 13;

    fn nodes() -> BTreeMap<String, NodeId> {
        [("pg1", PG1), ("pg2", PG2), ("pg3", PG3)].into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn keepers() -> Vec<String> {
        vec!["pg1".into(), "pg2".into(), "pg3".into()]
    }

    #[test]
    fn the_sync_standbys_reason_reads_back_to_its_setting() {
        let two = SyncStandbyNames { method: SyncMethod::First, num_sync: 2, names: vec!["pg2".into(), "pg3".into()] };
        let reason = sync_names_reason(Some(&two), 7);
        assert_eq!(reason, "synchronous_standby_names = '2 (pg2, pg3)' (cluster data gen 7)");
        assert_eq!(sync_names_from_reason(&reason), Some(Some(two)));
        assert_eq!(sync_names_from_reason(&sync_names_reason(None, 1)), Some(None));
        assert_eq!(sync_names_from_reason("synchronous standbys [pg1] -> [pg2]"), None);
    }

    fn keeper(name: &str, use_pg_rewind: bool, etcd: &mut FakeEtcd, local: LocalPg) -> Driver<Keeper> {
        let mut cfg = KeeperConfig::new("c", name, MEMBERS.to_vec(), nodes());
        cfg.random_start_phase = false;
        cfg.use_pg_rewind = use_pg_rewind;
        let mut k = Keeper::new(cfg);
        k.set_local(local);
        Driver::start(k, 21, etcd)
    }

    fn standby_of(upstream: NodeId) -> LocalPg {
        LocalPg {
            healthy: true,
            role: LocalRole::Standby { upstream },
            tli: 1,
            xlog_pos: 1000,
            refused_by_upstream: false,
            sync_standbys: Vec::new(),
        }
    }

    fn primary() -> LocalPg {
        LocalPg {
            healthy: true,
            role: LocalRole::Primary,
            tli: 1,
            xlog_pos: 5000,
            refused_by_upstream: false,
            sync_standbys: Vec::new(),
        }
    }

    fn write(etcd: &mut FakeEtcd, cd: &ClusterData) {
        etcd.put(&cluster_data_key("c"), &cd.encode());
    }

    fn data(master: &str) -> ClusterData {
        ClusterData::initial(&keepers(), master, ClusterRole::Master, Default::default())
    }

    /// Advances the keeper to `t` with the server in `local`; returns what it commanded.
    fn step(k: &mut Driver<Keeper>, etcd: &mut FakeEtcd, t: u64, local: LocalPg) -> Vec<KeeperCommand> {
        k.model.set_local(local);
        k.run_until(etcd, secs(t));
        k.model.take_commands()
    }

    #[test]
    fn publishes_a_fresh_state_every_sleep_interval_and_keeps_serving_without_etcd() {
        let mut etcd = FakeEtcd::default();
        let mut k = keeper("pg1", false, &mut etcd, primary());
        let key = keeper_info_key("c", "pg1");
        let first = KeeperState::decode(&etcd.value(&key).unwrap()).unwrap();
        assert_eq!((first.role, first.healthy, first.xlog_pos), (ServerRole::Primary, true, 5000));
        assert!(k.model.take_commands().is_empty(), "no cluster data yet: nothing to do");
        write(&mut etcd, &data("pg1"));
        assert_eq!(step(&mut k, &mut etcd, 4, primary()), vec![], "next tick at 5 s");
        assert_eq!(step(&mut k, &mut etcd, 5, primary()), vec![KeeperCommand::SetSynchronousStandbyNames(None)]);
        let second = KeeperState::decode(&etcd.value(&key).unwrap()).unwrap();
        assert!(second.uid > first.uid);
        assert_eq!(step(&mut k, &mut etcd, 10, primary()), vec![], "unchanged: no command");
        // etcd gone and the data now says pg2: the keeper cannot know, and keeps its master.
        etcd.cut_off.push(21);
        write(&mut etcd, &data("pg2"));
        assert_eq!(step(&mut k, &mut etcd, 60, primary()), vec![]);
        assert_eq!(k.model.cluster_data().unwrap().master.as_deref(), Some("pg1"));
        // A restarted keeper's uids keep growing.
        etcd.cut_off.clear();
        let mut cfg = KeeperConfig::new("c", "pg1", MEMBERS.to_vec(), nodes());
        cfg.random_start_phase = false;
        cfg.use_pg_rewind = false;
        let mut restarted = Keeper::new(cfg);
        restarted.set_local(primary());
        Driver::start_at(restarted, 21, &mut etcd, secs(61));
        assert!(KeeperState::decode(&etcd.value(&key).unwrap()).unwrap().uid > second.uid);
    }

    #[test]
    fn publishes_the_standbys_its_server_reports_in_sync_not_the_wanted_ones() {
        let mut etcd = FakeEtcd::default();
        let mut cd = data("pg1");
        cd.synchronous_standbys = vec!["pg2".into(), "pg3".into()];
        write(&mut etcd, &cd);
        let mut k = keeper("pg1", false, &mut etcd, primary());
        let names = SyncStandbyNames::parse("2 (pg2, pg3)").unwrap();
        assert_eq!(k.model.take_commands(), vec![KeeperCommand::SetSynchronousStandbyNames(names)]);
        // The server has it in force, but pg3 is still catching up: only pg2 is 'sync'.
        let reporting = LocalPg { sync_standbys: vec!["pg2".into()], ..primary() };
        step(&mut k, &mut etcd, 5, reporting);
        let published = KeeperState::decode(&etcd.value(&keeper_info_key("c", "pg1")).unwrap()).unwrap();
        assert_eq!(published.sync_standbys, vec!["pg2".to_string()]);
    }

    #[test]
    fn a_standby_named_master_is_promoted_once_with_its_sync_names_first() {
        let mut etcd = FakeEtcd::default();
        let mut cd = data("pg2");
        cd.synchronous_standbys = vec!["pg3".into(), FAKE_STANDBY.into()];
        write(&mut etcd, &cd);
        let mut k = keeper("pg2", false, &mut etcd, standby_of(PG1));
        let names = SyncStandbyNames::parse("2 (pg3, stolonfakestandby)").unwrap();
        assert_eq!(
            k.model.take_commands(),
            vec![KeeperCommand::SetSynchronousStandbyNames(names), KeeperCommand::Promote { accept_data_loss: false }]
        );
        let promoting = LocalPg { role: LocalRole::Promoting, ..standby_of(PG1) };
        assert_eq!(step(&mut k, &mut etcd, 5, promoting), vec![], "promotion under way: wait");
        assert_eq!(step(&mut k, &mut etcd, 10, primary()), vec![], "the names did not change");
        // The sentinel replaces the placeholder with a real standby: one command.
        cd.synchronous_standbys = vec!["pg3".into(), "pg1".into()];
        cd.generation += 1;
        write(&mut etcd, &cd);
        let names = SyncStandbyNames::parse("FIRST 2 (pg3, pg1)").unwrap();
        assert_eq!(step(&mut k, &mut etcd, 15, primary()), vec![KeeperCommand::SetSynchronousStandbyNames(names)]);
        assert_eq!(step(&mut k, &mut etcd, 20, primary()), vec![]);
        assert_eq!(k.events(StolonWhat::KeeperPromote).len(), 1);
        assert_eq!(k.events(StolonWhat::SyncStandbys).len(), 2);
        // A forced promotion passes accept_data_loss through.
        let mut forced = data("pg3");
        forced.accept_data_loss = true;
        write(&mut etcd, &forced);
        let mut k3 = keeper("pg3", false, &mut etcd, standby_of(PG1));
        assert!(k3.model.take_commands().contains(&KeeperCommand::Promote { accept_data_loss: true }));
    }

    #[test]
    fn standbys_follow_the_named_master_and_resync_when_refused() {
        let mut etcd = FakeEtcd::default();
        write(&mut etcd, &data("pg2"));
        let mut k = keeper("pg3", true, &mut etcd, standby_of(PG1));
        assert_eq!(k.model.take_commands(), vec![KeeperCommand::Follow { upstream: PG2 }]);
        assert_eq!(step(&mut k, &mut etcd, 5, standby_of(PG2)), vec![], "following the right upstream");
        let refused = LocalPg { refused_by_upstream: true, ..standby_of(PG2) };
        let rewind = KeeperCommand::Rebuild { method: RebuildMethod::PgRewindFromDivergence, upstream: PG2 };
        assert_eq!(step(&mut k, &mut etcd, 10, refused.clone()), vec![rewind.clone()]);
        let rebuilding = LocalPg { role: LocalRole::Rebuilding, ..standby_of(PG2) };
        assert_eq!(step(&mut k, &mut etcd, 15, rebuilding), vec![], "wait for the rebuild");
        // The rewind did not help: fall back to a base backup.
        let base = KeeperCommand::Rebuild { method: RebuildMethod::Basebackup, upstream: PG2 };
        assert_eq!(step(&mut k, &mut etcd, 20, refused.clone()), vec![base]);
        // After streaming successfully, a later divergence tries pg_rewind again.
        assert_eq!(step(&mut k, &mut etcd, 25, standby_of(PG2)), vec![]);
        assert_eq!(step(&mut k, &mut etcd, 30, refused), vec![rewind]);
        // A server that is down gets no commands.
        let down = LocalPg { healthy: false, ..standby_of(PG1) };
        assert_eq!(step(&mut k, &mut etcd, 35, down), vec![]);
        assert_eq!(k.events(StolonWhat::KeeperFollow).len(), 1);
        assert_eq!(k.events(StolonWhat::KeeperResync).len(), 3);
    }

    #[test]
    fn an_old_master_is_fenced_and_resynced_by_the_configured_method() {
        for (use_pg_rewind, method) in
            [(false, RebuildMethod::Basebackup), (true, RebuildMethod::PgRewindFromDivergence)]
        {
            let mut etcd = FakeEtcd::default();
            write(&mut etcd, &data("pg1"));
            let mut k = keeper("pg1", use_pg_rewind, &mut etcd, primary());
            assert_eq!(k.model.take_commands(), vec![KeeperCommand::SetSynchronousStandbyNames(None)]);
            // A failover made pg2 master while pg1 was away.
            write(&mut etcd, &data("pg2"));
            assert_eq!(
                step(&mut k, &mut etcd, 5, primary()),
                vec![KeeperCommand::Fence, KeeperCommand::Rebuild { method, upstream: PG2 }],
                "use_pg_rewind={use_pg_rewind}"
            );
            assert_eq!(k.events(StolonWhat::KeeperFence).len(), 1);
            // Fenced but not yet rebuilt (the host dropped the rebuild): rebuild again.
            let fenced = LocalPg { healthy: false, role: LocalRole::Fenced, ..primary() };
            let again = step(&mut k, &mut etcd, 10, fenced);
            assert!(matches!(again.as_slice(), [KeeperCommand::Rebuild { upstream: PG2, .. }]), "{again:?}");
        }
    }

    /// The planted bug `stolon-old-primary-never-fenced` (which `sim/tests/planted_bugs.rs`
    /// shows the checkers catch) does what it says: the old master told to follow the new
    /// one keeps running as a primary.
    #[test]
    fn the_planted_never_fenced_bug_keeps_an_old_master_running() {
        let mut etcd = FakeEtcd::default();
        write(&mut etcd, &data("pg1"));
        let mut cfg = KeeperConfig::new("c", "pg1", MEMBERS.to_vec(), nodes());
        cfg.random_start_phase = false;
        cfg.planted_bug = Some(PlantedBug::OldPrimaryNeverFenced);
        let mut keeper = Keeper::new(cfg);
        keeper.set_local(primary());
        let mut k = Driver::start(keeper, 21, &mut etcd);
        k.model.take_commands();
        write(&mut etcd, &data("pg2"));
        assert_eq!(step(&mut k, &mut etcd, 5, primary()), vec![], "no fence, no resync");
        assert!(k.events(StolonWhat::KeeperFence).is_empty());
        assert_eq!(k.events(StolonWhat::KeeperOldMaster).len(), 1);
    }

    #[test]
    fn the_standby_leader_of_a_standby_cluster_follows_the_remote_master() {
        let mut etcd = FakeEtcd::default();
        let mut cd = data("pg1");
        cd.role = ClusterRole::Standby { remote_master: 99 };
        write(&mut etcd, &cd);
        let mut k = keeper("pg1", false, &mut etcd, standby_of(PG2));
        assert_eq!(k.model.take_commands(), vec![KeeperCommand::Follow { upstream: 99 }]);
        let mut other = keeper("pg2", false, &mut etcd, standby_of(99));
        assert_eq!(other.model.take_commands(), vec![KeeperCommand::Follow { upstream: PG1 }]);
        // The region is promoted: the standby leader becomes a master.
        cd.role = ClusterRole::Master;
        write(&mut etcd, &cd);
        assert_eq!(
            step(&mut k, &mut etcd, 5, standby_of(99)),
            vec![KeeperCommand::SetSynchronousStandbyNames(None), KeeperCommand::Promote { accept_data_loss: false }]
        );
    }

    #[test]
    fn an_old_master_keeps_running_as_primary_until_told_to_follow_the_new_master() {
        let mut etcd = FakeEtcd::default();
        write(&mut etcd, &data("pg1"));
        let mut k = keeper("pg1", true, &mut etcd, primary());
        assert_eq!(k.model.take_commands(), vec![KeeperCommand::SetSynchronousStandbyNames(None)]);
        // pg2 elected (a switchover: pg1 is alive). The new master's synchronous set names pg1;
        // pg1's own DB spec is untouched (sentinel.go updateCluster).
        let mut cd = data("pg1");
        cd.generation = 2;
        cd.set_master("pg2");
        cd.synchronous_standbys = vec!["pg1".into()];
        write(&mut etcd, &cd);
        assert_eq!(step(&mut k, &mut etcd, 5, primary()), vec![], "no fence, no new synchronous_standby_names");
        assert_eq!(step(&mut k, &mut etcd, 10, primary()), vec![]);
        assert_eq!(
            k.events(StolonWhat::KeeperOldMaster),
            vec![(
                Some("pg1".into()),
                "an old master: cluster data gen 2 makes pg2 master; running as a primary until it has converged"
                    .into()
            )],
            "traced once"
        );
        assert!(k.events(StolonWhat::KeeperFence).is_empty());
        // pg2 converged: the sentinel repoints pg1 (Stolon removes its DB and assigns a new one
        // with initMode resync): stopped, then resynced.
        cd.generation = 3;
        cd.follow_master();
        write(&mut etcd, &cd);
        let rewind = KeeperCommand::Rebuild { method: RebuildMethod::PgRewindFromDivergence, upstream: PG2 };
        assert_eq!(step(&mut k, &mut etcd, 15, primary()), vec![KeeperCommand::Fence, rewind]);
    }

    #[test]
    fn a_standby_keeps_its_upstream_until_told_to_follow_the_new_master() {
        let mut etcd = FakeEtcd::default();
        let mut cd = data("pg1");
        cd.set_master("pg2");
        write(&mut etcd, &cd);
        let mut k = keeper("pg3", false, &mut etcd, standby_of(PG1));
        assert_eq!(k.model.take_commands(), vec![], "pg3 still follows the old master pg1");
        assert_eq!(step(&mut k, &mut etcd, 5, standby_of(PG1)), vec![]);
        cd.follow_master();
        write(&mut etcd, &cd);
        assert_eq!(step(&mut k, &mut etcd, 10, standby_of(PG1)), vec![KeeperCommand::Follow { upstream: PG2 }]);
        // A keeper elected earlier and replaced before it converged keeps its master DB spec:
        // Stolon's keeper promotes it (keeper.go postgresKeeperSM applies its spec), without
        // touching synchronous_standby_names, which are the current master's.
        let mut replaced = data("pg1");
        replaced.set_master("pg2");
        replaced.set_master("pg3");
        replaced.synchronous_standbys = vec!["pg1".into()];
        write(&mut etcd, &replaced);
        let mut k2 = keeper("pg2", false, &mut etcd, standby_of(PG1));
        assert_eq!(k2.model.take_commands(), vec![KeeperCommand::Promote { accept_data_loss: false }]);
    }
}
