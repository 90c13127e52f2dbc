//! Raft rules that mutation testing (`docs/mutation-testing.md`) found no test for: each test
//! states a rule of the Raft paper or of etcd-io/raft and fails if the rule is broken.
//!
//! Kept apart from `raft_tests.rs` so the two files evolve independently; the small network
//! below is a copy of the one there, cut down to what these tests need.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use super::tests::{EntryData, Raft, RaftMsg, cfg, sent};
use super::*;
use crate::rng::{SimRng, Stream, stream_rng};

type Entry = super::Entry<crate::etcd::Kv>;
type HardState = super::HardState<crate::etcd::Kv>;
type Snapshot = super::Snapshot<crate::etcd::Kv>;

fn rng() -> SimRng {
    stream_rng(7, Stream::Named(2))
}

/// A log of entries 1.. with these terms (empty entries: the tests compare terms only).
fn log_of(terms: &[Term]) -> Vector<Entry> {
    terms.iter().enumerate().map(|(i, &term)| Entry { term, index: i as Index + 1, data: EntryData::Empty }).collect()
}

/// Member `id` of a three-member group, restarted from this term, vote and log.
fn member(id: NodeId, term: Term, vote: Option<NodeId>, terms: &[Term], c: RaftConfig) -> Raft {
    let hs = HardState { term, vote, log: log_of(terms), ..HardState::default() };
    Raft::new(id, c, hs, &mut rng())
}

fn vote(term: Term, last_index: Index, last_term: Term, pre: bool) -> RaftMsg {
    RaftMsg::Vote { term, last_index, last_term, pre, transfer: false }
}

/// The answers to vote requests among the messages `r` sent: (to, term, pre, reject).
fn vote_resps(r: &mut Raft) -> Vec<(NodeId, Term, bool, bool)> {
    sent(r)
        .iter()
        .filter_map(|(to, m)| match m {
            RaftMsg::VoteResp { term, pre, reject } => Some((*to, *term, *pre, *reject)),
            _ => None,
        })
        .collect()
}

struct Net {
    nodes: Vec<Raft>,
    rng: SimRng,
    queue: VecDeque<(NodeId, NodeId, RaftMsg)>,
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Every message delivered, in order.
    delivered: Vec<(NodeId, NodeId, RaftMsg)>,
}

impl Net {
    fn new(n: u32, pre_vote: bool, check_quorum: bool) -> Net {
        let mut rng = rng();
        let nodes =
            (0..n).map(|i| Raft::new(i, cfg(n, pre_vote, check_quorum), HardState::default(), &mut rng)).collect();
        Net { nodes, rng, queue: VecDeque::new(), cut: BTreeSet::new(), delivered: vec![] }
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
            if self.cut.contains(&(from, to)) {
                continue;
            }
            self.delivered.push((from, to, m.clone()));
            self.nodes[to as usize].step(from, m, &mut self.rng);
            self.nodes[to as usize].check_invariants();
            self.collect();
        }
    }

    fn tick(&mut self, i: usize) {
        self.nodes[i].tick(&mut self.rng);
        self.deliver();
    }

    /// Ticks only member `i` until it leads.
    fn elect(&mut self, i: usize) {
        for _ in 0..40 {
            self.tick(i);
            if self.nodes[i].role == Role::Leader {
                return;
            }
        }
        panic!("member {i} did not become leader: {:?}", self.nodes[i].role);
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

    fn log(&self, i: usize) -> Vec<(Index, Term)> {
        self.nodes[i].hs.log.iter().map(|e| (e.index, e.term)).collect()
    }
}

fn command(id: u64) -> EntryData {
    EntryData::Command { digest: id, cmd: Arc::new(crate::etcd::Command::ExpireLease { id }) }
}

// --- elections -------------------------------------------------------------------------------

/// Raft 5.4.1: logs are compared by the term of their last entries first; only at equal terms
/// does the longer log win. A longer log that ends in an older term is not up to date.
#[test]
fn the_vote_goes_to_the_log_with_the_later_last_term_not_the_longer_one() {
    // Voter's log ends in term 3; the candidate's is longer but ends in term 2.
    let mut voter = member(0, 3, None, &[1, 3], cfg(3, false, false));
    voter.step(1, vote(4, 3, 2, false), &mut rng());
    assert_eq!(vote_resps(&mut voter), vec![(1, 4, false, true)], "a longer log of an older term is refused");
    assert_eq!(voter.hs.vote, None);

    // The other way round: the candidate's shorter log ends in the later term.
    let mut voter = member(0, 3, None, &[1, 2, 2], cfg(3, false, false));
    voter.step(1, vote(4, 2, 3, false), &mut rng());
    assert_eq!(vote_resps(&mut voter), vec![(1, 4, false, false)], "a later last term wins over length");
    assert_eq!(voter.hs.vote, Some(1));
}

