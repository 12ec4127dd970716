"""Fixtures: the real service (scripts/serve.sh: spawn-fcgi pool + nginx) on a free port.

The service is started once per test session, exactly as `make run` starts it, and stopped
at the end; the session fails if anything it started is still running afterwards.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from client import BUILD, ROOT, sanitizer_reports


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve.sh exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the service did not become healthy in time")


class Service:
    def __init__(self, workers=None, config=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.run_dir = tempfile.mkdtemp(prefix="pyexec-test-")
        self.log_path = os.path.join(self.run_dir, "serve.log")
        self.config_path = config
        args = [os.path.join(ROOT, "scripts", "serve.sh"), "--port", str(self.port), "--run-dir", self.run_dir]
        if workers:
            args += ["--workers", str(workers)]
        if config:
            args += ["--config", config]
        self.log = open(self.log_path, "w")
        # Own process group, so a failing test run can still clean up everything.
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_healthy(self.url, self.proc)

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()

    def leftovers(self):
        """Processes still alive from this service: its session (nginx, the pool, workers) or
        anything naming its run directory."""
        out = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True).stdout
        left = []
        for line in out.splitlines():
            pid, sid, args = line.split(None, 2) if len(line.split(None, 2)) == 3 else (0, 0, "")
            if int(pid) == os.getpid() or args.startswith("ps "):
                continue
            if int(sid) == self.proc.pid or self.run_dir in args:
                left.append(line.strip())
        return left


def config_with(run_dir, **overrides):
    """A copy of config/pyexec.conf with some settings replaced; returns its path."""
    lines = []
    with open(os.path.join(ROOT, "config", "pyexec.conf")) as f:
        for line in f:
            key = line.split("=")[0].strip()
            if key in overrides:
                line = f"{key} = {overrides.pop(key)}\n"
            lines.append(line)
    lines += [f"{k} = {v}\n" for k, v in overrides.items()]
    path = os.path.join(run_dir, "test.conf")
    with open(path, "w") as f:
        f.writelines(lines)
    return path


def start_service(**config):
    """A service whose config is config/pyexec.conf with these settings replaced (workers
    included, so that a reload can change the pool size)."""
    conf = config_with(tempfile.mkdtemp(prefix="pyexec-conf-"), **config) if config else None
    return Service(config=conf)


def stale_cgroups():
    """Per-request cgroups whose maker (a worker) is gone: leaks. The pools these tests start
    make theirs below this process's own cgroups, as cgroup.c does."""
    found = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(","):
                if c not in ("memory", "pids"):
                    continue
                parent = os.path.join("/sys/fs/cgroup", c) + (path if path != "/" else "") + "/pyexec"
                for name in os.listdir(parent) if os.path.isdir(parent) else []:
                    pid = name.split("-")[0]
                    if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                        found.append(os.path.join(parent, name))
    return found


def stop_service(svc):
    svc.stop()
    time.sleep(0.2)
    left = svc.leftovers()
    # The workers' and zygotes' stderr: a sanitizer build reports there (make test SANITIZE=1).
    reports = sanitizer_reports(svc.logs())
    log_tail = svc.logs()[-20000:]
    shutil.rmtree(svc.run_dir, ignore_errors=True)
    assert not reports, f"sanitizer reports in the service's log: {reports}\n{log_tail}"
    assert not left, f"processes left after SIGTERM: {left}"
    assert not stale_cgroups(), f"cgroups left after SIGTERM: {stale_cgroups()}"


@pytest.fixture(scope="session")
def service():
    """The service as `make run` starts it (warm mode, prefork)."""
    svc = Service()
    yield svc
    stop_service(svc)


@pytest.fixture(scope="session")
def cold_service():
    """The same service in cold mode: python3 is execve()d for every request."""
    svc = start_service(warm=0)
    yield svc
    stop_service(svc)


# Every end-to-end test runs against both modes: warm is the default, cold the fallback and
# the benchmark's yardstick, and both must give the same answers.
@pytest.fixture(scope="session", params=["warm", "cold"])
def base_url(request):
    """The service under test: PYEXEC_URL if set (a container, a deployment; then only once),
    else a local one started with scripts/serve.sh in the given mode."""
    url = os.environ.get("PYEXEC_URL")
    if url:
        if request.param == "cold":
            pytest.skip("PYEXEC_URL is tested once, as deployed")
        return url.rstrip("/")
    return request.getfixturevalue("service" if request.param == "warm" else "cold_service").url


@pytest.fixture(scope="session")
def pyexec_run():
    """Path of the standalone runner, for tests of the sandbox without HTTP."""
    return os.path.join(BUILD, "pyexec-run")
