//! The stolon-proxy's store side (v0.17, `cmd/proxy/cmd/proxy.go` `Check`). Every
//! `proxyCheckInterval` it reads the cluster data and writes its proxy info (the proxy
//! generation it applied), as Stolon's `SetProxyInfo`; the check succeeds (a check-in) when
//! the data names no master, or names one and the info write succeeds. After `proxyTimeout`
//! without one it closes every client connection and stops listening (it cannot know whether
//! its master is still the master). It sends clients only to the database the sentinel named
//! to the proxies (`Proxy.Spec.MasterDBUID`, emptied at every election until every proxy has
//! applied that) and only while it is among `EnabledProxies`; any other change of
//! destination closes every open connection. The host node relays client sessions and cuts
//! them as `take_actions` says; this part only decides where sessions may go.
//!
//! In a standby cluster the data's master is the standby leader: the proxy sends clients
//! there, and writes fail as read-only, as they do with Stolon.

use std::collections::BTreeMap;
use std::time::Duration;

use super::client::EtcdClient;
use super::cluster_data::{ClusterData, ProxyInfo, cluster_data_key, proxy_info_key};
use super::{Proxy, ProxyAction};
use crate::etcd::{EtcdMsg, Op, Reply, Request};
use crate::node::{Ctx, Model, NodeId};
use crate::trace::{StolonWhat, TraceKind};

#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub cluster: String,
    /// This proxy's `UID`, under which it publishes its info (the node's name).
    pub uid: String,
    /// etcd endpoints.
    pub members: Vec<NodeId>,
    /// Keeper name -> its PostgreSQL server's node.
    pub pg_nodes: BTreeMap<String, NodeId>,
    /// `proxyCheckInterval` (5s).
    pub proxy_check_interval: Duration,
    /// `proxyTimeout` (15s).
    pub proxy_timeout: Duration,
    /// `requestTimeout` (10s): a read not answered by then is abandoned and the next
    /// endpoint tried.
    pub request_timeout: Duration,
    /// The first round at a random phase (`stolon::start_phase`); off in unit tests.
    pub random_start_phase: bool,
}

