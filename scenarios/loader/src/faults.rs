//! `[[fault]]` validation: which fields each kind takes, and resolving its targets.

use std::ops::Range;
use std::time::Duration;

use crate::diag::Diagnostic;
use crate::lint::hint;
use crate::model::*;
use crate::raw::*;
use crate::validate::{FaultCx, Topo};

type Res<T> = Result<T, Diagnostic>;

/// Kind name, required fields, optional fields (besides at/for/until).
const KINDS: &[(&str, &[&str], &[&str])] = &[
    ("partition", &["from", "to"], &["one_way"]),
    ("link-down", &["between"], &["one_way"]),
    ("link-degraded", &["between"], &["one_way", "loss_ratio", "extra_latency", "extra_jitter", "duplicate_ratio"]),
    ("link-flapping", &["between", "period"], &["one_way", "down_for"]),
    ("switch-down", &["switch"], &[]),
    ("switch-degraded", &["switch", "loss_ratio"], &["ports"]),
    ("switch-flapping", &["switch", "period"], &["down_for"]),
    ("node-crash", &["node"], &[]),
    ("node-pause", &["node"], &[]),
    ("process-crash", &["node"], &[]),
    ("process-pause", &["node"], &[]),
    ("disk-stall", &["node"], &[]),
    ("disk-errors", &["node"], &["error_ratio"]),
    ("disk-full", &["node"], &[]),
    ("disk-slow", &["node", "factor"], &[]),
    ("apply-slow", &["node", "factor"], &[]),
    ("walreceiver-pause", &["node"], &[]),
];

/// Every fault kind's name.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.0).collect()
}

/// Kinds whose fault only makes sense for a while (a permanent pause or stall is a crash).
const NEED_END: &[&str] = &["node-pause", "process-pause", "disk-stall", "walreceiver-pause"];

fn present(f: &RawFault) -> Vec<(&'static str, Range<usize>)> {
    let mut v = Vec::new();
    macro_rules! field {
        ($($name:ident => $key:literal),*) => {
            $(if let Some(x) = &f.$name { v.push(($key, x.span())); })*
        };
    }
    field!(node => "node", switch => "switch", between => "between", from => "from", to => "to",
        one_way => "one_way", ports => "ports", loss_ratio => "loss_ratio", extra_latency => "extra_latency",
        extra_jitter => "extra_jitter", duplicate_ratio => "duplicate_ratio",
        period => "period", down_for => "down_for", factor => "factor", error_ratio => "error_ratio");
    v
}

pub(crate) fn fault(cx: FaultCx<'_>, topo: &Topo<'_>, index: u32, sf: &S<RawFault>) -> Res<Fault> {
    let span = sf.span();
    let f = sf.get_ref();
    let kind_name = f.kind.get_ref().as_str();
    check_fields(&cx, f, kind_name)?;
    let (at, until) = timing(&cx, f, kind_name)?;
    let fields = Fields {
        cx: &cx,
        topo,
        f,
        node_names: topo.nodes.iter().map(|n| n.name.clone()).collect(),
        switch_names: topo.switches.iter().map(|s| s.name.clone()).collect(),
    };
    let kind = fields.kind(kind_name)?;
    Ok(Fault { index, line: cx.line_of(&span), at, until, kind })
}

/// The kind is known, and the fault has the fields it needs and none it does not take.
fn check_fields(cx: &FaultCx<'_>, f: &RawFault, kind_name: &str) -> Res<()> {
    let Some((_, required, optional)) = KINDS.iter().find(|(k, _, _)| *k == kind_name) else {
        let names: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
        return cx.err(
            f.kind.span(),
            format!(
                "unknown fault kind {kind_name:?}{}; expected one of: {}",
                hint(kind_name, names.iter().copied()),
                names.join(", ")
            ),
        );
    };
    let fields = present(f);
    for (name, fspan) in &fields {
        if !required.contains(name) && !optional.contains(name) {
            let takes: Vec<&str> = required.iter().chain(optional.iter()).copied().collect();
            return cx.err(
                fspan.clone(),
                format!(
                    "fault kind {kind_name:?} does not take `{name}`{}; it takes: {}",
                    hint(name, takes.iter().copied()),
                    takes.join(", ")
                ),
            );
        }
    }
    for name in *required {
        if !fields.iter().any(|(n, _)| n == name) {
            return cx.err(f.kind.span(), format!("fault kind {kind_name:?} needs `{name}`"));
        }
    }
    Ok(())
}

/// When the fault starts, and when it heals (`for` or `until`; never if neither).
fn timing(cx: &FaultCx<'_>, f: &RawFault, kind_name: &str) -> Res<(Duration, Option<Duration>)> {
    let at = range::FAULT_AT.check(cx.path, cx.text, &f.at)?;
    let until = match (&f.for_, &f.until) {
        (Some(d), None) => Some(at + range::FAULT_FOR.check(cx.path, cx.text, d)?),
        (None, Some(u)) => {
            if range::FAULT_UNTIL.check(cx.path, cx.text, u)? <= at {
                return cx.err(u.span(), format!("until ({:?}) must be after at ({:?})", u.get_ref().0, at));
            }
            Some(u.get_ref().0)
        }
        (Some(_), Some(u)) => return cx.err(u.span(), "give either `for` or `until`, not both"),
        (None, None) => None,
    };
    if until.is_none() && NEED_END.contains(&kind_name) {
        return cx.err(f.kind.span(), format!("fault kind {kind_name:?} needs `for` or `until`"));
    }
    Ok((at, until))
}

