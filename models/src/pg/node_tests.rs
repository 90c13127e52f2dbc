//! The PostgreSQL server through its sans-IO interface: a hand-driven cluster where messages
//! arrive at once and every fsync completes at once, so each test controls exactly which
//! feedback the primary has seen.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::*;
use crate::node::{Ctx, Effect, Model, NodeId, TimerCmd};
use crate::rng::{SimRng, Stream, stream_rng};
use crate::time::SimTime;
use crate::trace::{ReplicationState, TraceKind};

const P: NodeId = 0;
const S1: NodeId = 1;
const S2: NodeId = 2;

struct Cluster {
    nodes: Vec<PgNode>,
    now: SimTime,
    rng: SimRng,
    timers: Vec<BTreeMap<PgTimer, SimTime>>,
    inbox: VecDeque<(NodeId, NodeId, PgMsg)>,
    disk: VecDeque<(NodeId, u64)>,
    /// Messages between these pairs are lost.
    cut: Vec<(NodeId, NodeId)>,
    traces: Vec<(NodeId, TraceKind)>,
    counts: BTreeMap<&'static str, u64>,
    /// Messages to nodes outside the cluster (clients of the request path).
    outside: Vec<(NodeId, PgMsg)>,
    /// Every message put on the wire between the servers, lost ones included.
    wire: Vec<(NodeId, NodeId, PgMsg)>,
    /// Observations of metrics: (metric, value).
    observed: Vec<(&'static str, f64)>,
}

fn cfg(id: NodeId, sync: &str, level: SyncLevel) -> PgConfig {
    PgConfig {
        cluster: "c".into(),
        names: [(P, "p".to_string()), (S1, "s1".to_string()), (S2, "s2".to_string())].into_iter().collect(),
        initial_primary: P,
        initial_upstream: if id == P { None } else { Some(P) },
        synchronous_standby_names: SyncStandbyNames::parse(sync).unwrap(),
        wal_sender_timeout: Duration::from_secs(60),
        wal_receiver_timeout: Duration::from_secs(60),
        wal_receiver_status_interval: Duration::from_secs(10),
        wal_retrieve_retry_interval: Duration::from_secs(5),
        flow_tick: Duration::from_millis(100),
        workload: Workload {
            write_tps: 100.0,
            bytes_per_commit: 100,
            write_amplification: 1.0,
            levels: vec![(level, 1.0)],
            client_timeout: Duration::from_secs(5),
            standby_read_tps: 0.0,
            phases: vec![],
        },
        apply_bytes_per_s: 1e6,
        capacity: Capacity::default(),
        stale_read_lag: Duration::from_secs(60),
        database_bytes: 1 << 30,
        wal_retained_bytes: 1 << 30,
        checkpoint_timeout: Duration::from_secs(300),
        max_inflight_bytes: 1 << 20,
        synchronous_commit: SyncLevel::On,
    }
}

impl Cluster {
    fn new(sync: &str, level: SyncLevel) -> Cluster {
        let mut c = Cluster {
            nodes: (0..3).map(|i| PgNode::new(cfg(i, sync, level), PgDurable::default())).collect(),
            now: SimTime::ZERO,
            rng: stream_rng(3, Stream::Named(9)),
            timers: vec![BTreeMap::new(); 3],
            inbox: VecDeque::new(),
            disk: VecDeque::new(),
            cut: vec![],
            traces: vec![],
            counts: BTreeMap::new(),
            outside: vec![],
            wire: vec![],
            observed: vec![],
        };
        for i in 0..3 {
            c.call(i, |m, ctx| m.on_start(ctx));
        }
        c
    }

