//! The trace vocabulary: one stream of typed events that checkers, the UI and reports read.
//! Every component adds its variants here, so a trace file has a single, documented schema.

use std::borrow::Cow;
use std::cell::RefCell;

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::node::{DiskError, DiskOp, NodeId};

#[path = "trace_metrics.rs"]
mod metrics;
pub use metrics::{MetricRows, SeriesNames};
#[path = "trace_vocab.rs"]
mod vocab;
pub use vocab::{HaproxyServerState, RebuildPhase, ReplicationState, StolonWhat};
#[path = "trace_view.rs"]
mod view;
pub use view::{ClusterView, ServerView, SyncNamesView};

use crate::pg::{RebuildMethod, ServerRole, SyncLevel};
use crate::raft::StepDown;

/// A node reference inside an event. Serialised as the node's *name* while a name table is
/// installed (`with_node_names`), so that `events.jsonl` reads well with `jq`; as its index
/// otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeRef(pub NodeId);

thread_local! {
    static NODE_NAMES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Restores the previous name table when dropped.
pub struct NodeNamesGuard {
    previous: Vec<String>,
}

impl Drop for NodeNamesGuard {
    fn drop(&mut self) {
        let previous = std::mem::take(&mut self.previous);
        NODE_NAMES.with(|n| *n.borrow_mut() = previous);
    }
}

/// Installs `names` as the table that (de)serialises `NodeRef`s on this thread until the
/// guard is dropped.
pub fn install_node_names(names: &[String]) -> NodeNamesGuard {
    let previous = NODE_NAMES.with(|n| std::mem::replace(&mut *n.borrow_mut(), names.to_vec()));
    NodeNamesGuard { previous }
}

/// Runs `f` with `names` as the table that (de)serialises `NodeRef`s.
pub fn with_node_names<R>(names: &[String], f: impl FnOnce() -> R) -> R {
    let _guard = install_node_names(names);
    f()
}

impl Serialize for NodeRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        NODE_NAMES.with(|n| match n.borrow().get(self.0 as usize) {
            Some(name) => s.serialize_str(name),
            None => s.serialize_u32(self.0),
        })
    }
}

impl<'de> Deserialize<'de> for NodeRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Index(u32),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Index(i) => Ok(NodeRef(i)),
            Raw::Name(name) => NODE_NAMES.with(|n| {
                n.borrow()
                    .iter()
                    .position(|x| *x == name)
                    .map(|i| NodeRef(i as NodeId))
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown node {name:?} in trace")))
            }),
        }
    }
}

/// One trace event. `seq` is dense from 0; `t_ns` is simulated nanoseconds since start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub t_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeRef>,
    #[serde(flatten)]
    pub kind: TraceKind,
}

/// Why the network did not deliver a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Random loss configured on the link or region link.
    Loss,
    /// A `partition` fault blocks this direction.
    Partition,
    /// A `link-down` or flapping link is down.
    LinkDown,
    /// A degraded switch on the path dropped it.
    SwitchDegraded,
    /// A dead (or flapped-down) switch on the path.
    SwitchDown,
    /// The receiver is crashed.
    NodeDown,
    /// On the wire (or queued behind a slow link) when its path was cut; `via` names the cut.
    CutInFlight,
    /// The receiver's process is down on a host that is up (`process-crash`): its kernel
    /// refused the connection with RST, and answered a connection attempt as such.
    Refused,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::Loss,
        DropReason::Partition,
        DropReason::LinkDown,
        DropReason::SwitchDegraded,
        DropReason::SwitchDown,
        DropReason::NodeDown,
        DropReason::CutInFlight,
        DropReason::Refused,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Partition => "partition",
            DropReason::LinkDown => "link_down",
            DropReason::SwitchDegraded => "switch_degraded",
            DropReason::SwitchDown => "switch_down",
            DropReason::NodeDown => "node_down",
            DropReason::CutInFlight => "cut_in_flight",
            DropReason::Refused => "refused",
        }
    }
}

