//! PgBouncer through its sans-IO interface: the test plays the client and HAProxy, sending
//! cohorts in and answering (or not) what the bouncer forwards.

use super::*;
use crate::flow::Outcome;
use crate::flow::testkit::*;
use crate::node::{Effect, TimerCmd};

const C: NodeId = 1;
const BNC: NodeId = 2;
const HAP: NodeId = 3;

type Effects = Vec<Effect<FlowMsg>>;

struct Rig {
    h: Harness<BouncerTimer>,
    b: Bouncer,
    seq: u64,
    tick: Duration,
}

/// A bouncer with no CPU limit, plenty of client connections and 1 ms connects, unless the
/// test says otherwise.
fn cfg() -> BouncerConfig {
    let mut c = BouncerConfig::new(HAP);
    c.cpu_per_query_us = 0.0;
    c.pool.max_client_conn = 1_000_000;
    c.pool.server_connect_time = Duration::from_millis(1);
    c
}

fn rig(cfg: BouncerConfig) -> Rig {
    let mut h = Harness::new(BNC, 1);
    let tick = cfg.tick;
    let mut b = Bouncer::new(cfg);
    b.on_start(&mut h.ctx());
    h.drain();
    Rig { h, b, seq: 0, tick }
}

/// A request part the bouncer forwarded: (cohort, route).
type Fwd = (Cohort, Route);

fn forwards(e: &Effects) -> Vec<Fwd> {
    requests(e)
        .into_iter()
        .map(|(to, c, r)| {
            assert_eq!((to, r), (HAP, Route::new(C).push(BNC)), "forwards go to HAProxy with the bouncer on the route");
            (c, r)
        })
        .collect()
}

fn total(f: &[Fwd]) -> u64 {
    f.iter().map(|x| x.0.count).sum()
}

impl Rig {
    fn send(&mut self, tenant: TenantId, kind: ReqKind, n: u64) -> Effects {
        self.seq += 1;
        let c = cohort(C, self.seq, tenant, kind, n, self.h.now);
        self.b.on_message(&mut self.h.ctx(), C, FlowMsg::Requests { cohort: c, route: Route::new(C) });
        self.b.check_invariants();
        self.h.drain()
    }

    /// Ticks until `ms`, collecting the effects.
    fn tick_to(&mut self, ms: u64) -> Effects {
        let mut all = vec![];
        while self.h.now + self.tick <= ms_(ms) {
            self.h.advance(self.tick);
            self.b.on_timer(&mut self.h.ctx(), BouncerTimer::Tick);
            self.b.check_invariants();
            all.extend(self.h.drain());
        }
        all
    }

    fn answer(&mut self, f: &Fwd, outcome: Outcome) -> Effects {
        let msg = FlowMsg::Outcome { cohort: f.0, outcome, route: f.1 };
        self.b.on_message(&mut self.h.ctx(), HAP, msg);
        self.b.check_invariants();
        self.h.drain()
    }
}

const T0: Label = Label::Tenant(0);

#[test]
fn at_most_default_pool_size_in_flight_per_pool() {
    let mut c = cfg();
    c.pool.default_pool_size = 5;
    let mut r = rig(c);
    let e = r.send(0, ReqKind::Read, 12);
    assert!(forwards(&e).is_empty(), "no server connection yet");
    let e = r.tick_to(10);
    let f = forwards(&e);
    assert_eq!(total(&f), 5);
    assert_eq!(counted(&e, BOUNCER_SERVER_LOGINS, Label::Node(BNC)), 5);
    assert_eq!((r.b.in_flight(0, Db::Read), r.b.waiting(), r.b.open_connections(0, Db::Read)), (5, 7, 5));
    // Two answers free two connections: two more go at once, and the answers go to the client.
    let e = r.answer(&f[0], Outcome::ok(2));
    assert_eq!(outcome_sum(&e, C), Outcome::ok(2));
    assert!(outcomes(&e).iter().all(|o| o.3 == Route::new(C)));
    assert_eq!(total(&forwards(&e)), 2);
    assert_eq!(r.b.in_flight(0, Db::Read), 5);
    // Other tenants and the write database have pools of their own.
    let mut e = r.send(1, ReqKind::Read, 3);
    e.extend(r.send(0, ReqKind::Write, 3));
    e.extend(r.send(0, ReqKind::ReadPrimary, 4));
    e.extend(r.tick_to(20));
    let f = forwards(&e);
    assert_eq!(f.iter().filter(|x| x.0.tenant == 1).map(|x| x.0.count).sum::<u64>(), 3);
    assert_eq!(f.iter().filter(|x| x.0.kind.needs_primary()).map(|x| x.0.count).sum::<u64>(), 5, "write pool of 5");
    assert_eq!((r.b.in_flight(0, Db::Read), r.b.in_flight(0, Db::Write)), (5, 5));
}

