//! Checkers consume the trace live, event by event, and report violated invariants.

use std::collections::BTreeMap;

use models::trace::{Event, TraceKind};

pub trait Checker {
    fn name(&self) -> &'static str;
    /// A description of the violation, if `ev` breaks the invariant.
    fn on_event(&mut self, ev: &Event) -> Option<String>;
    /// Invariants that can only be judged once the run is over (at `end_ns`).
    fn finish(&mut self, _end_ns: u64) -> Vec<String> {
        Vec::new()
    }
    /// Figures this checker computed, for summary.json (section name, value).
    fn report(&self) -> Option<(&'static str, serde_json::Value)> {
        None
    }
}

/// Lifecycle well-formedness: faults heal only after they start, and at most once; a node is
/// restarted only after a crash, resumed only after a pause, and never crashes twice in a row.
#[derive(Default)]
pub struct Lifecycle {
    faults: BTreeMap<u32, bool>,
    nodes: BTreeMap<u32, &'static str>,
}

impl Checker for Lifecycle {
    fn name(&self) -> &'static str {
        "lifecycle"
    }

    fn on_event(&mut self, ev: &Event) -> Option<String> {
        let node = ev.node.map(|n| n.0);
        match &ev.kind {
            TraceKind::FaultStarted { fault, .. } => {
                (self.faults.insert(*fault, true).is_some()).then(|| format!("fault {fault} started twice"))
            }
            TraceKind::FaultHealed { fault, .. } => match self.faults.insert(*fault, false) {
                Some(true) => None,
                _ => Some(format!("fault {fault} healed without being active")),
            },
            TraceKind::NodeCrashed => self.transition(node?, &["up", "paused"], "down"),
            TraceKind::NodeRestarted { .. } => self.transition(node?, &["down"], "up"),
            TraceKind::NodePaused => self.transition(node?, &["up"], "paused"),
            TraceKind::NodeResumed => self.transition(node?, &["paused"], "up"),
            _ => None,
        }
    }
}

impl Lifecycle {
    fn transition(&mut self, node: u32, from: &[&str], to: &'static str) -> Option<String> {
        let state = self.nodes.entry(node).or_insert("up");
        if !from.contains(state) {
            return Some(format!("node {node} went {state} -> {to}"));
        }
        *state = to;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::NodeRef;

    fn ev(node: u32, kind: TraceKind) -> Event {
        Event { seq: 0, t_ns: 0, node: Some(NodeRef(node)), kind }
    }

    #[test]
    fn flags_restart_without_crash_and_double_heal() {
        let mut c = Lifecycle::default();
        assert_eq!(c.on_event(&ev(1, TraceKind::NodeCrashed)), None);
        assert_eq!(c.on_event(&ev(1, TraceKind::NodeRestarted { incarnation: 1 })), None);
        assert!(c.on_event(&ev(1, TraceKind::NodeRestarted { incarnation: 2 })).is_some());
        let start = TraceKind::FaultStarted { fault: 0, fault_kind: "x".into(), detail: String::new() };
        let heal = TraceKind::FaultHealed { fault: 0, fault_kind: "x".into() };
        assert_eq!(c.on_event(&ev(0, start)), None);
        assert_eq!(c.on_event(&ev(0, heal.clone())), None);
        assert!(c.on_event(&ev(0, heal)).is_some());
    }
}

/// Raft election safety: at most one leader per term.
#[derive(Default)]
pub struct OneLeaderPerTerm {
    leaders: BTreeMap<u64, u32>,
}

impl Checker for OneLeaderPerTerm {
    fn name(&self) -> &'static str {
        "raft_one_leader_per_term"
    }
    fn on_event(&mut self, ev: &Event) -> Option<String> {
        let TraceKind::RaftLeaderElected { term, .. } = &ev.kind else { return None };
        let node = ev.node?.0;
        match self.leaders.insert(*term, node) {
            Some(other) if other != node => Some(format!("nodes {other} and {node} both led term {term}")),
            _ => None,
        }
    }
}

/// Raft's terms only go forwards: no member ever sends a message with a lower term than one it
/// sent before, whatever restarts lie between (its term is in the WAL before anything that
/// carries it leaves). Catches a member that answers an older term's vote request as if it were
/// current, and one whose term was not durable when it spoke.
#[derive(Default)]
pub struct RaftTermMonotonic {
    shown: BTreeMap<u32, u64>,
}

