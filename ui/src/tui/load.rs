//! What the terminal UI shows: a trace plus the topology it ran on, from a fresh in-process run
//! or from a folder that `pgsim run --out DIR` wrote.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;

use models::trace::{Event, TraceKind, install_node_names};
use scenarios::{NodeKind, Scenario};

use crate::tui::pg::PgClusterSetup;

/// A run ready for the UI. Events are in trace order (`seq` dense, `t_ns` non-decreasing).
#[derive(Clone)]
pub struct Run {
    pub scenario: String,
    pub seed: u64,
    pub names: Vec<String>,
    /// What each node runs ("probe", "etcd", "writer"; "?" when a saved trace does not tell).
    pub kinds: Vec<&'static str>,
    pub topology: Topology,
    /// PostgreSQL clusters and their servers (empty when the run has none).
    pub pg: Vec<PgClusterSetup>,
    pub events: Vec<Event>,
}

/// Regions, racks and nodes. A saved trace does not record racks, so without its scenario file
/// the topology is one region holding every node.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    pub regions: Vec<TopoRegion>,
}

#[derive(Clone, Debug)]
pub struct TopoRegion {
    pub name: String,
    pub core_switch: String,
    pub racks: Vec<TopoRack>,
}

#[derive(Clone, Debug)]
pub struct TopoRack {
    pub name: String,
    pub switch: String,
    /// Node indices, in scenario order.
    pub nodes: Vec<u32>,
}

impl Topology {
    pub fn from_scenario(sc: &Scenario) -> Topology {
        let regions = sc
            .regions
            .iter()
            .enumerate()
            .map(|(r, region)| TopoRegion {
                name: region.name.clone(),
                core_switch: sc.switches[region.core_switch].name.clone(),
                racks: sc
                    .racks
                    .iter()
                    .enumerate()
                    .filter(|(_, rack)| rack.region == r)
                    .map(|(k, rack)| TopoRack {
                        name: rack.name.clone(),
                        switch: sc.switches[rack.switch].name.clone(),
                        nodes: (0..sc.nodes.len() as u32).filter(|&n| sc.nodes[n as usize].rack == k).collect(),
                    })
                    .collect(),
            })
            .collect();
        Topology { regions }
    }

    /// Every node in one unnamed rack: what is known from a trace alone.
    pub fn flat(node_count: usize) -> Topology {
        Topology {
            regions: vec![TopoRegion {
                name: "(topology unknown)".into(),
                core_switch: String::new(),
                racks: vec![TopoRack {
                    name: "nodes".into(),
                    switch: String::new(),
                    nodes: (0..node_count as u32).collect(),
                }],
            }],
        }
    }
}

/// What each node runs, when the scenario is known.
pub fn node_kinds(sc: &Scenario) -> Vec<&'static str> {
    sc.nodes
        .iter()
        .map(|n| match n.kind {
            NodeKind::Probe => "probe",
            NodeKind::Etcd => "etcd",
            NodeKind::EtcdWriter => "writer",
            NodeKind::EtcdElector => "elector",
            NodeKind::Postgres => "postgres",
            NodeKind::StolonSentinel => "sentinel",
            NodeKind::StolonProxy => "stolon-proxy",
            NodeKind::Haproxy => "haproxy",
            NodeKind::Pgbouncer => "pgbouncer",
            NodeKind::Clients => "clients",
        })
        .collect()
}

/// PostgreSQL clusters as the scenario defines them.
pub fn pg_clusters(sc: &Scenario) -> Vec<PgClusterSetup> {
    sc.pg_clusters
        .iter()
        .enumerate()
        .map(|(i, c)| PgClusterSetup {
            name: c.name.clone(),
            synchronous_standby_names: Some(c.synchronous_standby_names.clone()),
            servers: sc
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(n, node)| node.pg.as_ref().filter(|p| p.cluster == i).map(|p| (n as u32, p.upstream)))
                .collect(),
        })
        .collect()
}

