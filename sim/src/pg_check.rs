//! PostgreSQL durability and split brain, judged from the trace.
//!
//! Every acknowledged commit has an LSN on a timeline. At the end of the run the cluster's
//! final timeline (the one its live primary is on) and its ancestry say which of them
//! survived: a commit on an ancestor survives if it lies before the switch point, a commit on a
//! branch that was abandoned does not. Losing a commit that synchronous standbys had confirmed
//! is a violation unless an operator knowingly promoted with `accept_data_loss`.

use std::collections::BTreeMap;

use models::pg::SyncLevel;
use models::trace::{ClusterView, Event, TraceKind};
use serde_json::{Value, json};

use crate::check::Checker;

type Tl = (u32, u32);

/// `synchronous_commit` levels the loss report counts by.
const LEVELS: [SyncLevel; 5] = SyncLevel::ALL;

/// `count` commits at LSNs `first`, `first + step`, ... A long run acknowledges hundreds of
/// thousands of cohorts, so the level is an index into `LEVELS` (`None`: another level), and a
/// cohort that continues the previous one's sequence extends it instead of adding a record.
struct Acked {
    tl: Tl,
    level: Option<u8>,
    synced: bool,
    count: u64,
    first: u64,
    step: u64,
}

impl Acked {
    /// Extends this record by `next` if that continues its LSN sequence with the same attributes.
    /// Survival counts (`first` to a switch point, by `step`) add up the same either way.
    fn absorb(&mut self, next: &Acked) -> bool {
        let continues = (self.tl, self.level, self.synced, self.step) == (next.tl, next.level, next.synced, next.step)
            && self.step > 0
            && self.first + self.count * self.step == next.first;
        if continues {
            self.count += next.count;
        }
        continues
    }
}

#[derive(Default)]
struct Cluster {
    acked: Vec<Acked>,
    parents: BTreeMap<Tl, (Tl, u64)>,
    /// Timelines of this cluster's live primaries, refreshed from the `ClusterView`.
    live: Vec<Tl>,
    accept_data_loss: bool,
    promotions: u64,
    split_since: Option<u64>,
    split_ns: u64,
}

impl Cluster {
    fn update_split(&mut self, t: u64) {
        let split = self.live.len() >= 2;
        match (split, self.split_since) {
            (true, None) => self.split_since = Some(t),
            (false, Some(since)) => {
                self.split_ns += t - since;
                self.split_since = None;
            }
            _ => {}
        }
    }
    fn final_timeline(&self) -> Option<Tl> {
        self.live
            .iter()
            .copied()
            .max()
            .or_else(|| self.parents.keys().max().copied())
            .or_else(|| self.acked.first().map(|a| a.tl))
    }
    /// How many commits of `a` survive on `fin`'s history.
    fn surviving(&self, fin: Tl, a: &Acked) -> u64 {
        if a.tl == fin {
            return a.count;
        }
        let mut tl = fin;
        while let Some(&(parent, switch)) = self.parents.get(&tl) {
            if parent == a.tl {
                if switch < a.first {
                    return 0;
                }
                return a.count.min((switch - a.first) / a.step + 1);
            }
            tl = parent;
        }
        0
    }
}

/// One promotion: which commits acknowledged on the parent timeline the new one lacks.
struct Promotion {
    t_ns: u64,
    cluster: String,
    tli: u32,
    parent: Tl,
    switch_lsn: u64,
}

#[derive(Default)]
pub struct PgDurability {
    clusters: BTreeMap<String, Cluster>,
    view: ClusterView,
    promotions: Vec<Promotion>,
    node_cluster: BTreeMap<u32, String>,
    result: Option<Value>,
}

impl PgDurability {
    /// A role changed or a node crashed: refresh the cluster's live primaries and whether it
    /// is split.
    fn refresh_split(&mut self, cluster: &str, t_ns: u64) {
        let live = self.view.live_primaries(cluster).map(|(_, s)| s.timeline()).collect();
        let c = self.clusters.entry(cluster.to_string()).or_default();
        c.live = live;
        c.update_split(t_ns);
    }
}

