//! A bounded linearizability check of the etcd clients' KV history, in the manner of Wing and
//! Gong's algorithm as Porcupine and Knossos run it.
//!
//! Every key is a register of its own (linearizability is local: a history is linearizable
//! iff each object's is), whose value is a digest or absent. Each client request part is an
//! operation from its `kv_invoked` to its `kv_returned`: a write of a value (or a delete), or a
//! read that returned a value. A write whose outcome is unknown may take effect at any time
//! after its invocation, or never; one that certainly failed is left out.
//!
//! The search stays bounded. A key's history is cut into windows: once `WINDOW_OPS`
//! operations have returned, the window is searched for every linearization of its finished
//! operations and the set of values they can leave is carried over as the next window's
//! possible start. Operations still running at the cut (and writes of unknown outcome) are
//! carried as optional writes into every later window until a read returns their value. A key
//! with more than `GHOSTS_MAX` of them, or `WINDOW_OPS_MAX` operations in one window, is given up
//! on (dropping a write that may still land could raise a false alarm), and counted. Everything invoked after the cut follows everything that
//! returned before it in real time, so the cut loses no ordering: only permissiveness is added,
//! never a false alarm. A window's search visits at most `SEARCH_STEPS_MAX` states; a window
//! that needs more is not judged (counted in the report) and the next starts from unknown.

use std::collections::{BTreeMap, BTreeSet};

use models::trace::{Event, KvOutcome, TraceKind};
use serde_json::json;

use crate::check::Checker;

/// Finished operations per window.
const WINDOW_OPS: usize = 24;
/// Optional writes carried from window to window.
const GHOSTS_MAX: usize = 6;
/// Operations one window may hold (finished, running and optional): past this the key is
/// given up on.
const WINDOW_OPS_MAX: usize = 48;
/// States one window's search may visit.
const SEARCH_STEPS_MAX: u64 = 200_000;

/// What a register holds: `None` unknown, `Some(None)` absent, `Some(Some(d))` a value digest.
type Cell = Option<Option<u64>>;

#[derive(Clone, Debug, PartialEq)]
struct Op {
    /// (client node, op, part): for the report.
    id: (u32, u64, u32),
    invoked_ns: u64,
    /// `u64::MAX` while running or when its outcome is unknown.
    returned_ns: u64,
    write: bool,
    /// Written, or read (when returned).
    value: Option<u64>,
    /// May take effect or not (a write of unknown outcome, or one still running at a cut).
    optional: bool,
}

#[derive(Default)]
struct KeyHistory {
    /// The values the key may hold at the window's start; empty set: unknown.
    start: BTreeSet<Option<u64>>,
    start_unknown: bool,
    ops: Vec<Op>,
    returned: usize,
}

impl KeyHistory {
    fn fresh() -> KeyHistory {
        KeyHistory { start: BTreeSet::from([None]), ..Default::default() }
    }
}

/// The values a window can end with, or `Err(steps)` when the search ran out of steps.
fn end_states(start: &[Cell], ops: &[Op]) -> Result<BTreeSet<Cell>, u64> {
    assert!(ops.len() <= 64, "a window holds at most 64 operations");
    let required: u64 = ops.iter().enumerate().filter(|(_, o)| !o.optional).fold(0, |m, (i, _)| m | 1 << i);
    let mut seen: BTreeSet<(u64, Cell)> = BTreeSet::new();
    let mut ends = BTreeSet::new();
    let mut stack: Vec<(u64, Cell)> = start.iter().map(|c| (0u64, *c)).collect();
    let mut steps = 0u64;
    while let Some((done, cell)) = stack.pop() {
        if !seen.insert((done, cell)) {
            continue;
        }
        steps += 1;
        if steps > SEARCH_STEPS_MAX {
            return Err(steps);
        }
        if done & required == required {
            ends.insert(cell);
        }
        // An operation may go next if no unlinearized required one returned before it began.
        let horizon = (0..ops.len())
            .filter(|&i| done & 1 << i == 0 && !ops[i].optional)
            .map(|i| ops[i].returned_ns)
            .min()
            .unwrap_or(u64::MAX);
        for (i, op) in ops.iter().enumerate() {
            if done & 1 << i != 0 || op.invoked_ns > horizon {
                continue;
            }
            // A write leaves its value; a read must find the one it returned (or an unknown).
            let legal = op.write || cell.is_none() || cell == Some(op.value);
            if legal {
                stack.push((done | 1 << i, Some(op.value)));
            }
        }
    }
    Ok(ends)
}

