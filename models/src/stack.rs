//! Every component behind one `Model`, so one simulation can mix them: the enum delegates to
//! the component and maps its messages, timers and durable state into the shared types.

use crate::etcd::{ElectorTimer, EtcdElector, EtcdMember, EtcdMsg, EtcdTimer, EtcdWriter, Kv, WriterTimer};
use crate::flow::FlowMsg;
use crate::flow::balancer::{Haproxy, HaproxyTimer};
use crate::flow::bouncer::{Bouncer, BouncerTimer};
use crate::flow::client::{Client, ClientTimer};
use crate::flow::proxy_relay::ProxyRelay;
use crate::node::{Ctx, DiskError, Effect, Message, Model, NodeId, TimerCmd};
use crate::pg::{PgCommand, PgDurable, PgMsg, PgNode, PgRoleKind, PgTimer};
use crate::probe::{Probe, ProbeMsg, ProbeTimer};
use crate::raft::HardState;
use crate::stolon::proxy::{ProxyControl, ProxyTimer};
use crate::stolon::sentinel::{OperatorCmd, Sentinel, SentinelTimer};
use crate::stolon::{Keeper, KeeperCommand, KeeperTimer, LocalPg, LocalRole};

#[derive(Clone, Debug)]
pub enum StackMsg {
    Probe(ProbeMsg),
    Etcd(EtcdMsg),
    Pg(PgMsg),
    Flow(FlowMsg),
    /// An operator's command (or a fault acting inside a process), injected by the simulator
    /// at the node it concerns; the node hands it to the component's command path.
    Op(StackOp),
}

/// What operators tell the stack's components (stolonctl, the load balancers' DNS, ...).
#[derive(Clone, Debug, PartialEq)]
pub enum StackOp {
    Stolon(OperatorCmd),
    /// For the PostgreSQL server on the node (`pg_ctl promote`, a fence, a fault's effect).
    Pg(PgCommand),
    /// Clients keep sending this share of their load.
    ShedLoad(f64),
    /// Clients send reads (writes) to these PgBouncers, first healthy first.
    ReadEntries(Vec<NodeId>),
    WriteEntries(Vec<NodeId>),
}

/// PostgreSQL's outgoing messages: the request path's go out as flow messages.
fn pg_out(m: PgMsg) -> StackMsg {
    match m {
        PgMsg::Flow(f) => StackMsg::Flow(f),
        m => StackMsg::Pg(m),
    }
}

impl Message for StackMsg {
    fn size_bytes(&self) -> u64 {
        match self {
            StackMsg::Probe(m) => m.size_bytes(),
            StackMsg::Etcd(m) => m.size_bytes(),
            StackMsg::Pg(m) => m.size_bytes(),
            StackMsg::Flow(m) => m.size_bytes(),
            StackMsg::Op(_) => 64,
        }
    }
    fn label(&self) -> &'static str {
        match self {
            StackMsg::Probe(m) => m.label(),
            StackMsg::Etcd(m) => m.label(),
            StackMsg::Pg(m) => m.label(),
            StackMsg::Flow(m) => m.label(),
            // A command for a host that is down is traced as dropped under its own name.
            StackMsg::Op(StackOp::Pg(cmd)) => cmd.label(),
            StackMsg::Op(_) => "operator",
        }
    }
    fn kernel_answer(&self, process: crate::node::ProcessDown) -> Option<StackMsg> {
        match self {
            StackMsg::Flow(m) => m.kernel_answer(process).map(StackMsg::Flow),
            _ => None,
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
    Keeper(KeeperTimer),
    Sentinel(SentinelTimer),
    Proxy(ProxyTimer),
    /// The stolon-proxy's data path expires requests whose answers were lost.
    ProxyRelay,
    Haproxy(HaproxyTimer),
    Bouncer(BouncerTimer),
    Client(ClientTimer),
}

#[derive(Clone, Debug, Default)]
pub enum StackDurable {
    #[default]
    None,
    Etcd(HardState<Kv>),
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

/// A PostgreSQL server with its Stolon keeper on the same host: the keeper reads the server's
/// state locally and tells it to promote, follow, fence or resync.
pub struct PgKeeperHost {
    pub pg: Hosted<PgNode>,
    pub keeper: Hosted<Keeper>,
    /// What a resync copies per second from each possible source (path and disks).
    pub rebuild_bytes_per_s: std::collections::BTreeMap<NodeId, u64>,
}

impl PgKeeperHost {
    fn local(&self) -> LocalPg {
        let st = self.pg.model.status();
        let role = match st.role {
            PgRoleKind::Primary => LocalRole::Primary,
            PgRoleKind::Standby { upstream } => LocalRole::Standby { upstream },
            PgRoleKind::Promoting => LocalRole::Promoting,
            PgRoleKind::Rebuilding => LocalRole::Rebuilding,
            PgRoleKind::Fenced => LocalRole::Fenced,
        };
        let healthy = matches!(role, LocalRole::Primary | LocalRole::Standby { .. } | LocalRole::Promoting);
        let sync_standbys = self.pg.model.sync_standbys();
        LocalPg { healthy, role, tli: st.tli, xlog_pos: st.flushed, refused_by_upstream: st.refused, sync_standbys }
    }

    /// Runs the keeper with a fresh view of its server, then carries out what it asked.
    fn keeper_call(&mut self, ctx: &mut SCtx<'_>, f: impl FnOnce(&mut Keeper, &mut Ctx<'_, EtcdMsg, KeeperTimer>)) {
        let local = self.local();
        self.keeper.model.set_local(local);
        self.keeper.call(ctx, StackMsg::Etcd, StackTimer::Keeper, f);
        for cmd in self.keeper.model.take_commands() {
            let cmd = match cmd {
                KeeperCommand::Promote { accept_data_loss } => PgCommand::Promote { accept_data_loss },
                KeeperCommand::Follow { upstream } => PgCommand::Follow { upstream },
                KeeperCommand::Fence => PgCommand::Fence,
                KeeperCommand::Rebuild { method, upstream } => {
                    let bytes_per_s = self.rebuild_bytes_per_s.get(&upstream).copied().unwrap_or(125_000_000);
                    PgCommand::Rebuild { method, upstream, bytes_per_s }
                }
                KeeperCommand::SetSynchronousStandbyNames(names) => PgCommand::SetSynchronousStandbyNames(names),
            };
            self.pg.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_command(c, cmd));
        }
    }
}

