#!/usr/bin/python3
"""etcd calibration cases: a 3-member etcd 3.4 cluster (e1, e2, e3; e3 leads after move-leader),
a writer in its own namespace `w` writing to e2 every 100 ms with a 1 s timeout, and one fault
per case: the leader killed, or the e1<->e3 link cut, cut one way, flapping, or lossy.

Figures come from the members' own zap logs (raft's "became candidate/leader/follower at term N")
and from the writer's acknowledgements. Times are monotonic seconds from the fault's injection;
log timestamps (wall clock, ms) are mapped onto the monotonic clock with one offset per repetition.

Usage: etcd.py --list | CASE [--reps N] [--slot K] | --all
  --slot K picks network prefix ce<K> and subnet 10.201.<K> so that cases can run concurrently
  (one case per slot; --all runs them one after the other, about 2.5 hours).
A repetition in which a member we did not kill exits is discarded and retried: `service etcd
stop` (calibration/run calls it) SIGKILLs every /usr/bin/etcd on the machine 30 s later.
"""

import calendar
import glob
import http.client
import json
import math
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

WORK = "/tmp/calib-etcd"
ETCD = "/usr/bin/etcd"
WRITE_INTERVAL = 0.1
WRITE_TIMEOUT = 1.0
HEARTBEAT_MS = 100
ELECTION_MS = 1000
MEMBERS = ["e1", "e2", "e3"]

# name -> (kind, repetitions with pre-vote off, on, fault seconds, observe-after seconds). More
# repetitions where the real outcome varies most (flapping, 50 % loss); with pre-vote on, the
# link faults disrupt nothing in any repetition.
BASE = {
    "etcd-leader-kill": ("kill", 20, 20, 0, 10),
    "etcd-pair-cut": ("cut", 9, 3, 60, 30),
    "etcd-one-way-drop": ("oneway", 9, 3, 60, 30),
    "etcd-flapping-pair": ("flap", 15, 3, 60, 30),
    "etcd-loss-50": ("loss50", 9, 3, 120, 30),
    "etcd-loss-90": ("loss90", 6, 3, 120, 30),
}
CASES = {}
for _n, (_k, _off, _on, _f, _a) in BASE.items():
    CASES[_n] = (_k, _off, _f, _a, False)
    CASES[_n + "-prevote"] = (_k, _on, _f, _a, True)


# -- the writer agent (runs inside namespace w) -------------------------------------------------

def put(host, key, value, timeout):
    """One PUT through the grpc-gateway; True when acknowledged within timeout."""
    deadline = time.monotonic() + timeout
    conn = None
    try:
        conn = http.client.HTTPConnection(host, 2379, timeout=timeout)
        conn.connect()
        import base64
        body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                           "value": base64.b64encode(value.encode()).decode()})
        rest = deadline - time.monotonic()
        if rest <= 0:
            return False
        conn.sock.settimeout(rest)
        conn.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if time.monotonic() > deadline:
            return False
        return resp.status == 200 and b"header" in data and b"error" not in data
    except Exception:
        return False
    finally:
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


def agent_writer(host, out, duration):
    """Writes every 100 ms slot; a write in flight delays the next to the next free slot.
    One line per write: start end ok (monotonic seconds)."""
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    t0 = time.monotonic()
    k = 0
    with open(out, "a") as f:
        while time.monotonic() - t0 < duration:
            slot = t0 + k * WRITE_INTERVAL
            d = slot - time.monotonic()
            if d > 0:
                time.sleep(d)
            start = time.monotonic()
            ok = put(host, "/calib/writer", str(k), WRITE_TIMEOUT)
            end = time.monotonic()
            f.write(f"{start:.4f} {end:.4f} {1 if ok else 0}\n")
            f.flush()
            k = max(k + 1, math.ceil((end - t0) / WRITE_INTERVAL - 1e-9))


