//! Bugs that can be planted in the models on purpose (`[sim] planted_bug`), so that tests and
//! swarms can show that the checkers catch them. None is ever on unless a scenario asks.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// Raft: a vote request from a lower term is handled as if it were of the current term.
    VoteFromLowerTerm,
    /// Raft: a vote is granted (the response sent) before the WAL holds it.
    VoteNotDurable,
    /// Stolon's sentinel: a failover may promote any healthy standby on the master's timeline,
    /// not only one of the synchronous standbys the master reported in sync.
    PromoteOutsideSyncSet,
    /// Stolon's keeper: an old master told to follow the new one is never fenced; it runs on
    /// as a primary.
    OldPrimaryNeverFenced,
}

impl PlantedBug {
    pub const NAMES: &[&str] = &[
        "raft-vote-from-lower-term",
        "raft-vote-not-durable",
        "stolon-promote-outside-sync-set",
        "stolon-old-primary-never-fenced",
    ];

    pub fn parse(s: &str) -> Option<PlantedBug> {
        match s {
            "raft-vote-from-lower-term" => Some(PlantedBug::VoteFromLowerTerm),
            "raft-vote-not-durable" => Some(PlantedBug::VoteNotDurable),
            "stolon-promote-outside-sync-set" => Some(PlantedBug::PromoteOutsideSyncSet),
            "stolon-old-primary-never-fenced" => Some(PlantedBug::OldPrimaryNeverFenced),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses() {
        for name in PlantedBug::NAMES {
            assert!(PlantedBug::parse(name).is_some(), "{name}");
        }
        assert_eq!(PlantedBug::parse("raft-off-by-one"), None);
    }
}
