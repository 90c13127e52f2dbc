//! The clients of one region, as one node: every tick each tenant issues its share of the
//! load as cohorts, sends them to PgBouncer (reads to the nearest entry, writes to the primary
//! region), retries failures per its policy and measures latency and availability.
//!
//! - Load: `read_rps` and `write_rps` follow a daily sinusoid (`diurnal_amplitude`, peaking at
//!   `peak_hour` of simulated time) times any active spikes, times the operator's load factor.
//!   Arrivals per tick are the expected count with the fraction carried over and rounded by a
//!   draw from the node's RNG, so long runs issue exactly the expected totals.
//! - Read-after-write: a read whose user wrote within `read_after_write_window` must see that
//!   write, so it goes to the primary region's write path as `ReadPrimary`. With `users`
//!   writing independently at `write_rps / users` each (Poisson), that share of reads is
//!   `1 - exp(-(write_rps / users) * window)` (`read_after_write_share`).
//! - Anycast: entries are listed nearest first; an entry whose answers over the last window were
//!   mostly `Refused`/`TimedOut`, or that answered nothing, is withdrawn and the region moves to
//!   the next one; it is re-probed after `reprobe_after`.
//!
//! Availability is the simulator's to compute: ok / (ok + final failures) per second, from the
//! `CLIENT_OK` and `CLIENT_FAILED` counters.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::time::Duration;

use rand::Rng;

use super::relay::pop_self;
use super::{Cohort, ErrorKind, FlowMsg, Outcome, ReqKind, Route, TenantId};
use crate::node::{Ctx, Label, Model, NodeId};
use crate::rng::SimRng;
use crate::time::SimTime;
use crate::trace::{NodeRef, TraceKind};

/// Requests issued for the first time (Label::Tenant).
pub const CLIENT_REQUESTS: &str = "client_requests";
/// Requests that succeeded (on any attempt).
pub const CLIENT_OK: &str = "client_ok";
/// Requests that failed for good: retries exhausted or not allowed.
pub const CLIENT_FAILED: &str = "client_failed";
/// Retry attempts issued.
pub const CLIENT_RETRIES: &str = "client_retries";
/// Latency of successful requests from their first issue, in ms (a distribution).
pub const CLIENT_LATENCY_MS: &str = "client_latency_ms";
/// Failed attempts by error kind.
pub const CLIENT_ERRORS_REFUSED: &str = "client_errors_refused";
pub const CLIENT_ERRORS_TIMED_OUT: &str = "client_errors_timed_out";
pub const CLIENT_ERRORS_READ_ONLY: &str = "client_errors_read_only";
pub const CLIENT_ERRORS_POOL_EXHAUSTED: &str = "client_errors_pool_exhausted";
pub const CLIENT_ERRORS_CONNECTION_CLOSED: &str = "client_errors_connection_closed";

/// Attempt-error metric names indexed by `ErrorKind as usize`.
pub const CLIENT_ERRORS: [&str; 5] = [
    CLIENT_ERRORS_REFUSED,
    CLIENT_ERRORS_TIMED_OUT,
    CLIENT_ERRORS_READ_ONLY,
    CLIENT_ERRORS_POOL_EXHAUSTED,
    CLIENT_ERRORS_CONNECTION_CLOSED,
];

pub fn error_metric(kind: ErrorKind) -> &'static str {
    CLIENT_ERRORS[kind as usize]
}

/// Bound on cohorts awaiting an outcome; timeouts keep it far below this.
const OUTSTANDING_MAX: usize = 1 << 20;
/// Bound on cohorts waiting to be retried.
const RETRIES_MAX: usize = 1 << 20;

/// The load multiplied by `factor` from `from` until `until`.
#[derive(Clone, Debug, PartialEq)]
pub struct Spike {
    pub from: SimTime,
    pub until: SimTime,
    pub factor: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RetryPolicy {
    /// A failure is final.
    None,
    /// Retry at once, up to `max_retries` times.
    Immediate { max_retries: u32 },
    /// Retry after `base * 2^attempt`, at most `cap`; with `jitter`, after a uniform draw in
    /// `[0, that]` ("full jitter").
    Backoff { base: Duration, cap: Duration, max_retries: u32, jitter: bool },
}

impl RetryPolicy {
    pub fn max_retries(&self) -> u32 {
        match self {
            RetryPolicy::None => 0,
            RetryPolicy::Immediate { max_retries } | RetryPolicy::Backoff { max_retries, .. } => *max_retries,
        }
    }