def agent_writer_pipelined(host, out, duration):
    """Starts a write at every 100 ms slot whatever is still in flight (as pgsim's etcd-writer
    does), each with its own 1 s timeout. Same line format as agent_writer."""
    import threading
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    lock = threading.Lock()
    f = open(out, "a")

    def one(k):
        start = time.monotonic()
        ok = put(host, "/calib/writer-pipelined", str(k), WRITE_TIMEOUT)
        end = time.monotonic()
        with lock:
            f.write(f"{start:.4f} {end:.4f} {1 if ok else 0}\n")
            f.flush()

    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < duration:
        d = t0 + k * WRITE_INTERVAL - time.monotonic()
        if d > 0:
            time.sleep(d)
        if threading.active_count() < 40:
            threading.Thread(target=one, args=(k,), daemon=True).start()
        k += 1
    time.sleep(WRITE_TIMEOUT + 0.5)


# -- the driver ----------------------------------------------------------------------------------

TERM_RE = re.compile(r"became (follower|candidate|pre-candidate|leader) at term (\d+)")


def parse_ts(ts):
    """zap's ISO8601 timestamp ("2026-12-07T15:52:00.123Z" or with +0000) -> epoch seconds."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?", ts)
    base = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    frac = float(m.group(2)) if m.group(2) else 0.0
    tz = m.group(3)
    off = 0
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        hh, mm = int(tz[1:3]), int(tz[-2:])
        off = sign * (hh * 3600 + mm * 60)
    return base + frac - off


def raft_events(logfile, member, wall_to_mono):
    """(t_mono, member, kind, term) from a member's zap log."""
    evs = []
    try:
        with open(logfile) as f:
            for line in f:
                if "at term" not in line:
                    continue
                try:
                    j = json.loads(line)
                except Exception:
                    continue
                m = TERM_RE.search(j.get("msg", ""))
                if not m:
                    continue
                t = parse_ts(j["ts"]) - wall_to_mono
                evs.append((t, member, m.group(1), int(m.group(2))))
    except FileNotFoundError:
        pass
    return evs


def read_writes(path):
    w = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 3:
                    w.append((float(p[0]), float(p[1]), p[2] == "1"))
    except FileNotFoundError:
        pass
    return w


def gaps(writes, t_end):
    """(resumed_at, unavailable_s) per gap between acknowledgements longer than two intervals;
    the unavailable time is the gap minus one interval (pgsim's etcd_write_unavailable). A gap
    still open at t_end counts up to t_end."""
    acks = sorted(e for s, e, ok in writes if ok)
    out = []
    for a, b in zip(acks, acks[1:]):
        if b - a > 2 * WRITE_INTERVAL:
            out.append((b, b - a - WRITE_INTERVAL))
    if acks and t_end - acks[-1] > 2 * WRITE_INTERVAL:
        out.append((t_end, t_end - acks[-1] - WRITE_INTERVAL))
    return out


