//! PostgreSQL: WAL positions and timelines, streaming and synchronous replication,
//! promotion, divergence and rebuilds, capacity. One `PgNode` is one PostgreSQL server.

mod capacity;
mod command;
mod msg;
mod node;
pub mod rebuild;
pub mod syncrep;

use serde::{Deserialize, Serialize};

pub use capacity::Capacity;
pub use command::PgCommand;
pub use msg::PgMsg;
pub use node::{
    METRIC_COMMIT_MS, METRIC_LAG_BYTES, METRIC_LAG_S, METRIC_READS_OK, METRIC_READS_STALE, PgConfig, PgDurable, PgNode,
    PgRoleKind, PgStatus, PgTimer, Phase, Workload, acked_metric, timed_out_metric,
};
pub use rebuild::RebuildMethod;
pub use syncrep::SyncStandbyNames;

/// What a PostgreSQL server is doing: the role its `pg_role` trace events name and its
/// Stolon keeper publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerRole {
    Primary,
    Standby,
    /// Promotion asked for, not yet done (the end-of-recovery checkpoint).
    Promoting,
    /// Being copied (pg_basebackup) or rewound (pg_rewind) from another server.
    Rebuilding,
    /// Stopped by its keeper, which the cluster data no longer names master.
    Fenced,
}

impl ServerRole {
    pub const ALL: [ServerRole; 5] =
        [ServerRole::Primary, ServerRole::Standby, ServerRole::Promoting, ServerRole::Rebuilding, ServerRole::Fenced];
    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::Primary => "primary",
            ServerRole::Standby => "standby",
            ServerRole::Promoting => "promoting",
            ServerRole::Rebuilding => "rebuilding",
            ServerRole::Fenced => "fenced",
        }
    }
    pub fn parse(s: &str) -> Option<ServerRole> {
        ServerRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A WAL position in bytes.
pub type Lsn = u64;

/// A timeline: PostgreSQL's number plus the node that created it, so two standbys promoted
/// from the same parent (both picking the next number, as PostgreSQL does without an
/// archive) are told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeline {
    pub tli: u32,
    pub origin: u32,
}

/// Timeline history: each ancestor timeline and the LSN at which its child branched off.
pub type History = Vec<(Timeline, Lsn)>;

/// `synchronous_commit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncLevel {
    Off,
    Local,
    RemoteWrite,
    On,
    RemoteApply,
}

impl SyncLevel {
    pub const ALL: [SyncLevel; 5] =
        [SyncLevel::Off, SyncLevel::Local, SyncLevel::RemoteWrite, SyncLevel::On, SyncLevel::RemoteApply];
    pub fn as_str(self) -> &'static str {
        match self {
            SyncLevel::Off => "off",
            SyncLevel::Local => "local",
            SyncLevel::RemoteWrite => "remote_write",
            SyncLevel::On => "on",
            SyncLevel::RemoteApply => "remote_apply",
        }
    }
    pub fn parse(s: &str) -> Option<SyncLevel> {
        SyncLevel::ALL.into_iter().find(|l| l.as_str() == s)
    }
    /// Levels whose acknowledgement promises a copy on a synchronous standby.
    pub fn is_synchronous(self) -> bool {
        matches!(self, SyncLevel::RemoteWrite | SyncLevel::On | SyncLevel::RemoteApply)
    }
}

/// Whether WAL up to `lsn` on timeline `tl` is part of a server's history (its own timeline
/// `current` plus ancestors with their switch points).
pub fn contains(current: Timeline, history: &History, tl: Timeline, lsn: Lsn) -> bool {
    tl == current || history.iter().any(|(t, switch)| *t == tl && lsn <= *switch)
}

/// The point where a server on (`tl`, history) stops sharing WAL with a source on
/// (`source_tl`, `source_history`): the switch point of the newest common timeline.
pub fn divergence_point(tl: Timeline, history: &History, source_tl: Timeline, source_history: &History) -> Option<Lsn> {
    if tl == source_tl {
        return None;
    }
    // Our timeline is an ancestor of the source's: the source branched off at its switch point.
    if let Some((_, switch)) = source_history.iter().find(|(t, _)| *t == tl) {
        return Some(*switch);
    }
    // Otherwise both branched from a common ancestor: the earlier of the two switch points.
    for (t, my_switch) in history.iter().rev() {
        if let Some((_, src_switch)) = source_history.iter().find(|(s, _)| s == t) {
            return Some((*my_switch).min(*src_switch));
        }
        if *t == source_tl {
            return Some(*my_switch);
        }
    }
    Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: Timeline = Timeline { tli: 1, origin: 0 };
    const T2: Timeline = Timeline { tli: 2, origin: 1 };
    const T2B: Timeline = Timeline { tli: 2, origin: 2 };

    #[test]
    fn history_membership_and_divergence() {
        let h2: History = vec![(T1, 1000)];
        assert!(contains(T2, &h2, T1, 1000));
        assert!(!contains(T2, &h2, T1, 1001), "WAL past the switch on the old timeline is not ours");
        assert!(contains(T2, &h2, T2, 5000));
        // An old primary still on T1 that wrote up to 1500 diverged at 1000.
        assert_eq!(divergence_point(T1, &vec![], T2, &h2), Some(1000));
        // Two standbys promoted from T1 at different points.
        let h2b: History = vec![(T1, 800)];
        assert_eq!(divergence_point(T2B, &h2b, T2, &h2), Some(800));
        assert_eq!(divergence_point(T2, &h2, T2, &h2), None);
    }
}