#[test]
fn the_reserve_pool_opens_after_reserve_pool_timeout() {
    let mut c = cfg();
    c.pool.default_pool_size = 2;
    c.pool.reserve_pool_size = 3;
    c.pool.reserve_pool_timeout = Duration::from_secs(1);
    let mut r = rig(c);
    r.send(0, ReqKind::Read, 10);
    let e = r.tick_to(990);
    assert_eq!((total(&forwards(&e)), r.b.open_connections(0, Db::Read)), (2, 2));
    let e = r.tick_to(1020);
    assert_eq!((total(&forwards(&e)), r.b.open_connections(0, Db::Read)), (3, 5), "the reserve joins");
}

#[test]
fn query_wait_timeout_fails_waiting_clients() {
    let mut c = cfg();
    c.pool.default_pool_size = 1;
    c.pool.query_wait_timeout = Duration::from_secs(2);
    let mut r = rig(c);
    r.send(0, ReqKind::Read, 5);
    let e = r.tick_to(1990);
    assert_eq!(outcome_sum(&e, C), Outcome::default());
    let e = r.tick_to(2000);
    assert_eq!(outcome_sum(&e, C), failed(ErrorKind::PoolExhausted, 4));
    assert_eq!(counted(&e, BOUNCER_WAIT_TIMEOUTS, T0), 4);
    assert_eq!((r.b.waiting(), r.b.in_flight(0, Db::Read)), (0, 1), "the one in flight is not affected");
}

#[test]
fn max_client_conn_refuses_the_excess_at_once() {
    let mut c = cfg();
    c.pool.default_pool_size = 2;
    c.pool.max_client_conn = 10;
    let mut r = rig(c);
    let e = r.send(0, ReqKind::Read, 8);
    assert_eq!(outcome_sum(&e, C), Outcome::default());
    r.tick_to(10);
    let e = r.send(1, ReqKind::Write, 5);
    assert_eq!(outcome_sum(&e, C), failed(ErrorKind::Refused, 3), "8 clients held, room for 2");
    assert_eq!(counted(&e, BOUNCER_REFUSED, Label::Tenant(1)), 3);
}

#[test]
fn a_refused_login_fails_new_clients_for_server_login_retry() {
    let mut c = cfg();
    c.pool.default_pool_size = 2;
    let mut r = rig(c);
    r.send(0, ReqKind::Read, 2);
    let f = forwards(&r.tick_to(10));
    let e = r.answer(&f[0], failed(ErrorKind::Refused, 2));
    assert_eq!(outcome_sum(&e, C), failed(ErrorKind::Refused, 2), "passed back");
    assert_eq!(r.b.open_connections(0, Db::Read), 0, "the refused connections are gone");
    // New clients of that pool get an error at once, without a try.
    let e = r.send(0, ReqKind::Read, 3);
    assert_eq!(outcome_sum(&e, C), failed(ErrorKind::Refused, 3));
    assert_eq!(counted(&e, BOUNCER_LOGIN_REFUSED, T0), 3);
    // Other pools are not affected.
    r.send(1, ReqKind::Read, 2);
    let e = r.tick_to(14_990);
    assert_eq!(forwards(&e).iter().map(|f| (f.0.tenant, f.0.count)).collect::<Vec<_>>(), vec![(1, 2)]);
    let e = r.send(0, ReqKind::Read, 1);
    assert_eq!(outcome_sum(&e, C), failed(ErrorKind::Refused, 1), "still within server_login_retry");
    // 15 s after the refusal (at 10 ms) the pool logs in again.
    r.tick_to(15_010);
    let e = r.send(0, ReqKind::Read, 2);
    assert_eq!(outcome_sum(&e, C), Outcome::default());
    assert_eq!(total(&forwards(&r.tick_to(15_020))), 2);
}

