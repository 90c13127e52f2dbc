//! The scenario's key settings, read generically from its TOML: every scalar of every plain
//! table (`[etcd] election-timeout`, later `[postgres] synchronous_standby_names`) by its dotted
//! name, and a count of each array of tables (`[[node]]`: "4 (etcd 3, etcd-writer 1)"). New
//! scenario sections show up without changes here.

use toml::{Table, Value};

pub fn from_scenario_toml(src: &str) -> Vec<(String, String)> {
    let Ok(table) = toml::from_str::<Table>(src) else {
        return vec![("scenario.toml".into(), "(could not be parsed)".into())];
    };
    let mut out = Vec::new();
    // [scenario] first: it says what the run is; the rest by name.
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort_by_key(|k| (k.as_str() != "scenario", k.as_str()));
    for key in &keys {
        if let Value::Table(t) = &table[key.as_str()] {
            flatten(key, t, &mut out);
        }
    }
    for key in &keys {
        if let Value::Array(items) = &table[key.as_str()]
            && items.iter().all(Value::is_table)
        {
            out.push((format!("[[{key}]]"), count_by_kind(items)));
        }
    }
    out
}

fn flatten(prefix: &str, t: &Table, out: &mut Vec<(String, String)>) {
    for (k, v) in t {
        let name = format!("{prefix}.{k}");
        match v {
            Value::Table(inner) => flatten(&name, inner, out),
            v => out.push((name, scalar(v))),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(scalar).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn count_by_kind(items: &[Value]) -> String {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for item in items {
        let Some(kind) = item.get("kind").and_then(Value::as_str) else { continue };
        match kinds.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind.to_string(), 1)),
        }
    }
    if kinds.is_empty() {
        items.len().to_string()
    } else {
        let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!("{} ({})", items.len(), parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_tables_and_counts_arrays() {
        let src = r#"
            [network]
            jitter = "1ms"
            [scenario]
            name = "x"
            duration = "10s"
            [etcd]
            pre-vote = true
            [[node]]
            name = "a"
            kind = "etcd"
            [[node]]
            name = "b"
            kind = "etcd"
            [[node]]
            name = "w"
            kind = "etcd-writer"
            [[fault]]
            at = "1s"
            kind = "node-crash"
            node = "a"
            [[region]]
            name = "r"
        "#;
        let s = from_scenario_toml(src);
        let get = |k: &str| s.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(s[0].0, "scenario.duration", "[scenario] comes first");
        assert_eq!(get("etcd.pre-vote"), Some("true"));
        assert_eq!(get("network.jitter"), Some("1ms"));
        assert_eq!(get("[[node]]"), Some("3 (etcd 2, etcd-writer 1)"));
        assert_eq!(get("[[fault]]"), Some("1 (node-crash 1)"));
        assert_eq!(get("[[region]]"), Some("1"));
        assert_eq!(from_scenario_toml("not = [toml").len(), 1);
    }
}
