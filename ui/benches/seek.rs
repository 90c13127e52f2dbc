//! Seeking in a long trace: the terminal UI's promise is that any cursor position shows in
//! 50 ms or less, backwards as fast as forwards. Builds a synthetic 1,000,000-event trace
//! (Raft churn, faults, crashes, drops, per-second metrics), then seeks to random targets:
//! the fold alone (nearest snapshot + replay) and a full seek-and-draw on a 100x30 terminal.
//! Prints medians; asserts nothing about timing.
//!
//! RUSTFLAGS="--cfg madsim" cargo bench -p ui --bench seek

use std::time::{Duration, Instant};

use models::trace::{DistStats, DropReason, Event, MetricRow, NodeRef, TraceKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ui::tui::load::{Run, Topology};
use ui::tui::{App, view};

const EVENTS: usize = 1_000_000;
const SEEKS: usize = 2_000;
const NODES: u32 = 8;

/// xorshift64*: a fixed, dependency-free stream, so every run seeks to the same targets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn metrics_rows(rng: &mut Rng) -> Vec<MetricRow> {
    let mut rows = vec![
        MetricRow { metric: "net_delivered".into(), label: "".into(), count: 900 + rng.below(200), dist: None },
        MetricRow { metric: "net_dropped".into(), label: "loss".into(), count: rng.below(50), dist: None },
        MetricRow { metric: "etcd_writes_ok".into(), label: "w1".into(), count: 10, dist: None },
    ];
    for pair in 0..16 {
        let p99 = 0.2 + rng.below(1000) as f64 / 100.0;
        rows.push(MetricRow {
            metric: "probe_rtt_ms".into(),
            label: format!("p{}->p{}", pair % 4, pair / 4).into(),
            count: 10,
            dist: Some(DistStats { min: 0.1, mean: p99 / 2.0, p50: p99 / 2.0, p99, max: p99 * 1.1 }),
        });
    }
    rows
}

fn synthetic_trace() -> Vec<Event> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut term = 1;
    let mut events = Vec::with_capacity(EVENTS);
    // 10,000 events a simulated second: a 100 s run.
    let step_ns = 100_000;
    for i in 0..EVENTS as u64 {
        let node = rng.below(NODES as u64) as u32;
        let kind = if i == 0 {
            TraceKind::RunStarted {
                pgsim_version: "bench".into(),
                scenario: "synthetic".into(),
                scenario_hash: "0".into(),
                seed: 0,
                duration_ns: EVENTS as u64 * step_ns,
                nodes: (0..NODES).map(|n| format!("n{n}")).collect(),
                lookahead_ns: 100_000,
            }
        } else if i % 10_000 == 0 {
            TraceKind::Metrics { second: i / 10_000 - 1, rows: metrics_rows(&mut rng).into() }
        } else {
            match rng.below(1000) {
                0..=2 => {
                    term += 1;
                    TraceKind::RaftCampaign { term, pre_vote: rng.below(2) == 0, transfer: false }
                }
                3 => TraceKind::RaftLeaderElected { term, last_index: i, log_terms: vec![(1, 1), (i / 2, term)] },
                4 => TraceKind::RaftSteppedDown { term, reason: models::raft::StepDown::HigherTerm },
                5 => TraceKind::FaultStarted {
                    fault: rng.below(8) as u32,
                    fault_kind: "switch-degraded".into(),
                    detail: "switch core drops 0.5 of packets (all ports)".into(),
                },
                6 => TraceKind::FaultHealed { fault: rng.below(8) as u32, fault_kind: "switch-degraded".into() },
                7 => TraceKind::Flapped { fault: rng.below(8) as u32, down: rng.below(2) == 0 },
                8 => TraceKind::NodeCrashed,
                9 => TraceKind::NodeRestarted { incarnation: rng.below(10) as u32 },
                10 => TraceKind::NodePaused,
                11 => TraceKind::NodeResumed,
                _ => TraceKind::MessageDropped {
                    from: NodeRef(node),
                    to: NodeRef((node + 1) % NODES),
                    msg: "append_entries".into(),
                    reason: DropReason::ALL[rng.below(6) as usize],
                    via: None,
                },
            }
        };
        let node = match kind {
            TraceKind::RunStarted { .. } | TraceKind::Metrics { .. } | TraceKind::FaultStarted { .. } => None,
            TraceKind::FaultHealed { .. } | TraceKind::Flapped { .. } => None,
            _ => Some(NodeRef(node)),
        };
        events.push(Event { seq: i, t_ns: i * step_ns, node, kind });
    }
    events
}

fn stats(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:<44} median {:>9.3} ms   p99 {:>9.3} ms   max {:>9.3} ms   ({} seeks)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        samples.len()
    );
}

fn main() {
    let t = Instant::now();
    let events = synthetic_trace();
    println!("synthetic trace: {} events built in {:.2} s", events.len(), t.elapsed().as_secs_f64());

    let kinds = vec!["etcd"; 5].into_iter().chain(vec!["probe"; 3]).collect();
    let run = Run {
        scenario: "synthetic".into(),
        seed: 0,
        names: (0..NODES).map(|n| format!("n{n}")).collect(),
        kinds,
        topology: Topology::flat(NODES as usize),
        pg: Vec::new(),
        events,
    };
    let t = Instant::now();
    let mut app = App::new(run);
    println!("App::new (fold once, snapshots, stops, traffic): {:.3} s", t.elapsed().as_secs_f64());

    let mut rng = Rng(42);
    let targets: Vec<usize> = (0..SEEKS).map(|_| rng.below(EVENTS as u64) as usize).collect();

    // The fold alone: nearest snapshot, clone, replay.
    let mut fold = Vec::with_capacity(SEEKS);
    let mut checksum = 0usize;
    for &target in &targets {
        let t = Instant::now();
        let state = app.timeline.state_at(target);
        fold.push(t.elapsed());
        checksum = checksum.wrapping_add(state.applied + state.faults.len());
    }
    stats("fold at a random target (state_at)", fold);

    // What a key press costs: move the cursor (any distance, either way), then draw a frame.
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).expect("test terminal");
    let mut seek_draw = Vec::with_capacity(SEEKS);
    for &target in &targets {
        let t = Instant::now();
        app.seek(target);
        terminal.draw(|f| view::draw(f, &app)).expect("draws");
        seek_draw.push(t.elapsed());
    }
    stats("seek + draw 100x30 at a random target", seek_draw);

    // Stepping backwards one event at a time from a snapshot boundary: the worst replay.
    let mut back = Vec::with_capacity(SEEKS);
    app.seek(EVENTS / 2 + 4095);
    for _ in 0..SEEKS {
        let target = app.cursor - 1;
        let t = Instant::now();
        app.seek(target);
        terminal.draw(|f| view::draw(f, &app)).expect("draws");
        back.push(t.elapsed());
    }
    stats("one event back (+ draw), 2,000 times in a row", back);
    println!("(checksum {checksum})");
}
