//! Reading each fixture figure out of a pgsim run, one module per family of cases. A module
//! answers `None` for a figure it does not know, so a figure's name is looked up in each.

use crate::RunView;

pub mod etcd;
pub mod haproxy;
pub mod pgbouncer;
pub mod postgres;

/// The figure `name` of `run`: `Some(None)` when it did not happen in that run, `None` when no
/// family knows the figure (a mistake in a compare file, reported as such).
pub fn extract(family: &str, name: &str, run: &RunView) -> Option<Option<f64>> {
    match family {
        "etcd" => etcd::extract(name, run),
        "haproxy" => haproxy::extract(name, run),
        "pgbouncer" => pgbouncer::extract(name, run),
        "postgres" => postgres::extract(name, run),
        _ => None,
    }
}
