//! The stolon-proxy's data path: it accepts client connections and splices them to the
//! primary that the cluster data names, and to nothing else. Its control (watching the store,
//! closing everything after `proxyTimeout` without a check-in) lives with the host node; the
//! host drives this struct through `set_target` and `set_listening`.
//!
//! A plain struct rather than a `Model`: the host composes it with its etcd client, so every
//! method takes the host's context, whatever its timer type.

use std::time::Duration;

use super::relay::{InFlight, fail_upstream, forward, pop_self, send_settled};
use super::{ErrorKind, FlowMsg};
use crate::node::{Ctx, NodeId};

#[derive(Clone, Debug, PartialEq)]
pub struct ProxyRelayConfig {
    /// How long a forwarded part may stay unanswered before it fails as `TimedOut`. The
    /// stolon-proxy has no query timeout; this stands for TCP keepalive giving up on a dead
    /// peer, and bounds what the relay holds when answers are lost.
    pub part_timeout: Duration,
    /// Bound on distinct cohort parts in flight (a bounded table; beyond it, `Refused`).
    pub max_parts: usize,
}

impl Default for ProxyRelayConfig {
    fn default() -> Self {
        ProxyRelayConfig { part_timeout: Duration::from_secs(60), max_parts: 1 << 16 }
    }
}

#[derive(Clone, Debug)]
pub struct ProxyRelay {
    cfg: ProxyRelayConfig,
    target: Option<NodeId>,
    listening: bool,
    in_flight: InFlight,
}

impl ProxyRelay {
    /// A proxy starts without a target and not listening, as the real one does until it has
    /// read the cluster data.
    pub fn new(cfg: ProxyRelayConfig) -> ProxyRelay {
        assert!(!cfg.part_timeout.is_zero());
        let in_flight = InFlight::new(cfg.max_parts);
        ProxyRelay { cfg, target: None, listening: false, in_flight }
    }

    pub fn target(&self) -> Option<NodeId> {
        self.target
    }

    pub fn listening(&self) -> bool {
        self.listening
    }