#[test]
fn after_a_failover_every_pool_reconnects_one_login_at_a_time_alongside_the_others() {
    let mut c = cfg();
    c.pool.default_pool_size = 10;
    c.pool.server_connect_time = Duration::from_millis(5);
    let mut r = rig(c);
    // Warm up: both tenants' pools open their 10 connections.
    r.send(0, ReqKind::Read, 10);
    r.send(1, ReqKind::Read, 10);
    let f = forwards(&r.tick_to(200));
    assert_eq!(total(&f), 20);
    for x in &f {
        r.answer(x, Outcome::ok(x.0.count));
    }
    // The failover: every connection is closed under the requests in flight.
    let mut e = r.send(0, ReqKind::Read, 10);
    e.extend(r.send(1, ReqKind::Read, 10));
    let f = forwards(&e);
    assert_eq!(total(&f), 20, "idle connections serve at once");
    for x in &f {
        let e = r.answer(x, failed(ErrorKind::ConnectionClosed, x.0.count));
        assert_eq!(outcome_sum(&e, C).error(ErrorKind::ConnectionClosed), x.0.count);
    }
    assert_eq!(r.b.open_connections(0, Db::Read) + r.b.open_connections(1, Db::Read), 0);
    // Everyone comes back at 200 ms: each pool logs in one connection after another, 5 ms
    // each (PgBouncer's launch_new_connection: one attempt in progress per pool), and the
    // two pools do so side by side.
    r.send(0, ReqKind::Read, 10);
    r.send(1, ReqKind::Read, 10);
    let e = r.tick_to(220);
    assert_eq!(counted(&e, BOUNCER_SERVER_LOGINS, Label::Node(BNC)), 8);
    assert_eq!((r.b.open_connections(0, Db::Read), r.b.open_connections(1, Db::Read)), (4, 4));
    let e = r.tick_to(250);
    assert_eq!(counted(&e, BOUNCER_SERVER_LOGINS, Label::Node(BNC)), 12);
    assert_eq!((r.b.in_flight(0, Db::Read), r.b.in_flight(1, Db::Read)), (10, 10));
}

#[test]
fn a_login_slower_than_server_connect_timeout_fails_like_a_refused_login() {
    let mut c = cfg();
    c.pool.default_pool_size = 5;
    c.pool.server_connect_time = Duration::from_millis(300);
    c.pool.server_connect_timeout = Duration::from_millis(250);
    let mut r = rig(c);
    r.send(0, ReqKind::Read, 5);
    let e = r.tick_to(240);
    assert_eq!((total(&forwards(&e)), outcome_sum(&e, C)), (0, Outcome::default()));
    // The first login gives up at 250 ms: a failed login. The five clients already waiting
    // keep waiting (PgBouncer 1.18 does not fail them:
    // calibration/fixtures/pgbouncer-login-retry-*.json); a new one is refused at once.
    let e = r.tick_to(250);
    assert_eq!(outcome_sum(&e, C), Outcome::default());
    assert_eq!((r.b.open_connections(0, Db::Read), r.b.waiting()), (0, 5));
    let e = r.send(0, ReqKind::Read, 1);
    assert_eq!(outcome_sum(&e, C), failed(ErrorKind::Refused, 1));
    assert_eq!(r.b.waiting(), 5);
}

