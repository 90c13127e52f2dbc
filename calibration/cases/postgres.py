#!/usr/bin/python3
"""PostgreSQL 15 streaming replication under faults, measured on the real server.

Topology (one Net per case): the primary in namespace `p`, standbys `s1` and `s2` made with
pg_basebackup -R (application_name s1, s2 in primary_conninfo), and a client in `c` (psycopg2)
that commits one small INSERT every 100 ms; a commit that has not returned blocks the next.
Every process runs in the foreground (`postgres -D dir` as user postgres) so the Net's teardown
ends it. postgresql.conf keeps its defaults except what the case sets.

Clocks: the client writes each commit's start and end on the monotonic clock. Server log lines
carry `%n` (Unix epoch, ms); they are converted to the monotonic clock with the offset between
time.time() and time.monotonic() read at the fault. pg_stat_replication is polled every 50 ms
over the primary's Unix socket (a filesystem path, so reachable from the root namespace; the
packet faults do not touch it).

Usage: postgres.py --list | CASE | --all          (run by calibration/run; needs root)
Internal: postgres.py --client HOST OUTFILE       (the client loop, started inside `c`)
"""

import os
import shutil
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

BIN = "/usr/lib/postgresql/15/bin"
BASE = "/tmp/calib-postgres"
HERE = os.path.abspath(__file__)
COMMIT_INTERVAL_S = 0.1

CASES = {
    # name: (prefix, subnet, settings)
    "pg-sync-kill-first1": ("cp1", "10.204.1", {"synchronous_standby_names": "'FIRST 1 (s1)'"}),
    "pg-sync-kill-any1": ("cp2", "10.204.2", {"synchronous_standby_names": "'ANY 1 (s1, s2)'"}),
    "pg-wal-timeouts": ("cp3", "10.204.3", {"wal_sender_timeout": "'10s'",
                                            "wal_receiver_timeout": "'10s'"}),
}
REPS = {"pg-sync-kill-first1": 10, "pg-sync-kill-any1": 10, "pg-wal-timeouts": 7}
if os.environ.get("PG_CALIB_REPS"):  # a dry run: fewer repetitions
    REPS = {c: int(os.environ["PG_CALIB_REPS"]) for c in REPS}
RESTART_AFTER_S = 10.0
DROP_FOR_S = 30.0


# -- the client (runs inside namespace c) ---------------------------------------------------------
def client_main(host, outfile, max_s=1800.0):
    """Commits one INSERT every 100 ms; writes `start end ok` per commit (monotonic seconds)."""
    import psycopg2
    end_at = time.monotonic() + max_s
    out = open(outfile, "a", buffering=1)
    conn = None
    next_start = time.monotonic()
    while time.monotonic() < end_at:
        if conn is None:
            try:
                conn = psycopg2.connect(host=host, user="postgres", dbname="postgres",
                                        connect_timeout=5)
            except Exception as e:
                out.write(f"# connect failed {time.monotonic():.6f} {e!r}\n")
                time.sleep(0.5)
                continue
        delay = next_start - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.monotonic()
        next_start = t0 + COMMIT_INTERVAL_S
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO t (v) VALUES (%s)", (int(t0 * 1000) % 1000000,))
            conn.commit()
            out.write(f"{t0:.6f} {time.monotonic():.6f} 1\n")
        except Exception as e:
            out.write(f"{t0:.6f} {time.monotonic():.6f} 0 {type(e).__name__}\n")
            try:
                conn.close()
            except Exception:
                pass
            conn = None


def read_commits(path):
    """[(start, end, ok)] from the client's file."""
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) >= 3:
                rows.append((float(parts[0]), float(parts[1]), parts[2] == "1"))
    return rows


