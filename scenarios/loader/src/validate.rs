//! From the file as written to a `Scenario`: every name resolved, every value checked, every
//! error pointing at its place in the file.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use models::hash::fnv1a64;

use crate::diag::{Diagnostic, LineIndex};
use crate::model::*;
use crate::raw::*;

type Res<T> = Result<T, Diagnostic>;

struct Cx<'a> {
    path: &'a str,
    text: &'a str,
    lines: &'a LineIndex,
}

impl Cx<'_> {
    fn err<T>(&self, span: Range<usize>, msg: impl Into<String>) -> Res<T> {
        Err(Diagnostic::at(self.path, self.text, span, msg))
    }
    fn line_of(&self, span: &Range<usize>) -> usize {
        self.lines.line_of(span.start)
    }
    fn ratio(&self, v: &S<f64>, what: &str) -> Res<f64> {
        let x = *v.get_ref();
        if !(0.0..=1.0).contains(&x) {
            return self.err(v.span(), format!("{what} must be between 0 and 1, got {x}"));
        }
        Ok(x)
    }
    fn name(&self, n: &S<String>, what: &str) -> Res<String> {
        let s = n.get_ref();
        let ok = !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok {
            return self.err(
                n.span(),
                format!(
                    "{what} name {s:?} must start with a letter or digit and use only letters, digits, '-' and '_'"
                ),
            );
        }
        Ok(s.clone())
    }
}

/// Looks a name up in a table, with an error that lists what exists.
fn lookup(cx: &Cx<'_>, table: &[String], n: &S<String>, what: &str) -> Res<usize> {
    if let Some(i) = table.iter().position(|x| x == n.get_ref()) {
        return Ok(i);
    }
    let shown: Vec<&str> = table.iter().take(12).map(String::as_str).collect();
    let more = if table.len() > 12 { ", …" } else { "" };
    let expected = if table.is_empty() {
        format!("no {what}s are defined")
    } else {
        format!("expected one of: {}{more}", shown.join(", "))
    };
    let near = crate::lint::hint(n.get_ref(), table.iter().map(String::as_str));
    cx.err(n.span(), format!("unknown {what} {:?}{near}; {expected}", n.get_ref()))
}

pub fn parse_str(path: &str, text: &str) -> Res<Scenario> {
    let lines = LineIndex::new(text);
    let cx = Cx { path, text, lines: &lines };
    let raw: RawScenario = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let msg = crate::lint::suggest_in_toml_message(e.message().trim().to_string());
            return Err(match e.span() {
                // A missing top-level table is reported with the document's empty span: shown at
                // the top of the file, where the table belongs.
                Some(span) if span.is_empty() && span.start == 0 && msg.starts_with("missing field") => Diagnostic::at(
                    path,
                    text,
                    0..0,
                    format!("{msg}: a scenario starts with [scenario] (name, duration)"),
                ),
                Some(span) => Diagnostic::at(path, text, span, msg),
                None => Diagnostic::at(path, text, 0..0, msg),
            });
        }
    };
    build(&cx, raw)
}