impl ProxyConfig {
    /// Stolon's defaults.
    pub fn new(
        cluster: impl Into<String>,
        uid: impl Into<String>,
        members: Vec<NodeId>,
        pg_nodes: BTreeMap<String, NodeId>,
    ) -> ProxyConfig {
        ProxyConfig {
            cluster: cluster.into(),
            uid: uid.into(),
            members,
            pg_nodes,
            proxy_check_interval: super::defaults::PROXY_CHECK_INTERVAL,
            proxy_timeout: super::defaults::PROXY_TIMEOUT,
            request_timeout: super::defaults::REQUEST_TIMEOUT,
            random_start_phase: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProxyTimer {
    Check,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Req {
    ReadData,
    /// The proxy info write; `check_in`: the check succeeds only once it is stored, and then
    /// sends clients to this keeper's server (`None`: this proxy is not enabled).
    WriteInfo {
        check_in: Option<Option<String>>,
    },
}

/// Actions the host has not taken yet; more means it forgot to drain them.
const MAX_QUEUED_ACTIONS: usize = 64;

pub struct ProxyControl {
    cfg: ProxyConfig,
    client: EtcdClient<Req>,
    /// Counts the info writes: Stolon's `InfoUID`, new at every write.
    info_uid: u64,
    /// Why the next retarget happens, for its trace.
    why: String,
    /// Created at start: the check-in clock runs from then.
    proxy: Option<Proxy>,
    actions: Vec<ProxyAction>,
}

type PCtx<'a> = Ctx<'a, EtcdMsg, ProxyTimer>;

impl ProxyControl {
    pub fn new(cfg: ProxyConfig) -> ProxyControl {
        assert!(!cfg.proxy_check_interval.is_zero());
        assert!(super::cluster_data::valid_name(&cfg.uid), "proxy uid {:?} cannot be encoded", cfg.uid);
        ProxyControl {
            client: EtcdClient::new(cfg.members.clone(), 0),
            cfg,
            info_uid: 0,
            why: String::new(),
            proxy: None,
            actions: Vec::new(),
        }
    }

    /// Accepting client connections (checked in within `proxyTimeout`).
    pub fn listening(&self) -> bool {
        self.proxy.as_ref().is_some_and(Proxy::is_listening)
    }

    /// Where new client sessions go: the named master's server; `None` while not listening
    /// or when no master is named (or the name is not configured).
    pub fn target(&self) -> Option<NodeId> {
        let master = self.proxy.as_ref()?.master()?;
        self.cfg.pg_nodes.get(master).copied()
    }

    /// What the host must do to client sessions, oldest first.
    pub fn take_actions(&mut self) -> Vec<ProxyAction> {
        std::mem::take(&mut self.actions)
    }

    fn node_of(&self, keeper: &Option<String>) -> String {
        match keeper {
            None => "none".into(),
            // The keeper's name is its server's: a node number would add nothing for a reader.
            Some(k) if self.cfg.pg_nodes.contains_key(k) => k.clone(),
            Some(k) => format!("{k} (not configured)"),
        }
    }

    fn act(&mut self, ctx: &mut PCtx<'_>, action: ProxyAction) {
        let (what, keeper, reason) = match &action {
            ProxyAction::CloseAllAndStopListening => (
                StolonWhat::ProxyCloseAll,
                None,
                format!("no check-in with the store for {}s", self.cfg.proxy_timeout.as_secs()),
            ),
            ProxyAction::Retarget { from, to } => (
                StolonWhat::ProxyRetarget,
                to.clone(),
                format!("master {} -> {}{}", self.node_of(from), self.node_of(to), self.why),
            ),
            ProxyAction::Listen => (StolonWhat::ProxyListen, None, "checked in with the store".into()),
        };
        ctx.trace(TraceKind::Stolon { cluster: self.cfg.cluster.clone(), what, keeper, reason });
        self.actions.push(action);
    }

    fn check_in(&mut self, ctx: &mut PCtx<'_>, target: Option<String>) {
        let actions = self.proxy.as_mut().expect("started").on_checkin(ctx.now, target);
        for a in actions {
            self.act(ctx, a);
        }
    }

    /// Stolon's `Check` on readable cluster data: with no master named, close every
    /// connection, publish the generation and count the check as done whatever the write's
    /// outcome; with one named, publish first and send clients there (if enabled) only once
    /// the write succeeded.
    fn apply(&mut self, ctx: &mut PCtx<'_>, cd: &ClusterData) {
        let spec = &cd.proxy;
        let master = spec.master.clone().filter(|m| cd.keepers.contains_key(m));
        let check_in = match master {
            None => {
                self.why = format!(" (the sentinel names no master: proxy generation {})", spec.generation);
                self.check_in(ctx, None);
                None
            }
            Some(m) if spec.enabled.contains(&self.cfg.uid) => {
                self.why = String::new();
                Some(Some(m))
            }
            Some(_) => {
                self.why = " (not among the enabled proxies)".into();
                Some(None)
            }
        };
        self.info_uid += 1;
        let info = ProxyInfo {
            info_uid: self.info_uid,
            generation: spec.generation,
            proxy_timeout_ms: self.cfg.proxy_timeout.as_millis() as u64,
        };
        let key = proxy_info_key(&self.cfg.cluster, &self.cfg.uid);
        let put = Op::Put { key, value: info.encode(), lease: None };
        self.client.send(ctx, Req::WriteInfo { check_in }, Request::Op(put));
    }

    fn check(&mut self, ctx: &mut PCtx<'_>) {
        self.client.expire(ctx, self.cfg.request_timeout);
        if let Some(a) = self.proxy.as_mut().expect("started").on_tick(ctx.now) {
            self.act(ctx, a);
        }
        // One request at a time: a check whose info write is still out is not over.
        if self.client.pending_len() == 0 {
            let key = cluster_data_key(&self.cfg.cluster);
            self.client.send(ctx, Req::ReadData, Request::Op(Op::Get { key }));
        }
        ctx.set_timer(ProxyTimer::Check, self.cfg.proxy_check_interval);
    }
}

impl Model for ProxyControl {
    type Msg = EtcdMsg;
    type Timer = ProxyTimer;
    type Durable = ();

    fn on_start(&mut self, ctx: &mut PCtx<'_>) {
        self.proxy = Some(Proxy::new(self.cfg.proxy_timeout, ctx.now));
        if self.cfg.random_start_phase {
            let phase = super::start_phase(ctx.rng, self.cfg.proxy_check_interval);
            ctx.set_timer(ProxyTimer::Check, phase);
        } else {
            self.check(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut PCtx<'_>, from: NodeId, msg: EtcdMsg) {
        let EtcdMsg::Resp { id, result } = msg else { return };
        let Some((req, result)) = self.client.on_response(ctx, from, id, result) else { return };
        match (req, result) {
            (Req::ReadData, Ok(Reply::Get { kv: Some(kv), .. })) => {
                // Unreadable data is no check-in: after proxyTimeout the proxy closes.
                if let Ok(cd) = ClusterData::decode(&kv.value) {
                    self.apply(ctx, &cd);
                }
            }
            // No cluster yet: the store answered, but there is no master to send clients to
            // (Stolon returns without writing its info).
            (Req::ReadData, Ok(Reply::Get { kv: None, .. })) => {
                self.why = " (no cluster data)".into();
                self.check_in(ctx, None);
            }
            (Req::WriteInfo { check_in: Some(target) }, Ok(Reply::Put { .. })) => self.check_in(ctx, target),
            // A failed info write with a master named fails the check (Stolon: the sentinel
            // would not know this proxy sends clients there); with none it is ignored.
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut PCtx<'_>, _t: ProxyTimer) {
        self.check(ctx);
    }

    fn check_invariants(&self) {
        self.client.check_invariants();
        assert!(self.client.pending_len() <= 1, "one read at a time");
        assert!(self.actions.len() <= MAX_QUEUED_ACTIONS, "the host does not take the proxy's actions");
        assert!(self.target().is_none() || self.listening(), "a target only while listening");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stolon::cluster_data::{ClusterRole, ProxySpec};
    use crate::stolon::testkit::{Driver, FakeEtcd, MEMBERS, secs};
    use crate::stolon::{ClusterSpec, ProxyInfo};

    const PG1: NodeId = 11;
    const PG2: NodeId = 12;

    /// Cluster data whose master is `master`, with the proxies told `proxy`.
    fn write_with(etcd: &mut FakeEtcd, master: &str, role: ClusterRole, proxy: ProxySpec) {
        let keepers = vec!["pg1".to_string(), "pg2".to_string()];
        let mut cd = ClusterData::initial(&keepers, master, role, ClusterSpec::default());
        cd.proxy = proxy;
        etcd.put(&cluster_data_key("c"), &cd.encode());
    }

    /// The proxies told `master`, and this proxy enabled.
    fn write(etcd: &mut FakeEtcd, master: &str, role: ClusterRole) {
        write_with(etcd, master, role, told(1, Some(master), &["proxy1"]));
    }

    fn told(generation: u64, master: Option<&str>, enabled: &[&str]) -> ProxySpec {
        ProxySpec {
            generation,
            master: master.map(str::to_string),
            enabled: enabled.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn published(etcd: &FakeEtcd) -> Option<ProxyInfo> {
        etcd.value(&proxy_info_key("c", "proxy1")).map(|v| ProxyInfo::decode(&v).expect("valid info"))
    }

    fn proxy(etcd: &mut FakeEtcd) -> Driver<ProxyControl> {
        let nodes = [("pg1".to_string(), PG1), ("pg2".to_string(), PG2)].into_iter().collect();
        let cfg = ProxyConfig { random_start_phase: false, ..ProxyConfig::new("c", "proxy1", MEMBERS.to_vec(), nodes) };
        Driver::start(ProxyControl::new(cfg), 41, etcd)
    }

    fn retarget(from: Option<&str>, to: Option<&str>) -> ProxyAction {
        ProxyAction::Retarget { from: from.map(str::to_string), to: to.map(str::to_string) }
    }

    #[test]
    fn stops_listening_after_proxy_timeout_without_a_check_in_and_retargets_on_a_new_master() {
        let mut etcd = FakeEtcd::default();
        let mut p = proxy(&mut etcd);
        assert_eq!((p.model.listening(), p.model.target()), (true, None), "the store answered: no cluster yet");
        assert_eq!(p.model.take_actions(), vec![ProxyAction::Listen]);
        write(&mut etcd, "pg1", ClusterRole::Master);
        p.run_until(&mut etcd, secs(5));
        assert_eq!(p.model.target(), Some(PG1));
        assert_eq!(p.model.take_actions(), vec![retarget(None, Some("pg1"))]);
        // The store becomes unreachable after the 10 s check-in.
        p.run_until(&mut etcd, secs(10));
        etcd.cut_off.push(41);
        p.run_until(&mut etcd, secs(24));
        assert_eq!(p.model.target(), Some(PG1), "14 s without a check-in");
        assert!(p.model.take_actions().is_empty());
        p.run_until(&mut etcd, secs(25));
        assert_eq!((p.model.listening(), p.model.target()), (false, None));
        assert_eq!(p.model.take_actions(), vec![ProxyAction::CloseAllAndStopListening]);
        // Back, and a failover happened meanwhile.
        write(&mut etcd, "pg2", ClusterRole::Master);
        etcd.cut_off.clear();
        p.run_until(&mut etcd, secs(35));
        assert_eq!(p.model.target(), Some(PG2));
        assert_eq!(p.model.take_actions(), vec![ProxyAction::Listen, retarget(Some("pg1"), Some("pg2"))]);
        // A switchover while connected: only the retarget.
        write(&mut etcd, "pg1", ClusterRole::Master);
        p.run_until(&mut etcd, secs(40));
        assert_eq!(p.model.take_actions(), vec![retarget(Some("pg2"), Some("pg1"))]);
        assert_eq!(p.model.target(), Some(PG1));
        let traced: Vec<StolonWhat> = p.stolon().into_iter().map(|(what, _, _)| what).collect();
        assert_eq!(
            traced,
            [
                StolonWhat::ProxyListen,
                StolonWhat::ProxyRetarget,
                StolonWhat::ProxyCloseAll,
                StolonWhat::ProxyListen,
                StolonWhat::ProxyRetarget,
                StolonWhat::ProxyRetarget
            ]
        );
        assert_eq!(p.events(StolonWhat::ProxyRetarget)[1].1, "master pg1 -> pg2");
    }

    #[test]
    fn the_proxy_sends_clients_only_to_the_master_named_to_proxies_and_only_while_enabled() {
        let mut etcd = FakeEtcd::default();
        // The sentinel has just created the cluster: pg1 is master, the proxies not told yet.
        write_with(&mut etcd, "pg1", ClusterRole::Master, told(0, None, &[]));
        let mut p = proxy(&mut etcd);
        assert_eq!((p.model.listening(), p.model.target()), (true, None));
        assert_eq!(published(&etcd).map(|i| (i.generation, i.proxy_timeout_ms)), Some((0, 15_000)));
        // Named, but this proxy is not enabled yet: still nowhere.
        write_with(&mut etcd, "pg1", ClusterRole::Master, told(1, Some("pg1"), &[]));
        p.run_until(&mut etcd, secs(5));
        assert_eq!(p.model.target(), None, "not among the enabled proxies");
        assert_eq!(published(&etcd).map(|i| i.generation), Some(1));
        write_with(&mut etcd, "pg1", ClusterRole::Master, told(2, Some("pg1"), &["proxy1", "proxy2"]));
        p.run_until(&mut etcd, secs(10));
        assert_eq!(p.model.target(), Some(PG1));
        let _ = p.model.take_actions();
        // An election: the data names pg2 master, the proxies are told no master.
        write_with(&mut etcd, "pg2", ClusterRole::Master, told(3, None, &["proxy1", "proxy2"]));
        p.run_until(&mut etcd, secs(15));
        assert_eq!(p.model.target(), None, "the cluster data's master is not where clients go");
        assert_eq!(p.model.take_actions(), vec![retarget(Some("pg1"), None)]);
        assert_eq!(published(&etcd).map(|i| i.generation), Some(3), "the sentinel learns the connections are closed");
        assert_eq!(
            p.events(StolonWhat::ProxyRetarget).last().unwrap().1,
            "master pg1 -> none (the sentinel names no master: proxy generation 3)"
        );
        // Told pg2, but the info write fails: the check fails, clients still go nowhere.
        etcd.fail_puts = true;
        write_with(&mut etcd, "pg2", ClusterRole::Master, told(4, Some("pg2"), &["proxy1", "proxy2"]));
        p.run_until(&mut etcd, secs(29));
        assert_eq!((p.model.listening(), p.model.target()), (true, None));
        assert_eq!(published(&etcd).map(|i| i.generation), Some(3));
        p.run_until(&mut etcd, secs(30));
        assert!(!p.model.listening(), "no check-in since 15 s: a named master needs the info written");
        // With no master named a failed info write does not fail the check.
        write_with(&mut etcd, "pg2", ClusterRole::Master, told(5, None, &["proxy1"]));
        p.run_until(&mut etcd, secs(35));
        assert!(p.model.listening());
        etcd.fail_puts = false;
        write_with(&mut etcd, "pg2", ClusterRole::Master, told(6, Some("pg2"), &["proxy1"]));
        p.run_until(&mut etcd, secs(40));
        assert_eq!(p.model.target(), Some(PG2));
        assert_eq!(published(&etcd).map(|i| i.generation), Some(6));
    }

    #[test]
    fn unreadable_data_is_no_check_in_and_a_standby_cluster_targets_its_standby_leader() {
        let mut etcd = FakeEtcd::default();
        write(&mut etcd, "pg2", ClusterRole::Standby { remote_master: 99 });
        let mut p = proxy(&mut etcd);
        assert_eq!(p.model.target(), Some(PG2), "writes there fail read-only, as with Stolon");
        etcd.put(&cluster_data_key("c"), "garbage");
        p.run_until(&mut etcd, secs(14));
        assert!(p.model.listening());
        p.run_until(&mut etcd, secs(15));
        assert!(!p.model.listening(), "15 s of unreadable data is 15 s without a check-in");
    }
}
