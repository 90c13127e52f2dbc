//! Shrinking a failing schedule: faults are removed, then shortened (halved), each change kept
//! when the same failure persists, until a whole pass changes nothing or the run budget is
//! spent. Deterministic: the order of tries depends only on the schedule, and each try is a
//! run with the same seed. As sled's paxos tests shrink a failing run by removing messages.

use std::time::Duration;

use scenarios::Fault;

/// Faults are not shortened below this (shorter ones seldom matter; the floor ends halving).
pub const FAULT_MIN: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Shrunk {
    pub faults: Vec<Fault>,
    /// Runs made (tries), and the changes kept.
    pub runs: u32,
    pub steps: u32,
    /// The budget ran out before a pass changed nothing.
    pub budget_spent: bool,
}

/// `fault`, lasting half as long (in whole milliseconds, at least `FAULT_MIN`); None if it
/// cannot get shorter.
fn halved(fault: &Fault) -> Option<Fault> {
    let until = fault.until?;
    let length = until - fault.at;
    if length <= FAULT_MIN {
        return None;
    }
    let half = Duration::from_millis((length.as_millis() / 2) as u64).max(FAULT_MIN);
    Some(Fault { until: Some(fault.at + half), ..fault.clone() })
}

/// The budget ran out.
struct Spent;

struct Shrinker<F> {
    cur: Vec<Fault>,
    runs: u32,
    steps: u32,
    runs_max: u32,
    fails: F,
}

impl<F: FnMut(&[Fault]) -> bool> Shrinker<F> {
    /// Runs `cand` and keeps it if it fails the same way: Ok(kept).
    fn try_keep(&mut self, cand: Vec<Fault>) -> Result<bool, Spent> {
        if self.runs >= self.runs_max {
            return Err(Spent);
        }
        self.runs += 1;
        let kept = (self.fails)(&cand);
        if kept {
            self.cur = cand;
            self.steps += 1;
        }
        Ok(kept)
    }

    /// One pass of removals, then of halvings: Ok(whether anything was kept).
    fn pass(&mut self) -> Result<bool, Spent> {
        let mut changed = false;
        // Removals, last first: a late fault is likelier to be an after-effect's bystander.
        for i in (0..self.cur.len()).rev() {
            let mut cand = self.cur.clone();
            cand.remove(i);
            changed |= self.try_keep(cand)?;
        }
        for i in 0..self.cur.len() {
            let Some(shorter) = halved(&self.cur[i]) else { continue };
            let mut cand = self.cur.clone();
            cand[i] = shorter;
            changed |= self.try_keep(cand)?;
        }
        Ok(changed)
    }
}

/// Shrinks `faults`, trying at most `runs_max` candidates; `fails(candidate)` runs one and
/// says whether it fails the same way.
pub fn shrink(faults: Vec<Fault>, runs_max: u32, fails: impl FnMut(&[Fault]) -> bool) -> Shrunk {
    let mut s = Shrinker { cur: faults, runs: 0, steps: 0, runs_max, fails };
    let budget_spent = loop {
        match s.pass() {
            Ok(true) => {}
            Ok(false) => break false,
            Err(Spent) => break true,
        }
    };
    Shrunk { faults: s.cur, runs: s.runs, steps: s.steps, budget_spent }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scenarios::{FaultKind, Scope};

    fn fault(at_s: u64, for_s: u64, kind: FaultKind) -> Fault {
        let at = Duration::from_secs(at_s);
        Fault { index: 0, line: 0, at, until: Some(at + Duration::from_secs(for_s)), kind }
    }

    fn schedule() -> Vec<Fault> {
        vec![
            fault(40, 30, FaultKind::NodePause { node: 1, scope: Scope::Host }),
            fault(45, 60, FaultKind::NodeCrash { node: 3, scope: Scope::Host }),
            fault(50, 20, FaultKind::SwitchDown { switch: 0 }),
            fault(70, 9, FaultKind::NodeCrash { node: 4, scope: Scope::Host }),
        ]
    }

    /// A fake run: it fails while node 3 is down for at least 5 s.
    fn crash_of_3_for_5s(faults: &[Fault]) -> bool {
        faults.iter().any(|f| {
            f.kind == FaultKind::NodeCrash { node: 3, scope: Scope::Host }
                && f.until.unwrap() - f.at >= Duration::from_secs(5)
        })
    }

    #[test]
    fn shrinks_to_the_one_fault_that_matters_as_short_as_it_still_fails() {
        let mut tried = 0;
        let s = shrink(schedule(), 100, |c| {
            tried += 1;
            crash_of_3_for_5s(c)
        });
        assert_eq!(s.faults.len(), 1);
        assert_eq!(s.faults[0].kind, FaultKind::NodeCrash { node: 3, scope: Scope::Host });
        // 60 s halves to 30, 15, 7.5; 3.75 no longer fails.
        assert_eq!(s.faults[0].until.unwrap() - s.faults[0].at, Duration::from_millis(7500));
        assert!(!s.budget_spent);
        assert_eq!((s.runs, tried), (tried, tried));
        // Pass 1: 4 removals (3 kept), 1 halving (kept); pass 2: 1 removal, 1 halving (kept);
        // pass 3: 1 removal, 1 halving (kept); pass 4: 1 removal, 1 halving (fails): no change.
        assert_eq!((s.runs, s.steps), (11, 6));
    }

    #[test]
    fn the_budget_bounds_the_runs() {
        let s = shrink(schedule(), 3, crash_of_3_for_5s);
        assert!(s.budget_spent);
        assert_eq!(s.runs, 3);
        assert_eq!(s.faults.len(), 2, "removed node 4's crash and the switch; the pause is next");
        let same = shrink(schedule(), 3, crash_of_3_for_5s);
        assert_eq!(format!("{:?}", s.faults), format!("{:?}", same.faults), "deterministic");
    }

    #[test]
    fn a_failure_that_needs_everything_keeps_everything() {
        let whole = format!("{:?}", schedule());
        let s = shrink(schedule(), 100, |c| format!("{c:?}") == whole);
        assert_eq!(format!("{:?}", s.faults), whole);
        assert_eq!((s.runs, s.steps), (8, 0), "each of 4 removals and 4 halvings tried once");
    }
}
