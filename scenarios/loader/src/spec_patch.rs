//! `stolonctl update --patch '{...}'` as an operator action (`kind = "stolonctl-update"`): the
//! `patch` table names cluster spec keys as Stolon spells them (camelCase, Go durations). Only
//! the keys the sentinels act on while the cluster runs may be patched; the others of `[stolon]`
//! are read by sentinels, keepers and proxies when they start, so a patch of one of them is
//! refused rather than silently ignored. Like stolonctl, a patch changes the spec in force (the
//! `[stolon]` section with every earlier patch of that cluster applied), and the result must be
//! valid.

use std::time::Duration;

use serde::Deserialize;

use crate::components::{Action, ActionKind};
use crate::diag::Diagnostic;
use crate::raw::{Dur, S};
use crate::stack::StolonSpec;

type Res<T> = Result<T, Diagnostic>;

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSpecPatch {
    pub fail_interval: Option<S<Dur>>,
    pub synchronous_replication: Option<bool>,
    pub min_synchronous_standbys: Option<S<u32>>,
    pub max_synchronous_standbys: Option<S<u32>>,
    pub max_standby_lag: Option<S<u64>>,
    // Cluster spec keys of real Stolon that this model's components read only at start: named
    // here so that patching one gets an explanation instead of "unknown field".
    pub sleep_interval: Option<S<toml::Value>>,
    pub request_timeout: Option<S<toml::Value>>,
    pub proxy_check_interval: Option<S<toml::Value>>,
    pub proxy_timeout: Option<S<toml::Value>>,
    pub use_pgrewind: Option<S<toml::Value>>,
}

/// The keys a patch changes; `None` keeps what is in force.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpecPatch {
    pub fail_interval: Option<Duration>,
    pub synchronous_replication: Option<bool>,
    pub min_synchronous_standbys: Option<u32>,
    pub max_synchronous_standbys: Option<u32>,
    pub max_standby_lag_bytes: Option<u64>,
}

impl SpecPatch {
    /// `spec` with this patch's keys changed.
    pub fn apply(&self, spec: &StolonSpec) -> StolonSpec {
        StolonSpec {
            fail_interval: self.fail_interval.unwrap_or(spec.fail_interval),
            synchronous_replication: self.synchronous_replication.unwrap_or(spec.synchronous_replication),
            min_synchronous_standbys: self.min_synchronous_standbys.unwrap_or(spec.min_synchronous_standbys),
            max_synchronous_standbys: self.max_synchronous_standbys.unwrap_or(spec.max_synchronous_standbys),
            max_standby_lag_bytes: self.max_standby_lag_bytes.unwrap_or(spec.max_standby_lag_bytes),
            ..spec.clone()
        }
    }

    /// The patch as the JSON an operator passes to `stolonctl update --patch`.
    pub fn to_json(&self) -> String {
        let mut keys = Vec::new();
        if let Some(v) = self.fail_interval {
            keys.push(format!("\"failInterval\": \"{}\"", go_duration(v)));
        }
        if let Some(v) = self.synchronous_replication {
            keys.push(format!("\"synchronousReplication\": {v}"));
        }
        if let Some(v) = self.min_synchronous_standbys {
            keys.push(format!("\"minSynchronousStandbys\": {v}"));
        }
        if let Some(v) = self.max_synchronous_standbys {
            keys.push(format!("\"maxSynchronousStandbys\": {v}"));
        }
        if let Some(v) = self.max_standby_lag_bytes {
            keys.push(format!("\"maxStandbyLag\": {v}"));
        }
        format!("{{{}}}", keys.join(", "))
    }
}

/// A duration as Go's time.ParseDuration reads it (`20s`, `1m30s`, `1500ms`), for the trace.
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) || ms == 0 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

