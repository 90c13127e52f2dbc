//! Numeric leaves of summary.json by dotted path ("etcd.step_downs.higher_term",
//! "probe.pairs.p1->p2.rtt_ms_p99"), for the key-figures tables.

use serde_json::Value;

/// Every number in `v`, depth first in document order; array elements by index.
pub fn numeric_leaves(v: &Value) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

fn walk(v: &Value, path: String, out: &mut Vec<(String, f64)>) {
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.push((path, x));
            }
        }
        Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, join(k), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(x, join(&i.to_string()), out)),
        _ => {}
    }
}

/// A figure as it reads in a table: integers without a decimal point, others as short as
/// they round-trip (at most 6 decimals, like summary.json).
pub fn fmt_figure(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let r = (x * 1e6).round() / 1e6;
        format!("{r}")
    }
}

/// B − A, and the relative change when A is not 0.
pub fn difference(a: f64, b: f64) -> (f64, Option<f64>) {
    let d = b - a;
    (d, (a != 0.0).then(|| d / a.abs() * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaves_by_dotted_path_in_order() {
        let v = json!({"sim_seconds": 120.0, "etcd": {"max_term": 7, "leader": "e2", "step_downs": {"transfer": 1}},
                       "assertions": [{"passed": true, "n": 2}], "probe": {"pairs": {"a->b": {"loss_ratio": 0.25}}}});
        let leaves = numeric_leaves(&v);
        let keys: Vec<&str> = leaves.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sim_seconds",
                "etcd.max_term",
                "etcd.step_downs.transfer",
                "assertions.0.n",
                "probe.pairs.a->b.loss_ratio"
            ]
        );
        assert_eq!(leaves[4].1, 0.25);
    }

    #[test]
    fn figures_and_differences() {
        assert_eq!(fmt_figure(12.0), "12");
        assert_eq!(fmt_figure(0.1 + 0.2), "0.3");
        assert_eq!(difference(4.0, 5.0), (1.0, Some(25.0)));
        assert_eq!(difference(0.0, 5.0), (5.0, None));
    }
}
