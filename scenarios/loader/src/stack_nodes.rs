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
    let roles = {
        let p = Placement { path, text, nodes, clusters, region_links };
        let clients = p.of_kind(NodeKind::Clients, None).len();
        if clients > 0 && !has_tenants {
            return Err(Diagnostic::whole_file(path, "`clients` nodes need at least one [[tenant]] to generate load"));
        }
        let mut roles: Vec<Option<StackRole>> = Vec::with_capacity(nodes.len());
        for (i, rn) in raw.nodes.iter().enumerate() {
            roles.push(p.role(i, rn.get_ref(), clients)?);
        }
        roles
    };
    for (n, role) in nodes.iter_mut().zip(roles) {
        n.stack = role;
    }
    Ok(())
}

/// What the stack's nodes are placed against: the nodes, clusters and region links resolved so far.
struct Placement<'a> {
    path: &'a str,
    text: &'a str,
    nodes: &'a [Node],
    clusters: &'a [crate::ClusterSpec],
    region_links: &'a [RegionLink],
}

/// A node's `[node.<table>]`, or an empty one.
fn table(t: &Option<S<RawStackNode>>) -> RawStackNode {
    t.as_ref().map(|t| t.get_ref().clone()).unwrap_or_default()
}

impl Placement<'_> {
    fn at<T>(&self, span: std::ops::Range<usize>, msg: String) -> Res<T> {
        Err(Diagnostic::at(self.path, self.text, span, msg))
    }

    fn node_idx(&self, n: &S<String>) -> Res<usize> {
        match self.nodes.iter().position(|x| &x.name == n.get_ref()) {
            Some(j) => Ok(j),
            None => self.at(n.span(), format!("unknown node {:?}", n.get_ref())),
        }
    }

    /// The nodes of `kind`, in `region` if given, in declared order.
    fn of_kind(&self, kind: NodeKind, region: Option<usize>) -> Vec<NodeIdx> {
        let nodes = self.nodes;
        (0..nodes.len())
            .filter(|&j| nodes[j].kind == kind && region.is_none_or(|r| nodes[j].region == r))
            .map(|j| j as NodeIdx)
            .collect()
    }

    /// Node `i`'s role (`clients`: how many client regions share the load).
    fn role(&self, i: usize, rn: &RawNode, clients: usize) -> Res<Option<StackRole>> {
        Ok(match self.nodes[i].kind {
            NodeKind::StolonSentinel => Some(StackRole::Sentinel { cluster: self.stolon_cluster(rn)? }),
            NodeKind::StolonProxy => Some(StackRole::Proxy { cluster: self.stolon_cluster(rn)? }),
            NodeKind::Haproxy => Some(self.haproxy(i, rn)?),
            NodeKind::Pgbouncer => Some(self.pgbouncer(i, rn)?),
            NodeKind::Clients => Some(self.clients(i, rn, clients)?),
            _ => None,
        })
    }

    /// The cluster a sentinel or proxy serves: `[node.stolon] cluster`, or the only one.
    fn stolon_cluster(&self, rn: &RawNode) -> Res<usize> {
        match &table(&rn.stolon).cluster {
            Some(c) => match self.clusters.iter().position(|x| &x.name == c.get_ref()) {
                Some(k) => Ok(k),
                None => self.at(c.span(), format!("unknown pg_cluster {:?}", c.get_ref())),
            },
            None if self.clusters.len() == 1 => Ok(0),
            None => self.at(rn.name.span(), "with several pg_clusters, [node.stolon] needs `cluster`".into()),
        }
    }

    /// An HAProxy's backends: as listed, or its region's stolon-proxies (write) and servers (read).
    fn haproxy(&self, i: usize, rn: &RawNode) -> Res<StackRole> {
        let t = table(&rn.haproxy);
        let region = self.nodes[i].region;
        let write = self.backend(&t.write, NodeKind::StolonProxy, "write", region)?;
        let read = self.backend(&t.read, NodeKind::Postgres, "read", region)?;
        if write.is_empty() && read.is_empty() {
            let msg = format!(
                "haproxy {:?} has no servers: no stolon-proxy or postgres node in its region",
                self.nodes[i].name
            );
            return self.at(rn.name.span(), msg);
        }
        Ok(StackRole::Haproxy { write, read })
    }

    fn backend(&self, v: &Option<S<Vec<S<String>>>>, kind: NodeKind, what: &str, region: usize) -> Res<Vec<NodeIdx>> {
        let Some(v) = v else { return Ok(self.of_kind(kind, Some(region))) };
        let mut out = Vec::new();
        for n in v.get_ref() {
            let j = self.node_idx(n)?;
            if self.nodes[j].kind != kind {
                return self.at(n.span(), format!("{:?} is not a {} node ({what} backend)", n.get_ref(), kind.name()));
            }
            out.push(j as NodeIdx);
        }
        Ok(out)
    }

    /// Where a PgBouncer forwards: the HAProxy named, or the first in its region.
    fn pgbouncer(&self, i: usize, rn: &RawNode) -> Res<StackRole> {
        let haproxy = match &table(&rn.pgbouncer).haproxy {
            Some(h) => {
                let j = self.node_idx(h)?;
                if self.nodes[j].kind != NodeKind::Haproxy {
                    return self.at(h.span(), format!("{:?} is not an haproxy node", h.get_ref()));
                }
                j as NodeIdx
            }
            None => match self.of_kind(NodeKind::Haproxy, Some(self.nodes[i].region)).first() {
                Some(&h) => h,
                None => {
                    let msg = format!(
                        "pgbouncer {:?} has no haproxy in its region; set [node.pgbouncer] haproxy",
                        self.nodes[i].name
                    );
                    return self.at(rn.name.span(), msg);
                }
            },
        };
        Ok(StackRole::Pgbouncer { haproxy })
    }

    /// A client region: its share of the load (equal unless set), its reads to the nearest
    /// reachable PgBouncers first, its writes to the primary region's.
    fn clients(&self, i: usize, rn: &RawNode, clients: usize) -> Res<StackRole> {
        let share = match &table(&rn.clients).share {
            Some(s) if !(*s.get_ref() > 0.0 && *s.get_ref() <= 1.0) => {
                return self.at(s.span(), "share must be in (0, 1]".into());
            }
            Some(s) => *s.get_ref(),
            None => 1.0 / clients as f64,
        };
        let region = self.nodes[i].region;
        let latency_ns = |j: NodeIdx| self.latency_ns(region, self.nodes[j as usize].region);
        let mut read_entries = self.of_kind(NodeKind::Pgbouncer, None);
        read_entries.sort_by_key(|&j| (latency_ns(j), j));
        read_entries.retain(|&j| latency_ns(j) != u128::MAX);
        let write_entries = self.primary_region().map_or_else(Vec::new, |r| self.of_kind(NodeKind::Pgbouncer, Some(r)));
        if read_entries.is_empty() {
            return self.at(rn.name.span(), format!("clients {:?} can reach no pgbouncer node", self.nodes[i].name));
        }
        Ok(StackRole::Clients { share, read_entries, write_entries })
    }

    /// The primary region: where the first primary (non-standby) cluster's primary runs.
    fn primary_region(&self) -> Option<usize> {
        self.clusters.iter().position(|c| c.standby_of.is_none()).and_then(|c| {
            let primary =
                self.nodes.iter().find(|n| n.pg.as_ref().is_some_and(|p| p.cluster == c && p.upstream.is_none()));
            primary.map(|n| n.region)
        })
    }

    /// One-way latency between two regions; `u128::MAX` when no region link joins them.
    fn latency_ns(&self, a: usize, b: usize) -> u128 {
        if a == b {
            return 0;
        }
        self.region_links
            .iter()
            .find(|l| (l.a, l.b) == (a, b) || (l.a, l.b) == (b, a))
            .map_or(u128::MAX, |l| l.latency.as_nanos())
    }
}
