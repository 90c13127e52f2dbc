//! An etcd member: Raft, the WAL (Raft holds back what depends on a write until the member
//! reports it durable), the KV state machine, the lessor, and the client-facing request
//! handling.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::{Command, EtcdError, EtcdMsg, Kv, LeaseId, Reply, Request};
use crate::node::{Ctx, DiskError, DiskOp, Model, NodeId};
use crate::raft::{EntryData, HardState, Index, PersistSeq, PlantedBug, RaftConfig, RaftEvent, RaftMsg, Role, Term};
use crate::rng::mix64;
use crate::time::SimTime;
use crate::trace::{NodeRef, TraceKind};

#[derive(Clone, Debug)]
pub struct EtcdConfig {
    pub peers: Vec<NodeId>,
    /// `--heartbeat-interval` (etcd default 100 ms): also Raft's tick.
    pub heartbeat_interval: Duration,
    /// `--election-timeout` (etcd default 1000 ms).
    pub election_timeout: Duration,
    /// `--pre-vote` (default false in 3.4, true since 3.5).
    pub pre_vote: bool,
    /// Always on in the etcd server; a simulator-only switch turns it off.
    pub check_quorum: bool,
    /// A bug planted on purpose (`[sim] planted_bug`); None in every real configuration.
    pub planted_bug: Option<PlantedBug>,
}

impl EtcdConfig {
    pub fn election_ticks(&self) -> u32 {
        (self.election_timeout.as_millis() / self.heartbeat_interval.as_millis().max(1)) as u32
    }
    /// etcd's minimum lease TTL: ceil(1.5 x election timeout), in seconds.
    pub fn min_lease_ttl_s(&self) -> u64 {
        (self.election_timeout.as_millis() as u64 * 3).div_ceil(2000)
    }
}

/// etcd's `--snapshot-count` (default 100,000 since 3.2): applied entries between snapshots.
const SNAPSHOT_COUNT_ENTRIES: Index = 100_000;
/// etcd's `SnapshotCatchUpEntries`: entries kept behind a snapshot so that a follower a little
/// behind catches up from the log rather than with a whole snapshot.
const SNAPSHOT_CATCHUP_ENTRIES: Index = 5_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EtcdTimer {
    Tick,
}

type ECtx<'a> = Ctx<'a, EtcdMsg, EtcdTimer>;
type Raft = crate::raft::Raft<Kv>;

pub struct EtcdMember {
    cfg: EtcdConfig,
    boot_state: HardState<Kv>,
    raft: Option<Raft>,
    kv: Kv,
    applied: Index,
    /// Proposals awaiting apply: index -> (client, request id, term proposed in).
    pending: BTreeMap<Index, (NodeId, u64, Term)>,
    /// The leader's lessor: when each lease expires (empty on followers).
    lease_expiry: BTreeMap<LeaseId, SimTime>,
    revoking: BTreeSet<LeaseId>,
    was_leader: bool,
    /// WAL fsyncs issued so far (an fsync's disk token is its number).
    syncs_issued: u64,
    /// The Raft change set the fsync in flight makes durable, if one is in flight.
    syncing: Option<PersistSeq>,
    /// Raft changed while an fsync was in flight: the change set the next fsync, issued when
    /// that one completes, makes durable with all before it. etcd's raft loop saves one Ready
    /// at a time, and what is proposed or received meanwhile goes into the next Ready's single
    /// WAL write (group commit): a slow disk makes each write longer, not the queue of writes
    /// longer.
    sync_wanted: Option<PersistSeq>,
    halted: bool,
    /// The highest term a message of this incarnation has carried (traced when it rises).
    term_shown: Term,
}

impl EtcdMember {
    pub fn new(cfg: EtcdConfig, durable: HardState<Kv>) -> EtcdMember {
        assert!(cfg.election_ticks() >= 2, "election timeout must be at least two heartbeats");
        EtcdMember {
            cfg,
            boot_state: durable,
            raft: None,
            kv: Kv::default(),
            applied: 0,
            pending: BTreeMap::new(),
            lease_expiry: BTreeMap::new(),
            revoking: BTreeSet::new(),
            was_leader: false,
            syncs_issued: 0,
            syncing: None,
            sync_wanted: None,
            halted: false,
            term_shown: 0,
        }
    }