/// A stolon-proxy: its store side (check-ins, the master's name) and its data path.
pub struct ProxyHost {
    pub ctl: Hosted<ProxyControl>,
    pub relay: ProxyRelay,
    flow_effects: Vec<Effect<FlowMsg>>,
}

impl ProxyHost {
    pub fn new(ctl: ProxyControl, relay: ProxyRelay) -> ProxyHost {
        ProxyHost { ctl: Hosted::new(ctl), relay, flow_effects: Vec::new() }
    }

    fn relay_call(&mut self, outer: &mut SCtx<'_>, f: impl FnOnce(&mut ProxyRelay, &mut Ctx<'_, FlowMsg, StackTimer>)) {
        let mut ctx =
            Ctx { now: outer.now, id: outer.id, rng: outer.rng, effects: &mut self.flow_effects, timers: outer.timers };
        f(&mut self.relay, &mut ctx);
        for e in self.flow_effects.drain(..) {
            outer.effects.push(map_effect(e, StackMsg::Flow));
        }
    }

    /// The data path follows what the store side decided.
    fn sync(&mut self, ctx: &mut SCtx<'_>) {
        let _ = self.ctl.model.take_actions();
        let (listening, target) = (self.ctl.model.listening(), self.ctl.model.target());
        if self.relay.target() != target {
            self.relay_call(ctx, |r, c| r.set_target(c, target));
        }
        if self.relay.listening() != listening {
            self.relay_call(ctx, |r, c| r.set_listening(c, listening));
        }
    }
}

fn map_effect<A, B>(e: Effect<A>, wrap: impl FnOnce(A) -> B) -> Effect<B> {
    match e {
        Effect::Send { at, to, msg } => Effect::Send { at, to, msg: wrap(msg) },
        Effect::Disk { at, op, token } => Effect::Disk { at, op, token },
        Effect::Trace { at, kind } => Effect::Trace { at, kind },
        Effect::Count { at, metric, label, delta } => Effect::Count { at, metric, label, delta },
        Effect::Observe { at, metric, label, value, count } => Effect::Observe { at, metric, label, value, count },
    }
}

/// How often the stolon-proxy's data path looks for requests whose answers were lost.
const PROXY_RELAY_TICK: std::time::Duration = std::time::Duration::from_secs(1);

