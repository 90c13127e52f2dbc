//! Simulated seconds per wall second for a 3-member etcd cluster with a writer (10 writes/s):
//! one quiet hour, and one hour with the e1<->e3 link flapping (2 s down every 4 s).
//!
//! `cargo bench -p sim --bench etcd` (add `-- --quick` for one repetition).

use std::time::Instant;

use sim::{Detail, RunOptions, run};

fn cluster(flapping: bool) -> scenarios::Scenario {
    let mut t = String::from(
        "[scenario]\nname = \"bench-etcd\"\nduration = \"1h\"\n\n[etcd_writer]\nstart_after = \"5s\"\n\n[[region]]\nname = \"r\"\n",
    );
    for m in 1..=3 {
        t += &format!(
            "\n[[rack]]\nname = \"k{m}\"\nregion = \"r\"\n\n[[node]]\nname = \"e{m}\"\nrack = \"k{m}\"\nkind = \"etcd\"\n"
        );
    }
    t += "\n[[node]]\nname = \"w\"\nrack = \"k2\"\nkind = \"etcd-writer\"\n";
    if flapping {
        t += "\n[[fault]]\nat = \"10s\"\nkind = \"link-flapping\"\nbetween = [\"e1\", \"e3\"]\nperiod = \"4s\"\ndown_for = \"2s\"\n";
    }
    scenarios::parse_str("bench-etcd.toml", &t).expect("valid")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 1 } else { 5 };
    println!("{:<32} {:>10} {:>14} {:>12} {:>10}", "workload", "sim s", "wall s (med)", "sim s/wall s", "events");
    for (label, flapping) in [("etcd 3 members, quiet hour", false), ("etcd 3 members, flapping hour", true)] {
        let sc = cluster(flapping);
        let mut walls = Vec::new();
        let mut events = 0;
        for rep in 0..reps {
            let wall = Instant::now();
            let out = run(&sc, RunOptions { seed: Some(rep), detail: Detail::Default, ..Default::default() });
            walls.push(wall.elapsed().as_secs_f64());
            events = out.world.trace.events.len();
        }
        walls.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = walls[walls.len() / 2];
        let sim_s = sc.duration.as_secs_f64();
        println!("{label:<32} {sim_s:>10.0} {median:>14.3} {:>12.0} {events:>10}", sim_s / median);
    }
}