# -- the cluster ---------------------------------------------------------------------------------
class Cluster:
    def __init__(self, net, case, settings):
        self.net, self.case, self.settings = net, case, settings
        self.dir = os.path.join(BASE, case)
        self.procs = {}
        self.poll_rows = []          # (monotonic, {app: (state, sync_state)})
        self._poll_stop = threading.Event()
        self._poll_thread = None

    def data(self, node):
        return os.path.join(self.dir, node)

    def sock(self, node):
        """Outside the data directory: pg_basebackup would copy the socket's lock file."""
        return os.path.join(self.dir, f"sock-{node}")

    def logfile(self, node):
        return os.path.join(self.dir, f"{node}.log")

    def conf_common(self, node):
        lines = [
            "listen_addresses = '*'",
            f"unix_socket_directories = '{self.sock(node)}'",
            "log_line_prefix = '%n [%p] %b '",
        ]
        lines += [f"{k} = {v}" for k, v in self.settings.items()]
        return "\n".join(lines) + "\n"

    def setup(self):
        from calib import log, sh
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(BASE, 0o755)
        p = self.data("p")
        for n in ("p", "s1", "s2"):
            os.makedirs(self.sock(n))
            shutil.chown(self.sock(n), "postgres", "postgres")
        sh(f"runuser -u postgres -- {BIN}/initdb -D {p} -A trust -U postgres --no-sync")
        with open(os.path.join(p, "postgresql.conf"), "a") as f:
            f.write("\n# calibration\n" + self.conf_common("p"))
        with open(os.path.join(p, "pg_hba.conf"), "a") as f:
            f.write(f"host all all {self.net.subnet}.0/24 trust\n"
                    f"host replication all {self.net.subnet}.0/24 trust\n")
        self.start("p")
        self.wait_ready("p")
        # local: the synchronous standby does not exist yet, a synchronous commit would wait for it
        self.sql("p", "SET synchronous_commit = local; CREATE TABLE t (id bigserial PRIMARY KEY, v int, at timestamptz DEFAULT now())")
        for s in ("s1", "s2"):
            d = self.data(s)
            self.net.run(s, f"{BIN}/pg_basebackup -h {self.net.ip['p']} -U postgres -D {d} -R "
                            f"-X stream -c fast", user="postgres", timeout=120)
            with open(os.path.join(d, "postgresql.auto.conf"), "a") as f:
                f.write(f"unix_socket_directories = '{self.sock(s)}'\n"
                        f"primary_conninfo = 'host={self.net.ip['p']} port=5432 user=postgres "
                        f"application_name={s}'\n")
            self.start(s)
            self.wait_ready(s)
        log(f"{self.case}: cluster up")
        self._poll_thread = threading.Thread(target=self._poll, daemon=True)
        self._poll_thread.start()

    def start(self, node):
        self.procs[node] = self.net.spawn(node, [f"{BIN}/postgres", "-D", self.data(node)],
                                          self.logfile(node), user="postgres")

    def postmaster_pid(self, node):
        with open(os.path.join(self.data(node), "postmaster.pid")) as f:
            return int(f.readline().strip())

    def connect(self, node):
        import psycopg2
        c = psycopg2.connect(host=self.sock(node), user="postgres", dbname="postgres",
                             connect_timeout=3)
        c.autocommit = True
        return c

    def sql(self, node, q):
        c = self.connect(node)
        try:
            with c.cursor() as cur:
                cur.execute(q)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()

    def wait_ready(self, node, timeout=60):
        from calib import wait_until

        def ok():
            try:
                self.sql(node, "SELECT 1")
                return True
            except Exception:
                return False
        v, _ = wait_until(ok, timeout, step=0.1)
        if not v:
            raise RuntimeError(f"{node} did not come up; see {self.logfile(node)}")

    def _poll(self):
        conn = None
        deadline = time.monotonic() + 3600
        while not self._poll_stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = self.connect("p")
                with conn.cursor() as cur:
                    cur.execute("SELECT application_name, state, sync_state FROM pg_stat_replication")
                    rows = {a: (st, ss) for a, st, ss in cur.fetchall()}
                self.poll_rows.append((time.monotonic(), rows))
            except Exception:
                conn = None
            time.sleep(0.05)

    def stop_poll(self):
        self._poll_stop.set()
        if self._poll_thread:
            self._poll_thread.join(timeout=5)

    def repl(self):
        """The latest poll: {app: (state, sync_state)}."""
        return self.poll_rows[-1][1] if self.poll_rows else {}

    def first_poll(self, after, pred, before=None):
        for t, rows in self.poll_rows:
            if t >= after and (before is None or t <= before) and pred(rows):
                return t
        return None

    def log_lines_after(self, node, wall_after, needle):
        """Monotonic-clock times are not in the log; returns the epoch times of lines with needle."""
        out = []
        try:
            with open(self.logfile(node), errors="replace") as f:
                for line in f:
                    if needle in line:
                        try:
                            ts = float(line.split()[0])
                        except ValueError:
                            continue
                        if ts >= wall_after:
                            out.append(ts)
        except FileNotFoundError:
            pass
        return out


def wall_offset():
    """time.time() - time.monotonic(), read a few times and the tightest pair kept."""
    best = None
    for _ in range(5):
        a = time.monotonic()
        w = time.time()
        b = time.monotonic()
        if best is None or b - a < best[0]:
            best = (b - a, w - (a + b) / 2)
    return best[1]


