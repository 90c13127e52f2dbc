//! What a hop of the request path (PgBouncer, HAProxy, the stolon-proxy) still owes upstream:
//! cohorts it forwarded downstream and whose outcomes have not come back yet. Every hop needs
//! the same three answers from it: who to pass an outcome back to, which parts waited too long
//! (they fail as `TimedOut`), and which parts die with a downstream connection (they fail as
//! `ConnectionClosed`).
//!
//! Parts are keyed by (client, seq, downstream node). A hop may forward one cohort to the same
//! downstream in several parts over time (a pool releasing it as connections free up); those
//! parts share an entry and keep their send times as FIFO batches, because outcomes carry no
//! part identity: an answer is credited to the oldest batch first. An answer for a batch that
//! already expired is therefore credited to a younger batch of the same cohort; the totals a
//! client sees still never exceed what it sent, because every hop credits at most what it owes.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::{Cohort, ErrorKind, FlowMsg, Outcome, Route};
use crate::node::{Ctx, NodeId};
use crate::time::SimTime;

/// (client, seq, downstream node).
pub type PartKey = (NodeId, u64, NodeId);

/// Send-time batches kept per part; beyond this, new sends join the youngest batch (which only
/// makes them look older, so they expire early rather than never).
const BATCHES_PER_PART_MAX: usize = 32;

#[derive(Clone, Debug)]
struct Part {
    /// The cohort as the upstream hop sent it (identity, tenant, kind, creation time).
    cohort: Cohort,
    /// The `Requests` route as received: it ends with the upstream hop.
    upstream: Route,
    /// (send time, count), oldest first; the counts sum to `remaining`.
    batches: VecDeque<(SimTime, u64)>,
    remaining: u64,
}

/// Requests leaving the relay: answered (`on_outcome`) or failed here (`expire`, `cut`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settled {
    pub cohort: Cohort,
    /// Where the outcome goes: the route ends with the upstream hop (the receiver).
    pub upstream: Route,
    pub outcome: Outcome,
    pub downstream: NodeId,
    /// When the oldest of these requests was sent downstream (for round-trip times).
    pub sent: SimTime,
}

#[derive(Clone, Debug)]
pub struct InFlight {
    parts: BTreeMap<PartKey, Part>,
    per_downstream: BTreeMap<NodeId, u64>,
    total: u64,
    max_parts: usize,
    /// No batch was sent before this (a lower bound, exact after each `expire` scan): lets
    /// `expire`, called on every tick, skip the scan while nothing can have timed out.
    oldest_sent: SimTime,
    deep: crate::node::DeepCheck,
}

impl InFlight {
    /// `max_parts` bounds the number of distinct (client, seq, downstream) entries.
    pub fn new(max_parts: usize) -> InFlight {
        assert!(max_parts > 0);
        InFlight {
            parts: BTreeMap::new(),
            per_downstream: BTreeMap::new(),
            total: 0,
            max_parts,
            oldest_sent: SimTime::MAX,
            deep: Default::default(),
        }
    }

    /// Records `count` requests of `cohort` sent to `downstream` at `now`. Returns false (and
    /// records nothing) when the table is full: the caller fails them instead.
    #[must_use]
    pub fn add(&mut self, cohort: &Cohort, upstream: Route, downstream: NodeId, now: SimTime, count: u64) -> bool {
        assert!(count > 0, "an empty part is not in flight");
        let key = (cohort.client, cohort.seq, downstream);
        match self.parts.get_mut(&key) {
            Some(part) => {
                assert_eq!(part.upstream, upstream, "one cohort reached this hop by two routes");
                let full = part.batches.len() >= BATCHES_PER_PART_MAX;
                match part.batches.back_mut() {
                    Some((at, n)) if *at == now || full => *n += count,
                    _ => part.batches.push_back((now, count)),
                }
                part.remaining += count;
            }
            None => {
                if self.parts.len() >= self.max_parts {
                    return false;
                }
                let batches = VecDeque::from([(now, count)]);
                self.parts.insert(key, Part { cohort: *cohort, upstream, batches, remaining: count });
            }
        }
        *self.per_downstream.entry(downstream).or_default() += count;
        self.total += count;
        self.oldest_sent = self.oldest_sent.min(now);
        true
    }

