//! One PostgreSQL server: a primary generating WAL from its write load, committing at the
//! requested `synchronous_commit` level, streaming to standbys; or a standby receiving,
//! flushing and replaying WAL, answering reads and reporting its positions. Promotion starts a
//! new timeline; an unfenced old primary keeps accepting writes (fencing is the cluster
//! manager's job).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rand::Rng;

use super::rebuild::{self, RebuildInputs, RebuildMethod};
use super::{
    Capacity, History, Lsn, PgCommand, PgMsg, ServerRole, SyncLevel, SyncStandbyNames, Timeline, contains,
    divergence_point,
};
use crate::flow::{Cohort, ErrorKind, FlowMsg, Outcome, Route};
use crate::node::{Ctx, DiskError, DiskOp, Label, Model, NodeId};
use crate::time::SimTime;
use crate::trace::{RebuildPhase, ReplicationState, TraceKind};

/// A period of extra load: a bulk load or ETL (extra WAL), and the replay slowdown that comes
/// with it on standbys (autovacuum, index maintenance, replay conflicts).
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub from: SimTime,
    pub until: SimTime,
    pub extra_wal_bytes_per_s: f64,
    pub apply_slowdown: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub write_tps: f64,
    pub bytes_per_commit: u64,
    /// WAL bytes per logical byte written (indexes, full-page writes).
    pub write_amplification: f64,
    /// Share of commits at each `synchronous_commit` level.
    pub levels: Vec<(SyncLevel, f64)>,
    /// A commit still waiting after this is given up by its client (the commit stays visible
    /// locally but is confirmed by no standby).
    pub client_timeout: Duration,
    /// Reads per second each standby serves.
    pub standby_read_tps: f64,
    pub phases: Vec<Phase>,
}

#[derive(Clone, Debug)]
pub struct PgConfig {
    pub cluster: String,
    /// Names of the cluster's servers (standby names for `synchronous_standby_names`).
    pub names: BTreeMap<NodeId, String>,
    /// The first primary; every server starts on its timeline 1.
    pub initial_primary: NodeId,
    pub initial_upstream: Option<NodeId>,
    pub synchronous_standby_names: Option<SyncStandbyNames>,
    pub wal_sender_timeout: Duration,
    pub wal_receiver_timeout: Duration,
    pub wal_receiver_status_interval: Duration,
    pub wal_retrieve_retry_interval: Duration,
    pub flow_tick: Duration,
    pub workload: Workload,
    pub apply_bytes_per_s: f64,
    pub capacity: Capacity,
    /// Reads served from a standby lagging more than this count as stale.
    pub stale_read_lag: Duration,
    pub database_bytes: u64,
    pub wal_retained_bytes: u64,
    pub checkpoint_timeout: Duration,
    /// Unacknowledged WAL a walsender keeps in flight (the TCP window, in effect).
    pub max_inflight_bytes: u64,
    /// `synchronous_commit` for clients' write requests (postgresql.conf default `on`).
    pub synchronous_commit: SyncLevel,
}

/// What survives a crash: the WAL on disk and where it belongs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PgDurable {
    pub state: Option<(Timeline, History, Lsn, Option<NodeId>)>,
    /// `synchronous_standby_names` as last written to the configuration file (by the local
    /// keeper, as Stolon's keeper rewrites postgresql.conf, or ALTER SYSTEM): a restarted
    /// server comes back with it, not with the setting it was first started with. `None`:
    /// never changed since the first start.
    pub synchronous_standby_names: Option<Option<SyncStandbyNames>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PgTimer {
    Flow,
    Status,
}

#[derive(Clone, Debug, PartialEq)]
enum Role {
    Primary {
        since: SimTime,
    },
    Standby {
        upstream: NodeId,
        streaming: bool,
        last_heard: SimTime,
        last_attempt: SimTime,
        refused: bool,
    },
    Promoting {
        until: SimTime,
        accept_data_loss: bool,
    },
    /// `until` is None while the source has not answered; `asked_at` is when it was last asked.
    Rebuilding {
        method: RebuildMethod,
        upstream: NodeId,
        bytes_per_s: u64,
        until: Option<SimTime>,
        seconds: f64,
        asked_at: SimTime,
    },
    Fenced,
}

impl Role {
    fn name(&self) -> ServerRole {
        match self {
            Role::Primary { .. } => ServerRole::Primary,
            Role::Standby { .. } => ServerRole::Standby,
            Role::Promoting { .. } => ServerRole::Promoting,
            Role::Rebuilding { .. } => ServerRole::Rebuilding,
            Role::Fenced => ServerRole::Fenced,
        }
    }
}

struct Batch {
    level: SyncLevel,
    count: u64,
    first: Lsn,
    step: u64,
    created: SimTime,
    /// Commits of clients' requests: the outcome goes back along this route.
    reply: Option<(Cohort, Route)>,
}

impl Batch {
    fn last(&self) -> Lsn {
        self.first + (self.count - 1) * self.step
    }
}

#[derive(Clone, Debug)]
struct Walsender {
    sent: Lsn,
    write: Lsn,
    flush: Lsn,
    replay: Lsn,
    last_reply: SimTime,
    last_send: SimTime,
    /// When `sent` last moved back to `write`: lost WAL is resent after a second without
    /// progress, as TCP would retransmit.
    last_progress: SimTime,
    /// pg_stat_replication's `state`: `catchup` (false) until this walsender has sent all
    /// the WAL flushed here, `streaming` (true) from then on.
    streaming: bool,
}

