//! The `pgsim` command line (and, later, the terminal UI).

pub mod cli;