/// Election safety rests on this: at most one vote per term, which a repeated request from the
/// same candidate gets again (etcd: "we can vote if this is a repeat of a vote we've already
/// cast").
#[test]
fn a_member_votes_once_per_term_and_repeats_that_vote_only() {
    let mut voter = member(0, 1, None, &[1], cfg(3, false, false));
    voter.step(1, vote(2, 1, 1, false), &mut rng());
    assert_eq!((voter.hs.term, voter.hs.vote, voter.lead), (2, Some(1), None));
    sent(&mut voter).clear();
    voter.step(2, vote(2, 1, 1, false), &mut rng());
    assert_eq!(vote_resps(&mut voter), vec![(2, 2, false, true)], "a second candidate of the term is refused");
    sent(&mut voter).clear();
    voter.step(1, vote(2, 1, 1, false), &mut rng());
    assert_eq!(vote_resps(&mut voter), vec![(1, 2, false, false)], "the same candidate asking again is granted");
    assert_eq!(voter.hs.vote, Some(1));
}

/// A member that follows a leader of this term, without having voted (it learned the leader
/// from its appends), does not vote for another candidate of the same term: that could make a
/// second leader in the term.
#[test]
fn a_member_that_knows_the_leader_of_the_term_does_not_vote() {
    let mut f = member(2, 2, None, &[1], cfg(3, false, false));
    let heartbeat = RaftMsg::Heartbeat { term: 2, commit: 0 };
    f.step(0, heartbeat, &mut rng());
    assert_eq!((f.lead, f.hs.vote), (Some(0), None));
    sent(&mut f).clear();
    f.step(1, vote(2, 1, 1, false), &mut rng());
    assert_eq!(vote_resps(&mut f), vec![(1, 2, false, true)]);
    assert_eq!(f.hs.vote, None);
}

/// Vote requests from an older term are ignored (etcd: "ignored a MsgVote message with lower
/// term"); granting one would elect a leader in a term the majority has already left.
#[test]
fn vote_requests_from_an_older_term_are_ignored() {
    let mut voter = member(0, 3, None, &[1], cfg(3, false, false));
    voter.step(1, vote(2, 5, 2, false), &mut rng());
    assert!(sent(&mut voter).is_empty(), "{:?}", sent(&mut voter));
    assert_eq!((voter.hs.term, voter.hs.vote), (3, None));
}

/// But a pre-vote from an older term is refused out loud, with the current term: the
/// pre-candidate adopts it, otherwise it could never win (etcd raft.go, "if we drop messages
/// with a lower term the cluster may deadlock").
#[test]
fn a_pre_vote_from_an_older_term_is_refused_with_the_current_term() {
    let mut voter = member(0, 3, None, &[1], cfg(3, true, false));
    voter.step(1, vote(2, 5, 2, true), &mut rng());
    assert_eq!(vote_resps(&mut voter), vec![(1, 3, true, true)]);

    let mut pre_candidate = member(1, 1, None, &[1], cfg(3, true, false));
    pre_candidate.hup(false, &mut rng());
    assert_eq!(pre_candidate.role, Role::PreCandidate);
    pre_candidate.step(0, RaftMsg::VoteResp { term: 3, pre: true, reject: true }, &mut rng());
    assert_eq!((pre_candidate.role, pre_candidate.hs.term), (Role::Follower, 3));
}

/// PreVote (Raft thesis 9.6): the poll is for the next term, and answering it changes nothing
/// on the voter, neither its term nor its vote.
#[test]
fn a_pre_vote_request_never_changes_the_voters_term_or_vote() {
    let mut voter = member(0, 1, None, &[1], cfg(3, true, false));
    voter.step(1, vote(2, 1, 1, true), &mut rng());
    // Read before the answers are taken: taking them (ready) consumes the persist flag.
    assert_eq!((voter.hs.term, voter.hs.vote, voter.unstable), (1, None, false));
    assert_eq!(vote_resps(&mut voter), vec![(1, 2, true, false)], "granted at the polled term");
}

