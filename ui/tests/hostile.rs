//! Files that validate must run: values that used to pass `pgsim validate` and then panic (or
//! run without end) inside the simulator are rejected by validate, at their place in the file.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{pgsim, s, text, tmp};

const STACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/stack-primary-crash.toml");

/// The shipped stack scenario with `from` replaced by `to` (once), written to a scratch folder.
fn mutated(name: &str, from: &str, to: &str) -> PathBuf {
    let text = fs::read_to_string(STACK).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} occurs once in {STACK}");
    let path = tmp("hostile", name).join(format!("{name}.toml"));
    fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

/// `pgsim validate` exits 2 with a diagnostic at `path:line:column` whose message has `needle`.
fn rejected_at(path: &PathBuf, line: usize, needle: &str) -> String {
    let o = pgsim(&["validate", s(path)]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains(&format!("{}:{line}:", s(path))), "located at line {line}: {out}");
    assert!(err.contains(needle), "says {needle:?}: {out}");
    assert!(!err.contains("panicked"), "{out}");
    err
}

fn line_of(path: &PathBuf, needle: &str) -> usize {
    let text = fs::read_to_string(path).unwrap();
    text[..text.find(needle).unwrap()].matches('\n').count() + 1
}

#[test]
fn more_synchronous_standbys_than_names_is_rejected() {
    let path = mutated("any5", "\"FIRST 1 (pdx-pg2)\"", "\"ANY 5 (pdx-pg2, pdx-pg3)\"");
    rejected_at(&path, line_of(&path, "ANY 5"), "5 synchronous standbys requested but only 2 named");
}

#[test]
fn a_write_rate_beyond_its_range_is_rejected() {
    let path = mutated("rps", "write_rps = 1500", "write_rps = 9223372036854775807");
    rejected_at(&path, line_of(&path, "9223372036854775807"), "write_rps");
}
