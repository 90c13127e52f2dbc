//! HAProxy in TCP mode in front of the database (doc/configuration.txt), as a flow hop.
//!
//! Two backends: `write` (servers: the stolon-proxies, which lead to the primary) for kinds
//! that need the primary, `read` (servers: the PostgreSQL standbys) for plain reads. In TCP mode
//! HAProxy does not parse SQL: a request is a session, opened on a server chosen by `balance`
//! and held until its outcome comes back.
//!
//! - Health checks: a `Check` to every server each `inter` (`fastinter` in transition,
//!   `downinter` while DOWN); no `CheckReply` within `timeout check`, or `ok: false`, is a
//!   failure; `fall` failures mark a server DOWN, `rise` successes UP (the `ServerCheck` of
//!   `crate::haproxy`). Transitions are traced; with `on-marked-down shutdown-sessions` the
//!   sessions open on a server marked DOWN are cut (`ConnectionClosed` upstream).
//! - Routing: a cohort is split across the UP servers by `balance` (`crate::haproxy::split`)
//!   up to each server's `maxconn`; what does not fit waits in the backend queue, bounded by
//!   the servers' `maxqueue`, for at most `timeout queue` (`PoolExhausted`, as HAProxy's 503
//!   closes the connection). No server UP: `Refused` at once.
//! - A flow hop is connect and query at once, so a session unanswered for `timeout connect` +
//!   `timeout server` fails `TimedOut`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rand::Rng;

use super::relay::{InFlight, fail_upstream, forward, pop_self, send_settled};
use super::{Cohort, ErrorKind, FlowMsg, Route};
use crate::haproxy::{Balance, CheckConfig, Health, ServerCheck, Slot, Transition, split};
use crate::node::{Ctx, Label, LazyTick, Model, NodeId};
use crate::time::SimTime;
use crate::trace::{HaproxyServerState, NodeRef, TraceKind};

/// Sessions refused because no server of the backend is UP (Label::Tenant).
pub const HAPROXY_REFUSED: &str = "haproxy_refused";
/// Sessions turned away because the backend queue was full (`maxqueue`).
pub const HAPROXY_QUEUE_FULL: &str = "haproxy_queue_full";
/// Sessions that waited in the queue past `timeout queue`.
pub const HAPROXY_QUEUE_TIMEOUTS: &str = "haproxy_queue_timeouts";
/// Sessions unanswered past `timeout connect` + `timeout server`.
pub const HAPROXY_SERVER_TIMEOUTS: &str = "haproxy_server_timeouts";
/// Sessions cut by `on-marked-down shutdown-sessions`.
pub const HAPROXY_SESSIONS_CUT: &str = "haproxy_sessions_cut";

/// Bound on queued cohort parts per backend, whatever `maxqueue` says.
const QUEUE_ENTRIES_MAX: usize = 1 << 16;

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub node: NodeId,
    /// `maxconn`: sessions open at once (0: no limit, HAProxy's default).
    pub maxconn: u32,
    /// `maxqueue`: sessions waiting for this server (0: no limit, HAProxy's default).
    pub maxqueue: u32,
}

