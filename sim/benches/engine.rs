//! Message deliveries per wall second through the madsim engine and through the bare
//! binary-heap loop, on the same probe mesh and the same `World`. Prints medians and the ratio.
//!
//! `cargo bench -p sim` (add `-- --quick` for one repetition).

use std::time::Instant;

use models::stack::StackNode;
use sim::trace::Detail;
use sim::world::World;

fn mesh(nodes: usize, racks: usize, interval_ms: u64, seconds: u64) -> scenarios::Scenario {
    let mut t = format!(
        "[scenario]\nname = \"bench-mesh-{nodes}\"\nduration = \"{seconds}s\"\n\n[[region]]\nname = \"r\"\n\n[probe]\ninterval = \"{interval_ms}ms\"\ntimeout = \"1s\"\n"
    );
    for k in 0..racks {
        t += &format!("\n[[rack]]\nname = \"k{k}\"\nregion = \"r\"\n");
    }
    for i in 0..nodes {
        t += &format!("\n[[node]]\nname = \"n{i}\"\nrack = \"k{}\"\nkind = \"probe\"\n", i % racks);
    }
    scenarios::parse_str("bench.toml", &t).expect("bench scenario is valid")
}

fn delivered(world: &World<StackNode>) -> u64 {
    world.metrics.total(sim::world::METRIC_DELIVERED, models::Label::None).map_or(0, |a| a.count)
}

/// (deliveries, wall seconds, windows) of one engine run.
fn engine_once(sc: &scenarios::Scenario, seed: u64) -> (u64, f64, u64) {
    let wall = Instant::now();
    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    let (world, stats) = rt.block_on(sim::run::simulate(sc, seed, Detail::Default));
    (delivered(&world), wall.elapsed().as_secs_f64(), stats.windows)
}

fn bare_once(sc: &scenarios::Scenario, seed: u64) -> (u64, f64) {
    let wall = Instant::now();
    let (mut world, factory) = sim::build::build(sc, seed, Detail::Default);
    sim::bare::run(&mut world, &*factory);
    (delivered(&world), wall.elapsed().as_secs_f64())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 1 } else { 7 };
    println!(
        "{:<34} {:>12} {:>14} {:>14} {:>7} {:>10}",
        "workload", "deliveries", "engine msg/s", "bare msg/s", "ratio", "msgs/window"
    );
    for (label, sc) in [
        ("mesh 30 nodes, ping every 10 ms", mesh(30, 3, 10, 10)),
        ("mesh 12 nodes, ping every 50 ms", mesh(12, 3, 50, 30)),
        ("control plane: 5 nodes, 100 ms", mesh(5, 3, 100, 300)),
    ] {
        let (mut e_rates, mut b_rates, mut per_window) = (vec![], vec![], vec![]);
        let mut count = 0;
        for rep in 0..reps {
            let (d, secs, windows) = engine_once(&sc, rep);
            let (d2, secs2) = bare_once(&sc, rep);
            assert_eq!(d, d2, "engine and bare loop must deliver the same messages");
            count = d;
            e_rates.push(d as f64 / secs);
            b_rates.push(d2 as f64 / secs2);
            per_window.push(d as f64 / windows as f64);
        }
        let (e, b) = (median(e_rates), median(b_rates));
        println!("{label:<34} {count:>12} {e:>14.0} {b:>14.0} {:>6.2}x {:>10.1}", b / e, median(per_window));
    }
}
