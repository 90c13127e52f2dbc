//! The validated scenario: names resolved to indices, defaults filled in, units converted.
//! This is what the simulator consumes.

use std::time::Duration;

pub type NodeIdx = u32;

#[derive(Clone, Debug)]
pub struct Scenario {
    /// Path as given by the user (for messages and replay commands).
    pub path: String,
    /// FNV-1a 64 of the file's bytes, as 16 hex digits.
    pub source_hash: String,
    pub name: String,
    pub description: String,
    pub duration: Duration,
    pub seed: u64,
    pub network: NetworkDefaults,
    pub regions: Vec<Region>,
    pub region_links: Vec<RegionLink>,
    pub switches: Vec<Switch>,
    pub racks: Vec<Rack>,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    pub probe: ProbeSpec,
    pub faults: Vec<Fault>,
    pub asserts: Vec<Assertion>,
    pub etcd: crate::EtcdSpec,
    pub etcd_writer: crate::WriterSpec,
    pub etcd_elector: crate::components::ElectorSpec,
    pub sim: crate::SimSwitches,
    pub postgres: crate::PgSettings,
    pub pg_clusters: Vec<crate::ClusterSpec>,
    pub actions: Vec<crate::Action>,
    pub stolon: crate::StolonSpec,
    pub haproxy: crate::HaproxySpec,
    pub pgbouncer: crate::PgbouncerSpec,
    pub workload: crate::WorkloadSpec,
    pub tenants: Vec<crate::TenantSpec>,
    pub swarm: crate::swarm::SwarmSpec,
}

impl Scenario {
    /// The server a PostgreSQL cluster starts with as its master: its primary, or, for a
    /// standby cluster, the server that streams from the primary cluster (its standby leader).
    pub fn cluster_leader(&self, cluster: usize) -> NodeIdx {
        let standby_of = self.pg_clusters[cluster].standby_of;
        let in_cluster = |n: u32, c: usize| self.nodes[n as usize].pg.as_ref().is_some_and(|p| p.cluster == c);
        (0..self.nodes.len() as NodeIdx)
            .find(|&i| {
                self.nodes[i as usize].pg.as_ref().is_some_and(|p| {
                    p.cluster == cluster
                        && match standby_of {
                            None => p.upstream.is_none(),
                            Some(m) => p.upstream.is_some_and(|u| in_cluster(u, m)),
                        }
                })
            })
            .expect("validated: every cluster has a leader")
    }

    /// The Stolon cluster spec of `cluster` once action `action` (a stolonctl-update of it) is
    /// done: `[stolon]` with that patch and every earlier one of the cluster applied.
    pub fn stolon_spec_after(&self, cluster: usize, action: usize) -> crate::StolonSpec {
        crate::spec_patch::in_force_after(&self.stolon, &self.actions, cluster, action)
    }
}

#[derive(Clone, Debug)]
pub struct NetworkDefaults {
    pub switch_latency: Duration,
    pub region_latency: Duration,
    pub jitter: Duration,
    pub loss_ratio: f64,
}

