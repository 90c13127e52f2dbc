//! One run as the report sees it: the trace header, the per-second metrics by series, fault
//! windows, marks (leader changes, operator actions), the summary and the scenario's settings.
//! Built from the in-memory trace (`pgsim run --out`) or from an output folder (`pgsim compare`).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use models::trace::{DistStats, Event, TraceKind, install_node_names};
use serde_json::Value;

/// A fault's time on the chart: `start_s` until `end_s` (`None`: still active when the run
/// ended), and for flapping faults the phases in which the link or switch was down.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub fault: u32,
    pub kind: String,
    pub detail: String,
    pub start_s: f64,
    pub end_s: Option<f64>,
    pub down_s: Vec<(f64, f64)>,
}

/// A vertical line on every chart (or on one chart, for chart-specific marks).
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub t_s: f64,
    /// `leader` (a Raft leader was elected), `operator`, `halted`, `writes-resumed`; later
    /// `failover`. Also the CSS class and `data-mark` attribute.
    pub kind: &'static str,
    pub label: String,
}

/// Every kind of mark with what it means, in the order a chart's key lists them.
pub const MARK_KINDS: [(&str, &str); 5] = [
    ("failover", "failover: a standby promoted"),
    ("leader", "Raft leader elected"),
    ("operator", "operator action"),
    ("halted", "etcd member halted"),
    ("writes-resumed", "etcd writes resumed"),
];

/// One series of the per-second metrics: (second, count, distribution) for the seconds in
/// which it saw activity.
pub type SecondRows = Vec<(u64, u64, Option<DistStats>)>;

pub struct Run {
    /// "A"/"B" in a comparison, empty in a single report.
    pub tag: String,
    pub scenario: String,
    pub seed: u64,
    pub end_s: f64,
    pub nodes: Vec<String>,
    pub summary: Value,
    /// Every event except the per-second metrics (which are in `metrics`).
    pub events: Vec<Event>,
    /// (metric, label) -> rows, in name order.
    pub metrics: BTreeMap<(String, String), SecondRows>,
    pub windows: Vec<Window>,
    pub marks: Vec<Mark>,
    /// Key settings as (name, value), from the run header, the summary and the scenario file.
    pub settings: Vec<(String, String)>,
    /// Lines of events.jsonl this version cannot read (kinds from a newer pgsim).
    pub skipped_lines: usize,
}

pub fn secs(t_ns: u64) -> f64 {
    t_ns as f64 / 1e9
}

