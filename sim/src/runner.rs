//! Hosts one model incarnation: its RNG, its timers, and the order in which it sees inputs.
//! Used by the madsim engine (one per node task) and by the bare reference loop alike.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use models::rng::{SimRng, Stream, stream_rng};
use models::{Ctx, DiskError, Effect, Model, NodeId, SimTime, TimerCmd};

/// A model's pending timers: at most one deadline per timer value; cancelled or re-armed
/// entries are skipped lazily.
pub struct Timers<T: Ord + Copy> {
    heap: BinaryHeap<Reverse<(SimTime, u64, T)>>,
    current: BTreeMap<T, u64>,
    next_seq: u64,
}

impl<T: Ord + Copy> Timers<T> {
    pub fn new() -> Self {
        Timers { heap: BinaryHeap::new(), current: BTreeMap::new(), next_seq: 0 }
    }

    pub fn apply(&mut self, cmd: TimerCmd<T>) {
        match cmd {
            TimerCmd::Set { timer, at } => {
                self.next_seq += 1;
                self.current.insert(timer, self.next_seq);
                self.heap.push(Reverse((at, self.next_seq, timer)));
            }
            TimerCmd::Cancel { timer } => {
                self.current.remove(&timer);
            }
        }
        // Bounded: stale entries are dropped as they surface; this keeps re-arming loops from
        // growing the heap without limit.
        if self.heap.len() > 64 + 4 * self.current.len() {
            let current = &self.current;
            self.heap.retain(|Reverse((_, seq, t))| current.get(t) == Some(seq));
        }
    }

    pub fn peek(&mut self) -> Option<SimTime> {
        while let Some(Reverse((at, seq, t))) = self.heap.peek() {
            if self.current.get(t) == Some(seq) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    pub fn pop_due(&mut self, before: SimTime) -> Option<(SimTime, T)> {
        let at = self.peek()?;
        if at >= before {
            return None;
        }
        let Reverse((at2, _, t)) = self.heap.pop().expect("peeked");
        debug_assert_eq!(at, at2);
        self.current.remove(&t);
        Some((at, t))
    }
}

impl<T: Ord + Copy> Default for Timers<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// An input for a node, in delivery order.
#[derive(Clone, Debug)]
pub enum Inbound<Msg> {
    Msg { at: SimTime, from: NodeId, msg: Msg },
    Disk { at: SimTime, token: u64, result: Result<(), DiskError> },
}

impl<Msg> Inbound<Msg> {
    pub fn at(&self) -> SimTime {
        match self {
            Inbound::Msg { at, .. } | Inbound::Disk { at, .. } => *at,
        }
    }
}

/// One incarnation of a model and everything it needs to run.
pub struct Runner<M: Model> {
    pub id: NodeId,
    model: M,
    rng: SimRng,
    timers: Timers<M::Timer>,
    started: bool,
    /// The node's own clock never goes backwards, even when it handles old input late
    /// (after a pause).
    last_now: SimTime,
    tcmds: Vec<TimerCmd<M::Timer>>,
    /// Effects not yet collected by the driver, and a durable snapshot per fsync issued.
    pub effects: Vec<Effect<M::Msg>>,
    pub snapshots: Vec<(u64, M::Durable)>,
}

impl<M: Model> Runner<M> {
    pub fn new(id: NodeId, model: M, seed: u64, incarnation: u32) -> Self {
        Runner {
            id,
            model,
            rng: stream_rng(seed, Stream::Node { node: id, incarnation }),
            timers: Timers::new(),
            started: false,
            last_now: SimTime::ZERO,
            tcmds: Vec::new(),
            effects: Vec::new(),
            snapshots: Vec::new(),
        }
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    pub fn next_timer(&mut self) -> Option<SimTime> {
        self.timers.peek()
    }

    fn step(&mut self, at: SimTime, f: impl FnOnce(&mut M, &mut Ctx<'_, M::Msg, M::Timer>)) {
        let now = at.max(self.last_now);
        self.last_now = now;
        let first_effect = self.effects.len();
        let mut ctx = Ctx { now, id: self.id, rng: &mut self.rng, effects: &mut self.effects, timers: &mut self.tcmds };
        if !self.started {
            self.started = true;
            self.model.on_start(&mut ctx);
        }
        f(&mut self.model, &mut ctx);
        self.model.check_invariants();
        for cmd in self.tcmds.drain(..) {
            if let TimerCmd::Set { at, .. } = cmd {
                assert!(at >= now, "timer armed in the past");
            }
            self.timers.apply(cmd);
        }
        for e in &self.effects[first_effect..] {
            if let Effect::Disk { op: models::DiskOp::Fsync, token, .. } = e {
                self.snapshots.push((*token, self.model.durable()));
            }
        }
    }

    /// Runs `on_start` if it has not run yet.
    pub fn start(&mut self, at: SimTime) {
        if !self.started {
            self.step(at, |_, _| {});
        }
    }

    pub fn deliver(&mut self, input: Inbound<M::Msg>, not_before: SimTime) {
        let at = input.at().max(not_before);
        match input {
            Inbound::Msg { from, msg, .. } => self.step(at, |m, ctx| m.on_message(ctx, from, msg)),
            Inbound::Disk { token, result, .. } => self.step(at, |m, ctx| m.on_disk(ctx, token, result)),
        }
    }

    /// Fires the earliest timer due before `before`, if any.
    pub fn fire_one(&mut self, before: SimTime, not_before: SimTime) -> bool {
        match self.timers.pop_due(before) {
            Some((at, timer)) => {
                self.step(at.max(not_before), |m, ctx| m.on_timer(ctx, timer));
                true
            }
            None => false,
        }
    }

    /// Handles a window's inputs (already in delivery order) merged with the timers that fall
    /// in the window, in time order; on a tie the message goes first. Inputs older than
    /// `window_start` (a node that was paused) are handled at `window_start`.
    pub fn run_window(
        &mut self,
        inbox: impl IntoIterator<Item = Inbound<M::Msg>>,
        window_start: SimTime,
        window_end: SimTime,
    ) {
        self.start(window_start);
        let mut inbox = inbox.into_iter().peekable();
        loop {
            let next_msg = inbox.peek().map(|i| i.at());
            let next_timer = self.timers.peek().filter(|t| *t < window_end);
            match (next_msg, next_timer) {
                (Some(m), Some(t)) if t < m => {
                    self.fire_one(window_end, window_start);
                }
                (Some(_), _) => {
                    let input = inbox.next().expect("peeked");
                    assert!(input.at() < window_end, "input beyond its window");
                    self.deliver(input, window_start);
                }
                (None, Some(_)) => {
                    self.fire_one(window_end, window_start);
                }
                (None, None) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_rearm_and_cancel() {
        let mut t = Timers::new();
        t.apply(TimerCmd::Set { timer: 'a', at: SimTime(10) });
        t.apply(TimerCmd::Set { timer: 'b', at: SimTime(5) });
        t.apply(TimerCmd::Set { timer: 'a', at: SimTime(3) });
        assert_eq!(t.pop_due(SimTime(100)), Some((SimTime(3), 'a')));
        t.apply(TimerCmd::Cancel { timer: 'b' });
        assert_eq!(t.peek(), None, "re-armed and cancelled entries are gone");
        for i in 0..10_000u64 {
            t.apply(TimerCmd::Set { timer: 'c', at: SimTime(i) });
        }
        assert!(t.heap.len() < 100, "stale entries are compacted");
        assert_eq!(t.pop_due(SimTime(10_000)), Some((SimTime(9_999), 'c')));
    }
}
