//! What an etcd client asked and learnt, as `kv_invoked` / `kv_returned` trace events, so that a
//! checker can judge the history of every key (linearizability) without reading messages.

use super::{EtcdError, KeyValue, Op, Reply, Request};
use crate::node::Ctx;
use crate::trace::{KvOutcome, TraceKind};

/// A value's digest in the history (FNV-1a, stable across platforms).
pub fn digest(value: &str) -> u64 {
    crate::hash::fnv1a64(value.as_bytes())
}

/// One key a request touches: (key, write, value digest written, opaque).
type Part = (String, bool, Option<u64>, bool);

fn op_part(op: &Op, opaque: bool) -> Part {
    match op {
        Op::Put { key, value, lease } => (key.clone(), true, Some(digest(value)), opaque || lease.is_some()),
        Op::Delete { key } => (key.clone(), true, None, opaque),
        Op::Get { key } => (key.clone(), false, None, opaque),
    }
}

/// The keys `req` touches. A transaction's success branch is what the client expects to
/// happen; a key its failure branch would write is marked opaque (written unseen).
fn parts(req: &Request) -> Vec<Part> {
    match req {
        Request::Op(op) => vec![op_part(op, false)],
        Request::Txn { success, failure, .. } => {
            let unseen: Vec<&str> = failure
                .iter()
                .filter_map(|op| match op {
                    Op::Put { key, .. } | Op::Delete { key } => Some(key.as_str()),
                    Op::Get { .. } => None,
                })
                .collect();
            let mut out: Vec<Part> = success.iter().map(|op| op_part(op, false)).collect();
            for p in &mut out {
                p.3 |= unseen.contains(&p.0.as_str());
            }
            for key in unseen {
                if !out.iter().any(|p| p.0 == key) {
                    out.push((key.to_string(), true, None, true));
                }
            }
            out
        }
        Request::LeaseGrant { .. } | Request::LeaseKeepAlive { .. } | Request::LeaseRevoke { .. } => Vec::new(),
    }
}

/// Traces the invocation of request `op`.
pub fn invoked<M, T>(ctx: &mut Ctx<'_, M, T>, op: u64, req: &Request) {
    for (part, (key, write, value, opaque)) in parts(req).into_iter().enumerate() {
        ctx.trace(TraceKind::KvInvoked { op, part: part as u32, key, write, value, opaque });
    }
}

/// Traces how request `op` ended: `None` when the client gave up on it (timed out).
pub fn returned<M, T>(ctx: &mut Ctx<'_, M, T>, op: u64, req: &Request, result: Option<&Result<Reply, EtcdError>>) {
    let parts = parts(req);
    let (outcome, gets): (KvOutcome, &[Option<KeyValue>]) = match result {
        Some(Ok(Reply::Get { kv, .. })) => (KvOutcome::Ok, std::slice::from_ref(kv)),
        Some(Ok(Reply::Txn { succeeded: true, gets, .. })) => (KvOutcome::Ok, gets),
        Some(Ok(Reply::Put { .. } | Reply::Delete { .. })) => (KvOutcome::Ok, &[]),
        // The compare failed: the success branch did not run (the failure branch's keys are opaque).
        Some(Ok(Reply::Txn { succeeded: false, .. })) => (KvOutcome::Failed, &[]),
        // Refused before it was proposed.
        Some(Err(EtcdError::NotLeader { .. } | EtcdError::LeaseNotFound)) => (KvOutcome::Failed, &[]),
        _ => (KvOutcome::Unknown, &[]),
    };
    let mut reads = gets.iter();
    for (part, (_, write, _, _)) in parts.into_iter().enumerate() {
        let value = match (outcome, write) {
            (KvOutcome::Ok, false) => match reads.next() {
                Some(kv) => kv.as_ref().map(|kv| digest(&kv.value)),
                None => {
                    // A reply that does not match the request: say nothing certain.
                    ctx.trace(TraceKind::KvReturned {
                        op,
                        part: part as u32,
                        outcome: KvOutcome::Unknown,
                        value: None,
                    });
                    continue;
                }
            },
            _ => None,
        };
        ctx.trace(TraceKind::KvReturned { op, part: part as u32, outcome, value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transactions_failure_branch_makes_its_keys_opaque() {
        let put = |k: &str| Op::Put { key: k.into(), value: "v".into(), lease: None };
        let req = Request::Txn {
            compare: vec![],
            success: vec![put("a"), Op::Get { key: "b".into() }],
            failure: vec![put("b"), put("c")],
        };
        let p = parts(&req);
        assert_eq!(
            p.iter().map(|p| (p.0.as_str(), p.1, p.3)).collect::<Vec<_>>(),
            [("a", true, false), ("b", false, true), ("c", true, true)]
        );
        let leased = Request::Op(Op::Put { key: "l".into(), value: "v".into(), lease: Some(7) });
        assert!(parts(&leased)[0].3, "a leased key vanishes unseen");
    }
}
