//! Simulated time as people type and read it: `14:49` (mm:ss), `1:02:03` (h:mm:ss), `+6m`,
//! `-30s`, `90s`.

const NS_PER_S: u64 = 1_000_000_000;

/// `mm:ss.mmm`, or `h:mm:ss.mmm` from one hour on.
pub fn clock(t_ns: u64) -> String {
    let ms = t_ns / 1_000_000;
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if h > 0 { format!("{h}:{m:02}:{s:02}.{milli:03}") } else { format!("{m:02}:{s:02}.{milli:03}") }
}

/// The target of `g`: absolute (`14:49`, `1:02:03.5`, `90s`) or relative to `now_ns` (`+6m`,
/// `-30s`; going before 0 stops at 0).
pub fn parse_target(text: &str, now_ns: u64) -> Result<u64, String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('+') {
        return Ok(now_ns.saturating_add(duration_ns(rest)?));
    }
    if let Some(rest) = text.strip_prefix('-') {
        return Ok(now_ns.saturating_sub(duration_ns(rest)?));
    }
    if text.contains(':') {
        return clock_ns(text);
    }
    duration_ns(text)
}

fn duration_ns(text: &str) -> Result<u64, String> {
    // A bare number means seconds.
    if let Ok(s) = text.trim().parse::<f64>() {
        return seconds_ns(s, text);
    }
    scenarios::units::parse_duration(text).map(|d| d.as_nanos() as u64)
}

fn seconds_ns(s: f64, text: &str) -> Result<u64, String> {
    if !(0.0..=1e9).contains(&s) {
        return Err(format!("{text:?} is not a time"));
    }
    Ok((s * NS_PER_S as f64).round() as u64)
}

fn clock_ns(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?}: expected mm:ss or h:mm:ss");
    let parts: Vec<&str> = text.split(':').collect();
    let (h, m, s) = match parts.as_slice() {
        [m, s] => ("0", *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return Err(bad()),
    };
    let h: u64 = h.parse().map_err(|_| bad())?;
    let m: u64 = m.parse().map_err(|_| bad())?;
    let s: f64 = s.parse().map_err(|_| bad())?;
    if (parts.len() == 3 && m >= 60) || !(0.0..60.0).contains(&s) {
        return Err(bad());
    }
    Ok((h * 3600 + m * 60) * NS_PER_S + seconds_ns(s, text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NS_PER_S;

    #[test]
    fn formats_minutes_and_hours() {
        assert_eq!(clock(0), "00:00.000");
        assert_eq!(clock(89 * S + 5_000_000), "01:29.005");
        assert_eq!(clock(3723 * S), "1:02:03.000");
    }

    #[test]
    fn parses_absolute_and_relative_targets() {
        assert_eq!(parse_target("14:49", 0), Ok((14 * 60 + 49) * S));
        assert_eq!(parse_target("1:02:03.5", 0), Ok(3723 * S + S / 2));
        assert_eq!(parse_target("90s", 7), Ok(90 * S));
        assert_eq!(parse_target("12", 7), Ok(12 * S));
        assert_eq!(parse_target("+6m", 10 * S), Ok(370 * S));
        assert_eq!(parse_target("-30s", 10 * S), Ok(0), "stops at 0");
        assert_eq!(parse_target(" -1.5s ", 10 * S), Ok(8 * S + S / 2));
        for bad in ["", "1:2:3:4", "x:10", "1:70:00", "10:61", "+", "-1q", "abc"] {
            assert!(parse_target(bad, 0).is_err(), "{bad:?} accepted");
        }
    }
}