    /// Credits an answer from `downstream`: moves out of `outcome` what this relay still owes
    /// for that cohort and returns it with the route upstream. `None` when nothing is owed
    /// (the parts expired or were cut: a late answer is dropped).
    pub fn on_outcome(&mut self, downstream: NodeId, cohort: &Cohort, outcome: &mut Outcome) -> Option<Settled> {
        let key = (cohort.client, cohort.seq, downstream);
        let part = self.parts.get_mut(&key)?;
        let taken = outcome.take(part.remaining);
        let n = taken.total();
        if n == 0 {
            return None;
        }
        let sent = part.batches.front().expect("a part with requests has a batch").0;
        let mut left = n;
        while left > 0 {
            let (_, b) = part.batches.front_mut().expect("batches sum to remaining");
            let k = (*b).min(left);
            *b -= k;
            left -= k;
            if *b == 0 {
                part.batches.pop_front();
            }
        }
        part.remaining -= n;
        let settled = Settled { cohort: part.cohort, upstream: part.upstream, outcome: taken, downstream, sent };
        if part.remaining == 0 {
            self.parts.remove(&key);
        }
        self.forget(downstream, n);
        Some(settled)
    }

    /// Fails every batch sent at or before `now - timeout` as `TimedOut`.
    pub fn expire(&mut self, now: SimTime, timeout: Duration) -> Vec<Settled> {
        let mut out = Vec::new();
        if self.oldest_sent + timeout > now {
            return out;
        }
        let mut emptied = Vec::new();
        let mut oldest = SimTime::MAX;
        for (key, part) in self.parts.iter_mut() {
            let mut n = 0;
            let mut sent = None;
            while let Some(&(at, b)) = part.batches.front() {
                if at + timeout > now {
                    break;
                }
                sent.get_or_insert(at);
                n += b;
                part.batches.pop_front();
            }
            if let Some(sent) = sent {
                part.remaining -= n;
                let outcome = Outcome::failed(ErrorKind::TimedOut, n);
                out.push(Settled { cohort: part.cohort, upstream: part.upstream, outcome, downstream: key.2, sent });
                if part.remaining == 0 {
                    emptied.push(*key);
                }
            }
            if let Some(&(at, _)) = part.batches.front() {
                oldest = oldest.min(at);
            }
        }
        self.oldest_sent = oldest;
        for key in emptied {
            self.parts.remove(&key);
        }
        for s in &out {
            self.forget(s.downstream, s.outcome.total());
        }
        out
    }

    /// Fails everything in flight to `downstream` as `ConnectionClosed` (its connections died).
    pub fn cut(&mut self, downstream: NodeId) -> Vec<Settled> {
        let keys: Vec<PartKey> = self.parts.keys().filter(|k| k.2 == downstream).copied().collect();
        self.remove_failed(keys)
    }

    /// Fails everything in flight as `ConnectionClosed`.
    pub fn cut_all(&mut self) -> Vec<Settled> {
        let keys: Vec<PartKey> = self.parts.keys().copied().collect();
        self.remove_failed(keys)
    }

