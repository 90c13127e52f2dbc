//! A 7-hour run must give a report that opens quickly and stays under 5 MB: series are
//! downsampled to at most 1500 points, flapping phases and marks thinned to the pixel.

mod common;

use std::time::Instant;

use common::*;
use models::trace::{DistStats, Event, MetricRow, NodeRef, TraceKind};
use serde_json::json;

const HOURS_7_S: u64 = 7 * 3600;
const MAX_BYTES: usize = 5 * 1024 * 1024;

fn dist(v: f64) -> Option<DistStats> {
    Some(DistStats { min: v * 0.5, mean: v, p50: v, p99: v * 3.0, max: v * 4.0 })
}

/// A busy synthetic trace: every metric the catalog charts, each second for 7 hours; a link
/// flapping the whole time (2 s down every 4 s) and a leader elected after every down phase.
fn synthetic_trace() -> Vec<Event> {
    let nodes: Vec<String> = ["e1", "e2", "e3", "w1", "p1", "p2", "p3"].iter().map(|s| s.to_string()).collect();
    let mut events = Vec::new();
    let mut push = |t_ns: u64, node: Option<u32>, kind: TraceKind| {
        let seq = events.len() as u64;
        events.push(Event { seq, t_ns, node: node.map(NodeRef), kind });
    };
    let s_ns = 1_000_000_000u64;
    push(
        0,
        None,
        TraceKind::RunStarted {
            pgsim_version: "test".into(),
            scenario: "synthetic-7h".into(),
            scenario_hash: "0".into(),
            seed: 1,
            duration_ns: HOURS_7_S * s_ns,
            nodes: nodes.clone(),
            lookahead_ns: 100_000,
        },
    );
    push(
        s_ns,
        None,
        TraceKind::FaultStarted { fault: 0, fault_kind: "link-flapping".into(), detail: "e1<->e3".into() },
    );
    let mut term = 1;
    for second in 0..HOURS_7_S {
        let t = second * s_ns;
        if second % 4 == 1 {
            push(t, None, TraceKind::Flapped { fault: 0, down: true });
        }
        if second % 4 == 3 {
            push(t, None, TraceKind::Flapped { fault: 0, down: false });
            term += 1;
            let leader = (term % 3) as u32;
            push(t + 1000, Some((leader + 1) % 3), TraceKind::RaftCampaign { term, pre_vote: false, transfer: false });
            push(t + 2000, Some(leader), TraceKind::RaftLeaderElected { term, last_index: 1, log_terms: vec![] });
            push(
                t + 3000,
                Some((leader + 2) % 3),
                TraceKind::RaftSteppedDown { term: term - 1, reason: models::raft::StepDown::HigherTerm },
            );
            push(t + 4000, Some(3), TraceKind::EtcdWritesResumed { unavailable_ms: 900.0 });
        }
        let wobble = (second % 97) as f64;
        let mut rows = vec![
            MetricRow { metric: "net_delivered".into(), label: "".into(), count: 900 + second % 50, dist: None },
            MetricRow {
                metric: "net_dropped".into(),
                label: "link_down".into(),
                count: second % 4 / 2 * 30,
                dist: None,
            },
            MetricRow { metric: "etcd_writes_ok".into(), label: "w1".into(), count: 10, dist: None },
            MetricRow { metric: "etcd_write_ms".into(), label: "w1".into(), count: 10, dist: dist(2.0 + wobble) },
            MetricRow {
                metric: "disk_fsync_ms".into(),
                label: "e1".into(),
                count: 10,
                dist: dist(0.5 + wobble / 10.0),
            },
        ];
        for (a, b) in [("p1", "p2"), ("p1", "p3"), ("p2", "p1"), ("p2", "p3"), ("p3", "p1"), ("p3", "p2")] {
            rows.push(MetricRow {
                metric: "probe_rtt_ms".into(),
                label: format!("{a}->{b}").into(),
                count: 10,
                dist: dist(0.3 + wobble),
            });
            rows.push(MetricRow {
                metric: "probe_timed_out".into(),
                label: format!("{a}->{b}").into(),
                count: second % 3,
                dist: None,
            });
        }
        rows.sort_by(|x, y| (&x.metric, &x.label).cmp(&(&y.metric, &y.label)));
        push(t + s_ns, None, TraceKind::Metrics { second, rows: rows.into() });
    }
    push(HOURS_7_S * s_ns, None, TraceKind::RunFinished { sim_ns: HOURS_7_S * s_ns });
    events
}

