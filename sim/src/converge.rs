//! Convergence: once every fault has healed, is the stack whole again, and from which second on
//! does it stay whole to the end of the run? The liveness half of swarm testing, judged from the
//! trace like every other checker.
//!
//! A second is whole when, at its end, each database has exactly one live primary (and never had
//! two during it), each database with a write load acknowledged commits in it (confirmed by
//! synchronous standbys where the scenario replicates synchronously: the synchronous set is
//! restored), etcd has a leader and the etcd writer's writes commit, and no client request
//! failed for good while some succeeded. The run converged at the start of the last run of whole
//! seconds that lasts to the end, counted from when the last fault healed.

use std::collections::BTreeMap;

use models::trace::{ClusterView, Event, TraceKind};
use scenarios::{NodeKind, Scenario, StackRole};
use serde_json::{Value, json};

use crate::check::Checker;

const NS_PER_S: u64 = 1_000_000_000;

/// What a whole second needs, from the scenario's components.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvergeSpec {
    /// Databases (the cluster name PostgreSQL's events carry; a standby region's servers carry
    /// their primary cluster's) that must have exactly one live primary.
    pub databases: Vec<String>,
    /// Databases whose commits must be confirmed by synchronous standbys.
    pub synchronous: Vec<String>,
    /// Databases with a write load: commits must be acknowledged every second from
    /// `writes_from_s` on.
    pub writes: Vec<String>,
    pub writes_from_s: u64,
    /// etcd members run: one must lead.
    pub etcd_leader: bool,
    /// An etcd writer runs: its writes must commit every second from `etcd_writes_from_s` on.
    pub etcd_writes: bool,
    pub etcd_writes_from_s: u64,
    /// Clients run: no request may fail for good, and some must succeed, from `clients_from_s`.
    pub clients: bool,
    pub clients_from_s: u64,
}

/// Synchronous commit levels that wait for synchronous standbys (when any are named).
const WAITING_LEVELS: &[&str] = &["on", "remote_write", "remote_apply"];

impl ConvergeSpec {
    pub fn from_scenario(sc: &Scenario) -> ConvergeSpec {
        let has = |k: NodeKind| sc.nodes.iter().any(|n| n.kind == k);
        let root = |c: usize| sc.pg_clusters[c].standby_of.unwrap_or(c);
        let managed = |c: usize| sc.nodes.iter().any(|n| n.stack == Some(StackRole::Sentinel { cluster: c }));
        let mut spec = ConvergeSpec::default();
        let client_writes = has(NodeKind::Clients) && sc.tenants.iter().any(|t| t.write_rps > 0.0);
        let written = written_by_clients(sc);
        for (c, cl) in sc.pg_clusters.iter().enumerate() {
            let served = sc.nodes.iter().any(|n| n.pg.as_ref().is_some_and(|p| p.cluster == c));
            if cl.standby_of.is_some() || !served {
                continue;
            }
            spec.databases.push(cl.name.clone());
            let sync_named = if managed(c) {
                sc.stolon.synchronous_replication
            } else {
                !cl.synchronous_standby_names.trim().is_empty()
            };
            if sync_named && WAITING_LEVELS.contains(&cl.synchronous_commit.as_str()) {
                spec.synchronous.push(cl.name.clone());
            }
            let by_clients = client_writes && written.iter().any(|&w| root(w) == c);
            if cl.write_tps > 0.0 || by_clients {
                spec.writes.push(cl.name.clone());
            }
        }
        let load_s = sc.workload.start_after.as_secs_f64().ceil() as u64;
        spec.writes_from_s =
            if sc.pg_clusters.iter().any(|c| c.write_tps > 0.0 && c.standby_of.is_none()) { 0 } else { load_s };
        spec.etcd_leader = has(NodeKind::Etcd);
        spec.etcd_writes = has(NodeKind::Etcd) && has(NodeKind::EtcdWriter);
        spec.etcd_writes_from_s = sc.etcd_writer.start_after.as_secs_f64().ceil() as u64;
        spec.clients = has(NodeKind::Clients) && !sc.tenants.is_empty();
        spec.clients_from_s = load_s;
        spec
    }

