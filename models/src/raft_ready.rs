//! What Raft hands its host after each call (etcd's `Ready`), and the messages that must wait
//! for the disk (etcd-io/raft's `msgsAfterAppend`).
//!
//! Some messages state what holds only once the state they follow from is durable: a granted
//! vote ("I voted for you in term t"), an acknowledged append ("I hold the entries up to i").
//! Sent before the fsync, a crash turns them into lies: the member forgets its vote and grants
//! another in the same term, or the leader counts towards a commit an entry the follower lost.
//! In etcd 3.5 that is a rule for the host (raft's `Ready.Messages` are "to be sent AFTER
//! Entries are committed to stable storage"); here Raft enforces it. `ready` hands out the
//! messages that may leave now and keeps the others until the host reports, by `persisted`,
//! that the state they follow from is durable.
//!
//! Which messages wait: every message a call sent waits for the state as that call left it
//! (the change set `ready` hands out then, and every earlier one), and leaves in the order it
//! was sent. That is the etcd 3.5 server's way on a follower: it sends a Ready's messages once
//! that Ready is saved, and saves one Ready at a time. etcd-io/raft's own `msgsAfterAppend`
//! (its asynchronous storage mode, after 3.5) holds back only vote and append responses.
//!
//! Known divergence: the etcd 3.5 server sends a *leader's* messages (its appends, heartbeats)
//! before it saves that Ready to its WAL (`etcdserver/raft.go`, after the Raft thesis, 10.2.1:
//! a leader may write its log in parallel with replicating it). Here a leader's messages wait
//! for its own fsync as a follower's do, so a slow leader disk delays replication itself.

use super::{PlantedBug, Raft, RaftMsg, StateMachine};
use crate::node::NodeId;

/// Numbers the change sets `ready` hands out to persist, from 1 (0: the state Raft booted from,
/// durable already). A change set includes the earlier ones: writing the state as it is when
/// the write starts makes every change set handed out so far durable.
pub type PersistSeq = u64;

/// etcd's `Ready`, reduced to what the host acts on.
#[derive(Debug)]
pub struct Ready<S: StateMachine> {
    /// Some: term, vote, commit, log or snapshot changed. The host writes `hs` to stable storage
    /// and calls `persisted` with this number once it is durable. Writes may be coalesced: one
    /// write of the state as it is then covers this change set and every earlier one.
    pub persist: Option<PersistSeq>,
    /// Messages that may leave now, in the order Raft sent them.
    pub msgs: Vec<(NodeId, RaftMsg<S>)>,
}

impl<S: StateMachine> Raft<S> {
    /// Takes what the last call into Raft produced; the host calls it after each one.
    pub fn ready(&mut self) -> Ready<S> {
        let persist = std::mem::take(&mut self.unstable).then(|| {
            self.persist_handed += 1;
            self.persist_handed
        });
        // What this call sent follows from the state as the call left it: the latest change set.
        let seq = self.persist_handed;
        let mut msgs = std::mem::take(&mut self.msgs);
        if seq > self.persist_done || !self.msgs_after_persist.is_empty() {
            let (now, wait): (Vec<_>, Vec<_>) = msgs.into_iter().partition(|(_, m)| self.planted_not_durable(m));
            self.msgs_after_persist.extend(wait.into_iter().map(|(to, m)| (seq, to, m)));
            msgs = now;
        }
        Ready { persist, msgs }
    }

    /// The host made change set `seq` durable, and so every earlier one: returns the messages
    /// that waited for them, in the order Raft sent them.
    pub fn persisted(&mut self, seq: PersistSeq) -> Vec<(NodeId, RaftMsg<S>)> {
        assert!(seq <= self.persist_handed, "change set {seq} was never handed out");
        self.persist_done = self.persist_done.max(seq);
        let done = self.persist_done;
        let released = self.msgs_after_persist.iter().take_while(|(s, ..)| *s <= done).count();
        self.msgs_after_persist.drain(..released).map(|(_, to, m)| (to, m)).collect()
    }

    /// `PlantedBug::VoteNotDurable`: a granted vote leaves before the vote is durable.
    fn planted_not_durable(&self, m: &RaftMsg<S>) -> bool {
        self.cfg.planted_bug == Some(PlantedBug::VoteNotDurable)
            && matches!(m, RaftMsg::VoteResp { pre: false, reject: false, .. })
    }

    pub(super) fn check_persist_invariants(&self) {
        assert!(self.persist_done <= self.persist_handed, "durable beyond what was handed out");
        // Sent in order, so the waiting change sets only grow towards the back.
        if let (Some((first, ..)), Some((last, ..))) = (self.msgs_after_persist.front(), self.msgs_after_persist.back())
        {
            assert!(*first > self.persist_done, "a message waits for a change set already durable");
            assert!(first <= last, "messages wait in the order they were sent");
        }
    }
}

#[cfg(test)]
#[path = "raft_ready_tests.rs"]
mod tests;
