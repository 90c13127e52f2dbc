use std::collections::BTreeSet;

use scenarios::{Fault, FaultKind};

use super::*;

fn stack_text() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/stack-primary-crash.toml");
    std::fs::read_to_string(path).unwrap()
}

fn stack() -> Scenario {
    scenarios::parse_str("stack-primary-crash.toml", &stack_text()).unwrap()
}

#[test]
fn a_seed_draws_the_same_schedule_every_time_and_seeds_differ() {
    let sc = stack();
    let shown = |seed| format!("{:?}", plan(&sc, seed).schedule);
    assert_eq!(shown(7), shown(7));
    let distinct: BTreeSet<String> = (0..20).map(shown).collect();
    assert_eq!(distinct.len(), 20, "20 seeds, 20 schedules");
}

/// Every fault of 300 seeds targets what the topology has, lies within the fault phase, and
/// has sane intensities; each seed uses only the kinds it enabled (the fault aimed at a
/// failover, which is not drawn from them, is the next test's).
#[test]
fn schedules_stay_within_the_topology_and_the_fault_phase() {
    let mut sc = stack();
    sc.swarm.failover_share = 0.0;
    let (start, end) = phase(&sc);
    assert_eq!((start, end), (Duration::from_secs(40), Duration::from_secs(138)), "40 s + 70 % of the 140 s left");
    let n = sc.nodes.len() as u32;
    let is = |node: u32, kinds: &[NodeKind]| kinds.contains(&sc.nodes[node as usize].kind);
    let mut kinds_seen = BTreeSet::new();
    let mut enabled_counts = BTreeSet::new();
    for seed in 0..300 {
        let s = plan(&sc, seed).schedule;
        assert!(!s.faults.is_empty() && s.faults.len() <= sc.swarm.faults_max as usize, "seed {seed}");
        enabled_counts.insert(s.kinds.len());
        for (i, f) in s.faults.iter().enumerate() {
            let until = f.until.expect("every swarm fault heals");
            assert!(start <= f.at && f.at < until && until <= end, "seed {seed}: {f:?}");
            assert_eq!(f.index as usize, i);
            assert!(s.kinds.contains(&f.kind.name()), "seed {seed}: {} not enabled", f.kind.name());
            kinds_seen.insert(f.kind.name());
            match &f.kind {
                FaultKind::Partition { from, to, .. } => {
                    assert!(!from.is_empty() && !to.is_empty());
                    assert!(from.iter().all(|x| !to.contains(x) && *x < n) && to.iter().all(|x| *x < n));
                    assert!(from.is_sorted() && to.is_sorted());
                }
                FaultKind::LinkDown { a, b, .. } | FaultKind::LinkFlapping { a, b, .. } => {
                    assert!(a != b && *a < n && *b < n)
                }
                FaultKind::LinkDegraded { a, b, loss_ratio, extra_latency, .. } => {
                    assert!(a != b && *a < n && *b < n);
                    assert!((0.0..=1.0).contains(loss_ratio) && (*loss_ratio > 0.0 || !extra_latency.is_zero()));
                }
                FaultKind::SwitchDegraded { switch, loss_ratio, ports } => {
                    assert!(*switch < sc.switches.len() && *loss_ratio > 0.0 && *loss_ratio <= 1.0);
                    let known = scenarios::switch_ports(&sc.nodes, &sc.switches, *switch);
                    assert!(ports.iter().all(|(p, q)| p != q && known.contains(p) && known.contains(q)));
                }
                FaultKind::SwitchDown { switch } | FaultKind::SwitchFlapping { switch, .. } => {
                    assert!(*switch < sc.switches.len())
                }
                FaultKind::NodeCrash { node, .. } | FaultKind::NodePause { node, .. } => assert!(*node < n),
                FaultKind::DiskStall { node } | FaultKind::DiskSlow { node, .. } => {
                    assert!(is(*node, &[NodeKind::Etcd, NodeKind::Postgres]))
                }
                FaultKind::ApplySlow { node, factor } => assert!(is(*node, &[NodeKind::Postgres]) && *factor >= 2.0),
                FaultKind::WalReceiverPause { node } => assert!(is(*node, &[NodeKind::Postgres])),
                FaultKind::DiskErrors { .. } | FaultKind::DiskFull { .. } => panic!("not a default swarm kind"),
            }
            if let FaultKind::LinkFlapping { period, down_for, .. }
            | FaultKind::SwitchFlapping { period, down_for, .. } = &f.kind
            {
                assert!(!down_for.is_zero() && down_for < period);
            }
        }
    }
    let every: BTreeSet<&str> = schedule::applicable_kinds(&sc).into_iter().collect();
    assert_eq!(kinds_seen, every, "300 seeds draw every applicable kind");
    assert!(enabled_counts.first() <= Some(&3) && enabled_counts.last() >= Some(&10), "{enabled_counts:?}");
}

