//! Raft as etcd 3.5 runs it: the library `go.etcd.io/etcd/raft/v3` of etcd v3.5 (developed on
//! since as etcd-io/raft; its `raft.go` is the behavioural reference): logical ticks at the
//! heartbeat interval, an election timeout drawn in [election, 2 x election) ticks at every
//! reset, PreVote, CheckQuorum (leader step-down and follower leases), the answer to a
//! lower-term heartbeat that makes a leader learn a higher term, leader transfer via
//! TimeoutNow, log replication with conflict back-off, and log compaction with snapshots
//! (`raft_snapshot.rs`).
//!
//! Raft does not know what it replicates: an entry's command and a snapshot's state are the
//! application's types (`StateMachine`; etcd's KV is one), as opaque here as etcd-io/raft's
//! `[]byte` entry and snapshot data.
//!
//! Pure state machine: `tick`, `step` and `propose` take an RNG and queue messages; after each
//! call the host takes a `Ready` (`raft_ready.rs`): what to persist, and the messages that may
//! leave now. Messages that must wait for the disk stay in Raft until the host reports the
//! persist done.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::Arc;

use imbl::Vector;
use rand::Rng;

use crate::node::NodeId;

pub use ready::{PersistSeq, Ready};
pub use snapshot::Snapshot;

pub type Term = u64;
pub type Index = u64;

/// The application Raft replicates, seen only as opaque payloads: the commands entries carry
/// and the state snapshots carry. etcd-io/raft's are `[]byte`; here they stay typed values
/// shared through `Arc` (nothing is encoded or copied), and Raft asks of them only their size
/// on the wire.
pub trait StateMachine: Clone + Debug + Default + PartialEq + Eq {
    /// What an entry carries for the state machine to apply (shared, never cloned, by Raft).
    type Command: Clone + Debug + PartialEq + Eq;
    fn command_size_bytes(cmd: &Self::Command) -> u64;
    /// The size of the state in a snapshot message.
    fn state_size_bytes(&self) -> u64;
}

