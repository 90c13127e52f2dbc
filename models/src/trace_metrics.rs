//! One second's metric rows, stored compactly: a long run keeps every second's rows (for the
//! report, the CSV and the TUI), 30-odd a second, millions over a simulated day. As plain
//! `MetricRow`s that cost 88 bytes a row; here a row costs one word plus its distribution's
//! values (one word when they are all equal, as with a single sample, else five), and
//! consecutive seconds with the same series share one list of names.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{DistStats, MetricRow};

/// (metric, label) of each row, in row order.
pub type SeriesNames = Arc<[(Arc<str>, Arc<str>)]>;

/// Flags in a row's word, above its count.
const HAS_DIST: u64 = 1 << 63;
const UNIFORM_DIST: u64 = 1 << 62;
const COUNT_MASK: u64 = UNIFORM_DIST - 1;

#[derive(Clone, Debug, Default)]
pub struct MetricRows {
    names: SeriesNames,
    /// Per row: its count with the flags, then 0, 1 or 5 words of f64 bits (min, mean, p50,
    /// p99, max).
    words: Box<[u64]>,
}

impl MetricRows {
    /// Rows for `names`, in order; `names` may be shared with other seconds.
    pub fn new(names: SeriesNames, rows: impl IntoIterator<Item = (u64, Option<DistStats>)>) -> MetricRows {
        let mut words = Vec::with_capacity(names.len());
        let mut count_rows = 0;
        for (count, dist) in rows {
            assert!(count <= COUNT_MASK, "a second's count {count} fits below the flag bits");
            count_rows += 1;
            let Some(d) = dist else {
                words.push(count);
                continue;
            };
            let values = [d.min, d.mean, d.p50, d.p99, d.max].map(f64::to_bits);
            if values.iter().all(|v| *v == values[0]) {
                words.extend([count | HAS_DIST | UNIFORM_DIST, values[0]]);
            } else {
                words.push(count | HAS_DIST);
                words.extend(values);
            }
        }
        assert_eq!(count_rows, names.len(), "one row per name");
        MetricRows { names, words: words.into_boxed_slice() }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
    pub fn names(&self) -> &SeriesNames {
        &self.names
    }

    /// The rows, decoded (their names are shared, not copied).
    pub fn iter(&self) -> Iter<'_> {
        Iter { rows: self, row: 0, word: 0 }
    }
}

/// Decodes rows in order.
pub struct Iter<'a> {
    rows: &'a MetricRows,
    row: usize,
    word: usize,
}

impl Iterator for Iter<'_> {
    type Item = MetricRow;

    fn next(&mut self) -> Option<MetricRow> {
        let (metric, label) = self.rows.names.get(self.row)?;
        let words = &self.rows.words;
        let word = words[self.word];
        self.row += 1;
        self.word += 1;
        let dist = (word & HAS_DIST != 0).then(|| {
            let n = if word & UNIFORM_DIST != 0 { 1 } else { 5 };
            let v = |i: usize| f64::from_bits(words[self.word + i.min(n - 1)]);
            let d = DistStats { min: v(0), mean: v(1), p50: v(2), p99: v(3), max: v(4) };
            self.word += n;
            d
        });
        Some(MetricRow { metric: metric.clone(), label: label.clone(), count: word & COUNT_MASK, dist })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.rows.len() - self.row;
        (left, Some(left))
    }
}

impl<'a> IntoIterator for &'a MetricRows {
    type Item = MetricRow;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<Vec<MetricRow>> for MetricRows {
    fn from(rows: Vec<MetricRow>) -> MetricRows {
        let names: SeriesNames = rows.iter().map(|r| (r.metric.clone(), r.label.clone())).collect();
        MetricRows::new(names, rows.into_iter().map(|r| (r.count, r.dist)))
    }
}

impl PartialEq for MetricRows {
    fn eq(&self, other: &MetricRows) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Serialize for MetricRows {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for MetricRows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MetricRows, D::Error> {
        Vec::<MetricRow>::deserialize(d).map(MetricRows::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metric: &str, count: u64, dist: Option<DistStats>) -> MetricRow {
        MetricRow { metric: metric.into(), label: "a".into(), count, dist }
    }

    #[test]
    fn rows_round_trip_through_the_packed_form_and_json() {
        let d = |min: f64, max: f64| DistStats { min, mean: (min + max) / 2.0, p50: min, p99: max, max };
        let rows = vec![
            row("sent", 7, None),
            row("rtt_ms", 1, Some(d(2.5, 2.5))),
            row("lag_s", 4, Some(d(0.1, 9.0))),
            row("big", COUNT_MASK, None),
            row("nan", 2, Some(DistStats { min: f64::NAN, mean: 1.0, p50: 1.0, p99: 1.0, max: 1.0 })),
        ];
        let packed = MetricRows::from(rows.clone());
        assert_eq!(packed.len(), 5);
        let back: Vec<MetricRow> = packed.iter().collect();
        assert_eq!(format!("{back:?}"), format!("{rows:?}"));
        assert_eq!(packed.words.len(), 5 + 1 + 5 + 5, "a uniform distribution takes one word");
        assert_eq!(serde_json::to_string(&packed).unwrap(), serde_json::to_string(&rows).unwrap());
        let parsed: MetricRows = serde_json::from_str(&serde_json::to_string(&rows[..3]).unwrap()).unwrap();
        assert_eq!(parsed, MetricRows::from(rows[..3].to_vec()));
    }

    #[test]
    #[should_panic(expected = "fits below the flag bits")]
    fn counts_reaching_the_flags_are_refused() {
        let _ = MetricRows::from(vec![row("x", COUNT_MASK + 1, None)]);
    }
}
