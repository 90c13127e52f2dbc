//! Component sections of a scenario: `[etcd]` (etcd's own flag names), `[etcd_writer]`,
//! `[sim]` switches, and `[[action]]` operator actions on the timeline.

use std::time::Duration;

use models::pg::RebuildMethod;
use serde::Deserialize;

use crate::bounds::{Bounds, DurBounds, days, hours, ms};
use crate::diag::Diagnostic;
use crate::model::NodeIdx;
use crate::raw::{Dur, S};

/// `[etcd]`, spelled as etcd's flags: milliseconds as integers, kebab-case.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEtcd {
    #[serde(rename = "heartbeat-interval")]
    pub heartbeat_interval: Option<S<u64>>,
    #[serde(rename = "election-timeout")]
    pub election_timeout: Option<S<u64>>,
    #[serde(rename = "pre-vote")]
    pub pre_vote: Option<bool>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawWriter {
    /// When the first write goes out (lets the cluster elect its first leader).
    pub start_after: Option<S<Dur>>,
    pub write_interval: Option<S<Dur>>,
    pub request_timeout: Option<S<Dur>>,
}

/// `[etcd_elector]`: clients that elect a leader through a lease-backed key (as Stolon's
/// sentinels do; their session TTL is 20 s).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawElector {
    pub ttl: Option<S<Dur>>,
    pub tick: Option<S<Dur>>,
    pub request_timeout: Option<S<Dur>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ElectorSpec {
    pub ttl_s: u64,
    pub tick: Duration,
    pub request_timeout: Duration,
}

impl Default for ElectorSpec {
    fn default() -> Self {
        ElectorSpec { ttl_s: 20, tick: Duration::from_secs(1), request_timeout: Duration::from_secs(1) }
    }
}

pub(crate) fn elector(path: &str, text: &str, raw: &RawElector) -> Res<ElectorSpec> {
    let d = ElectorSpec::default();
    let ttl_s = match &raw.ttl {
        Some(v) if v.get_ref().0.subsec_nanos() != 0 => {
            return Err(Diagnostic::at(path, text, v.span(), "ttl must be a whole number of seconds, at least 1s"));
        }
        Some(v) => range::ELECTOR_TTL.check(path, text, v)?.as_secs(),
        None => d.ttl_s,
    };
    Ok(ElectorSpec {
        ttl_s,
        tick: range::ELECTOR_TICK.or(path, text, &raw.tick, d.tick)?,
        request_timeout: range::REQUEST_TIMEOUT.or(path, text, &raw.request_timeout, d.request_timeout)?,
    })
}

/// The allowed ranges of this file's settings (see `crate::bounds`).
pub mod range {
    use super::*;
    /// etcd refuses an election timeout above 50 s; its heartbeat must be 5 times shorter.
    pub const HEARTBEAT_INTERVAL_MS: Bounds<u64> = Bounds::new("heartbeat-interval", 1, 10_000);
    pub const ELECTION_TIMEOUT_MS: Bounds<u64> = Bounds::new("election-timeout", 5, 50_000);
    pub const WRITER_START_AFTER: DurBounds = DurBounds::new("start_after", ms(0), days(7));
    pub const WRITE_INTERVAL: DurBounds = DurBounds::new("write_interval", ms(1), hours(1));
    pub const REQUEST_TIMEOUT: DurBounds = DurBounds::new("request_timeout", ms(1), days(1));
    pub const ELECTOR_TTL: DurBounds = DurBounds::new("ttl", Duration::from_secs(1), days(1));
    pub const ELECTOR_TICK: DurBounds = DurBounds::new("tick", ms(1), hours(1));
    pub const ACTION_AT: DurBounds = DurBounds::new("at", ms(0), days(7));
}

