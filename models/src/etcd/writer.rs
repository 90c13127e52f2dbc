//! A client that writes to etcd at a steady rate, as the cluster managers do, and measures
//! whether each write commits in time. Like etcd's client it follows leader hints and moves to
//! the next endpoint when a request times out.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{EtcdError, EtcdMsg, Op, Request, history};
use crate::node::{Ctx, Label, Model, NodeId};
use crate::time::SimTime;

pub const METRIC_WRITES_OK: &str = "etcd_writes_ok";
pub const METRIC_WRITES_FAILED: &str = "etcd_writes_failed";
pub const METRIC_WRITE_MS: &str = "etcd_write_ms";
/// Microseconds without any acknowledged write, beyond one write interval.
pub const METRIC_UNAVAILABLE_US: &str = "etcd_write_unavailable_us";

/// The writer's metric names, for summaries.
pub mod metrics {
    pub const OK: &str = super::METRIC_WRITES_OK;
    pub const FAILED: &str = super::METRIC_WRITES_FAILED;
    pub const WRITE_MS: &str = super::METRIC_WRITE_MS;
    pub const UNAVAILABLE_US: &str = super::METRIC_UNAVAILABLE_US;
}

#[derive(Clone, Debug)]
pub struct WriterConfig {
    pub members: Vec<NodeId>,
    /// Delay before the first write.
    pub start_after: Duration,
    pub write_interval: Duration,
    /// A write not acknowledged within this counts as failed.
    pub request_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WriterTimer {
    Tick,
}

struct Outstanding {
    issued: SimTime,
    target: usize,
    /// The history's op of the attempt in flight (each resend is an op of its own).
    op: Option<u64>,
}

pub struct EtcdWriter {
    cfg: WriterConfig,
    target: usize,
    next_id: u64,
    /// The next op number in the KV history (`kv_invoked`).
    next_op: u64,
    outstanding: BTreeMap<u64, Outstanding>,
    last_ack: Option<SimTime>,
}

type WCtx<'a> = Ctx<'a, EtcdMsg, WriterTimer>;

impl EtcdWriter {
    pub fn new(cfg: WriterConfig) -> EtcdWriter {
        assert!(!cfg.members.is_empty());
        EtcdWriter { cfg, target: 0, next_id: 0, next_op: 0, outstanding: BTreeMap::new(), last_ack: None }
    }

    fn request(id: u64) -> Request {
        Request::Op(Op::Put { key: "/pgsim/writer".into(), value: id.to_string(), lease: None })
    }

    /// Sends write `id` (again): the attempt before, if any, ends with an unknown outcome.
    fn send(&mut self, ctx: &mut WCtx<'_>, id: u64) {
        let to = self.cfg.members[self.target];
        let req = Self::request(id);
        let op = self.next_op;
        self.next_op += 1;
        if let Some(o) = self.outstanding.get_mut(&id) {
            o.target = self.target;
            if let Some(before) = o.op.replace(op) {
                history::returned(ctx, before, &req, None);
            }
        }
        history::invoked(ctx, op, &req);
        ctx.send(to, EtcdMsg::Req { id, req });
    }

    fn rotate(&mut self) {
        self.target = (self.target + 1) % self.cfg.members.len();
    }
}

impl Model for EtcdWriter {
    type Msg = EtcdMsg;
    type Timer = WriterTimer;
    type Durable = ();

    fn on_start(&mut self, ctx: &mut WCtx<'_>) {
        ctx.set_timer(WriterTimer::Tick, self.cfg.start_after.max(self.cfg.write_interval));
    }

    fn on_message(&mut self, ctx: &mut WCtx<'_>, from: NodeId, msg: EtcdMsg) {
        let EtcdMsg::Resp { id, result } = msg else { return };
        let Some(o) = self.outstanding.get(&id) else { return };
        if self.cfg.members[o.target] != from {
            return; // a late answer from an endpoint we already gave up on
        }
        match result {
            Ok(_) => {
                let o = self.outstanding.remove(&id).expect("present");
                if let Some(op) = o.op {
                    history::returned(ctx, op, &Self::request(id), Some(&result));
                }
                ctx.count(METRIC_WRITES_OK, Label::Node(ctx.id), 1);
                ctx.observe(METRIC_WRITE_MS, Label::Node(ctx.id), (ctx.now - o.issued).as_secs_f64() * 1e3);
                // With a write every interval, a gap of more than two intervals between
                // acknowledgements means nothing could commit for (gap - interval).
                let interval = self.cfg.write_interval;
                if let Some(prev) = self.last_ack.filter(|p| ctx.now - *p > interval * 2) {
                    let lost = ctx.now - prev - interval;
                    ctx.count(METRIC_UNAVAILABLE_US, Label::Node(ctx.id), lost.as_micros() as u64);
                    ctx.trace(crate::trace::TraceKind::EtcdWritesResumed {
                        unavailable_ms: (lost.as_secs_f64() * 1e3 * 1e3).round() / 1e3,
                    });
                }
                self.last_ack = Some(ctx.now);
            }
            Err(EtcdError::NotLeader { hint: Some(leader) }) if leader != from => {
                if let Some(i) = self.cfg.members.iter().position(|m| *m == leader) {
                    self.target = i;
                }
                self.send(ctx, id);
            }
            Err(EtcdError::LeaderChanged) => self.send(ctx, id),
            Err(_) => {
                // No leader known here: try the next endpoint at the next tick, not in a loop.
                self.rotate();
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut WCtx<'_>, _t: WriterTimer) {
        let timeout = self.cfg.request_timeout;
        let expired: Vec<u64> =
            self.outstanding.iter().filter(|(_, o)| o.issued + timeout <= ctx.now).map(|(id, _)| *id).collect();
        if !expired.is_empty() {
            self.rotate();
        }
        for id in expired {
            if let Some(op) = self.outstanding.remove(&id).and_then(|o| o.op) {
                history::returned(ctx, op, &Self::request(id), None);
            }
            ctx.count(METRIC_WRITES_FAILED, Label::Node(ctx.id), 1);
        }
        // Requests that bounced off a leaderless member are retried now.
        let retry: Vec<u64> = self.outstanding.keys().copied().collect();
        for id in retry {
            if self.outstanding[&id].target != self.target {
                self.send(ctx, id);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.outstanding.insert(id, Outstanding { issued: ctx.now, target: self.target, op: None });
        self.send(ctx, id);
        ctx.set_timer(WriterTimer::Tick, self.cfg.write_interval);
    }

    fn check_invariants(&self) {
        assert!(self.outstanding.len() <= 100_000, "writer backlog unbounded");
    }
}