    /// Delay before retry number `attempt + 1` (`attempt` retries already made).
    pub fn delay(&self, attempt: u32, rng: &mut SimRng) -> Duration {
        match *self {
            RetryPolicy::None | RetryPolicy::Immediate { .. } => Duration::ZERO,
            RetryPolicy::Backoff { base, cap, jitter, .. } => {
                let d = base.saturating_mul(1u32 << attempt.min(31)).min(cap);
                if jitter { Duration::from_nanos(rng.gen_range(0..=d.as_nanos() as u64)) } else { d }
            }
        }
    }
}

/// One tenant's load from this region.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantLoad {
    pub name: String,
    pub read_rps: f64,
    pub write_rps: f64,
    /// 0..1: the daily swing around the mean rate.
    pub diurnal_amplitude: f64,
    /// 0..24: hour of simulated time at which the load peaks.
    pub peak_hour: f64,
    pub spikes: Vec<Spike>,
    /// An attempt unanswered this long fails as `TimedOut` (late answers are ignored).
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Distinct users behind the load (for the read-after-write share).
    pub users: u64,
    /// A read within this long of its user's write must see it (0: no such reads).
    pub read_after_write_window: Duration,
}

impl Default for TenantLoad {
    fn default() -> Self {
        TenantLoad {
            name: "tenant".to_string(),
            read_rps: 0.0,
            write_rps: 0.0,
            diurnal_amplitude: 0.0,
            peak_hour: 14.0,
            spikes: vec![],
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::None,
            users: 1000,
            read_after_write_window: Duration::ZERO,
        }
    }
}

impl TenantLoad {
    /// The load at `now` relative to the configured rates: the daily sinusoid times any spikes.
    pub fn curve(&self, now: SimTime) -> f64 {
        let hour = (now.as_secs_f64() / 3600.0) % 24.0;
        let daily = 1.0 + self.diurnal_amplitude * (2.0 * PI * (hour - self.peak_hour) / 24.0).cos();
        let spikes: f64 = self.spikes.iter().filter(|s| s.from <= now && now < s.until).map(|s| s.factor).product();
        daily * spikes
    }
}

/// The share of reads whose user wrote within `window`: users write independently at
/// `write_rps / users` each, so the chance that one wrote within the window is
/// `1 - exp(-(write_rps / users) * window)`.
pub fn read_after_write_share(write_rps: f64, users: u64, window: Duration) -> f64 {
    assert!(write_rps >= 0.0 && write_rps.is_finite());
    if window.is_zero() || write_rps == 0.0 {
        return 0.0;
    }
    if users == 0 {
        return 1.0;
    }
    1.0 - (-(write_rps / users as f64) * window.as_secs_f64()).exp()
}

#[derive(Clone, Debug, PartialEq)]
pub struct AnycastConfig {
    /// The window over which an entry's answers are judged.
    pub window: Duration,
    /// An entry whose answers in a window are more than this share `Refused`/`TimedOut` is
    /// withdrawn.
    pub bad_share: f64,
    /// A withdrawn entry is tried again after this long.
    pub reprobe_after: Duration,
}