pub struct PgNode {
    cfg: PgConfig,
    boot: PgDurable,
    role: Role,
    tl: Timeline,
    history: History,
    insert: Lsn,
    received: Lsn,
    flushed: Lsn,
    replay: Lsn,
    /// fsync token -> LSN it covers.
    fsyncs: BTreeMap<u64, Lsn>,
    next_token: u64,
    /// `synchronous_standby_names` was changed since the first start (see `PgDurable`).
    names_written: bool,
    walsenders: BTreeMap<NodeId, Walsender>,
    /// Commits waiting for acknowledgement, one queue per level: within a level, LSNs and
    /// creation times both increase along the queue, so acknowledgements and timeouts always
    /// take a prefix.
    queues: [VecDeque<Batch>; 5],
    /// Fractional commits and reads carried between ticks.
    commit_carry: f64,
    read_carry: f64,
    /// Primary: when each flushed LSN was flushed (for lag in seconds).
    flush_times: VecDeque<(Lsn, SimTime)>,
    /// Standby: (end LSN, primary flush time) of WAL received and not yet replayed.
    wal_times: VecDeque<(Lsn, SimTime)>,
    last_status_sent: SimTime,
    out_of_order: u64,
    /// Standby: the upstream's flushed LSN as last reported.
    upstream_flushed: Lsn,
    /// Standby: when the primary flushed the WAL replayed last.
    last_replayed_wal_time: Option<SimTime>,
    /// Faults: replay slowdown factor and a paused walreceiver.
    fault_apply_factor: f64,
    receiver_paused: bool,
    /// Clients' requests waiting for a core, in arrival order.
    intake: VecDeque<(Cohort, Route, SimTime)>,
    /// Fractional capacity carried between ticks.
    serve_carry: f64,
    /// Work (core-seconds) arrived since the last tick, and the offered work per second
    /// smoothed over ~1 s.
    arrived_core_s: f64,
    offered_core_s: f64,
    /// Sessions held for clients (intake plus commits awaiting their answer).
    sessions_held: u64,
    /// Full recounts of `sessions_held`, sampled.
    deep: crate::node::DeepCheck,
    /// When this server started serving in its current role (its cache warms from here).
    serving_since: SimTime,
}

type PCtx<'a> = Ctx<'a, PgMsg, PgTimer>;

const ACKED: [&str; 5] = [
    "pg_commits_acked_off",
    "pg_commits_acked_local",
    "pg_commits_acked_remote_write",
    "pg_commits_acked_on",
    "pg_commits_acked_remote_apply",
];
const TIMED_OUT: [&str; 5] = [
    "pg_commits_timed_out_off",
    "pg_commits_timed_out_local",
    "pg_commits_timed_out_remote_write",
    "pg_commits_timed_out_on",
    "pg_commits_timed_out_remote_apply",
];
pub const METRIC_LAG_S: &str = "pg_replication_lag_s";
pub const METRIC_LAG_BYTES: &str = "pg_replication_lag_bytes";
pub const METRIC_READS_OK: &str = "pg_reads_ok";
pub const METRIC_READS_STALE: &str = "pg_reads_stale";
pub const METRIC_COMMIT_MS: &str = "pg_commit_ms";

/// Metric names per level, for summaries.
pub fn acked_metric(level: SyncLevel) -> &'static str {
    ACKED[level as usize]
}
pub fn timed_out_metric(level: SyncLevel) -> &'static str {
    TIMED_OUT[level as usize]
}

impl PgNode {
    pub fn new(cfg: PgConfig, durable: PgDurable) -> PgNode {
        assert!(!cfg.flow_tick.is_zero() && cfg.apply_bytes_per_s > 0.0);
        let tl = Timeline { tli: 1, origin: cfg.initial_primary };
        PgNode {
            cfg,
            boot: durable,
            role: Role::Fenced,
            tl,
            history: Vec::new(),
            insert: 0,
            received: 0,
            flushed: 0,
            replay: 0,
            fsyncs: BTreeMap::new(),
            next_token: 0,
            names_written: false,
            walsenders: BTreeMap::new(),
            queues: Default::default(),
            commit_carry: 0.0,
            read_carry: 0.0,
            flush_times: VecDeque::new(),
            wal_times: VecDeque::new(),
            last_status_sent: SimTime::ZERO,
            out_of_order: 0,
            upstream_flushed: 0,
            fault_apply_factor: 1.0,
            receiver_paused: false,
            last_replayed_wal_time: None,
            intake: VecDeque::new(),
            serve_carry: 0.0,
            arrived_core_s: 0.0,
            offered_core_s: 0.0,
            serving_since: SimTime::ZERO,
            sessions_held: 0,
            deep: Default::default(),
        }
    }

    pub fn is_primary(&self) -> bool {
        matches!(self.role, Role::Primary { .. })
    }
    pub fn flushed(&self) -> Lsn {
        self.flushed
    }
    /// The `synchronous_standby_names` in force.
    pub fn synchronous_standby_names(&self) -> Option<&SyncStandbyNames> {
        self.cfg.synchronous_standby_names.as_ref()
    }

