//! Arbitrary bytes into the scenario loader: it must return a scenario or a diagnostic,
//! never panic, and a diagnostic must point inside the text it was given.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Only valid UTF-8: `scenarios::load` rejects anything else before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match scenarios::parse_str("fuzz.toml", text) {
        Ok(s) => {
            // Touch the result: every index the loader produced must be in range.
            let n = s.nodes.len() as u32;
            for node in &s.nodes {
                assert!(node.rack < s.racks.len() && node.region < s.regions.len() && node.switch < s.switches.len());
            }
            for link in &s.links {
                assert!(link.from < n && link.to < n && link.from != link.to);
            }
            for f in &s.faults {
                assert!(f.until.is_none_or(|u| u > f.at), "fault {} heals before it starts", f.index);
                let _ = f.kind.name();
                if let scenarios::FaultKind::SwitchDegraded { switch, .. } = &f.kind {
                    let ports = scenarios::switch_ports(&s.nodes, &s.switches, *switch);
                    assert!(!ports.is_empty());
                }
            }
            for a in &s.asserts {
                assert!(a.line >= 1);
            }
        }
        Err(d) => {
            if d.line == 0 {
                assert_eq!(d.column, 0);
                assert!(d.excerpt.is_none());
            } else {
                assert!(d.column >= 1);
                assert!(d.line <= text.split('\n').count(), "line {} past the end", d.line);
            }
            // Rendering the excerpt and caret must not panic either.
            let shown = d.to_string();
            assert!(shown.starts_with("fuzz.toml:"));
        }
    }
});