#[test]
fn a_busy_process_queues_for_its_cpu_and_processes_add_capacity() {
    for processes in [1u32, 2] {
        let mut c = cfg();
        c.processes = processes;
        c.cpu_per_query_us = 1000.0; // 1000 queries/s per process, 10 per 10 ms tick
        c.pool.default_pool_size = 500;
        c.pool.server_connect_time = Duration::from_micros(1);
        c.pool.max_client_conn = 130;
        let mut r = rig(c);
        // With two processes, each cohort goes whole to one of them.
        r.send(0, ReqKind::Read, 100);
        // max_client_conn is per process, and requests waiting for the CPU count.
        let e = r.send(0, ReqKind::Read, 60);
        let refused = if processes == 1 { 30 } else { 0 };
        assert_eq!(outcome_sum(&e, C), failed(ErrorKind::Refused, refused));
        assert_eq!(counted(&e, BOUNCER_REFUSED, T0), refused);
        let e = r.tick_to(50);
        let through = 50 * u64::from(processes);
        assert_eq!(r.b.cpu_queued(), 160 - refused - through);
        // Each tick's CPU share is forwarded on the next tick, once its connections are open.
        assert_eq!(total(&forwards(&e)), through - 10 * u64::from(processes));
        // All arrived at 0; each tick's share was forwarded a tick later: CPU wait is latency.
        let mut waits: Vec<u64> = observed(&e, BOUNCER_WAIT_MS, T0).iter().map(|w| w.0 as u64).collect();
        waits.dedup();
        assert_eq!(waits, vec![20, 30, 40, 50]);
    }
}

#[test]
fn so_reuseport_spreads_cohorts_evenly_and_outcomes_are_credited_across_processes() {
    let mut c = cfg();
    c.processes = 3;
    c.pool.default_pool_size = 5;
    let mut r = rig(c);
    // Each cohort goes whole to the next process: six cohorts, two per process.
    for _ in 0..6 {
        r.send(0, ReqKind::Read, 5);
    }
    assert_eq!(r.b.procs.iter().map(|p| p.clients()).collect::<Vec<_>>(), vec![10, 10, 10]);
    // Each process's pool of 5 serves its first cohort; the second waits for it.
    let f = forwards(&r.tick_to(50));
    let by_seq = |f: &[Fwd]| {
        let mut m = BTreeMap::new();
        for x in f {
            *m.entry(x.0.seq).or_insert(0u64) += x.0.count;
        }
        m.into_iter().collect::<Vec<_>>()
    };
    assert_eq!(by_seq(&f), vec![(1, 5), (2, 5), (3, 5)]);
    assert_eq!((r.b.in_flight(0, Db::Read), r.b.waiting(), r.b.open_connections(0, Db::Read)), (15, 15, 15));
    // An outcome frees a connection of the process that forwarded the cohort: the answer to
    // cohort 2 (second process) lets cohort 5 go, not cohort 4 (first process), queued longer.
    let answer_whole = |r: &mut Rig, seq: u64| {
        let x = f.iter().find(|x| x.0.seq == seq).expect("forwarded");
        r.answer(&(x.0.with_count(5), x.1), Outcome::ok(5))
    };
    let e = answer_whole(&mut r, 2);
    assert_eq!(outcome_sum(&e, C), Outcome::ok(5));
    assert_eq!(outcomes(&e).len(), 1, "one process held the whole cohort");
    assert_eq!(by_seq(&forwards(&e)), vec![(5, 5)]);
    let e = answer_whole(&mut r, 1);
    assert_eq!(outcome_sum(&e, C), Outcome::ok(5));
    assert_eq!(by_seq(&forwards(&e)), vec![(4, 5)]);
    assert_eq!((r.b.in_flight(0, Db::Read), r.b.waiting()), (15, 5), "cohort 6 still waits in the third process");
    assert_eq!(r.b.procs.iter().map(|p| p.clients()).collect::<Vec<_>>(), vec![5, 5, 10]);
    // The rotation goes on where it was: the next cohort goes to the first process.
    r.send(0, ReqKind::Read, 3);
    assert_eq!(r.b.procs.iter().map(|p| p.clients()).collect::<Vec<_>>(), vec![8, 5, 10]);
}

