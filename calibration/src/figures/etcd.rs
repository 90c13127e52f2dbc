//! The etcd figures of a pgsim run (its cases are still being recorded).

use crate::RunView;

/// A figure of this family read from a run; None for a figure this family does not know.
pub fn extract(_figure: &str, _run: &RunView) -> Option<Option<f64>> {
    None
}