    pub fn raft(&self) -> &Raft {
        self.raft.as_ref().expect("started")
    }
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    fn raft_mut(&mut self) -> &mut Raft {
        self.raft.as_mut().expect("started")
    }

    fn reply(&mut self, ctx: &mut ECtx<'_>, to: NodeId, id: u64, result: Result<Reply, EtcdError>) {
        ctx.send(to, EtcdMsg::Resp { id, result });
    }

    fn trace_raft_events(&mut self, ctx: &mut ECtx<'_>) {
        let events = std::mem::take(&mut self.raft_mut().events);
        for ev in events {
            let kind = match ev {
                RaftEvent::Campaign { term, pre, transfer } => {
                    TraceKind::RaftCampaign { term, pre_vote: pre, transfer }
                }
                RaftEvent::BecameLeader { term } => {
                    let r = self.raft();
                    TraceKind::RaftLeaderElected { term, last_index: r.last_index(), log_terms: r.term_runs() }
                }
                RaftEvent::SteppedDown { term, reason } => TraceKind::RaftSteppedDown { term, reason },
                RaftEvent::Truncated { index, term } => TraceKind::RaftLogTruncated { index, term },
                RaftEvent::TermChanged { .. } => continue,
            };
            ctx.trace(kind);
        }
    }

    /// Everything that follows a Raft step: leadership bookkeeping, apply, WAL, sends.
    fn after(&mut self, ctx: &mut ECtx<'_>) {
        self.trace_raft_events(ctx);
        let is_leader = self.raft().role == Role::Leader;
        if self.was_leader && !is_leader {
            // Lost leadership: outcomes of pending proposals are unknown to their clients.
            for (_, (client, id, _)) in std::mem::take(&mut self.pending) {
                self.reply(ctx, client, id, Err(EtcdError::LeaderChanged));
            }
            self.lease_expiry.clear();
            self.revoking.clear();
        }
        if !self.was_leader && is_leader {
            // etcd's lessor Promote: every lease gets a full TTL plus an election timeout, so a
            // leader change does not expire leases.
            let extend = self.cfg.election_timeout;
            self.lease_expiry =
                self.kv.leases.iter().map(|(id, l)| (*id, ctx.now + Duration::from_secs(l.ttl_s) + extend)).collect();
        }
        self.was_leader = is_leader;
        self.apply(ctx);
        let ready = self.raft_mut().ready();
        if let Some(seq) = ready.persist {
            if self.syncing.is_none() {
                self.fsync(ctx, seq);
            } else {
                self.sync_wanted = Some(seq);
            }
        }
        for (to, m) in ready.msgs {
            self.send(ctx, to, EtcdMsg::Raft(m));
        }
    }

    /// Writes the WAL: the durable state, taken as this callback ends, holds change set `seq`.
    fn fsync(&mut self, ctx: &mut ECtx<'_>, seq: PersistSeq) {
        assert!(self.syncing.is_none(), "one fsync at a time");
        self.syncs_issued += 1;
        self.syncing = Some(seq);
        ctx.disk(DiskOp::Fsync, self.syncs_issued);
    }

    /// Sends a message that the WAL covers, telling the checkers what Raft state it shows: the
    /// term (when it is higher than this incarnation has shown) and a granted vote.
    fn send(&mut self, ctx: &mut ECtx<'_>, to: NodeId, msg: EtcdMsg) {
        if let EtcdMsg::Raft(m) = &msg {
            let pre = matches!(m, RaftMsg::Vote { pre: true, .. } | RaftMsg::VoteResp { pre: true, .. });
            if !pre && m.term() > self.term_shown {
                self.term_shown = m.term();
                ctx.trace(TraceKind::RaftTermShown { term: m.term() });
            }
            match m {
                RaftMsg::VoteResp { term, pre: false, reject: false } => {
                    ctx.trace(TraceKind::RaftVoteGranted { term: *term, candidate: NodeRef(to) });
                }
                // A candidate's request shows its vote for itself.
                RaftMsg::Vote { term, pre: false, .. } => {
                    ctx.trace(TraceKind::RaftVoteGranted { term: *term, candidate: NodeRef(ctx.id) });
                }
                _ => {}
            }
        }
        ctx.send(to, msg);
    }

