//! HAProxy's health checks of one PostgreSQL server under a fault, pgsim against HAProxy 2.6
//! (fixtures/haproxy-*.json, compare/haproxy.toml).

#[test]
fn haproxy_kill() {
    calibration::assert_case("haproxy-kill");
}

#[test]
fn haproxy_kill_fastinter() {
    calibration::assert_case("haproxy-kill-fastinter");
}

#[test]
fn haproxy_sigstop() {
    calibration::assert_case("haproxy-sigstop");
}

#[test]
fn haproxy_sigstop_fastinter() {
    calibration::assert_case("haproxy-sigstop-fastinter");
}

#[test]
fn haproxy_path_drop() {
    calibration::assert_case("haproxy-path-drop");
}

#[test]
fn haproxy_path_drop_fastinter() {
    calibration::assert_case("haproxy-path-drop-fastinter");
}
