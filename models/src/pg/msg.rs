//! Messages between PostgreSQL servers (the replication protocol, reduced) and the request
//! path's. What the operator, the keeper or a fault tells a server is a `PgCommand`.

use super::{History, Lsn, Timeline};
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
    /// The request path: clients' requests, their outcomes, health checks.
    Flow(FlowMsg),
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
            PgMsg::Flow(m) => crate::node::Message::label(m),
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
