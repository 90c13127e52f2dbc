//! The replicated state machine: etcd's MVCC store reduced to what HA control planes use
//! (current values with create/mod revisions and versions, transactions, leases).

use std::collections::{BTreeMap, BTreeSet};

use super::{Command, Compare, EtcdError, LeaseId, Op, Reply, Request, Revision};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: u64,
    pub lease: Option<LeaseId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub ttl_s: u64,
    pub keys: BTreeSet<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    pub revision: Revision,
    pub keys: BTreeMap<String, KeyValue>,
    pub leases: BTreeMap<LeaseId, Lease>,
}

/// Raft replicates the KV without looking into it: it asks only sizes on the wire.
impl crate::raft::StateMachine for Kv {
    type Command = Command;
    fn command_size_bytes(cmd: &Command) -> u64 {
        cmd.size_bytes()
    }
    fn state_size_bytes(&self) -> u64 {
        self.size_bytes()
    }
}

impl Kv {
    pub fn get(&self, key: &str) -> Option<&KeyValue> {
        self.keys.get(key)
    }

    fn compare(&self, c: &Compare) -> bool {
        match c {
            Compare::CreateRevision { key, revision } => {
                self.keys.get(key).map_or(0, |kv| kv.create_revision) == *revision
            }
            Compare::ModRevision { key, revision } => self.keys.get(key).map_or(0, |kv| kv.mod_revision) == *revision,
            Compare::Value { key, value } => self.keys.get(key).is_some_and(|kv| kv.value == *value),
        }
    }

    fn delete_key(&mut self, key: &str) -> bool {
        match self.keys.remove(key) {
            Some(kv) => {
                if let Some(l) = kv.lease.and_then(|id| self.leases.get_mut(&id)) {
                    l.keys.remove(key);
                }
                true
            }
            None => false,
        }
    }

    /// Applies ops of one request at one new revision (etcd: a txn is one revision).
    fn apply_ops(&mut self, ops: &[Op], gets: &mut Vec<Option<KeyValue>>) -> Result<bool, EtcdError> {
        let mut changed = false;
        for op in ops {
            if let Op::Put { lease: Some(id), .. } = op
                && !self.leases.contains_key(id)
            {
                return Err(EtcdError::LeaseNotFound);
            }
        }
        let rev = self.revision + 1;
        for op in ops {
            match op {
                Op::Put { key, value, lease } => {
                    let prev = self.keys.get(key).cloned();
                    if let Some(old) = prev.as_ref().and_then(|p| p.lease)
                        && Some(old) != *lease
                        && let Some(l) = self.leases.get_mut(&old)
                    {
                        l.keys.remove(key);
                    }
                    if let Some(id) = lease {
                        self.leases.get_mut(id).expect("checked above").keys.insert(key.clone());
                    }
                    self.keys.insert(
                        key.clone(),
                        KeyValue {
                            key: key.clone(),
                            value: value.clone(),
                            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                            mod_revision: rev,
                            version: prev.map_or(1, |p| p.version + 1),
                            lease: *lease,
                        },
                    );
                    changed = true;
                }
                Op::Delete { key } => changed |= self.delete_key(key),
                Op::Get { key } => gets.push(self.keys.get(key).cloned()),
            }
        }
        if changed {
            self.revision = rev;
        }
        Ok(changed)
    }

