//! What a PostgreSQL server is told to do by whoever runs it on its host: the operator
//! (`pg_ctl promote`, a fence, a resync), its Stolon keeper, or the simulator acting out a
//! fault inside the process. None of it crosses the network, so it is no `PgMsg`: the host
//! hands it to `PgNode::on_command`.

use super::{RebuildMethod, SyncStandbyNames};
use crate::node::NodeId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgCommand {
    /// `pg_ctl promote`.
    Promote { accept_data_loss: bool },
    /// Stop accepting writes (fence, or shut down a demoted primary).
    Fence,
    /// Rebuild this server from `upstream`; `bytes_per_s` is the copy throughput the host
    /// derives from the path bandwidth and both disks.
    Rebuild { method: RebuildMethod, upstream: NodeId, bytes_per_s: u64 },
    /// Follow another upstream (after a failover).
    Follow { upstream: NodeId },
    /// Change `synchronous_standby_names` (and reload), as the local keeper does.
    SetSynchronousStandbyNames(Option<SyncStandbyNames>),
    /// Fault: replay runs this many thousandths as fast as normal (1000 = normal speed).
    ApplyFactor { factor_permille: u32 },
    /// Fault: the walreceiver stops (or resumes) taking WAL and sending feedback.
    PauseReceiver { paused: bool },
}

impl PgCommand {
    /// Short name for traces (a command for a host that is down is traced as dropped).
    pub fn label(&self) -> &'static str {
        match self {
            PgCommand::Promote { .. } => "promote",
            PgCommand::Fence => "fence",
            PgCommand::Rebuild { .. } => "rebuild",
            PgCommand::Follow { .. } => "follow",
            PgCommand::SetSynchronousStandbyNames(_) => "set_synchronous_standby_names",
            PgCommand::ApplyFactor { .. } => "fault_apply_factor",
            PgCommand::PauseReceiver { .. } => "fault_pause_walreceiver",
        }
    }
}
