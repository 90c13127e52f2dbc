//! etcd on top of Raft: a revisioned KV store with leases, served by members, used by clients.

mod elector;
pub mod history;
mod kv;
mod member;
mod writer;

pub use elector::{ElectorConfig, ElectorTimer, EtcdElector};
pub use kv::{KeyValue, Kv, Lease};
pub use member::{EtcdConfig, EtcdMember, EtcdTimer};
pub use writer::{EtcdWriter, WriterConfig, WriterTimer, metrics as writer_metrics};

use crate::raft::RaftMsg;

pub type LeaseId = u64;
pub type Revision = u64;

/// A compare of a transaction (etcd's `Compare`): on a key's value, version, or revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The key's create revision (0 when the key does not exist) equals this.
    CreateRevision {
        key: String,
        revision: Revision,
    },
    ModRevision {
        key: String,
        revision: Revision,
    },
    Value {
        key: String,
        value: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: String, lease: Option<LeaseId> },
    Delete { key: String },
    Get { key: String },
}

/// What a client asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Op(Op),
    Txn {
        compare: Vec<Compare>,
        success: Vec<Op>,
        failure: Vec<Op>,
    },
    LeaseGrant {
        ttl_s: u64,
    },
    /// Not replicated, as in etcd: the leader's lessor refreshes the lease in memory.
    LeaseKeepAlive {
        id: LeaseId,
    },
    LeaseRevoke {
        id: LeaseId,
    },
}

impl Request {
    pub fn label(&self) -> &'static str {
        match self {
            Request::Op(Op::Put { .. }) => "put",
            Request::Op(Op::Delete { .. }) => "delete",
            Request::Op(Op::Get { .. }) => "range",
            Request::Txn { .. } => "txn",
            Request::LeaseGrant { .. } => "lease_grant",
            Request::LeaseKeepAlive { .. } => "lease_keepalive",
            Request::LeaseRevoke { .. } => "lease_revoke",
        }
    }
}

/// A replicated command: the payload of a Raft entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A client request, applied in log order. Reads go through the log too, which makes them
    /// linearizable (etcd uses ReadIndex for the same guarantee without a log entry).
    Client(Request),
    /// The leader's lessor revokes an expired lease.
    ExpireLease { id: LeaseId },
}

impl Command {
    pub fn size_bytes(&self) -> u64 {
        let op = |o: &Op| match o {
            Op::Put { key, value, .. } => 16 + key.len() + value.len(),
            Op::Delete { key } | Op::Get { key } => 16 + key.len(),
        } as u64;
        match self {
            Command::Client(Request::Op(o)) => op(o),
            Command::Client(Request::Txn { compare, success, failure }) => {
                32 * compare.len() as u64 + success.iter().chain(failure).map(op).sum::<u64>()
            }
            _ => 24,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Put { revision: Revision },
    Delete { revision: Revision, deleted: bool },
    Get { revision: Revision, kv: Option<KeyValue> },
    Txn { revision: Revision, succeeded: bool, gets: Vec<Option<KeyValue>> },
    Lease { id: LeaseId, ttl_s: u64 },
    Revoked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtcdError {
    /// This member is not the leader; try `hint` if known.
    NotLeader {
        hint: Option<crate::node::NodeId>,
    },
    /// Leadership changed before the request committed; the outcome is unknown.
    LeaderChanged,
    LeaseNotFound,
    /// The member stopped (its WAL fsync failed, as etcd exits on).
    Halted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EtcdMsg {
    Raft(RaftMsg<Kv>),
    Req {
        id: u64,
        req: Request,
    },
    Resp {
        id: u64,
        result: Result<Reply, EtcdError>,
    },
    /// An operator's `etcdctl move-leader`, injected by the simulator (from the member itself).
    MoveLeader {
        to: crate::node::NodeId,
    },
}

impl crate::node::Message for EtcdMsg {
    fn label(&self) -> &'static str {
        match self {
            EtcdMsg::Raft(m) => m.label(),
            EtcdMsg::Req { req, .. } => req.label(),
            EtcdMsg::Resp { .. } => "etcd_response",
            EtcdMsg::MoveLeader { .. } => "move_leader",
        }
    }
    fn size_bytes(&self) -> u64 {
        match self {
            EtcdMsg::Raft(m) => m.size_bytes(),
            EtcdMsg::Req { req, .. } => 32 + Command::Client(req.clone()).size_bytes(),
            _ => 64,
        }
    }
}
