//! The probe: every node pings its targets periodically and measures round trips and losses.
//! It exercises the engine (messages, timers, disk, crashes) and stays as a test fixture.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;

use crate::node::{Ctx, DiskError, DiskOp, Label, Message, Model, NodeId};
use crate::time::SimTime;

#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub targets: Vec<NodeId>,
    pub interval: Duration,
    /// A ping without a pong after this long counts as lost.
    pub timeout: Duration,
    pub payload_bytes: u64,
    /// Issue an fsync this often and record its latency (`None`: no disk use).
    pub fsync_interval: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeMsg {
    Ping { seq: u64, sent_at: SimTime, bytes: u64 },
    Pong { seq: u64, sent_at: SimTime, bytes: u64 },
}

impl Message for ProbeMsg {
    fn size_bytes(&self) -> u64 {
        match self {
            ProbeMsg::Ping { bytes, .. } | ProbeMsg::Pong { bytes, .. } => *bytes,
        }
    }
    fn label(&self) -> &'static str {
        match self {
            ProbeMsg::Ping { .. } => "ping",
            ProbeMsg::Pong { .. } => "pong",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeTimer {
    Tick,
    Fsync,
}

pub const METRIC_SENT: &str = "probe_sent";
pub const METRIC_RECEIVED: &str = "probe_received";
pub const METRIC_TIMED_OUT: &str = "probe_timed_out";
pub const METRIC_RTT_MS: &str = "probe_rtt_ms";
pub const METRIC_FSYNC_MS: &str = "disk_fsync_ms";
pub const METRIC_DISK_ERRORS: &str = "disk_errors";

/// Upper bound on pings awaiting a pong; a probe never needs more (bounded queues).
const OUTSTANDING_MAX: usize = 1 << 16;

pub struct Probe {
    cfg: ProbeConfig,
    next_seq: u64,
    /// (target, seq) -> send time.
    outstanding: BTreeMap<(NodeId, u64), SimTime>,
    /// fsync token -> issue time.
    fsyncs: BTreeMap<u64, SimTime>,
    next_fsync_token: u64,
}

type PCtx<'a> = Ctx<'a, ProbeMsg, ProbeTimer>;

impl Probe {
    pub fn new(cfg: ProbeConfig) -> Probe {
        assert!(!cfg.interval.is_zero(), "probe interval must be positive");
        assert!(cfg.timeout >= cfg.interval / 2, "probe timeout shorter than half an interval");
        Probe { cfg, next_seq: 0, outstanding: BTreeMap::new(), fsyncs: BTreeMap::new(), next_fsync_token: 0 }
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn expire(&mut self, ctx: &mut PCtx<'_>) {
        let deadline = ctx.now;
        let timeout = self.cfg.timeout;
        let expired: Vec<(NodeId, u64)> =
            self.outstanding.iter().filter(|(_, sent_at)| **sent_at + timeout <= deadline).map(|(k, _)| *k).collect();
        for key in expired {
            self.outstanding.remove(&key);
            ctx.count(METRIC_TIMED_OUT, Label::Pair(ctx.id, key.0), 1);
        }
    }
}

impl Model for Probe {
    type Msg = ProbeMsg;
    type Timer = ProbeTimer;
    type Durable = ();

    fn on_start(&mut self, ctx: &mut PCtx<'_>) {
        // A random phase keeps nodes from pinging in lockstep.
        let phase_ns = ctx.rng.gen_range(0..self.cfg.interval.as_nanos() as u64);
        ctx.set_timer(ProbeTimer::Tick, Duration::from_nanos(phase_ns));
        if let Some(every) = self.cfg.fsync_interval {
            ctx.set_timer(ProbeTimer::Fsync, every);
        }
    }

    fn on_message(&mut self, ctx: &mut PCtx<'_>, from: NodeId, msg: ProbeMsg) {
        match msg {
            ProbeMsg::Ping { seq, sent_at, bytes } => ctx.send(from, ProbeMsg::Pong { seq, sent_at, bytes }),
            ProbeMsg::Pong { seq, sent_at, .. } => {
                // A pong for a ping that already timed out (or predates a restart) is ignored.
                if self.outstanding.remove(&(from, seq)).is_some() {
                    let rtt = ctx.now - sent_at;
                    ctx.count(METRIC_RECEIVED, Label::Pair(ctx.id, from), 1);
                    ctx.observe(METRIC_RTT_MS, Label::Pair(ctx.id, from), rtt.as_secs_f64() * 1e3);
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut PCtx<'_>, timer: ProbeTimer) {
        match timer {
            ProbeTimer::Tick => {
                self.expire(ctx);
                for i in 0..self.cfg.targets.len() {
                    let to = self.cfg.targets[i];
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.outstanding.insert((to, seq), ctx.now);
                    ctx.count(METRIC_SENT, Label::Pair(ctx.id, to), 1);
                    ctx.send(to, ProbeMsg::Ping { seq, sent_at: ctx.now, bytes: self.cfg.payload_bytes });
                }
                ctx.set_timer(ProbeTimer::Tick, self.cfg.interval);
            }
            ProbeTimer::Fsync => {
                let token = self.next_fsync_token;
                self.next_fsync_token += 1;
                self.fsyncs.insert(token, ctx.now);
                ctx.disk(DiskOp::Fsync, token);
                if let Some(every) = self.cfg.fsync_interval {
                    ctx.set_timer(ProbeTimer::Fsync, every);
                }
            }
        }
    }

    fn on_disk(&mut self, ctx: &mut PCtx<'_>, token: u64, result: Result<(), DiskError>) {
        let issued = self.fsyncs.remove(&token).expect("completion for an fsync never issued");
        match result {
            Ok(()) => ctx.observe(METRIC_FSYNC_MS, Label::Node(ctx.id), (ctx.now - issued).as_secs_f64() * 1e3),
            Err(_) => ctx.count(METRIC_DISK_ERRORS, Label::Node(ctx.id), 1),
        }
    }

    fn check_invariants(&self) {
        assert!(self.outstanding.len() <= OUTSTANDING_MAX, "probe outstanding pings unbounded");
        assert!(self.outstanding.keys().all(|(_, seq)| *seq < self.next_seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Effect, TimerCmd};
    use crate::rng::{Stream, stream_rng};

    struct Harness {
        rng: crate::rng::SimRng,
        effects: Vec<Effect<ProbeMsg>>,
        timers: Vec<TimerCmd<ProbeTimer>>,
    }

    impl Harness {
        fn new() -> Harness {
            Harness { rng: stream_rng(1, Stream::Named(0)), effects: vec![], timers: vec![] }
        }
        fn ctx(&mut self, now_ms: u64, id: NodeId) -> PCtx<'_> {
            Ctx {
                now: SimTime(now_ms * 1_000_000),
                id,
                rng: &mut self.rng,
                effects: &mut self.effects,
                timers: &mut self.timers,
            }
        }
    }

    fn cfg() -> ProbeConfig {
        ProbeConfig {
            targets: vec![1, 2],
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            payload_bytes: 64,
            fsync_interval: None,
        }
    }

    #[test]
    fn start_arms_tick_within_one_interval() {
        let mut h = Harness::new();
        let mut p = Probe::new(cfg());
        p.on_start(&mut h.ctx(0, 0));
        match h.timers.as_slice() {
            [TimerCmd::Set { timer: ProbeTimer::Tick, at }] => assert!(at.0 < 100_000_000),
            other => panic!("unexpected timers {other:?}"),
        }
    }

    #[test]
    fn tick_pings_every_target_and_pong_records_rtt() {
        let mut h = Harness::new();
        let mut p = Probe::new(cfg());
        p.on_timer(&mut h.ctx(10, 0), ProbeTimer::Tick);
        let sends: Vec<_> = h
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { to, msg, .. } => Some((*to, msg.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(sends.len(), 2);
        assert_eq!(p.outstanding(), 2);
        let (to, ping) = sends[0].clone();
        let ProbeMsg::Ping { seq, sent_at, bytes } = ping else { panic!() };
        h.effects.clear();
        // The target answers.
        let mut target = Probe::new(cfg());
        target.on_message(&mut h.ctx(12, to), 0, ProbeMsg::Ping { seq, sent_at, bytes });
        assert!(matches!(h.effects[0], Effect::Send { to: 0, msg: ProbeMsg::Pong { .. }, .. }));
        h.effects.clear();
        p.on_message(&mut h.ctx(14, 0), to, ProbeMsg::Pong { seq, sent_at, bytes });
        assert_eq!(p.outstanding(), 1);
        let rtt: Vec<f64> = h
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Observe { metric: METRIC_RTT_MS, value, .. } => Some(*value),
                _ => None,
            })
            .collect();
        assert_eq!(rtt, vec![4.0]);
        // A duplicate pong is ignored.
        h.effects.clear();
        p.on_message(&mut h.ctx(15, 0), to, ProbeMsg::Pong { seq, sent_at, bytes });
        assert!(h.effects.is_empty());
        p.check_invariants();
    }

    #[test]
    fn unanswered_pings_time_out_once() {
        let mut h = Harness::new();
        let mut p = Probe::new(cfg());
        p.on_timer(&mut h.ctx(0, 0), ProbeTimer::Tick);
        h.effects.clear();
        p.on_timer(&mut h.ctx(400, 0), ProbeTimer::Tick);
        let timed_out = |h: &Harness| {
            h.effects.iter().filter(|e| matches!(e, Effect::Count { metric: METRIC_TIMED_OUT, .. })).count()
        };
        assert_eq!(timed_out(&h), 0, "not yet past the timeout");
        h.effects.clear();
        p.on_timer(&mut h.ctx(500, 0), ProbeTimer::Tick);
        assert_eq!(timed_out(&h), 2);
        assert_eq!(p.outstanding(), 4);
    }

    #[test]
    fn fsync_latency_is_observed_and_errors_counted() {
        let mut h = Harness::new();
        let mut p = Probe::new(ProbeConfig { fsync_interval: Some(Duration::from_secs(1)), ..cfg() });
        p.on_timer(&mut h.ctx(1000, 3), ProbeTimer::Fsync);
        assert!(matches!(h.effects[0], Effect::Disk { op: DiskOp::Fsync, token: 0, .. }));
        p.on_timer(&mut h.ctx(2000, 3), ProbeTimer::Fsync);
        h.effects.clear();
        p.on_disk(&mut h.ctx(1003, 3), 0, Ok(()));
        p.on_disk(&mut h.ctx(2500, 3), 1, Err(DiskError::Io));
        assert!(matches!(h.effects[0], Effect::Observe { metric: METRIC_FSYNC_MS, value, .. } if value == 3.0));
        assert!(matches!(h.effects[1], Effect::Count { metric: METRIC_DISK_ERRORS, delta: 1, .. }));
    }
}
