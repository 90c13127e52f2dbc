//! The stolon-proxy's store side. Every `proxyCheckInterval` it reads the cluster data; a
//! successful read is a check-in. After `proxyTimeout` without one it closes every client
//! connection and stops listening (it cannot know whether its master is still the master);
//! when the data names another master it closes the connections to the old one. The host
//! node relays client sessions and cuts them as `take_actions` says; this part only decides
//! where sessions may go.
//!
//! In a standby cluster the data's master is the standby leader: the proxy sends clients
//! there, and writes fail as read-only, as they do with Stolon.

use std::collections::BTreeMap;
use std::time::Duration;

use super::client::EtcdClient;
use super::cluster_data::{ClusterData, cluster_data_key};
use super::{Proxy, ProxyAction};
use crate::etcd::{EtcdMsg, Op, Reply, Request};
use crate::node::{Ctx, Model, NodeId};
use crate::trace::TraceKind;

#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub cluster: String,
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
}

impl ProxyConfig {
    /// Stolon's defaults.
    pub fn new(cluster: impl Into<String>, members: Vec<NodeId>, pg_nodes: BTreeMap<String, NodeId>) -> ProxyConfig {
        ProxyConfig {
            cluster: cluster.into(),
            members,
            pg_nodes,
            proxy_check_interval: Duration::from_secs(5),
            proxy_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProxyTimer {
    Check,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ReadData;

/// Actions the host has not taken yet; more means it forgot to drain them.
const MAX_QUEUED_ACTIONS: usize = 64;

pub struct ProxyControl {
    cfg: ProxyConfig,
    client: EtcdClient<ReadData>,
    /// Created at start: the check-in clock runs from then.
    proxy: Option<Proxy>,
    actions: Vec<ProxyAction>,
}

type PCtx<'a> = Ctx<'a, EtcdMsg, ProxyTimer>;

impl ProxyControl {
    pub fn new(cfg: ProxyConfig) -> ProxyControl {
        assert!(!cfg.proxy_check_interval.is_zero());
        ProxyControl { client: EtcdClient::new(cfg.members.clone(), 0), cfg, proxy: None, actions: Vec::new() }
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
                "proxy_close_all",
                None,
                format!("no check-in with the store for {}s", self.cfg.proxy_timeout.as_secs()),
            ),
            ProxyAction::Retarget { from, to } => {
                ("proxy_retarget", to.clone(), format!("master {} -> {}", self.node_of(from), self.node_of(to)))
            }
            ProxyAction::Listen => ("proxy_listen", None, "checked in with the store".into()),
        };
        ctx.trace(TraceKind::Stolon { cluster: self.cfg.cluster.clone(), what: what.into(), keeper, reason });
        self.actions.push(action);
    }

    fn check(&mut self, ctx: &mut PCtx<'_>) {
        self.client.expire(ctx.now, self.cfg.request_timeout);
        if let Some(a) = self.proxy.as_mut().expect("started").on_tick(ctx.now) {
            self.act(ctx, a);
        }
        if !self.client.in_flight(&ReadData) {
            let key = cluster_data_key(&self.cfg.cluster);
            self.client.send(ctx, ReadData, Request::Op(Op::Get { key }));
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
        self.check(ctx);
    }

    fn on_message(&mut self, ctx: &mut PCtx<'_>, from: NodeId, msg: EtcdMsg) {
        let EtcdMsg::Resp { id, result } = msg else { return };
        let Some((ReadData, result)) = self.client.on_response(ctx, from, id, result) else { return };
        let master = match result {
            Ok(Reply::Get { kv: Some(kv), .. }) => match ClusterData::decode(&kv.value) {
                Ok(cd) => cd.master,
                // Unreadable data is no check-in: after proxyTimeout the proxy closes.
                Err(_) => return,
            },
            // No cluster yet: the store answered, but there is no master to send clients to.
            Ok(Reply::Get { kv: None, .. }) => None,
            _ => return,
        };
        let actions = self.proxy.as_mut().expect("started").on_checkin(ctx.now, master);
        for a in actions {
            self.act(ctx, a);
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
    use crate::stolon::ClusterSpec;
    use crate::stolon::cluster_data::ClusterRole;
    use crate::stolon::testkit::{Driver, FakeEtcd, MEMBERS, secs};

    const PG1: NodeId = 11;
    const PG2: NodeId = 12;

    fn write(etcd: &mut FakeEtcd, master: &str, role: ClusterRole) {
        let keepers = vec!["pg1".to_string(), "pg2".to_string()];
        let cd = ClusterData::initial(&keepers, master, role, ClusterSpec::default());
        etcd.put(&cluster_data_key("c"), &cd.encode());
    }

    fn proxy(etcd: &mut FakeEtcd) -> Driver<ProxyControl> {
        let nodes = [("pg1".to_string(), PG1), ("pg2".to_string(), PG2)].into_iter().collect();
        Driver::start(ProxyControl::new(ProxyConfig::new("c", MEMBERS.to_vec(), nodes)), 41, etcd)
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
        let traced: Vec<String> = p.stolon().into_iter().map(|(what, _, _)| what).collect();
        assert_eq!(
            traced,
            ["proxy_listen", "proxy_retarget", "proxy_close_all", "proxy_listen", "proxy_retarget", "proxy_retarget"]
        );
        assert_eq!(p.events("proxy_retarget")[1].1, "master pg1 -> pg2");
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
