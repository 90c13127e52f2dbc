//! Log compaction and snapshots, as etcd does them: the server snapshots its applied state
//! every `--snapshot-count` entries and compacts the log up to a point that keeps some entries
//! for slow followers; a follower that needs a compacted entry receives the leader's latest
//! snapshot (MsgSnap) and restores from it (etcd-io/raft `maybeSendAppend`, `handleSnapshot`,
//! `restore`).

use std::sync::Arc;

use imbl::Vector;

use super::{Index, Raft, RaftMsg, StateMachine, Term};
use crate::node::NodeId;

/// The applied state at `index` (etcd's snap file, and the payload of MsgSnap).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot<S: StateMachine> {
    pub index: Index,
    pub term: Term,
    /// The application's state machine after applying entry `index`; opaque to Raft.
    pub state: Arc<S>,
    /// (first index, term) runs of entries 1..=index: a checker aid carried along so that a
    /// restored follower can still describe its whole log (see `HardState::compacted_runs`).
    /// Not part of etcd's snapshot and not counted on the wire.
    pub term_runs: Arc<Vec<(Index, Term)>>,
}

/// Appends entry (`index`, `term`) to a list of term runs.
pub(super) fn push_run(runs: &mut Vec<(Index, Term)>, index: Index, term: Term) {
    if runs.last().is_none_or(|&(_, t)| t != term) {
        runs.push((index, term));
    }
}

impl<S: StateMachine> Raft<S> {
    /// etcd's CreateSnapshot: records `state`, the state machine after applying entry `index`.
    pub fn create_snapshot(&mut self, index: Index, state: Arc<S>) {
        assert!(index <= self.hs.commit, "only applied (so committed) state is snapshotted");
        assert!(index > self.hs.snapshot.index, "snapshots move forward");
        let term = self.term_at(index).expect("the snapshot's entry is in the log");
        let mut term_runs = self.hs.compacted_runs.clone();
        for e in self.hs.log.iter().take_while(|e| e.index <= index) {
            push_run(&mut term_runs, e.index, e.term);
        }
        self.hs.snapshot = Snapshot { index, term, state, term_runs: Arc::new(term_runs) };
    }

    /// etcd's Compact: drops the entries up to `index`, which the snapshot covers.
    pub fn compact(&mut self, index: Index) {
        assert!(index <= self.hs.snapshot.index, "compacting entries no snapshot covers");
        if index <= self.hs.log_start {
            return;
        }
        let drop_count = (index - self.hs.log_start) as usize;
        let term = self.term_at(index).expect("compacting entries the log holds");
        for e in self.hs.log.iter().take(drop_count) {
            push_run(&mut self.hs.compacted_runs, e.index, e.term);
        }
        self.hs.log = self.hs.log.skip(drop_count);
        self.hs.log_start = index;
        self.hs.log_start_term = term;
    }

    /// The follower needs entries before the compaction point: send the latest snapshot and
    /// pause appends to it until it answers (etcd's StateSnapshot).
    pub(super) fn send_snapshot(&mut self, to: NodeId) {
        let snapshot = self.hs.snapshot.clone();
        assert!(snapshot.index >= self.hs.log_start, "the snapshot covers every compacted entry");
        let pr = self.progress_mut(to);
        pr.pending_snapshot = snapshot.index;
        pr.snapshot_ticks = 0;
        let term = self.hs.term;
        self.send(to, RaftMsg::Snap { term, snapshot });
    }

    /// A snapshot lost on the way is never acknowledged. etcd learns of the failure from its
    /// transport (MsgSnapStatus); here an election timeout without an answer stands for that
    /// report: the follower is probed again, which sends a fresh snapshot.
    pub(super) fn tick_pending_snapshots(&mut self) {
        let timeout_ticks = self.cfg.election_ticks;
        for (_, pr) in &mut self.progress {
            if pr.pending_snapshot > 0 {
                pr.snapshot_ticks += 1;
                if pr.snapshot_ticks >= timeout_ticks {
                    pr.pending_snapshot = 0;
                    pr.next = pr.matched + 1;
                }
            }
        }
    }

    /// etcd's handleSnapshot and restore.
    pub(super) fn handle_snapshot(&mut self, from: NodeId, snapshot: Snapshot<S>) {
        let term = self.hs.term;
        if snapshot.index <= self.hs.commit {
            // Stale: everything it holds is committed here already.
            let index = self.hs.commit;
            self.send(from, RaftMsg::AppResp { term, index, reject: false, hint: 0 });
            return;
        }
        if self.term_at(snapshot.index) == Some(snapshot.term) {
            // The log already holds the snapshot's entry: it only moves the commit forward.
            self.commit_to(snapshot.index);
            let index = self.hs.commit;
            self.send(from, RaftMsg::AppResp { term, index, reject: false, hint: 0 });
            return;
        }
        // Restore: the whole log is replaced by the snapshot; the host restores its state
        // machine from `hs.snapshot`.
        self.hs.log = Vector::new();
        self.hs.log_start = snapshot.index;
        self.hs.log_start_term = snapshot.term;
        self.hs.compacted_runs = snapshot.term_runs.as_ref().clone();
        self.hs.commit = snapshot.index;
        self.hs.snapshot = snapshot;
        self.unstable = true;
        let index = self.last_index();
        self.send(from, RaftMsg::AppResp { term, index, reject: false, hint: 0 });
    }
}