/// A pre-vote for the voter's own term comes from a member one term behind; the voter grants
/// it only as it would a vote in that term (here: it voted for someone else).
#[test]
fn a_pre_vote_for_the_current_term_is_granted_only_like_a_vote() {
    let mut voter = member(0, 2, Some(1), &[1], cfg(3, true, false));
    voter.step(2, vote(2, 1, 1, true), &mut rng());
    assert_eq!(vote_resps(&mut voter), vec![(2, 2, true, true)]);
}

/// With pre-vote, members poll at term + 1. Losing the leader must still end in a new one.
#[test]
fn with_pre_vote_the_survivors_elect_a_new_leader_at_the_next_term() {
    let mut net = Net::new(3, true, true);
    net.elect(0);
    net.isolate(0);
    for _ in 0..60 {
        net.tick(1);
        net.tick(2);
        if !net.leaders().iter().all(|&l| l == 0) {
            break;
        }
    }
    let new: Vec<NodeId> = net.leaders().into_iter().filter(|&l| l != 0).collect();
    assert_eq!(new.len(), 1, "one new leader among the survivors: {new:?}");
    assert_eq!(net.nodes[new[0] as usize].hs.term, 2);
}

/// Pre-vote and vote answers are not interchangeable: a grant of the pre-vote that arrives
/// after the member started its real campaign is no vote for it (etcd counts only
/// `voteRespMsgType(m.Type)` of its current state). Counting it could elect a leader no
/// quorum voted for.
#[test]
fn a_late_pre_vote_grant_is_not_counted_as_a_vote() {
    let mut c = member(0, 0, None, &[], cfg(3, true, false));
    c.hup(false, &mut rng());
    assert_eq!(c.role, Role::PreCandidate);
    let grant = RaftMsg::VoteResp { term: 1, pre: true, reject: false };
    c.step(1, grant.clone(), &mut rng());
    assert_eq!((c.role, c.hs.term), (Role::Candidate, 1), "a quorum of pre-votes starts the campaign");
    c.step(2, grant, &mut rng());
    assert_eq!(c.role, Role::Candidate, "member 2's pre-vote grant, late, is not a vote");
}

/// A candidate that hears from a leader of its own term (which won that term's election) or
/// gets its snapshot follows it (Raft 5.2), instead of waiting to campaign again.
#[test]
fn a_candidate_follows_a_leader_of_its_term() {
    for msg in [
        RaftMsg::App { term: 2, prev_index: 1, prev_term: 1, entries: vec![], commit: 0 },
        RaftMsg::Heartbeat { term: 2, commit: 0 },
        RaftMsg::Snap { term: 2, snapshot: Snapshot { index: 1, term: 1, ..Snapshot::default() } },
    ] {
        let mut c = member(1, 1, None, &[1], cfg(3, false, false));
        c.hup(false, &mut rng());
        assert_eq!((c.role, c.hs.term), (Role::Candidate, 2));
        sent(&mut c).clear();
        c.step(0, msg.clone(), &mut rng());
        assert_eq!((c.role, c.lead), (Role::Follower, Some(0)), "{}", msg.label());
        assert!(!sent(&mut c).is_empty(), "{} is answered", msg.label());
    }
}

/// etcd: a (pre-)candidate refused by a quorum goes back to follower at once rather than
/// waiting out its election timeout.
#[test]
fn a_candidate_refused_by_a_quorum_becomes_a_follower_again() {
    let mut c = member(2, 1, None, &[1], cfg(3, false, false));
    c.hup(false, &mut rng());
    assert_eq!((c.role, c.hs.term), (Role::Candidate, 2));
    let refusal = RaftMsg::VoteResp { term: 2, pre: false, reject: true };
    c.step(0, refusal.clone(), &mut rng());
    assert_eq!(c.role, Role::Candidate, "one refusal of three is no verdict");
    c.step(1, refusal, &mut rng());
    assert_eq!((c.role, c.hs.term, c.hs.vote), (Role::Follower, 2, Some(2)));
}

/// etcd's CheckQuorum lease: a follower ignores higher-term vote requests while it heard from
/// its leader less than an election timeout ago, and no longer once a full timeout has passed.
#[test]
fn the_lease_lasts_exactly_an_election_timeout_without_the_leader() {
    for (elapsed_ticks, ignored) in [(9, true), (10, false)] {
        let mut net = Net::new(3, false, true);
        net.elect(0);
        let f = &mut net.nodes[1];
        f.election_elapsed = elapsed_ticks;
        f.randomized_election_ticks = 19;
        f.step(2, vote(2, 5, 1, false), &mut net.rng);
        assert_eq!(sent(f).is_empty(), ignored, "{elapsed_ticks} ticks since the leader: {:?}", sent(f));
        assert_eq!(f.hs.term, if ignored { 1 } else { 2 });
    }
}

