//! Failover safety of a PostgreSQL cluster under Stolon, judged from the trace: never two
//! writable primaries beyond what Stolon's rules allow, and a sentinel promotes only a standby
//! of the synchronous set the old master had in force.

use std::collections::{BTreeMap, BTreeSet};

use models::pg::ServerRole;
use models::trace::{ClusterView, Event, TraceKind};

use crate::check::Checker;

/// A timeline: (tli, origin), as PostgreSQL's history names it.
type Tl = (u32, u32);

/// A branch off a timeline: the child and where it switched.
struct Branch {
    child: Tl,
    switch_lsn: u64,
}

#[derive(Default)]
struct ClusterState {
    /// The highest LSN acknowledged to a client as confirmed by the synchronous standbys, on
    /// each timeline.
    synced_lsn_max: BTreeMap<Tl, u64>,
    /// Promotions that did not accept data loss, by parent timeline.
    branches: BTreeMap<Tl, Vec<Branch>>,
}

/// Two writable primaries, in the three forms that correct Stolon and PostgreSQL never show.
///
/// A pure time bound on "two primaries" would fire in correct runs: Stolon keeps the old
/// master running as a primary until the new one has converged and the old one's keeper reads
/// the cluster data that repoints it (`docs/stolon-fidelity.md`), and a keeper cut off from
/// etcd never reads it, so an old primary cut off by a partition runs on for as long as the
/// partition lasts (the 2020 replays show 0-340 s of two primaries). Stolon does not rely on
/// fencing for safety: the proxies stop sending clients to the old master, and with
/// synchronous replication the old master cannot acknowledge a commit without the standby
/// that was promoted. What does hold, and is checked here:
///
/// 1. **One primary per timeline.** A timeline is created by one promotion (its origin) and a
///    server gets onto it as a primary only by that promotion, so two live primaries on one
///    timeline are two servers accepting different writes as the same history.
/// 2. **No durable commit past a branch.** Once a standby is promoted off timeline P at
///    `switch_lsn` (without an operator's `accept_data_loss`), no commit on P beyond
///    `switch_lsn` is acknowledged as confirmed by synchronous standbys, before the promotion
///    or after. Stolon's `synchronous_standby_names = 'N (a, b)'` needs every listed standby,
///    and the one promoted is listed (see `PromotedInSyncSet`): it confirmed everything up to
///    what it had flushed when it switched, and confirms nothing on P after. A client that saw
///    a commit as durable on both sides of a split brain is what this catches.
/// 3. **Fenced within one keeper round of being told.** A keeper that reads cluster data in
///    which its server is to follow another keeper fences a server still running as a primary
///    in that very round (keeper.go: an old master rejoining as a standby is stopped and
///    resynced). So the bound is counted in the old master's own keeper reads, not in time:
///    a server that is still a live primary when its keeper reads a second time that it must
///    follow was not fenced. A cut-off keeper reads nothing, so the legitimate unbounded case
///    never fires.
#[derive(Default)]
pub struct PgSplitBrain {
    clusters: BTreeMap<String, ClusterState>,
    view: ClusterView,
    /// node -> whether its keeper's last read (this incarnation) told it to follow another.
    told_to_follow: BTreeMap<u32, bool>,
    /// Nodes reported as unfenced, until their role changes (reported once, not every round).
    unfenced: BTreeSet<u32>,
}

impl PgSplitBrain {
    /// After the view took in `node`'s new role.
    fn on_role(&mut self, node: u32, cluster: &str, role: ServerRole, tl: Tl) -> Option<String> {
        self.unfenced.remove(&node);
        if role != ServerRole::Primary {
            return None;
        }
        let mut others = self.view.live_primaries(cluster).filter(|&(n, s)| n != node && s.timeline() == tl);
        others.next().map(|(n, _)| {
            format!("nodes {n} and {node} are both live primaries on timeline {} (origin {})", tl.0, tl.1)
        })
    }

