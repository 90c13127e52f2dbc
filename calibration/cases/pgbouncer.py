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

CASES = [
    "pgbouncer-saturation",
    "pgbouncer-reserve-pool",
    "pgbouncer-reserve-pool-open",
    "pgbouncer-query-wait-timeout",
    "pgbouncer-login-retry-15s",
    "pgbouncer-login-retry-2s",
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


def start_bouncer(net, rep_dir, settings):
    """Writes pgbouncer.ini and starts PgBouncer in the foreground; waits until it answers."""
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
        f.write(f"postgres = host={net.ip['pg']} port={PG_PORT} dbname=postgres\n\n")
        f.write("[pgbouncer]\n")
        for k, v in conf.items():
            f.write(f"{k} = {v}\n")
    sh(f"chown -R postgres:postgres {rep_dir}")
    p = net.spawn("bouncer", ["/usr/sbin/pgbouncer", ini], os.path.join(rep_dir, "pgbouncer.log"),
                  user="postgres")
    ok, _ = wait_until(lambda: net.run("client", f"{PGBIN}/pg_isready -h {net.ip['bouncer']}"
                                       f" -p {BOUNCER_PORT} -U postgres -d postgres", check=False, capture=False,
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


def log_times(path, needle, since):
    """Seconds after `since` (monotonic) of the PgBouncer log lines that contain `needle`: the
    log's wall-clock stamps (ms) turned monotonic through the clocks' current offset."""
    import datetime
    off = time.time() - now()
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            if needle not in line:
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


RUNNERS = {
    "pgbouncer-saturation": case_saturation,
    "pgbouncer-reserve-pool": case_reserve_pool,
    "pgbouncer-reserve-pool-open": lambda: case_reserve_pool("pgbouncer-reserve-pool-open", 0.5),
    "pgbouncer-query-wait-timeout": case_query_wait_timeout,
    "pgbouncer-login-retry-15s": lambda: case_login_retry("pgbouncer-login-retry-15s", 15),
    "pgbouncer-login-retry-2s": lambda: case_login_retry("pgbouncer-login-retry-2s", 2),
}


def main(argv):
    if len(argv) >= 3 and argv[0] == "--worker":
        {"load": worker_load, "probe": worker_probe}[argv[1]](json.loads(argv[2]))
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
