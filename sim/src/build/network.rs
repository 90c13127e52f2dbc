//! The network from the scenario's topology: one path per ordered pair of nodes, with the
//! switches it crosses (and by which ports), its latency, jitter and loss, and the bandwidth it
//! shares; what a rebuild can copy between two servers over it; and the probes that measure it.

use std::collections::BTreeMap;
use std::time::Duration;

use models::NodeId;
use models::probe::ProbeConfig;
use scenarios::{NodeKind, Scenario};

use crate::net::{Hop, Network, PathSpec, Topology};

pub fn network(sc: &Scenario, seed: u64) -> Network {
    Network::new(topology(sc), seed)
}

fn topology(sc: &Scenario) -> Topology {
    let n = sc.nodes.len();
    let switch_ports: Vec<Vec<String>> =
        (0..sc.switches.len()).map(|s| scenarios::switch_ports(&sc.nodes, &sc.switches, s)).collect();
    let mut bandwidth = Bandwidth::of_region_links(sc);
    let mut paths = Vec::with_capacity(n * n);
    for from in 0..n {
        for to in 0..n {
            let mut path = base_path(sc, &bandwidth, from, to);
            path.hops = if from == to { Vec::new() } else { hops(sc, &switch_ports, from, to) };
            link_overrides(sc, from, to, &mut path, &mut bandwidth);
            paths.push(path);
        }
    }
    Topology {
        nodes: n,
        switch_names: sc.switches.iter().map(|s| s.name.clone()).collect(),
        switch_ports,
        paths,
        bandwidth_resources: bandwidth.resources,
    }
}

/// The shared bandwidth resources: one per direction of each bandwidth-limited region link,
/// then one per bandwidth-limited `[[link]]` override.
struct Bandwidth {
    resources: usize,
    /// (from region, to region) -> (resource, bytes per second).
    region: BTreeMap<(usize, usize), (usize, u64)>,
}

impl Bandwidth {
    fn of_region_links(sc: &Scenario) -> Bandwidth {
        let mut b = Bandwidth { resources: 0, region: BTreeMap::new() };
        for l in &sc.region_links {
            if let Some(bw) = l.bandwidth_bytes_per_s {
                b.region.insert((l.a, l.b), (b.resources, bw));
                b.region.insert((l.b, l.a), (b.resources + 1, bw));
                b.resources += 2;
            }
        }
        b
    }
}

/// A path's latency, jitter, loss and bandwidth from `[network]` and the region links, before
/// any `[[link]]` override (no hops yet). A path to itself is never used: models do not
/// message themselves.
fn base_path(sc: &Scenario, bandwidth: &Bandwidth, from: usize, to: usize) -> PathSpec {
    let (a, b) = (&sc.nodes[from], &sc.nodes[to]);
    let net = &sc.network;
    let (mut latency, mut jitter, mut loss, mut shared) = (net.switch_latency, net.jitter, net.loss_ratio, None);
    let crosses_switches = from != to && a.switch != b.switch;
    if crosses_switches && a.region == b.region {
        latency = net.region_latency;
    } else if crosses_switches {
        let rl = sc
            .region_links
            .iter()
            .find(|l| (l.a, l.b) == (a.region, b.region) || (l.a, l.b) == (b.region, a.region))
            .expect("validation requires a region_link for every pair");
        latency = rl.latency;
        jitter = rl.jitter + net.jitter;
        loss = 1.0 - (1.0 - loss) * (1.0 - rl.loss_ratio);
        shared = bandwidth.region.get(&(a.region, b.region)).copied();
    }
    path_spec(latency, jitter, loss, shared)
}

fn path_spec(latency: Duration, jitter: Duration, loss_ratio: f64, bandwidth: Option<(usize, u64)>) -> PathSpec {
    PathSpec {
        base_latency_ns: latency.as_nanos() as u64,
        jitter_ns: jitter.as_nanos() as u64,
        loss_ratio,
        bandwidth,
        hops: Vec::new(),
    }
}

/// The switches between two nodes: their shared ToR; or both ToRs and the region's core; or
/// both ToRs and both regions' cores, joined by the WAN.
fn hops(sc: &Scenario, switch_ports: &[Vec<String>], from: usize, to: usize) -> Vec<Hop> {
    let port = |sw: usize, name: &str| -> u16 {
        switch_ports[sw].iter().position(|p| p == name).expect("port exists by construction") as u16
    };
    let hop = |switch: usize, port_in: &str, port_out: &str| Hop {
        switch: switch as u16,
        port_in: port(switch, port_in),
        port_out: port(switch, port_out),
    };
    let (a, b) = (&sc.nodes[from], &sc.nodes[to]);
    if a.switch == b.switch {
        return vec![hop(a.switch, &a.name, &b.name)];
    }
    let core_a = sc.regions[a.region].core_switch;
    let core_b = sc.regions[b.region].core_switch;
    let tor_a = &sc.switches[a.switch].name;
    let tor_b = &sc.switches[b.switch].name;
    let mut hops = vec![hop(a.switch, &a.name, "uplink")];
    if a.region == b.region {
        hops.push(hop(core_a, tor_a, tor_b));
    } else {
        hops.push(hop(core_a, tor_a, "wan"));
        hops.push(hop(core_b, "wan", tor_b));
    }
    hops.push(hop(b.switch, "uplink", &b.name));
    hops
}

/// `[[link]]` overrides of the path from `from` to `to`, in the order written.
fn link_overrides(sc: &Scenario, from: usize, to: usize, path: &mut PathSpec, bandwidth: &mut Bandwidth) {
    for l in sc.links.iter().filter(|l| (l.from as usize, l.to as usize) == (from, to)) {
        if let Some(latency) = l.latency {
            path.base_latency_ns = latency.as_nanos() as u64;
        }
        if let Some(jitter) = l.jitter {
            path.jitter_ns = jitter.as_nanos() as u64;
        }
        path.loss_ratio = 1.0 - (1.0 - path.loss_ratio) * (1.0 - l.loss_ratio);
        if let Some(bw) = l.bandwidth_bytes_per_s {
            path.bandwidth = Some((bandwidth.resources, bw));
            bandwidth.resources += 1;
        }
    }
}

/// What a rebuild copies per second: the slowest of the path between the servers (a 10
/// Gbit/s NIC where the scenario sets no bandwidth), the source's disk reads and the target's
/// disk writes.
pub(super) fn copy_throughput(sc: &Scenario, net: &Network, source: NodeId, target: NodeId) -> u64 {
    let nic = 1_250_000_000;
    let path = net.path_bandwidth(source, target).unwrap_or(nic);
    path.min(sc.nodes[source as usize].disk.read_bytes_per_s)
        .min(sc.nodes[target as usize].disk.write_bytes_per_s)
        .max(1)
}

/// What a rebuild of `target` copies per second from each other PostgreSQL server.
pub(super) fn copy_throughputs_to(sc: &Scenario, net: &Network, target: NodeId) -> BTreeMap<NodeId, u64> {
    super::nodes_of(sc, NodeKind::Postgres)
        .into_iter()
        .filter(|&s| s != target)
        .map(|s| (s, copy_throughput(sc, net, s, target)))
        .collect()
}

/// A probe node pings every other probe node.
pub(super) fn probe(sc: &Scenario, probes: &[NodeId], id: NodeId) -> ProbeConfig {
    let p = &sc.probe;
    ProbeConfig {
        targets: probes.iter().copied().filter(|&other| other != id).collect(),
        interval: p.interval,
        timeout: p.timeout,
        payload_bytes: p.payload_bytes,
        fsync_interval: p.fsync_interval,
    }
}