    fn on_synced_ack(&mut self, cluster: &str, tl: Tl, last_lsn: u64) -> Option<String> {
        let c = self.clusters.entry(cluster.to_string()).or_default();
        let max = c.synced_lsn_max.entry(tl).or_insert(0);
        *max = (*max).max(last_lsn);
        let branches = c.branches.get(&tl)?;
        let b = branches.iter().find(|b| b.switch_lsn < last_lsn)?;
        Some(format!(
            "timeline {} acknowledged a commit at LSN {last_lsn} as synchronously replicated, past LSN {} where timeline {} (origin {}) branched off",
            tl.0, b.switch_lsn, b.child.0, b.child.1
        ))
    }

    fn on_promoted(&mut self, cluster: &str, parent: Tl, child: Tl, switch_lsn: u64) -> Option<String> {
        let c = self.clusters.entry(cluster.to_string()).or_default();
        c.branches.entry(parent).or_default().push(Branch { child, switch_lsn });
        let max = *c.synced_lsn_max.get(&parent)?;
        (max > switch_lsn).then(|| {
            format!(
                "timeline {} (origin {}) branched off timeline {} at LSN {switch_lsn}, which had acknowledged commits up to LSN {max} as synchronously replicated",
                child.0, child.1, parent.0
            )
        })
    }

    fn on_keeper_read(&mut self, node: u32, follow: Option<&str>) -> Option<String> {
        let told_before = self.told_to_follow.insert(node, follow.is_some()).unwrap_or(false);
        let follow = follow?;
        let server = self.view.server(node)?;
        let unfenced = told_before && server.is_live_primary();
        (unfenced && self.unfenced.insert(node)).then(|| {
            format!(
                "node {node} still runs as a primary on timeline {} after its keeper read twice that it must follow {follow}",
                server.tli
            )
        })
    }
}

impl Checker for PgSplitBrain {
    fn name(&self) -> &'static str {
        "pg_split_brain"
    }

    fn on_event(&mut self, ev: &Event) -> Option<String> {
        let node = ev.node.map(|n| n.0);
        match &ev.kind {
            TraceKind::PgRole { cluster, role, tli, origin, .. } => {
                self.view.apply(ev);
                self.on_role(node?, cluster, *role, (*tli, *origin))
            }
            TraceKind::PgCommitsAcked { cluster, tli, origin, count, first_lsn, step, synced: true, .. } => {
                let last_lsn = first_lsn + count.saturating_sub(1) * step;
                self.on_synced_ack(cluster, (*tli, *origin), last_lsn)
            }
            TraceKind::PgPromoted {
                cluster,
                tli,
                origin,
                parent_tli,
                parent_origin,
                switch_lsn,
                accept_data_loss: false,
            } => self.on_promoted(cluster, (*parent_tli, *parent_origin), (*tli, *origin), *switch_lsn),
            TraceKind::StolonKeeperRead { follow, .. } => self.on_keeper_read(node?, follow.as_deref()),
            TraceKind::NodeCrashed => {
                let n = node?;
                // The keeper's next incarnation starts with no reads.
                self.told_to_follow.remove(&n);
                self.view.apply(ev);
                None
            }
            _ => None,
        }
    }
}

/// With synchronous replication, a standby the sentinel promotes was in the synchronous set
/// its old master had in force.
///
/// Stolon's sentinel may only elect a standby that the old master's keeper reported in sync
/// (`pg_stat_replication.sync_state = 'sync'`) and that is in the master's wanted set
/// (`findBestNewMasters` over `util.CommonElements(Status.SynchronousStandbys,
/// Spec.SynchronousStandbys)`), and it changes the wanted set only once the master reports
/// the wanted standbys in sync, adding before removing. A standby reported in sync is one the
/// server has in `synchronous_standby_names`; so whatever the master had in force when the
/// sentinel decided (the old set or, while the keeper applies a change, the new one) lists the
/// promoted standby. Judged against the server's own setting (`pg_sync_standby_names`), not the
/// cluster data, so a sentinel that trusts a wrong view is caught too.
///
/// Exempt: an operator's force-master (the operator chooses), a sentinel deciding with
/// `synchronousReplication` off (a `stolonctl update` turned it off: any standby within
/// `maxStandbyLag` may be elected), and an old master with no synchronous standbys in force
/// (it acknowledged nothing as replicated).
#[derive(Default)]
pub struct PromotedInSyncSet {
    /// (cluster, server) -> the standbys its `synchronous_standby_names` lists.
    in_force: BTreeMap<(String, String), Vec<String>>,
}

