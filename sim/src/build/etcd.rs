//! etcd's members, and the KV test clients that talk to them: the writer and the elector.

use models::NodeId;
use models::etcd::{ElectorConfig, EtcdConfig, WriterConfig};
use scenarios::Scenario;

pub(super) fn member(sc: &Scenario, members: &[NodeId]) -> EtcdConfig {
    EtcdConfig {
        peers: members.to_vec(),
        heartbeat_interval: sc.etcd.heartbeat_interval,
        election_timeout: sc.etcd.election_timeout,
        pre_vote: sc.etcd.pre_vote,
        check_quorum: sc.sim.check_quorum,
        planted_bug: sc.sim.planted_bug,
    }
}

pub(super) fn writer(sc: &Scenario, members: &[NodeId]) -> WriterConfig {
    let w = &sc.etcd_writer;
    WriterConfig {
        members: members.to_vec(),
        start_after: w.start_after,
        write_interval: w.write_interval,
        request_timeout: w.request_timeout,
    }
}

pub(super) fn elector(sc: &Scenario, members: &[NodeId]) -> ElectorConfig {
    let e = &sc.etcd_elector;
    ElectorConfig {
        members: members.to_vec(),
        key: "/pgsim/election".into(),
        ttl_s: e.ttl_s,
        tick: e.tick,
        request_timeout: e.request_timeout,
    }
}
