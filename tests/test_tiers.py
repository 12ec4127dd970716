"""The pool's shared interpreters (issue 14, sandbox/hub.c): one pyexec-zygote per tier, started
by the master, each worker served by a fork of it.

Which interpreter runs a script is a choice of speed only, so the guarantees are checked in every
tier, with a script made to land there by what it imports: the sandbox's namespaces (its network
above all: a worker's sandboxes share one private network namespace, which a fork of the pool's
interpreter must join — the first version of the hub left warm scripts in the host's), nothing
of the host or of the interpreter's own start in the script's process, and the life cycle: an
interpreter killed, a worker killed, a reload that changes what is preloaded."""
import concurrent.futures
import os
import signal
import subprocess
import textwrap
import threading
import time

import pytest

from helpers import Service, config_with, post_execute, stop_service

CANARY = "PYEXEC-CANARY-41d0b7"
BIG = "numpy pandas scipy sklearn matplotlib seaborn requests"
# What a script imports -> the interpreter that must run it (the default warm_preload's tiers).
TIERS = {
    "": "warm:",
    "import numpy\n": "warm:numpy",
    "import pandas\n": "warm:numpy pandas",
    "import sklearn\n": "warm:" + BIG,
    "import matplotlib.pyplot\n": "warm:" + BIG,
}


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    """Two workers, the default tiers, a canary in the environment the pool starts with."""
    conf = config_with(str(tmp_path_factory.mktemp("conf")), workers=2, wall_time_s=20)
    service = Service(config=conf, env={"PYEXEC_TEST_SECRET": CANARY})
    yield service
    stop_service(service)


def run(svc, script, expect_interpreter=None, **fields):
    status, headers, body = post_execute(svc.url, textwrap.dedent(script).lstrip("\n"), **fields)
    assert status == 200, body
    assert "result" in body, body
    if expect_interpreter:
        assert headers.get("x-pyexec-interpreter") == expect_interpreter, headers
    return body["result"]


def pool_processes(svc):
    """{pid: (ppid, comm, args)} of this service's pool: its master and every descendant."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,comm=,args="], capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4:
            rows[int(parts[0])] = (int(parts[1]), parts[2], parts[3])
    # The master, not a child it has just forked that has not named itself yet.
    named = {pid for pid, (ppid, comm, args) in rows.items() if comm == "pyexec-master" and svc.run_dir in args}
    master = [pid for pid in named if rows[pid][0] not in named]
    assert len(master) == 1, master
    mine, grew = set(master), True
    while grew:
        more = {pid for pid, (ppid, _, _) in rows.items() if ppid in mine} - mine
        grew = bool(more)
        mine |= more
    return {pid: rows[pid] for pid in mine}


def hubs(svc):
    """{preload: pid} of the service's interpreters."""
    found = {}
    for pid, (ppid, comm, args) in pool_processes(svc).items():
        if comm == "pyexec-hub" and "pyexec-zygote" in args:  # not one exited and not yet reaped
            found[args.split("pyexec-zygote", 1)[1].replace("--hub", "").strip()] = pid
    return found


def forkers(svc):
    return {pid: ppid for pid, (ppid, comm, _) in pool_processes(svc).items() if comm == "pyexec-forker"}


def wait_for(condition, within=30.0, what="condition", show=None):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {within} s" + (f" (last seen: {show()!r})" if show else ""))


# ---- every tier is the same sandbox -------------------------------------------------------------

LOOK_AROUND = r'''
import ctypes, os, socket

def main(port):
    libc = ctypes.CDLL(None)
    libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: /proc/self/environ readable again
    status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
    out = {"environ": open("/proc/self/environ", "rb").read().decode("latin1"),
           "unix": open("/proc/net/unix").read().splitlines()[1:],
           "tcp": open("/proc/net/tcp").read().splitlines()[1:],
           "interfaces": sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]),
           "fds": sorted(os.listdir("/proc/self/fd")),
           "uid": os.getuid(), "tmp": os.listdir("/tmp"),
           "seccomp": status["Seccomp"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
           "cap_eff": status["CapEff"].strip(), "threads": status["Threads"].strip(),
           "mounts": sorted({l.split()[1] for l in open("/proc/self/mounts")})}
    try:  # the seccomp filter refuses IP sockets; were it to allow one, no host is reachable
        s = socket.socket()
        s.settimeout(2)
        s.connect(("127.0.0.1", port))
        out["connect"] = "connected"
    except OSError as e:
        out["connect"] = type(e).__name__
    with open("/proc/self/maps") as f:
        out["maps_canary"] = "PYEXEC-CANARY" in f.read()
    return out
'''