impl Run {
    pub fn from_trace(tag: &str, events: &[Event], summary: Value, scenario_toml: Option<&str>) -> Run {
        let (mut scenario, mut seed, mut nodes, mut end_ns) = (String::new(), 0, Vec::new(), 0u64);
        let mut header = Vec::new();
        let mut metrics: BTreeMap<(String, String), SecondRows> = BTreeMap::new();
        let mut windows: Vec<Window> = Vec::new();
        let mut marks = Vec::new();
        let mut kept = Vec::new();
        for ev in events {
            let t_s = secs(ev.t_ns);
            match &ev.kind {
                TraceKind::RunStarted {
                    pgsim_version,
                    scenario: sc,
                    scenario_hash,
                    seed: sd,
                    duration_ns,
                    nodes: ns,
                    lookahead_ns,
                } => {
                    scenario = sc.clone();
                    seed = *sd;
                    nodes = ns.clone();
                    end_ns = *duration_ns;
                    header = vec![
                        ("scenario".to_string(), sc.clone()),
                        ("seed".into(), sd.to_string()),
                        ("duration".into(), crate::html::axis::fmt_duration(secs(*duration_ns))),
                        ("nodes".into(), ns.join(", ")),
                        ("pgsim version".into(), pgsim_version.clone()),
                        ("scenario hash".into(), scenario_hash.clone()),
                        ("engine lookahead".into(), format!("{} ms", *lookahead_ns as f64 / 1e6)),
                    ];
                }
                TraceKind::Metrics { second, rows } => {
                    for r in rows {
                        metrics
                            .entry((r.metric.to_string(), r.label.to_string()))
                            .or_default()
                            .push((*second, r.count, r.dist));
                    }
                    continue;
                }
                TraceKind::FaultStarted { fault, fault_kind, detail } => windows.push(Window {
                    fault: *fault,
                    kind: fault_kind.clone(),
                    detail: detail.clone(),
                    start_s: t_s,
                    end_s: None,
                    down_s: Vec::new(),
                }),
                TraceKind::FaultHealed { fault, .. } => {
                    if let Some(w) = windows.iter_mut().rev().find(|w| w.fault == *fault && w.end_s.is_none()) {
                        w.end_s = Some(t_s);
                        close_down_phase(w, t_s);
                    }
                }
                TraceKind::Flapped { fault, down } => {
                    if let Some(w) = windows.iter_mut().rev().find(|w| w.fault == *fault && w.end_s.is_none()) {
                        if *down {
                            // An open phase is marked by an end equal to NaN until it closes.
                            w.down_s.push((t_s, f64::NAN));
                        } else {
                            close_down_phase(w, t_s);
                        }
                    }
                }
                TraceKind::RaftLeaderElected { term, .. } => marks.push(Mark {
                    t_s,
                    kind: "leader",
                    label: format!("{} leads (term {term})", node_name(&nodes, ev)),
                }),
                TraceKind::OperatorAction { action } => {
                    marks.push(Mark { t_s, kind: "operator", label: format!("operator: {action}") })
                }
                TraceKind::PgPromoted { cluster, tli, .. } => marks.push(Mark {
                    t_s,
                    kind: "failover",
                    label: format!("{} promoted ({cluster}, timeline {tli})", node_name(&nodes, ev)),
                }),
                TraceKind::EtcdHalted { reason } => marks.push(Mark {
                    t_s,
                    kind: "halted",
                    label: format!("{} halted: {reason}", node_name(&nodes, ev)),
                }),
                TraceKind::RunFinished { sim_ns } => end_ns = *sim_ns,
                _ => {}
            }
            kept.push(ev.clone());
        }
        let end_s = secs(end_ns);
        for w in &mut windows {
            close_down_phase(w, end_s);
        }
        let mut settings = header;
        settings.extend(summary_settings(&summary));
        if let Some(src) = scenario_toml {
            settings.extend(crate::html::settings::from_scenario_toml(src));
        }
        Run {
            tag: tag.to_string(),
            scenario,
            seed,
            end_s,
            nodes,
            summary,
            events: kept,
            metrics,
            windows,
            marks,
            settings,
            skipped_lines: 0,
        }
    }

    /// Reads an output folder of `pgsim run --out`: summary.json, events.jsonl and, when
    /// present, scenario.toml.
    pub fn load(tag: &str, dir: &Path) -> io::Result<Run> {
        let read = |name: &str| {
            fs::read_to_string(dir.join(name))
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(name).display())))
        };
        let summary: Value = serde_json::from_str(&read("summary.json")?)
            .map_err(|e| io::Error::other(format!("{}: {e}", dir.join("summary.json").display())))?;
        let text = read("events.jsonl")?;
        let (events, skipped) = parse_events(&text)
            .map_err(|e| io::Error::other(format!("{}: {e}", dir.join("events.jsonl").display())))?;
        let scenario = fs::read_to_string(dir.join("scenario.toml")).ok();
        let mut run = Run::from_trace(tag, &events, summary, scenario.as_deref());
        run.skipped_lines = skipped;
        Ok(run)
    }

    /// The rows of one series, if it saw any activity.
    pub fn series(&self, metric: &str, label: &str) -> Option<&SecondRows> {
        self.metrics.get(&(metric.to_string(), label.to_string()))
    }

    /// Labels under which `metric` was recorded, in name order.
    pub fn labels(&self, metric: &str) -> Vec<&str> {
        self.metrics.keys().filter(|(m, _)| m == metric).map(|(_, l)| l.as_str()).collect()
    }
}

fn node_name(nodes: &[String], ev: &Event) -> String {
    ev.node.and_then(|n| nodes.get(n.0 as usize).cloned()).unwrap_or_default()
}

fn close_down_phase(w: &mut Window, t_s: f64) {
    if let Some(last) = w.down_s.last_mut()
        && last.1.is_nan()
    {
        last.1 = t_s;
    }
}