impl Checker for RaftTermMonotonic {
    fn name(&self) -> &'static str {
        "raft_term_monotonic"
    }
    fn on_event(&mut self, ev: &Event) -> Option<String> {
        let TraceKind::RaftTermShown { term } = &ev.kind else { return None };
        let node = ev.node?.0;
        let before = self.shown.entry(node).or_insert(0);
        let went_back = *term < *before;
        let detail = format!("node {node} sent term {term} after term {before}");
        *before = (*before).max(*term);
        went_back.then_some(detail)
    }
}

/// A member votes for at most one candidate per term, across restarts: the vote is durable
/// before the response leaves. Catches a vote granted before it was persisted (the member
/// restarts with no vote in that term and votes again).
#[derive(Default)]
pub struct RaftOneVotePerTerm {
    /// (voter, term) -> candidate. Only terms with votes are kept: a few per election.
    votes: BTreeMap<(u32, u64), u32>,
}

impl Checker for RaftOneVotePerTerm {
    fn name(&self) -> &'static str {
        "raft_one_vote_per_term"
    }
    fn on_event(&mut self, ev: &Event) -> Option<String> {
        let TraceKind::RaftVoteGranted { term, candidate } = &ev.kind else { return None };
        let voter = ev.node?.0;
        match self.votes.insert((voter, *term), candidate.0) {
            Some(other) if other != candidate.0 => {
                Some(format!("node {voter} voted for {other} and for {} in term {term}", candidate.0))
            }
            _ => None,
        }
    }
}

/// A committed entry is never overwritten: no member discards from its log an entry that was
/// committed, the (index, term) some member applied (by log matching, discarding it would
/// discard every committed entry before it on that member too). A member may discard a stale
/// entry at a committed index, one of another term that a deposed leader appended and never
/// replicated: that is Raft working. Fed by `raft_log_truncated` and `etcd_applied`, events kept
/// only with `--trace messages` but seen by every run's checkers, like the other Raft
/// checkers'. Catches a leader elected without a committed entry that then overwrites a
/// follower's copy of it, which a member's own assertion (on its own commit index) misses.
#[derive(Default)]
pub struct RaftCommittedNeverOverwritten {
    /// The applied log as runs: first index -> term (0: indices skipped over, as by a
    /// snapshot, whose terms are unknown). Terms only grow along a log, so runs are few.
    term_runs: BTreeMap<u64, u64>,
    applied_index_max: u64,
}

impl RaftCommittedNeverOverwritten {
    fn applied(&mut self, index: u64, term: u64) {
        if index <= self.applied_index_max {
            return;
        }
        let last_term = self.term_runs.values().next_back().copied();
        if index > self.applied_index_max + 1 {
            self.term_runs.insert(self.applied_index_max + 1, 0);
            self.term_runs.insert(index, term);
        } else if last_term != Some(term) {
            self.term_runs.insert(index, term);
        }
        self.applied_index_max = index;
    }

    fn committed_term(&self, index: u64) -> Option<u64> {
        if index > self.applied_index_max {
            return None;
        }
        self.term_runs.range(..=index).next_back().map(|(_, t)| *t).filter(|t| *t != 0)
    }
}

impl Checker for RaftCommittedNeverOverwritten {
    fn name(&self) -> &'static str {
        "raft_committed_never_overwritten"
    }
    fn on_event(&mut self, ev: &Event) -> Option<String> {
        match &ev.kind {
            TraceKind::EtcdApplied { index, term, .. } => {
                self.applied(*index, *term);
                None
            }
            TraceKind::RaftLogTruncated { index, term } => (self.committed_term(*index) == Some(*term)).then(|| {
                format!(
                    "node {} discarded its entries from index {index} (term {term}), which is committed",
                    ev.node.map_or(u32::MAX, |n| n.0)
                )
            }),
            _ => None,
        }
    }
}

