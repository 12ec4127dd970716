"""nginx in front of several pools: two pools on loopback TCP behind one nginx. Requests are
spread over both; when one pool dies, the service keeps answering; and a script is never
run twice (nginx moves a request to another pool only when it could not be sent)."""
import json
import os
import signal
import subprocess
import tempfile
import time

from helpers import ROOT, free_port, post_execute, request, wait_healthy

HELLO = "def main():\n    return 'hello'\n"


class Part:
    """One serve.sh process: a pool, or the nginx in front."""

    def __init__(self, *args):
        self.run_dir = tempfile.mkdtemp(prefix="pyexec-mb-")
        self.log_path = os.path.join(self.run_dir, "serve.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([os.path.join(ROOT, "scripts", "serve.sh"), "--run-dir", self.run_dir,
                                      "--workers", "2", *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def served(self):
        with open(self.log_path) as f:
            return sum(1 for line in f if "path=/execute" in line and "kind=ok" in line)

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()


def test_two_pools_share_the_load_and_survive_one_dying():
    ports = {name: free_port() for name in ("a", "ma", "b", "mb", "http")}
    pool_a = Part("--pool-only", "--listen", f"127.0.0.1:{ports['a']}", "--monitor-listen", f"127.0.0.1:{ports['ma']}")
    pool_b = Part("--pool-only", "--listen", f"127.0.0.1:{ports['b']}", "--monitor-listen", f"127.0.0.1:{ports['mb']}")
    front = Part("--port", str(ports["http"]),
                 "--upstreams", f"127.0.0.1:{ports['a']} 127.0.0.1:{ports['b']}",
                 "--monitor-upstreams", f"127.0.0.1:{ports['ma']} 127.0.0.1:{ports['mb']}")
    url = f"http://127.0.0.1:{ports['http']}"
    try:
        wait_healthy(url, front.proc)
        time.sleep(2)  # both pools' workers up (health only needs one)
        for _ in range(20):
            status, _, body = post_execute(url, HELLO)
            assert status == 200 and body["result"] == "hello", body
        time.sleep(0.3)
        assert pool_a.served() >= 3 and pool_b.served() >= 3, (pool_a.served(), pool_b.served())
        assert pool_a.served() + pool_b.served() == 20  # each request ran exactly once

        pool_a.kill()
        # A request that reached pool A as it died gets a JSON 502 (it was sent, so nginx does
        # not run it again elsewhere); once A's port is closed, nginx skips A.
        wait_closed(ports["a"])
        served_b = pool_b.served()
        for _ in range(20):
            status, _, body = post_execute(url, HELLO)
            assert status == 200 and body["result"] == "hello", body
        time.sleep(0.3)
        assert pool_b.served() == served_b + 20
        status, _, raw = request(url, "GET", "/health", timeout=5)
        assert status == 200, raw
    finally:
        for part in (front, pool_a, pool_b):
            try:
                part.stop()
            except Exception:
                part.kill()


def wait_closed(port, timeout=5):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError(f"port {port} still open")
