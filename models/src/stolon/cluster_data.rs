//! What Stolon keeps in etcd, under its real key layout (`stolon/cluster/<cluster>/...`):
//! the cluster data the sentinel leader writes (who is master, whom each keeper follows, the
//! synchronous set, the cluster role and spec) and the state each keeper publishes about its
//! PostgreSQL. Values are compact `key=value;...` text: small on the simulated wire and
//! readable in a trace. Decoding never panics; anything malformed is a `DecodeError`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::ClusterSpec;
use crate::node::NodeId;
pub use crate::pg::ServerRole;

pub fn cluster_data_key(cluster: &str) -> String {
    format!("stolon/cluster/{cluster}/clusterdata")
}

pub fn keeper_info_key(cluster: &str, keeper: &str) -> String {
    format!("stolon/cluster/{cluster}/keepers/info/{keeper}")
}

pub fn sentinel_leader_key(cluster: &str) -> String {
    format!("stolon/cluster/{cluster}/sentinel-leader")
}

pub fn proxy_info_key(cluster: &str, proxy: &str) -> String {
    format!("stolon/cluster/{cluster}/proxies/info/{proxy}")
}

/// Keeper names travel inside the encoded values, so they are restricted to characters the
/// encoding does not use as separators.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// What the cluster data tells one keeper to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DesiredRole {
    /// The master (in a standby cluster: the standby leader, which follows the remote master).
    Master,
    Standby {
        follow: String,
    },
}

/// Stolon's `role` of the cluster: a master cluster accepts writes; a standby cluster's
/// leader replicates from a master in another region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterRole {
    Master,
    Standby { remote_master: NodeId },
}

/// What the proxies are told (Stolon's `Proxy` object in the cluster data: its `Generation`
/// and `Spec.MasterDBUID`, `Spec.EnabledProxies`). The sentinel empties `master` when it
/// elects a new master and names the new one only once every active proxy has reported the
/// emptied generation (sentinel.go `updateCluster`); a proxy forwards only while it is in
/// `enabled` (proxy.go `Check`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySpec {
    /// Bumped with every change of `master` or `enabled`.
    pub generation: u64,
    /// The keeper whose database the proxies send clients to; `None`: close every connection.
    pub master: Option<String>,
    /// The proxies that may forward, sorted: those active when the master was last named.
    pub enabled: Vec<String>,
}

/// Identifies an operator command by when it was given (and its rank among commands given at
/// the same instant), so every sentinel names the same command the same way and the leader
/// can record which ones it already applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpStamp {
    pub at_ns: u64,
    pub seq: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClusterData {
    /// Bumped by every write.
    pub generation: u64,
    pub master: Option<String>,
    /// The master's wanted synchronous standbys (Stolon's master DBSpec.SynchronousStandbys,
    /// sorted), then `FAKE_STANDBY` when too few are real (its ExternalSynchronousStandbys).
    pub synchronous_standbys: Vec<String>,
    /// Those of them the master's keeper has reported in sync since they were wanted
    /// (Stolon's master DBStatus.SynchronousStandbys, kept in the cluster data by the
    /// sentinel): a failover may only pick among these.
    pub in_sync_standbys: Vec<String>,
    pub keepers: BTreeMap<String, DesiredRole>,
    pub role: ClusterRole,
    /// The current master was forced by the operator accepting the loss of unreplicated
    /// commits; its keeper passes this to the promotion.
    pub accept_data_loss: bool,
    /// The latest one-shot operator command (failkeeper, force master) already applied.
    pub applied_op: OpStamp,
    /// The spec the leader decided with, and the stamp of the command that set it (zero: the
    /// configuration), so a sentinel that restarts adopts what the operator last said.
    pub spec: ClusterSpec,
    pub spec_stamp: OpStamp,
    pub proxy: ProxySpec,
    /// The keepers the leader last judged failed, sorted (Stolon stores every keeper's and DB's
    /// health in the cluster data: `Keepers[..].Status.Healthy`, `DBs[..].Status.Healthy`,
    /// set by `updateKeepersStatus`). pgsim keeps one verdict per keeper: each has one DB, and
    /// a DB is unhealthy whenever its keeper is. A new leader decides its first round on this
    /// (sentinel.go `clusterSentinelCheck`, `firstRun`).
    pub failed: Vec<String>,
}

