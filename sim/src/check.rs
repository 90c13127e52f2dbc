//! Checkers consume the trace live, event by event, and report violated invariants.

use std::collections::BTreeMap;

use models::trace::{Event, TraceKind};

pub trait Checker {
    fn name(&self) -> &'static str;
    /// A description of the violation, if `ev` breaks the invariant.
    fn on_event(&mut self, ev: &Event) -> Option<String>;
}

/// Lifecycle well-formedness: faults heal only after they start, and at most once; a node is
/// restarted only after a crash, resumed only after a pause, and never crashes twice in a row.
#[derive(Default)]
pub struct Lifecycle {
    faults: BTreeMap<u32, bool>,
    nodes: BTreeMap<u32, &'static str>,
}

impl Checker for Lifecycle {
    fn name(&self) -> &'static str {
        "lifecycle"
    }

    fn on_event(&mut self, ev: &Event) -> Option<String> {
        let node = ev.node.map(|n| n.0);
        match &ev.kind {
            TraceKind::FaultStarted { fault, .. } => {
                (self.faults.insert(*fault, true).is_some()).then(|| format!("fault {fault} started twice"))
            }
            TraceKind::FaultHealed { fault, .. } => match self.faults.insert(*fault, false) {
                Some(true) => None,
                _ => Some(format!("fault {fault} healed without being active")),
            },
            TraceKind::NodeCrashed => self.transition(node?, &["up", "paused"], "down"),
            TraceKind::NodeRestarted { .. } => self.transition(node?, &["down"], "up"),
            TraceKind::NodePaused => self.transition(node?, &["up"], "paused"),
            TraceKind::NodeResumed => self.transition(node?, &["paused"], "up"),
            _ => None,
        }
    }
}

impl Lifecycle {
    fn transition(&mut self, node: u32, from: &[&str], to: &'static str) -> Option<String> {
        let state = self.nodes.entry(node).or_insert("up");
        if !from.contains(state) {
            return Some(format!("node {node} went {state} -> {to}"));
        }
        *state = to;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::NodeRef;

    fn ev(node: u32, kind: TraceKind) -> Event {
        Event { seq: 0, t_ns: 0, node: Some(NodeRef(node)), kind }
    }

    #[test]
    fn flags_restart_without_crash_and_double_heal() {
        let mut c = Lifecycle::default();
        assert_eq!(c.on_event(&ev(1, TraceKind::NodeCrashed)), None);
        assert_eq!(c.on_event(&ev(1, TraceKind::NodeRestarted { incarnation: 1 })), None);
        assert!(c.on_event(&ev(1, TraceKind::NodeRestarted { incarnation: 2 })).is_some());
        let start = TraceKind::FaultStarted { fault: 0, fault_kind: "x".into(), detail: String::new() };
        let heal = TraceKind::FaultHealed { fault: 0, fault_kind: "x".into() };
        assert_eq!(c.on_event(&ev(0, start)), None);
        assert_eq!(c.on_event(&ev(0, heal.clone())), None);
        assert!(c.on_event(&ev(0, heal)).is_some());
    }
}
