#!/usr/bin/python3
"""HAProxy health checks of one PostgreSQL server: how long until HAProxy marks it DOWN after a
fault of the server or of the path, and how long until UP again.

Two hosts: `hap` (HAProxy 2.6, `mode tcp`, one server with a plain layer-4 connect check
`check inter 2s fall 3 rise 2`, and in the `-fastinter` variants also `fastinter 500ms`) and `pg`
(PostgreSQL 15 listening on its namespace's address). `timeout check` and `timeout connect` are
left unset (HAProxy's defaults): a check's connect then times out after `inter`.

HAProxy's view is read from its stats socket (`show stat`: status, chkfail, check_status) every
~20 ms on the monotonic clock; every change is kept in the repetition's `timeline` (seconds from
the fault), so the check schedule HAProxy really followed can be read back from the fixture.

Cases (each also as `<case>-fastinter`):
  haproxy-kill       kill -9 of the postmaster (the kernel stays up and answers with RST);
                     postgres is started again 10 s after the kill.
  haproxy-sigstop    kill -STOP of the postmaster for 20 s, then -CONT.
  haproxy-path-drop  every packet between hap and pg dropped (both directions) for 20 s.

Usage: haproxy.py --list | CASE [--reps N] | --all
"""

import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from calib import Fixture, Net, log, now, require_root, sh, wait_until  # noqa: E402

FAMILY = "haproxy"
BASE = "/tmp/calib-haproxy"
PG_BIN = "/usr/lib/postgresql/15/bin"
TEMPLATE = os.path.join(BASE, "pgdata-template")
INTER_S = 2.0
FASTINTER_S = 0.5
FAULT_S = 20.0           # SIGSTOP and path-drop duration
RESTART_AFTER_S = 10.0   # kill: postgres started again this long after the kill
POLL_S = 0.02

KINDS = ["kill", "sigstop", "path-drop"]
CASES = [f"haproxy-{k}{v}" for k in KINDS for v in ("", "-fastinter")]
DEFAULT_REPS = 10


# -- PostgreSQL ---------------------------------------------------------------------------------
def ensure_template():
    """initdb once; every run copies the template into its own data directory."""
    if os.path.exists(os.path.join(TEMPLATE, "PG_VERSION")):
        return
    os.makedirs(BASE, exist_ok=True)
    shutil.rmtree(TEMPLATE, ignore_errors=True)
    sh(f"chown postgres:postgres {BASE}")
    sh(f"runuser -u postgres -- {PG_BIN}/initdb -D {TEMPLATE} -A trust -U postgres --no-sync", timeout=120)
    with open(os.path.join(TEMPLATE, "pg_hba.conf"), "a") as f:
        f.write("host all all 0.0.0.0/0 trust\n")


class Postgres:
    def __init__(self, net, host, rundir):
        self.net, self.host = net, host
        self.data = os.path.join(rundir, "pgdata")
        self.sockdir = rundir
        self.logfile = os.path.join(rundir, "postgres.log")
        shutil.rmtree(self.data, ignore_errors=True)
        sh(f"cp -a {TEMPLATE} {self.data} && chown -R postgres:postgres {rundir}")

    def start(self):
        argv = [f"{PG_BIN}/postgres", "-D", self.data,
                "-c", f"listen_addresses={self.net.ip[self.host]}",
                "-c", f"unix_socket_directories={self.sockdir}",
                "-c", "shared_buffers=16MB", "-c", "max_connections=20"]
        self.net.spawn(self.host, argv, self.logfile, user="postgres")

    def pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def ready(self):
        """postmaster.pid's 8th line reads `ready` once postgres accepts connections."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                lines = f.read().splitlines()
            if len(lines) < 8 or lines[7].strip() != "ready":
                return False
            os.kill(int(lines[0]), 0)
            return True
        except (OSError, ValueError):
            return False

    def ns_empty(self):
        return not (sh(f"ip netns pids {self.net.ns(self.host)}", capture=True, check=False) or "").split()


# -- HAProxy ------------------------------------------------------------------------------------
def haproxy_cfg(net, sock, fastinter):
    extra = f" fastinter {int(FASTINTER_S * 1000)}ms" if fastinter else ""
    return f"""global
    stats socket {sock} level admin
    log stdout format rfc5424 local0

defaults
    mode tcp
    log global
    option log-health-checks
    timeout client 30s
    timeout server 30s
    # timeout connect and timeout check left unset: HAProxy's defaults

listen pg
    bind {net.ip['hap']}:5000
    server pg1 {net.ip['pg']}:5432 check inter {int(INTER_S * 1000)}ms fall 3 rise 2{extra}
"""


def stats(sock):
    """The pg/pg1 row of `show stat`, as a dict, or None."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(1.0)
        s.connect(sock)
        s.sendall(b"show stat\n")
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
    except OSError:
        return None
    lines = buf.decode(errors="replace").splitlines()
    if not lines or not lines[0].startswith("# "):
        return None
    head = lines[0][2:].split(",")
    for line in lines[1:]:
        row = dict(zip(head, line.split(",")))
        if row.get("pxname") == "pg" and row.get("svname") == "pg1":
            return row
    return None