impl ClusterData {
    /// A new cluster: `master` leads, every other keeper follows it.
    pub fn initial(keepers: &[String], master: &str, role: ClusterRole, spec: ClusterSpec) -> ClusterData {
        assert!(keepers.iter().any(|k| k == master), "the initial master {master} is not a keeper");
        let mut cd = ClusterData {
            generation: 0,
            master: None,
            synchronous_standbys: Vec::new(),
            in_sync_standbys: Vec::new(),
            keepers: keepers.iter().map(|k| (k.clone(), DesiredRole::Master)).collect(),
            role,
            accept_data_loss: false,
            applied_op: OpStamp::default(),
            spec,
            spec_stamp: OpStamp::default(),
            // Stolon's new cluster data has an empty `Proxy`: the sentinel names the master to
            // the proxies in a later round.
            proxy: ProxySpec::default(),
            failed: Vec::new(),
        };
        cd.set_master(master);
        cd.follow_master();
        cd
    }

    /// Elects `master` (Stolon's `updateCluster`, "New master elected"): its DB gets the master
    /// role; every other keeper keeps what it had. An old master keeps its master DB spec (and
    /// its server keeps running as a primary) and the standbys keep following it until the new
    /// master is healthy and converged, when `follow_master` repoints them.
    pub fn set_master(&mut self, master: &str) {
        assert!(self.keepers.contains_key(master), "master {master} is not a keeper");
        self.keepers.insert(master.into(), DesiredRole::Master);
        self.master = Some(master.into());
    }

    /// Every keeper but the master follows it; returns those whose role changed, in name order.
    /// Stolon does this once the master's DB is healthy and converged (`updateCluster`, "Set
    /// standbys to follow master only if it's healthy and converged"): it removes the old
    /// masters' DBs (their keepers stop PostgreSQL, keeper.go `postgresKeeperSM`, "no db
    /// assigned"), gives each free healthy keeper a new DB with `initMode: resync`, and points
    /// every standby's `FollowConfig` at the master. pgsim's keeper of an old master told to
    /// follow stops its server and resyncs it, which covers both.
    pub fn follow_master(&mut self) -> Vec<String> {
        let Some(master) = self.master.clone() else { return Vec::new() };
        let mut moved = Vec::new();
        for (name, role) in self.keepers.iter_mut() {
            let want =
                if *name == master { DesiredRole::Master } else { DesiredRole::Standby { follow: master.clone() } };
            if *role != want {
                *role = want;
                moved.push(name.clone());
            }
        }
        moved
    }

    pub fn encode(&self) -> String {
        for name in self
            .keepers
            .keys()
            .chain(&self.synchronous_standbys)
            .chain(&self.in_sync_standbys)
            .chain(&self.master)
            .chain(&self.proxy.master)
            .chain(&self.proxy.enabled)
            .chain(&self.failed)
        {
            assert!(valid_name(name), "keeper name {name:?} cannot be encoded");
        }
        let keepers: Vec<String> = self
            .keepers
            .iter()
            .map(|(k, r)| match r {
                DesiredRole::Master => format!("{k}:master"),
                DesiredRole::Standby { follow } => format!("{k}:standby>{follow}"),
            })
            .collect();
        let role = match self.role {
            ClusterRole::Master => "master".to_string(),
            ClusterRole::Standby { remote_master } => format!("standby>{remote_master}"),
        };
        let s = &self.spec;
        format!(
            "gen={};master={};sync={};insync={};keepers={};role={role};adl={};op={};failms={};syncrep={};minsync={};maxsync={};maxlag={};spec_at={};pgen={};pmaster={};penabled={};failed={}",
            self.generation,
            self.master.as_deref().unwrap_or(""),
            self.synchronous_standbys.join(","),
            self.in_sync_standbys.join(","),
            keepers.join(","),
            self.accept_data_loss as u8,
            stamp(self.applied_op),
            s.fail_interval.as_millis(),
            s.synchronous_replication as u8,
            s.min_synchronous_standbys,
            s.max_synchronous_standbys,
            s.max_standby_lag,
            stamp(self.spec_stamp),
            self.proxy.generation,
            self.proxy.master.as_deref().unwrap_or(""),
            self.proxy.enabled.join(","),
            self.failed.join(","),
        )
    }