/// Parses events.jsonl. Node references are names, resolved against the `run_started`
/// header's table. Lines of unknown kinds are skipped and counted, so a folder written by a
/// newer pgsim still opens.
pub fn parse_events(text: &str) -> Result<(Vec<Event>, usize), String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().ok_or("empty trace")?;
    let header: Value = serde_json::from_str(first).map_err(|e| format!("line 1: {e}"))?;
    if header["kind"] != "run_started" {
        return Err("line 1 is not a run_started event".into());
    }
    let names: Vec<String> = header["nodes"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let _guard = install_node_names(&names);
    let mut events = Vec::new();
    let mut skipped = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Event>(line) {
            Ok(ev) => events.push(ev),
            Err(_) => skipped += 1,
        }
    }
    Ok((events, skipped))
}

/// Settings the summary records about how the run was made.
fn summary_settings(summary: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(p) = summary["scenario_path"].as_str() {
        out.push(("scenario file".to_string(), p.to_string()));
    }
    if let Some(o) = summary["outcome"].as_str() {
        out.push(("outcome".into(), o.to_string()));
    }
    if let Some(h) = summary["trace_hash"].as_str() {
        out.push(("trace hash".into(), h.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::NodeRef;

    fn ev(seq: u64, t_ms: u64, kind: TraceKind) -> Event {
        Event { seq, t_ns: t_ms * 1_000_000, node: None, kind }
    }

    fn header() -> Event {
        ev(
            0,
            0,
            TraceKind::RunStarted {
                pgsim_version: "0".into(),
                scenario: "s".into(),
                scenario_hash: "h".into(),
                seed: 3,
                duration_ns: 10_000_000_000,
                nodes: vec!["a".into(), "b".into()],
                lookahead_ns: 100_000,
            },
        )
    }

    #[test]
    fn fault_windows_and_down_phases_close_at_heal_or_end() {
        let events = vec![
            header(),
            ev(
                1,
                1000,
                TraceKind::FaultStarted { fault: 0, fault_kind: "link-flapping".into(), detail: "a<->b".into() },
            ),
            ev(2, 1000, TraceKind::Flapped { fault: 0, down: true }),
            ev(3, 2000, TraceKind::Flapped { fault: 0, down: false }),
            ev(4, 3000, TraceKind::Flapped { fault: 0, down: true }),
            ev(5, 3500, TraceKind::FaultHealed { fault: 0, fault_kind: "link-flapping".into() }),
            ev(6, 4000, TraceKind::FaultStarted { fault: 1, fault_kind: "node-crash".into(), detail: "b".into() }),
            Event {
                seq: 7,
                t_ns: 5_000_000_000,
                node: Some(NodeRef(1)),
                kind: TraceKind::RaftLeaderElected { term: 2, last_index: 1, log_terms: vec![] },
            },
        ];
        let run = Run::from_trace("", &events, Value::Null, None);
        assert_eq!(run.end_s, 10.0);
        assert_eq!(run.windows.len(), 2);
        assert_eq!(run.windows[0].end_s, Some(3.5));
        assert_eq!(run.windows[0].down_s, vec![(1.0, 2.0), (3.0, 3.5)]);
        assert_eq!(run.windows[1].end_s, None, "never healed");
        assert_eq!(run.marks, vec![Mark { t_s: 5.0, kind: "leader", label: "b leads (term 2)".into() }]);
        assert_eq!(run.settings[1], ("seed".to_string(), "3".to_string()));
    }

    #[test]
    fn parse_skips_unknown_kinds_and_resolves_names() {
        let text = concat!(
            r#"{"seq":0,"t_ns":0,"kind":"run_started","pgsim_version":"0","scenario":"s","scenario_hash":"h","#,
            r#""seed":1,"duration_ns":5,"nodes":["a","b"],"lookahead_ns":1}"#,
            "\n",
            r#"{"seq":1,"t_ns":1,"node":"b","kind":"node_crashed"}"#,
            "\n",
            r#"{"seq":2,"t_ns":2,"node":"a","kind":"postgres_promoted_in_a_later_version"}"#,
            "\n"
        );
        let (events, skipped) = parse_events(text).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(skipped, 1);
        assert_eq!(events[1].node, Some(NodeRef(1)));
        assert!(parse_events("").is_err());
        assert!(parse_events(r#"{"seq":1,"t_ns":1,"kind":"node_crashed"}"#).is_err());
    }
}
