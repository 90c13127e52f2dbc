//! Writers for what a run leaves behind: summary.json, events.jsonl, metrics.csv, scenario.toml
//! and report.html; compare.html for two runs; JUnit XML for CI. Every output folder is written
//! to a temporary sibling and renamed into place, so a failed run never leaves a half-written
//! folder.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use models::trace::{Event, TraceKind, with_node_names};

pub mod atomic;
pub mod csv_out;
pub mod html;
pub mod junit;
pub mod xml;

/// Fills a run's output folder: summary.json, events.jsonl, metrics.csv, report.html and, when
/// given, scenario.toml (the scenario's text, so the folder alone says how the run was made
/// and `pgsim compare` can show its settings).
pub fn write_run_folder(
    dir: &Path,
    summary: &serde_json::Value,
    events: &[Event],
    node_names: &[String],
    scenario_toml: Option<&str>,
) -> io::Result<()> {
    write_json(&dir.join("summary.json"), summary)?;
    write_events(&dir.join("events.jsonl"), events, node_names)?;
    csv_out::write_metrics(&dir.join("metrics.csv"), events).map_err(io::Error::other)?;
    if let Some(src) = scenario_toml {
        fs::write(dir.join("scenario.toml"), src)?;
    }
    html::write_report(&dir.join("report.html"), events, summary, scenario_toml)
}

/// Writes `events.jsonl`: one JSON object per line, node references by name. These are the
/// bytes `trace_hash` is computed over.
pub fn write_events(path: &Path, events: &[Event], node_names: &[String]) -> io::Result<()> {
    let mut w = BufWriter::new(fs::File::create(path)?);
    with_node_names(node_names, || -> io::Result<()> {
        for ev in events {
            serde_json::to_writer(&mut w, ev)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    w.flush()
}

pub fn write_json(path: &Path, value: &serde_json::Value) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    fs::write(path, text)
}

/// Node names from a trace's `run_started` header.
pub fn node_names(events: &[Event]) -> Vec<String> {
    match events.first().map(|e| &e.kind) {
        Some(TraceKind::RunStarted { nodes, .. }) => nodes.clone(),
        _ => Vec::new(),
    }
}

pub use atomic::write_dir_atomically;
