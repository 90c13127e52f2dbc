//! Valid scenarios load, and every name, default and duration is resolved as documented.
//! Plus a deterministic mutation test: mangled scenarios never panic the loader and every
//! error points at a real place in the text (or is a whole-file error).

use std::path::Path;
use std::time::Duration;

use scenarios::{Diagnostic, FaultKind, NetworkDefaults, NodeKind, ProbeSpec, Scenario, Scope, SwitchRole};

const BASE: &str = include_str!("../../../fuzz/seeds/base.toml");
const FULL: &str = include_str!("../../../fuzz/seeds/full.toml");
const MINIMAL: &str = include_str!("../../../fuzz/seeds/minimal.toml");

fn parse(name: &str, text: &str) -> Scenario {
    scenarios::parse_str(name, text).unwrap_or_else(|d| panic!("{name} must load:\n{d}"))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn index_of(names: impl IntoIterator<Item = String>, name: &str) -> usize {
    names.into_iter().position(|n| n == name).unwrap_or_else(|| panic!("no {name:?}"))
}

/// 1-based line of the `n`-th (0-based) line of `text` that equals `header`.
fn line_of_nth(text: &str, header: &str, n: usize) -> usize {
    text.lines().enumerate().filter(|(_, l)| *l == header).nth(n).map(|(i, _)| i + 1).expect("header present")
}

#[test]
fn base_topology_resolves_to_indices() {
    let s = parse("base.toml", BASE);
    assert_eq!(s.path, "base.toml");
    assert_eq!((s.name.as_str(), s.duration, s.seed), ("base", secs(60), 7));
    assert_eq!(s.network.switch_latency, Duration::from_micros(100));
    assert_eq!(s.network.region_latency, Duration::from_micros(250));
    assert_eq!(s.network.jitter, Duration::from_micros(50));
    assert_eq!(s.network.loss_ratio, 0.0);

    let regions: Vec<&str> = s.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(regions, ["pdx", "lux"]);
    // Core switches come first, in region order; then one ToR per rack, named after it.
    let switches: Vec<(&str, usize, SwitchRole)> =
        s.switches.iter().map(|w| (w.name.as_str(), w.region, w.role.clone())).collect();
    assert_eq!(
        switches,
        [
            ("pdx-core", 0, SwitchRole::Core),
            ("lux-core", 1, SwitchRole::Core),
            ("pdx-r1-tor", 0, SwitchRole::Tor),
            ("pdx-r2-tor", 0, SwitchRole::Tor),
            ("lux-r1-tor", 1, SwitchRole::Tor),
        ]
    );
    assert_eq!(s.regions[0].core_switch, 0);
    assert_eq!(s.regions[1].core_switch, 1);
    let racks: Vec<(&str, usize, usize)> = s.racks.iter().map(|r| (r.name.as_str(), r.region, r.switch)).collect();
    assert_eq!(racks, [("pdx-r1", 0, 2), ("pdx-r2", 0, 3), ("lux-r1", 1, 4)]);
    let nodes: Vec<(&str, usize, usize, usize)> =
        s.nodes.iter().map(|n| (n.name.as_str(), n.rack, n.region, n.switch)).collect();
    assert_eq!(nodes, [("p1", 0, 0, 2), ("p2", 1, 0, 3), ("l1", 2, 1, 4)]);
    assert!(s.nodes.iter().all(|n| n.kind == NodeKind::Probe));

    assert_eq!(s.region_links.len(), 1);
    let rl = &s.region_links[0];
    assert_eq!(
        (rl.a, rl.b, rl.latency, rl.jitter, rl.loss_ratio, rl.bandwidth_bytes_per_s),
        (0, 1, ms(70), ms(1), 0.0, None)
    );
    assert!(s.links.is_empty());
    assert_eq!((s.probe.interval, s.probe.timeout), (ms(100), secs(1)));

    assert_eq!(s.faults.len(), 2);
    let f = &s.faults[0];
    assert_eq!((f.index, f.at, f.until), (0, secs(10), Some(secs(30))));
    assert_eq!(f.line, line_of_nth(BASE, "[[fault]]", 0));
    assert_eq!(
        f.kind,
        FaultKind::SwitchDegraded {
            switch: 0,
            loss_ratio: 0.5,
            ports: vec![("pdx-r1-tor".to_string(), "pdx-r2-tor".to_string())]
        }
    );
    let f = &s.faults[1];
    assert_eq!((f.index, f.at, f.until), (1, secs(30), Some(secs(35))));
    assert_eq!(f.line, line_of_nth(BASE, "[[fault]]", 1));
    // "lux" is a region: it expands to its one node, l1 (index 2).
    assert_eq!(f.kind, FaultKind::Partition { from: vec![2], to: vec![0], one_way: true });

    assert_eq!(s.asserts.len(), 1);
    let a = &s.asserts[0];
    assert_eq!((a.name.as_str(), a.metric.as_str()), ("some loss", "probe.pairs.p1->p2.loss_ratio"));
    assert_eq!((a.min, a.max, a.equals), (Some(0.01), Some(0.5), None));
    assert_eq!(a.line, line_of_nth(BASE, "[[assert]]", 0));
}

#[test]
fn full_scenario_resolves_every_feature() {
    let s = parse("full.toml", FULL);
    let node = |name: &str| index_of(s.nodes.iter().map(|n| n.name.clone()), name) as u32;
    let switch = |name: &str| index_of(s.switches.iter().map(|w| w.name.clone()), name);
    assert_eq!(s.description, "every feature once");
    assert_eq!((s.duration, s.seed), (secs(120), 42));

    // An explicit core switch name replaces "<region>-core"; racks may share a named ToR.
    let names: Vec<&str> = s.switches.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["pdx-spine", "lux-core", "fra-core", "pdx-r1-tor", "pdx-shared", "lux-r1-tor", "fra-r1-tor"]);
    assert_eq!(s.regions[0].core_switch, switch("pdx-spine"));
    assert_eq!(s.racks[1].switch, switch("pdx-shared"));
    assert_eq!(s.racks[2].switch, switch("pdx-shared"));
    assert_eq!(s.nodes[node("p3") as usize].switch, switch("pdx-shared"));
    assert_eq!(s.nodes[node("f1") as usize].region, 2);

    // Ports: a ToR has its nodes and "uplink"; a core has its region's ToRs and "wan".
    assert_eq!(scenarios::switch_ports(&s.nodes, &s.switches, switch("pdx-shared")), ["p2", "p3", "uplink"]);
    assert_eq!(
        scenarios::switch_ports(&s.nodes, &s.switches, switch("pdx-spine")),
        ["pdx-r1-tor", "pdx-shared", "wan"]
    );
    assert_eq!(scenarios::switch_ports(&s.nodes, &s.switches, switch("lux-core")), ["lux-r1-tor", "wan"]);

    // Region links: all three pairs, written in any order.
    let pairs: Vec<(usize, usize)> = s.region_links.iter().map(|l| (l.a, l.b)).collect();
    assert_eq!(pairs, [(0, 1), (2, 0), (1, 2)]);
    assert_eq!(s.region_links[0].loss_ratio, 0.001);
    assert_eq!(s.region_links[0].bandwidth_bytes_per_s, Some(1_250_000_000));
    assert_eq!((s.region_links[1].jitter, s.region_links[1].loss_ratio), (Duration::ZERO, 0.0));

    // `between` is two directed links with the same settings; from/to is one.
    let mut links: Vec<(u32, u32)> = s.links.iter().map(|l| (l.from, l.to)).collect();
    links.sort_unstable();
    let mut want = vec![(node("p1"), node("l1")), (node("l1"), node("p1")), (node("l2"), node("f1"))];
    want.sort_unstable();
    assert_eq!(links, want);
    for l in s.links.iter().filter(|l| l.from == node("p1") || l.to == node("p1")) {
        assert_eq!((l.latency, l.jitter, l.loss_ratio, l.bandwidth_bytes_per_s), (Some(ms(5)), None, 0.01, None));
    }
    let one_way = s.links.iter().find(|l| l.from == node("l2")).unwrap();
    assert_eq!(
        (one_way.latency, one_way.jitter, one_way.bandwidth_bytes_per_s),
        (None, Some(ms(2)), Some(125_000_000))
    );

    // Disk: [disk] overrides the defaults for every node, a node's own disk overrides [disk].
    let p1 = &s.nodes[node("p1") as usize].disk;
    assert_eq!((p1.fsync_latency, p1.write_bytes_per_s), (ms(2), 500_000_000));
    assert_eq!(p1.read_bytes_per_s, scenarios::DiskSpec::default().read_bytes_per_s);
    let p2 = &s.nodes[node("p2") as usize].disk;
    assert_eq!((p2.fsync_latency, p2.read_bytes_per_s, p2.write_bytes_per_s), (ms(10), 1 << 30, 500_000_000));

    // Probe: omitted fields take their defaults.
    let d = ProbeSpec::default();
    assert_eq!((s.probe.interval, s.probe.timeout), (d.interval, d.timeout));
    assert_eq!((s.probe.payload_bytes, s.probe.fsync_interval), (1024, Some(secs(1))));

    let (p1, p2, p3, l1, l2, f1) = (node("p1"), node("p2"), node("p3"), node("l1"), node("l2"), node("f1"));
    let want: Vec<(Duration, Option<Duration>, FaultKind)> = vec![
        // Rack "pdx-r2" is p2; region "fra" is f1.
        (secs(1), Some(secs(3)), FaultKind::Partition { from: vec![p2, l1], to: vec![f1], one_way: false }),
        // Region "pdx" plus p1 again: deduplicated and sorted.
        (secs(5), Some(secs(6)), FaultKind::Partition { from: vec![p1, p2, p3], to: vec![p2, l1, l2], one_way: true }),
        (secs(10), Some(secs(20)), FaultKind::LinkDown { a: p1, b: p2, one_way: false }),
        (
            secs(11),
            Some(secs(12)),
            FaultKind::LinkDegraded {
                a: l1,
                b: l2,
                one_way: false,
                loss_ratio: 0.0,
                extra_latency: ms(5),
                extra_jitter: Duration::ZERO,
                duplicate_ratio: 0.0,
            },
        ),
        // down_for defaults to half the period.
        (
            secs(12),
            Some(secs(42)),
            FaultKind::LinkFlapping { a: p1, b: f1, one_way: true, period: secs(10), down_for: secs(5) },
        ),
        (secs(13), Some(secs(14)), FaultKind::SwitchDown { switch: switch("pdx-shared") }),
        (
            secs(14),
            Some(secs(15)),
            FaultKind::SwitchDegraded {
                switch: switch("pdx-r1-tor"),
                loss_ratio: 0.2,
                ports: vec![("p1".into(), "uplink".into())],
            },
        ),
        (
            secs(15),
            Some(secs(35)),
            FaultKind::SwitchFlapping { switch: switch("lux-core"), period: secs(4), down_for: secs(1) },
        ),
        // No for/until: never heals.
        (secs(50), None, FaultKind::NodeCrash { node: l2, scope: Scope::Host }),
        (secs(16), Some(ms(16_500)), FaultKind::NodePause { node: p3, scope: Scope::Host }),
        (secs(17), Some(secs(18)), FaultKind::DiskStall { node: f1 }),
        // error_ratio defaults to 1.
        (secs(18), Some(secs(19)), FaultKind::DiskErrors { node: p1, error_ratio: 1.0 }),
        (secs(19), Some(secs(20)), FaultKind::DiskFull { node: p2 }),
        (secs(20), Some(secs(80)), FaultKind::DiskSlow { node: l1, factor: 4.0 }),
    ];
    assert_eq!(s.faults.len(), want.len());
    for (i, (f, (at, until, kind))) in s.faults.iter().zip(want).enumerate() {
        assert_eq!(f.index as usize, i);
        assert_eq!(f.line, line_of_nth(FULL, "[[fault]]", i), "fault {i}");
        assert_eq!((f.at, f.until), (at, until), "fault {i}");
        assert_eq!(f.kind, kind, "fault {i}");
    }
    // Every kind appears once, so a new kind without a case here fails the test.
    let mut kinds: Vec<&str> = s.faults.iter().map(|f| f.kind.name()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), 13);

    let a: Vec<(Option<f64>, Option<f64>, Option<f64>)> = s.asserts.iter().map(|a| (a.min, a.max, a.equals)).collect();
    assert_eq!(a, [(None, None, Some(0.0)), (None, Some(100.0), None)]);
}

