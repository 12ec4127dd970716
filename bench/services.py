"""The services `make bench` measures, each on a free port of 127.0.0.1 with a run directory of
its own, started in a session of their own and stopped with SIGTERM: pyexec as `make run`
starts it (scripts/serve.sh), warm or cold, and the seeds' architecture (seeds.py)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A command that serves http://127.0.0.1:PORT and answers GET /health with 200 once ready."""

    name = "service"

    def start(self, args, port, run_dir, env=None):
        self.url = f"http://127.0.0.1:{port}"
        self.run_dir = run_dir
        self.log = open(os.path.join(self.run_dir, "serve.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=env)
        deadline = time.monotonic() + 30
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"bench: {self.name} did not become healthy (exit status {self.proc.returncode})")
            time.sleep(0.1)

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)


class Pyexec(Server):
    """scripts/serve.sh, as `make run` starts it; config: a config file instead of
    config/pyexec.conf."""

    name = "pyexec (scripts/serve.sh)"

    def __init__(self, workers, config=None):
        port, run_dir = free_port(), tempfile.mkdtemp(prefix="pyexec-bench-run-")
        args = [os.path.join(ROOT, "scripts", "serve.sh"), "--port", str(port), "--run-dir", run_dir,
                "--workers", str(workers)] + (["--config", config] if config else [])
        self.start(args, port, run_dir)


def cold_config(directory):
    """A copy of config/pyexec.conf with warm = 0; returns its path."""
    path = os.path.join(directory, "cold.conf")
    with open(os.path.join(ROOT, "config", "pyexec.conf")) as src, open(path, "w") as out:
        for line in src:
            out.write("warm = 0\n" if line.split("=")[0].strip() == "warm" else line)
    return path
