//! The report's tables: assertions, invariant violations, faults, settings, key figures and
//! probe pairs; for a comparison, the same side by side. Rows carry `data-*` attributes with
//! the raw values so tests (and scripts) can read them without parsing the display text.

use std::fmt::Write;

use serde_json::Value;

use super::axis::fmt_seconds;
use super::figures::{difference, fmt_figure, numeric_leaves};
use super::run::Run;
use crate::xml::esc;

/// Top-level summary keys whose figures the single-run key-figures table lists; the probe
/// pairs get a table of their own.
const KEY_FIGURE_ROOTS: [&str; 7] = ["sim_seconds", "events", "faults_injected", "network", "etcd", "disk", "nodes"];

/// `pass`, `fail`, or what summary.json's `status` says of an assertion that did not fail the
/// run though it did not hold (`missed`: required in a share of the seeds; `skipped`: its `if`
/// did not hold).
fn result_word(a: &Value) -> &'static str {
    match a["status"].as_str() {
        Some("missed") => "missed",
        Some("skipped") => "skipped",
        _ if a["passed"].as_bool().unwrap_or(false) => "pass",
        _ => "fail",
    }
}

fn pass_cell(word: &str) -> String {
    format!(r#"<td class="outcome {word}">{word}</td>"#)
}

pub fn assertions(run: &Run) -> String {
    let list = run.summary["assertions"].as_array().cloned().unwrap_or_default();
    let mut s = String::from(
        r#"<table id="assertions"><caption>Assertions</caption><thead><tr><th>result</th><th>name</th><th>detail</th></tr></thead><tbody>"#,
    );
    for a in &list {
        let passed = a["passed"].as_bool().unwrap_or(false);
        let name = a["name"].as_str().unwrap_or("");
        let _ = write!(
            s,
            r#"<tr data-name="{}" data-passed="{passed}">{}<td>{}</td><td>{}</td></tr>"#,
            esc(name),
            pass_cell(result_word(a)),
            esc(name),
            esc(a["detail"].as_str().unwrap_or(""))
        );
    }
    if list.is_empty() {
        s.push_str(r#"<tr><td colspan="3">The scenario has no assertions.</td></tr>"#);
    }
    s.push_str("</tbody></table>");
    s.push_str(&violations(run));
    s
}

fn violations(run: &Run) -> String {
    let list = run.summary["invariant_violations"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        r#"<table id="violations"><caption>Invariant violations</caption><thead><tr><th>checker</th><th>detail</th></tr></thead><tbody>"#,
    );
    for v in &list {
        let _ = write!(
            s,
            r#"<tr class="fail"><td>{}</td><td>{}</td></tr>"#,
            esc(v["checker"].as_str().unwrap_or("")),
            esc(v["detail"].as_str().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// Faults of one or more runs (a `run` column when there are several).
pub fn faults(runs: &[&Run]) -> String {
    let tagged = runs.len() > 1;
    let mut s = String::from(r#"<table id="faults"><caption>Faults</caption><thead><tr>"#);
    if tagged {
        s.push_str("<th>run</th>");
    }
    s.push_str("<th>#</th><th>kind</th><th>detail</th><th>start (s)</th><th>end (s)</th><th>down phases</th></tr></thead><tbody>");
    let mut any = false;
    for run in runs {
        for w in &run.windows {
            any = true;
            let end = w.end_s.map_or("(end of run)".to_string(), fmt_seconds);
            let run_attr = if tagged { format!(r#" data-run="{}""#, esc(&run.tag)) } else { String::new() };
            let _ = write!(
                s,
                r#"<tr data-fault="{}"{run_attr} data-start-s="{}" data-end-s="{}">"#,
                w.fault,
                w.start_s,
                w.end_s.map_or(String::new(), |e| e.to_string())
            );
            if tagged {
                let _ = write!(s, "<td>{}</td>", esc(&run.tag));
            }
            let _ = write!(
                s,
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{end}</td><td>{}</td></tr>",
                w.fault,
                esc(&w.kind),
                esc(&w.detail),
                fmt_seconds(w.start_s),
                if w.down_s.is_empty() { String::new() } else { w.down_s.len().to_string() }
            );
        }
    }
    if !any {
        let cols = if tagged { 7 } else { 6 };
        let _ = write!(s, r#"<tr><td colspan="{cols}">No faults were injected.</td></tr>"#);
    }
    s.push_str("</tbody></table>");
    s
}

pub fn settings(run: &Run) -> String {
    let mut s = String::from(
        r#"<table id="settings"><caption>Settings</caption><thead><tr><th>setting</th><th>value</th></tr></thead><tbody>"#,
    );
    for (k, v) in &run.settings {
        let _ = write!(s, r#"<tr data-key="{0}"><td>{0}</td><td>{1}</td></tr>"#, esc(k), esc(v));
    }
    s.push_str("</tbody></table>");
    s
}

pub fn key_figures(run: &Run) -> String {
    let mut s = String::from(
        r#"<table id="key-figures"><caption>Key figures (summary.json)</caption><thead><tr><th>figure</th><th>value</th></tr></thead><tbody>"#,
    );
    for (k, x) in numeric_leaves(&run.summary) {
        let root = k.split('.').next().unwrap_or("");
        if !KEY_FIGURE_ROOTS.contains(&root) {
            continue;
        }
        let _ = write!(
            s,
            r#"<tr data-key="{0}" data-value="{x}"><td>{0}</td><td class="num">{1}</td></tr>"#,
            esc(&k),
            fmt_figure(x)
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// Per probe pair: counts, loss and round trips, one row each.
pub fn probe_pairs(run: &Run) -> String {
    let Some(pairs) = run.summary["probe"]["pairs"].as_object().filter(|p| !p.is_empty()) else {
        return String::new();
    };
    const COLS: [&str; 7] = ["sent", "received", "timed_out", "loss_ratio", "rtt_ms_p50", "rtt_ms_p99", "rtt_ms_max"];
    let mut s = String::from(r#"<table id="probe-pairs"><caption>Probe pairs</caption><thead><tr><th>pair</th>"#);
    for c in COLS {
        let _ = write!(s, "<th>{c}</th>");
    }
    s.push_str("</tr></thead><tbody>");
    for (pair, p) in pairs {
        let _ = write!(s, r#"<tr data-pair="{0}"><td>{0}</td>"#, esc(pair));
        for c in COLS {
            let cell = p[c].as_f64().map_or(String::new(), fmt_figure);
            let _ = write!(s, r#"<td class="num" data-col="{c}">{cell}</td>"#);
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// Figures about the run itself rather than the simulated system: they differ between any two
/// runs and say nothing about the setting compared.
fn describes_the_tool(key: &str) -> bool {
    key == "wall_seconds" || key == "seed" || key.starts_with("engine.")
}

/// Every numeric leaf of both summaries that exists in both, with B − A: those that differ in
/// the table, the unchanged ones folded away below it (most of a comparison's figures do not
/// change, and they would bury the ones that do).
pub fn compare_figures(a: &Run, b: &Run) -> String {
    let b_leaves = numeric_leaves(&b.summary);
    let (mut changed, mut unchanged) = (String::new(), String::new());
    let mut unchanged_count = 0;
    for (k, x) in numeric_leaves(&a.summary) {
        if describes_the_tool(&k) {
            continue;
        }
        let Some(&(_, y)) = b_leaves.iter().find(|(kb, _)| *kb == k) else { continue };
        let (d, pct) = difference(x, y);
        let (rows, class) = if d != 0.0 {
            (&mut changed, r#" class="differs""#)
        } else {
            unchanged_count += 1;
            (&mut unchanged, "")
        };
        let _ = write!(
            rows,
            r#"<tr data-key="{0}" data-a="{x}" data-b="{y}" data-diff="{d}"{class}><td>{0}</td><td class="num">{1}</td><td class="num">{2}</td><td class="num">{3}</td><td class="num">{4}</td></tr>"#,
            esc(&k),
            fmt_figure(x),
            fmt_figure(y),
            if d > 0.0 { format!("+{}", fmt_figure(d)) } else { fmt_figure(d) },
            pct.map_or(String::new(), |p| format!("{p:+.1} %"))
        );
    }
    const HEAD: &str = "<thead><tr><th>figure</th><th>A</th><th>B</th><th>B − A</th><th>change</th></tr></thead>";
    let mut s = format!(
        r#"<table id="key-figures"><caption>Key figures (summary.json) that differ: B − A</caption>{HEAD}<tbody>{changed}</tbody></table>"#
    );
    if unchanged_count > 0 {
        let _ = write!(
            s,
            r#"<details><summary>{unchanged_count} figures the same in both runs</summary><table id="key-figures-unchanged">{HEAD}<tbody>{unchanged}</tbody></table></details>"#
        );
    }
    s
}

/// Settings of both runs by name; rows that differ are highlighted.
pub fn compare_settings(a: &Run, b: &Run) -> String {
    let mut keys: Vec<&str> = a.settings.iter().map(|(k, _)| k.as_str()).collect();
    for (k, _) in &b.settings {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    let get = |r: &Run, k: &str| r.settings.iter().find(|(n, _)| n == k).map_or(String::new(), |(_, v)| v.clone());
    let mut s = String::from(
        r#"<table id="settings"><caption>Settings</caption><thead><tr><th>setting</th><th>A</th><th>B</th></tr></thead><tbody>"#,
    );
    for k in keys {
        let (va, vb) = (get(a, k), get(b, k));
        let class = if va != vb { r#" class="differs""# } else { "" };
        let _ = write!(
            s,
            r#"<tr data-key="{}"{class}><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(k),
            esc(k),
            esc(&va),
            esc(&vb)
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// Assertions of both runs by name.
pub fn compare_assertions(a: &Run, b: &Run) -> String {
    let list = |r: &Run| r.summary["assertions"].as_array().cloned().unwrap_or_default();
    let (la, lb) = (list(a), list(b));
    let mut names: Vec<String> = la.iter().filter_map(|x| x["name"].as_str().map(String::from)).collect();
    for x in &lb {
        if let Some(n) = x["name"].as_str().filter(|n| !names.iter().any(|m| m == n)) {
            names.push(n.to_string());
        }
    }
    let find = |l: &[Value], n: &str| l.iter().find(|x| x["name"] == n).cloned();
    let cell = |x: Option<Value>| match x {
        Some(x) => {
            let passed = x["passed"].as_bool().unwrap_or(false);
            let word = result_word(&x);
            format!(
                r#"<td class="outcome {word}" data-passed="{passed}">{word}: {}</td>"#,
                esc(x["detail"].as_str().unwrap_or(""))
            )
        }
        None => "<td>(not in this run)</td>".to_string(),
    };
    let mut s = String::from(
        r#"<table id="assertions"><caption>Assertions</caption><thead><tr><th>name</th><th>A</th><th>B</th></tr></thead><tbody>"#,
    );
    for n in &names {
        let _ = write!(
            s,
            r#"<tr data-name="{}"><td>{}</td>{}{}</tr>"#,
            esc(n),
            esc(n),
            cell(find(&la, n)),
            cell(find(&lb, n))
        );
    }
    s.push_str("</tbody></table>");
    s
}
