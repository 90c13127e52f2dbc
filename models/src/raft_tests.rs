use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use super::*;
use crate::rng::{SimRng, Stream, stream_rng};

/// These tests replicate etcd's KV (shared with `mutant_tests`).
pub(super) type Raft = super::Raft<crate::etcd::Kv>;
pub(super) type RaftMsg = super::RaftMsg<crate::etcd::Kv>;
pub(super) type EntryData = super::EntryData<crate::etcd::Kv>;

/// What `r` has sent, with every persist it asked for taken as durable at once (the disk is
/// instant here): the messages held for a persist join those free to leave, in send order.
pub(super) fn sent(r: &mut Raft) -> &mut Vec<(NodeId, RaftMsg)> {
    let ready = r.ready();
    let waited = ready.persist.map_or(vec![], |seq| r.persisted(seq));
    r.msgs.extend(ready.msgs);
    r.msgs.extend(waited);
    &mut r.msgs
}

struct Net {
    nodes: Vec<Raft>,
    rng: SimRng,
    queue: VecDeque<(NodeId, NodeId, RaftMsg)>,
    /// Directed links that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Snapshot messages sent so far, and whether the network drops them.
    snaps_sent: usize,
    drop_snaps: bool,
}

pub(super) fn cfg(n: u32, pre_vote: bool, check_quorum: bool) -> RaftConfig {
    RaftConfig {
        peers: (0..n).collect(),
        planted_bug: None,
        election_ticks: 10,
        heartbeat_ticks: 1,
        pre_vote,
        check_quorum,
        max_entries_per_msg: 64,
    }
}

impl Net {
    fn new(n: u32, pre_vote: bool, check_quorum: bool) -> Net {
        let mut rng = stream_rng(42, Stream::Named(1));
        let nodes =
            (0..n).map(|i| Raft::new(i, cfg(n, pre_vote, check_quorum), HardState::default(), &mut rng)).collect();
        Net { nodes, rng, queue: VecDeque::new(), cut: BTreeSet::new(), snaps_sent: 0, drop_snaps: false }
    }

    fn collect(&mut self) {
        for (i, r) in self.nodes.iter_mut().enumerate() {
            for (to, m) in sent(r).drain(..) {
                self.queue.push_back((i as NodeId, to, m));
            }
        }
    }

    fn deliver(&mut self) {
        self.collect();
        let mut steps = 0;
        while let Some((from, to, m)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "message storm");
            let snap = matches!(m, RaftMsg::Snap { .. });
            self.snaps_sent += usize::from(snap);
            if self.cut.contains(&(from, to)) || (snap && self.drop_snaps) {
                continue;
            }
            self.nodes[to as usize].step(from, m, &mut self.rng);
            self.nodes[to as usize].check_invariants();
            self.collect();
        }
    }

    fn tick(&mut self, i: usize) {
        self.nodes[i].tick(&mut self.rng);
        self.deliver();
    }

    fn tick_all(&mut self, times: usize) {
        for _ in 0..times {
            for i in 0..self.nodes.len() {
                self.tick(i);
            }
        }
    }

    /// Ticks only node `i` until it campaigns, then delivers.
    fn elect(&mut self, i: usize) {
        for _ in 0..40 {
            self.tick(i);
            if self.nodes[i].role == Role::Leader {
                return;
            }
        }
        panic!("node {i} did not become leader: {:?}", self.nodes[i].role);
    }

    fn isolate(&mut self, i: NodeId) {
        for j in 0..self.nodes.len() as NodeId {
            if j != i {
                self.cut.insert((i, j));
                self.cut.insert((j, i));
            }
        }
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.nodes.iter().filter(|r| r.role == Role::Leader).map(|r| r.id).collect()
    }

    fn propose(&mut self, leader: usize, digest: u64) -> Index {
        let cmd = std::sync::Arc::new(crate::etcd::Command::ExpireLease { id: digest });
        let i = self.nodes[leader].propose(EntryData::Command { digest, cmd }).expect("leader accepts");
        self.deliver();
        i
    }
}

