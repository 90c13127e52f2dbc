//! report.html (one run) and compare.html (two runs overlaid): self-contained pages with SVG
//! charts over simulated time, fault windows shaded and leader changes marked on every chart.
//!
//! - `run`: a run as the report sees it (from the trace in memory, or an output folder);
//! - `catalog`: which charts a run gets, from its metrics and events;
//! - `chart`: a chart's data model, shading and marks, drawn by `lines` (line charts) and
//!   `lanes` (lane charts) on `axis`; `downsample`: keeping long runs small;
//! - `tables`, `figures`, `settings`: the tables; `page`: the two pages.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use models::trace::Event;
use serde_json::Value;

pub mod axis;
pub mod catalog;
pub mod chart;
pub mod downsample;
pub mod figures;
pub mod incidents;
pub mod lanes;
pub mod lines;
pub mod page;
pub mod run;
pub mod settings;
pub mod tables;

pub use run::Run;

/// The HTML of report.html for a run's trace and summary; `scenario_toml` (the scenario
/// file's text) adds its settings.
pub fn render_report(events: &[Event], summary: &Value, scenario_toml: Option<&str>) -> String {
    page::report(&Run::from_trace("", events, summary.clone(), scenario_toml))
}

pub fn write_report(path: &Path, events: &[Event], summary: &Value, scenario_toml: Option<&str>) -> io::Result<()> {
    fs::write(path, render_report(events, summary, scenario_toml))
}

/// The HTML of compare.html for two loaded runs (tagged "A" and "B").
pub fn render_compare(a: &Run, b: &Run) -> String {
    page::compare(a, b)
}

/// `./compare-<A's folder name>-vs-<B's folder name>`.
pub fn default_compare_dir(dir_a: &Path, dir_b: &Path) -> PathBuf {
    let name = |d: &Path| {
        // `canonicalize` resolves "." and "..", so `pgsim compare . ../b` still names them.
        let d = d.canonicalize().unwrap_or_else(|_| d.to_path_buf());
        d.file_name().map_or("run".to_string(), |n| n.to_string_lossy().into_owned())
    };
    PathBuf::from(format!("compare-{}-vs-{}", name(dir_a), name(dir_b)))
}

/// Reads two output folders of `pgsim run --out` and writes `out/compare.html` atomically
/// (the folder is replaced whole, like `run --out`). Returns the folder written.
pub fn write_compare(dir_a: &Path, dir_b: &Path, out: Option<&Path>) -> io::Result<PathBuf> {
    let a = Run::load("A", dir_a)?;
    let b = Run::load("B", dir_b)?;
    let out = out.map_or_else(|| default_compare_dir(dir_a, dir_b), Path::to_path_buf);
    let html = render_compare(&a, &b);
    crate::write_dir_atomically(&out, |tmp| fs::write(tmp.join("compare.html"), &html))?;
    Ok(out)
}
