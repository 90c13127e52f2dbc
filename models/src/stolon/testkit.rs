//! Test scaffolding: an etcd that answers at once from a `Kv` (followers redirect to the
//! leader, leases expire on their TTL), and a driver that runs one model against it, firing
//! its timers in time order and delivering answers as they come.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::etcd::{Command, EtcdError, EtcdMsg, Kv, LeaseId, Op, Reply, Request};
use crate::node::{Ctx, Effect, Model, NodeId, TimerCmd};
use crate::rng::{SimRng, Stream, stream_rng};
use crate::time::SimTime;
use crate::trace::{StolonWhat, TraceKind};

pub const MEMBERS: [NodeId; 3] = [1, 2, 3];

pub fn secs(s: u64) -> SimTime {
    SimTime::from_duration(Duration::from_secs(s))
}

pub struct FakeEtcd {
    pub kv: Kv,
    index: u64,
    pub leader: NodeId,
    /// Nodes that cannot reach etcd (their requests are lost).
    pub cut_off: Vec<NodeId>,
    /// Lease -> (ttl, last keepalive).
    leases: BTreeMap<LeaseId, (Duration, SimTime)>,
    /// Every request that reached the leader: (time, client, request).
    pub log: Vec<(SimTime, NodeId, Request)>,
    /// A concurrent writer: this put lands just before the next transaction with a compare.
    pub interject: Option<(String, String)>,
    /// Single puts are lost in a leader change (not applied, outcome unknown to the client).
    pub fail_puts: bool,
}

impl Default for FakeEtcd {
    fn default() -> Self {
        FakeEtcd {
            kv: Kv::default(),
            index: 0,
            leader: MEMBERS[0],
            cut_off: Vec::new(),
            leases: BTreeMap::new(),
            log: Vec::new(),
            interject: None,
            fail_puts: false,
        }
    }
}

impl FakeEtcd {
    /// The answer `to` gives `from`, or `None` if the request is lost.
    fn handle(&mut self, now: SimTime, from: NodeId, to: NodeId, req: Request) -> Option<Result<Reply, EtcdError>> {
        if self.cut_off.contains(&from) {
            return None;
        }
        if to != self.leader {
            return Some(Err(EtcdError::NotLeader { hint: Some(self.leader) }));
        }
        self.expire(now);
        if let Request::Txn { compare, .. } = &req
            && !compare.is_empty()
            && let Some((key, value)) = self.interject.take()
        {
            self.put(&key, &value);
        }
        if self.fail_puts && matches!(req, Request::Op(Op::Put { .. })) {
            return Some(Err(EtcdError::LeaderChanged));
        }
        self.log.push((now, from, req.clone()));
        self.index += 1;
        Some(match req {
            Request::LeaseKeepAlive { id } => match self.leases.get_mut(&id) {
                Some((ttl, last)) => {
                    *last = now;
                    Ok(Reply::Lease { id, ttl_s: ttl.as_secs() })
                }
                None => Err(EtcdError::LeaseNotFound),
            },
            req => {
                let r = self.kv.apply(self.index, &Command::Client(req));
                if let Ok(Reply::Lease { id, ttl_s }) = r {
                    self.leases.insert(id, (Duration::from_secs(ttl_s), now));
                }
                self.kv.check_invariants();
                r
            }
        })
    }

    pub fn expire(&mut self, now: SimTime) {
        let dead: Vec<LeaseId> =
            self.leases.iter().filter(|(_, (ttl, last))| *last + *ttl <= now).map(|(id, _)| *id).collect();
        for id in dead {
            self.leases.remove(&id);
            self.index += 1;
            let _ = self.kv.apply(self.index, &Command::ExpireLease { id });
        }
    }

    pub fn put(&mut self, key: &str, value: &str) {
        self.index += 1;
        let put = Op::Put { key: key.into(), value: value.into(), lease: None };
        self.kv.apply(self.index, &Command::Client(Request::Op(put))).expect("put");
    }

    pub fn value(&self, key: &str) -> Option<String> {
        self.kv.get(key).map(|kv| kv.value.clone())
    }

