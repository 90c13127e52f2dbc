//! The trace's closed vocabularies: each a typed enum that serialises to the word
//! `events.jsonl` has always used, so checkers, the UI and reports match on variants
//! rather than compare strings, and a trace file stays readable with `jq`.

use serde::{Deserialize, Serialize};

/// What a standby's replication connection did. Serialised as one string: the variant's
/// snake-case name, with a refusal's reason after "refused: ".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ReplicationState {
    /// The upstream accepted START_REPLICATION and streams WAL.
    Streaming,
    /// The upstream refused the standby (a diverged timeline, say), with its reason.
    Refused(String),
    /// The primary's walsender heard nothing for `wal_sender_timeout` and ended.
    WalSenderTimeout,
    /// The standby's walreceiver heard nothing for `wal_receiver_timeout` and ended.
    WalReceiverTimeout,
}

const REFUSED_PREFIX: &str = "refused: ";

impl From<ReplicationState> for String {
    fn from(s: ReplicationState) -> String {
        match s {
            ReplicationState::Streaming => "streaming".into(),
            ReplicationState::Refused(reason) => format!("{REFUSED_PREFIX}{reason}"),
            ReplicationState::WalSenderTimeout => "walsender_timeout".into(),
            ReplicationState::WalReceiverTimeout => "wal_receiver_timeout".into(),
        }
    }
}

impl TryFrom<String> for ReplicationState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "streaming" => Ok(ReplicationState::Streaming),
            "walsender_timeout" => Ok(ReplicationState::WalSenderTimeout),
            "wal_receiver_timeout" => Ok(ReplicationState::WalReceiverTimeout),
            _ => match s.strip_prefix(REFUSED_PREFIX) {
                Some(reason) => Ok(ReplicationState::Refused(reason.to_string())),
                None => Err(format!("unknown replication state {s:?}")),
            },
        }
    }
}

impl std::fmt::Display for ReplicationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from(self.clone()))
    }
}

/// Whether a rebuild began or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebuildPhase {
    Started,
    Finished,
}

impl RebuildPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RebuildPhase::Started => "started",
            RebuildPhase::Finished => "finished",
        }
    }
}

/// What a Stolon component decided or did (`stolon` events). Sentinel, keeper and proxy
/// each emit their own; the names are pgsim's, each close to the log line Stolon v0.17
/// writes for it (sentinel.go, keeper.go, proxy.go).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StolonWhat {
    /// Sentinel: this sentinel won or lost the sentinel-leader key.
    SentinelLeader,
    /// Sentinel: it could not read or decode the store.
    SentinelError,
    /// Sentinel: an operator command it refused.
    OperatorError,
    /// Sentinel: a keeper's database is declared failed (in error for over `failInterval`).
    KeeperFailed,
    /// Sentinel: a failed keeper's database is healthy again.
    KeeperHealthy,
    /// Sentinel: a new master is chosen ("electing db as the new master").
    MasterElected,
    /// Sentinel: the master failed and no standby may replace it.
    NoEligibleMasters,
    /// Sentinel: the standbys are told to follow the new master.
    StandbysFollow,
    /// Sentinel (the wanted set) or keeper (the set put in force): the synchronous standbys.
    SyncStandbys,
    /// Sentinel: the master's keeper reports the wanted synchronous standbys in sync.
    SyncInSync,
    /// Sentinel: the cluster became a master cluster or a standby cluster.
    ClusterRole,
    /// Sentinel: the master named to the proxies changed.
    ProxyMaster,
    /// Sentinel: the proxies allowed to route changed.
    ProxyEnabled,
    /// Sentinel: it waits for the proxies to apply a generation before naming a master.
    ProxyWait,
    /// Keeper: promotes its server.
    KeeperPromote,
    /// Keeper: points its server at another upstream.
    KeeperFollow,
    /// Keeper: rebuilds its server (pg_basebackup or pg_rewind).
    KeeperResync,
    /// Keeper: stops its server, which is no longer the master.
    KeeperFence,
    /// Keeper: keeps its server running as primary while the cluster data names a new master
    /// that has not converged yet.
    KeeperOldMaster,
    /// Keeper: a store or server error.
    KeeperError,
    /// Proxy: closes every connection and stops listening (no check-in for `proxyTimeout`).
    ProxyCloseAll,
    /// Proxy: sends new connections to another master (or to none).
    ProxyRetarget,
    /// Proxy: listens again after checking in with the store.
    ProxyListen,
}