fn check_bounded(html: &str, what: &str) {
    assert!(html.len() < MAX_BYTES, "{what}: report.html is {} bytes", html.len());
    let doc = parse(html);
    for c in with_attr(doc.root(), "section", "data-chart") {
        let id = c.attribute("data-chart").unwrap();
        for p in with_attr(c, "path", "data-series") {
            assert!(num(p, "data-points") <= 1500.0, "{what} {id}: {} points", num(p, "data-points"));
        }
        assert!(with_class(c, "rect", "down").len() <= 1500, "{what} {id}: down phases thinned");
        let mark_elements = c.descendants().filter(|n| n.attribute("data-mark").is_some()).count();
        assert!(mark_elements <= 4 * 200, "{what} {id}: {mark_elements} mark elements");
        assert!(with_attr(c, "rect", "data-lane").len() <= 3 * 1500, "{what} {id}: lane spells merged");
    }
    // A browser's load time follows the element count.
    let elements = doc.descendants().filter(|n| n.is_element()).count();
    assert!(elements < 60_000, "{what}: {elements} elements");
}

#[test]
fn synthetic_seven_hour_trace_gives_a_small_report() {
    let events = synthetic_trace();
    let summary = json!({"scenario": "synthetic-7h", "events": events.len(), "outcome": "pass", "assertions": []});
    let started = Instant::now();
    let html = reports::html::render_report(&events, &summary, None);
    let wall = started.elapsed();
    println!("synthetic 7 h: {} events -> report.html {} bytes in {wall:?}", events.len(), html.len());
    // To time it in a browser: PGSIM_DUMP_REPORT=/tmp/7h.html cargo test ... long_run
    if let Ok(path) = std::env::var("PGSIM_DUMP_REPORT") {
        std::fs::write(path, &html).unwrap();
    }
    check_bounded(&html, "synthetic");
    let doc = parse(&html);
    let ids = chart_ids(&doc);
    assert_eq!(
        ids,
        [
            "net-delivered",
            "net-dropped",
            "probe-rtt",
            "probe-timeouts",
            "disk-fsync",
            "etcd-leader",
            "etcd-term",
            "etcd-writes",
            "etcd-write-latency"
        ]
    );
    // Downsampling kept the extremes: the delivered series still spans 900..949.
    let delivered = series(chart(&doc, "net-delivered"), "delivered", None);
    assert_eq!(num(delivered, "data-total"), (0..HOURS_7_S).map(|s| (900 + s % 50) as f64).sum::<f64>());
    // Every leader change is accounted for in the thinned marks.
    let marked = marks(chart(&doc, "etcd-term"), "leader");
    let elected = events.iter().filter(|e| matches!(e.kind, TraceKind::RaftLeaderElected { .. })).count() as u64;
    assert_eq!(marked, elected);
}

/// The real thing: etcd-flapping-link stretched to 7 hours of flapping.
#[test]
fn seven_hour_etcd_run_gives_a_small_report() {
    let path = scenario_path("etcd-flapping-link.toml");
    let mut sc = scenarios::load(&path).unwrap();
    let hours_7 = std::time::Duration::from_secs(HOURS_7_S);
    sc.duration = hours_7;
    sc.faults[0].until = Some(hours_7 - std::time::Duration::from_secs(60));
    let started = Instant::now();
    let out = sim::run(&sc, sim::RunOptions::default());
    let sim_wall = started.elapsed();
    let started = Instant::now();
    let html = reports::html::render_report(&out.world.trace.events, &out.summary, None);
    println!(
        "etcd 7 h: simulated in {sim_wall:?}; {} events -> report.html {} bytes in {:?}",
        out.world.trace.events.len(),
        html.len(),
        started.elapsed()
    );
    check_bounded(&html, "etcd 7 h");
    assert!(chart_ids(&parse(&html)).contains(&"etcd-leader".to_string()));
}