#[test]
fn randomized_election_timeout_is_in_one_to_two_election_timeouts() {
    let mut net = Net::new(3, false, true);
    let mut seen = BTreeSet::new();
    for _ in 0..300 {
        let t = net.nodes[0].hs.term;
        net.nodes[0].reset(t, &mut net.rng);
        let r = net.nodes[0].randomized_election_ticks;
        assert!((10..20).contains(&r), "{r}");
        seen.insert(r);
    }
    assert_eq!(seen.len(), 10, "every value in [10, 20) is drawn");
}

#[test]
fn a_leader_is_elected_and_replicates() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    assert_eq!(net.leaders(), vec![0]);
    assert!(net.nodes.iter().all(|r| r.hs.term == 1));
    let i = net.propose(0, 77);
    // Commit reaches followers with the next append or heartbeat.
    net.tick(0);
    for r in &net.nodes {
        assert_eq!(r.commit(), i, "node {} commit", r.id);
        assert_eq!(r.entry(i).unwrap().digest(), 77);
        assert_eq!(r.lead, Some(0));
    }
}

#[test]
fn a_stale_log_cannot_win_a_vote() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.isolate(2);
    net.propose(0, 1);
    net.tick(0);
    net.cut.clear();
    // Node 2 lacks the entry: others refuse it even once their leases have lapsed.
    net.nodes[0].role = Role::Follower;
    net.nodes[0].lead = None;
    net.nodes[1].lead = None;
    net.elect_attempts_fail(2);
}

impl Net {
    fn elect_attempts_fail(&mut self, i: usize) {
        for _ in 0..60 {
            self.tick(i);
            assert_ne!(self.nodes[i].role, Role::Leader, "a node with a stale log won");
        }
    }
}

#[test]
fn conflicting_uncommitted_entries_are_replaced() {
    let mut net = Net::new(3, false, false);
    net.elect(0);
    net.tick(0);
    // Leader 0 appends entries nobody receives.
    net.isolate(0);
    for d in 10..13 {
        net.nodes[0].propose(EntryData::Empty).unwrap();
        let _ = d;
    }
    net.deliver();
    assert_eq!(net.nodes[0].last_index(), 4);
    // Node 1 becomes leader at a higher term and commits its own entries.
    net.elect(1);
    net.propose(1, 5);
    net.tick(1);
    let leader_log: Vec<(Index, Term)> = net.nodes[1].hs.log.iter().map(|e| (e.index, e.term)).collect();
    net.cut.clear();
    net.tick(1);
    net.tick(1);
    let old: Vec<(Index, Term)> = net.nodes[0].hs.log.iter().map(|e| (e.index, e.term)).collect();
    assert_eq!(old, leader_log, "the old leader's uncommitted tail was truncated and replaced");
    assert_eq!(net.nodes[0].role, Role::Follower);
    assert_eq!(net.nodes[0].commit(), net.nodes[1].commit());
}

#[test]
fn check_quorum_makes_an_isolated_leader_step_down() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.isolate(0);
    // Activity is reset at each check, so an isolated leader notices within two election
    // timeouts (as in etcd).
    for _ in 0..20 {
        net.tick(0);
    }
    assert_eq!(net.nodes[0].role, Role::Follower);
    assert!(net.nodes[0].events.contains(&RaftEvent::SteppedDown { term: 1, reason: StepDown::CheckQuorum }));
}

#[test]
fn without_check_quorum_an_isolated_leader_stays_leader() {
    let mut net = Net::new(3, false, false);
    net.elect(0);
    net.isolate(0);
    for _ in 0..50 {
        net.tick(0);
    }
    assert_eq!(net.nodes[0].role, Role::Leader);
}

/// The 2020 mechanism: member 0 cannot hear leader 2; without pre-vote it campaigns at ever
/// higher terms. Member 1 is in lease (it hears the leader) and ignores those votes, so the
/// cluster survives while the cut is clean, but as soon as a heartbeat from the leader gets
/// through to member 0, its answer carries the higher term and the leader steps down.
#[test]
fn a_member_that_ran_ahead_deposes_the_leader_when_it_hears_it() {
    let mut net = Net::new(3, false, true);
    net.elect(2);
    net.cut.insert((2, 0));
    net.cut.insert((0, 2));
    for _ in 0..25 {
        net.tick(0);
        net.tick(1);
        net.tick(2);
    }
    assert_eq!(net.leaders(), vec![2], "member 1 is in lease and ignores member 0's votes");
    assert!(net.nodes[0].hs.term > net.nodes[2].hs.term, "member 0 ran ahead");
    assert_eq!(net.nodes[1].hs.term, net.nodes[2].hs.term);
    // One heartbeat gets through, and so does the answer.
    net.cut.clear();
    net.tick(2);
    assert!(
        net.nodes[2].events.iter().any(|e| matches!(e, RaftEvent::SteppedDown { reason: StepDown::HigherTerm, .. }))
    );
    assert_ne!(net.nodes[2].role, Role::Leader);
}