    fn apply(&mut self, ctx: &mut ECtx<'_>) {
        let snapshot = &self.raft.as_ref().expect("started").hs.snapshot;
        if snapshot.index > self.applied {
            // Raft restored a snapshot from the leader (or the member boots from one): the
            // state machine starts over from it (etcd's applySnapshot).
            self.kv = snapshot.state.as_ref().clone();
            self.applied = snapshot.index;
        }
        let commit = self.raft().commit();
        while self.applied < commit {
            let i = self.applied + 1;
            let entry = self.raft().entry(i).expect("committed entries exist").clone();
            self.applied = i;
            ctx.trace(TraceKind::EtcdApplied { index: i, term: entry.term, digest: entry.digest() });
            let EntryData::Command { cmd, .. } = &entry.data else { continue };
            let result = self.kv.apply(i, cmd);
            if let Command::ExpireLease { id } | Command::Client(Request::LeaseRevoke { id }) = cmd.as_ref() {
                self.lease_expiry.remove(id);
                self.revoking.remove(id);
            }
            if let (Command::Client(Request::LeaseGrant { ttl_s }), true) = (cmd.as_ref(), self.was_leader) {
                self.lease_expiry.insert(i, ctx.now + Duration::from_secs(*ttl_s));
            }
            if let Some((client, id, term)) = self.pending.remove(&i) {
                let result = if term == entry.term { result } else { Err(EtcdError::LeaderChanged) };
                self.reply(ctx, client, id, result);
            }
        }
        self.kv.check_invariants();
        self.maybe_snapshot();
    }

    /// etcd's triggerSnapshot: every `--snapshot-count` applied entries, snapshot the state
    /// machine and compact the log behind it, keeping the catch-up entries. Not fsynced on its
    /// own (etcd writes the snap file itself): the next WAL fsync persists it, and a crash
    /// before that leaves the previous snapshot and the whole log, which is as good.
    fn maybe_snapshot(&mut self) {
        let applied = self.applied;
        if applied - self.raft().hs.snapshot.index <= SNAPSHOT_COUNT_ENTRIES {
            return;
        }
        let kv = Arc::new(self.kv.clone());
        let raft = self.raft_mut();
        raft.create_snapshot(applied, kv);
        if applied > SNAPSHOT_CATCHUP_ENTRIES {
            raft.compact(applied - SNAPSHOT_CATCHUP_ENTRIES);
        }
    }

    fn propose(&mut self, cmd: Command, digest: u64) -> Option<Index> {
        self.raft_mut().propose(EntryData::Command { digest, cmd: Arc::new(cmd) })
    }

    fn handle_request(&mut self, ctx: &mut ECtx<'_>, from: NodeId, id: u64, req: Request) {
        let r = self.raft();
        if r.role != Role::Leader {
            let hint = r.lead;
            return self.reply(ctx, from, id, Err(EtcdError::NotLeader { hint }));
        }
        match req {
            Request::LeaseKeepAlive { id: lease } => {
                let result = match self.kv.leases.get(&lease) {
                    Some(l) if !self.revoking.contains(&lease) => {
                        self.lease_expiry.insert(lease, ctx.now + Duration::from_secs(l.ttl_s));
                        Ok(Reply::Lease { id: lease, ttl_s: l.ttl_s })
                    }
                    _ => Err(EtcdError::LeaseNotFound),
                };
                self.reply(ctx, from, id, result);
            }
            req => {
                let req = match req {
                    Request::LeaseGrant { ttl_s } => {
                        Request::LeaseGrant { ttl_s: ttl_s.max(self.cfg.min_lease_ttl_s()) }
                    }
                    other => other,
                };
                let digest = mix64(((from as u64) << 40) ^ id);
                match self.propose(Command::Client(req), digest) {
                    Some(index) => {
                        let term = self.raft().hs.term;
                        self.pending.insert(index, (from, id, term));
                    }
                    None => self.reply(ctx, from, id, Err(EtcdError::LeaderChanged)),
                }
            }
        }
    }