/// State machine safety (no two members apply different entries at one index) and leader
/// completeness (a new leader's log holds every entry committed before it was elected).
#[derive(Default)]
pub struct RaftLogSafety {
    /// What was applied at each index from 1, held densely since a long run applies millions
    /// of entries: the terms as (first index, term) runs, the digests one word each.
    term_runs: Vec<(u64, u64)>,
    digests: Vec<u64>,
}

/// A digest slot no member has applied yet (an index skipped over, as by a snapshot); its term
/// run has term 0, which no entry has.
const NOT_APPLIED: u64 = u64::MAX;

impl RaftLogSafety {
    fn term_in(log_terms: &[(u64, u64)], index: u64) -> Option<u64> {
        log_terms.iter().rev().find(|(start, _)| *start <= index).map(|(_, t)| *t)
    }

    fn push(&mut self, term: u64, digest: u64) {
        let index = self.digests.len() as u64 + 1;
        if self.term_runs.last().is_none_or(|&(_, t)| t != term) {
            self.term_runs.push((index, term));
        }
        self.digests.push(digest);
    }

    fn applied(&mut self, index: u64, term: u64, digest: u64) -> Option<String> {
        assert!(index > 0, "Raft indices start at 1");
        while (self.digests.len() as u64) < index - 1 {
            self.push(0, NOT_APPLIED);
        }
        if self.digests.len() as u64 == index - 1 {
            self.push(term, digest);
            return None;
        }
        let slot = &mut self.digests[index as usize - 1];
        let prev_term = Self::term_in(&self.term_runs, index).expect("runs cover every slot");
        if *slot == NOT_APPLIED {
            *slot = digest;
            return None;
        }
        (prev_term != term || *slot != digest).then(|| {
            format!(
                "index {index} applied as (term {prev_term}, digest {:x}) and as (term {term}, digest {digest:x})",
                *slot
            )
        })
    }

    fn leader_complete(&self, term: u64, last_index: u64, log_terms: &[(u64, u64)]) -> Option<String> {
        let top = self.digests.len() as u64;
        if top == 0 {
            return None;
        }
        if last_index < top {
            return Some(format!("leader of term {term} has {last_index} entries but {top} are committed"));
        }
        // Checking the last index of each committed term suffices: by log matching, agreeing
        // there means agreeing on everything before.
        let mut end = top;
        for &(start, t) in self.term_runs.iter().rev() {
            if t != 0 && Self::term_in(log_terms, end) != Some(t) {
                return Some(format!("leader of term {term} lacks committed entry {end} of term {t}"));
            }
            end = start - 1;
        }
        None
    }
}

impl Checker for RaftLogSafety {
    fn name(&self) -> &'static str {
        "raft_log_safety"
    }
    fn on_event(&mut self, ev: &Event) -> Option<String> {
        match &ev.kind {
            TraceKind::EtcdApplied { index, term, digest } => self.applied(*index, *term, *digest),
            TraceKind::RaftLeaderElected { term, last_index, log_terms } => {
                self.leader_complete(*term, *last_index, log_terms)
            }
            _ => None,
        }
    }
}

/// An election key (a lease-backed lock) is held by one client at a time: the interval a
/// holder claims (`lock_held` up to `until_ns`) never overlaps another holder's.
#[derive(Default)]
pub struct LeaseExclusivity {
    holders: BTreeMap<String, (u32, u64)>,
}

impl Checker for LeaseExclusivity {
    fn name(&self) -> &'static str {
        "lease_exclusivity"
    }
    fn on_event(&mut self, ev: &Event) -> Option<String> {
        let node = ev.node?.0;
        match &ev.kind {
            TraceKind::LockHeld { key, until_ns, .. } => {
                let clash = match self.holders.get(key) {
                    Some(&(other, until)) if other != node && until > ev.t_ns => {
                        Some(format!("node {node} holds {key} while node {other} holds it until {until} ns"))
                    }
                    _ => None,
                };
                self.holders.insert(key.clone(), (node, *until_ns));
                clash
            }
            TraceKind::LockLost { key, .. } => {
                if self.holders.get(key).is_some_and(|(n, _)| *n == node) {
                    self.holders.insert(key.clone(), (node, ev.t_ns));
                }
                None
            }
            TraceKind::NodeCrashed => {
                // A crashed holder acts no more.
                for h in self.holders.values_mut() {
                    if h.0 == node {
                        h.1 = h.1.min(ev.t_ns);
                    }
                }
                None
            }
            _ => None,
        }
    }
}

