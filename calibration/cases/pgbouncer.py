#!/usr/bin/python3
"""PgBouncer calibration cases: real PgBouncer 1.18 in front of a real PostgreSQL 15, clients
in their own namespace.

Hosts (namespaces cb1-pg, cb1-bouncer, cb1-client on 10.203.1.0/24): PostgreSQL on pg:5432,
PgBouncer on bouncer:6432 (pool_mode = transaction, default_pool_size = 5, auth_type = trust
with a userlist, everything else at PgBouncer's defaults unless the case sets it), clients on
client. Data dirs and logs live under /tmp/calib-pgbouncer/.

The clients run as a worker: this same file started inside the client namespace with
`--worker MODE`, printing one JSON object on stdout. CLOCK_MONOTONIC is not namespaced, so the
worker's timestamps and the orchestrator's are on the same clock.

Usage: pgbouncer.py --list | CASE | --all
"""

import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from calib import Fixture, Net, log, now, require_root, sh, wait_until  # noqa: E402

FAMILY = "pgbouncer"
PREFIX, SUBNET = "cb1", "10.203.1"
HOSTS = ["pg", "bouncer", "client"]
BASE = "/tmp/calib-pgbouncer"
PGBIN = "/usr/lib/postgresql/15/bin"
PG_PORT, BOUNCER_PORT = 5432, 6432
SATURATION_NS = [1, 2, 5, 10, 20, 50]
REPS = 3           # saturation (6 loads of 10 s per repetition)
SHORT_REPS = 5     # reserve-pool, query-wait-timeout
LOGIN_RETRY_REPS = 10  # the retry phase against the restart varies: 10 repetitions show it
REFILL_REPS = 9    # pool refill: each repetition runs the three variants, in turns first
REFILL_POOL_SIZE = 20      # default_pool_size of each pool
REFILL_CLIENTS = 40        # closed-loop clients per loaded pool
REFILL_DBS = ("db1", "db2")  # two databases of one PostgreSQL: two pools of one PgBouncer
REFILL_SQL = "SELECT pg_sleep(0.01)"
REFILL_LOAD_S = 10.0       # each load worker's bound; warm-up + 1 s + refill take ~3 s
REFILL_POLL_S = 0.02       # SHOW POOLS every 20 ms
REFILL_VARIANTS = ["one_pool", "two_pools", "one_of_two"]

CASES = [
    "pgbouncer-saturation",
    "pgbouncer-reserve-pool",
    "pgbouncer-reserve-pool-open",
    "pgbouncer-query-wait-timeout",
    "pgbouncer-login-retry-15s",
    "pgbouncer-login-retry-2s",
    "pgbouncer-pool-refill",
]

COMMON_SETUP = {
    "topology": "3 network namespaces on one bridge: pg (PostgreSQL 15), bouncer (PgBouncer 1.18),"
                " client (Python 3 + psycopg2 threads); no added latency (same host, veth)",
    "pgbouncer": {"pool_mode": "transaction", "default_pool_size": 5, "auth_type": "trust",
                  "other settings": "PgBouncer 1.18 defaults (max_client_conn 100, min_pool_size 0,"
                                    " reserve_pool_size 0, server_login_retry 15,"
                                    " query_wait_timeout 120, server_connect_timeout 15)"},
    "postgresql": {"max_connections": 100, "fsync": "off (no writes are measured)"},
    "client": "psycopg2, autocommit (each query is its own transaction), one connection per"
              " thread kept open (reopened after an error) unless the case says otherwise",
}


# ------------------------------------------------------------------------------------------
# Worker side: runs inside the client namespace.
# ------------------------------------------------------------------------------------------

class Timeout(Exception):
    pass


def _wait_async(conn, deadline):
    import psycopg2.extensions as ext
    while True:
        state = conn.poll()
        if state == ext.POLL_OK:
            return
        left = deadline - now()
        if left <= 0:
            raise Timeout()
        fd = conn.fileno()
        if state == ext.POLL_READ:
            select.select([fd], [], [], left)
        elif state == ext.POLL_WRITE:
            select.select([], [fd], [], left)
        else:
            raise RuntimeError(f"poll state {state}")


def _err_text(e):
    s = [x.strip() for x in str(e).strip().splitlines() if x.strip()]
    return " | ".join(s) if s else type(e).__name__


def probe_once(dsn, timeout, sql="SELECT 1"):
    """A new connection, one query, closed; everything within `timeout` seconds.
    Returns (ok, error text or None, phase of failure)."""
    import psycopg2
    deadline = now() + timeout
    conn, phase = None, "connect"
    try:
        conn = psycopg2.connect(dsn, async_=1)
        _wait_async(conn, deadline)
        phase = "query"
        cur = conn.cursor()
        cur.execute(sql)
        _wait_async(conn, deadline)
        cur.fetchall()
        return True, None, None
    except Timeout:
        return False, "timeout", phase
    except Exception as e:  # psycopg2.Error and socket-level failures alike
        return False, _err_text(e), phase
    finally:
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


