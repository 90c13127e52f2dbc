//! The scenario file as written: serde structs that mirror the TOML, with spans kept on every
//! value that validation may need to point at. Unknown keys are errors everywhere.

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::units;

/// A duration written as "100ms", "5s", "1h30m".
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dur(pub std::time::Duration);

/// A size written as "64B", "1MiB", "1.5TB".
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Size(pub u64);

/// A bandwidth written as "125MB/s" or "10Gbit/s", in bytes per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bandwidth(pub u64);

macro_rules! unit_deserialize {
    ($ty:ident, $parse:path, $what:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$ty, E> {
                        $parse(s).map($ty).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}
unit_deserialize!(Dur, units::parse_duration, "a duration string such as \"100ms\" or \"5s\"");
unit_deserialize!(Size, units::parse_size, "a size string such as \"64B\" or \"1MiB\"");
unit_deserialize!(Bandwidth, units::parse_bandwidth, "a bandwidth string such as \"125MB/s\"");

pub type S<T> = Spanned<T>;

/// `ports = [["a", "b"], ...]` of a switch fault.
pub type PortPairs = S<Vec<S<Vec<S<String>>>>>;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub scenario: S<RawHeader>,
    #[serde(default)]
    pub network: RawNetwork,
    #[serde(default)]
    pub disk: RawDisk,
    #[serde(default, rename = "region")]
    pub regions: Vec<S<RawRegion>>,
    #[serde(default, rename = "region_link")]
    pub region_links: Vec<S<RawRegionLink>>,
    #[serde(default, rename = "rack")]
    pub racks: Vec<S<RawRack>>,
    #[serde(default, rename = "node")]
    pub nodes: Vec<S<RawNode>>,
    #[serde(default, rename = "link")]
    pub links: Vec<S<RawLink>>,
    #[serde(default)]
    pub probe: Option<RawProbe>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<S<RawFault>>,
    #[serde(default, rename = "assert")]
    pub asserts: Vec<S<RawAssert>>,
    #[serde(default)]
    pub etcd: crate::components::RawEtcd,
    #[serde(default)]
    pub etcd_writer: crate::components::RawWriter,
    #[serde(default)]
    pub etcd_elector: crate::components::RawElector,
    #[serde(default)]
    pub postgres: crate::postgres::RawPostgres,
    #[serde(default, rename = "pg_cluster")]
    pub pg_clusters: Vec<S<crate::postgres::RawCluster>>,
    #[serde(default)]
    pub sim: crate::components::RawSim,
    #[serde(default, rename = "action")]
    pub actions: Vec<S<crate::components::RawAction>>,
    #[serde(default)]
    pub stolon: crate::stack::RawStolon,
    #[serde(default)]
    pub haproxy: crate::stack::RawHaproxy,
    #[serde(default)]
    pub pgbouncer: crate::stack::RawPgbouncer,
    #[serde(default)]
    pub workload: crate::stack::RawWorkload,
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<S<crate::stack::RawTenant>>,
    #[serde(default)]
    pub swarm: crate::swarm::RawSwarm,
}

/// The allowed ranges of this file's settings (see `crate::bounds`). A scenario lasts at most a
/// week of simulated time; latencies are at least 1 us, since the engine's lookahead window is
/// the shortest one.
pub mod range {
    use crate::bounds::{Bounds, DurBounds, days, hours, ms, secs, us};
    pub const DURATION: DurBounds = DurBounds::new("scenario duration", ms(1), days(7));
    pub const LATENCY: DurBounds = DurBounds::new("latency", us(1), secs(60));
    pub const JITTER: DurBounds = DurBounds::new("jitter", ms(0), secs(60));
    pub const FSYNC_LATENCY: DurBounds = DurBounds::new("fsync_latency", us(1), secs(60));
    pub const FSYNC_JITTER: DurBounds = DurBounds::new("fsync_jitter", ms(0), secs(60));
    /// Bytes per second (1 byte/s is the unit parser's own floor).
    pub const BANDWIDTH: Bounds<u64> = Bounds::new("bandwidth (bytes/s)", 1, 1_000_000_000_000);
    pub const PROBE_INTERVAL: DurBounds = DurBounds::new("probe interval", ms(1), hours(1));
    pub const PROBE_TIMEOUT: DurBounds = DurBounds::new("probe timeout", us(1), days(1));
    pub const PROBE_PAYLOAD: Bounds<u64> = Bounds::new("payload (bytes)", 0, 1_000_000_000);
    pub const FSYNC_INTERVAL: DurBounds = DurBounds::new("fsync_interval", ms(1), hours(1));
    // [[fault]]
    pub const FAULT_AT: DurBounds = DurBounds::new("at", ms(0), days(7));
    pub const FAULT_FOR: DurBounds = DurBounds::new("for", us(1), days(7));
    pub const FAULT_UNTIL: DurBounds = DurBounds::new("until", us(1), days(7));
    pub const EXTRA_LATENCY: DurBounds = DurBounds::new("extra_latency", ms(0), hours(1));
    pub const EXTRA_JITTER: DurBounds = DurBounds::new("extra_jitter", ms(0), hours(1));
    /// A flapping link or switch changes state twice a period: at most 2,000 times a second.
    pub const PERIOD: DurBounds = DurBounds::new("period", ms(1), days(1));
    pub const DOWN_FOR: DurBounds = DurBounds::new("down_for", us(1), days(1));
    pub const SLOW_FACTOR: Bounds<f64> = Bounds::new("factor", 1.0, 1e6);
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    pub name: S<String>,
    #[serde(default)]
    pub description: String,
    pub duration: S<Dur>,
    #[serde(default)]
    pub seed: u64,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// One-way latency between two nodes behind the same switch.
    pub switch_latency: Option<S<Dur>>,
    /// One-way latency between two nodes of a region behind different switches.
    pub region_latency: Option<S<Dur>>,
    /// Uniform extra delay in [0, jitter] on paths inside a region.
    pub jitter: Option<S<Dur>>,
    pub loss_ratio: Option<S<f64>>,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawDisk {
    pub fsync_latency: Option<S<Dur>>,
    pub fsync_jitter: Option<S<Dur>>,
    pub read_throughput: Option<S<Bandwidth>>,
    pub write_throughput: Option<S<Bandwidth>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    pub name: S<String>,
    /// Name of the region's core switch (default "<region>-core").
    pub core_switch: Option<S<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawRegionLink {
    pub between: S<Vec<S<String>>>,
    pub latency: S<Dur>,
    pub jitter: Option<S<Dur>>,
    pub loss_ratio: Option<S<f64>>,
    /// Shared by all traffic in each direction between the two regions.
    pub bandwidth: Option<S<Bandwidth>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawRack {
    pub name: S<String>,
    pub region: S<String>,
    /// The rack's top-of-rack switch (default "<rack>-tor"); racks may share one.
    pub switch: Option<S<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: S<String>,
    pub rack: S<String>,
    pub kind: S<String>,
    #[serde(default)]
    pub disk: RawDisk,
    pub postgres: Option<S<crate::postgres::RawPgNode>>,
    /// The table of a stack node kind: `[node.stolon]` (sentinels and proxies),
    /// `[node.haproxy]`, `[node.pgbouncer]`, `[node.clients]`.
    pub stolon: Option<S<crate::stack::RawStackNode>>,
    pub haproxy: Option<S<crate::stack::RawStackNode>>,
    pub pgbouncer: Option<S<crate::stack::RawStackNode>>,
    pub clients: Option<S<crate::stack::RawStackNode>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    /// Both directions between two nodes...
    pub between: Option<S<Vec<S<String>>>>,
    /// ...or one direction.
    pub from: Option<S<String>>,
    pub to: Option<S<String>>,
    /// Replaces the path's one-way latency.
    pub latency: Option<S<Dur>>,
    pub jitter: Option<S<Dur>>,
    /// Added to the path's loss.
    pub loss_ratio: Option<S<f64>>,
    pub bandwidth: Option<S<Bandwidth>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub interval: Option<S<Dur>>,
    pub timeout: Option<S<Dur>>,
    pub payload: Option<S<Size>>,
    pub fsync_interval: Option<S<Dur>>,
}

/// Every fault field; which ones a kind takes is checked in validation, so that a stray field
/// is reported at its own position.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    pub at: S<Dur>,
    #[serde(rename = "for")]
    pub for_: Option<S<Dur>>,
    pub until: Option<S<Dur>>,
    pub kind: S<String>,
    pub node: Option<S<String>>,
    pub switch: Option<S<String>>,
    pub between: Option<S<Vec<S<String>>>>,
    pub from: Option<S<Vec<S<String>>>>,
    pub to: Option<S<Vec<S<String>>>>,
    pub one_way: Option<S<bool>>,
    pub ports: Option<PortPairs>,
    pub loss_ratio: Option<S<f64>>,
    pub extra_latency: Option<S<Dur>>,
    pub extra_jitter: Option<S<Dur>>,
    pub duplicate_ratio: Option<S<f64>>,
    pub period: Option<S<Dur>>,
    pub down_for: Option<S<Dur>>,
    pub factor: Option<S<f64>>,
    pub error_ratio: Option<S<f64>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawAssert {
    pub name: S<String>,
    pub metric: S<String>,
    pub min: Option<S<f64>>,
    pub max: Option<S<f64>>,
    pub equals: Option<S<f64>>,
    pub id: Option<S<String>>,
    #[serde(rename = "if")]
    pub given: Option<S<String>>,
    pub share_of_seeds: Option<S<f64>>,
}