def start_client(net, cl):
    out = os.path.join(cl.dir, "client.txt")
    if os.path.exists(out):
        os.remove(out)
    net.spawn("c", ["/usr/bin/python3", HERE, "--client", net.ip["p"], out],
              os.path.join(cl.dir, "client.log"))
    return out


def healthy(cl, sync_needed):
    rows = cl.repl()
    if any(rows.get(s, (None,))[0] != "streaming" for s in ("s1", "s2")):
        return False
    return all(rows[s][1] in ("sync", "quorum") for s in sync_needed)


# -- cases ---------------------------------------------------------------------------------------
def kill_case(case):
    from calib import Fixture, Net, log, now, wait_until
    prefix, subnet, settings = CASES[case]
    ssn = settings["synchronous_standby_names"].strip("'")
    sync_needed = ["s1"] if ssn.startswith("FIRST") else ["s1", "s2"]
    fx = Fixture(
        case, "postgres",
        f"PostgreSQL 15 streaming replication, synchronous_standby_names = '{ssn}': s1's "
        "postmaster is killed with SIGKILL (its children, the walreceiver too, exit on "
        "postmaster death; the host stays up) and started again 10 s later, while a client "
        "commits one INSERT every 100 ms on the primary.",
        {"primary": "p", "standbys": ["s1", "s2"], "client": "c",
         "postgresql_conf": {"synchronous_standby_names": ssn, "synchronous_commit": "on"},
         "client_load": "one INSERT + COMMIT every 100 ms, one connection, next after the last returns"},
        {"kind": "kill -9 s1's postmaster", "restart_after_s": RESTART_AFTER_S},
        {"commit_stall_s": "s; the longest any commit took among those in flight from the kill "
                           "until 10 s after s1's restart (start to return)",
         "stall_after_restart_s": "s; from s1's restart (postgres -D started again) to the "
                                  "first commit that returns after it",
         "commits_during_outage_count": "count; commits that returned between the kill and the "
                                        "restart (10 s)"},
        f"{case}.toml")
    with Net(prefix, subnet, ["p", "s1", "s2", "c"]) as net:
        cl = Cluster(net, case, settings)
        cl.setup()
        commits_file = start_client(net, cl)
        for rep in range(REPS[case]):
            ok, _ = wait_until(lambda: healthy(cl, sync_needed), 60, step=0.1)
            if not ok:
                raise RuntimeError(f"rep {rep}: replication not healthy: {cl.repl()}")
            time.sleep(3.0)  # steady commits before the fault
            pid = cl.postmaster_pid("s1")
            off = wall_offset()
            t_kill = now()
            os.kill(pid, signal.SIGKILL)
            time.sleep(RESTART_AFTER_S - (now() - t_kill))
            t_restart = now()
            cl.start("s1")
            ok, _ = wait_until(lambda: healthy(cl, sync_needed), 60, step=0.05)
            time.sleep(10.0)  # let the window close
            commits = read_commits(commits_file)
            window_end = t_restart + 10.0
            relevant = [c for c in commits if c[1] >= t_kill and c[0] <= window_end]
            stall = max((e - s for s, e, _ in relevant), default=None)
            after = [e for s, e, k in commits if e > t_restart and k]
            first_after = min(after) - t_restart if after else None
            during = sum(1 for s, e, k in commits if k and t_kill < e <= t_restart)
            failed = sum(1 for s, e, k in commits if not k and e >= t_kill and s <= window_end)
            t_gone = cl.first_poll(t_kill, lambda r: r.get("s1", (None,))[0] != "streaming")
            t_back = cl.first_poll(t_restart, lambda r: r.get("s1", (None,))[0] == "streaming")
            t_sync = cl.first_poll(t_restart, lambda r: r.get("s1", (None, None))[1] in ("sync", "quorum"))
            # the last commit before the kill and the stalled one
            stalled = max(relevant, key=lambda c: c[1] - c[0]) if relevant else None
            fx.add({"commit_stall_s": round(stall, 3) if stall is not None else None,
                    "stall_after_restart_s": round(first_after, 3) if first_after is not None else None,
                    "commits_during_outage_count": during},
                   primary_saw_s1_gone_s=round(t_gone - t_kill, 3) if t_gone else None,
                   s1_streaming_after_restart_s=round(t_back - t_restart, 3) if t_back else None,
                   s1_sync_after_restart_s=round(t_sync - t_restart, 3) if t_sync else None,
                   stalled_commit_start_s=round(stalled[0] - t_kill, 3) if stalled else None,
                   stalled_commit_end_s=round(stalled[1] - t_kill, 3) if stalled else None,
                   failed_commits=failed,
                   healthy_again=bool(ok),
                   kill_epoch=round(t_kill + off, 3))
        cl.stop_poll()
    fx.write()


