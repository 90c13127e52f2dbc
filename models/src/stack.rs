//! Every component behind one `Model`, so one simulation can mix them: the enum delegates to
//! the component and maps its messages, timers and durable state into the shared types.

use crate::etcd::{ElectorTimer, EtcdElector, EtcdMember, EtcdMsg, EtcdTimer, EtcdWriter, WriterTimer};
use crate::node::{Ctx, DiskError, Effect, Message, Model, NodeId, TimerCmd};
use crate::pg::{PgDurable, PgMsg, PgNode, PgTimer};
use crate::probe::{Probe, ProbeMsg, ProbeTimer};
use crate::raft::HardState;

#[derive(Clone, Debug)]
pub enum StackMsg {
    Probe(ProbeMsg),
    Etcd(EtcdMsg),
    Pg(PgMsg),
}

impl Message for StackMsg {
    fn size_bytes(&self) -> u64 {
        match self {
            StackMsg::Probe(m) => m.size_bytes(),
            StackMsg::Etcd(m) => m.size_bytes(),
            StackMsg::Pg(m) => m.size_bytes(),
        }
    }
    fn label(&self) -> &'static str {
        match self {
            StackMsg::Probe(m) => m.label(),
            StackMsg::Etcd(m) => m.label(),
            StackMsg::Pg(m) => m.label(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StackTimer {
    Probe(ProbeTimer),
    Etcd(EtcdTimer),
    Writer(WriterTimer),
    Elector(ElectorTimer),
    Pg(PgTimer),
}

#[derive(Clone, Debug, Default)]
pub enum StackDurable {
    #[default]
    None,
    Etcd(HardState),
    Pg(PgDurable),
}

/// A component plus scratch buffers for its effects, reused across calls.
pub struct Hosted<M: Model> {
    pub model: M,
    effects: Vec<Effect<M::Msg>>,
    timers: Vec<TimerCmd<M::Timer>>,
}

impl<M: Model> Hosted<M> {
    pub fn new(model: M) -> Self {
        Hosted { model, effects: Vec::new(), timers: Vec::new() }
    }

    /// Runs `f` on the component with its own context, then maps its effects outwards.
    fn call(
        &mut self,
        outer: &mut Ctx<'_, StackMsg, StackTimer>,
        wrap_msg: fn(M::Msg) -> StackMsg,
        wrap_timer: fn(M::Timer) -> StackTimer,
        f: impl FnOnce(&mut M, &mut Ctx<'_, M::Msg, M::Timer>),
    ) {
        let mut ctx =
            Ctx { now: outer.now, id: outer.id, rng: outer.rng, effects: &mut self.effects, timers: &mut self.timers };
        f(&mut self.model, &mut ctx);
        for e in self.effects.drain(..) {
            outer.effects.push(match e {
                Effect::Send { at, to, msg } => Effect::Send { at, to, msg: wrap_msg(msg) },
                Effect::Disk { at, op, token } => Effect::Disk { at, op, token },
                Effect::Trace { at, kind } => Effect::Trace { at, kind },
                Effect::Count { at, metric, label, delta } => Effect::Count { at, metric, label, delta },
                Effect::Observe { at, metric, label, value, count } => {
                    Effect::Observe { at, metric, label, value, count }
                }
            });
        }
        for t in self.timers.drain(..) {
            outer.timers.push(match t {
                TimerCmd::Set { timer, at } => TimerCmd::Set { timer: wrap_timer(timer), at },
                TimerCmd::Cancel { timer } => TimerCmd::Cancel { timer: wrap_timer(timer) },
            });
        }
    }
}

pub enum StackNode {
    Probe(Hosted<Probe>),
    /// Boxed: a member is much larger than the other components.
    Etcd(Box<Hosted<EtcdMember>>),
    Writer(Hosted<EtcdWriter>),
    Elector(Hosted<EtcdElector>),
    Pg(Box<Hosted<PgNode>>),
}

type SCtx<'a> = Ctx<'a, StackMsg, StackTimer>;

macro_rules! dispatch {
    ($self:ident, $ctx:ident, |$m:ident, $c:ident| $body:expr) => {
        match $self {
            StackNode::Probe(h) => h.call($ctx, StackMsg::Probe, StackTimer::Probe, |$m, $c| $body),
            StackNode::Etcd(h) => h.call($ctx, StackMsg::Etcd, StackTimer::Etcd, |$m, $c| $body),
            StackNode::Writer(h) => h.call($ctx, StackMsg::Etcd, StackTimer::Writer, |$m, $c| $body),
            StackNode::Elector(h) => h.call($ctx, StackMsg::Etcd, StackTimer::Elector, |$m, $c| $body),
            StackNode::Pg(h) => h.call($ctx, StackMsg::Pg, StackTimer::Pg, |$m, $c| $body),
        }
    };
}

impl Model for StackNode {
    type Msg = StackMsg;
    type Timer = StackTimer;
    type Durable = StackDurable;

    fn on_start(&mut self, ctx: &mut SCtx<'_>) {
        dispatch!(self, ctx, |m, c| m.on_start(c))
    }

    fn on_message(&mut self, ctx: &mut SCtx<'_>, from: NodeId, msg: StackMsg) {
        match (self, msg) {
            (StackNode::Probe(h), StackMsg::Probe(msg)) => {
                h.call(ctx, StackMsg::Probe, StackTimer::Probe, |m, c| m.on_message(c, from, msg))
            }
            (StackNode::Etcd(h), StackMsg::Etcd(msg)) => {
                h.call(ctx, StackMsg::Etcd, StackTimer::Etcd, |m, c| m.on_message(c, from, msg))
            }
            (StackNode::Writer(h), StackMsg::Etcd(msg)) => {
                h.call(ctx, StackMsg::Etcd, StackTimer::Writer, |m, c| m.on_message(c, from, msg))
            }
            (StackNode::Elector(h), StackMsg::Etcd(msg)) => {
                h.call(ctx, StackMsg::Etcd, StackTimer::Elector, |m, c| m.on_message(c, from, msg))
            }
            (StackNode::Pg(h), StackMsg::Pg(msg)) => {
                h.call(ctx, StackMsg::Pg, StackTimer::Pg, |m, c| m.on_message(c, from, msg))
            }
            // A message for another kind of component (a misaddressed packet) is dropped.
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut SCtx<'_>, timer: StackTimer) {
        match (self, timer) {
            (StackNode::Probe(h), StackTimer::Probe(t)) => {
                h.call(ctx, StackMsg::Probe, StackTimer::Probe, |m, c| m.on_timer(c, t))
            }
            (StackNode::Etcd(h), StackTimer::Etcd(t)) => {
                h.call(ctx, StackMsg::Etcd, StackTimer::Etcd, |m, c| m.on_timer(c, t))
            }
            (StackNode::Writer(h), StackTimer::Writer(t)) => {
                h.call(ctx, StackMsg::Etcd, StackTimer::Writer, |m, c| m.on_timer(c, t))
            }
            (StackNode::Elector(h), StackTimer::Elector(t)) => {
                h.call(ctx, StackMsg::Etcd, StackTimer::Elector, |m, c| m.on_timer(c, t))
            }
            (StackNode::Pg(h), StackTimer::Pg(t)) => h.call(ctx, StackMsg::Pg, StackTimer::Pg, |m, c| m.on_timer(c, t)),
            (_, t) => panic!("timer {t:?} fired on the wrong kind of node"),
        }
    }

    fn on_disk(&mut self, ctx: &mut SCtx<'_>, token: u64, result: Result<(), DiskError>) {
        dispatch!(self, ctx, |m, c| m.on_disk(c, token, result))
    }

    fn durable(&self) -> StackDurable {
        match self {
            StackNode::Etcd(h) => StackDurable::Etcd(h.model.durable()),
            StackNode::Pg(h) => StackDurable::Pg(h.model.durable()),
            _ => StackDurable::None,
        }
    }

    fn check_invariants(&self) {
        match self {
            StackNode::Probe(h) => h.model.check_invariants(),
            StackNode::Etcd(h) => h.model.check_invariants(),
            StackNode::Writer(h) => h.model.check_invariants(),
            StackNode::Elector(h) => h.model.check_invariants(),
            StackNode::Pg(h) => h.model.check_invariants(),
        }
    }
}