@pytest.mark.parametrize("imports", list(TIERS))
def test_every_tier_is_the_same_sandbox(svc, imports):
    r = run(svc, imports + LOOK_AROUND, TIERS[imports], input=svc.port)
    assert CANARY not in r["environ"] and "PYEXEC_TEST_SECRET" not in r["environ"]
    # A network namespace of its own: no host socket, no host interface, no host service.
    assert r["unix"] == [] and r["tcp"] == [], (r["unix"][:3], r["tcp"][:3])
    assert r["interfaces"] == ["lo"], r["interfaces"]
    assert r["connect"] in ("ConnectionRefusedError", "OSError", "TimeoutError"), r["connect"]
    assert r["uid"] == 1000 and r["cap_eff"] == "0000000000000000"
    assert r["seccomp"] == "2" and r["no_new_privs"] == "1"
    assert r["threads"] == "1", r["threads"]
    assert r["tmp"] in ([], [".matplotlib"]), r["tmp"]  # the sandbox's own, empty /tmp
    assert "/work" not in " ".join(r["mounts"]) and "/root" not in r["mounts"], r["mounts"]
    # The script's own descriptors only: 0-2, the result pipe (3) and what listdir opened.
    assert set(r["fds"]) <= {"0", "1", "2", "3", "4"}, r["fds"]
    assert not r["maps_canary"]


@pytest.mark.parametrize("imports", list(TIERS))
def test_no_carry_over_between_scripts_of_a_tier(svc, imports):
    """Each request is a new fork: what one script does to the interpreter's state is gone for
    the next, and the random generators are reseeded."""
    script = imports + textwrap.dedent("""
        import importlib, random, sys
        def main():
            seen = getattr(sys, "pyexec_mark", None)
            sys.pyexec_mark = "dirty"
            numpy = importlib.import_module("numpy")  # unseen by the tier's choice
            return [seen, random.random(), float(numpy.random.random())]
        """)
    first = run(svc, script, TIERS[imports])
    second = run(svc, script, TIERS[imports])
    assert first[0] is None and second[0] is None
    assert first[1] != second[1] and first[2] != second[2]


def test_figures_in_the_big_tier_start_from_none(svc):
    """The interpreter drew figures while warming up; none of them may reach a script."""
    script = "import matplotlib.pyplot as plt\ndef main():\n    return plt.get_fignums()\n"
    assert run(svc, script, TIERS["import matplotlib.pyplot\n"]) == []


# ---- life cycle -----------------------------------------------------------------------------------

def test_one_interpreter_per_tier_and_one_fork_of_it_per_worker(svc):
    run(svc, "import sklearn\ndef main():\n    return 1\n")
    found = wait_for(lambda: hubs(svc) if len(hubs(svc)) == 4 else None, what="four interpreters")
    assert set(found) == {"", "numpy", "numpy pandas", BIG}, found
    def two_forks_of_each():
        f = forkers(svc)  # {fork: its interpreter}
        return f if sorted(f.values()) == sorted(list(found.values()) * 2) else None

    each = wait_for(two_forks_of_each, what="two forks of each interpreter (one per worker)")
    assert len(each) == 8


def test_the_workers_take_requests_before_the_largest_tier_is_ready(tmp_path):
    """The largest tier's interpreter takes seconds to import its libraries and draw its figures;
    a worker does not wait for it before it takes requests (it used to: the first request after
    a start waited 3-4 s whatever it imported). A script of that tier waits for it, and each
    worker prepares its sandbox as soon as it is ready, without a request."""
    svc = Service(config=config_with(str(tmp_path), workers=2))
    try:
        assert run(svc, "def main():\n    return 1\n", "warm:") == 1
        # An interpreter names itself pyexec-hub once it has imported and warmed its tier.
        starting = [pid for pid, (_, comm, args) in pool_processes(svc).items()
                    if comm not in ("pyexec-hub", "pyexec-forker") and args.endswith(BIG + " --hub")]
        assert len(starting) == 1 and BIG not in hubs(svc), (starting, hubs(svc))
        assert run(svc, "import sklearn\ndef main():\n    return 2\n", "warm:" + BIG) == 2
        big = hubs(svc)[BIG]
        assert big == starting[0]
        wait_for(lambda: len([f for f, parent in forkers(svc).items() if parent == big]) == 2,
                 what="a fork of the largest tier's interpreter for each worker")
    finally:
        stop_service(svc)


def test_a_killed_interpreter_is_started_again_and_no_request_fails(svc):
    script = "import pandas as pd\ndef main():\n    return int(pd.Series([1, 2, 3]).sum())\n"
    assert run(svc, script) == 6
    before = hubs(svc)["numpy pandas"]
    os.kill(before, signal.SIGKILL)
    # Meanwhile its scripts still run (cold, or warm once it is back) ...
    for _ in range(5):
        assert run(svc, script) == 6
    # ... and it is back, warm, under a new pid.
    after = wait_for(lambda: hubs(svc).get("numpy pandas") not in (None, before) and hubs(svc)["numpy pandas"],
                     what="the interpreter started again")
    assert after != before
    wait_for(lambda: post_execute(svc.url, script)[1].get("x-pyexec-interpreter") == "warm:numpy pandas",
             what="pandas scripts warm again")
    assert "event=interpreter_exit" in svc.logs()


