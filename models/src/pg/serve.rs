//! Serving clients' requests: cohorts of reads and writes arrive from the request path, wait
//! for a core in arrival order, and are served at the rate `Capacity` allows (cold cache after a
//! start or a promotion, collapse under overload). A served write becomes a commit with its own
//! LSN and is answered only when its `synchronous_commit` level holds; a served read is answered
//! at once. A standby answers writes with "read-only"; a server that is not up refuses.

use super::*;

/// What the local keeper (and tests) see of this server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgStatus {
    pub role: PgRoleKind,
    /// Serving in its role: a primary, or a standby streaming from its upstream.
    pub healthy: bool,
    pub tli: u32,
    pub flushed: Lsn,
    /// A standby whose upstream refused it (diverged history): it needs a rewind or rebuild.
    pub refused: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgRoleKind {
    Primary,
    Standby { upstream: NodeId },
    Promoting,
    Rebuilding,
    Fenced,
}

pub(super) const METRIC_REQUESTS_SERVED: &str = "pg_requests_served";
pub(super) const METRIC_REQUESTS_DROPPED: &str = "pg_requests_dropped";

/// Sends (part of) a cohort's outcome back to the hop it came from.
pub(super) fn reply(ctx: &mut PCtx<'_>, cohort: Cohort, route: Route, outcome: Outcome) {
    if let Some(to) = route.last() {
        ctx.send(to, PgMsg::Flow(FlowMsg::Outcome { cohort, outcome, route }));
    }
}

impl PgNode {
    pub fn status(&self) -> PgStatus {
        let (role, healthy, refused) = match &self.role {
            Role::Primary { .. } => (PgRoleKind::Primary, true, false),
            Role::Standby { upstream, streaming, refused, .. } => {
                (PgRoleKind::Standby { upstream: *upstream }, *streaming, *refused)
            }
            Role::Promoting { .. } => (PgRoleKind::Promoting, true, false),
            Role::Rebuilding { .. } => (PgRoleKind::Rebuilding, false, false),
            Role::Fenced => (PgRoleKind::Fenced, false, false),
        };
        PgStatus { role, healthy, tli: self.tl.tli, flushed: self.flushed, refused }
    }

    /// The standbys `pg_stat_replication` shows with `sync_state = 'sync'` (what Stolon's
    /// keeper reports as in sync): on a primary, the walsenders past catch-up whose names
    /// `synchronous_standby_names` (as in force now) makes synchronous. `ANY` standbys are
    /// 'quorum', not 'sync'.
    pub fn sync_standbys(&self) -> Vec<String> {
        let (Role::Primary { .. }, Some(names)) = (&self.role, &self.cfg.synchronous_standby_names) else {
            return Vec::new();
        };
        if names.method == crate::pg::syncrep::SyncMethod::Any {
            return Vec::new();
        }
        let streaming: Vec<&str> =
            self.walsenders.iter().filter(|(_, w)| w.streaming).map(|(id, _)| self.cfg.names[id].as_str()).collect();
        streaming.iter().filter(|n| names.is_sync(n, &streaming)).map(|n| n.to_string()).collect()
    }

    /// Requests in the intake plus commits waiting for their acknowledgement: the sessions
    /// this server holds for clients (recounted; `sessions_held` keeps it incrementally).
    pub(super) fn sessions(&self) -> u64 {
        let queued: u64 = self.queues.iter().flatten().filter(|b| b.reply.is_some()).map(|b| b.count).sum();
        queued + self.intake.iter().map(|(c, _, _)| c.count).sum::<u64>()
    }

    pub(super) fn on_flow(&mut self, ctx: &mut PCtx<'_>, from: NodeId, msg: FlowMsg) {
        match msg {
            FlowMsg::Check { seq } => {
                let ok = matches!(self.role, Role::Primary { .. } | Role::Standby { .. });
                ctx.send(from, PgMsg::Flow(FlowMsg::CheckReply { seq, ok }));
            }
            FlowMsg::Requests { cohort, route } => {
                let write = cohort.kind == crate::flow::ReqKind::Write;
                let refuse = match self.role {
                    Role::Primary { .. } => None,
                    Role::Standby { .. } if write => Some(ErrorKind::ReadOnly),
                    Role::Standby { .. } => None,
                    // Starting up, shutting down, or not accepting connections.
                    _ => Some(ErrorKind::Refused),
                };
                let refuse = refuse.or_else(|| {
                    // "sorry, too many clients already"
                    (self.sessions_held + cohort.count > self.cfg.capacity.max_connections as u64)
                        .then_some(ErrorKind::Refused)
                });
                match refuse {
                    Some(kind) => reply(ctx, cohort, route, Outcome::failed(kind, cohort.count)),
                    None => {
                        let unit = self.cfg.capacity.service(write).as_secs_f64();
                        self.arrived_core_s += cohort.count as f64 * unit;
                        self.sessions_held += cohort.count;
                        self.intake.push_back((cohort, route, ctx.now));
                    }
                }
            }
            // Outcomes and check replies are not for a database server.
            FlowMsg::Outcome { .. } | FlowMsg::CheckReply { .. } => {}
        }
    }

