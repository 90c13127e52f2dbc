//! Scenario files: the TOML schema, units, validation and diagnostics that point at
//! `file:line:column`. Nothing here runs a simulation.

pub mod bounds;
pub mod components;
pub mod diag;
mod faults;
mod include;
pub mod lint;
pub mod model;
pub mod postgres;
mod raw;
pub mod render;
pub mod spec_patch;
pub mod stack;
mod stack_nodes;
pub mod swarm;
pub mod units;
mod validate;

pub use components::{Action, ActionKind, EtcdSpec, SimSwitches, WriterSpec};
pub use diag::Diagnostic;
pub use faults::{kind_names, switch_ports};
pub use model::*;
pub use postgres::{ClusterSpec, PgNodeSpec, PgSettings, PhaseSpec};
pub use spec_patch::SpecPatch;
pub use stack::{HaproxySpec, PgbouncerSpec, RetrySpec, SpikeSpec, StackRole, StolonSpec, TenantSpec, WorkloadSpec};
pub use swarm::SwarmSpec;
pub use validate::parse_str;

/// Reads and validates a scenario file (and the files it includes).
pub fn load(path: &std::path::Path) -> Result<Scenario, Diagnostic> {
    load_with_source(path).map(|(sc, _)| sc)
}

/// The scenario and the text it was built from (merged, when it includes another file): a
/// run's output folder keeps this text so the run can be replayed from the folder alone.
pub fn load_with_source(path: &std::path::Path) -> Result<(Scenario, String), Diagnostic> {
    load_checked(path, |_| None)
}

/// As [`load_with_source`], and checks every `[[assert]] metric` against the shape of the
/// summary a run of this scenario writes, which only the simulator knows (`shape_of`).
pub fn load_checked(
    path: &std::path::Path,
    shape_of: impl FnOnce(&Scenario) -> Option<lint::Shape>,
) -> Result<(Scenario, String), Diagnostic> {
    let src = include::assemble(path)?;
    let shown = path.display().to_string();
    let sc = parse_str(&shown, &src.text).map_err(|d| src.remap(d))?;
    if let Some(shape) = shape_of(&sc) {
        lint::metric_paths(&shown, &src.text, &shape).map_err(|d| src.remap(d))?;
    }
    Ok((sc, src.text))
}
