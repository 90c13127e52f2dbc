//! The sans-IO interface every component implements. Handlers get the time, the input and an
//! RNG; they write effects (sends, timers, disk operations, trace events, metrics) into `Ctx`.
//! The simulator (or a unit test) decides what happens to those effects.

use std::fmt::Debug;
use std::time::Duration;

use crate::rng::SimRng;
use crate::time::SimTime;
use crate::trace::TraceKind;

/// Index of a node in the scenario's node table.
pub type NodeId = u32;

/// A message on the simulated network.
pub trait Message: Clone + Debug {
    /// Bytes on the wire; links with a bandwidth limit serialise this many bytes.
    fn size_bytes(&self) -> u64 {
        128
    }
    /// Short name for traces ("ping", "append_entries").
    fn label(&self) -> &'static str;
    /// What the receiver's kernel answers on behalf of a process that cannot: one that died on
    /// a host that is still up (RST to a connection attempt) or one that is stopped (SIGSTOP:
    /// the kernel still completes handshakes into the listen backlog). `None`: nothing comes
    /// back, the message is lost with the dead process's connection or waits in the stopped
    /// one's socket.
    fn kernel_answer(&self, _process: ProcessDown) -> Option<Self> {
        None
    }
}

/// Why a process cannot answer while its host's kernel can.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessDown {
    /// It died (`kill -9`, a crash): nothing listens on its ports, connections are refused.
    Dead,
    /// It is stopped (SIGSTOP, a long GC pause): the kernel accepts connections for it.
    Stopped,
}

/// A disk operation; completions come back through `Model::on_disk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum DiskOp {
    /// Make what was written durable. The model's `durable()` is snapshotted when the fsync is
    /// issued and survives a crash once it completes.
    Fsync,
    /// Sequential write of this many bytes (base backups, WAL segments).
    Write { bytes: u64 },
    /// Sequential read of this many bytes.
    Read { bytes: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskError {
    /// EIO: the device failed the request.
    Io,
    /// ENOSPC: the disk is full (writes and fsyncs fail; reads succeed).
    NoSpace,
}

/// Structured metric labels, so recording a sample allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    None,
    Node(NodeId),
    Pair(NodeId, NodeId),
    Tag(&'static str),
    /// A tenant of the request load (index into the scenario's tenant table).
    Tenant(u16),
}

/// Effects that leave the node. Timers stay inside the node runner and are not listed here.
#[derive(Clone, Debug)]
pub enum Effect<M> {
    Send {
        at: SimTime,
        to: NodeId,
        msg: M,
    },
    Disk {
        at: SimTime,
        op: DiskOp,
        token: u64,
    },
    Trace {
        at: SimTime,
        kind: TraceKind,
    },
    /// Add `delta` to a counter.
    Count {
        at: SimTime,
        metric: &'static str,
        label: Label,
        delta: u64,
    },
    /// Record `count` samples of one value in a distribution (latencies in ms, sizes in bytes).
    Observe {
        at: SimTime,
        metric: &'static str,
        label: Label,
        value: f64,
        count: u64,
    },
}

/// Timer commands a handler issued; the runner applies them in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerCmd<T> {
    Set { timer: T, at: SimTime },
    Cancel { timer: T },
}

/// What a handler sees and writes to.
pub struct Ctx<'a, M, T> {
    pub now: SimTime,
    pub id: NodeId,
    pub rng: &'a mut SimRng,
    pub effects: &'a mut Vec<Effect<M>>,
    pub timers: &'a mut Vec<TimerCmd<T>>,
}

impl<M, T> Ctx<'_, M, T> {
    pub fn send(&mut self, to: NodeId, msg: M) {
        assert_ne!(to, self.id, "a node does not message itself over the network");
        self.effects.push(Effect::Send { at: self.now, to, msg });
    }
    /// (Re)arms `timer`; a timer has at most one pending deadline.
    pub fn set_timer(&mut self, timer: T, after: Duration) {
        let at = self.now + after;
        self.timers.push(TimerCmd::Set { timer, at });
    }
    /// (Re)arms `timer` for an absolute time (not before now).
    pub fn set_timer_at(&mut self, timer: T, at: SimTime) {
        assert!(at >= self.now, "timer armed in the past");
        self.timers.push(TimerCmd::Set { timer, at });
    }
    pub fn cancel_timer(&mut self, timer: T) {
        self.timers.push(TimerCmd::Cancel { timer });
    }
    pub fn disk(&mut self, op: DiskOp, token: u64) {
        self.effects.push(Effect::Disk { at: self.now, op, token });
    }
    pub fn trace(&mut self, kind: TraceKind) {
        self.effects.push(Effect::Trace { at: self.now, kind });
    }
    pub fn count(&mut self, metric: &'static str, label: Label, delta: u64) {
        self.effects.push(Effect::Count { at: self.now, metric, label, delta });
    }
    pub fn observe(&mut self, metric: &'static str, label: Label, value: f64) {
        assert!(value.is_finite(), "metric {metric} got a non-finite sample");
        self.effects.push(Effect::Observe { at: self.now, metric, label, value, count: 1 });
    }
    /// `count` samples of the same value: a cohort of requests that all took this long.
    pub fn observe_n(&mut self, metric: &'static str, label: Label, value: f64, count: u64) {
        assert!(value.is_finite(), "metric {metric} got a non-finite sample");
        if count > 0 {
            self.effects.push(Effect::Observe { at: self.now, metric, label, value, count });
        }
    }
}

