//! The trace recorder: numbers events, feeds the live checkers, and keeps a stable 64-bit hash
//! over the exact bytes `events.jsonl` will contain.

use models::trace::{Event, NodeNamesGuard, NodeRef, TraceKind, install_node_names};
use models::{NodeId, SimTime};

use crate::check::Checker;

/// FNV-1a, 64 bit: stable across platforms and versions of Rust, unlike `DefaultHasher`.
#[derive(Clone, Copy)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(models::hash::FNV1A64_OFFSET)
    }
}

impl Fnv64 {
    pub fn write(&mut self, bytes: &[u8]) {
        self.0 = models::hash::fnv1a64_extend(self.0, bytes);
    }
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// What the default trace leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Detail {
    /// Significant events and per-second metrics.
    #[default]
    Default,
    /// Also every message sent.
    Messages,
}

pub struct Trace {
    pub events: Vec<Event>,
    pub detail: Detail,
    hash: Fnv64,
    line: Vec<u8>,
    checkers: Vec<Box<dyn Checker>>,
    /// (checker, detail) of every violation so far.
    pub violations: Vec<(String, String)>,
    _names: NodeNamesGuard,
}

impl Trace {
    pub fn new(node_names: &[String], detail: Detail, checkers: Vec<Box<dyn Checker>>) -> Trace {
        Trace {
            events: Vec::new(),
            detail,
            hash: Fnv64::default(),
            line: Vec::with_capacity(256),
            checkers,
            violations: Vec::new(),
            _names: install_node_names(node_names),
        }
    }

    pub fn push(&mut self, at: SimTime, node: Option<NodeId>, kind: TraceKind) {
        if let Some(last) = self.events.last() {
            assert!(at.0 >= last.t_ns, "trace time went backwards: {at:?} after {}", last.t_ns);
        }
        if kind.is_detail() && self.detail != Detail::Messages {
            // Checkers still see it; the recorded trace (and its hash) does not keep it.
            let ev = Event { seq: self.events.len() as u64, t_ns: at.0, node: node.map(NodeRef), kind };
            let found = run_checkers(&mut self.checkers, &ev);
            return self.report(at, node, found);
        }
        let ev = Event { seq: self.events.len() as u64, t_ns: at.0, node: node.map(NodeRef), kind };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &ev).expect("events serialise");
        self.line.push(b'\n');
        self.hash.write(&self.line);
        self.events.push(ev);
        let found = run_checkers(&mut self.checkers, self.events.last().expect("just pushed"));
        self.report(at, node, found);
    }

    fn report(&mut self, at: SimTime, node: Option<NodeId>, found: Vec<(String, String)>) {
        for (checker, detail) in found {
            self.violations.push((checker.clone(), detail.clone()));
            self.push(at, node, TraceKind::InvariantViolated { checker, detail });
        }
    }

    /// End-of-run invariants; violations are recorded at `at`.
    pub fn finish(&mut self, at: SimTime) {
        let mut found = Vec::new();
        for c in &mut self.checkers {
            for d in c.finish(at.0) {
                found.push((c.name().to_string(), d));
            }
        }
        self.report(at, None, found);
    }

    /// Summary sections contributed by checkers.
    pub fn reports(&self) -> Vec<(&'static str, serde_json::Value)> {
        self.checkers.iter().filter_map(|c| c.report()).collect()
    }

    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }
}

fn run_checkers(checkers: &mut [Box<dyn Checker>], ev: &Event) -> Vec<(String, String)> {
    checkers.iter_mut().filter_map(|c| c.on_event(ev).map(|d| (c.name().to_string(), d))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_exact_bytes() {
        let names = vec!["a".to_string()];
        let mut t1 = Trace::new(&names, Detail::Default, vec![]);
        t1.push(SimTime(5), Some(0), TraceKind::NodeCrashed);
        let mut expected = Fnv64::default();
        expected.write(b"{\"seq\":0,\"t_ns\":5,\"node\":\"a\",\"kind\":\"node_crashed\"}\n");
        assert_eq!(t1.hash(), expected.finish());
        let mut t2 = Trace::new(&names, Detail::Default, vec![]);
        t2.push(SimTime(6), Some(0), TraceKind::NodeCrashed);
        assert_ne!(t1.hash(), t2.hash());
    }
}