#[test]
fn minimal_scenario_gets_defaults() {
    let s = parse("minimal.toml", MINIMAL);
    assert_eq!((s.description.as_str(), s.seed, s.duration), ("", 0, secs(1)));
    let d = NetworkDefaults::default();
    assert_eq!(
        (s.network.switch_latency, s.network.region_latency, s.network.jitter, s.network.loss_ratio),
        (d.switch_latency, d.region_latency, d.jitter, d.loss_ratio)
    );
    let p = ProbeSpec::default();
    assert_eq!(
        (s.probe.interval, s.probe.timeout, s.probe.payload_bytes, s.probe.fsync_interval),
        (p.interval, p.timeout, p.payload_bytes, p.fsync_interval)
    );
    assert_eq!(s.nodes[0].disk, scenarios::DiskSpec::default());
    let switches: Vec<&str> = s.switches.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(switches, ["r-core", "k-tor"]);
    assert!(s.region_links.is_empty() && s.links.is_empty() && s.faults.is_empty() && s.asserts.is_empty());
}

#[test]
fn source_hash_is_fnv1a_of_the_bytes() {
    fn fnv(text: &str) -> String {
        let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        format!("{h:016x}")
    }
    let a = parse("a.toml", MINIMAL);
    let b = parse("b.toml", &format!("{MINIMAL}\n# a comment changes the hash\n"));
    assert_eq!(a.source_hash, fnv(MINIMAL));
    assert_eq!(a.source_hash.len(), 16);
    assert_ne!(a.source_hash, b.source_hash);
}

