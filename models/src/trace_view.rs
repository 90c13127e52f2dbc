//! `ClusterView`: the trace folded, once, into the state of the system after each event:
//! which role each PostgreSQL server has (on which timeline, with which
//! `synchronous_standby_names` in force), which etcd members believe they lead, and what each
//! HAProxy routes to. Checkers, the terminal UI and the reports read that state from here
//! instead of each re-deriving it from raw events.

use std::collections::BTreeMap;

use super::{Event, HaproxyServerState, TraceKind};
use crate::node::NodeId;
use crate::pg::ServerRole;

/// One PostgreSQL server as its last `pg_role` event left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerView {
    /// The database (the cluster name PostgreSQL's events carry: a standby region's servers
    /// carry their primary region's).
    pub cluster: String,
    pub role: ServerRole,
    pub tli: u32,
    pub origin: u32,
    pub upstream: Option<NodeId>,
    /// False from a crash of its node until it reports a role again (on restart).
    pub up: bool,
}

impl ServerView {
    /// A primary whose node is up: it accepts writes.
    pub fn is_live_primary(&self) -> bool {
        self.role == ServerRole::Primary && self.up
    }

    /// The timeline as (number, origin node): two promotions of the same parent differ.
    pub fn timeline(&self) -> (u32, u32) {
        (self.tli, self.origin)
    }
}

/// A server's `synchronous_standby_names` in force: `num_sync` of `names` must confirm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncNamesView {
    /// The server's own standby name (its keeper's name in a Stolon cluster).
    pub server: String,
    pub num_sync: u32,
    /// Empty: asynchronous.
    pub names: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    servers: BTreeMap<NodeId, ServerView>,
    /// Per database, the server that most recently became primary (kept after it is fenced
    /// or crashes: the primary a promotion replaces).
    last_primary: BTreeMap<String, NodeId>,
    /// Per server, the `synchronous_standby_names` it has in force.
    sync_names: BTreeMap<NodeId, SyncNamesView>,
    /// Every etcd member that believes it leads, with its term. A deposed leader keeps its
    /// place until it hears of the higher term (or crashes, or halts), so several may.
    leading: BTreeMap<NodeId, u64>,
    /// The most recently elected etcd leader, while it still leads.
    etcd_leader: Option<(NodeId, u64)>,
    /// Per HAProxy node, backend and server: the state after `rise`/`fall` checks.
    haproxy: BTreeMap<(NodeId, String, NodeId), HaproxyServerState>,
}

impl ClusterView {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event in.
    pub fn apply(&mut self, ev: &Event) {
        let Some(node) = ev.node.map(|n| n.0) else { return };
        match &ev.kind {
            TraceKind::PgRole { cluster, role, tli, origin, upstream } => {
                if *role == ServerRole::Primary {
                    self.last_primary.insert(cluster.clone(), node);
                }
                let s = ServerView {
                    cluster: cluster.clone(),
                    role: *role,
                    tli: *tli,
                    origin: *origin,
                    upstream: upstream.map(|u| u.0),
                    up: true,
                };
                self.servers.insert(node, s);
            }
            TraceKind::PgSyncStandbyNames { server, num_sync, names, .. } => {
                let view = SyncNamesView { server: server.clone(), num_sync: *num_sync, names: names.clone() };
                self.sync_names.insert(node, view);
            }
            TraceKind::NodeCrashed => {
                if let Some(s) = self.servers.get_mut(&node) {
                    s.up = false;
                }
                self.stop_leading(node);
            }
            TraceKind::EtcdHalted { .. } => self.stop_leading(node),
            TraceKind::RaftLeaderElected { term, .. } => {
                self.leading.insert(node, *term);
                self.etcd_leader = Some((node, *term));
            }
            TraceKind::RaftSteppedDown { term, .. } if self.leading.get(&node) == Some(term) => {
                self.stop_leading(node);
            }
            TraceKind::HaproxyServer { backend, server, state, .. } => {
                self.haproxy.insert((node, backend.clone(), server.0), *state);
            }
            _ => {}
        }
    }

    fn stop_leading(&mut self, node: NodeId) {
        self.leading.remove(&node);
        if self.etcd_leader.is_some_and(|(n, _)| n == node) {
            self.etcd_leader = None;
        }
    }

    pub fn server(&self, node: NodeId) -> Option<&ServerView> {
        self.servers.get(&node)
    }

    /// Every server that has reported a role, by node.
    pub fn servers(&self) -> impl Iterator<Item = (NodeId, &ServerView)> {
        self.servers.iter().map(|(n, s)| (*n, s))
    }