fn build(cx: &Cx<'_>, raw: RawScenario) -> Res<Scenario> {
    let header = raw.scenario.get_ref();
    if header.name.get_ref().trim().is_empty() {
        return cx.err(header.name.span(), "scenario name must not be empty");
    }
    let duration = range::DURATION.check(cx.path, cx.text, &header.duration)?;

    let network = network_defaults(cx, &raw.network)?;
    let global_disk = disk_spec(cx, &raw.disk, &DiskSpec::default())?;
    let mut names = Names::default();
    let (regions, mut switches) = regions(cx, &raw, &mut names)?;
    let region_names: Vec<String> = regions.iter().map(|r| r.name.clone()).collect();
    let racks = racks(cx, &raw, &mut names, &mut switches, &region_names)?;
    let mut nodes = nodes(cx, &raw, &mut names, &racks, &global_disk)?;
    let postgres = crate::postgres::settings(cx.path, cx.text, &raw.postgres)?;
    let pg_clusters = pg_clusters(cx, &raw, &mut nodes)?;
    let scx = crate::stack::Cx { path: cx.path, text: cx.text };
    let stolon = crate::stack::stolon(&scx, &raw.stolon)?;
    let haproxy = crate::stack::haproxy(&scx, &raw.haproxy)?;
    let pgbouncer = crate::stack::pgbouncer(&scx, &raw.pgbouncer)?;
    let workload = crate::stack::workload(&scx, &raw.workload)?;
    let tenants = tenants(cx, &raw)?;
    if nodes.len() > u32::MAX as usize / 2 {
        return cx.err(raw.scenario.span(), "too many nodes");
    }

    let node_names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let region_links = region_links(cx, &raw.region_links, &raw.regions, &region_names)?;
    let links = node_links(cx, &raw.links, &node_names)?;
    crate::stack_nodes::resolve(cx.path, cx.text, &raw, &mut nodes, &pg_clusters, &region_links, !tenants.is_empty())?;
    let probe = probe_spec(cx, raw.probe.as_ref())?;
    let topo = Topo { nodes: &nodes, racks: &racks, regions: &regions, switches: &switches };
    let faults = raw
        .faults
        .iter()
        .enumerate()
        .map(|(i, f)| crate::faults::fault(cx_ref(cx), &topo, i as u32, f))
        .collect::<Res<Vec<_>>>()?;
    let etcd = crate::components::etcd(cx.path, cx.text, &raw.etcd)?;
    let etcd_writer = crate::components::writer(cx.path, cx.text, &raw.etcd_writer)?;
    let etcd_elector = crate::components::elector(cx.path, cx.text, &raw.etcd_elector)?;
    let sim = crate::components::sim_switches(cx.path, cx.text, &raw.sim)?;
    let actions = actions(cx, &raw, &nodes, &pg_clusters, &region_names, &stolon)?;
    crate::lint::times(cx.path, cx.text, &raw, duration)?;
    let asserts = raw.asserts.iter().map(|a| assertion(cx, a)).collect::<Res<Vec<_>>>()?;
    assertion_links(cx, &raw.asserts)?;
    let swarm = crate::swarm::swarm(cx.path, cx.text, &raw.swarm)?;

    Ok(Scenario {
        path: cx.path.to_string(),
        source_hash: format!("{:016x}", fnv1a64(cx.text.as_bytes())),
        name: header.name.get_ref().clone(),
        description: header.description.clone(),
        duration,
        seed: header.seed,
        network,
        regions,
        region_links,
        switches,
        racks,
        nodes,
        links,
        probe,
        faults,
        asserts,
        etcd,
        etcd_writer,
        etcd_elector,
        sim,
        postgres,
        pg_clusters,
        actions,
        stolon,
        haproxy,
        pgbouncer,
        workload,
        tenants,
        swarm,
    })
}

