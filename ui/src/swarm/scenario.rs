//! A swarm run as a scenario text: the base scenario (merged with what it includes) with its
//! `[[fault]]`s replaced by a schedule, its `[[assert]]`s by the swarm's properties, its
//! `[[action]]`s dropped (the operator's answers to the scripted faults) and its duration
//! the swarm timeline's. The sweep runs exactly this text, and the file written for
//! a failing seed is this text, so `pgsim run FILE` replays the run bit for bit.

use std::fmt::Write as _;
use std::path::Path;

use scenarios::{Diagnostic, Fault, Scenario, render};
use sim::swarm::{self, Plan};

/// A base scenario, loaded once per worker.
pub struct Base {
    /// The file as given.
    pub file: String,
    pub scenario: Scenario,
    /// Its merged text.
    pub text: String,
}

impl Base {
    pub fn load(file: &str) -> Result<Base, Diagnostic> {
        let (scenario, text) = scenarios::load_with_source(Path::new(file))?;
        Ok(Base { file: file.to_string(), scenario, text })
    }

    pub fn plan(&self, seed: u64) -> Plan {
        swarm::plan(&self.scenario, seed)
    }

    /// The name of seed `seed`'s swarm scenario.
    pub fn name(&self, seed: u64) -> String {
        format!("{}-swarm-seed{seed}", self.scenario.name)
    }

    /// The scenario text of `seed` under `faults` (its plan's, or fewer and shorter ones).
    /// `notes` go into the header comment after the lines every such file has.
    pub fn text(&self, seed: u64, plan: &Plan, faults: &[Fault], notes: &[String]) -> String {
        let sc = &self.scenario;
        let mut own = String::new();
        let _ =
            writeln!(own, "# Written by `pgsim check --swarm` (pgsim {}): seed {seed} of", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(own, "# {} (scenario {:?}, file hash {}).", self.file, sc.name, sc.source_hash);
        let _ = writeln!(own, "# Its [[fault]]s are the seed's schedule, its [[assert]]s the swarm's properties:");
        let _ = writeln!(own, "# `pgsim run` on this file replays the run.");
        let _ = writeln!(own, "# Liveness bound: {} =", swarm::seconds(plan.bound.total));
        for (i, (what, d)) in plan.bound.parts.iter().enumerate() {
            let _ = writeln!(own, "#   {}{} ({what})", if i == 0 { "" } else { "+ " }, swarm::seconds(*d));
        }
        for n in notes {
            let _ = writeln!(own, "# {n}");
        }
        // The operator's [[action]]s go with the scripted faults they answer (a promotion that
        // accepts data loss, a region evacuation); an empty list replaces a table's entries.
        own.push_str("action = []\n");
        if faults.is_empty() {
            own.push_str("fault = []\n");
        }
        let properties = swarm::properties(sc, plan.bound.total);
        if properties.is_empty() {
            own.push_str("assert = []\n");
        }
        own.push_str("\n[scenario]\n");
        let _ = writeln!(own, "name = {}", render::string(&self.name(seed)));
        let description = format!(
            "Swarm seed {seed} of {}: {} fault(s) in the fault phase {} to {}, all healed by its end; then the \
             stack must converge within {}.",
            sc.name,
            faults.len(),
            swarm::seconds(plan.phase.0),
            swarm::seconds(plan.phase.1),
            swarm::seconds(plan.bound.total)
        );
        let _ = writeln!(own, "description = {}", render::string(&description));
        let _ = writeln!(own, "duration = {}", render::string(&render::duration(plan.duration)));
        let _ = writeln!(own, "seed = {seed}");
        for f in faults {
            own.push('\n');
            own.push_str(&render::fault(sc, f));
        }
        for a in properties {
            own.push('\n');
            own.push_str(&render::assertion(&a));
        }
        render::overlay(&self.text, &own)
    }

    /// `text` loaded as the scenario it is (named after the file it will be written to).
    pub fn load_text(&self, shown: &str, text: &str) -> Result<Scenario, Diagnostic> {
        scenarios::parse_str(shown, text)
    }
}

/// How long the faults last, summed (a shrunk schedule's size besides its count).
pub fn fault_seconds(faults: &[Fault]) -> f64 {
    faults.iter().map(|f| f.until.map_or(0.0, |u| (u - f.at).as_secs_f64())).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeds_text_loads_as_its_schedule_with_the_swarm_properties() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/stack-primary-crash.toml");
        let base = Base::load(file).unwrap();
        let plan = base.plan(3);
        let text = base.text(3, &plan, &plan.schedule.faults, &["shrunk: a note".into()]);
        let sc = base.load_text("x.toml", &text).unwrap_or_else(|d| panic!("{d}\n{text}"));
        assert_eq!((sc.name.as_str(), sc.seed, sc.duration), ("stack-primary-crash-swarm-seed3", 3, plan.duration));
        assert_eq!(sc.faults.len(), plan.schedule.faults.len());
        let names: Vec<&str> = sc.asserts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names[0], "safety: no commit confirmed by a synchronous standby is lost", "{names:?}");
        assert!(!names.iter().any(|n| n.contains("exactly one failover")), "the scripted assertions are gone");
        assert!(text.starts_with("# Written by `pgsim check --swarm`") && text.contains("# shrunk: a note\n"));
        assert_eq!(sc.tenants.len(), 2, "everything else is the base's");
        let none = base.load_text("y.toml", &base.text(3, &plan, &[], &[])).unwrap();
        assert!(none.faults.is_empty(), "no faults: the base's are dropped all the same");
        // A probe-only scenario has no swarm property: its scripted assertions go all the same.
        let smoke = Base::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/network-smoke.toml")).unwrap();
        assert!(!smoke.scenario.asserts.is_empty());
        let plan = smoke.plan(1);
        let sc = smoke.load_text("z.toml", &smoke.text(1, &plan, &plan.schedule.faults, &[])).unwrap();
        assert!(sc.asserts.is_empty() && !sc.faults.is_empty());
        // Operator actions answer the scripted faults: they go too.
        let evac =
            Base::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/stack-region-evacuation.toml")).unwrap();
        assert!(!evac.scenario.actions.is_empty());
        let plan = evac.plan(1);
        let sc = evac.load_text("w.toml", &evac.text(1, &plan, &plan.schedule.faults, &[])).unwrap();
        assert!(sc.actions.is_empty());
    }
}
