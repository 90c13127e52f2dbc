//! Simulated seconds per wall second for the whole stack in three regions at 100,000
//! requests/s (90 % reads): three Stolon clusters (one primary region, two standby regions),
//! etcd across the regions, HAProxy, PgBouncer and a client region each. Built from the shipped
//! `stack-follow-the-sun.toml` topology, without its planned moves, for 2 simulated minutes
//! (30 s of them before the clients start), with the clients' tick at 100 ms and at 20 ms.
//!
//! `cargo bench -p sim --bench stack` (add `-- --quick` for one repetition).

use std::time::Instant;

use sim::{Detail, RunOptions, run};

fn stack(tick: &str) -> scenarios::Scenario {
    let base = include_str!("../../scenarios/stack-follow-the-sun.toml");
    // The topology and settings, no planned moves, no assertions, 2 minutes at 100k req/s.
    let mut t = String::new();
    let mut skip = false;
    for line in base.lines() {
        if line.starts_with("[[") || (line.starts_with('[') && !line.starts_with("[[")) {
            skip = line == "[[action]]" || line == "[[assert]]";
        }
        if !skip {
            t.push_str(line);
            t.push('\n');
        }
    }
    let t = t
        .replace("duration = \"24h\"", "duration = \"2m\"")
        // Request latency needs PostgreSQL's fine tick (the day-long scenario coarsens it).
        .replace("flow_tick = \"250ms\"", "flow_tick = \"10ms\"")
        .replace("read_rps = 3000", "read_rps = 90000")
        .replace("write_rps = 300", "write_rps = 10000")
        .replace("diurnal_amplitude = 0.5", "diurnal_amplitude = 0.0")
        // Servers sized for the load: 64 cores, room for every pooled connection.
        .replace("max_connections = 2000", "max_connections = 20000\ncores = 64")
        .replace("tick = \"1s\"", &format!("tick = \"{tick}\""));
    scenarios::parse_str("bench-stack.toml", &t).expect("valid")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 1 } else { 5 };
    println!(
        "{:<44} {:>7} {:>13} {:>12} {:>12} {:>9}",
        "workload", "sim s", "wall s (med)", "sim s/wall s", "requests/s", "ok ratio"
    );
    for tick in ["100ms", "20ms"] {
        let sc = stack(tick);
        let mut walls = Vec::new();
        let mut rate = 0.0;
        let mut ok = 0.0;
        for rep in 0..reps {
            let wall = Instant::now();
            let out = run(&sc, RunOptions { seed: Some(rep), detail: Detail::Default, ..Default::default() });
            walls.push(wall.elapsed().as_secs_f64());
            let s = &out.summary["stack"];
            let served = s["requests"]["ok"].as_f64().unwrap_or(0.0) + s["requests"]["failed"].as_f64().unwrap_or(0.0);
            rate = served / (sc.duration.as_secs_f64() - sc.workload.start_after.as_secs_f64());
            ok = s["availability"]["overall"].as_f64().unwrap_or(0.0);
        }
        walls.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = walls[walls.len() / 2];
        let sim_s = sc.duration.as_secs_f64();
        let label = format!("3 regions, 100k req/s, client tick {tick}");
        println!("{label:<44} {sim_s:>7.0} {median:>13.3} {:>12.0} {rate:>12.0} {ok:>9.5}", sim_s / median);
    }
}
