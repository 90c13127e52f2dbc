//! A seed's fault schedule: a pure function of (scenario, seed, fault phase). Swarm testing
//! (Groce et al.; TigerBeetle's VOPR): each seed first draws its profile, which fault kinds it
//! enables (some seeds hammer one kind, others mix many) and how long its faults may last, then
//! the faults themselves: kind, target among the scenario's nodes, links and switches, start,
//! duration and intensity. Every fault heals by the end of the phase. Times are whole milliseconds and ratios have two
//! decimals, so the schedule written out as TOML reads back exactly.

use std::time::Duration;

use models::pg::syncrep::SyncStandbyNames;
use models::rng::{SimRng, Stream, stream_rng};
use rand::Rng;
use scenarios::{Fault, FaultKind, NodeIdx, NodeKind, Scenario, Scope};

/// The RNG stream of swarm schedules ("SWARM"), apart from every stream the run itself draws.
pub const STREAM_TAG: u64 = 0x0053_5741_524d;
/// The stream of the fault aimed at a failover ("AIMED"), apart from the rest of the schedule
/// so that a seed's other faults do not depend on `failover_share`.
pub const AIM_STREAM_TAG: u64 = 0x0041_494d_4544;

/// The shortest fault; shorter ones (a few heartbeats) seldom matter.
const FAULT_MIN: Duration = Duration::from_secs(1);

/// The kinds of `sc.swarm.kinds` this topology has targets for.
pub fn applicable_kinds(sc: &Scenario) -> Vec<&'static str> {
    let disks = !disk_nodes(sc).is_empty();
    let pg = sc.nodes.iter().any(|n| n.kind == NodeKind::Postgres);
    let pairs = sc.nodes.len() >= 2;
    scenarios::kind_names()
        .into_iter()
        .filter(|k| sc.swarm.kinds.iter().any(|x| x == k))
        .filter(|k| match *k {
            "partition" | "link-down" | "link-degraded" | "link-flapping" => pairs,
            "switch-down" | "switch-degraded" | "switch-flapping" => !sc.switches.is_empty(),
            "disk-stall" | "disk-errors" | "disk-full" | "disk-slow" => disks,
            "apply-slow" | "walreceiver-pause" => pg,
            _ => !sc.nodes.is_empty(),
        })
        .collect()
}

/// Nodes whose disks matter: etcd members and PostgreSQL servers.
fn disk_nodes(sc: &Scenario) -> Vec<NodeIdx> {
    nodes_where(sc, |k| matches!(k, NodeKind::Etcd | NodeKind::Postgres))
}

fn nodes_where(sc: &Scenario, f: impl Fn(NodeKind) -> bool) -> Vec<NodeIdx> {
    (0..sc.nodes.len()).filter(|&i| f(sc.nodes[i].kind)).map(|i| i as NodeIdx).collect()
}

/// A schedule: the kinds this seed enabled, and its faults sorted by start.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub kinds: Vec<&'static str>,
    pub faults: Vec<Fault>,
    /// What the fault aimed at a failover path does, if this seed has one (`failover_share`).
    pub aimed: Option<Aim>,
}

/// The failover paths a fault can be aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aim {
    /// The primary's host crashes: its keeper stops publishing, the sentinel fails it.
    PrimaryCrash,
    /// The primary's host freezes, then comes back still a primary: the old master must be
    /// fenced.
    PrimaryPause,
    /// The primary's keeper cannot reach etcd (its requests are lost; one way or both) while
    /// the primary serves on: the 2020 incident's path to a failover.
    KeeperCutFromEtcd,
    /// The synchronous standby crashes: the sentinel must change the synchronous set before
    /// it may fail over again.
    SyncStandbyCrash,
}

impl Aim {
    pub fn name(self) -> &'static str {
        match self {
            Aim::PrimaryCrash => "primary-crash",
            Aim::PrimaryPause => "primary-pause",
            Aim::KeeperCutFromEtcd => "keeper-cut-from-etcd",
            Aim::SyncStandbyCrash => "sync-standby-crash",
        }
    }
}

