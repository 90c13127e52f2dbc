use super::*;
use models::trace::{MetricRow, NodeRef};

const S: u64 = NS_PER_S;

fn ev(t_ns: u64, node: Option<u32>, kind: TraceKind) -> Event {
    Event { seq: 0, t_ns, node: node.map(NodeRef), kind }
}

fn role(node: u32, t_ns: u64, role: &str) -> Event {
    ev(
        t_ns,
        Some(node),
        TraceKind::PgRole {
            cluster: "db".into(),
            role: models::pg::ServerRole::parse(role).expect("a role"),
            tli: 1,
            origin: 0,
            upstream: None,
        },
    )
}

fn acked(t_ns: u64, count: u64, synced: bool) -> Event {
    let kind = TraceKind::PgCommitsAcked {
        cluster: "db".into(),
        tli: 1,
        origin: 0,
        level: models::pg::SyncLevel::On,
        count,
        first_lsn: 1,
        step: 1,
        synced,
    };
    ev(t_ns, Some(0), kind)
}

fn fault(t_ns: u64, index: u32, start: bool) -> Event {
    let kind = if start {
        TraceKind::FaultStarted { fault: index, fault_kind: "node-crash".into(), detail: String::new() }
    } else {
        TraceKind::FaultHealed { fault: index, fault_kind: "node-crash".into() }
    };
    ev(t_ns, None, kind)
}

fn tick(second: u64, client_failed: u64) -> Event {
    let row = |metric: &str, count| MetricRow { metric: metric.into(), label: "t".into(), count, dist: None };
    let rows = vec![row(models::flow::client::CLIENT_OK, 100), row(models::flow::client::CLIENT_FAILED, client_failed)];
    ev((second + 1) * S, None, TraceKind::Metrics { second, rows: rows.into() })
}

fn spec(synchronous: bool) -> ConvergeSpec {
    ConvergeSpec {
        databases: vec!["db".into()],
        synchronous: if synchronous { vec!["db".into()] } else { vec![] },
        writes: vec!["db".into()],
        clients: true,
        ..ConvergeSpec::default()
    }
}

/// Feeds `events`, then one tick per second up to `seconds` with commits (synced or not) in
/// every second from `commits_from` and client failures in the seconds listed.
fn run(
    spec: ConvergeSpec,
    mut events: Vec<Event>,
    seconds: u64,
    commits_from: u64,
    synced: bool,
    failing: &[u64],
) -> Value {
    for s in 0..seconds {
        if s >= commits_from {
            events.push(acked(s * S + S / 2, 10, synced));
        }
        events.push(tick(s, if failing.contains(&s) { 5 } else { 0 }));
    }
    events.sort_by_key(|e| e.t_ns);
    let mut c = Convergence::new(spec);
    for e in &events {
        assert_eq!(c.on_event(e), None, "convergence reports, it never fires");
    }
    assert!(c.finish(seconds * S).is_empty());
    c.report().expect("a database to converge").1
}

/// The primary crashes at 10 s for 20 s; a standby is promoted at 25 s; commits resume at
/// 26 s; the crash fault heals at 30 s (the old primary restarts as a primary, then follows
/// at 33.5 s); clients fail until 36 s. Whole from 36 s on: 6 s after the heal.
#[test]
fn converges_when_every_condition_holds_to_the_end() {
    let events = vec![
        role(0, 0, "primary"),
        role(1, 0, "standby"),
        fault(10 * S, 0, true),
        ev(10 * S, Some(0), TraceKind::NodeCrashed),
        role(1, 25 * S, "primary"),
        fault(30 * S, 0, false),
        ev(30 * S, Some(0), TraceKind::NodeRestarted { incarnation: 1 }),
        role(0, 30 * S, "primary"),
        role(0, 33 * S + S / 2, "standby"),
    ];
    let failing: Vec<u64> = (10..36).collect();
    let v = run(spec(false), events, 60, 26, false, &failing);
    assert_eq!(v["faults_healed_at_seconds"], json!(30.0));
    assert_eq!(v["converged"], json!(1));
    assert_eq!(v["converged_at_seconds"], json!(36.0));
    assert_eq!(v["seconds_to_converge"], json!(6.0));
    assert_eq!(v["last_unconverged_second"], json!(35));
    assert_eq!(v["why_not_converged"], Value::Null);
}

/// Two primaries for part of one second break that second, though the state at its end is fine.
#[test]
fn two_primaries_within_a_second_break_it() {
    let events = vec![role(0, 0, "primary"), role(1, 40 * S + 100, "primary"), role(1, 40 * S + 200, "standby")];
    let v = run(spec(false), events, 60, 0, false, &[]);
    assert_eq!(v["converged_at_seconds"], json!(41.0), "{v}");
    assert_eq!(v["seconds_to_converge"], json!(41.0), "no fault: counted from 0");
    let v = run(spec(false), vec![role(0, 0, "primary")], 60, 0, false, &[]);
    assert_eq!((v["converged_at_seconds"].clone(), v["last_unconverged_second"].clone()), (json!(0.0), Value::Null));
}

/// With synchronous replication, commits that no synchronous standby confirmed do not count:
/// the synchronous set is not restored.
#[test]
fn unsynchronised_commits_do_not_restore_a_synchronous_set() {
    let v = run(spec(true), vec![role(0, 0, "primary")], 30, 0, false, &[]);
    assert_eq!(v["converged"], json!(0));
    assert_eq!(v["why_not_converged"], json!("second 29: db: no commit confirmed by a synchronous standby"));
    let v = run(spec(true), vec![role(0, 0, "primary")], 30, 0, true, &[]);
    assert_eq!(v["converged"], json!(1));
}

#[test]
fn a_fault_that_never_heals_never_converges() {
    let events = vec![role(0, 0, "primary"), fault(5 * S, 0, true), fault(6 * S, 1, true), fault(8 * S, 0, false)];
    let v = run(spec(false), events, 30, 0, false, &[]);
    assert_eq!(v["faults_healed_at_seconds"], Value::Null);
    assert_eq!(v["converged"], json!(0));
    assert_eq!(v["seconds_to_converge"], Value::Null);
    assert_eq!(v["why_not_converged"], json!("a fault is still active when the run ends"));
    // No primary at all (it crashed and nothing took over) is not converged either.
    let events = vec![role(0, 0, "primary"), ev(3 * S, Some(0), TraceKind::NodeCrashed)];
    let v = run(spec(false), events, 30, 40, false, &[]);
    assert_eq!(v["why_not_converged"], json!("second 29: db: 0 live primaries; db: no commit acknowledged"));
}

#[test]
fn the_stack_scenario_asks_for_what_it_runs() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/stack-primary-crash.toml");
    let sc = scenarios::load(&path).unwrap();
    let s = ConvergeSpec::from_scenario(&sc);
    assert_eq!(s.databases, ["pdx"]);
    assert_eq!(s.synchronous, ["pdx"], "synchronousReplication with synchronous_commit = on");
    assert_eq!(s.writes, ["pdx"], "write_tps = 0, but the tenants write through the stack");
    assert_eq!((s.writes_from_s, s.clients_from_s), (30, 30), "the workload starts after 30 s");
    assert!(s.etcd_leader && s.clients && !s.etcd_writes);
    let probes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/network-smoke.toml");
    assert!(ConvergeSpec::from_scenario(&scenarios::load(&probes).unwrap()).is_empty());
}