impl Default for AnycastConfig {
    fn default() -> Self {
        AnycastConfig { window: Duration::from_secs(1), bad_share: 0.5, reprobe_after: Duration::from_secs(10) }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// How often arrivals are issued and timeouts looked at.
    pub tick: Duration,
    /// Indexed by `TenantId`: the scenario's whole tenant table, with this region's rates.
    pub tenants: Vec<TenantLoad>,
    /// PgBouncer nodes for plain reads, nearest first (the local region's first).
    pub read_entries: Vec<NodeId>,
    /// The primary region's PgBouncer nodes, for writes and read-after-write reads.
    pub write_entries: Vec<NodeId>,
    pub anycast: AnycastConfig,
    /// When the load starts (the stack's control plane settles first: a run starts cold).
    pub start_after: Duration,
}

impl ClientConfig {
    pub fn new(tenants: Vec<TenantLoad>, read_entries: Vec<NodeId>, write_entries: Vec<NodeId>) -> ClientConfig {
        ClientConfig {
            tick: Duration::from_millis(100),
            tenants,
            read_entries,
            write_entries,
            anycast: AnycastConfig::default(),
            start_after: Duration::ZERO,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClientTimer {
    Tick,
}

/// An attempt awaiting its outcome.
#[derive(Clone, Debug)]
struct Pending {
    tenant: TenantId,
    kind: ReqKind,
    remaining: u64,
    /// When the requests were first issued (latency is measured from here).
    created: SimTime,
    sent: SimTime,
    /// Retries made before this attempt.
    attempt: u32,
    entry: NodeId,
}

/// Requests waiting to be retried.
#[derive(Clone, Debug)]
struct Retry {
    tenant: TenantId,
    kind: ReqKind,
    count: u64,
    created: SimTime,
    attempt: u32,
}

/// How an entry answered in the current and previous windows.
#[derive(Clone, Debug, Default)]
struct EntryHealth {
    withdrawn_until: Option<SimTime>,
    why: String,
    issued: u64,
    issued_prev: u64,
    /// Answers showing the entry is there (success, or an error from further down).
    good: u64,
    /// `Refused` and `TimedOut`: the entry (or its path) is not serving.
    bad: u64,
}

pub struct Client {
    deep: crate::node::DeepCheck,
    cfg: ClientConfig,
    load_factor: f64,
    next_seq: u64,
    /// Fractional arrivals carried over, per tenant and `ReqKind`.
    carry: Vec<[f64; 3]>,
    outstanding: BTreeMap<u64, Pending>,
    /// (due, id) -> requests to retry.
    retries: BTreeMap<(SimTime, u64), Retry>,
    next_retry_id: u64,
    entries: BTreeMap<NodeId, EntryHealth>,
    read_entry: NodeId,
    write_entry: NodeId,
    window_end: SimTime,
}

type CCtx<'a> = Ctx<'a, FlowMsg, ClientTimer>;

impl Client {
    pub fn new(cfg: ClientConfig) -> Client {
        assert!(!cfg.tick.is_zero() && !cfg.anycast.window.is_zero(), "tick and window must be positive");
        assert!(!cfg.read_entries.is_empty() && !cfg.write_entries.is_empty(), "a client needs somewhere to go");
        assert!(cfg.tenants.len() <= usize::from(TenantId::MAX));
        for t in &cfg.tenants {
            assert!(t.read_rps >= 0.0 && t.write_rps >= 0.0, "tenant {}: negative rate", t.name);
            assert!((0.0..=1.0).contains(&t.diurnal_amplitude), "tenant {}: amplitude outside 0..1", t.name);
            assert!(!t.timeout.is_zero(), "tenant {}: zero timeout", t.name);
            assert!(t.spikes.iter().all(|s| s.factor >= 0.0 && s.from <= s.until));
        }
        let entries = cfg.read_entries.iter().chain(&cfg.write_entries).map(|&e| (e, EntryHealth::default())).collect();
        Client {
            deep: Default::default(),
            carry: vec![[0.0; 3]; cfg.tenants.len()],
            read_entry: cfg.read_entries[0],
            write_entry: cfg.write_entries[0],
            cfg,
            load_factor: 1.0,
            next_seq: 0,
            outstanding: BTreeMap::new(),
            retries: BTreeMap::new(),
            next_retry_id: 0,
            entries,
            window_end: SimTime::ZERO,
        }
    }

    pub fn read_entry(&self) -> NodeId {
        self.read_entry
    }

    pub fn write_entry(&self) -> NodeId {
        self.write_entry
    }

    /// Requests awaiting an outcome.
    pub fn outstanding(&self) -> u64 {
        self.outstanding.values().map(|p| p.remaining).sum()
    }

    /// Requests waiting to be retried.
    pub fn retrying(&self) -> u64 {
        self.retries.values().map(|r| r.count).sum()
    }

    /// The operator moves plain reads (nearest first).
    pub fn set_read_entries(&mut self, ctx: &mut CCtx<'_>, entries: Vec<NodeId>) {
        assert!(!entries.is_empty(), "reads need an entry");
        self.add_entries(&entries);
        self.cfg.read_entries = entries;
        self.reroute(ctx, Some("operator"));
    }

    /// The operator moves writes (a planned primary move).
    pub fn set_write_entries(&mut self, ctx: &mut CCtx<'_>, entries: Vec<NodeId>) {
        assert!(!entries.is_empty(), "writes need an entry");
        self.add_entries(&entries);
        self.cfg.write_entries = entries;
        self.reroute(ctx, Some("operator"));
    }

    /// Sheds (below 1) or adds load: every tenant's rates are multiplied by `factor`.
    pub fn set_load_factor(&mut self, factor: f64) {
        assert!(factor >= 0.0 && factor.is_finite(), "load factor {factor}");
        self.load_factor = factor;
    }

    fn add_entries(&mut self, entries: &[NodeId]) {
        for &e in entries {
            self.entries.entry(e).or_default();
        }
    }

    /// The nearest entry not withdrawn; the nearest of all when every one is withdrawn (there
    /// is nowhere better to go).
    fn pick(&self, list: &[NodeId]) -> NodeId {
        list.iter().copied().find(|e| self.entries[e].withdrawn_until.is_none()).unwrap_or(list[0])
    }

    /// Points reads and writes at the nearest available entries, tracing each change.
    fn reroute(&mut self, ctx: &mut CCtx<'_>, reason: Option<&str>) {
        for request in ["read", "write"] {
            let (list, old) = if request == "read" {
                (&self.cfg.read_entries, self.read_entry)
            } else {
                (&self.cfg.write_entries, self.write_entry)
            };
            let new = self.pick(list);
            if new == old {
                continue;
            }
            let why = match (reason, &self.entries[&old].withdrawn_until) {
                (Some(r), _) => r.to_string(),
                (None, Some(_)) => format!("entry withdrawn: {}", self.entries[&old].why),
                (None, None) => "re-probe: a nearer entry is back".to_string(),
            };
            ctx.trace(TraceKind::ClientRoute { request: request.to_string(), to: NodeRef(new), reason: why });
            if request == "read" {
                self.read_entry = new;
            } else {
                self.write_entry = new;
            }
        }
    }

    /// Sends `count` requests as a new cohort (first attempt or retry).
    fn issue(
        &mut self,
        ctx: &mut CCtx<'_>,
        tenant: TenantId,
        kind: ReqKind,
        count: u64,
        created: SimTime,
        attempt: u32,
    ) {
        if attempt == 0 {
            ctx.count(CLIENT_REQUESTS, Label::Tenant(tenant), count);
        }
        if self.outstanding.len() >= OUTSTANDING_MAX {
            // No connection can be opened: the requests fail here, for good.
            ctx.count(CLIENT_FAILED, Label::Tenant(tenant), count);
            return;
        }
        let entry = if kind.needs_primary() { self.write_entry } else { self.read_entry };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outstanding
            .insert(seq, Pending { tenant, kind, remaining: count, created, sent: ctx.now, attempt, entry });
        self.entries.get_mut(&entry).expect("entries cover both lists").issued += count;
        let deadline = ctx.now + self.cfg.tenants[usize::from(tenant)].timeout;
        let cohort = Cohort { client: ctx.id, seq, tenant, kind, count, created, deadline };
        ctx.send(entry, FlowMsg::Requests { cohort, route: Route::new(ctx.id) });
    }

    /// Failed requests: retried per the tenant's policy, or failed for good.
    fn failed(&mut self, ctx: &mut CCtx<'_>, tenant: TenantId, kind: ReqKind, n: u64, created: SimTime, attempt: u32) {
        let policy = &self.cfg.tenants[usize::from(tenant)].retry;
        if attempt >= policy.max_retries() || self.retries.len() >= RETRIES_MAX {
            ctx.count(CLIENT_FAILED, Label::Tenant(tenant), n);
            return;
        }
        ctx.count(CLIENT_RETRIES, Label::Tenant(tenant), n);
        // Immediate retries go out with the next tick's batch.
        let due = ctx.now + policy.delay(attempt, ctx.rng);
        let id = self.next_retry_id;
        self.next_retry_id += 1;
        self.retries.insert((due, id), Retry { tenant, kind, count: n, created, attempt: attempt + 1 });
    }

    fn on_outcome(&mut self, ctx: &mut CCtx<'_>, cohort: Cohort, mut outcome: Outcome) {
        // Answers for attempts that timed out (or predate a restart) are ignored.
        let Some(p) = self.outstanding.get_mut(&cohort.seq) else { return };
        let got = outcome.take(p.remaining);
        p.remaining -= got.total();
        let p = p.clone();
        if p.remaining == 0 {
            self.outstanding.remove(&cohort.seq);
        }
        let label = Label::Tenant(p.tenant);
        if got.ok > 0 {
            ctx.count(CLIENT_OK, label, got.ok);
            ctx.observe_n(CLIENT_LATENCY_MS, label, (ctx.now - p.created).as_secs_f64() * 1e3, got.ok);
        }
        for kind in ErrorKind::ALL {
            if got.error(kind) > 0 {
                ctx.count(error_metric(kind), label, got.error(kind));
            }
        }
        let bad = got.error(ErrorKind::Refused) + got.error(ErrorKind::TimedOut);
        let h = self.entries.get_mut(&p.entry).expect("entries cover both lists");
        h.bad += bad;
        h.good += got.total() - bad;
        let failed = got.failed_total();
        if failed > 0 {
            self.failed(ctx, p.tenant, p.kind, failed, p.created, p.attempt);
        }
    }

    fn expire(&mut self, ctx: &mut CCtx<'_>) {
        let tenants = &self.cfg.tenants;
        let expired: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, p)| p.sent + tenants[usize::from(p.tenant)].timeout <= ctx.now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            let p = self.outstanding.remove(&seq).expect("listed");
            ctx.count(CLIENT_ERRORS_TIMED_OUT, Label::Tenant(p.tenant), p.remaining);
            self.entries.get_mut(&p.entry).expect("entries cover both lists").bad += p.remaining;
            self.failed(ctx, p.tenant, p.kind, p.remaining, p.created, p.attempt);
        }
    }

    fn arrivals(&mut self, ctx: &mut CCtx<'_>) {
        let dt_s = self.cfg.tick.as_secs_f64();
        for t in 0..self.cfg.tenants.len() {
            let load = &self.cfg.tenants[t];
            let f = load.curve(ctx.now) * self.load_factor;
            let (read_rps, write_rps) = (load.read_rps * f, load.write_rps * f);
            let share = read_after_write_share(write_rps, load.users, load.read_after_write_window);
            let mut expected = [0.0; 3];
            expected[ReqKind::Read as usize] = read_rps * (1.0 - share) * dt_s;
            expected[ReqKind::ReadPrimary as usize] = read_rps * share * dt_s;
            expected[ReqKind::Write as usize] = write_rps * dt_s;
            for kind in ReqKind::ALL {
                let n = draw(&mut self.carry[t][kind as usize], expected[kind as usize], ctx.rng);
                if n > 0 {
                    self.issue(ctx, t as TenantId, kind, n, ctx.now, 0);
                }
            }
        }
    }

    /// Judges the entries in use over the window that just ended, withdraws bad ones and
    /// starts the next window.
    fn judge_entries(&mut self, ctx: &mut CCtx<'_>) {
        let until = ctx.now + self.cfg.anycast.reprobe_after;
        let share = self.cfg.anycast.bad_share;
        for e in [self.read_entry, self.write_entry] {
            let h = self.entries.get_mut(&e).expect("entries cover both lists");
            if h.withdrawn_until.is_some() {
                // Already withdrawn and still in use (every entry is): wait for the re-probe.
                continue;
            }
            let answered = h.good + h.bad;
            let why = if answered > 0 && h.bad as f64 > share * answered as f64 {
                Some(format!("{} of {} answers refused or timed out", h.bad, answered))
            } else if answered == 0 && h.issued_prev > 0 {
                Some(format!("no answer to {} requests", h.issued_prev))
            } else {
                None
            };
            if let Some(why) = why {
                h.withdrawn_until = Some(until);
                h.why = why;
            }
        }
        for h in self.entries.values_mut() {
            h.issued_prev = std::mem::take(&mut h.issued);
            h.good = 0;
            h.bad = 0;
        }
        self.reroute(ctx, None);
    }

    /// Withdrawn entries whose time is up are tried again, with a clean record.
    fn reprobe(&mut self, ctx: &mut CCtx<'_>) {
        let mut any = false;
        for h in self.entries.values_mut() {
            if h.withdrawn_until.is_some_and(|u| u <= ctx.now) {
                *h = EntryHealth::default();
                any = true;
            }
        }
        if any {
            self.reroute(ctx, None);
        }
    }
}

/// Whole arrivals out of `expected` plus the carried fraction: the integer part, plus one with
/// probability equal to the fraction; the difference is carried (it stays within [-1, 1)).
fn draw(carry: &mut f64, expected: f64, rng: &mut SimRng) -> u64 {
    let x = *carry + expected;
    if x <= 0.0 {
        *carry = x;
        return 0;
    }
    let whole = x.floor();
    let n = whole + if rng.r#gen::<f64>() < x - whole { 1.0 } else { 0.0 };
    *carry = x - n;
    n as u64
}

impl Model for Client {
    type Msg = FlowMsg;
    type Timer = ClientTimer;
    type Durable = ();