    pub fn decode(text: &str) -> Result<ClusterData, DecodeError> {
        let mut f = Fields::parse(text)?;
        let generation = num(f.take("gen")?)?;
        let master = match f.take("master")? {
            "" => None,
            m => Some(name(m)?),
        };
        let synchronous_standbys = list(f.take("sync")?)?.into_iter().map(name).collect::<Result<_, _>>()?;
        let in_sync_standbys = list(f.take("insync")?)?.into_iter().map(name).collect::<Result<_, _>>()?;
        let mut keepers = BTreeMap::new();
        for entry in list(f.take("keepers")?)? {
            let (k, role) = entry.split_once(':').ok_or_else(|| err(format!("keeper entry {entry:?} has no ':'")))?;
            let role = match role {
                "master" => DesiredRole::Master,
                r => match r.strip_prefix("standby>") {
                    Some(follow) => DesiredRole::Standby { follow: name(follow)? },
                    None => return Err(err(format!("unknown keeper role {r:?}"))),
                },
            };
            if keepers.insert(name(k)?, role).is_some() {
                return Err(err(format!("keeper {k} listed twice")));
            }
        }
        let role = match f.take("role")? {
            "master" => ClusterRole::Master,
            r => match r.strip_prefix("standby>") {
                Some(n) => ClusterRole::Standby { remote_master: num(n)? },
                None => return Err(err(format!("unknown cluster role {r:?}"))),
            },
        };
        let accept_data_loss = flag(f.take("adl")?)?;
        let applied_op = parse_stamp(f.take("op")?)?;
        let spec = ClusterSpec {
            fail_interval: Duration::from_millis(num(f.take("failms")?)?),
            synchronous_replication: flag(f.take("syncrep")?)?,
            min_synchronous_standbys: num(f.take("minsync")?)?,
            max_synchronous_standbys: num(f.take("maxsync")?)?,
            max_standby_lag: num(f.take("maxlag")?)?,
        };
        let spec_stamp = parse_stamp(f.take("spec_at")?)?;
        let proxy = ProxySpec {
            generation: num(f.take("pgen")?)?,
            master: match f.take("pmaster")? {
                "" => None,
                m => Some(name(m)?),
            },
            enabled: list(f.take("penabled")?)?.into_iter().map(name).collect::<Result<_, _>>()?,
        };
        let failed: Vec<String> = list(f.take("failed")?)?.into_iter().map(name).collect::<Result<_, _>>()?;
        if failed.windows(2).any(|w| w[0] >= w[1]) {
            return Err(err(format!("failed keepers {failed:?} are not sorted and distinct")));
        }
        f.finish()?;
        let cd = ClusterData {
            generation,
            master,
            synchronous_standbys,
            in_sync_standbys,
            keepers,
            role,
            accept_data_loss,
            applied_op,
            spec,
            spec_stamp,
            proxy,
            failed,
        };
        if let Some(m) = &cd.master
            && cd.keepers.get(m) != Some(&DesiredRole::Master)
        {
            return Err(err(format!("master {m} is not listed as master among the keepers")));
        }
        Ok(cd)
    }
}

/// A keeper's published state (Stolon's KeeperInfo with its PostgresState).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeeperState {
    /// Changes with every publication: the sentinel's proof that the keeper is alive.
    pub uid: u64,
    pub healthy: bool,
    pub role: ServerRole,
    pub tli: u32,
    /// Flushed WAL position in bytes.
    pub xlog_pos: u64,
    pub can_be_master: bool,
    pub can_be_synchronous_replica: bool,
    /// On a primary: the standbys PostgreSQL reports in `sync_state = 'sync'` (Stolon's
    /// PostgresState.SynchronousStandbys).
    pub sync_standbys: Vec<String>,
}

