//! Which events the list shows, and how one event reads on one line.

use models::trace::{Event, TraceKind};

/// `f` takes words: a word that names a node keeps that node's events; any other word keeps
/// the kinds that start with it (`raft` keeps `raft_campaign`, `raft_leader_elected`, ...).
/// Node words and kind words combine with "and"; words of one sort with "or".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub text: String,
    nodes: Vec<u32>,
    kinds: Vec<String>,
}

impl Filter {
    pub fn parse(text: &str, names: &[String]) -> Filter {
        let mut f = Filter { text: text.trim().to_string(), ..Filter::default() };
        for word in text.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()) {
            match names.iter().position(|n| n == word) {
                Some(i) => f.nodes.push(i as u32),
                None => f.kinds.push(word.to_ascii_lowercase()),
            }
        }
        f
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.kinds.is_empty()
    }

    pub fn matches(&self, ev: &Event) -> bool {
        let node_ok = self.nodes.is_empty() || ev.node.is_some_and(|n| self.nodes.contains(&n.0));
        let kind_ok = self.kinds.is_empty() || self.kinds.iter().any(|k| ev.kind.name().starts_with(k.as_str()));
        node_ok && kind_ok
    }
}

fn name(names: &[String], n: u32) -> &str {
    names.get(n as usize).map_or("?", String::as_str)
}

/// What the kind says beyond its name, in a few words.
pub fn summary(ev: &Event, names: &[String]) -> String {
    match &ev.kind {
        TraceKind::RunStarted { scenario, seed, nodes, .. } => {
            format!("{scenario}, seed {seed}, {} nodes", nodes.len())
        }
        TraceKind::FaultStarted { fault, detail, .. } => format!("#{fault} {detail}"),
        TraceKind::FaultHealed { fault, fault_kind } => format!("#{fault} {fault_kind} healed"),
        TraceKind::Flapped { fault, down } => format!("#{fault} {}", if *down { "down" } else { "up" }),
        TraceKind::NodeRestarted { incarnation } => format!("incarnation {incarnation}"),
        TraceKind::MessageSent { to, msg, bytes, .. } => format!("{msg} -> {} {bytes} B", name(names, to.0)),
        TraceKind::MessageDropped { from, to, msg, reason, via } => {
            let via = via.as_ref().map(|v| format!(" via {v}")).unwrap_or_default();
            format!("{msg} {}->{} {}{via}", name(names, from.0), name(names, to.0), reason.as_str())
        }
        TraceKind::DiskFailed { op, error } => format!("{op:?} {error:?}").to_lowercase(),
        TraceKind::Metrics { second, rows } => format!("second {second}: {} series", rows.len()),
        TraceKind::InvariantViolated { checker, detail } => format!("{checker}: {detail}"),
        TraceKind::OperatorAction { action } => action.clone(),
        TraceKind::RaftCampaign { term, pre_vote, transfer } => format!(
            "{}term {term}{}",
            if *pre_vote { "pre-vote for " } else { "" },
            if *transfer { " (transfer)" } else { "" }
        ),
        TraceKind::RaftLeaderElected { term, last_index, .. } => format!("term {term}, last index {last_index}"),
        TraceKind::RaftSteppedDown { term, reason } => format!("term {term}: {reason}"),
        TraceKind::EtcdApplied { index, term, .. } => format!("index {index} term {term}"),
        TraceKind::RaftTermShown { term } => format!("term {term}"),
        TraceKind::RaftVoteGranted { term, candidate } => format!("term {term} for {}", name(names, candidate.0)),
        TraceKind::EtcdWritesResumed { unavailable_ms } => format!("after {unavailable_ms:.1} ms"),
        TraceKind::EtcdHalted { reason } => reason.clone(),
        TraceKind::LockHeld { key, until_ns, .. } => format!("{key} until {}", crate::tui::timefmt::clock(*until_ns)),
        TraceKind::LockLost { key, reason } => format!("{key}: {reason}"),
        TraceKind::PgRole { cluster, role, tli, upstream, .. } => {
            let up = upstream.map(|u| format!(" of {}", name(names, u.0))).unwrap_or_default();
            format!("{cluster}: {role}{up} on timeline {tli}")
        }
        TraceKind::PgPromoted { cluster, tli, switch_lsn, accept_data_loss, .. } => format!(
            "{cluster}: timeline {tli} from LSN {switch_lsn}{}",
            if *accept_data_loss { " (data loss accepted)" } else { "" }
        ),
        TraceKind::PgCommitsAcked { level, count, first_lsn, .. } => format!("{count} x {level} from LSN {first_lsn}"),
        TraceKind::PgReplication { cluster, peer, state } => format!("{cluster}: {} {state}", name(names, peer.0)),
        TraceKind::PgSyncStandbyNames { cluster, server, num_sync, names } => {
            format!("{cluster}: {server} synchronous_standby_names '{num_sync} ({})'", names.join(", "))
        }
        TraceKind::StolonFailover { cluster, old_master, new_master, forced, .. } => {
            format!("{cluster}: {old_master} -> {new_master}{}", if *forced { " (forced)" } else { "" })
        }
        TraceKind::StolonKeeperRead { keeper, generation, follow, .. } => {
            let role = follow.as_ref().map(|f| format!(": follow {f}")).unwrap_or_default();
            format!("{keeper} read gen {generation}{role}")
        }
        TraceKind::RaftLogTruncated { index, term } => format!("from index {index} (term {term})"),
        TraceKind::KvInvoked { op, part, key, write, .. } => {
            format!("#{op}.{part} {} {key}", if *write { "write" } else { "read" })
        }
        TraceKind::KvReturned { op, part, outcome, .. } => format!("#{op}.{part} {outcome:?}").to_lowercase(),
        TraceKind::PgRebuild { method, phase, seconds, .. } => format!("{method} {phase} ({seconds:.0} s)"),
        TraceKind::PgPanic { reason } => reason.clone(),
        TraceKind::Stolon { cluster, what, keeper, reason } => {
            let k = keeper.as_ref().map(|k| format!(" {k}")).unwrap_or_default();
            format!("{cluster}: {what}{k}: {reason}")
        }
        TraceKind::HaproxyServer { backend, server, state, sessions_cut } => {
            format!("{backend}/{} {state} ({sessions_cut} sessions cut)", name(names, server.0))
        }
        TraceKind::ClientRoute { request, to, reason } => format!("{request} -> {}: {reason}", name(names, to.0)),
        TraceKind::RunFinished { .. } | TraceKind::NodeCrashed | TraceKind::NodePaused | TraceKind::NodeResumed => {
            String::new()
        }
    }
}