impl Checker for PromotedInSyncSet {
    fn name(&self) -> &'static str {
        "stolon_promoted_in_sync_set"
    }

    fn on_event(&mut self, ev: &Event) -> Option<String> {
        match &ev.kind {
            TraceKind::PgSyncStandbyNames { cluster, server, names, .. } => {
                self.in_force.insert((cluster.clone(), server.clone()), names.clone());
                None
            }
            TraceKind::StolonFailover {
                cluster,
                old_master,
                new_master,
                synchronous_replication: true,
                forced: false,
                ..
            } => {
                let set = self.in_force.get(&(cluster.clone(), old_master.clone()))?;
                (!set.is_empty() && !set.contains(new_master)).then(|| {
                    format!(
                        "cluster {cluster}: the sentinel promoted {new_master}, but {old_master} had synchronous_standby_names = [{}] in force",
                        set.join(", ")
                    )
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::NodeRef;

    fn ev(node: u32, kind: TraceKind) -> Event {
        Event { seq: 0, t_ns: 0, node: Some(NodeRef(node)), kind }
    }
    fn role(role: &str, tli: u32, origin: u32) -> TraceKind {
        TraceKind::PgRole {
            cluster: "c".into(),
            role: ServerRole::parse(role).expect("a role"),
            tli,
            origin,
            upstream: None,
        }
    }
    fn synced_ack(tli: u32, origin: u32, first_lsn: u64, count: u64) -> TraceKind {
        TraceKind::PgCommitsAcked {
            cluster: "c".into(),
            tli,
            origin,
            level: models::pg::SyncLevel::On,
            count,
            first_lsn,
            step: 10,
            synced: true,
        }
    }
    fn promoted(tli: u32, origin: u32, switch_lsn: u64, accept_data_loss: bool) -> TraceKind {
        TraceKind::PgPromoted {
            cluster: "c".into(),
            tli,
            origin,
            parent_tli: 1,
            parent_origin: 0,
            switch_lsn,
            accept_data_loss,
        }
    }
    fn read(follow: Option<&str>) -> TraceKind {
        TraceKind::StolonKeeperRead {
            cluster: "c".into(),
            keeper: "pg0".into(),
            generation: 3,
            follow: follow.map(str::to_string),
        }
    }

    #[test]
    fn two_live_primaries_on_one_timeline_are_caught_on_two_timelines_are_not() {
        let mut c = PgSplitBrain::default();
        assert_eq!(c.on_event(&ev(0, role("primary", 1, 0))), None);
        assert_eq!(c.on_event(&ev(1, role("standby", 1, 0))), None);
        assert_eq!(c.on_event(&ev(1, role("primary", 2, 1))), None, "a promoted standby: a timeline of its own");
        assert!(c.on_event(&ev(2, role("primary", 1, 0))).is_some(), "a second primary on timeline 1");
        assert_eq!(c.on_event(&ev(0, TraceKind::NodeCrashed)), None);
        assert_eq!(c.on_event(&ev(2, role("primary", 1, 0))), None, "node 0 is down");
    }

    #[test]
    fn a_synchronous_ack_past_a_branch_point_is_caught_either_side_of_the_promotion() {
        let mut c = PgSplitBrain::default();
        assert_eq!(c.on_event(&ev(0, synced_ack(1, 0, 100, 5))), None, "LSNs 100..=140");
        assert_eq!(c.on_event(&ev(1, promoted(2, 1, 150, false))), None, "the standby had everything");
        assert_eq!(c.on_event(&ev(0, synced_ack(1, 0, 150, 1))), None, "LSN 150 is on the new timeline too");
        let after = c.on_event(&ev(0, synced_ack(1, 0, 160, 1))).expect("a durable commit past the branch");
        assert!(after.contains("LSN 160"), "{after}");
        // The other order: acknowledged first, then a promotion that lacks it.
        let mut c = PgSplitBrain::default();
        assert_eq!(c.on_event(&ev(0, synced_ack(1, 0, 100, 5))), None);
        assert!(c.on_event(&ev(1, promoted(2, 1, 120, false))).is_some(), "140 was acknowledged, 120 kept");
        // An operator who accepts data loss is not held to it.
        let mut c = PgSplitBrain::default();
        assert_eq!(c.on_event(&ev(0, synced_ack(1, 0, 100, 5))), None);
        assert_eq!(c.on_event(&ev(1, promoted(2, 1, 120, true))), None);
        assert_eq!(c.on_event(&ev(0, synced_ack(1, 0, 200, 1))), None);
    }

    #[test]
    fn an_old_primary_still_running_at_its_keepers_second_read_is_caught() {
        let mut c = PgSplitBrain::default();
        assert_eq!(c.on_event(&ev(0, role("primary", 1, 0))), None);
        assert_eq!(c.on_event(&ev(0, read(None))), None);
        assert_eq!(c.on_event(&ev(0, read(Some("pg1")))), None, "told once: the keeper fences now");
        assert!(c.on_event(&ev(0, read(Some("pg1")))).is_some(), "told twice, still a primary");
        assert_eq!(c.on_event(&ev(0, read(Some("pg1")))), None, "reported once");
        // A correct keeper: fenced in the round it was told.
        let mut c = PgSplitBrain::default();
        assert_eq!(c.on_event(&ev(0, role("primary", 1, 0))), None);
        assert_eq!(c.on_event(&ev(0, read(Some("pg1")))), None);
        assert_eq!(c.on_event(&ev(0, role("fenced", 1, 0))), None);
        assert_eq!(c.on_event(&ev(0, read(Some("pg1")))), None);
        // A restart in between: the new incarnation's first read is its first.
        let mut c = PgSplitBrain::default();
        assert_eq!(c.on_event(&ev(0, role("primary", 1, 0))), None);
        assert_eq!(c.on_event(&ev(0, read(Some("pg1")))), None);
        assert_eq!(c.on_event(&ev(0, TraceKind::NodeCrashed)), None);
        assert_eq!(c.on_event(&ev(0, role("primary", 1, 0))), None);
        assert_eq!(c.on_event(&ev(0, read(Some("pg1")))), None);
    }

    fn sync_names(server: &str, names: &[&str]) -> TraceKind {
        TraceKind::PgSyncStandbyNames {
            cluster: "c".into(),
            server: server.into(),
            num_sync: names.len() as u32,
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }
    fn failover(new_master: &str, synchronous_replication: bool, forced: bool) -> TraceKind {
        TraceKind::StolonFailover {
            cluster: "c".into(),
            old_master: "pg1".into(),
            new_master: new_master.into(),
            synchronous_replication,
            forced,
            accept_data_loss: forced,
        }
    }

    #[test]
    fn a_promotion_outside_the_synchronous_set_in_force_is_caught() {
        let mut c = PromotedInSyncSet::default();
        assert_eq!(c.on_event(&ev(0, sync_names("pg1", &["pg2"]))), None);
        assert_eq!(c.on_event(&ev(9, failover("pg2", true, false))), None);
        let found = c.on_event(&ev(9, failover("pg3", true, false))).expect("pg3 was asynchronous");
        assert!(found.contains("[pg2]"), "{found}");
        assert_eq!(c.on_event(&ev(9, failover("pg3", true, true))), None, "an operator's force-master");
        assert_eq!(c.on_event(&ev(9, failover("pg3", false, false))), None, "synchronousReplication off");
        // The set in force is the server's, as its keeper last changed it.
        assert_eq!(c.on_event(&ev(0, sync_names("pg1", &["pg2", "pg3"]))), None);
        assert_eq!(c.on_event(&ev(9, failover("pg3", true, false))), None);
        assert_eq!(c.on_event(&ev(0, sync_names("pg1", &[]))), None);
        assert_eq!(c.on_event(&ev(9, failover("pg4", true, false))), None, "nothing in force: nothing replicated");
    }
}