    /// Requests from `node` that wrote `key`.
    pub fn writes_to(&self, node: NodeId, key: &str) -> usize {
        let writes = |ops: &[Op]| ops.iter().any(|o| matches!(o, Op::Put { key: k, .. } if k == key));
        self.log
            .iter()
            .filter(|(_, from, req)| {
                *from == node
                    && match req {
                        Request::Op(op) => writes(std::slice::from_ref(op)),
                        Request::Txn { success, failure, .. } => writes(success) || writes(failure),
                        _ => false,
                    }
            })
            .count()
    }
}

pub struct Driver<M: Model<Msg = EtcdMsg>> {
    pub model: M,
    pub id: NodeId,
    pub now: SimTime,
    rng: SimRng,
    timers: BTreeMap<M::Timer, SimTime>,
    pub traces: Vec<(SimTime, TraceKind)>,
}

impl<M: Model<Msg = EtcdMsg>> Driver<M> {
    pub fn start(model: M, id: NodeId, etcd: &mut FakeEtcd) -> Driver<M> {
        Self::start_at(model, id, etcd, SimTime::ZERO)
    }

    pub fn start_at(model: M, id: NodeId, etcd: &mut FakeEtcd, now: SimTime) -> Driver<M> {
        let mut d = Driver {
            model,
            id,
            now,
            rng: stream_rng(7, Stream::Node { node: id, incarnation: 0 }),
            timers: BTreeMap::new(),
            traces: Vec::new(),
        };
        d.call(etcd, |m, ctx| m.on_start(ctx));
        d
    }

    /// Runs `f` as a handler, then delivers etcd's answers to what it sent (and to what those
    /// handlers send, until quiet).
    pub fn call(&mut self, etcd: &mut FakeEtcd, f: impl FnOnce(&mut M, &mut Ctx<'_, EtcdMsg, M::Timer>)) {
        let mut inbox = VecDeque::new();
        self.handle(etcd, &mut inbox, f);
        let mut hops = 0;
        while let Some((from, msg)) = inbox.pop_front() {
            hops += 1;
            assert!(hops < 1000, "request storm");
            self.handle(etcd, &mut inbox, |m, ctx| m.on_message(ctx, from, msg));
        }
    }

    fn handle(
        &mut self,
        etcd: &mut FakeEtcd,
        inbox: &mut VecDeque<(NodeId, EtcdMsg)>,
        f: impl FnOnce(&mut M, &mut Ctx<'_, EtcdMsg, M::Timer>),
    ) {
        let mut effects = Vec::new();
        let mut timers = Vec::new();
        let mut ctx =
            Ctx { now: self.now, id: self.id, rng: &mut self.rng, effects: &mut effects, timers: &mut timers };
        f(&mut self.model, &mut ctx);
        self.model.check_invariants();
        for t in timers {
            match t {
                TimerCmd::Set { timer, at } => self.timers.insert(timer, at),
                TimerCmd::Cancel { timer } => self.timers.remove(&timer),
            };
        }
        for e in effects {
            match e {
                Effect::Send { to, msg: EtcdMsg::Req { id, req }, .. } => {
                    if let Some(result) = etcd.handle(self.now, self.id, to, req) {
                        inbox.push_back((to, EtcdMsg::Resp { id, result }));
                    }
                }
                Effect::Send { msg, .. } => panic!("unexpected message {msg:?}"),
                Effect::Trace { at, kind } => self.traces.push((at, kind)),
                _ => {}
            }
        }
    }

    /// Fires every timer due up to `t`, in time order, then sets the clock to `t`.
    pub fn run_until(&mut self, etcd: &mut FakeEtcd, t: SimTime) {
        loop {
            let next = self.timers.iter().map(|(timer, at)| (*at, *timer)).min();
            match next {
                Some((at, timer)) if at <= t => {
                    self.timers.remove(&timer);
                    self.now = self.now.max(at);
                    etcd.expire(self.now);
                    self.call(etcd, |m, ctx| m.on_timer(ctx, timer));
                }
                _ => break,
            }
        }
        self.now = t;
    }

    /// The Stolon events traced so far: (what, keeper, reason).
    pub fn stolon(&self) -> Vec<(StolonWhat, Option<String>, String)> {
        self.traces
            .iter()
            .filter_map(|(_, k)| match k {
                TraceKind::Stolon { what, keeper, reason, .. } => Some((*what, keeper.clone(), reason.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn events(&self, what: StolonWhat) -> Vec<(Option<String>, String)> {
        self.stolon().into_iter().filter(|(w, _, _)| *w == what).map(|(_, k, r)| (k, r)).collect()
    }
}