/// Draws the faults of `seed` within `[phase.0, phase.1)`; each heals by `phase.1`.
pub fn draw(sc: &Scenario, seed: u64, phase: (Duration, Duration)) -> Schedule {
    let mut rng = stream_rng(seed, Stream::Named(STREAM_TAG));
    let applicable = applicable_kinds(sc);
    let (start, end) = phase;
    if applicable.is_empty() || end <= start {
        return Schedule { kinds: Vec::new(), faults: Vec::new(), aimed: None };
    }
    let mut kinds: Vec<&'static str> = applicable.iter().copied().filter(|_| rng.gen_bool(0.5)).collect();
    if kinds.is_empty() {
        kinds.push(applicable[rng.gen_range(0..applicable.len())]);
    }
    let count = rng.gen_range(1..=sc.swarm.faults_max.max(1));
    let span = end - start;
    // The seed's longest fault, log-uniform from 2 s to the whole phase: some seeds only blip,
    // others hold a fault long enough for failure detectors (etcd's election timeout, Stolon's
    // failInterval, HAProxy's fall) to act on it.
    let length_max = if span <= FAULT_MIN * 2 { span } else { log_uniform_ms(&mut rng, FAULT_MIN * 2, span) };
    let mut faults: Vec<Fault> = (0..count)
        .map(|_| {
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let at = start + Duration::from_millis(rng.gen_range(0..span.as_millis() as u64));
            let most = length_max.min(end - at);
            let length = if most <= FAULT_MIN {
                most
            } else {
                Duration::from_millis(rng.gen_range(FAULT_MIN.as_millis() as u64..=most.as_millis() as u64))
            };
            Fault { index: 0, line: 0, at, until: Some(at + length), kind: draw_kind(sc, kind, &mut rng) }
        })
        .collect();
    if sc.swarm.standby_then_primary {
        faults.extend(standby_then_primary(sc, &mut rng, phase));
    }
    let aimed = aimed_at_failover(sc, seed, phase).map(|(aim, fault)| {
        faults.push(fault);
        aim
    });
    // Sorted by start (stable: equal starts keep their draw order), indexed in that order.
    faults.sort_by_key(|f| f.at);
    for (i, f) in faults.iter_mut().enumerate() {
        f.index = i as u32;
    }
    Schedule { kinds, faults, aimed }
}

/// How long a fault aimed at a failover lasts at least: the keeper's last publication can be
/// up to a `sleepInterval` old when the fault starts, the sentinel sees it stale a round later,
/// fails it `failInterval` after that round, elects on a round's boundary, and the new
/// master's keeper promotes on its next beat.
fn failover_fault_min(sc: &Scenario) -> Duration {
    sc.stolon.fail_interval + sc.stolon.sleep_interval * 4
}

/// `[swarm] failover_share`: with that probability, one fault aimed at a failover path of one
/// of the primary clusters Stolon manages, at a random moment of the phase, lasting from
/// `failover_fault_min` to twice that (cut at the phase's end). Drawn from its own stream.
fn aimed_at_failover(sc: &Scenario, seed: u64, phase: (Duration, Duration)) -> Option<(Aim, Fault)> {
    let mut rng = stream_rng(seed, Stream::Named(AIM_STREAM_TAG));
    let has_sentinels = sc.nodes.iter().any(|n| n.kind == NodeKind::StolonSentinel);
    let clusters: Vec<usize> = (0..sc.pg_clusters.len()).filter(|&c| sc.pg_clusters[c].standby_of.is_none()).collect();
    let (start, end) = phase;
    let least = failover_fault_min(sc);
    if !has_sentinels || clusters.is_empty() || end < start + least || !rng.gen_bool(sc.swarm.failover_share) {
        return None;
    }
    let primary = sc.cluster_leader(pick(&mut rng, &clusters));
    let sync = first_sync_standby(sc, primary).filter(|_| sc.stolon.synchronous_replication);
    let etcd = nodes_where(sc, |k| k == NodeKind::Etcd);
    let mut aims = vec![Aim::PrimaryCrash, Aim::PrimaryPause];
    if !etcd.is_empty() {
        aims.push(Aim::KeeperCutFromEtcd);
    }
    if sync.is_some() {
        aims.push(Aim::SyncStandbyCrash);
    }
    let aim = pick(&mut rng, &aims);
    let at = start + Duration::from_millis(rng.gen_range(0..=(end - start - least).as_millis() as u64));
    let most = (least * 2).min(end - at);
    let length = Duration::from_millis(rng.gen_range(least.as_millis() as u64..=most.as_millis() as u64));
    let kind = match aim {
        Aim::PrimaryCrash => FaultKind::NodeCrash { node: primary, scope: Scope::Host },
        Aim::PrimaryPause => FaultKind::NodePause { node: primary, scope: Scope::Host },
        // One way, the keeper's requests are lost: both ways, its answers as well. (Only the
        // answers lost would let its updates land, and nothing fail over.)
        Aim::KeeperCutFromEtcd => FaultKind::Partition { from: vec![primary], to: etcd, one_way: rng.gen_bool(0.5) },
        Aim::SyncStandbyCrash => FaultKind::NodeCrash { node: sync.expect("checked"), scope: Scope::Host },
    };
    Some((aim, Fault { index: 0, line: 0, at, until: Some(at + length), kind }))
}