class Cluster:
    def __init__(self, net, root, prevote, token):
        self.net, self.root, self.prevote, self.token = net, root, prevote, token
        self.procs = {}
        self.logs = {m: os.path.join(root, f"{m}.log") for m in MEMBERS}

    def start(self):
        ip = self.net.ip
        initial = ",".join(f"{m}=http://{ip[m]}:2380" for m in MEMBERS)
        for m in MEMBERS:
            argv = [ETCD, "--name", m, "--data-dir", os.path.join(self.root, m + ".data"),
                    "--listen-peer-urls", f"http://{ip[m]}:2380",
                    "--initial-advertise-peer-urls", f"http://{ip[m]}:2380",
                    "--listen-client-urls", f"http://{ip[m]}:2379,http://127.0.0.1:2379",
                    "--advertise-client-urls", f"http://{ip[m]}:2379",
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", self.token,
                    "--heartbeat-interval", str(HEARTBEAT_MS), "--election-timeout", str(ELECTION_MS),
                    "--logger", "zap", "--log-outputs", self.logs[m]]
            if self.prevote:
                argv.append("--pre-vote")
            self.procs[m] = self.net.spawn(m, argv, os.path.join(self.root, f"{m}.stdout"))

    def endpoints(self):
        return ",".join(f"http://{self.net.ip[m]}:2379" for m in MEMBERS)

    def status(self):
        """{member name: (is_leader, term)} of the members that answer."""
        out = self.net.run("w", f"ETCDCTL_API=3 etcdctl --dial-timeout=500ms --command-timeout=1s "
                                f"--endpoints={self.endpoints()} endpoint status -w json 2>/dev/null",
                           check=False, timeout=10) or "[]"
        try:
            rows = json.loads(out)
        except Exception:
            return {}
        byip = {v: k for k, v in self.net.ip.items()}
        res = {}
        for r in rows:
            host = r["Endpoint"].split("//")[1].split(":")[0]
            st = r["Status"]
            h = st.get("header", {})
            res[byip[host]] = (h.get("member_id") == st.get("leader"), h.get("raft_term", 0), h.get("member_id"))
        return res

    def leader(self):
        st = self.status()
        ls = [m for m, v in st.items() if v[0]]
        return ls[0] if len(st) == 3 and len(ls) == 1 else None


def clear_links(prefix):
    """A deleted namespace goes away asynchronously and its veth's root end lingers for a while:
    wait for it (bounded), then delete what is left, so the next Net can reuse the names."""
    from calib import sh, wait_until
    def left():
        out = sh("ip -o link show", capture=True, check=False) or ""
        return re.findall(rf"\b({prefix}v\d+)@", out) + re.findall(rf"\b({prefix}-br)\b", out)
    if wait_until(lambda: not left(), 15, step=0.5)[0] is None:
        for name in set(left()):
            sh(f"ip link del {name}", check=False)


