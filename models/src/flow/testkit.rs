//! Hand-built contexts for the flow models' unit tests: the test plays the network, delivering
//! or withholding each emitted message, and asserts on the effects.

use std::time::Duration;

use super::{Cohort, ErrorKind, FlowMsg, Outcome, ReqKind, Route};
use crate::node::{Ctx, Effect, Label, NodeId, TimerCmd};
use crate::rng::{SimRng, Stream, stream_rng};
use crate::time::SimTime;
use crate::trace::TraceKind;

pub struct Harness<T> {
    pub rng: SimRng,
    pub effects: Vec<Effect<FlowMsg>>,
    pub timers: Vec<TimerCmd<T>>,
    pub now: SimTime,
    pub id: NodeId,
}

impl<T> Harness<T> {
    pub fn new(id: NodeId, seed: u64) -> Harness<T> {
        Harness { rng: stream_rng(seed, Stream::Named(7)), effects: vec![], timers: vec![], now: SimTime::ZERO, id }
    }
    pub fn ctx(&mut self) -> Ctx<'_, FlowMsg, T> {
        Ctx { now: self.now, id: self.id, rng: &mut self.rng, effects: &mut self.effects, timers: &mut self.timers }
    }
    pub fn set_ms(&mut self, ms: u64) {
        self.now = ms_(ms);
    }
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }
    /// Takes every effect emitted so far.
    pub fn drain(&mut self) -> Vec<Effect<FlowMsg>> {
        self.timers.clear();
        std::mem::take(&mut self.effects)
    }
}

pub fn ms_(ms: u64) -> SimTime {
    SimTime(ms * 1_000_000)
}

pub fn sends(effects: &[Effect<FlowMsg>]) -> Vec<(NodeId, FlowMsg)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg, .. } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

/// `Requests` sent: (to, cohort, route).
pub fn requests(effects: &[Effect<FlowMsg>]) -> Vec<(NodeId, Cohort, Route)> {
    sends(effects)
        .into_iter()
        .filter_map(|(to, m)| match m {
            FlowMsg::Requests { cohort, route } => Some((to, cohort, route)),
            _ => None,
        })
        .collect()
}

/// `Outcome`s sent: (to, cohort, outcome, route).
pub fn outcomes(effects: &[Effect<FlowMsg>]) -> Vec<(NodeId, Cohort, Outcome, Route)> {
    sends(effects)
        .into_iter()
        .filter_map(|(to, m)| match m {
            FlowMsg::Outcome { cohort, outcome, route } => Some((to, cohort, outcome, route)),
            _ => None,
        })
        .collect()
}

/// The sum of the outcomes sent to `to`.
pub fn outcome_sum(effects: &[Effect<FlowMsg>], to: NodeId) -> Outcome {
    let mut sum = Outcome::default();
    for (t, _, o, _) in outcomes(effects) {
        if t == to {
            sum.add(&o);
        }
    }
    sum
}

pub fn requested(effects: &[Effect<FlowMsg>]) -> u64 {
    requests(effects).iter().map(|r| r.1.count).sum()
}

pub fn counted(effects: &[Effect<FlowMsg>], metric: &str, label: Label) -> u64 {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Count { metric: m, label: l, delta, .. } if *m == metric && *l == label => Some(*delta),
            _ => None,
        })
        .sum()
}

/// (value, count) samples of a distribution.
pub fn observed(effects: &[Effect<FlowMsg>], metric: &str, label: Label) -> Vec<(f64, u64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Observe { metric: m, label: l, value, count, .. } if *m == metric && *l == label => {
                Some((*value, *count))
            }
            _ => None,
        })
        .collect()
}

pub fn traces(effects: &[Effect<FlowMsg>]) -> Vec<TraceKind> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Trace { kind, .. } => Some(kind.clone()),
            _ => None,
        })
        .collect()
}

pub fn cohort(client: NodeId, seq: u64, tenant: u16, kind: ReqKind, count: u64, created: SimTime) -> Cohort {
    Cohort { client, seq, tenant, kind, count, created, deadline: SimTime::MAX }
}

/// The answer a downstream node gives to a `Requests` it received from `from`.
pub fn answer(cohort: Cohort, route: Route, outcome: Outcome) -> FlowMsg {
    assert_eq!(cohort.count, outcome.total(), "a test answers a part in full");
    FlowMsg::Outcome { cohort, outcome, route }
}

pub fn failed(kind: ErrorKind, n: u64) -> Outcome {
    Outcome::failed(kind, n)
}
