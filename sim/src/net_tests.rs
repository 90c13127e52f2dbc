use super::*;
use models::trace::DropReason;
use scenarios::Scenario;

fn scenario(extra: &str) -> Scenario {
    let text = format!(
        r#"
[scenario]
name = "t"
duration = "10s"
[network]
switch_latency = "0.1ms"
region_latency = "0.3ms"
jitter = "0ms"
[[region]]
name = "a"
[[region]]
name = "b"
[[region_link]]
between = ["a", "b"]
latency = "20ms"
bandwidth = "1MB/s"
[[rack]]
name = "r1"
region = "a"
[[rack]]
name = "r2"
region = "a"
[[rack]]
name = "r3"
region = "b"
[[node]]
name = "n1"
rack = "r1"
kind = "probe"
[[node]]
name = "n2"
rack = "r1"
kind = "probe"
[[node]]
name = "n3"
rack = "r2"
kind = "probe"
[[node]]
name = "n4"
rack = "r3"
kind = "probe"
{extra}
"#
    );
    scenarios::parse_str("t.toml", &text).unwrap()
}

const MS: u64 = 1_000_000;

fn deliver_at(v: Verdict) -> u64 {
    match v {
        Verdict::Deliver(t) => t.0,
        other => panic!("expected delivery, got {other:?}"),
    }
}

#[test]
fn latencies_follow_topology_and_lookahead_is_the_smallest() {
    let sc = scenario("");
    let mut net = crate::build::network(&sc, 1);
    assert_eq!(deliver_at(net.route(SimTime(0), 0, 1, 10)), MS / 10);
    assert_eq!(deliver_at(net.route(SimTime(0), 0, 2, 10)), 3 * MS / 10);
    assert_eq!(net.lookahead(), Duration::from_micros(100));
}

#[test]
fn region_link_bandwidth_serialises_shared_traffic() {
    let sc = scenario("");
    let mut net = crate::build::network(&sc, 1);
    // 1 MB/s: 500 kB take 0.5 s on the wire, and the next message waits for the first.
    let first = deliver_at(net.route(SimTime(0), 0, 3, 500_000));
    let second = deliver_at(net.route(SimTime(0), 2, 3, 500_000));
    assert_eq!(first, 500 * MS + 20 * MS);
    assert_eq!(second, 1000 * MS + 20 * MS, "the region link is shared by all nodes of the region");
    // The other direction has its own capacity.
    assert_eq!(deliver_at(net.route(SimTime(0), 3, 0, 500_000)), 520 * MS);
}

#[test]
fn one_way_partition_blocks_one_direction() {
    let sc = scenario("");
    let mut net = crate::build::network(&sc, 1);
    let kind = FaultKind::Partition { from: vec![0], to: vec![3], one_way: true };
    net.activate(0, &kind);
    assert_eq!(net.route(SimTime(0), 0, 3, 1), Verdict::Drop(DropReason::Partition, None));
    assert!(matches!(net.route(SimTime(0), 3, 0, 1), Verdict::Deliver(_)));
    net.deactivate(0);
    assert!(matches!(net.route(SimTime(0), 0, 3, 1), Verdict::Deliver(_)));
}

#[test]
fn degraded_switch_drops_only_between_named_ports() {
    let sc = scenario("");
    let mut net = crate::build::network(&sc, 1);
    let core = sc.switches.iter().position(|s| s.name == "a-core").unwrap();
    let kind =
        FaultKind::SwitchDegraded { switch: core, loss_ratio: 0.5, ports: vec![("r1-tor".into(), "r2-tor".into())] };
    net.activate(7, &kind);
    let trials = 4000;
    let dropped = (0..trials).filter(|_| matches!(net.route(SimTime(0), 0, 2, 1), Verdict::Drop(..))).count();
    assert!((1800..2200).contains(&dropped), "{dropped} of {trials} dropped, expected ~half");
    match (0..100).map(|_| net.route(SimTime(0), 2, 0, 1)).find(|v| matches!(v, Verdict::Drop(..))) {
        Some(Verdict::Drop(DropReason::SwitchDegraded, Some(sw))) => assert_eq!(net.switch_name(sw), "a-core"),
        other => panic!("expected a switch_degraded drop, got {other:?}"),
    }
    // Same rack (does not cross the core) and cross-region (core port r1-tor <-> wan) pass.
    assert!((0..200).all(|_| matches!(net.route(SimTime(0), 0, 1, 1), Verdict::Deliver(_))));
    assert!((0..200).all(|_| matches!(net.route(SimTime(0), 0, 3, 1), Verdict::Deliver(_))));
}