def run_rep(case, rep, slot):
    from calib import Net, log, now, wait_until
    kind, _reps, fault_s, after_s, prevote = CASES[case]
    root = os.path.join(WORK, case, f"rep{rep}")
    if os.path.exists(root):
        import shutil
        shutil.rmtree(root)
    os.makedirs(root)
    clear_links(f"ce{slot}")
    with Net(f"ce{slot}", f"10.201.{slot}", MEMBERS + ["w"]) as net:
        c = Cluster(net, root, prevote, f"{case}-{rep}-{int(time.time())}")
        c.start()
        lead, _ = wait_until(c.leader, 30, step=0.3)
        if not lead:
            raise RuntimeError("no leader within 30 s")
        if lead != "e3":
            ids = c.status()
            e3 = ids["e3"][2]
            net.run("w", f"ETCDCTL_API=3 etcdctl --endpoints={c.endpoints()} move-leader {e3:x}",
                    check=False, timeout=20)
            lead, _ = wait_until(lambda: c.leader() == "e3", 15, step=0.3)
            if not lead:
                raise RuntimeError("move-leader to e3 did not take")
        moved_at = now()
        wfile = os.path.join(root, "writes.txt")
        total = 5 + fault_s + after_s + 10
        net.spawn("w", ["/usr/bin/python3", os.path.abspath(__file__), "--agent-writer",
                        net.ip["e2"], wfile, str(total)], os.path.join(root, "writer.stdout"))
        pfile = os.path.join(root, "writes-pipelined.txt")
        net.spawn("w", ["/usr/bin/python3", os.path.abspath(__file__), "--agent-writer-pipelined",
                        net.ip["e2"], pfile, str(total)], os.path.join(root, "writer-pipelined.stdout"))
        # A few seconds of writes before the fault.
        time.sleep(5)
        # (a status poll can miss a member under load: ask again before giving up)
        if not wait_until(lambda: c.leader() == "e3", 5, step=0.2)[0]:
            raise RuntimeError("e3 lost leadership before the fault")
        wall_to_mono = time.time() - now()
        t0 = now()
        heal_t = None
        if kind == "kill":
            os.kill(c.procs["e3"].pid, signal.SIGKILL)
            # Observe until a new leader and writes are back, then after_s more (bounded).
            def back():
                evs = raft_events(c.logs["e1"], "e1", wall_to_mono) + raft_events(c.logs["e2"], "e2", wall_to_mono)
                return any(k == "leader" and t >= t0 for t, _, k, _ in evs)
            wait_until(back, 30, step=0.2)
            time.sleep(after_s)
            t_end = now()
        else:
            if kind == "cut":
                key = net.drop("e1", "e3")
                time.sleep(max(0, t0 + fault_s - now()))
                net.heal(key)
            elif kind == "oneway":
                key = net.drop("e3", "e1", one_way=True)
                time.sleep(max(0, t0 + fault_s - now()))
                net.heal(key)
            elif kind == "flap":
                k = 0
                while k * 5 < fault_s and k < 100:
                    time.sleep(max(0, t0 + k * 5 - now()))
                    key = net.drop("e1", "e3", key=f"flap{k}")
                    time.sleep(max(0, t0 + k * 5 + 3 - now()))
                    net.heal(key)
                    k += 1
                time.sleep(max(0, t0 + fault_s - now()))
            elif kind in ("loss50", "loss90"):
                key = net.drop("e1", "e3", ratio=0.5 if kind == "loss50" else 0.9)
                time.sleep(max(0, t0 + fault_s - now()))
                net.heal(key)
            heal_t = now()
            time.sleep(max(0, heal_t + after_s - now()))
            t_end = now()
        # Every member we did not kill must still run: `service etcd stop` (calibration/run
        # calls it) SIGKILLs every /usr/bin/etcd on the machine 30 s later, whoever started it.
        for m, p in c.procs.items():
            if p.poll() is not None and not (kind == "kill" and m == "e3"):
                raise RuntimeError(f"{m} exited (rc {p.returncode}) during the repetition: killed from outside?")
        final = c.status()
        time.sleep(0.5)  # let the log files flush
    evs = []
    for m in MEMBERS:
        evs += raft_events(c.logs[m], m, wall_to_mono)
    evs.sort()
    writes = read_writes(wfile)
    pwrites = read_writes(pfile)
    rel = lambda t: round(t - t0, 3)
    max_term = max((term for _, _, k, term in evs if k != "pre-candidate"), default=None)
    term_at_fault = max((term for t, _, k, term in evs if k != "pre-candidate" and t < t0), default=None)
    gs = [(b, u) for b, u in gaps(writes, t_end) if b >= t0]
    pgs = [(b, u) for b, u in gaps(pwrites, t_end) if b >= t0]
    extra = {
        "t_fault_s": 0.0,
        "moved_leader_s_before_fault": round(t0 - moved_at, 3),
        "term_at_fault": term_at_fault,
        "raft_events": [[rel(t), m, k, term] for t, m, k, term in evs if t >= t0 - 1],
        "write_gaps": [[rel(b), round(u, 3)] for b, u in gs],
        "write_gaps_pipelined": [[rel(b), round(u, 3)] for b, u in pgs],
        "writes_ok": sum(1 for w in writes if w[2] and w[1] >= t0 and w[1] <= t_end),
        "writes_failed": sum(1 for w in writes if not w[2] and w[1] >= t0 and w[1] <= t_end),
        "observed_until_s": rel(t_end),
        "final_leader": [m for m, v in final.items() if v[0]],
    }
    camp = lambda a, b: sum(1 for t, _, k, _ in evs if k == "candidate" and a <= t < b)
    precamp = lambda a, b: sum(1 for t, _, k, _ in evs if k == "pre-candidate" and a <= t < b)
    lead = lambda a, b: sum(1 for t, _, k, _ in evs if k == "leader" and a <= t < b)
    unavail = lambda a, b, g=gs: round(sum(u for r, u in g if a <= r < b), 3)
    if kind == "kill":
        new_leader = [t for t, m, k, _ in evs if k == "leader" and t >= t0]
        figures = {
            "time_to_new_leader_s": rel(new_leader[0]) if new_leader else None,
            "write_outage_s": round(max((u for _, u in gs), default=0.0), 3),
            "write_outage_pipelined_s": round(max((u for _, u in pgs), default=0.0), 3),
            "elections_count": camp(t0, t_end + 1),
            "leader_changes_count": lead(t0, t_end + 1),
            "max_term": max_term,
            "term_rise_count": (max_term - term_at_fault) if max_term and term_at_fault else None,
        }
        acks_after = [e for s, e, ok in writes if ok and e >= t0]
        extra["first_ack_after_kill_s"] = rel(acks_after[0]) if acks_after else None
        extra["pre_vote_campaigns_count"] = precamp(t0, t_end + 1)
    else:
        figures = {
            "elections_during_count": camp(t0, heal_t),
            "elections_after_count": camp(heal_t, t_end + 1),
            "leader_changes_during_count": lead(t0, heal_t),
            "leader_changes_after_count": lead(heal_t, t_end + 1),
            "max_term": max_term,
            "term_rise_count": (max_term - term_at_fault) if max_term and term_at_fault else None,
            "write_outage_during_s": unavail(t0, heal_t),
            "write_outage_after_s": unavail(heal_t, t_end + 1),
            "longest_write_outage_s": round(max((u for _, u in gs), default=0.0), 3),
            "write_outage_during_pipelined_s": unavail(t0, heal_t, pgs),
            "write_outage_after_pipelined_s": unavail(heal_t, t_end + 1, pgs),
            "longest_write_outage_pipelined_s": round(max((u for _, u in pgs), default=0.0), 3),
        }
        extra["heal_s"] = rel(heal_t)
        extra["pre_vote_campaigns_during_count"] = precamp(t0, heal_t)
        extra["pre_vote_campaigns_after_count"] = precamp(heal_t, t_end + 1)
    return figures, extra