/// A fault's fields, read as its kind needs them (`check_fields` made sure they are there).
struct Fields<'a> {
    cx: &'a FaultCx<'a>,
    topo: &'a Topo<'a>,
    f: &'a RawFault,
    node_names: Vec<String>,
    switch_names: Vec<String>,
}

impl Fields<'_> {
    fn kind(&self, kind_name: &str) -> Res<FaultKind> {
        let (cx, f) = (self.cx, self.f);
        let one_way = f.one_way.as_ref().is_some_and(|b| *b.get_ref());
        Ok(match kind_name {
            "partition" => FaultKind::Partition {
                from: targets(cx, self.topo, f.from.as_ref().unwrap())?,
                to: targets(cx, self.topo, f.to.as_ref().unwrap())?,
                one_way,
            },
            "link-down" => {
                let (a, b) = self.between()?;
                FaultKind::LinkDown { a, b, one_way }
            }
            "link-degraded" => self.link_degraded(one_way)?,
            "link-flapping" => {
                let (a, b) = self.between()?;
                let (period, down_for) = self.flap()?;
                FaultKind::LinkFlapping { a, b, one_way, period, down_for }
            }
            "switch-down" => FaultKind::SwitchDown { switch: self.switch()? },
            "switch-degraded" => {
                let sw = self.switch()?;
                FaultKind::SwitchDegraded {
                    switch: sw,
                    loss_ratio: self.loss()?,
                    ports: ports(cx, self.topo, sw, f.ports.as_ref())?,
                }
            }
            "switch-flapping" => {
                let sw = self.switch()?;
                let (period, down_for) = self.flap()?;
                FaultKind::SwitchFlapping { switch: sw, period, down_for }
            }
            "node-crash" => FaultKind::NodeCrash { node: self.node()?, scope: Scope::Host },
            "node-pause" => FaultKind::NodePause { node: self.node()?, scope: Scope::Host },
            "process-crash" => FaultKind::NodeCrash { node: self.node()?, scope: Scope::Process },
            "process-pause" => FaultKind::NodePause { node: self.node()?, scope: Scope::Process },
            "disk-stall" => FaultKind::DiskStall { node: self.node()? },
            "disk-errors" => {
                let error_ratio =
                    f.error_ratio.as_ref().map(|r| cx.ratio(r, "error_ratio")).transpose()?.unwrap_or(1.0);
                FaultKind::DiskErrors { node: self.node()?, error_ratio }
            }
            "disk-full" => FaultKind::DiskFull { node: self.node()? },
            "disk-slow" => {
                let factor = range::SLOW_FACTOR.check(cx.path, cx.text, f.factor.as_ref().unwrap())?;
                FaultKind::DiskSlow { node: self.node()?, factor }
            }
            "apply-slow" | "walreceiver-pause" => self.inside_postgres(kind_name)?,
            _ => unreachable!("every kind in KINDS is handled"),
        })
    }

    fn link_degraded(&self, one_way: bool) -> Res<FaultKind> {
        let (cx, f) = (self.cx, self.f);
        let (a, b) = self.between()?;
        if f.loss_ratio.is_none()
            && f.extra_latency.is_none()
            && f.extra_jitter.is_none()
            && f.duplicate_ratio.is_none()
        {
            return cx.err(
                f.kind.span(),
                "link-degraded needs at least one of loss_ratio, extra_latency, extra_jitter, duplicate_ratio",
            );
        }
        let extra_latency = range::EXTRA_LATENCY.or(cx.path, cx.text, &f.extra_latency, Duration::ZERO)?;
        let extra_jitter = range::EXTRA_JITTER.or(cx.path, cx.text, &f.extra_jitter, Duration::ZERO)?;
        let duplicate_ratio = f.duplicate_ratio.as_ref().map(|d| cx.ratio(d, "duplicate_ratio")).transpose()?;
        Ok(FaultKind::LinkDegraded {
            a,
            b,
            one_way,
            loss_ratio: self.loss()?,
            extra_latency,
            extra_jitter,
            duplicate_ratio: duplicate_ratio.unwrap_or(0.0),
        })
    }

    /// apply-slow and walreceiver-pause: faults inside a PostgreSQL server.
    fn inside_postgres(&self, kind_name: &str) -> Res<FaultKind> {
        let (cx, f) = (self.cx, self.f);
        let n = self.node()?;
        if self.topo.nodes[n as usize].kind != NodeKind::Postgres {
            return cx.err(f.node.as_ref().unwrap().span(), format!("fault kind {kind_name:?} needs a postgres node"));
        }
        if kind_name == "walreceiver-pause" {
            return Ok(FaultKind::WalReceiverPause { node: n });
        }
        let factor = range::SLOW_FACTOR.check(cx.path, cx.text, f.factor.as_ref().unwrap())?;
        Ok(FaultKind::ApplySlow { node: n, factor })
    }

    fn node(&self) -> Res<NodeIdx> {
        Ok(self.cx.lookup(&self.node_names, self.f.node.as_ref().unwrap(), "node")? as NodeIdx)
    }

    fn switch(&self) -> Res<usize> {
        self.cx.lookup(&self.switch_names, self.f.switch.as_ref().unwrap(), "switch")
    }

    fn between(&self) -> Res<(NodeIdx, NodeIdx)> {
        let cx = self.cx;
        let b = self.f.between.as_ref().unwrap();
        let v = b.get_ref();
        if v.len() != 2 {
            return cx.err(b.span(), format!("between takes exactly two node names, got {}", v.len()));
        }
        let (x, y) = (cx.lookup(&self.node_names, &v[0], "node")?, cx.lookup(&self.node_names, &v[1], "node")?);
        if x == y {
            return cx.err(b.span(), "between names the same node twice");
        }
        Ok((x as NodeIdx, y as NodeIdx))
    }

    /// A flapping fault's period and how long each down phase lasts (half the period unless set).
    fn flap(&self) -> Res<(Duration, Duration)> {
        let (cx, f) = (self.cx, self.f);
        let period = range::PERIOD.check(cx.path, cx.text, f.period.as_ref().unwrap())?;
        let down_for = match &f.down_for {
            Some(d) => {
                let d2 = range::DOWN_FOR.check(cx.path, cx.text, d)?;
                if d2 >= period {
                    return cx.err(d.span(), "down_for must be shorter than period");
                }
                d2
            }
            None => period / 2,
        };
        Ok((period, down_for))
    }

    fn loss(&self) -> Res<f64> {
        let loss = self.f.loss_ratio.as_ref().map(|l| self.cx.ratio(l, "loss_ratio")).transpose()?;
        Ok(loss.unwrap_or(0.0))
    }
}