    /// The servers of `cluster` that are primary with their node up, by node.
    pub fn live_primaries<'a>(&'a self, cluster: &'a str) -> impl Iterator<Item = (NodeId, &'a ServerView)> + 'a {
        self.servers().filter(move |(_, s)| s.cluster == cluster && s.is_live_primary())
    }

    /// The server of `cluster` that most recently became primary, whatever it is now.
    pub fn last_primary(&self, cluster: &str) -> Option<NodeId> {
        self.last_primary.get(cluster).copied()
    }

    /// The `synchronous_standby_names` that `node` has in force (None: it never reported).
    pub fn sync_names(&self, node: NodeId) -> Option<&SyncNamesView> {
        self.sync_names.get(&node)
    }

    /// The most recently elected etcd leader and its term, while it still leads (a deposed
    /// leader that has not yet heard of it is not counted once a newer one is elected).
    pub fn etcd_leader(&self) -> Option<(NodeId, u64)> {
        self.etcd_leader
    }

    /// The term in which `node` believes it leads, if it does.
    pub fn leading_term(&self, node: NodeId) -> Option<u64> {
        self.leading.get(&node).copied()
    }

    /// What HAProxy `haproxy` last decided about `server` in `backend` (None: never changed).
    pub fn haproxy_state(&self, haproxy: NodeId, backend: &str, server: NodeId) -> Option<HaproxyServerState> {
        self.haproxy.get(&(haproxy, backend.to_string(), server)).copied()
    }

    /// The servers HAProxy `haproxy` routes `backend` to: those whose last state is `UP`.
    pub fn haproxy_routes<'a>(&'a self, haproxy: NodeId, backend: &'a str) -> impl Iterator<Item = NodeId> + 'a {
        let up = move |((h, b, _), st): &(&(NodeId, String, NodeId), &HaproxyServerState)| {
            *h == haproxy && b == backend && **st == HaproxyServerState::Up
        };
        self.haproxy.iter().filter(up).map(|((_, _, s), _)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::StepDown;
    use crate::trace::NodeRef;

    fn ev(node: u32, kind: TraceKind) -> Event {
        Event { seq: 0, t_ns: 0, node: Some(NodeRef(node)), kind }
    }
    fn role(node: u32, role: ServerRole, tli: u32) -> Event {
        ev(node, TraceKind::PgRole { cluster: "db".into(), role, tli, origin: 0, upstream: None })
    }

    #[test]
    fn a_crashed_primary_is_not_live_but_stays_the_last_primary() {
        let mut v = ClusterView::new();
        v.apply(&role(1, ServerRole::Primary, 1));
        v.apply(&role(2, ServerRole::Standby, 1));
        assert_eq!(v.live_primaries("db").map(|(n, _)| n).collect::<Vec<_>>(), vec![1]);
        v.apply(&ev(1, TraceKind::NodeCrashed));
        assert_eq!(v.live_primaries("db").count(), 0);
        v.apply(&role(2, ServerRole::Primary, 2));
        assert_eq!(v.last_primary("db"), Some(2));
        assert_eq!(v.server(1).map(|s| (s.role, s.up)), Some((ServerRole::Primary, false)));
        // Restarted, it reports its role again: two live primaries (a split brain).
        v.apply(&role(1, ServerRole::Primary, 1));
        assert_eq!(v.live_primaries("db").count(), 2);
        assert_eq!(v.last_primary("db"), Some(1));
    }

    #[test]
    fn a_deposed_leader_leads_until_it_hears_but_is_not_the_leader() {
        let mut v = ClusterView::new();
        let elected = |term| TraceKind::RaftLeaderElected { term, last_index: 0, log_terms: Vec::new() };
        v.apply(&ev(1, elected(2)));
        v.apply(&ev(2, elected(3)));
        assert_eq!((v.etcd_leader(), v.leading_term(1), v.leading_term(2)), (Some((2, 3)), Some(2), Some(3)));
        // A step-down from an older term than the one it leads in is not its own.
        v.apply(&ev(2, TraceKind::RaftSteppedDown { term: 2, reason: StepDown::HigherTerm }));
        assert_eq!(v.etcd_leader(), Some((2, 3)));
        v.apply(&ev(2, TraceKind::RaftSteppedDown { term: 3, reason: StepDown::CheckQuorum }));
        assert_eq!((v.etcd_leader(), v.leading_term(1)), (None, Some(2)));
        v.apply(&ev(1, TraceKind::NodeCrashed));
        assert_eq!(v.leading_term(1), None);
    }

    #[test]
    fn haproxy_routes_per_balancer_and_backend_to_the_servers_up() {
        let mut v = ClusterView::new();
        let st = |server, state| TraceKind::HaproxyServer {
            backend: "write".into(),
            server: NodeRef(server),
            state,
            sessions_cut: 0,
        };
        v.apply(&ev(9, st(5, HaproxyServerState::Up)));
        v.apply(&ev(9, st(6, HaproxyServerState::Up)));
        v.apply(&ev(9, st(5, HaproxyServerState::Down)));
        assert_eq!(v.haproxy_state(9, "write", 5), Some(HaproxyServerState::Down));
        assert_eq!(v.haproxy_state(9, "read", 5), None);
        assert_eq!(v.haproxy_routes(9, "write").collect::<Vec<_>>(), vec![6]);
        assert_eq!(v.haproxy_routes(8, "write").count(), 0, "another balancer decided nothing");
    }

    #[test]
    fn the_sync_names_in_force_are_the_last_reported() {
        let mut v = ClusterView::new();
        let names = |n: &[&str]| TraceKind::PgSyncStandbyNames {
            cluster: "db".into(),
            server: "pg1".into(),
            num_sync: n.len() as u32,
            names: n.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(v.sync_names(1), None);
        v.apply(&ev(1, names(&["pg2"])));
        v.apply(&ev(1, names(&["pg2", "pg3"])));
        assert_eq!(v.sync_names(1).map(|s| (s.num_sync, s.names.len())), Some((2, 2)));
    }
}