def worker_load(args):
    """N closed-loop threads, each with its own connection, running SQL back to back for SECS
    seconds after a barrier. Optionally polls PgBouncer's admin console (SHOW SERVERS, SHOW
    POOLS) every POLL seconds."""
    import psycopg2
    n, secs, sql = int(args["n"]), float(args["secs"]), args["sql"]
    dsn = args["dsn"]
    admin_dsn = args.get("admin_dsn")
    poll = float(args.get("poll", 0.1))
    attempts = [[] for _ in range(n)]   # per thread: (start, end, ok, err)
    connects = [[] for _ in range(n)]   # per thread: (start, end, ok, err)
    stop_at = [None]
    start = [None]

    def go():
        start[0] = now()
        stop_at[0] = start[0] + secs

    barrier = threading.Barrier(n + 1, action=go)

    def connect(i):
        t = now()
        try:
            c = psycopg2.connect(dsn, connect_timeout=5)
            c.autocommit = True
            connects[i].append((t, now(), True, None))
            return c
        except Exception as e:
            connects[i].append((t, now(), False, _err_text(e)))
            return None

    def run(i):
        conn = connect(i)
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            return
        bounded = 0
        while now() < stop_at[0] and bounded < 1_000_000:
            bounded += 1
            if conn is None:
                conn = connect(i)
                if conn is None:
                    time.sleep(0.05)
                    continue
            t = now()
            try:
                cur = conn.cursor()
                cur.execute(sql)
                cur.fetchall()
                attempts[i].append((t, now(), True, None))
            except Exception as e:
                attempts[i].append((t, now(), False, _err_text(e)))
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
        if conn is not None:
            conn.close()

    polls = []

    def poller():
        c = None
        while now() < stop_at[0] + 1.0:
            t = now()
            try:
                if c is None:
                    c = psycopg2.connect(admin_dsn, connect_timeout=2)
                    c.autocommit = True
                cur = c.cursor()
                cur.execute("SHOW SERVERS")
                cols = [d[0] for d in cur.description]
                servers = [dict(zip(cols, r)) for r in cur.fetchall()]
                cur.execute("SHOW POOLS")
                cols = [d[0] for d in cur.description]
                pools = [dict(zip(cols, r)) for r in cur.fetchall()]
                pool = next((p for p in pools if p["database"] == "postgres"), {})
                polls.append({"t": t, "servers": len([s for s in servers
                                                      if s["database"] == "postgres"]),
                              "cl_active": pool.get("cl_active"),
                              "cl_waiting": pool.get("cl_waiting"),
                              "sv_active": pool.get("sv_active"), "sv_idle": pool.get("sv_idle"),
                              "sv_used": pool.get("sv_used"), "sv_login": pool.get("sv_login"),
                              "maxwait_s": (pool.get("maxwait") or 0)
                              + (pool.get("maxwait_us") or 0) / 1e6})
            except Exception as e:
                polls.append({"t": t, "error": _err_text(e)})
                c = None
            time.sleep(max(0.0, poll - (now() - t)))
        if c is not None:
            c.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    barrier.wait(timeout=60)
    t0 = start[0]
    pt = None
    if admin_dsn:
        pt = threading.Thread(target=poller, daemon=True)
        pt.start()
    for th in threads:
        th.join(timeout=secs + 30)
    if pt:
        pt.join(timeout=5)
    out = {"t0": t0, "secs": secs, "n": n,
           "attempts": [a for per in attempts for a in per],
           "connects": [c for per in connects for c in per],
           "polls": polls}
    print(json.dumps(out))


def worker_probe(args):
    """Every PERIOD seconds (sequentially): a new connection through PgBouncer and SELECT 1,
    within TIMEOUT. A second thread polls PostgreSQL directly (new connection, SELECT 1) to see
    when it accepts connections. Runs until UNTIL (monotonic)."""
    until = float(args["until"])
    period, timeout = float(args["period"]), float(args["timeout"])
    probes, direct = [], []

    def direct_loop():
        bounded = 0
        while now() < until and bounded < 100_000:
            bounded += 1
            t = now()
            ok, err, phase = probe_once(args["pg_dsn"], 0.5)
            direct.append((t, now(), ok, err))
            time.sleep(max(0.0, 0.05 - (now() - t)))

    dt = threading.Thread(target=direct_loop, daemon=True)
    dt.start()
    nxt = now()
    bounded = 0
    while now() < until and bounded < 100_000:
        bounded += 1
        t = now()
        ok, err, phase = probe_once(args["dsn"], timeout)
        probes.append((t, now(), ok, err, phase))
        nxt += period
        if nxt > now():
            time.sleep(nxt - now())
        else:
            nxt = now()
    dt.join(timeout=5)
    print(json.dumps({"probes": probes, "direct": direct}))


def worker_refill(args):
    """The pool-refill monitor: polls PgBouncer's admin console (SHOW POOLS) every POLL seconds
    until every pool in DBS (the loaded ones) has POOL_SIZE server connections (the load's
    warm-up), SETTLE seconds more, then terminates every client backend of the databases in
    KILL_DBS at once from its own direct connection to PostgreSQL, and polls on until every
    pool in KILL_DBS is back to POOL_SIZE (or REFILL_TIMEOUT), then TAIL seconds more. Prints
    the polls and the kill's moments."""
    import psycopg2
    dbs, size, poll = args["dbs"], int(args["pool_size"]), float(args["poll"])
    kill_dbs = args["kill_dbs"]
    watched = args["watch"]  # every pool shown in the series (loaded or not)
    admin = psycopg2.connect(args["admin_dsn"], connect_timeout=5)
    admin.autocommit = True
    pg = psycopg2.connect(args["pg_dsn"], connect_timeout=5)
    pg.autocommit = True
    polls = []

    def sample():
        t = now()
        cur = admin.cursor()
        cur.execute("SHOW POOLS")
        cols = [d[0] for d in cur.description]
        t_done = now()
        per = {db: {"servers": 0, "login": 0, "cl_active": 0, "cl_waiting": 0} for db in watched}
        for row in cur.fetchall():
            p = dict(zip(cols, row))
            if p["database"] not in per:
                continue
            # Connected server connections, whatever they do; sv_login: logins in progress.
            per[p["database"]] = {
                "servers": sum(p.get(k) or 0
                               for k in ("sv_active", "sv_idle", "sv_used", "sv_tested")),
                "login": p.get("sv_login") or 0,
                "cl_active": p.get("cl_active") or 0, "cl_waiting": p.get("cl_waiting") or 0}
        # SHOW POOLS answers at some moment between sending and reading: the midpoint.
        polls.append({"t": (t + t_done) / 2, "pools": per})
        return per

    def pace(t):
        time.sleep(max(0.0, poll - (now() - t)))

    out = {"polls": polls, "t_warm": None, "t_kill": None}
    deadline = now() + float(args["warm_timeout"])
    while now() < deadline:
        t = now()
        per = sample()
        if all(per[db]["servers"] >= size for db in dbs):
            out["t_warm"] = now()
            break
        pace(t)
    if out["t_warm"] is None:
        print(json.dumps(out))
        return
    settle_until = out["t_warm"] + float(args["settle"])
    while now() < settle_until:
        t = now()
        sample()
        pace(t)
    cur = pg.cursor()
    out["t_kill"] = now()
    cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                " AND datname = ANY(%s)", (kill_dbs,))
    out["killed"] = cur.fetchone()[0]
    out["t_kill_done"] = now()
    # Back: a poll that shows POOL_SIZE again after one that showed fewer (PgBouncer may not
    # have read the first FATALs yet when the first poll after the kill arrives).
    dropped = {db: False for db in kill_dbs}
    back = {db: None for db in kill_dbs}
    deadline = out["t_kill"] + float(args["refill_timeout"])
    tail = float(args["tail"])
    while now() < deadline:
        t = now()
        per = sample()
        for db in kill_dbs:
            if per[db]["servers"] < size:
                dropped[db] = True
            elif dropped[db] and back[db] is None:
                back[db] = polls[-1]["t"]
        if all(v is not None for v in back.values()) and now() >= max(back.values()) + tail:
            break
        pace(t)
    out["back"] = back
    admin.close()
    pg.close()
    print(json.dumps(out))


# ------------------------------------------------------------------------------------------
# Orchestrator side: root namespace.
# ------------------------------------------------------------------------------------------

def pg_dsn(net):
    return f"host={net.ip['pg']} port={PG_PORT} dbname=postgres user=postgres"