/// The names taken so far. Every name lives in one namespace, so partition targets can name
/// any of them.
#[derive(Default)]
struct Names(BTreeMap<String, &'static str>);

impl Names {
    fn claim(&mut self, cx: &Cx<'_>, n: &S<String>, what: &'static str) -> Res<String> {
        let s = cx.name(n, what)?;
        if let Some(prev) = self.0.insert(s.clone(), what) {
            return cx.err(n.span(), format!("name {s:?} is already used by a {prev}"));
        }
        Ok(s)
    }
}

/// `[[region]]`s, and the core switch of each (named, or "<region>-core").
fn regions(cx: &Cx<'_>, raw: &RawScenario, names: &mut Names) -> Res<(Vec<Region>, Vec<Switch>)> {
    if raw.regions.is_empty() {
        return cx.err(raw.scenario.span(), "a scenario needs at least one [[region]]");
    }
    let mut regions = Vec::new();
    let mut switches: Vec<Switch> = Vec::new();
    for r in &raw.regions {
        let r = r.get_ref();
        let name = names.claim(cx, &r.name, "region")?;
        let core_name = match &r.core_switch {
            Some(c) => names.claim(cx, c, "switch")?,
            None => {
                let c = format!("{name}-core");
                names.claim(cx, &S::new(r.name.span(), c.clone()), "switch")?;
                c
            }
        };
        switches.push(Switch { name: core_name, region: regions.len(), role: SwitchRole::Core });
        regions.push(Region { name, core_switch: switches.len() - 1 });
    }
    Ok((regions, switches))
}

/// `[[rack]]`s, each on a top-of-rack switch of its region (named, shared, or "<rack>-tor").
fn racks(
    cx: &Cx<'_>,
    raw: &RawScenario,
    names: &mut Names,
    switches: &mut Vec<Switch>,
    region_names: &[String],
) -> Res<Vec<Rack>> {
    let mut racks = Vec::new();
    for rk in &raw.racks {
        let rk = rk.get_ref();
        let name = names.claim(cx, &rk.name, "rack")?;
        let region = lookup(cx, region_names, &rk.region, "region")?;
        let switch_name = rk.switch.as_ref().map(|s| s.get_ref().clone()).unwrap_or_else(|| format!("{name}-tor"));
        let span = rk.switch.as_ref().map_or(rk.name.span(), |s| s.span());
        let switch = match switches.iter().position(|s| s.name == switch_name) {
            Some(i) if switches[i].role == SwitchRole::Core => {
                return cx.err(span, format!("{switch_name:?} is a region's core switch, not a top-of-rack switch"));
            }
            Some(i) if switches[i].region != region => {
                return cx.err(span, format!("switch {switch_name:?} serves racks in another region"));
            }
            Some(i) => i,
            None => {
                names.claim(cx, &S::new(span.clone(), switch_name.clone()), "switch")?;
                switches.push(Switch { name: switch_name, region, role: SwitchRole::Tor });
                switches.len() - 1
            }
        };
        racks.push(Rack { name, region, switch });
    }
    Ok(racks)
}

/// `[[node]]`s placed in their racks; their postgres and stack settings come later.
fn nodes(cx: &Cx<'_>, raw: &RawScenario, names: &mut Names, racks: &[Rack], disk: &DiskSpec) -> Res<Vec<Node>> {
    if raw.nodes.is_empty() {
        return cx.err(raw.scenario.span(), "a scenario needs at least one [[node]]");
    }
    let rack_names: Vec<String> = racks.iter().map(|r| r.name.clone()).collect();
    let mut nodes = Vec::new();
    for n in &raw.nodes {
        let n = n.get_ref();
        let name = names.claim(cx, &n.name, "node")?;
        let rack = lookup(cx, &rack_names, &n.rack, "rack")?;
        let kind = node_kind(cx, &n.kind)?;
        let disk = disk_spec(cx, &n.disk, disk)?;
        if let Some(pg) = &n.postgres
            && kind != NodeKind::Postgres
        {
            return cx.err(pg.span(), "[node.postgres] is only for nodes of kind \"postgres\"");
        }
        crate::stack_nodes::check_tables(cx.path, cx.text, n, kind)?;
        nodes.push(Node {
            name,
            rack,
            region: racks[rack].region,
            switch: racks[rack].switch,
            kind,
            disk,
            pg: None,
            stack: None,
        });
    }
    Ok(nodes)
}

fn node_kind(cx: &Cx<'_>, kind: &S<String>) -> Res<NodeKind> {
    match NodeKind::NAMES.iter().position(|k| k == kind.get_ref()) {
        Some(i) => Ok(NodeKind::ALL[i]),
        None => cx.err(
            kind.span(),
            format!("unknown node kind {:?}; expected one of: {}", kind.get_ref(), NodeKind::NAMES.join(", ")),
        ),
    }
}

/// `[[tenant]]`s: unique names, and all of them together within the load pgsim can count.
fn tenants(cx: &Cx<'_>, raw: &RawScenario) -> Res<Vec<crate::TenantSpec>> {
    let scx = crate::stack::Cx { path: cx.path, text: cx.text };
    let mut tenants: Vec<crate::TenantSpec> = Vec::new();
    let mut tenant_names = std::collections::BTreeSet::new();
    let mut peak_rps_total = 0.0;
    for t in &raw.tenants {
        let spec = crate::stack::tenant(&scx, t.get_ref())?;
        let name = cx.name(&t.get_ref().name, "tenant")?;
        if !tenant_names.insert(name.clone()) {
            return cx.err(t.get_ref().name.span(), format!("tenant {name:?} is defined twice"));
        }
        peak_rps_total += spec.peak_rps();
        let max = crate::stack::range::PEAK_RPS_TOTAL_MAX;
        if peak_rps_total > max {
            return cx.err(
                t.get_ref().name.span(),
                format!(
                    "with tenant {name:?} the tenants' peak load reaches {peak_rps_total:.0} requests/s \
                     ((read_rps + write_rps) x (1 + diurnal_amplitude) x the largest spike factor, summed); \
                     at most {max:.0} in all"
                ),
            );
        }
        tenants.push(spec);
    }
    Ok(tenants)
}

/// `[[action]]`s, names resolved; a stolonctl-update patch is checked on the spec it leaves in
/// force, which earlier patches shaped.
fn actions(
    cx: &Cx<'_>,
    raw: &RawScenario,
    nodes: &[Node],
    pg_clusters: &[crate::ClusterSpec],
    region_names: &[String],
    stolon: &crate::StolonSpec,
) -> Res<Vec<crate::Action>> {
    let node_names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let cluster_names: Vec<String> = pg_clusters.iter().map(|c| c.name.clone()).collect();
    let managed: Vec<bool> = (0..pg_clusters.len())
        .map(|c| nodes.iter().any(|n| n.stack == Some(crate::StackRole::Sentinel { cluster: c })))
        .collect();
    let action_names = crate::components::ActionNames {
        nodes: &node_names,
        clusters: &cluster_names,
        regions: region_names,
        managed: &managed,
    };
    let actions = raw
        .actions
        .iter()
        .map(|a| {
            crate::components::action(
                cx.path,
                cx.text,
                cx.lines,
                a,
                &action_names,
                |i| nodes[i].kind == NodeKind::Etcd,
                |i| nodes[i].kind == NodeKind::Postgres,
            )
        })
        .collect::<Res<Vec<_>>>()?;
    for (i, a) in raw.actions.iter().enumerate() {
        if let (Some(p), crate::ActionKind::StolonctlUpdate { cluster, .. }) = (&a.get_ref().patch, &actions[i].kind) {
            let spec = crate::spec_patch::in_force_after(stolon, &actions, *cluster, i);
            crate::spec_patch::check_result(cx.path, cx.text, p, &spec)?;
        }
    }
    Ok(actions)
}

/// Resolves `[[pg_cluster]]`s and each postgres node's cluster and upstream. With no
/// `[[pg_cluster]]`, postgres nodes form one cluster named "main" with default settings.
fn pg_clusters(cx: &Cx<'_>, raw: &RawScenario, nodes: &mut [Node]) -> Res<Vec<crate::ClusterSpec>> {
    let mut clusters = declared_clusters(cx, raw)?;
    let pg: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].kind == NodeKind::Postgres).collect();
    if pg.is_empty() {
        return Ok(clusters);
    }
    if clusters.is_empty() {
        clusters.push(crate::postgres::cluster(cx.path, cx.text, &implicit_main_cluster())?);
    }
    let cluster_names: Vec<String> = clusters.iter().map(|c| c.name.clone()).collect();
    standby_links(cx, raw, &cluster_names, &mut clusters)?;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let raw_pg = raw.nodes.iter().filter(|n| n.get_ref().kind.get_ref() == "postgres");
    for (&i, raw_node) in pg.iter().zip(raw_pg) {
        let spec = pg_node(cx, raw_node.get_ref(), i, nodes, &names, &cluster_names)?;
        nodes[i].pg = Some(spec);
    }
    // Where a cluster's error is shown: its [[pg_cluster]] name, or for the implicit "main"
    // cluster the first postgres node's name.
    let cluster_span = |c: usize| match raw.pg_clusters.get(c) {
        Some(rc) => rc.get_ref().name.span(),
        None => raw.nodes[pg[0]].get_ref().name.span(),
    };
    for (c, spec) in clusters.iter().enumerate() {
        check_one_leader(cx, nodes, &pg, c, spec, cluster_span(c))?;
    }
    check_upstream_clusters(cx, raw, nodes, &pg, &clusters)?;
    Ok(clusters)
}

