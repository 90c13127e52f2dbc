//! Holds pgsim to the real programs. `calibration/run` records what etcd, PostgreSQL, PgBouncer
//! and HAProxy do under a fault (`fixtures/<case>.json`); this crate runs the scenario that
//! mirrors each case (`scenarios/<case>.toml`) over a range of seeds, reads the same figures out
//! of pgsim's trace and compares the two distributions with the tolerance stated next to the
//! case (`compare/<family>.toml`).
//!
//! A figure compares medians over the repetitions (real) and the seeds (pgsim) in which it
//! happened. "Did not happen" is a value of its own: a figure that is null in every real
//! repetition must be null (or 0) in every seed, and one that always happened for real must
//! happen in every seed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

pub mod figures;

/// The calibration folder (fixtures, scenarios, compare files).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What `calibration/run` recorded for one case.
#[derive(Debug, Deserialize)]
pub struct Fixture {
    pub case: String,
    pub family: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub versions: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub recorded_at: String,
    /// Each figure's unit and meaning.
    pub figures: BTreeMap<String, String>,
    pub repetitions: Vec<Repetition>,
}

#[derive(Debug, Deserialize)]
pub struct Repetition {
    pub figures: BTreeMap<String, Option<f64>>,
}

impl Fixture {
    pub fn load(case: &str) -> Result<Fixture, String> {
        let path = root().join("fixtures").join(format!("{case}.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// One figure over the repetitions.
    pub fn values(&self, figure: &str) -> Vec<Option<f64>> {
        self.repetitions.iter().map(|r| r.figures.get(figure).copied().flatten()).collect()
    }
}

/// One case of a compare file: its mirror scenario, how many seeds, and its figures.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    pub name: String,
    pub scenario: String,
    /// pgsim runs seeds 0..seeds.
    pub seeds: u64,
    /// Why pgsim does not (yet) meet the case, for STATUS.md.
    #[serde(default)]
    pub gap: Option<String>,
    #[serde(rename = "figure")]
    pub figures: Vec<FigureSpec>,
    /// Set from the compare file's name.
    #[serde(skip)]
    pub family: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureSpec {
    pub name: String,
    pub tolerance: Tolerance,
    pub why: String,
}

/// How close pgsim's median must come to the real one; passing any one stated rule passes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Within this share of the real median.
    pub rel: Option<f64>,
    /// Within this many units of the real median.
    pub abs: Option<f64>,
    /// Inside the real repetitions' min..max.
    #[serde(default)]
    pub range: bool,
    /// The real figure never happened (null or 0 in every repetition): neither may pgsim's.
    #[serde(default)]
    pub never: bool,
}

impl Tolerance {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = self.rel {
            parts.push(format!("median within {:.0} %", r * 100.0));
        }
        if let Some(a) = self.abs {
            parts.push(format!("median within {a}"));
        }
        if self.range {
            parts.push("median in the real range".to_string());
        }
        if self.never {
            parts.push("never".to_string());
        }
        parts.join(" or ")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareFile {
    #[serde(rename = "case")]
    cases: Vec<CaseSpec>,
}

/// Every case of every compare file, in file-name order.
pub fn cases() -> Result<Vec<CaseSpec>, String> {
    let dir = root().join("compare");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: CompareFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let family = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        all.extend(file.cases.into_iter().map(|mut c| {
            c.family = family.clone();
            c
        }));
    }
    Ok(all)
}

pub fn case(name: &str) -> Result<CaseSpec, String> {
    cases()?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("no case {name:?} in calibration/compare/*.toml"))
}

/// One pgsim run as the extractors see it: summary.json and the events as events.jsonl has
/// them (node references by name), so extractors read the stable JSON form of the trace.
pub struct RunView {
    pub seed: u64,
    pub summary: Value,
    pub events: Vec<Value>,
}

impl RunView {
    pub fn of(out: &sim::RunOutput) -> RunView {
        let events = models::trace::with_node_names(&out.world.names, || {
            out.world.trace.events.iter().map(|e| serde_json::to_value(e).expect("events serialise")).collect()
        });
        RunView { seed: out.seed, summary: out.summary.clone(), events }
    }

    /// Seconds of simulated time of an event.
    pub fn t_s(&self, event: &Value) -> f64 {
        event["t_ns"].as_u64().unwrap_or(0) as f64 / 1e9
    }

    pub fn events_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events.iter().filter(move |e| e["kind"] == kind)
    }

    fn fault_event_s(&self, kind: &str, index: u64) -> Option<f64> {
        self.events_of(kind).find(|e| e["fault"].as_u64() == Some(index)).map(|e| self.t_s(e))
    }