pub fn all() -> Vec<Box<dyn Checker>> {
    vec![
        Box::new(Lifecycle::default()),
        Box::new(OneLeaderPerTerm::default()),
        Box::new(RaftLogSafety::default()),
        Box::new(RaftTermMonotonic::default()),
        Box::new(RaftOneVotePerTerm::default()),
        Box::new(RaftCommittedNeverOverwritten::default()),
        Box::new(LeaseExclusivity::default()),
        Box::new(crate::pg_check::PgDurability::default()),
        Box::new(crate::failover_check::PgSplitBrain::default()),
        Box::new(crate::failover_check::PromotedInSyncSet::default()),
        Box::new(crate::kv_check::KvLinearizable::default()),
    ]
}

#[cfg(test)]
mod raft_term_vote_tests {
    use super::*;
    use models::trace::NodeRef;

    fn ev(node: u32, kind: TraceKind) -> Event {
        Event { seq: 0, t_ns: 0, node: Some(NodeRef(node)), kind }
    }

    fn shown(node: u32, term: u64) -> Event {
        ev(node, TraceKind::RaftTermShown { term })
    }

    fn vote(voter: u32, term: u64, candidate: u32) -> Event {
        ev(voter, TraceKind::RaftVoteGranted { term, candidate: NodeRef(candidate) })
    }

    /// The planted bug "a vote request from a lower term is handled as if current": the member
    /// answers in the old term after it has spoken in a newer one.
    #[test]
    fn a_member_that_answers_in_an_older_term_is_caught() {
        let mut c = RaftTermMonotonic::default();
        assert_eq!(c.on_event(&shown(1, 3)), None);
        assert_eq!(c.on_event(&shown(2, 1)), None, "each member has its own terms");
        assert_eq!(c.on_event(&shown(1, 5)), None);
        // A restart: the new incarnation shows its durable term again, which is no lower.
        assert_eq!(c.on_event(&shown(1, 5)), None);
        let found = c.on_event(&shown(1, 4)).expect("caught");
        assert_eq!(found, "node 1 sent term 4 after term 5");
        assert_eq!(c.on_event(&shown(1, 5)), None, "reported once, at the step back");
    }

    /// The planted bug "a vote is granted before it is durable": the member restarts without
    /// its vote and votes again in the same term for someone else.
    #[test]
    fn a_second_vote_in_one_term_is_caught_across_a_restart() {
        let mut c = RaftOneVotePerTerm::default();
        assert_eq!(c.on_event(&vote(1, 7, 2)), None);
        assert_eq!(c.on_event(&vote(1, 7, 2)), None, "the same vote again (a retried request) is fine");
        assert_eq!(c.on_event(&vote(3, 7, 2)), None);
        assert_eq!(c.on_event(&vote(1, 8, 3)), None, "a new term, a new vote");
        let restarted = ev(1, TraceKind::NodeRestarted { incarnation: 1 });
        assert_eq!(c.on_event(&restarted), None);
        let found = c.on_event(&vote(1, 7, 3)).expect("caught");
        assert_eq!(found, "node 1 voted for 2 and for 3 in term 7");
    }
}

#[cfg(test)]
mod lease_tests {
    use super::*;
    use models::trace::NodeRef;

    fn held(node: u32, t_ns: u64, until_ns: u64) -> Event {
        let kind = TraceKind::LockHeld { key: "k".into(), lease: 1, until_ns };
        Event { seq: 0, t_ns, node: Some(NodeRef(node)), kind }
    }

    #[test]
    fn overlapping_holders_are_caught() {
        let mut c = LeaseExclusivity::default();
        assert_eq!(c.on_event(&held(1, 0, 100)), None);
        assert_eq!(c.on_event(&held(1, 50, 150)), None, "renewal by the holder");
        assert!(c.on_event(&held(2, 120, 300)).is_some(), "node 2 while node 1 holds until 150");
        assert_eq!(c.on_event(&held(1, 400, 500)), None, "node 2's claim ended at 300");
        let crash = Event { seq: 0, t_ns: 420, node: Some(NodeRef(1)), kind: TraceKind::NodeCrashed };
        assert_eq!(c.on_event(&crash), None);
        assert_eq!(c.on_event(&held(2, 430, 600)), None, "a crashed holder holds nothing");
    }
}

