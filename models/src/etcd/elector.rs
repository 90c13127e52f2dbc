//! Leader election on etcd, as cluster managers do it (Stolon's sentinels, etcd's
//! `concurrency.Election`): a lease, a key created only if absent and attached to the lease,
//! keepalives. A holder believes it leads until (send time of its last acknowledged keepalive
//! + TTL): never later than the server can expire the lease, so two holders never overlap.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Compare, EtcdError, EtcdMsg, LeaseId, Op, Reply, Request};
use crate::node::{Ctx, Model, NodeId};
use crate::time::SimTime;
use crate::trace::TraceKind;

#[derive(Clone, Debug)]
pub struct ElectorConfig {
    pub members: Vec<NodeId>,
    pub key: String,
    pub ttl_s: u64,
    /// How often a non-holder retries and a holder checks its lease.
    pub tick: Duration,
    pub request_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ElectorTimer {
    Tick,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Grant,
    Campaign,
    KeepAlive,
}

pub struct EtcdElector {
    cfg: ElectorConfig,
    target: usize,
    next_id: u64,
    /// Request id -> (what, when sent).
    pending: BTreeMap<u64, (Pending, SimTime)>,
    lease: Option<(LeaseId, u64)>,
    /// While holding: the end of the time it may act as leader.
    holding_until: Option<SimTime>,
    last_keepalive: SimTime,
}

type ECtx<'a> = Ctx<'a, EtcdMsg, ElectorTimer>;

impl EtcdElector {
    pub fn new(cfg: ElectorConfig) -> EtcdElector {
        assert!(cfg.ttl_s > 0 && !cfg.members.is_empty());
        EtcdElector {
            cfg,
            target: 0,
            next_id: 0,
            pending: BTreeMap::new(),
            lease: None,
            holding_until: None,
            last_keepalive: SimTime::ZERO,
        }
    }

    pub fn is_leader(&self, now: SimTime) -> bool {
        self.holding_until.is_some_and(|u| now < u)
    }

    fn request(&mut self, ctx: &mut ECtx<'_>, what: Pending, req: Request) {
        if self.pending.values().any(|(p, _)| *p == what) {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, (what, ctx.now));
        ctx.send(self.cfg.members[self.target], EtcdMsg::Req { id, req });
    }

    fn lose(&mut self, ctx: &mut ECtx<'_>, reason: &str) {
        if self.holding_until.take().is_some() {
            ctx.trace(TraceKind::LockLost { key: self.cfg.key.clone(), reason: reason.into() });
        }
    }

    fn hold(&mut self, ctx: &mut ECtx<'_>, until: SimTime) {
        if until <= ctx.now {
            return; // the acknowledgement came too late to claim anything
        }
        self.holding_until = Some(until);
        let lease = self.lease.map_or(0, |(id, _)| id);
        ctx.trace(TraceKind::LockHeld { key: self.cfg.key.clone(), lease, until_ns: until.0 });
    }
}

impl Model for EtcdElector {
    type Msg = EtcdMsg;
    type Timer = ElectorTimer;
    type Durable = ();

    fn on_start(&mut self, ctx: &mut ECtx<'_>) {
        ctx.set_timer(ElectorTimer::Tick, self.cfg.tick);
    }

    fn on_message(&mut self, ctx: &mut ECtx<'_>, _from: NodeId, msg: EtcdMsg) {
        let EtcdMsg::Resp { id, result } = msg else { return };
        let Some((what, sent)) = self.pending.remove(&id) else { return };
        let ttl = |l: &Option<(LeaseId, u64)>| Duration::from_secs(l.map_or(0, |(_, t)| t));
        match (what, result) {
            (Pending::Grant, Ok(Reply::Lease { id, ttl_s })) => {
                self.lease = Some((id, ttl_s));
                self.last_keepalive = sent;
            }
            (Pending::Campaign, Ok(Reply::Txn { succeeded, gets, .. })) => {
                // Ours only if it is attached to our current lease: a key left over from an
                // earlier lease of ours dies with that lease, whatever its value says.
                let lease = self.lease.map(|(id, _)| id);
                let owner_is_me = succeeded
                    || gets.first().and_then(|g| g.as_ref()).is_some_and(|kv| kv.lease.is_some() && kv.lease == lease);
                if owner_is_me && lease.is_some() {
                    let until = self.last_keepalive + ttl(&self.lease);
                    self.hold(ctx, until);
                }
            }
            (Pending::KeepAlive, Ok(Reply::Lease { .. })) => {
                self.last_keepalive = sent;
                if self.holding_until.is_some() {
                    let until = sent + ttl(&self.lease);
                    self.hold(ctx, until);
                }
            }
            (_, Err(EtcdError::LeaseNotFound)) => {
                self.lease = None;
                self.lose(ctx, "lease expired");
            }
            (_, Err(EtcdError::NotLeader { hint })) => {
                match hint.and_then(|h| self.cfg.members.iter().position(|m| *m == h)) {
                    Some(i) => self.target = i,
                    None => self.target = (self.target + 1) % self.cfg.members.len(),
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut ECtx<'_>, _t: ElectorTimer) {
        // Give up on requests that took too long, and try another member.
        let timeout = self.cfg.request_timeout;
        let before = self.pending.len();
        self.pending.retain(|_, (_, sent)| *sent + timeout > ctx.now);
        if self.pending.len() < before {
            self.target = (self.target + 1) % self.cfg.members.len();
        }
        if self.holding_until.is_some_and(|u| ctx.now >= u) {
            self.lose(ctx, "keepalives not acknowledged within the TTL");
        }
        match self.lease {
            None => {
                let ttl_s = self.cfg.ttl_s;
                self.request(ctx, Pending::Grant, Request::LeaseGrant { ttl_s });
            }
            Some((lease, ttl_s)) => {
                if ctx.now >= self.last_keepalive + Duration::from_secs(ttl_s) {
                    // Our own view says the lease is gone: start over with a new one.
                    self.lease = None;
                    self.lose(ctx, "lease expired");
                    return ctx.set_timer(ElectorTimer::Tick, self.cfg.tick);
                }
                if ctx.now >= self.last_keepalive + Duration::from_secs(ttl_s) / 3 {
                    self.request(ctx, Pending::KeepAlive, Request::LeaseKeepAlive { id: lease });
                }
                if self.holding_until.is_none() {
                    let key = self.cfg.key.clone();
                    let req = Request::Txn {
                        compare: vec![Compare::CreateRevision { key: key.clone(), revision: 0 }],
                        success: vec![Op::Put { key: key.clone(), value: ctx.id.to_string(), lease: Some(lease) }],
                        failure: vec![Op::Get { key }],
                    };
                    self.request(ctx, Pending::Campaign, req);
                }
            }
        }
        ctx.set_timer(ElectorTimer::Tick, self.cfg.tick);
    }

    fn check_invariants(&self) {
        assert!(self.pending.len() <= 3, "at most one request of each kind in flight");
        assert!(self.holding_until.is_none() || self.lease.is_some(), "holding without a lease");
    }
}
