//! The `pgsim` command line and its terminal UI.

pub mod bench;
pub mod check;
pub mod cli;
pub mod swarm;
pub mod tui;
