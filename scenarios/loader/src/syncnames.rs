//! A syntax check of `synchronous_standby_names`; the full parser lives with the PostgreSQL
//! model, which this crate does not depend on, so the grammar is checked here too.

pub fn check(s: &str) -> Result<(), String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(());
    }
    let upper = t.to_ascii_uppercase();
    let explicit = upper.starts_with("FIRST ") || upper.starts_with("ANY ");
    let rest = if upper.starts_with("FIRST ") {
        &t[6..]
    } else if upper.starts_with("ANY ") {
        &t[4..]
    } else {
        t
    }
    .trim();
    let list = match rest.find('(') {
        Some(open) => {
            let n = rest[..open].trim();
            let n: usize = n.parse().map_err(|_| format!("expected a number before '(', got {n:?}"))?;
            if n == 0 {
                return Err("the number of synchronous standbys must be at least 1".into());
            }
            let close = rest.rfind(')').ok_or("missing ')'")?;
            if !rest[close + 1..].trim().is_empty() {
                return Err("unexpected text after ')'".into());
            }
            &rest[open + 1..close]
        }
        None if explicit => return Err("FIRST and ANY need a number and a list, e.g. FIRST 1 (s1, s2)".into()),
        None => rest,
    };
    if list.split(',').all(|n| n.trim().trim_matches('"').is_empty()) {
        return Err("the list of standby names is empty".into());
    }
    Ok(())
}
