//! Mistakes that parse but would only show after a full run (or a whole sweep): a fault,
//! action, phase or spike that starts after the scenario ends (never injected), an `[[assert]]`
//! metric that summary.json will not have; and "did you mean" for near misses of keys, names
//! and metric paths.
//!
//! The summary's shape is not known here: the simulator makes summary.json, so it hands the
//! shape in ([`Shape`]), derived from the very code that writes the summary.

use std::time::Duration;

use crate::diag::Diagnostic;
use crate::raw::{Dur, RawScenario, S};

type Res<T> = Result<T, Diagnostic>;

/// What summary.json holds, as far as `[[assert]] metric` paths go.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// A number, string or null: the end of a path.
    Value,
    /// An object or array the run fills from its data (per probe pair, per standby, per
    /// failover): any path below it is accepted, since only a run knows its keys.
    Open,
    /// An object with these keys, in summary.json's order.
    Object(Vec<(String, Shape)>),
}

/// Suggests the candidate closest to `word` by edit distance, if it is close enough to be a
/// slip of the keyboard (at most a third of the word's length, at least 1); ties go to the
/// first candidate.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&word.to_lowercase(), &c.to_lowercase());
        if d > 0 && d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// ` (did you mean "x"?)` after an unknown word, or nothing when no candidate is near.
pub fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates).map_or(String::new(), |near| format!(" (did you mean {near:?}?)"))
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb)).min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// toml's "unknown field `x`, expected one of `a`, `b`" (and "unknown variant"), with the
/// nearest of the expected words appended when one is close.
pub fn suggest_in_toml_message(msg: String) -> String {
    let Some(rest) = msg.strip_prefix("unknown field `").or_else(|| msg.strip_prefix("unknown variant `")) else {
        return msg;
    };
    let Some((word, expected)) = rest.split_once('`') else { return msg };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match did_you_mean(word, candidates) {
        Some(near) => format!("{msg}; did you mean `{near}`?"),
        None => msg,
    }
}

/// Everything timed must start before the scenario ends, or it silently never happens.
pub fn times(path: &str, text: &str, raw: &RawScenario, duration: Duration) -> Res<()> {
    let mut timed: Vec<(&S<Dur>, &str)> = Vec::new();
    timed.extend(raw.faults.iter().map(|f| (&f.get_ref().at, "fault")));
    timed.extend(raw.actions.iter().map(|a| (&a.get_ref().at, "action")));
    for c in &raw.pg_clusters {
        timed.extend(c.get_ref().phases.iter().map(|p| (&p.get_ref().at, "[[pg_cluster.phase]]")));
    }
    for t in &raw.tenants {
        timed.extend(t.get_ref().spikes.iter().map(|s| (&s.get_ref().at, "[[tenant.spike]]")));
    }
    for (at, what) in timed {
        let start = at.get_ref().0;
        if start >= duration {
            let msg = format!(
                "this {what} starts at {}, but the scenario ends at {} (its `duration`): it would never happen",
                crate::render::duration(start),
                crate::render::duration(duration)
            );
            return Err(Diagnostic::at(path, text, at.span(), msg));
        }
    }
    Ok(())
}

/// Every `[[assert]] metric` names a value summary.json has (or may have, below an open
/// object); otherwise the error says where the path leaves the summary and what is there.
pub fn metric_paths(path: &str, text: &str, shape: &Shape) -> Res<()> {
    #[derive(serde::Deserialize)]
    struct Metric {
        metric: S<String>,
    }
    #[derive(serde::Deserialize)]
    struct Asserts {
        #[serde(default, rename = "assert")]
        asserts: Vec<Metric>,
    }
    // The loader has read this text already; reading it again for the spans keeps this
    // check out of the loader's own structures.
    let Ok(parsed) = toml::from_str::<Asserts>(text) else { return Ok(()) };
    for a in &parsed.asserts {
        if let Err(msg) = check_path(a.metric.get_ref(), shape) {
            return Err(Diagnostic::at(path, text, a.metric.span(), msg));
        }
    }
    Ok(())
}