FIG_KILL = {
    "time_to_new_leader_s": "s; from kill -9 of the leader e3 to the first 'became leader' logged by e1 or e2",
    "write_outage_s": "s; the longest gap between acknowledged writes (writer -> e2, sequential, 100 ms slots, 1 s timeout) resuming after the kill, minus one write interval (pgsim's etcd_write_unavailable definition: gaps > 2 intervals)",
    "write_outage_pipelined_s": "s; as write_outage_s, from a second writer to e2 that starts a write at every 100 ms slot whatever is in flight (each with its own 1 s timeout), as pgsim's etcd-writer does",
    "elections_count": "count; real campaigns ('became candidate', not pre-candidate) logged by any member from the kill to the end of observation",
    "leader_changes_count": "count; 'became leader' logged by any member from the kill to the end of observation",
    "max_term": "term; the highest raft term any member logged in the whole run (bootstrap election + move-leader to e3 included)",
    "term_rise_count": "count; max_term minus the highest term logged before the fault (how far the fault and its aftermath raised the term)",
}
FIG_LINK = {
    "elections_during_count": "count; real campaigns ('became candidate') by any member from the fault's injection to its heal",
    "elections_after_count": "count; real campaigns from the heal to the end of observation (30 s after heal)",
    "leader_changes_during_count": "count; 'became leader' by any member from injection to heal",
    "leader_changes_after_count": "count; 'became leader' by any member from heal to the end of observation",
    "max_term": "term; the highest raft term any member logged in the whole run (bootstrap election + move-leader to e3 included)",
    "term_rise_count": "count; max_term minus the highest term logged before the fault (how far the fault and its aftermath raised the term)",
    "write_outage_during_s": "s; total unavailable seconds (gaps between acknowledged writes > 2 intervals, minus one interval) whose resuming ack falls between injection and heal",
    "write_outage_after_s": "s; the same, resuming between heal and the end of observation",
    "longest_write_outage_s": "s; the longest single such gap resuming from injection to the end of observation",
    "write_outage_during_pipelined_s": "s; as write_outage_during_s, from the pipelined writer (a write at every slot whatever is in flight, as pgsim's etcd-writer)",
    "write_outage_after_pipelined_s": "s; as write_outage_after_s, from the pipelined writer",
    "longest_write_outage_pipelined_s": "s; as longest_write_outage_s, from the pipelined writer",
}
DESC = {
    "kill": "kill -9 of the leader e3 (its host stays up: peers' connections are refused); writes to e2 continue",
    "cut": "clean cut e1<->e3 (100 % drop both directions on the bridge) for 60 s, then heal and observe 30 s",
    "oneway": "drop only e3 -> e1 (the leader's messages to e1) for 60 s, then heal and observe 30 s",
    "flap": "e1<->e3 cut 3 s / up 2 s, repeated for 60 s (12 cycles), then observe 30 s",
    "loss50": "random loss of 50 % of packets both directions on e1<->e3 for 120 s, then observe 30 s",
    "loss90": "random loss of 90 % of packets both directions on e1<->e3 for 120 s, then observe 30 s",
}


