"""Shared machinery of the calibration cases: hosts as network namespaces on one bridge, faults
made with the kernel's own tools, processes started inside hosts, and fixtures written as JSON.

Every host is a network namespace `<prefix>-<name>` with one veth into the bridge
`<prefix>-br` (no address on the bridge and no route out: traffic stays between the hosts).
Packet faults are rules in one nftables table of the root namespace, family `bridge`: the bridge
is the "switch", so a dropped packet is lost on the wire and both TCP stacks see ordinary loss
(a rule on a host's own output hook would instead fail the sender's syscall with EPERM).
`numgen random` gives per-packet random drops; this kernel has no netem, so no delay faults.

Nothing here loops without a bound: every wait has a deadline.
"""

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")


def now():
    """Monotonic seconds: every figure is a difference of two of these."""
    return time.monotonic()


def sh(cmd, check=True, capture=False, timeout=60):
    """Runs a shell command in the root namespace."""
    r = subprocess.run(cmd, shell=True, check=False, timeout=timeout,
                       stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE if capture else subprocess.DEVNULL, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {cmd}\n{r.stderr if capture else ''}")
    return r.stdout if capture else r.returncode


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Net:
    """A bridge and one namespace per host. `subnet` is the first three octets ("10.201.0")."""

    def __init__(self, prefix, subnet, hosts):
        assert len(prefix) <= 6, "interface names are limited to 15 characters"
        self.prefix, self.subnet = prefix, subnet
        self.ip = {h: f"{subnet}.{i + 1}" for i, h in enumerate(hosts)}
        self.procs = []
        self.table = f"{prefix}_faults"
        self.rules = {}  # key -> nft handle

    def ns(self, host):
        return f"{self.prefix}-{host}"

    def __enter__(self):
        self.teardown()
        try:
            self._setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def _setup(self):
        br = f"{self.prefix}-br"
        sh(f"ip link add {br} type bridge && ip link set {br} up")
        for i, h in enumerate(self.ip):
            ns, veth = self.ns(h), f"{self.prefix}v{i}"
            sh(f"ip netns add {ns}")
            sh(f"ip link add {veth} type veth peer name eth0 netns {ns}")
            sh(f"ip link set {veth} master {br} up")
            sh(f"ip -n {ns} addr add {self.ip[h]}/24 dev eth0 && ip -n {ns} link set eth0 up"
               f" && ip -n {ns} link set lo up")
        sh(f"nft add table bridge {self.table}")
        sh(f"nft 'add chain bridge {self.table} drops {{ type filter hook forward priority 0; }}'")

    def __exit__(self, *exc):
        self.teardown()

    def teardown(self):
        for p in self.procs:
            try:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGCONT)
                    p.kill()
                    p.wait(timeout=10)
            except Exception:
                pass
        self.procs = []
        sh(f"nft delete table bridge {self.table}", check=False)
        out = sh("ip netns list", capture=True, check=False) or ""
        for line in out.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(self.prefix + "-"):
                # Whatever still runs in the namespace (a daemonised postgres) goes with it.
                pids = sh(f"ip netns pids {name}", capture=True, check=False) or ""
                for pid in pids.split():
                    try:
                        os.kill(int(pid), signal.SIGCONT)
                        os.kill(int(pid), signal.SIGKILL)
                    except Exception:
                        pass
                sh(f"ip netns del {name}", check=False)
        sh(f"ip link del {self.prefix}-br", check=False)

    # -- processes ---------------------------------------------------------------------------
    def spawn(self, host, argv, logfile, user=None, env=None):
        """Starts argv inside host's namespace, stdout and stderr to logfile."""
        cmd = ["ip", "netns", "exec", self.ns(host)]
        if user:
            cmd += ["runuser", "-u", user, "--"]
        f = open(logfile, "ab")
        p = subprocess.Popen(cmd + list(argv), stdout=f, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def run(self, host, cmd, user=None, check=True, capture=True, timeout=60):
        """Runs a shell command inside host's namespace."""
        u = f"runuser -u {user} -- " if user else ""
        return sh(f"ip netns exec {self.ns(host)} {u}bash -c {shlex_quote(cmd)}",
                  check=check, capture=capture, timeout=timeout)

    # -- packet faults (on the bridge) ----------------------------------------------------------
    def drop(self, a, b, ratio=1.0, one_way=False, key=None):
        """Drops `ratio` of the packets from a to b (and b to a unless one_way). Returns the key
        that `heal` takes."""
        key = key or f"{a}-{b}-{ratio}-{one_way}"
        pairs = [(a, b)] if one_way else [(a, b), (b, a)]
        handles = []
        for s, d in pairs:
            match = f"ip saddr {self.ip[s]} ip daddr {self.ip[d]}"
            if ratio >= 1.0:
                verdict = "drop"
            else:
                verdict = f"numgen random mod 1000 lt {int(round(ratio * 1000))} drop"
            out = sh(f"nft -e -a add rule bridge {self.table} drops {match} {verdict}", capture=True)
            handles.append(out.split("# handle")[-1].strip())
        self.rules[key] = handles
        return key

    def heal(self, key):
        for h in self.rules.pop(key, []):
            sh(f"nft delete rule bridge {self.table} drops handle {h}", check=False)

    def heal_all(self):
        for k in list(self.rules):
            self.heal(k)


def shlex_quote(s):
    import shlex
    return shlex.quote(s)


def wait_until(pred, timeout, step=0.02):
    """Polls pred until it returns a truthy value or timeout seconds pass; returns (value, t)."""
    deadline = now() + timeout
    while now() < deadline:
        v = pred()
        if v:
            return v, now()
        time.sleep(step)
    return None, None


def versions():
    """The program versions this machine runs, for the fixture."""
    def first(cmd):
        try:
            return sh(cmd, capture=True, check=False).strip().splitlines()[0]
        except Exception:
            return None
    return {
        "kernel": platform.release(),
        "etcd": first("etcd --version"),
        "haproxy": first("haproxy -v"),
        "pgbouncer": first("pgbouncer --version"),
        "postgresql": first("/usr/lib/postgresql/15/bin/postgres --version"),
    }


class Fixture:
    """What one case recorded: its setup, its fault, and each repetition's figures.

    `figures` names each figure once, with its unit and meaning; every repetition gives a value
    for each (null: it did not happen in that repetition, e.g. "never went DOWN").
    """

    def __init__(self, case, family, description, setup, fault, figures, mirror):
        self.data = {
            "case": case,
            "family": family,
            "description": description,
            "mirror_scenario": mirror,
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": {"cpus": os.cpu_count(), "machine": platform.machine()},
            "versions": versions(),
            "setup": setup,
            "fault": fault,
            "figures": figures,
            "repetitions": [],
        }

    def add(self, figures, **extra):
        missing = set(self.data["figures"]) - set(figures)
        assert not missing, f"repetition lacks figures {missing}"
        rep = {"rep": len(self.data["repetitions"]), "figures": figures,
               "loadavg_1m": round(os.getloadavg()[0], 2)}
        rep.update(extra)
        self.data["repetitions"].append(rep)
        log(f"{self.data['case']} rep {rep['rep']}: {json.dumps(figures)}")

    def write(self):
        os.makedirs(FIXTURES, exist_ok=True)
        path = os.path.join(FIXTURES, self.data["case"] + ".json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
        log(f"wrote {path}")
        return path


def require_root():
    if os.geteuid() != 0:
        sys.exit("calibration cases need root (network namespaces, nftables)")
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install iproute2 nftables")