    /// Applies the command of log entry `index`.
    pub fn apply(&mut self, index: u64, cmd: &Command) -> Result<Reply, EtcdError> {
        match cmd {
            Command::ExpireLease { id } | Command::Client(Request::LeaseRevoke { id }) => {
                let lease = self.leases.remove(id).ok_or(EtcdError::LeaseNotFound)?;
                let mut changed = false;
                for key in &lease.keys {
                    changed |= self.keys.remove(key).is_some();
                }
                if changed {
                    self.revision += 1;
                }
                Ok(Reply::Revoked)
            }
            Command::Client(Request::LeaseGrant { ttl_s }) => {
                // The entry's index is a lease ID no other grant can have.
                self.leases.insert(index, Lease { ttl_s: *ttl_s, keys: BTreeSet::new() });
                Ok(Reply::Lease { id: index, ttl_s: *ttl_s })
            }
            Command::Client(Request::LeaseKeepAlive { .. }) => unreachable!("keepalives are not replicated"),
            Command::Client(Request::Op(op)) => {
                let mut gets = Vec::new();
                let existed = match op {
                    Op::Delete { key } => self.keys.contains_key(key),
                    _ => false,
                };
                self.apply_ops(std::slice::from_ref(op), &mut gets)?;
                Ok(match op {
                    Op::Put { .. } => Reply::Put { revision: self.revision },
                    Op::Delete { .. } => Reply::Delete { revision: self.revision, deleted: existed },
                    Op::Get { .. } => Reply::Get { revision: self.revision, kv: gets.pop().flatten() },
                })
            }
            Command::Client(Request::Txn { compare, success, failure }) => {
                let succeeded = compare.iter().all(|c| self.compare(c));
                let mut gets = Vec::new();
                self.apply_ops(if succeeded { success } else { failure }, &mut gets)?;
                Ok(Reply::Txn { revision: self.revision, succeeded, gets })
            }
        }
    }

    /// What a snapshot of this state weighs on the wire: keys, values and their metadata.
    pub fn size_bytes(&self) -> u64 {
        let keys: u64 = self.keys.values().map(|kv| 48 + (kv.key.len() + kv.value.len()) as u64).sum();
        let leases: u64 = self.leases.values().map(|l| 16 + l.keys.iter().map(|k| k.len() as u64).sum::<u64>()).sum();
        16 + keys + leases
    }

    pub fn check_invariants(&self) {
        for (key, kv) in &self.keys {
            assert_eq!(key, &kv.key);
            assert!(kv.create_revision <= kv.mod_revision && kv.mod_revision <= self.revision);
            if let Some(id) = kv.lease {
                assert!(self.leases.get(&id).is_some_and(|l| l.keys.contains(key)), "key {key} on a missing lease");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str, lease: Option<LeaseId>) -> Command {
        Command::Client(Request::Op(Op::Put { key: key.into(), value: value.into(), lease }))
    }

    #[test]
    fn revisions_versions_and_txn_create_if_absent() {
        let mut kv = Kv::default();
        assert_eq!(kv.apply(1, &put("a", "1", None)), Ok(Reply::Put { revision: 1 }));
        assert_eq!(kv.apply(2, &put("a", "2", None)), Ok(Reply::Put { revision: 2 }));
        let a = kv.get("a").unwrap();
        assert_eq!((a.create_revision, a.mod_revision, a.version), (1, 2, 2));
        // The election pattern: create the key only if nobody holds it.
        let claim = |v: &str| {
            Command::Client(Request::Txn {
                compare: vec![Compare::CreateRevision { key: "leader".into(), revision: 0 }],
                success: vec![Op::Put { key: "leader".into(), value: v.into(), lease: None }],
                failure: vec![Op::Get { key: "leader".into() }],
            })
        };
        assert!(matches!(kv.apply(3, &claim("x")), Ok(Reply::Txn { succeeded: true, revision: 3, .. })));
        match kv.apply(4, &claim("y")) {
            Ok(Reply::Txn { succeeded: false, revision: 3, gets }) => assert_eq!(gets[0].as_ref().unwrap().value, "x"),
            other => panic!("{other:?}"),
        }
        kv.check_invariants();
    }

    #[test]
    fn revoking_a_lease_deletes_its_keys() {
        let mut kv = Kv::default();
        let Ok(Reply::Lease { id, .. }) = kv.apply(7, &Command::Client(Request::LeaseGrant { ttl_s: 10 })) else {
            panic!()
        };
        assert_eq!(id, 7);
        kv.apply(8, &put("k", "v", Some(id))).unwrap();
        assert_eq!(kv.apply(9, &put("z", "v", Some(99))), Err(EtcdError::LeaseNotFound));
        kv.check_invariants();
        kv.apply(10, &Command::ExpireLease { id }).unwrap();
        assert!(kv.get("k").is_none());
        assert_eq!(kv.apply(11, &Command::ExpireLease { id }), Err(EtcdError::LeaseNotFound));
        kv.check_invariants();
    }
}
