//! The state shown at the cursor: a fold of the trace up to and including the cursor's event.
//! Snapshots of the fold every `SNAPSHOT_INTERVAL_EVENTS` events make any seek one clone plus a
//! bounded replay, so stepping backwards costs the same as stepping forwards.

use std::collections::BTreeMap;

use models::trace::{Event, TraceKind};

use crate::tui::pg::{self, PgCluster, PgClusterSetup};

/// Events between two snapshots: a seek replays fewer than this many events.
pub const SNAPSHOT_INTERVAL_EVENTS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Up,
    Down,
    Paused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftRole {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// A Raft member as far as the trace shows it. Only the member's own events are recorded, so
/// a follower's term is inferred: it takes the term of each leader elected while it is up.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub role: RaftRole,
    pub term: u64,
    pub campaigns: u64,
    pub role_since_ns: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeState {
    pub health: Health,
    pub health_since_ns: u64,
    pub incarnation: u32,
    /// etcd stopped itself (a failed WAL write).
    pub halted: bool,
    pub member: Option<Member>,
}

/// A fault from `fault_started` until `fault_healed`.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveFault {
    pub fault_kind: String,
    pub detail: String,
    pub since_ns: u64,
    /// For flapping faults: whether the link or switch is down right now.
    pub flapped_down: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Leader {
    pub node: u32,
    pub term: u64,
    pub since_ns: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Folded {
    /// Events folded in so far.
    pub applied: usize,
    pub t_ns: u64,
    pub nodes: Vec<NodeState>,
    /// By fault index, so the list reads in scenario order.
    pub faults: BTreeMap<u32, ActiveFault>,
    pub leader: Option<Leader>,
    /// Since when no leader is known (`None` while one is, or before any member exists).
    pub leaderless_since_ns: Option<u64>,
    pub invariant_violations: u64,
    pub messages_dropped: u64,
    /// PostgreSQL clusters, in scenario order.
    pub pg: Vec<PgCluster>,
}

impl Folded {
    /// Before the first event. Nodes whose kind is "etcd" start as followers at term 0.
    pub fn new(kinds: &[&str]) -> Folded {
        let nodes: Vec<NodeState> = kinds
            .iter()
            .map(|k| NodeState {
                health: Health::Up,
                health_since_ns: 0,
                incarnation: 0,
                halted: false,
                member: (*k == "etcd").then_some(Member {
                    role: RaftRole::Follower,
                    term: 0,
                    campaigns: 0,
                    role_since_ns: 0,
                }),
            })
            .collect();
        let has_members = nodes.iter().any(|n| n.member.is_some());
        Folded {
            applied: 0,
            t_ns: 0,
            nodes,
            faults: BTreeMap::new(),
            leader: None,
            leaderless_since_ns: has_members.then_some(0),
            invariant_violations: 0,
            messages_dropped: 0,
            pg: Vec::new(),
        }
    }

    /// Before the first event, with PostgreSQL clusters whose servers start as the scenario
    /// (or the trace) says.
    pub fn with_pg(kinds: &[&str], names: &[String], setup: &[PgClusterSetup]) -> Folded {
        Folded { pg: pg::clusters_from_setup(setup, names), ..Folded::new(kinds) }
    }

    fn member(&mut self, node: u32, t_ns: u64) -> Option<&mut Member> {
        let n = self.nodes.get_mut(node as usize)?;
        // A node of unknown kind becomes a member when it first takes part in Raft.
        Some(n.member.get_or_insert(Member { role: RaftRole::Follower, term: 0, campaigns: 0, role_since_ns: t_ns }))
    }

    fn lose_leader(&mut self, node: u32, t_ns: u64) {
        if self.leader.as_ref().is_some_and(|l| l.node == node) {
            self.leader = None;
            self.leaderless_since_ns = Some(t_ns);
        }
    }

    fn set_health(&mut self, node: u32, health: Health, t_ns: u64) {
        if let Some(n) = self.nodes.get_mut(node as usize) {
            n.health = health;
            n.health_since_ns = t_ns;
        }
    }

    pub fn apply(&mut self, ev: &Event) {
        self.applied += 1;
        self.t_ns = ev.t_ns;
        let t = ev.t_ns;
        let node = ev.node.map(|n| n.0);
        match (&ev.kind, node) {
            (TraceKind::NodeCrashed, Some(n)) => {
                self.set_health(n, Health::Down, t);
                self.lose_leader(n, t);
                // Raft's volatile state dies with the process; it comes back a follower.
                if let Some(m) = self.nodes.get_mut(n as usize).and_then(|s| s.member.as_mut()) {
                    m.role = RaftRole::Follower;
                    m.role_since_ns = t;
                }
            }
            (TraceKind::NodeRestarted { incarnation }, Some(n)) => {
                self.set_health(n, Health::Up, t);
                if let Some(s) = self.nodes.get_mut(n as usize) {
                    s.incarnation = *incarnation;
                    s.halted = false;
                }
            }
            (TraceKind::NodePaused, Some(n)) => self.set_health(n, Health::Paused, t),
            (TraceKind::NodeResumed, Some(n)) => self.set_health(n, Health::Up, t),
            (TraceKind::EtcdHalted { .. }, Some(n)) => {
                self.lose_leader(n, t);
                if let Some(s) = self.nodes.get_mut(n as usize) {
                    s.halted = true;
                }
            }
            (TraceKind::FaultStarted { fault, fault_kind, detail }, _) => {
                let active = ActiveFault {
                    fault_kind: fault_kind.clone(),
                    detail: detail.clone(),
                    since_ns: t,
                    flapped_down: None,
                };
                self.faults.insert(*fault, active);
            }
            (TraceKind::FaultHealed { fault, .. }, _) => {
                self.faults.remove(fault);
            }
            (TraceKind::Flapped { fault, down }, _) => {
                if let Some(f) = self.faults.get_mut(fault) {
                    f.flapped_down = Some(*down);
                }
            }
            (TraceKind::RaftCampaign { term, pre_vote, .. }, Some(n)) => {
                if let Some(m) = self.member(n, t) {
                    m.role = if *pre_vote { RaftRole::PreCandidate } else { RaftRole::Candidate };
                    if !*pre_vote {
                        m.term = *term;
                    }
                    m.campaigns += 1;
                    m.role_since_ns = t;
                }
            }
            (TraceKind::RaftLeaderElected { term, .. }, Some(n)) => {
                self.elected(n, *term, t);
            }
            (TraceKind::RaftSteppedDown { term, .. }, Some(n)) => {
                self.lose_leader(n, t);
                if let Some(m) = self.member(n, t) {
                    m.role = RaftRole::Follower;
                    m.term = m.term.max(*term);
                    m.role_since_ns = t;
                }
            }
            (TraceKind::InvariantViolated { .. }, _) => self.invariant_violations += 1,
            (TraceKind::MessageDropped { .. }, _) => self.messages_dropped += 1,
            _ => {}
        }
        if !self.pg.is_empty() {
            pg::apply(&mut self.pg, ev);
        }
    }

    fn elected(&mut self, leader: u32, term: u64, t: u64) {
        if let Some(m) = self.member(leader, t) {
            m.role = RaftRole::Leader;
            m.term = term;
            m.role_since_ns = t;
        }
        self.leader = Some(Leader { node: leader, term, since_ns: t });
        self.leaderless_since_ns = None;
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let Some(m) = n.member.as_mut() else { continue };
            if i as u32 == leader || n.health == Health::Down || m.term >= term {
                continue;
            }
            // A lower-term member hears of the new leader (it voted, or its next heartbeat
            // tells it): candidates lose, followers adopt the term. A pre-candidate keeps its
            // term until a pre-vote succeeds, so it is left as it is.
            if m.role != RaftRole::PreCandidate {
                if m.role != RaftRole::Follower {
                    m.role_since_ns = t;
                }
                m.role = RaftRole::Follower;
                m.term = term;
            }
        }
    }
}

/// The events and the snapshots that make seeking cheap.
pub struct Timeline {
    pub events: Vec<Event>,
    /// `snapshots[k]` is the fold of the first `k * SNAPSHOT_INTERVAL_EVENTS` events.
    snapshots: Vec<Folded>,
    /// Indices of the events `]` and `[` stop at.
    pub stops: Vec<usize>,
}

/// Events worth stopping at when jumping: the trace's significant kinds, and (explicitly, in
/// case `is_significant` ever narrows) faults, elections, crashes and violations.
pub fn is_stop(kind: &TraceKind) -> bool {
    kind.is_significant()
        || matches!(
            kind,
            TraceKind::FaultStarted { .. }
                | TraceKind::FaultHealed { .. }
                | TraceKind::RaftLeaderElected { .. }
                | TraceKind::NodeCrashed
                | TraceKind::NodeRestarted { .. }
                | TraceKind::InvariantViolated { .. }
        )
}

impl Timeline {
    pub fn new(events: Vec<Event>, kinds: &[&str]) -> Timeline {
        Timeline::from_start(events, Folded::new(kinds))
    }

    /// Folds `events` from `start` (the state before the first event).
    pub fn from_start(events: Vec<Event>, start: Folded) -> Timeline {
        let mut state = start;
        let mut snapshots = vec![state.clone()];
        let mut stops = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            state.apply(ev);
            if (i + 1) % SNAPSHOT_INTERVAL_EVENTS == 0 {
                snapshots.push(state.clone());
            }
            if is_stop(&ev.kind) {
                stops.push(i);
            }
        }
        Timeline { events, snapshots, stops }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The fold of events `0..=cursor`: the nearest snapshot at or before it, plus a replay of
    /// fewer than `SNAPSHOT_INTERVAL_EVENTS` events.
    pub fn state_at(&self, cursor: usize) -> Folded {
        let applied = (cursor + 1).min(self.events.len());
        let k = applied / SNAPSHOT_INTERVAL_EVENTS;
        let mut state = self.snapshots[k].clone();
        for ev in &self.events[k * SNAPSHOT_INTERVAL_EVENTS..applied] {
            state.apply(ev);
        }
        state
    }

    /// Moves `state` (the fold at some cursor) to `cursor`: forward by replaying the events in
    /// between when that is cheaper than a seek, otherwise a seek.
    pub fn advance(&self, state: &mut Folded, cursor: usize) {
        let target = (cursor + 1).min(self.events.len());
        if target >= state.applied && target - state.applied < SNAPSHOT_INTERVAL_EVENTS {
            for ev in &self.events[state.applied..target] {
                state.apply(ev);
            }
        } else {
            *state = self.state_at(cursor);
        }
    }

    /// The last event at or before `t_ns`, or the first event when none is.
    pub fn index_at_time(&self, t_ns: u64) -> usize {
        self.events.partition_point(|e| e.t_ns <= t_ns).saturating_sub(1)
    }

    pub fn end_ns(&self) -> u64 {
        self.events.last().map_or(0, |e| e.t_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::NodeRef;

    fn ev(seq: u64, t_ns: u64, node: Option<u32>, kind: TraceKind) -> Event {
        Event { seq, t_ns, node: node.map(NodeRef), kind }
    }

    /// A synthetic trace long enough to span several snapshots.
    fn trace(len: usize) -> Vec<Event> {
        (0..len as u64)
            .map(|i| {
                let node = (i % 3) as u32;
                let kind = match i % 7 {
                    0 => TraceKind::RaftCampaign { term: i, pre_vote: i % 2 == 0, transfer: false },
                    1 => TraceKind::RaftLeaderElected { term: i, last_index: 0, log_terms: vec![] },
                    2 => TraceKind::NodeCrashed,
                    3 => TraceKind::NodeRestarted { incarnation: i as u32 },
                    4 => TraceKind::FaultStarted { fault: (i % 5) as u32, fault_kind: "x".into(), detail: "d".into() },
                    5 => TraceKind::FaultHealed { fault: (i % 4) as u32, fault_kind: "x".into() },
                    _ => TraceKind::RaftSteppedDown { term: i, reason: models::raft::StepDown::HigherTerm },
                };
                ev(i, i * 10, Some(node), kind)
            })
            .collect()
    }

    #[test]
    fn seeking_equals_folding_from_the_start() {
        let events = trace(3 * SNAPSHOT_INTERVAL_EVENTS + 17);
        let kinds = ["etcd", "etcd", "?"];
        let tl = Timeline::new(events.clone(), &kinds);
        let mut linear = Folded::new(&kinds);
        let probes = [0, 1, SNAPSHOT_INTERVAL_EVENTS - 1, SNAPSHOT_INTERVAL_EVENTS, 2 * SNAPSHOT_INTERVAL_EVENTS + 5];
        for (i, e) in events.iter().enumerate() {
            linear.apply(e);
            if probes.contains(&i) || i == events.len() - 1 {
                assert_eq!(tl.state_at(i), linear, "state at {i}");
            }
        }
        // Backwards then forwards by `advance` lands on the same state as a seek.
        let mut s = tl.state_at(events.len() - 1);
        tl.advance(&mut s, 10);
        assert_eq!(s, tl.state_at(10));
        tl.advance(&mut s, 5000);
        assert_eq!(s, tl.state_at(5000));
        assert_eq!(s.applied, 5001);
    }

    #[test]
    fn leader_follows_elections_crashes_and_step_downs() {
        let kinds = ["etcd", "etcd", "etcd"];
        let mut s = Folded::new(&kinds);
        assert_eq!(s.leaderless_since_ns, Some(0));
        s.apply(&ev(0, 5, Some(1), TraceKind::RaftCampaign { term: 1, pre_vote: false, transfer: false }));
        assert_eq!(s.nodes[1].member.as_ref().unwrap().role, RaftRole::Candidate);
        s.apply(&ev(1, 6, Some(1), TraceKind::RaftLeaderElected { term: 1, last_index: 0, log_terms: vec![] }));
        assert_eq!(s.leader, Some(Leader { node: 1, term: 1, since_ns: 6 }));
        assert_eq!(s.nodes[0].member.as_ref().unwrap().term, 1, "followers adopt the leader's term");
        s.apply(&ev(2, 7, Some(1), TraceKind::NodeCrashed));
        assert_eq!((s.leader.clone(), s.leaderless_since_ns), (None, Some(7)));
        assert_eq!(s.nodes[1].health, Health::Down);
        s.apply(&ev(3, 8, Some(1), TraceKind::NodeRestarted { incarnation: 1 }));
        assert_eq!((s.nodes[1].health, s.nodes[1].incarnation), (Health::Up, 1));
        s.apply(&ev(4, 9, Some(2), TraceKind::RaftLeaderElected { term: 2, last_index: 0, log_terms: vec![] }));
        s.apply(&ev(
            5,
            10,
            Some(2),
            TraceKind::RaftSteppedDown { term: 2, reason: models::raft::StepDown::CheckQuorum },
        ));
        assert_eq!(s.leader, None);
        assert_eq!(s.nodes[2].member.as_ref().unwrap().role, RaftRole::Follower);
    }

    #[test]
    fn faults_start_flap_and_heal() {
        let mut s = Folded::new(&[]);
        s.apply(&ev(
            0,
            1,
            None,
            TraceKind::FaultStarted {
                fault: 2,
                fault_kind: "link-flapping".into(),
                detail: "link a <-> b flapping".into(),
            },
        ));
        s.apply(&ev(1, 2, None, TraceKind::Flapped { fault: 2, down: true }));
        assert_eq!(s.faults[&2].flapped_down, Some(true));
        s.apply(&ev(2, 3, None, TraceKind::FaultHealed { fault: 2, fault_kind: "link-flapping".into() }));
        assert!(s.faults.is_empty());
    }

    #[test]
    fn time_index_is_the_last_event_not_after() {
        let tl = Timeline::new(trace(10), &[]);
        assert_eq!(tl.index_at_time(0), 0);
        assert_eq!(tl.index_at_time(35), 3);
        assert_eq!(tl.index_at_time(40), 4);
        assert_eq!(tl.index_at_time(u64::MAX), 9);
    }
}