impl KeeperState {
    pub fn encode(&self) -> String {
        for name in &self.sync_standbys {
            assert!(valid_name(name), "standby name {name:?} cannot be encoded");
        }
        format!(
            "uid={};healthy={};role={};tli={};xlog={};cbm={};cbs={};sync={}",
            self.uid,
            self.healthy as u8,
            self.role.as_str(),
            self.tli,
            self.xlog_pos,
            self.can_be_master as u8,
            self.can_be_synchronous_replica as u8,
            self.sync_standbys.join(","),
        )
    }

    pub fn decode(text: &str) -> Result<KeeperState, DecodeError> {
        let mut f = Fields::parse(text)?;
        let uid = num(f.take("uid")?)?;
        let healthy = flag(f.take("healthy")?)?;
        let r = f.take("role")?;
        let role = ServerRole::ALL
            .into_iter()
            .find(|x| x.as_str() == r)
            .ok_or_else(|| err(format!("unknown server role {r:?}")))?;
        let s = KeeperState {
            uid,
            healthy,
            role,
            tli: num(f.take("tli")?)?,
            xlog_pos: num(f.take("xlog")?)?,
            can_be_master: flag(f.take("cbm")?)?,
            can_be_synchronous_replica: flag(f.take("cbs")?)?,
            sync_standbys: list(f.take("sync")?)?.into_iter().map(name).collect::<Result<_, _>>()?,
        };
        f.finish()?;
        Ok(s)
    }
}

/// A proxy's published state (Stolon's ProxyInfo): written at every check that read cluster
/// data naming a proxy generation, so the sentinel knows which generation each proxy has
/// applied (proxy.go `SetProxyInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyInfo {
    /// Changes with every write: the sentinel's proof that the proxy is alive (`InfoUID`).
    pub info_uid: u64,
    /// The `Proxy.Generation` of the cluster data this proxy last applied.
    pub generation: u64,
    /// The proxy's `proxyTimeout`: the sentinel counts it active while its info changed
    /// within twice that.
    pub proxy_timeout_ms: u64,
}

impl ProxyInfo {
    pub fn encode(&self) -> String {
        format!("uid={};gen={};timeoutms={}", self.info_uid, self.generation, self.proxy_timeout_ms)
    }

    pub fn decode(text: &str) -> Result<ProxyInfo, DecodeError> {
        let mut f = Fields::parse(text)?;
        let info = ProxyInfo {
            info_uid: num(f.take("uid")?)?,
            generation: num(f.take("gen")?)?,
            proxy_timeout_ms: num(f.take("timeoutms")?)?,
        };
        f.finish()?;
        Ok(info)
    }
}

fn err(msg: String) -> DecodeError {
    DecodeError(msg)
}

fn stamp(s: OpStamp) -> String {
    format!("{}.{}", s.at_ns, s.seq)
}

fn parse_stamp(v: &str) -> Result<OpStamp, DecodeError> {
    let (a, b) = v.split_once('.').ok_or_else(|| err(format!("stamp {v:?} is not <ns>.<seq>")))?;
    Ok(OpStamp { at_ns: num(a)?, seq: num(b)? })
}

fn num<N: std::str::FromStr>(v: &str) -> Result<N, DecodeError> {
    // FromStr for integers accepts a leading '+'; the encoder never writes one.
    if v.starts_with('+') {
        return Err(err(format!("expected a number, got {v:?}")));
    }
    v.parse().map_err(|_| err(format!("expected a number, got {v:?}")))
}

fn flag(v: &str) -> Result<bool, DecodeError> {
    match v {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(err(format!("expected 0 or 1, got {v:?}"))),
    }
}

fn name(v: &str) -> Result<String, DecodeError> {
    if valid_name(v) { Ok(v.to_string()) } else { Err(err(format!("invalid keeper name {v:?}"))) }
}

