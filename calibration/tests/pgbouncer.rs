//! PgBouncer 1.18's transaction pool under load and when its server goes away, pgsim against
//! the real program (fixtures/pgbouncer-*.json, compare/pgbouncer.toml; each case's gap is
//! in the compare file).

#[test]
#[ignore = "calibration: closed-loop clients are not expressible (open-loop tenants); latency at N >= 10 is N / throughput for real, ~55 ms in pgsim"]
fn pgbouncer_saturation() {
    calibration::assert_case("pgbouncer-saturation");
}

#[test]
#[ignore = "calibration: the reserve stays shut as for real, but the closed loop's ~150 ms waits (204 ms latency) are not expressible open-loop"]
fn pgbouncer_reserve_pool() {
    calibration::assert_case("pgbouncer-reserve-pool");
}

#[test]
#[ignore = "calibration: the reserve opens as for real, but after the open-loop burst the backlog drains slowly (p50 ~1.3 s vs 1.0 s)"]
fn pgbouncer_reserve_pool_open() {
    calibration::assert_case("pgbouncer-reserve-pool-open");
}

#[test]
fn pgbouncer_query_wait_timeout() {
    calibration::assert_case("pgbouncer-query-wait-timeout");
}

#[test]
#[ignore = "calibration: no connection state: pgsim sends the probe after the stop on a server connection it still thinks open and gets it refused at once (first error 0 s vs ~1.07 s)"]
fn pgbouncer_login_retry_15s() {
    calibration::assert_case("pgbouncer-login-retry-15s");
}

#[test]
#[ignore = "calibration: no connection state: pgsim refuses the probe after the stop at once (first error 0 s vs ~1.07 s), ~11 more failed probes"]
fn pgbouncer_login_retry_2s() {
    calibration::assert_case("pgbouncer-login-retry-2s");
}

#[test]
#[ignore = "calibration: pools refill one login at a time, side by side, as for real; but real logins share the host (the kill's exits, then ~4.1 vs ~5.8 ms per login with one vs two pools): two pools take ~1.8x one pool, pgsim's take 100 ms each, together or alone"]
fn pgbouncer_pool_refill() {
    calibration::assert_case("pgbouncer-pool-refill");
}