    fn expire_leases(&mut self, now: SimTime) {
        let expired: Vec<LeaseId> = self
            .lease_expiry
            .iter()
            .filter(|(id, at)| **at <= now && !self.revoking.contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if self.propose(Command::ExpireLease { id }, mix64(0xE0 ^ id)).is_some() {
                self.revoking.insert(id);
            }
        }
    }
}

impl Model for EtcdMember {
    type Msg = EtcdMsg;
    type Timer = EtcdTimer;
    type Durable = HardState<Kv>;

    fn on_start(&mut self, ctx: &mut ECtx<'_>) {
        let raft_cfg = RaftConfig {
            peers: self.cfg.peers.clone(),
            planted_bug: self.cfg.planted_bug,
            election_ticks: self.cfg.election_ticks(),
            heartbeat_ticks: 1,
            pre_vote: self.cfg.pre_vote,
            check_quorum: self.cfg.check_quorum,
            max_entries_per_msg: 256,
        };
        let hs = std::mem::take(&mut self.boot_state);
        self.raft = Some(Raft::new(ctx.id, raft_cfg, hs, ctx.rng));
        // Replays the committed log into the state machine (etcd replays its WAL).
        self.after(ctx);
        // Members start at different moments, so their ticks are out of phase; aligned ticks
        // would make every simultaneous timeout a split vote.
        let phase_ns = rand::Rng::gen_range(ctx.rng, 0..self.cfg.heartbeat_interval.as_nanos() as u64);
        ctx.set_timer(EtcdTimer::Tick, Duration::from_nanos(phase_ns.max(1)));
    }

    fn on_message(&mut self, ctx: &mut ECtx<'_>, from: NodeId, msg: EtcdMsg) {
        if self.halted {
            return;
        }
        match msg {
            EtcdMsg::Raft(m) => self.raft_mut().step(from, m, ctx.rng),
            EtcdMsg::Req { id, req } => self.handle_request(ctx, from, id, req),
            EtcdMsg::MoveLeader { to } => {
                assert_eq!(from, ctx.id, "move-leader comes from the operator, through the member itself");
                self.raft_mut().transfer_leader(to);
            }
            EtcdMsg::Resp { .. } => {}
        }
        self.after(ctx);
    }

    fn on_timer(&mut self, ctx: &mut ECtx<'_>, _timer: EtcdTimer) {
        if self.halted {
            return;
        }
        self.raft_mut().tick(ctx.rng);
        if self.raft().role == Role::Leader {
            self.expire_leases(ctx.now);
        }
        self.after(ctx);
        ctx.set_timer(EtcdTimer::Tick, self.cfg.heartbeat_interval);
    }

    fn on_disk(&mut self, ctx: &mut ECtx<'_>, token: u64, result: Result<(), DiskError>) {
        if self.halted {
            return;
        }
        if let Err(e) = result {
            // etcd treats a failed WAL write as fatal and exits.
            self.halted = true;
            ctx.trace(TraceKind::EtcdHalted { reason: format!("WAL fsync failed: {e:?}") });
            return;
        }
        assert_eq!(token, self.syncs_issued, "the fsync in flight is the latest one issued");
        let seq = self.syncing.take().expect("an fsync in flight");
        for (to, m) in self.raft_mut().persisted(seq) {
            self.send(ctx, to, EtcdMsg::Raft(m));
        }
        if let Some(seq) = self.sync_wanted.take() {
            // The next Ready: one fsync for everything since the last one was issued (the
            // durable snapshot is taken as this callback ends, with all of it).
            self.fsync(ctx, seq);
        }
    }

    fn durable(&self) -> HardState<Kv> {
        self.raft().hs.clone()
    }

    fn check_invariants(&self) {
        if let Some(r) = &self.raft {
            r.check_invariants();
            assert!(self.applied <= r.commit(), "applied beyond commit");
        }
        assert!(self.sync_wanted.is_none() || self.syncing.is_some(), "a wanted fsync waits only behind another");
    }
}

#[cfg(test)]
#[path = "member_tests.rs"]
mod tests;