    pub fn timeline(&self) -> Timeline {
        self.tl
    }

    fn set_role(&mut self, ctx: &mut PCtx<'_>, role: Role) {
        self.role = role;
        let upstream = match &self.role {
            Role::Standby { upstream, .. } | Role::Rebuilding { upstream, .. } => {
                Some(crate::trace::NodeRef(*upstream))
            }
            _ => None,
        };
        ctx.trace(TraceKind::PgRole {
            cluster: self.cfg.cluster.clone(),
            role: self.role.name(),
            tli: self.tl.tli,
            origin: self.tl.origin,
            upstream,
        });
    }

    /// The `synchronous_standby_names` now in force, for the checkers.
    fn trace_sync_names(&self, ctx: &mut PCtx<'_>) {
        let (num_sync, names) = match &self.cfg.synchronous_standby_names {
            Some(s) => (s.num_sync as u32, s.names.clone()),
            None => (0, Vec::new()),
        };
        let server = self.cfg.names.get(&ctx.id).cloned().unwrap_or_else(|| format!("node {}", ctx.id));
        ctx.trace(TraceKind::PgSyncStandbyNames { cluster: self.cfg.cluster.clone(), server, num_sync, names });
    }

    fn phase_factor(&self, now: SimTime) -> (f64, f64) {
        let active = self.cfg.workload.phases.iter().filter(|p| p.from <= now && now < p.until);
        active.fold((0.0, 1.0), |(wal, slow), p| (wal + p.extra_wal_bytes_per_s, slow * p.apply_slowdown.max(1.0)))
    }

    fn request_fsync(&mut self, ctx: &mut PCtx<'_>, upto: Lsn) {
        if upto > self.flushed && self.fsyncs.values().all(|l| *l < upto) && self.fsyncs.is_empty() {
            self.next_token += 1;
            self.fsyncs.insert(self.next_token, upto);
            ctx.disk(DiskOp::Fsync, self.next_token);
        }
    }

    /// Becomes a standby of `upstream` and asks it to stream.
    fn follow(&mut self, ctx: &mut PCtx<'_>, upstream: NodeId) {
        let now = ctx.now;
        let role = Role::Standby { upstream, streaming: false, last_heard: now, last_attempt: now, refused: false };
        self.set_role(ctx, role);
        self.start_replication(ctx, upstream);
    }

    fn start_replication(&mut self, ctx: &mut PCtx<'_>, upstream: NodeId) {
        let msg = PgMsg::StartReplication { tl: self.tl, history: self.history.clone(), from: self.flushed };
        ctx.send(upstream, msg);
    }

    // --- primary ------------------------------------------------------------------------