/// The standbys that start streaming from `primary`.
fn standbys_of(sc: &Scenario, primary: NodeIdx) -> Vec<NodeIdx> {
    (0..sc.nodes.len() as NodeIdx)
        .filter(|&n| sc.nodes[n as usize].pg.as_ref().is_some_and(|p| p.upstream == Some(primary)))
        .collect()
}

/// The standby of `primary` first named in its cluster's synchronous_standby_names, if any.
fn first_sync_standby(sc: &Scenario, primary: NodeIdx) -> Option<NodeIdx> {
    let cluster = sc.nodes[primary as usize].pg.as_ref()?.cluster;
    let named = SyncStandbyNames::parse(&sc.pg_clusters[cluster].synchronous_standby_names).ok().flatten()?;
    let first = named.names.first()?;
    standbys_of(sc, primary).into_iter().find(|&n| sc.nodes[n as usize].name == *first)
}

/// `[swarm] standby_then_primary`: for each cluster, a crash of one of its first primary's
/// standbys (the first named in its synchronous_standby_names, if any, half the time) in the
/// first half of the phase, and a crash of the primary 0 to failInterval later, each lasting
/// 1 s to the rest of the phase. Whether the sentinel has already acted on the standby's
/// crash when the primary goes is what the seeds vary.
fn standby_then_primary(sc: &Scenario, rng: &mut SimRng, phase: (Duration, Duration)) -> Vec<Fault> {
    let (start, end) = phase;
    let mut faults = Vec::new();
    for c in 0..sc.pg_clusters.len() {
        let primary = sc.cluster_leader(c);
        let standbys = standbys_of(sc, primary);
        if standbys.is_empty() || end <= start + FAULT_MIN * 2 {
            continue;
        }
        let standby = match first_sync_standby(sc, primary) {
            Some(n) if rng.gen_bool(0.5) => n,
            _ => pick(rng, &standbys),
        };
        let half = (end - start) / 2;
        let at = start + Duration::from_millis(rng.gen_range(0..half.as_millis() as u64));
        let gap = Duration::from_millis(rng.gen_range(0..=sc.stolon.fail_interval.as_millis() as u64));
        for (node, at) in [(standby, at), (primary, (at + gap).min(end - FAULT_MIN))] {
            let most = end - at;
            let length = Duration::from_millis(rng.gen_range(FAULT_MIN.as_millis() as u64..=most.as_millis() as u64));
            faults.push(Fault {
                index: 0,
                line: 0,
                at,
                until: Some(at + length),
                kind: FaultKind::NodeCrash { node, scope: Scope::Host },
            });
        }
    }
    faults
}

/// Log-uniform in `[lo, hi]` (both positive): each order of magnitude is as likely.
fn log_uniform(rng: &mut SimRng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.r#gen::<f64>() * (hi.ln() - lo.ln())).exp().clamp(lo, hi)
}

/// A duration in whole milliseconds, log-uniform in `[lo, hi]`: short and long are as likely.
fn log_uniform_ms(rng: &mut SimRng, lo: Duration, hi: Duration) -> Duration {
    let (lo, hi) = (lo.as_millis().max(1) as f64, hi.as_millis().max(1) as f64);
    Duration::from_millis(log_uniform(rng, lo, hi).round().clamp(lo, hi) as u64)
}

