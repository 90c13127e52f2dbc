//! Placing the stack's nodes: which cluster a sentinel or proxy serves, which servers an
//! HAProxy balances over, where a PgBouncer forwards, and where each client region sends its
//! reads (nearest PgBouncer first) and its writes (the primary region's PgBouncers).

use crate::diag::Diagnostic;
use crate::model::{Node, NodeIdx, NodeKind, RegionLink};
use crate::raw::{RawNode, RawScenario, S};
use crate::stack::{RawStackNode, StackRole};

type Res<T> = Result<T, Diagnostic>;

/// The table a node kind may carry, and the keys it may use.
fn table_of(n: &RawNode) -> [(&'static str, &Option<S<RawStackNode>>); 4] {
    [("stolon", &n.stolon), ("haproxy", &n.haproxy), ("pgbouncer", &n.pgbouncer), ("clients", &n.clients)]
}

pub(crate) fn check_tables(path: &str, text: &str, n: &RawNode, kind: NodeKind) -> Res<()> {
    let own = match kind {
        NodeKind::StolonSentinel | NodeKind::StolonProxy => "stolon",
        NodeKind::Haproxy => "haproxy",
        NodeKind::Pgbouncer => "pgbouncer",
        NodeKind::Clients => "clients",
        _ => "",
    };
    for (name, t) in table_of(n) {
        let Some(t) = t else { continue };
        if name != own {
            let msg = format!("[node.{name}] does not apply to a node of kind {:?}", kind.name());
            return Err(Diagnostic::at(path, text, t.span(), msg));
        }
        let r = t.get_ref();
        let allowed: &[&str] = match name {
            "stolon" => &["cluster"],
            "haproxy" => &["write", "read"],
            "pgbouncer" => &["haproxy"],
            _ => &["share"],
        };
        let given = [
            ("cluster", r.cluster.as_ref().map(|v| v.span())),
            ("write", r.write.as_ref().map(|v| v.span())),
            ("read", r.read.as_ref().map(|v| v.span())),
            ("haproxy", r.haproxy.as_ref().map(|v| v.span())),
            ("share", r.share.as_ref().map(|v| v.span())),
        ];
        for (key, span) in given {
            if let Some(span) = span
                && !allowed.contains(&key)
            {
                let msg = format!("`{key}` does not apply to [node.{name}]; it takes: {}", allowed.join(", "));
                return Err(Diagnostic::at(path, text, span, msg));
            }
        }
    }
    Ok(())
}

pub(crate) fn resolve(
    path: &str,
    text: &str,
    raw: &RawScenario,
    nodes: &mut [Node],
    clusters: &[crate::ClusterSpec],
    region_links: &[RegionLink],
    has_tenants: bool,
) -> Res<()> {
    let at = |span: std::ops::Range<usize>, msg: String| Err(Diagnostic::at(path, text, span, msg));
    let node_idx = |n: &S<String>| -> Res<usize> {
        nodes
            .iter()
            .position(|x| &x.name == n.get_ref())
            .ok_or_else(|| Diagnostic::at(path, text, n.span(), format!("unknown node {:?}", n.get_ref())))
    };
    let of_kind = |kind: NodeKind, region: Option<usize>| -> Vec<NodeIdx> {
        (0..nodes.len())
            .filter(|&j| nodes[j].kind == kind && region.is_none_or(|r| nodes[j].region == r))
            .map(|j| j as NodeIdx)
            .collect()
    };
    let clients = of_kind(NodeKind::Clients, None);
    if !clients.is_empty() && !has_tenants {
        return Err(Diagnostic::whole_file(path, "`clients` nodes need at least one [[tenant]] to generate load"));
    }
    // The primary region: where the first primary (non-standby) cluster's primary runs.
    let primary_region = clusters.iter().position(|c| c.standby_of.is_none()).and_then(|c| {
        nodes.iter().find(|n| n.pg.as_ref().is_some_and(|p| p.cluster == c && p.upstream.is_none())).map(|n| n.region)
    });
    let latency_ns = |a: usize, b: usize| -> u128 {
        if a == b {
            return 0;
        }
        region_links
            .iter()
            .find(|l| (l.a, l.b) == (a, b) || (l.a, l.b) == (b, a))
            .map_or(u128::MAX, |l| l.latency.as_nanos())
    };
    let mut roles: Vec<Option<StackRole>> = vec![None; nodes.len()];
    for (i, rn) in raw.nodes.iter().enumerate() {
        let rn = rn.get_ref();
        let region = nodes[i].region;
        let table = |t: &Option<S<RawStackNode>>| t.as_ref().map(|t| t.get_ref().clone()).unwrap_or_default();
        roles[i] = match nodes[i].kind {
            NodeKind::StolonSentinel | NodeKind::StolonProxy => {
                let t = table(&rn.stolon);
                let cluster = match &t.cluster {
                    Some(c) => match clusters.iter().position(|x| &x.name == c.get_ref()) {
                        Some(k) => k,
                        None => return at(c.span(), format!("unknown pg_cluster {:?}", c.get_ref())),
                    },
                    None if clusters.len() == 1 => 0,
                    None => {
                        return at(rn.name.span(), "with several pg_clusters, [node.stolon] needs `cluster`".into());
                    }
                };
                Some(if nodes[i].kind == NodeKind::StolonSentinel {
                    StackRole::Sentinel { cluster }
                } else {
                    StackRole::Proxy { cluster }
                })
            }
            NodeKind::Haproxy => {
                let t = table(&rn.haproxy);
                let list = |v: &Option<S<Vec<S<String>>>>, kind: NodeKind, what: &str| -> Res<Vec<NodeIdx>> {
                    let Some(v) = v else { return Ok(of_kind(kind, Some(region))) };
                    let mut out = Vec::new();
                    for n in v.get_ref() {
                        let j = node_idx(n)?;
                        if nodes[j].kind != kind {
                            let msg = format!("{:?} is not a {} node ({what} backend)", n.get_ref(), kind.name());
                            return Err(Diagnostic::at(path, text, n.span(), msg));
                        }
                        out.push(j as NodeIdx);
                    }
                    Ok(out)
                };
                let write = list(&t.write, NodeKind::StolonProxy, "write")?;
                let read = list(&t.read, NodeKind::Postgres, "read")?;
                if write.is_empty() && read.is_empty() {
                    let msg = format!(
                        "haproxy {:?} has no servers: no stolon-proxy or postgres node in its region",
                        nodes[i].name
                    );
                    return at(rn.name.span(), msg);
                }
                Some(StackRole::Haproxy { write, read })
            }
            NodeKind::Pgbouncer => {
                let t = table(&rn.pgbouncer);
                let haproxy = match &t.haproxy {
                    Some(h) => {
                        let j = node_idx(h)?;
                        if nodes[j].kind != NodeKind::Haproxy {
                            return at(h.span(), format!("{:?} is not an haproxy node", h.get_ref()));
                        }
                        j as NodeIdx
                    }
                    None => match of_kind(NodeKind::Haproxy, Some(region)).first() {
                        Some(&h) => h,
                        None => {
                            let msg = format!(
                                "pgbouncer {:?} has no haproxy in its region; set [node.pgbouncer] haproxy",
                                nodes[i].name
                            );
                            return at(rn.name.span(), msg);
                        }
                    },
                };
                Some(StackRole::Pgbouncer { haproxy })
            }
            NodeKind::Clients => {
                let t = table(&rn.clients);
                let share = match &t.share {
                    Some(s) if !(*s.get_ref() > 0.0 && *s.get_ref() <= 1.0) => {
                        return at(s.span(), "share must be in (0, 1]".into());
                    }
                    Some(s) => *s.get_ref(),
                    None => 1.0 / clients.len() as f64,
                };
                let mut read_entries = of_kind(NodeKind::Pgbouncer, None);
                read_entries.sort_by_key(|&j| (latency_ns(region, nodes[j as usize].region), j));
                read_entries.retain(|&j| latency_ns(region, nodes[j as usize].region) != u128::MAX);
                let write_entries = primary_region.map_or_else(Vec::new, |r| of_kind(NodeKind::Pgbouncer, Some(r)));
                if read_entries.is_empty() {
                    return at(rn.name.span(), format!("clients {:?} can reach no pgbouncer node", nodes[i].name));
                }
                Some(StackRole::Clients { share, read_entries, write_entries })
            }
            _ => None,
        };
    }
    for (n, role) in nodes.iter_mut().zip(roles) {
        n.stack = role;
    }
    Ok(())
}