/// The schedule written as TOML and loaded again is the same schedule: a seed's scenario file
/// replays exactly what the seed ran.
#[test]
fn schedules_read_back_from_toml_unchanged() {
    let sc = stack();
    for seed in 0..40 {
        let faults = plan(&sc, seed).schedule.faults;
        let mut own = String::new();
        for f in &faults {
            own.push_str(&scenarios::render::fault(&sc, f));
        }
        let text = scenarios::render::overlay(&stack_text(), &own);
        let back = scenarios::parse_str("swarm.toml", &text).unwrap_or_else(|d| panic!("seed {seed}: {d}\n{own}"));
        let key = |f: &scenarios::Fault| (f.at, f.until, f.kind.clone());
        assert_eq!(back.faults.iter().map(key).collect::<Vec<_>>(), faults.iter().map(key).collect::<Vec<_>>());
    }
}

#[test]
fn the_bound_adds_up_the_settings_and_can_be_overridden() {
    let sc = stack();
    let b = liveness_bound(&sc);
    assert_eq!(b.total, b.parts.iter().map(|p| p.1).sum::<Duration>(), "{}", b.explain());
    let part = |what: &str| b.parts.iter().find(|p| p.0.starts_with(what)).map(|p| p.1);
    assert_eq!(part("failed keeper"), Some(Duration::from_secs(25)), "failInterval 20 s + sleepInterval 5 s");
    assert_eq!(part("resync with a base backup"), Some(Duration::from_secs(100)), "100 GB at 1 GB/s");
    assert_eq!(part("clients"), Some(Duration::from_secs(40)), "api: 4 attempts of 5 s + a 5 s backoff cap");
    let with = format!("{}\n[swarm]\naccept_data_loss = true\nliveness_bound = \"90s\"\n", stack_text());
    let sc2 = scenarios::parse_str("x.toml", &with).unwrap();
    assert_eq!(liveness_bound(&sc2).total, Duration::from_secs(90));
    let p = plan(&sc2, 1);
    assert_eq!(p.duration, Duration::from_secs(138 + 90 + 30));
    let names = |sc: &Scenario| properties(sc, Duration::from_secs(90)).into_iter().map(|a| a.name).collect::<Vec<_>>();
    assert!(names(&sc).iter().any(|n| n == "safety: no acknowledged commit is lost"));
    assert!(!names(&sc2).iter().any(|n| n == "safety: no acknowledged commit is lost"), "accepted");
    assert_eq!(names(&sc2).last().map(String::as_str), Some("liveness: it converges within 90 s of the last heal"));
}