    fn generate(&mut self, ctx: &mut PCtx<'_>, since: SimTime) {
        let dt = self.cfg.flow_tick.as_secs_f64();
        let w = &self.cfg.workload;
        let warmth = self.cfg.capacity.warmth(ctx.now.saturating_since(since));
        let (_, served_tps) = self.cfg.capacity.served(0.0, w.write_tps, warmth);
        self.commit_carry += served_tps * dt;
        let commits = self.commit_carry.floor() as u64;
        self.commit_carry -= commits as f64;
        let step = ((w.bytes_per_commit as f64) * w.write_amplification).max(1.0) as u64;
        // Apportion commits to levels by their shares, the remainder by a seeded draw.
        let total_share: f64 = w.levels.iter().map(|(_, s)| s).sum();
        let mut left = commits;
        let levels = w.levels.clone();
        for (i, (level, share)) in levels.iter().enumerate() {
            let exact = commits as f64 * share / total_share.max(1e-12);
            let mut n = exact.floor() as u64;
            if i == levels.len() - 1 {
                n = left;
            } else if ctx.rng.r#gen::<f64>() < exact - exact.floor() {
                n += 1;
            }
            let n = n.min(left);
            left -= n;
            if n == 0 {
                continue;
            }
            let first = self.insert + step;
            self.insert += n * step;
            self.queues[*level as usize].push_back(Batch {
                level: *level,
                count: n,
                first,
                step,
                created: ctx.now,
                reply: None,
            });
        }
        let (extra_wal, _) = self.phase_factor(ctx.now);
        self.insert += (extra_wal * dt) as u64;
        self.request_fsync(ctx, self.insert);
    }

    /// Acknowledges every waiting commit whose durability condition now holds; gives up on
    /// those past the client timeout.
    fn ack(&mut self, ctx: &mut PCtx<'_>) {
        if self.queues.iter().all(VecDeque::is_empty) {
            return;
        }
        let names = &self.cfg.names;
        let positions = |f: fn(&Walsender) -> Lsn| -> Vec<(&str, Lsn)> {
            self.walsenders.iter().map(|(id, w)| (names[id].as_str(), f(w))).collect()
        };
        let synced = |f: fn(&Walsender) -> Lsn| -> Option<Lsn> {
            match &self.cfg.synchronous_standby_names {
                None => Some(Lsn::MAX),
                Some(s) => s.synced_lsn(&positions(f)),
            }
        };
        let (sw, sf, sr) = (synced(|w| w.write), synced(|w| w.flush), synced(|w| w.replay));
        let flushed = self.flushed;
        // The highest LSN each level may acknowledge now.
        let limit = |level: SyncLevel| -> Lsn {
            match level {
                SyncLevel::Off => Lsn::MAX,
                SyncLevel::Local => flushed,
                SyncLevel::RemoteWrite => flushed.min(sw.unwrap_or(0)),
                SyncLevel::On => flushed.min(sf.unwrap_or(0)),
                SyncLevel::RemoteApply => flushed.min(sr.unwrap_or(0)),
            }
        };
        let timeout = self.cfg.workload.client_timeout;
        let synchronous = self.cfg.synchronous_standby_names.is_some();
        for q in 0..self.queues.len() {
            while let Some(b) = self.queues[q].front() {
                let level = b.level;
                if b.last() <= limit(level) {
                    let b = self.queues[q].pop_front().expect("peeked");
                    ctx.count(ACKED[level as usize], Label::Node(ctx.id), b.count);
                    ctx.observe(
                        METRIC_COMMIT_MS,
                        Label::Tag(level.as_str()),
                        (ctx.now - b.created).as_secs_f64() * 1e3,
                    );
                    ctx.trace(TraceKind::PgCommitsAcked {
                        cluster: self.cfg.cluster.clone(),
                        tli: self.tl.tli,
                        origin: self.tl.origin,
                        level,
                        count: b.count,
                        first_lsn: b.first,
                        step: b.step,
                        synced: level.is_synchronous() && synchronous,
                    });
                    if let Some((cohort, route)) = b.reply {
                        self.sessions_held -= b.count;
                        serve::reply(ctx, cohort, route, Outcome::ok(b.count));
                    }
                } else if ctx.now - b.created >= timeout {
                    let b = self.queues[q].pop_front().expect("peeked");
                    ctx.count(TIMED_OUT[level as usize], Label::Node(ctx.id), b.count);
                    if let Some((cohort, route)) = b.reply {
                        self.sessions_held -= b.count;
                        serve::reply(ctx, cohort, route, Outcome::failed(ErrorKind::TimedOut, b.count));
                    }
                } else {
                    break;
                }
            }
        }
    }

    /// When the primary flushed `lsn`. `flush_times` is sorted by LSN (flushes only move
    /// forward), so a binary search does: this runs per walsender per tick.
    fn flush_time_of(&self, lsn: Lsn) -> SimTime {
        let i = self.flush_times.partition_point(|(l, _)| *l < lsn);
        self.flush_times.get(i).map_or(SimTime::ZERO, |(_, t)| *t)
    }

    /// Walsenders (on a primary or a cascading standby) send what is flushed, one chunk per
    /// tick, within their window; they time out silent standbys.
    fn stream(&mut self, ctx: &mut PCtx<'_>) {
        let timeout = self.cfg.wal_sender_timeout;
        let dead: Vec<NodeId> =
            self.walsenders.iter().filter(|(_, w)| ctx.now - w.last_reply > timeout).map(|(id, _)| *id).collect();
        for id in dead {
            self.walsenders.remove(&id);
            ctx.trace(TraceKind::PgReplication {
                cluster: self.cfg.cluster.clone(),
                peer: crate::trace::NodeRef(id),
                state: ReplicationState::WalSenderTimeout,
            });
        }
        let window = self.cfg.max_inflight_bytes;
        let (tl, flushed, now) = (self.tl, self.flushed, ctx.now);
        let ids: Vec<NodeId> = self.walsenders.keys().copied().collect();
        for id in ids {
            let at = {
                let w = self.walsenders.get_mut(&id).expect("listed");
                if w.sent > w.write && now - w.last_progress > Duration::from_secs(1) {
                    w.sent = w.write;
                    w.last_progress = now;
                }
                let end = flushed.min(w.write + window);
                if end > w.sent { Some((w.sent, end)) } else { None }
            };
            match at {
                Some((start, end)) => {
                    let sent_at = self.flush_time_of(end);
                    let w = self.walsenders.get_mut(&id).expect("listed");
                    w.sent = end;
                    w.last_send = now;
                    w.streaming |= end >= flushed;
                    ctx.send(id, PgMsg::WalData { tl, start, end, sent_at, upstream_flushed: flushed });
                }
                None => {
                    let w = self.walsenders.get_mut(&id).expect("listed");
                    // Everything flushed has been sent: caught up (WalSndCaughtUp).
                    w.streaming |= w.sent >= flushed;
                    if now - w.last_send >= Duration::from_secs(10) {
                        w.last_send = now;
                        ctx.send(id, PgMsg::Keepalive { sent_at: now, upstream_flushed: flushed });
                    }
                }
            }
        }
    }

    // --- standby --------------------------------------------------------------------------

    /// Replay lag as pg_stat_replication reports it: while the standby is behind, how long ago
    /// the primary flushed the WAL it replayed last; and how many bytes it is behind.
    fn lag(&self, now: SimTime) -> (Duration, Lsn) {
        let ahead = self.upstream_flushed.max(self.received);
        let behind = match self.last_replayed_wal_time {
            Some(t) if ahead > self.replay => now.saturating_since(t),
            _ => Duration::ZERO,
        };
        (behind, ahead.saturating_sub(self.replay))
    }

    fn apply(&mut self, ctx: &mut PCtx<'_>) {
        let dt = self.cfg.flow_tick.as_secs_f64();
        let (_, slowdown) = self.phase_factor(ctx.now);
        let step = (self.cfg.apply_bytes_per_s / (slowdown * self.fault_apply_factor) * dt) as u64;
        self.replay = (self.replay + step.max(1)).min(self.flushed);
        while let Some(&(l, t)) = self.wal_times.front() {
            if l > self.replay {
                break;
            }
            self.last_replayed_wal_time = Some(t);
            self.wal_times.pop_front();
        }
        self.read_carry += self.cfg.workload.standby_read_tps * dt;
        let reads = self.read_carry.floor() as u64;
        self.read_carry -= reads as f64;
        if reads > 0 {
            let stale = self.lag(ctx.now).0 > self.cfg.stale_read_lag;
            ctx.count(if stale { METRIC_READS_STALE } else { METRIC_READS_OK }, Label::Node(ctx.id), reads);
        }
    }

    fn feedback(&mut self, ctx: &mut PCtx<'_>) {
        if self.receiver_paused {
            return;
        }
        if let Role::Standby { upstream, streaming: true, .. } = self.role {
            self.last_status_sent = ctx.now;
            ctx.send(upstream, PgMsg::Feedback { write: self.received, flush: self.flushed, replay: self.replay });
        }
    }

    fn promote_now(&mut self, ctx: &mut PCtx<'_>, accept_data_loss: bool) {
        let parent = self.tl;
        let switch = self.flushed;
        self.history.push((parent, switch));
        self.tl = crate::pg::Timeline { tli: parent.tli + 1, origin: ctx.id };
        self.insert = switch;
        self.received = switch;
        self.replay = switch;
        self.wal_times.clear();
        self.flush_times.clear();
        self.upstream_flushed = 0;
        ctx.trace(TraceKind::PgPromoted {
            cluster: self.cfg.cluster.clone(),
            tli: self.tl.tli,
            origin: self.tl.origin,
            parent_tli: parent.tli,
            parent_origin: parent.origin,
            switch_lsn: switch,
            accept_data_loss,
        });
        self.set_role(ctx, Role::Primary { since: ctx.now });
        // Standbys streaming from this server (cascading) follow the timeline switch, as
        // PostgreSQL's walreceivers do with recovery_target_timeline = 'latest': their WAL is
        // a prefix of ours, so they carry on streaming on the new timeline.
        let (tl, history) = (self.tl, self.history.clone());
        for &id in self.walsenders.keys() {
            ctx.send(id, PgMsg::Streaming { tl, history: history.clone() });
        }
        // A promoted standby's cache held what replay touched, not what the clients read.
        self.serving_since = ctx.now;
        // The new timeline history is made durable.
        self.next_token += 1;
        self.fsyncs.insert(self.next_token, self.flushed);
        ctx.disk(DiskOp::Fsync, self.next_token);
    }

    /// Asks the rebuild's source for its timeline, history and WAL position.
    fn ask_rebuild_source(&self, ctx: &mut PCtx<'_>, upstream: NodeId) {
        ctx.send(upstream, PgMsg::RebuildQuery { tl: self.tl, history: self.history.clone(), flushed: self.flushed });
    }

    fn rebuild_info(&mut self, ctx: &mut PCtx<'_>, src_tl: Timeline, src_history: History, src_flushed: Lsn) {
        let Role::Rebuilding { method, upstream, bytes_per_s, until: None, .. } = self.role.clone() else { return };
        let divergence =
            divergence_point(self.tl, &self.history, src_tl, &src_history).unwrap_or(self.flushed).min(self.flushed);
        let w = &self.cfg.workload;
        let wal_per_s = w.write_tps * w.bytes_per_commit as f64 * w.write_amplification;
        let half_checkpoint = (wal_per_s * self.cfg.checkpoint_timeout.as_secs_f64() / 2.0) as u64;
        let inputs = RebuildInputs {
            database_bytes: self.cfg.database_bytes,
            source_wal_retained_bytes: self.cfg.wal_retained_bytes,
            divergence_lsn: divergence,
            checkpoint_lsn: divergence.saturating_sub(half_checkpoint),
            target_flushed: self.flushed,
            source_flushed: src_flushed,
        };
        let seconds = rebuild::seconds(method, &inputs, bytes_per_s);
        let bytes = rebuild::bytes_to_copy(method, &inputs);
        ctx.trace(TraceKind::PgRebuild {
            cluster: self.cfg.cluster.clone(),
            method,
            phase: RebuildPhase::Started,
            seconds,
            bytes,
        });
        self.role = Role::Rebuilding {
            method,
            upstream,
            bytes_per_s,
            until: Some(ctx.now + Duration::from_secs_f64(seconds)),
            seconds,
            asked_at: ctx.now,
        };
        // After the copy this server holds the source's WAL and history.
        self.tl = src_tl;
        self.history = src_history;
        self.flushed = src_flushed;
        self.received = src_flushed;
        self.replay = src_flushed;
        self.insert = src_flushed;
        self.wal_times.clear();
    }
}