/// The `[[pg_cluster]]`s as written, names unique.
fn declared_clusters(cx: &Cx<'_>, raw: &RawScenario) -> Res<Vec<crate::ClusterSpec>> {
    let mut clusters: Vec<crate::ClusterSpec> = Vec::new();
    for c in &raw.pg_clusters {
        let spec = crate::postgres::cluster(cx.path, cx.text, c.get_ref())?;
        if clusters.iter().any(|x| x.name == spec.name) {
            return cx.err(c.get_ref().name.span(), format!("pg_cluster {:?} is defined twice", spec.name));
        }
        clusters.push(spec);
    }
    Ok(clusters)
}

/// The cluster postgres nodes form when no `[[pg_cluster]]` is written: "main", defaults.
fn implicit_main_cluster() -> crate::postgres::RawCluster {
    crate::postgres::RawCluster {
        name: toml::Spanned::new(0..0, "main".to_string()),
        synchronous_standby_names: None,
        synchronous_commit: None,
        write_tps: None,
        bytes_per_commit: None,
        write_amplification: None,
        client_timeout: None,
        standby_read_tps: None,
        phases: vec![],
        standby_of: None,
    }
}

/// Each standby cluster's `standby_of`: another cluster, itself a primary one.
fn standby_links(
    cx: &Cx<'_>,
    raw: &RawScenario,
    cluster_names: &[String],
    clusters: &mut [crate::ClusterSpec],
) -> Res<()> {
    for (c, rc) in raw.pg_clusters.iter().enumerate() {
        let Some(of) = &rc.get_ref().standby_of else { continue };
        let m = lookup(cx, cluster_names, of, "pg_cluster")?;
        if m == c {
            return cx.err(of.span(), "a cluster cannot be a standby of itself");
        }
        if raw.pg_clusters[m].get_ref().standby_of.is_some() {
            return cx.err(of.span(), "standby clusters are fed hub-and-spoke: standby_of must name a primary cluster");
        }
        clusters[c].standby_of = Some(m);
    }
    Ok(())
}