    /// Requests in flight to the database.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.total()
    }

    /// Points new connections at `target`. A change closes the connections to the old target
    /// (stolon-proxy closes them on a new master), so their parts fail as `ConnectionClosed`.
    pub fn set_target<T>(&mut self, ctx: &mut Ctx<'_, FlowMsg, T>, target: Option<NodeId>) {
        if target == self.target {
            return;
        }
        if let Some(old) = self.target {
            for s in self.in_flight.cut(old) {
                send_settled(ctx, &s);
            }
        }
        self.target = target;
    }

    /// Starts or stops listening. Stopping closes every connection; while not listening,
    /// connection attempts are refused and health checks fail.
    pub fn set_listening<T>(&mut self, ctx: &mut Ctx<'_, FlowMsg, T>, listening: bool) {
        if self.listening && !listening {
            for s in self.in_flight.cut_all() {
                send_settled(ctx, &s);
            }
        }
        self.listening = listening;
    }

    pub fn on_message<T>(&mut self, ctx: &mut Ctx<'_, FlowMsg, T>, from: NodeId, msg: FlowMsg) {
        match msg {
            FlowMsg::Requests { cohort, route } => match self.target {
                Some(to) if self.listening && !self.in_flight.is_full() => {
                    assert!(self.in_flight.add(&cohort, route, to, ctx.now, cohort.count), "checked not full");
                    forward(ctx, to, &cohort, route, cohort.count);
                }
                // Not listening, no master, or no room: the connection is refused.
                _ => fail_upstream(ctx, cohort, route, ErrorKind::Refused, cohort.count),
            },
            FlowMsg::Outcome { cohort, mut outcome, route } => {
                pop_self(ctx.id, route);
                // Answers from a former target still count: their connections were open until
                // the retarget cut them, and parts already cut are no longer owed.
                if let Some(s) = self.in_flight.on_outcome(from, &cohort, &mut outcome) {
                    send_settled(ctx, &s);
                }
            }
            FlowMsg::Check { seq } => ctx.send(from, FlowMsg::CheckReply { seq, ok: self.listening }),
            FlowMsg::CheckReply { .. } => {}
        }
    }

    /// Fails parts unanswered for `part_timeout`. Call it periodically (every second is plenty).
    pub fn tick<T>(&mut self, ctx: &mut Ctx<'_, FlowMsg, T>) {
        for s in self.in_flight.expire(ctx.now, self.cfg.part_timeout) {
            send_settled(ctx, &s);
        }
    }

    pub fn check_invariants(&self) {
        self.in_flight.check_invariants();
        if !self.listening {
            assert_eq!(self.in_flight.total(), 0, "a proxy that stopped listening holds no connections");
        }
        if self.target.is_none() {
            assert_eq!(self.in_flight.total(), 0, "nothing in flight without a target");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::testkit::*;
    use crate::flow::{Outcome, ReqKind, Route};

    const PROXY: NodeId = 10;
    const HAP: NodeId = 3;
    const PG1: NodeId = 20;
    const PG2: NodeId = 21;

    fn route() -> Route {
        Route::new(1).push(2).push(HAP)
    }

    fn req(seq: u64, n: u64) -> FlowMsg {
        FlowMsg::Requests { cohort: cohort(1, seq, 0, ReqKind::Write, n, ms_(0)), route: route() }
    }

    fn relay(h: &mut Harness<()>) -> ProxyRelay {
        let mut r = ProxyRelay::new(ProxyRelayConfig::default());
        r.set_listening(&mut h.ctx(), true);
        r.set_target(&mut h.ctx(), Some(PG1));
        r
    }

    #[test]
    fn forwards_to_the_target_and_relays_outcomes_back() {
        let mut h = Harness::new(PROXY, 1);
        let mut r = relay(&mut h);
        r.on_message(&mut h.ctx(), HAP, req(1, 5));
        let e = h.drain();
        let [(to, c, rt)] = requests(&e)[..] else { panic!("{e:?}") };
        assert_eq!((to, c.count, rt), (PG1, 5, route().push(PROXY)));
        r.on_message(&mut h.ctx(), PG1, answer(c, rt, Outcome::ok(5)));
        let e = h.drain();
        assert_eq!(outcomes(&e), vec![(HAP, c, Outcome::ok(5), route())]);
        assert_eq!(r.in_flight(), 0);
        r.check_invariants();
    }

    #[test]
    fn retarget_cuts_parts_to_the_old_primary() {
        let mut h = Harness::new(PROXY, 1);
        let mut r = relay(&mut h);
        r.on_message(&mut h.ctx(), HAP, req(1, 5));
        let e = h.drain();
        let (_, c, rt) = requests(&e)[0];
        r.set_target(&mut h.ctx(), Some(PG1));
        assert!(h.drain().is_empty(), "the same target changes nothing");
        r.set_target(&mut h.ctx(), Some(PG2));
        let e = h.drain();
        assert_eq!(outcome_sum(&e, HAP), failed(ErrorKind::ConnectionClosed, 5));
        // The old primary's late answer is not owed any more.
        r.on_message(&mut h.ctx(), PG1, answer(c, rt, Outcome::ok(5)));
        assert!(h.drain().is_empty());
        r.on_message(&mut h.ctx(), HAP, req(2, 3));
        assert_eq!(requests(&h.drain())[0].0, PG2);
        r.check_invariants();
    }

    #[test]
    fn not_listening_refuses_cuts_and_fails_checks() {
        let mut h = Harness::new(PROXY, 1);
        let mut r = relay(&mut h);
        r.on_message(&mut h.ctx(), HAP, FlowMsg::Check { seq: 4 });
        r.on_message(&mut h.ctx(), HAP, req(1, 5));
        h.drain();
        r.set_listening(&mut h.ctx(), false);
        assert_eq!(outcome_sum(&h.drain(), HAP), failed(ErrorKind::ConnectionClosed, 5));
        r.on_message(&mut h.ctx(), HAP, req(2, 7));
        r.on_message(&mut h.ctx(), HAP, FlowMsg::Check { seq: 5 });
        let e = h.drain();
        assert_eq!(outcome_sum(&e, HAP), failed(ErrorKind::Refused, 7));
        assert!(requests(&e).is_empty());
        assert!(sends(&e).contains(&(HAP, FlowMsg::CheckReply { seq: 5, ok: false })));
        r.check_invariants();
        // Listening but without a master: refused too; checks pass (the port is open).
        r.set_listening(&mut h.ctx(), true);
        r.set_target(&mut h.ctx(), None);
        r.on_message(&mut h.ctx(), HAP, req(3, 2));
        r.on_message(&mut h.ctx(), HAP, FlowMsg::Check { seq: 6 });
        let e = h.drain();
        assert_eq!(outcome_sum(&e, HAP), failed(ErrorKind::Refused, 2));
        assert!(sends(&e).contains(&(HAP, FlowMsg::CheckReply { seq: 6, ok: true })));
    }

    #[test]
    fn tick_times_out_unanswered_parts() {
        let mut h = Harness::new(PROXY, 1);
        let mut r = relay(&mut h);
        r.on_message(&mut h.ctx(), HAP, req(1, 5));
        h.drain();
        h.set_ms(59_999);
        r.tick(&mut h.ctx());
        assert!(h.drain().is_empty());
        h.set_ms(60_000);
        r.tick(&mut h.ctx());
        assert_eq!(outcome_sum(&h.drain(), HAP), failed(ErrorKind::TimedOut, 5));
        r.check_invariants();
    }
}