#[test]
fn pre_vote_keeps_a_cut_off_member_from_raising_its_term() {
    let mut net = Net::new(3, true, true);
    net.elect(2);
    let term = net.nodes[2].hs.term;
    net.cut.insert((2, 0));
    net.cut.insert((0, 2));
    for _ in 0..40 {
        net.tick(0);
        net.tick(1);
        net.tick(2);
    }
    assert_eq!(net.nodes[0].hs.term, term, "pre-votes failed, so the term never moved");
    assert!(net.nodes[0].events.iter().any(|e| matches!(e, RaftEvent::Campaign { pre: true, .. })));
    net.cut.clear();
    net.tick_all(3);
    assert_eq!(net.leaders(), vec![2], "no disruption when the link heals");
    assert_eq!(net.nodes[2].hs.term, term);
}

#[test]
fn in_lease_followers_ignore_votes_only_with_check_quorum() {
    for (check_quorum, disrupted) in [(true, false), (false, true)] {
        let mut net = Net::new(3, false, check_quorum);
        net.elect(0);
        net.tick(0);
        // Node 2 campaigns though it just heard from the leader (as after a local pause).
        net.nodes[2].hup(false, &mut net.rng);
        net.deliver();
        let term_of_1 = net.nodes[1].hs.term;
        assert_eq!(term_of_1 > 1, disrupted, "check_quorum={check_quorum}: node 1 at term {term_of_1}");
    }
}

#[test]
fn leader_transfer_hands_over_at_the_next_term() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.propose(0, 9);
    assert!(net.nodes[0].transfer_leader(2));
    net.deliver();
    assert_eq!(net.leaders(), vec![2]);
    assert_eq!(net.nodes[2].hs.term, 2);
    assert!(net.nodes[0].events.contains(&RaftEvent::SteppedDown { term: 1, reason: StepDown::Transfer }));
    assert!(net.nodes[2].events.iter().any(|e| matches!(e, RaftEvent::Campaign { transfer: true, .. })));
    assert!(!net.nodes[1].transfer_leader(0), "only the leader transfers");
}

#[test]
fn entries_of_earlier_terms_are_not_committed_by_counting() {
    let mut net = Net::new(3, false, false);
    net.elect(0);
    net.tick(0);
    // Term-1 entry replicated to node 0 only.
    net.isolate(0);
    net.nodes[0].propose(EntryData::Empty).unwrap();
    net.deliver();
    let idx = net.nodes[0].last_index();
    // Pretend node 1 now has it too (as if replicated) and node 0 wins term 3 later.
    net.nodes[0].role = Role::Follower;
    let mut r = net.nodes.remove(0);
    r.hs.term = 2;
    r.become_candidate(&mut net.rng);
    r.become_leader(&mut net.rng);
    net.nodes.insert(0, r);
    let old_entry_term = net.nodes[0].term_at(idx).unwrap();
    assert!(old_entry_term < net.nodes[0].hs.term);
    // Counting a majority on the old entry alone must not commit it: the commit needs the new
    // term's empty entry, which comes after it.
    net.nodes[0].progress_mut(1).matched = idx;
    net.nodes[0].maybe_commit();
    assert!(net.nodes[0].commit() < idx);
}

// --- compaction and snapshots -----------------------------------------------------------------

fn put(key: &str, value: &str) -> EntryData {
    let cmd = crate::etcd::Command::Client(crate::etcd::Request::Op(crate::etcd::Op::Put {
        key: key.into(),
        value: value.into(),
        lease: None,
    }));
    EntryData::Command { digest: crate::rng::mix64(key.len() as u64 ^ value.len() as u64), cmd: Arc::new(cmd) }
}