impl Default for NetworkDefaults {
    fn default() -> Self {
        NetworkDefaults {
            switch_latency: Duration::from_micros(100),
            region_latency: Duration::from_micros(250),
            jitter: Duration::from_micros(50),
            loss_ratio: 0.0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Region {
    pub name: String,
    pub core_switch: usize,
}

#[derive(Clone, Debug)]
pub struct RegionLink {
    pub a: usize,
    pub b: usize,
    pub latency: Duration,
    pub jitter: Duration,
    pub loss_ratio: f64,
    pub bandwidth_bytes_per_s: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchRole {
    /// Top of rack: ports are its nodes and "uplink".
    Tor,
    /// A region's core: ports are the region's ToR switches and "wan".
    Core,
}

#[derive(Clone, Debug)]
pub struct Switch {
    pub name: String,
    pub region: usize,
    pub role: SwitchRole,
}

#[derive(Clone, Debug)]
pub struct Rack {
    pub name: String,
    pub region: usize,
    pub switch: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Probe,
    Etcd,
    EtcdWriter,
    EtcdElector,
    Postgres,
    StolonSentinel,
    StolonProxy,
    Haproxy,
    Pgbouncer,
    Clients,
}

impl NodeKind {
    pub const NAMES: &'static [&'static str] = &[
        "probe",
        "etcd",
        "etcd-writer",
        "etcd-elector",
        "postgres",
        "stolon-sentinel",
        "stolon-proxy",
        "haproxy",
        "pgbouncer",
        "clients",
    ];
    pub const ALL: [NodeKind; 10] = [
        NodeKind::Probe,
        NodeKind::Etcd,
        NodeKind::EtcdWriter,
        NodeKind::EtcdElector,
        NodeKind::Postgres,
        NodeKind::StolonSentinel,
        NodeKind::StolonProxy,
        NodeKind::Haproxy,
        NodeKind::Pgbouncer,
        NodeKind::Clients,
    ];
    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|k| *k == self).expect("listed")]
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub rack: usize,
    pub region: usize,
    pub switch: usize,
    pub kind: NodeKind,
    pub disk: DiskSpec,
    /// Set for `postgres` nodes.
    pub pg: Option<crate::PgNodeSpec>,
    /// Set for the stack's node kinds (sentinels, proxies, HAProxy, PgBouncer, clients).
    pub stack: Option<crate::StackRole>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DiskSpec {
    pub fsync_latency: Duration,
    pub fsync_jitter: Duration,
    pub read_bytes_per_s: u64,
    pub write_bytes_per_s: u64,
}

impl Default for DiskSpec {
    /// A datacentre NVMe drive with power-loss protection.
    fn default() -> Self {
        DiskSpec {
            fsync_latency: Duration::from_micros(500),
            fsync_jitter: Duration::from_micros(500),
            read_bytes_per_s: 2_000_000_000,
            write_bytes_per_s: 1_000_000_000,
        }
    }
}

/// Overrides the path between two nodes, in one direction.
#[derive(Clone, Debug)]
pub struct Link {
    pub from: NodeIdx,
    pub to: NodeIdx,
    pub latency: Option<Duration>,
    pub jitter: Option<Duration>,
    pub loss_ratio: f64,
    pub bandwidth_bytes_per_s: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct ProbeSpec {
    pub interval: Duration,
    pub timeout: Duration,
    pub payload_bytes: u64,
    pub fsync_interval: Option<Duration>,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        ProbeSpec {
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            payload_bytes: 64,
            fsync_interval: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub index: u32,
    /// 1-based line of the `[[fault]]` table, for messages.
    pub line: usize,
    pub at: Duration,
    /// When the fault heals; `None` = never.
    pub until: Option<Duration>,
    pub kind: FaultKind,
}

/// A port of a switch: a node (on a ToR), a ToR switch (on a core), "uplink" or "wan".
pub type PortName = String;

#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    Partition {
        from: Vec<NodeIdx>,
        to: Vec<NodeIdx>,
        one_way: bool,
    },
    LinkDown {
        a: NodeIdx,
        b: NodeIdx,
        one_way: bool,
    },
    LinkDegraded {
        a: NodeIdx,
        b: NodeIdx,
        one_way: bool,
        loss_ratio: f64,
        extra_latency: Duration,
        /// Each message is held a further uniform 0..extra_jitter, so messages sent closer
        /// together than that may arrive out of order (netem's `delay 0 J`).
        extra_jitter: Duration,
        /// The share of messages delivered twice, the copy up to a jitter later (netem's
        /// `duplicate`).
        duplicate_ratio: f64,
    },
    LinkFlapping {
        a: NodeIdx,
        b: NodeIdx,
        one_way: bool,
        period: Duration,
        down_for: Duration,
    },
    SwitchDown {
        switch: usize,
    },
    /// Drops `loss_ratio` of the packets crossing it; only between these port pairs if any.
    SwitchDegraded {
        switch: usize,
        loss_ratio: f64,
        ports: Vec<(PortName, PortName)>,
    },
    SwitchFlapping {
        switch: usize,
        period: Duration,
        down_for: Duration,
    },
    /// Crash; restarts when the fault heals. `Scope::Host` (`node-crash`): the host is gone
    /// and silent; `Scope::Process` (`process-crash`): only the process, so its kernel answers
    /// connection attempts with RST.
    NodeCrash {
        node: NodeIdx,
        scope: Scope,
    },
    /// Frozen until the fault heals. `Scope::Host` (`node-pause`, a VM freeze): silent;
    /// `Scope::Process` (`process-pause`, SIGSTOP): its kernel still completes TCP handshakes
    /// into the listen backlog, so connect-only health checks pass.
    NodePause {
        node: NodeIdx,
        scope: Scope,
    },
    /// fsyncs and writes hang until the fault heals.
    DiskStall {
        node: NodeIdx,
    },
    DiskErrors {
        node: NodeIdx,
        error_ratio: f64,
    },
    DiskFull {
        node: NodeIdx,
    },
    /// Disk latencies multiplied, throughputs divided, by `factor`.
    DiskSlow {
        node: NodeIdx,
        factor: f64,
    },
    /// A standby replays WAL `factor` times slower (replay conflicts, a slow disk for replay).
    ApplySlow {
        node: NodeIdx,
        factor: f64,
    },
    /// A standby's walreceiver stops taking WAL (and sending feedback) until the fault heals.
    WalReceiverPause {
        node: NodeIdx,
    },
}

/// What a crash or pause takes down: the whole host, or only the process on a host that
/// stays up (whose kernel still answers TCP: RST for a dead process, handshakes for a stopped
/// one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Host,
    Process,
}

impl FaultKind {
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Partition { .. } => "partition",
            FaultKind::LinkDown { .. } => "link-down",
            FaultKind::LinkDegraded { .. } => "link-degraded",
            FaultKind::LinkFlapping { .. } => "link-flapping",
            FaultKind::SwitchDown { .. } => "switch-down",
            FaultKind::SwitchDegraded { .. } => "switch-degraded",
            FaultKind::SwitchFlapping { .. } => "switch-flapping",
            FaultKind::NodeCrash { scope: Scope::Host, .. } => "node-crash",
            FaultKind::NodeCrash { scope: Scope::Process, .. } => "process-crash",
            FaultKind::NodePause { scope: Scope::Host, .. } => "node-pause",
            FaultKind::NodePause { scope: Scope::Process, .. } => "process-pause",
            FaultKind::DiskStall { .. } => "disk-stall",
            FaultKind::DiskErrors { .. } => "disk-errors",
            FaultKind::DiskFull { .. } => "disk-full",
            FaultKind::DiskSlow { .. } => "disk-slow",
            FaultKind::ApplySlow { .. } => "apply-slow",
            FaultKind::WalReceiverPause { .. } => "walreceiver-pause",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Assertion {
    pub name: String,
    pub line: usize,
    /// Dotted path into summary.json, e.g. `probe.pairs.a1->b1.loss_ratio`.
    pub metric: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub equals: Option<f64>,
    /// A short name other assertions' `if` refer to.
    pub id: Option<String>,
    /// `if`: checked only in runs where the assertion with this id held (a consequence of
    /// something that happens in most seeds, not all); skipped in the others.
    pub given: Option<String>,
    /// The share of a sweep's seeds in which it must hold (1 = every seed, the default). A run
    /// in which it does not hold still passes; `pgsim check` judges the share over its seeds.
    pub share_of_seeds: f64,
}

impl Assertion {
    /// An assertion on `metric` that every seed must pass.
    pub fn new(name: &str, metric: &str, min: Option<f64>, max: Option<f64>, equals: Option<f64>) -> Assertion {
        Assertion {
            name: name.into(),
            line: 0,
            metric: metric.into(),
            min,
            max,
            equals,
            id: None,
            given: None,
            share_of_seeds: 1.0,
        }
    }

    /// Whether it must hold in only a share of the seeds.
    pub fn is_share(&self) -> bool {
        self.share_of_seeds < 1.0
    }
}
