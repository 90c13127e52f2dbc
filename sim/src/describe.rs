//! One-line, human descriptions of faults for the trace and the terminal.

use scenarios::{Fault, FaultKind, Scope};

use crate::net::Network;

fn nodes(names: &[String], ids: &[u32]) -> String {
    ids.iter().map(|&i| names[i as usize].as_str()).collect::<Vec<_>>().join(",")
}

fn arrow(one_way: bool) -> &'static str {
    if one_way { "->" } else { "<->" }
}

pub fn fault(f: &Fault, names: &[String], net: &Network) -> String {
    let n = |i: u32| names[i as usize].as_str();
    let sw = |i: usize| net.switch_name(i as u16).to_string();
    match &f.kind {
        FaultKind::Partition { from, to, one_way } => {
            format!("partition [{}] {} [{}]", nodes(names, from), arrow(*one_way), nodes(names, to))
        }
        FaultKind::LinkDown { a, b, one_way } => format!("link {} {} {} down", n(*a), arrow(*one_way), n(*b)),
        FaultKind::LinkDegraded { a, b, one_way, loss_ratio, extra_latency, extra_jitter, duplicate_ratio } => {
            let mut s =
                format!("link {} {} {} degraded: loss {loss_ratio}, +{extra_latency:?}", n(*a), arrow(*one_way), n(*b));
            if !extra_jitter.is_zero() {
                s += &format!(", jitter {extra_jitter:?}");
            }
            if *duplicate_ratio > 0.0 {
                s += &format!(", duplicates {duplicate_ratio}");
            }
            s
        }
        FaultKind::LinkFlapping { a, b, one_way, period, down_for } => {
            format!("link {} {} {} flapping: down {down_for:?} every {period:?}", n(*a), arrow(*one_way), n(*b))
        }
        FaultKind::SwitchDown { switch } => format!("switch {} down", sw(*switch)),
        FaultKind::SwitchDegraded { switch, loss_ratio, ports } => {
            let between = if ports.is_empty() {
                "all ports".to_string()
            } else {
                ports.iter().map(|(p, q)| format!("{p}<->{q}")).collect::<Vec<_>>().join(", ")
            };
            format!("switch {} drops {loss_ratio} of packets ({between})", sw(*switch))
        }
        FaultKind::SwitchFlapping { switch, period, down_for } => {
            format!("switch {} flapping: down {down_for:?} every {period:?}", sw(*switch))
        }
        FaultKind::NodeCrash { node, scope: Scope::Host } => format!("{} crashed", n(*node)),
        FaultKind::NodeCrash { node, scope: Scope::Process } => {
            format!("{}'s process killed (its host answers RST)", n(*node))
        }
        FaultKind::NodePause { node, scope: Scope::Host } => format!("{} paused", n(*node)),
        FaultKind::NodePause { node, scope: Scope::Process } => {
            format!("{}'s process stopped (its kernel still accepts connections)", n(*node))
        }
        FaultKind::DiskStall { node } => format!("{} disk stalled", n(*node)),
        FaultKind::DiskErrors { node, error_ratio } => format!("{} disk fails {error_ratio} of I/O", n(*node)),
        FaultKind::DiskFull { node } => format!("{} disk full", n(*node)),
        FaultKind::DiskSlow { node, factor } => format!("{} disk {factor}x slower", n(*node)),
        FaultKind::ApplySlow { node, factor } => format!("{} replays WAL {factor}x slower", n(*node)),
        FaultKind::WalReceiverPause { node } => format!("{} walreceiver paused", n(*node)),
    }
}