/// Without the scenario: the clusters and servers that report a role, in order of node index;
/// each server starts with the upstream of its first report, `synchronous_standby_names` is
/// unknown.
fn pg_clusters_from_trace(events: &[Event]) -> Vec<PgClusterSetup> {
    let mut clusters: Vec<PgClusterSetup> = Vec::new();
    for ev in events {
        let (TraceKind::PgRole { cluster, upstream, .. }, Some(n)) = (&ev.kind, ev.node) else { continue };
        let i = match clusters.iter().position(|c| c.name == *cluster) {
            Some(i) => i,
            None => {
                let name = cluster.clone();
                clusters.push(PgClusterSetup { name, synchronous_standby_names: None, servers: Vec::new() });
                clusters.len() - 1
            }
        };
        if !clusters[i].servers.iter().any(|&(s, _)| s == n.0) {
            clusters[i].servers.push((n.0, upstream.map(|u| u.0)));
        }
    }
    for c in &mut clusters {
        c.servers.sort_by_key(|&(n, _)| n);
    }
    clusters
}

/// Without the scenario, a node that took part in Raft is an etcd member and one that reported
/// resumed writes is a writer; the rest stay unknown.
fn kinds_from_trace(node_count: usize, events: &[Event]) -> Vec<&'static str> {
    let mut kinds = vec!["?"; node_count];
    for ev in events {
        let kind = match ev.kind {
            TraceKind::RaftCampaign { .. } | TraceKind::RaftLeaderElected { .. } | TraceKind::EtcdHalted { .. } => {
                "etcd"
            }
            TraceKind::EtcdWritesResumed { .. } => "writer",
            TraceKind::PgRole { .. } => "postgres",
            _ => continue,
        };
        if let Some(k) = ev.node.and_then(|n| kinds.get_mut(n.0 as usize)) {
            *k = kind;
        }
    }
    kinds
}

impl Run {
    /// Runs `sc` in-process (what `pgsim ui FILE` does).
    pub fn simulate(sc: &Scenario, seed: Option<u64>) -> Run {
        let out = sim::run(sc, sim::RunOptions { seed, ..Default::default() });
        Run {
            scenario: sc.name.clone(),
            seed: out.seed,
            names: out.world.names.clone(),
            kinds: node_kinds(sc),
            topology: Topology::from_scenario(sc),
            pg: pg_clusters(sc),
            events: out.world.trace.events,
        }
    }

    /// Reads `dir/events.jsonl`; the topology comes from the run folder's own `scenario.toml`
    /// or else the scenario file named in `dir/summary.json`, whichever still has the hash the
    /// trace recorded.
    pub fn from_dir(dir: &Path) -> Result<Run, String> {
        let path = dir.join("events.jsonl");
        let file = fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let events = read_events(BufReader::new(file)).map_err(|e| format!("{}:{e}", path.display()))?;
        let Some(TraceKind::RunStarted { scenario, seed, nodes, scenario_hash, .. }) = events.first().map(|e| &e.kind)
        else {
            return Err(format!("{}:1: the first event must be run_started", path.display()));
        };
        let (topology, kinds, pg) = match scenario_of(dir, scenario_hash) {
            Some(sc) => (Topology::from_scenario(&sc), node_kinds(&sc), pg_clusters(&sc)),
            None => {
                (Topology::flat(nodes.len()), kinds_from_trace(nodes.len(), &events), pg_clusters_from_trace(&events))
            }
        };
        Ok(Run { scenario: scenario.clone(), seed: *seed, names: nodes.clone(), kinds, topology, pg, events })
    }
}

/// The scenario of a saved run, if its text still has the hash the trace recorded: the run
/// folder's own copy first (the merged text the run was built from, found wherever pgsim runs
/// now), else the file named in summary.json (a path relative to where the run was made).
fn scenario_of(dir: &Path, hash: &str) -> Option<Scenario> {
    let own = dir.join("scenario.toml");
    let from_copy =
        fs::read_to_string(&own).ok().and_then(|text| scenarios::parse_str(&own.display().to_string(), &text).ok());
    let from_summary = || {
        let text = fs::read_to_string(dir.join("summary.json")).ok()?;
        let summary: serde_json::Value = serde_json::from_str(&text).ok()?;
        scenarios::load(Path::new(summary["scenario_path"].as_str()?)).ok()
    };
    from_copy.filter(|sc| sc.source_hash == hash).or_else(|| from_summary().filter(|sc| sc.source_hash == hash))
}