impl ServerConfig {
    pub fn new(node: NodeId) -> ServerConfig {
        ServerConfig { node, maxconn: 0, maxqueue: 0 }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BackendConfig {
    pub name: String,
    /// `balance` (roundrobin here, as in the architecture being modelled).
    pub balance: Balance,
    pub servers: Vec<ServerConfig>,
    /// `inter`, `fastinter`, `downinter`, `rise`, `fall`, `timeout check`.
    pub check: CheckConfig,
    /// `on-marked-down shutdown-sessions` (off by default).
    pub shutdown_sessions: bool,
}

impl BackendConfig {
    pub fn new(name: &str, servers: &[NodeId]) -> BackendConfig {
        BackendConfig {
            name: name.to_string(),
            balance: Balance::default(),
            servers: servers.iter().map(|&n| ServerConfig::new(n)).collect(),
            check: CheckConfig::default(),
            shutdown_sessions: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HaproxyConfig {
    /// Serves kinds that need the primary; servers: the stolon-proxies.
    pub write: BackendConfig,
    /// Serves plain reads; servers: the standbys.
    pub read: BackendConfig,
    /// `timeout connect`. HAProxy has no default (it warns); 5 s is the documented example.
    pub timeout_connect: Duration,
    /// `timeout server`. No default in HAProxy either; 30 s as in its examples.
    pub timeout_server: Duration,
    /// `timeout queue`; `None`: `timeout connect`, as HAProxy does.
    pub timeout_queue: Option<Duration>,
    /// How often checks, queues and timeouts are looked at (the model's resolution).
    pub tick: Duration,
    /// Bound on distinct cohort parts in flight.
    pub max_parts: usize,
}

impl HaproxyConfig {
    pub fn new(write_servers: &[NodeId], read_servers: &[NodeId]) -> HaproxyConfig {
        HaproxyConfig {
            write: BackendConfig::new("write", write_servers),
            read: BackendConfig::new("read", read_servers),
            timeout_connect: Duration::from_secs(5),
            timeout_server: Duration::from_secs(30),
            timeout_queue: None,
            tick: Duration::from_millis(10),
            max_parts: 1 << 16,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HaproxyTimer {
    Tick,
}

/// Which backend: index into `Haproxy::backends`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BackendId {
    Write = 0,
    Read = 1,
}

impl BackendId {
    pub fn for_kind(kind: super::ReqKind) -> BackendId {
        if kind.needs_primary() { BackendId::Write } else { BackendId::Read }
    }
}

#[derive(Clone, Debug)]
struct ServerState {
    node: NodeId,
    maxconn: u32,
    maxqueue: u32,
    check: ServerCheck,
    next_check_at: SimTime,
    /// The check in flight: (seq, sent at).
    pending: Option<(u64, SimTime)>,
}

#[derive(Clone, Debug)]
struct Queued {
    cohort: Cohort,
    upstream: Route,
    remaining: u64,
    arrived: SimTime,
}

#[derive(Clone, Debug)]
struct BackendState {
    name: String,
    balance: Balance,
    shutdown_sessions: bool,
    servers: Vec<ServerState>,
    queue: VecDeque<Queued>,
    queued: u64,
    rr: usize,
}

impl BackendState {
    fn any_up(&self) -> bool {
        self.servers.iter().any(|s| s.check.health == Health::Up)
    }

    /// Sessions the queue may hold: the UP servers' `maxqueue` summed; unbounded if any of
    /// them has none.
    fn queue_limit(&self) -> u64 {
        let up = self.servers.iter().filter(|s| s.check.health == Health::Up);
        if up.clone().any(|s| s.maxqueue == 0) { u64::MAX } else { up.map(|s| u64::from(s.maxqueue)).sum() }
    }
}

pub struct Haproxy {
    timeout_connect: Duration,
    timeout_server: Duration,
    timeout_queue: Duration,
    tick: Duration,
    backends: [BackendState; 2],
    in_flight: InFlight,
    next_check_seq: u64,
    /// Checks awaiting a reply: seq -> (backend, server index).
    checks: BTreeMap<u64, (usize, usize)>,
    housekeeping: LazyTick,
}

type HCtx<'a> = Ctx<'a, FlowMsg, HaproxyTimer>;

impl Haproxy {
    pub fn new(cfg: HaproxyConfig) -> Haproxy {
        assert!(!cfg.tick.is_zero(), "the tick must be positive");
        let backend = |b: BackendConfig| BackendState {
            name: b.name,
            balance: b.balance,
            shutdown_sessions: b.shutdown_sessions,
            servers: b
                .servers
                .iter()
                .map(|s| ServerState {
                    node: s.node,
                    maxconn: s.maxconn,
                    maxqueue: s.maxqueue,
                    check: ServerCheck::new(b.check.clone()),
                    next_check_at: SimTime::ZERO,
                    pending: None,
                })
                .collect(),
            queue: VecDeque::new(),
            queued: 0,
            rr: 0,
        };
        Haproxy {
            timeout_connect: cfg.timeout_connect,
            timeout_server: cfg.timeout_server,
            timeout_queue: cfg.timeout_queue.unwrap_or(cfg.timeout_connect),
            tick: cfg.tick,
            backends: [backend(cfg.write), backend(cfg.read)],
            in_flight: InFlight::new(cfg.max_parts),
            next_check_seq: 0,
            checks: BTreeMap::new(),
            housekeeping: LazyTick::default(),
        }
    }

    pub fn health(&self, b: BackendId, server: NodeId) -> Option<Health> {
        self.backends[b as usize].servers.iter().find(|s| s.node == server).map(|s| s.check.health)
    }

    /// Sessions waiting in a backend's queue.
    pub fn queued(&self, b: BackendId) -> u64 {
        self.backends[b as usize].queued
    }

    /// Sessions open on `server`.
    pub fn in_flight_to(&self, server: NodeId) -> u64 {
        self.in_flight.in_flight_to(server)
    }

    /// Puts `n` requests on servers of backend `b`; what does not fit queues, and what does not
    /// fit the queue is turned away.
    fn place(&mut self, ctx: &mut HCtx<'_>, b: usize, cohort: Cohort, upstream: Route, n: u64) {
        if !self.backends[b].any_up() {
            ctx.count(HAPROXY_REFUSED, Label::Tenant(cohort.tenant), n);
            fail_upstream(ctx, cohort, upstream, ErrorKind::Refused, n);
            return;
        }
        let mut left = n;
        // FIFO: nobody overtakes sessions already queued.
        if self.backends[b].queue.is_empty() {
            left -= self.open_sessions(ctx, b, &cohort, upstream, left);
        }
        if left == 0 {
            return;
        }
        let be = &mut self.backends[b];
        let room = be.queue_limit().saturating_sub(be.queued);
        let queued = if be.queue.len() < QUEUE_ENTRIES_MAX { left.min(room) } else { 0 };
        if queued > 0 {
            be.queue.push_back(Queued { cohort, upstream, remaining: queued, arrived: ctx.now });
            be.queued += queued;
        }
        if left > queued {
            ctx.count(HAPROXY_QUEUE_FULL, Label::Tenant(cohort.tenant), left - queued);
            fail_upstream(ctx, cohort, upstream, ErrorKind::PoolExhausted, left - queued);
        }
    }

    /// Opens up to `n` sessions of `cohort` on backend `b`'s servers; returns how many.
    fn open_sessions(&mut self, ctx: &mut HCtx<'_>, b: usize, cohort: &Cohort, upstream: Route, n: u64) -> u64 {
        let be = &mut self.backends[b];
        let slots: Vec<Slot> = be
            .servers
            .iter()
            .map(|s| {
                let open = self.in_flight.in_flight_to(s.node);
                let room = (s.maxconn > 0).then(|| u64::from(s.maxconn).saturating_sub(open));
                Slot { up: s.check.health == Health::Up, in_flight: open, room }
            })
            .collect();
        let parts = split(be.balance, &slots, n, &mut be.rr);
        let mut sent = 0;
        for (i, part) in parts.into_iter().enumerate() {
            let node = be.servers[i].node;
            if part > 0 && self.in_flight.add(cohort, upstream, node, ctx.now, part) {
                forward(ctx, node, cohort, upstream, part);
                sent += part;
            }
        }
        sent
    }

    /// Moves queued sessions onto servers with room, oldest first.
    fn dispatch(&mut self, ctx: &mut HCtx<'_>, b: usize) {
        while let Some(q) = self.backends[b].queue.front() {
            let (cohort, upstream, remaining) = (q.cohort, q.upstream, q.remaining);
            let sent = self.open_sessions(ctx, b, &cohort, upstream, remaining);
            let be = &mut self.backends[b];
            be.queued -= sent;
            if sent < remaining {
                be.queue.front_mut().expect("peeked").remaining -= sent;
                break;
            }
            be.queue.pop_front();
        }
    }

    fn expire_queue(&mut self, ctx: &mut HCtx<'_>, b: usize) {
        let timeout = self.timeout_queue;
        let be = &mut self.backends[b];
        while be.queue.front().is_some_and(|q| q.arrived + timeout <= ctx.now) {
            let q = be.queue.pop_front().expect("peeked");
            be.queued -= q.remaining;
            ctx.count(HAPROXY_QUEUE_TIMEOUTS, Label::Tenant(q.cohort.tenant), q.remaining);
            fail_upstream(ctx, q.cohort, q.upstream, ErrorKind::PoolExhausted, q.remaining);
        }
    }

    fn refuse_queue(&mut self, ctx: &mut HCtx<'_>, b: usize) {
        let be = &mut self.backends[b];
        be.queued = 0;
        for q in std::mem::take(&mut be.queue) {
            ctx.count(HAPROXY_REFUSED, Label::Tenant(q.cohort.tenant), q.remaining);
            fail_upstream(ctx, q.cohort, q.upstream, ErrorKind::Refused, q.remaining);
        }
    }

    fn run_checks(&mut self, ctx: &mut HCtx<'_>) {
        for b in 0..self.backends.len() {
            for i in 0..self.backends[b].servers.len() {
                let s = &mut self.backends[b].servers[i];
                match s.pending {
                    Some((seq, sent)) if sent + s.check.timeout() <= ctx.now => {
                        self.checks.remove(&seq);
                        self.check_done(ctx, b, i, false);
                    }
                    Some(_) => {}
                    None if s.next_check_at <= ctx.now => {
                        let seq = self.next_check_seq;
                        self.next_check_seq += 1;
                        s.pending = Some((seq, ctx.now));
                        self.checks.insert(seq, (b, i));
                        ctx.send(s.node, FlowMsg::Check { seq });
                    }
                    None => {}
                }
            }
        }
    }

    fn check_done(&mut self, ctx: &mut HCtx<'_>, b: usize, i: usize, ok: bool) {
        let s = &mut self.backends[b].servers[i];
        s.pending.take().expect("a check was in flight");
        let transition = s.check.on_result(ok);
        // HAProxy re-arms the check task when a check completes, `srv_getinter()` later: a
        // check that timed out delays the next by its whole timeout.
        s.next_check_at = ctx.now + s.check.interval();
        let node = s.node;
        let Some(t) = transition else { return };
        let mut cut = 0;
        if t == Transition::MarkedDown && self.backends[b].shutdown_sessions {
            for settled in self.in_flight.cut(node) {
                let n = settled.outcome.total();
                cut += n;
                ctx.count(HAPROXY_SESSIONS_CUT, Label::Tenant(settled.cohort.tenant), n);
                send_settled(ctx, &settled);
            }
        }
        let state = if t == Transition::MarkedUp { HaproxyServerState::Up } else { HaproxyServerState::Down };
        ctx.trace(TraceKind::HaproxyServer {
            backend: self.backends[b].name.clone(),
            server: NodeRef(node),
            state,
            sessions_cut: cut,
        });
        match t {
            // Nowhere left to send what waits: refused, as new sessions are.
            Transition::MarkedDown if !self.backends[b].any_up() => self.refuse_queue(ctx, b),
            Transition::MarkedDown => {}
            Transition::MarkedUp => self.dispatch(ctx, b),
        }
    }
}

impl Haproxy {
    /// Arms the tick for what needs it next: the next tick while sessions are open or queued
    /// (their timeouts), else the tick at or after the next health check to send or to time
    /// out. From the tick itself (`from_tick`), the next one is the next grid instant.
    fn rearm(&mut self, ctx: &mut HCtx<'_>, from_tick: bool) {
        let busy = self.in_flight.total() > 0 || self.backends.iter().any(|b| b.queued > 0);
        let earliest = if from_tick { ctx.now + Duration::from_nanos(1) } else { ctx.now };
        let mut at = if busy { earliest } else { SimTime::MAX };
        for s in self.backends.iter().flat_map(|b| &b.servers) {
            let due = match s.pending {
                Some((_, sent)) => sent + s.check.timeout(),
                None => s.next_check_at,
            };
            at = at.min(due.max(earliest));
        }
        if at < SimTime::MAX {
            self.housekeeping.arm(ctx, HaproxyTimer::Tick, at);
        }
    }
}

impl Model for Haproxy {
    type Msg = FlowMsg;
    type Timer = HaproxyTimer;
    type Durable = ();

    fn on_start(&mut self, ctx: &mut HCtx<'_>) {
        // Servers start UP; first checks are spread over one interval (HAProxy spreads its
        // checks too), so a restart does not probe everything in the same instant.
        for be in &mut self.backends {
            for s in &mut be.servers {
                let inter_ns = s.check.interval().as_nanos() as u64;
                s.next_check_at = ctx.now + Duration::from_nanos(ctx.rng.gen_range(0..inter_ns.max(1)));
            }
        }
        // The instants an always-on tick armed here would fire at.
        self.housekeeping = LazyTick::every(ctx.now + self.tick, self.tick);
        self.rearm(ctx, false);
    }

    fn on_message(&mut self, ctx: &mut HCtx<'_>, from: NodeId, msg: FlowMsg) {
        match msg {
            FlowMsg::Requests { cohort, route } => {
                let b = BackendId::for_kind(cohort.kind) as usize;
                self.place(ctx, b, cohort, route, cohort.count);
            }
            FlowMsg::Outcome { cohort, mut outcome, route } => {
                pop_self(ctx.id, route);
                if let Some(s) = self.in_flight.on_outcome(from, &cohort, &mut outcome) {
                    send_settled(ctx, &s);
                    // A session closed: room on `from` for what waits.
                    for b in 0..self.backends.len() {
                        self.dispatch(ctx, b);
                    }
                }
            }
            // HAProxy's own port is open while it runs.
            FlowMsg::Check { seq } => ctx.send(from, FlowMsg::CheckReply { seq, ok: true }),
            FlowMsg::CheckReply { seq, ok } => {
                // A reply after its timeout (or from the wrong node) is ignored.
                if let Some(&(b, i)) = self.checks.get(&seq)
                    && self.backends[b].servers[i].node == from
                {
                    self.checks.remove(&seq);
                    self.check_done(ctx, b, i, ok);
                }
            }
        }
        self.rearm(ctx, false);
    }

    fn on_timer(&mut self, ctx: &mut HCtx<'_>, timer: HaproxyTimer) {
        match timer {
            HaproxyTimer::Tick => {
                self.housekeeping.fired();
                self.run_checks(ctx);
                for s in self.in_flight.expire(ctx.now, self.timeout_connect + self.timeout_server) {
                    ctx.count(HAPROXY_SERVER_TIMEOUTS, Label::Tenant(s.cohort.tenant), s.outcome.total());
                    send_settled(ctx, &s);
                }
                for b in 0..self.backends.len() {
                    self.expire_queue(ctx, b);
                    self.dispatch(ctx, b);
                }
                self.rearm(ctx, true);
            }
        }
    }

    fn check_invariants(&self) {
        self.in_flight.check_invariants();
        let mut pending = 0;
        for (b, be) in self.backends.iter().enumerate() {
            assert_eq!(be.queue.iter().map(|q| q.remaining).sum::<u64>(), be.queued, "queue count drifts");
            assert!(be.queue.len() <= QUEUE_ENTRIES_MAX, "backend queue over its bound");
            assert!(be.queue.iter().all(|q| q.remaining > 0));
            assert!(be.queue.is_empty() || be.any_up(), "sessions queued with no server UP");
            for (i, s) in be.servers.iter().enumerate() {
                if s.maxconn > 0 {
                    assert!(self.in_flight.in_flight_to(s.node) <= u64::from(s.maxconn), "maxconn exceeded");
                }
                if let Some((seq, _)) = s.pending {
                    pending += 1;
                    assert_eq!(self.checks.get(&seq), Some(&(b, i)), "check table out of step");
                }
            }
        }
        assert_eq!(pending, self.checks.len(), "a check awaits a reply for no server");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::testkit::*;
    use crate::flow::{Outcome, ReqKind};

    const HAP: NodeId = 3;
    const BOUNCER: NodeId = 2;
    const PX1: NodeId = 10;
    const PX2: NodeId = 11;
    const SB1: NodeId = 20;
    const SB2: NodeId = 21;
    const SB3: NodeId = 22;

    type H = Harness<HaproxyTimer>;

    fn cfg() -> HaproxyConfig {
        HaproxyConfig::new(&[PX1, PX2], &[SB1, SB2, SB3])
    }

    fn start(cfg: HaproxyConfig) -> (H, Haproxy) {
        let mut h = Harness::new(HAP, 1);
        let mut hp = Haproxy::new(cfg);
        hp.on_start(&mut h.ctx());
        h.drain();
        (h, hp)
    }

    fn upstream() -> Route {
        Route::new(1).push(BOUNCER)
    }

    fn tick_armed_at(h: &H) -> Option<SimTime> {
        h.timers.iter().rev().find_map(|t| match t {
            crate::node::TimerCmd::Set { timer: HaproxyTimer::Tick, at } => Some(*at),
            _ => None,
        })
    }

    /// Idle, HAProxy wakes for its next health check, not every tick; with sessions open it
    /// ticks (their timeouts) and stops again once they close.
    #[test]
    fn idle_haproxy_wakes_only_for_health_checks() {
        let mut h = Harness::new(HAP, 1);
        let mut hp = Haproxy::new(cfg());
        hp.on_start(&mut h.ctx());
        let first_check = hp.backends.iter().flat_map(|b| &b.servers).map(|s| s.next_check_at).min().unwrap();
        assert_eq!(tick_armed_at(&h), Some(hp.housekeeping.on_grid(first_check)));
        assert!(first_check > h.now + hp.tick, "seed 1 spreads the first check beyond one tick");
        h.drain();
        req(&mut hp, &mut h, 1, ReqKind::Read, 4);
        assert_eq!(tick_armed_at(&h), Some(h.now + hp.tick), "open sessions need the tick");
        let e = h.drain();
        let (to, c, r) = requests(&e)[0];
        hp.on_message(&mut h.ctx(), to, FlowMsg::Outcome { cohort: c, outcome: Outcome::ok(4), route: r });
        h.drain();
        h.advance(hp.tick);
        hp.on_timer(&mut h.ctx(), HaproxyTimer::Tick);
        assert_eq!(
            tick_armed_at(&h),
            Some(hp.housekeeping.on_grid(first_check)),
            "closed again: back to the check schedule"
        );
    }

    fn req(hp: &mut Haproxy, h: &mut H, seq: u64, kind: ReqKind, n: u64) {
        let c = cohort(1, seq, 0, kind, n, h.now);
        hp.on_message(&mut h.ctx(), BOUNCER, FlowMsg::Requests { cohort: c, route: upstream() });
        hp.check_invariants();
    }

    type Effects = Vec<crate::node::Effect<FlowMsg>>;

    /// A server's state change seen by `until_transition`.
    struct Seen {
        /// Checks sent to the server before it changed state.
        checks: u32,
        first_check: SimTime,
        at: SimTime,
        state: HaproxyServerState,
        sessions_cut: u64,
        effects: Effects,
    }

    /// Steps 10 ms ticks until `server` changes state (at most a minute), answering checks as
    /// `answers` says (`None`: no reply).
    fn until_transition(hp: &mut Haproxy, h: &mut H, server: NodeId, answers: &dyn Fn(NodeId) -> Option<bool>) -> Seen {
        let mut all = vec![];
        let (mut checks, mut first_check) = (0, None);
        let deadline = h.now + Duration::from_secs(60);
        while h.now < deadline {
            h.advance(Duration::from_millis(10));
            hp.on_timer(&mut h.ctx(), HaproxyTimer::Tick);
            let mut e = h.drain();
            for (to, m) in sends(&e) {
                if let FlowMsg::Check { seq } = m {
                    if to == server {
                        checks += 1;
                        first_check.get_or_insert(h.now);
                    }
                    if let Some(ok) = answers(to) {
                        hp.on_message(&mut h.ctx(), to, FlowMsg::CheckReply { seq, ok });
                    }
                }
            }
            e.extend(h.drain());
            hp.check_invariants();
            let seen = traces(&e).into_iter().find_map(|t| match t {
                TraceKind::HaproxyServer { server: s, state, sessions_cut, .. } if s.0 == server => {
                    Some((state, sessions_cut))
                }
                _ => None,
            });
            all.extend(e);
            if let Some((state, sessions_cut)) = seen {
                let first_check = first_check.expect("a check preceded the change");
                return Seen { checks, first_check, at: h.now, state, sessions_cut, effects: all };
            }
        }
        panic!("server {server} did not change state within a minute");
    }

    #[test]
    fn fall_after_failed_replies_and_rise_after_good_ones() {
        let (mut h, mut hp) = start(cfg());
        // ok: false from SB2: DOWN after fall (3) checks, inter (2 s) apart.
        let down = until_transition(&mut hp, &mut h, SB2, &|n| Some(n != SB2));
        assert_eq!((down.checks, down.state.as_str(), down.sessions_cut), (3, "DOWN", 0));
        let spread = down.at - down.first_check;
        assert!(spread >= Duration::from_millis(4000) && spread <= Duration::from_millis(4020), "{spread:?}");
        assert_eq!(hp.health(BackendId::Read, SB2), Some(Health::Down));
        assert_eq!(hp.health(BackendId::Read, SB1), Some(Health::Up), "the others answered");
        // Good replies again: UP after rise (2), the first after downinter.
        let up = until_transition(&mut hp, &mut h, SB2, &|_| Some(true));
        assert_eq!((up.checks, up.state.as_str()), (2, "UP"));
        let took = up.at - down.at;
        assert!(took >= Duration::from_millis(4000) && took <= Duration::from_millis(4020), "{took:?}");
    }

    #[test]
    fn missing_replies_fail_after_timeout_check() {
        let mut c = cfg();
        c.read.check.timeout_check = Some(Duration::from_secs(30));
        c.read.check.timeout_connect = Duration::from_millis(500);
        c.read.check.fastinter = Some(Duration::from_millis(300));
        let (mut h, mut hp) = start(c);
        // SB1 never answers: with `timeout check` set, each check's connect may take
        // min(inter 2 s, timeout connect 0.5 s); the next starts fastinter (0.3 s) after the
        // timeout, so the third times out 0.5 + 0.3 + 0.5 + 0.3 + 0.5 = 2.1 s after the first
        // went out.
        let down = until_transition(&mut hp, &mut h, SB1, &|n| (n != SB1).then_some(true));
        assert_eq!((down.checks, down.state.as_str()), (3, "DOWN"));
        let spread = down.at - down.first_check;
        assert!(spread >= Duration::from_millis(2100) && spread <= Duration::from_millis(2140), "{spread:?}");
        // A reply after its check timed out does not count: with rise 2, one late and one
        // timely success leave the server DOWN.
        let late = next_check_to(&mut hp, &mut h, SB1);
        for _ in 0..60 {
            h.advance(Duration::from_millis(10));
            hp.on_timer(&mut h.ctx(), HaproxyTimer::Tick);
        }
        hp.on_message(&mut h.ctx(), SB1, FlowMsg::CheckReply { seq: late, ok: true });
        let timely = next_check_to(&mut hp, &mut h, SB1);
        hp.on_message(&mut h.ctx(), SB1, FlowMsg::CheckReply { seq: timely, ok: true });
        assert_eq!(hp.health(BackendId::Read, SB1), Some(Health::Down));
        let timely = next_check_to(&mut hp, &mut h, SB1);
        hp.on_message(&mut h.ctx(), SB1, FlowMsg::CheckReply { seq: timely, ok: true });
        assert_eq!(hp.health(BackendId::Read, SB1), Some(Health::Up), "two timely successes");
        hp.check_invariants();
    }

    /// A silent server with HAProxy's defaults: each check waits `inter` (2 s) for its connect
    /// and the next starts `inter` after that, so the third failure comes 10 s after the first
    /// check went out (the real HAProxy 2.6: DOWN 10-12 s after the path is dropped,
    /// calibration/fixtures/haproxy-path-drop.json). Measured from the start, not the end, of
    /// a check, it would be 6 s.
    #[test]
    fn a_silent_server_goes_down_ten_seconds_after_the_first_unanswered_check() {
        let (mut h, mut hp) = start(cfg());
        let down = until_transition(&mut hp, &mut h, SB3, &|n| (n != SB3).then_some(true));
        assert_eq!((down.checks, down.state.as_str()), (3, "DOWN"));
        let spread = down.at - down.first_check;
        assert!(spread >= Duration::from_millis(10_000) && spread <= Duration::from_millis(10_030), "{spread:?}");
    }

    /// Ticks until a check goes to `server`; returns its seq. Other checks go unanswered.
    fn next_check_to(hp: &mut Haproxy, h: &mut H, server: NodeId) -> u64 {
        for _ in 0..10_000 {
            h.advance(Duration::from_millis(10));
            hp.on_timer(&mut h.ctx(), HaproxyTimer::Tick);
            for (to, m) in sends(&h.drain()) {
                if let (true, FlowMsg::Check { seq }) = (to == server, m) {
                    return seq;
                }
            }
        }
        panic!("no check to {server}");
    }

    #[test]
    fn routes_around_a_down_server_and_refuses_with_none_up() {
        let (mut h, mut hp) = start(cfg());
        // Roundrobin: each cohort goes whole to the next server.
        let mut per = vec![];
        for seq in 1..=4 {
            req(&mut hp, &mut h, seq, ReqKind::Read, 9);
            let e = h.drain();
            assert!(requests(&e).iter().all(|r| r.2 == upstream().push(HAP)));
            per.extend(requests(&e).iter().map(|r| (r.0, r.1.seq, r.1.count)));
        }
        assert_eq!(per, vec![(SB1, 1, 9), (SB2, 2, 9), (SB3, 3, 9), (SB1, 4, 9)]);
        until_transition(&mut hp, &mut h, SB2, &|n| Some(n != SB2));
        assert_eq!(hp.health(BackendId::Read, SB2), Some(Health::Down));
        // The rotation is at SB2: it passes over the DOWN server.
        let mut per = vec![];
        for seq in 5..=8 {
            req(&mut hp, &mut h, seq, ReqKind::Read, 10);
            per.extend(requests(&h.drain()).iter().map(|r| (r.0, r.1.count)));
        }
        assert_eq!(per, vec![(SB3, 10), (SB1, 10), (SB3, 10), (SB1, 10)], "nothing for the DOWN server");
        // Writes go to the write backend.
        req(&mut hp, &mut h, 9, ReqKind::ReadPrimary, 2);
        let e = h.drain();
        assert_eq!(requested(&e), 2);
        assert!(requests(&e).iter().all(|r| r.0 == PX1 || r.0 == PX2));
        // Both proxies DOWN: writes are refused at once.
        let bad = |n| Some(n != SB2 && n != PX1 && n != PX2);
        until_transition(&mut hp, &mut h, PX1, &bad);
        if hp.health(BackendId::Write, PX2) == Some(Health::Up) {
            until_transition(&mut hp, &mut h, PX2, &bad);
        }
        req(&mut hp, &mut h, 10, ReqKind::Write, 4);
        let e = h.drain();
        assert!(requests(&e).is_empty());
        assert_eq!(outcome_sum(&e, BOUNCER), failed(ErrorKind::Refused, 4));
        assert_eq!(counted(&e, HAPROXY_REFUSED, Label::Tenant(0)), 4);
    }

    #[test]
    fn outcomes_go_back_upstream_and_free_the_server() {
        let (mut h, mut hp) = start(cfg());
        req(&mut hp, &mut h, 1, ReqKind::Write, 4);
        let e = h.drain();
        for (to, c, r) in requests(&e) {
            hp.on_message(&mut h.ctx(), to, answer(c, r, Outcome::ok(c.count)));
        }
        let e = h.drain();
        assert_eq!(outcome_sum(&e, BOUNCER), Outcome::ok(4));
        assert!(outcomes(&e).iter().all(|o| o.3 == upstream()));
        assert_eq!(hp.in_flight_to(PX1) + hp.in_flight_to(PX2), 0);
        hp.check_invariants();
    }

    #[test]
    fn maxconn_queues_maxqueue_turns_away_and_timeout_queue_expires() {
        let mut c = cfg();
        c.read.balance = Balance::First;
        c.read.servers = vec![ServerConfig { node: SB1, maxconn: 4, maxqueue: 5 }];
        c.timeout_queue = Some(Duration::from_millis(200));
        let (mut h, mut hp) = start(c);
        req(&mut hp, &mut h, 1, ReqKind::Read, 12);
        let e = h.drain();
        assert_eq!(requested(&e), 4, "maxconn 4");
        assert_eq!(hp.queued(BackendId::Read), 5, "maxqueue 5");
        assert_eq!(outcome_sum(&e, BOUNCER), failed(ErrorKind::PoolExhausted, 3), "the rest turned away");
        // One answer frees one slot: the oldest queued session gets it.
        let (to, c1, r) = requests(&e)[0];
        h.set_ms(100);
        hp.on_message(
            &mut h.ctx(),
            to,
            FlowMsg::Outcome { cohort: c1.with_count(1), outcome: Outcome::ok(1), route: r },
        );
        let e = h.drain();
        assert_eq!((requested(&e), hp.queued(BackendId::Read)), (1, 4));
        // The others wait past timeout queue.
        h.set_ms(190);
        hp.on_timer(&mut h.ctx(), HaproxyTimer::Tick);
        assert_eq!(outcome_sum(&h.drain(), BOUNCER), Outcome::default());
        h.set_ms(200);
        hp.on_timer(&mut h.ctx(), HaproxyTimer::Tick);
        let e = h.drain();
        assert_eq!(outcome_sum(&e, BOUNCER), failed(ErrorKind::PoolExhausted, 4));
        assert_eq!(counted(&e, HAPROXY_QUEUE_TIMEOUTS, Label::Tenant(0)), 4);
        assert_eq!((hp.queued(BackendId::Read), hp.in_flight_to(SB1)), (0, 4));
        hp.check_invariants();
    }

    #[test]
    fn shutdown_sessions_cuts_in_flight_on_marked_down() {
        for shutdown in [true, false] {
            let mut c = cfg();
            c.write.shutdown_sessions = shutdown;
            c.write.balance = Balance::First;
            let (mut h, mut hp) = start(c);
            req(&mut hp, &mut h, 1, ReqKind::Write, 7);
            let e = h.drain();
            assert_eq!(requests(&e)[0].0, PX1);
            let down = until_transition(&mut hp, &mut h, PX1, &|n| Some(n != PX1));
            let cut = if shutdown { 7 } else { 0 };
            assert_eq!((down.state.as_str(), down.sessions_cut), ("DOWN", cut));
            assert_eq!(outcome_sum(&down.effects, BOUNCER).error(ErrorKind::ConnectionClosed), cut);
            assert_eq!(hp.in_flight_to(PX1), 7 - cut);
            // New sessions go to the other proxy.
            req(&mut hp, &mut h, 2, ReqKind::Write, 3);
            assert_eq!(requests(&h.drain())[0].0, PX2);
        }
    }

    #[test]
    fn unanswered_sessions_time_out_after_connect_plus_server() {
        let (mut h, mut hp) = start(cfg());
        req(&mut hp, &mut h, 1, ReqKind::Read, 3);
        h.drain();
        h.set_ms(34_990);
        hp.on_timer(&mut h.ctx(), HaproxyTimer::Tick);
        assert_eq!(outcome_sum(&h.drain(), BOUNCER).error(ErrorKind::TimedOut), 0);
        h.set_ms(35_000);
        hp.on_timer(&mut h.ctx(), HaproxyTimer::Tick);
        let e = h.drain();
        assert_eq!(outcome_sum(&e, BOUNCER), failed(ErrorKind::TimedOut, 3));
        assert_eq!(counted(&e, HAPROXY_SERVER_TIMEOUTS, Label::Tenant(0)), 3);
    }

    #[test]
    fn queued_sessions_are_refused_when_the_last_server_goes_down() {
        let mut c = cfg();
        c.write.servers = vec![ServerConfig { node: PX1, maxconn: 1, maxqueue: 0 }];
        c.timeout_queue = Some(Duration::from_secs(60));
        let (mut h, mut hp) = start(c);
        req(&mut hp, &mut h, 1, ReqKind::Write, 5);
        h.drain();
        assert_eq!(hp.queued(BackendId::Write), 4);
        let down = until_transition(&mut hp, &mut h, PX1, &|n| Some(n != PX1));
        assert_eq!(outcome_sum(&down.effects, BOUNCER), failed(ErrorKind::Refused, 4));
        assert_eq!(hp.queued(BackendId::Write), 0);
    }
}