/// Simulator-only switches that real systems do not offer.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSim {
    /// etcd always runs Raft with CheckQuorum; turning it off shows why.
    pub check_quorum: Option<bool>,
    /// A bug planted in the models on purpose, to show that a checker or a swarm catches it:
    /// one of `models::planted::PlantedBug::NAMES`.
    pub planted_bug: Option<S<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    pub at: S<Dur>,
    pub kind: S<String>,
    /// move-leader: the member to hand leadership to.
    pub to: Option<S<String>>,
    /// promote, fence, rebuild, follow: the PostgreSQL server acted on.
    pub node: Option<S<String>>,
    /// rebuild, follow: the server to copy from or stream from.
    pub upstream: Option<S<String>>,
    /// rebuild: basebackup, pg_rewind_all_wal or pg_rewind_from_divergence.
    pub method: Option<S<String>>,
    /// promote, force-master: the operator knowingly accepts losing acknowledged commits.
    pub accept_data_loss: Option<bool>,
    /// promote-region: the standby pg_cluster to promote; demote-region, stolonctl-update: the
    /// pg_cluster acted on.
    pub cluster: Option<S<String>>,
    /// demote-region: the cluster whose leader the demoted cluster now follows.
    pub follow: Option<S<String>>,
    /// move-reads, move-writes: the region clients now send them to.
    pub region: Option<S<String>>,
    /// shed-load: the share of the load clients keep sending (0..1).
    pub factor: Option<S<f64>>,
    /// stolonctl-update: the cluster spec keys to change (see spec_patch.rs).
    pub patch: Option<S<crate::spec_patch::RawSpecPatch>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EtcdSpec {
    pub heartbeat_interval: Duration,
    pub election_timeout: Duration,
    pub pre_vote: bool,
}