    fn on_start(&mut self, ctx: &mut CCtx<'_>) {
        let first = self.cfg.start_after.max(self.cfg.tick);
        self.window_end = ctx.now + first + self.cfg.anycast.window;
        ctx.set_timer(ClientTimer::Tick, first);
    }

    fn on_message(&mut self, ctx: &mut CCtx<'_>, from: NodeId, msg: FlowMsg) {
        match msg {
            FlowMsg::Outcome { cohort, outcome, route } => {
                let rest = pop_self(ctx.id, route);
                assert!(rest.is_empty(), "a client is the first hop of every route");
                self.on_outcome(ctx, cohort, outcome);
            }
            FlowMsg::Check { seq } => ctx.send(from, FlowMsg::CheckReply { seq, ok: true }),
            // Clients serve no requests.
            FlowMsg::Requests { cohort, route } => {
                super::relay::fail_upstream(ctx, cohort, route, ErrorKind::Refused, cohort.count)
            }
            FlowMsg::CheckReply { .. } => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut CCtx<'_>, timer: ClientTimer) {
        match timer {
            ClientTimer::Tick => {
                self.expire(ctx);
                self.reprobe(ctx);
                if ctx.now >= self.window_end {
                    self.judge_entries(ctx);
                    self.window_end = ctx.now + self.cfg.anycast.window;
                }
                // Retries due now go out as one cohort per tenant, kind and attempt; its
                // creation time is the count-weighted mean of the merged ones' (latency is
                // measured from the first attempt).
                let mut due: BTreeMap<(TenantId, ReqKind, u32), (u64, f64)> = BTreeMap::new();
                while let Some(entry) = self.retries.first_entry() {
                    if entry.key().0 > ctx.now {
                        break;
                    }
                    let r = entry.remove();
                    let e = due.entry((r.tenant, r.kind, r.attempt)).or_default();
                    e.0 += r.count;
                    e.1 += r.count as f64 * r.created.0 as f64;
                }
                for ((tenant, kind, attempt), (count, created_sum)) in due {
                    let created = SimTime((created_sum / count as f64) as u64).min(ctx.now);
                    self.issue(ctx, tenant, kind, count, created, attempt);
                }
                self.arrivals(ctx);
                ctx.set_timer(ClientTimer::Tick, self.cfg.tick);
            }
        }
    }

    fn check_invariants(&self) {
        assert!(self.outstanding.len() <= OUTSTANDING_MAX && self.retries.len() <= RETRIES_MAX);
        assert!(self.cfg.read_entries.contains(&self.read_entry));
        assert!(self.cfg.write_entries.contains(&self.write_entry));
        if !self.deep.due() {
            return;
        }
        assert!(self.outstanding.values().all(|p| p.remaining > 0 && p.created <= p.sent));
        assert!(self.outstanding.keys().all(|&s| s < self.next_seq));
        for p in self.outstanding.values() {
            let max = self.cfg.tenants[usize::from(p.tenant)].retry.max_retries();
            assert!(p.attempt <= max, "attempt {} beyond max_retries {max}", p.attempt);
        }
        assert!(self.carry.iter().flatten().all(|c| (-1.0..1.0).contains(c)), "arrival carry out of range");
        assert!(self.cfg.read_entries.contains(&self.read_entry));
        assert!(self.cfg.write_entries.contains(&self.write_entry));
    }
}

#[cfg(test)]
mod tests;