pub enum StackNode {
    Probe(Hosted<Probe>),
    /// Boxed: a member is much larger than the other components.
    Etcd(Box<Hosted<EtcdMember>>),
    Writer(Hosted<EtcdWriter>),
    Elector(Hosted<EtcdElector>),
    Pg(Box<Hosted<PgNode>>),
    PgKeeper(Box<PgKeeperHost>),
    Sentinel(Box<Hosted<Sentinel>>),
    StolonProxy(Box<ProxyHost>),
    Haproxy(Box<Hosted<Haproxy>>),
    Bouncer(Box<Hosted<Bouncer>>),
    Client(Box<Hosted<Client>>),
}

type SCtx<'a> = Ctx<'a, StackMsg, StackTimer>;

impl Model for StackNode {
    type Msg = StackMsg;
    type Timer = StackTimer;
    type Durable = StackDurable;

    fn on_start(&mut self, ctx: &mut SCtx<'_>) {
        match self {
            StackNode::Probe(h) => h.call(ctx, StackMsg::Probe, StackTimer::Probe, |m, c| m.on_start(c)),
            StackNode::Etcd(h) => h.call(ctx, StackMsg::Etcd, StackTimer::Etcd, |m, c| m.on_start(c)),
            StackNode::Writer(h) => h.call(ctx, StackMsg::Etcd, StackTimer::Writer, |m, c| m.on_start(c)),
            StackNode::Elector(h) => h.call(ctx, StackMsg::Etcd, StackTimer::Elector, |m, c| m.on_start(c)),
            StackNode::Pg(h) => h.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_start(c)),
            StackNode::PgKeeper(h) => {
                h.pg.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_start(c));
                h.keeper_call(ctx, |m, c| m.on_start(c));
            }
            StackNode::Sentinel(h) => h.call(ctx, StackMsg::Etcd, StackTimer::Sentinel, |m, c| m.on_start(c)),
            StackNode::StolonProxy(h) => {
                h.ctl.call(ctx, StackMsg::Etcd, StackTimer::Proxy, |m, c| m.on_start(c));
                h.sync(ctx);
                ctx.set_timer(StackTimer::ProxyRelay, PROXY_RELAY_TICK);
            }
            StackNode::Haproxy(h) => h.call(ctx, StackMsg::Flow, StackTimer::Haproxy, |m, c| m.on_start(c)),
            StackNode::Bouncer(h) => h.call(ctx, StackMsg::Flow, StackTimer::Bouncer, |m, c| m.on_start(c)),
            StackNode::Client(h) => h.call(ctx, StackMsg::Flow, StackTimer::Client, |m, c| m.on_start(c)),
        }
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
                h.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_message(c, from, msg))
            }
            (StackNode::Pg(h), StackMsg::Flow(msg)) => {
                h.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_message(c, from, PgMsg::Flow(msg)))
            }
            (StackNode::Pg(h), StackMsg::Op(StackOp::Pg(cmd))) => {
                assert_eq!(from, ctx.id, "operator commands are injected at the node");
                h.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_command(c, cmd))
            }
            (StackNode::PgKeeper(h), StackMsg::Op(StackOp::Pg(cmd))) => {
                assert_eq!(from, ctx.id, "operator commands are injected at the node");
                h.pg.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_command(c, cmd))
            }
            (StackNode::PgKeeper(h), StackMsg::Pg(msg)) => {
                h.pg.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_message(c, from, msg))
            }
            (StackNode::PgKeeper(h), StackMsg::Flow(msg)) => {
                h.pg.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_message(c, from, PgMsg::Flow(msg)))
            }
            (StackNode::PgKeeper(h), StackMsg::Etcd(msg)) => h.keeper_call(ctx, |m, c| m.on_message(c, from, msg)),
            (StackNode::Sentinel(h), StackMsg::Etcd(msg)) => {
                h.call(ctx, StackMsg::Etcd, StackTimer::Sentinel, |m, c| m.on_message(c, from, msg))
            }
            (StackNode::Sentinel(h), StackMsg::Op(StackOp::Stolon(cmd))) => {
                assert_eq!(from, ctx.id, "operator commands are injected at the node");
                h.call(ctx, StackMsg::Etcd, StackTimer::Sentinel, |m, c| m.operator(c, cmd))
            }
            (StackNode::StolonProxy(h), StackMsg::Etcd(msg)) => {
                h.ctl.call(ctx, StackMsg::Etcd, StackTimer::Proxy, |m, c| m.on_message(c, from, msg));
                h.sync(ctx);
            }
            (StackNode::StolonProxy(h), StackMsg::Flow(msg)) => h.relay_call(ctx, |r, c| r.on_message(c, from, msg)),
            (StackNode::Haproxy(h), StackMsg::Flow(msg)) => {
                h.call(ctx, StackMsg::Flow, StackTimer::Haproxy, |m, c| m.on_message(c, from, msg))
            }
            (StackNode::Bouncer(h), StackMsg::Flow(msg)) => {
                h.call(ctx, StackMsg::Flow, StackTimer::Bouncer, |m, c| m.on_message(c, from, msg))
            }
            (StackNode::Client(h), StackMsg::Flow(msg)) => {
                h.call(ctx, StackMsg::Flow, StackTimer::Client, |m, c| m.on_message(c, from, msg))
            }
            (StackNode::Client(h), StackMsg::Op(op)) => {
                assert_eq!(from, ctx.id, "operator commands are injected at the node");
                h.call(ctx, StackMsg::Flow, StackTimer::Client, |m, c| match op {
                    StackOp::ShedLoad(f) => m.set_load_factor(f),
                    StackOp::ReadEntries(e) => m.set_read_entries(c, e),
                    StackOp::WriteEntries(e) => m.set_write_entries(c, e),
                    StackOp::Stolon(_) | StackOp::Pg(_) => {}
                })
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
            (StackNode::Pg(h), StackTimer::Pg(t)) => h.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_timer(c, t)),
            (StackNode::PgKeeper(h), StackTimer::Pg(t)) => {
                h.pg.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_timer(c, t))
            }
            (StackNode::PgKeeper(h), StackTimer::Keeper(t)) => h.keeper_call(ctx, |m, c| m.on_timer(c, t)),
            (StackNode::Sentinel(h), StackTimer::Sentinel(t)) => {
                h.call(ctx, StackMsg::Etcd, StackTimer::Sentinel, |m, c| m.on_timer(c, t))
            }
            (StackNode::StolonProxy(h), StackTimer::Proxy(t)) => {
                h.ctl.call(ctx, StackMsg::Etcd, StackTimer::Proxy, |m, c| m.on_timer(c, t));
                h.sync(ctx);
            }
            (StackNode::StolonProxy(h), StackTimer::ProxyRelay) => {
                h.relay_call(ctx, |r, c| r.tick(c));
                ctx.set_timer(StackTimer::ProxyRelay, PROXY_RELAY_TICK);
            }
            (StackNode::Haproxy(h), StackTimer::Haproxy(t)) => {
                h.call(ctx, StackMsg::Flow, StackTimer::Haproxy, |m, c| m.on_timer(c, t))
            }
            (StackNode::Bouncer(h), StackTimer::Bouncer(t)) => {
                h.call(ctx, StackMsg::Flow, StackTimer::Bouncer, |m, c| m.on_timer(c, t))
            }
            (StackNode::Client(h), StackTimer::Client(t)) => {
                h.call(ctx, StackMsg::Flow, StackTimer::Client, |m, c| m.on_timer(c, t))
            }
            (_, t) => panic!("timer {t:?} fired on the wrong kind of node"),
        }
    }

    fn on_disk(&mut self, ctx: &mut SCtx<'_>, token: u64, result: Result<(), DiskError>) {
        match self {
            StackNode::Probe(h) => h.call(ctx, StackMsg::Probe, StackTimer::Probe, |m, c| m.on_disk(c, token, result)),
            StackNode::Etcd(h) => h.call(ctx, StackMsg::Etcd, StackTimer::Etcd, |m, c| m.on_disk(c, token, result)),
            StackNode::Pg(h) => h.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_disk(c, token, result)),
            StackNode::PgKeeper(h) => h.pg.call(ctx, pg_out, StackTimer::Pg, |m, c| m.on_disk(c, token, result)),
            // The other components do not use the disk.
            _ => {}
        }
    }

    fn durable(&self) -> StackDurable {
        match self {
            StackNode::Etcd(h) => StackDurable::Etcd(h.model.durable()),
            StackNode::Pg(h) => StackDurable::Pg(h.model.durable()),
            StackNode::PgKeeper(h) => StackDurable::Pg(h.pg.model.durable()),
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
            StackNode::PgKeeper(h) => {
                h.pg.model.check_invariants();
                h.keeper.model.check_invariants();
            }
            StackNode::Sentinel(h) => h.model.check_invariants(),
            StackNode::StolonProxy(h) => {
                h.ctl.model.check_invariants();
                h.relay.check_invariants();
            }
            StackNode::Haproxy(h) => h.model.check_invariants(),
            StackNode::Bouncer(h) => h.model.check_invariants(),
            StackNode::Client(h) => h.model.check_invariants(),
        }
    }
}