/// Postgres node `i`'s `[node.postgres]`: its cluster, its upstream, its apply rate and what
/// its keeper may become.
fn pg_node(
    cx: &Cx<'_>,
    raw_node: &RawNode,
    i: usize,
    nodes: &[Node],
    names: &[String],
    cluster_names: &[String],
) -> Res<crate::PgNodeSpec> {
    let spec = raw_node.postgres.as_ref().map(|p| p.get_ref().clone()).unwrap_or_default();
    let cluster = match &spec.cluster {
        Some(c) => lookup(cx, cluster_names, c, "pg_cluster")?,
        None if cluster_names.len() == 1 => 0,
        None => {
            return cx.err(raw_node.name.span(), "with several [[pg_cluster]]s, [node.postgres] needs `cluster`");
        }
    };
    let upstream = match &spec.upstream {
        Some(u) => {
            let j = lookup(cx, names, u, "node")?;
            if nodes[j].kind != NodeKind::Postgres || j == i {
                return cx.err(u.span(), "upstream must be another postgres node");
            }
            Some(j as NodeIdx)
        }
        None => None,
    };
    let apply_bytes_per_s =
        crate::bounds::bandwidth_opt(&crate::postgres::range::APPLY_RATE, cx.path, cx.text, &spec.apply_rate)?
            .unwrap_or(200_000_000);
    Ok(crate::PgNodeSpec {
        cluster,
        upstream,
        apply_bytes_per_s,
        can_be_master: spec.can_be_master.unwrap_or(true),
        can_be_synchronous_replica: spec.can_be_synchronous_replica.unwrap_or(true),
    })
}

/// A cluster starts with exactly one leader: its primary (no `upstream`), or for a standby
/// cluster its standby leader (streaming from the primary cluster).
fn check_one_leader(
    cx: &Cx<'_>,
    nodes: &[Node],
    pg: &[usize],
    c: usize,
    spec: &crate::ClusterSpec,
    span: Range<usize>,
) -> Res<()> {
    let cluster_of = |j: u32| nodes[j as usize].pg.as_ref().map(|q| q.cluster);
    let leaders = pg
        .iter()
        .filter(|&&i| {
            nodes[i].pg.as_ref().is_some_and(|p| {
                p.cluster == c
                    && match spec.standby_of {
                        None => p.upstream.is_none(),
                        Some(m) => p.upstream.is_some_and(|u| cluster_of(u) == Some(m)),
                    }
            })
        })
        .count();
    if leaders == 1 {
        return Ok(());
    }
    let msg = match spec.standby_of {
        Some(_) => format!(
            "standby pg_cluster {:?} needs exactly one postgres node streaming from its primary cluster \
             (its standby leader), has {leaders}",
            spec.name
        ),
        None => format!(
            "pg_cluster {:?} needs exactly one postgres node without `upstream` (its primary), has {leaders}",
            spec.name
        ),
    };
    cx.err(span, msg)
}