/// The list row and what `/` searches: time, node, kind, summary.
pub fn line(ev: &Event, names: &[String]) -> String {
    let node = ev.node.map_or("", |n| name(names, n.0));
    format!("{} {:<6} {} {}", crate::tui::timefmt::clock(ev.t_ns), node, ev.kind.name(), summary(ev, names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::NodeRef;

    #[test]
    fn filter_words_are_nodes_or_kind_prefixes() {
        let names = vec!["e1".to_string(), "e2".to_string()];
        let ev = |node: u32, kind| Event { seq: 0, t_ns: 0, node: Some(NodeRef(node)), kind };
        let crash1 = ev(0, TraceKind::NodeCrashed);
        let campaign2 = ev(1, TraceKind::RaftCampaign { term: 3, pre_vote: false, transfer: false });
        let f = Filter::parse("raft", &names);
        assert!(!f.matches(&crash1) && f.matches(&campaign2));
        let f = Filter::parse("e1, node_crashed raft_c", &names);
        assert!(f.matches(&crash1) && !f.matches(&campaign2), "node and kind words combine with and");
        let f = Filter::parse("e1 e2", &names);
        assert!(f.matches(&crash1) && f.matches(&campaign2));
        assert!(Filter::parse("  ", &names).is_empty());
    }

    #[test]
    fn a_line_reads_time_node_kind_and_summary() {
        let names = vec!["p1".to_string(), "l2".to_string()];
        let ev = Event {
            seq: 9,
            t_ns: 61_500_000_000,
            node: Some(NodeRef(1)),
            kind: TraceKind::MessageDropped {
                from: NodeRef(1),
                to: NodeRef(0),
                msg: "ping".into(),
                reason: models::trace::DropReason::SwitchDegraded,
                via: Some("pdx-core".into()),
            },
        };
        assert_eq!(line(&ev, &names), "01:01.500 l2     message_dropped ping l2->p1 switch_degraded via pdx-core");
    }
}
