//! The haproxy figures of a pgsim run: when HAProxy marked its server DOWN after the fault and
//! UP again after the fault ended, read from the `haproxy_server` events (`server`, `state`
//! `UP`/`DOWN`) and the fault's `fault_started` / `fault_healed` events.
//!
//! Every haproxy case has one fault (`[[fault]]` 0) and one server behind HAProxy, so the
//! figures follow the first server that changes state after the fault started.

use models::trace::HaproxyServerState;
use serde_json::Value;

use crate::RunView;

/// A figure of this family read from a run; None for a figure this family does not know.
pub fn extract(figure: &str, run: &RunView) -> Option<Option<f64>> {
    Some(match figure {
        // From the fault's start to the server marked DOWN.
        "down_after_s" => down(run).map(|(t, _)| t - run.fault_started_s(0).expect("the case has a fault")),
        // From the fault's end (postgres restarted, SIGCONT, link healed) to the first UP after
        // that DOWN; null when the server never went DOWN.
        "up_after_restart_s" | "up_after_cont_s" | "up_after_heal_s" => up_after_heal(run),
        "checks_failed_before_down_count" => checks_failed_before_down(run),
        _ => return None,
    })
}

fn server_changes(run: &RunView, state: HaproxyServerState) -> impl Iterator<Item = (f64, &Value)> + '_ {
    run.events_of("haproxy_server").filter(move |e| e["state"] == state.as_str()).map(|e| (run.t_s(e), e))
}

/// The first DOWN at or after the fault's start: (time, the server's name).
fn down(run: &RunView) -> Option<(f64, String)> {
    let start = run.fault_started_s(0)?;
    server_changes(run, HaproxyServerState::Down)
        .find(|(t, _)| *t >= start)
        .map(|(t, e)| (t, e["server"].as_str().unwrap_or_default().to_string()))
}

fn up_after_heal(run: &RunView) -> Option<f64> {
    let (t_down, server) = down(run)?;
    let healed = run.fault_healed_s(0)?;
    server_changes(run, HaproxyServerState::Up)
        .find(|(t, e)| *t >= healed && *t > t_down && e["server"] == server.as_str())
        .map(|(t, _)| t - healed)
}

/// Checks that failed between the fault and DOWN, counted as the `check` messages HAProxy sent
/// the server that the network dropped (node down, link down, cut in flight): each is one
/// failed check. A check that reaches a paused host is not dropped, so under node-pause this
/// reads 0; the sigstop cases do not compare it.
fn checks_failed_before_down(run: &RunView) -> Option<f64> {
    let start = run.fault_started_s(0)?;
    let (t_down, server) = down(run)?;
    let n = run
        .events_of("message_dropped")
        .filter(|e| e["msg"] == "check" && e["to"] == server.as_str())
        .filter(|e| (start..=t_down).contains(&run.t_s(e)))
        .count();
    Some(n as f64)
}