/// The smallest sub-history (dropping one operation at a time) that still has no
/// linearization from `start`. A write whose value a remaining read returned is kept, so the
/// report shows a stale read as one, not as a read of a value nobody wrote.
fn shrink(start: &[Cell], mut ops: Vec<Op>) -> Vec<Op> {
    let mut i = 0;
    while i < ops.len() {
        let read_back = ops[i].write && ops.iter().any(|o| !o.write && o.value == ops[i].value);
        if read_back {
            i += 1;
            continue;
        }
        let mut fewer = ops.clone();
        fewer.remove(i);
        if matches!(end_states(start, &fewer), Ok(e) if e.is_empty()) {
            ops = fewer;
        } else {
            i += 1;
        }
    }
    ops
}

fn show(op: &Op) -> String {
    let end = if op.returned_ns == u64::MAX { "?".to_string() } else { op.returned_ns.to_string() };
    let value = op.value.map_or("absent".to_string(), |v| format!("{v:016x}"));
    let what = if op.write { "write" } else { "read" };
    format!("node {} op {}.{} {what} {value} [{}, {end}] ns", op.id.0, op.id.1, op.id.2, op.invoked_ns)
}

#[derive(Default)]
pub struct KvLinearizable {
    keys: BTreeMap<String, KeyHistory>,
    /// Keys that change unseen (leases, failure branches): never judged.
    opaque: BTreeSet<String>,
    /// (node, op, part) -> key, while running.
    running: BTreeMap<(u32, u64, u32), String>,
    keys_given_up: u64,
    windows_checked: u64,
    windows_unjudged: u64,
    ops_checked: u64,
}

impl KvLinearizable {
    fn invoked(&mut self, id: (u32, u64, u32), at_ns: u64, key: &str, write: bool, value: Option<u64>, opaque: bool) {
        if opaque && self.opaque.insert(key.to_string()) {
            self.keys.remove(key);
            self.running.retain(|_, k| k != key);
        }
        if self.opaque.contains(key) {
            return;
        }
        let h = self.keys.entry(key.to_string()).or_insert_with(KeyHistory::fresh);
        if h.ops.len() >= WINDOW_OPS_MAX {
            return self.give_up(key);
        }
        let value = if write { value } else { None };
        h.ops.push(Op { id, invoked_ns: at_ns, returned_ns: u64::MAX, write, value, optional: write });
        self.running.insert(id, key.to_string());
    }

    fn returned(&mut self, id: (u32, u64, u32), at_ns: u64, outcome: KvOutcome, value: Option<u64>) -> Option<String> {
        let key = self.running.remove(&id)?;
        let h = self.keys.get_mut(&key)?;
        let i = h.ops.iter().position(|o| o.id == id)?;
        match outcome {
            KvOutcome::Failed => {
                h.ops.remove(i);
                return None;
            }
            KvOutcome::Unknown if h.ops[i].write => return None, // stays optional, forever running
            KvOutcome::Unknown => {
                h.ops.remove(i); // a read that saw nothing we know of constrains nothing
                return None;
            }
            KvOutcome::Ok => {}
        }
        let op = &mut h.ops[i];
        op.returned_ns = at_ns;
        op.optional = false;
        if !op.write {
            op.value = value;
        }
        h.returned += 1;
        if h.returned < WINDOW_OPS {
            return None;
        }
        self.close_window(&key)
    }

    /// Stops judging `key`: its window grew past the bound.
    fn give_up(&mut self, key: &str) {
        self.keys.remove(key);
        self.running.retain(|_, k| k != key);
        self.opaque.insert(key.to_string());
        self.keys_given_up += 1;
    }

    /// A crashed client's running requests stay running (their writes may still land), but
    /// its next incarnation numbers its requests afresh: they are set apart under another id.
    fn orphan(&mut self, node: u32) {
        let ids: Vec<(u32, u64, u32)> = self.running.keys().filter(|id| id.0 == node).copied().collect();
        for id in ids {
            let key = self.running.remove(&id).expect("listed");
            let Some(h) = self.keys.get_mut(&key) else { continue };
            h.ops.retain(|o| o.id != id || o.write);
            for o in h.ops.iter_mut().filter(|o| o.id == id) {
                o.id.2 = u32::MAX;
            }
        }
    }