    fn call(&mut self, id: NodeId, f: impl FnOnce(&mut PgNode, &mut Ctx<'_, PgMsg, PgTimer>)) {
        let (mut effects, mut tcmds) = (Vec::new(), Vec::new());
        let mut ctx = Ctx { now: self.now, id, rng: &mut self.rng, effects: &mut effects, timers: &mut tcmds };
        f(&mut self.nodes[id as usize], &mut ctx);
        self.nodes[id as usize].check_invariants();
        for t in tcmds {
            match t {
                TimerCmd::Set { timer, at } => self.timers[id as usize].insert(timer, at),
                TimerCmd::Cancel { timer } => self.timers[id as usize].remove(&timer),
            };
        }
        for e in effects {
            match e {
                Effect::Send { to, msg, .. } => self.inbox.push_back((id, to, msg)),
                Effect::Disk { token, .. } => self.disk.push_back((id, token)),
                Effect::Trace { kind, .. } => self.traces.push((id, kind)),
                Effect::Count { metric, delta, .. } => *self.counts.entry(metric).or_default() += delta,
                Effect::Observe { metric, value, .. } => self.observed.push((metric, value)),
            }
        }
    }

    /// Delivers messages and completes fsyncs until nothing is pending.
    fn settle(&mut self) {
        loop {
            if let Some((from, to, msg)) = self.inbox.pop_front() {
                if to >= 3 {
                    self.outside.push((to, msg));
                    continue;
                }
                self.wire.push((from, to, msg.clone()));
                if !self.cut.contains(&(from, to)) {
                    self.call(to, |m, ctx| m.on_message(ctx, from, msg));
                }
            } else if let Some((id, token)) = self.disk.pop_front() {
                self.call(id, |m, ctx| m.on_disk(ctx, token, Ok(())));
            } else {
                return;
            }
        }
    }

    /// Advances time to `until`, firing timers in order and settling after each.
    fn run_until(&mut self, until_ms: u64) {
        let until = SimTime(until_ms * 1_000_000);
        loop {
            self.settle();
            let next = (0..3u32)
                .flat_map(|i| self.timers[i as usize].iter().map(move |(t, at)| (*at, i, *t)))
                .filter(|(at, _, _)| *at <= until)
                .min();
            let Some((at, id, timer)) = next else { break };
            self.timers[id as usize].remove(&timer);
            self.now = self.now.max(at);
            self.call(id, |m, ctx| m.on_timer(ctx, timer));
        }
        self.now = until;
    }

    fn acked(&self, level: SyncLevel) -> u64 {
        self.counts.get(acked_metric(level)).copied().unwrap_or(0)
    }
    fn timed_out(&self, level: SyncLevel) -> u64 {
        self.counts.get(timed_out_metric(level)).copied().unwrap_or(0)
    }
    fn isolate(&mut self, id: NodeId) {
        for j in 0..3 {
            if j != id {
                self.cut.push((id, j));
                self.cut.push((j, id));
            }
        }
    }
}

#[test]
fn off_and_local_ack_without_any_standby() {
    for level in [SyncLevel::Off, SyncLevel::Local] {
        let mut c = Cluster::new("FIRST 1 (s1)", level);
        c.isolate(S1);
        c.isolate(S2);
        c.run_until(2000);
        assert!(c.acked(level) >= 150, "{level:?}: {} acked", c.acked(level));
    }
}

#[test]
fn on_waits_for_the_named_standby_and_only_it() {
    let mut c = Cluster::new("FIRST 1 (s1)", SyncLevel::On);
    c.run_until(2000);
    let with_s1 = c.acked(SyncLevel::On);
    assert!(with_s1 >= 150, "s1 streams and confirms: {with_s1}");
    // s1 goes silent; s2 still confirms everything but is not named: commits block, then time out.
    c.isolate(S1);
    c.run_until(4000);
    let during = c.acked(SyncLevel::On) - with_s1;
    assert!(during <= 20, "at most what was in flight: {during}");
    c.run_until(12_000);
    assert!(c.timed_out(SyncLevel::On) > 300, "clients give up after client_timeout");
}

#[test]
fn pg_stat_replication_shows_sync_only_for_named_streaming_standbys() {
    let mut c = Cluster::new("FIRST 1 (s1)", SyncLevel::On);
    assert!(c.nodes[0].sync_standbys().is_empty(), "nobody connected yet");
    c.run_until(2000);
    assert_eq!(c.nodes[0].sync_standbys(), vec!["s1".to_string()], "s2 streams too, but is async");
    assert!(c.nodes[1].sync_standbys().is_empty(), "a standby reports none");
    // What is in force counts, not what anyone asked for.
    c.call(0, |m, ctx| {
        m.on_command(ctx, PgCommand::SetSynchronousStandbyNames(SyncStandbyNames::parse("2 (s1, s2)").unwrap()))
    });
    assert_eq!(c.nodes[0].sync_standbys(), vec!["s1".to_string(), "s2".to_string()]);
    c.call(0, |m, ctx| {
        m.on_command(ctx, PgCommand::SetSynchronousStandbyNames(SyncStandbyNames::parse("ANY 1 (s1, s2)").unwrap()))
    });
    assert!(c.nodes[0].sync_standbys().is_empty(), "ANY standbys are 'quorum', not 'sync'");
}

#[test]
fn what_a_standby_confirms_survives_its_crash() {
    let mut c = Cluster::new("FIRST 1 (s1)", SyncLevel::On);
    c.run_until(1000);
    // From now on s1 gets nothing but what the test sends.
    c.cut.push((P, S1));
    c.run_until(1100);
    let (tl, start) = (c.nodes[S1 as usize].timeline(), c.nodes[S1 as usize].flushed());
    let end = start + 4096;
    let wal = PgMsg::WalData { tl, start, end, sent_at: c.now, upstream_flushed: end };
    c.call(S1, |m, ctx| m.on_message(ctx, P, wal));
    // The fsync of [start, end) is pending: the runner snapshots the durable state now and
    // keeps it when the fsync completes, after which the standby confirms `end`.
    let durable = c.nodes[S1 as usize].durable();
    let (_, _, flushed, _) = durable.state.expect("a state");
    assert_eq!(flushed, end, "a restart from this snapshot keeps what the fsync made durable");
}

#[test]
fn any_quorum_lets_either_standby_confirm() {
    let mut c = Cluster::new("ANY 1 (s1, s2)", SyncLevel::On);
    c.run_until(1000);
    c.isolate(S1);
    let before = c.acked(SyncLevel::On);
    c.run_until(3000);
    assert!(c.acked(SyncLevel::On) - before >= 150, "s2 alone satisfies ANY 1");
}

#[test]
fn empty_names_make_synchronous_levels_local() {
    let mut c = Cluster::new("", SyncLevel::RemoteApply);
    c.isolate(S1);
    c.isolate(S2);
    c.run_until(2000);
    assert!(c.acked(SyncLevel::RemoteApply) >= 150);
    assert!(c.traces.iter().all(|(_, t)| !matches!(t, TraceKind::PgCommitsAcked { synced: true, .. })));
}

#[test]
fn remote_apply_needs_replay() {
    // Replay is held back by a tiny apply rate, so flushes are confirmed but replay lags.
    let mut c = Cluster::new("FIRST 1 (s1)", SyncLevel::RemoteApply);
    c.nodes[S1 as usize].cfg.apply_bytes_per_s = 1.0;
    c.run_until(2000);
    assert!(c.acked(SyncLevel::RemoteApply) < 20, "{}", c.acked(SyncLevel::RemoteApply));
    let mut d = Cluster::new("FIRST 1 (s1)", SyncLevel::On);
    d.nodes[S1 as usize].cfg.apply_bytes_per_s = 1.0;
    d.run_until(2000);
    assert!(d.acked(SyncLevel::On) >= 150, "on needs only the flush");
}

#[test]
fn promotion_switches_timeline_and_the_old_primary_has_diverged() {
    let mut c = Cluster::new("", SyncLevel::Local);
    c.run_until(1000);
    // The primary is cut off and keeps writing; s1 is promoted.
    c.isolate(P);
    c.run_until(2000);
    c.call(S1, |m, ctx| m.on_command(ctx, PgCommand::Promote { accept_data_loss: true }));
    c.run_until(3000);
    assert!(c.nodes[S1 as usize].is_primary());
    let tl2 = c.nodes[S1 as usize].timeline();
    assert_eq!(tl2, Timeline { tli: 2, origin: S1 });
    let switch = c.traces.iter().find_map(|(_, t)| match t {
        TraceKind::PgPromoted { switch_lsn, .. } => Some(*switch_lsn),
        _ => None,
    });
    let switch = switch.expect("promotion traced");
    assert!(c.nodes[P as usize].flushed() > switch, "the old primary wrote past the switch point");
    // Repointed at the new primary, the old one is refused: it has diverged.
    c.cut.clear();
    c.call(P, |m, ctx| m.on_command(ctx, PgCommand::Fence));
    c.nodes[P as usize] = {
        let d = c.nodes[P as usize].durable();
        let mut cfg = cfg(P, "", SyncLevel::Local);
        cfg.initial_upstream = Some(S1);
        let (tl, h, f, _) = d.state.unwrap();
        PgNode::new(cfg, PgDurable { state: Some((tl, h, f, Some(S1))), synchronous_standby_names: None })
    };
    c.call(P, |m, ctx| m.on_start(ctx));
    c.settle();
    assert!(
        c.traces.iter().any(|(n, t)| *n == P
            && matches!(t, TraceKind::PgReplication { state, .. } if matches!(state, ReplicationState::Refused(_)))),
        "the diverged server is refused"
    );
    // s2 had not passed the switch point: it follows the new timeline.
    c.call(S2, |m, ctx| m.on_command(ctx, PgCommand::Follow { upstream: S1 }));
    c.run_until(4000);
    assert_eq!(c.nodes[S2 as usize].timeline(), tl2);
}

#[test]
fn a_rebuild_whose_source_did_not_answer_asks_again() {
    let mut c = Cluster::new("", SyncLevel::Local);
    c.run_until(1000);
    // S2 is rebuilt from S1, but the query (or its answer) is lost while the link is cut.
    c.cut.push((S2, S1));
    let method = RebuildMethod::PgRewindFromDivergence;
    c.call(S2, |m, ctx| m.on_command(ctx, PgCommand::Rebuild { method, upstream: S1, bytes_per_s: 1 << 30 }));
    c.run_until(1500);
    let phases = |c: &Cluster| {
        c.traces
            .iter()
            .filter_map(|(n, t)| match t {
                TraceKind::PgRebuild { phase, .. } if *n == S2 => Some(phase.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(phases(&c).is_empty(), "nothing answered yet: {:?}", phases(&c));
    c.cut.clear();
    // Asked again after wal_retrieve_retry_interval (5 s): the copy starts, then finishes.
    c.run_until(7_000);
    assert_eq!(phases(&c), ["started"]);
    let copy_seconds = c
        .traces
        .iter()
        .find_map(|(_, t)| match t {
            TraceKind::PgRebuild { seconds, .. } => Some(*seconds),
            _ => None,
        })
        .unwrap();
    c.run_until(7_000 + (copy_seconds * 1000.0) as u64 + 1_000);
    assert_eq!(phases(&c), ["started", "finished"]);
    assert_eq!(c.nodes[S2 as usize].timeline(), c.nodes[S1 as usize].timeline());
}

#[test]
fn a_standby_can_stream_from_another_standby() {
    // Cascading: s2 follows s1, which streams from the primary.
    let mut c = Cluster::new("", SyncLevel::Local);
    c.call(S2, |m, ctx| m.on_command(ctx, PgCommand::Follow { upstream: S1 }));
    c.cut.push((P, S2));
    c.cut.push((S2, P));
    c.run_until(3000);
    let (p, s1, s2) = (c.nodes[P as usize].flushed(), c.nodes[S1 as usize].flushed(), c.nodes[S2 as usize].flushed());
    assert!(s2 > 0 && s2 <= s1 && s1 <= p, "p {p} >= s1 {s1} >= s2 {s2} > 0");
    assert!(s2 + 100 * 100 >= p, "s2 is at most a tick or two behind: {p} vs {s2}");
}

mod requests {
    use super::*;
    use crate::flow::{Cohort, ErrorKind, FlowMsg, Outcome, ReqKind, Route};

    const CLIENT: NodeId = 7;

    fn send(c: &mut Cluster, to: NodeId, seq: u64, kind: ReqKind, count: u64) {
        send_with_deadline(c, to, seq, kind, count, SimTime::MAX);
    }

    fn send_with_deadline(c: &mut Cluster, to: NodeId, seq: u64, kind: ReqKind, count: u64, deadline: SimTime) {
        let cohort = Cohort { client: CLIENT, seq, tenant: 0, kind, count, created: c.now, deadline };
        let msg = PgMsg::Flow(FlowMsg::Requests { cohort, route: Route::new(CLIENT) });
        c.call(to, |m, ctx| m.on_message(ctx, CLIENT, msg));
    }

    /// Outcomes received by the client, summed per cohort sequence number.
    fn outcomes(c: &Cluster) -> BTreeMap<u64, Outcome> {
        let mut by_seq: BTreeMap<u64, Outcome> = BTreeMap::new();
        for (to, msg) in &c.outside {
            if let (CLIENT, PgMsg::Flow(FlowMsg::Outcome { cohort, outcome, route })) = (*to, msg) {
                assert_eq!(route.last(), Some(CLIENT), "outcomes retrace the route");
                by_seq.entry(cohort.seq).or_default().add(outcome);
            }
        }
        by_seq
    }

    fn quiet(sync: &str) -> Cluster {
        let mut c = Cluster::new(sync, SyncLevel::On);
        for n in &mut c.nodes {
            n.cfg.workload.write_tps = 0.0;
        }
        c.run_until(1000);
        c
    }

    #[test]
    fn writes_are_answered_once_the_synchronous_standby_confirms() {
        let mut c = quiet("FIRST 1 (s1)");
        send(&mut c, P, 1, ReqKind::Write, 40);
        c.run_until(1500);
        assert_eq!(outcomes(&c)[&1], Outcome::ok(40), "s1 streams: all 40 commits confirmed");
        // Cut the synchronous standby: commits wait, then the client's timeout ends them.
        c.isolate(S1);
        send(&mut c, P, 2, ReqKind::Write, 25);
        c.run_until(4000);
        assert!(!outcomes(&c).contains_key(&2), "no answer while s1 cannot confirm");
        c.run_until(8000);
        assert_eq!(outcomes(&c)[&2], Outcome::failed(ErrorKind::TimedOut, 25));
    }

    #[test]
    fn a_standby_serves_reads_and_refuses_writes_as_read_only() {
        let mut c = quiet("");
        send(&mut c, S1, 1, ReqKind::Read, 30);
        send(&mut c, S1, 2, ReqKind::Write, 5);
        c.run_until(1500);
        let got = outcomes(&c);
        assert_eq!(got[&1], Outcome::ok(30));
        assert_eq!(got[&2], Outcome::failed(ErrorKind::ReadOnly, 5));
        // A fenced server refuses, and the sessions it held end.
        send(&mut c, P, 3, ReqKind::Write, 10);
        c.call(P, |m, ctx| m.on_command(ctx, PgCommand::Fence));
        send(&mut c, P, 4, ReqKind::Read, 3);
        c.run_until(2000);
        let got = outcomes(&c);
        assert_eq!(got[&3], Outcome::failed(ErrorKind::ConnectionClosed, 10));
        assert_eq!(got[&4], Outcome::failed(ErrorKind::Refused, 3));
        assert_eq!(c.nodes[P as usize].status().role, PgRoleKind::Fenced);
    }

    #[test]
    fn a_cold_overloaded_server_serves_less_than_it_is_offered() {
        let mut c = quiet("");
        let node = &mut c.nodes[P as usize];
        node.cfg.capacity = Capacity { cores: 1, read_service: Duration::from_millis(1), ..Capacity::default() };
        node.cfg.capacity.max_connections = 1_000_000;
        // 1 core at 1 ms a read, cold (30 %): about 300 reads/s; offer 2,000 in one go.
        send(&mut c, P, 1, ReqKind::Read, 2000);
        c.run_until(2000);
        let ok = outcomes(&c).get(&1).map_or(0, |o| o.ok);
        assert!(ok > 50 && ok < 600, "served {ok} of 2000 in a second");
    }

    #[test]
    fn a_request_that_arrives_before_its_client_gives_up_is_served_a_stale_one_is_dropped() {
        let mut c = quiet("");
        // Handed over 1 ms before the client's deadline (PgBouncer's queue ate the rest): a
        // backend starts it on arrival, so it is served although the next service tick is later.
        let deadline = c.now + Duration::from_millis(1);
        send_with_deadline(&mut c, S1, 1, ReqKind::Read, 30, deadline);
        // A server with room for about 300 reads a second, offered 2,000 with 200 ms to live:
        // what waits in its queue past the deadline is dropped, as the client closed the session.
        let node = &mut c.nodes[P as usize];
        node.cfg.capacity = Capacity { cores: 1, read_service: Duration::from_millis(1), ..Capacity::default() };
        node.cfg.capacity.max_connections = 1_000_000;
        let deadline = c.now + Duration::from_millis(200);
        send_with_deadline(&mut c, P, 2, ReqKind::Read, 2000, deadline);
        c.run_until(2000);
        let got = outcomes(&c);
        assert_eq!(got[&1], Outcome::ok(30));
        let dropped = got[&2].error(ErrorKind::TimedOut);
        assert!(got[&2].ok < 200 && dropped > 1800, "{:?}", got[&2]);
        assert_eq!(c.counts.get(super::super::serve::METRIC_REQUESTS_DROPPED).copied(), Some(dropped));
    }

    #[test]
    fn health_checks_pass_only_while_serving() {
        let mut c = quiet("");
        c.call(P, |m, ctx| m.on_message(ctx, CLIENT, PgMsg::Flow(FlowMsg::Check { seq: 1 })));
        c.call(P, |m, ctx| m.on_command(ctx, PgCommand::Fence));
        c.call(P, |m, ctx| m.on_message(ctx, CLIENT, PgMsg::Flow(FlowMsg::Check { seq: 2 })));
        c.settle();
        let replies: Vec<_> = c
            .outside
            .iter()
            .filter_map(|(_, m)| match m {
                PgMsg::Flow(FlowMsg::CheckReply { seq, ok }) => Some((*seq, *ok)),
                _ => None,
            })
            .collect();
        assert_eq!(replies, vec![(1, true), (2, false)]);
    }
}

/// A server restarted after a crash comes back with the synchronous_standby_names its keeper
/// last wrote to the configuration file, not the one it was first started with: a primary
/// whose keeper had replaced s1 by s2 must not, once restarted, take s1's confirmation as
/// synchronous (the sync-standby-then-primary swarm's seed 339: an old primary back from a
/// crash counted a reconnecting standby outside its set as synchronous and acknowledged
/// commits the promoted server never had).
#[test]
fn a_restarted_server_keeps_the_synchronous_standby_names_its_keeper_wrote() {
    let mut c = Cluster::new("FIRST 1 (s1)", SyncLevel::On);
    c.run_until(500);
    let names = SyncStandbyNames::parse("FIRST 1 (s2)").unwrap();
    c.call(P, |m, ctx| m.on_command(ctx, PgCommand::SetSynchronousStandbyNames(names.clone())));
    // The runner snapshots the durable state when that fsync is requested.
    let durable = c.nodes[P as usize].durable();
    assert_eq!(durable.synchronous_standby_names, Some(names.clone()), "written with the configuration");
    let mut restarted = PgNode::new(cfg(P, "FIRST 1 (s1)", SyncLevel::On), durable);
    let (mut effects, mut timers) = (Vec::new(), Vec::new());
    let mut rng = stream_rng(4, Stream::Named(9));
    let mut ctx = Ctx { now: c.now, id: P, rng: &mut rng, effects: &mut effects, timers: &mut timers };
    restarted.on_start(&mut ctx);
    assert_eq!(restarted.synchronous_standby_names(), names.as_ref(), "not the first start's FIRST 1 (s1)");
    // Never changed: a restart keeps the configured value.
    let fresh = Cluster::new("FIRST 1 (s1)", SyncLevel::On).nodes[S1 as usize].durable();
    assert_eq!(fresh.synchronous_standby_names, None);
}

/// pg_commit_ms is the wait of each commit in milliseconds: none for `local` when the fsync
/// completes at once, at least a flow tick for `remote_apply` (the standby replays at its
/// next tick and reports replay with its next status).
#[test]
fn commit_latency_is_observed_in_milliseconds() {
    let commit_ms = |c: &Cluster| -> Vec<f64> {
        c.observed.iter().filter(|(m, _)| *m == METRIC_COMMIT_MS).map(|(_, v)| *v).collect()
    };
    let mut local = Cluster::new("", SyncLevel::Local);
    local.run_until(1000);
    let ms = commit_ms(&local);
    assert!(!ms.is_empty() && ms.iter().all(|&v| v == 0.0), "{ms:?}");

    let mut apply = Cluster::new("FIRST 1 (s1)", SyncLevel::RemoteApply);
    apply.run_until(2000);
    let ms = commit_ms(&apply);
    assert!(!ms.is_empty(), "remote_apply commits acknowledged");
    let (min, max) = ms.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(min >= 100.0 && max <= 5000.0, "between a flow tick and the client timeout: {min}..{max} ms");
}

/// The lag in seconds is measured from when the primary flushed the WAL a standby replays:
/// the time of the first flush that covered that LSN.
#[test]
fn the_flush_time_of_an_lsn_is_that_of_the_first_flush_covering_it() {
    let mut n = PgNode::new(cfg(P, "", SyncLevel::Local), PgDurable::default());
    let t = |s: u64| SimTime(s * 1_000_000_000);
    n.flush_times = [(100, t(1)), (200, t(2)), (300, t(3))].into_iter().collect();
    let at: Vec<SimTime> = [1, 100, 101, 150, 200, 201, 300].iter().map(|&l| n.flush_time_of(l)).collect();
    assert_eq!(at, [t(1), t(1), t(2), t(2), t(2), t(3), t(3)]);
}

/// A walsender resends what a standby has not confirmed after a second without progress (TCP
/// would retransmit). Confirmations that move the standby's write position restart that
/// second; ones that confirm nothing new (status replies) do not.
#[test]
fn wal_is_resent_only_after_a_second_without_confirmed_progress() {
    let mut c = Cluster::new("", SyncLevel::Local);
    c.run_until(1000);
    // From now on the WAL to s1 is lost; s1 confirms only what the test makes it confirm.
    c.cut.push((P, S1));
    c.run_until(1300);
    let ws = |c: &Cluster| c.nodes[P as usize].walsenders[&S1].clone();
    assert!(ws(&c).sent > ws(&c).write, "WAL in flight");
    // Whether WAL was sent again since `mark` (wire position, what had been sent by then).
    let resent_since = |c: &Cluster, (from, sent): (usize, Lsn)| {
        let mut end_so_far = sent;
        c.wire[from..].iter().any(|(f, t, m)| match m {
            PgMsg::WalData { start, end, .. } if (*f, *t) == (P, S1) => {
                let resend = *start < end_so_far;
                end_so_far = end_so_far.max(*end);
                resend
            }
            _ => false,
        })
    };
    let confirm = |c: &mut Cluster, write: Lsn| {
        let w = ws(c);
        let msg = PgMsg::Feedback { write, flush: w.flush, replay: w.replay };
        c.call(P, |m, ctx| m.on_message(ctx, S1, msg));
    };
    // s1 confirms a little more at 1.3 s: no resend up to 2.3 s (ticks come every 100 ms at
    // a phase above 0, so the first one more than a second later is after 2.3 s).
    let mark = (c.wire.len(), ws(&c).sent);
    let write = ws(&c).write + 1;
    confirm(&mut c, write);
    c.run_until(2300);
    assert!(!resent_since(&c, mark), "progress at 1.3 s restarted the second");
    // A status reply at 2.3 s confirms nothing new: the resend still comes at the next tick.
    let mark = (c.wire.len(), ws(&c).sent);
    confirm(&mut c, write);
    c.run_until(2600);
    assert!(resent_since(&c, mark), "a reply without progress does not postpone the resend");
}

/// Replay lag in seconds (pg_stat_replication's replay_lag): how long ago the primary flushed
/// the WAL the standby replayed last. A standby replaying at 90% of the WAL rate falls behind
/// by a tenth of the elapsed time: a second after ten seconds, not ten.
#[test]
fn a_lagging_standby_reports_how_long_ago_its_replayed_wal_was_flushed() {
    let mut c = Cluster::new("", SyncLevel::Local);
    // 100 commits/s of 100 bytes: 10 kB/s of WAL; the standbys replay 9 kB/s.
    for s in [S1, S2] {
        c.nodes[s as usize].cfg.apply_bytes_per_s = 9_000.0;
    }
    c.run_until(10_000);
    let lag_s: Vec<f64> = c.observed.iter().filter(|(m, _)| *m == METRIC_LAG_S).map(|(_, v)| *v).collect();
    let last = *lag_s.last().expect("observed every second");
    let max = lag_s.iter().copied().fold(0.0, f64::max);
    assert!((0.5..=2.0).contains(&last) && max <= 2.0, "last {last} s, max {max} s");
}
