//! JUnit XML for CI dashboards: one `<testsuite>` per scenario, one `<testcase>` per seed. A
//! failed seed's `<failure>` carries what failed and the command that replays it; an internal
//! error (the simulator panicked) is an `<error>`. `pgsim check` and `pgsim merge` write
//! `to_string` atomically (a temporary file, then a rename).

use std::fmt::Write;
use std::io;
use std::path::Path;

use crate::xml::esc;

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Passed,
    /// An assertion or invariant failed. `message` is the one-line reason; `detail` lists
    /// every failed assertion and violation.
    Failed {
        message: String,
        detail: String,
    },
    /// The simulator itself failed (exit code 3).
    Error {
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub seed: u64,
    /// The testcase's name; `seed N` when none (a sweep-wide check names itself).
    pub name: Option<String>,
    pub wall_seconds: f64,
    pub outcome: Outcome,
    /// The exact command that reproduces this case, e.g.
    /// `pgsim run scenarios/etcd-flapping-link.toml --seed 7`.
    pub replay: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Suite {
    /// The scenario's name.
    pub name: String,
    /// The scenario file, reported as each case's `file`.
    pub file: String,
    pub cases: Vec<Case>,
}

impl Suite {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.outcome)).count()
    }
    fn failures(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }
    fn errors(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Error { .. }))
    }
    fn wall_seconds(&self) -> f64 {
        self.cases.iter().map(|c| c.wall_seconds).sum()
    }
}

fn secs(x: f64) -> String {
    format!("{:.3}", x.max(0.0))
}

pub fn to_string(suites: &[Suite]) -> String {
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(Suite::failures).sum();
    let errors: usize = suites.iter().map(Suite::errors).sum();
    let time: f64 = suites.iter().map(Suite::wall_seconds).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        r#"<testsuites name="pgsim" tests="{tests}" failures="{failures}" errors="{errors}" time="{}">"#,
        secs(time)
    );
    for (id, s) in suites.iter().enumerate() {
        let _ = writeln!(
            x,
            r#"  <testsuite id="{id}" name="{}" tests="{}" failures="{}" errors="{}" skipped="0" time="{}">"#,
            esc(&s.name),
            s.cases.len(),
            s.failures(),
            s.errors(),
            secs(s.wall_seconds())
        );
        for c in &s.cases {
            let name = c.name.clone().unwrap_or_else(|| format!("seed {}", c.seed));
            let _ = write!(
                x,
                r#"    <testcase classname="{}" name="{}" file="{}" time="{}""#,
                esc(&s.name),
                esc(&name),
                esc(&s.file),
                secs(c.wall_seconds)
            );
            let body = match &c.outcome {
                Outcome::Passed => {
                    x.push_str("/>\n");
                    continue;
                }
                Outcome::Failed { message, detail } => {
                    ("failure", "assertion", message, format!("{detail}\nreplay with: {}", c.replay))
                }
                Outcome::Error { message } => {
                    ("error", "internal", message, format!("{message}\nreplay with: {}", c.replay))
                }
            };
            let (tag, kind, message, text) = body;
            let _ = writeln!(
                x,
                ">\n      <{tag} type=\"{kind}\" message=\"{}\">{}</{tag}>\n    </testcase>",
                esc(&format!("{message} (replay with: {})", c.replay)),
                esc(&text)
            );
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

pub fn write(path: &Path, suites: &[Suite]) -> io::Result<()> {
    std::fs::write(path, to_string(suites))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(seed: u64, outcome: Outcome) -> Case {
        Case {
            seed,
            name: None,
            wall_seconds: 0.25,
            outcome,
            replay: format!("pgsim run scenarios/x.toml --seed {seed}"),
        }
    }

    fn suites() -> Vec<Suite> {
        vec![
            Suite {
                name: "etcd-flapping-link".into(),
                file: "scenarios/etcd-flapping-link.toml".into(),
                cases: vec![
                    case(0, Outcome::Passed),
                    case(
                        1,
                        Outcome::Failed {
                            message: "1 of 4 assertions failed".into(),
                            detail: "FAIL elections: etcd.elections_started = 2 (expected >= 3) <&\"'>".into(),
                        },
                    ),
                    case(2, Outcome::Error { message: "panicked at raft.rs:10: index out of bounds\u{1}".into() }),
                ],
            },
            Suite {
                name: "network-smoke".into(),
                file: "scenarios/network-smoke.toml".into(),
                cases: vec![case(5, Outcome::Passed)],
            },
        ]
    }

    #[test]
    fn xml_is_well_formed_with_the_expected_counts() {
        let text = to_string(&suites());
        let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(
            (root.attribute("tests"), root.attribute("failures"), root.attribute("errors")),
            (Some("4"), Some("1"), Some("1"))
        );
        let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
        assert_eq!(suites.len(), 2);
        assert_eq!(suites[0].attribute("name"), Some("etcd-flapping-link"));
        assert_eq!(suites[0].attribute("tests"), Some("3"));
        assert_eq!(suites[0].attribute("time"), Some("0.750"));
        let cases: Vec<_> = suites[0].children().filter(|n| n.has_tag_name("testcase")).collect();
        assert_eq!(
            cases.iter().map(|c| c.attribute("name").unwrap()).collect::<Vec<_>>(),
            ["seed 0", "seed 1", "seed 2"]
        );
        assert_eq!(cases[0].children().filter(|n| n.is_element()).count(), 0, "a pass has no children");
        let failure = cases[1].children().find(|n| n.has_tag_name("failure")).expect("failure element");
        assert!(failure.attribute("message").unwrap().contains("replay with: pgsim run scenarios/x.toml --seed 1"));
        let text1 = failure.text().unwrap();
        assert!(text1.contains("(expected >= 3) <&\"'>"), "text escaped and read back: {text1}");
        assert!(text1.ends_with("replay with: pgsim run scenarios/x.toml --seed 1"));
        let error = cases[2].children().find(|n| n.has_tag_name("error")).expect("error element");
        assert!(error.text().unwrap().contains("--seed 2"));
        assert_eq!(suites[1].attribute("failures"), Some("0"));
    }

    #[test]
    fn writes_the_file() {
        let path = std::env::temp_dir().join(format!("pgsim-junit-{}.xml", std::process::id()));
        write(&path, &suites()[1..]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap();
        assert_eq!(doc.root_element().attribute("tests"), Some("1"));
        std::fs::remove_file(&path).unwrap();
    }
}
