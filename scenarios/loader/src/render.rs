//! The way back: validated faults and assertions written as scenario TOML, so a schedule made by
//! a program (a swarm seed's, a shrunk one) becomes a file that `pgsim run` replays. Rendering
//! then loading gives back the same values (tested below).

use std::fmt::Write as _;
use std::time::Duration;

use crate::model::{Assertion, Fault, FaultKind, NodeIdx, Scenario};

/// A duration as the loader reads it back exactly: whole seconds, else whole milliseconds, else
/// microseconds, else nanoseconds.
pub fn duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

/// A TOML basic string.
pub fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A float as TOML reads it back exactly (Rust prints the shortest representation that
/// round-trips; TOML needs a fractional part or exponent to keep it a float).
fn float(x: f64) -> String {
    let s = format!("{x:?}");
    if s.contains(['.', 'e', 'E']) || !x.is_finite() { s } else { format!("{s}.0") }
}

fn names(sc: &Scenario, nodes: &[NodeIdx]) -> String {
    let v: Vec<String> = nodes.iter().map(|&n| string(&sc.nodes[n as usize].name)).collect();
    format!("[{}]", v.join(", "))
}

/// One `[[fault]]` table (ending in a newline).
pub fn fault(sc: &Scenario, f: &Fault) -> String {
    let mut out = String::from("[[fault]]\n");
    let _ = writeln!(out, "at = {}", string(&duration(f.at)));
    if let Some(u) = f.until {
        let _ = writeln!(out, "for = {}", string(&duration(u.saturating_sub(f.at))));
    }
    let _ = writeln!(out, "kind = {}", string(f.kind.name()));
    let node = |n: NodeIdx| string(&sc.nodes[n as usize].name);
    let switch = |s: usize| string(&sc.switches[s].name);
    let between = |a: NodeIdx, b: NodeIdx| format!("between = [{}, {}]", node(a), node(b));
    let mut lines: Vec<String> = Vec::new();
    match &f.kind {
        FaultKind::Partition { from, to, one_way } => {
            lines.push(format!("from = {}", names(sc, from)));
            lines.push(format!("to = {}", names(sc, to)));
            lines.push(format!("one_way = {one_way}"));
        }
        FaultKind::LinkDown { a, b, one_way } => {
            lines.push(between(*a, *b));
            lines.push(format!("one_way = {one_way}"));
        }
        FaultKind::LinkDegraded { a, b, one_way, loss_ratio, extra_latency, extra_jitter, duplicate_ratio } => {
            lines.push(between(*a, *b));
            lines.push(format!("one_way = {one_way}"));
            lines.push(format!("loss_ratio = {}", float(*loss_ratio)));
            lines.push(format!("extra_latency = {}", string(&duration(*extra_latency))));
            // Written only when set, so files from before these keys read the same.
            if !extra_jitter.is_zero() {
                lines.push(format!("extra_jitter = {}", string(&duration(*extra_jitter))));
            }
            if *duplicate_ratio > 0.0 {
                lines.push(format!("duplicate_ratio = {}", float(*duplicate_ratio)));
            }
        }
        FaultKind::LinkFlapping { a, b, one_way, period, down_for } => {
            lines.push(between(*a, *b));
            lines.push(format!("one_way = {one_way}"));
            lines.push(format!("period = {}", string(&duration(*period))));
            lines.push(format!("down_for = {}", string(&duration(*down_for))));
        }
        FaultKind::SwitchDown { switch: s } => lines.push(format!("switch = {}", switch(*s))),
        FaultKind::SwitchDegraded { switch: s, loss_ratio, ports } => {
            lines.push(format!("switch = {}", switch(*s)));
            lines.push(format!("loss_ratio = {}", float(*loss_ratio)));
            if !ports.is_empty() {
                let pairs: Vec<String> = ports.iter().map(|(p, q)| format!("[{}, {}]", string(p), string(q))).collect();
                lines.push(format!("ports = [{}]", pairs.join(", ")));
            }
        }
        FaultKind::SwitchFlapping { switch: s, period, down_for } => {
            lines.push(format!("switch = {}", switch(*s)));
            lines.push(format!("period = {}", string(&duration(*period))));
            lines.push(format!("down_for = {}", string(&duration(*down_for))));
        }
        FaultKind::NodeCrash { node: n, .. }
        | FaultKind::NodePause { node: n, .. }
        | FaultKind::DiskStall { node: n }
        | FaultKind::DiskFull { node: n }
        | FaultKind::WalReceiverPause { node: n } => lines.push(format!("node = {}", node(*n))),
        FaultKind::DiskErrors { node: n, error_ratio } => {
            lines.push(format!("node = {}", node(*n)));
            lines.push(format!("error_ratio = {}", float(*error_ratio)));
        }
        FaultKind::DiskSlow { node: n, factor } | FaultKind::ApplySlow { node: n, factor } => {
            lines.push(format!("node = {}", node(*n)));
            lines.push(format!("factor = {}", float(*factor)));
        }
    }
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// One `[[assert]]` table (ending in a newline).
pub fn assertion(a: &Assertion) -> String {
    let mut out = String::from("[[assert]]\n");
    let _ = writeln!(out, "name = {}", string(&a.name));
    if let Some(id) = &a.id {
        let _ = writeln!(out, "id = {}", string(id));
    }
    if let Some(given) = &a.given {
        let _ = writeln!(out, "if = {}", string(given));
    }
    let _ = writeln!(out, "metric = {}", string(&a.metric));
    for (key, v) in [("min", a.min), ("max", a.max), ("equals", a.equals)] {
        if let Some(v) = v {
            let _ = writeln!(out, "{key} = {}", float(v));
        }
    }
    if a.is_share() {
        let _ = writeln!(out, "share_of_seeds = {}", float(a.share_of_seeds));
    }
    out
}

/// `own` laid over the scenario text `base` as `include` would lay it (each top-level table or
/// array of tables `own` defines replaces the base's whole; `[scenario]` merges key by key): a
/// standalone scenario text.
pub fn overlay(base: &str, own: &str) -> String {
    crate::include::overlay(base, own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scope;
    use crate::parse_str;

    const BASE: &str = r#"
fault = []

[scenario]
name = "base"
duration = "60s"

[[region]]
name = "r"

[[rack]]
name = "k1"
region = "r"

[[rack]]
name = "k2"
region = "r"

[[node]]
name = "a"
rack = "k1"
kind = "postgres"

[[node]]
name = "b"
rack = "k2"
kind = "postgres"
[node.postgres]
upstream = "a"

[[assert]]
name = "scripted"
metric = "x"
equals = 1
"#;

    #[test]
    fn durations_render_exactly() {
        for (d, s) in [
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(250), "250us"),
            (Duration::from_nanos(7), "7ns"),
        ] {
            assert_eq!(duration(d), s);
            assert_eq!(crate::units::parse_duration(s), Ok(d));
        }
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(0.1), "0.1");
    }

    /// Every kind written out and loaded again is the fault it was; the overlay replaces the
    /// base's faults and assertions and drops its `fault = []`.
    #[test]
    fn faults_and_assertions_round_trip_through_an_overlay() {
        let sc = parse_str("base.toml", BASE).unwrap();
        let ms = Duration::from_millis;
        let kinds = vec![
            FaultKind::Partition { from: vec![0], to: vec![1], one_way: true },
            FaultKind::LinkDown { a: 1, b: 0, one_way: false },
            FaultKind::LinkDegraded {
                a: 0,
                b: 1,
                one_way: false,
                loss_ratio: 0.37,
                extra_latency: ms(12),
                extra_jitter: Duration::ZERO,
                duplicate_ratio: 0.0,
            },
            FaultKind::LinkDegraded {
                a: 1,
                b: 0,
                one_way: true,
                loss_ratio: 0.0,
                extra_latency: Duration::ZERO,
                extra_jitter: ms(40),
                duplicate_ratio: 0.25,
            },
            FaultKind::LinkFlapping { a: 0, b: 1, one_way: true, period: ms(3100), down_for: ms(900) },
            FaultKind::SwitchDown { switch: 1 },
            FaultKind::SwitchDegraded { switch: 1, loss_ratio: 1.0, ports: vec![("a".into(), "uplink".into())] },
            FaultKind::SwitchDegraded { switch: 0, loss_ratio: 0.5, ports: vec![] },
            FaultKind::SwitchFlapping { switch: 0, period: ms(2000), down_for: ms(1000) },
            FaultKind::NodeCrash { node: 1, scope: Scope::Host },
            FaultKind::NodePause { node: 0, scope: Scope::Host },
            FaultKind::NodeCrash { node: 1, scope: Scope::Process },
            FaultKind::NodePause { node: 0, scope: Scope::Process },
            FaultKind::DiskStall { node: 0 },
            FaultKind::DiskErrors { node: 1, error_ratio: 0.25 },
            FaultKind::DiskFull { node: 1 },
            FaultKind::DiskSlow { node: 0, factor: 12.5 },
            FaultKind::ApplySlow { node: 1, factor: 40.0 },
            FaultKind::WalReceiverPause { node: 1 },
        ];
        let faults: Vec<Fault> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| Fault {
                index: i as u32,
                line: 0,
                at: ms(1000 + 1234 * i as u64),
                until: Some(ms(5000 + 1234 * i as u64)),
                kind: k.clone(),
            })
            .collect();
        let check = Assertion {
            id: Some("no-loss".into()),
            share_of_seeds: 0.95,
            ..Assertion::new("no \"loss\"", "postgres.x", None, Some(0.5), None)
        };
        let mut own = String::from("[scenario]\nname = \"swarm\"\n\n");
        for f in &faults {
            own.push_str(&fault(&sc, f));
            own.push('\n');
        }
        own.push_str(&assertion(&check));
        let text = overlay(BASE, &own);
        let back = parse_str("swarm.toml", &text).unwrap_or_else(|d| panic!("{d}\n{text}"));
        assert_eq!(back.name, "swarm");
        assert_eq!(back.duration, Duration::from_secs(60), "the base's other [scenario] keys stay");
        assert_eq!(back.faults.len(), faults.len());
        for (a, b) in faults.iter().zip(&back.faults) {
            assert_eq!((a.at, a.until, &a.kind), (b.at, b.until, &b.kind));
        }
        assert_eq!(back.asserts.len(), 1, "the base's scripted assertion is replaced");
        let b = &back.asserts[0];
        assert_eq!((b.name.as_str(), b.metric.as_str(), b.max), ("no \"loss\"", "postgres.x", Some(0.5)));
        assert_eq!((b.id.as_deref(), b.given.as_deref(), b.share_of_seeds), (Some("no-loss"), None, 0.95));
    }
}