    /// Whether there is anything to converge to.
    pub fn is_empty(&self) -> bool {
        self.databases.is_empty() && !self.etcd_leader && !self.clients
    }
}

/// The clusters clients write to: clients -> PgBouncer -> HAProxy write backend -> Stolon proxy
/// (its cluster) or PostgreSQL server (its cluster).
fn written_by_clients(sc: &Scenario) -> Vec<usize> {
    let role = |i: u32| sc.nodes[i as usize].stack.as_ref();
    let mut out = Vec::new();
    for n in &sc.nodes {
        let Some(StackRole::Clients { write_entries, .. }) = &n.stack else { continue };
        for &b in write_entries {
            let Some(StackRole::Pgbouncer { haproxy }) = role(b) else { continue };
            let Some(StackRole::Haproxy { write, .. }) = role(*haproxy) else { continue };
            for &w in write {
                let cluster = match (role(w), &sc.nodes[w as usize].pg) {
                    (Some(StackRole::Proxy { cluster }), _) => *cluster,
                    (_, Some(p)) => p.cluster,
                    _ => continue,
                };
                if !out.contains(&cluster) {
                    out.push(cluster);
                }
            }
        }
    }
    out
}

/// Commits acknowledged in one second: all, and those synchronous standbys confirmed.
#[derive(Clone, Copy, Default)]
struct Commits {
    acked: u64,
    synced: u64,
}

pub struct Convergence {
    spec: ConvergeSpec,
    /// Roles, crashes and the etcd leader, as the trace says.
    view: ClusterView,
    /// The most live primaries each database had at once during the current second.
    most_primaries: BTreeMap<String, usize>,
    /// (second, database) -> commits.
    commits: BTreeMap<(u64, String), Commits>,
    active_faults: BTreeMap<u32, ()>,
    /// When the last active fault healed (ns); None while one is active.
    healed_ns: Option<u64>,
    /// First second of the current run of whole seconds.
    whole_since: Option<u64>,
    /// The last second that was not whole, and why.
    last_broken: Option<(u64, Vec<String>)>,
    last_second: Option<u64>,
    result: Option<Value>,
}

impl Convergence {
    pub fn new(spec: ConvergeSpec) -> Convergence {
        Convergence {
            spec,
            view: ClusterView::new(),
            most_primaries: BTreeMap::new(),
            commits: BTreeMap::new(),
            active_faults: BTreeMap::new(),
            healed_ns: Some(0),
            whole_since: None,
            last_broken: None,
            last_second: None,
            result: None,
        }
    }

    fn live_primaries(&self, db: &str) -> usize {
        self.view.live_primaries(db).count()
    }

    fn note_primaries(&mut self) {
        for db in &self.spec.databases {
            let n = self.live_primaries(db);
            let most = self.most_primaries.entry(db.clone()).or_insert(0);
            *most = (*most).max(n);
        }
    }

    /// Why `second` (ending now, with these metric rows) is not whole; empty if it is.
    fn broken(&self, second: u64, rows: &models::trace::MetricRows) -> Vec<String> {
        let mut why = Vec::new();
        for db in &self.spec.databases {
            let (now, most) = (self.live_primaries(db), self.most_primaries.get(db).copied().unwrap_or(0));
            if now != 1 || most > 1 {
                why.push(format!("{db}: {} live primaries", now.max(most)));
            }
        }
        if second >= self.spec.writes_from_s {
            for db in &self.spec.writes {
                let c = self.commits.get(&(second, db.clone())).copied().unwrap_or_default();
                if c.acked == 0 {
                    why.push(format!("{db}: no commit acknowledged"));
                } else if self.spec.synchronous.contains(db) && c.synced == 0 {
                    why.push(format!("{db}: no commit confirmed by a synchronous standby"));
                }
            }
        }
        if self.spec.etcd_leader && self.view.etcd_leader().is_none() {
            why.push("no etcd leader".into());
        }
        let count = |metric: &str| rows.iter().filter(|r| &*r.metric == metric).map(|r| r.count).sum::<u64>();
        if self.spec.etcd_writes
            && second >= self.spec.etcd_writes_from_s
            && count(models::etcd::writer_metrics::OK) == 0
        {
            why.push("no etcd write committed".into());
        }
        if self.spec.clients && second >= self.spec.clients_from_s {
            let failed = count(models::flow::client::CLIENT_FAILED);
            if failed > 0 {
                why.push(format!("{failed} client requests failed"));
            } else if count(models::flow::client::CLIENT_OK) == 0 {
                why.push("no client request succeeded".into());
            }
        }
        why
    }

