//! Counters and distributions that models and the engine record. They live outside the nodes,
//! so a crash does not lose them; they roll up per simulated second (into the trace) and over
//! the whole run (into the summary).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use hdrhistogram::Histogram;
use models::Label;
use models::trace::{DistStats, MetricRows, SeriesNames};

/// Samples are stored in thousandths, so "ms" metrics keep microsecond resolution.
const SCALE: f64 = 1000.0;

#[derive(Clone)]
pub struct Acc {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    hist: Option<Histogram<u64>>,
}

impl Acc {
    fn new(dist: bool) -> Acc {
        // Two significant figures (1 % resolution) keep a histogram at a few kB; it grows
        // with the range of values recorded.
        let hist = dist.then(|| Histogram::new(2).expect("2 significant figures is valid"));
        Acc { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, hist }
    }

    fn observe(&mut self, v: f64, n: u64) {
        self.count += n;
        self.sum += v * n as f64;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if let Some(h) = &mut self.hist {
            // An auto-resizing histogram only refuses values beyond u64; those are clamped.
            let scaled = (v.max(0.0) * SCALE).min(u64::MAX as f64 / 4.0).round() as u64;
            h.record_n(scaled, n).expect("auto-resizing histogram records any value it is given");
        }
    }

    pub fn quantile(&self, q: f64) -> f64 {
        match &self.hist {
            Some(h) if self.count > 0 => (h.value_at_quantile(q) as f64 / SCALE).clamp(self.min, self.max),
            _ => f64::NAN,
        }
    }

    pub fn dist(&self) -> Option<DistStats> {
        (self.hist.is_some() && self.count > 0).then(|| DistStats {
            min: self.min,
            mean: self.sum / self.count as f64,
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            max: self.max,
        })
    }
}

pub struct Series {
    pub second: Acc,
    pub total: Acc,
    /// The row names, made once (every second's row shares them).
    names: Option<(Arc<str>, Arc<str>)>,
}

#[derive(Default)]
pub struct Metrics {
    series: Vec<Series>,
    /// Series by name and label, in the fixed order rows and totals are listed in.
    order: BTreeMap<(&'static str, Label), usize>,
    /// The same index keyed by where the name's text lives: every sample of a run looks a series
    /// up, and comparing name strings in the ordered map was a tenth of a long run's time.
    /// Only looked up, never iterated, so its order cannot leak into the output.
    by_address: HashMap<(usize, Label), usize, BuildHasherDefault<AddressHasher>>,
    /// Names of the tenants, for `Label::Tenant`.
    pub tenants: Vec<String>,
    /// Lists of row names by the series they list: a run's seconds see few distinct sets of
    /// active series, and the seconds with one set share one list.
    names_by_series: BTreeMap<Vec<u32>, SeriesNames>,
}

/// Distinct lists of row names kept for sharing; past this, new sets get a list of their own.
const NAMES_LISTS_MAX: usize = 4096;

/// FNV-1a over the few words of a series key: hashing them costs next to nothing.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let h = if self.0 == 0 { models::hash::FNV1A64_OFFSET } else { self.0 };
        self.0 = models::hash::fnv1a64_extend(h, bytes);
    }
}

impl Metrics {
    fn entry(&mut self, metric: &'static str, label: Label, dist: bool) -> &mut Series {
        // The address alone may differ for equal names (one per crate); the ordered map, keyed
        // by text, settles which series a new address belongs to.
        let key = (metric.as_ptr() as usize ^ (metric.len() << 48), label);
        let i = match self.by_address.get(&key) {
            Some(&i) => i,
            None => {
                let next = self.series.len();
                let i = *self.order.entry((metric, label)).or_insert(next);
                if i == next {
                    self.series.push(Series { second: Acc::new(dist), total: Acc::new(dist), names: None });
                }
                self.by_address.insert(key, i);
                i
            }
        };
        &mut self.series[i]
    }

    pub fn count(&mut self, metric: &'static str, label: Label, delta: u64) {
        let s = self.entry(metric, label, false);
        assert!(s.total.hist.is_none(), "metric {metric} used both as counter and distribution");
        s.second.count += delta;
        s.total.count += delta;
    }

    pub fn observe(&mut self, metric: &'static str, label: Label, value: f64) {
        self.observe_n(metric, label, value, 1);
    }

    /// `n` samples of one value (a cohort of requests with the same latency).
    pub fn observe_n(&mut self, metric: &'static str, label: Label, value: f64, n: u64) {
        let s = self.entry(metric, label, true);
        assert!(s.total.hist.is_some(), "metric {metric} used both as counter and distribution");
        s.second.observe(value, n);
        s.total.observe(value, n);
    }

