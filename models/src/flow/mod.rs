//! The request path as flows: clients' requests travel as *cohorts* (a count of requests of one
//! tenant and kind, created in the same tick) through PgBouncer, HAProxy and the stolon-proxy to
//! PostgreSQL, and their outcomes travel back the same way. One message carries a whole cohort,
//! so 100 000 requests/s cost as much to simulate as 10/s; counts stay exact integers, so every
//! acknowledged write still has its own LSN on the database side.

use crate::node::NodeId;
use crate::time::SimTime;

pub mod balancer;
pub mod bouncer;
pub mod client;
pub mod proxy_relay;
pub mod relay;
#[cfg(test)]
pub(crate) mod testkit;

/// Index of a tenant in the scenario's tenant table.
pub type TenantId = u16;

/// What a request does. Reads that must see the client's own recent writes go to the primary
/// region's write path (the read-after-write rule) as `ReadPrimary`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReqKind {
    Read,
    ReadPrimary,
    Write,
}

impl ReqKind {
    pub const ALL: [ReqKind; 3] = [ReqKind::Read, ReqKind::ReadPrimary, ReqKind::Write];
    pub fn as_str(self) -> &'static str {
        match self {
            ReqKind::Read => "read",
            ReqKind::ReadPrimary => "read_primary",
            ReqKind::Write => "write",
        }
    }
    /// Whether this kind must reach the primary (through the write backend).
    pub fn needs_primary(self) -> bool {
        !matches!(self, ReqKind::Read)
    }
}

/// Why requests failed, as a client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// Connection refused or reset at once: nothing listening, no server UP, max_client_conn,
    /// server_login_retry.
    Refused,
    /// No answer within the client's timeout (or a proxy's `timeout server`).
    TimedOut,
    /// The server is a standby (or fenced): "cannot execute ... in a read-only transaction".
    ReadOnly,
    /// Waited in a pool past `query_wait_timeout`, or HAProxy's queue past `timeout queue`.
    PoolExhausted,
    /// An open session was cut: shutdown-sessions, a proxy closing connections, a crash.
    ConnectionClosed,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::Refused,
        ErrorKind::TimedOut,
        ErrorKind::ReadOnly,
        ErrorKind::PoolExhausted,
        ErrorKind::ConnectionClosed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::TimedOut => "timed_out",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::PoolExhausted => "pool_exhausted",
            ErrorKind::ConnectionClosed => "connection_closed",
        }
    }
}

/// Requests of one tenant and kind that travel together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cohort {
    /// Unique per client node: (client node, sequence number) identifies a cohort.
    pub client: NodeId,
    pub seq: u64,
    pub tenant: TenantId,
    pub kind: ReqKind,
    pub count: u64,
    /// When the client issued these requests (latency is measured from here).
    pub created: SimTime,
    /// When the client gives up on this attempt and closes its connections: a hop still
    /// holding the requests queued drops them then, as a server notices a closed socket.
    pub deadline: SimTime,
}

/// The hops a cohort has passed, client first; the outcome retraces them backwards. At most
/// four hops exist (client, PgBouncer, HAProxy, stolon-proxy), so this stays inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Route {
    hops: [NodeId; 4],
    len: u8,
}

impl Route {
    pub fn new(first: NodeId) -> Route {
        Route { hops: [first, 0, 0, 0], len: 1 }
    }
    pub fn push(mut self, hop: NodeId) -> Route {
        assert!((self.len as usize) < self.hops.len(), "route longer than the request path");
        self.hops[self.len as usize] = hop;
        self.len += 1;
        self
    }
    /// The previous hop, and the route without the last one.
    pub fn pop(mut self) -> Option<(NodeId, Route)> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some((self.hops[self.len as usize], self))
    }
    pub fn last(&self) -> Option<NodeId> {
        (self.len > 0).then(|| self.hops[self.len as usize - 1])
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// How many of a cohort succeeded and how many failed, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Outcome {
    pub ok: u64,
    /// Indexed by `ErrorKind as usize`.
    pub errors: [u64; 5],
}