/// A leader deposed by a higher-term transfer campaign it did not ask for records why it
/// really stepped down: a higher term, not a hand-over.
#[test]
fn a_leader_deposed_by_a_transfer_it_did_not_start_reports_a_higher_term() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    let l = &mut net.nodes[0];
    let m = RaftMsg::Vote { term: 5, last_index: 9, last_term: 4, pre: false, transfer: true };
    l.step(2, m, &mut net.rng);
    assert_eq!(l.role, Role::Follower);
    assert!(l.events.contains(&RaftEvent::SteppedDown { term: 1, reason: StepDown::HigherTerm }), "{:?}", l.events);
}

/// etcd answers stale appends and heartbeats (so that a deposed leader learns the new term)
/// only with CheckQuorum or PreVote on; otherwise it ignores them like any stale message.
#[test]
fn a_stale_heartbeat_is_answered_only_with_check_quorum_or_pre_vote() {
    for (pre_vote, check_quorum) in [(false, false), (true, false), (false, true)] {
        let mut f = member(1, 3, None, &[1], cfg(3, pre_vote, check_quorum));
        f.step(0, RaftMsg::Heartbeat { term: 2, commit: 0 }, &mut rng());
        let answered = sent(&mut f).iter().any(|(to, m)| *to == 0 && m.term() == 3);
        assert_eq!(answered, pre_vote || check_quorum, "pre_vote={pre_vote} check_quorum={check_quorum}");
    }
}

// --- leadership and proposals ------------------------------------------------------------------

/// Only the leader appends proposals, and not while it hands leadership over (etcd drops
/// proposals during a transfer: ErrProposalDropped).
#[test]
fn only_a_leader_not_handing_over_accepts_proposals() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    assert_eq!(net.nodes[1].propose(command(1)), None, "a follower");
    net.isolate(2);
    net.nodes[0].propose(command(2)).unwrap();
    net.deliver();
    // Member 2 lags, so the transfer waits for it to catch up.
    assert!(net.nodes[0].transfer_leader(2));
    let last = net.nodes[0].last_index();
    assert_eq!(net.nodes[0].propose(command(3)), None, "a leader handing over");
    assert_eq!(net.nodes[0].last_index(), last);
}

/// Leadership moves only to another member of the group (etcd: "bad leader transferee").
#[test]
fn a_leader_does_not_transfer_leadership_to_itself_or_to_a_non_member() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    sent(&mut net.nodes[0]).clear();
    assert!(!net.nodes[0].transfer_leader(0));
    assert!(!net.nodes[0].transfer_leader(7));
    assert_eq!((net.nodes[0].role, net.nodes[0].lead_transferee), (Role::Leader, None));
    assert!(sent(&mut net.nodes[0]).is_empty());
}

