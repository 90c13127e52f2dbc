//! PostgreSQL at the cursor: each cluster's servers (role, timeline, upstream, replication
//! state, lag, commits per second) folded from the trace, plus what is derived from them when
//! drawing (crashed, the synchronous set, split brain).

use models::pg::syncrep::SyncMethod;
use models::pg::{RebuildMethod, ServerRole, SyncStandbyNames};
use models::stolon::keeper::sync_names_from_reason;
use models::trace::{Event, MetricRows, RebuildPhase, ReplicationState, StolonWhat, TraceKind};

use crate::tui::state::{Health, NodeState};

/// A cluster as the scenario (or, without it, the trace) describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct PgClusterSetup {
    pub name: String,
    /// `synchronous_standby_names`; `None` when the scenario is not known.
    pub synchronous_standby_names: Option<String>,
    /// Node indices of its servers, in scenario order, with their initial upstream.
    pub servers: Vec<(u32, Option<u32>)>,
}

/// The synchronous replication setting, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncSetting {
    /// The scenario is not known.
    Unknown,
    /// Empty: asynchronous replication.
    Async,
    /// Unparseable (the loader would have refused it): shown as unknown.
    Invalid,
    Names(SyncStandbyNames),
}

impl SyncSetting {
    fn parse(s: Option<&str>) -> SyncSetting {
        match s.map(SyncStandbyNames::parse) {
            None => SyncSetting::Unknown,
            Some(Ok(None)) => SyncSetting::Async,
            Some(Ok(Some(n))) => SyncSetting::Names(n),
            Some(Err(_)) => SyncSetting::Invalid,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PgServer {
    pub node: u32,
    pub name: String,
    /// The last `pg_role`.
    pub role: ServerRole,
    pub tli: u32,
    pub upstream: Option<u32>,
    /// The replication connection; `None` until one is reported after the last role change.
    pub replication: Option<ReplicationState>,
    /// The rebuild method while rebuilding.
    pub rebuild: Option<RebuildMethod>,
    /// From the last `metrics` event: this standby's replication lag (worst of the second).
    pub lag_s: Option<f64>,
    pub lag_bytes: Option<f64>,
    /// From the last `metrics` event: commits acknowledged (every level) and timed out.
    pub commits_per_s: Option<f64>,
    pub timed_out_per_s: Option<f64>,
    /// The `synchronous_standby_names` its Stolon keeper last gave it (Stolon rewrites it on
    /// every change of the synchronous set); `None` until then, or without Stolon.
    pub sync_applied: Option<SyncSetting>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Promotion {
    pub node: u32,
    pub tli: u32,
    pub parent_tli: u32,
    pub switch_lsn: u64,
    pub accept_data_loss: bool,
    pub t_ns: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PgCluster {
    pub name: String,
    pub sync: SyncSetting,
    pub servers: Vec<PgServer>,
    pub last_promotion: Option<Promotion>,
}

/// How a server takes part in synchronous replication at the cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncRole {
    /// Not a streaming standby of a primary (or a primary itself): not applicable.
    None,
    Sync,
    Async,
    Quorum,
    /// The setting is not known.
    Unknown,
}

impl SyncRole {
    pub fn label(self) -> &'static str {
        match self {
            SyncRole::None => "-",
            SyncRole::Sync => "sync",
            SyncRole::Async => "async",
            SyncRole::Quorum => "quorum",
            SyncRole::Unknown => "?",
        }
    }
}

pub fn clusters_from_setup(setup: &[PgClusterSetup], names: &[String]) -> Vec<PgCluster> {
    setup
        .iter()
        .map(|c| PgCluster {
            name: c.name.clone(),
            sync: SyncSetting::parse(c.synchronous_standby_names.as_deref()),
            servers: c
                .servers
                .iter()
                .map(|&(node, upstream)| PgServer {
                    node,
                    name: names.get(node as usize).cloned().unwrap_or_else(|| format!("#{node}")),
                    // Until the server reports: what the scenario starts it as.
                    role: if upstream.is_some() { ServerRole::Standby } else { ServerRole::Primary },
                    tli: 1,
                    upstream,
                    replication: None,
                    rebuild: None,
                    lag_s: None,
                    lag_bytes: None,
                    commits_per_s: None,
                    timed_out_per_s: None,
                    sync_applied: None,
                })
                .collect(),
            last_promotion: None,
        })
        .collect()
}

fn server<'a>(clusters: &'a mut [PgCluster], cluster: &str, node: u32) -> Option<&'a mut PgServer> {
    clusters.iter_mut().find(|c| c.name == cluster)?.servers.iter_mut().find(|s| s.node == node)
}

/// Folds one event into the clusters.
pub fn apply(clusters: &mut [PgCluster], ev: &Event) {
    let node = ev.node.map(|n| n.0);
    match (&ev.kind, node) {
        (TraceKind::PgRole { cluster, role, tli, upstream, .. }, Some(n)) => {
            if let Some(s) = server(clusters, cluster, n) {
                s.role = *role;
                s.tli = *tli;
                s.upstream = upstream.map(|u| u.0);
                s.replication = None;
                if *role != ServerRole::Rebuilding {
                    s.rebuild = None;
                }
            }
        }
        (TraceKind::PgPromoted { cluster, tli, parent_tli, switch_lsn, accept_data_loss, .. }, Some(n)) => {
            if let Some(c) = clusters.iter_mut().find(|c| c.name == *cluster) {
                c.last_promotion = Some(Promotion {
                    node: n,
                    tli: *tli,
                    parent_tli: *parent_tli,
                    switch_lsn: *switch_lsn,
                    accept_data_loss: *accept_data_loss,
                    t_ns: ev.t_ns,
                });
            }
            if let Some(s) = server(clusters, cluster, n) {
                s.tli = *tli;
            }
        }
        (TraceKind::PgReplication { cluster, peer, state }, Some(n)) => {
            // A walsender's timeout is the primary's report about its standby (the peer);
            // everything else is the standby's own report about its upstream.
            let standby = if *state == ReplicationState::WalSenderTimeout { peer.0 } else { n };
            if let Some(s) = server(clusters, cluster, standby) {
                s.replication = Some(state.clone());
            }
        }
        (TraceKind::PgRebuild { cluster, method, phase, .. }, Some(n)) => {
            if let Some(s) = server(clusters, cluster, n) {
                s.rebuild = (*phase == RebuildPhase::Started).then_some(*method);
            }
        }
        (TraceKind::Stolon { cluster, what, reason, .. }, Some(n)) if *what == StolonWhat::SyncStandbys => {
            if let (Some(names), Some(s)) = (sync_names_from_reason(reason), server(clusters, cluster, n)) {
                s.sync_applied = Some(names.map_or(SyncSetting::Async, SyncSetting::Names));
            }
        }
        (TraceKind::NodeCrashed, Some(n)) => {
            // Its connections die with it; it reports its role again when it restarts.
            for s in clusters.iter_mut().flat_map(|c| &mut c.servers).filter(|s| s.node == n) {
                s.replication = None;
                s.rebuild = None;
            }
        }
        (TraceKind::Metrics { rows, .. }, _) => {
            for c in clusters.iter_mut() {
                for s in &mut c.servers {
                    metrics(s, rows);
                }
            }
        }
        _ => {}
    }
}

/// The server's per-second values from one `metrics` event: what it did in that second.
fn metrics(s: &mut PgServer, rows: &MetricRows) {
    let mine = || rows.iter().filter(|r| *r.label == *s.name);
    let max = |metric: &str| mine().filter(|r| &*r.metric == metric).find_map(|r| r.dist.map(|d| d.max));
    let sum = |prefix: &str| {
        let mut rows = mine().filter(|r| r.metric.starts_with(prefix)).peekable();
        rows.peek()?;
        Some(rows.map(|r| r.count as f64).sum())
    };
    let (lag_s, lag_bytes) = (max("pg_replication_lag_s"), max("pg_replication_lag_bytes"));
    let (commits, timed_out) = (sum("pg_commits_acked_"), sum("pg_commits_timed_out_"));
    s.lag_s = lag_s;
    s.lag_bytes = lag_bytes;
    s.commits_per_s = commits;
    s.timed_out_per_s = timed_out;
}

fn is_up(nodes: &[NodeState], node: u32) -> bool {
    nodes.get(node as usize).is_none_or(|n| n.health != Health::Down)
}

/// The role shown: "crashed" while the node is down, otherwise the last reported role.
pub fn shown_role(s: &PgServer, nodes: &[NodeState]) -> &'static str {
    if is_up(nodes, s.node) { s.role.as_str() } else { "crashed" }
}

