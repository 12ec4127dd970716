"""Starting and stopping the service as an operator (or docker, Kubernetes, systemd) does:
serve.sh's own process must be the last of the service to exit, whenever the SIGTERM comes,
and two instances started from one checkout must not take each other's sockets (issue 11)."""
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

from conftest import ROOT, free_port, stale_cgroups, wait_healthy

SERVE = os.path.join(ROOT, "scripts", "serve.sh")
SLEEPY = b'{"script": "import time\\ndef main():\\n    time.sleep(0.5)\\n    return 1\\n"}'


def session_processes(sid):
    out = subprocess.run(["ps", "-eo", "pid=,sid=,stat=,args="], capture_output=True, text=True).stdout
    left = []
    for line in out.splitlines():
        pid, s, stat, args = (line.split(None, 3) + ["", "", "", ""])[:4]
        if s.isdigit() and int(s) == sid and int(pid) != sid and not stat.startswith("Z"):
            left.append(line.strip())
    return left


def post(url):
    req = urllib.request.Request(url + "/execute", data=SLEEPY, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except OSError:
        return None


def start(run_dir, port, workers=2):
    log = open(os.path.join(run_dir, "serve.log"), "ab")
    return subprocess.Popen([SERVE, "--port", str(port), "--run-dir", run_dir, "--workers", str(workers)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True), log


def test_stop_at_any_moment_leaves_nothing_once_serve_exits():
    rng = random.Random(1234)
    results = []
    for cycle in range(20):
        run_dir = tempfile.mkdtemp(prefix="pyexec-cycle-")
        port = free_port()
        proc, log = start(run_dir, port)
        moment = cycle % 3  # during start-up, idle, under load
        url = f"http://127.0.0.1:{port}"
        load = []
        if moment == 0:
            time.sleep(rng.uniform(0.0, 1.5))
        else:
            wait_healthy(url, proc)
            if moment == 2:
                load = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-H", "Content-Type: application/json",
                                          "--data-binary", SLEEPY.decode(), url + "/execute"]) for _ in range(4)]
                time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        left = session_processes(proc.pid)  # at once: serve.sh's exit must be the last
        for p in load:
            p.wait(timeout=30)
        if left:
            subprocess.run(["pkill", "-KILL", "-s", str(proc.pid)])
        log.close()
        shutil.rmtree(run_dir, ignore_errors=True)
        results.append((cycle, moment, left))
        assert not stale_cgroups(), stale_cgroups()
    bad = [r for r in results if r[2]]
    assert not bad, bad


def test_two_instances_from_one_checkout():
    """Side by side on two ports with the default run directory, each serves its own."""
    ports = [free_port(), free_port()]
    procs = []
    try:
        for port in ports:
            log = open(os.devnull, "wb")
            procs.append(subprocess.Popen([SERVE, "--port", str(port), "--workers", "1"], stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        for port, proc in zip(ports, procs):
            wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=60)
        for _ in range(3):
            for port in ports:
                assert post(f"http://127.0.0.1:{port}") == 200
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        for port in ports:
            shutil.rmtree(os.path.join(ROOT, "run", str(port)), ignore_errors=True)


def test_a_second_instance_on_the_same_run_directory_refuses_clearly():
    run_dir = tempfile.mkdtemp(prefix="pyexec-twice-")
    first, log = start(run_dir, free_port(), workers=1)
    try:
        second = subprocess.run([SERVE, "--port", str(free_port()), "--run-dir", run_dir], capture_output=True,
                                timeout=30)
        assert second.returncode != 0
        assert b"already" in second.stderr and run_dir.encode() in second.stderr, second.stderr
        assert first.poll() is None, "the first instance must keep running"
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
        log.close()
        shutil.rmtree(run_dir, ignore_errors=True)