#[test]
fn load_reads_the_file_and_keeps_the_path() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let mut files: Vec<_> = std::fs::read_dir(&seeds).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    for path in files {
        let s = scenarios::load(&path).unwrap_or_else(|d| panic!("seed must load:\n{d}"));
        assert_eq!(s.path, path.display().to_string());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(s.source_hash, parse("x", &text).source_hash);
    }
    let missing = Path::new("/nonexistent/scenario.toml");
    let d = scenarios::load(missing).unwrap_err();
    assert_eq!((d.line, d.column), (0, 0));
    assert!(d.to_string().starts_with("/nonexistent/scenario.toml: cannot read scenario"), "{d}");
}

/// xorshift64*: a tiny deterministic generator, so the test needs no extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Characters that TOML and the loader treat specially, plus some multi-byte ones.
const ALPHABET: &[char] = &[
    '[', ']', '{', '}', '=', ',', '.', '"', '\'', '#', '\n', '\r', '\t', ' ', '\\', '-', '+', '0', '1', '9', 'e', 'a',
    's', 'm', 'x', 'é', 'µ', '€', '😀', '\u{0}', '\u{feff}',
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(3) {
            // Delete a byte range (possibly splitting a multi-byte character).
            0 if !bytes.is_empty() => {
                let start = rng.below(bytes.len());
                let max_len = if rng.below(4) == 0 { 400 } else { 12 };
                let len = 1 + rng.below(max_len);
                bytes.drain(start..(start + len).min(bytes.len()));
            }
            // Duplicate a line.
            1 => {
                let s = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = s.split('\n').collect();
                let i = rng.below(lines.len());
                let at = rng.below(lines.len() + 1);
                lines.insert(at, lines[i]);
                bytes = lines.join("\n").into_bytes();
            }
            // Replace a character.
            _ => {
                let s = String::from_utf8_lossy(&bytes).into_owned();
                let mut chars: Vec<char> = s.chars().collect();
                if !chars.is_empty() {
                    let i = rng.below(chars.len());
                    chars[i] = ALPHABET[rng.below(ALPHABET.len())];
                }
                bytes = chars.into_iter().collect::<String>().into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What is wrong with a diagnostic for `text`, if anything.
fn diagnostic_problem(text: &str, d: &Diagnostic) -> Option<String> {
    let shown = d.to_string();
    if d.line == 0 {
        // Whole-file errors: nothing to point at, e.g. a missing [scenario] table.
        if d.column != 0 || d.excerpt.is_some() || !d.message.starts_with("missing field") {
            return Some(format!("line 0 but not a whole-file error: {d:?}"));
        }
        if shown != format!("m.toml: {}", d.message) {
            return Some(format!("whole-file error shown as {shown:?}"));
        }
        return None;
    }
    if d.column == 0 {
        return Some(format!("column 0 on line {}", d.line));
    }
    let Some(line) = text.split('\n').nth(d.line - 1) else {
        return Some(format!("line {} is past the end ({} lines)", d.line, text.split('\n').count()));
    };
    let line = line.trim_end_matches('\r');
    if d.column > line.chars().count() + 1 {
        return Some(format!("column {} is past the end of line {:?}", d.column, line));
    }
    if d.excerpt.as_ref().map(|e| e.0.as_str()) != Some(line) {
        return Some(format!("excerpt {:?} is not line {} {line:?}", d.excerpt, d.line));
    }
    if !shown.starts_with(&format!("m.toml:{}:{}: ", d.line, d.column)) {
        return Some(format!("shown as {shown:?}"));
    }
    None
}

#[test]
fn mutated_scenarios_never_panic_and_point_inside_the_text() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut errors, mut whole_file) = (0, 0, 0);
    let mut distinct_lines = std::collections::BTreeSet::new();
    for case in 0..4000 {
        let base = [BASE, FULL, MINIMAL][case % 3];
        let text = mutate(&mut rng, base);
        let result = std::panic::catch_unwind(|| scenarios::parse_str("m.toml", &text));
        let result = result.unwrap_or_else(|_| panic!("case {case}: parse_str panicked on:\n{text}"));
        match result {
            Ok(s) => {
                ok += 1;
                assert!(s.nodes.iter().all(|n| n.rack < s.racks.len() && n.switch < s.switches.len()), "case {case}");
            }
            Err(d) => {
                errors += 1;
                whole_file += usize::from(d.line == 0);
                distinct_lines.insert(d.line);
                if let Some(problem) = diagnostic_problem(&text, &d) {
                    panic!("case {case}: {problem}\n--- diagnostic:\n{d}\n--- text:\n{text}");
                }
                // Same input, same answer.
                assert_eq!(scenarios::parse_str("m.toml", &text).unwrap_err(), d, "case {case}");
            }
        }
    }
    println!("{ok} loaded, {errors} errors ({whole_file} whole-file) on {} distinct lines", distinct_lines.len());
    // The mutations must really exercise both paths and many places in the files.
    assert!(ok > 100 && errors > 1000, "ok {ok}, errors {errors}");
    assert!(distinct_lines.len() > 50, "errors on only {} distinct lines", distinct_lines.len());
    assert!(whole_file < errors / 10, "{whole_file} whole-file errors of {errors}");
}

#[test]
fn diagnostic_checker_rejects_bad_positions() {
    let text = "a = 1\nb = 2\n";
    let good = Diagnostic::at("m.toml", text, 6..7, "x");
    assert_eq!(diagnostic_problem(text, &good), None);
    let mut past_end = good.clone();
    past_end.line = 9;
    assert!(diagnostic_problem(text, &past_end).is_some());
    let mut col0 = good.clone();
    col0.column = 0;
    assert!(diagnostic_problem(text, &col0).is_some());
    let mut wrong_excerpt = good.clone();
    wrong_excerpt.line = 1;
    assert!(diagnostic_problem(text, &wrong_excerpt).is_some());
    assert!(diagnostic_problem(text, &Diagnostic::whole_file("m.toml", "something else")).is_some());
    assert_eq!(diagnostic_problem(text, &Diagnostic::whole_file("m.toml", "missing field `scenario`")), None);
}

#[path = "support/chained_asserts.rs"]
mod chained_asserts;
use chained_asserts::with_asserts;

/// Thousands of `[[assert]]`s load, each with its own line. Their cost is measured, not
/// asserted, by `cargo bench -p scenarios --bench validate_size` (it was quadratic: every
/// assertion's line was found by counting newlines from the top, every `if` by scanning the ids
/// above it).
#[test]
fn thousands_of_asserts_load_with_their_lines() {
    let text = with_asserts(5_000);
    let s = parse("many.toml", &text);
    let ours = &s.asserts[s.asserts.len() - 5_000..];
    for (k, a) in ours.iter().enumerate().step_by(499) {
        assert_eq!(a.name, format!("a{k}"));
        let base_asserts = s.asserts.len() - 5_000;
        assert_eq!(a.line, line_of_nth(&text, "[[assert]]", base_asserts + k), "{}", a.name);
    }
}