/// etcd's replicate state is optimistic: once entries are sent, the next append starts after
/// them instead of sending them again while they are in flight.
#[test]
fn appends_are_pipelined_without_resending_entries_in_flight() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.tick(0);
    let l = &mut net.nodes[0];
    sent(l).clear();
    let first = l.propose(command(1)).unwrap();
    let second = l.propose(command(2)).unwrap();
    let to_1: Vec<(Index, Vec<Index>)> = sent(l)
        .iter()
        .filter_map(|(to, m)| match m {
            RaftMsg::App { prev_index, entries, .. } if *to == 1 => {
                Some((*prev_index, entries.iter().map(|e| e.index).collect()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(to_1, vec![(first - 1, vec![first]), (first, vec![second])]);
}

// --- replication and commitment ------------------------------------------------------------------

/// A new leader knows nothing of its followers' logs (Raft 5.3: matchIndex starts at 0) and
/// must find where each one diverges; a follower that missed entries is caught up.
#[test]
fn a_new_leader_catches_up_a_follower_that_missed_entries() {
    let mut net = Net::new(3, false, false);
    net.elect(0);
    net.isolate(2);
    for k in 0..3 {
        net.nodes[0].propose(command(k)).unwrap();
        net.deliver();
    }
    // Member 1 (up to date) takes over at term 2; member 2 comes back.
    net.elect(1);
    net.cut.clear();
    for _ in 0..4 {
        net.tick(1);
    }
    assert_eq!(net.log(2), net.log(1), "the lagging follower holds the leader's log");
    assert_eq!(net.nodes[2].commit(), net.nodes[1].commit());
    assert_eq!(net.nodes[1].last_index(), 5, "three commands and two empty entries");
}

/// A follower that refuses an append (its log lacks the probed entry) is probed again at once
/// from the hint it sent, without waiting for the next heartbeat.
#[test]
fn a_refused_append_is_retried_at_once_from_the_hint() {
    let mut net = Net::new(3, false, false);
    net.elect(0);
    net.isolate(2);
    for k in 0..3 {
        net.nodes[0].propose(command(k)).unwrap();
        net.deliver();
    }
    net.cut.clear();
    // Member 1 wins term 2; its first append to member 2 probes at index 4, which 2 lacks
    // (2 holds index 1 only, and hints so).
    net.delivered.clear();
    net.elect(1);
    let probes: Vec<Index> = net
        .delivered
        .iter()
        .filter_map(|(from, to, m)| match m {
            RaftMsg::App { prev_index, .. } if (*from, *to) == (1, 2) => Some(*prev_index),
            _ => None,
        })
        .collect();
    // The first probe, at 4 (and one at 5 after the commit moved) are refused; each retry
    // probes right at the hint, index 1, not before it.
    assert_eq!((probes[0], probes.iter().min()), (4, Some(&1)), "{probes:?}");
    assert_eq!(net.log(2), net.log(1), "caught up within the election's exchange, no heartbeat needed");
}

/// A rejection of an index the follower is already known to hold is stale (reordered or
/// duplicated on the network) and is ignored (etcd's MaybeDecrTo: `rejected <= Match`).
#[test]
fn a_stale_rejection_is_ignored() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.nodes[0].propose(command(1)).unwrap();
    net.deliver();
    let l = &mut net.nodes[0];
    let matched = l.progress_mut(1).matched;
    let next = l.progress_mut(1).next;
    assert_eq!(matched, 2);
    for index in [matched - 1, matched] {
        l.step(1, RaftMsg::AppResp { term: 1, index, reject: true, hint: 0 }, &mut net.rng);
        assert!(sent(l).is_empty(), "rejection of {index}: {:?}", sent(l));
        assert_eq!((l.progress_mut(1).matched, l.progress_mut(1).next), (matched, next));
    }
}

/// A follower catching up on committed entries (so its acknowledgements commit nothing) gets
/// the next batch as soon as it acknowledges one, not one batch per heartbeat.
#[test]
fn a_lagging_follower_gets_batch_after_batch_without_waiting_for_heartbeats() {
    let mut net = Net::new(3, false, false);
    net.elect(0);
    net.nodes[0].cfg.max_entries_per_msg = 2;
    net.isolate(2);
    for k in 0..6 {
        net.nodes[0].propose(command(k)).unwrap();
        net.deliver();
    }
    assert_eq!(net.nodes[0].commit(), 7);
    net.cut.clear();
    net.tick(0);
    assert_eq!(net.log(2), net.log(0), "all three batches within one heartbeat round");
}

/// Leader transfer (Raft thesis 3.10): the leader first brings the transferee's log up to
/// date, then tells it to campaign; a lagging transferee takes over once caught up.
#[test]
fn a_transfer_to_a_lagging_member_completes_once_it_has_caught_up() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.isolate(2);
    for k in 0..2 {
        net.nodes[0].propose(command(k)).unwrap();
        net.deliver();
    }
    net.cut.clear();
    assert!(net.nodes[0].transfer_leader(2));
    net.delivered.clear();
    net.deliver();
    assert_eq!(net.leaders(), vec![2]);
    let timeout_now_at = net.delivered.iter().position(|(_, _, m)| matches!(m, RaftMsg::TimeoutNow { .. })).unwrap();
    let caught_up_at = net
        .delivered
        .iter()
        .position(|(from, _, m)| *from == 2 && matches!(m, RaftMsg::AppResp { index: 3, reject: false, .. }))
        .unwrap();
    assert!(caught_up_at < timeout_now_at, "told to campaign only once it held the whole log");
}

/// Once a follower acknowledges the snapshot it was sent, replication goes on after the
/// snapshot's index (etcd: Next = max(Match + 1, pendingSnapshot + 1)); entries the leader
/// compacted away are not asked for, so no second snapshot is sent.
#[test]
fn after_a_snapshot_replication_resumes_after_its_index() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.isolate(2);
    for k in 0..5 {
        net.nodes[0].propose(command(k)).unwrap();
        net.deliver();
    }
    let applied = net.nodes[0].commit();
    net.nodes[0].create_snapshot(applied, Arc::new(crate::etcd::Kv::default()));
    net.nodes[0].compact(applied);
    net.cut.clear();
    net.delivered.clear();
    net.tick(0);
    net.tick(0);
    let snaps = net.delivered.iter().filter(|(_, _, m)| matches!(m, RaftMsg::Snap { .. })).count();
    assert_eq!(snaps, 1);
    assert_eq!((net.nodes[2].last_index(), net.nodes[2].commit()), (applied, applied));
    // The snapshot is no longer outstanding: the next entry goes out at once.
    let i = net.nodes[0].propose(command(9)).unwrap();
    net.deliver();
    assert_eq!(net.nodes[2].last_index(), i);
}

/// Heartbeats to followers that hold the whole log are answered and that is all: appends go
/// only to followers known to miss entries.
#[test]
fn a_heartbeat_round_with_caught_up_followers_sends_no_appends() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.nodes[0].propose(command(1)).unwrap();
    net.deliver();
    net.tick(0);
    net.delivered.clear();
    net.tick(0);
    let labels: Vec<&str> = net.delivered.iter().map(|(_, _, m)| m.label()).collect();
    assert_eq!(labels, ["heartbeat", "heartbeat", "heartbeat_resp", "heartbeat_resp"]);
}

