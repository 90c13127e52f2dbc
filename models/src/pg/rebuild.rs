//! How long rebuilding a diverged server takes, by method. The three methods differ in what
//! they copy (PostgreSQL docs for pg_rewind and pg_basebackup; commit 5173bfd, "pg_rewind:
//! Skip copy of WAL segments generated before point of divergence"):
//! - `basebackup`: the whole data directory;
//! - `pg_rewind_all_wal` (before 5173bfd): the blocks changed since the last checkpoint before
//!   the divergence, plus every WAL segment the source has;
//! - `pg_rewind_from_divergence` (after): the same blocks, plus WAL only from the segment that
//!   holds the divergence point.

use super::Lsn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebuildMethod {
    Basebackup,
    PgRewindAllWal,
    PgRewindFromDivergence,
}

impl RebuildMethod {
    pub const ALL: [RebuildMethod; 3] =
        [RebuildMethod::Basebackup, RebuildMethod::PgRewindAllWal, RebuildMethod::PgRewindFromDivergence];
    pub fn as_str(self) -> &'static str {
        match self {
            RebuildMethod::Basebackup => "basebackup",
            RebuildMethod::PgRewindAllWal => "pg_rewind_all_wal",
            RebuildMethod::PgRewindFromDivergence => "pg_rewind_from_divergence",
        }
    }
    pub fn parse(s: &str) -> Option<RebuildMethod> {
        RebuildMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

pub const WAL_SEGMENT_BYTES: u64 = 16 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildInputs {
    pub database_bytes: u64,
    /// WAL the source keeps in pg_wal (retained by wal_keep_size, slots or archiving lag).
    pub source_wal_retained_bytes: u64,
    pub divergence_lsn: Lsn,
    /// The last checkpoint before the divergence (where pg_rewind starts looking for changes).
    pub checkpoint_lsn: Lsn,
    pub target_flushed: Lsn,
    pub source_flushed: Lsn,
}

/// Bytes the method copies.
pub fn bytes_to_copy(method: RebuildMethod, i: &RebuildInputs) -> u64 {
    assert!(i.checkpoint_lsn <= i.divergence_lsn, "the checkpoint precedes the divergence");
    // Blocks touched on either side since the checkpoint: WAL volume is a proxy (full-page
    // writes make it at least the changed blocks once per checkpoint).
    let changed = (i.target_flushed.saturating_sub(i.checkpoint_lsn)
        + i.source_flushed.saturating_sub(i.checkpoint_lsn))
    .min(i.database_bytes);
    match method {
        RebuildMethod::Basebackup => i.database_bytes,
        RebuildMethod::PgRewindAllWal => changed + i.source_wal_retained_bytes,
        RebuildMethod::PgRewindFromDivergence => {
            let segment_start = i.divergence_lsn / WAL_SEGMENT_BYTES * WAL_SEGMENT_BYTES;
            changed + i.source_flushed.saturating_sub(segment_start)
        }
    }
}

/// Seconds to copy at `bytes_per_s`, plus a fixed 10 s for connecting, the checkpoint on the
/// source and restarting the server.
pub fn seconds(method: RebuildMethod, i: &RebuildInputs, bytes_per_s: u64) -> f64 {
    assert!(bytes_per_s > 0);
    10.0 + bytes_to_copy(method, i) as f64 / bytes_per_s as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1_000_000_000;

    /// The 2020 incident's sizes: ~1.5 TB of WAL retained; a rebuild copying all of it took
    /// over two hours, one copying from the divergence about five minutes.
    #[test]
    fn the_seed_talks_sizes_give_hours_versus_minutes() {
        let i = RebuildInputs {
            database_bytes: 2_000 * GB,
            source_wal_retained_bytes: 1_500 * GB,
            divergence_lsn: 5_000 * GB,
            checkpoint_lsn: 5_000 * GB - 20 * GB,
            target_flushed: 5_000 * GB + 2 * GB,
            source_flushed: 5_000 * GB + 10 * GB,
        };
        let rate = 200_000_000; // 200 MB/s, a rsync over a 10 Gbit/s link with disks in the way
        let base = seconds(RebuildMethod::Basebackup, &i, rate);
        let all = seconds(RebuildMethod::PgRewindAllWal, &i, rate);
        let from = seconds(RebuildMethod::PgRewindFromDivergence, &i, rate);
        assert!(base > 2.0 * 3600.0 && all > 2.0 * 3600.0, "hours: {base} {all}");
        assert!(from < 10.0 * 60.0, "minutes: {from}");
        // Exactly: changed = 22 + 30 = 52 GB; WAL from the divergence segment = 10 GB (+ the part
        // of the segment before the divergence point).
        let seg = i.divergence_lsn % WAL_SEGMENT_BYTES;
        assert_eq!(bytes_to_copy(RebuildMethod::PgRewindFromDivergence, &i), 52 * GB + 10 * GB + seg);
        assert_eq!(bytes_to_copy(RebuildMethod::PgRewindAllWal, &i), 52 * GB + 1_500 * GB);
        assert_eq!(bytes_to_copy(RebuildMethod::Basebackup, &i), 2_000 * GB);
    }

    #[test]
    fn changed_blocks_never_exceed_the_database() {
        let i = RebuildInputs {
            database_bytes: GB,
            source_wal_retained_bytes: 0,
            divergence_lsn: 100 * GB,
            checkpoint_lsn: 0,
            target_flushed: 100 * GB,
            source_flushed: 100 * GB,
        };
        assert_eq!(bytes_to_copy(RebuildMethod::PgRewindAllWal, &i), GB);
    }
}
