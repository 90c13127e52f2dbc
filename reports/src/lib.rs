//! Writers for what a run leaves behind: summary.json, events.jsonl, metrics.csv, scenario.toml
//! and report.html; compare.html for two runs; JUnit XML for CI. Every output folder is written
//! to a temporary sibling and renamed into place, so a failed run never leaves a half-written
//! folder.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use models::trace::{Event, TraceKind, with_node_names};

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

/// Creates `dir` atomically: `fill` writes into a fresh temporary sibling, which then replaces
/// `dir`. If `fill` fails, nothing is left behind and an existing `dir` is untouched.
pub fn write_dir_atomically(dir: &Path, fill: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent)?;
    let name = dir.file_name().ok_or_else(|| io::Error::other(format!("{} is not a folder name", dir.display())))?;
    let pid = std::process::id();
    let tmp = parent.join(format!(".{}.tmp-{pid}", name.to_string_lossy()));
    let old = parent.join(format!(".{}.old-{pid}", name.to_string_lossy()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp)?;
    if let Err(e) = fill(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let had_old = dir.exists();
    if had_old {
        fs::rename(dir, &old)?;
    }
    if let Err(e) = fs::rename(&tmp, dir) {
        if had_old {
            let _ = fs::rename(&old, dir);
        }
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if had_old {
        fs::remove_dir_all(&old)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_fill_leaves_nothing_and_keeps_old() {
        let base = std::env::temp_dir().join(format!("pgsim-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let dir = base.join("out");
        write_dir_atomically(&dir, |t| fs::write(t.join("a.txt"), "1")).unwrap();
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "1");
        let err = write_dir_atomically(&dir, |t| {
            fs::write(t.join("a.txt"), "2")?;
            Err(io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "1", "old output untouched");
        assert_eq!(fs::read_dir(&base).unwrap().count(), 1, "no temporary folder left");
        write_dir_atomically(&dir, |t| fs::write(t.join("b.txt"), "3")).unwrap();
        assert!(!dir.join("a.txt").exists() && dir.join("b.txt").exists(), "replaced whole");
        fs::remove_dir_all(&base).unwrap();
    }
}