/// The state machine of a member: its snapshot plus the committed entries after it.
fn applied_kv(r: &Raft) -> crate::etcd::Kv {
    let mut kv = r.hs.snapshot.state.as_ref().clone();
    for i in r.hs.snapshot.index + 1..=r.commit() {
        if let EntryData::Command { cmd, .. } = &r.entry(i).expect("committed entries after the snapshot").data {
            let _ = kv.apply(i, cmd);
        }
    }
    kv
}

impl Net {
    /// What the etcd server does every snapshot-count entries, with a small count.
    fn snapshot_and_compact(&mut self, i: usize, keep_entries: Index) {
        let applied = self.nodes[i].commit();
        let kv = Arc::new(applied_kv(&self.nodes[i]));
        self.nodes[i].create_snapshot(applied, kv);
        self.nodes[i].compact(applied - keep_entries);
    }
}

#[test]
fn a_follower_behind_the_compaction_point_catches_up_from_a_snapshot() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.isolate(2);
    for k in 0..40 {
        net.nodes[0].propose(put(&format!("/k{}", k % 7), &format!("v{k}"))).unwrap();
        net.deliver();
    }
    let runs_before = net.nodes[0].term_runs();
    net.snapshot_and_compact(0, 5);
    let leader = &net.nodes[0];
    assert_eq!(leader.hs.log_start, leader.commit() - 5);
    assert_eq!(leader.hs.log.len(), 5, "only the catch-up entries remain");
    assert_eq!(leader.term_runs(), runs_before, "compaction keeps the log's term history");
    assert!(leader.entry(3).is_none());

    // Member 2 comes back with an empty log: appends cannot reach back, a snapshot does.
    net.cut.clear();
    net.tick(0);
    net.tick(0);
    assert_eq!(net.snaps_sent, 1, "one snapshot, then appends");
    let (leader, follower) = (&net.nodes[0], &net.nodes[2]);
    assert_eq!(follower.hs.snapshot, leader.hs.snapshot);
    assert_eq!(follower.last_index(), leader.last_index());
    assert_eq!(follower.commit(), leader.commit());
    assert_eq!(follower.term_runs(), leader.term_runs());
    let kv = applied_kv(follower);
    assert_eq!(kv, applied_kv(leader));
    assert_eq!(kv.get("/k4").unwrap().value, "v39");
}

#[test]
fn a_lost_snapshot_is_sent_again_after_an_election_timeout() {
    let mut net = Net::new(3, false, false);
    net.elect(0);
    net.isolate(2);
    for k in 0..20 {
        net.nodes[0].propose(put("/k", &format!("v{k}"))).unwrap();
        net.deliver();
    }
    net.snapshot_and_compact(0, 2);
    // Heartbeats get through, snapshots do not.
    net.cut.clear();
    net.drop_snaps = true;
    net.tick(0);
    assert_eq!(net.snaps_sent, 1);
    // While it is outstanding the leader sends member 2 nothing more...
    for _ in 0..8 {
        net.tick(0);
    }
    assert_eq!(net.snaps_sent, 1, "paused while the first snapshot is outstanding");
    assert!(net.nodes[2].last_index() < net.nodes[0].hs.log_start, "still behind the compaction point");
    // ...and gives up on it after an election timeout, then sends another.
    net.drop_snaps = false;
    for _ in 0..3 {
        net.tick(0);
    }
    assert_eq!(net.snaps_sent, 2);
    assert_eq!(net.nodes[2].last_index(), net.nodes[0].last_index());
    assert_eq!(applied_kv(&net.nodes[2]).get("/k").unwrap().value, "v19");
}

#[test]
fn a_snapshot_the_follower_already_holds_only_moves_its_commit() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    for k in 0..6 {
        net.nodes[0].propose(put("/k", &format!("v{k}"))).unwrap();
        net.deliver();
    }
    let snapshot = net.nodes[0].hs.snapshot.clone();
    let follower = &mut net.nodes[1];
    let before = follower.hs.log.clone();
    let stale = Snapshot { index: follower.commit(), term: 1, ..snapshot };
    follower.handle_snapshot(0, stale);
    assert_eq!(follower.hs.log, before, "a snapshot at or below the commit changes nothing");
    assert!(matches!(follower.msgs.last(), Some((0, RaftMsg::AppResp { reject: false, .. }))));
}
