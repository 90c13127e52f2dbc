//! The etcd client core the Stolon components share: a list of endpoints, the one currently
//! used, request ids and what each pending request was for. Like etcd's clientv3 it follows
//! a member's leader hint at once (so a request is not lost to a follower that knows better)
//! and moves to the next endpoint when a member has no leader, has stopped, or lets a request
//! time out. Retrying after an error is the caller's business: Stolon's loops simply try
//! again at their next tick.

use std::collections::BTreeMap;
use std::fmt::Debug;

use crate::etcd::{EtcdError, EtcdMsg, Reply, Request};
use crate::node::{Ctx, NodeId};
use crate::time::SimTime;

/// Ids a client hands out: `[id_base, id_base + ID_SPAN)`. Two clients inside one node (the
/// sentinel's elector and its data client) get disjoint ranges, so a response is routed to
/// its owner by id alone.
pub const ID_SPAN: u64 = 1 << 40;

/// A member that keeps redirecting is not followed forever: after this many hops the request
/// fails with the last error and the caller retries at its next tick.
const MAX_REDIRECTS: u8 = 3;

#[derive(Clone, Debug)]
struct Pending<Tag> {
    tag: Tag,
    /// When the caller issued it: the request timeout covers every redirect.
    sent: SimTime,
    to: NodeId,
    req: Request,
    redirects: u8,
}

#[derive(Clone, Debug)]
pub struct EtcdClient<Tag> {
    members: Vec<NodeId>,
    target: usize,
    id_base: u64,
    next_id: u64,
    pending: BTreeMap<u64, Pending<Tag>>,
}

impl<Tag: Clone + Debug + PartialEq> EtcdClient<Tag> {
    /// `id_base` must be a multiple of `ID_SPAN`.
    pub fn new(members: Vec<NodeId>, id_base: u64) -> EtcdClient<Tag> {
        assert!(!members.is_empty(), "an etcd client needs at least one endpoint");
        assert_eq!(id_base % ID_SPAN, 0, "id ranges of clients in one node must not overlap");
        EtcdClient { members, target: 0, id_base, next_id: id_base, pending: BTreeMap::new() }
    }

    /// Whether `id` is one this client hands out (answered or not).
    pub fn owns(&self, id: u64) -> bool {
        id >= self.id_base && id - self.id_base < ID_SPAN
    }

    /// The endpoint requests go to now.
    pub fn target(&self) -> NodeId {
        self.members[self.target]
    }