/// A component as a state machine. Constructed by a factory from its durable state, so a
/// restart after a crash sees exactly what it had fsynced.
pub trait Model {
    type Msg: Message;
    type Timer: Copy + Ord + Debug;
    /// What survives a crash (Raft's term, vote and log; PostgreSQL's flushed WAL).
    type Durable: Clone + Default + Debug;

    /// Called once per incarnation, before any other handler.
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Timer>);
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Timer>, from: NodeId, msg: Self::Msg);
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self::Msg, Self::Timer>, timer: Self::Timer);
    fn on_disk(&mut self, _ctx: &mut Ctx<'_, Self::Msg, Self::Timer>, _token: u64, _result: Result<(), DiskError>) {}
    /// Snapshot of the durable state, taken when an fsync is issued.
    fn durable(&self) -> Self::Durable {
        Self::Durable::default()
    }
    /// Called after every handler; assert the model's own invariants here.
    fn check_invariants(&self) {}
}

/// A housekeeping timer that runs only while a component has something to look after. A
/// periodic tick on every proxy and pooler, busy or idle, was most of a long run's events; this
/// one is armed when work appears and not re-armed once the component is idle. A later arming
/// never postpones an earlier one (steady traffic must not starve the housekeeping). On a grid
/// (`every`), it fires only at the instants the always-on tick would have fired at, so a run
/// behaves exactly as with a tick every period: only the idle ticks, which did nothing, are gone.
#[derive(Clone, Debug, Default)]
pub struct LazyTick {
    armed_at: Option<SimTime>,
    /// (first instant, period): the instants `first + k * period`, k >= 0.
    grid: Option<(SimTime, Duration)>,
}

impl LazyTick {
    /// A tick that fires only at `first + k * period`.
    pub fn every(first: SimTime, period: Duration) -> LazyTick {
        assert!(!period.is_zero(), "a grid needs a positive period");
        LazyTick { armed_at: None, grid: Some((first, period)) }
    }

    /// The first instant of the grid at or after `t`.
    pub fn on_grid(&self, t: SimTime) -> SimTime {
        match self.grid {
            Some((first, period)) if t > first => {
                let p = period.as_nanos() as u64;
                let k = (t.0 - first.0).div_ceil(p);
                SimTime(first.0.saturating_add(k.saturating_mul(p)))
            }
            Some((first, _)) => first,
            None => t,
        }
    }

    /// Makes sure `timer` fires at the first grid instant at or after `at` (or earlier).
    pub fn arm<M, T>(&mut self, ctx: &mut Ctx<'_, M, T>, timer: T, at: SimTime) {
        let at = self.on_grid(at.max(ctx.now));
        if self.armed_at.is_none_or(|a| at < a) {
            ctx.set_timer_at(timer, at);
            self.armed_at = Some(at);
        }
    }

    /// The timer fired: nothing is armed any more.
    pub fn fired(&mut self) {
        self.armed_at = None;
    }

    pub fn armed_at(&self) -> Option<SimTime> {
        self.armed_at
    }
}

/// Decides when a model's full consistency check (a recount of its tables, O(state)) runs:
/// every call in unit tests, every 64th call otherwise. The checks stay on in release builds;
/// sampling keeps their cost per message bounded when tables hold thousands of entries, and a
/// drift, once there, persists until a sampled check sees it.
#[derive(Debug, Default)]
pub struct DeepCheck(std::cell::Cell<u32>);

impl Clone for DeepCheck {
    fn clone(&self) -> Self {
        DeepCheck(std::cell::Cell::new(self.0.get()))
    }
}

impl DeepCheck {
    pub const EVERY: u32 = 64;
    pub fn due(&self) -> bool {
        let n = self.0.get().wrapping_add(1);
        self.0.set(n);
        cfg!(test) || n.is_multiple_of(Self::EVERY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream_rng};

    #[test]
    fn a_lazy_tick_is_never_postponed() {
        let mut rng = stream_rng(1, Stream::Named(1));
        let (mut effects, mut timers) = (Vec::<Effect<()>>::new(), Vec::new());
        let mut ctx = Ctx { now: SimTime(100), id: 0, rng: &mut rng, effects: &mut effects, timers: &mut timers };
        let mut t = LazyTick::default();
        t.arm(&mut ctx, 'x', SimTime(500));
        t.arm(&mut ctx, 'x', SimTime(900));
        t.arm(&mut ctx, 'x', SimTime(300));
        t.arm(&mut ctx, 'x', SimTime(50));
        let sets: Vec<SimTime> = timers
            .iter()
            .map(|c| match c {
                TimerCmd::Set { at, .. } => *at,
                TimerCmd::Cancel { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(sets, [SimTime(500), SimTime(300), SimTime(100)], "later arms are ignored; the past becomes now");
        t.fired();
        assert_eq!(t.armed_at(), None);
    }

    #[test]
    fn a_tick_on_a_grid_fires_where_the_periodic_tick_would() {
        let g = LazyTick::every(SimTime(1_000), Duration::from_nanos(10));
        assert_eq!(g.on_grid(SimTime(0)), SimTime(1_000));
        assert_eq!(g.on_grid(SimTime(1_000)), SimTime(1_000));
        assert_eq!(g.on_grid(SimTime(1_001)), SimTime(1_010));
        assert_eq!(g.on_grid(SimTime(1_010)), SimTime(1_010));
        assert_eq!(g.on_grid(SimTime(1_019)), SimTime(1_020));
    }
}