    /// When the scenario's `index`-th `[[fault]]` started.
    pub fn fault_started_s(&self, index: u64) -> Option<f64> {
        self.fault_event_s("fault_started", index)
    }

    /// When the scenario's `index`-th `[[fault]]` healed.
    pub fn fault_healed_s(&self, index: u64) -> Option<f64> {
        self.fault_event_s("fault_healed", index)
    }

    /// (second, count) of one metric series from the per-second `metrics` events; `label`
    /// None sums every label.
    pub fn metric_series(&self, metric: &str, label: Option<&str>) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for e in self.events_of("metrics") {
            let second = e["second"].as_u64().unwrap_or(0);
            let rows = e["rows"].as_array().into_iter().flatten();
            let count: u64 = rows
                .filter(|r| r["metric"] == metric && label.is_none_or(|l| r["label"] == l))
                .map(|r| r["count"].as_u64().unwrap_or(0))
                .sum();
            if count > 0 {
                out.push((second, count));
            }
        }
        out
    }

    /// A number at a dotted path of summary.json.
    pub fn summary_f64(&self, path: &str) -> Option<f64> {
        path.split('.').try_fold(&self.summary, |v, k| v.get(k)).and_then(Value::as_f64)
    }
}

/// A figure over repetitions or seeds: how many happened, and the spread of those that did.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub values: Vec<f64>,
}

impl Stats {
    pub fn of(values: &[Option<f64>]) -> Stats {
        let mut v: Vec<f64> = values.iter().flatten().copied().collect();
        v.sort_by(f64::total_cmp);
        Stats { n: values.len(), values: v }
    }

    pub fn median(&self) -> Option<f64> {
        let v = &self.values;
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }

    /// Did not happen anywhere: no value, or only zeros (a count).
    pub fn never(&self) -> bool {
        self.values.iter().all(|&x| x == 0.0)
    }

    pub fn describe(&self) -> String {
        let (Some(m), Some(lo), Some(hi)) = (self.median(), self.values.first(), self.values.last()) else {
            return format!("never (0 of {})", self.n);
        };
        let mut s = format!("{} [{}..{}]", fmt(m), fmt(*lo), fmt(*hi));
        if self.values.len() < self.n {
            let _ = write!(s, " in {} of {}", self.values.len(), self.n);
        }
        s
    }
}

fn fmt(x: f64) -> String {
    if x == x.round() && x.abs() < 1e6 { format!("{x:.0}") } else { format!("{x:.2}") }
}

/// One figure of one case, compared.
#[derive(Debug)]
pub struct FigureReport {
    pub name: String,
    pub real: Stats,
    pub pgsim: Stats,
    pub tolerance: String,
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub reason: String,
}

/// Judges pgsim's figure against the real one under `tol`.
pub fn judge(real: &Stats, pgsim: &Stats, tol: &Tolerance) -> Result<(), String> {
    if tol.never && !real.never() {
        return Err(format!("the tolerance says never, but the real figure happened: {}", real.describe()));
    }
    if real.never() && (tol.never || real.values.is_empty()) {
        return if pgsim.never() { Ok(()) } else { Err(format!("never for real, pgsim {}", pgsim.describe())) };
    }
    if real.values.len() == real.n && pgsim.values.len() < pgsim.n {
        return Err(format!("always for real, missing in {} of {} pgsim seeds", pgsim.n - pgsim.values.len(), pgsim.n));
    }
    let (Some(rm), Some(pm)) = (real.median(), pgsim.median()) else {
        return Err(format!("pgsim never has it (real {})", real.describe()));
    };
    let (lo, hi) = (real.values[0], real.values[real.values.len() - 1]);
    let rules = [
        tol.rel.map(|r| (pm - rm).abs() <= r * rm.abs()),
        tol.abs.map(|a| (pm - rm).abs() <= a),
        tol.range.then_some(lo <= pm && pm <= hi),
    ];
    if rules.iter().flatten().any(|&ok| ok) {
        Ok(())
    } else {
        Err(format!("pgsim median {} vs real {} ({})", fmt(pm), fmt(rm), tol.describe()))
    }
}

/// A case compared: each figure, and the case's known gap.
#[derive(Debug)]
pub struct CaseReport {
    pub case: CaseSpec,
    pub description: String,
    pub versions: BTreeMap<String, Option<String>>,
    pub figures: Vec<FigureReport>,
    pub seconds: f64,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.figures.iter().all(|f| f.passed)
    }

    pub fn render(&self) -> String {
        let mut s = format!("case {} ({} seeds of {}):\n", self.case.name, self.case.seeds, self.case.scenario);
        for f in &self.figures {
            let verdict = if f.passed { "ok" } else { "OUT" };
            let _ = writeln!(
                s,
                "  {verdict:3} {}: real {}, pgsim {} ({}){}",
                f.name,
                f.real.describe(),
                f.pgsim.describe(),
                f.tolerance,
                if f.passed { String::new() } else { format!(": {}", f.reason) }
            );
        }
        s
    }
}