// --- what the host tells the server ----------------------------------------------------------

impl PgNode {
    /// Carries out a command from the host (operator, keeper, fault) at once, within the
    /// caller's step.
    pub fn on_command(&mut self, ctx: &mut PCtx<'_>, cmd: PgCommand) {
        match cmd {
            PgCommand::Promote { accept_data_loss } => self.begin_promotion(ctx, accept_data_loss),
            PgCommand::Fence => self.fence(ctx),
            PgCommand::Rebuild { method, upstream, bytes_per_s } => {
                self.begin_rebuild(ctx, method, upstream, bytes_per_s)
            }
            PgCommand::Follow { upstream } => {
                if let Role::Standby { .. } = self.role {
                    self.follow(ctx, upstream);
                }
            }
            PgCommand::SetSynchronousStandbyNames(names) => self.set_synchronous_standby_names(ctx, names),
            PgCommand::ApplyFactor { factor_permille } => {
                self.fault_apply_factor = (factor_permille as f64 / 1000.0).max(1e-3);
            }
            PgCommand::PauseReceiver { paused } => {
                self.receiver_paused = paused;
                if !paused {
                    self.feedback(ctx);
                }
            }
        }
    }

    /// `pg_ctl promote` on a standby: end of recovery replays what is flushed, then the
    /// server switches timelines (`promote_now`). Anything but a standby ignores it.
    fn begin_promotion(&mut self, ctx: &mut PCtx<'_>, accept_data_loss: bool) {
        if let Role::Standby { .. } = self.role {
            let backlog_bytes = self.flushed.saturating_sub(self.replay) as f64;
            let until = ctx.now + Duration::from_secs_f64(backlog_bytes / self.cfg.apply_bytes_per_s);
            self.set_role(ctx, Role::Promoting { until, accept_data_loss });
        }
    }