def run_case(case, reps=None, slot=0):
    from calib import Fixture, log, require_root
    require_root()
    kind, nreps, fault_s, after_s, prevote = CASES[case]
    reps = reps or nreps
    setup = {
        "members": MEMBERS, "etcd": "3.4.23 (Debian), one per network namespace on one bridge",
        "heartbeat_interval_ms": HEARTBEAT_MS, "election_timeout_ms": ELECTION_MS,
        "pre_vote": prevote, "check_quorum": True,
        "leader": "e3 (etcdctl move-leader after bootstrap, checked before the fault)",
        "writer": "namespace w; HTTP POST /v3/kv/put to e2's grpc-gateway every 100 ms slot, 1 s "
                  "timeout, one write at a time (a write in flight delays the next to the next free slot); "
                  "a second, pipelined writer (namespace w, to e2) starts a write at every slot "
                  "whatever is in flight, as pgsim's etcd-writer does",
        "pre_fault_writes_s": 5, "fresh_data_dirs_per_rep": True,
        "observe_after_s": after_s,
    }
    fault = {"kind": kind, "description": DESC[kind], "duration_s": fault_s or None}
    fx = Fixture(case, "etcd", DESC[kind] + ("; pre-vote on" if prevote else "; pre-vote off (3.4 default)"),
                 setup, fault, FIG_KILL if kind == "kill" else FIG_LINK,
                 f"calibration/scenarios/{case}.toml")
    failures = 0
    rep = 0
    while len(fx.data["repetitions"]) < reps and failures < 10:
        try:
            figures, extra = run_rep(case, rep, slot)
            fx.add(figures, **extra)
        except Exception as e:
            failures += 1
            log(f"{case} rep {rep} failed: {e}")
            time.sleep(3)
        rep += 1
    if len(fx.data["repetitions"]) >= min(3, reps):
        fx.write()
    else:
        sys.exit(f"{case}: too few repetitions")


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    if a[0] == "--agent-writer":
        agent_writer(a[1], a[2], float(a[3]))
        return
    if a[0] == "--agent-writer-pipelined":
        agent_writer_pipelined(a[1], a[2], float(a[3]))
        return
    if a[0] == "--list":
        for c in CASES:
            print(c)
        return
    reps = int(a[a.index("--reps") + 1]) if "--reps" in a else None
    slot = int(a[a.index("--slot") + 1]) if "--slot" in a else 0
    if a[0] == "--all":
        for c in CASES:
            run_case(c, reps, slot)
    elif a[0] in CASES:
        run_case(a[0], reps, slot)
    else:
        sys.exit(f"unknown case {a[0]}")


if __name__ == "__main__":
    main()