/// What an entry carries; the application gives it meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryData<S: StateMachine> {
    /// Appended by every new leader to commit entries of earlier terms.
    Empty,
    /// An opaque command with a digest used by checkers to compare logs cheaply.
    Command { digest: u64, cmd: Arc<S::Command> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<S: StateMachine> {
    pub term: Term,
    pub index: Index,
    pub data: EntryData<S>,
}

impl<S: StateMachine> Entry<S> {
    pub fn digest(&self) -> u64 {
        match &self.data {
            EntryData::Empty => 0,
            EntryData::Command { digest, .. } => *digest,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaftMsg<S: StateMachine> {
    /// Vote or pre-vote request. `transfer`: campaign after TimeoutNow, which overrides leases.
    Vote {
        term: Term,
        last_index: Index,
        last_term: Term,
        pre: bool,
        transfer: bool,
    },
    VoteResp {
        term: Term,
        pre: bool,
        reject: bool,
    },
    App {
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry<S>>,
        commit: Index,
    },
    /// `index`: the follower's last matching index, or (reject) the rejected prev_index with a
    /// hint of where to retry.
    AppResp {
        term: Term,
        index: Index,
        reject: bool,
        hint: Index,
    },
    Heartbeat {
        term: Term,
        commit: Index,
    },
    HeartbeatResp {
        term: Term,
    },
    TimeoutNow {
        term: Term,
    },
    /// etcd's MsgSnap: the leader's latest snapshot, for a follower that needs entries the
    /// leader has compacted away.
    Snap {
        term: Term,
        snapshot: Snapshot<S>,
    },
}

impl<S: StateMachine> RaftMsg<S> {
    pub fn term(&self) -> Term {
        match self {
            RaftMsg::Vote { term, .. }
            | RaftMsg::VoteResp { term, .. }
            | RaftMsg::App { term, .. }
            | RaftMsg::AppResp { term, .. }
            | RaftMsg::Heartbeat { term, .. }
            | RaftMsg::HeartbeatResp { term }
            | RaftMsg::TimeoutNow { term }
            | RaftMsg::Snap { term, .. } => *term,
        }
    }
    pub fn label(&self) -> &'static str {
        match self {
            RaftMsg::Vote { pre: true, .. } => "pre_vote",
            RaftMsg::Vote { .. } => "vote",
            RaftMsg::VoteResp { pre: true, .. } => "pre_vote_resp",
            RaftMsg::VoteResp { .. } => "vote_resp",
            RaftMsg::App { .. } => "append_entries",
            RaftMsg::AppResp { .. } => "append_entries_resp",
            RaftMsg::Heartbeat { .. } => "heartbeat",
            RaftMsg::HeartbeatResp { .. } => "heartbeat_resp",
            RaftMsg::TimeoutNow { .. } => "timeout_now",
            RaftMsg::Snap { .. } => "snapshot",
        }
    }
    pub fn size_bytes(&self) -> u64 {
        match self {
            RaftMsg::App { entries, .. } => 64 + entries.iter().map(|e| 32 + e.data_size()).sum::<u64>(),
            RaftMsg::Snap { snapshot, .. } => 64 + snapshot.state.state_size_bytes(),
            _ => 64,
        }
    }
}

impl<S: StateMachine> Entry<S> {
    fn data_size(&self) -> u64 {
        match &self.data {
            EntryData::Empty => 0,
            EntryData::Command { cmd, .. } => S::command_size_bytes(cmd),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre_candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// Why a leader stopped leading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepDown {
    /// It saw a message with a higher term.
    HigherTerm,
    /// CheckQuorum: no quorum heard from within an election timeout.
    CheckQuorum,
    /// It handed leadership over (move-leader) and its transferee campaigned.
    Transfer,
}

impl StepDown {
    pub fn as_str(self) -> &'static str {
        match self {
            StepDown::HigherTerm => "higher_term",
            StepDown::CheckQuorum => "check_quorum",
            StepDown::Transfer => "transfer",
        }
    }
}

/// Things worth a trace event, drained by the host after each call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaftEvent {
    Campaign {
        term: Term,
        pre: bool,
        transfer: bool,
    },
    BecameLeader {
        term: Term,
    },
    SteppedDown {
        term: Term,
        reason: StepDown,
    },
    TermChanged {
        term: Term,
    },
    /// The log from `index` on (its first entry of `term`) gave way to the leader's entries.
    Truncated {
        index: Index,
        term: Term,
    },
}

#[derive(Clone, Debug)]
pub struct RaftConfig {
    pub peers: Vec<NodeId>,
    /// A bug planted on purpose (`[sim] planted_bug`), to show that a checker catches it.
    pub planted_bug: Option<PlantedBug>,
    /// Election timeout in ticks (etcd: election-timeout / heartbeat-interval).
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Entries per AppendEntries message at most.
    pub max_entries_per_msg: usize,
}

pub use crate::planted::PlantedBug;

/// What must survive a crash: term, vote, the latest snapshot, the log and the commit index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HardState<S: StateMachine> {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: Index,
    /// The latest snapshot of the applied state (index 0 until the first one is taken).
    pub snapshot: Snapshot<S>,
    /// The last compacted index and its term: the log holds entries `log_start + 1 ..= last`
    /// (etcd's MemoryStorage keeps the same pair as a dummy first entry).
    pub log_start: Index,
    pub log_start_term: Term,
    /// `Vector` clones in O(1), so the copies taken for each fsync are cheap.
    pub log: Vector<Entry<S>>,
    /// (first index, term) runs of the compacted entries. etcd keeps no such record; the
    /// simulator does (one pair per term) so that `term_runs` still describes the whole log
    /// for the leader-completeness checker.
    pub compacted_runs: Vec<(Index, Term)>,
}

#[derive(Clone, Debug, Default)]
struct Progress {
    matched: Index,
    next: Index,
    recent_active: bool,
    /// etcd's StateSnapshot: the index of the snapshot in flight (0: none). Appends to the
    /// follower pause until it acknowledges that index or the snapshot is given up on.
    pending_snapshot: Index,
    /// Leader ticks since the snapshot was sent.
    snapshot_ticks: u32,
}

pub struct Raft<S: StateMachine> {
    pub id: NodeId,
    cfg: RaftConfig,
    pub hs: HardState<S>,
    pub role: Role,
    pub lead: Option<NodeId>,
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    randomized_election_ticks: u32,
    votes: Vec<(NodeId, bool)>,
    progress: Vec<(NodeId, Progress)>,
    lead_transferee: Option<NodeId>,
    /// Term, vote, commit, log or a received snapshot changed since the last `ready`.
    unstable: bool,
    /// The latest change set `ready` handed out to persist, and the latest reported durable.
    persist_handed: PersistSeq,
    persist_done: PersistSeq,
    /// Messages sent during the current call; `ready` sorts them out.
    msgs: Vec<(NodeId, RaftMsg<S>)>,
    /// etcd-io/raft's `msgsAfterAppend`: messages waiting until change set `seq` is durable,
    /// in the order they were sent (`raft_ready.rs`).
    msgs_after_persist: VecDeque<(PersistSeq, NodeId, RaftMsg<S>)>,
    pub events: Vec<RaftEvent>,
}

impl<S: StateMachine> Raft<S> {
    pub fn new(id: NodeId, cfg: RaftConfig, hs: HardState<S>, rng: &mut impl Rng) -> Raft<S> {
        assert!(cfg.peers.contains(&id), "a member is one of its peers");
        assert!(cfg.election_ticks > cfg.heartbeat_ticks, "election timeout must exceed the heartbeat");
        let mut r = Raft {
            id,
            cfg,
            hs,
            role: Role::Follower,
            lead: None,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_ticks: 0,
            votes: vec![],
            progress: vec![],
            lead_transferee: None,
            unstable: false,
            persist_handed: 0,
            persist_done: 0,
            msgs: vec![],
            msgs_after_persist: VecDeque::new(),
            events: vec![],
        };
        let term = r.hs.term;
        r.become_follower(term, None, rng);
        assert!(!r.unstable, "booting from the persisted state changes none of it");
        r
    }

    // --- log helpers ---------------------------------------------------------------------

    pub fn last_index(&self) -> Index {
        self.hs.log_start + self.hs.log.len() as Index
    }
    pub fn last_term(&self) -> Term {
        self.hs.log.last().map_or(self.hs.log_start_term, |e| e.term)
    }
    /// The term of entry `i`; `None` past the end or before the compaction point.
    pub fn term_at(&self, i: Index) -> Option<Term> {
        let start = self.hs.log_start;
        if i < start {
            None
        } else if i == start {
            Some(self.hs.log_start_term)
        } else {
            self.hs.log.get((i - start - 1) as usize).map(|e| e.term)
        }
    }
    /// Entry `i` if the log still holds it.
    pub fn entry(&self, i: Index) -> Option<&Entry<S>> {
        if i <= self.hs.log_start { None } else { self.hs.log.get((i - self.hs.log_start - 1) as usize) }
    }
    pub fn commit(&self) -> Index {
        self.hs.commit
    }
    fn quorum(&self) -> usize {
        self.cfg.peers.len() / 2 + 1
    }
    fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term() || (last_term == self.last_term() && last_index >= self.last_index())
    }
    /// Terms of the whole log, compacted part included, as runs: (first index, term).
    /// Checkers compare logs with this.
    pub fn term_runs(&self) -> Vec<(Index, Term)> {
        let mut runs = self.hs.compacted_runs.clone();
        for e in &self.hs.log {
            snapshot::push_run(&mut runs, e.index, e.term);
        }
        runs
    }

    fn send(&mut self, to: NodeId, m: RaftMsg<S>) {
        assert_ne!(to, self.id);
        self.msgs.push((to, m));
    }

    // --- role changes (etcd: reset / becomeX) ---------------------------------------------

    fn reset(&mut self, term: Term, rng: &mut impl Rng) {
        if self.hs.term != term {
            assert!(term > self.hs.term, "terms only grow");
            self.hs.term = term;
            self.hs.vote = None;
            self.unstable = true;
            self.events.push(RaftEvent::TermChanged { term });
        }
        self.lead = None;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let e = self.cfg.election_ticks;
        self.randomized_election_ticks = e + rng.gen_range(0..e);
        self.lead_transferee = None;
        self.votes.clear();
        let last = self.last_index();
        let id = self.id;
        self.progress = self
            .cfg
            .peers
            .iter()
            .map(|&p| {
                let matched = if p == id { last } else { 0 };
                (p, Progress { matched, next: last + 1, recent_active: p == id, ..Progress::default() })
            })
            .collect();
    }

    fn become_follower(&mut self, term: Term, lead: Option<NodeId>, rng: &mut impl Rng) {
        self.reset(term, rng);
        self.role = Role::Follower;
        self.lead = lead;
    }

    fn step_down(&mut self, term: Term, lead: Option<NodeId>, reason: StepDown, rng: &mut impl Rng) {
        if self.role == Role::Leader {
            self.events.push(RaftEvent::SteppedDown { term: self.hs.term, reason });
        }
        self.become_follower(term, lead, rng);
    }

    fn become_pre_candidate(&mut self) {
        // Like etcd: does not touch term, vote or election_elapsed.
        assert_ne!(self.role, Role::Leader);
        self.role = Role::PreCandidate;
        self.votes.clear();
        self.lead = None;
    }

    fn become_candidate(&mut self, rng: &mut impl Rng) {
        assert_ne!(self.role, Role::Leader);
        let term = self.hs.term + 1;
        self.reset(term, rng);
        self.hs.vote = Some(self.id);
        self.unstable = true;
        self.role = Role::Candidate;
    }

    fn become_leader(&mut self, rng: &mut impl Rng) {
        assert_ne!(self.role, Role::Follower, "only a candidate becomes leader");
        let term = self.hs.term;
        self.reset(term, rng);
        self.role = Role::Leader;
        self.lead = Some(self.id);
        self.events.push(RaftEvent::BecameLeader { term });
        self.append(EntryData::Empty);
    }

    fn append(&mut self, data: EntryData<S>) -> Index {
        let index = self.last_index() + 1;
        self.hs.log.push_back(Entry { term: self.hs.term, index, data });
        self.unstable = true;
        let id = self.id;
        let p = self.progress_mut(id);
        p.matched = index;
        p.next = index + 1;
        self.maybe_commit();
        index
    }

    fn progress_mut(&mut self, peer: NodeId) -> &mut Progress {
        &mut self.progress.iter_mut().find(|(p, _)| *p == peer).expect("known peer").1
    }

    // --- ticks -----------------------------------------------------------------------------

    /// One heartbeat interval passed.
    pub fn tick(&mut self, rng: &mut impl Rng) {
        if self.role == Role::Leader {
            self.tick_heartbeat(rng);
        } else {
            self.election_elapsed += 1;
            if self.election_elapsed >= self.randomized_election_ticks {
                self.election_elapsed = 0;
                self.hup(false, rng);
            }
        }
    }

    fn tick_heartbeat(&mut self, rng: &mut impl Rng) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        self.tick_pending_snapshots();
        if self.election_elapsed >= self.cfg.election_ticks {
            self.election_elapsed = 0;
            if self.cfg.check_quorum {
                let active = self.progress.iter().filter(|(_, p)| p.recent_active).count();
                if active < self.quorum() {
                    let term = self.hs.term;
                    self.step_down(term, None, StepDown::CheckQuorum, rng);
                    return;
                }
                let id = self.id;
                for (p, pr) in &mut self.progress {
                    if *p != id {
                        pr.recent_active = false;
                    }
                }
            }
            self.lead_transferee = None;
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat();
        }
    }

    fn hup(&mut self, transfer: bool, rng: &mut impl Rng) {
        if self.role == Role::Leader {
            return;
        }
        if self.cfg.pre_vote && !transfer {
            self.campaign(true, false, rng);
        } else {
            self.campaign(false, transfer, rng);
        }
    }

    fn campaign(&mut self, pre: bool, transfer: bool, rng: &mut impl Rng) {
        let term = if pre {
            self.become_pre_candidate();
            self.hs.term + 1
        } else {
            self.become_candidate(rng);
            self.hs.term
        };
        self.events.push(RaftEvent::Campaign { term, pre, transfer });
        let id = self.id;
        if self.poll(id, true) >= self.quorum() {
            // Single-member cluster.
            if pre {
                self.campaign(false, transfer, rng)
            } else {
                self.become_leader(rng)
            }
            return;
        }
        let (last_index, last_term) = (self.last_index(), self.last_term());
        for p in self.cfg.peers.clone() {
            if p != id {
                self.send(p, RaftMsg::Vote { term, last_index, last_term, pre, transfer });
            }
        }
    }

    /// Records a vote and returns the number granted so far.
    fn poll(&mut self, from: NodeId, granted: bool) -> usize {
        if !self.votes.iter().any(|(p, _)| *p == from) {
            self.votes.push((from, granted));
        }
        self.votes.iter().filter(|(_, g)| *g).count()
    }

    fn rejected(&self) -> usize {
        self.votes.iter().filter(|(_, g)| !*g).count()
    }

    // --- proposals and operator actions ------------------------------------------------------

    /// Appends a command if this member leads; returns its index.
    pub fn propose(&mut self, data: EntryData<S>) -> Option<Index> {
        if self.role != Role::Leader || self.lead_transferee.is_some() {
            return None;
        }
        let i = self.append(data);
        self.bcast_append();
        Some(i)
    }

    /// etcd's move-leader: the leader catches `to` up, then tells it to campaign at once.
    pub fn transfer_leader(&mut self, to: NodeId) -> bool {
        if self.role != Role::Leader || to == self.id || !self.cfg.peers.contains(&to) {
            return false;
        }
        self.lead_transferee = Some(to);
        self.election_elapsed = 0;
        let last = self.last_index();
        if self.progress_mut(to).matched == last {
            let term = self.hs.term;
            self.send(to, RaftMsg::TimeoutNow { term });
        } else {
            self.send_append(to);
        }
        true
    }

    // --- replication -------------------------------------------------------------------------

    fn send_append(&mut self, to: NodeId) {
        let pr = self.progress_mut(to);
        if pr.pending_snapshot > 0 {
            return;
        }
        let next = pr.next;
        let prev_index = next - 1;
        let Some(prev_term) = self.term_at(prev_index) else {
            // The entries it needs were compacted away: only a snapshot can catch it up.
            return self.send_snapshot(to);
        };
        let end = self.last_index().min(prev_index + self.cfg.max_entries_per_msg as Index);
        let entries: Vec<Entry<S>> = (next..=end).filter_map(|i| self.entry(i).cloned()).collect();
        if let Some(last) = entries.last() {
            // Optimistic, like etcd's replicate state: a rejection rewinds it.
            self.progress_mut(to).next = last.index + 1;
        }
        let commit = self.hs.commit;
        let term = self.hs.term;
        self.send(to, RaftMsg::App { term, prev_index, prev_term, entries, commit });
    }

    fn bcast_append(&mut self) {
        for p in self.cfg.peers.clone() {
            if p != self.id {
                self.send_append(p);
            }
        }
    }

    fn bcast_heartbeat(&mut self) {
        let term = self.hs.term;
        for (p, pr) in self.progress.clone() {
            if p != self.id {
                let commit = pr.matched.min(self.hs.commit);
                self.send(p, RaftMsg::Heartbeat { term, commit });
            }
        }
    }

    fn maybe_commit(&mut self) -> bool {
        let mut matched: Vec<Index> = self.progress.iter().map(|(_, p)| p.matched).collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matched[self.quorum() - 1];
        // Only entries of the current term are committed by counting (Raft 5.4.2).
        if candidate > self.hs.commit && self.term_at(candidate) == Some(self.hs.term) {
            self.hs.commit = candidate;
            self.unstable = true;
            return true;
        }
        false
    }

    fn commit_to(&mut self, commit: Index) {
        if commit > self.hs.commit {
            assert!(commit <= self.last_index(), "commit {commit} beyond the log {}", self.last_index());
            self.hs.commit = commit;
            self.unstable = true;
        }
    }

    fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry<S>>,
        commit: Index,
    ) {
        let term = self.hs.term;
        if prev_index < self.hs.commit {
            let index = self.hs.commit;
            self.send(from, RaftMsg::AppResp { term, index, reject: false, hint: 0 });
            return;
        }
        if self.term_at(prev_index) != Some(prev_term) {
            // Hint: the last index at or below prev_index whose term is at most prev_term, so the
            // leader can skip a whole conflicting term at once (etcd's findConflictByTerm).
            let mut hint = prev_index.min(self.last_index());
            while hint > 0 && self.term_at(hint).is_some_and(|t| t > prev_term) {
                hint -= 1;
            }
            self.send(from, RaftMsg::AppResp { term, index: prev_index, reject: true, hint });
            return;
        }
        let last_new = prev_index + entries.len() as Index;
        for e in entries {
            match self.term_at(e.index) {
                Some(t) if t == e.term => {}
                Some(t) => {
                    assert!(e.index > self.hs.commit, "conflict at committed index {}", e.index);
                    self.events.push(RaftEvent::Truncated { index: e.index, term: t });
                    self.hs.log.truncate((e.index - self.hs.log_start - 1) as usize);
                    self.hs.log.push_back(e);
                    self.unstable = true;
                }
                None => {
                    assert_eq!(e.index, self.last_index() + 1, "entries are contiguous");
                    self.hs.log.push_back(e);
                    self.unstable = true;
                }
            }
        }
        self.commit_to(commit.min(last_new));
        self.send(from, RaftMsg::AppResp { term, index: last_new, reject: false, hint: 0 });
    }

    // --- the message dispatcher (etcd: Step) -----------------------------------------------------

    pub fn step(&mut self, from: NodeId, m: RaftMsg<S>, rng: &mut impl Rng) {
        let mterm = m.term();
        if mterm > self.hs.term {
            if let RaftMsg::Vote { transfer, .. } = m {
                let in_lease =
                    self.cfg.check_quorum && self.lead.is_some() && self.election_elapsed < self.cfg.election_ticks;
                if !transfer && in_lease {
                    return;
                }
            }
            let reason = match m {
                RaftMsg::Vote { transfer: true, .. } if self.lead_transferee == Some(from) => StepDown::Transfer,
                _ => StepDown::HigherTerm,
            };
            match &m {
                RaftMsg::Vote { pre: true, .. } => {}
                RaftMsg::VoteResp { pre: true, reject: false, .. } => {}
                RaftMsg::App { .. } | RaftMsg::Heartbeat { .. } | RaftMsg::Snap { .. } => {
                    self.step_down(mterm, Some(from), reason, rng)
                }
                _ => self.step_down(mterm, None, reason, rng),
            }
        } else if mterm < self.hs.term
            && !(self.cfg.planted_bug == Some(PlantedBug::VoteFromLowerTerm)
                && matches!(m, RaftMsg::Vote { pre: false, .. }))
        {
            let term = self.hs.term;
            match m {
                RaftMsg::App { .. } | RaftMsg::Heartbeat { .. } if self.cfg.check_quorum || self.cfg.pre_vote => {
                    // Tell a stale leader our term so it steps down (etcd does this so that a
                    // member that campaigned while cut off is not ignored forever).
                    self.send(from, RaftMsg::AppResp { term, index: 0, reject: false, hint: 0 });
                }
                RaftMsg::Vote { pre: true, .. } => self.send(from, RaftMsg::VoteResp { term, pre: true, reject: true }),
                _ => {}
            }
            return;
        }

        match m {
            RaftMsg::Vote { term, last_index, last_term, pre, .. } => {
                let can_vote = self.hs.vote == Some(from)
                    || (self.hs.vote.is_none() && self.lead.is_none())
                    || (pre && term > self.hs.term);
                if can_vote && self.is_up_to_date(last_index, last_term) {
                    self.send(from, RaftMsg::VoteResp { term, pre, reject: false });
                    if !pre {
                        self.election_elapsed = 0;
                        self.hs.vote = Some(from);
                        self.unstable = true;
                    }
                } else {
                    let term = self.hs.term;
                    self.send(from, RaftMsg::VoteResp { term, pre, reject: true });
                }
            }
            m => match self.role {
                Role::Leader => self.step_leader(from, m),
                Role::PreCandidate | Role::Candidate => self.step_candidate(from, m, rng),
                Role::Follower => self.step_follower(from, m, rng),
            },
        }
    }

    fn step_leader(&mut self, from: NodeId, m: RaftMsg<S>) {
        match m {
            RaftMsg::AppResp { index, reject, hint, .. } => {
                let last = self.last_index();
                let pr = self.progress_mut(from);
                pr.recent_active = true;
                if reject {
                    // Rewind to just after the hint (never below what is known to match).
                    if index > pr.matched {
                        pr.next = (hint + 1).max(pr.matched + 1).min(index);
                        self.send_append(from);
                    }
                } else if index > pr.matched {
                    pr.matched = index;
                    pr.next = pr.next.max(index + 1);
                    if pr.pending_snapshot > 0 && index >= pr.pending_snapshot {
                        // etcd: the snapshot landed; probe on from what it now holds.
                        pr.pending_snapshot = 0;
                        pr.next = index + 1;
                    }
                    let caught_up = pr.matched == last;
                    if self.maybe_commit() {
                        self.bcast_append();
                    } else if self.progress_mut(from).next <= last {
                        self.send_append(from);
                    }
                    if caught_up && self.lead_transferee == Some(from) {
                        let term = self.hs.term;
                        self.send(from, RaftMsg::TimeoutNow { term });
                    }
                }
            }
            RaftMsg::HeartbeatResp { .. } => {
                let last = self.last_index();
                let pr = self.progress_mut(from);
                pr.recent_active = true;
                if pr.matched < last {
                    // Resend from what is known to match: an optimistic next may have been lost.
                    pr.next = pr.matched + 1;
                    self.send_append(from);
                }
            }
            _ => {}
        }
    }

    fn step_candidate(&mut self, from: NodeId, m: RaftMsg<S>, rng: &mut impl Rng) {
        match m {
            RaftMsg::App { prev_index, prev_term, entries, commit, term } => {
                self.become_follower(term, Some(from), rng);
                self.handle_append(from, prev_index, prev_term, entries, commit);
            }
            RaftMsg::Heartbeat { term, commit } => {
                self.become_follower(term, Some(from), rng);
                self.commit_to(commit);
                self.send(from, RaftMsg::HeartbeatResp { term });
            }
            RaftMsg::Snap { term, snapshot } => {
                self.become_follower(term, Some(from), rng);
                self.handle_snapshot(from, snapshot);
            }
            RaftMsg::VoteResp { pre, reject, .. } if pre == (self.role == Role::PreCandidate) => {
                let granted = self.poll(from, !reject);
                if granted >= self.quorum() {
                    if self.role == Role::PreCandidate {
                        self.campaign(false, false, rng);
                    } else {
                        self.become_leader(rng);
                        self.bcast_append();
                    }
                } else if self.rejected() >= self.quorum() {
                    let term = self.hs.term;
                    self.become_follower(term, None, rng);
                }
            }
            _ => {}
        }
    }

    fn step_follower(&mut self, from: NodeId, m: RaftMsg<S>, rng: &mut impl Rng) {
        match m {
            RaftMsg::App { prev_index, prev_term, entries, commit, .. } => {
                self.election_elapsed = 0;
                self.lead = Some(from);
                self.handle_append(from, prev_index, prev_term, entries, commit);
            }
            RaftMsg::Heartbeat { term, commit } => {
                self.election_elapsed = 0;
                self.lead = Some(from);
                self.commit_to(commit);
                self.send(from, RaftMsg::HeartbeatResp { term });
            }
            RaftMsg::Snap { snapshot, .. } => {
                self.election_elapsed = 0;
                self.lead = Some(from);
                self.handle_snapshot(from, snapshot);
            }
            RaftMsg::TimeoutNow { .. } => self.hup(true, rng),
            _ => {}
        }
    }

    /// Raft's own invariants, checked after every call.
    pub fn check_invariants(&self) {
        assert!(self.hs.commit <= self.last_index(), "commit beyond log");
        assert!(self.hs.log_start <= self.hs.snapshot.index, "compacted beyond the snapshot");
        assert!(self.hs.snapshot.index <= self.hs.commit, "a snapshot holds committed state only");
        if let Some(e) = self.hs.log.front() {
            assert_eq!(e.index, self.hs.log_start + 1, "the log starts right after the compaction point");
        }
        // The tail is what changes; checking it keeps this O(1) on long logs (the unit tests
        // check whole logs).
        if let Some(e) = self.hs.log.last() {
            assert_eq!(e.index, self.last_index(), "log indices are dense");
            assert!(e.term <= self.hs.term, "entry from a future term");
        }
        if self.role == Role::Leader {
            assert_eq!(self.lead, Some(self.id));
            assert_eq!(self.hs.vote, Some(self.id), "a leader voted for itself in its term");
        }
        self.check_persist_invariants();
    }
}

#[path = "raft_ready.rs"]
mod ready;
#[path = "raft_snapshot.rs"]
mod snapshot;

#[cfg(test)]
#[path = "raft_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "raft_mutant_tests.rs"]
mod mutant_tests;