    /// Stops serving: replication connections and clients' sessions are closed.
    fn fence(&mut self, ctx: &mut PCtx<'_>) {
        self.walsenders.clear();
        self.drop_requests(ctx, ErrorKind::ConnectionClosed);
        self.set_role(ctx, Role::Fenced);
    }

    fn begin_rebuild(&mut self, ctx: &mut PCtx<'_>, method: RebuildMethod, upstream: NodeId, bytes_per_s: u64) {
        self.walsenders.clear();
        self.drop_requests(ctx, ErrorKind::ConnectionClosed);
        let asked_at = ctx.now;
        self.set_role(ctx, Role::Rebuilding { method, upstream, bytes_per_s, until: None, seconds: 0.0, asked_at });
        self.ask_rebuild_source(ctx, upstream);
    }

    fn set_synchronous_standby_names(&mut self, ctx: &mut PCtx<'_>, names: Option<SyncStandbyNames>) {
        if self.cfg.synchronous_standby_names == names {
            return;
        }
        self.cfg.synchronous_standby_names = names;
        self.names_written = true;
        // The configuration file is written and synced before the reload, so a crash from
        // now on restarts with the new setting.
        self.next_token += 1;
        self.fsyncs.insert(self.next_token, self.flushed);
        ctx.disk(DiskOp::Fsync, self.next_token);
        self.trace_sync_names(ctx);
        self.ack(ctx);
    }
}

// --- the replication protocol --------------------------------------------------------------

impl PgNode {
    /// A standby asks to stream from `start` on timeline `tl`: a walsender starts if that
    /// position is in this server's history, otherwise the standby is refused.
    fn start_walsender(&mut self, ctx: &mut PCtx<'_>, from: NodeId, tl: Timeline, start: Lsn) {
        if matches!(self.role, Role::Fenced | Role::Rebuilding { .. } | Role::Promoting { .. }) {
            return;
        }
        let compatible = (tl == self.tl && start <= self.flushed) || contains(self.tl, &self.history, tl, start);
        if !compatible {
            let reason = format!("requested start {start} on timeline {} is not in this server's history", tl.tli);
            return ctx.send(from, PgMsg::Refused { reason });
        }
        let start = start.min(self.flushed);
        let now = ctx.now;
        let walsender = Walsender {
            sent: start,
            write: start,
            flush: start,
            replay: start,
            last_reply: now,
            last_send: now,
            last_progress: now,
            streaming: false,
        };
        self.walsenders.insert(from, walsender);
        ctx.send(from, PgMsg::Streaming { tl: self.tl, history: self.history.clone() });
    }

    /// The upstream streams: this standby adopts its timeline and history.
    fn streaming(&mut self, ctx: &mut PCtx<'_>, from: NodeId, tl: Timeline, history: History) {
        let Role::Standby { upstream, .. } = self.role else { return };
        if upstream != from {
            return;
        }
        self.tl = tl;
        self.history = history;
        let now = ctx.now;
        self.role = Role::Standby { upstream, streaming: true, last_heard: now, last_attempt: now, refused: false };
        ctx.trace(TraceKind::PgReplication {
            cluster: self.cfg.cluster.clone(),
            peer: crate::trace::NodeRef(from),
            state: ReplicationState::Streaming,
        });
    }

    /// The upstream refused: this standby stops asking until it is rewound or rebuilt.
    fn refused(&mut self, ctx: &mut PCtx<'_>, from: NodeId, reason: String) {
        let Role::Standby { upstream, last_attempt, .. } = self.role else { return };
        if upstream != from {
            return;
        }
        self.role = Role::Standby { upstream, streaming: false, last_heard: ctx.now, last_attempt, refused: true };
        ctx.trace(TraceKind::PgReplication {
            cluster: self.cfg.cluster.clone(),
            peer: crate::trace::NodeRef(from),
            state: ReplicationState::Refused(reason),
        });
    }

