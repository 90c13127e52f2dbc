use std::time::Duration;

use super::*;
use crate::etcd::Op;
use crate::node::{Effect, TimerCmd};
use crate::rng::{SimRng, Stream, stream_rng};

const ME: NodeId = 0;
const CLIENT: NodeId = 9;

struct Host {
    member: EtcdMember,
    rng: SimRng,
    effects: Vec<Effect<EtcdMsg>>,
    timers: Vec<TimerCmd<EtcdTimer>>,
    now: SimTime,
}

impl Host {
    /// A one-member cluster (it commits alone), booted from `durable`.
    fn boot(durable: HardState<Kv>) -> Host {
        let cfg = EtcdConfig {
            peers: vec![ME],
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            pre_vote: false,
            check_quorum: true,
            planted_bug: None,
        };
        let mut h = Host {
            member: EtcdMember::new(cfg, durable),
            rng: stream_rng(3, Stream::Named(11)),
            effects: vec![],
            timers: vec![],
            now: SimTime::ZERO,
        };
        h.call(|m, ctx| m.on_start(ctx));
        h
    }

    fn call(&mut self, f: impl FnOnce(&mut EtcdMember, &mut ECtx<'_>)) {
        let mut ctx =
            Ctx { now: self.now, id: ME, rng: &mut self.rng, effects: &mut self.effects, timers: &mut self.timers };
        f(&mut self.member, &mut ctx);
        self.member.check_invariants();
        self.effects.clear();
        self.timers.clear();
    }

    fn lead(&mut self) {
        for _ in 0..40 {
            self.now = self.now + Duration::from_millis(100);
            self.call(|m, ctx| m.on_timer(ctx, EtcdTimer::Tick));
            if self.member.raft().role == Role::Leader {
                return;
            }
        }
        panic!("a lone member elects itself");
    }

    fn put(&mut self, id: u64) {
        let req = Request::Op(Op::Put { key: format!("/k{}", id % 100), value: format!("v{id}"), lease: None });
        self.call(|m, ctx| m.on_message(ctx, CLIENT, EtcdMsg::Req { id, req }));
    }
}

/// Past `--snapshot-count` applied entries the member snapshots its KV and compacts its log to
/// the catch-up entries; a restart from what it persisted rebuilds the same KV from the
/// snapshot and the entries after it.
#[test]
fn the_log_is_compacted_behind_a_snapshot_and_a_restart_restores_from_it() {
    let mut h = Host::boot(HardState::default());
    h.lead();
    let puts = SNAPSHOT_COUNT_ENTRIES + 1_000;
    for id in 0..puts {
        h.put(id);
    }
    let r = h.member.raft();
    let applied = h.member.applied;
    assert_eq!(applied, r.last_index());
    let snapshot = &r.hs.snapshot;
    assert!(snapshot.index > SNAPSHOT_COUNT_ENTRIES, "one snapshot was taken: {}", snapshot.index);
    assert_eq!(r.hs.log_start, snapshot.index - SNAPSHOT_CATCHUP_ENTRIES);
    assert_eq!(r.hs.log.len() as Index, applied - r.hs.log_start, "only the entries after the compaction point");
    assert_eq!(snapshot.state.get("/k7").unwrap().value, format!("v{}", (snapshot.index - 2) / 100 * 100 + 7));
    assert!(r.entry(r.hs.log_start).is_none() && r.entry(r.hs.log_start + 1).is_some());
    assert_eq!(r.term_runs(), vec![(1, 1)], "the compacted entries' terms are remembered");

    let restarted = Host::boot(h.member.durable());
    assert_eq!(restarted.member.applied, applied);
    assert_eq!(restarted.member.kv(), h.member.kv());
    assert_eq!(h.member.kv().get("/k7").unwrap().value, format!("v{}", (puts - 1) / 100 * 100 + 7));
}

/// Group commit: while an fsync is in flight, what is proposed meanwhile waits for one next
/// fsync, issued when the first completes, whatever the number of proposals (etcd saves one
/// Ready at a time). A slow disk then lengthens each write, not a queue of writes.
#[test]
fn proposals_during_an_fsync_share_the_next_one() {
    let mut h = Host::boot(HardState::default());
    h.lead();
    let fsyncs = |h: &mut Host, f: &mut dyn FnMut(&mut Host)| {
        let before = h.member.syncs_issued;
        f(h);
        h.member.syncs_issued - before
    };
    // The last fsync of the election may still be in flight: complete it.
    let done = h.member.syncs_issued;
    h.call(|m, ctx| m.on_disk(ctx, done, Ok(())));
    assert_eq!(fsyncs(&mut h, &mut |h| h.put(1)), 1, "an idle WAL syncs at once");
    assert_eq!(fsyncs(&mut h, &mut |h| (2..50).for_each(|i| h.put(i))), 0, "49 proposals behind it: none yet");
    assert!(h.member.sync_wanted.is_some());
    let first = h.member.syncs_issued;
    assert_eq!(fsyncs(&mut h, &mut |h| h.call(|m, ctx| m.on_disk(ctx, first, Ok(())))), 1, "one for all 49");
    assert!(h.member.sync_wanted.is_none());
    let second = h.member.syncs_issued;
    assert_eq!(fsyncs(&mut h, &mut |h| h.call(|m, ctx| m.on_disk(ctx, second, Ok(())))), 0, "nothing left");
    assert_eq!(h.member.kv().get("/k49").map(|v| v.value.as_str()), Some("v49"), "all of them applied");
}