class Poller(threading.Thread):
    """Polls the stats socket every POLL_S and keeps every change of (status, chkfail,
    check_status) with its monotonic time."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.changes = []   # (t, status, chkfail, chkdown, check_status, check_duration)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.last = None

    def run(self):
        while not self.stop.is_set():
            row = stats(self.sock)
            t = now()
            if row:
                key = (row.get("status"), int(row.get("chkfail") or 0), int(row.get("chkdown") or 0),
                       row.get("check_status"))
                if key != (self.last[1:5] if self.last else None):
                    entry = (t,) + key + (row.get("check_duration"),)
                    with self.lock:
                        self.changes.append(entry)
                        self.last = entry
            time.sleep(POLL_S)

    def current(self):
        with self.lock:
            return self.last

    def since(self, t0):
        with self.lock:
            return [c for c in self.changes if c[0] >= t0]

    def wait_status(self, pred, timeout):
        """Waits for a status satisfying pred; returns the time of the change that made it so
        (the poll that first saw it), or None."""
        deadline = now() + timeout
        while now() < deadline:
            cur = self.current()
            if cur and pred(cur[1]):
                return cur[0]
            time.sleep(POLL_S / 2)
        return None


def full_down(status):
    return status == "DOWN"


def full_up(status):
    return status == "UP"


# -- one case -----------------------------------------------------------------------------------
def run_case(case, reps, prefix, subnet):
    kind = case[len("haproxy-"):].replace("-fastinter", "")
    fastinter = case.endswith("-fastinter")
    rundir = os.path.join(BASE, prefix)
    shutil.rmtree(rundir, ignore_errors=True)
    os.makedirs(rundir)
    ensure_template()

    figures = {"down_after_s": "s; from the fault's injection to the first poll of the stats socket that shows the server DOWN (null: never DOWN)",
               "checks_failed_before_down_count": "count; failed checks (chkfail increments) from the fault to DOWN (null: never DOWN; for sigstop: failed checks during the whole fault)"}
    if kind == "kill":
        figures["up_after_restart_s"] = ("s; from the restart of postgres (spawned 10 s after the kill, "
                                         "whether or not DOWN yet) to the first poll that shows UP again")
        figures["postgres_ready_after_restart_s"] = "s; from the restart to postmaster.pid reading `ready` (crash recovery)"
    elif kind == "sigstop":
        figures["up_after_cont_s"] = "s; from kill -CONT to the first poll showing UP (null: never went DOWN)"
        figures["checks_failed_count"] = "count; failed checks (chkfail increments) from -STOP to 5 s after -CONT"
    else:
        figures["up_after_heal_s"] = "s; from the removal of the drop rules to the first poll showing UP again"
    fault = {"kill": {"kind": "kill -9 of the postmaster", "restart_after_s": RESTART_AFTER_S},
             "sigstop": {"kind": "kill -STOP of the postmaster, then -CONT", "duration_s": FAULT_S},
             "path-drop": {"kind": "nftables drop of every packet between hap and pg, both directions (on the bridge)",
                           "duration_s": FAULT_S}}[kind]
    fault["injected_at"] = "at a uniformly random phase of the check schedule (steady UP, then 0.5-2.5 s)"
    server_line = f"server pg1 <pg>:5432 check inter 2s fall 3 rise 2{' fastinter 500ms' if fastinter else ''}"
    fx = Fixture(
        case, FAMILY,
        description={"kill": "kill -9 of the PostgreSQL postmaster behind HAProxy (connections refused with RST); restarted 10 s later",
                     "sigstop": "SIGSTOP of the PostgreSQL postmaster behind HAProxy for 20 s (the kernel still completes handshakes into the listen backlog)",
                     "path-drop": "every packet between HAProxy and PostgreSQL dropped for 20 s, then healed"}[kind]
        + (" (fastinter 500ms)" if fastinter else ""),
        setup={"haproxy": f"mode tcp; {server_line}; plain layer-4 connect check; timeout connect and timeout check unset (defaults: the check's connect times out after inter)",
               "postgres": "PostgreSQL 15, default settings, listen on its namespace's address",
               "observation": f"stats socket `show stat` polled every {int(POLL_S * 1000)} ms (monotonic clock)",
               "hosts": ["hap", "pg"]},
        fault=fault, figures=figures, mirror=f"{case}.toml")

    sock = os.path.join(rundir, "hap.sock")
    cfg = os.path.join(rundir, "haproxy.cfg")
    with Net(prefix, subnet, ["hap", "pg"]) as net:
        with open(cfg, "w") as f:
            f.write(haproxy_cfg(net, sock, fastinter))
        pg = Postgres(net, "pg", rundir)
        pg.start()
        ok, _ = wait_until(pg.ready, 30)
        assert ok, "postgres did not start"
        net.spawn("hap", ["/usr/sbin/haproxy", "-db", "-f", cfg], os.path.join(rundir, "haproxy.log"))
        ok, _ = wait_until(lambda: stats(sock), 10)
        assert ok, "haproxy did not start"
        poller = Poller(sock)
        poller.start()
        try:
            for rep in range(reps):
                # steady UP (full health), then a random phase of the check schedule
                assert poller.wait_status(full_up, 30), f"server not UP before rep {rep}"
                time.sleep(random.uniform(0.5, 2.5))
                cur = poller.current()
                assert cur[1] == "UP", f"server not steadily UP before rep {rep}: {cur}"
                fail0 = cur[2]
                extra = {}
                if kind == "kill":
                    figs, extra = rep_kill(net, pg, poller, fail0)
                elif kind == "sigstop":
                    figs, extra = rep_sigstop(net, pg, poller, fail0)
                else:
                    figs, extra = rep_path_drop(net, poller, fail0)
                fx.add(figs, **extra)
                fx.write()   # after every repetition: a partial fixture survives an interruption
        finally:
            poller.stop.set()
            net.heal_all()
    return fx


def timeline(poller, t0):
    return [{"t_s": round(c[0] - t0, 3), "status": c[1], "chkfail": c[2], "chkdown": c[3],
             "check_status": c[4], "check_duration_ms": c[5]} for c in poller.since(t0 - 2 * INTER_S)]


def failed_between(poller, fail0, t_end):
    last = [c for c in poller.since(0) if c[0] <= t_end]
    return (last[-1][2] - fail0) if last else None


def rep_kill(net, pg, poller, fail0):
    pid = pg.pid()
    t0 = now()
    os.kill(pid, 9)
    t_down = poller.wait_status(full_down, RESTART_AFTER_S - 0.05)
    remaining = t0 + RESTART_AFTER_S - now()
    if remaining > 0:
        time.sleep(remaining)
    # the children exit on postmaster death; postgres cannot start while they hold its shmem
    wait_until(pg.ns_empty, 10)
    t_restart = now()
    pg.start()
    _, t_ready = wait_until(pg.ready, 30, step=0.01)
    if t_down is None:
        t_down = poller.wait_status(full_down, 10)   # not expected: DOWN after the restart?
    t_up = poller.wait_status(full_up, 30)
    figs = {"down_after_s": rnd(t_down - t0) if t_down else None,
            "checks_failed_before_down_count": failed_between(poller, fail0, t_down) if t_down else None,
            "up_after_restart_s": rnd(t_up - t_restart) if t_up else None,
            "postgres_ready_after_restart_s": rnd(t_ready - t_restart) if t_ready else None}
    time.sleep(0.3)
    return figs, {"restart_at_s": rnd(t_restart - t0), "timeline": timeline(poller, t0)}


def rep_sigstop(net, pg, poller, fail0):
    pid = pg.pid()
    t0 = now()
    os.kill(pid, 19)
    t_down = poller.wait_status(full_down, FAULT_S)
    remaining = t0 + FAULT_S - now()
    if remaining > 0:
        time.sleep(remaining)
    t_cont = now()
    os.kill(pid, 18)
    t_up = None
    if t_down is not None:
        t_up = poller.wait_status(full_up, 30)
    time.sleep(5.0)
    fails = failed_between(poller, fail0, now())
    figs = {"down_after_s": rnd(t_down - t0) if t_down else None,
            "checks_failed_before_down_count": failed_between(poller, fail0, t_down) if t_down else None,
            "up_after_cont_s": rnd(t_up - t_cont) if t_up else None,
            "checks_failed_count": fails}
    return figs, {"cont_at_s": rnd(t_cont - t0), "timeline": timeline(poller, t0)}


def rep_path_drop(net, poller, fail0):
    t0 = now()
    key = net.drop("hap", "pg")
    t_down = poller.wait_status(full_down, FAULT_S)
    remaining = t0 + FAULT_S - now()
    if remaining > 0:
        time.sleep(remaining)
    t_heal = now()
    net.heal(key)
    t_up = poller.wait_status(full_up, 30)
    figs = {"down_after_s": rnd(t_down - t0) if t_down else None,
            "checks_failed_before_down_count": failed_between(poller, fail0, t_down) if t_down else None,
            "up_after_heal_s": rnd(t_up - t_heal) if t_up else None}
    time.sleep(0.3)
    return figs, {"heal_at_s": rnd(t_heal - t0), "timeline": timeline(poller, t0)}


def rnd(x):
    return round(x, 3)


def main():
    args = sys.argv[1:]
    if not args or args[0] == "--list":
        print("\n".join(CASES))
        return
    require_root()
    reps = DEFAULT_REPS
    if "--reps" in args:
        i = args.index("--reps")
        reps = int(args[i + 1])
        del args[i:i + 2]
    # --net N: run on network chN / 10.202.N (for concurrent runs)
    n = 1
    if "--net" in args:
        i = args.index("--net")
        n = int(args[i + 1])
        del args[i:i + 2]
    sel = CASES if args[0] == "--all" else args
    for case in sel:
        if case not in CASES:
            sys.exit(f"unknown case {case}; --list")
        log(f"{case}: {reps} repetitions on ch{n}")
        run_case(case, reps, f"ch{n}", f"10.202.{n}")


if __name__ == "__main__":
    main()