#[cfg(test)]
mod raft_tests {
    use super::*;
    use models::trace::NodeRef;

    fn ev(node: u32, kind: TraceKind) -> Event {
        Event { seq: 0, t_ns: 0, node: Some(NodeRef(node)), kind }
    }
    fn applied(index: u64, term: u64, digest: u64) -> TraceKind {
        TraceKind::EtcdApplied { index, term, digest }
    }

    fn elected(term: u64, last_index: u64, log_terms: Vec<(u64, u64)>) -> TraceKind {
        TraceKind::RaftLeaderElected { term, last_index, log_terms }
    }

    #[test]
    fn overwriting_a_committed_entry_is_caught() {
        let mut c = RaftCommittedNeverOverwritten::default();
        let truncated = |index, term| TraceKind::RaftLogTruncated { index, term };
        assert_eq!(c.on_event(&ev(1, applied(1, 1, 10))), None);
        assert_eq!(c.on_event(&ev(2, applied(2, 1, 11))), None);
        assert_eq!(c.on_event(&ev(1, applied(3, 2, 12))), None);
        assert_eq!(c.on_event(&ev(3, truncated(4, 2))), None, "beyond what is committed");
        assert_eq!(c.on_event(&ev(3, truncated(3, 1))), None, "a stale entry of term 1 where term 2's is committed");
        assert!(c.on_event(&ev(3, truncated(2, 1))).is_some(), "index 2 of term 1 was applied by node 2");
        // Indices skipped over (a snapshot) are not judged; those after them are.
        assert_eq!(c.on_event(&ev(1, applied(9, 4, 19))), None);
        assert_eq!(c.on_event(&ev(3, truncated(6, 3))), None, "term unknown at index 6");
        assert!(c.on_event(&ev(3, truncated(9, 4))).is_some());
    }

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut c = OneLeaderPerTerm::default();
        assert_eq!(c.on_event(&ev(1, elected(3, 0, vec![]))), None);
        assert_eq!(c.on_event(&ev(2, elected(4, 0, vec![]))), None);
        assert!(c.on_event(&ev(3, elected(3, 0, vec![]))).is_some());
    }

    #[test]
    fn divergent_applies_and_incomplete_leaders_are_caught() {
        let mut c = RaftLogSafety::default();
        assert_eq!(c.on_event(&ev(1, applied(1, 1, 10))), None);
        assert_eq!(c.on_event(&ev(2, applied(1, 1, 10))), None);
        assert_eq!(c.on_event(&ev(1, applied(2, 2, 11))), None);
        assert!(c.on_event(&ev(3, applied(2, 2, 12))).is_some(), "different digest at index 2");
        assert_eq!(c.on_event(&ev(1, elected(3, 3, vec![(1, 1), (2, 2), (3, 3)]))), None);
        assert!(c.on_event(&ev(1, elected(4, 1, vec![(1, 1)]))).is_some(), "too short");
        assert!(c.on_event(&ev(1, elected(4, 3, vec![(1, 1), (2, 3)]))).is_some(), "wrong term at 2");
    }

    /// Indices skipped over (applied by no member seen so far) neither raise nor hide a
    /// divergence once applied.
    #[test]
    fn applies_after_a_gap_are_still_compared() {
        let mut c = RaftLogSafety::default();
        assert_eq!(c.on_event(&ev(1, applied(1, 1, 10))), None);
        assert_eq!(c.on_event(&ev(1, applied(4, 2, 13))), None);
        assert_eq!(c.on_event(&ev(2, applied(3, 2, 12))), None, "filling the gap");
        assert!(c.on_event(&ev(3, applied(4, 2, 99))).is_some(), "different digest at index 4");
        assert!(c.on_event(&ev(3, applied(1, 2, 10))).is_some(), "different term at index 1");
        assert_eq!(c.on_event(&ev(1, elected(3, 4, vec![(1, 1), (2, 2)]))), None);
        assert!(c.on_event(&ev(1, elected(3, 4, vec![(1, 2)]))).is_some(), "lacks entry 1 of term 1");
    }
}