/// A server streams from its own cluster, or a standby leader from its primary cluster.
fn check_upstream_clusters(
    cx: &Cx<'_>,
    raw: &RawScenario,
    nodes: &[Node],
    pg: &[usize],
    clusters: &[crate::ClusterSpec],
) -> Res<()> {
    for &i in pg {
        let p = nodes[i].pg.as_ref().expect("set above");
        if let Some(u) = p.upstream
            && nodes[u as usize].pg.as_ref().is_some_and(|q| q.cluster != p.cluster)
            && clusters[p.cluster].standby_of != nodes[u as usize].pg.as_ref().map(|q| q.cluster)
        {
            // The node's `upstream` (set, since it names the other cluster's server).
            let span = raw.nodes[i].get_ref().postgres.as_ref().and_then(|p| p.get_ref().upstream.as_ref());
            let span = span.map_or_else(|| raw.nodes[i].get_ref().name.span(), |u| u.span());
            return cx
                .err(span, format!("{} streams from {} in another pg_cluster", nodes[i].name, nodes[u as usize].name));
        }
    }
    Ok(())
}

/// The parts of the topology fault validation resolves names against.
pub(crate) struct Topo<'a> {
    pub nodes: &'a [Node],
    pub racks: &'a [Rack],
    pub regions: &'a [Region],
    pub switches: &'a [Switch],
}

pub(crate) struct FaultCx<'a> {
    pub path: &'a str,
    pub text: &'a str,
    pub lines: &'a LineIndex,
}

fn cx_ref<'a>(cx: &Cx<'a>) -> FaultCx<'a> {
    FaultCx { path: cx.path, text: cx.text, lines: cx.lines }
}

impl FaultCx<'_> {
    pub fn err<T>(&self, span: Range<usize>, msg: impl Into<String>) -> Res<T> {
        Err(Diagnostic::at(self.path, self.text, span, msg))
    }
    pub fn line_of(&self, span: &Range<usize>) -> usize {
        Cx { path: self.path, text: self.text, lines: self.lines }.line_of(span)
    }
    pub fn ratio(&self, v: &S<f64>, what: &str) -> Res<f64> {
        Cx { path: self.path, text: self.text, lines: self.lines }.ratio(v, what)
    }
    pub fn lookup(&self, table: &[String], n: &S<String>, what: &str) -> Res<usize> {
        lookup(&Cx { path: self.path, text: self.text, lines: self.lines }, table, n, what)
    }
}

fn network_defaults(cx: &Cx<'_>, n: &RawNetwork) -> Res<NetworkDefaults> {
    let d = NetworkDefaults::default();
    // Zero latency would leave the engine no lookahead window.
    let lat = |v: &Option<S<Dur>>, default| range::LATENCY.or(cx.path, cx.text, v, default);
    Ok(NetworkDefaults {
        switch_latency: lat(&n.switch_latency, d.switch_latency)?,
        region_latency: lat(&n.region_latency, d.region_latency)?,
        jitter: range::JITTER.or(cx.path, cx.text, &n.jitter, d.jitter)?,
        loss_ratio: n.loss_ratio.as_ref().map(|l| cx.ratio(l, "loss_ratio")).transpose()?.unwrap_or(0.0),
    })
}

fn disk_spec(cx: &Cx<'_>, d: &RawDisk, base: &DiskSpec) -> Res<DiskSpec> {
    let (path, text) = (cx.path, cx.text);
    let bandwidth = |v: &Option<S<Bandwidth>>| crate::bounds::bandwidth_opt(&range::BANDWIDTH, path, text, v);
    Ok(DiskSpec {
        fsync_latency: range::FSYNC_LATENCY.or(path, text, &d.fsync_latency, base.fsync_latency)?,
        fsync_jitter: range::FSYNC_JITTER.or(path, text, &d.fsync_jitter, base.fsync_jitter)?,
        read_bytes_per_s: bandwidth(&d.read_throughput)?.unwrap_or(base.read_bytes_per_s),
        write_bytes_per_s: bandwidth(&d.write_throughput)?.unwrap_or(base.write_bytes_per_s),
    })
}