fn list(v: &str) -> Result<Vec<&str>, DecodeError> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<&str> = v.split(',').collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(err(format!("empty entry in list {v:?}")));
    }
    Ok(items)
}

/// `key=value;...` with every key exactly once.
struct Fields<'a> {
    map: BTreeMap<&'a str, &'a str>,
}

impl<'a> Fields<'a> {
    fn parse(text: &'a str) -> Result<Fields<'a>, DecodeError> {
        let mut map = BTreeMap::new();
        for part in text.split(';') {
            let (k, v) = part.split_once('=').ok_or_else(|| err(format!("field {part:?} has no '='")))?;
            if map.insert(k, v).is_some() {
                return Err(err(format!("field {k} given twice")));
            }
        }
        Ok(Fields { map })
    }

    fn take(&mut self, key: &str) -> Result<&'a str, DecodeError> {
        self.map.remove(key).ok_or_else(|| err(format!("missing field {key}")))
    }

    fn finish(self) -> Result<(), DecodeError> {
        match self.map.keys().next() {
            Some(k) => Err(err(format!("unknown field {k}"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stolon::FAKE_STANDBY;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn sample() -> ClusterData {
        let mut cd = ClusterData::initial(
            &names(&["pg1", "pg2", "pg3"]),
            "pg1",
            ClusterRole::Standby { remote_master: 7 },
            ClusterSpec { synchronous_replication: true, max_synchronous_standbys: 2, ..ClusterSpec::default() },
        );
        cd.generation = 12;
        cd.set_master("pg2");
        cd.follow_master();
        cd.synchronous_standbys = names(&["pg3", FAKE_STANDBY]);
        cd.in_sync_standbys = names(&["pg3"]);
        cd.accept_data_loss = true;
        cd.applied_op = OpStamp { at_ns: 5_000_000_000, seq: 1 };
        cd.spec_stamp = OpStamp { at_ns: 4, seq: 0 };
        cd.proxy = ProxySpec { generation: 9, master: Some("pg2".into()), enabled: names(&["proxy1", "proxy2"]) };
        cd.failed = names(&["pg1", "pg3"]);
        cd
    }

    #[test]
    fn an_election_names_the_new_master_and_the_others_follow_it_only_when_told() {
        let mut cd =
            ClusterData::initial(&names(&["pg1", "pg2", "pg3"]), "pg1", ClusterRole::Master, ClusterSpec::default());
        cd.set_master("pg2");
        // Stolon's updateCluster: the old master keeps its master DB, the standbys their
        // FollowConfig, until the new master has converged.
        assert_eq!(cd.master.as_deref(), Some("pg2"));
        assert_eq!(cd.keepers["pg1"], DesiredRole::Master, "the old master keeps its master DB spec");
        assert_eq!(cd.keepers["pg2"], DesiredRole::Master);
        assert_eq!(cd.keepers["pg3"], DesiredRole::Standby { follow: "pg1".into() }, "still follows the old master");
        assert_eq!(ClusterData::decode(&cd.encode()), Ok(cd.clone()), "two master DBs encode and decode");
        assert_eq!(cd.follow_master(), names(&["pg1", "pg3"]));
        assert!(cd.keepers.iter().all(|(k, r)| k == "pg2" || *r == DesiredRole::Standby { follow: "pg2".into() }));
        assert!(cd.follow_master().is_empty(), "nothing left to repoint");
    }

    #[test]
    fn cluster_data_round_trips() {
        let cd = sample();
        let text = cd.encode();
        assert!(text.contains("master=pg2;") && text.contains("pg1:standby>pg2"), "{text}");
        assert_eq!(ClusterData::decode(&text), Ok(cd));
        let empty = ClusterData {
            master: None,
            keepers: BTreeMap::new(),
            ..ClusterData::initial(&names(&["a"]), "a", ClusterRole::Master, ClusterSpec::default())
        };
        assert_eq!(ClusterData::decode(&empty.encode()), Ok(empty));
        let info = ProxyInfo { info_uid: 3, generation: 9, proxy_timeout_ms: 15_000 };
        assert_eq!(ProxyInfo::decode(&info.encode()), Ok(info));
        assert!(ProxyInfo::decode("uid=3;gen=9").is_err());
        assert!(ProxyInfo::decode("uid=3;gen=x;timeoutms=1").is_err());
    }

    #[test]
    fn keeper_state_round_trips() {
        for role in ServerRole::ALL {
            let s = KeeperState {
                uid: u64::MAX,
                healthy: role != ServerRole::Fenced,
                role,
                tli: 3,
                xlog_pos: 123_456_789,
                can_be_master: true,
                can_be_synchronous_replica: false,
                sync_standbys: if role == ServerRole::Primary { vec!["pg2".into(), "pg3".into()] } else { vec![] },
            };
            assert_eq!(KeeperState::decode(&s.encode()), Ok(s));
        }
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        let good = sample().encode();
        let state = "uid=1;healthy=1;role=standby;tli=1;xlog=0;cbm=1;cbs=1;sync=";
        assert!(KeeperState::decode(state).is_ok());
        let bad_states = [
            "",
            "uid=1",
            "uid=1;healthy=2;role=standby;tli=1;xlog=0;cbm=1;cbs=1;sync=",
            "uid=-1;healthy=1;role=standby;tli=1;xlog=0;cbm=1;cbs=1;sync=",
            "uid=+1;healthy=1;role=standby;tli=1;xlog=0;cbm=1;cbs=1;sync=",
            "uid=1;healthy=1;role=leader;tli=1;xlog=0;cbm=1;cbs=1;sync=",
            "uid=1;healthy=1;role=standby;tli=1;xlog=0;cbm=1;cbs=1;sync=;extra=1",
            "uid=1;uid=1;healthy=1;role=standby;tli=1;xlog=0;cbm=1;cbs=1;sync=",
            "uid=1;healthy=1;role=standby;tli=99999999999;xlog=0;cbm=1;cbs=1;sync=",
            "uid=1;healthy=1;role=primary;tli=1;xlog=0;cbm=1;cbs=1;sync=a,,b",
            "uid=1;healthy=1;role=primary;tli=1;xlog=0;cbm=1;cbs=1;sync=a b",
        ];
        for s in bad_states {
            assert!(KeeperState::decode(s).is_err(), "accepted {s:?}");
        }
        let bad_data = [
            String::new(),
            "garbage".to_string(),
            state.to_string(),
            good.replace("master=pg2", "master=pg1"), // pg1 is told to be a standby
            good.replace("pg1:standby>pg2", "pg1:leader"),
            good.replace("pg1:standby>pg2", "pg1standby"),
            good.replace("sync=pg3,", "sync=,"),
            good.replace("sync=pg3", "sync=p g3"),
            good.replace("role=standby>7", "role=standby>x"),
            good.replace("op=5000000000.1", "op=5000000000"),
            good.replace("pg3:standby>pg2", "pg2:standby>pg2"),
            good.replace("pmaster=pg2", "pmaster=p g2"),
            good.replace("penabled=proxy1,proxy2", "penabled=proxy1,,proxy2"),
            good.replace("pgen=9", "pgen=-9"),
            good.replace("failed=pg1,pg3", "failed=pg3,pg1"), // not sorted
            good.replace("failed=pg1,pg3", "failed=pg1,pg1"),
            good.replace("failed=pg1,pg3", "failed=pg1,,pg3"),
            good.replace("failed=pg1,pg3", "failed=p g1"),
            good.replace(";failed=pg1,pg3", ""),
            good.clone() + ";",
            good[..good.rfind(';').expect("fields")].to_string(), // the last field missing
        ];
        for s in &bad_data {
            assert!(ClusterData::decode(s).is_err(), "accepted {s:?}");
        }
        // Every truncation of a valid value fails cleanly or is still a valid value.
        for i in 0..good.len() {
            let _ = ClusterData::decode(&good[..i]);
        }
    }
}