impl StolonWhat {
    /// The word `events.jsonl` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            StolonWhat::SentinelLeader => "sentinel_leader",
            StolonWhat::SentinelError => "sentinel_error",
            StolonWhat::OperatorError => "operator_error",
            StolonWhat::KeeperFailed => "keeper_failed",
            StolonWhat::KeeperHealthy => "keeper_healthy",
            StolonWhat::MasterElected => "master_elected",
            StolonWhat::NoEligibleMasters => "no_eligible_masters",
            StolonWhat::StandbysFollow => "standbys_follow",
            StolonWhat::SyncStandbys => "sync_standbys",
            StolonWhat::SyncInSync => "sync_in_sync",
            StolonWhat::ClusterRole => "cluster_role",
            StolonWhat::ProxyMaster => "proxy_master",
            StolonWhat::ProxyEnabled => "proxy_enabled",
            StolonWhat::ProxyWait => "proxy_wait",
            StolonWhat::KeeperPromote => "keeper_promote",
            StolonWhat::KeeperFollow => "keeper_follow",
            StolonWhat::KeeperResync => "keeper_resync",
            StolonWhat::KeeperFence => "keeper_fence",
            StolonWhat::KeeperOldMaster => "keeper_old_master",
            StolonWhat::KeeperError => "keeper_error",
            StolonWhat::ProxyCloseAll => "proxy_close_all",
            StolonWhat::ProxyRetarget => "proxy_retarget",
            StolonWhat::ProxyListen => "proxy_listen",
        }
    }
}

/// An HAProxy server's state after `rise`/`fall` checks, spelt as HAProxy logs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HaproxyServerState {
    #[serde(rename = "UP")]
    Up,
    #[serde(rename = "DOWN")]
    Down,
}

impl HaproxyServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            HaproxyServerState::Up => "UP",
            HaproxyServerState::Down => "DOWN",
        }
    }
}

/// Each vocabulary displays as the word `events.jsonl` uses for it.
macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_str!(
    crate::pg::ServerRole,
    crate::pg::SyncLevel,
    crate::pg::RebuildMethod,
    crate::raft::StepDown,
    RebuildPhase,
    StolonWhat,
    HaproxyServerState
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_states_round_trip_through_their_strings() {
        for s in [
            ReplicationState::Streaming,
            ReplicationState::Refused("diverged at 0/3000000".into()),
            ReplicationState::WalSenderTimeout,
            ReplicationState::WalReceiverTimeout,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<ReplicationState>(&json).unwrap(), s, "{json}");
        }
        assert_eq!(serde_json::to_string(&ReplicationState::Refused("x".into())).unwrap(), r#""refused: x""#);
        assert!(serde_json::from_str::<ReplicationState>(r#""idle""#).is_err());
    }

    #[test]
    fn stolon_words_serialise_as_their_as_str() {
        for what in
            [StolonWhat::SentinelLeader, StolonWhat::KeeperOldMaster, StolonWhat::SyncInSync, StolonWhat::ProxyWait]
        {
            assert_eq!(serde_json::to_string(&what).unwrap(), format!("\"{}\"", what.as_str()));
        }
    }

    #[test]
    fn words_are_the_ones_events_jsonl_has_always_used() {
        assert_eq!(serde_json::to_string(&StolonWhat::NoEligibleMasters).unwrap(), r#""no_eligible_masters""#);
        assert_eq!(serde_json::to_string(&HaproxyServerState::Down).unwrap(), r#""DOWN""#);
        assert_eq!(serde_json::to_string(&crate::pg::ServerRole::Rebuilding).unwrap(), r#""rebuilding""#);
        assert_eq!(serde_json::to_string(&crate::pg::SyncLevel::RemoteApply).unwrap(), r#""remote_apply""#);
        assert_eq!(serde_json::to_string(&crate::raft::StepDown::CheckQuorum).unwrap(), r#""check_quorum""#);
        let method = crate::pg::RebuildMethod::PgRewindFromDivergence;
        assert_eq!(serde_json::to_string(&method).unwrap(), format!("\"{}\"", method.as_str()));
        assert_eq!(serde_json::to_string(&RebuildPhase::Finished).unwrap(), r#""finished""#);
    }
}