/// A ratio in (0, 1] with two decimals.
fn ratio(rng: &mut SimRng) -> f64 {
    rng.gen_range(1..=100u32) as f64 / 100.0
}

fn pick<T: Copy>(rng: &mut SimRng, from: &[T]) -> T {
    from[rng.gen_range(0..from.len())]
}

/// How much more often a cluster's first primary is a fault's target than any other node: as
/// much as a quarter of all nodes together. Most of what an HA stack does (failure detection,
/// election, promotion, fencing, rerouting) starts with its primary failing, and with targets
/// drawn uniformly a 14-node stack would fault its primary for long enough to fail it over in
/// about one seed of a hundred.
fn primary_weight(sc: &Scenario) -> u32 {
    (sc.nodes.len() as u32 / 4).max(1)
}

/// A node of `from`, each cluster's first primary `primary_weight` times as likely as another.
fn pick_node(sc: &Scenario, rng: &mut SimRng, from: &[NodeIdx]) -> NodeIdx {
    let leaders: Vec<NodeIdx> = (0..sc.pg_clusters.len()).map(|c| sc.cluster_leader(c)).collect();
    let weight = |n: NodeIdx| if leaders.contains(&n) { primary_weight(sc) } else { 1 };
    let total: u32 = from.iter().map(|&n| weight(n)).sum();
    let mut x = rng.gen_range(0..total);
    for &n in from {
        if x < weight(n) {
            return n;
        }
        x -= weight(n);
    }
    unreachable!("x < total")
}

fn all_nodes(sc: &Scenario) -> Vec<NodeIdx> {
    (0..sc.nodes.len() as NodeIdx).collect()
}

/// Two distinct nodes, the first weighted as `pick_node`, the second uniform.
fn two_nodes(sc: &Scenario, rng: &mut SimRng) -> (NodeIdx, NodeIdx) {
    let n = sc.nodes.len() as u32;
    let a = pick_node(sc, rng, &all_nodes(sc));
    let b = (a + rng.gen_range(1..n)) % n;
    (a, b)
}

/// A flapping period (1 to 30 s) and the down part of it (10 to 90 %).
fn flap(rng: &mut SimRng) -> (Duration, Duration) {
    let period = log_uniform_ms(rng, Duration::from_secs(1), Duration::from_secs(30));
    let down_ms = (period.as_millis() as f64 * rng.gen_range(0.1..0.9)).round().max(1.0) as u64;
    (period, Duration::from_millis(down_ms))
}

/// Two sides of a partition: one node against the rest, a rack against the rest, or a random
/// split. Both sides non-empty, sorted.
fn sides(sc: &Scenario, rng: &mut SimRng) -> (Vec<NodeIdx>, Vec<NodeIdx>) {
    let all = all_nodes(sc);
    let side: Vec<NodeIdx> = match rng.gen_range(0..3) {
        0 => vec![pick_node(sc, rng, &all)],
        1 if sc.racks.len() >= 2 => {
            let rack = sc.nodes[pick_node(sc, rng, &all) as usize].rack;
            all.iter().copied().filter(|&n| sc.nodes[n as usize].rack == rack).collect()
        }
        _ => all.iter().copied().filter(|_| rng.gen_bool(0.5)).collect(),
    };
    let side = if side.is_empty() || side.len() == all.len() { vec![pick(rng, &all)] } else { side };
    let rest: Vec<NodeIdx> = all.iter().copied().filter(|n| !side.contains(n)).collect();
    if rng.gen_bool(0.5) { (side, rest) } else { (rest, side) }
}