    /// WAL [start, end) from the upstream: taken in order and flushed; anything else is
    /// counted and dropped (the walsender resends from this standby's write position).
    #[allow(clippy::too_many_arguments)]
    fn receive_wal(
        &mut self,
        ctx: &mut PCtx<'_>,
        from: NodeId,
        tl: Timeline,
        start: Lsn,
        end: Lsn,
        sent_at: SimTime,
        upstream_flushed: Lsn,
    ) {
        let Role::Standby { upstream, streaming: true, last_heard, .. } = &mut self.role else { return };
        if *upstream != from || tl != self.tl {
            return;
        }
        *last_heard = ctx.now;
        self.upstream_flushed = self.upstream_flushed.max(upstream_flushed);
        if start > self.received || end <= self.received {
            self.out_of_order += 1;
            return;
        }
        self.received = end;
        self.wal_times.push_back((end, sent_at));
        self.request_fsync(ctx, end);
    }

    fn keepalive(&mut self, ctx: &mut PCtx<'_>, from: NodeId, upstream_flushed: Lsn) {
        if let Role::Standby { upstream, last_heard, .. } = &mut self.role
            && *upstream == from
        {
            *last_heard = ctx.now;
            self.upstream_flushed = self.upstream_flushed.max(upstream_flushed);
        }
    }

    /// A standby's positions: its walsender advances and waiting commits may now be acked.
    fn standby_feedback(&mut self, ctx: &mut PCtx<'_>, from: NodeId, write: Lsn, flush: Lsn, replay: Lsn) {
        let Some(w) = self.walsenders.get_mut(&from) else { return };
        if write > w.write {
            w.last_progress = ctx.now;
        }
        w.write = w.write.max(write);
        w.flush = w.flush.max(flush);
        w.replay = w.replay.max(replay);
        w.last_reply = ctx.now;
        self.ack(ctx);
    }
}

impl Model for PgNode {
    type Msg = PgMsg;
    type Timer = PgTimer;
    type Durable = PgDurable;

    fn on_start(&mut self, ctx: &mut PCtx<'_>) {
        let boot = std::mem::take(&mut self.boot);
        if let Some(names) = boot.synchronous_standby_names {
            self.cfg.synchronous_standby_names = names;
            self.names_written = true;
        }
        let upstream = match boot.state {
            Some((tl, history, flushed, upstream)) => {
                self.tl = tl;
                self.history = history;
                self.flushed = flushed;
                self.received = flushed;
                self.replay = flushed;
                self.insert = flushed;
                upstream
            }
            None => self.cfg.initial_upstream,
        };
        let role = match upstream {
            None => Role::Primary { since: ctx.now },
            Some(u) => Role::Standby {
                upstream: u,
                streaming: false,
                last_heard: ctx.now,
                last_attempt: ctx.now,
                refused: false,
            },
        };
        self.set_role(ctx, role);
        self.trace_sync_names(ctx);
        if let Some(u) = upstream {
            self.start_replication(ctx, u);
        }
        self.serving_since = ctx.now;
        // Servers tick out of phase, as independent processes do.
        let phase_ns = ctx.rng.gen_range(0..self.cfg.flow_tick.as_nanos() as u64).max(1);
        ctx.set_timer(PgTimer::Flow, Duration::from_nanos(phase_ns));
        ctx.set_timer(PgTimer::Status, Duration::from_secs(1));
    }