/// The App messages `r` sent to `to`: (prev_index, indices of the entries).
fn apps_to(r: &mut Raft, to: NodeId) -> Vec<(Index, Vec<Index>)> {
    sent(r)
        .iter()
        .filter_map(|(t, m)| match m {
            RaftMsg::App { prev_index, entries, .. } if *t == to => {
                Some((*prev_index, entries.iter().map(|e| e.index).collect()))
            }
            _ => None,
        })
        .collect()
}

/// An acknowledgement of the first of two appends in flight does not make the leader send the
/// second one again (etcd's replicate state keeps Next past what is in flight).
#[test]
fn acknowledging_part_of_what_is_in_flight_resends_nothing() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.tick(0);
    let l = &mut net.nodes[0];
    let first = l.propose(command(1)).unwrap();
    let second = l.propose(command(2)).unwrap();
    sent(l).clear();
    l.step(1, RaftMsg::AppResp { term: 1, index: first, reject: false, hint: 0 }, &mut net.rng);
    assert_eq!(l.commit(), first);
    // The commit moved, so appends go out to everyone, to member 1 after `second`.
    assert_eq!(apps_to(l, 1), vec![(second, vec![])]);
}

/// An acknowledgement of more than the leader is about to send (a heartbeat answer had
/// rewound `next` while appends were in flight) moves replication past what it acknowledges.
#[test]
fn an_acknowledgement_past_a_rewound_next_is_not_resent() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.tick(0);
    let l = &mut net.nodes[0];
    l.cfg.max_entries_per_msg = 2;
    for k in 0..4 {
        l.propose(command(k)).unwrap();
    }
    let last = l.last_index();
    // Member 1's heartbeat answer, sent before the appends reached it: resend from 2, two
    // entries at a time.
    l.step(1, RaftMsg::HeartbeatResp { term: 1 }, &mut net.rng);
    assert_eq!(l.progress_mut(1).next, 4);
    sent(l).clear();
    // Then its acknowledgement of the whole log, from the earlier appends.
    l.step(1, RaftMsg::AppResp { term: 1, index: last, reject: false, hint: 0 }, &mut net.rng);
    assert_eq!(apps_to(l, 1), vec![(last, vec![])], "nothing it acknowledged is sent again");
}

/// A duplicated acknowledgement is old news: no progress, no message (etcd: MaybeUpdate is
/// false when the index is not above Match). Here it would repeat a TimeoutNow in flight.
#[test]
fn a_duplicate_acknowledgement_sends_nothing() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.nodes[0].propose(command(1)).unwrap();
    net.deliver();
    let l = &mut net.nodes[0];
    let last = l.last_index();
    assert!(l.transfer_leader(2));
    assert!(matches!(sent(l).as_slice(), [(2, RaftMsg::TimeoutNow { .. })]));
    sent(l).clear();
    l.step(2, RaftMsg::AppResp { term: 1, index: last, reject: false, hint: 0 }, &mut net.rng);
    assert!(sent(l).is_empty(), "{:?}", sent(l));
}

