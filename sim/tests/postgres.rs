//! PostgreSQL durability end to end: the loss count equals the acknowledged commits past the
//! promoted standby's switch point, and random schedules that only ever promote the
//! synchronous standby never lose a synchronously confirmed commit.

use models::trace::TraceKind;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{Detail, RunOptions, run};

fn opts(seed: u64, detail: Detail) -> RunOptions {
    RunOptions { seed: Some(seed), detail, ..Default::default() }
}

#[test]
fn async_promotion_loses_exactly_the_commits_past_the_switch_point() {
    let sc = scenarios::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/pg-async-promotion-loss.toml"
    )))
    .expect("shipped scenario");
    let out = run(&sc, opts(1, Detail::Messages));
    let events = &out.world.trace.events;
    let switch = events
        .iter()
        .find_map(|e| match &e.kind {
            TraceKind::PgPromoted { switch_lsn, parent_tli: 1, .. } => Some(*switch_lsn),
            _ => None,
        })
        .expect("s1 was promoted");
    let (mut acked, mut past) = (0u64, 0u64);
    for e in events {
        if let TraceKind::PgCommitsAcked { tli: 1, count, first_lsn, step, .. } = &e.kind {
            acked += count;
            past += (0..*count).filter(|i| first_lsn + i * step > switch).count() as u64;
        }
    }
    let pg = &out.summary["postgres"];
    assert!(past > 5000, "a real loss to count: {past}");
    assert_eq!(pg["commits_lost"]["on"].as_u64().unwrap(), past, "the checker counts exactly these");
    assert!(pg["commits_acknowledged"].as_u64().unwrap() >= acked);
    assert!(out.world.trace.violations.is_empty(), "data loss was accepted by the operator");
}

fn schedule(i: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(0x9e ^ i);
    let level = ["on", "remote_write", "remote_apply"][rng.gen_range(0..3)];
    let mut s = format!(
        r#"[scenario]
name = "pg-property-{i}"
duration = "60s"
[postgres]
flow_tick = "20ms"
wal_sender_timeout = "10s"
wal_receiver_timeout = "10s"
[[pg_cluster]]
name = "c"
synchronous_standby_names = "FIRST 1 (s1)"
synchronous_commit = "{level}"
write_tps = 500
client_timeout = "5s"
[[region]]
name = "r"
"#
    );
    for (n, up) in [("p", None), ("s1", Some("p")), ("s2", Some("p"))] {
        s += &format!(
            "[[rack]]\nname = \"k-{n}\"\nregion = \"r\"\n[[node]]\nname = \"{n}\"\nrack = \"k-{n}\"\nkind = \"postgres\"\n"
        );
        if let Some(u) = up {
            s += &format!("[node.postgres]\nupstream = \"{u}\"\n");
        }
    }
    for _ in 0..rng.gen_range(0..4) {
        let at = rng.gen_range(2..40);
        let len = rng.gen_range(1..15);
        let who = ["p", "s1", "s2"][rng.gen_range(0..3)];
        let body = match rng.gen_range(0..4) {
            0 => format!("kind = \"node-pause\"\nnode = \"{who}\""),
            1 => format!("kind = \"disk-stall\"\nnode = \"{who}\""),
            2 => format!("kind = \"partition\"\nfrom = [\"{who}\"]\nto = [\"p\", \"s1\", \"s2\"]"),
            _ => format!("kind = \"link-degraded\"\nbetween = [\"p\", \"{who}\"]\nloss_ratio = 0.3")
                .replace("\"p\", \"p\"", "\"p\", \"s1\""),
        };
        s += &format!("[[fault]]\nat = \"{at}s\"\nfor = \"{len}s\"\n{body}\n");
    }
    // The primary is lost (crashed or cut off for good) and the synchronous standby promoted.
    let at = rng.gen_range(20..45);
    if rng.gen_bool(0.5) {
        s += &format!("[[fault]]\nat = \"{at}s\"\nkind = \"node-crash\"\nnode = \"p\"\n");
    } else {
        s += &format!("[[fault]]\nat = \"{at}s\"\nkind = \"partition\"\nfrom = [\"p\"]\nto = [\"s1\", \"s2\"]\n");
    }
    s += &format!("[[action]]\nat = \"{}s\"\nkind = \"promote\"\nnode = \"s1\"\n", at + rng.gen_range(1..8));
    s
}

#[test]
fn promoting_only_the_synchronous_standby_never_loses_a_confirmed_commit() {
    let mut failures = Vec::new();
    let mut confirmed = 0u64;
    for i in 0..200 {
        let text = schedule(i);
        let sc = scenarios::parse_str(&format!("pg-{i}.toml"), &text).expect("valid");
        let out = run(&sc, opts(i, Detail::Default));
        let pg = &out.summary["postgres"];
        confirmed += pg["commits_acknowledged"].as_u64().unwrap();
        if pg["commits_lost_synchronous"].as_u64() != Some(0) || !out.world.trace.violations.is_empty() {
            failures.push(format!("schedule {i}: {pg}\n{:?}\n{text}", out.world.trace.violations));
        }
    }
    assert!(confirmed > 200 * 5_000, "commits were confirmed: {confirmed}");
    assert!(failures.is_empty(), "{} schedules lost confirmed commits:\n{}", failures.len(), failures.join("\n\n"));
}