    fn on_message(&mut self, ctx: &mut PCtx<'_>, from: NodeId, msg: PgMsg) {
        match msg {
            PgMsg::StartReplication { tl, history: _, from: start } => self.start_walsender(ctx, from, tl, start),
            PgMsg::Streaming { tl, history } => self.streaming(ctx, from, tl, history),
            PgMsg::Refused { reason } => self.refused(ctx, from, reason),
            PgMsg::WalData { .. } if self.receiver_paused => {}
            PgMsg::WalData { tl, start, end, sent_at, upstream_flushed } => {
                self.receive_wal(ctx, from, tl, start, end, sent_at, upstream_flushed)
            }
            PgMsg::Keepalive { upstream_flushed, .. } => self.keepalive(ctx, from, upstream_flushed),
            PgMsg::Feedback { write, flush, replay } => self.standby_feedback(ctx, from, write, flush, replay),
            PgMsg::RebuildQuery { .. } => {
                ctx.send(
                    from,
                    PgMsg::RebuildInfo { tl: self.tl, history: self.history.clone(), flushed: self.flushed },
                );
            }
            PgMsg::RebuildInfo { tl, history, flushed } => self.rebuild_info(ctx, tl, history, flushed),
            PgMsg::Flow(msg) => self.on_flow(ctx, from, msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut PCtx<'_>, timer: PgTimer) {
        match timer {
            PgTimer::Flow => {
                match self.role.clone() {
                    Role::Primary { since } => {
                        self.generate(ctx, since);
                        self.serve(ctx);
                        self.ack(ctx);
                    }
                    Role::Standby { .. } => {
                        self.apply(ctx);
                        self.serve(ctx);
                    }
                    Role::Promoting { until, accept_data_loss } => {
                        self.apply(ctx);
                        if ctx.now >= until {
                            self.promote_now(ctx, accept_data_loss);
                        }
                    }
                    Role::Rebuilding { method, upstream, until: Some(until), seconds, .. } if ctx.now >= until => {
                        ctx.trace(TraceKind::PgRebuild {
                            cluster: self.cfg.cluster.clone(),
                            method,
                            phase: RebuildPhase::Finished,
                            seconds,
                            bytes: 0,
                        });
                        self.follow(ctx, upstream);
                    }
                    Role::Rebuilding { upstream, until: None, asked_at, .. }
                        if ctx.now - asked_at >= self.cfg.wal_retrieve_retry_interval =>
                    {
                        // pg_basebackup and pg_rewind give up on a source that does not
                        // answer and the keeper runs them again: a lost query or answer
                        // must not leave the server rebuilding forever.
                        if let Role::Rebuilding { asked_at, .. } = &mut self.role {
                            *asked_at = ctx.now;
                        }
                        self.ask_rebuild_source(ctx, upstream);
                    }
                    Role::Rebuilding { .. } | Role::Fenced => {}
                }
                if !matches!(self.role, Role::Fenced | Role::Rebuilding { .. }) {
                    self.stream(ctx);
                }
                ctx.set_timer(PgTimer::Flow, self.cfg.flow_tick);
            }
            PgTimer::Status => {
                if let Role::Standby { upstream, streaming, last_heard, last_attempt, refused } = self.role.clone() {
                    if streaming && ctx.now - last_heard > self.cfg.wal_receiver_timeout {
                        self.role =
                            Role::Standby { upstream, streaming: false, last_heard, last_attempt: ctx.now, refused };
                        ctx.trace(TraceKind::PgReplication {
                            cluster: self.cfg.cluster.clone(),
                            peer: crate::trace::NodeRef(upstream),
                            state: ReplicationState::WalReceiverTimeout,
                        });
                    } else if !streaming && !refused && ctx.now - last_attempt >= self.cfg.wal_retrieve_retry_interval {
                        self.role = Role::Standby { upstream, streaming, last_heard, last_attempt: ctx.now, refused };
                        self.start_replication(ctx, upstream);
                    }
                    if ctx.now - self.last_status_sent >= self.cfg.wal_receiver_status_interval {
                        self.feedback(ctx);
                    }
                    let (lag, lag_bytes) = self.lag(ctx.now);
                    ctx.observe(METRIC_LAG_S, Label::Node(ctx.id), lag.as_secs_f64());
                    ctx.observe(METRIC_LAG_BYTES, Label::Node(ctx.id), lag_bytes as f64);
                }
                ctx.set_timer(PgTimer::Status, Duration::from_secs(1));
            }
        }
    }

    fn on_disk(&mut self, ctx: &mut PCtx<'_>, token: u64, result: Result<(), DiskError>) {
        let Some(upto) = self.fsyncs.remove(&token) else { return };
        if result.is_err() {
            // PostgreSQL PANICs on a failed WAL fsync and stops serving until restarted.
            ctx.trace(TraceKind::PgPanic { reason: "could not fsync WAL".into() });
            self.walsenders.clear();
            self.drop_requests(ctx, ErrorKind::ConnectionClosed);
            self.set_role(ctx, Role::Fenced);
            return;
        }
        if upto > self.flushed {
            self.flushed = upto.min(self.insert.max(self.received));
            self.flush_times.push_back((self.flushed, ctx.now));
            while self.flush_times.len() > 4096 {
                self.flush_times.pop_front();
            }
        }
        match self.role {
            Role::Primary { .. } => {
                self.ack(ctx);
                self.request_fsync(ctx, self.insert);
            }
            Role::Standby { .. } | Role::Promoting { .. } => {
                // Synchronous replication waits on this reply, so it goes out at once.
                self.feedback(ctx);
                self.request_fsync(ctx, self.received);
            }
            _ => {}
        }
    }

    fn durable(&self) -> PgDurable {
        let upstream = match &self.role {
            Role::Standby { upstream, .. } | Role::Rebuilding { upstream, .. } => Some(*upstream),
            _ => None,
        };
        // The runner snapshots this when an fsync is requested and keeps it once that fsync
        // completes, so it must say what the fsync makes durable: the pending fsync's target
        // (at most one is pending), not the position flushed before it. Otherwise a server
        // restarted after a crash comes back one fsync short of what it had confirmed.
        let pending = self.fsyncs.values().copied().max().unwrap_or(0);
        let flushed = self.flushed.max(pending.min(self.insert.max(self.received)));
        let synchronous_standby_names = self.names_written.then(|| self.cfg.synchronous_standby_names.clone());
        PgDurable { state: Some((self.tl, self.history.clone(), flushed, upstream)), synchronous_standby_names }
    }

    fn check_invariants(&self) {
        if self.deep.due() {
            assert_eq!(self.sessions(), self.sessions_held, "session count drifts");
            for q in &self.queues {
                assert!(q.iter().zip(q.iter().skip(1)).all(|(a, b)| a.last() < b.first), "queued LSNs increase");
            }
        }
        assert!(self.replay <= self.flushed, "replayed beyond flushed: {} > {}", self.replay, self.flushed);
        assert!(self.flushed <= self.insert.max(self.received), "flushed beyond written");
        for q in &self.queues {
            assert!(q.len() <= 1_000_000, "commit queue unbounded");
        }
    }
}

#[path = "serve.rs"]
mod serve;
pub use serve::{PgRoleKind, PgStatus};

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