impl Default for EtcdSpec {
    /// etcd 3.4's defaults.
    fn default() -> Self {
        EtcdSpec {
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            pre_vote: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct WriterSpec {
    pub start_after: Duration,
    pub write_interval: Duration,
    pub request_timeout: Duration,
}

impl Default for WriterSpec {
    fn default() -> Self {
        WriterSpec {
            start_after: Duration::ZERO,
            write_interval: Duration::from_millis(100),
            request_timeout: Duration::from_secs(1),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SimSwitches {
    pub check_quorum: bool,
    pub planted_bug: Option<models::planted::PlantedBug>,
}

impl Default for SimSwitches {
    fn default() -> Self {
        SimSwitches { check_quorum: true, planted_bug: None }
    }
}

pub(crate) fn sim_switches(path: &str, text: &str, raw: &RawSim) -> Res<SimSwitches> {
    let planted_bug = match &raw.planted_bug {
        Some(name) => Some(models::planted::PlantedBug::parse(name.get_ref()).ok_or_else(|| {
            let names = models::planted::PlantedBug::NAMES.join(", ");
            Diagnostic::at(
                path,
                text,
                name.span(),
                format!("unknown planted_bug {:?}; expected one of: {names}", name.get_ref()),
            )
        })?),
        None => None,
    };
    Ok(SimSwitches { check_quorum: raw.check_quorum.unwrap_or(true), planted_bug })
}

#[derive(Clone, Debug, PartialEq)]
pub enum ActionKind {
    /// `etcdctl move-leader`: the current leader hands over to `to`.
    MoveLeader {
        to: NodeIdx,
    },
    /// `pg_ctl promote` on a standby.
    Promote {
        node: NodeIdx,
        accept_data_loss: bool,
    },
    /// Stop a server from accepting writes (fence an old primary).
    Fence {
        node: NodeIdx,
    },
    /// Rebuild a server from `upstream` with pg_basebackup or pg_rewind.
    Rebuild {
        node: NodeIdx,
        upstream: NodeIdx,
        method: RebuildMethod,
    },
    /// Point a standby at another upstream.
    Follow {
        node: NodeIdx,
        upstream: NodeIdx,
    },
    /// `stolonctl failkeeper`: the sentinels treat this keeper as failed (a manual failover, or
    /// a planned switchover when it is the master).
    FailKeeper {
        node: NodeIdx,
    },
    /// Make this keeper the master whatever the sentinel's rules say.
    ForceMaster {
        node: NodeIdx,
        accept_data_loss: bool,
    },
    /// `stolonctl update --patch '{"role": "master"}'` on a standby cluster, and clients send
    /// their writes to its region.
    PromoteRegion {
        cluster: usize,
        accept_data_loss: bool,
    },
    /// `stolonctl update --patch '{"role": "standby", ...}'`: `cluster` becomes a standby cluster
    /// replicating from `follow`'s leader (the old primary region after a planned move).
    DemoteRegion {
        cluster: usize,
        follow: usize,
    },
    /// Clients keep sending this share of their load.
    ShedLoad {
        factor: f64,
    },
    /// Clients send their reads (or writes) to this region's PgBouncers first.
    MoveReads {
        region: usize,
    },
    MoveWrites {
        region: usize,
    },
    /// `stolonctl update --patch '{...}'`: the sentinels of `cluster` decide with the spec in
    /// force changed by `patch` from now on.
    StolonctlUpdate {
        cluster: usize,
        patch: crate::spec_patch::SpecPatch,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub at: Duration,
    pub line: usize,
    pub kind: ActionKind,
}

type Res<T> = Result<T, Diagnostic>;

pub(crate) fn etcd(path: &str, text: &str, raw: &RawEtcd) -> Res<EtcdSpec> {
    let d = EtcdSpec::default();
    let ms = |v: &Option<S<u64>>, default: Duration, b: Bounds<u64>| -> Res<Duration> {
        Ok(Duration::from_millis(b.or(path, text, v, default.as_millis() as u64)?))
    };
    let hb = ms(&raw.heartbeat_interval, d.heartbeat_interval, range::HEARTBEAT_INTERVAL_MS)?;
    let et = ms(&raw.election_timeout, d.election_timeout, range::ELECTION_TIMEOUT_MS)?;
    if et < hb * 5 {
        // etcd refuses to start with this (it would elect leaders on every jitter).
        let span = raw.election_timeout.as_ref().or(raw.heartbeat_interval.as_ref()).map_or(0..0, |v| v.span());
        return Err(Diagnostic::at(
            path,
            text,
            span,
            format!(
                "election-timeout ({} ms) must be at least 5 times heartbeat-interval ({} ms), as etcd requires",
                et.as_millis(),
                hb.as_millis()
            ),
        ));
    }
    Ok(EtcdSpec { heartbeat_interval: hb, election_timeout: et, pre_vote: raw.pre_vote.unwrap_or(d.pre_vote) })
}

pub(crate) fn writer(path: &str, text: &str, raw: &RawWriter) -> Res<WriterSpec> {
    let d = WriterSpec::default();
    Ok(WriterSpec {
        start_after: range::WRITER_START_AFTER.or(path, text, &raw.start_after, d.start_after)?,
        write_interval: range::WRITE_INTERVAL.or(path, text, &raw.write_interval, d.write_interval)?,
        request_timeout: range::REQUEST_TIMEOUT.or(path, text, &raw.request_timeout, d.request_timeout)?,
    })
}

/// What an action's names are resolved against.
pub(crate) struct ActionNames<'a> {
    pub nodes: &'a [String],
    pub clusters: &'a [String],
    pub regions: &'a [String],
    /// Per cluster: whether sentinels manage it (stolonctl talks to them).
    pub managed: &'a [bool],
}

/// The action kinds `action` below accepts, for its error message (keep in step with its match).
const ACTION_KINDS: [&str; 13] = [
    "move-leader",
    "promote",
    "fence",
    "rebuild",
    "follow",
    "failkeeper",
    "force-master",
    "promote-region",
    "demote-region",
    "move-reads",
    "move-writes",
    "shed-load",
    "stolonctl-update",
];

pub(crate) fn action(
    path: &str,
    text: &str,
    lines: &crate::diag::LineIndex,
    raw: &S<RawAction>,
    names: &ActionNames<'_>,
    is_etcd: impl Fn(usize) -> bool,
    is_pg: impl Fn(usize) -> bool,
) -> Res<Action> {
    let a = raw.get_ref();
    let line = lines.line_of(raw.span().start);
    let cx = ActionCx { path, text, a, names, is_etcd: &is_etcd, is_pg: &is_pg };
    if let Some(p) = &a.patch
        && cx.kind_name() != "stolonctl-update"
    {
        return cx.err(p.span(), format!("action kind {:?} does not take `patch`", cx.kind_name()));
    }
    let kind = cx.kind()?;
    Ok(Action { at: range::ACTION_AT.check(path, text, &a.at)?, line, kind })
}

/// One `[[action]]` being read, and what its names resolve against.
struct ActionCx<'a> {
    path: &'a str,
    text: &'a str,
    a: &'a RawAction,
    names: &'a ActionNames<'a>,
    is_etcd: &'a dyn Fn(usize) -> bool,
    is_pg: &'a dyn Fn(usize) -> bool,
}

impl ActionCx<'_> {
    fn err<T>(&self, span: std::ops::Range<usize>, msg: impl Into<String>) -> Res<T> {
        Err(Diagnostic::at(self.path, self.text, span, msg))
    }

    fn kind_name(&self) -> &str {
        self.a.kind.get_ref().as_str()
    }

    fn kind(&self) -> Res<ActionKind> {
        let a = self.a;
        let accept_data_loss = a.accept_data_loss.unwrap_or(false);
        Ok(match self.kind_name() {
            "move-leader" => ActionKind::MoveLeader { to: self.member(&a.to, "to")? },
            "promote" => ActionKind::Promote { node: self.server(&a.node, "node")?, accept_data_loss },
            "fence" => ActionKind::Fence { node: self.server(&a.node, "node")? },
            "follow" => ActionKind::Follow {
                node: self.server(&a.node, "node")?,
                upstream: self.server(&a.upstream, "upstream")?,
            },
            "rebuild" => self.rebuild()?,
            "failkeeper" => ActionKind::FailKeeper { node: self.server(&a.node, "node")? },
            "force-master" => ActionKind::ForceMaster { node: self.server(&a.node, "node")?, accept_data_loss },
            "promote-region" => {
                let c = self.need(&a.cluster, "cluster")?;
                ActionKind::PromoteRegion {
                    cluster: self.find(self.names.clusters, &c, "pg_cluster")?,
                    accept_data_loss,
                }
            }
            "demote-region" => self.demote_region()?,
            "move-reads" | "move-writes" => {
                let r = self.need(&a.region, "region")?;
                let region = self.find(self.names.regions, &r, "region")?;
                if self.kind_name() == "move-reads" {
                    ActionKind::MoveReads { region }
                } else {
                    ActionKind::MoveWrites { region }
                }
            }
            "stolonctl-update" => self.stolonctl_update()?,
            "shed-load" => self.shed_load()?,
            other => {
                return self.err(
                    a.kind.span(),
                    format!(
                        "unknown action kind {other:?}{}; expected one of: {}",
                        crate::lint::hint(other, ACTION_KINDS),
                        ACTION_KINDS.join(", ")
                    ),
                );
            }
        })
    }

    /// A field this kind of action needs.
    fn need(&self, field: &Option<S<String>>, what: &str) -> Res<S<String>> {
        match field {
            Some(v) => Ok(v.clone()),
            None => self.err(self.a.kind.span(), format!("{} needs `{what}`", self.kind_name())),
        }
    }

    fn find(&self, table: &[String], n: &S<String>, what: &str) -> Res<usize> {
        find(self.path, self.text, table, n, what)
    }

    /// A PostgreSQL server the action names in `field`.
    fn server(&self, field: &Option<S<String>>, what: &str) -> Res<NodeIdx> {
        self.node_of(&self.need(field, what)?, true)
    }

    /// An etcd member the action names in `field`.
    fn member(&self, field: &Option<S<String>>, what: &str) -> Res<NodeIdx> {
        self.node_of(&self.need(field, what)?, false)
    }

    fn node_of(&self, n: &S<String>, pg: bool) -> Res<NodeIdx> {
        let node_names = self.names.nodes;
        let Some(i) = node_names.iter().position(|x| x == n.get_ref()) else {
            let near = crate::lint::hint(n.get_ref(), node_names.iter().map(String::as_str));
            return self.err(n.span(), format!("unknown node {:?}{near}", n.get_ref()));
        };
        if pg && !(self.is_pg)(i) {
            return self.err(n.span(), format!("{:?} is not a postgres node", n.get_ref()));
        }
        if !pg && !(self.is_etcd)(i) {
            return self.err(n.span(), format!("{:?} is not an etcd member", n.get_ref()));
        }
        Ok(i as NodeIdx)
    }

    fn rebuild(&self) -> Res<ActionKind> {
        let a = self.a;
        let method = self.need(&a.method, "method")?;
        let methods = RebuildMethod::ALL.map(RebuildMethod::as_str);
        let Some(parsed) = RebuildMethod::parse(method.get_ref()) else {
            return self.err(
                method.span(),
                format!(
                    "unknown rebuild method {:?}{}; expected one of: {}",
                    method.get_ref(),
                    crate::lint::hint(method.get_ref(), methods),
                    methods.join(", ")
                ),
            );
        };
        Ok(ActionKind::Rebuild {
            node: self.server(&a.node, "node")?,
            upstream: self.server(&a.upstream, "upstream")?,
            method: parsed,
        })
    }

    fn demote_region(&self) -> Res<ActionKind> {
        let c = self.need(&self.a.cluster, "cluster")?;
        let f = self.need(&self.a.follow, "follow")?;
        let cluster = self.find(self.names.clusters, &c, "pg_cluster")?;
        let follow = self.find(self.names.clusters, &f, "pg_cluster")?;
        if cluster == follow {
            return self.err(f.span(), "a cluster cannot follow itself");
        }
        Ok(ActionKind::DemoteRegion { cluster, follow })
    }

    fn stolonctl_update(&self) -> Res<ActionKind> {
        let c = self.need(&self.a.cluster, "cluster")?;
        let cluster = self.find(self.names.clusters, &c, "pg_cluster")?;
        if !self.names.managed[cluster] {
            return self.err(
                c.span(),
                format!("pg_cluster {:?} has no stolon-sentinel: there is no Stolon cluster to update", c.get_ref()),
            );
        }
        let Some(p) = &self.a.patch else {
            return self.err(self.a.kind.span(), "stolonctl-update needs `patch`");
        };
        Ok(ActionKind::StolonctlUpdate { cluster, patch: crate::spec_patch::patch(self.path, self.text, p)? })
    }

    fn shed_load(&self) -> Res<ActionKind> {
        let Some(f) = &self.a.factor else {
            return self.err(self.a.kind.span(), "shed-load needs `factor`");
        };
        if !(0.0..=1.0).contains(f.get_ref()) {
            return self.err(f.span(), "factor must be between 0 and 1");
        }
        Ok(ActionKind::ShedLoad { factor: *f.get_ref() })
    }
}

fn find(path: &str, text: &str, table: &[String], n: &S<String>, what: &str) -> Res<usize> {
    table.iter().position(|x| x == n.get_ref()).ok_or_else(|| {
        let near = crate::lint::hint(n.get_ref(), table.iter().map(String::as_str));
        Diagnostic::at(
            path,
            text,
            n.span(),
            format!("unknown {what} {:?}{near}; known: {}", n.get_ref(), table.join(", ")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::ACTION_KINDS;

    /// `ACTION_KINDS` (the list the error message and its "did you mean" offer) and the match
    /// in `action` must name the same kinds: every listed kind is recognised (it may still miss
    /// its fields), and a kind not listed is not.
    #[test]
    fn the_listed_action_kinds_are_the_ones_the_match_accepts() {
        let stack = include_str!("../../stack-primary-crash.toml");
        let parse = |kind: &str| {
            let text = format!("{stack}\n[[action]]\nat = \"1s\"\nkind = \"{kind}\"\n");
            crate::parse_str("kinds.toml", &text).err().map(|d| d.to_string())
        };
        for kind in ACTION_KINDS {
            if let Some(e) = parse(kind) {
                assert!(!e.contains("unknown action kind"), "{kind}: {e}");
            }
        }
        let e = parse("not-a-kind").expect("an unknown kind is rejected");
        assert!(e.contains("unknown action kind"), "{e}");
    }
}
