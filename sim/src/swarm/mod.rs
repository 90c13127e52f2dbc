//! Swarm testing: each seed runs the scenario's topology and settings under a fault schedule of
//! its own, with safety checked all along, then a liveness phase in which every fault has
//! healed and the stack must converge within a bound derived from its settings.
//!
//! The timeline of a swarm run:
//! - warm-up: until the workload has started and 10 s more, no fault (a cold stack is not
//!   the system under test);
//! - fault phase: faults start anywhere in the next 70 % of the scenario's remaining duration
//!   (at least 30 s), and each heals by the end of it;
//! - liveness phase: the liveness bound, then `SETTLE` more seconds, so that a run that
//!   converges just within the bound still shows it staying converged.
//!
//! What the run must show is stated as the swarm scenario's own `[[assert]]`s (see
//! `properties`), so the scenario written for a failing seed fails `pgsim run` the same way.

use std::time::Duration;

use scenarios::{Assertion, NodeKind, Scenario};

pub mod bound;
pub mod schedule;

pub use bound::{Bound, liveness_bound};

/// Whole seconds after the bound during which the stack must stay converged.
pub const SETTLE: Duration = Duration::from_secs(30);
/// Quiet time after the workload starts before the first fault.
const WARM_UP: Duration = Duration::from_secs(10);
/// The shortest fault phase.
const PHASE_MIN: Duration = Duration::from_secs(30);

/// `12 s`, `1.5 s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0} s") } else { format!("{s} s") }
}

/// A seed's swarm run: when faults may happen, the bound, the run's length and the faults.
#[derive(Clone, Debug)]
pub struct Plan {
    pub phase: (Duration, Duration),
    pub bound: Bound,
    pub duration: Duration,
    pub schedule: schedule::Schedule,
}

fn ceil_s(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// The fault phase of a scenario: `[warm-up end, warm-up end + 70 % of the rest]`, in whole
/// seconds.
pub fn phase(sc: &Scenario) -> (Duration, Duration) {
    let has = |k: NodeKind| sc.nodes.iter().any(|n| n.kind == k);
    let mut ready = Duration::ZERO;
    if has(NodeKind::Clients) {
        ready = ready.max(sc.workload.start_after);
    }
    if has(NodeKind::EtcdWriter) {
        ready = ready.max(sc.etcd_writer.start_after);
    }
    let start = ceil_s(ready + WARM_UP);
    let rest = sc.duration.saturating_sub(start);
    (start, start + ceil_s(rest.mul_f64(0.7)).max(PHASE_MIN))
}

pub fn plan(sc: &Scenario, seed: u64) -> Plan {
    let phase = phase(sc);
    let bound = liveness_bound(sc);
    let duration = phase.1 + bound.total + SETTLE;
    Plan { phase, duration, schedule: schedule::draw(sc, seed, phase), bound }
}

fn equals(name: &str, metric: &str, value: f64) -> Assertion {
    Assertion::new(name, metric, None, None, Some(value))
}

/// The properties a swarm run must hold, as assertions on its summary.json (the invariant
/// checkers hold in every run besides). The scenario's own assertions are not among them: they
/// describe its scripted timeline, which the swarm replaces.
/// - safety: no commit a synchronous standby confirmed is lost; unless `[swarm]
///   accept_data_loss`, no acknowledged commit at all is lost;
/// - liveness: the stack converges (see `converge`) within `bound` of the last heal.
///
/// Split brain is not a property of its own: Stolon lets a cut-off old primary run on and
/// relies on its proxies to send it nothing; what would make it harmful, acknowledged commits
/// that a new timeline lacks, is the loss property.
pub fn properties(sc: &Scenario, bound: Duration) -> Vec<Assertion> {
    let mut out = Vec::new();
    if sc.nodes.iter().any(|n| n.kind == NodeKind::Postgres) {
        out.push(equals(
            "safety: no commit confirmed by a synchronous standby is lost",
            "postgres.commits_lost_synchronous",
            0.0,
        ));
        if !sc.swarm.accept_data_loss {
            out.push(equals("safety: no acknowledged commit is lost", "postgres.commits_lost_total", 0.0));
        }
    }
    if !crate::converge::ConvergeSpec::from_scenario(sc).is_empty() {
        out.push(equals("liveness: the stack converges once every fault has healed", "convergence.converged", 1.0));
        out.push(Assertion::new(
            &format!("liveness: it converges within {} of the last heal", seconds(bound)),
            "convergence.seconds_to_converge",
            None,
            Some(bound.as_secs_f64()),
            None,
        ));
    }
    out
}

#[cfg(test)]
mod tests;