/// Node, rack or region names to the set of nodes they contain.
fn targets(cx: &FaultCx<'_>, topo: &Topo<'_>, names: &S<Vec<S<String>>>) -> Res<Vec<NodeIdx>> {
    if names.get_ref().is_empty() {
        return cx.err(names.span(), "expected at least one node, rack or region name");
    }
    let mut out = Vec::new();
    for n in names.get_ref() {
        let s = n.get_ref();
        let members: Vec<NodeIdx> = if let Some(i) = topo.nodes.iter().position(|x| &x.name == s) {
            vec![i as NodeIdx]
        } else if let Some(r) = topo.racks.iter().position(|x| &x.name == s) {
            (0..topo.nodes.len()).filter(|&i| topo.nodes[i].rack == r).map(|i| i as NodeIdx).collect()
        } else if let Some(g) = topo.regions.iter().position(|x| &x.name == s) {
            (0..topo.nodes.len()).filter(|&i| topo.nodes[i].region == g).map(|i| i as NodeIdx).collect()
        } else {
            let known = topo.nodes.iter().map(|x| x.name.as_str());
            let known = known.chain(topo.racks.iter().map(|x| x.name.as_str()));
            let near = hint(s, known.chain(topo.regions.iter().map(|x| x.name.as_str())));
            return cx.err(n.span(), format!("unknown node, rack or region {s:?}{near}"));
        };
        out.extend(members);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The ports a switch has: ToR: its nodes and "uplink"; core: its region's ToR switches and "wan".
pub fn switch_ports(topo_nodes: &[Node], switches: &[Switch], sw: usize) -> Vec<String> {
    let s = &switches[sw];
    let mut ports: Vec<String> = match s.role {
        SwitchRole::Tor => topo_nodes.iter().filter(|n| n.switch == sw).map(|n| n.name.clone()).collect(),
        SwitchRole::Core => switches
            .iter()
            .filter(|t| t.role == SwitchRole::Tor && t.region == s.region)
            .map(|t| t.name.clone())
            .collect(),
    };
    ports.push(if s.role == SwitchRole::Tor { "uplink".into() } else { "wan".into() });
    ports
}

fn ports(cx: &FaultCx<'_>, topo: &Topo<'_>, sw: usize, raw: Option<&PortPairs>) -> Res<Vec<(PortName, PortName)>> {
    let Some(raw) = raw else { return Ok(vec![]) };
    let known = switch_ports(topo.nodes, topo.switches, sw);
    let mut out = Vec::new();
    for p in raw.get_ref() {
        let v = p.get_ref();
        if v.len() != 2 {
            return cx.err(p.span(), format!("each entry of ports is a pair of port names, got {}", v.len()));
        }
        for n in v {
            if !known.contains(n.get_ref()) {
                return cx.err(
                    n.span(),
                    format!(
                        "switch {:?} has no port {:?}; its ports are: {}",
                        topo.switches[sw].name,
                        n.get_ref(),
                        known.join(", ")
                    ),
                );
            }
        }
        out.push((v[0].get_ref().clone(), v[1].get_ref().clone()));
    }
    Ok(out)
}
