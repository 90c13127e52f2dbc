//! Human units in scenario files: durations (`100ms`, `1h30m`), sizes (`64B`, `1.5TB`, `1MiB`)
//! and bandwidths (`125MB/s`, `10Gbit/s`).

use std::time::Duration;

const DURATION_UNITS: &[(&str, f64)] =
    &[("ns", 1.0), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9), ("d", 86400e9)];

const SIZE_UNITS: &[(&str, f64)] = &[
    ("B", 1.0),
    ("KB", 1e3),
    ("MB", 1e6),
    ("GB", 1e9),
    ("TB", 1e12),
    ("KiB", 1024.0),
    ("MiB", 1048576.0),
    ("GiB", 1073741824.0),
    ("TiB", 1099511627776.0),
];

/// Splits `s` into (number, unit) pairs: "1h30m" -> [(1, "h"), (30, "m")].
fn terms(s: &str) -> Result<Vec<(f64, &str)>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("expected a number at {rest:?}"));
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| format!("{:?} is not a number", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        out.push((number, &rest[..unit_len]));
        rest = &rest[unit_len..];
    }
    Ok(out)
}

fn unit_factor(table: &[(&str, f64)], unit: &str) -> Option<f64> {
    table.iter().find(|(u, _)| *u == unit).map(|(_, f)| *f)
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.starts_with('-') {
        return Err(format!("duration {s:?} is negative; durations count forwards from 0"));
    }
    let expected = "expected a duration such as \"250us\", \"100ms\", \"5s\", \"1h30m\"";
    let parts = terms(s).map_err(|e| format!("{e}; {expected}"))?;
    if parts.is_empty() {
        return Err(format!("empty duration; {expected}"));
    }
    let mut ns = 0f64;
    for (number, unit) in parts {
        let factor = unit_factor(DURATION_UNITS, unit)
            .ok_or_else(|| format!("unknown duration unit {unit:?} in {s:?}; {expected}"))?;
        ns += number * factor;
    }
    if !ns.is_finite() || ns > 1e18 {
        return Err(format!("duration {s:?} is too long (at most about 31 years)"));
    }
    Ok(Duration::from_nanos(ns.round() as u64))
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let expected = "expected a size such as \"64B\", \"16KiB\", \"1.5TB\"";
    if s.starts_with('-') {
        return Err(format!("size {s:?} is negative; {expected}"));
    }
    match terms(s).map_err(|e| format!("{e}; {expected}"))?.as_slice() {
        [(number, unit)] => {
            let factor = unit_factor(SIZE_UNITS, unit)
                .ok_or_else(|| format!("unknown size unit {unit:?} in {s:?}; {expected}"))?;
            let bytes = number * factor;
            if !bytes.is_finite() || bytes > 9.0e18 {
                return Err(format!("size {s:?} is too large"));
            }
            Ok(bytes.round() as u64)
        }
        _ => Err(format!("{s:?}: {expected}")),
    }
}

/// Bytes per second, from "125MB/s", "1GiB/s" or "10Gbit/s".
pub fn parse_bandwidth(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let expected = "expected a bandwidth such as \"125MB/s\", \"1GiB/s\" or \"10Gbit/s\"";
    let Some(per_s) = s.strip_suffix("/s") else {
        return Err(format!("{s:?} has no \"/s\"; {expected}"));
    };
    let bits = [("Tbit", 1e12), ("Gbit", 1e9), ("Mbit", 1e6), ("Kbit", 1e3), ("bit", 1.0)];
    let bytes_per_s = match bits.iter().find(|(u, _)| per_s.ends_with(u)) {
        Some((unit, factor)) => {
            let number: f64 = per_s[..per_s.len() - unit.len()].parse().map_err(|_| format!("{s:?}: {expected}"))?;
            number * factor / 8.0
        }
        None => parse_size(per_s).map_err(|e| format!("{e} (in bandwidth {s:?})"))? as f64,
    };
    if bytes_per_s < 1.0 {
        return Err(format!("bandwidth {s:?} is below 1 byte/s; {expected}"));
    }
    Ok(bytes_per_s.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0.25ms"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("5").unwrap_err().contains("unknown duration unit \"\""));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-5s").unwrap_err().contains("negative"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn sizes_and_bandwidths() {
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1.5TB"), Ok(1_500_000_000_000));
        assert_eq!(parse_size("64B"), Ok(64));
        assert!(parse_size("64").is_err());
        assert!(parse_size("1MB2KB").is_err());
        assert_eq!(parse_bandwidth("125MB/s"), Ok(125_000_000));
        assert_eq!(parse_bandwidth("10Gbit/s"), Ok(1_250_000_000));
        assert_eq!(parse_bandwidth("1GiB/s"), Ok(1 << 30));
        assert!(parse_bandwidth("10Gbit").is_err());
        assert!(parse_bandwidth("0B/s").is_err());
    }
}