impl Outcome {
    pub fn ok(n: u64) -> Outcome {
        Outcome { ok: n, errors: [0; 5] }
    }
    pub fn failed(kind: ErrorKind, n: u64) -> Outcome {
        let mut o = Outcome::default();
        o.errors[kind as usize] = n;
        o
    }
    pub fn total(&self) -> u64 {
        self.ok + self.errors.iter().sum::<u64>()
    }
    pub fn add(&mut self, other: &Outcome) {
        self.ok += other.ok;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
    }
    pub fn error(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize]
    }
    pub fn failed_total(&self) -> u64 {
        self.errors.iter().sum()
    }
    /// Moves up to `n` requests out of `self` (successes first, then errors in `ErrorKind`
    /// order) and returns them: how a hop credits an answer only up to what it still owes.
    pub fn take(&mut self, n: u64) -> Outcome {
        let mut taken = Outcome::default();
        let mut left = n;
        let ok = self.ok.min(left);
        self.ok -= ok;
        taken.ok = ok;
        left -= ok;
        for (have, got) in self.errors.iter_mut().zip(taken.errors.iter_mut()) {
            let k = (*have).min(left);
            *have -= k;
            *got = k;
            left -= k;
        }
        taken
    }
}

impl Cohort {
    /// The same requests' identity with another count: a part of the cohort.
    pub fn with_count(self, count: u64) -> Cohort {
        Cohort { count, ..self }
    }
}

/// Messages of the request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowMsg {
    /// Requests travelling towards the database. `route` ends with the sender.
    Requests {
        cohort: Cohort,
        route: Route,
    },
    /// Outcomes of (part of) a cohort travelling back; `route` ends with the receiver.
    /// A cohort may come back in several parts (some served now, some later, some failed).
    Outcome {
        cohort: Cohort,
        outcome: Outcome,
        route: Route,
    },
    /// A health check (HAProxy `check`, a TCP connect or a role probe) and its answer.
    Check {
        seq: u64,
    },
    CheckReply {
        seq: u64,
        ok: bool,
    },
}

impl crate::node::Message for FlowMsg {
    fn label(&self) -> &'static str {
        match self {
            FlowMsg::Requests { .. } => "requests",
            FlowMsg::Outcome { .. } => "outcome",
            FlowMsg::Check { .. } => "check",
            FlowMsg::CheckReply { .. } => "check_reply",
        }
    }
    fn size_bytes(&self) -> u64 {
        // A cohort stands for `count` real requests; bandwidth is charged for one message only,
        // because the bulk load's bytes are not what the control plane's links are sized for.
        96
    }

    /// A check is a TCP connect: refused at once by a dead process's kernel, completed by a
    /// stopped one's (calibration/fixtures/haproxy-kill.json, haproxy-sigstop.json). New
    /// sessions to a dead process are refused; to a stopped one they wait.
    fn kernel_answer(&self, process: crate::node::ProcessDown) -> Option<FlowMsg> {
        use crate::node::ProcessDown::{Dead, Stopped};
        match (self, process) {
            (FlowMsg::Check { seq }, Dead) => Some(FlowMsg::CheckReply { seq: *seq, ok: false }),
            (FlowMsg::Check { seq }, Stopped) => Some(FlowMsg::CheckReply { seq: *seq, ok: true }),
            (FlowMsg::Requests { cohort, route }, Dead) => Some(FlowMsg::Outcome {
                cohort: *cohort,
                outcome: Outcome::failed(ErrorKind::Refused, cohort.count),
                route: *route,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;
    use crate::node::ProcessDown::{Dead, Stopped};

    /// A dead process's kernel refuses connections, a stopped one's completes handshakes:
    /// checks fail or pass at once, new sessions are refused or wait.
    #[test]
    fn the_kernel_answers_checks_and_sessions_for_a_process_that_cannot() {
        let check = FlowMsg::Check { seq: 7 };
        assert_eq!(check.kernel_answer(Dead), Some(FlowMsg::CheckReply { seq: 7, ok: false }));
        assert_eq!(check.kernel_answer(Stopped), Some(FlowMsg::CheckReply { seq: 7, ok: true }));
        let cohort = testkit::cohort(1, 3, 0, ReqKind::Read, 40, SimTime::ZERO);
        let route = Route::new(1).push(2);
        let req = FlowMsg::Requests { cohort, route };
        let refused = FlowMsg::Outcome { cohort, outcome: Outcome::failed(ErrorKind::Refused, 40), route };
        assert_eq!(req.kernel_answer(Dead), Some(refused));
        assert_eq!(req.kernel_answer(Stopped), None, "a stopped server's sessions wait");
        let reply = FlowMsg::CheckReply { seq: 7, ok: true };
        assert_eq!(reply.kernel_answer(Dead), None, "answers to a dead process are lost");
    }
}
