//! What `--seeds` and `--shard` select, and the replay command of one run.

use std::fmt;

/// Seeds `first..=last` (never empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub first: u64,
    pub last: u64,
}

impl SeedRange {
    pub fn single(seed: u64) -> SeedRange {
        SeedRange { first: seed, last: seed }
    }

    /// How many seeds (u128: `0..=u64::MAX` has 2^64).
    pub fn count(&self) -> u128 {
        (self.last - self.first) as u128 + 1
    }
}

/// `A..B` (B excluded), `A..=B` (B included) or a single seed `N`.
pub fn parse_seeds(s: &str) -> Result<SeedRange, String> {
    let number = |t: &str| -> Result<u64, String> {
        t.trim().parse::<u64>().map_err(|_| {
            format!("expected A..B (B excluded), A..=B (B included) or one seed, e.g. 0..100; {t:?} is not a seed")
        })
    };
    if let Some((a, b)) = s.split_once("..=") {
        let (first, last) = (number(a)?, number(b)?);
        if last < first {
            return Err(format!("empty seed range {s}: {last} is below {first}"));
        }
        Ok(SeedRange { first, last })
    } else if let Some((a, b)) = s.split_once("..") {
        let (first, end) = (number(a)?, number(b)?);
        if end <= first {
            return Err(format!("empty seed range {s}: A..B runs A up to B-1, so B must be greater than A"));
        }
        Ok(SeedRange { first, last: end - 1 })
    } else {
        Ok(SeedRange::single(number(s)?))
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else if self.last == u64::MAX {
            write!(f, "{}..={}", self.first, self.last)
        } else {
            write!(f, "{}..{}", self.first, self.last + 1)
        }
    }
}

/// `I/N`: this process runs the seeds at positions `p` (0-based, in range order) with
/// `p % N == I`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

pub const ALL: Shard = Shard { index: 0, count: 1 };

pub fn parse_shard(s: &str) -> Result<Shard, String> {
    let usage = || format!("expected I/N with 0 <= I < N (I is 0-based), e.g. 0/4; got {s:?}");
    let (i, n) = s.split_once('/').ok_or_else(usage)?;
    let index: u64 = i.trim().parse().map_err(|_| usage())?;
    let count: u64 = n.trim().parse().map_err(|_| usage())?;
    if count == 0 {
        return Err(format!("shard {s}: N must be at least 1"));
    }
    if index >= count {
        return Err(format!(
            "shard {s}: I must be below N; the {count} shards are 0/{count} to {}/{count} (0-based)",
            count - 1
        ));
    }
    Ok(Shard { index, count })
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// How many of `range`'s seeds fall to this shard.
    pub fn count_in(&self, range: SeedRange) -> u128 {
        let (len, i, n) = (range.count(), self.index as u128, self.count as u128);
        if i >= len { 0 } else { (len - i - 1) / n + 1 }
    }

    /// This shard's seeds of `range`, in order.
    pub fn seeds(&self, range: SeedRange) -> impl Iterator<Item = u64> {
        let (first, step) = (range.first as u128, self.count as u128);
        (0..self.count_in(range)).map(move |k| (first + self.index as u128 + k * step) as u64)
    }
}

/// `s` quoted for a POSIX shell, unchanged when it needs no quoting.
pub fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./+,:=@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) { s.to_string() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// The command that reproduces one run of a check.
pub fn replay(file: &str, seed: u64, extra: &str) -> String {
    format!("pgsim run {} --seed {seed}{extra}", shell_quote(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_half_open_inclusive_and_single() {
        assert_eq!(parse_seeds("0..50"), Ok(SeedRange { first: 0, last: 49 }));
        assert_eq!(parse_seeds("3..=5"), Ok(SeedRange { first: 3, last: 5 }));
        assert_eq!(parse_seeds("7"), Ok(SeedRange::single(7)));
        assert_eq!(parse_seeds("0..=18446744073709551615").unwrap().count(), 1u128 << 64);
        assert!(parse_seeds("5..2").unwrap_err().contains("empty seed range"));
        assert!(parse_seeds("5..5").is_err());
        assert!(parse_seeds("5..=4").is_err());
        assert!(parse_seeds("a..4").is_err());
        assert!(parse_seeds("-1").is_err());
        assert!(parse_seeds("").is_err());
        assert_eq!(parse_seeds("0..50").unwrap().to_string(), "0..50");
        assert_eq!(parse_seeds("4..=4").unwrap().to_string(), "4");
    }

    #[test]
    fn shards_split_positions_modulo_n() {
        assert!(parse_shard("4/4").unwrap_err().contains("I must be below N"));
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("1").is_err());
        assert!(parse_shard("x/2").is_err());
        let range = parse_seeds("10..17").unwrap();
        let s0: Vec<u64> = parse_shard("0/3").unwrap().seeds(range).collect();
        let s1: Vec<u64> = parse_shard("1/3").unwrap().seeds(range).collect();
        let s2: Vec<u64> = parse_shard("2/3").unwrap().seeds(range).collect();
        assert_eq!((s0, s1, s2), (vec![10, 13, 16], vec![11, 14], vec![12, 15]));
        assert_eq!(parse_shard("5/8").unwrap().count_in(range), 1);
        assert_eq!(parse_shard("7/8").unwrap().count_in(range), 0);
        assert_eq!(ALL.seeds(SeedRange::single(9)).collect::<Vec<_>>(), [9]);
        let top = SeedRange { first: u64::MAX - 1, last: u64::MAX };
        assert_eq!(ALL.seeds(top).collect::<Vec<_>>(), [u64::MAX - 1, u64::MAX]);
    }

    #[test]
    fn replay_quotes_only_what_needs_it() {
        assert_eq!(replay("scenarios/a.toml", 3, ""), "pgsim run scenarios/a.toml --seed 3");
        assert_eq!(replay("my dir/it's.toml", 3, ""), r"pgsim run 'my dir/it'\''s.toml' --seed 3");
    }
}