fn pair(cx: &Cx<'_>, between: &S<Vec<S<String>>>, table: &[String], what: &str) -> Res<(usize, usize)> {
    let v = between.get_ref();
    if v.len() != 2 {
        return cx.err(between.span(), format!("between takes exactly two {what} names, got {}", v.len()));
    }
    let a = lookup(cx, table, &v[0], what)?;
    let b = lookup(cx, table, &v[1], what)?;
    if a == b {
        return cx.err(between.span(), format!("between names the same {what} twice"));
    }
    Ok((a, b))
}

fn region_links(
    cx: &Cx<'_>,
    raw: &[S<RawRegionLink>],
    raw_regions: &[S<RawRegion>],
    regions: &[String],
) -> Res<Vec<RegionLink>> {
    let mut out: Vec<RegionLink> = Vec::new();
    for l in raw {
        let l = l.get_ref();
        let (a, b) = pair(cx, &l.between, regions, "region")?;
        if out.iter().any(|x| (x.a, x.b) == (a, b) || (x.a, x.b) == (b, a)) {
            return cx.err(l.between.span(), "a region_link between these regions is already defined");
        }
        out.push(RegionLink {
            a,
            b,
            latency: range::LATENCY.check(cx.path, cx.text, &l.latency)?,
            jitter: range::JITTER.or(cx.path, cx.text, &l.jitter, Duration::ZERO)?,
            loss_ratio: l.loss_ratio.as_ref().map(|v| cx.ratio(v, "loss_ratio")).transpose()?.unwrap_or(0.0),
            bandwidth_bytes_per_s: crate::bounds::bandwidth_opt(&range::BANDWIDTH, cx.path, cx.text, &l.bandwidth)?,
        });
    }
    for a in 0..regions.len() {
        for b in a + 1..regions.len() {
            if !out.iter().any(|x| (x.a, x.b) == (a, b) || (x.a, x.b) == (b, a)) {
                // Reported at the later of the two regions: the one that made the link necessary.
                return cx.err(
                    raw_regions[b].get_ref().name.span(),
                    format!(
                        "no [[region_link]] between {:?} and {:?}; every pair of regions needs one (latency, and optionally jitter, loss_ratio, bandwidth)",
                        regions[a], regions[b]
                    ),
                );
            }
        }
    }
    Ok(out)
}

fn node_links(cx: &Cx<'_>, raw: &[S<RawLink>], nodes: &[String]) -> Res<Vec<Link>> {
    let mut out = Vec::new();
    for l in raw {
        let span = l.span();
        let l = l.get_ref();
        let (from, to, both) = match (&l.between, &l.from, &l.to) {
            (Some(b), None, None) => {
                let (a, b) = pair(cx, b, nodes, "node")?;
                (a, b, true)
            }
            (None, Some(f), Some(t)) => {
                let (a, b) = (lookup(cx, nodes, f, "node")?, lookup(cx, nodes, t, "node")?);
                if a == b {
                    return cx.err(t.span(), "a link's from and to must be different nodes");
                }
                (a, b, false)
            }
            _ => {
                return cx.err(span, "a [[link]] takes either between = [a, b] or both from and to");
            }
        };
        let link = Link {
            from: from as NodeIdx,
            to: to as NodeIdx,
            latency: range::LATENCY.opt(cx.path, cx.text, &l.latency)?,
            jitter: range::JITTER.opt(cx.path, cx.text, &l.jitter)?,
            loss_ratio: l.loss_ratio.as_ref().map(|v| cx.ratio(v, "loss_ratio")).transpose()?.unwrap_or(0.0),
            bandwidth_bytes_per_s: crate::bounds::bandwidth_opt(&range::BANDWIDTH, cx.path, cx.text, &l.bandwidth)?,
        };
        if both {
            out.push(Link { from: link.to, to: link.from, ..link.clone() });
        }
        out.push(link);
    }
    Ok(out)
}