/// The servers of `c` that are primaries and not crashed.
pub fn live_primaries<'a>(c: &'a PgCluster, nodes: &'a [NodeState]) -> impl Iterator<Item = &'a PgServer> {
    c.servers.iter().filter(|s| s.role == ServerRole::Primary && is_up(nodes, s.node))
}

pub fn split_brain(c: &PgCluster, nodes: &[NodeState]) -> bool {
    live_primaries(c, nodes).count() >= 2
}

/// Whether `s` is a standby streaming from a live primary right now.
fn streaming(c: &PgCluster, s: &PgServer, nodes: &[NodeState]) -> bool {
    s.role == ServerRole::Standby
        && is_up(nodes, s.node)
        && s.replication == Some(ReplicationState::Streaming)
        && s.upstream.is_some_and(|u| live_primaries(c, nodes).any(|p| p.node == u))
}

/// The live primary's `synchronous_standby_names` as its keeper last set it, else the
/// scenario's setting (a cluster without Stolon keeps the one it started with).
fn setting_in_force<'a>(c: &'a PgCluster, nodes: &'a [NodeState]) -> &'a SyncSetting {
    live_primaries(c, nodes).find_map(|p| p.sync_applied.as_ref()).unwrap_or(&c.sync)
}

/// Each server's part in synchronous replication, in `c.servers` order. FIRST n: the first n
/// named standbys (in the setting's order) that are streaming are synchronous, the rest
/// asynchronous; ANY n: every named standby streaming is a quorum member.
pub fn sync_roles(c: &PgCluster, nodes: &[NodeState]) -> Vec<SyncRole> {
    let streaming: Vec<bool> = c.servers.iter().map(|s| streaming(c, s, nodes)).collect();
    let names = match setting_in_force(c, nodes) {
        SyncSetting::Unknown | SyncSetting::Invalid => {
            return streaming.iter().map(|&on| if on { SyncRole::Unknown } else { SyncRole::None }).collect();
        }
        SyncSetting::Async => {
            return streaming.iter().map(|&on| if on { SyncRole::Async } else { SyncRole::None }).collect();
        }
        SyncSetting::Names(n) => n,
    };
    let priority = |name: &str| names.names.iter().position(|n| n == name || n == "*");
    let mut roles: Vec<SyncRole> =
        streaming.iter().map(|&on| if on { SyncRole::Async } else { SyncRole::None }).collect();
    match names.method {
        SyncMethod::Any => {
            for (i, s) in c.servers.iter().enumerate() {
                if streaming[i] && priority(&s.name).is_some() {
                    roles[i] = SyncRole::Quorum;
                }
            }
        }
        SyncMethod::First => {
            let mut candidates: Vec<(usize, usize)> = c
                .servers
                .iter()
                .enumerate()
                .filter(|&(i, _)| streaming[i])
                .filter_map(|(i, s)| priority(&s.name).map(|p| (p, i)))
                .collect();
            candidates.sort();
            for &(_, i) in candidates.iter().take(names.num_sync) {
                roles[i] = SyncRole::Sync;
            }
        }
    }
    roles
}

