//! The simulator: drives the sans-IO models on madsim nodes, owns the network, the disks, the
//! fault timeline, the checkers and the trace.

pub mod bare;
pub mod build;
pub mod check;
pub mod converge;
mod describe;
pub mod disk;
pub mod engine;
pub mod failover_check;
pub mod kv_check;
pub mod metrics;
pub mod net;
pub mod pg_check;
pub mod queue;
pub mod run;
pub mod runner;
pub mod stack_summary;
pub mod summary;
pub mod swarm;
pub mod trace;
pub mod world;

pub use run::{RunOptions, RunOutput, run};
pub use trace::Detail;