/// One row of the per-second metrics: a counter (`count` only) or a distribution. A day-long
/// run keeps millions of rows, so a second's rows are stored packed (`MetricRows`) and decoded
/// into these on reading; the names are shared (one allocation per series, not per row).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub metric: Arc<str>,
    pub label: Arc<str>,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dist: Option<DistStats>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistStats {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// How an etcd request ended, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvOutcome {
    /// It took effect (a read: its value is the one returned).
    Ok,
    /// It certainly took no effect (refused before it was proposed, a transaction's compare
    /// failed).
    Failed,
    /// It may or may not take effect, now or later (timed out, leadership changed).
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceKind {
    RunStarted {
        pgsim_version: String,
        scenario: String,
        scenario_hash: String,
        seed: u64,
        duration_ns: u64,
        /// Node names by index; `NodeRef`s elsewhere in the trace refer to these.
        nodes: Vec<String>,
        /// The engine's conservative window: the smallest one-way latency of any path.
        lookahead_ns: u64,
    },
    FaultStarted {
        fault: u32,
        fault_kind: String,
        detail: String,
    },
    FaultHealed {
        fault: u32,
        fault_kind: String,
    },
    /// A flapping link or switch changed state.
    Flapped {
        fault: u32,
        down: bool,
    },
    NodeCrashed,
    NodeRestarted {
        incarnation: u32,
    },
    NodePaused,
    NodeResumed,
    /// Only with `--trace messages`.
    MessageSent {
        to: NodeRef,
        msg: Cow<'static, str>,
        bytes: u64,
        deliver_at_ns: u64,
    },
    MessageDropped {
        from: NodeRef,
        to: NodeRef,
        msg: Cow<'static, str>,
        reason: DropReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
    },
    DiskFailed {
        #[serde(flatten)]
        op: DiskOp,
        error: DiskError,
    },
    /// Per-second rollup of every metric series that saw activity in that second.
    Metrics {
        second: u64,
        rows: MetricRows,
    },
    InvariantViolated {
        checker: String,
        detail: String,
    },
    /// An operator acted (move-leader, manual failover, ...).
    OperatorAction {
        action: String,
    },
    /// A Raft member starts a (pre-)vote campaign for `term`.
    RaftCampaign {
        term: u64,
        pre_vote: bool,
        transfer: bool,
    },
    /// A member won an election. `log_terms` lists (first index, term) runs of its log, so
    /// checkers can verify it holds every committed entry.
    RaftLeaderElected {
        term: u64,
        last_index: u64,
        log_terms: Vec<(u64, u64)>,
    },
    RaftSteppedDown {
        term: u64,
        reason: StepDown,
    },
    /// A Raft member sent a message carrying `term`, the first of this incarnation to carry
    /// it. Pre-vote messages are left out: they carry a term the member has not taken. Since a
    /// member sends only what its WAL holds, the terms it shows never go down, restarts included
    /// (fed to checkers; recorded with `--trace messages`).
    RaftTermShown {
        term: u64,
    },
    /// A Raft member's vote for `candidate` in `term` left it (a granted, non-pre vote, or its
    /// own vote request as a candidate): it must be the only candidate the member ever votes
    /// for in that term, restarts included (fed to checkers; recorded with `--trace messages`).
    RaftVoteGranted {
        term: u64,
        candidate: NodeRef,
    },
    /// A member applied a committed entry (fed to checkers; recorded with `--trace messages`).
    EtcdApplied {
        index: u64,
        term: u64,
        digest: u64,
    },
    /// A Raft member discarded the entries of its log from `index` on, the first of them of
    /// `term`, to take the leader's conflicting ones: never an entry that was committed (fed to
    /// checkers; recorded with `--trace messages`).
    RaftLogTruncated {
        index: u64,
        term: u64,
    },
    /// An etcd client sent a request that reads or writes `key`: one event per key the request
    /// touches, numbered by `part` within the client's request `op`. A write carries the
    /// digest of the value written (`None`: a delete). `opaque`: the key also changes in ways
    /// this history does not show (a lease, a transaction's failure branch), so checkers leave
    /// it out (fed to checkers; recorded with `--trace messages`).
    KvInvoked {
        op: u64,
        part: u32,
        key: String,
        write: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<u64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        opaque: bool,
    },
    /// The outcome of a `KvInvoked` part, as its client learnt it: for a read, the digest of
    /// the value read (`None`: no such key) (fed to checkers; recorded with `--trace messages`).
    KvReturned {
        op: u64,
        part: u32,
        outcome: KvOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<u64>,
    },
    /// A client's writes commit again after `unavailable_ms` in which none did.
    EtcdWritesResumed {
        unavailable_ms: f64,
    },
    /// A client holds an election key until `until_ns` (its own conservative view of its lease).
    LockHeld {
        key: String,
        lease: u64,
        until_ns: u64,
    },
    LockLost {
        key: String,
        reason: String,
    },
    /// A PostgreSQL server's role changed (primary, standby, promoting, rebuilding, fenced).
    PgRole {
        cluster: String,
        role: ServerRole,
        tli: u32,
        origin: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upstream: Option<NodeRef>,
    },
    /// A standby became primary on a new timeline branching off its parent at `switch_lsn`.
    PgPromoted {
        cluster: String,
        tli: u32,
        origin: u32,
        parent_tli: u32,
        parent_origin: u32,
        switch_lsn: u64,
        accept_data_loss: bool,
    },
    /// Commits acknowledged to clients: `count` commits at `first_lsn`, `first_lsn + step`, ...
    /// (fed to checkers; recorded with `--trace messages`).
    PgCommitsAcked {
        cluster: String,
        tli: u32,
        origin: u32,
        level: SyncLevel,
        count: u64,
        first_lsn: u64,
        step: u64,
        /// Confirmed by the synchronous standbys (not just local, for lack of any configured).
        synced: bool,
    },
    /// A PostgreSQL server's `synchronous_standby_names` took effect: at start (its
    /// configuration) and whenever its keeper changed it. `names` are the standbys it waits for
    /// (empty: asynchronous), `num_sync` how many of them must confirm. What the server has in
    /// force, not what the cluster data wants (fed to checkers; recorded with `--trace messages`).
    PgSyncStandbyNames {
        cluster: String,
        /// The server's own standby name (its keeper's name in a Stolon cluster).
        server: String,
        num_sync: u32,
        names: Vec<String>,
    },
    /// A replication connection changed state (streaming, refused, timeouts).
    PgReplication {
        cluster: String,
        peer: NodeRef,
        state: ReplicationState,
    },
    PgRebuild {
        cluster: String,
        method: RebuildMethod,
        phase: RebuildPhase,
        seconds: f64,
        bytes: u64,
    },
    PgPanic {
        reason: String,
    },
    /// A Stolon sentinel's decision or a keeper's or proxy's action, with its reason.
    Stolon {
        cluster: String,
        what: StolonWhat,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keeper: Option<String>,
        reason: String,
    },
    /// A Stolon sentinel's failover, traced once the cluster data that carries it is written:
    /// the master moves from `old_master` to `new_master`. `forced`: an operator's force-master
    /// (with `accept_data_loss` as given); otherwise the sentinel's own decision, taken under
    /// `synchronous_replication` as its spec had it (fed to checkers; recorded with
    /// `--trace messages`).
    StolonFailover {
        cluster: String,
        old_master: String,
        new_master: String,
        synchronous_replication: bool,
        forced: bool,
        accept_data_loss: bool,
    },
    /// A Stolon keeper read cluster data `generation`, in which its server is to follow
    /// `follow` (a standby of another keeper) or not (`None`: master, old master or standby
    /// leader). The fact read, not what the keeper did about it (fed to checkers; recorded with
    /// `--trace messages`).
    StolonKeeperRead {
        cluster: String,
        keeper: String,
        generation: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follow: Option<String>,
    },
    /// An HAProxy server changed state (`UP`/`DOWN`) after `rise`/`fall` checks.
    HaproxyServer {
        backend: String,
        server: NodeRef,
        state: HaproxyServerState,
        /// Sessions cut by `on-marked-down shutdown-sessions`.
        sessions_cut: u64,
    },
    /// A client region switched where it sends a kind of request (anycast withdraw/return,
    /// an operator moving reads or writes).
    ClientRoute {
        request: String,
        to: NodeRef,
        reason: String,
    },
    /// The member stopped, as etcd exits on a failed WAL write.
    EtcdHalted {
        reason: String,
    },
    RunFinished {
        sim_ns: u64,
    },
}

impl TraceKind {
    /// Snake-case name as it appears in `events.jsonl`'s `kind` field.
    pub fn name(&self) -> &'static str {
        match self {
            TraceKind::RunStarted { .. } => "run_started",
            TraceKind::FaultStarted { .. } => "fault_started",
            TraceKind::FaultHealed { .. } => "fault_healed",
            TraceKind::Flapped { .. } => "flapped",
            TraceKind::NodeCrashed => "node_crashed",
            TraceKind::NodeRestarted { .. } => "node_restarted",
            TraceKind::NodePaused => "node_paused",
            TraceKind::NodeResumed => "node_resumed",
            TraceKind::MessageSent { .. } => "message_sent",
            TraceKind::MessageDropped { .. } => "message_dropped",
            TraceKind::DiskFailed { .. } => "disk_failed",
            TraceKind::Metrics { .. } => "metrics",
            TraceKind::InvariantViolated { .. } => "invariant_violated",
            TraceKind::RunFinished { .. } => "run_finished",
            TraceKind::OperatorAction { .. } => "operator_action",
            TraceKind::RaftCampaign { .. } => "raft_campaign",
            TraceKind::RaftLeaderElected { .. } => "raft_leader_elected",
            TraceKind::RaftSteppedDown { .. } => "raft_stepped_down",
            TraceKind::EtcdApplied { .. } => "etcd_applied",
            TraceKind::RaftTermShown { .. } => "raft_term_shown",
            TraceKind::RaftVoteGranted { .. } => "raft_vote_granted",
            TraceKind::RaftLogTruncated { .. } => "raft_log_truncated",
            TraceKind::KvInvoked { .. } => "kv_invoked",
            TraceKind::KvReturned { .. } => "kv_returned",
            TraceKind::EtcdHalted { .. } => "etcd_halted",
            TraceKind::LockHeld { .. } => "lock_held",
            TraceKind::PgRole { .. } => "pg_role",
            TraceKind::PgPromoted { .. } => "pg_promoted",
            TraceKind::PgCommitsAcked { .. } => "pg_commits_acked",
            TraceKind::PgReplication { .. } => "pg_replication",
            TraceKind::PgSyncStandbyNames { .. } => "pg_sync_standby_names",
            TraceKind::StolonFailover { .. } => "stolon_failover",
            TraceKind::StolonKeeperRead { .. } => "stolon_keeper_read",
            TraceKind::PgRebuild { .. } => "pg_rebuild",
            TraceKind::PgPanic { .. } => "pg_panic",
            TraceKind::LockLost { .. } => "lock_lost",
            TraceKind::EtcdWritesResumed { .. } => "etcd_writes_resumed",
            TraceKind::Stolon { .. } => "stolon",
            TraceKind::HaproxyServer { .. } => "haproxy_server",
            TraceKind::ClientRoute { .. } => "client_route",
        }
    }

    /// Events a person stepping through a run wants to stop at: not the per-second metrics,
    /// not the messages, and none of the fine-grained detail events.
    pub fn is_significant(&self) -> bool {
        !(self.is_detail() || matches!(self, TraceKind::Metrics { .. } | TraceKind::MessageDropped { .. }))
    }

    /// Fine-grained events that checkers always see but the default trace does not keep.
    pub fn is_detail(&self) -> bool {
        matches!(
            self,
            TraceKind::MessageSent { .. }
                | TraceKind::EtcdApplied { .. }
                | TraceKind::RaftTermShown { .. }
                | TraceKind::RaftVoteGranted { .. }
                | TraceKind::PgCommitsAcked { .. }
                | TraceKind::PgSyncStandbyNames { .. }
                | TraceKind::StolonFailover { .. }
                | TraceKind::StolonKeeperRead { .. }
                | TraceKind::RaftLogTruncated { .. }
                | TraceKind::KvInvoked { .. }
                | TraceKind::KvReturned { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_refs_round_trip_by_name() {
        let names = vec!["a1".to_string(), "b2".to_string()];
        let ev = Event {
            seq: 3,
            t_ns: 1_500,
            node: Some(NodeRef(1)),
            kind: TraceKind::MessageDropped {
                from: NodeRef(1),
                to: NodeRef(0),
                msg: "ping".into(),
                reason: DropReason::SwitchDegraded,
                via: Some("core".into()),
            },
        };
        let line = with_node_names(&names, || serde_json::to_string(&ev).unwrap());
        assert_eq!(
            line,
            r#"{"seq":3,"t_ns":1500,"node":"b2","kind":"message_dropped","from":"b2","to":"a1","msg":"ping","reason":"switch_degraded","via":"core"}"#
        );
        let back: Event = with_node_names(&names, || serde_json::from_str(&line).unwrap());
        assert_eq!(back, ev);
        // Without a table the index is written.
        assert!(serde_json::to_string(&NodeRef(1)).unwrap() == "1");
    }
}