def wal_timeouts_case(case):
    from calib import Fixture, Net, log, now, wait_until
    prefix, subnet, settings = CASES[case]
    fx = Fixture(
        case, "postgres",
        "PostgreSQL 15 asynchronous streaming replication with wal_sender_timeout = 10s and "
        "wal_receiver_timeout = 10s: every packet between s1 and the primary is dropped (both "
        "ways, on the wire) for 30 s, then the path heals, while a client commits one INSERT "
        "every 100 ms on the primary.",
        {"primary": "p", "standbys": ["s1", "s2"], "client": "c",
         "postgresql_conf": {"synchronous_standby_names": "", "wal_sender_timeout": "10s",
                             "wal_receiver_timeout": "10s",
                             "wal_receiver_status_interval": "10s (default)",
                             "wal_retrieve_retry_interval": "5s (default)"},
         "client_load": "one INSERT + COMMIT every 100 ms"},
        {"kind": "net.drop(s1, p, ratio=1.0) both ways", "for_s": DROP_FOR_S},
        {"walsender_exit_s": "s; from the drop to the primary's log line 'terminating walsender "
                             "process due to replication timeout'",
         "walreceiver_exit_s": "s; from the drop to s1's log line 'terminating walreceiver due "
                               "to timeout'",
         "streaming_again_after_heal_s": "s; from the heal to s1 'streaming' in the primary's "
                                         "pg_stat_replication (polled every 50 ms)"},
        f"{case}.toml")
    with Net(prefix, subnet, ["p", "s1", "s2", "c"]) as net:
        cl = Cluster(net, case, settings)
        cl.setup()
        start_client(net, cl)
        for rep in range(REPS[case]):
            ok, _ = wait_until(lambda: healthy(cl, []), 120, step=0.1)
            if not ok:
                raise RuntimeError(f"rep {rep}: replication not healthy: {cl.repl()}")
            time.sleep(3.0)
            off = wall_offset()
            t_drop = now()
            key = net.drop("s1", "p")
            time.sleep(DROP_FOR_S - (now() - t_drop))
            t_heal = now()
            net.heal(key)
            ok, t_ok = wait_until(
                lambda: cl.repl().get("s1", (None,))[0] == "streaming"
                and cl.poll_rows[-1][0] > t_heal, 150, step=0.02)
            t_stream = cl.first_poll(t_heal, lambda r: r.get("s1", (None,))[0] == "streaming")
            w_drop = t_drop + off
            snd = cl.log_lines_after("p", w_drop, "terminating walsender process due to replication timeout")
            rcv = cl.log_lines_after("s1", w_drop, "terminating walreceiver due to timeout")
            t_gone = cl.first_poll(t_drop, lambda r: r.get("s1", (None,))[0] != "streaming")
            # the standby's reconnection attempts during the drop (startup restarts walreceiver)
            rcv_starts = cl.log_lines_after("s1", w_drop, "started streaming WAL from primary")
            fx.add({"walsender_exit_s": round(snd[0] - w_drop, 3) if snd else None,
                    "walreceiver_exit_s": round(rcv[0] - w_drop, 3) if rcv else None,
                    "streaming_again_after_heal_s": round(t_stream - t_heal, 3) if t_stream else None},
                   s1_gone_from_pg_stat_replication_s=round(t_gone - t_drop, 3) if t_gone else None,
                   first_to_notice=("primary" if snd and rcv and snd[0] < rcv[0] else
                                    "standby" if snd and rcv else None),
                   streaming_started_log_after_heal_s=[round(x - (t_heal + off), 3) for x in rcv_starts],
                   drop_epoch=round(w_drop, 3))
        cl.stop_poll()
    fx.write()


def run(case):
    from calib import require_root
    require_root()
    os.makedirs(BASE, exist_ok=True)
    if case == "pg-wal-timeouts":
        wal_timeouts_case(case)
    else:
        kill_case(case)


def main(argv):
    if len(argv) >= 1 and argv[0] == "--client":
        client_main(argv[1], argv[2])
        return
    if not argv:
        sys.exit(__doc__)
    if argv[0] == "--list":
        print("\n".join(CASES))
        return
    if argv[0] == "--all":
        for c in CASES:
            run(c)
        return
    for c in argv:
        if c not in CASES:
            sys.exit(f"unknown case {c}; one of {', '.join(CASES)}")
        run(c)


if __name__ == "__main__":
    main(sys.argv[1:])
