"""Starting and stopping the service as an operator (or docker, Kubernetes, systemd) does:
serve.sh's own process must be the last of the service to exit, whenever the SIGTERM comes,
and two instances started from one checkout must not take each other's sockets (issue 11)."""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from helpers import ROOT, config_with, free_port, stale_cgroups, wait_healthy

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
            try:
                wait_healthy(url, proc)
            except BaseException:  # never leave the service running for the rest of the suite
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
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


def test_ctrl_c_stops_the_pool_without_interrupting_its_interpreters():
    """A terminal's Ctrl-C sends SIGINT to `make run`'s whole process group. An interpreter
    still importing its tier took it as a KeyboardInterrupt and told the workers its tier could
    not import: the stop logged `warm_unavailable ... KeyboardInterrupt` in about one run in five.
    The interpreters have a process group of their own; the pool stops them."""
    numpy = b'{"script": "import numpy as np\\ndef main():\\n    return int(np.arange(3).sum())\\n"}'
    for attempt in range(3):
        run_dir = tempfile.mkdtemp(prefix="pyexec-ctrlc-")
        port = free_port()
        proc, log = start(run_dir, port, workers=4)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc)
            req = urllib.request.Request(url + "/execute", data=numpy, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:
                assert json.load(r)["result"] == 3
            out = subprocess.run(["ps", "-eo", "pid=,pgid=,sid=,args="], capture_output=True, text=True).stdout
            interpreters = [l.split() for l in out.splitlines()
                            if "pyexec-zygote" in l and l.split()[2] == str(proc.pid)]
            assert interpreters, out
            assert all(int(pgid) != proc.pid for _, pgid, *_ in interpreters), interpreters
            # Nor the init factories (and the inits they clone): one killed by the Ctrl-C just
            # after it had cloned an init but before it answered was replaced, and the worker
            # sent the same pipes to the new one, whose init then never got the go (the first
            # one read it) and never got ready.
            factories = [l.split() for l in out.splitlines()
                         if "pyexec-init factory" in l and l.split()[2] == str(proc.pid)]
            assert factories, out
            assert all(int(pgid) != proc.pid for _, pgid, *_ in factories), factories
            stop_began = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(timeout=60) == 0
            stop_took = time.monotonic() - stop_began
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()
        with open(os.path.join(run_dir, "serve.log")) as f:
            text = f.read()
        shutil.rmtree(run_dir, ignore_errors=True)
        assert "KeyboardInterrupt" not in text and "warm_unavailable" not in text, text[-2000:]
        # Nor does it reach the init factories: a worker then waited 5 s for a sandbox that
        # would never get ready, and logged warm_failed for a script nobody had sent.
        assert "warm_failed" not in text and "did not get ready" not in text, text[-2000:]
        assert stop_took < 3, (stop_took, text[-2000:])
        assert "event=stopped" in text, text[-2000:]


def session_pid_of(sid, comm):
    out = subprocess.run(["ps", "-eo", "pid=,sid=,comm="], capture_output=True, text=True).stdout
    pids = [int(l.split()[0]) for l in out.splitlines() if l.split()[1:] == [str(sid), comm]]
    assert pids, (comm, out)
    return min(pids)  # nginx's master is older than its workers


@pytest.mark.parametrize("component, says", [
    ("pyexec-master", "the pool (pid {pid}) killed by signal 9 (KILL)"),
    ("nginx", "nginx (pid {pid}) killed by signal 9 (KILL)"),
    ("serve.sh", "ending what is left of the previous instance in {run_dir} (pid {pid}), which has ended: "),
])
def test_a_crash_fails_the_service_and_a_restart_serves_at_once(component, says):
    """A crash of the pool's master or of nginx (SIGKILL here) ends the service as a failure:
    serve.sh said "a component exited" and exited 0, so systemd's Restart=on-failure (the unit
    in deploy/) and docker's --restart on-failure left the service down; nginx's workers
    outlived their master and went on answering 502 on the port. serve.sh must say which part
    ended and how, end the rest, and exit non-zero. The restart that follows, on the same run
    directory, must serve: the crashed pool's workers held the run directory's lock while they
    took their prepared sandboxes down, and the new instance refused to start ("another
    instance already runs"). When serve.sh itself is killed, the pool and nginx it leaves are
    ended by the next start."""
    run_dir = tempfile.mkdtemp(prefix="pyexec-crash-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first, log = start(run_dir, port, workers=2)
    second = None
    try:
        wait_healthy(url, first)
        victim = first.pid if component == "serve.sh" else session_pid_of(first.pid, component)
        os.kill(victim, signal.SIGKILL)
        assert first.wait(timeout=60) != 0
        second, log2 = start(run_dir, port, workers=2)
        log2.close()
        deadline = time.monotonic() + 30  # (until then the old nginx may answer /health)
        while session_processes(first.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not session_processes(first.pid), "the crashed instance's processes must be gone"
        wait_healthy(url, second, timeout=60)
        assert post(url) == 200
    finally:
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        subprocess.run(["pkill", "-KILL", "-s", str(first.pid)])
        log.close()
    with open(os.path.join(run_dir, "serve.log")) as f:
        text = f.read()
    shutil.rmtree(run_dir, ignore_errors=True)
    said = [line for line in text.splitlines() if says.format(pid=victim, run_dir=run_dir) in line]
    assert said, text[-3000:]
    if component == "serve.sh":  # what was left, in PID order (the master's may have wrapped past them)
        assert "pyexec-master " in said[0].split("which has ended: ", 1)[1], said
    assert "already runs" not in text, text[-3000:]


def test_a_start_while_the_last_instance_stops_waits_for_it_and_serves():
    """`make run` again right after Ctrl-C or a SIGTERM, on the same run directory: the instance
    that stops holds the lock until its requests in flight are answered, and the new one refused
    ("another instance already runs"). It waits for the stop, which still answers the request
    it holds, and then serves."""
    run_dir = tempfile.mkdtemp(prefix="pyexec-restart-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first, log = start(run_dir, port, workers=2)
    second = None
    try:
        wait_healthy(url, first)
        in_flight = subprocess.Popen(["curl", "-s", "-H", "Content-Type: application/json", "--data-binary",
                                      SLEEPY.decode(), url + "/execute"], stdout=subprocess.PIPE)
        time.sleep(0.2)
        first.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10  # the stop has begun once the pid file says so
        while not open(os.path.join(run_dir, "pid")).read().startswith("stopping") and time.monotonic() < deadline:
            time.sleep(0.01)
        second, log2 = start(run_dir, port, workers=2)
        log2.close()
        assert json.loads(in_flight.communicate(timeout=30)[0]) == {"result": 1, "stdout": ""}
        assert first.wait(timeout=60) == 0
        wait_healthy(url, second, timeout=60)
        assert post(url) == 200
    finally:
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        log.close()
    with open(os.path.join(run_dir, "serve.log")) as f:
        text = f.read()
    shutil.rmtree(run_dir, ignore_errors=True)
    assert f"waiting for the instance in {run_dir} (pid {first.pid}) to finish stopping" in text, text[-3000:]
    assert "already runs" not in text, text[-3000:]


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
    port = free_port()
    first, log = start(run_dir, port, workers=1)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", first)  # it holds the lock by now
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


# ---- require_cgroups ---------------------------------------------------------------------------

def get_json(url, path):
    try:
        with urllib.request.urlopen(url + path, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start_without_cgroups(require):
    """serve.sh in a mount namespace of its own where /sys/fs/cgroup is an empty read-only
    tmpfs: per-request cgroups cannot be made there (the host's hierarchy is untouched)."""
    run_dir = tempfile.mkdtemp(prefix="pyexec-nocg-")
    conf = config_with(run_dir, require_cgroups=require, workers=1, warm_preload="")
    port = free_port()
    script = f"mount -t tmpfs -o ro none /sys/fs/cgroup && exec {SERVE} --port {port} --run-dir {run_dir} --config {conf}"
    log = open(os.path.join(run_dir, "serve.log"), "ab")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log, f"http://127.0.0.1:{port}", run_dir


def stop(proc, log, run_dir):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    log.close()
    left = session_processes(proc.pid)
    shutil.rmtree(run_dir, ignore_errors=True)
    assert not left, left


def wait_answering(url, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve.sh exited"
        try:
            return get_json(url, "/health")
        except OSError:
            time.sleep(0.1)
    raise AssertionError("no answer")


def test_without_cgroups_scripts_are_refused_and_health_says_why():
    proc, log, url, run_dir = start_without_cgroups(1)
    try:
        status, body = wait_answering(url, proc)
        assert status == 503 and "cgroups" in body["reason"] and "require_cgroups" in body["reason"], body
        req = urllib.request.Request(url + "/execute", data=b'{"script": "def main():\\n    return 1\\n"}',
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=30)
            raise AssertionError("a script ran without its cgroups")
        except urllib.error.HTTPError as e:
            answer = json.loads(e.read())
            assert e.code == 500 and answer["error_kind"] == "sandbox_error", answer
            assert "require_cgroups" in answer["error"], answer
        runtime = get_json(url, "/runtime")[1]
        # No sandbox, so nothing could be asked of one: the inventory's members are empty.
        assert runtime["cgroups"] == "none" and runtime["python"] is None and runtime["packages"] == {}, runtime
    finally:
        stop(proc, log, run_dir)


def test_with_require_cgroups_0_it_runs_on_rlimits_and_says_so():
    proc, log, url, run_dir = start_without_cgroups(0)
    try:
        wait_healthy(url, proc)
        assert post(url) == 200
        status, runtime = get_json(url, "/runtime")
        assert status == 200 and runtime["cgroups"] == "none" and runtime["cgroups_problem"], runtime
        assert runtime["mode"] == "warm" and runtime["workers"] == 1, runtime
        assert runtime["python"] and "numpy" in runtime["packages"], runtime
    finally:
        stop(proc, log, run_dir)


def test_runtime_describes_the_pool():
    run_dir, port = tempfile.mkdtemp(prefix="pyexec-rt-"), free_port()
    proc, log = start(run_dir, port, workers=1)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        status, runtime = get_json(url, "/runtime")
        assert status == 200 and runtime["cgroups"] == ("v1" if os.path.isdir("/sys/fs/cgroup/cpuacct") else "v2"), runtime
        assert runtime["limits"]["wall_time_s"] == 10 and runtime["workers"] == 1, runtime
    finally:
        stop(proc, log, run_dir)


def sigterm_during_start(wait):
    """Starts a one-worker pool under spawn-fcgi, calls wait(log_path), SIGTERMs the master:
    True if the pool then stopped within 20 s (else it is killed)."""
    worker = os.path.join(os.environ.get("PYEXEC_BUILD", os.path.join(ROOT, "build")), "pyexec-worker")
    run_dir = tempfile.mkdtemp(prefix="pyexec-startterm-")
    log_path = os.path.join(run_dir, "pool.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen(["spawn-fcgi", "-n", "-s", os.path.join(run_dir, "pool.sock"), "--", worker, "-w", "1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait(log_path)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
        stopped = True
    except subprocess.TimeoutExpired:
        stopped = False
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()
    shutil.rmtree(run_dir, ignore_errors=True)
    return stopped


def test_sigterm_while_the_pool_starts_stops_it():
    """The pool's master, SIGTERMed at every moment of its start-up (probe, monitor, workers),
    stops within seconds. libfcgi's FCGX_Init() installs a SIGTERM handler of its own that only
    sets a flag: the master used to miss such a SIGTERM, and every worker and monitor forked
    after it inherited the flag and was replaced forever."""
    stuck = [delay_ms for delay_ms in range(0, 400, 25)
             if not sigterm_during_start(lambda _, ms=delay_ms: time.sleep(ms / 1000))]
    assert not stuck, f"the pool ignored a SIGTERM sent this many ms into its start: {stuck}"


def test_sigterm_just_after_the_start_line_stops_the_pool():
    """SIGTERM the moment the master logs event=start: its drain signals a worker it has just
    forked. A signal that reached the child before its own dispositions ran the master's
    handler there and was lost, and the master waited for that worker forever (every time,
    30 of 30, before fork_pool_child in fcgi/worker.c)."""
    def until_started(log_path):
        deadline = time.monotonic() + 30
        while b"event=start" not in open(log_path, "rb").read() and time.monotonic() < deadline:
            time.sleep(0.0005)

    stuck = [attempt for attempt in range(8) if not sigterm_during_start(until_started)]
    assert not stuck, f"the pool ignored a SIGTERM sent as it logged its start, attempts {stuck}"


# ---- a worker told to stop finishes the request it holds ---------------------------------
# nginx sends a request in pieces: the FastCGI records of its parameters, then its body. A
# worker is told to stop (SIGTERM) by every reload and every drain, at any moment of a
# request. Read over a raw FastCGI connection, so the test decides where the worker waits.

def fcgi_record(kind, content=b"", request_id=1):
    pad = -len(content) % 8
    return bytes([1, kind, request_id >> 8, request_id & 255, len(content) >> 8, len(content) & 255, pad, 0]) \
        + content + b"\0" * pad


def fcgi_params(params):
    out = b""
    for name, value in params.items():
        name, value = name.encode(), value.encode()
        out += bytes([len(name)]) + (len(value).to_bytes(4, "big") if len(value) > 127 else bytes([len(value)]))
        out += name + value
    return out


def fcgi_request_pieces(body):
    params = {"REQUEST_METHOD": "POST", "PYEXEC_PATH": "/execute", "DOCUMENT_URI": "/execute",
              "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "REQUEST_ID": "raw"}
    begin = fcgi_record(1, bytes([0, 1, 0, 0, 0, 0, 0, 0]))  # FCGI_BEGIN_REQUEST, responder
    return [begin, fcgi_record(4, fcgi_params(params)) + fcgi_record(4),
            fcgi_record(5, body[:10]), fcgi_record(5, body[10:]) + fcgi_record(5)]


def fcgi_response(sock, pause_before_reading=0.0):
    time.sleep(pause_before_reading)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    out, i, ended = b"", 0, False
    while i + 8 <= len(data):
        kind, length, pad = data[i + 1], data[i + 4] << 8 | data[i + 5], data[i + 6]
        if kind == 6:  # FCGI_STDOUT
            out += data[i + 8:i + 8 + length]
        ended |= kind == 3  # FCGI_END_REQUEST
        i += 8 + length + pad
    return out, ended


def pool_workers(master_pid):
    out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(master_pid)], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if line.split()[1] == "pyexec-worker"]


def waiting_for_a_connection(pid):
    """Whether the worker is blocked in its wait for a connection: epoll_wait() (232, or 281,
    epoll_pwait) for at most 2 events and without a timeout, or, as workers did before, accept()
    (43). Not libfcgi's poll() (7) for a new connection's first byte."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            call = f.read().split()
    except OSError:
        return False
    forever = ("0xffffffff", "0xffffffffffffffff")
    return call[:1] == ["43"] or (call[:1] in (["232"], ["281"]) and call[3] == "0x2" and call[4] in forever)


def wait_all_idle(master_pid, count, within=30):
    deadline = time.monotonic() + within
    while True:
        pids = pool_workers(master_pid)
        if len(pids) == count and all(waiting_for_a_connection(p) for p in pids):
            return
        assert time.monotonic() < deadline, f"the workers never became idle: {pids}"
        time.sleep(0.05)


def test_a_worker_told_to_stop_finishes_the_request_it_holds_wherever_it_waits():
    """The 502s seen during reloads under load: a SIGTERM used to interrupt the worker's read of
    a request (or its write of the answer, or libfcgi's poll() for a new connection's first
    byte), and libfcgi took the interrupted call for a broken connection. Stopped while it
    waits for a new connection's first byte, for the parameters, for the body, or for the
    client to read a large answer, a worker must still answer in full."""
    import socket as socketlib
    worker = os.path.join(os.environ.get("PYEXEC_BUILD", os.path.join(ROOT, "build")), "pyexec-worker")
    run_dir = tempfile.mkdtemp(prefix="pyexec-rawstop-")
    sock_path = os.path.join(run_dir, "pool.sock")
    log = open(os.path.join(run_dir, "pool.log"), "wb")
    proc = subprocess.Popen(["spawn-fcgi", "-n", "-s", sock_path, "--", worker, "-w", "2"], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    big = 'def main():\n    print("x" * 900000)\n    return "big"\n'
    small = 'def main():\n    return "small"\n'
    failures = []
    try:
        deadline = time.monotonic() + 30
        while len(pool_workers(proc.pid)) < 2 or not os.path.exists(sock_path):
            assert time.monotonic() < deadline and proc.poll() is None, open(log.name, "rb").read()[-2000:]
            time.sleep(0.1)
        for where, script, sent_before in (("accepted, before the first byte", small, 0),
                                           ("waiting for the parameters", small, 1),
                                           ("waiting for the body", small, 3),
                                           ("writing a large answer", big, 4)):
            wait_all_idle(proc.pid, 2)
            pieces = fcgi_request_pieces(json.dumps({"script": script}).encode())
            with socketlib.socket(socketlib.AF_UNIX) as s:
                s.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_RCVBUF, 4096)
                s.connect(sock_path)
                s.settimeout(30)
                for piece in pieces[:sent_before]:
                    s.sendall(piece)
                time.sleep(1.5 if sent_before == 4 else 0.3)  # the worker waits in read() / write()
                stopped = pool_workers(proc.pid)
                for pid in stopped:
                    os.kill(pid, signal.SIGTERM)
                time.sleep(0.3)
                try:
                    for piece in pieces[sent_before:]:
                        s.sendall(piece)
                    out, ended = fcgi_response(s)
                except OSError as e:  # what nginx logs as "writev() failed (32: Broken pipe)": a 502
                    out, ended = repr(e).encode(), False
            head, _, body = out.partition(b"\r\n\r\n")
            try:
                answer = json.loads(body)
            except ValueError:
                answer = {"cut after": len(body)}
            want = {"result": "big", "stdout": "x" * 900000 + "\n"} if script is big else {"result": "small", "stdout": ""}
            if not (ended and head.startswith(b"Status: 200") and answer == want):
                failures.append((where, ended, head[:60], str(answer)[:200]))
            deadline = time.monotonic() + 30
            while set(pool_workers(proc.pid)) & set(stopped):
                assert time.monotonic() < deadline, "the stopped workers did not exit"
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    assert not failures, failures
