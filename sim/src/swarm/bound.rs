//! The liveness bound: how long after the last fault heals the stack may take to converge,
//! derived from the scenario's own settings. Each component that runs contributes the time its
//! recovery can take in the worst case its settings allow, and the parts are added up, as if
//! every recovery had to wait for the one before it: a bound, not an estimate.

use std::time::Duration;

use scenarios::{NodeKind, RetrySpec, Scenario};

/// The bound and what it is made of (for the report and the written scenario's header).
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub total: Duration,
    pub parts: Vec<(String, Duration)>,
}

impl Bound {
    /// `total = a + b + ...`, one line.
    pub fn explain(&self) -> String {
        let parts: Vec<String> =
            self.parts.iter().map(|(what, d)| format!("{} ({what})", crate::swarm::seconds(*d))).collect();
        format!("{} = {}", crate::swarm::seconds(self.total), parts.join(" + "))
    }
}

/// What a full copy of the database moves per second at best: the slowest PostgreSQL disk
/// (read or write) or a 10 Gbit/s NIC, or a slower `[[link]]`/`[[region_link]]` bandwidth
/// that the copy might cross.
fn copy_bytes_per_s(sc: &Scenario) -> u64 {
    let nic = 1_250_000_000u64;
    let disks = sc
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Postgres)
        .map(|n| n.disk.read_bytes_per_s.min(n.disk.write_bytes_per_s));
    let links = sc.links.iter().filter_map(|l| l.bandwidth_bytes_per_s);
    let regions = sc.region_links.iter().filter_map(|l| l.bandwidth_bytes_per_s);
    disks.chain(links).chain(regions).fold(nic, u64::min).max(1)
}

pub fn liveness_bound(sc: &Scenario) -> Bound {
    if let Some(d) = sc.swarm.liveness_bound {
        return Bound { total: d, parts: vec![("[swarm] liveness_bound".into(), d)] };
    }
    let has = |k: NodeKind| sc.nodes.iter().any(|n| n.kind == k);
    let mut parts: Vec<(String, Duration)> = Vec::new();
    let mut add = |what: &str, d: Duration| parts.push((what.to_string(), d));
    if has(NodeKind::Etcd) {
        // Election timeouts are drawn in [election-timeout, 2 x election-timeout); a split vote
        // costs one more round.
        add("etcd: two elections of up to 2 x election-timeout", sc.etcd.election_timeout * 4);
        if !sc.etcd.pre_vote {
            // Without pre-vote a member that was cut off comes back with a higher term: its
            // first answer deposes the leader, and its own campaigns (which its stale log
            // cannot win) raise the term under the next candidates until one of them wins.
            add(
                "etcd without pre-vote: a member back with a higher term disrupts two more elections",
                sc.etcd.election_timeout * 4,
            );
        }
    }
    if has(NodeKind::EtcdWriter) {
        add("etcd writer: request_timeout", sc.etcd_writer.request_timeout);
    }
    let st = &sc.stolon;
    if has(NodeKind::StolonSentinel) {
        add(
            "sentinel leader: sentinelSessionTtl + sleepInterval",
            Duration::from_secs(st.sentinel_session_ttl_s) + st.sleep_interval,
        );
        add("failed keeper: failInterval + sleepInterval", st.fail_interval + st.sleep_interval);
        add("keepers apply the cluster data: 2 x sleepInterval", st.sleep_interval * 2);
    }
    if has(NodeKind::StolonProxy) {
        add("proxies: proxyTimeout + proxyCheckInterval", st.proxy_timeout + st.proxy_check_interval);
    }
    if has(NodeKind::Postgres) {
        let pg = &sc.postgres;
        add(
            "replication reconnects: wal_receiver_timeout + wal_retrieve_retry_interval",
            pg.wal_receiver_timeout + pg.wal_retrieve_retry_interval,
        );
        if has(NodeKind::StolonSentinel) {
            // A keeper that cannot follow the new timeline resyncs on its own: a full copy, or
            // with usePgrewind the retained WAL at most.
            let (what, bytes) = if st.use_pgrewind {
                ("resync with pg_rewind: wal_retained at the copy rate", pg.wal_retained_bytes)
            } else {
                ("resync with a base backup: database_size at the copy rate", pg.database_bytes)
            };
            let secs = bytes as f64 / copy_bytes_per_s(sc) as f64;
            add(what, Duration::from_secs_f64(secs.ceil()));
        }
    }
    if has(NodeKind::Haproxy) {
        let h = &sc.haproxy;
        let inter = [Some(h.inter), h.fastinter, h.downinter].into_iter().flatten().max().unwrap_or(h.inter);
        add("HAProxy: (fall + rise) x the longest check interval", inter * (h.fall + h.rise));
    }
    if has(NodeKind::Pgbouncer) {
        let b = &sc.pgbouncer;
        add("PgBouncer: server_login_retry + server_connect_timeout", b.server_login_retry + b.server_connect_timeout);
    }
    if has(NodeKind::Clients) {
        // A request issued just before convergence may still fail for good: every attempt
        // times out, with the backoff between them.
        let worst = sc
            .tenants
            .iter()
            .map(|t| {
                let (retries, pause) = match t.retry {
                    RetrySpec::None => (0, Duration::ZERO),
                    RetrySpec::Immediate { max_retries } => (max_retries, Duration::ZERO),
                    RetrySpec::Backoff { cap, max_retries, .. } => (max_retries, cap),
                };
                (t.timeout + pause) * (retries + 1)
            })
            .max()
            .unwrap_or_default();
        add("clients: a request's every attempt timing out", worst);
    }
    let total = parts.iter().map(|(_, d)| *d).sum::<Duration>();
    // Whole seconds: convergence is judged per second.
    let total = Duration::from_secs(total.as_secs() + u64::from(total.subsec_nanos() > 0));
    Bound { total, parts }
}