/// Validates a patch on its own (the result is checked against the spec in force later, once
/// every action is known and can be put in time order).
pub(crate) fn patch(path: &str, text: &str, raw: &S<RawSpecPatch>) -> Res<SpecPatch> {
    let r = raw.get_ref();
    let err = |span: std::ops::Range<usize>, msg: String| Err(Diagnostic::at(path, text, span, msg));
    let fixed = [
        (&r.sleep_interval, "sleepInterval"),
        (&r.request_timeout, "requestTimeout"),
        (&r.proxy_check_interval, "proxyCheckInterval"),
        (&r.proxy_timeout, "proxyTimeout"),
        (&r.use_pgrewind, "usePgrewind"),
    ];
    if let Some((v, key)) = fixed.iter().find_map(|(v, key)| v.as_ref().map(|v| (v, key))) {
        return err(
            v.span(),
            format!(
                "{key} cannot be patched while the cluster runs here: this model's sentinels, keepers and \
                 proxies read it when they start; set it in [stolon]. Patchable: failInterval, \
                 synchronousReplication, minSynchronousStandbys, maxSynchronousStandbys, maxStandbyLag"
            ),
        );
    }
    // A patched key has the range it has in [stolon].
    use crate::stack::range;
    let p = SpecPatch {
        fail_interval: range::FAIL_INTERVAL.opt(path, text, &r.fail_interval)?,
        synchronous_replication: r.synchronous_replication,
        min_synchronous_standbys: range::MIN_SYNCHRONOUS_STANDBYS.opt(path, text, &r.min_synchronous_standbys)?,
        max_synchronous_standbys: range::MAX_SYNCHRONOUS_STANDBYS.opt(path, text, &r.max_synchronous_standbys)?,
        max_standby_lag_bytes: r.max_standby_lag.as_ref().map(|v| *v.get_ref()),
    };
    if p == SpecPatch::default() {
        return err(raw.span(), "an empty patch changes nothing: name at least one cluster spec key".into());
    }
    Ok(p)
}

/// `base` with every stolonctl-update of `cluster` up to and including `actions[upto]` applied,
/// in time order (actions at the same instant in file order, as the simulator runs them).
pub(crate) fn in_force_after(base: &StolonSpec, actions: &[Action], cluster: usize, upto: usize) -> StolonSpec {
    let key = |i: usize| (actions[i].at, i);
    let mut order: Vec<usize> = (0..actions.len()).filter(|&i| key(i) <= key(upto)).collect();
    order.sort_by_key(|&i| key(i));
    order.into_iter().fold(base.clone(), |spec, i| match &actions[i].kind {
        ActionKind::StolonctlUpdate { cluster: c, patch } if *c == cluster => patch.apply(&spec),
        _ => spec,
    })
}

/// Where a patch's result is invalid, and why: checked on the spec it leaves in force.
pub(crate) fn check_result(path: &str, text: &str, raw: &S<RawSpecPatch>, spec: &StolonSpec) -> Res<()> {
    if spec.min_synchronous_standbys <= spec.max_synchronous_standbys {
        return Ok(());
    }
    let r = raw.get_ref();
    let span = r
        .min_synchronous_standbys
        .as_ref()
        .or(r.max_synchronous_standbys.as_ref())
        .map_or_else(|| raw.span(), |v| v.span());
    Err(Diagnostic::at(
        path,
        text,
        span,
        format!(
            "this patch leaves minSynchronousStandbys ({}) above maxSynchronousStandbys ({}); stolonctl refuses it",
            spec.min_synchronous_standbys, spec.max_synchronous_standbys
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_go_parses_them() {
        let s = Duration::from_secs;
        assert_eq!(go_duration(s(20)), "20s");
        assert_eq!(go_duration(s(90)), "1m30s");
        assert_eq!(go_duration(s(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn a_patch_changes_only_its_keys() {
        let base = StolonSpec { synchronous_replication: true, ..StolonSpec::default() };
        let p =
            SpecPatch { synchronous_replication: Some(false), max_standby_lag_bytes: Some(0), ..Default::default() };
        let after = p.apply(&base);
        assert!(!after.synchronous_replication);
        assert_eq!(after.max_standby_lag_bytes, 0);
        assert_eq!(StolonSpec { synchronous_replication: true, max_standby_lag_bytes: 1_232_896, ..after }, base);
        assert_eq!(p.to_json(), "{\"synchronousReplication\": false, \"maxStandbyLag\": 0}");
    }
}