    /// Rows for every series active since the last flush; resets the per-second accumulators.
    pub fn flush_second(&mut self, names: &[String]) -> MetricRows {
        let mut active = Vec::new();
        let mut rows = Vec::new();
        for (&(metric, label), &i) in &self.order {
            let s = &mut self.series[i];
            if s.second.count == 0 {
                continue;
            }
            s.names
                .get_or_insert_with(|| (Arc::from(metric), Arc::from(label_string_with(label, names, &self.tenants))));
            active.push(i as u32);
            rows.push((s.second.count, s.second.dist()));
            let dist = s.second.hist.is_some();
            s.second = Acc::new(dist);
        }
        let row_names = match self.names_by_series.get(&active) {
            Some(shared) => shared.clone(),
            None => {
                let list: SeriesNames =
                    active.iter().map(|&i| self.series[i as usize].names.clone().expect("named above")).collect();
                if self.names_by_series.len() < NAMES_LISTS_MAX {
                    self.names_by_series.insert(active, list.clone());
                }
                list
            }
        };
        MetricRows::new(row_names, rows)
    }

    /// Whole-run accumulators, in a fixed order.
    pub fn totals(&self) -> impl Iterator<Item = (&'static str, Label, &Acc)> {
        self.order.iter().map(|(&(m, l), &i)| (m, l, &self.series[i].total))
    }

    pub fn total(&self, metric: &'static str, label: Label) -> Option<&Acc> {
        self.order.get(&(metric, label)).map(|&i| &self.series[i].total)
    }
}

pub fn label_string(label: Label, names: &[String]) -> String {
    label_string_with(label, names, &[])
}

pub fn label_string_with(label: Label, names: &[String], tenants: &[String]) -> String {
    match label {
        Label::Tenant(t) => tenants.get(t as usize).cloned().unwrap_or_else(|| format!("tenant{t}")),
        Label::None => String::new(),
        Label::Node(n) => names[n as usize].clone(),
        Label::Pair(a, b) => format!("{}->{}", names[a as usize], names[b as usize]),
        Label::Tag(t) => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_reset_totals_accumulate() {
        let names = vec!["a".to_string(), "b".to_string()];
        let mut m = Metrics::default();
        m.count("sent", Label::Pair(0, 1), 3);
        for v in [1.0, 2.0, 3.0, 4.0, 100.0] {
            m.observe("rtt_ms", Label::Node(1), v);
        }
        let rows: Vec<_> = m.flush_second(&names).iter().collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&*rows[0].metric, "rtt_ms");
        assert_eq!(&*rows[0].label, "b");
        let d = rows[0].dist.unwrap();
        assert_eq!((d.min, d.max, d.mean), (1.0, 100.0, 22.0));
        assert!((d.p50 - 3.0).abs() < 0.01, "p50 {}", d.p50);
        assert!((d.p99 - 100.0).abs() < 0.1, "p99 {}", d.p99);
        assert_eq!(&*rows[1].label, "a->b");
        assert!(m.flush_second(&names).is_empty(), "a quiet second emits nothing");
        m.count("sent", Label::Pair(0, 1), 2);
        assert_eq!(m.total("sent", Label::Pair(0, 1)).unwrap().count, 5);
        assert_eq!(m.total("rtt_ms", Label::Node(1)).unwrap().count, 5);
    }

    /// A name is a series by its text: the same text at two addresses (two crates' copies of
    /// a constant) counts into one series, listed once.
    #[test]
    fn one_series_per_name_whatever_its_address() {
        let names = vec!["a".to_string()];
        let copy: &'static str = String::from("sent").leak();
        assert_ne!(copy.as_ptr(), "sent".as_ptr());
        let mut m = Metrics::default();
        m.count("sent", Label::Node(0), 2);
        m.count(copy, Label::Node(0), 3);
        m.count("sent", Label::None, 1);
        assert_eq!(m.total(copy, Label::Node(0)).unwrap().count, 5);
        let rows: Vec<_> = m.flush_second(&names).iter().collect();
        assert_eq!(rows.iter().map(|r| (&*r.label, r.count)).collect::<Vec<_>>(), [("", 1), ("a", 5)]);
        assert_eq!(m.totals().count(), 2);
    }

    /// A long run keeps every second's rows: seconds with the same active series share one
    /// list of names instead of a copy each.
    #[test]
    fn seconds_with_the_same_series_share_their_names() {
        let names = vec!["a".to_string()];
        let mut m = Metrics::default();
        let second = |m: &mut Metrics, with_rtt: bool| {
            m.count("sent", Label::Node(0), 1);
            if with_rtt {
                m.observe("rtt_ms", Label::Node(0), 2.0);
            }
            m.flush_second(&names)
        };
        let (s0, s1, s2, s3) =
            (second(&mut m, true), second(&mut m, true), second(&mut m, false), second(&mut m, true));
        assert!(Arc::ptr_eq(s0.names(), s1.names()));
        assert!(!Arc::ptr_eq(s1.names(), s2.names()));
        assert!(Arc::ptr_eq(s0.names(), s3.names()), "not only consecutive seconds share");
        assert_eq!(s2.iter().map(|r| r.metric).collect::<Vec<_>>(), [Arc::from("sent")]);
        let rtt = s1.iter().next().unwrap();
        assert_eq!((&*rtt.metric, rtt.count, rtt.dist.unwrap().p99), ("rtt_ms", 1, 2.0));
    }

    #[test]
    #[should_panic(expected = "both as counter and distribution")]
    fn kinds_do_not_mix() {
        let mut m = Metrics::default();
        m.count("x", Label::None, 1);
        m.observe("x", Label::None, 1.0);
    }
}