/// Parses `events.jsonl`. Errors read `LINE: message`. The first line must be `run_started`:
/// its node names resolve the `NodeRef`s of every later line.
pub fn read_events(input: impl BufRead) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    let mut guard = None;
    let mut last_t_ns = 0;
    for (i, line) in input.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|e| format!("{line_no}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        if guard.is_none() {
            // Node names are needed before any NodeRef can be read, so the header is read
            // generically first.
            let header: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| format!("{line_no}: not JSON: {e}"))?;
            if header["kind"] != "run_started" {
                return Err(format!("{line_no}: the first event must be run_started, not {}", header["kind"]));
            }
            let names: Vec<String> = serde_json::from_value(header["nodes"].clone())
                .map_err(|e| format!("{line_no}: run_started.nodes: {e}"))?;
            guard = Some(install_node_names(&names));
        }
        let ev: Event = serde_json::from_str(&line).map_err(|e| format!("{line_no}: {e}"))?;
        if ev.seq != events.len() as u64 {
            return Err(format!("{line_no}: seq {} where {} was expected", ev.seq, events.len()));
        }
        if ev.t_ns < last_t_ns {
            return Err(format!("{line_no}: t_ns {} goes back in time (previous {last_t_ns})", ev.t_ns));
        }
        last_t_ns = ev.t_ns;
        events.push(ev);
    }
    drop(guard);
    if events.is_empty() {
        return Err("1: empty trace".into());
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_node_names_from_the_header() {
        let text = concat!(
            r#"{"seq":0,"t_ns":0,"kind":"run_started","pgsim_version":"0","scenario":"s","scenario_hash":"h","seed":3,"duration_ns":5,"nodes":["a","b"],"lookahead_ns":1}"#,
            "\n",
            r#"{"seq":1,"t_ns":7,"node":"b","kind":"node_crashed"}"#,
            "\n"
        );
        let events = read_events(text.as_bytes()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].node.map(|n| n.0), Some(1));
    }

    #[test]
    fn rejects_bad_traces_with_line_numbers() {
        let no_header = r#"{"seq":0,"t_ns":7,"node":"b","kind":"node_crashed"}"#;
        assert!(read_events(no_header.as_bytes()).unwrap_err().starts_with("1: the first event must be run_started"));
        let header = r#"{"seq":0,"t_ns":0,"kind":"run_started","pgsim_version":"0","scenario":"s","scenario_hash":"h","seed":3,"duration_ns":5,"nodes":["a"],"lookahead_ns":1}"#;
        let unknown = format!("{header}\n{}\n", r#"{"seq":1,"t_ns":7,"node":"zz","kind":"node_crashed"}"#);
        let err = read_events(unknown.as_bytes()).unwrap_err();
        assert!(err.starts_with("2: ") && err.contains("unknown node"), "{err}");
        let gap = format!("{header}\n{}\n", r#"{"seq":2,"t_ns":7,"kind":"node_crashed"}"#);
        assert!(read_events(gap.as_bytes()).unwrap_err().starts_with("2: seq 2 where 1"));
        assert_eq!(read_events("".as_bytes()).unwrap_err(), "1: empty trace");
    }

    #[test]
    fn postgres_clusters_from_a_trace_alone() {
        use models::trace::NodeRef;
        let role = |node: u32, cluster: &str, upstream: Option<u32>| Event {
            seq: 0,
            t_ns: 0,
            node: Some(NodeRef(node)),
            kind: TraceKind::PgRole {
                cluster: cluster.into(),
                role: if upstream.is_some() {
                    models::pg::ServerRole::Standby
                } else {
                    models::pg::ServerRole::Primary
                },
                tli: 1,
                origin: 0,
                upstream: upstream.map(NodeRef),
            },
        };
        let events = [role(2, "a", Some(0)), role(0, "a", None), role(1, "b", None), role(2, "a", None)];
        let clusters = pg_clusters_from_trace(&events);
        assert_eq!(clusters.len(), 2);
        assert_eq!((clusters[0].name.as_str(), &clusters[0].servers[..]), ("a", &[(0, None), (2, Some(0))][..]));
        assert_eq!(clusters[0].synchronous_standby_names, None, "unknown without the scenario");
        assert_eq!(kinds_from_trace(3, &events), ["postgres"; 3]);
    }
}