/// Runs a case's mirror scenario over its seeds and compares every figure with the fixture.
pub fn run_case(name: &str) -> Result<CaseReport, String> {
    let spec = case(name)?;
    let fixture = Fixture::load(name)?;
    let path = root().join("scenarios").join(&spec.scenario);
    let sc = scenarios::load(&path).map_err(|d| format!("{}: {d:?}", path.display()))?;
    let wall = std::time::Instant::now();
    let runs: Vec<RunView> = (0..spec.seeds)
        .map(|seed| RunView::of(&sim::run(&sc, sim::RunOptions { seed: Some(seed), ..Default::default() })))
        .collect();
    let seconds = wall.elapsed().as_secs_f64();
    let mut figures = Vec::new();
    for f in &spec.figures {
        if !fixture.figures.contains_key(&f.name) {
            return Err(format!("{name}: the fixture has no figure {:?}", f.name));
        }
        let mut values = Vec::new();
        for run in &runs {
            let v = figures::extract(&spec.family, &f.name, run)
                .ok_or_else(|| format!("{name}: no {} extractor reads {:?}", spec.family, f.name))?;
            values.push(v);
        }
        let real = Stats::of(&fixture.values(&f.name));
        let pgsim = Stats::of(&values);
        let verdict = judge(&real, &pgsim, &f.tolerance);
        figures.push(FigureReport {
            name: f.name.clone(),
            passed: verdict.is_ok(),
            reason: verdict.err().unwrap_or_default(),
            tolerance: f.tolerance.describe(),
            real,
            pgsim,
        });
    }
    Ok(CaseReport { case: spec, description: fixture.description, versions: fixture.versions, figures, seconds })
}

/// The test of a case: every figure within its tolerance, or a panic that shows the table.
pub fn assert_case(name: &str) {
    let report = run_case(name).unwrap_or_else(|e| panic!("calibration case {name}: {e}"));
    assert!(report.passed(), "pgsim is out of tolerance:\n{}", report.render());
    eprintln!("{}", report.render());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(v: &[Option<f64>]) -> Stats {
        Stats::of(v)
    }

    #[test]
    fn medians_compare_under_each_rule() {
        let real = stats(&[Some(4.0), Some(5.0), Some(6.0)]);
        let close = stats(&[Some(5.5), Some(5.4), Some(5.6)]);
        let far = stats(&[Some(7.5), Some(7.0), Some(8.0)]);
        let rel = Tolerance { rel: Some(0.2), ..Default::default() };
        assert!(judge(&real, &close, &rel).is_ok());
        assert!(judge(&real, &far, &rel).is_err(), "7.5 is 50 % off 5");
        let range = Tolerance { range: true, ..Default::default() };
        assert!(judge(&real, &close, &range).is_ok());
        assert!(judge(&real, &far, &range).is_err());
        let either = Tolerance { abs: Some(3.0), range: true, ..Default::default() };
        assert!(judge(&real, &far, &either).is_ok(), "any one rule passes");
    }

    #[test]
    fn never_means_never_on_both_sides() {
        let never = stats(&[None, None, None]);
        let zero = stats(&[Some(0.0), Some(0.0)]);
        let once = stats(&[None, Some(3.0), None]);
        let tol = Tolerance { never: true, ..Default::default() };
        assert!(judge(&never, &zero, &tol).is_ok());
        assert!(judge(&never, &stats(&[None, None]), &tol).is_ok());
        assert!(judge(&never, &once, &tol).is_err(), "pgsim had it in one seed");
        assert!(judge(&once, &never, &tol).is_err(), "a never tolerance over a real figure that happened is a mistake");
    }

    #[test]
    fn a_figure_that_always_happened_must_happen_in_every_seed() {
        let real = stats(&[Some(5.0), Some(5.0), Some(5.0)]);
        let some = stats(&[Some(5.0), None, Some(5.0)]);
        let tol = Tolerance { rel: Some(1.0), ..Default::default() };
        assert!(judge(&real, &some, &tol).is_err());
        assert!(judge(&real, &stats(&[None, None]), &tol).is_err());
    }

    #[test]
    fn stats_describe_the_spread_and_how_often() {
        assert_eq!(stats(&[Some(1.0), None, Some(3.0)]).describe(), "2 [1..3] in 2 of 3");
        assert_eq!(stats(&[None]).describe(), "never (0 of 1)");
        assert_eq!(stats(&[Some(0.5), Some(1.25)]).median(), Some(0.875));
    }
}