    fn end_of_second(&mut self, second: u64, rows: &models::trace::MetricRows) {
        let why = self.broken(second, rows);
        if why.is_empty() {
            self.whole_since.get_or_insert(second);
        } else {
            self.whole_since = None;
            self.last_broken = Some((second, why));
        }
        self.last_second = Some(second);
        self.most_primaries.clear();
        self.note_primaries();
        self.commits.retain(|(s, _), _| *s > second);
    }
}

impl Checker for Convergence {
    fn name(&self) -> &'static str {
        "convergence"
    }

    fn on_event(&mut self, ev: &Event) -> Option<String> {
        match &ev.kind {
            TraceKind::FaultStarted { fault, .. } => {
                self.active_faults.insert(*fault, ());
                self.healed_ns = None;
            }
            TraceKind::FaultHealed { fault, .. } => {
                self.active_faults.remove(fault);
                if self.active_faults.is_empty() {
                    self.healed_ns = Some(ev.t_ns);
                }
            }
            TraceKind::PgRole { .. } => {
                self.view.apply(ev);
                self.note_primaries();
            }
            TraceKind::NodeCrashed | TraceKind::EtcdHalted { .. } => self.view.apply(ev),
            TraceKind::RaftLeaderElected { .. } | TraceKind::RaftSteppedDown { .. } => self.view.apply(ev),
            TraceKind::PgCommitsAcked { cluster, count, synced, .. } => {
                let c = self.commits.entry((ev.t_ns / NS_PER_S, cluster.clone())).or_default();
                c.acked += count;
                if *synced {
                    c.synced += count;
                }
            }
            TraceKind::Metrics { second, rows } => self.end_of_second(*second, rows),
            _ => {}
        }
        None
    }

    fn finish(&mut self, _end_ns: u64) -> Vec<String> {
        let healed_s = self.healed_ns.map(|ns| ns as f64 / 1e9);
        // Converged: whole from some second to the end, with at least one whole second after
        // the heal (the run may end too soon to tell).
        let since = match (self.healed_ns, self.whole_since, self.last_second) {
            (Some(h), Some(w), Some(last)) if last * NS_PER_S >= h => Some((w as f64).max(h as f64 / 1e9)),
            _ => None,
        };
        let why = match (&self.healed_ns, since, &self.last_broken) {
            (None, _, _) => Some("a fault is still active when the run ends".to_string()),
            (Some(_), None, Some((s, why))) => Some(format!("second {s}: {}", why.join("; "))),
            (Some(_), None, None) => Some("the run ends before a whole second after the heal".to_string()),
            (Some(_), Some(_), _) => None,
        };
        let round = |x: f64| (x * 1e6).round() / 1e6;
        self.result = Some(json!({
            "faults_healed_at_seconds": healed_s.map(round),
            "converged": u8::from(since.is_some()),
            "converged_at_seconds": since.map(round),
            "seconds_to_converge": since.zip(healed_s).map(|(c, h)| round(c - h)),
            "last_unconverged_second": self.last_broken.as_ref().map(|(s, _)| *s),
            "why_not_converged": why,
        }));
        Vec::new()
    }

    fn report(&self) -> Option<(&'static str, Value)> {
        if self.spec.is_empty() {
            return None;
        }
        self.result.clone().map(|v| ("convergence", v))
    }
}

#[cfg(test)]
mod tests;