    /// Judges the key's window of finished operations and starts the next.
    fn close_window(&mut self, key: &str) -> Option<String> {
        let h = self.keys.get_mut(key).expect("a key with a window");
        // Finished: returned with a known outcome. Running reads are dropped (their answer is
        // not judged), running writes and writes of unknown outcome carried as optional.
        let (done, carried): (Vec<Op>, Vec<Op>) =
            std::mem::take(&mut h.ops).into_iter().partition(|o| !o.optional && o.returned_ns != u64::MAX);
        // A write whose value a finished read returned has landed (every writer's values are
        // unique: a uid, a generation, a counter): it is not carried further.
        let read: BTreeSet<Option<u64>> = done.iter().filter(|o| !o.write).map(|o| o.value).collect();
        let mut ghosts: Vec<Op> = carried.into_iter().filter(|o| o.write).collect();
        let landed: Vec<Op> = ghosts.iter().filter(|o| read.contains(&o.value)).cloned().collect();
        let start: Vec<Cell> = if h.start_unknown { vec![None] } else { h.start.iter().map(|v| Some(*v)).collect() };
        let mut window = done.clone();
        window.extend(ghosts.iter().cloned());
        ghosts.retain(|o| !landed.contains(o));
        self.windows_checked += 1;
        self.ops_checked += done.len() as u64;
        let verdict = end_states(&start, &window);
        let mut violation = None;
        let (unknown, values) = match verdict {
            Ok(ends) if ends.is_empty() => {
                let minimal = shrink(&start, window);
                let shown: Vec<String> = minimal.iter().map(show).collect();
                violation = Some(format!("key {key}: no linearization of: {}", shown.join("; ")));
                (true, BTreeSet::new())
            }
            Ok(ends) if ends.contains(&None) => (true, BTreeSet::new()),
            Ok(ends) => (false, ends.into_iter().map(|c| c.expect("known")).collect()),
            Err(_) => {
                self.windows_unjudged += 1;
                (true, BTreeSet::new())
            }
        };
        h.start_unknown = unknown;
        h.start = values;
        h.ops = ghosts;
        h.returned = 0;
        if h.ops.len() > GHOSTS_MAX {
            self.give_up(key);
        }
        violation
    }
}