#[test]
fn vegas_limit_shrinks_under_queueing_delay_and_grows_back() {
    let mut c = cfg();
    c.pool.default_pool_size = 1000;
    c.pool.server_connect_time = Duration::from_micros(1);
    c.vegas = Some(VegasConfig { max_limit: 100, ..VegasConfig::default() });
    let mut r = rig(c);
    assert_eq!(r.b.tenant_limit(0), Some(20), "the initial limit");
    // Each tick: 50 new requests (more than the limit allows); HAProxy answers each part
    // `delay` after it was forwarded.
    let mut in_flight: VecDeque<(SimTime, Fwd)> = VecDeque::new();
    let mut phase = |r: &mut Rig, until_ms: u64, delay: Duration| {
        let mut limits = vec![];
        while r.h.now < ms_(until_ms) {
            // Forwarded now (at a tick), answered `delay` later.
            for f in forwards(&r.send(0, ReqKind::Read, 50)) {
                in_flight.push_back((r.h.now + delay, f));
            }
            let mut e = r.tick_to((r.h.now + r.tick).as_nanos() / 1_000_000);
            while in_flight.front().is_some_and(|(due, _)| *due <= r.h.now) {
                let (_, f) = in_flight.pop_front().expect("peeked");
                e.extend(r.answer(&f, Outcome::ok(f.0.count)));
            }
            let sent = forwards(&e);
            let limit = r.b.tenant_limit(0).expect("vegas");
            // A shrinking limit does not cut what is in flight, but nothing new goes beyond it.
            assert!(sent.is_empty() || r.b.in_flight(0, Db::Read) <= limit, "forwarded beyond the tenant limit");
            for f in sent {
                in_flight.push_back((r.h.now + delay, f));
            }
            limits.push(limit);
        }
        limits
    };
    let a = phase(&mut r, 2_000, Duration::from_millis(10));
    assert_eq!(*a.last().unwrap(), 100, "no queueing: grows to max_limit");
    // 50 ms of queueing: one step down per tick with answers (about one per round trip once
    // the limit holds requests back), down to min_limit.
    let b = phase(&mut r, 4_000, Duration::from_millis(60));
    assert!(*b.last().unwrap() < 50, "{}", b.last().unwrap());
    assert!(b.windows(2).all(|w| w[1] <= w[0]), "only shrinks while queueing");
    let b = phase(&mut r, 12_000, Duration::from_millis(60));
    assert_eq!(*b.last().unwrap(), 1);
    let c = phase(&mut r, 14_000, Duration::from_millis(10));
    assert!(*c.last().unwrap() >= 90, "grows back by one per tick: {}", c.last().unwrap());
    // The limit is reported once a second.
    let e = r.tick_to(15_000);
    assert_eq!(observed(&e, BOUNCER_TENANT_LIMIT, T0).len(), 1);
}

#[test]
fn a_fixed_tenant_limit_caps_both_pools_of_the_tenant() {
    let mut c = cfg();
    c.tenant_connection_limit = 4;
    let mut r = rig(c);
    r.send(0, ReqKind::Read, 3);
    r.send(0, ReqKind::Write, 3);
    r.send(1, ReqKind::Write, 3);
    let f = forwards(&r.tick_to(10));
    assert_eq!(f.iter().filter(|x| x.0.tenant == 0).map(|x| x.0.count).sum::<u64>(), 4);
    assert_eq!(f.iter().filter(|x| x.0.tenant == 1).map(|x| x.0.count).sum::<u64>(), 3);
    let first = f.iter().find(|x| x.0.tenant == 0).expect("tenant 0 forwarded");
    let e = r.answer(first, Outcome::ok(first.0.count));
    assert_eq!(total(&forwards(&e)), 2, "room for the rest of tenant 0");
}

#[test]
fn session_mode_holds_the_connection_after_the_outcome() {
    for (mode, linger_ms, next_at_ms) in [(PoolMode::Session, 100, 110), (PoolMode::Transaction, 100, 10)] {
        let mut c = cfg();
        c.pool.pool_mode = mode;
        c.pool.default_pool_size = 2;
        c.session_linger = Duration::from_millis(linger_ms);
        let mut r = rig(c);
        r.send(0, ReqKind::Read, 4);
        let f = forwards(&r.tick_to(10));
        assert_eq!(total(&f), 2);
        let mut e = r.answer(&f[0], Outcome::ok(2));
        e.extend(r.tick_to(next_at_ms - 10));
        assert_eq!(total(&forwards(&e)), if mode == PoolMode::Session { 0 } else { 2 }, "{mode:?}");
        if mode == PoolMode::Session {
            assert_eq!(total(&forwards(&r.tick_to(next_at_ms))), 2, "released after the linger");
        }
    }
}