/// Walks `metric` down the shape; the error names the first part that is not there.
fn check_path(metric: &str, shape: &Shape) -> Result<(), String> {
    let parts: Vec<&str> = metric.split('.').collect();
    let mut here = shape;
    for (i, part) in parts.iter().enumerate() {
        let walked = parts[..i].join(".");
        let at = if walked.is_empty() {
            "at the top level of summary.json".to_string()
        } else {
            format!("under `{walked}`")
        };
        let keys = match here {
            Shape::Open => return Ok(()),
            Shape::Value => {
                return Err(format!("no metric `{metric}` in summary.json: `{walked}` is a value, not an object"));
            }
            Shape::Object(keys) => keys,
        };
        let Some((_, next)) = keys.iter().find(|(k, _)| k == part) else {
            let near = did_you_mean(part, keys.iter().map(|(k, _)| k.as_str())).map_or(String::new(), |k| {
                let mut fixed = parts.clone();
                fixed[i] = k;
                format!("did you mean `{}`? ", fixed.join("."))
            });
            return Err(format!("no metric `{metric}` in summary.json: no `{part}` {at}; {near}there: {}", list(keys)));
        };
        here = next;
    }
    match here {
        Shape::Object(keys) => {
            Err(format!("`{metric}` is an object in summary.json, not a number; its keys: {}", list(keys)))
        }
        _ => Ok(()),
    }
}

fn list(keys: &[(String, Shape)]) -> String {
    let shown: Vec<&str> = keys.iter().take(16).map(|(k, _)| k.as_str()).collect();
    let more = if keys.len() > 16 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(keys: &[(&str, Shape)]) -> Shape {
        Shape::Object(keys.iter().map(|(k, s)| (k.to_string(), s.clone())).collect())
    }

    fn summary() -> Shape {
        obj(&[
            ("faults_injected", Shape::Value),
            (
                "stack",
                obj(&[
                    ("failover_count", Shape::Value),
                    ("failovers", Shape::Open),
                    ("availability", obj(&[("overall", Shape::Value)])),
                ]),
            ),
        ])
    }

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        assert_eq!(did_you_mean("failover_cnt", ["failovers", "failover_count"]), Some("failover_count"));
        assert_eq!(did_you_mean("partitoin", ["partition", "link-down"]), Some("partition"));
        assert_eq!(did_you_mean("zzz", ["partition"]), None);
        assert_eq!(did_you_mean("partition", ["partition"]), None, "an exact match is not a near miss");
    }

    #[test]
    fn metric_paths_follow_the_shape() {
        let s = summary();
        assert_eq!(check_path("stack.failover_count", &s), Ok(()));
        assert_eq!(check_path("stack.failovers.0.cause", &s), Ok(()), "open: keys come from the run");
        let e = check_path("stack.failover_cnt", &s).unwrap_err();
        assert!(e.contains("no `failover_cnt` under `stack`; did you mean `stack.failover_count`?"), "{e}");
        let e = check_path("stack.availability", &s).unwrap_err();
        assert!(e.contains("is an object") && e.contains("overall"), "{e}");
        let e = check_path("faults_injected.x", &s).unwrap_err();
        assert!(e.contains("`faults_injected` is a value"), "{e}");
        let e = check_path("stak.failover_count", &s).unwrap_err();
        assert!(e.contains("at the top level") && e.contains("did you mean `stack.failover_count`?"), "{e}");
    }

    #[test]
    fn metric_path_errors_point_at_the_metric() {
        let text = "[[assert]]\nname = \"n\"\nmetric = \"stack.failover_cnt\"\nmax = 1\n";
        let d = metric_paths("x.toml", text, &summary()).unwrap_err();
        assert_eq!((d.line, d.column), (3, 10));
        assert_eq!(d.excerpt.unwrap().2, "\"stack.failover_cnt\"".len(), "the caret spans the whole value");
    }

    #[test]
    fn toml_messages_gain_a_suggestion() {
        let m = suggest_in_toml_message(
            "unknown field `failIntervl`, expected one of `sleepInterval`, `failInterval`".into(),
        );
        assert!(m.ends_with("; did you mean `failInterval`?"), "{m}");
        let m = suggest_in_toml_message("unknown field `zzz`, expected `name`".into());
        assert!(!m.contains("did you mean"), "{m}");
    }
}