/// `[swarm] standby_then_primary` adds, to the very schedule the seed draws without it, a
/// standby's crash and the primary's crash at most failInterval later, both healed in the phase.
#[test]
fn standby_then_primary_adds_a_standby_crash_and_the_primarys_soon_after() {
    let plain = stack();
    let mut sc = stack();
    sc.swarm.standby_then_primary = true;
    let (start, end) = phase(&sc);
    let primary = sc.cluster_leader(0);
    let mut gaps = BTreeSet::new();
    for seed in 0..100 {
        let base: Vec<String> =
            plan(&plain, seed).schedule.faults.iter().map(|f| format!("{:?}", (f.at, f.until, &f.kind))).collect();
        let with = plan(&sc, seed).schedule.faults;
        let added: Vec<&Fault> =
            with.iter().filter(|f| !base.contains(&format!("{:?}", (f.at, f.until, &f.kind)))).collect();
        assert_eq!((with.len(), added.len()), (base.len() + 2, 2), "seed {seed}");
        let node = |f: &Fault| match f.kind {
            FaultKind::NodeCrash { node, .. } => node,
            ref k => panic!("seed {seed}: {k:?}"),
        };
        let (s, p) = if node(added[0]) == primary { (added[1], added[0]) } else { (added[0], added[1]) };
        assert_eq!(node(p), primary);
        assert_eq!(sc.nodes[node(s) as usize].pg.as_ref().and_then(|x| x.upstream), Some(primary), "a standby of it");
        assert!(s.at <= p.at && p.at - s.at <= sc.stolon.fail_interval, "seed {seed}");
        for f in [s, p] {
            assert!(start <= f.at && f.until.unwrap() <= end && f.at < f.until.unwrap());
        }
        gaps.insert((p.at - s.at).as_secs());
    }
    assert!(gaps.len() > 10, "gaps spread over failInterval: {gaps:?}");
}

/// `[swarm] failover_share` adds one fault aimed at a failover path to that share of the seeds,
/// on top of the very schedule the seed draws without it: the primary crashed or paused, its
/// keeper cut off from every etcd member, or the synchronous standby crashed, for at least
/// failInterval + 4 sleepIntervals (long enough for the sentinel to act) and within the phase.
#[test]
fn failover_share_adds_one_fault_aimed_at_a_failover_path() {
    let mut plain = stack();
    plain.swarm.failover_share = 0.0;
    let mut sc = stack();
    sc.swarm.failover_share = 0.75;
    let (start, end) = phase(&sc);
    let primary = sc.cluster_leader(0);
    let etcd: Vec<u32> = (0..sc.nodes.len() as u32).filter(|&n| sc.nodes[n as usize].kind == NodeKind::Etcd).collect();
    let least = sc.stolon.fail_interval + sc.stolon.sleep_interval * 4;
    let key = |f: &Fault| format!("{:?}", (f.at, f.until, &f.kind));
    let mut aims = BTreeSet::new();
    let mut aimed_seeds = 0;
    for seed in 0..400 {
        let base: Vec<String> = plan(&plain, seed).schedule.faults.iter().map(key).collect();
        let with = plan(&sc, seed).schedule;
        assert!(plan(&plain, seed).schedule.aimed.is_none());
        let added: Vec<&Fault> = with.faults.iter().filter(|f| !base.contains(&key(f))).collect();
        assert_eq!(with.faults.len(), base.len() + added.len(), "seed {seed}: the other faults are kept");
        let Some(aim) = with.aimed else {
            assert!(added.is_empty(), "seed {seed}");
            continue;
        };
        aimed_seeds += 1;
        aims.insert(aim.name());
        let [f] = added[..] else { panic!("seed {seed}: one aimed fault, got {added:?}") };
        let until = f.until.expect("heals");
        assert!(start <= f.at && until <= end && until - f.at >= least, "seed {seed}: {f:?}");
        match (&f.kind, aim) {
            (FaultKind::NodeCrash { node, .. }, schedule::Aim::PrimaryCrash)
            | (FaultKind::NodePause { node, .. }, schedule::Aim::PrimaryPause) => assert_eq!(*node, primary),
            (FaultKind::Partition { from, to, .. }, schedule::Aim::KeeperCutFromEtcd) => {
                assert_eq!((from, to), (&vec![primary], &etcd))
            }
            (FaultKind::NodeCrash { node, .. }, schedule::Aim::SyncStandbyCrash) => {
                assert_eq!(sc.nodes[*node as usize].name, "pdx-pg2", "FIRST 1 (pdx-pg2)")
            }
            (k, a) => panic!("seed {seed}: {a:?} as {k:?}"),
        }
    }
    assert_eq!(aims.len(), 4, "every path: {aims:?}");
    assert!((250..=350).contains(&aimed_seeds), "about 300 of 400 seeds: {aimed_seeds}");
}
