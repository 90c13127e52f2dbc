//! Every file in `tests/bad/` is a scenario with one mistake. Its first line says where the
//! loader must point and what the message must say:
//!
//! ```text
//! # expect: LINE:COLUMN: <substring of the message>
//! ```
//!
//! LINE and COLUMN are 1-based; `0:0` means a whole-file error (no place in the file).

use std::path::{Path, PathBuf};

/// Cases that must stay covered; a missing file fails the test instead of shrinking coverage.
const REQUIRED: &[&str] = &[
    "syntax_unterminated_string",
    "syntax_duplicate_key",
    "wrong_type_seed_string",
    "wrong_type_between_string",
    "unknown_top_level_key",
    "unknown_fault_key",
    "unknown_fault_node",
    "unknown_rack_region",
    "loss_ratio_above_one",
    "until_before_at",
    "for_and_until",
    "unknown_fault_kind",
    "negative_duration",
    "bad_duration_unit",
    "field_not_taken_by_kind",
    "missing_required_field",
    "duplicate_name",
    "name_clash_with_switch",
    "missing_region_link",
    "assert_min_above_max",
    "assert_if_unknown_id",
    "assert_share_above_one",
    "switch_has_no_such_port",
    "probe_timeout_too_short",
    "node_pause_without_end",
    "missing_scenario_table",
    "not_utf8",
    "crlf_line_endings",
    "crlf_unterminated_string",
    "non_ascii_column",
    "stolonctl_update_unknown_key",
    "stolonctl_update_not_patchable",
    "swarm_unknown_kind",
    "swarm_faults_max_zero",
    "write_interval_1ns",
    "duration_beyond_a_week",
    "probe_interval_below_range",
    "planted_bug_unknown",
    "pg_cluster_two_primaries",
    "haproxy_unknown_balance",
    "pgbouncer_unknown_pool_mode",
];

#[derive(Debug, PartialEq)]
struct Expect {
    line: usize,
    column: usize,
    substring: String,
}

/// Parses `# expect: LINE:COLUMN: substring` (the first line of a bad file).
fn parse_expect(first_line: &str) -> Result<Expect, String> {
    let rest = first_line
        .trim_end_matches('\r')
        .strip_prefix("# expect: ")
        .ok_or_else(|| format!("first line must start with `# expect: `, got {first_line:?}"))?;
    let mut parts = rest.splitn(3, ':');
    let mut number = |what: &str| -> Result<usize, String> {
        let s = parts.next().ok_or_else(|| format!("missing {what} in {first_line:?}"))?;
        s.trim().parse().map_err(|_| format!("{what} {s:?} is not a number in {first_line:?}"))
    };
    let line = number("LINE")?;
    let column = number("COLUMN")?;
    let substring = parts.next().map(str::trim).unwrap_or_default().to_string();
    if substring.is_empty() {
        return Err(format!("empty message substring in {first_line:?}"));
    }
    if (line == 0) != (column == 0) {
        return Err(format!("LINE and COLUMN must both be 0 or both be >= 1 in {first_line:?}"));
    }
    Ok(Expect { line, column, substring })
}

fn bad_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("bad")
}

fn bad_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(bad_dir())
        .expect("tests/bad exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    // read_dir order depends on the file system.
    files.sort();
    files
}