    pub fn in_flight(&self, tag: &Tag) -> bool {
        self.pending.values().any(|p| p.tag == *tag)
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn send<T>(&mut self, ctx: &mut Ctx<'_, EtcdMsg, T>, tag: Tag, req: Request) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        assert!(self.owns(id), "client id range exhausted");
        let to = self.target();
        crate::etcd::history::invoked(ctx, id, &req);
        self.pending.insert(id, Pending { tag, sent: ctx.now, to, req: req.clone(), redirects: 0 });
        ctx.send(to, EtcdMsg::Req { id, req });
        id
    }

    /// An answer from `from`. Returns what the request was for and its result, or `None` when
    /// the answer is not for us (any more) or the request was redirected to the leader.
    pub fn on_response<T>(
        &mut self,
        ctx: &mut Ctx<'_, EtcdMsg, T>,
        from: NodeId,
        id: u64,
        result: Result<Reply, EtcdError>,
    ) -> Option<(Tag, Result<Reply, EtcdError>)> {
        let p = self.pending.get_mut(&id)?;
        if p.to != from {
            return None; // a late answer from an endpoint we already left
        }
        match result {
            Err(EtcdError::NotLeader { hint }) => {
                let hinted = hint.filter(|h| *h != from).and_then(|h| self.members.iter().position(|m| *m == h));
                match hinted {
                    Some(i) if p.redirects < MAX_REDIRECTS => {
                        self.target = i;
                        p.redirects += 1;
                        p.to = self.members[i];
                        ctx.send(p.to, EtcdMsg::Req { id, req: p.req.clone() });
                        return None;
                    }
                    Some(i) => self.target = i,
                    None => self.rotate(),
                }
            }
            // The outcome is unknown or this member is gone: another endpoint next time.
            Err(EtcdError::LeaderChanged | EtcdError::Halted) => self.rotate(),
            Ok(_) | Err(EtcdError::LeaseNotFound) => {}
        }
        let p = self.pending.remove(&id).expect("looked up above");
        crate::etcd::history::returned(ctx, id, &p.req, Some(&result));
        Some((p.tag, result))
    }

    /// Drops requests older than `request_timeout` and returns their tags; when any timed
    /// out, the next request goes to the next endpoint.
    pub fn expire<T>(&mut self, ctx: &mut Ctx<'_, EtcdMsg, T>, request_timeout: std::time::Duration) -> Vec<Tag> {
        let now = ctx.now;
        let expired: Vec<u64> =
            self.pending.iter().filter(|(_, p)| p.sent + request_timeout <= now).map(|(id, _)| *id).collect();
        if !expired.is_empty() {
            self.rotate();
        }
        let mut tags = Vec::with_capacity(expired.len());
        for id in expired {
            let p = self.pending.remove(&id).expect("listed above");
            crate::etcd::history::returned(ctx, id, &p.req, None);
            tags.push(p.tag);
        }
        tags
    }

    /// Forgets every pending request (the caller restarts its loop from scratch).
    pub fn forget_all(&mut self) {
        self.pending.clear();
    }

    fn rotate(&mut self) {
        self.target = (self.target + 1) % self.members.len();
    }

    pub fn check_invariants(&self) {
        assert!(self.target < self.members.len());
        assert!(self.pending.keys().all(|id| self.owns(*id) && *id < self.next_id), "pending id not ours");
        // Callers keep at most a few requests in flight; a leak would grow this without bound.
        assert!(self.pending.len() <= 64, "etcd client backlog unbounded: {}", self.pending.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::Op;
    use crate::node::{Effect, TimerCmd};
    use crate::rng::{Stream, stream_rng};
    use std::time::Duration;

    fn get() -> Request {
        Request::Op(Op::Get { key: "k".into() })
    }

    /// Runs `f` with a context at `now_s` and returns the sends it made.
    fn with_ctx<R>(now_s: u64, f: impl FnOnce(&mut Ctx<'_, EtcdMsg, ()>) -> R) -> (R, Vec<(NodeId, u64)>) {
        let mut rng = stream_rng(1, Stream::Named(0));
        let mut effects = Vec::new();
        let mut timers: Vec<TimerCmd<()>> = Vec::new();
        let mut ctx = Ctx {
            now: SimTime::from_duration(Duration::from_secs(now_s)),
            id: 99,
            rng: &mut rng,
            effects: &mut effects,
            timers: &mut timers,
        };
        let r = f(&mut ctx);
        let sends = effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send { to, msg: EtcdMsg::Req { id, .. }, .. } => Some((to, id)),
                _ => None,
            })
            .collect();
        (r, sends)
    }

    #[test]
    fn follows_leader_hints_and_rotates_on_errors_and_timeouts() {
        let mut c: EtcdClient<&str> = EtcdClient::new(vec![1, 2, 3], 2 * ID_SPAN);
        let (id, sends) = with_ctx(0, |ctx| c.send(ctx, "read", get()));
        assert_eq!(sends, vec![(1, 2 * ID_SPAN)]);
        assert!(c.owns(id) && !c.owns(0) && !c.owns(3 * ID_SPAN));
        // A follower names the leader: the same request goes there, nothing reaches the caller.
        let (r, sends) = with_ctx(0, |ctx| c.on_response(ctx, 1, id, Err(EtcdError::NotLeader { hint: Some(3) })));
        assert_eq!(r, None);
        assert_eq!(sends, vec![(3, id)]);
        assert_eq!(c.target(), 3);
        // The answer of the member we left is ignored.
        let (r, _) = with_ctx(0, |ctx| c.on_response(ctx, 1, id, Ok(Reply::Revoked)));
        assert_eq!((r, c.pending_len()), (None, 1));
        let (r, _) = with_ctx(1, |ctx| c.on_response(ctx, 3, id, Ok(Reply::Revoked)));
        assert_eq!(r, Some(("read", Ok(Reply::Revoked))));
        assert!(!c.in_flight(&"read"));
        // Leadership lost mid-request: the error reaches the caller and the next endpoint is used.
        let (id, _) = with_ctx(2, |ctx| c.send(ctx, "write", get()));
        let (r, _) = with_ctx(2, |ctx| c.on_response(ctx, 3, id, Err(EtcdError::LeaderChanged)));
        assert_eq!(r, Some(("write", Err(EtcdError::LeaderChanged))));
        assert_eq!(c.target(), 1);
        // No leader known: rotate without a redirect.
        let (id, _) = with_ctx(3, |ctx| c.send(ctx, "read", get()));
        let (r, sends) = with_ctx(3, |ctx| c.on_response(ctx, 1, id, Err(EtcdError::NotLeader { hint: None })));
        assert_eq!((r.map(|r| r.0), sends.len(), c.target()), (Some("read"), 0, 2));
        // Timeouts drop the request and move on.
        let _ = with_ctx(4, |ctx| c.send(ctx, "read", get()));
        assert!(with_ctx(13, |ctx| c.expire(ctx, Duration::from_secs(10))).0.is_empty());
        assert_eq!(with_ctx(14, |ctx| c.expire(ctx, Duration::from_secs(10))).0, vec!["read"]);
        assert_eq!((c.target(), c.pending_len()), (3, 0));
        c.check_invariants();
    }

    #[test]
    fn redirect_loops_are_bounded() {
        let mut c: EtcdClient<u8> = EtcdClient::new(vec![1, 2], 0);
        let (id, _) = with_ctx(0, |ctx| c.send(ctx, 7, get()));
        let mut from = 1;
        for _ in 0..MAX_REDIRECTS {
            let to = 3 - from;
            let (r, sends) =
                with_ctx(0, |ctx| c.on_response(ctx, from, id, Err(EtcdError::NotLeader { hint: Some(to) })));
            assert_eq!((r, sends), (None, vec![(to, id)]));
            from = to;
        }
        let (r, sends) =
            with_ctx(0, |ctx| c.on_response(ctx, from, id, Err(EtcdError::NotLeader { hint: Some(3 - from) })));
        assert_eq!(r, Some((7, Err(EtcdError::NotLeader { hint: Some(3 - from) }))));
        assert!(sends.is_empty());
    }
}