/// An LSN as PostgreSQL prints it: `16/B374D848`.
pub fn lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// Bytes in at most five characters: `0`, `812`, `12K`, `41.2M`, `1.3G`.
pub fn bytes(b: f64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "G"), (1e6, "M"), (1e3, "K")];
    for (scale, unit) in UNITS {
        if b >= scale {
            let v = b / scale;
            return if v < 100.0 { format!("{v:.1}{unit}") } else { format!("{v:.0}{unit}") };
        }
    }
    format!("{b:.0}")
}

/// Seconds in at most five characters: `0.00s`, `12.3s`, `125s`.
pub fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2}s")
    } else if s < 100.0 {
        format!("{s:.1}s")
    } else {
        format!("{s:.0}s")
    }
}

/// The replication state in at most eight characters.
pub fn replication_label(s: &PgServer) -> String {
    if let Some(m) = s.rebuild {
        return match m {
            RebuildMethod::Basebackup => "basebkup",
            RebuildMethod::PgRewindAllWal | RebuildMethod::PgRewindFromDivergence => "rewind",
        }
        .into();
    }
    match &s.replication {
        None => "-",
        Some(ReplicationState::Streaming) => "stream",
        Some(ReplicationState::Refused(_)) => "refused",
        Some(ReplicationState::WalReceiverTimeout) => "rcv t/o",
        Some(ReplicationState::WalSenderTimeout) => "snd t/o",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::state::Folded;
    use models::trace::{DistStats, NodeRef};

    fn ev(t_ns: u64, node: u32, kind: TraceKind) -> Event {
        Event { seq: 0, t_ns, node: Some(NodeRef(node)), kind }
    }

    fn role(node: u32, role: &str, tli: u32, upstream: Option<u32>) -> Event {
        let kind = TraceKind::PgRole {
            cluster: "c".into(),
            role: ServerRole::parse(role).expect("a role"),
            tli,
            origin: 0,
            upstream: upstream.map(NodeRef),
        };
        ev(1, node, kind)
    }

    fn streaming(node: u32, upstream: u32) -> Event {
        ev(
            1,
            node,
            TraceKind::PgReplication {
                cluster: "c".into(),
                peer: NodeRef(upstream),
                state: ReplicationState::Streaming,
            },
        )
    }

    fn folded(sync: &str) -> Folded {
        let names: Vec<String> = ["p", "a", "b", "c"].map(String::from).to_vec();
        let setup = [PgClusterSetup {
            name: "c".into(),
            synchronous_standby_names: Some(sync.into()),
            servers: vec![(0, None), (1, Some(0)), (2, Some(0)), (3, Some(0))],
        }];
        Folded::with_pg(&["postgres"; 4], &names, &setup)
    }

    fn labels(s: &Folded) -> Vec<&'static str> {
        sync_roles(&s.pg[0], &s.nodes).into_iter().map(SyncRole::label).collect()
    }

    #[test]
    fn first_n_picks_the_first_named_standbys_that_stream() {
        let mut s = folded("FIRST 1 (b, a)");
        assert_eq!(labels(&s), ["-", "-", "-", "-"], "nobody streams yet");
        for n in 1..4 {
            s.apply(&streaming(n, 0));
        }
        assert_eq!(labels(&s), ["-", "async", "sync", "async"], "b comes first in the list");
        s.apply(&ev(2, 2, TraceKind::NodeCrashed));
        assert_eq!(labels(&s), ["-", "sync", "-", "async"], "a takes over when b crashes");
        assert_eq!(shown_role(&s.pg[0].servers[2], &s.nodes), "crashed");
        assert_eq!(replication_label(&s.pg[0].servers[2]), "-", "its connection died with it");
        s.apply(&ev(3, 2, TraceKind::NodeRestarted { incarnation: 1 }));
        s.apply(&role(2, "standby", 1, Some(0)));
        assert_eq!(labels(&s), ["-", "sync", "-", "async"], "b must stream again first");
        s.apply(&streaming(2, 0));
        assert_eq!(labels(&s), ["-", "async", "sync", "async"]);

        let mut any = folded("ANY 1 (a, b)");
        for n in 1..4 {
            any.apply(&streaming(n, 0));
        }
        assert_eq!(labels(&any), ["-", "quorum", "quorum", "async"]);
        let mut none = folded("");
        none.apply(&streaming(1, 0));
        assert_eq!(labels(&none), ["-", "async", "-", "-"]);
    }

    #[test]
    fn the_setting_a_keeper_applies_replaces_the_scenarios() {
        let mut s = folded("FIRST 1 (a)");
        for n in 1..4 {
            s.apply(&streaming(n, 0));
        }
        assert_eq!(labels(&s), ["-", "sync", "async", "async"]);
        let keeper = |node: u32, names: Option<&str>| {
            let names = names.map(|n| SyncStandbyNames::parse(n).unwrap().unwrap());
            let reason = models::stolon::keeper::sync_names_reason(names.as_ref(), 4);
            ev(9, node, TraceKind::Stolon { cluster: "c".into(), what: StolonWhat::SyncStandbys, keeper: None, reason })
        };
        s.apply(&keeper(0, Some("1 (c)")));
        assert_eq!(labels(&s), ["-", "async", "async", "sync"], "Stolon made c the synchronous standby");
        s.apply(&keeper(0, None));
        assert_eq!(labels(&s), ["-", "async", "async", "async"], "'' : asynchronous");
        let sentinel = TraceKind::Stolon {
            cluster: "c".into(),
            what: StolonWhat::SyncStandbys,
            keeper: None,
            reason: "synchronous standbys [c] -> [b]".into(),
        };
        s.apply(&ev(10, 0, sentinel));
        assert_eq!(labels(&s), ["-", "async", "async", "async"], "the sentinel's decision is not yet in force");
        s.apply(&keeper(1, Some("1 (b)")));
        assert_eq!(labels(&s), ["-", "async", "async", "async"], "only the primary's setting counts");
    }

    #[test]
    fn promotion_timelines_and_split_brain() {
        let mut s = folded("");
        assert!(!split_brain(&s.pg[0], &s.nodes));
        s.apply(&streaming(1, 0));
        // The standby is promoted while the old primary is only cut off: two primaries.
        s.apply(&role(1, "promoting", 1, None));
        assert_eq!(s.pg[0].servers[1].replication, None, "a role change ends the connection");
        let promoted = TraceKind::PgPromoted {
            cluster: "c".into(),
            tli: 2,
            origin: 1,
            parent_tli: 1,
            parent_origin: 0,
            switch_lsn: 0x1_0000_0010,
            accept_data_loss: true,
        };
        s.apply(&ev(5, 1, promoted));
        s.apply(&role(1, "primary", 2, None));
        let c = &s.pg[0];
        assert_eq!((c.servers[1].role.as_str(), c.servers[1].tli, c.servers[0].tli), ("primary", 2, 1));
        let p = c.last_promotion.as_ref().unwrap();
        assert_eq!(
            (p.node, p.tli, p.parent_tli, lsn(p.switch_lsn), p.accept_data_loss),
            (1, 2, 1, "1/10".into(), true)
        );
        assert!(split_brain(c, &s.nodes));
        // Crashed primaries do not count; a fenced one is no primary.
        s.apply(&ev(6, 0, TraceKind::NodeCrashed));
        assert!(!split_brain(&s.pg[0], &s.nodes));
        s.apply(&ev(7, 0, TraceKind::NodeRestarted { incarnation: 1 }));
        assert!(split_brain(&s.pg[0], &s.nodes), "it comes back a primary until it reports otherwise");
        s.apply(&role(0, "fenced", 1, None));
        assert!(!split_brain(&s.pg[0], &s.nodes));
    }

    #[test]
    fn lag_and_commits_come_from_the_last_metrics_event() {
        let mut s = folded("");
        let row = |metric: &str, label: &str, count: u64, max: Option<f64>| models::trace::MetricRow {
            metric: metric.into(),
            label: label.into(),
            count,
            dist: max.map(|max| DistStats { min: 0.0, mean: 0.0, p50: 0.0, p99: max, max }),
        };
        let rows = vec![
            row("pg_commits_acked_on", "p", 900, None),
            row("pg_commits_acked_local", "p", 100, None),
            row("pg_commits_timed_out_on", "p", 3, None),
            row("pg_replication_lag_s", "a", 1, Some(1.5)),
            row("pg_replication_lag_bytes", "a", 1, Some(4.2e6)),
        ];
        s.apply(&ev(1, 0, TraceKind::Metrics { second: 0, rows: rows.into() }));
        let c = &s.pg[0];
        assert_eq!((c.servers[0].commits_per_s, c.servers[0].timed_out_per_s), (Some(1000.0), Some(3.0)));
        assert_eq!((c.servers[1].lag_s, c.servers[1].lag_bytes), (Some(1.5), Some(4.2e6)));
        assert_eq!(c.servers[2].lag_s, None);
        s.apply(&ev(2, 0, TraceKind::Metrics { second: 1, rows: Default::default() }));
        assert_eq!((s.pg[0].servers[0].commits_per_s, s.pg[0].servers[1].lag_s), (None, None));
        assert_eq!(
            (bytes(4.2e6), bytes(812.0), seconds(1.5), seconds(125.0)),
            ("4.2M".into(), "812".into(), "1.50s".into(), "125s".into())
        );
    }
}