def bouncer_dsn(net, db="postgres"):
    return f"host={net.ip['bouncer']} port={BOUNCER_PORT} dbname={db} user=postgres"


def init_pg(case_dir):
    data = os.path.join(case_dir, "pgdata")
    sock = os.path.join(case_dir, "sock")
    os.makedirs(sock, exist_ok=True)
    sh(f"chown -R postgres:postgres {case_dir}")
    sh(f"runuser -u postgres -- {PGBIN}/initdb -D {data} -A trust -U postgres --no-sync"
       f" >{case_dir}/initdb.log 2>&1")
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"\nlisten_addresses = '*'\nport = {PG_PORT}\n"
                f"unix_socket_directories = '{sock}'\nmax_connections = 100\n"
                "shared_buffers = 32MB\nfsync = off\nsynchronous_commit = off\n"
                "log_line_prefix = '%m [%p] '\nlog_connections = off\n")
    with open(os.path.join(data, "pg_hba.conf"), "a") as f:
        f.write(f"\nhost all all {SUBNET}.0/24 trust\n")
    sh(f"chown -R postgres:postgres {case_dir}")
    return data


def start_pg(net, data, case_dir):
    p = net.spawn("pg", [f"{PGBIN}/postgres", "-D", data], os.path.join(case_dir, "pg.log"),
                  user="postgres")
    ok, _ = wait_until(lambda: net.run("pg", f"{PGBIN}/pg_isready -h {net.ip['pg']} -p {PG_PORT}"
                                       " -U postgres -d postgres",
                                       check=False, capture=False, timeout=10) == 0,
                       timeout=30, step=0.1)
    if not ok:
        raise RuntimeError("PostgreSQL did not start: see " + case_dir + "/pg.log")
    return p


def postmaster_pid(data):
    with open(os.path.join(data, "postmaster.pid")) as f:
        return int(f.readline().strip())


def start_bouncer(net, rep_dir, settings, databases=("postgres",)):
    """Writes pgbouncer.ini and starts PgBouncer in the foreground; waits until it answers.
    `databases`: the [databases] entries, each the PostgreSQL database of the same name (one
    pool per entry); readiness is checked through the first."""
    os.makedirs(rep_dir, exist_ok=True)
    userlist = os.path.join(rep_dir, "userlist.txt")
    with open(userlist, "w") as f:
        f.write('"postgres" ""\n')
    ini = os.path.join(rep_dir, "pgbouncer.ini")
    conf = {"listen_addr": "*", "listen_port": BOUNCER_PORT, "unix_socket_dir": "",
            "auth_type": "trust", "auth_file": userlist, "admin_users": "postgres",
            "pool_mode": "transaction", "default_pool_size": 5, "logfile": "", "pidfile": ""}
    conf.update(settings)
    with open(ini, "w") as f:
        f.write("[databases]\n")
        for db in databases:
            f.write(f"{db} = host={net.ip['pg']} port={PG_PORT} dbname={db}\n")
        f.write("\n")
        f.write("[pgbouncer]\n")
        for k, v in conf.items():
            f.write(f"{k} = {v}\n")
    sh(f"chown -R postgres:postgres {rep_dir}")
    p = net.spawn("bouncer", ["/usr/sbin/pgbouncer", ini], os.path.join(rep_dir, "pgbouncer.log"),
                  user="postgres")
    ok, _ = wait_until(lambda: net.run("client", f"{PGBIN}/pg_isready -h {net.ip['bouncer']}"
                                       f" -p {BOUNCER_PORT} -U postgres -d {databases[0]}", check=False, capture=False,
                                       timeout=10) == 0, timeout=20, step=0.1)
    if not ok:
        raise RuntimeError("PgBouncer did not start: see " + rep_dir + "/pgbouncer.log")
    return p


def stop_proc(p, timeout=10):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def spawn_worker(net, mode, args, errlog):
    cmd = ["ip", "netns", "exec", net.ns("client"), "/usr/bin/python3", os.path.abspath(__file__),
           "--worker", mode, json.dumps(args)]
    f = open(errlog, "ab")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=f, start_new_session=True)
    net.procs.append(p)
    return p


def collect(p, timeout):
    out, _ = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"worker failed ({p.returncode})")
    return json.loads(out)


def run_load(net, rep_dir, n, secs, sql, poll_admin=False):
    args = {"n": n, "secs": secs, "sql": sql, "dsn": bouncer_dsn(net)}
    if poll_admin:
        args["admin_dsn"] = bouncer_dsn(net, "pgbouncer")
    p = spawn_worker(net, "load", args, os.path.join(rep_dir, "worker.err"))
    return collect(p, timeout=secs + 120)