/// An acknowledgement that moves no commit index neither rebroadcasts appends nor needs an
/// fsync (etcd: bcastAppend only when maybeCommit advanced the commit).
#[test]
fn an_acknowledgement_that_commits_nothing_new_sends_nothing() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.tick(0);
    let i = net.nodes[0].propose(command(1)).unwrap();
    net.collect();
    let mut resps = vec![];
    while let Some((from, to, m)) = net.queue.pop_front() {
        net.nodes[to as usize].step(from, m, &mut net.rng);
        resps.extend(sent(&mut net.nodes[to as usize]).drain(..).map(|(_, m)| (to, m)));
    }
    assert_eq!(resps.len(), 2, "{resps:?}");
    let (from, first) = resps.remove(0);
    net.nodes[0].step(from, first, &mut net.rng);
    assert_eq!(net.nodes[0].commit(), i, "a quorum of two");
    sent(&mut net.nodes[0]).clear();
    net.nodes[0].unstable = false;
    let (from, second) = resps.remove(0);
    net.nodes[0].step(from, second, &mut net.rng);
    assert_eq!(net.nodes[0].commit(), i);
    assert!(!net.nodes[0].unstable, "read before sent() takes the persist flag");
    assert!(sent(&mut net.nodes[0]).is_empty(), "{:?}", sent(&mut net.nodes[0]));
}

/// The commit index is part of the hard state; hearing the one it already has gives a follower
/// nothing to persist.
#[test]
fn a_heartbeat_with_a_known_commit_needs_no_fsync() {
    let mut net = Net::new(3, false, true);
    net.elect(0);
    net.nodes[0].propose(command(1)).unwrap();
    net.deliver();
    net.tick(0);
    let f = &mut net.nodes[1];
    let commit = f.commit();
    assert!(commit > 0);
    f.step(0, RaftMsg::Heartbeat { term: 1, commit }, &mut net.rng);
    assert!(!f.unstable, "nothing changed");
}

/// etcd's findConflictByTerm: a rejection hints the last index at or below the probe whose
/// term is at most the probe's, so the leader skips a whole conflicting term in one round.
#[test]
fn a_rejection_hints_past_the_followers_entries_of_later_terms() {
    // Follower: terms 1 2 2 3 3. The leader (term 4) probes at index 5 with term 2.
    let mut f = member(1, 3, None, &[1, 2, 2, 3, 3], cfg(3, false, false));
    let probe = RaftMsg::App { term: 4, prev_index: 5, prev_term: 2, entries: vec![], commit: 0 };
    f.step(0, probe, &mut rng());
    let resp = sent(&mut f).iter().find(|(to, _)| *to == 0).map(|(_, m)| m.clone());
    assert_eq!(resp, Some(RaftMsg::AppResp { term: 4, index: 5, reject: true, hint: 3 }));
}

/// Raft 5.3: only a conflicting entry truncates the log. An old append delivered late (its
/// entries all match) must not cut off the entries after it.
#[test]
fn a_late_append_whose_entries_match_truncates_nothing() {
    let mut f = member(1, 1, None, &[1, 1, 1], cfg(3, false, false));
    f.step(0, RaftMsg::Heartbeat { term: 1, commit: 0 }, &mut rng());
    f.unstable = false;
    let entries = vec![Entry { term: 1, index: 2, data: EntryData::Empty }];
    f.step(0, RaftMsg::App { term: 1, prev_index: 1, prev_term: 1, entries, commit: 0 }, &mut rng());
    assert_eq!(f.last_index(), 3);
    assert!(f.events.iter().all(|e| !matches!(e, RaftEvent::Truncated { .. })), "{:?}", f.events);
    assert!(!f.unstable);
}

/// Truncation at a conflict counts positions from the compaction point, not from index 1.
#[test]
fn a_conflict_after_compaction_replaces_the_tail_from_the_conflicting_index() {
    let snapshot = Snapshot { index: 2, term: 1, ..Snapshot::default() };
    let log: Vector<Entry> =
        [(3, 1), (4, 2), (5, 2)].iter().map(|&(index, term)| Entry { term, index, data: EntryData::Empty }).collect();
    let hs = HardState {
        term: 2,
        commit: 3,
        snapshot,
        log_start: 2,
        log_start_term: 1,
        log,
        compacted_runs: vec![(1, 1)],
        ..HardState::default()
    };
    let mut f = Raft::new(1, cfg(3, false, false), hs, &mut rng());
    let entries = vec![Entry { term: 3, index: 4, data: EntryData::Empty }];
    f.step(0, RaftMsg::App { term: 3, prev_index: 3, prev_term: 1, entries, commit: 3 }, &mut rng());
    f.check_invariants();
    let log: Vec<(Index, Term)> = f.hs.log.iter().map(|e| (e.index, e.term)).collect();
    assert_eq!(log, vec![(3, 1), (4, 3)]);
    assert!(f.events.contains(&RaftEvent::Truncated { index: 4, term: 2 }));
}