    fn remove_failed(&mut self, keys: Vec<PartKey>) -> Vec<Settled> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let part = self.parts.remove(&key).expect("key listed from the table");
            let sent = part.batches.front().expect("a part with requests has a batch").0;
            let outcome = Outcome::failed(ErrorKind::ConnectionClosed, part.remaining);
            self.forget(key.2, part.remaining);
            out.push(Settled { cohort: part.cohort, upstream: part.upstream, outcome, downstream: key.2, sent });
        }
        out
    }

    fn forget(&mut self, downstream: NodeId, n: u64) {
        let d = self.per_downstream.get_mut(&downstream).expect("downstream with requests in flight");
        *d -= n;
        if *d == 0 {
            self.per_downstream.remove(&downstream);
        }
        self.total -= n;
    }

    /// Requests in flight to `downstream`.
    pub fn in_flight_to(&self, downstream: NodeId) -> u64 {
        self.per_downstream.get(&downstream).copied().unwrap_or(0)
    }

    /// Requests in flight to all downstreams.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Distinct (client, seq, downstream) entries.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    pub fn is_full(&self) -> bool {
        self.parts.len() >= self.max_parts
    }

    pub fn check_invariants(&self) {
        assert!(self.parts.len() <= self.max_parts, "in-flight table over its bound");
        if !self.deep.due() {
            return;
        }
        let mut per: BTreeMap<NodeId, u64> = BTreeMap::new();
        for (key, part) in &self.parts {
            assert!(part.remaining > 0, "an empty part stays in the table");
            assert!(part.batches.front().is_some_and(|b| b.0 >= self.oldest_sent), "a batch older than the bound");
            assert_eq!(part.batches.iter().map(|b| b.1).sum::<u64>(), part.remaining, "batches drift from the count");
            assert!(part.batches.len() <= BATCHES_PER_PART_MAX);
            assert!(part.batches.iter().zip(part.batches.iter().skip(1)).all(|(a, b)| a.0 <= b.0));
            *per.entry(key.2).or_default() += part.remaining;
        }
        assert_eq!(per, self.per_downstream, "per-downstream counts drift");
        assert_eq!(per.values().sum::<u64>(), self.total);
    }
}

/// Sends `outcome` for `cohort` back to the last hop of `route` (which ends with the receiver).
/// Nothing is sent for an empty outcome.
pub fn send_outcome<T>(ctx: &mut Ctx<'_, FlowMsg, T>, cohort: Cohort, outcome: Outcome, route: Route) {
    if outcome.total() == 0 {
        return;
    }
    let to = route.last().expect("an outcome needs somewhere to go");
    ctx.send(to, FlowMsg::Outcome { cohort, outcome, route });
}

/// Fails `count` requests of `cohort` at this hop and tells the upstream hop at once.
pub fn fail_upstream<T>(ctx: &mut Ctx<'_, FlowMsg, T>, cohort: Cohort, route: Route, kind: ErrorKind, count: u64) {
    send_outcome(ctx, cohort, Outcome::failed(kind, count), route);
}

/// Passes a settled part back upstream.
pub fn send_settled<T>(ctx: &mut Ctx<'_, FlowMsg, T>, s: &Settled) {
    send_outcome(ctx, s.cohort, s.outcome, s.upstream);
}

/// Forwards `count` requests of `cohort` to `to`, adding this hop to the route.
pub fn forward<T>(ctx: &mut Ctx<'_, FlowMsg, T>, to: NodeId, cohort: &Cohort, upstream: Route, count: u64) {
    let route = upstream.push(ctx.id);
    ctx.send(to, FlowMsg::Requests { cohort: cohort.with_count(count), route });
}

