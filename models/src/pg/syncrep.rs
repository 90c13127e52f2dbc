//! `synchronous_standby_names` in PostgreSQL's syntax, and which LSN its standbys have
//! confirmed.
//!
//! Grammar (PostgreSQL docs, runtime-config-replication): `FIRST n (s1, s2, ...)` (priority),
//! `ANY n (s1, s2, ...)` (quorum), a bare list `s1, s2` (= `FIRST 1 (s1, s2)`), `n (list)`
//! (= FIRST), names may be double-quoted, `*` matches any standby. Empty: no synchronous
//! replication.

use super::Lsn;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncMethod {
    First,
    Any,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncStandbyNames {
    pub method: SyncMethod,
    pub num_sync: usize,
    pub names: Vec<String>,
}

impl SyncStandbyNames {
    /// Parses the setting; `Ok(None)` for an empty value (asynchronous replication).
    pub fn parse(s: &str) -> Result<Option<SyncStandbyNames>, String> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(None);
        }
        let upper = t.to_ascii_uppercase();
        let (method, rest) = if upper.starts_with("FIRST ") {
            (SyncMethod::First, t[6..].trim())
        } else if upper.starts_with("ANY ") {
            (SyncMethod::Any, t[4..].trim())
        } else {
            (SyncMethod::First, t)
        };
        let (num_sync, list) = match rest.find('(') {
            Some(open) => {
                let n = rest[..open].trim();
                let num: usize = n
                    .parse()
                    .map_err(|_| format!("expected a number of synchronous standbys before '(', got {n:?}"))?;
                let close = rest.rfind(')').ok_or("missing ')'")?;
                if !rest[close + 1..].trim().is_empty() {
                    return Err(format!("unexpected text after ')': {:?}", &rest[close + 1..]));
                }
                (num, &rest[open + 1..close])
            }
            None if method == SyncMethod::Any || upper.starts_with("FIRST ") => {
                return Err("FIRST and ANY need a number and a parenthesised list, e.g. FIRST 1 (s1, s2)".into());
            }
            None => (1, rest),
        };
        let names: Vec<String> =
            list.split(',').map(|n| n.trim().trim_matches('"').to_string()).filter(|n| !n.is_empty()).collect();
        if names.is_empty() {
            return Err("the list of standby names is empty".into());
        }
        if num_sync == 0 {
            return Err("the number of synchronous standbys must be at least 1".into());
        }
        if num_sync > names.len() && !names.iter().any(|n| n == "*") {
            return Err(format!("{num_sync} synchronous standbys requested but only {} named", names.len()));
        }
        Ok(Some(SyncStandbyNames { method, num_sync, names }))
    }

    fn priority(&self, standby: &str) -> Option<usize> {
        self.names.iter().position(|n| n == standby || n == "*")
    }

    /// The LSN up to which the required standbys have confirmed, given each connected
    /// standby's confirmed position for the commit level (write, flush or replay); `None` if
    /// too few are connected: commits wait.
    pub fn synced_lsn(&self, standbys: &[(&str, Lsn)]) -> Option<Lsn> {
        let mut candidates: Vec<(usize, Lsn)> =
            standbys.iter().filter_map(|(name, lsn)| self.priority(name).map(|p| (p, *lsn))).collect();
        if candidates.len() < self.num_sync {
            return None;
        }
        match self.method {
            // The num_sync highest-priority connected standbys all must have it.
            SyncMethod::First => {
                candidates.sort_by_key(|(p, _)| *p);
                candidates[..self.num_sync].iter().map(|(_, l)| *l).min()
            }
            // Any num_sync of them: the num_sync-th highest position.
            SyncMethod::Any => {
                let mut lsns: Vec<Lsn> = candidates.iter().map(|(_, l)| *l).collect();
                lsns.sort_unstable_by(|a, b| b.cmp(a));
                Some(lsns[self.num_sync - 1])
            }
        }
    }

    /// Whether `standby` is currently one of the synchronous ones (for Stolon and reports).
    pub fn is_sync(&self, standby: &str, connected: &[&str]) -> bool {
        match self.method {
            SyncMethod::Any => self.priority(standby).is_some(),
            SyncMethod::First => {
                let mut ranked: Vec<(usize, &str)> =
                    connected.iter().filter_map(|c| self.priority(c).map(|p| (p, *c))).collect();
                ranked.sort();
                ranked.iter().take(self.num_sync).any(|(_, c)| *c == standby)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> SyncStandbyNames {
        SyncStandbyNames::parse(s).unwrap().unwrap()
    }

    #[test]
    fn parses_the_real_syntax() {
        assert_eq!(SyncStandbyNames::parse("  ").unwrap(), None);
        assert_eq!(
            p("FIRST 2 (s1, s2, s3)"),
            SyncStandbyNames {
                method: SyncMethod::First,
                num_sync: 2,
                names: vec!["s1".into(), "s2".into(), "s3".into()]
            }
        );
        assert_eq!(p("any 1 (\"s1\", s2)").method, SyncMethod::Any);
        assert_eq!(
            p("s1, s2"),
            SyncStandbyNames { method: SyncMethod::First, num_sync: 1, names: vec!["s1".into(), "s2".into()] }
        );
        assert_eq!(p("2 (a, b)").num_sync, 2);
        assert!(SyncStandbyNames::parse("FIRST (s1)").is_err());
        assert!(SyncStandbyNames::parse("ANY 3 (s1, s2)").is_err());
        assert!(SyncStandbyNames::parse("FIRST 1 (s1) junk").is_err());
        assert!(SyncStandbyNames::parse("FIRST 0 (s1)").is_err());
    }

    /// PostgreSQL's grammar allows a bare list only without FIRST or ANY: `ANY 1 s1` and
    /// `FIRST 2 s1, s2` are syntax errors, not one standby named "1 s1".
    #[test]
    fn first_and_any_need_a_parenthesised_list() {
        for bad in ["ANY 1 s1", "any 2 s1, s2", "FIRST 1 s1", "first 2 s1, s2"] {
            assert!(SyncStandbyNames::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn first_waits_for_the_highest_priority_connected() {
        let s = p("FIRST 1 (s1, s2)");
        assert_eq!(s.synced_lsn(&[("s1", 100), ("s2", 500)]), Some(100), "s1 has priority even if behind");
        assert_eq!(s.synced_lsn(&[("s2", 500)]), Some(500), "s2 steps in when s1 is gone");
        assert_eq!(s.synced_lsn(&[("s3", 900)]), None, "an unnamed standby does not count: commits wait");
        let two = p("FIRST 2 (s1, s2, s3)");
        assert_eq!(two.synced_lsn(&[("s1", 300), ("s3", 200), ("s2", 100)]), Some(100));
        assert!(two.is_sync("s2", &["s1", "s2", "s3"]) && !two.is_sync("s3", &["s1", "s2", "s3"]));
    }

    #[test]
    fn any_takes_the_quorum_position() {
        let s = p("ANY 2 (s1, s2, s3)");
        assert_eq!(s.synced_lsn(&[("s1", 100), ("s2", 300), ("s3", 200)]), Some(200));
        assert_eq!(s.synced_lsn(&[("s1", 100)]), None);
        let star = p("ANY 1 (*)");
        assert_eq!(star.synced_lsn(&[("x", 7)]), Some(7));
    }
}