impl Checker for KvLinearizable {
    fn name(&self) -> &'static str {
        "kv_linearizable"
    }

    fn on_event(&mut self, ev: &Event) -> Option<String> {
        let node = ev.node?.0;
        match &ev.kind {
            TraceKind::KvInvoked { op, part, key, write, value, opaque } => {
                self.invoked((node, *op, *part), ev.t_ns, key, *write, *value, *opaque);
                None
            }
            TraceKind::KvReturned { op, part, outcome, value } => {
                self.returned((node, *op, *part), ev.t_ns, *outcome, *value)
            }
            TraceKind::NodeCrashed => {
                self.orphan(node);
                None
            }
            _ => None,
        }
    }

    fn finish(&mut self, _end_ns: u64) -> Vec<String> {
        let keys: Vec<String> = self.keys.iter().filter(|(_, h)| h.returned > 0).map(|(k, _)| k.clone()).collect();
        keys.iter().filter_map(|k| self.close_window(k)).collect()
    }

    fn report(&self) -> Option<(&'static str, serde_json::Value)> {
        if self.windows_checked == 0 {
            return None;
        }
        Some((
            "kv_linearizability",
            json!({
                "keys": self.keys.len(),
                "keys_given_up": self.keys_given_up,
                "ops_checked": self.ops_checked,
                "windows_checked": self.windows_checked,
                "windows_unjudged": self.windows_unjudged,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::trace::NodeRef;

    fn ev(node: u32, t_ns: u64, kind: TraceKind) -> Event {
        Event { seq: 0, t_ns, node: Some(NodeRef(node)), kind }
    }
    fn invoke(op: u64, write: bool, value: Option<u64>) -> TraceKind {
        TraceKind::KvInvoked { op, part: 0, key: "k".into(), write, value, opaque: false }
    }
    fn ret(op: u64, outcome: KvOutcome, value: Option<u64>) -> TraceKind {
        TraceKind::KvReturned { op, part: 0, outcome, value }
    }

    /// (node, op, invoked, returned, write, value)
    type Spec = (u32, u64, u64, u64, bool, Option<u64>);

    /// Feeds operations in time order and returns what the checker found.
    fn judge(ops: &[Spec]) -> Vec<String> {
        let mut events: Vec<(u64, Event)> = Vec::new();
        for &(node, op, at, until, write, value) in ops {
            events.push((at, ev(node, at, invoke(op, write, if write { value } else { None }))));
            events.push((until, ev(node, until, ret(op, KvOutcome::Ok, if write { None } else { value }))));
        }
        events.sort_by_key(|(t, _)| *t);
        let mut c = KvLinearizable::default();
        let mut found: Vec<String> = events.iter().filter_map(|(_, e)| c.on_event(e)).collect();
        found.extend(c.finish(1_000));
        found
    }

    #[test]
    fn a_linearizable_history_passes() {
        let found = judge(&[
            (1, 0, 0, 10, false, None), // absent at first
            (1, 1, 20, 30, true, Some(7)),
            (2, 0, 40, 50, false, Some(7)),
            (2, 1, 60, 70, true, Some(8)),
            (1, 2, 80, 90, false, Some(8)),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_stale_read_after_a_completed_write_fails() {
        let found =
            judge(&[(1, 0, 0, 10, true, Some(7)), (1, 1, 20, 30, true, Some(8)), (2, 0, 40, 50, false, Some(7))]);
        assert_eq!(found.len(), 1, "{found:?}");
        // Nothing to drop: both writes and the read show the stale read.
        assert_eq!(found[0].matches("write").count(), 2, "{}", found[0]);
        assert!(found[0].contains("read 0000000000000007"), "{}", found[0]);
    }

    #[test]
    fn concurrent_operations_pass_in_either_order() {
        // Two writes overlapping each other and a read overlapping both: 7 or 8 may be read.
        for read in [7, 8] {
            let found = judge(&[
                (1, 0, 0, 50, true, Some(7)),
                (2, 0, 10, 60, true, Some(8)),
                (3, 0, 20, 70, false, Some(read)),
            ]);
            assert!(found.is_empty(), "reading {read}: {found:?}");
        }
        // Afterwards both reads agree on the one that went last.
        let found = judge(&[
            (1, 0, 0, 50, true, Some(7)),
            (2, 0, 10, 60, true, Some(8)),
            (3, 0, 70, 80, false, Some(7)),
            (3, 1, 90, 95, false, Some(8)),
        ]);
        assert_eq!(found.len(), 1, "7 then 8 after both writes ended: {found:?}");
    }

    #[test]
    fn a_write_of_unknown_outcome_may_land_late_or_never() {
        let mut c = KvLinearizable::default();
        assert_eq!(c.on_event(&ev(1, 0, invoke(0, true, Some(7)))), None);
        assert_eq!(c.on_event(&ev(1, 10, ret(0, KvOutcome::Unknown, None))), None);
        assert_eq!(c.on_event(&ev(2, 20, invoke(0, false, None))), None);
        assert_eq!(c.on_event(&ev(2, 30, ret(0, KvOutcome::Ok, None))), None, "not yet landed");
        assert_eq!(c.on_event(&ev(2, 40, invoke(1, false, None))), None);
        assert_eq!(c.on_event(&ev(2, 50, ret(1, KvOutcome::Ok, Some(7)))), None, "landed late");
        assert!(c.finish(100).is_empty());
        // A failed write never lands.
        let mut c = KvLinearizable::default();
        c.on_event(&ev(1, 0, invoke(0, true, Some(7))));
        c.on_event(&ev(1, 10, ret(0, KvOutcome::Failed, None)));
        c.on_event(&ev(2, 20, invoke(0, false, None)));
        c.on_event(&ev(2, 30, ret(0, KvOutcome::Ok, Some(7))));
        assert_eq!(c.finish(100).len(), 1, "7 was never written");
    }

    /// Windows carry the possible values over: a stale read many windows later is still caught,
    /// and a long clean history is judged in bounded windows.
    #[test]
    fn windows_carry_the_state_over() {
        let mut ops = Vec::new();
        for i in 0..100u64 {
            ops.push((1, 2 * i, 100 * i, 100 * i + 10, true, Some(i)));
            ops.push((2, 2 * i + 1, 100 * i + 20, 100 * i + 30, false, Some(i)));
        }
        assert!(judge(&ops).is_empty());
        ops.push((2, 1_000, 20_000, 20_010, false, Some(98)));
        let found = judge(&ops);
        assert_eq!(found.len(), 1, "{found:?}");
    }

    /// A read still running when a window closes is not judged on the value it has not
    /// returned yet.
    #[test]
    fn a_read_running_at_a_cut_is_not_judged() {
        let mut c = KvLinearizable::default();
        c.on_event(&ev(1, 0, invoke(100, true, Some(100))));
        c.on_event(&ev(1, 5, ret(100, KvOutcome::Ok, None)));
        c.on_event(&ev(2, 6, invoke(1_000, false, None)));
        for i in 0..WINDOW_OPS as u64 {
            c.on_event(&ev(1, 10 + 10 * i, invoke(i, true, Some(i))));
            assert_eq!(c.on_event(&ev(1, 15 + 10 * i, ret(i, KvOutcome::Ok, None))), None);
        }
        let late = c.on_event(&ev(2, 1_000, ret(1_000, KvOutcome::Ok, Some(3))));
        assert_eq!(late, None);
        assert!(c.finish(2_000).is_empty());
    }

    #[test]
    fn opaque_keys_are_left_out() {
        let mut c = KvLinearizable::default();
        let leased =
            TraceKind::KvInvoked { op: 0, part: 0, key: "k".into(), write: true, value: Some(1), opaque: true };
        c.on_event(&ev(1, 0, leased));
        c.on_event(&ev(1, 5, ret(0, KvOutcome::Ok, None)));
        c.on_event(&ev(2, 20, invoke(0, false, None)));
        c.on_event(&ev(2, 30, ret(0, KvOutcome::Ok, Some(99))));
        assert!(c.finish(100).is_empty());
    }
}