impl Checker for PgDurability {
    fn name(&self) -> &'static str {
        "pg_durability"
    }

    fn on_event(&mut self, ev: &Event) -> Option<String> {
        let node = ev.node.map(|n| n.0);
        match &ev.kind {
            TraceKind::PgCommitsAcked { cluster, tli, origin, level, count, first_lsn, step, synced } => {
                let c = self.clusters.entry(cluster.clone()).or_default();
                let a = Acked {
                    tl: (*tli, *origin),
                    level: LEVELS.iter().position(|l| l == level).map(|i| i as u8),
                    synced: *synced,
                    count: *count,
                    first: *first_lsn,
                    step: *step,
                };
                if !c.acked.last_mut().is_some_and(|last| last.absorb(&a)) {
                    c.acked.push(a);
                }
            }
            TraceKind::PgPromoted { cluster, tli, origin, parent_tli, parent_origin, switch_lsn, accept_data_loss } => {
                let c = self.clusters.entry(cluster.clone()).or_default();
                c.parents.insert((*tli, *origin), ((*parent_tli, *parent_origin), *switch_lsn));
                c.accept_data_loss |= accept_data_loss;
                c.promotions += 1;
                self.promotions.push(Promotion {
                    t_ns: ev.t_ns,
                    cluster: cluster.clone(),
                    tli: *tli,
                    parent: (*parent_tli, *parent_origin),
                    switch_lsn: *switch_lsn,
                });
            }
            TraceKind::PgRole { cluster, .. } => {
                self.node_cluster.insert(node?, cluster.clone());
                self.view.apply(ev);
                self.refresh_split(cluster, ev.t_ns);
            }
            TraceKind::NodeCrashed => {
                self.view.apply(ev);
                let cluster = self.node_cluster.get(&node?)?.clone();
                self.refresh_split(&cluster, ev.t_ns);
            }
            _ => {}
        }
        None
    }

    fn finish(&mut self, end_ns: u64) -> Vec<String> {
        let mut violations = Vec::new();
        let mut lost: BTreeMap<&'static str, u64> = LEVELS.into_iter().map(|l| (l.as_str(), 0)).collect();
        let (mut acked_total, mut lost_synced, mut split_ns, mut promotions) = (0u64, 0u64, 0u64, 0u64);
        let mut finals = serde_json::Map::new();
        for (name, c) in &mut self.clusters {
            c.update_split(end_ns);
            if let Some(since) = c.split_since.take() {
                c.split_ns += end_ns - since;
            }
            split_ns += c.split_ns;
            promotions += c.promotions;
            let Some(fin) = c.final_timeline() else { continue };
            finals.insert(name.clone(), json!(fin.0));
            let mut cluster_lost_synced = 0;
            for a in &c.acked {
                acked_total += a.count;
                let gone = a.count - c.surviving(fin, a);
                if let Some(level) = a.level {
                    *lost.get_mut(LEVELS[level as usize].as_str()).expect("every level is listed") += gone;
                }
                if a.synced {
                    cluster_lost_synced += gone;
                }
            }
            lost_synced += cluster_lost_synced;
            if cluster_lost_synced > 0 && !c.accept_data_loss {
                violations.push(format!(
                    "cluster {name}: {cluster_lost_synced} commits confirmed by synchronous standbys are not on the final timeline {}",
                    fin.0
                ));
            }
        }
        // Each promotion's RPO: commits acknowledged on the parent timeline past the switch
        // point (before or after the promotion: an unfenced old primary keeps acknowledging).
        let failovers: Vec<Value> = self
            .promotions
            .iter()
            .map(|p| {
                let c = &self.clusters[&p.cluster];
                let lost: u64 = c
                    .acked
                    .iter()
                    .filter(|a| a.tl == p.parent)
                    .map(|a| {
                        let kept =
                            if p.switch_lsn < a.first { 0 } else { a.count.min((p.switch_lsn - a.first) / a.step + 1) };
                        a.count - kept
                    })
                    .sum();
                json!({ "at_seconds": p.t_ns as f64 / 1e9, "cluster": p.cluster, "tli": p.tli, "commits_lost": lost })
            })
            .collect();
        let timelines: u64 = self.clusters.values().map(|c| 1 + c.parents.len() as u64).sum();
        self.result = Some(json!({
            "commits_acknowledged": acked_total,
            "commits_lost_total": lost.values().sum::<u64>(),
            "commits_lost": lost,
            "commits_lost_synchronous": lost_synced,
            "promotions": promotions,
            "timelines": timelines,
            "final_timeline": finals,
            "split_brain_seconds": (split_ns as f64 / 1e9 * 1e6).round() / 1e6,
            "promotion_losses": failovers,
        }));
        violations
    }

    fn report(&self) -> Option<(&'static str, Value)> {
        if self.clusters.is_empty() {
            return None;
        }
        self.result.clone().map(|v| ("postgres", v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::NodeRef;

    fn ev(node: u32, t_ns: u64, kind: TraceKind) -> Event {
        Event { seq: 0, t_ns, node: Some(NodeRef(node)), kind }
    }
    fn role(role: &str, tli: u32, origin: u32) -> TraceKind {
        TraceKind::PgRole {
            cluster: "c".into(),
            role: models::pg::ServerRole::parse(role).expect("a role"),
            tli,
            origin,
            upstream: None,
        }
    }
    fn acked(tli: u32, level: &str, count: u64, first: u64, synced: bool) -> TraceKind {
        TraceKind::PgCommitsAcked {
            cluster: "c".into(),
            tli,
            origin: 0,
            level: SyncLevel::parse(level).expect("a level"),
            count,
            first_lsn: first,
            step: 10,
            synced,
        }
    }

    /// Cohorts that continue one another's LSN sequence share a record, and the losses are
    /// counted as if each cohort had its own.
    #[test]
    fn contiguous_cohorts_share_a_record_and_lose_the_same_commits() {
        let mut c = PgDurability::default();
        c.on_event(&ev(0, 0, role("primary", 1, 0)));
        c.on_event(&ev(0, 1, acked(1, "local", 3, 100, false))); // 100..=120
        c.on_event(&ev(0, 2, acked(1, "local", 7, 130, false))); // 130..=190: continues it
        c.on_event(&ev(0, 2, acked(1, "local", 2, 300, false))); // a gap: a record of its own
        c.on_event(&ev(0, 2, acked(1, "on", 2, 320, false))); // another level: its own
        assert_eq!(
            c.clusters["c"].acked.iter().map(|a| (a.first, a.count)).collect::<Vec<_>>(),
            [(100, 10), (300, 2), (320, 2)]
        );
        c.on_event(&ev(0, 3, TraceKind::NodeCrashed));
        c.on_event(&ev(1, 4, promoted_at_150()));
        c.on_event(&ev(1, 4, role("primary", 2, 1)));
        c.finish(10);
        let r = c.report().unwrap().1;
        assert_eq!(r["commits_lost"]["local"], 4 + 2, "160..=190 and the later two");
        assert_eq!(r["commits_lost"]["on"], 2);
    }

    /// Node 1 promoted to timeline 2, switching at LSN 150.
    fn promoted_at_150() -> TraceKind {
        TraceKind::PgPromoted {
            cluster: "c".into(),
            tli: 2,
            origin: 1,
            parent_tli: 1,
            parent_origin: 0,
            switch_lsn: 150,
            accept_data_loss: false,
        }
    }

    /// An async standby promoted at LSN 150 keeps commits up to 150 and loses the rest of the
    /// old primary's acknowledged ones; with synced commits lost, it is a violation.
    #[test]
    fn counts_commits_past_the_switch_point() {
        let mut c = PgDurability::default();
        c.on_event(&ev(0, 0, role("primary", 1, 0)));
        c.on_event(&ev(1, 0, role("standby", 1, 0)));
        c.on_event(&ev(0, 1, acked(1, "local", 10, 100, false))); // LSNs 100..=190
        c.on_event(&ev(0, 2, acked(1, "on", 5, 200, true))); // 200..=240
        c.on_event(&ev(0, 3, TraceKind::NodeCrashed));
        c.on_event(&ev(1, 4, promoted_at_150()));
        c.on_event(&ev(1, 4, role("primary", 2, 1)));
        let v = c.finish(10);
        let r = c.report().unwrap().1;
        assert_eq!(r["commits_lost"]["local"], 4, "100..=150 survive (6), 160..=190 are lost");
        assert_eq!(r["commits_lost"]["on"], 5);
        assert_eq!(r["commits_lost_synchronous"], 5);
        assert_eq!(r["commits_lost_total"], 9);
        assert_eq!(v.len(), 1, "synced commits lost without consent: {v:?}");
        assert_eq!(r["split_brain_seconds"], 0.0, "the old primary had crashed");
    }

    #[test]
    fn two_live_primaries_are_split_brain() {
        let mut c = PgDurability::default();
        c.on_event(&ev(0, 0, role("primary", 1, 0)));
        c.on_event(&ev(1, 2_000_000_000, role("primary", 2, 1)));
        c.on_event(&ev(0, 5_000_000_000, role("fenced", 1, 0)));
        c.finish(9_000_000_000);
        assert_eq!(c.report().unwrap().1["split_brain_seconds"], 3.0);
    }
}
