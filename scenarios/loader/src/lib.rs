//! Scenario files: the TOML schema, units, validation and diagnostics that point at
//! `file:line:column`. Nothing here runs a simulation.

pub mod components;
pub mod diag;
mod faults;
pub mod model;
pub mod postgres;
mod raw;
mod syncnames;
pub mod units;
mod validate;

pub use components::{Action, ActionKind, EtcdSpec, SimSwitches, WriterSpec};
pub use diag::Diagnostic;
pub use faults::switch_ports;
pub use model::*;
pub use postgres::{ClusterSpec, PgNodeSpec, PgSettings, PhaseSpec};
pub use validate::parse_str;

/// Reads and validates a scenario file.
pub fn load(path: &std::path::Path) -> Result<Scenario, Diagnostic> {
    let shown = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| Diagnostic::whole_file(&shown, format!("cannot read scenario: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Diagnostic::whole_file(
            &shown,
            format!("scenario is not UTF-8 (invalid byte at offset {})", e.utf8_error().valid_up_to()),
        )
    })?;
    parse_str(&shown, &text)
}