fn draw_kind(sc: &Scenario, kind: &str, rng: &mut SimRng) -> FaultKind {
    let any_node = |rng: &mut SimRng| pick_node(sc, rng, &all_nodes(sc));
    let disk_node = |rng: &mut SimRng| pick_node(sc, rng, &disk_nodes(sc));
    // Replication faults act on standbys: the servers that start as one, if any.
    let pg = nodes_where(sc, |k| k == NodeKind::Postgres);
    let standbys: Vec<NodeIdx> = pg
        .iter()
        .copied()
        .filter(|&n| sc.nodes[n as usize].pg.as_ref().is_some_and(|p| p.upstream.is_some()))
        .collect();
    let replica = |rng: &mut SimRng| pick(rng, if standbys.is_empty() { &pg } else { &standbys });
    match kind {
        "partition" => {
            let (from, to) = sides(sc, rng);
            FaultKind::Partition { from, to, one_way: rng.gen_bool(0.2) }
        }
        "link-down" => {
            let (a, b) = two_nodes(sc, rng);
            FaultKind::LinkDown { a, b, one_way: rng.gen_bool(0.25) }
        }
        "link-degraded" => {
            let (a, b) = two_nodes(sc, rng);
            let loss_ratio = if rng.gen_bool(0.5) { ratio(rng) } else { 0.0 };
            let extra_latency = if loss_ratio == 0.0 || rng.gen_bool(0.5) {
                log_uniform_ms(rng, Duration::from_millis(1), Duration::from_secs(2))
            } else {
                Duration::ZERO
            };
            let one_way = rng.gen_bool(0.25);
            // Drawn after the rest, so that schedules without it stay as they were.
            let (extra_jitter, duplicate_ratio) = if sc.swarm.reorder_and_duplicate {
                let jitter = log_uniform_ms(rng, Duration::from_millis(1), Duration::from_secs(1));
                (jitter, if rng.gen_bool(0.5) { ratio(rng) / 2.0 } else { 0.0 })
            } else {
                (Duration::ZERO, 0.0)
            };
            FaultKind::LinkDegraded { a, b, one_way, loss_ratio, extra_latency, extra_jitter, duplicate_ratio }
        }
        "link-flapping" => {
            let (a, b) = two_nodes(sc, rng);
            let (period, down_for) = flap(rng);
            FaultKind::LinkFlapping { a, b, one_way: rng.gen_bool(0.25), period, down_for }
        }
        "switch-down" => FaultKind::SwitchDown { switch: rng.gen_range(0..sc.switches.len()) },
        "switch-degraded" => {
            let switch = rng.gen_range(0..sc.switches.len());
            let ports = scenarios::switch_ports(&sc.nodes, &sc.switches, switch);
            let loss_ratio = ratio(rng);
            // Half of them drop only between two ports: the omission fault of the 2020 incident.
            let ports = if ports.len() >= 2 && rng.gen_bool(0.5) {
                let i = rng.gen_range(0..ports.len());
                let j = (i + rng.gen_range(1..ports.len())) % ports.len();
                vec![(ports[i].clone(), ports[j].clone())]
            } else {
                Vec::new()
            };
            FaultKind::SwitchDegraded { switch, loss_ratio, ports }
        }
        "switch-flapping" => {
            let switch = rng.gen_range(0..sc.switches.len());
            let (period, down_for) = flap(rng);
            FaultKind::SwitchFlapping { switch, period, down_for }
        }
        "node-crash" => FaultKind::NodeCrash { node: any_node(rng), scope: Scope::Host },
        "node-pause" => FaultKind::NodePause { node: any_node(rng), scope: Scope::Host },
        "process-crash" => FaultKind::NodeCrash { node: any_node(rng), scope: Scope::Process },
        "process-pause" => FaultKind::NodePause { node: any_node(rng), scope: Scope::Process },
        "disk-stall" => FaultKind::DiskStall { node: disk_node(rng) },
        "disk-errors" => FaultKind::DiskErrors { node: disk_node(rng), error_ratio: ratio(rng) },
        "disk-full" => FaultKind::DiskFull { node: disk_node(rng) },
        "disk-slow" => {
            let factor = (log_uniform(rng, 2.0, 100.0) * 10.0).round() / 10.0;
            FaultKind::DiskSlow { node: disk_node(rng), factor }
        }
        "apply-slow" => {
            let factor = log_uniform(rng, 2.0, 1000.0).round();
            FaultKind::ApplySlow { node: replica(rng), factor }
        }
        "walreceiver-pause" => FaultKind::WalReceiverPause { node: replica(rng) },
        other => unreachable!("fault kind {other:?} is not one of scenarios::kind_names()"),
    }
}
