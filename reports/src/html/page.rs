//! Whole pages: report.html for one run, compare.html for two. The markup is XHTML-compatible
//! HTML5 (every element closed, attributes quoted, text escaped), so it opens in any browser
//! from disk and parses as XML in the tests. No scripts, no external resources.

use std::fmt::Write;

use super::axis::fmt_duration;
use super::catalog;
use super::chart::{self, Chart, Layer, RUN_COLOURS};
use super::incidents;
use super::run::Run;
use super::tables;
use crate::xml::esc;

const CSS: &str = r#"
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 40px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 17px; margin: 26px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 0 0 2px; }
p.meta, p.note, p.help { color: #555; margin: 2px 0 6px; }
p.note { font-size: 12px; }
nav a { margin-right: 12px; font-size: 12px; }
.outcome.pass { color: #1b7f2a; font-weight: 600; }
.outcome.fail { color: #c62828; font-weight: 600; }
.outcome.missed, .outcome.skipped { color: #8a6d00; font-weight: 600; }
span.outcome { font-size: 14px; border: 1px solid currentColor; border-radius: 4px; padding: 0 6px; margin-left: 8px; vertical-align: middle; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; align-items: start; }
table { border-collapse: collapse; font-size: 12px; background: #fff; margin: 6px 0; width: 100%; }
caption { text-align: left; font-weight: 600; padding: 4px 0; font-size: 13px; }
th, td { border: 1px solid #e0e0e0; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.differs td { background: #fff6d6; }
tr.fail td { background: #fdecea; }
section.chart { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: 8px 10px 4px; margin: 10px 0; }
section.chart svg { display: block; font-size: 11px; }
.axis line { stroke: #999; stroke-width: 1; }
.axis line.grid { stroke: #eee; }
.axis text { fill: #555; }
.series path { fill: none; stroke-width: 1.5; stroke-linejoin: round; stroke-linecap: round; }
.series path[data-run="B"] { stroke-opacity: 0.8; }
rect.fault { fill-opacity: 0.13; }
rect.fault:not([data-run]) { fill: #e06666; fill-opacity: 0.16; }
rect.down { fill-opacity: 0.16; }
rect.down:not([data-run]) { fill: #c62828; fill-opacity: 0.22; }
.mark { fill: none; stroke-width: 1; stroke-dasharray: 3 3; }
.mark:not([data-run]) { stroke: #6a3d9a; }
.mark-operator { stroke-dasharray: 1 2; stroke-width: 1.5; }
.mark-operator:not([data-run]) { stroke: #222; }
.mark-writes-resumed { stroke-dasharray: 6 2; }
.mark-writes-resumed:not([data-run]) { stroke: #2ca02c; }
.mark-halted:not([data-run]), .mark-failover:not([data-run]) { stroke: #000; stroke-width: 2; stroke-dasharray: none; }
rect.seg { fill-opacity: 0.85; }
text.seg-label { fill: #fff; font-size: 11px; }
ul.legend { list-style: none; margin: 2px 0 4px 60px; padding: 0; font-size: 12px; }
ul.legend li { display: inline-block; margin-right: 14px; }
ul.legend svg { display: inline-block; vertical-align: middle; margin-right: 4px; }
.key { display: inline-block; width: 14px; height: 10px; vertical-align: middle; margin: 0 4px 0 10px; }
footer { color: #888; font-size: 12px; margin-top: 24px; }
"#;

fn open(title: &str) -> String {
    let mut s = String::from("<!DOCTYPE html>\n");
    s.push_str(r#"<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>"#);
    s.push_str(r#"<meta name="viewport" content="width=device-width, initial-scale=1"/>"#);
    let _ = write!(s, "<title>{}</title><style>{CSS}</style></head>\n<body><main>", esc(title));
    s
}

fn close(s: &mut String, version: &str) {
    let _ = writeln!(
        s,
        "<footer>Written by pgsim {}. Self-contained: no scripts, no network. Simulated time runs left to right.</footer></main></body></html>",
        esc(version)
    );
}

/// How to read the charts: what is shaded and what the vertical lines are.
fn help(compare: bool) -> String {
    if compare {
        format!(
            r#"<p class="help">Run A <span class="key" style="background:{}"></span> and run B <span class="key" style="background:{}"></span>: lines in the run's colour (dash pattern per series), fault windows tinted in it (darker: a flapping fault's down phases), dashed verticals: leader changes and other marks. Hover for details.</p>"#,
            RUN_COLOURS[0], RUN_COLOURS[1]
        )
    } else {
        r#"<p class="help">Shaded: fault windows (darker: a flapping fault's down phases). Solid black verticals: a failover (a standby promoted); dashed purple: a Raft leader elected; dotted black: operator actions; green: writes resumed. Each chart's key names the marks it has. Hover over anything for details. Long runs are downsampled to about 1500 points per series, keeping each bucket's minimum and maximum.</p>"#.to_string()
    }
}

fn nav(charts: &[&Chart]) -> String {
    let mut s = String::from("<nav>");
    for c in charts {
        let _ = write!(s, r##"<a href="#chart-{}">{}</a>"##, esc(&c.id), esc(&c.title));
    }
    s.push_str("</nav>");
    s
}

fn setting<'a>(run: &'a Run, key: &str) -> Option<&'a str> {
    run.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn outcome_badge(run: &Run) -> String {
    match run.summary["outcome"].as_str() {
        Some(o @ ("pass" | "fail")) => format!(r#"<span class="outcome {o}">{o}</span>"#),
        _ => String::new(),
    }
}

fn meta_line(run: &Run) -> String {
    format!(
        "seed {} · {} simulated · {} events · trace {}",
        run.seed,
        fmt_duration(run.end_s),
        run.summary["events"].as_u64().map_or("?".to_string(), |n| n.to_string()),
        run.summary["trace_hash"].as_str().unwrap_or("?")
    )
}

fn skipped_note(run: &Run) -> String {
    if run.skipped_lines == 0 {
        return String::new();
    }
    format!(
        r#"<p class="note">{} lines of events.jsonl have kinds this pgsim does not know (a newer version wrote them); they are left out.</p>"#,
        run.skipped_lines
    )
}

pub fn report(run: &Run) -> String {
    let charts = catalog::charts(run);
    let mut s = open(&format!("pgsim: {} (seed {})", run.scenario, run.seed));
    let _ = write!(s, "<header><h1>{}{}</h1>", esc(&run.scenario), outcome_badge(run));
    if let Some(d) = setting(run, "scenario.description") {
        let _ = write!(s, "<p>{}</p>", esc(d));
    }
    let _ = write!(s, r#"<p class="meta">{}</p>{}"#, esc(&meta_line(run)), skipped_note(run));
    s.push_str(&nav(&charts.iter().collect::<Vec<_>>()));
    if !incidents::zoomed(run).is_empty() {
        s.push_str(r##"<nav><a href="#incidents">Incidents, zoomed</a></nav>"##);
    }
    s.push_str("</header>\n");
    let _ = write!(
        s,
        r#"<div class="grid2"><div>{}</div><div>{}</div></div>"#,
        tables::assertions(run),
        tables::faults(&[run])
    );
    s.push_str("\n<h2>Over simulated time</h2>");
    s.push_str(&help(false));
    for c in &charts {
        let layer = Layer { tag: "", colour: None, chart: c, windows: &run.windows, marks: &run.marks };
        s.push_str(&chart::render(&[layer], run.end_s));
    }
    s.push_str(&incidents::section(run, &charts));
    s.push_str("\n<h2>Figures and settings</h2>");
    let _ = write!(
        s,
        r#"<div class="grid2"><div>{}</div><div>{}</div></div>"#,
        tables::key_figures(run),
        tables::settings(run)
    );
    s.push_str(&tables::probe_pairs(run));
    close(&mut s, run.summary["pgsim_version"].as_str().unwrap_or("?"));
    s
}

pub fn compare(a: &Run, b: &Run) -> String {
    let (ca, cb) = (catalog::charts(a), catalog::charts(b));
    // A's charts in their order, then any only B has.
    let mut ids: Vec<&str> = ca.iter().map(|c| c.id.as_str()).collect();
    ids.extend(cb.iter().map(|c| c.id.as_str()).filter(|id| !ca.iter().any(|c| c.id == *id)));
    let find = |cs: &'_ [Chart], id: &str| cs.iter().position(|c| c.id == id);
    let firsts: Vec<&Chart> =
        ids.iter().map(|id| find(&ca, id).map_or_else(|| &cb[find(&cb, id).expect("listed")], |i| &ca[i])).collect();

    let mut s = open(&format!("pgsim compare: {} vs {}", a.scenario, b.scenario));
    s.push_str("<header><h1>Comparison</h1>");
    for r in [a, b] {
        let _ = write!(
            s,
            r#"<p class="meta" data-run="{}"><strong>{}</strong>: {}{} — {}</p>"#,
            esc(&r.tag),
            esc(&r.tag),
            esc(&r.scenario),
            outcome_badge(r),
            esc(&meta_line(r))
        );
        s.push_str(&skipped_note(r));
    }
    s.push_str(&nav(&firsts));
    s.push_str("</header>\n");
    s.push_str(&tables::compare_assertions(a, b));
    s.push_str(&tables::faults(&[a, b]));
    s.push_str("\n<h2>Over simulated time</h2>");
    s.push_str(&help(true));
    let end_s = a.end_s.max(b.end_s);
    for id in &ids {
        let mut layers = Vec::new();
        for (ri, (run, cs)) in [(a, &ca), (b, &cb)].into_iter().enumerate() {
            if let Some(i) = find(cs, id) {
                layers.push(Layer {
                    tag: &run.tag,
                    colour: Some(ri),
                    chart: &cs[i],
                    windows: &run.windows,
                    marks: &run.marks,
                });
            }
        }
        s.push_str(&chart::render(&layers, end_s));
    }
    s.push_str("\n<h2>Figures and settings</h2>");
    s.push_str(&tables::compare_figures(a, b));
    s.push_str(&tables::compare_settings(a, b));
    close(&mut s, a.summary["pgsim_version"].as_str().unwrap_or("?"));
    s
}
