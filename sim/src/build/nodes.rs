//! One configuration per node, made once from the scenario; the factory starts a node's model
//! from it and the durable state of the incarnation.

use std::collections::BTreeMap;
use std::sync::Arc;

use models::NodeId;
use models::etcd::{ElectorConfig, EtcdConfig, EtcdElector, EtcdMember, EtcdWriter, WriterConfig};
use models::flow::balancer::{Haproxy, HaproxyConfig};
use models::flow::bouncer::{Bouncer, BouncerConfig};
use models::flow::client::{Client, ClientConfig};
use models::flow::proxy_relay::ProxyRelay;
use models::pg::{PgConfig, PgDurable, PgNode};
use models::probe::{Probe, ProbeConfig};
use models::stack::{Hosted, PgKeeperHost, ProxyHost, StackDurable, StackNode};
use models::stolon::proxy::{ProxyConfig, ProxyControl};
use models::stolon::sentinel::{Sentinel, SentinelConfig};
use models::stolon::{Keeper, KeeperConfig};
use scenarios::{NodeKind, Scenario, StackRole};

use super::{etcd, flow, network, nodes_of, postgres, stolon};
use crate::engine::Factory;
use crate::net::Network;

/// What a node runs, configured.
enum NodeConfig {
    Probe(ProbeConfig),
    Etcd(EtcdConfig),
    Writer(WriterConfig),
    Elector(ElectorConfig),
    Postgres(Box<Server>),
    Sentinel(SentinelConfig),
    Proxy(ProxyConfig),
    Haproxy(HaproxyConfig),
    Bouncer(BouncerConfig),
    Clients(ClientConfig),
}

/// A PostgreSQL server, with its keeper when sentinels manage its cluster.
struct Server {
    pg: PgConfig,
    keeper: Option<KeeperOf>,
}

/// A keeper, and what a rebuild of its server copies per second from each other server (for
/// the resyncs it starts on its own).
struct KeeperOf {
    config: KeeperConfig,
    rebuild_bytes_per_s: BTreeMap<NodeId, u64>,
}

/// Builds each node's model for an incarnation, from its durable state.
pub(super) fn factory(sc: &Scenario, net: &Network) -> Factory<StackNode> {
    let configs: Vec<NodeConfig> = (0..sc.nodes.len()).map(|i| config(sc, net, i as NodeId)).collect();
    Arc::new(move |id: NodeId, durable: StackDurable| start(&configs[id as usize], durable))
}

fn config(sc: &Scenario, net: &Network, id: NodeId) -> NodeConfig {
    let node = &sc.nodes[id as usize];
    let etcd = nodes_of(sc, NodeKind::Etcd);
    match (node.kind, &node.stack) {
        (NodeKind::Probe, _) => NodeConfig::Probe(network::probe(sc, &nodes_of(sc, NodeKind::Probe), id)),
        (NodeKind::Etcd, _) => NodeConfig::Etcd(etcd::member(sc, &etcd)),
        (NodeKind::EtcdWriter, _) => NodeConfig::Writer(etcd::writer(sc, &etcd)),
        (NodeKind::EtcdElector, _) => NodeConfig::Elector(etcd::elector(sc, &etcd)),
        (NodeKind::Postgres, _) => {
            let spec = node.pg.as_ref().expect("validated: a postgres node has its settings");
            let keeper = stolon::is_managed(sc, spec.cluster).then(|| KeeperOf {
                config: stolon::keeper(sc, &etcd, &node.name, spec),
                rebuild_bytes_per_s: network::copy_throughputs_to(sc, net, id),
            });
            NodeConfig::Postgres(Box::new(Server { pg: postgres::server(sc, spec), keeper }))
        }
        (NodeKind::StolonSentinel, Some(StackRole::Sentinel { cluster })) => {
            NodeConfig::Sentinel(stolon::sentinel(sc, &etcd, *cluster))
        }
        (NodeKind::StolonProxy, Some(StackRole::Proxy { cluster })) => {
            NodeConfig::Proxy(stolon::proxy(sc, &etcd, *cluster, &node.name))
        }
        (NodeKind::Haproxy, Some(StackRole::Haproxy { write, read })) => {
            NodeConfig::Haproxy(flow::haproxy(sc, write, read))
        }
        (NodeKind::Pgbouncer, Some(StackRole::Pgbouncer { haproxy })) => {
            NodeConfig::Bouncer(flow::bouncer(sc, *haproxy))
        }
        (NodeKind::Clients, Some(StackRole::Clients { share, read_entries, write_entries })) => {
            NodeConfig::Clients(flow::clients(sc, *share, read_entries, write_entries))
        }
        (kind, role) => unreachable!("validated: a {} node's role, not {role:?}", kind.name()),
    }
}

/// A new incarnation of a node: its model from its configuration and what it had fsynced.
fn start(config: &NodeConfig, durable: StackDurable) -> StackNode {
    match config {
        NodeConfig::Probe(c) => StackNode::Probe(Hosted::new(Probe::new(c.clone()))),
        NodeConfig::Etcd(c) => {
            let hs = match durable {
                StackDurable::Etcd(hs) => hs,
                _ => Default::default(),
            };
            StackNode::Etcd(Box::new(Hosted::new(EtcdMember::new(c.clone(), hs))))
        }
        NodeConfig::Writer(c) => StackNode::Writer(Hosted::new(EtcdWriter::new(c.clone()))),
        NodeConfig::Elector(c) => StackNode::Elector(Hosted::new(EtcdElector::new(c.clone()))),
        NodeConfig::Postgres(server) => {
            let durable = match durable {
                StackDurable::Pg(d) => d,
                _ => PgDurable::default(),
            };
            let pg = Hosted::new(PgNode::new(server.pg.clone(), durable));
            match &server.keeper {
                Some(k) => StackNode::PgKeeper(Box::new(PgKeeperHost {
                    pg,
                    keeper: Hosted::new(Keeper::new(k.config.clone())),
                    rebuild_bytes_per_s: k.rebuild_bytes_per_s.clone(),
                })),
                None => StackNode::Pg(Box::new(pg)),
            }
        }
        NodeConfig::Sentinel(c) => StackNode::Sentinel(Box::new(Hosted::new(Sentinel::new(c.clone())))),
        NodeConfig::Proxy(c) => StackNode::StolonProxy(Box::new(ProxyHost::new(
            ProxyControl::new(c.clone()),
            ProxyRelay::new(Default::default()),
        ))),
        NodeConfig::Haproxy(c) => StackNode::Haproxy(Box::new(Hosted::new(Haproxy::new(c.clone())))),
        NodeConfig::Bouncer(c) => StackNode::Bouncer(Box::new(Hosted::new(Bouncer::new(c.clone())))),
        NodeConfig::Clients(c) => StackNode::Client(Box::new(Hosted::new(Client::new(c.clone())))),
    }
}