/// Takes this hop off the route of an `Outcome` it received (the route ends with the receiver).
pub fn pop_self(id: NodeId, route: Route) -> Route {
    let (last, rest) = route.pop().expect("an outcome with an empty route");
    assert_eq!(last, id, "an outcome reached a node that is not the end of its route");
    rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::ReqKind;

    const D1: NodeId = 7;
    const D2: NodeId = 8;

    fn cohort(seq: u64, count: u64) -> Cohort {
        Cohort { client: 1, seq, tenant: 0, kind: ReqKind::Read, count, created: SimTime::ZERO, deadline: SimTime::MAX }
    }

    fn at(ms: u64) -> SimTime {
        SimTime(ms * 1_000_000)
    }

    fn up() -> Route {
        Route::new(1).push(2)
    }

    #[test]
    fn outcomes_credit_the_oldest_batch_and_clamp_to_what_is_owed() {
        let mut f = InFlight::new(16);
        let c = cohort(5, 10);
        assert!(f.add(&c, up(), D1, at(0), 4));
        assert!(f.add(&c, up(), D1, at(10), 6));
        assert!(f.add(&c, up(), D2, at(10), 3));
        assert_eq!((f.in_flight_to(D1), f.in_flight_to(D2), f.total(), f.parts()), (10, 3, 13, 2));
        let mut o = Outcome::ok(5);
        let s = f.on_outcome(D1, &c, &mut o).expect("owed");
        assert_eq!((s.outcome, s.sent, s.upstream, o.total()), (Outcome::ok(5), at(0), up(), 0));
        // 5 left to D1; an answer for 7 is credited 5 and the rest stays with the caller.
        let mut o = Outcome::ok(3);
        o.add(&Outcome::failed(ErrorKind::ReadOnly, 4));
        let s = f.on_outcome(D1, &c, &mut o).expect("owed");
        assert_eq!(s.sent, at(10), "the first batch was used up");
        assert_eq!((s.outcome.ok, s.outcome.error(ErrorKind::ReadOnly)), (3, 2));
        assert_eq!(o, Outcome::failed(ErrorKind::ReadOnly, 2));
        assert_eq!(f.on_outcome(D1, &c, &mut Outcome::ok(1)), None, "nothing owed any more");
        assert_eq!((f.in_flight_to(D1), f.total()), (0, 3));
        f.check_invariants();
    }

    #[test]
    fn expire_fails_old_batches_only() {
        let mut f = InFlight::new(16);
        let c = cohort(1, 10);
        assert!(f.add(&c, up(), D1, at(0), 4));
        assert!(f.add(&c, up(), D1, at(50), 6));
        assert!(f.expire(at(99), Duration::from_millis(100)).is_empty(), "not yet");
        let e = f.expire(at(100), Duration::from_millis(100));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].outcome, e[0].sent, e[0].downstream), (Outcome::failed(ErrorKind::TimedOut, 4), at(0), D1));
        assert_eq!(f.total(), 6);
        f.check_invariants();
        let e = f.expire(at(150), Duration::from_millis(100));
        assert_eq!(e[0].outcome, Outcome::failed(ErrorKind::TimedOut, 6));
        assert_eq!((f.total(), f.parts()), (0, 0));
        f.check_invariants();
    }

    #[test]
    fn cut_fails_one_downstream_as_connection_closed() {
        let mut f = InFlight::new(16);
        assert!(f.add(&cohort(1, 5), up(), D1, at(0), 5));
        assert!(f.add(&cohort(2, 3), up(), D1, at(1), 3));
        assert!(f.add(&cohort(2, 3), up(), D2, at(1), 2));
        let cut = f.cut(D1);
        assert_eq!(cut.iter().map(|s| s.outcome.error(ErrorKind::ConnectionClosed)).sum::<u64>(), 8);
        assert_eq!(cut.iter().map(|s| s.cohort.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!((f.in_flight_to(D1), f.in_flight_to(D2)), (0, 2));
        assert_eq!(f.cut_all()[0].outcome, Outcome::failed(ErrorKind::ConnectionClosed, 2));
        assert_eq!(f.total(), 0);
        f.check_invariants();
    }

    #[test]
    fn a_full_table_refuses_new_parts_but_merges_known_ones() {
        let mut f = InFlight::new(1);
        assert!(f.add(&cohort(1, 5), up(), D1, at(0), 2));
        assert!(!f.add(&cohort(2, 5), up(), D1, at(0), 2), "a second entry does not fit");
        assert!(f.add(&cohort(1, 5), up(), D1, at(3), 3), "more of the same cohort merges");
        assert_eq!(f.total(), 5);
        f.check_invariants();
    }

    #[test]
    fn outcome_take_prefers_successes_then_error_order() {
        let mut o = Outcome::ok(2);
        o.add(&Outcome::failed(ErrorKind::TimedOut, 3));
        o.add(&Outcome::failed(ErrorKind::Refused, 1));
        let t = o.take(4);
        assert_eq!((t.ok, t.error(ErrorKind::Refused), t.error(ErrorKind::TimedOut)), (2, 1, 1));
        assert_eq!(o, Outcome::failed(ErrorKind::TimedOut, 2));
        assert_eq!(o.take(10).total(), 2);
        assert_eq!(o.total(), 0);
    }
}
