//! Sans-IO state machines for every component pgsim simulates. Nothing here reads a clock,
//! touches the network or the disk, or draws from an unseeded RNG: time, inputs and randomness
//! come in as arguments and effects go out as data.

pub mod etcd;
pub mod flow;
pub mod haproxy;
pub mod hash;
pub mod node;
pub mod pg;
pub mod pgbouncer;
pub mod planted;
pub mod probe;
pub mod raft;
pub mod rng;
pub mod stack;
pub mod stolon;
pub mod time;
pub mod trace;

pub use node::{Ctx, DiskError, DiskOp, Effect, Label, Message, Model, NodeId, ProcessDown, TimerCmd};
pub use time::SimTime;