/// Checks one bad file; returns what is wrong with the loader's answer, if anything.
fn check(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let first_line = std::str::from_utf8(first_line).map_err(|_| "first line is not UTF-8".to_string())?;
    let d = match scenarios::load(path) {
        Ok(s) => return Err(format!("loaded without error (scenario {:?})", s.name)),
        Err(d) => d,
    };
    let shown = d.to_string();
    let want = parse_expect(first_line).map_err(|e| format!("{e}\n  --- loader said:\n{shown}"))?;
    let mut problems = Vec::new();
    if (d.line, d.column) != (want.line, want.column) {
        problems.push(format!("position is {}:{}, expected {}:{}", d.line, d.column, want.line, want.column));
    }
    if !d.message.contains(&want.substring) {
        problems.push(format!("message does not contain {:?}", want.substring));
    }
    let path_shown = path.display().to_string();
    if d.path != path_shown {
        problems.push(format!("diagnostic path is {:?}, expected {path_shown:?}", d.path));
    }
    let prefix = if want.line == 0 {
        format!("{path_shown}: ")
    } else {
        format!("{path_shown}:{}:{}: ", want.line, want.column)
    };
    if !shown.starts_with(&prefix) {
        problems.push(format!("Display does not start with {prefix:?}"));
    }
    if want.line >= 1 {
        // The excerpt must be the line the position names, with the caret inside (or just past) it.
        let text = String::from_utf8_lossy(&bytes);
        let line_text = text.split('\n').nth(want.line - 1).unwrap_or_default().trim_end_matches('\r');
        match &d.excerpt {
            Some((excerpt, column, width)) => {
                if excerpt != line_text {
                    problems.push(format!("excerpt is {excerpt:?}, expected line {}: {line_text:?}", want.line));
                }
                if *column != d.column || *width == 0 || column - 1 > line_text.chars().count() {
                    problems.push(format!("caret at column {column} width {width} does not fit {line_text:?}"));
                }
            }
            None => problems.push("no excerpt for a positioned error".to_string()),
        }
    } else if d.excerpt.is_some() {
        problems.push("whole-file error has an excerpt".to_string());
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("{}\n  --- loader said:\n{shown}", problems.join("; "))) }
}

#[test]
fn every_bad_file_is_reported_where_its_header_says() {
    let files = bad_files();
    let names: Vec<String> = files.iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    let mut failures = Vec::new();
    for required in REQUIRED {
        if !names.iter().any(|n| n == required) {
            failures.push(format!("tests/bad/{required}.toml is missing"));
        }
    }
    for path in &files {
        if let Err(why) = check(path) {
            failures.push(format!("{}: {why}", path.display()));
        }
    }
    assert!(files.len() >= 14, "only {} bad files", files.len());
    assert!(
        failures.is_empty(),
        "{} of {} bad files failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

/// The same text through `parse_str` gives the same diagnostic as through `load`.
#[test]
fn parse_str_and_load_agree() {
    for path in bad_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let shown = path.display().to_string();
        let from_load = scenarios::load(&path).expect_err("bad file must not load");
        let from_str = scenarios::parse_str(&shown, &text).expect_err("bad file must not parse");
        assert_eq!(from_load, from_str, "{shown}");
    }
}

#[test]
fn expectation_header_parser() {
    assert_eq!(
        parse_expect("# expect: 12:7: unknown fault kind \"x\"; expected: a, b"),
        Ok(Expect { line: 12, column: 7, substring: "unknown fault kind \"x\"; expected: a, b".into() })
    );
    assert_eq!(parse_expect("# expect: 0:0: not UTF-8\r").map(|e| e.line), Ok(0));
    assert!(parse_expect("# expect 1:1: x").is_err());
    assert!(parse_expect("# expect: 1:x: y").is_err());
    assert!(parse_expect("# expect: 1:1:").is_err());
    assert!(parse_expect("# expect: 0:3: x").is_err());
}

/// A wrong header must be caught, or the main test could pass while checking nothing.
#[test]
fn a_wrong_expectation_is_detected() {
    let dir = std::env::temp_dir().join(format!("pgsim-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = std::fs::read_to_string(bad_dir().join("unknown_fault_kind.toml")).unwrap();
    let body = src.split_once('\n').unwrap().1;
    let right = parse_expect(src.lines().next().unwrap()).unwrap();
    let variants = [
        format!("# expect: {}:{}: {}\n", right.line + 1, right.column, right.substring),
        format!("# expect: {}:{}: {}\n", right.line, right.column + 1, right.substring),
        format!("# expect: {}:{}: no such words\n", right.line, right.column),
    ];
    let path = dir.join("case.toml");
    std::fs::write(&path, format!("{}{body}", src.lines().next().unwrap().to_owned() + "\n")).unwrap();
    assert_eq!(check(&path), Ok(()));
    for header in variants {
        std::fs::write(&path, format!("{header}{body}")).unwrap();
        assert!(check(&path).is_err(), "{header:?} was accepted");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