def pct(xs, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


def load_figures(res):
    """qps (completed in [t0, t0+secs]) and latency percentiles of the successful attempts."""
    t0, secs = res["t0"], res["secs"]
    done = [a for a in res["attempts"] if a[1] <= t0 + secs]
    ok = [a for a in done if a[2]]
    lat = [(a[1] - a[0]) * 1000 for a in ok]
    return {
        "qps": round(len(ok) / secs, 2),
        "p50": round(pct(lat, 50), 2) if lat else None,
        "p99": round(pct(lat, 99), 2) if lat else None,
        "errors": len(done) - len(ok),
    }


def log_times(path, needle, since, also=None):
    """Seconds after `since` (monotonic) of the PgBouncer log lines that contain `needle` (and
    `also`, if given): the log's wall-clock stamps (ms) turned monotonic through the clocks'
    current offset. Also reads PostgreSQL's log, whose prefix (%m) has the same form."""
    import datetime
    off = time.time() - now()
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            if needle not in line or (also is not None and also not in line):
                continue
            try:
                stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
            except ValueError:
                continue
            wall = stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
            out.append(round(wall - off - since, 3))
    return out


def new_case_dir(case):
    d = os.path.join(BASE, case)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


# -- cases -----------------------------------------------------------------------------------

def case_saturation():
    case = "pgbouncer-saturation"
    figures = {}
    for n in SATURATION_NS:
        figures[f"qps_n{n}"] = (f"queries/s; successful SELECT pg_sleep(0.05) completed per second"
                                f" by {n} closed-loop client(s) over the 10 s load")
        figures[f"latency_p50_ms_n{n}"] = (f"ms; median client-side latency (query sent to result"
                                           f" read, queueing in PgBouncer included), {n} client(s)")
        figures[f"latency_p99_ms_n{n}"] = f"ms; 99th percentile of the same, {n} client(s)"
    fx = Fixture(case, FAMILY,
                 "Closed-loop saturation of a transaction pool of 5: N clients each run"
                 " SELECT pg_sleep(0.05) back to back for 10 s, N in 1, 2, 5, 10, 20, 50.",
                 dict(COMMON_SETUP, load="N threads, each its own connection to PgBouncer,"
                      " `SELECT pg_sleep(0.05)` back to back (no think time), 10 s after all"
                      " have connected; a fresh PgBouncer per N and repetition"),
                 {"kind": "none", "detail": "no fault: load only"},
                 figures, f"calibration/scenarios/{case}.toml")
    cdir = new_case_dir(case)
    with Net(PREFIX, SUBNET, HOSTS) as net:
        data = init_pg(cdir)
        start_pg(net, data, cdir)
        for rep in range(REPS):
            figs, extra = {}, {}
            for n in SATURATION_NS:
                rdir = os.path.join(cdir, f"rep{rep}-n{n}")
                b = start_bouncer(net, rdir, {})
                res = run_load(net, rdir, n, 10.0, "SELECT pg_sleep(0.05)")
                stop_proc(b)
                f = load_figures(res)
                figs[f"qps_n{n}"] = f["qps"]
                figs[f"latency_p50_ms_n{n}"] = f["p50"]
                figs[f"latency_p99_ms_n{n}"] = f["p99"]
                extra[f"errors_n{n}"] = f["errors"]
                log(f"  n={n}: {f}")
            fx.add(figs, **extra)
    fx.write()


def case_reserve_pool(case="pgbouncer-reserve-pool", sleep_s=0.05):
    """N = 20 with a reserve pool. With 50 ms queries (the case the brief asks for) no client
    waits the 1 s reserve_pool_timeout; pgbouncer-reserve-pool-open runs 0.5 s queries, with
    which the 15 waiting clients wait ~1.5 s, so the reserve's opening is seen."""
    n = 20
    sql = f"SELECT pg_sleep({sleep_s:g})"
    figures = {
        "qps_n20": f"queries/s; successful {sql} per second, 20 closed-loop"
                   " clients, over the 10 s load",
        "latency_p50_ms_n20": "ms; median client-side latency, queueing included",
        "latency_p99_ms_n20": "ms; 99th percentile of the same",
        "reserve_open_s": "s; load start to the first admin-console poll (SHOW SERVERS, every"
                          " 0.1 s) that shows more than default_pool_size (5) server"
                          " connections; null: the reserve never opened during the 10 s",
        "servers_max_count": "count; most server connections of the pool seen in one poll",
        "maxwait_max_s": "s; largest SHOW POOLS maxwait (oldest waiting client's wait) seen",
    }
    fx = Fixture(case, FAMILY,
                 f"Saturation at N = 20 ({sql}) with reserve_pool_size = 5,"
                 " reserve_pool_timeout = 1 s: does the reserve open, and when?",
                 dict(COMMON_SETUP, pgbouncer=dict(COMMON_SETUP["pgbouncer"], reserve_pool_size=5,
                                                   reserve_pool_timeout=1),
                      load=f"20 threads, `{sql}` back to back, 10 s; PgBouncer's"
                           " admin console polled every 0.1 s (SHOW SERVERS, SHOW POOLS)"),
                 {"kind": "none", "detail": "no fault: load only"},
                 figures, f"calibration/scenarios/{case}.toml")
    cdir = new_case_dir(case)
    with Net(PREFIX, SUBNET, HOSTS) as net:
        data = init_pg(cdir)
        start_pg(net, data, cdir)
        for rep in range(SHORT_REPS):
            rdir = os.path.join(cdir, f"rep{rep}")
            b = start_bouncer(net, rdir, {"reserve_pool_size": 5, "reserve_pool_timeout": 1})
            res = run_load(net, rdir, n, 10.0, sql, poll_admin=True)
            stop_proc(b)
            f = load_figures(res)
            t0 = res["t0"]
            polls = [p for p in res["polls"] if "servers" in p and p["t"] <= t0 + 10.0]
            opened = next((p["t"] - t0 for p in polls if p["servers"] > 5), None)
            with open(os.path.join(rdir, "pgbouncer.log"), errors="replace") as lf:
                reserve_lines = sum(1 for line in lf if "reserve" in line.lower())
            fx.add({"qps_n20": f["qps"], "latency_p50_ms_n20": f["p50"],
                    "latency_p99_ms_n20": f["p99"],
                    "reserve_open_s": round(opened, 3) if opened is not None else None,
                    "servers_max_count": max((p["servers"] for p in polls), default=None),
                    "maxwait_max_s": round(max((p["maxwait_s"] for p in polls), default=0), 3)},
                   errors=f["errors"], polls=len(polls),
                   poll_errors=len([p for p in res["polls"] if "error" in p]),
                   log_lines_mentioning_reserve=reserve_lines,
                   server_connections_opened_at_s=log_times(
                       os.path.join(rdir, "pgbouncer.log"), "new connection to server", t0))
    fx.write()


def case_query_wait_timeout():
    case = "pgbouncer-query-wait-timeout"
    n, secs = 20, 20.0
    figures = {
        "first_error_s": "s; load start (all 20 clients connected, first queries sent) to the"
                         " first failed query (seen by the client; PgBouncer's log gives"
                         " query_wait_timeout as the reason of every such close)",
        "error_share": "ratio; failed queries / queries finished, over the 20 s load",
        "qps_ok": "queries/s; successful SELECT pg_sleep(1) per second over the 20 s load",
        "errors_count": "count; queries that failed over the 20 s load",
        "error_wait_p50_s": "s; median time a failed query waited before its error",
    }
    fx = Fixture(case, FAMILY,
                 "query_wait_timeout = 2 s with 20 closed-loop clients running SELECT pg_sleep(1)"
                 " on a transaction pool of 5 (a 4x overload: every client would wait ~3 s).",
                 dict(COMMON_SETUP, pgbouncer=dict(COMMON_SETUP["pgbouncer"],
                                                   query_wait_timeout=2),
                      load="20 threads, `SELECT pg_sleep(1)` back to back for 20 s; after an"
                           " error the thread reconnects (PgBouncer closes the client) and"
                           " goes on at once"),
                 {"kind": "none", "detail": "no fault: overload only"},
                 figures, f"calibration/scenarios/{case}.toml")
    cdir = new_case_dir(case)
    with Net(PREFIX, SUBNET, HOSTS) as net:
        data = init_pg(cdir)
        start_pg(net, data, cdir)
        for rep in range(SHORT_REPS):
            rdir = os.path.join(cdir, f"rep{rep}")
            b = start_bouncer(net, rdir, {"query_wait_timeout": 2})
            res = run_load(net, rdir, n, secs, "SELECT pg_sleep(1)")
            stop_proc(b)
            t0 = res["t0"]
            done = [a for a in res["attempts"] if a[1] <= t0 + secs]
            errs = [a for a in done if not a[2]]
            ok = [a for a in done if a[2]]
            kinds = {}
            for a in errs:
                kinds[a[3]] = kinds.get(a[3], 0) + 1
            # psycopg2 surfaces only libpq's "server closed the connection unexpectedly": the
            # FATAL query_wait_timeout that psql prints is lost. PgBouncer's log names the reason
            # of every close, so the reason is counted there.
            with open(os.path.join(rdir, "pgbouncer.log"), errors="replace") as lf:
                text = lf.read()
            log_qwt = text.count("closing because: query_wait_timeout")
            log_closes = text.count("closing because:")
            first = min((a[1] for a in errs), default=None)
            fx.add({"first_error_s": round(first - t0, 3) if first is not None else None,
                    "error_share": round(len(errs) / len(done), 4) if done else None,
                    "qps_ok": round(len(ok) / secs, 3),
                    "errors_count": len(errs),
                    "error_wait_p50_s": round(statistics.median(a[1] - a[0] for a in errs), 3)
                    if errs else None},
                   attempts=len(done), error_kinds=kinds,
                   pgbouncer_log_query_wait_timeout_closes=log_qwt,
                   pgbouncer_log_closes_all_reasons=log_closes,
                   ok_latency_p50_s=round(statistics.median(a[1] - a[0] for a in ok), 3)
                   if ok else None)
    fx.write()


def case_login_retry(case, retry):
    down_s, lead_s, tail_s = 10.0, 3.0, 20.0 if retry >= 10 else 10.0
    figures = {
        "first_error_s": "s; PostgreSQL stopped (SIGINT to the postmaster: fast shutdown) to the"
                         " first failed probe (its failure seen by the client)",
        "errors_count": "count; failed probes from the stop until the first success after it",
        "first_success_after_start_s": "s; PostgreSQL accepting connections again (first"
                                       " successful direct connection + SELECT 1, polled every"
                                       " 50 ms) to the first successful probe through PgBouncer",
        "outage_s": "s; first failed probe (failure seen) to the first successful probe after it"
                    " (success seen)",
        "pg_down_s": "s; PostgreSQL's own outage as direct polls see it: last successful direct"
                     " poll before the stop to first successful one after the start",
    }
    fx = Fixture(case, FAMILY,
                 f"server_login_retry = {retry} s: PostgreSQL is stopped (fast shutdown) for 10 s"
                 " and started again while a client opens a new connection through PgBouncer and"
                 " runs SELECT 1 every 100 ms (1 s timeout each).",
                 dict(COMMON_SETUP, pgbouncer=dict(COMMON_SETUP["pgbouncer"],
                                                   server_login_retry=retry),
                      load="one probe loop: every 100 ms (sequential; a slow probe delays the"
                           " next) a new connection to PgBouncer, SELECT 1, close; 1 s timeout for"
                           " the whole probe. A second loop connects straight to PostgreSQL every"
                           " 50 ms to see when it accepts connections"),
                 {"kind": "postgres-stop",
                  "detail": f"{lead_s:.0f} s after the probes start, SIGINT to the postmaster"
                            " (pg_ctl stop -m fast: backends terminated, the process exits, its"
                            f" port then answers RST); {down_s:.0f} s after the signal,"
                            " postgres is started again on the same data directory"},
                 figures, f"calibration/scenarios/{case}.toml")
    fx.data["reading_the_extras"] = (
        "Per repetition, from PgBouncer's log (times in s after the stop): server_connect_failed_at_s"
        " are its server logins that failed (the RST of the stopped port), server_connected_at_s"
        " the ones that succeeded; their spacing is server_login_retry in action."
        " client_closes_noticed_late_at_s are clients whose close PgBouncer noticed only seconds"
        " after the client gave up (a client that was waiting for a server when the login failed"
        " is kept waiting, not refused); error_kinds is what the probes saw (psycopg2's text).")
    cdir = new_case_dir(case)
    with Net(PREFIX, SUBNET, HOSTS) as net:
        data = init_pg(cdir)
        start_pg(net, data, cdir)
        for rep in range(LOGIN_RETRY_REPS):
            rdir = os.path.join(cdir, f"rep{rep}")
            b = start_bouncer(net, rdir, {"server_login_retry": retry})
            t_begin = now()
            until = t_begin + lead_s + down_s + tail_s
            w = spawn_worker(net, "probe", {"until": until, "period": 0.1, "timeout": 1.0,
                                            "dsn": bouncer_dsn(net), "pg_dsn": pg_dsn(net)},
                             os.path.join(rdir, "worker.err"))
            time.sleep(max(0.0, t_begin + lead_s - now()))
            pid = postmaster_pid(data)
            t_stop = now()
            os.kill(pid, signal.SIGINT)

            def gone():
                try:
                    os.kill(pid, 0)
                    return False
                except ProcessLookupError:
                    return True
            _, t_exit = wait_until(gone, timeout=down_s)
            time.sleep(max(0.0, t_stop + down_s - now()))
            t_start = now()
            net.spawn("pg", [f"{PGBIN}/postgres", "-D", data], os.path.join(cdir, "pg.log"),
                      user="postgres")
            res = collect(w, timeout=until - now() + 60)
            stop_proc(b)
            probes, direct = res["probes"], res["direct"]
            blog = os.path.join(rdir, "pgbouncer.log")
            after = [p for p in probes if p[1] >= t_stop]
            fails = [p for p in after if not p[2]]
            first_fail = fails[0] if fails else None
            first_ok = None
            if first_fail:
                first_ok = next((p for p in after if p[2] and p[1] > first_fail[1]), None)
            d_ok_before = max((d[1] for d in direct if d[2] and d[1] <= t_stop), default=None)
            d_ok_after = next((d for d in direct if d[2] and d[0] >= t_start), None)
            pg_ready = d_ok_after[1] if d_ok_after else None
            counted = [p for p in fails if first_ok is None or p[1] < first_ok[1]]
            kinds = {}
            for p in counted:
                k = f"{p[4]}: {p[3]}"
                kinds[k] = kinds.get(k, 0) + 1
            # Failures that came back fast (refused at once) vs those that ran into the timeout.
            fast = [p for p in counted if p[1] - p[0] < 0.9]
            fx.add({
                "first_error_s": round(first_fail[1] - t_stop, 3) if first_fail else None,
                "errors_count": len(counted),
                "first_success_after_start_s": round(first_ok[1] - pg_ready, 3)
                if first_ok and pg_ready else None,
                "outage_s": round(first_ok[1] - first_fail[1], 3)
                if first_ok and first_fail else None,
                "pg_down_s": round(pg_ready - d_ok_before, 3)
                if pg_ready and d_ok_before else None,
            },
                first_failed_probe_started_after_stop_s=round(first_fail[0] - t_stop, 3)
                if first_fail else None,
                first_failed_probe_error=f"{first_fail[4]}: {first_fail[3]}" if first_fail else None,
                postmaster_exit_after_stop_s=round(t_exit - t_stop, 3) if t_exit else None,
                pg_started_after_stop_s=round(t_start - t_stop, 3),
                pg_ready_after_stop_s=round(pg_ready - t_stop, 3) if pg_ready else None,
                first_success_after_stop_s=round(first_ok[1] - t_stop, 3) if first_ok else None,
                probes_during=len([p for p in after
                                   if first_ok is None or p[1] <= first_ok[1]]),
                failed_fast_count=len(fast),
                failed_timeout_count=len(counted) - len(fast),
                server_connect_failed_at_s=log_times(blog, "closing because: connect failed", t_stop),
                server_connected_at_s=log_times(blog, "new connection to server", t_stop),
                client_closes_noticed_late_at_s=[
                    t for t, line in zip(log_times(blog, "client close request", t_stop),
                                         [x for x in open(blog, errors="replace")
                                          if "client close request" in x])
                    if "(age=0s)" not in line and "(age=1s)" not in line],
                error_kinds=kinds)
    fx.write()


def refill_variant(net, rdir, dbs, kill_dbs):
    """One variant of pgbouncer-pool-refill: a fresh PgBouncer with both pools configured,
    REFILL_CLIENTS closed-loop clients on each pool in `dbs` (one worker process per pool, so
    the pools' clients do not share a Python interpreter), and the refill monitor, which
    terminates the backends of the databases in `kill_dbs`. Returns the monitor's output and
    each load worker's."""
    b = start_bouncer(net, rdir, {"default_pool_size": REFILL_POOL_SIZE, "max_client_conn": 200},
                      databases=REFILL_DBS)
    try:
        loads = [spawn_worker(net, "load", {"n": REFILL_CLIENTS, "secs": REFILL_LOAD_S,
                                            "sql": REFILL_SQL, "dsn": bouncer_dsn(net, db)},
                              os.path.join(rdir, f"worker-{db}.err"))
                 for db in dbs]
        mon = spawn_worker(net, "refill", {
            "dbs": list(dbs), "kill_dbs": list(kill_dbs), "watch": list(REFILL_DBS),
            "pool_size": REFILL_POOL_SIZE,
            "poll": REFILL_POLL_S, "warm_timeout": 6.0, "settle": 1.0, "refill_timeout": 3.0,
            "tail": 0.3, "admin_dsn": bouncer_dsn(net, "pgbouncer"), "pg_dsn": pg_dsn(net)},
            os.path.join(rdir, "monitor.err"))
        m = collect(mon, timeout=30)
        loads = {db: collect(p, timeout=REFILL_LOAD_S + 120) for db, p in zip(dbs, loads)}
    finally:
        stop_proc(b)
    if m["t_kill"] is None:
        raise RuntimeError(f"pools never reached {REFILL_POOL_SIZE} server connections: {rdir}")
    return m, loads


def log_stamp(line):
    """A log line's wall-clock stamp (PgBouncer's and PostgreSQL's %m: ms, UTC) turned
    monotonic through the clocks' current offset; None for a line without one."""
    import datetime
    try:
        stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return None
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp() - (time.time() - now())


def server_logins(bouncer_log, pg_log, since):
    """Every server login after `since` (monotonic), per pool, oldest first, each as (start,
    received, end) in s after `since`: start is PgBouncer's 'new connection to server' line
    (logged when it connects, before the login), received and end are PostgreSQL's 'connection
    received' and 'connection authorized' lines of the backend that connection got (paired
    through PgBouncer's local port, which PostgreSQL logs as the client's port; the backend's
    pid then pairs received and authorized). What PostgreSQL did not date is None."""
    import re
    starts = []
    sv = re.compile(r": (\w+)/\w+@\S+ new connection to server \(from [\d.]+:(\d+)\)")
    with open(bouncer_log, errors="replace") as f:
        for line in f:
            m = sv.search(line)
            t = log_stamp(line) if m else None
            if t is not None and t >= since:
                starts.append((t - since, m.group(1), m.group(2)))
    received, authorized = {}, {}
    rx = re.compile(r"\[(\d+)\] LOG:  connection (received|authorized): (?:host=\S+ port=(\d+))?")
    with open(pg_log, errors="replace") as f:
        for line in f:
            m = rx.search(line)
            t = log_stamp(line) if m else None
            if t is None or t < since:
                continue
            if m.group(2) == "received":
                received[m.group(3)] = (m.group(1), t - since)
            else:
                authorized.setdefault(m.group(1), t - since)
    out = {}
    for t, db, port in sorted(starts):
        pid, t_received = received.get(port, (None, None))
        out.setdefault(db, []).append((t, t_received, authorized.get(pid)))
    return out


def backend_exits(pg_log, since):
    """s after `since` of the FATALs the terminated backends logged as they exited."""
    return [t for t in log_times(pg_log, "terminating connection due to administrator command",
                                 since) if t >= 0]


def refill_variant_figures(rdir, pg_log, dbs, m, loads):
    """One variant's refill, per pool whose backends were terminated (`dbs`): from the polls
    (the kill to the first poll back at the pool size), and from the logs (each login after the
    kill). Returns (per-pool figures, extras)."""
    t_kill = m["t_kill"]
    size = REFILL_POOL_SIZE
    logins = server_logins(os.path.join(rdir, "pgbouncer.log"), pg_log, t_kill)
    per = {}
    for db in dbs:
        back = m["back"].get(db)
        mine = logins.get(db, [])[:size]
        full = len(mine) == size and all(e is not None for _, _, e in mine)
        # Logins of this pool in progress together: the next login's backend started before
        # the previous one was authorized. Both stamps are PostgreSQL's own (ms); PgBouncer's
        # stamps are not used here, as they may lag its event loop.
        overlapping = sum(1 for (_, r, _), (_, _, e) in zip(mine[1:], mine)
                          if r is not None and e is not None and r < e)
        per[db] = {
            "after_kill_poll_s": round(back - t_kill, 4) if back is not None else None,
            "first_start_s": round(mine[0][0], 4) if mine else None,
            "last_end_s": round(mine[-1][2], 4) if full else None,
            "start_gaps_ms": [round((b[0] - a[0]) * 1000, 1) for a, b in zip(mine, mine[1:])],
            "login_ms": [round((e - s) * 1000, 1) for s, _, e in mine if e is not None],
            "fork_wait_ms": [round((r - s) * 1000, 1) for s, r, _ in mine if r is not None],
            "overlapping_logins": overlapping,
        }
    after = [p for p in m["polls"] if p["t"] > t_kill]
    # The count of server connections per pool around the kill: [ms after the kill, servers
    # and logins in progress of each watched pool], from 60 ms before it to 100 ms after the
    # last pool was back.
    ends = [v for v in m["back"].values() if v is not None]
    until = (max(ends) if ends else t_kill + 3.0) + 0.1
    series = [[round((p["t"] - t_kill) * 1000, 1)]
              + [x for db in REFILL_DBS
                 for x in (p["pools"][db]["servers"], p["pools"][db]["login"])]
              for p in m["polls"] if t_kill - 0.06 <= p["t"] <= until]
    first_full = {}
    for db in loads:
        t0 = loads[db]["t0"]
        full = next((p["t"] for p in m["polls"] if p["t"] >= t0
                     and p["pools"][db]["servers"] >= size), None)
        first_full[db] = round(full - t0, 4) if full is not None else None
    exits = backend_exits(pg_log, t_kill)
    for db in dbs:
        # Once every terminated backend has exited, the logins no longer share PostgreSQL with
        # the kill: the gaps between the login starts from then on are the pool's login cycle.
        starts = [s for s, _, _ in logins.get(db, [])[:size]]
        last_exit = max(exits, default=0.0)
        per[db]["gaps_after_exits_ms"] = [round((b - a) * 1000, 2)
                                          for a, b in zip(starts, starts[1:]) if a >= last_exit]
    extra = {
        "killed_backends": m["killed"],
        "kill_query_ms": round((m["t_kill_done"] - t_kill) * 1000, 2),
        "backend_exits_ms": [round(min(exits) * 1000, 1), round(max(exits) * 1000, 1)]
        if exits else None,
        "per_pool": {db: {k: v for k, v in per[db].items()} for db in dbs},
        "servers_min_after_kill": {db: min((p["pools"][db]["servers"] for p in after), default=None)
                                   for db in dbs},
        "logins_in_progress_max": {db: max((p["pools"][db]["login"] for p in after), default=None)
                                   for db in dbs},
        "series_columns": ["ms after the kill"] + [f"{db} {k}" for db in REFILL_DBS
                                                    for k in ("servers", "logins in progress")],
        "series": series,
        "initial_fill_s": first_full,
        "client_errors": {db: len([a for a in loads[db]["attempts"] if not a[2]]) for db in loads},
        "polls": len(m["polls"]),
    }
    return per, extra


def case_pool_refill():
    case = "pgbouncer-pool-refill"
    size, n = REFILL_POOL_SIZE, REFILL_CLIENTS
    refill = (f"from the pool's first server login after the kill (PgBouncer's 'new connection to"
              f" server' line, logged as it connects) to the end of its {size}th (PostgreSQL's"
              " 'connection authorized' line of that connection's backend); ms log stamps")
    figures = {
        "refill_one_pool_s": f"s; one pool under load (db1): {refill}",
        "refill_two_pools_s": "s; both pools under load: from the first login of either pool to"
                              f" the end of the {size}th login of the later pool (one after the"
                              " other: twice refill_one_pool_s; side by side: about the same)",
        "refill_ratio_two_to_one": "ratio; refill_two_pools_s / refill_one_pool_s of the same"
                                   " repetition",
        "refill_one_of_two_s": "s; both pools under load, only db1's backends terminated: db1's"
                               " refill as in refill_one_pool_s (one pool refilling, with the"
                               " client load of the two-pool variant)",
        "refill_ratio_two_to_one_of_two": "ratio; refill_two_pools_s / refill_one_of_two_s of the"
                                          " same repetition: two pools refilling against one,"
                                          " under the same client load",
        "login_ms_one_pool": f"ms; refill_one_pool_s / {size}: time per server connection opened",
        "login_ms_two_pools": f"ms; the later pool's own refill (its first login to the end of its"
                              f" {size}th) / {size}",
        "refill_overlap_two_pools": "ratio; how much the two pools' refills (first login to end"
                                    " of the last) overlap, over the shorter one: 1 side by"
                                    " side, 0 one after the other",
        "overlapping_logins_per_pool": "count; logins of one pool whose backend started"
                                       " (PostgreSQL's 'connection received') before the pool's"
                                       " previous login was authorized, summed over the"
                                       " variants' refilling pools (0: one login at a time per"
                                       " pool)",
        "refill_after_kill_one_pool_s": f"s; the kill (the terminate query sent) to the first"
                                        f" SHOW POOLS poll (every 20 ms) that shows the pool"
                                        f" back at {size} server connections, one pool; includes"
                                        " the kill itself (backends exit over ~10-40 ms) and the"
                                        " poll's 20 ms",
        "refill_after_kill_two_pools_s": "s; the same for the later of the two pools, both"
                                         " loaded",
        "login_gap_ms_after_exits_one_pool": "ms; mean gap between consecutive login starts of"
                                             " the pool (PgBouncer's log) that start after the"
                                             " last terminated backend exited (PostgreSQL's last"
                                             " FATAL): one login's whole cycle away from the"
                                             " kill's own work, one pool",
        "login_gap_ms_after_exits_two_pools": "ms; the same over both pools' own sequences, both"
                                              " refilling",
        "logins_in_progress_max": "count; the most server logins in progress (SHOW POOLS"
                                  " sv_login) in one pool at one poll after the kill, over the"
                                  " variants",
    }
    fx = Fixture(case, FAMILY,
                 f"Two transaction pools (databases db1 and db2 of one PostgreSQL, user postgres)"
                 f" of default_pool_size = {size} under {n} closed-loop clients each running"
                 f" {REFILL_SQL}: every server backend is terminated at once"
                 " (pg_terminate_backend); how fast does a pool get its connections back, and do"
                 " the two pools refill side by side or one after the other? Each repetition"
                 " also runs, in the same sitting, the one-pool variant (only db1 loaded and"
                 " killed) and the one-of-two variant (both loaded, only db1's backends"
                 " killed).",
                 dict(COMMON_SETUP,
                      pgbouncer=dict(COMMON_SETUP["pgbouncer"], default_pool_size=size,
                                     max_client_conn=200,
                                     databases="db1 and db2 (PostgreSQL databases of those"
                                               " names on the same server): one pool each"),
                      postgresql=dict(COMMON_SETUP["postgresql"], log_connections="on"),
                      load=f"per loaded pool, one worker process of {n} threads, `{REFILL_SQL}`"
                           " back to back; a thread whose query fails reconnects at once. The"
                           " monitor polls SHOW POOLS every 20 ms, waits until every loaded pool"
                           f" has {size} server connections, 1 s more, then kills; a fresh"
                           " PgBouncer per variant and repetition; the three variants (one_pool,"
                           " two_pools, one_of_two) take turns at running first"),
                 {"kind": "pg-terminate-backend",
                  "detail": "from the monitor's own superuser connection straight to PostgreSQL:"
                            " SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                            " AND datname = ANY(the killed databases): every server connection"
                            " of the refilling pools (db1, or db1 and db2); PostgreSQL keeps"
                            " accepting connections"},
                 figures, f"calibration/scenarios/{case}.toml")
    fx.data["reading_the_extras"] = (
        "Per repetition and variant (one_pool, two_pools, one_of_two), times after the kill: "
        "per_pool gives each pool's first login start and last login end (s), the gaps between "
        "its login starts, each login's own time (ms, PgBouncer's connect to PostgreSQL's "
        "authorized line) and its part before the backend started (fork_wait_ms: PgBouncer's "
        "connect to 'connection received'), the gaps between the login starts after the last "
        "terminated backend exited, and its overlapping logins; backend_exits_ms the first and "
        "last terminated backend's FATAL in PostgreSQL's log; series the SHOW POOLS count of "
        "each pool around the kill (columns in series_columns: 'servers' are connected server "
        "connections, 'logins in progress' sv_login); initial_fill_s the load's start to the "
        f"first poll with {size} server connections (the warm-up of a fresh PgBouncer, which "
        "already had the one connection its readiness check opened on db1).")
    cdir = new_case_dir(case)
    with Net(PREFIX, SUBNET, HOSTS) as net:
        data = init_pg(cdir)
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            # Dates each server login on PostgreSQL's side too.
            f.write("log_connections = on\n")
        start_pg(net, data, cdir)
        for db in REFILL_DBS:
            net.run("pg", f"{PGBIN}/createdb -h {net.ip['pg']} -p {PG_PORT} -U postgres {db}",
                    user="postgres")
        pg_log = os.path.join(cdir, "pg.log")
        for rep in range(REFILL_REPS):
            # Each order of the three variants once per three repetitions: a drift of the
            # machine's load over the sitting falls on all of them alike.
            order = REFILL_VARIANTS[rep % 3:] + REFILL_VARIANTS[:rep % 3]
            res = {}
            for variant in order:
                loaded, killed = {"one_pool": (REFILL_DBS[:1], REFILL_DBS[:1]),
                                  "two_pools": (REFILL_DBS, REFILL_DBS),
                                  "one_of_two": (REFILL_DBS, REFILL_DBS[:1])}[variant]
                rdir = os.path.join(cdir, f"rep{rep}-{variant}")
                m, loads = refill_variant(net, rdir, loaded, killed)
                res[variant] = refill_variant_figures(rdir, pg_log, killed, m, loads)
                log(f"  {variant}: " + json.dumps({db: {k: v for k, v in p.items()
                                                        if not isinstance(v, list)}
                                                   for db, p in res[variant][0].items()}))
            one, two, half = res["one_pool"][0], res["two_pools"][0], res["one_of_two"][0]

            def own(p):
                return p["last_end_s"] - p["first_start_s"] if p["last_end_s"] is not None else None
            r1, r12 = own(one["db1"]), own(half["db1"])
            r2 = own2 = overlap = None
            if all(two[db]["last_end_s"] is not None for db in REFILL_DBS):
                spans = [(two[db]["first_start_s"], two[db]["last_end_s"]) for db in REFILL_DBS]
                r2 = max(e for _, e in spans) - min(s for s, _ in spans)
                later = max(spans, key=lambda x: x[1])
                own2 = later[1] - later[0]
                shorter = min(e - s for s, e in spans)
                common = min(e for _, e in spans) - max(s for s, _ in spans)
                overlap = round(max(0.0, common) / shorter, 3) if shorter > 0 else None
            a1 = one["db1"]["after_kill_poll_s"]
            a2 = [two[db]["after_kill_poll_s"] for db in REFILL_DBS]
            pools = [one["db1"], half["db1"]] + [two[db] for db in REFILL_DBS]
            in_progress = [v for x in res.values()
                           for v in x[1]["logins_in_progress_max"].values() if v is not None]
            after1 = one["db1"]["gaps_after_exits_ms"]
            after2 = [g for db in REFILL_DBS for g in two[db]["gaps_after_exits_ms"]]
            fx.add({"refill_one_pool_s": round(r1, 4) if r1 is not None else None,
                    "refill_two_pools_s": round(r2, 4) if r2 is not None else None,
                    "refill_ratio_two_to_one": round(r2 / r1, 3) if r1 and r2 else None,
                    "refill_one_of_two_s": round(r12, 4) if r12 is not None else None,
                    "refill_ratio_two_to_one_of_two": round(r2 / r12, 3) if r12 and r2 else None,
                    "login_ms_one_pool": round(r1 * 1000 / size, 2) if r1 else None,
                    "login_ms_two_pools": round(own2 * 1000 / size, 2) if own2 else None,
                    "refill_overlap_two_pools": overlap,
                    "overlapping_logins_per_pool": sum(p["overlapping_logins"] for p in pools),
                    "refill_after_kill_one_pool_s": a1,
                    "refill_after_kill_two_pools_s": None if None in a2 else max(a2),
                    "login_gap_ms_after_exits_one_pool": round(statistics.mean(after1), 2)
                    if after1 else None,
                    "login_gap_ms_after_exits_two_pools": round(statistics.mean(after2), 2)
                    if after2 else None,
                    "logins_in_progress_max": max(in_progress, default=None)},
                   order=order, one_pool=res["one_pool"][1], two_pools=res["two_pools"][1],
                   one_of_two=res["one_of_two"][1])
    fx.write()


RUNNERS = {
    "pgbouncer-saturation": case_saturation,
    "pgbouncer-reserve-pool": case_reserve_pool,
    "pgbouncer-reserve-pool-open": lambda: case_reserve_pool("pgbouncer-reserve-pool-open", 0.5),
    "pgbouncer-query-wait-timeout": case_query_wait_timeout,
    "pgbouncer-login-retry-15s": lambda: case_login_retry("pgbouncer-login-retry-15s", 15),
    "pgbouncer-login-retry-2s": lambda: case_login_retry("pgbouncer-login-retry-2s", 2),
    "pgbouncer-pool-refill": case_pool_refill,
}


def main(argv):
    if len(argv) >= 3 and argv[0] == "--worker":
        {"load": worker_load, "probe": worker_probe, "refill": worker_refill}[argv[1]](json.loads(argv[2]))
        return
    if not argv or argv[0] == "--list":
        print("\n".join(CASES))
        return
    require_root()
    os.makedirs(BASE, exist_ok=True)
    todo = CASES if argv[0] == "--all" else argv
    for c in todo:
        if c not in RUNNERS:
            sys.exit(f"unknown case {c}; --list")
    for c in todo:
        log(f"case {c}")
        RUNNERS[c]()


if __name__ == "__main__":
    main(sys.argv[1:])