#[test]
fn max_db_connections_caps_the_pools_of_one_database() {
    let mut c = cfg();
    c.pool.default_pool_size = 5;
    c.pool.max_db_connections = 6;
    let mut r = rig(c);
    r.send(0, ReqKind::Read, 5);
    r.send(1, ReqKind::Read, 5);
    r.send(0, ReqKind::Write, 5);
    r.tick_to(20);
    assert_eq!(r.b.open_connections(0, Db::Read) + r.b.open_connections(1, Db::Read), 6);
    assert_eq!(r.b.open_connections(0, Db::Write), 5, "the other database has its own cap");
}

#[test]
fn min_pool_size_reopens_connections_without_demand() {
    let mut c = cfg();
    c.pool.min_pool_size = 3;
    let mut r = rig(c);
    r.send(0, ReqKind::Read, 1);
    let f = forwards(&r.tick_to(10));
    assert_eq!(r.b.open_connections(0, Db::Read), 3);
    r.answer(&f[0], failed(ErrorKind::ConnectionClosed, 1));
    assert_eq!(r.b.open_connections(0, Db::Read), 2);
    r.tick_to(20);
    assert_eq!(r.b.open_connections(0, Db::Read), 3);
}

#[test]
fn unanswered_requests_fail_after_query_timeout() {
    let mut c = cfg();
    c.pool.query_timeout = Duration::from_secs(3);
    let mut r = rig(c);
    r.send(0, ReqKind::Write, 4);
    let f = forwards(&r.tick_to(10));
    let e = r.tick_to(3_000);
    assert_eq!(outcome_sum(&e, C), Outcome::default());
    let e = r.tick_to(3_010);
    assert_eq!(outcome_sum(&e, C), failed(ErrorKind::TimedOut, 4));
    assert_eq!((r.b.in_flight(0, Db::Write), r.b.open_connections(0, Db::Write)), (0, 0), "cancelled and closed");
    // The late answer is dropped.
    assert!(outcomes(&r.answer(&f[0], Outcome::ok(4))).is_empty());
}

/// The tick runs only while the bouncer has something to look after: none when idle, one a
/// tick ahead once a cohort waits, none again once everything is answered.
#[test]
fn an_idle_bouncer_does_not_tick() {
    let ticks_armed = |h: &Harness<BouncerTimer>| {
        h.timers.iter().filter(|t| matches!(t, TimerCmd::Set { timer: BouncerTimer::Tick, .. })).count()
    };
    let mut h = Harness::new(BNC, 1);
    let mut b = Bouncer::new(cfg());
    b.on_start(&mut h.ctx());
    assert_eq!(ticks_armed(&h), 0, "nothing to do at start");
    let c = cohort(C, 1, 0, ReqKind::Read, 3, h.now);
    b.on_message(&mut h.ctx(), C, FlowMsg::Requests { cohort: c, route: Route::new(C) });
    let at = h.timers.iter().find_map(|t| match t {
        TimerCmd::Set { timer: BouncerTimer::Tick, at } => Some(*at),
        _ => None,
    });
    assert_eq!(at, Some(h.now + b.cfg.tick), "a waiting cohort arms the tick one tick ahead");
    // Connections open on the tick; the cohort goes to HAProxy; its answer empties the bouncer.
    h.drain();
    h.advance(b.cfg.tick);
    b.on_timer(&mut h.ctx(), BouncerTimer::Tick);
    let f = forwards(&h.effects);
    assert_eq!(total(&f), 3);
    h.drain();
    b.on_message(&mut h.ctx(), HAP, FlowMsg::Outcome { cohort: f[0].0, outcome: Outcome::ok(3), route: f[0].1 });
    assert_eq!(ticks_armed(&h), 0, "the tick still armed from before is not re-armed later");
    h.drain();
    h.advance(b.cfg.tick);
    b.on_timer(&mut h.ctx(), BouncerTimer::Tick);
    assert_eq!(ticks_armed(&h), 0, "idle again: the tick sleeps");
}