#[test]
fn dead_switch_and_degraded_link() {
    let sc = scenario("");
    let mut net = crate::build::network(&sc, 1);
    let tor = sc.switches.iter().position(|s| s.name == "r1-tor").unwrap();
    net.activate(1, &FaultKind::SwitchDown { switch: tor });
    assert!(matches!(net.route(SimTime(0), 0, 1, 1), Verdict::Drop(DropReason::SwitchDown, Some(_))));
    assert!(matches!(net.route(SimTime(0), 2, 3, 1), Verdict::Deliver(_)), "other racks unaffected");
    net.deactivate(1);
    let kind = FaultKind::LinkDegraded {
        a: 0,
        b: 1,
        one_way: false,
        loss_ratio: 0.0,
        extra_latency: Duration::from_millis(5),
        extra_jitter: Duration::ZERO,
        duplicate_ratio: 0.0,
    };
    net.activate(2, &kind);
    assert_eq!(deliver_at(net.route(SimTime(0), 1, 0, 1)), 5 * MS + MS / 10);
    assert_eq!(net.duplicate(1, 0, SimTime(5 * MS)), None, "no duplicates unless asked");
}

/// A degraded link's extra jitter reorders messages sent close together, and its
/// duplicate_ratio delivers that share twice, the copy no earlier than the original.
#[test]
fn a_degraded_link_reorders_and_duplicates() {
    let sc = scenario("");
    let mut net = crate::build::network(&sc, 3);
    let kind = FaultKind::LinkDegraded {
        a: 0,
        b: 1,
        one_way: true,
        loss_ratio: 0.0,
        extra_latency: Duration::ZERO,
        extra_jitter: Duration::from_millis(50),
        duplicate_ratio: 0.3,
    };
    net.activate(1, &kind);
    let (mut reordered, mut copies) = (0, 0);
    let mut last = 0;
    for k in 0..1000u64 {
        let sent = SimTime(k * MS);
        let first = deliver_at(net.route(sent, 0, 1, 1));
        assert!(first >= sent.0 + MS / 10 && first <= sent.0 + MS / 10 + 50 * MS);
        reordered += usize::from(first < last);
        last = first;
        if let Some(again) = net.duplicate(0, 1, SimTime(first)) {
            assert!(again.0 >= first && again.0 <= first + 50 * MS);
            copies += 1;
        }
    }
    assert!(reordered > 300, "1 ms apart under 50 ms of jitter: {reordered}");
    assert!((240..=360).contains(&copies), "about 30 %: {copies}");
    // One way: the other direction keeps its order and single copies.
    let back: Vec<u64> = (0..100).map(|k| deliver_at(net.route(SimTime(k * MS), 1, 0, 1))).collect();
    assert!(back.is_sorted() && (0..100).all(|k| net.duplicate(1, 0, SimTime(back[k])).is_none()));
}

#[test]
fn link_loss_and_jitter_are_per_link_streams() {
    let sc = scenario("[[link]]\nfrom = \"n1\"\nto = \"n2\"\nloss_ratio = 0.25\njitter = \"1ms\"\n");
    let mut a = crate::build::network(&sc, 9);
    let mut b = crate::build::network(&sc, 9);
    // Interleaving traffic on other links does not change this link's draws.
    let xs: Vec<Verdict> = (0..500).map(|_| a.route(SimTime(0), 0, 1, 1)).collect();
    let ys: Vec<Verdict> = (0..500)
        .map(|_| {
            b.route(SimTime(0), 2, 0, 1);
            b.route(SimTime(0), 0, 1, 1)
        })
        .collect();
    assert_eq!(xs, ys);
    let lost = xs.iter().filter(|v| matches!(v, Verdict::Drop(DropReason::Loss, None))).count();
    assert!((90..160).contains(&lost), "{lost} of 500 lost at 0.25");
    assert!(xs.iter().all(|v| match v {
        Verdict::Deliver(t) => (MS / 10..=MS / 10 + MS).contains(&t.0),
        _ => true,
    }));
}