def test_a_killed_worker_leaves_no_fork_of_an_interpreter_behind(svc):
    run(svc, "def main():\n    return 1\n")
    wait_for(lambda: len(forkers(svc)) == 8, what="eight forks")
    workers = [pid for pid, (_, comm, _) in pool_processes(svc).items() if comm == "pyexec-worker"]
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    # Its forks go with it; the new worker gets forks of its own: 8 again, none of them older.
    def settled():
        f = forkers(svc)
        return f if len(f) == 8 else None
    time.sleep(1)
    wait_for(settled, what="eight forks again")
    assert victim not in pool_processes(svc)
    run(svc, "import numpy\ndef main():\n    return 2\n", "warm:numpy")


def test_a_reload_that_changes_the_preload_replaces_the_interpreters_without_a_failed_request(tmp_path):
    conf = config_with(str(tmp_path), workers=2, warm_preload="numpy | pandas")
    svc = Service(config=conf)
    try:
        script = "import pandas as pd\ndef main():\n    return int(pd.Series([4]).sum())\n"
        assert run(svc, script, "warm:numpy pandas") == 4
        old = hubs(svc)
        assert set(old) == {"", "numpy", "numpy pandas"}
        stop, failures, served = threading.Event(), [], [0]

        def load():
            while not stop.is_set():
                status, _, body = post_execute(svc.url, script)
                if status != 200 or body.get("result") != 4:
                    failures.append((status, body))
                served[0] += 1

        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            futures = [ex.submit(load) for _ in range(2)]
            try:
                time.sleep(0.5)
                with open(conf) as f:
                    text = f.read().replace("warm_preload = numpy | pandas", "warm_preload = numpy")
                with open(conf, "w") as f:
                    f.write(text)
                os.kill(svc.proc.pid, signal.SIGHUP)
                wait_for(lambda: set(hubs(svc)) == {"", "numpy"}, within=60, what="the old interpreters gone",
                         show=lambda: pool_processes(svc))
            finally:
                stop.set()  # the load ends whatever happened, or the executor waits for it forever
            for fut in futures:
                fut.result()
        assert failures == [] and served[0] > 0
        assert not set(old.values()) & set(hubs(svc).values())
        # pandas is no tier's any more: its scripts go to the smallest, and import it themselves.
        assert run(svc, script, "warm:") == 4
    finally:
        stop_service(svc)


def test_an_interpreter_that_cannot_import_leaves_its_scripts_cold_and_says_why_once(tmp_path):
    """A tier whose preload fails: its hub tells every worker at once why (no worker waits for
    it), its scripts run cold, the other tiers stay warm, and the reason is logged per retry (5 s),
    not per request."""
    conf = config_with(str(tmp_path), workers=1, warm_preload="numpy | no_such_module_pyexec")
    svc = Service(config=conf)
    try:
        broken = "import no_such_module_pyexec\ndef main():\n    return 1\n"
        status, headers, body = post_execute(svc.url, broken)
        assert status == 200 and body["error_kind"] == "exception", body
        assert "No module named 'no_such_module_pyexec'" in body["error"]
        assert headers.get("x-pyexec-interpreter") == "cold"
        for _ in range(10):
            assert run(svc, "def main():\n    return 2\n", "warm:") == 2
            assert run(svc, "import numpy\ndef main():\n    return 3\n", "warm:numpy") == 3
            post_execute(svc.url, broken)
        reasons = [l for l in svc.logs().splitlines() if "event=warm_unavailable" in l]
        assert reasons and all("preloading no_such_module_pyexec" in l for l in reasons), reasons
        assert len(reasons) <= 2, reasons  # once at start, perhaps once more after 5 s
    finally:
        stop_service(svc)


@pytest.mark.parametrize("imports", list(TIERS))
def test_a_scripts_own_forks_get_the_at_fork_hooks_the_interpreter_skips(svc, imports):
    """The interpreter's forks do without threading's and random's at-fork hooks (the runner's
    _pyexec_fork_hooks); a script's own os.fork() must still run them: its child reseeds
    random, and knows only its own thread even when another was running at the fork."""
    script = imports + textwrap.dedent("""
        import os, random, threading
        def main():
            release = threading.Event()
            other = threading.Thread(target=release.wait, daemon=True)
            other.start()
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.write(w, f"{random.random()} {threading.active_count()}".encode())
                os._exit(0)
            os.close(w)
            child = os.read(r, 100).decode().split()
            os.waitpid(pid, 0)
            release.set()
            other.join()
            return [random.random() != float(child[0]), int(child[1]), threading.active_count()]
        """)
    assert run(svc, script, TIERS[imports]) == [True, 1, 1]


@pytest.mark.parametrize("imports", list(TIERS))
def test_a_scripts_first_gaussian_is_its_own(svc, imports):
    """random and numpy cache the second of each pair of Gaussians they draw. The generators'
    states are refilled in place in each fork (the runner's _pyexec_fork_hooks), so a cache the
    interpreter left would be the first Gaussian of every script."""
    script = imports + textwrap.dedent("""
        import importlib, random
        def main():
            numpy = importlib.import_module("numpy")
            return [random.gauss(0, 1), float(numpy.random.normal())]
        """)
    first = run(svc, script, TIERS[imports])
    second = run(svc, script, TIERS[imports])
    assert first[0] != second[0] and first[1] != second[1], (first, second)