fn probe_spec(cx: &Cx<'_>, raw: Option<&RawProbe>) -> Res<ProbeSpec> {
    let d = ProbeSpec::default();
    let Some(p) = raw else { return Ok(d) };
    let interval = range::PROBE_INTERVAL.or(cx.path, cx.text, &p.interval, d.interval)?;
    let timeout = range::PROBE_TIMEOUT.or(cx.path, cx.text, &p.timeout, d.timeout)?;
    if timeout < interval / 2 {
        let span = p.timeout.as_ref().or(p.interval.as_ref()).map_or(0..0, |v| v.span());
        return cx.err(span, "probe timeout must be at least half the probe interval");
    }
    let fsync_interval = range::FSYNC_INTERVAL.opt(cx.path, cx.text, &p.fsync_interval)?;
    Ok(ProbeSpec {
        interval,
        timeout,
        payload_bytes: crate::bounds::size_or(&range::PROBE_PAYLOAD, cx.path, cx.text, &p.payload, d.payload_bytes)?,
        fsync_interval,
    })
}

fn assertion(cx: &Cx<'_>, a: &S<RawAssert>) -> Res<Assertion> {
    let span = a.span();
    let a = a.get_ref();
    if a.name.get_ref().trim().is_empty() {
        return cx.err(a.name.span(), "assertion name must not be empty");
    }
    let metric = a.metric.get_ref();
    if metric.is_empty() || metric.split('.').any(str::is_empty) {
        return cx.err(
            a.metric.span(),
            "metric must be a dotted path into summary.json, e.g. \"probe.pairs.a->b.loss_ratio\"",
        );
    }
    if a.min.is_none() && a.max.is_none() && a.equals.is_none() {
        return cx.err(span, "an [[assert]] needs at least one of min, max, equals");
    }
    for v in [&a.min, &a.max, &a.equals].into_iter().flatten() {
        if !v.get_ref().is_finite() {
            return cx.err(v.span(), "bounds must be finite numbers");
        }
    }
    match (&a.min, &a.max) {
        (Some(lo), Some(hi)) if lo.get_ref() > hi.get_ref() => {
            return cx.err(hi.span(), format!("max {} is below min {}", hi.get_ref(), lo.get_ref()));
        }
        _ => {}
    }
    let share_of_seeds = match &a.share_of_seeds {
        Some(v) if *v.get_ref() <= 0.0 => return cx.err(v.span(), "share_of_seeds must be above 0 (1 = every seed)"),
        Some(v) => cx.ratio(v, "share_of_seeds")?,
        None => 1.0,
    };
    if let Some(id) = &a.id
        && (id.get_ref().is_empty() || !id.get_ref().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return cx.err(id.span(), "an assertion id is a short name of letters, digits, '-' and '_'");
    }
    Ok(Assertion {
        name: a.name.get_ref().clone(),
        line: cx.line_of(&span),
        metric: metric.clone(),
        min: a.min.as_ref().map(|v| *v.get_ref()),
        max: a.max.as_ref().map(|v| *v.get_ref()),
        equals: a.equals.as_ref().map(|v| *v.get_ref()),
        id: a.id.as_ref().map(|v| v.get_ref().clone()),
        given: a.given.as_ref().map(|v| v.get_ref().clone()),
        share_of_seeds,
    })
}

/// Ids are unique, and an `if` names an assertion above it (so conditions cannot loop). The ids
/// seen so far are kept in a set: scanning the earlier ones for each assertion was quadratic.
fn assertion_links(cx: &Cx<'_>, asserts: &[S<RawAssert>]) -> Res<()> {
    let mut above: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for a in asserts {
        let a = a.get_ref();
        if let Some(given) = &a.given
            && !above.contains(given.get_ref().as_str())
        {
            let ids: Vec<String> = above.iter().take(12).map(|id| format!("{id:?}")).collect();
            let more = if above.len() > 12 { ", …" } else { "" };
            let known = if ids.is_empty() { "none".to_string() } else { ids.join(", ") + more };
            return cx.err(
                given.span(),
                format!("`if` must name the id of an assertion above this one; ids above: {known}"),
            );
        }
        if let Some(id) = &a.id
            && !above.insert(id.get_ref().as_str())
        {
            return cx.err(id.span(), format!("assertion id {:?} is used twice", id.get_ref()));
        }
    }
    Ok(())
}