    /// One tick of service: the capacity left after the generated load serves the intake in
    /// arrival order; clients that gave up are dropped (PostgreSQL notices the closed socket).
    pub(super) fn serve(&mut self, ctx: &mut PCtx<'_>) {
        // Clients that gave up closed their sessions: the work is dropped, and the hops that
        // hold their connections are told (they free them). This tick serves the work of the
        // last `flow_tick`, so a request that reached the server before its client gave up,
        // within that window, is still served (a real backend starts it on arrival): only
        // deadlines before the window began drop it. Dropping at `now` instead threw away
        // requests PgBouncer handed over with milliseconds left, closing their server
        // connections, and a pool that re-logs in faster than it loses them never got out.
        let timeout = self.cfg.workload.client_timeout;
        let now = ctx.now;
        let window_start = now.saturating_sub(self.cfg.flow_tick);
        let gone = |c: &Cohort, at: SimTime| c.deadline <= window_start.max(at) || now - at >= timeout;
        if self.intake.iter().any(|(c, _, at)| gone(c, *at)) {
            let mut kept = VecDeque::with_capacity(self.intake.len());
            for (c, route, at) in std::mem::take(&mut self.intake) {
                if gone(&c, at) {
                    ctx.count(METRIC_REQUESTS_DROPPED, Label::Node(ctx.id), c.count);
                    reply(ctx, c, route, Outcome::failed(ErrorKind::TimedOut, c.count));
                    self.sessions_held -= c.count;
                } else {
                    kept.push_back((c, route, at));
                }
            }
            self.intake = kept;
        }
        // The offered work, smoothed over about a second: contention comes from the rate of
        // work arriving, not from the length of the queue.
        let dt = self.cfg.flow_tick.as_secs_f64();
        let alpha = dt.min(1.0);
        self.offered_core_s += alpha * (std::mem::take(&mut self.arrived_core_s) / dt - self.offered_core_s);
        if self.intake.is_empty() {
            self.serve_carry = 0.0;
            return;
        }
        let warmth = self.cfg.capacity.warmth(ctx.now.saturating_since(self.serving_since));
        // Core-seconds to spend this tick, in arrival order, each request at its own cost.
        self.serve_carry += self.cfg.capacity.useful_core_seconds(self.offered_core_s, warmth) * dt;
        let step =
            ((self.cfg.workload.bytes_per_commit as f64) * self.cfg.workload.write_amplification).max(1.0) as u64;
        let mut wrote = false;
        while let Some(&(mut cohort, route, arrived)) = self.intake.front() {
            let unit = self.cfg.capacity.service(cohort.kind == crate::flow::ReqKind::Write).as_secs_f64();
            let n = cohort.count.min((self.serve_carry / unit.max(1e-12)).floor() as u64);
            if n == 0 {
                break;
            }
            self.serve_carry -= n as f64 * unit;
            self.intake.pop_front();
            if n < cohort.count {
                // Serve part now; the rest keeps its place at the head of the queue.
                let mut rest = cohort;
                rest.count -= n;
                self.intake.push_front((rest, route, arrived));
                cohort.count = n;
            }
            ctx.count(METRIC_REQUESTS_SERVED, Label::Node(ctx.id), n);
            // Out of the intake; a write holds its session on until its commit is answered.
            self.sessions_held -= n;
            match (cohort.kind, &self.role) {
                (crate::flow::ReqKind::Write, Role::Primary { .. }) => {
                    let level = self.cfg.synchronous_commit;
                    let first = self.insert + step;
                    self.insert += n * step;
                    self.queues[level as usize].push_back(Batch {
                        level,
                        count: n,
                        first,
                        step,
                        created: ctx.now,
                        reply: Some((cohort, route)),
                    });
                    self.sessions_held += n;
                    wrote = true;
                }
                (crate::flow::ReqKind::Write, _) => reply(ctx, cohort, route, Outcome::failed(ErrorKind::ReadOnly, n)),
                _ => {
                    if matches!(self.role, Role::Standby { .. }) {
                        let stale = self.lag(ctx.now).0 > self.cfg.stale_read_lag;
                        ctx.count(if stale { METRIC_READS_STALE } else { METRIC_READS_OK }, Label::Node(ctx.id), n);
                    }
                    reply(ctx, cohort, route, Outcome::ok(n));
                }
            }
        }
        if wrote {
            self.request_fsync(ctx, self.insert);
        }
    }

    /// Every session this server holds for clients ends (fenced, rebuilt, PANIC).
    pub(super) fn drop_requests(&mut self, ctx: &mut PCtx<'_>, kind: ErrorKind) {
        self.sessions_held = 0;
        for (cohort, route, _) in std::mem::take(&mut self.intake) {
            reply(ctx, cohort, route, Outcome::failed(kind, cohort.count));
        }
        for q in std::mem::take(&mut self.queues) {
            for b in q {
                if let Some((cohort, route)) = b.reply {
                    reply(ctx, cohort, route, Outcome::failed(kind, b.count));
                }
            }
        }
    }
}