// --- what the host sees: trace labels and simulated bytes ----------------------------------------

/// `--trace messages` and the dropped-message events name Raft messages as etcd's MsgType
/// does; every type has its own label.
#[test]
fn every_message_type_has_its_own_trace_label() {
    let msgs = [
        vote(1, 0, 0, true),
        vote(1, 0, 0, false),
        RaftMsg::VoteResp { term: 1, pre: true, reject: false },
        RaftMsg::VoteResp { term: 1, pre: false, reject: false },
        RaftMsg::App { term: 1, prev_index: 0, prev_term: 0, entries: vec![], commit: 0 },
        RaftMsg::AppResp { term: 1, index: 0, reject: false, hint: 0 },
        RaftMsg::Heartbeat { term: 1, commit: 0 },
        RaftMsg::HeartbeatResp { term: 1 },
        RaftMsg::TimeoutNow { term: 1 },
        RaftMsg::Snap { term: 1, snapshot: Snapshot::default() },
    ];
    let labels: Vec<&str> = msgs.iter().map(RaftMsg::label).collect();
    assert_eq!(
        labels,
        [
            "pre_vote",
            "vote",
            "pre_vote_resp",
            "vote_resp",
            "append_entries",
            "append_entries_resp",
            "heartbeat",
            "heartbeat_resp",
            "timeout_now",
            "snapshot"
        ]
    );
}

/// The simulated network charges a message by its size: a fixed header, plus for appends a
/// per-entry header and each command's bytes, plus for snapshots the state they carry.
#[test]
fn appends_and_snapshots_cost_their_payload_on_the_wire() {
    let header = RaftMsg::Heartbeat { term: 1, commit: 0 }.size_bytes();
    let app = |entries: Vec<Entry>| RaftMsg::App { term: 1, prev_index: 0, prev_term: 0, entries, commit: 0 };
    let empty_entry = Entry { term: 1, index: 1, data: EntryData::Empty };
    let cmd = crate::etcd::Command::Client(crate::etcd::Request::Op(crate::etcd::Op::Put {
        key: "/key".into(),
        value: "a value of some length".into(),
        lease: None,
    }));
    let cmd_bytes = cmd.size_bytes();
    let cmd_entry = Entry { term: 1, index: 2, data: EntryData::Command { digest: 1, cmd: Arc::new(cmd) } };

    assert_eq!(app(vec![]).size_bytes(), header, "an empty append is a header");
    let entry_header = app(vec![empty_entry.clone()]).size_bytes() - header;
    assert!(entry_header > 0, "an entry costs its own header");
    assert_eq!(app(vec![cmd_entry.clone()]).size_bytes(), header + entry_header + cmd_bytes);
    assert_eq!(app(vec![empty_entry, cmd_entry]).size_bytes(), header + 2 * entry_header + cmd_bytes);

    let mut kv = crate::etcd::Kv::default();
    let put = crate::etcd::Command::Client(crate::etcd::Request::Op(crate::etcd::Op::Put {
        key: "/k".into(),
        value: "v".repeat(100),
        lease: None,
    }));
    let _ = kv.apply(1, &put);
    let kv_bytes = kv.size_bytes();
    assert!(kv_bytes > 0);
    let snap =
        RaftMsg::Snap { term: 1, snapshot: Snapshot { index: 1, term: 1, state: Arc::new(kv), ..Snapshot::default() } };
    assert_eq!(snap.size_bytes(), header + kv_bytes);
    let empty_kv_bytes = crate::etcd::Kv::default().size_bytes();
    assert_eq!(RaftMsg::Snap { term: 1, snapshot: Snapshot::default() }.size_bytes(), header + empty_kv_bytes);
}

/// The invariants checked after every step do catch a broken state (here a commit index past
/// the end of the log), so a run that breaks one stops there.
#[test]
#[should_panic(expected = "commit beyond log")]
fn the_invariant_check_catches_a_commit_beyond_the_log() {
    let mut r = member(0, 1, None, &[1], cfg(3, false, false));
    r.hs.commit = 2;
    r.check_invariants();
}
