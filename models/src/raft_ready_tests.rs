use std::sync::Arc;

use super::super::*;
use crate::rng::{Stream, stream_rng};

/// A state machine Raft knows nothing of: a counter of `u64` commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Counter(u64);

impl StateMachine for Counter {
    type Command = u64;
    fn command_size_bytes(_: &u64) -> u64 {
        8
    }
    fn state_size_bytes(&self) -> u64 {
        8
    }
}

fn follower(planted_bug: Option<PlantedBug>) -> Raft<Counter> {
    let cfg = RaftConfig {
        peers: vec![0, 1, 2],
        planted_bug,
        election_ticks: 10,
        heartbeat_ticks: 1,
        pre_vote: false,
        check_quorum: true,
        max_entries_per_msg: 64,
    };
    Raft::new(1, cfg, HardState::default(), &mut stream_rng(7, Stream::Named(1)))
}

fn vote_request(term: Term) -> RaftMsg<Counter> {
    RaftMsg::Vote { term, last_index: 0, last_term: 0, pre: false, transfer: false }
}

/// A granted vote and an acknowledged append leave only once the host reports them durable;
/// what a later call sends waits behind them, and leaves after them.
#[test]
fn votes_and_append_acks_wait_for_the_persist_they_follow_from() {
    let mut rng = stream_rng(7, Stream::Named(2));
    let mut r = follower(None);

    r.step(0, vote_request(1), &mut rng);
    let ready = r.ready();
    assert_eq!(ready.persist, Some(1), "the term and the vote changed");
    assert!(ready.msgs.is_empty(), "the vote waits for the disk: {:?}", ready.msgs);
    assert_eq!(r.persisted(1), vec![(0, RaftMsg::VoteResp { term: 1, pre: false, reject: false })]);

    let entry = Entry { term: 1, index: 1, data: EntryData::Command { digest: 7, cmd: Arc::new(5) } };
    r.step(0, RaftMsg::App { term: 1, prev_index: 0, prev_term: 0, entries: vec![entry], commit: 0 }, &mut rng);
    let ready = r.ready();
    assert_eq!(ready.persist, Some(2), "the log changed");
    assert!(ready.msgs.is_empty(), "the append ack waits for the disk: {:?}", ready.msgs);
    // Nothing durable changes, but the answer must not overtake the ack.
    r.step(0, RaftMsg::Heartbeat { term: 1, commit: 0 }, &mut rng);
    let ready = r.ready();
    assert_eq!(ready.persist, None);
    assert!(ready.msgs.is_empty(), "queued behind the ack: {:?}", ready.msgs);
    assert!(r.persisted(1).is_empty(), "an older change set releases nothing newer");
    let ack = RaftMsg::AppResp { term: 1, index: 1, reject: false, hint: 0 };
    assert_eq!(r.persisted(2), vec![(0, ack), (0, RaftMsg::HeartbeatResp { term: 1 })]);

    // With nothing waiting, what changes nothing durable leaves at once.
    r.step(0, RaftMsg::Heartbeat { term: 1, commit: 0 }, &mut rng);
    let ready = r.ready();
    assert_eq!((ready.persist, ready.msgs), (None, vec![(0, RaftMsg::HeartbeatResp { term: 1 })]));
    r.check_invariants();
}

/// The planted bug is the mechanism's hole: a granted vote leaves before the vote is durable.
#[test]
fn a_planted_not_durable_vote_leaves_before_the_persist() {
    let mut r = follower(Some(PlantedBug::VoteNotDurable));
    r.step(0, vote_request(1), &mut stream_rng(7, Stream::Named(2)));
    let ready = r.ready();
    assert_eq!(ready.persist, Some(1));
    assert_eq!(ready.msgs, vec![(0, RaftMsg::VoteResp { term: 1, pre: false, reject: false })]);
    assert!(r.persisted(1).is_empty());
}
