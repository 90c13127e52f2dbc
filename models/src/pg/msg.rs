//! Messages between PostgreSQL servers (the replication protocol, reduced) and from the
//! operator (or, later, the cluster manager).

use super::{History, Lsn, RebuildMethod, SyncStandbyNames, Timeline};
use crate::flow::FlowMsg;
use crate::time::SimTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgMsg {
    /// A standby asks its upstream to stream from `from`, telling where its WAL comes from.
    StartReplication {
        tl: Timeline,
        history: History,
        from: Lsn,
    },
    /// The upstream will stream; the standby adopts its timeline and history.
    Streaming {
        tl: Timeline,
        history: History,
    },
    /// The standby's WAL has diverged from the upstream's: it must be rewound or rebuilt.
    Refused {
        reason: String,
    },
    /// WAL bytes [start, end); `sent_at` lets the standby measure time lag.
    WalData {
        tl: Timeline,
        start: Lsn,
        end: Lsn,
        sent_at: SimTime,
        /// The upstream's flushed LSN, so the standby knows how far behind it is.
        upstream_flushed: Lsn,
    },
    /// The walsender's keepalive when there is nothing to send.
    Keepalive {
        sent_at: SimTime,
        upstream_flushed: Lsn,
    },
    /// The walreceiver's reply: positions written, flushed and replayed.
    Feedback {
        write: Lsn,
        flush: Lsn,
        replay: Lsn,
    },
    /// pg_rewind and pg_basebackup ask the source where it stands.
    RebuildQuery {
        tl: Timeline,
        history: History,
        flushed: Lsn,
    },
    RebuildInfo {
        tl: Timeline,
        history: History,
        flushed: Lsn,
    },
    /// Operator or cluster manager: `pg_ctl promote`.
    Promote {
        accept_data_loss: bool,
    },
    /// Stop accepting writes (fence, or shut down a demoted primary).
    Fence,
    /// Rebuild this server from `upstream`; `bytes_per_s` is the copy throughput the
    /// simulator derives from the path bandwidth and both disks.
    Rebuild {
        method: RebuildMethod,
        upstream: u32,
        bytes_per_s: u64,
    },
    /// Fault: replay runs this many thousandths as fast as normal (1000 = normal speed).
    ApplyFactor {
        factor_permille: u32,
    },
    /// Fault: the walreceiver stops (or resumes) taking WAL and sending feedback.
    PauseReceiver {
        paused: bool,
    },
    /// Follow another upstream (after a failover).
    Follow {
        upstream: u32,
    },
    /// The request path: clients' requests, their outcomes, health checks.
    Flow(FlowMsg),
    /// The local keeper changes `synchronous_standby_names` (and reloads).
    SetSynchronousStandbyNames(Option<SyncStandbyNames>),
}

impl PgMsg {
    pub fn label(&self) -> &'static str {
        match self {
            PgMsg::StartReplication { .. } => "start_replication",
            PgMsg::Streaming { .. } => "streaming",
            PgMsg::Refused { .. } => "replication_refused",
            PgMsg::WalData { .. } => "wal_data",
            PgMsg::Keepalive { .. } => "wal_keepalive",
            PgMsg::Feedback { .. } => "standby_status",
            PgMsg::RebuildQuery { .. } => "rebuild_query",
            PgMsg::RebuildInfo { .. } => "rebuild_info",
            PgMsg::Promote { .. } => "promote",
            PgMsg::Fence => "fence",
            PgMsg::Rebuild { .. } => "rebuild",
            PgMsg::Follow { .. } => "follow",
            PgMsg::ApplyFactor { .. } => "fault_apply_factor",
            PgMsg::PauseReceiver { .. } => "fault_pause_walreceiver",
            PgMsg::Flow(m) => crate::node::Message::label(m),
            PgMsg::SetSynchronousStandbyNames(_) => "set_synchronous_standby_names",
        }
    }
    pub fn size_bytes(&self) -> u64 {
        match self {
            PgMsg::WalData { start, end, .. } => 64 + (end - start),
            _ => 96,
        }
    }
}

impl crate::node::Message for PgMsg {
    fn size_bytes(&self) -> u64 {
        PgMsg::size_bytes(self)
    }
    fn label(&self) -> &'static str {
        PgMsg::label(self)
    }
}
